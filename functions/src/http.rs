//! Request reading and response writing shared by every endpoint.

use crate::HandlerResult;
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::runtime::Services;
use shared::{auth::Principal, validate, DomainError};

/// The JSON body, parsed into `T` (`VALIDATION_FAILED` naming the field if it does not fit).
pub fn body<T: DeserializeOwned>(request: &Request) -> Result<T, DomainError> {
    validate::parse_json(request.body().as_ref())
}

pub fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// A path parameter declared by the route (`/concerts/{concert_id}`).
pub fn path(request: &Request, name: &str) -> Result<String, DomainError> {
    request
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
        .ok_or_else(|| DomainError::internal(format!("route has no path parameter {name}")))
}

pub fn query(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
}

/// The `Idempotency-Key` header. Present but not readable as text is refused rather than
/// ignored: ignoring it would turn a client's retry into a second charge.
pub fn idempotency_key(request: &Request) -> Result<Option<&str>, DomainError> {
    match request.headers().get("idempotency-key") {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            DomainError::validation(
                "Idempotency-Key",
                "must be 1 to 64 visible ASCII characters",
            )
        }),
    }
}

/// The `X-Queue-Token` header.
pub fn queue_token(request: &Request) -> Option<&str> {
    header(request, "x-queue-token")
}

/// The caller named by `Authorization: Bearer …`.
pub fn principal(services: &Services, request: &Request) -> Result<Principal, DomainError> {
    services.authenticate(header(request, "authorization"))
}

/// The caller, who must be an admin.
pub fn admin(services: &Services, request: &Request) -> Result<Principal, DomainError> {
    services.authenticate_admin(header(request, "authorization"))
}

pub fn json(status: u16, body: &impl Serialize) -> HandlerResult {
    let body = serde_json::to_string(body).map_err(DomainError::internal)?;
    Ok(response(status, Body::Text(body)))
}

pub fn no_content() -> HandlerResult {
    Ok(response(204, Body::Empty))
}

/// The contract's error body. Internal errors are logged here with their cause, which the body
/// never shows.
pub fn error_response(err: &DomainError) -> Response<Body> {
    if let DomainError::Internal(cause) = err {
        tracing::error!(cause, "request failed");
    }
    let mut response = response(err.status(), Body::Text(err.body().to_string()));
    if let Some(seconds) = err.retry_after_seconds() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    response
}

fn response(status: u16, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !matches!(response.body(), Body::Empty) {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
    response
}
