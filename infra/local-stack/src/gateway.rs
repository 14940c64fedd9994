//! The local stand-in for API Gateway and Lambda: serves the routes of template.yaml on one port
//! and runs the very endpoint functions the Lambda binaries run, with the request shaped as API
//! Gateway would hand it over (path and query parameters set, body as received) and the
//! function's deadline in its Lambda context. As Lambda does, it stops a function at its
//! timeout: the handler is dropped wherever it stands.

use crate::template::Route;
use functions::{routes, Handler};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, RequestExt};
use serde_json::json;
use shared::runtime::Services;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// API Gateway HTTP APIs take payloads up to 10 MB; nothing in this API needs more than a few KB.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A route of the template bound to its endpoint function.
struct BoundRoute {
    method: String,
    /// `METHOD /path/{param}`, as API Gateway names the route it matched.
    key: String,
    segments: Vec<Segment>,
    handler: Handler,
    timeout: std::time::Duration,
}

/// What a request matched.
struct Matched {
    handler: Handler,
    parameters: HashMap<String, String>,
    key: String,
    timeout: std::time::Duration,
}

enum Segment {
    Literal(String),
    Parameter(String),
}

pub struct Router {
    routes: Vec<BoundRoute>,
}

#[derive(Debug, thiserror::Error)]
#[error("template.yaml routes {method} {path} to binary {binary}, which has no endpoint in functions::routes")]
pub struct UnknownBinary {
    pub method: String,
    pub path: String,
    pub binary: String,
}

impl Router {
    pub fn new(template_routes: &[Route]) -> Result<Self, UnknownBinary> {
        let mut routes = template_routes
            .iter()
            .map(|route| {
                let handler = routes::endpoint(&route.binary).ok_or_else(|| UnknownBinary {
                    method: route.method.clone(),
                    path: route.path.clone(),
                    binary: route.binary.clone(),
                })?;
                let segments = split(&route.path)
                    .map(|segment| {
                        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => Segment::Parameter(name.to_owned()),
                            None => Segment::Literal(segment.to_owned()),
                        }
                    })
                    .collect();
                Ok(BoundRoute {
                    method: route.method.clone(),
                    key: format!("{} {}", route.method, route.path),
                    segments,
                    handler,
                    timeout: std::time::Duration::from_secs(route.timeout_seconds),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // As API Gateway does: the most specific route wins (`/queue/tokens/current` before
        // `/queue/tokens/{id}`), so literal segments sort before parameters.
        routes.sort_by_key(|route| {
            route
                .segments
                .iter()
                .map(|segment| matches!(segment, Segment::Parameter(_)))
                .collect::<Vec<_>>()
        });
        Ok(Self { routes })
    }

    /// The endpoint for a method and path, with the path parameters it binds.
    fn find(&self, method: &str, path: &str) -> Option<Matched> {
        let parts: Vec<&str> = split(path).collect();
        self.routes.iter().find_map(|route| {
            if route.method != method || route.segments.len() != parts.len() {
                return None;
            }
            let mut parameters = HashMap::new();
            for (segment, part) in route.segments.iter().zip(&parts) {
                match segment {
                    Segment::Literal(literal) if literal == part => {}
                    Segment::Literal(_) => return None,
                    Segment::Parameter(name) => {
                        let value = url::form_urlencoded::parse(format!("x={part}").as_bytes())
                            .next()
                            .map(|(_, value)| value.into_owned())
                            .unwrap_or_default();
                        parameters.insert(name.clone(), value);
                    }
                }
            }
            Some(Matched {
                handler: route.handler,
                parameters,
                key: route.key.clone(),
                timeout: route.timeout,
            })
        })
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Arc<Router>,
    services: Arc<Services>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (router, services) = (router.clone(), services.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (router, services) = (router.clone(), services.clone());
                async move { Ok::<_, Infallible>(handle(&router, &services, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    router: &Router,
    services: &Services,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let Some(matched) = router.find(&method, &path) else {
        return error(404, "NOT_FOUND", "no such route");
    };
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error_with(
                400,
                "VALIDATION_FAILED",
                "body: must be at most 1 MiB",
                json!({"field": "body", "reason": "must be at most 1 MiB"}),
            )
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(raw) => Body::Binary(raw.into_bytes()),
        }
    };
    // What API Gateway tells a function about the request: the route it matched and an id.
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(matched.key);
    context.request_id = Some(uuid::Uuid::new_v4().to_string());
    // What Lambda tells a function about its invocation: when it will be stopped.
    let mut lambda_context = lambda_http::Context::default();
    lambda_context.deadline = (chrono::Utc::now() + matched.timeout).timestamp_millis() as u64;
    let lambda_request = lambda_http::http::Request::from_parts(parts, body)
        .with_path_parameters(matched.parameters)
        .with_query_string_parameters(query)
        .with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(context))
        .with_lambda_context(lambda_context);

    // `respond` writes the request's log line, as it does in the Lambda. Past the function's
    // timeout Lambda stops it mid-step (API Gateway then answers 503); `respond` answers
    // SERVICE_BUSY itself well before, so this is the backstop.
    let response = match tokio::time::timeout(
        matched.timeout,
        functions::respond(services, matched.handler, lambda_request),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => return error(503, "SERVICE_BUSY", "the function timed out"),
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(raw) => Bytes::from(raw),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

fn error(status: u16, code: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    error_with(status, code, message, json!({}))
}

fn error_with(
    status: u16,
    code: &str,
    message: &str,
    details: serde_json::Value,
) -> hyper::Response<Full<Bytes>> {
    let body = json!({"error": {"code": code, "message": message, "details": details}}).to_string();
    let mut response = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if status == 503 {
        response = response.header("retry-after", "1");
    }
    response
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str, binary: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            binary: binary.into(),
            timeout_seconds: 10,
        }
    }

    #[test]
    fn when_path_has_parameter_should_bind_it() {
        let router = Router::new(&[
            route("GET", "/concerts", "list-concerts"),
            route("GET", "/concerts/{concert_id}", "get-concert"),
        ])
        .unwrap();
        let matched = router.find("GET", "/concerts/abc%20d").unwrap();
        assert_eq!(matched.parameters["concert_id"], "abc d");
        // Named as API Gateway names the route it matched.
        assert_eq!(matched.key, "GET /concerts/{concert_id}");
        assert_eq!(matched.timeout, std::time::Duration::from_secs(10));
        assert!(router
            .find("GET", "/concerts")
            .unwrap()
            .parameters
            .is_empty());
        assert!(router.find("POST", "/concerts").is_none());
        assert!(router.find("GET", "/concerts/a/b").is_none());
    }

    #[test]
    fn when_binary_has_no_endpoint_should_refuse_to_start() {
        assert!(Router::new(&[route("GET", "/x", "no-such-binary")]).is_err());
    }
}
