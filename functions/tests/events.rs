//! The sample events in `events/` stay true to template.yaml.
//!
//! `events/<binary>.json` is what API Gateway hands the Lambda function with that binary for one
//! request to its HttpApi route (payload format 2.0), so it can be replayed with
//! `sam local invoke <Function> -e events/<binary>.json` or
//! `cargo lambda invoke <binary> --data-file events/<binary>.json`. These tests guarantee that:
//!
//! - every HTTP function of the template has an event file, and every event file names one;
//! - every file parses into a request with the same deserializer the Lambda runtime uses
//!   (`lambda_http::request::from_str`), as an HTTP API (v2) request;
//! - its method, route key and path match the function's route in the template, and the path
//!   is the one the handler will see;
//! - the route's path parameters reach the handler through `RequestExt::path_parameters_ref`;
//! - a body, where there is one, is JSON sent as `application/json` with a true content-length,
//!   and an `authorization` header, where there is one, is `Bearer <token>`;
//! - bodies and ids get past the endpoint's input validation (the domain's own parsing and
//!   checks, which need no AWS), so a replay reaches the database rather than a 400 or 404.
//!
//! The handlers themselves are not called: every one needs `Services`, which needs AWS.
//! Scheduled functions' sample events (EventBridge "Scheduled Event") are in
//! `events/scheduled/`; their handlers ignore the event's content.

use lambda_http::request::{from_str, RequestContext};
use lambda_http::{Request, RequestExt};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use shared::catalog::NewConcert;
use shared::money::{Charge, Pay};
use shared::operations::EnterQueue;
use shared::reservations::NewHold;
use shared::users::{Login, Signup};
use shared::validate::parse_json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An HttpApi route of one function in template.yaml.
#[derive(Debug)]
struct Route {
    method: String,
    path: String,
}

impl Route {
    /// `GET /concerts/{concert_id}`: the route key API Gateway puts in the event.
    fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters a concrete path gives this route, or `None` if it does not match.
    fn match_path(&self, raw_path: &str) -> Option<BTreeMap<String, String>> {
        let pattern: Vec<_> = segments(&self.path).collect();
        let actual: Vec<_> = segments(raw_path).collect();
        if pattern.len() != actual.len() {
            return None;
        }
        let mut parameters = BTreeMap::new();
        for (expected, actual) in pattern.into_iter().zip(actual) {
            match expected.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if !actual.is_empty() => {
                    parameters.insert(name.to_owned(), actual.to_owned());
                }
                Some(_) => return None,
                None if expected == actual => {}
                None => return None,
            }
        }
        Some(parameters)
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_start_matches('/').split('/')
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("functions/ is inside the repository")
        .to_path_buf()
}

/// Binary name → its HttpApi routes, for every function in template.yaml that has one.
fn template_routes() -> BTreeMap<String, Vec<Route>> {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml is readable");
    // serde_yaml keeps `!Ref` and `!GetAtt` as tagged values, so no CloudFormation schema is needed.
    let template: Yaml = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    let resources = template["Resources"]
        .as_mapping()
        .expect("template.yaml has Resources");

    let mut routes: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap_or("?");
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} has no Metadata.BuildProperties.Binary"));
            let field = |name: &str| {
                event["Properties"][name]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id}: HttpApi event has no {name}"))
                    .to_owned()
            };
            routes.entry(binary.to_owned()).or_default().push(Route {
                method: field("Method").to_ascii_uppercase(),
                path: field("Path"),
            });
        }
    }
    assert!(
        !routes.is_empty(),
        "template.yaml declares no HttpApi routes"
    );
    routes
}

/// Binary name → the text of `events/<binary>.json`, for every JSON file in events/.
fn event_files() -> BTreeMap<String, String> {
    let dir = repo_root().join("events");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()));
    let mut events = BTreeMap::new();
    for entry in entries {
        let path = entry.expect("events/ is listable").path();
        if path.extension().and_then(|ext| ext.to_str()) != Some("json") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("event file names are UTF-8")
            .to_owned();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        events.insert(name, text);
    }
    events
}

/// Every event file, parsed both as raw JSON and as the request the handler receives.
fn parsed_events() -> Vec<(String, Json, Request)> {
    event_files()
        .into_iter()
        .map(|(name, text)| {
            let json: Json = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("events/{name}.json is not JSON: {err}"));
            let request = from_str(&text).unwrap_or_else(|err| {
                panic!("events/{name}.json is not a Lambda HTTP event: {err}")
            });
            (name, json, request)
        })
        .collect()
}

#[test]
fn every_http_function_has_an_event_file_and_every_file_a_function() {
    let functions: Vec<String> = template_routes().into_keys().collect();
    let events: Vec<String> = event_files().into_keys().collect();
    assert_eq!(
        events, functions,
        "events/ should hold exactly one <binary>.json per HTTP function of template.yaml"
    );
    for name in &events {
        assert!(
            functions::routes::endpoint(name).is_some(),
            "events/{name}.json names no endpoint in functions::routes::ENDPOINTS"
        );
    }
}

#[test]
fn every_event_is_an_http_api_payload_v2() {
    for (name, json, request) in parsed_events() {
        assert_eq!(json["version"], "2.0", "events/{name}.json: version");
        assert_eq!(
            json["isBase64Encoded"], false,
            "events/{name}.json: isBase64Encoded"
        );
        assert!(
            matches!(
                request.request_context_ref(),
                Some(RequestContext::ApiGatewayV2(_))
            ),
            "events/{name}.json should parse as an API Gateway HTTP API request, got {:?}",
            request.request_context_ref()
        );
    }
}

#[test]
fn every_event_matches_its_functions_route_in_the_template() {
    let routes = template_routes();
    for (name, json, request) in parsed_events() {
        let Some(routes) = routes.get(&name) else {
            panic!("events/{name}.json: template.yaml has no HTTP function with binary {name}");
        };
        let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
            panic!("events/{name}.json: not an HTTP API request");
        };
        let raw_path = json["rawPath"].as_str().unwrap_or_default();
        let route_key = json["routeKey"].as_str().unwrap_or_default();

        let route = routes
            .iter()
            .find(|route| route.key() == route_key)
            .unwrap_or_else(|| {
                panic!("events/{name}.json: routeKey {route_key:?} is none of {routes:?}")
            });
        assert_eq!(
            context.route_key.as_deref(),
            Some(route_key),
            "events/{name}.json: requestContext.routeKey"
        );
        assert_eq!(
            request.method().as_str(),
            route.method,
            "events/{name}.json: method"
        );
        assert_eq!(
            context.http.path.as_deref(),
            Some(raw_path),
            "events/{name}.json: requestContext.http.path"
        );
        // What the handler sees: with the `$default` stage no stage prefix is added.
        assert_eq!(request.uri().path(), raw_path, "events/{name}.json: path");
        assert_eq!(
            request.raw_http_path(),
            raw_path,
            "events/{name}.json: raw path"
        );

        let expected = route.match_path(raw_path).unwrap_or_else(|| {
            panic!(
                "events/{name}.json: rawPath {raw_path:?} does not fit {}",
                route.path
            )
        });
        let actual: BTreeMap<String, String> = request
            .path_parameters_ref()
            .map(|params| {
                params
                    .iter()
                    .map(|(key, value)| (key.to_owned(), value.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            actual, expected,
            "events/{name}.json: pathParameters should be the route's parameters taken from rawPath"
        );
    }
}

#[test]
fn every_event_carries_a_well_formed_body_and_token() {
    for (name, json, request) in parsed_events() {
        let header = |header: &str| {
            request
                .headers()
                .get(header)
                .map(|value| value.to_str().expect("header is text"))
        };
        match json["body"].as_str() {
            Some(body) => {
                let parsed: Json = serde_json::from_str(body)
                    .unwrap_or_else(|err| panic!("events/{name}.json: body is not JSON: {err}"));
                assert!(
                    parsed.is_object(),
                    "events/{name}.json: body is a JSON object"
                );
                assert_eq!(
                    request.body().as_ref(),
                    body.as_bytes(),
                    "events/{name}.json: body as the handler reads it"
                );
                assert_eq!(
                    header("content-type"),
                    Some("application/json"),
                    "events/{name}.json: content-type"
                );
                assert_eq!(
                    header("content-length"),
                    Some(body.len().to_string().as_str()),
                    "events/{name}.json: content-length"
                );
            }
            None => assert!(
                request.body().is_empty(),
                "events/{name}.json: no body, so the handler should see none"
            ),
        }
        if let Some(authorization) = header("authorization") {
            let token = authorization.strip_prefix("Bearer ").unwrap_or_default();
            assert!(
                !token.trim().is_empty(),
                "events/{name}.json: authorization should be 'Bearer <token>'"
            );
        }
    }
}

#[test]
fn every_event_gets_past_its_endpoints_input_validation() {
    for (name, json, request) in parsed_events() {
        // Read as `functions::http::body` reads it, then checked as the operation checks it.
        let body = request.body().as_ref();
        let checked = match name.as_str() {
            "create-user" => parse_json::<Signup>(body).and_then(|signup| signup.validate()),
            "login" => parse_json::<Login>(body).map(drop),
            "enter-queue" => parse_json::<EnterQueue>(body).map(drop),
            "charge-balance" => parse_json::<Charge>(body).and_then(|charge| charge.validate()),
            "create-payment" => parse_json::<Pay>(body).map(drop),
            "create-reservation" => {
                parse_json::<NewHold>(body).and_then(|hold| hold.validate().map(drop))
            }
            "create-concert" => {
                parse_json::<NewConcert>(body).and_then(|concert| concert.validate().map(drop))
            }
            "import-performance" => parse_json::<shared::operations::ImportRequest>(body).map(drop),
            "join-waitlist" => {
                parse_json::<shared::waitlist::JoinWaitlist>(body).and_then(|join| join.validate())
            }
            "create-practice-run" => parse_json::<shared::practice::NewRun>(body).and_then(|run| {
                run.difficulty
                    .as_ref()
                    .map_or(Ok(()), |d| d.resolve().map(drop))
            }),
            "answer-practice-captcha" => {
                parse_json::<shared::practice::CaptchaAnswer>(body).and_then(|a| a.validate())
            }
            "record-practice-result" => {
                parse_json::<shared::practice::NewResult>(body).and_then(|r| r.validate())
            }
            _ => {
                assert!(
                    json.get("body").is_none(),
                    "events/{name}.json has a body: say here which type {name} reads it into"
                );
                Ok(())
            }
        };
        if let Err(err) = checked {
            panic!("events/{name}.json: the endpoint would reject the body: {err:?}");
        }
        // An id that is not a UUID names nothing: the endpoint would answer 404 at once.
        for (parameter, value) in request.path_parameters().iter() {
            if parameter.ends_with("_id") {
                assert!(
                    shared::ids::parse_id(value).is_some(),
                    "events/{name}.json: {parameter} {value:?} is not a UUID"
                );
            }
        }
    }
}
