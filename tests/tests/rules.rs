//! The rules real on-sales enforce, through HTTP: the ticket limit per person and date (under
//! concurrency), cancellation fees by timing, the waiting list of a sold-out date (order,
//! exactly-once offers, offers racing cancellations) and the seat-parking cooldown.

use chrono::{DateTime, Duration, Utc};
use e2e_tests::{concert_body, id, TestApi};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A concert on sale whose one date has `seats` seats of grade R at 50,000 won, with extra
/// fields (`ticket_limit`, `cancellation_fees`); (concert id, schedule id, show time).
async fn concert(
    api: &TestApi,
    admin: &str,
    seats: u32,
    extra: Value,
) -> (String, String, DateTime<Utc>) {
    let mut body = concert_body(1);
    body.as_object_mut().unwrap().remove("price");
    body["seat_map"] = json!({"sections": [
        {"name": "Floor", "grade": "R", "price": 50000, "rows": 1, "seats_per_row": seats},
    ]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let created = api
        .post("/admin/concerts", Some(admin), body)
        .await
        .expect(201);
    let starts_at = created["schedules"][0]["starts_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (
        id(&created, "concert_id"),
        id(&created["schedules"][0], "schedule_id"),
        starts_at,
    )
}

/// The seat map's `ticket_limit` for a fan.
async fn allowance(api: &TestApi, token: &str, queue: &str, schedule_id: &str) -> Value {
    api.request(Method::GET, &format!("/schedules/{schedule_id}/seats"))
        .token(token)
        .queue(queue)
        .send()
        .await
        .expect(200)["ticket_limit"]
        .clone()
}

/// Enters the queue again (after a payment ended the token) and is admitted: the new token.
async fn admitted_again(api: &TestApi, token: &str, concert_id: &str) -> String {
    let place = api.enter(token, concert_id).await;
    let queue = id(&place, "queue_token");
    for _ in 0..20 {
        if api.queue_status(token, &queue).await["status"] == "ACTIVE" {
            return queue;
        }
        api.admit().await;
    }
    panic!("not admitted again: {place}");
}

#[tokio::test]
async fn one_fans_holds_racing_each_other_should_never_pass_the_ticket_limit() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let (concert_id, schedule_id, _) = concert(&api, &admin, 50, json!({})).await;
    let fans = api.admitted_users("greedy", 3, &concert_id).await;
    for (round, (token, queue)) in fans.iter().enumerate() {
        // Nine holds at once (six of one seat, three of two), on seats nobody else wants: only
        // the ticket limit (4) can refuse them.
        let base = round as u32 * 16 + 1;
        let mut asks: Vec<Vec<u32>> = (0..6).map(|i| vec![base + i]).collect();
        asks.extend((0..3).map(|i| vec![base + 6 + 2 * i, base + 7 + 2 * i]));
        let replies = join_all(asks.iter().map(|seats| {
            api.request(Method::POST, "/reservations")
                .token(token)
                .queue(queue)
                .json(json!({ "schedule_id": schedule_id, "seat_nos": seats }))
                .busy_ok()
                .send()
        }))
        .await;
        let mut held = 0;
        for reply in &replies {
            match (reply.status.as_u16(), reply.code()) {
                (201, _) => held += reply.body["seats"].as_array().unwrap().len() as u64,
                (409, "TICKET_LIMIT_REACHED") => {
                    let details = &reply.body["error"]["details"];
                    assert_eq!(details["limit"], 4);
                    let asked =
                        details["taken"].as_u64().unwrap() + details["requested"].as_u64().unwrap();
                    assert!(asked > 4, "{details}");
                }
                // Nine transactions on one item at once: some may give up, honestly.
                (503, "SERVICE_BUSY") => {}
                _ => panic!("unexpected reply: {} {}", reply.status, reply.body),
            }
        }
        assert!(held <= 4, "round {round}: {held} seats held past the limit");
        let limit = allowance(&api, token, queue, &schedule_id).await;
        assert_eq!(
            limit,
            json!({"limit": 4, "taken": held, "remaining": 4 - held})
        );
        // One seat at a time after the race: exactly up to the limit, not one more.
        let mut seat = base + 12;
        while api.hold(token, queue, &schedule_id, &[seat]).await.status == 201 {
            held += 1;
            seat += 1;
        }
        assert_eq!(held, 4, "round {round}");
        let seats = api.seat_statuses(token, queue, &schedule_id).await;
        let on_map = seats.values().filter(|status| *status == "HELD").count() as u64;
        assert_eq!(
            on_map,
            4 * (round as u64 + 1),
            "every fan holds exactly four"
        );
    }
}

#[tokio::test]
async fn the_limit_should_count_bookings_and_free_places_as_holds_end() {
    let api = TestApi::start_with_manual_clock(|config| config.hold_ttl_seconds = 60, false).await;
    let admin = api.admin().await;
    let (concert_id, schedule_id, _) = concert(&api, &admin, 20, json!({"ticket_limit": 3})).await;
    let (token, queue) = api.admitted_user("fan", &concert_id).await;
    api.charge(&token, 1_000_000, None).await.expect(200);
    // A request for more than the limit is refused whole.
    let refused = api
        .hold(&token, &queue, &schedule_id, &[1, 2, 3, 4])
        .await
        .expect_error(409, "TICKET_LIMIT_REACHED");
    assert_eq!(
        refused["error"]["details"],
        json!({"limit": 3, "taken": 0, "requested": 4})
    );
    // Two booked...
    let held = api
        .hold(&token, &queue, &schedule_id, &[1, 2])
        .await
        .expect(201);
    api.pay(&token, &queue, &id(&held, "reservation_id"), None)
        .await
        .expect(201);
    let queue = admitted_again(&api, &token, &concert_id).await;
    assert_eq!(
        allowance(&api, &token, &queue, &schedule_id).await,
        json!({"limit": 3, "taken": 2, "remaining": 1})
    );
    // ...so two more is one too many; one is fine.
    api.hold(&token, &queue, &schedule_id, &[5, 6])
        .await
        .expect_error(409, "TICKET_LIMIT_REACHED");
    let third = api
        .hold(&token, &queue, &schedule_id, &[5])
        .await
        .expect(201);
    api.hold(&token, &queue, &schedule_id, &[6])
        .await
        .expect_error(409, "TICKET_LIMIT_REACHED");
    // Released: its place is free again at once.
    api.request(
        Method::DELETE,
        &format!("/reservations/{}", id(&third, "reservation_id")),
    )
    .token(&token)
    .send()
    .await
    .expect(204);
    let fourth = api
        .hold(&token, &queue, &schedule_id, &[6])
        .await
        .expect(201);
    // Run out: free again by its time, without any sweeper.
    api.clock.advance(Duration::seconds(61));
    let queue = match api.queue_status(&token, &queue).await["status"].as_str() {
        Some("ACTIVE") => queue,
        _ => admitted_again(&api, &token, &concert_id).await,
    };
    assert_eq!(
        api.get(
            &format!("/reservations/{}", id(&fourth, "reservation_id")),
            Some(&token)
        )
        .await
        .expect(200)["status"],
        "EXPIRED"
    );
    api.hold(&token, &queue, &schedule_id, &[7])
        .await
        .expect(201);
    // The limit is the concert's setting, within 1..=10.
    for bad in [0, 11] {
        let mut body = concert_body(1);
        body["ticket_limit"] = json!(bad);
        let reply = api
            .post("/admin/concerts", Some(&admin), body)
            .await
            .expect_error(400, "VALIDATION_FAILED");
        assert_eq!(reply["error"]["details"]["field"], "ticket_limit");
    }
}

/// A moment in Korea time, `days` calendar days before `show` at `hour`:00.
fn days_before(show: DateTime<Utc>, days: i64, hour: u32) -> DateTime<Utc> {
    let korea = shared::rules::korea();
    let date = show.with_timezone(&korea).date_naive() - Duration::days(days);
    date.and_hms_opt(hour, 0, 0)
        .unwrap()
        .and_local_timezone(korea)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn cancellation_should_refund_the_amount_less_the_fee_of_its_timing() {
    let api = TestApi::start_with_manual_clock(|_| {}, false).await;
    let admin = api.admin().await;
    let (concert_id, schedule_id, show) = concert(&api, &admin, 20, json!({})).await;
    let (token, queue) = api.admitted_user("fan", &concert_id).await;
    api.charge(&token, 500_000, None).await.expect(200);
    // Two bookings of two seats (100,000 won each), paid now, a month before the show.
    let mut bookings = Vec::new();
    let mut queue = queue;
    for pair in [[1, 2], [3, 4]] {
        let held = api
            .hold(&token, &queue, &schedule_id, &pair)
            .await
            .expect(201);
        let reservation_id = id(&held, "reservation_id");
        api.pay(&token, &queue, &reservation_id, None)
            .await
            .expect(201);
        bookings.push(reservation_id);
        queue = admitted_again(&api, &token, &concert_id).await;
    }
    let terms = |token: String, reservation_id: String| {
        let api = &api;
        async move {
            api.get(
                &format!("/reservations/{reservation_id}/cancellation"),
                Some(&token),
            )
            .await
            .expect(200)
        }
    };
    // The day of booking: free.
    let free = terms(token.clone(), bookings[0].clone()).await;
    assert_eq!(
        (
            &free["cancellable"],
            &free["refund"],
            &free["fee"],
            &free["amount"]
        ),
        (&json!(true), &json!(100_000), &json!(0), &json!(100_000))
    );
    // 5 days before the show: 20%. The preview says so, and the cancellation does it.
    api.clock.set(days_before(show, 5, 12));
    let token = api.login("fan").await;
    let admin = api.login(e2e_tests::ADMIN).await;
    let preview = terms(token.clone(), bookings[0].clone()).await;
    assert_eq!(
        (&preview["refund"], &preview["fee"]),
        (&json!(80_000), &json!(20_000))
    );
    let balance_before = api.get("/balance", Some(&token)).await.expect(200)["balance"]
        .as_i64()
        .unwrap();
    let cancel = |token: String, reservation_id: String| {
        let api = &api;
        async move {
            api.post(
                &format!("/reservations/{reservation_id}/cancel"),
                Some(&token),
                json!({}),
            )
            .await
        }
    };
    let cancelled = cancel(token.clone(), bookings[0].clone()).await.expect(200);
    assert_eq!(
        (
            &cancelled["status"],
            &cancelled["refund"],
            &cancelled["cancellation_fee"]
        ),
        (&json!("CANCELLED"), &json!(80_000), &json!(20_000))
    );
    let balance = api.get("/balance", Some(&token)).await.expect(200)["balance"]
        .as_i64()
        .unwrap();
    assert_eq!(balance - balance_before, 80_000);
    let ledger = api.all_pages(&token, "/balance/transactions").await;
    let refunds: Vec<&Value> = ledger
        .iter()
        .filter(|entry| entry["type"] == "REFUND")
        .collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 80_000);
    // The sales figures: revenue is what was kept, the fee part of it.
    let sales = api
        .get(&format!("/admin/concerts/{concert_id}/sales"), Some(&admin))
        .await
        .expect(200);
    assert_eq!(
        (&sales["revenue"], &sales["refunded"], &sales["fees"]),
        (&json!(200_000 - 80_000), &json!(80_000), &json!(20_000)),
        "{sales}"
    );
    // The show's day: not cancellable, and a cancellation is refused with nothing moved.
    api.clock.set(days_before(show, 0, 0));
    let token = api.login("fan").await;
    let closed = terms(token.clone(), bookings[1].clone()).await;
    assert_eq!(closed["cancellable"], false);
    assert!(closed["reason"].is_string(), "{closed}");
    cancel(token.clone(), bookings[1].clone())
        .await
        .expect_error(422, "BOOKING_CLOSED");
    assert_eq!(
        api.get("/balance", Some(&token)).await.expect(200)["balance"],
        balance
    );
    // Somebody else's booking is not found, its terms neither.
    let other = api.user("other").await;
    api.get(
        &format!("/reservations/{}/cancellation", bookings[1]),
        Some(&other),
    )
    .await
    .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_concerts_own_fee_schedule_should_apply() {
    let api = TestApi::start_with_manual_clock(|_| {}, false).await;
    let admin = api.admin().await;
    let policy = json!({
        "free_days_after_booking": 0,
        "free_until_days_before": 0,
        "booking_fee_per_seat": 1_000,
        "steps": [{"days_before": 20, "percent": 50}],
        "closed_days_before": 3,
    });
    let (concert_id, schedule_id, show) =
        concert(&api, &admin, 20, json!({ "cancellation_fees": policy })).await;
    let concert = api
        .get(&format!("/concerts/{concert_id}"), None)
        .await
        .expect(200);
    assert_eq!(concert["cancellation_fees"], policy);
    let (token, queue) = api.admitted_user("fan", &concert_id).await;
    api.charge(&token, 500_000, None).await.expect(200);
    let held = api
        .hold(&token, &queue, &schedule_id, &[9, 10, 11])
        .await
        .expect(201);
    let reservation_id = id(&held, "reservation_id");
    api.pay(&token, &queue, &reservation_id, None)
        .await
        .expect(201);
    let path = format!("/reservations/{reservation_id}/cancellation");
    let at = |days: i64| days_before(show, days, 12);
    let expect = [(25, 3_000), (20, 75_000), (4, 75_000)];
    for (days, fee) in expect {
        api.clock.set(at(days).max(api.clock.now()));
        let token = api.login("fan").await;
        let terms = api.get(&path, Some(&token)).await.expect(200);
        assert_eq!(terms["fee"], fee, "{days} days before: {terms}");
        assert_eq!(terms["refund"], 150_000 - fee);
    }
    api.clock.set(at(3));
    let token = api.login("fan").await;
    assert_eq!(
        api.get(&path, Some(&token)).await.expect(200)["cancellable"],
        false
    );
    // A bad schedule is refused by field.
    let admin = api.login(e2e_tests::ADMIN).await;
    let mut body = concert_body(1);
    body["cancellation_fees"] = json!({
        "free_days_after_booking": 7, "free_until_days_before": 10,
        "booking_fee_per_seat": 2000, "closed_days_before": 0,
        "steps": [{"days_before": 5, "percent": 120}],
    });
    let reply = api
        .post("/admin/concerts", Some(&admin), body)
        .await
        .expect_error(400, "VALIDATION_FAILED");
    assert_eq!(
        reply["error"]["details"]["field"],
        "cancellation_fees.steps[0].percent"
    );
    // A schedule is taken as written or not at all: a misspelt field is refused.
    let mut body = concert_body(1);
    body["cancellation_fees"] = json!({
        "free_days_after_booking": 7, "free_until_days_before": 10,
        "booking_fee_per_seat": 2000, "closed_days_before": 0, "steps": [],
        "percentage": 10,
    });
    api.post("/admin/concerts", Some(&admin), body)
        .await
        .expect_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn letting_holds_go_again_and_again_should_meet_the_cooldown() {
    let api = TestApi::start_with_manual_clock(
        |config| {
            config.hold_ttl_seconds = 60;
            config.parking.drops = 3;
            config.parking.window = Duration::minutes(10);
            config.parking.cooldown = Duration::minutes(2);
        },
        false,
    )
    .await;
    let admin = api.admin().await;
    let (concert_id, schedule_id, _) = concert(&api, &admin, 20, json!({})).await;
    let (token, queue) = api.admitted_user("parker", &concert_id).await;
    // Two released, one run out: three drops within ten minutes.
    for seat in [1, 2] {
        let held = api
            .hold(&token, &queue, &schedule_id, &[seat])
            .await
            .expect(201);
        api.request(
            Method::DELETE,
            &format!("/reservations/{}", id(&held, "reservation_id")),
        )
        .token(&token)
        .send()
        .await
        .expect(204);
        api.clock.advance(Duration::seconds(10));
    }
    api.hold(&token, &queue, &schedule_id, &[3])
        .await
        .expect(201);
    api.clock.advance(Duration::seconds(61));
    let queue = match api.queue_status(&token, &queue).await["status"].as_str() {
        Some("ACTIVE") => queue,
        _ => admitted_again(&api, &token, &concert_id).await,
    };
    // The run-out hold ended 1 s ago: 119 s of cooldown left.
    let reply = api.hold(&token, &queue, &schedule_id, &[4]).await;
    assert_eq!(reply.headers["retry-after"], "119");
    let body = reply.expect_error(429, "RATE_LIMITED");
    assert_eq!(body["error"]["details"]["reason"], "hold_cooldown");
    assert_eq!(body["error"]["details"]["retry_after_seconds"], 119);
    // Others are not slowed down; the parker is again once the cooldown has passed.
    let (other, other_queue) = api.admitted_user("honest", &concert_id).await;
    api.hold(&other, &other_queue, &schedule_id, &[5])
        .await
        .expect(201);
    api.clock.advance(Duration::seconds(119));
    let queue = match api.queue_status(&token, &queue).await["status"].as_str() {
        Some("ACTIVE") => queue,
        _ => admitted_again(&api, &token, &concert_id).await,
    };
    api.hold(&token, &queue, &schedule_id, &[4])
        .await
        .expect(201);
}

/// `POST /schedules/{id}/waitlist`.
async fn join(
    api: &TestApi,
    token: &str,
    queue: &str,
    schedule_id: &str,
    body: Value,
) -> e2e_tests::Reply {
    api.request(Method::POST, &format!("/schedules/{schedule_id}/waitlist"))
        .token(token)
        .queue(queue)
        .json(body)
        .send()
        .await
}

async fn entry(api: &TestApi, token: &str, schedule_id: &str) -> Value {
    api.get(&format!("/schedules/{schedule_id}/waitlist"), Some(token))
        .await
        .expect(200)
}

async fn offer_round(api: &TestApi) -> usize {
    let services = &api.stack.services;
    services.sweep_expired_holds().await.unwrap();
    services.offer_to_waitlists().await.unwrap()
}

#[tokio::test]
async fn a_waiting_list_should_offer_freed_seats_in_order_once_each_and_pass_them_on() {
    let api = TestApi::start_with_manual_clock(|config| config.hold_ttl_seconds = 60, false).await;
    let admin = api.admin().await;
    let (concert_id, schedule_id, _) = concert(&api, &admin, 4, json!({})).await;
    let fans = api.admitted_users("wl", 4, &concert_id).await;
    let (owner, owner_queue) = &fans[0];
    api.charge(owner, 1_000_000, None).await.expect(200);
    // The owner books all four seats, in two bookings.
    let mut bookings = Vec::new();
    let mut queue = owner_queue.clone();
    for pair in [[1, 2], [3, 4]] {
        let held = api
            .hold(owner, &queue, &schedule_id, &pair)
            .await
            .expect(201);
        api.pay(owner, &queue, &id(&held, "reservation_id"), None)
            .await
            .expect(201);
        bookings.push(id(&held, "reservation_id"));
        queue = admitted_again(&api, owner, &concert_id).await;
    }
    // Three fans line up: two seats of any grade, one R, two R.
    let asks = [
        json!({"count": 2}),
        json!({"grade": "R", "count": 1}),
        json!({"grade": "R", "count": 2}),
    ];
    for ((token, queue), ask) in fans[1..].iter().zip(asks) {
        let joined = join(&api, token, queue, &schedule_id, ask.clone())
            .await
            .expect(201);
        assert_eq!(joined["status"], "WAITING");
        // Joining again is the same place.
        let again = join(&api, token, queue, &schedule_id, ask)
            .await
            .expect(200);
        assert_eq!(again["entry_id"], joined["entry_id"]);
        api.clock.advance(Duration::milliseconds(5));
    }
    let ahead: Vec<Value> = join_all(
        fans[1..]
            .iter()
            .map(|(token, _)| entry(&api, token, &schedule_id)),
    )
    .await
    .into_iter()
    .map(|entry| entry["ahead"].clone())
    .collect();
    assert_eq!(ahead, [json!(0), json!(1), json!(2)]);
    assert_eq!(offer_round(&api).await, 0, "nothing is free");

    // Two seats come free: the first in line is offered them, once, however many runs.
    api.post(
        &format!("/reservations/{}/cancel", bookings[0]),
        Some(owner),
        json!({}),
    )
    .await
    .expect(200);
    let services = &api.stack.services;
    let (a, b) = tokio::join!(services.offer_to_waitlists(), services.offer_to_waitlists());
    assert_eq!(a.unwrap() + b.unwrap(), 1, "one offer, made once");
    let first = entry(&api, &fans[1].0, &schedule_id).await;
    assert_eq!(first["status"], "OFFERED", "{first}");
    let offer = &first["offer"];
    assert_eq!(offer["reservation"]["status"], "HELD");
    assert_eq!(offer["reservation"]["seats"].as_array().unwrap().len(), 2);
    // The second and third wait: the seats are spoken for.
    assert_eq!(
        entry(&api, &fans[2].0, &schedule_id).await["status"],
        "WAITING"
    );
    // The first pays with the offer's queue token: TAKEN.
    api.charge(&fans[1].0, 200_000, None).await.expect(200);
    api.pay(
        &fans[1].0,
        offer["queue_token"].as_str().unwrap(),
        offer["reservation"]["reservation_id"].as_str().unwrap(),
        None,
    )
    .await
    .expect(201);
    assert_eq!(
        entry(&api, &fans[1].0, &schedule_id).await["status"],
        "TAKEN"
    );

    // Two more come free: the second (one R) is offered one; the third (two R) cannot be
    // served from the one left and waits.
    api.post(
        &format!("/reservations/{}/cancel", bookings[1]),
        Some(owner),
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(offer_round(&api).await, 1);
    let second = entry(&api, &fans[2].0, &schedule_id).await;
    assert_eq!(second["status"], "OFFERED");
    assert_eq!(
        entry(&api, &fans[3].0, &schedule_id).await["status"],
        "WAITING"
    );
    // The second lets the offer run out: it is passed on, and the third gets both seats.
    api.clock.advance(Duration::seconds(61));
    assert_eq!(
        entry(&api, &fans[2].0, &schedule_id).await["status"],
        "PASSED"
    );
    assert_eq!(offer_round(&api).await, 1);
    let third = entry(&api, &fans[3].0, &schedule_id).await;
    assert_eq!(third["status"], "OFFERED", "{third}");
    assert_eq!(
        third["offer"]["reservation"]["seats"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Leaving the line: gone, and asked again it stays gone.
    for _ in 0..2 {
        api.request(
            Method::DELETE,
            &format!("/schedules/{schedule_id}/waitlist"),
        )
        .token(&fans[2].0)
        .send()
        .await
        .expect(204);
    }
}

#[tokio::test]
async fn cancellations_racing_offers_should_give_each_freed_seat_to_one_fan_in_line_order() {
    let fans_in_line = 12;
    let api = TestApi::start_with(|config| config.queue_max_active = 40).await;
    let admin = api.admin().await;
    let (concert_id, schedule_id, _) = concert(&api, &admin, 8, json!({"ticket_limit": 8})).await;
    let owner = api.admitted_users("owner", 1, &concert_id).await.remove(0);
    api.charge(&owner.0, 1_000_000, None).await.expect(200);
    let mut bookings = Vec::new();
    let mut queue = owner.1.clone();
    for seat in 1..=8u32 {
        let held = api
            .hold(&owner.0, &queue, &schedule_id, &[seat])
            .await
            .expect(201);
        api.pay(&owner.0, &queue, &id(&held, "reservation_id"), None)
            .await
            .expect(201);
        bookings.push(id(&held, "reservation_id"));
        queue = admitted_again(&api, &owner.0, &concert_id).await;
    }
    let fans = api.admitted_users("line", fans_in_line, &concert_id).await;
    let mut entries = Vec::new();
    for (token, queue) in &fans {
        let joined = join(&api, token, queue, &schedule_id, json!({"count": 1}))
            .await
            .expect(201);
        entries.push(id(&joined, "entry_id"));
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // Every booking cancelled at once while offering runs keep going, two at a time.
    let cancels = join_all(bookings.iter().map(|booking| {
        let path = format!("/reservations/{booking}/cancel");
        let owner = &owner.0;
        let api = &api;
        async move { api.post(&path, Some(owner), json!({})).await }
    }));
    let services = &api.stack.services;
    let offering = async {
        let mut made = 0;
        for _ in 0..10 {
            let (a, b) = tokio::join!(services.offer_to_waitlists(), services.offer_to_waitlists());
            made += a.unwrap() + b.unwrap();
        }
        made
    };
    let (cancelled, mut made) = tokio::join!(cancels, offering);
    for reply in cancelled {
        reply.expect(200);
    }
    made += services.offer_to_waitlists().await.unwrap();
    assert_eq!(made, 8, "eight seats freed, eight offers");
    // The first eight in line hold one seat each, all different; the rest wait.
    let mut seats = BTreeSet::new();
    let mut statuses = BTreeMap::new();
    for (index, (token, _)) in fans.iter().enumerate() {
        let entry = entry(&api, token, &schedule_id).await;
        statuses.insert(index, entry["status"].as_str().unwrap().to_owned());
        if entry["status"] == "OFFERED" {
            let seat = entry["offer"]["reservation"]["seats"][0]["seat_no"]
                .as_u64()
                .unwrap();
            assert!(seats.insert(seat), "seat {seat} offered twice");
        }
    }
    let offered: Vec<usize> = statuses
        .iter()
        .filter(|(_, status)| *status == "OFFERED")
        .map(|(index, _)| *index)
        .collect();
    assert_eq!(offered, (0..8).collect::<Vec<_>>(), "{statuses:?}");
    assert_eq!(seats.len(), 8);
}

#[tokio::test]
async fn waiting_list_requests_should_be_checked() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let (concert_id, schedule_id, _) = concert(&api, &admin, 4, json!({"ticket_limit": 2})).await;
    let (token, queue) = api.admitted_user("fan", &concert_id).await;
    for (body, field) in [
        (json!({"count": 0}), "count"),
        (json!({"count": 5}), "count"),
        (json!({"count": 1, "grade": ""}), "grade"),
    ] {
        let reply = join(&api, &token, &queue, &schedule_id, body)
            .await
            .expect_error(400, "VALIDATION_FAILED");
        assert_eq!(reply["error"]["details"]["field"], field);
    }
    // More than the limit allows is refused as a hold would be.
    join(&api, &token, &queue, &schedule_id, json!({"count": 3}))
        .await
        .expect_error(409, "TICKET_LIMIT_REACHED");
    // Without admission, no line.
    let stranger = api.user("stranger").await;
    api.request(Method::POST, &format!("/schedules/{schedule_id}/waitlist"))
        .token(&stranger)
        .json(json!({"count": 1}))
        .send()
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    api.get(
        &format!("/schedules/{schedule_id}/waitlist"),
        Some(&stranger),
    )
    .await
    .expect_error(404, "NOT_FOUND");
}
