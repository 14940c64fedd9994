//! Practice runs through HTTP, on a clock the test moves: a run's crowd is the same for every
//! fan in it and for every run of the same seed; the line ahead of a fan is the crowd's and
//! falls at the run's pace; the crowd's seats vanish from the map, are refused to a hold and
//! come back when their holds run out; the security letters stand before the seats; the
//! result sets the fan against the crowd.

use chrono::Duration;
use e2e_tests::{id, TestApi};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A practice run of a fresh concert: (run body, schedule id).
async fn run(api: &TestApi, fan: &str, body: Value) -> (Value, String) {
    let created = api
        .post("/practice/runs", Some(fan), body)
        .await
        .expect(201);
    let schedule_id = id(&created["schedules"][0], "schedule_id");
    (created, schedule_id)
}

/// A concert to practise (created by the admin, who signs up once per stack).
async fn source_concert(api: &TestApi) -> String {
    let admin = api.admin().await;
    id(&api.concert_on_sale(&admin, 1).await, "concert_id")
}

/// Moves the test's clock to `ms` after the run's opening.
fn at(api: &TestApi, run: &Value, ms: i64) {
    let opens: chrono::DateTime<chrono::Utc> =
        run["booking_opens_at"].as_str().unwrap().parse().unwrap();
    api.clock.set(opens + Duration::milliseconds(ms));
}

/// The seats of one zone a fan sees: (held seat numbers, available seat numbers).
async fn zone_seats(
    api: &TestApi,
    fan: &str,
    queue: &str,
    schedule_id: &str,
    zone: u32,
) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let map = api
        .request(
            Method::GET,
            &format!("/schedules/{schedule_id}/seats?zone={zone}"),
        )
        .token(fan)
        .queue(queue)
        .send()
        .await
        .expect(200);
    let mut held = BTreeSet::new();
    let mut free = BTreeSet::new();
    for seat in map["items"].as_array().unwrap() {
        let no = seat["seat_no"].as_u64().unwrap();
        match seat["status"].as_str().unwrap() {
            "AVAILABLE" => free.insert(no),
            _ => held.insert(no),
        };
    }
    (held, free)
}

/// A fan's place in line now.
async fn standing(api: &TestApi, fan: &str, queue: &str) -> Value {
    api.queue_status(fan, queue).await
}

#[tokio::test]
async fn a_practice_line_should_stand_the_fan_behind_the_crowd_and_move_at_its_pace() {
    let api = TestApi::start_with_manual_clock(|_| {}, false).await;
    let concert_id = source_concert(&api).await;
    let first = api.user("early_fan").await;
    let second = api.user("late_fan").await;
    let body = json!({
        "concert_id": concert_id, "difficulty": "hard", "venue": "hall",
        "countdown_seconds": 30, "seed": 7,
    });
    let (run, _) = run(&api, &first, body).await;
    let run_id = id(&run, "run_id");
    assert_eq!(run["schedules"][0]["total_seats"], 5_000);
    // A run is not in the catalog, and is open to whoever has its link.
    let listed = api.get("/concerts?limit=100", None).await.expect(200);
    assert!(!listed.to_string().contains(&run_id));
    let shown = api
        .get(&format!("/practice/runs/{run_id}"), None)
        .await
        .expect(200);
    assert_eq!(shown["crowd"]["in_line"], 0);

    // Before the opening, the line is closed to the crowd and to fans alike.
    at(&api, &run, -2_000);
    api.post(
        "/queue/tokens",
        Some(&first),
        json!({ "concert_id": run_id }),
    )
    .await
    .expect_error(422, "BOOKING_CLOSED");

    // 0.8 s after the opening thousands of the 30,000 were faster; the second fan, at 1.5 s,
    // stands behind them, more of the crowd, and the first fan.
    at(&api, &run, 800);
    let place = api.enter(&first, &run_id).await;
    let first_queue = id(&place, "queue_token");
    let first_ahead = place["position"].as_u64().unwrap();
    assert!((1_000..30_000).contains(&first_ahead), "at +0.8 s: {place}");
    at(&api, &run, 1_500);
    let place = api.enter(&second, &run_id).await;
    let second_queue = id(&place, "queue_token");
    let second_ahead = place["position"].as_u64().unwrap();
    assert!(
        second_ahead > first_ahead,
        "{second_ahead} <= {first_ahead}"
    );

    // The count ahead falls at the run's pace (600 a second at this difficulty, from the opening:
    // 600 × 10.7 s since the fan entered), and the wait shown is the time the rest takes.
    at(&api, &run, 11_500);
    let later = standing(&api, &first, &first_queue).await;
    assert_eq!(later["status"], "WAITING");
    let fell = first_ahead - later["position"].as_u64().unwrap();
    assert_eq!(fell, 6_420, "fell in 10.7 s");
    let wait = later["estimated_wait_seconds"].as_u64().unwrap();
    let shown = api
        .get(&format!("/practice/runs/{run_id}"), None)
        .await
        .expect(200);
    assert!(shown["crowd"]["admitted"].as_u64().unwrap() > 5_000);

    // The fan is admitted when the crowd ahead has gone through, not before.
    let due = 11_500 + wait as i64 * 1_000;
    at(&api, &run, due - 3_000);
    assert_eq!(
        standing(&api, &first, &first_queue).await["status"],
        "WAITING"
    );
    at(&api, &run, due + 1_000);
    assert_eq!(
        standing(&api, &first, &first_queue).await["status"],
        "ACTIVE"
    );
    let second_now = standing(&api, &second, &second_queue).await;
    assert_eq!(second_now["status"], "WAITING", "{second_now}");
}

#[tokio::test]
async fn fans_of_one_run_and_runs_of_one_seed_should_meet_the_same_crowd() {
    let api = TestApi::start_with_manual_clock(|_| {}, false).await;
    let concert_id = source_concert(&api).await;
    let fans = [
        api.user("same_one").await,
        api.user("same_two").await,
        api.user("same_three").await,
    ];
    let body = json!({
        "concert_id": concert_id, "difficulty": {"rivals": 10_000, "reaction": "fast",
        "focus_percent": 70}, "venue": "hall", "countdown_seconds": 10, "seed": 99,
    });
    let (run_a, schedule_a) = run(&api, &fans[0], body.clone()).await;
    let (run_b, schedule_b) = run(&api, &fans[2], body).await;
    let run_a_id = id(&run_a, "run_id");
    let run_b_id = id(&run_b, "run_id");

    // Two fans in run A and one in run B (opening at the same moment), admitted well after
    // the crowd started taking seats.
    at(&api, &run_a, 0);
    at(&api, &run_b, 0);
    let q0 = id(&api.enter(&fans[0], &run_a_id).await, "queue_token");
    let q1 = id(&api.enter(&fans[1], &run_a_id).await, "queue_token");
    let q2 = id(&api.enter(&fans[2], &run_b_id).await, "queue_token");
    at(&api, &run_a, 45_000);
    for (fan, queue) in [(&fans[0], &q0), (&fans[1], &q1), (&fans[2], &q2)] {
        assert_eq!(standing(&api, fan, queue).await["status"], "ACTIVE");
    }
    // A zone the crowd is emptying now (the best go first).
    let mut zone = None;
    for candidate in 0..10 {
        let (gone, free) = zone_seats(&api, &fans[0], &q0, &schedule_a, candidate).await;
        if !gone.is_empty() && !free.is_empty() {
            zone = Some((candidate, gone, free));
            break;
        }
    }
    let (zone, gone_a0, free_a0) = zone.expect("a zone the crowd is taking at +45 s");
    let (gone_a1, _) = zone_seats(&api, &fans[1], &q1, &schedule_a, zone).await;
    let (gone_b, _) = zone_seats(&api, &fans[2], &q2, &schedule_b, zone).await;
    assert_eq!(
        gone_a0, gone_a1,
        "two fans of one run see the same seats gone"
    );
    assert_eq!(gone_a0, gone_b, "one seed plays one crowd");

    // The zone overview counts the same.
    let zones = api
        .request(Method::GET, &format!("/schedules/{schedule_a}/zones"))
        .token(&fans[0])
        .queue(&q0)
        .send()
        .await
        .expect(200);
    assert_eq!(zones["items"].as_array().unwrap().len(), 10);
    assert_eq!(
        zones["items"][zone as usize]["available_seats"]
            .as_u64()
            .unwrap(),
        free_a0.len() as u64
    );

    // A seat the crowd holds is refused as any taken seat is; a free one is held.
    let rival_seat = *gone_a0.iter().next().unwrap();
    let refused = api
        .hold(&fans[0], &q0, &schedule_a, &[rival_seat as u32])
        .await;
    refused.expect_error(409, "SEAT_UNAVAILABLE");
    // The crowd never takes a seat a real fan claimed first. Run B (the same crowd, no real
    // fan) shows which of the seats free now the crowd takes by +120 s; one of them, held in
    // run A now and given back at once, stays free there at +120 s while run B shows it taken.
    at(&api, &run_a, 120_000);
    let (taken_later_b, _) = zone_seats(&api, &fans[2], &q2, &schedule_b, zone).await;
    at(&api, &run_a, 45_000);
    let claimed = *free_a0
        .intersection(&taken_later_b)
        .next()
        .expect("a seat free at +45 s that the crowd takes by +120 s") as u32;
    let hold = api
        .hold(&fans[0], &q0, &schedule_a, &[claimed])
        .await
        .expect(201);
    api.request(
        Method::DELETE,
        &format!("/reservations/{}", id(&hold, "reservation_id")),
    )
    .token(&fans[0])
    .send()
    .await
    .expect(204);
    at(&api, &run_a, 120_000);
    let (_, free_later_a) = zone_seats(&api, &fans[1], &q1, &schedule_a, zone).await;
    assert!(
        free_later_a.contains(&u64::from(claimed)),
        "seat {claimed}, claimed first by a fan, was taken by the crowd"
    );
    let (taken_again_b, _) = zone_seats(&api, &fans[2], &q2, &schedule_b, zone).await;
    assert!(taken_again_b.contains(&u64::from(claimed)));
}

#[tokio::test]
async fn seats_the_crowd_held_unpaid_should_come_back_after_the_hold_time() {
    let api = TestApi::start_with_manual_clock(|config| config.hold_ttl_seconds = 120, false).await;
    let concert_id = source_concert(&api).await;
    let fan = api.user("late_picker").await;
    let body = json!({
        "concert_id": concert_id, "difficulty": "normal", "venue": "theatre",
        "countdown_seconds": 10, "seed": 3,
    });
    let (run, schedule_id) = run(&api, &fan, body).await;
    let run_id = id(&run, "run_id");
    at(&api, &run, 100);
    let queue = id(&api.enter(&fan, &run_id).await, "queue_token");
    at(&api, &run, 60_000);
    assert_eq!(standing(&api, &fan, &queue).await["status"], "ACTIVE");
    let mut gone_at_peak = BTreeSet::new();
    for zone in 0..2 {
        gone_at_peak.extend(zone_seats(&api, &fan, &queue, &schedule_id, zone).await.0);
    }
    // Past the hold time, a share of the crowd's holds ran out unpaid: those seats are free
    // again (and the crowd does not take them back).
    at(&api, &run, 60_000 + 125_000);
    let mut back = BTreeSet::new();
    for zone in 0..2 {
        back.extend(zone_seats(&api, &fan, &queue, &schedule_id, zone).await.1);
    }
    let returned: Vec<_> = gone_at_peak.intersection(&back).copied().collect();
    assert!(
        !returned.is_empty(),
        "no seat of the {} gone came back",
        gone_at_peak.len()
    );
    api.hold(&fan, &queue, &schedule_id, &[returned[0] as u32])
        .await
        .expect(201);
}

#[tokio::test]
async fn the_security_letters_should_stand_before_the_seats_and_the_result_against_the_crowd() {
    let api = TestApi::start_with_manual_clock(|_| {}, false).await;
    let key = shared::practice::captcha::key(api.secret.as_bytes());
    let concert_id = source_concert(&api).await;
    let fan = api.user("letters_fan").await;
    let other = api.user("letters_other").await;
    let body = json!({
        "concert_id": concert_id, "difficulty": "easy", "venue": "theatre",
        "countdown_seconds": 10, "seed": 11, "site": "interpark",
    });
    let (run, schedule_id) = run(&api, &fan, body).await;
    let run_id = id(&run, "run_id");
    assert_eq!(run["template_code"], "interpark");
    at(&api, &run, 2_000);
    let queue = id(&api.enter(&fan, &run_id).await, "queue_token");
    let other_queue = id(&api.enter(&other, &run_id).await, "queue_token");
    at(&api, &run, 20_000);
    assert_eq!(standing(&api, &fan, &queue).await["status"], "ACTIVE");

    // No seats before the letters.
    api.request(
        Method::GET,
        &format!("/schedules/{schedule_id}/seats?zone=0"),
    )
    .token(&fan)
    .queue(&queue)
    .send()
    .await
    .expect_error(403, "FORBIDDEN");
    let ask = |token: &str, queue: &str| {
        api.request(Method::POST, &format!("/practice/runs/{run_id}/captcha"))
            .token(token)
            .queue(queue)
            .send()
    };
    let picture = ask(&fan, &queue).await.expect(201);
    assert!(picture["image_svg"].as_str().unwrap().starts_with("<svg"));
    let captcha_id = id(&picture, "captcha_id");
    let answer = |captcha_id: &str, typed: &str, token: &str, queue: &str| {
        api.request(
            Method::POST,
            &format!("/practice/runs/{run_id}/captcha/answer"),
        )
        .token(token)
        .queue(queue)
        .json(json!({ "captcha_id": captcha_id, "answer": typed }))
        .send()
    };
    // A wrong answer is refused, with a new picture.
    let refused = answer(&captcha_id, "WRONGX", &fan, &queue)
        .await
        .expect_error(400, "VALIDATION_FAILED");
    let new_id = refused["error"]["details"]["captcha"]["captcha_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_id, captcha_id);
    // Another fan's picture is not this fan's.
    let others = id(&ask(&other, &other_queue).await.expect(201), "captcha_id");
    let typed = shared::practice::captcha::answer(&key, &others);
    answer(&others, &typed, &fan, &queue)
        .await
        .expect_error(400, "VALIDATION_FAILED");
    // The right letters (in lower case, as fans type them) open the seats.
    let typed = shared::practice::captcha::answer(&key, &new_id).to_lowercase();
    answer(&new_id, &typed, &fan, &queue).await.expect(200);
    let mut free = BTreeSet::new();
    for zone in 0..2 {
        free.extend(zone_seats(&api, &fan, &queue, &schedule_id, zone).await.1);
    }
    let seats: Vec<u32> = free.iter().take(2).map(|&no| no as u32).collect();
    let hold = api
        .hold(&fan, &queue, &schedule_id, &seats)
        .await
        .expect(201);
    let reservation_id = id(&hold, "reservation_id");
    let amount = hold["amount"].as_i64().unwrap();
    api.charge(&fan, amount, None).await.expect(200);
    api.pay(&fan, &queue, &reservation_id, None)
        .await
        .expect(201);

    // The result: where the fan stood against the crowd, the seats and their grade.
    let steps = json!([
        {"step": "queue", "ms": 28_000}, {"step": "captcha", "ms": 4_200},
        {"step": "seats", "ms": 6_100}, {"step": "payment", "ms": 9_000},
    ]);
    let result = api
        .post(
            &format!("/practice/runs/{run_id}/results"),
            Some(&fan),
            json!({ "steps": steps, "reservation_id": reservation_id }),
        )
        .await
        .expect(201);
    assert_eq!(result["entered_ms"], 2_000);
    let faster = result["faster_than_percent"].as_f64().unwrap();
    assert!((1.0..99.0).contains(&faster), "{result}");
    assert_eq!(result["seats"].as_array().unwrap().len(), 2);
    assert!(result["grade"].is_string());
    assert_eq!(result["total_ms"], 47_300);
    assert!(result["seats_gone_percent"].as_f64().unwrap() >= 0.0);
    let history = api.get("/me/practice", Some(&fan)).await.expect(200);
    assert_eq!(history["items"][0]["run_id"], run_id);
    assert_eq!(history["best"]["interpark"]["run_id"], run_id);
    // Another fan's history is theirs alone.
    let others = api.get("/me/practice", Some(&other)).await.expect(200);
    assert_eq!(others["items"], json!([]));
}

#[tokio::test]
async fn a_run_should_refuse_bad_settings_with_a_clear_error() {
    let api = TestApi::start_with_manual_clock(|_| {}, false).await;
    let concert_id = source_concert(&api).await;
    let fan = api.user("bad_settings").await;
    for (body, field) in [
        (json!({ "concert_id": "nope" }), "concert_id"),
        (
            json!({ "concert_id": concert_id, "difficulty": "impossible" }),
            "difficulty",
        ),
        (
            json!({ "concert_id": concert_id, "difficulty": {"rivals": 5, "reaction": "fast", "focus_percent": 50} }),
            "difficulty.rivals",
        ),
        (
            json!({ "concert_id": concert_id, "venue": "moon" }),
            "venue",
        ),
        (json!({ "concert_id": concert_id, "site": "ebay" }), "site"),
        (
            json!({ "concert_id": concert_id, "countdown_seconds": 1 }),
            "countdown_seconds",
        ),
        (
            json!({ "concert_id": concert_id, "start": "later" }),
            "start",
        ),
        (
            json!({ "concert_id": concert_id, "seed": 1u64 << 60 }),
            "seed",
        ),
    ] {
        let error = api
            .post("/practice/runs", Some(&fan), body.clone())
            .await
            .expect_error(400, "VALIDATION_FAILED");
        assert_eq!(error["error"]["details"]["field"], field, "{body}: {error}");
    }
    // The concert's opening is behind it: a run at its opening cannot be.
    api.post(
        "/practice/runs",
        Some(&fan),
        json!({ "concert_id": concert_id, "start": "open" }),
    )
    .await
    .expect_error(422, "BOOKING_CLOSED");
    api.post("/practice/runs", None, json!({ "concert_id": concert_id }))
        .await
        .expect_error(401, "UNAUTHENTICATED");
    api.get(&format!("/practice/runs/{}", uuid::Uuid::new_v4()), None)
        .await
        .expect_error(404, "NOT_FOUND");
}
