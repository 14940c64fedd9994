//! `GET /health`.

use crate::{http, HandlerResult};
use lambda_http::Request;
use serde_json::json;
use shared::runtime::Services;

/// Answers once the process is up: a Lambda that runs has built its clients, and the local
/// gateway only starts listening when its resources are ready. `now` is the service's clock,
/// which the practice page's countdown follows.
pub async fn health(services: &Services, _request: Request) -> HandlerResult {
    let now = services
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    http::json(200, &json!({ "status": "ok", "now": now }))
}
