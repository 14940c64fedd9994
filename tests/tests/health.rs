//! `GET /health`, the promise that the gateway serves exactly the template's routes, and the
//! edge-only mode, in which only requests that came through CloudFront are answered.

use e2e_tests::{TestApi, PASSWORD};
use local_stack::template::Template;
use reqwest::Method;
use serde_json::json;
use shared::auth::EdgeSecret;
use shared::config::SecretSource;
use std::collections::BTreeSet;
use std::path::Path;

#[tokio::test]
async fn health_should_answer_ok_once_the_stack_is_up() {
    let api = TestApi::start().await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let body = api.get("/health", None).await.expect(200);
    assert_eq!(body["status"], "ok");
    // The service's clock, which the practice page's countdown follows.
    let now: chrono::DateTime<chrono::Utc> = body["now"].as_str().unwrap().parse().unwrap();
    assert!(now >= before && now <= chrono::Utc::now() + chrono::Duration::seconds(1));
}

#[tokio::test]
async fn the_practice_page_and_its_files_should_be_served_from_the_api_origin() {
    let api = TestApi::start().await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/", api.stack.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/web/app.js"));
    let script = http
        .get(format!("{}/web/app.js", api.stack.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    api.get("/web/no-such-file.js", None)
        .await
        .expect_error(404, "NOT_FOUND");
}

/// Every HTTP function in template.yaml has an endpoint and a binary, and every binary is
/// deployed: a route cannot be served locally yet missing in AWS, or the other way round.
#[test]
fn template_routes_binaries_and_endpoints_should_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let template = Template::load(&root.join("template.yaml")).unwrap();
    let routed: BTreeSet<String> = template
        .routes()
        .unwrap()
        .into_iter()
        .map(|route| route.binary)
        .collect();
    let endpoints: BTreeSet<String> = functions::routes::ENDPOINTS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(routed, endpoints);
    let binaries: BTreeSet<String> = std::fs::read_dir(root.join("functions/src/bin"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        routed.is_subset(&binaries),
        "routes without a binary: {:?}",
        routed.difference(&binaries).collect::<Vec<_>>()
    );
}

/// What CloudFront adds to every request it forwards on an edge-only stack (`EdgeOnly`).
const EDGE_PROOF: &str = "edge-proof-0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn an_edge_only_stack_should_answer_only_requests_that_came_through_the_edge() {
    let api = TestApi::start_with(|config| {
        config.edge_secret = Some(SecretSource::Value(EDGE_PROOF.into()));
    })
    .await;
    let through_edge = |method: Method, path: &str| {
        api.request(method, path)
            .header(EdgeSecret::HEADER, EDGE_PROOF)
    };
    let signup = json!({"username": "edge_fan", "password": PASSWORD, "name": "Edge Fan"});

    // Around the edge (no proof, or a wrong one): refused before anything else is looked at,
    // so a request the contract would answer 400 or 401 is refused all the same.
    api.get("/health", None)
        .await
        .expect_error(403, "FORBIDDEN");
    api.request(Method::GET, "/health")
        .header(EdgeSecret::HEADER, &EDGE_PROOF.replace('e', "E"))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    api.request(Method::POST, "/users")
        .json(signup.clone())
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    api.request(Method::POST, "/users")
        .json(json!({"username": ""}))
        .send()
        .await
        .expect_error(403, "FORBIDDEN");

    // Through the edge: answered as ever; the refused signup wrote nothing, so the name is free.
    through_edge(Method::GET, "/health")
        .send()
        .await
        .expect(200);
    through_edge(Method::POST, "/users")
        .json(signup)
        .send()
        .await
        .expect(201);
    let login = json!({"username": "edge_fan", "password": PASSWORD});
    api.request(Method::POST, "/auth/login")
        .json(login.clone())
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    let token = through_edge(Method::POST, "/auth/login")
        .json(login)
        .send()
        .await
        .expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Queue entry, which at the edge goes to the entry function's own URL: a genuine access
    // token does not make up for the missing proof.
    let entry = json!({"concert_id": uuid::Uuid::now_v7().to_string()});
    api.request(Method::POST, "/queue/tokens")
        .token(&token)
        .json(entry.clone())
        .send()
        .await
        .expect_error(403, "FORBIDDEN");
    through_edge(Method::POST, "/queue/tokens")
        .token(&token)
        .json(entry)
        .send()
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn an_edge_only_stack_should_read_its_proof_from_secrets_manager_at_start() {
    // As in AWS: EDGE_SECRET_ARN names a Secrets Manager secret (the emulator's here).
    let aws = aws_config::load_from_env().await;
    let arn = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("edge-{}", uuid::Uuid::new_v4().simple()))
        .secret_string(EDGE_PROOF)
        .send()
        .await
        .expect("the emulator keeps secrets")
        .arn
        .unwrap();
    let api = TestApi::start_with(|config| {
        config.edge_secret = Some(SecretSource::SecretsManager(arn));
    })
    .await;
    api.get("/health", None)
        .await
        .expect_error(403, "FORBIDDEN");
    api.request(Method::GET, "/health")
        .header(EdgeSecret::HEADER, EDGE_PROOF)
        .send()
        .await
        .expect(200);
}
