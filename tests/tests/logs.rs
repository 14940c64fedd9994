//! What one request writes: its JSON log line (request id, route, status, latency, user id, and
//! nothing secret) and its business metric as CloudWatch Embedded Metric Format. The stack
//! runs in this test's thread, so a log subscriber set here sees its lines.

use e2e_tests::TestApi;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Log output, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

static METRICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn request_lines(logs: &Captured, route: &str) -> Vec<Value> {
    logs.lines()
        .into_iter()
        .filter(|line| line["fields"]["route"] == route)
        .collect()
}

#[tokio::test]
async fn a_request_should_log_one_json_line_and_its_metric_and_never_a_secret() {
    shared::metrics::send_to(|line| METRICS.lock().unwrap().push(line.to_owned()));
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let api = TestApi::start().await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let (token, queue) = api.admitted_user("logged_fan", &concert_id).await;
    let me = api.get("/me", Some(&token)).await.expect(200);
    let user_id = me["user_id"].as_str().unwrap().to_owned();

    api.hold(&token, &queue, &schedule_id, &[7])
        .await
        .expect(201);
    let holds = request_lines(&logs, "POST /reservations");
    assert_eq!(holds.len(), 1, "{holds:?}");
    let line = &holds[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["status"], 201);
    assert_eq!(line["fields"]["user_id"], user_id.as_str());
    assert!(line["fields"]["latency_ms"].as_f64().unwrap() > 0.0);
    let request_id = line["fields"]["request_id"].as_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(request_id).unwrap().to_string(),
        request_id
    );

    // Metric: one HoldsCreated in the Ticketing namespace.
    let metrics: Vec<Value> = METRICS
        .lock()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let created: Vec<&Value> = metrics
        .iter()
        .filter(|metric| {
            metric["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "HoldsCreated"
        })
        .collect();
    assert_eq!(created.len(), 1, "{metrics:?}");
    assert_eq!(created[0]["HoldsCreated"], 1);
    assert_eq!(
        created[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Ticketing"
    );

    // A refused request is logged too, with its status and without a user.
    api.post(
        "/auth/login",
        None,
        json!({"username": "logged_fan", "password": "not-the-password"}),
    )
    .await
    .expect_error(401, "UNAUTHENTICATED");
    let logins = request_lines(&logs, "POST /auth/login");
    assert_eq!(logins.last().unwrap()["fields"]["status"], 401);
    assert_eq!(logins.last().unwrap()["fields"]["user_id"], "");

    // Nothing secret anywhere in the log: tokens, passwords, Idempotency-Key values.
    api.charge(&token, 10_000, Some("idem-key-that-is-secret"))
        .await
        .expect(200);
    let everything = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    for secret in [
        token.as_str(),
        queue.as_str(),
        "idem-key-that-is-secret",
        e2e_tests::PASSWORD,
        "not-the-password",
    ] {
        assert!(!everything.contains(secret), "the log contains {secret}");
    }
}
