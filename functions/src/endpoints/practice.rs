//! The practice site: `POST /performances/import`, and the web page itself (`GET /` and
//! `GET /web/{file}`), served by the API so that the page and the API share one origin.

use crate::{http, HandlerResult};
use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shared::runtime::Services;
use shared::DomainError;

pub async fn import(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let imported = services
        .import_performance(&principal, http::body(&request)?)
        .await?;
    let mut body =
        super::catalog::concert_with_dates(services, &imported.concert, &imported.schedules)?;
    // Always present on an import, even if the concert item lacks them.
    body["source_url"] = json!(imported.concert.source_url);
    body["template_code"] = json!(imported
        .concert
        .template_code
        .unwrap_or_else(|| "default".to_owned()));
    http::json(201, &body)
}

/// The page's files (everything in `web/`), compiled into the function by `build.rs`:
/// (name, content type, content).
const FILES: &[(&str, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// `GET /openapi.yaml`: the API's OpenAPI document, checked against the running service by
/// `infra/api-check.sh`.
pub async fn openapi(_services: &Services, _request: Request) -> HandlerResult {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/yaml")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(include_str!("../../../openapi.yaml")))
        .map_err(DomainError::internal)
}

/// `GET /`: the practice page.
pub async fn page(_services: &Services, _request: Request) -> HandlerResult {
    file("index.html")
}

/// `GET /web/{file}`: the page's scripts and styles.
pub async fn asset(_services: &Services, request: Request) -> HandlerResult {
    file(&http::path(&request, "file")?)
}

fn file(name: &str) -> HandlerResult {
    let Some((_, content_type, content)) = FILES.iter().find(|(file, _, _)| *file == name) else {
        return Err(DomainError::NotFound("file"));
    };
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, *content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff")
        .body(Body::from(*content))
        .map_err(DomainError::internal)
}
