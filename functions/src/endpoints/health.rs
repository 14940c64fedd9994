//! `GET /health`.

use crate::{http, HandlerResult};
use lambda_http::Request;
use serde_json::json;
use shared::runtime::Services;

/// Answers once the process is up: a Lambda that runs has built its clients, and the local
/// gateway only starts listening when its resources are ready.
pub async fn health(_services: &Services, _request: Request) -> HandlerResult {
    http::json(200, &json!({ "status": "ok" }))
}
