//! The waiting queue through HTTP: numbering, positions, admission, and enforcement.

use e2e_tests::{id, TestApi};
use futures::future::join_all;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use shared::queue::{PublishedStanding, QueueProgress};
use std::collections::{BTreeSet, HashMap};

async fn schedules(
    api: &TestApi,
    token: &str,
    queue_token: &str,
    concert_id: &str,
) -> e2e_tests::Reply {
    api.request(Method::GET, &format!("/concerts/{concert_id}/schedules"))
        .token(token)
        .queue(queue_token)
        .send()
        .await
}

#[tokio::test]
async fn concurrent_entrants_should_get_a_gap_free_line_and_keep_their_place_on_reentry() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let concert = api.concert_on_sale(&admin, 1).await;
    let concert_id = id(&concert, "concert_id");
    let tokens = api.users("fan", 200).await;

    let places = join_all(tokens.iter().map(|token| api.enter(token, &concert_id))).await;
    let positions: BTreeSet<u64> = places
        .iter()
        .map(|place| place["position"].as_u64().unwrap())
        .collect();
    // Nobody has been admitted: 200 entrants stand at positions 0..199, each exactly once.
    assert_eq!(positions, (0..200).collect());
    assert!(places.iter().all(|place| place["status"] == "WAITING"));

    // Entering again keeps the same token and the same place.
    for (token, place) in tokens.iter().zip(&places).take(20) {
        let again = api
            .request(Method::POST, "/queue/tokens")
            .token(token)
            .json(json!({ "concert_id": concert_id }))
            .send()
            .await
            .expect(200);
        assert_eq!(again["queue_token"], place["queue_token"]);
        assert_eq!(again["position"], place["position"]);
        assert_eq!(again["token_id"], place["token_id"]);
    }
    // Polling shows the same place.
    let polled = api
        .queue_status(&tokens[7], places[7]["queue_token"].as_str().unwrap())
        .await;
    assert_eq!(polled["position"], places[7]["position"]);
    assert_eq!(polled["status"], "WAITING");
    assert!(polled["estimated_wait_seconds"].as_u64().unwrap() > 0);
    assert_eq!(polled["active_until"], Value::Null);
}

#[tokio::test]
async fn positions_should_follow_entry_order() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let tokens = api.users("fan", 5).await;
    for (expected, token) in tokens.iter().enumerate() {
        let place = api.enter(token, &concert_id).await;
        assert_eq!(place["position"], expected as u64);
        assert_eq!(place["concert_id"], concert_id.as_str());
        assert!(place["issued_at"].is_string() && place["expires_at"].is_string());
    }
}

/// Enters `count` users in order; returns (access token, queue token) per user.
async fn line_up(api: &TestApi, concert_id: &str, count: usize) -> Vec<(String, String)> {
    line_up_as(api, "fan", concert_id, count).await
}

async fn line_up_as(
    api: &TestApi,
    prefix: &str,
    concert_id: &str,
    count: usize,
) -> Vec<(String, String)> {
    let tokens = api.users(prefix, count).await;
    let mut line = Vec::new();
    for token in tokens {
        let place = api.enter(&token, concert_id).await;
        line.push((token, id(&place, "queue_token")));
    }
    line
}

async fn statuses(api: &TestApi, line: &[(String, String)]) -> Vec<String> {
    join_all(
        line.iter()
            .map(|(token, queue)| api.queue_status(token, queue)),
    )
    .await
    .into_iter()
    .map(|status| status["status"].as_str().unwrap().to_owned())
    .collect()
}

#[tokio::test]
async fn admission_should_fill_free_slots_in_order_and_never_exceed_the_cap() {
    let api = TestApi::start_with(|config| config.queue_max_active = 10).await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let line = line_up(&api, &concert_id, 25).await;

    let report = api.admit().await;
    assert_eq!(report.admitted, 10);
    let expected: Vec<&str> = (0..25)
        .map(|i| if i < 10 { "ACTIVE" } else { "WAITING" })
        .collect();
    assert_eq!(statuses(&api, &line).await, expected);
    // Those still waiting have moved up: the 11th is next.
    let eleventh = api.queue_status(&line[10].0, &line[10].1).await;
    assert_eq!(eleventh["position"], 0);
    let active = api.queue_status(&line[0].0, &line[0].1).await;
    assert_eq!(active["position"], 0);
    assert!(active["active_until"].is_string());

    // A second step admits nobody: all ten slots are taken.
    assert_eq!(api.admit().await.admitted, 0);
    assert_eq!(statuses(&api, &line).await, expected);

    // The first ten leave; the next ten in order take their slots.
    for (token, queue) in &line[..10] {
        api.request(Method::DELETE, "/queue/tokens/current")
            .token(token)
            .queue(queue)
            .send()
            .await
            .expect(204);
    }
    assert_eq!(api.admit().await.admitted, 10);
    let expected: Vec<&str> = (0..25)
        .map(|i| match i {
            0..=9 => "EXPIRED",
            10..=19 => "ACTIVE",
            _ => "WAITING",
        })
        .collect();
    assert_eq!(statuses(&api, &line).await, expected);
    let concert = shared::ids::parse_id(&concert_id).unwrap();
    assert_eq!(api.stack.services.active_count(concert).await.unwrap(), 10);
}

#[tokio::test]
async fn paced_admission_should_admit_no_more_than_its_pace_a_step_first_come_first_served() {
    // Two a second, a step every 2 s: four a step, though ten slots are free. A full
    // concert's messages are hidden 5 s, but a paced one's only until the next step.
    let api = TestApi::start_with(|config| {
        config.queue_max_active = 10;
        config.queue_admit_per_second = 2;
        config.admit_interval_seconds = 2;
        config.admit_hand_back_seconds = 5;
    })
    .await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let line = line_up(&api, &concert_id, 12).await;
    let expect = |active: usize| -> Vec<&str> {
        (0..12)
            .map(|i| if i < active { "ACTIVE" } else { "WAITING" })
            .collect()
    };

    assert_eq!(api.admit().await.admitted, 4);
    assert_eq!(statuses(&api, &line).await, expect(4));
    // The next step, one interval later, finds the rest in sight.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(api.admit().await.admitted, 4);
    assert_eq!(statuses(&api, &line).await, expect(8));
    // The slots, not the pace, stop the third step.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(api.admit().await.admitted, 2);
    assert_eq!(statuses(&api, &line).await, expect(10));
    let concert = shared::ids::parse_id(&concert_id).unwrap();
    assert_eq!(api.stack.services.active_count(concert).await.unwrap(), 10);
}

#[tokio::test]
async fn expired_active_tokens_should_free_their_slots_for_the_next_in_line() {
    // The service's clock is the test's, moved by hand: on a busy machine a real second can
    // pass between an admission and the look that follows it.
    let api = TestApi::start_with_manual_clock(
        |config| {
            config.queue_max_active = 3;
            config.queue_active_ttl_seconds = 60;
        },
        false,
    )
    .await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let line = line_up(&api, &concert_id, 5).await;
    assert_eq!(api.admit().await.admitted, 3);

    api.clock
        .set(api.clock.now() + chrono::Duration::seconds(61));
    // Expired the moment their time ran out, before any step has run.
    assert_eq!(
        statuses(&api, &line).await,
        ["EXPIRED", "EXPIRED", "EXPIRED", "WAITING", "WAITING"]
    );
    let (token, queue) = &line[0];
    schedules(&api, token, queue, &concert_id)
        .await
        .expect_error(401, "QUEUE_TOKEN_EXPIRED");
    assert_eq!(api.admit().await.admitted, 2);
    assert_eq!(statuses(&api, &line[3..]).await, ["ACTIVE", "ACTIVE"]);
}

#[tokio::test]
async fn people_who_left_should_be_passed_over_and_may_enter_again_at_the_back() {
    let api = TestApi::start_with(|config| config.queue_max_active = 2).await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let line = line_up(&api, &concert_id, 4).await;
    // The first two leave while still waiting.
    for (token, queue) in &line[..2] {
        api.request(Method::DELETE, "/queue/tokens/current")
            .token(token)
            .queue(queue)
            .send()
            .await
            .expect(204);
    }
    let report = api.admit().await;
    assert_eq!((report.admitted, report.passed_over), (2, 2));
    assert_eq!(
        statuses(&api, &line).await,
        ["EXPIRED", "EXPIRED", "ACTIVE", "ACTIVE"]
    );
    // Coming back gives a new token at the back of the line.
    let back = api
        .request(Method::POST, "/queue/tokens")
        .token(&line[0].0)
        .json(json!({ "concert_id": concert_id }))
        .send()
        .await
        .expect(201);
    assert_ne!(back["queue_token"], line[0].1.as_str());
    assert_eq!(back["status"], "WAITING");
    assert_eq!(back["position"], 0);
}

#[tokio::test]
async fn booking_endpoints_should_refuse_waiting_and_improper_queue_tokens() {
    let api = TestApi::start_with(|config| config.queue_max_active = 1).await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 2).await, "concert_id");
    let other_concert = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let (alice, alice_queue) = api.admitted_user("alice", &concert_id).await;

    // Admitted: the schedules, with every seat left.
    let body = schedules(&api, &alice, &alice_queue, &concert_id)
        .await
        .expect(200);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|item| item["available_seats"] == 50 && item["total_seats"] == 50));

    // Waiting: 403 with the position.
    let bob = api.user("bob").await;
    let bob_queue = id(&api.enter(&bob, &concert_id).await, "queue_token");
    api.admit().await;
    let refused = schedules(&api, &bob, &bob_queue, &concert_id)
        .await
        .expect_error(403, "QUEUE_NOT_ADMITTED");
    assert_eq!(refused["error"]["details"]["position"], 0);

    // Another user's token, another concert's token, no token, a forged token.
    schedules(&api, &bob, &alice_queue, &concert_id)
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    schedules(&api, &alice, &alice_queue, &other_concert)
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    api.get(&format!("/concerts/{concert_id}/schedules"), Some(&alice))
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    schedules(&api, &alice, "not-a-token", &concert_id)
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    let claims: Value = decode_claims(&alice_queue);
    let forged = sign(&claims, "a-completely-different-signing-key!!");
    schedules(&api, &alice, &forged, &concert_id)
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    // Genuine but past its expiry.
    let mut stale = claims.clone();
    stale["exp"] = json!(chrono::Utc::now().timestamp() - 10);
    schedules(&api, &alice, &sign(&stale, &api.secret), &concert_id)
        .await
        .expect_error(401, "QUEUE_TOKEN_EXPIRED");
    // An access token is not a queue token, nor the other way round.
    schedules(&api, &alice, &alice, &concert_id)
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    api.get("/me", Some(&alice_queue))
        .await
        .expect_error(401, "UNAUTHENTICATED");

    // Once Alice leaves, her token is expired everywhere.
    api.request(Method::DELETE, "/queue/tokens/current")
        .token(&alice)
        .queue(&alice_queue)
        .send()
        .await
        .expect(204);
    schedules(&api, &alice, &alice_queue, &concert_id)
        .await
        .expect_error(401, "QUEUE_TOKEN_EXPIRED");
    let status = api.queue_status(&alice, &alice_queue).await;
    assert_eq!(status["status"], "EXPIRED");
    // Bob takes the freed slot at the next step.
    api.admit().await;
    schedules(&api, &bob, &bob_queue, &concert_id)
        .await
        .expect(200);
}

#[tokio::test]
async fn entering_should_refuse_bad_input_unknown_and_closed_concerts() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let fan = api.user("fan").await;
    let enter = |body: Value| {
        api.request(Method::POST, "/queue/tokens")
            .token(&fan)
            .json(body)
            .send()
    };
    enter(json!({}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    enter(json!({"concert_id": 5}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    enter(json!({"concert_id": "nope"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    enter(json!({"concert_id": uuid::Uuid::now_v7()}))
        .await
        .expect_error(404, "NOT_FOUND");
    let mut closed = e2e_tests::concert_body(1);
    let now = chrono::Utc::now();
    closed["booking_opens_at"] = json!((now - chrono::Duration::days(2)).to_rfc3339());
    closed["booking_closes_at"] = json!((now - chrono::Duration::days(1)).to_rfc3339());
    let closed = api
        .post("/admin/concerts", Some(&admin), closed)
        .await
        .expect(201);
    enter(json!({"concert_id": closed["concert_id"]}))
        .await
        .expect_error(422, "BOOKING_CLOSED");
    api.post(
        "/queue/tokens",
        None,
        json!({"concert_id": closed["concert_id"]}),
    )
    .await
    .expect_error(401, "UNAUTHENTICATED");
    api.request(Method::GET, "/queue/tokens/current")
        .token(&fan)
        .send()
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
}

#[tokio::test]
async fn the_local_scheduler_should_admit_without_anyone_stepping_it() {
    let api = TestApi::start_with_options(|config| config.admit_interval_seconds = 1, true).await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let fan = api.user("fan").await;
    let queue = id(&api.enter(&fan, &concert_id).await, "queue_token");
    let mut seen = HashMap::new();
    for _ in 0..50 {
        let status = api.queue_status(&fan, &queue).await;
        *seen
            .entry(status["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        if status["status"] == "ACTIVE" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("not admitted within 10 s: {seen:?}");
}

fn decode_claims(token: &str) -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_full_concert_should_not_hold_up_admission_to_another() {
    let api = TestApi::start_with(|config| config.queue_max_active = 2).await;
    let admin = api.admin().await;
    let busy = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let quiet = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let busy_line = line_up(&api, &busy, 6).await;
    let quiet_line = line_up_as(&api, "quiet", &quiet, 2).await;
    let report = api.admit().await;
    assert_eq!(report.admitted, 4, "{report:?}");
    assert_eq!(
        statuses(&api, &busy_line).await,
        ["ACTIVE", "ACTIVE", "WAITING", "WAITING", "WAITING", "WAITING"]
    );
    assert_eq!(statuses(&api, &quiet_line).await, ["ACTIVE", "ACTIVE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cap_should_hold_exactly_while_admitters_leavers_and_payers_race() {
    const CAP: usize = 6;
    const FANS: usize = 30;
    // Over four entry shards, so the admitters also merge shards while they race.
    let api = TestApi::start_with(|config| {
        config.queue_max_active = CAP as u32;
        config.queue_entry_shards = 4;
    })
    .await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let concert = shared::ids::parse_id(&concert_id).unwrap();
    let line = line_up(&api, &concert_id, FANS).await;
    let done = std::sync::atomic::AtomicBool::new(false);

    // Three admitters stepping at once, all the time.
    let admitters = join_all((0..3).map(|_| async {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            api.admit().await;
        }
    }));
    // Every fan waits for their turn, then half of them pay for a seat and half leave: both
    // free the slot for the next in line while the admitters are writing.
    let fans = join_all(line.iter().enumerate().map(|(i, (token, queue))| {
        let api = &api;
        let schedule_id = &schedule_id;
        async move {
            while api.queue_status(token, queue).await["status"] != "ACTIVE" {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            if i % 2 == 0 {
                let hold = api.hold(token, queue, schedule_id, &[i as u32 + 1]).await;
                let reservation = id(&hold.expect(201), "reservation_id");
                api.charge(token, 55_000, None).await.expect(200);
                api.pay(token, queue, &reservation, None).await.expect(201);
            } else {
                api.request(Method::DELETE, "/queue/tokens/current")
                    .token(token)
                    .queue(queue)
                    .send()
                    .await
                    .expect(204);
            }
        }
    }));
    // Meanwhile the active list is counted again and again.
    let samples = async {
        let mut seen = Vec::new();
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            seen.push(api.stack.services.active_count(concert).await.unwrap());
        }
        seen
    };
    let run = async {
        fans.await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let (_, _, seen) = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        tokio::join!(admitters, run, samples)
    })
    .await
    .expect("every fan was admitted in turn within two minutes");

    assert!(seen.len() > 10, "too few samples: {seen:?}");
    assert!(
        seen.iter().all(|&active| active <= CAP),
        "more than {CAP} active at once: {seen:?}"
    );
    // Slots were kept full while people waited: the cap was reached, not just respected.
    assert!(seen.contains(&CAP), "never {CAP} active: {seen:?}");
    // Everyone got their turn, and every slot was given back.
    assert_eq!(api.stack.services.active_count(concert).await.unwrap(), 0);
    let ended = statuses(&api, &line).await;
    assert!(ended.iter().all(|status| status == "EXPIRED"), "{ended:?}");
}

/// 110 fans in line over `shards` entry shards, with 120 free slots.
async fn long_line(shards: u32) -> (TestApi, String, Vec<(String, String)>) {
    let api = TestApi::start_with(|config| {
        config.queue_max_active = 120;
        config.queue_entry_shards = shards;
    })
    .await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let line = line_up(&api, &concert_id, 110).await;
    (api, concert_id, line)
}

/// A step goes on through rounds and writes while slots and entrants remain: 110 in line over
/// `shards` entry shards, 120 free slots, all admitted by one step. (The local emulator hands
/// the admitter ten entrants of a message group at a time; the unit tests of `next_write` cover
/// writes beyond the per-transaction limit.)
async fn one_step_admits_a_long_line(shards: u32) {
    let (api, concert_id, line) = long_line(shards).await;
    let report = api.admit().await;
    assert_eq!(report.admitted, 110, "{report:?}");
    assert!(statuses(&api, &line).await.iter().all(|s| s == "ACTIVE"));
    let concert = shared::ids::parse_id(&concert_id).unwrap();
    assert_eq!(api.stack.services.active_count(concert).await.unwrap(), 110);
}

#[tokio::test]
async fn one_step_should_admit_a_long_line_into_free_slots() {
    one_step_admits_a_long_line(1).await;
}

#[tokio::test]
async fn one_step_should_admit_a_long_line_spread_over_shards() {
    one_step_admits_a_long_line(8).await;
}

#[tokio::test]
async fn a_long_line_over_more_shards_than_one_write_holds_should_be_admitted_whole() {
    // 128 shards: the writes move more shards' progress than one transaction of 100 items
    // could hold. A step may leave part of the line to the next (each round sees only the
    // messages SQS shows it, ten a receive); a few steps admit everyone, once each.
    let (api, concert_id, line) = long_line(128).await;
    let mut admitted = 0;
    for _ in 0..10 {
        let report = api.admit().await;
        assert_eq!(report.passed_over, 0, "{report:?}");
        admitted += report.admitted;
        if admitted >= 110 {
            break;
        }
    }
    assert_eq!(admitted, 110);
    assert!(statuses(&api, &line).await.iter().all(|s| s == "ACTIVE"));
    let concert = shared::ids::parse_id(&concert_id).unwrap();
    assert_eq!(api.stack.services.active_count(concert).await.unwrap(), 110);
}

#[tokio::test]
async fn the_entry_queue_should_be_fifo_in_high_throughput_mode() {
    use aws_sdk_sqs::types::QueueAttributeName;
    let api = TestApi::start().await;
    let url = api.stack.services.config.queue_url.clone().unwrap();
    let sqs = aws_sdk_sqs::Client::new(&aws_config::load_from_env().await);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("the queue exists")
        .attributes
        .unwrap_or_default();
    // Created from template.yaml's definition: the per-queue limit becomes per message group.
    assert_eq!(attributes[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(
        attributes[&QueueAttributeName::FifoThroughputLimit],
        "perMessageGroupId"
    );
    assert_eq!(
        attributes[&QueueAttributeName::DeduplicationScope],
        "messageGroup"
    );
}

/// The progress document, as a waiting client reads it (no credentials).
async fn progress(api: &TestApi, concert_id: &str) -> QueueProgress {
    let reply = api
        .get(&format!("/queue/progress/{concert_id}"), None)
        .await;
    assert_eq!(
        reply.headers["cache-control"], "public, max-age=1",
        "the edge may keep it a second"
    );
    serde_json::from_value(reply.expect(200)).unwrap()
}

/// Where the holder of `queue_token` stands by the progress document: the place from the
/// token's own payload, nothing asked of the API.
fn standing_of(progress: &QueueProgress, queue_token: &str) -> PublishedStanding {
    let claims = decode_claims(queue_token);
    let shard = claims["shd"].as_u64().unwrap_or(0) as u32;
    let number = claims["num"].as_u64().unwrap();
    progress
        .standing(shard, number, chrono::Utc::now())
        .expect("a numbered place of one of the line's shards")
}

#[tokio::test]
async fn a_waiting_fan_should_follow_the_line_to_admission_from_the_progress_document_alone() {
    let api = TestApi::start_with(|config| config.queue_max_active = 2).await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let line = line_up(&api, &concert_id, 5).await;
    api.admit().await;
    let (last_fan, last_queue) = &line[4];
    // From here until admission reaches them, the last fan asks nothing of the API: their
    // position comes from the public document and their own token.
    let waiting = |position: u64, progress: &QueueProgress| match standing_of(progress, last_queue)
    {
        PublishedStanding::Waiting {
            position: shown, ..
        } => assert_eq!(shown, position),
        other => panic!("expected to wait at {position}, got {other:?}"),
    };
    waiting(2, &progress(&api, &concert_id).await);
    // Fans 0 and 1 finish; 2 and 3 are admitted: the last fan is next.
    for (token, queue) in &line[..2] {
        api.request(Method::DELETE, "/queue/tokens/current")
            .token(token)
            .queue(queue)
            .send()
            .await
            .expect(204);
    }
    api.admit().await;
    waiting(0, &progress(&api, &concert_id).await);
    for (token, queue) in &line[2..4] {
        api.request(Method::DELETE, "/queue/tokens/current")
            .token(token)
            .queue(queue)
            .send()
            .await
            .expect(204);
    }
    api.admit().await;
    // Admission reached the place: now, and only now, the fan asks the API, which says ACTIVE.
    assert_eq!(
        standing_of(&progress(&api, &concert_id).await, last_queue),
        PublishedStanding::Reached
    );
    assert_eq!(
        api.queue_status(last_fan, last_queue).await["status"],
        "ACTIVE"
    );
}

#[tokio::test]
async fn the_progress_document_should_place_every_waiting_fan_where_the_api_does() {
    let api = TestApi::start_with(|config| {
        config.queue_max_active = 5;
        config.queue_entry_shards = 3;
    })
    .await;
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let line = line_up(&api, &concert_id, 16).await;
    api.admit().await;
    let document = progress(&api, &concert_id).await;
    assert_eq!(document.entry_shards, 3);
    let mut waiting = 0;
    for (token, queue) in &line {
        let status = api.queue_status(token, queue).await;
        match standing_of(&document, queue) {
            PublishedStanding::Waiting {
                position,
                estimated_wait_seconds,
            } => {
                waiting += 1;
                assert_eq!(status["status"], "WAITING");
                assert_eq!(status["position"], position, "{status}");
                // Computed a moment apart: the pace may round a second differently.
                let api_wait = status["estimated_wait_seconds"].as_u64().unwrap();
                assert!(api_wait.abs_diff(estimated_wait_seconds) <= 1, "{status}");
            }
            PublishedStanding::Reached => assert_eq!(status["status"], "ACTIVE"),
        }
    }
    assert_eq!(waiting, 11);
    // Not a concert, or no concert at all: the contract's 404.
    api.get("/queue/progress/not-a-uuid", None)
        .await
        .expect_error(404, "NOT_FOUND");
    api.get(&format!("/queue/progress/{}", uuid::Uuid::now_v7()), None)
        .await
        .expect_error(404, "NOT_FOUND");
}
