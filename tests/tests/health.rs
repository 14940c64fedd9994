//! `GET /health`, and the promise that the gateway serves exactly the template's routes.

use e2e_tests::TestApi;
use local_stack::template::Template;
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
