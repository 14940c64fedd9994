//! `GET /health`, and the promise that the gateway serves exactly the template's routes.

use e2e_tests::TestApi;
use local_stack::template::Template;
use std::collections::BTreeSet;
use std::path::Path;

#[tokio::test]
async fn health_should_answer_ok_once_the_stack_is_up() {
    let api = TestApi::start().await;
    let body = api.get("/health", None).await.expect(200);
    assert_eq!(body, serde_json::json!({"status": "ok"}));
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
