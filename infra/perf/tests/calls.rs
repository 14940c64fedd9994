//! Every endpoint stays within its budget of DynamoDB round trips (docs/PERFORMANCE.md,
//! "AWS calls per request"), counted by the meter in front of the emulators.
//!
//! One test in this binary: the meter is put in front of the emulators by pointing this
//! process's endpoint variables at it, which must happen before anything else reads them.

use perf::meter::{self, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_should_stay_within_its_round_trip_budget() {
    let meter = meter::interpose().await.expect("the emulators are running");
    let api = e2e_tests::TestApi::start().await;
    let steps = perf::calls::walk(&api, &meter).await;
    let table = perf::calls::table(&steps);

    let step = |name: &str| {
        steps
            .iter()
            .find(|step| step.name == name)
            .unwrap_or_else(|| panic!("no step {name} in\n{table}"))
    };
    for step in &steps {
        assert!(
            step.tally.dynamodb_round_trips() <= step.budget,
            "{} took {} DynamoDB round trips, its budget is {}:\n{table}",
            step.name,
            step.tally.dynamodb_round_trips(),
            step.budget
        );
        if let Some(status) = step.status {
            assert!(status < 500, "{} answered {status}:\n{table}", step.name);
        }
    }
    // The walk did what it says: the happy path succeeded and the refusals were refusals.
    assert_eq!(step("POST /reservations").status, Some(201), "{table}");
    assert_eq!(step("POST /payments").status, Some(201), "{table}");
    assert_eq!(
        step("POST /reservations (seat already held: 409)").status,
        Some(409),
        "{table}"
    );
    assert_eq!(
        step("POST /payments (insufficient balance: 402)").status,
        Some(402),
        "{table}"
    );
    // Reads are one request; a sure loser of a seat race spends no write.
    for read in [
        "GET /me",
        "GET /balance",
        "GET /concerts",
        "GET /queue/tokens/current (waiting)",
    ] {
        assert_eq!(
            step(read).tally.requests(Service::DynamoDb),
            1,
            "{read}:\n{table}"
        );
    }
    let refused = step("POST /reservations (seat already held: 409)");
    assert!(
        refused.tally.writes.is_empty(),
        "a refused hold wrote {:?}",
        refused.tally.writes
    );
    // Queue entry hands the entrant to SQS once, in the concert's message group; a retried
    // payment sends nothing anywhere but the idempotency lookup.
    assert_eq!(
        step("POST /queue/tokens")
            .tally
            .groups
            .values()
            .sum::<u64>(),
        1
    );
    assert_eq!(step("POST /payments").tally.events, 1, "{table}");
    assert_eq!(
        step("POST /payments (retry, same key)")
            .tally
            .requests(Service::DynamoDb),
        1
    );
}
