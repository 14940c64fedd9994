//! `POST /queue/tokens`, `GET /queue/tokens/current`, `DELETE /queue/tokens/current`,
//! `GET /queue/progress/{concert_id}`.

use crate::{http, HandlerResult};
use lambda_http::Request;
use serde_json::json;
use shared::runtime::Services;

pub async fn enter(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let place = services
        .enter_queue(&principal, http::body(&request)?)
        .await?;
    http::json(
        if place.created { 201 } else { 200 },
        &json!({
            "queue_token": place.queue_token,
            "token_id": place.token.token_id,
            "concert_id": place.token.concert_id,
            "status": place.status,
            "position": place.position,
            "issued_at": place.token.issued_at,
            "expires_at": place.token.ends_at(),
        }),
    )
}

pub async fn current(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let view = services
        .queue_status(&principal, http::queue_token(&request))
        .await?;
    http::json(
        200,
        &json!({
            "token_id": view.token_id,
            "concert_id": view.concert_id,
            "status": view.status,
            "position": view.position,
            "estimated_wait_seconds": view.estimated_wait_seconds,
            "active_until": view.active_until,
        }),
    )
}

pub async fn leave(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    services
        .leave_queue(&principal, http::queue_token(&request))
        .await?;
    http::no_content()
}

/// Edges and browsers may keep the progress document this long: the origin then answers about
/// one request a second per concert and edge cache, however many fans wait.
const PROGRESS_MAX_AGE_SECONDS: u32 = 1;

pub async fn progress(services: &Services, request: Request) -> HandlerResult {
    let document = services
        .queue_progress(&http::path(&request, "concert_id")?)
        .await?;
    let mut response = http::json(200, &document)?;
    response.headers_mut().insert(
        lambda_http::http::header::CACHE_CONTROL,
        lambda_http::http::HeaderValue::from_str(&format!(
            "public, max-age={PROGRESS_MAX_AGE_SECONDS}"
        ))
        .map_err(shared::error::DomainError::internal)?,
    );
    Ok(response)
}
