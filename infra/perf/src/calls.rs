//! AWS calls per request: every endpoint (and each scheduled job's step) exercised once, in the
//! order a fan meets them, with the meter counting what each one sends to DynamoDB, SQS and
//! EventBridge.
//!
//! The design's budget (../docs/ARCHITECTURE.md, "Operations and their requests") is one
//! DynamoDB round trip per endpoint where one request can do the work. Requests a handler sends
//! together count as one round trip. Where an endpoint needs more, [`Step::why`] says why; the
//! test in `tests/calls.rs` holds every endpoint to its budget.

use crate::meter::{Meter, Service, Tally};
use e2e_tests::{concert_body, id, Reply, TestApi};
use reqwest::Method;
use serde_json::{json, Value};
use std::future::Future;

/// One measured request or job step.
pub struct Step {
    pub name: &'static str,
    /// The HTTP status, or `None` for a scheduled job's step.
    pub status: Option<u16>,
    pub tally: Tally,
    /// The most DynamoDB round trips this step may take, by design.
    pub budget: usize,
    /// Why the step needs more than one round trip (or any other service), if it does.
    pub why: &'static str,
}

struct Walk<'a> {
    meter: &'a Meter,
    steps: Vec<Step>,
}

impl Walk<'_> {
    /// Runs `request` with the meter zeroed first, records what it sent, returns its body.
    async fn request(
        &mut self,
        name: &'static str,
        budget: usize,
        why: &'static str,
        request: impl Future<Output = Reply>,
    ) -> Value {
        self.meter.take();
        let reply = request.await;
        self.steps.push(Step {
            name,
            status: Some(reply.status.as_u16()),
            tally: self.meter.take(),
            budget,
            why,
        });
        reply.body
    }

    async fn job(
        &mut self,
        name: &'static str,
        budget: usize,
        why: &'static str,
        job: impl Future<Output = ()>,
    ) {
        self.meter.take();
        job.await;
        self.steps.push(Step {
            name,
            status: None,
            tally: self.meter.take(),
            budget,
            why,
        });
    }
}

const ONE: &str = "";

/// Walks every endpoint once against `api`, whose AWS clients go through `meter`.
pub async fn walk(api: &TestApi, meter: &Meter) -> Vec<Step> {
    let mut walk = Walk {
        meter,
        steps: Vec::new(),
    };
    let password = e2e_tests::PASSWORD;
    walk.request("GET /health", 0, "no AWS call", api.get("/health", None))
        .await;
    let signup = json!({"username": e2e_tests::ADMIN, "password": password, "name": "Admin"});
    walk.request("POST /users", 1, ONE, api.post("/users", None, signup))
        .await;
    let login = json!({"username": e2e_tests::ADMIN, "password": password});
    let admin = walk
        .request(
            "POST /auth/login",
            1,
            ONE,
            api.post("/auth/login", None, login),
        )
        .await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    walk.request("GET /me", 1, ONE, api.get("/me", Some(&admin)))
        .await;
    let concert = walk
        .request(
            "POST /admin/concerts",
            3,
            "the request's claim with the whole draft first (the same request made again finds \
             it and gives the same concert, finished if the first stopped midway); the date and \
             its 50 seats in BatchWriteItem calls of 25 items, sent together; then the concert \
             item, last, so a failure midway leaves nothing reachable",
            api.post("/admin/concerts", Some(&admin), concert_body(1)),
        )
        .await;
    let concert_id = id(&concert, "concert_id");
    let schedule_id = id(&concert["schedules"][0], "schedule_id");
    walk.request("GET /concerts", 1, ONE, api.get("/concerts", None))
        .await;
    walk.request(
        "GET /concerts/{id}",
        1,
        ONE,
        api.get(&format!("/concerts/{concert_id}"), None),
    )
    .await;

    let fan = api.user("fan").await;
    let enter = || {
        api.request(Method::POST, "/queue/tokens")
            .token(&fan)
            .json(json!({ "concert_id": concert_id }))
            .send()
    };
    let queue_token = id(
        &walk
            .request(
                "POST /queue/tokens",
                3,
                "the number must come from the shard's counter before the token that carries it is \
                 written, and a transaction cannot return a counter's new value; then the \
                 entrant goes to SQS for the admitter",
                enter(),
            )
            .await,
        "queue_token",
    );
    walk.request(
        "POST /queue/tokens (again, while waiting)",
        1,
        "the live token is found by the first read; its message is sent again in case the \
         first send was lost",
        enter(),
    )
    .await;
    let with_queue =
        |method: Method, path: String| api.request(method, &path).token(&fan).queue(&queue_token);
    walk.request(
        "GET /queue/tokens/current (waiting)",
        1,
        ONE,
        with_queue(Method::GET, "/queue/tokens/current".into()).send(),
    )
    .await;
    walk.request(
        "GET /queue/progress/{id}",
        1,
        "every entry shard's progress in one eventually consistent read (the concert from the \
         process cache); cached a second at the edge, so this is per concert per second, not \
         per waiting fan",
        api.get(&format!("/queue/progress/{concert_id}"), None),
    )
    .await;
    walk.job(
        "admitter step (one entrant)",
        4,
        "once a step, the lists of pre-queues to drain and of concerts with stashed places, \
         together; then the admission item with the shards' progress, counters and stashes, \
         then the active list (in that order, so that a list another admitter changed \
         meanwhile fails the write's version condition), then one transaction activates the \
         token, adds the shopper to the list and moves the shard's progress; SQS receive and \
         delete around it",
        async {
            api.admit().await;
        },
    )
    .await;
    walk.request(
        "GET /queue/tokens/current (active)",
        1,
        ONE,
        with_queue(Method::GET, "/queue/tokens/current".into()).send(),
    )
    .await;
    walk.request(
        "GET /concerts/{id}/schedules",
        2,
        "the dates come from the first round trip; each date's seats left is a COUNT query, \
         all dates together",
        with_queue(Method::GET, format!("/concerts/{concert_id}/schedules")).send(),
    )
    .await;
    walk.request(
        "GET /schedules/{id}/seats",
        1,
        ONE,
        with_queue(Method::GET, format!("/schedules/{schedule_id}/seats")).send(),
    )
    .await;
    let hold = |seats: &[u32]| {
        with_queue(Method::POST, "/reservations".into())
            .json(json!({ "schedule_id": schedule_id, "seat_nos": seats }))
            .send()
    };
    let first = id(
        &walk
            .request(
                "POST /reservations",
                2,
                "a consistent read of seats, token and concert turns sure losers away before \
                 they spend a (billed) failed write; then one transaction",
                hold(&[1, 2]),
            )
            .await,
        "reservation_id",
    );
    walk.request(
        "POST /reservations (seat already held: 409)",
        1,
        "refused by the read, no write",
        hold(&[2, 3]),
    )
    .await;
    walk.request(
        "GET /reservations/{id}",
        1,
        ONE,
        api.get(&format!("/reservations/{first}"), Some(&fan)),
    )
    .await;
    walk.request(
        "DELETE /reservations/{id}",
        2,
        "reads the reservation for its seats, then one transaction releases them",
        api.request(Method::DELETE, &format!("/reservations/{first}"))
            .token(&fan)
            .send(),
    )
    .await;
    let reservation = id(
        &walk
            .request(
                "POST /reservations (after the release)",
                2,
                "as above",
                hold(&[1, 2]),
            )
            .await,
        "reservation_id",
    );
    let charge = || api.charge(&fan, 200_000, Some("calls-charge"));
    walk.request(
        "POST /balance/charge",
        2,
        "account and idempotency record read together, then one transaction (balance, ledger \
         entry, idempotency record)",
        charge(),
    )
    .await;
    walk.request(
        "POST /balance/charge (retry, same key)",
        1,
        "answered from the idempotency record",
        charge(),
    )
    .await;
    walk.request("GET /balance", 1, ONE, api.get("/balance", Some(&fan)))
        .await;
    let pay = || api.pay(&fan, &queue_token, &reservation, Some("calls-pay"));
    walk.request(
        "POST /payments",
        2,
        "reservation, account, token, shard progress and idempotency record in one read, then one \
         transaction of up to 12 items",
        pay(),
    )
    .await;
    walk.request(
        "POST /payments (retry, same key)",
        1,
        "answered from the idempotency record",
        pay(),
    )
    .await;
    walk.request(
        "GET /balance/transactions",
        1,
        ONE,
        api.get("/balance/transactions", Some(&fan)),
    )
    .await;
    walk.request(
        "GET /me/reservations",
        1,
        ONE,
        api.get("/me/reservations", Some(&fan)),
    )
    .await;
    walk.request(
        "POST /reservations/{id}/cancel",
        2,
        "reservation and account read together, then one transaction (seats, refund, ledger, \
         sales counters)",
        api.post(
            &format!("/reservations/{reservation}/cancel"),
            Some(&fan),
            json!({}),
        ),
    )
    .await;
    walk.request(
        "GET /admin/concerts/{id}/sales",
        2,
        "the concert's dates and its 16 sales shards together, then a COUNT of live holds per \
         date, all dates together",
        api.get(&format!("/admin/concerts/{concert_id}/sales"), Some(&admin)),
    )
    .await;

    // A second fan: a payment declined for want of balance, then leaving the line.
    let (broke, broke_queue) = api.admitted_user("broke_fan", &concert_id).await;
    let held = api.hold(&broke, &broke_queue, &schedule_id, &[10]).await;
    let held = id(&held.body, "reservation_id");
    walk.request(
        "POST /payments (insufficient balance: 402)",
        3,
        "as a payment, whose read shows the balance short; one transaction releases the hold \
         and records the 402 under the idempotency key; then, as after every failed attempt, \
         the idempotency record is read again in case a concurrent retry succeeded",
        api.pay(&broke, &broke_queue, &held, Some("calls-broke")),
    )
    .await;
    walk.request(
        "DELETE /queue/tokens/current",
        1,
        ONE,
        api.request(Method::DELETE, "/queue/tokens/current")
            .token(&broke)
            .queue(&broke_queue)
            .send(),
    )
    .await;
    walk.job(
        "hold-sweeper step (nothing expired)",
        1,
        "one range query per index shard, all together",
        async {
            api.stack
                .services
                .sweep_expired_holds()
                .await
                .expect("the sweep runs");
        },
    )
    .await;
    walk.steps
}

/// The table of [`walk`]'s steps, in markdown.
pub fn table(steps: &[Step]) -> String {
    let mut out = String::from(
        "| request | answer | DynamoDB round trips | DynamoDB requests | SQS | EventBridge | why more than one round trip |\n\
         |---|---|---:|---|---|---:|---|\n",
    );
    for step in steps {
        let ops = |service| {
            let ops = step.tally.operations(service);
            if ops.is_empty() {
                return "–".to_owned();
            }
            // `Query ×32` rather than 32 times `Query`.
            let mut runs: Vec<(String, usize)> = Vec::new();
            for op in ops {
                match runs.last_mut() {
                    Some((last, n)) if *last == op => *n += 1,
                    _ => runs.push((op, 1)),
                }
            }
            runs.into_iter()
                .map(|(op, n)| {
                    if n > 3 {
                        format!("{op} ×{n}")
                    } else {
                        vec![op; n].join(", ")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let status = step
            .status
            .map_or("(job)".to_owned(), |status| status.to_string());
        out.push_str(&format!(
            "| `{}` | {status} | {} | {} | {} | {} | {} |\n",
            step.name,
            step.tally.dynamodb_round_trips(),
            ops(Service::DynamoDb),
            ops(Service::Sqs),
            step.tally.events,
            step.why,
        ));
    }
    out
}
