//! The HTTP entry points of the ticketing API.
//!
//! Each endpoint is a plain async function `(&Services, Request) -> Result<Response, DomainError>`
//! in [`endpoints`]: it parses the request, calls one operation of the domain crate and shapes
//! the answer. Every Lambda binary in `src/bin/` runs exactly one of them through [`run`]; the
//! local gateway runs the same functions through [`routes`]. Errors become the contract's error
//! body in one place, [`respond`].

pub mod endpoints;
pub mod http;
pub mod routes;

pub use lambda_http::Request;
use lambda_http::{service_fn, Body, RequestExt, Response};
use shared::auth::EdgeSecret;
pub use shared::runtime::Services;
use shared::DomainError;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

pub type HandlerResult = Result<Response<Body>, DomainError>;
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'a>>;
/// An endpoint, as a function pointer so a table of them can be built (see [`routes`]).
pub type Handler = for<'a> fn(&'a Services, Request) -> HandlerFuture<'a>;

/// Turns an `async fn(&Services, Request) -> HandlerResult` into a [`Handler`].
#[macro_export]
macro_rules! handler {
    ($endpoint:path) => {{
        fn call(
            services: &$crate::Services,
            request: $crate::Request,
        ) -> $crate::HandlerFuture<'_> {
            Box::pin($endpoint(services, request))
        }
        call as $crate::Handler
    }};
}

pub type JobResult = Result<(), DomainError>;
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = JobResult> + Send + 'a>>;
/// A scheduled job, as a function pointer (see [`routes::JOBS`]).
pub type Job = for<'a> fn(&'a Services) -> JobFuture<'a>;

/// Turns an `async fn(&Services) -> JobResult` into a [`Job`].
#[macro_export]
macro_rules! job {
    ($job:path) => {{
        fn call(services: &$crate::Services) -> $crate::JobFuture<'_> {
            Box::pin($job(services))
        }
        call as $crate::Job
    }};
}

/// The `main` of a scheduled Lambda: the EventBridge event carries nothing we need; the job
/// runs and its failure is the invocation's failure (so Lambda's error metrics and alarms see
/// it).
pub async fn run_job(job: Job) -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let services: &'static Services = Box::leak(Box::new(Services::from_env().await?));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            job(services).await.map_err(|err| {
                tracing::error!(error = %err, "scheduled job failed");
                lambda_runtime::Error::from(err.to_string())
            })
        },
    ))
    .await
}

/// Runs an endpoint, maps a domain error to the contract's error response, and writes the
/// request's log line: request id, route, status, latency and the caller's user id (when the
/// access token is genuine). Never a token, a password, a body or an `Idempotency-Key`: only
/// these fields are written. On an edge-only stack (`EDGE_SECRET_ARN`) a request that did not
/// come through CloudFront is refused before anything else (its token, its body) is looked at.
pub async fn respond(services: &Services, handler: Handler, request: Request) -> Response<Body> {
    let started = std::time::Instant::now();
    let (route, request_id) = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
            (context.route_key.clone(), context.request_id.clone())
        }
        _ => (None, None),
    };
    let around_the_edge = services.edge_secret.as_ref().and_then(|secret| {
        secret
            .check(http::header(&request, EdgeSecret::HEADER))
            .err()
    });
    let user_id = around_the_edge
        .is_none()
        .then(|| http::principal(services, &request).ok())
        .flatten()
        .map(|principal| principal.user_id.to_string());
    let budget = time_budget(services, &request);
    // A handler that would outlive the function is stopped here, wherever it stands, as Lambda
    // would stop it, but with an answer: every operation is safe to stop between any two
    // steps (docs/RELIABILITY.md), and SERVICE_BUSY tells the client to try again.
    let response = match around_the_edge {
        Some(err) => http::error_response(&err),
        None => match tokio::time::timeout(budget, handler(services, request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => http::error_response(&err),
            Err(_) => {
                tracing::warn!(
                    budget_ms = budget.as_millis() as u64,
                    "request ran out of time"
                );
                http::error_response(&DomainError::busy())
            }
        },
    };
    tracing::info!(
        target: "request",
        request_id = request_id.as_deref().unwrap_or(""),
        route = route.as_deref().unwrap_or(""),
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        user_id = user_id.as_deref().unwrap_or(""),
        "request"
    );
    response
}

/// What a request may take before it must answer: until the function's deadline (from its
/// Lambda context; the local gateway sets one too) less [`ANSWER_MARGIN`], or
/// `REQUEST_TIMEOUT_MILLIS` when there is no deadline.
fn time_budget(services: &Services, request: &Request) -> std::time::Duration {
    let configured = std::time::Duration::from_millis(services.config.request_timeout_millis);
    let Some(context) = request.lambda_context_ref().filter(|c| c.deadline > 0) else {
        return configured;
    };
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let left = std::time::Duration::from_millis(context.deadline.saturating_sub(now_ms));
    left.saturating_sub(ANSWER_MARGIN)
        .max(std::time::Duration::from_millis(100))
}

/// Kept back from the function's deadline to write the answer and the log line.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// The `main` of every Lambda binary: logging, services built once per cold start, then the
/// runtime loop.
pub async fn run(handler: Handler) -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    // Built once and kept for the life of the process, which is the life of the execution
    // environment; leaking gives every invocation a plain `&'static` with no reference count.
    let services: &'static Services = Box::leak(Box::new(services));
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, Infallible>(respond(services, handler, request).await)
    }))
    .await
}
