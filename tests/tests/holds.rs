//! Seat maps, holds, release and expiry through HTTP; the no-double-booking race.

use e2e_tests::{id, TestApi};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use shared::catalog::SeatStatus;
use shared::ids::parse_id;
use shared::reservations::ReservationStatus;
use std::collections::{BTreeMap, BTreeSet};

/// The seats a seat map shows as HELD.
fn held_seats(statuses: &BTreeMap<u64, String>) -> BTreeSet<u64> {
    statuses
        .iter()
        .filter(|(_, status)| *status == "HELD")
        .map(|(seat, _)| *seat)
        .collect()
}

#[tokio::test]
async fn an_admitted_user_should_see_the_seat_map_and_hold_seats_together() {
    let api = TestApi::start().await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let (alice, queue) = api.admitted_user("alice", &concert_id).await;

    let map = api
        .request(Method::GET, &format!("/schedules/{schedule_id}/seats"))
        .token(&alice)
        .queue(&queue)
        .send()
        .await
        .expect(200);
    assert_eq!(map["schedule_id"], schedule_id.as_str());
    let items = map["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    assert_eq!(
        items[0],
        json!({"seat_no": 1, "section": "A", "row": 1, "grade": "STANDARD", "price": 55000, "status": "AVAILABLE"})
    );

    let held = api
        .hold(&alice, &queue, &schedule_id, &[12, 11])
        .await
        .expect(201);
    assert_eq!(held["status"], "HELD");
    assert_eq!(held["schedule_id"], schedule_id.as_str());
    assert_eq!(held["concert_id"], concert_id.as_str());
    assert_eq!(held["amount"], 110_000);
    assert_eq!(held["seats"][0]["seat_no"], 11);
    assert_eq!(held["seats"][0]["price"], 55000);
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(held["expires_at"].as_str().unwrap()).unwrap();
    let hold_seconds = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!(
        (295..=300).contains(&hold_seconds),
        "hold lasts {hold_seconds} s"
    );

    let statuses = api.seat_statuses(&alice, &queue, &schedule_id).await;
    assert_eq!(statuses[&11], "HELD");
    assert_eq!(statuses[&12], "HELD");
    assert_eq!(statuses.values().filter(|s| *s == "AVAILABLE").count(), 48);

    // The schedules list counts seats left.
    let schedules = api
        .request(Method::GET, &format!("/concerts/{concert_id}/schedules"))
        .token(&alice)
        .queue(&queue)
        .send()
        .await
        .expect(200);
    assert_eq!(schedules["items"][0]["available_seats"], 48);

    // The owner reads it back; nobody else can.
    let reservation_id = id(&held, "reservation_id");
    let read = api
        .get(&format!("/reservations/{reservation_id}"), Some(&alice))
        .await
        .expect(200);
    assert_eq!(read["status"], "HELD");
    assert_eq!(read["amount"], 110_000);
    let bob = api.user("bob").await;
    api.get(&format!("/reservations/{reservation_id}"), Some(&bob))
        .await
        .expect_error(404, "NOT_FOUND");
    api.request(Method::DELETE, &format!("/reservations/{reservation_id}"))
        .token(&bob)
        .send()
        .await
        .expect_error(404, "NOT_FOUND");
    api.get("/reservations/not-an-id", Some(&alice))
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn taken_seats_should_be_refused_whole_naming_the_taken_ones() {
    let api = TestApi::start().await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let users = api.admitted_users("fan", 2, &concert_id).await;
    let (alice, alice_queue) = &users[0];
    let (bob, bob_queue) = &users[1];
    let first = api
        .hold(alice, alice_queue, &schedule_id, &[1, 2])
        .await
        .expect(201);

    // Overlapping: nothing is held, and the 409 names the taken seat.
    let refused = api
        .hold(bob, bob_queue, &schedule_id, &[2, 3])
        .await
        .expect_error(409, "SEAT_UNAVAILABLE");
    assert_eq!(refused["error"]["details"]["seat_nos"], json!([2]));
    // The holder cannot take their own held seat twice either.
    api.hold(alice, alice_queue, &schedule_id, &[1])
        .await
        .expect_error(409, "SEAT_UNAVAILABLE");
    // The very same request again, though, is a retry of the first (its answer may have been
    // lost): answered with the same hold, not refused because of it.
    let again = api
        .hold(alice, alice_queue, &schedule_id, &[2, 1])
        .await
        .expect(201);
    assert_eq!(first["reservation_id"], again["reservation_id"]);
    assert_eq!(first["expires_at"], again["expires_at"]);
    let statuses = api.seat_statuses(bob, bob_queue, &schedule_id).await;
    assert_eq!(statuses[&3], "AVAILABLE");
    api.hold(bob, bob_queue, &schedule_id, &[3, 4])
        .await
        .expect(201);
}

#[tokio::test]
async fn holds_should_refuse_bad_input_unknown_seats_and_missing_admission() {
    let api = TestApi::start().await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let (alice, queue) = api.admitted_user("alice", &concert_id).await;
    let hold = |body: Value| {
        api.request(Method::POST, "/reservations")
            .token(&alice)
            .queue(&queue)
            .json(body)
            .send()
    };
    let field = |body: Value| {
        body["error"]["details"]["field"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (body, expected) in [
        (
            json!({"schedule_id": schedule_id, "seat_nos": []}),
            "seat_nos",
        ),
        (
            json!({"schedule_id": schedule_id, "seat_nos": [1, 2, 3, 4, 5]}),
            "seat_nos",
        ),
        (
            json!({"schedule_id": schedule_id, "seat_nos": [3, 3]}),
            "seat_nos",
        ),
        (
            json!({"schedule_id": schedule_id, "seat_nos": [0]}),
            "seat_nos",
        ),
        (
            json!({"schedule_id": schedule_id, "seat_nos": [-1]}),
            "seat_nos[0]",
        ),
        (
            json!({"schedule_id": schedule_id, "seat_nos": ["a"]}),
            "seat_nos[0]",
        ),
        (json!({"schedule_id": schedule_id}), "seat_nos"),
        (json!({"schedule_id": "x", "seat_nos": [1]}), "schedule_id"),
        (json!({"seat_nos": [1]}), "schedule_id"),
    ] {
        assert_eq!(
            field(hold(body).await.expect_error(400, "VALIDATION_FAILED")),
            expected
        );
    }
    hold(json!({"schedule_id": schedule_id, "seat_nos": [51]}))
        .await
        .expect_error(404, "NOT_FOUND");
    hold(json!({"schedule_id": uuid::Uuid::now_v7(), "seat_nos": [1]}))
        .await
        .expect_error(404, "NOT_FOUND");
    api.request(
        Method::GET,
        &format!("/schedules/{}/seats", uuid::Uuid::now_v7()),
    )
    .token(&alice)
    .queue(&queue)
    .send()
    .await
    .expect_error(404, "NOT_FOUND");

    // Without an admitted queue token, no hold and no seat map.
    let bob = api.user("bob").await;
    api.request(Method::POST, "/reservations")
        .token(&bob)
        .json(json!({"schedule_id": schedule_id, "seat_nos": [1]}))
        .send()
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    let bob_queue = id(&api.enter(&bob, &concert_id).await, "queue_token");
    api.hold(&bob, &bob_queue, &schedule_id, &[1])
        .await
        .expect_error(403, "QUEUE_NOT_ADMITTED");
    api.request(Method::GET, &format!("/schedules/{schedule_id}/seats"))
        .token(&bob)
        .queue(&bob_queue)
        .send()
        .await
        .expect_error(403, "QUEUE_NOT_ADMITTED");
    // Alice's token is hers alone.
    api.hold(&bob, &queue, &schedule_id, &[1])
        .await
        .expect_error(401, "INVALID_QUEUE_TOKEN");
    // Nothing above held anything.
    let statuses = api.seat_statuses(&alice, &queue, &schedule_id).await;
    assert!(statuses.values().all(|status| status == "AVAILABLE"));
}

#[tokio::test]
async fn a_hundred_clients_racing_for_one_seat_should_leave_exactly_one_winner_every_round() {
    // Each round's winner gives the seat back, so nobody reaches the ticket limit; the
    // seat-parking rule is off, so giving back twenty times slows nobody down.
    let api = TestApi::start_with(|config| {
        config.queue_max_active = 100;
        config.parking.drops = 0;
    })
    .await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let clients = api.admitted_users("racer", 100, &concert_id).await;

    for round in 1..=20u32 {
        let seat = [round];
        let replies = join_all(
            clients
                .iter()
                .map(|(token, queue)| api.hold(token, queue, &schedule_id, &seat)),
        )
        .await;
        let winners: Vec<(usize, &e2e_tests::Reply)> = replies
            .iter()
            .enumerate()
            .filter(|(_, reply)| reply.status == 201)
            .collect();
        if let [(winner, reply)] = winners[..] {
            api.request(
                Method::DELETE,
                &format!("/reservations/{}", id(&reply.body, "reservation_id")),
            )
            .token(&clients[winner].0)
            .send()
            .await
            .expect(204);
        }
        let winners = winners.len();
        let losers: Vec<_> = replies.iter().filter(|reply| reply.status != 201).collect();
        assert_eq!(winners, 1, "round {round}: {winners} winners");
        for loser in losers {
            assert_eq!(
                (loser.status.as_u16(), loser.code()),
                (409, "SEAT_UNAVAILABLE"),
                "round {round}: {}",
                loser.body
            );
            assert_eq!(loser.body["error"]["details"]["seat_nos"], json!([round]));
        }
    }
}

#[tokio::test]
async fn overlapping_multi_seat_races_should_never_leave_a_partial_or_double_hold() {
    let api = TestApi::start_with(|config| config.queue_max_active = 60).await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let clients = api.admitted_users("racer", 60, &concert_id).await;

    // Each client asks for a window of 1..4 consecutive seats among seats 21..32, so the
    // requests overlap in every way.
    let requests: Vec<Vec<u32>> = (0..clients.len())
        .map(|i| {
            let start = 21 + (i as u32 * 7) % 12;
            let width = 1 + (i as u32 % 4);
            (start..start + width).filter(|seat| *seat <= 32).collect()
        })
        .collect();
    let replies = join_all(
        clients
            .iter()
            .zip(&requests)
            .map(|((token, queue), seats)| api.hold(token, queue, &schedule_id, seats)),
    )
    .await;

    let mut holder: BTreeMap<u64, usize> = BTreeMap::new();
    for (client, reply) in replies.iter().enumerate() {
        match reply.status.as_u16() {
            201 => {
                let seats: Vec<u64> = reply.body["seats"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|seat| seat["seat_no"].as_u64().unwrap())
                    .collect();
                assert_eq!(
                    seats,
                    requests[client]
                        .iter()
                        .map(|s| *s as u64)
                        .collect::<Vec<_>>()
                );
                for seat in seats {
                    assert!(
                        holder.insert(seat, client).is_none(),
                        "seat {seat} held twice"
                    );
                }
            }
            409 => assert_eq!(reply.code(), "SEAT_UNAVAILABLE"),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(!holder.is_empty());
    // Storage agrees: exactly the winners' seats are held, each by its winner's reservation.
    let (token, queue) = &clients[0];
    let statuses = api.seat_statuses(token, queue, &schedule_id).await;
    let held = held_seats(&statuses);
    assert_eq!(held, holder.keys().copied().collect());
    let stored = api
        .stack
        .services
        .store
        .seat_map(parse_id(&schedule_id).unwrap(), 50)
        .await
        .unwrap();
    for seat in stored.iter().filter(|seat| seat.status == SeatStatus::Held) {
        let client = holder[&(seat.seat.seat_no as u64)];
        let reservation = &replies[client].body["reservation_id"];
        assert_eq!(
            seat.reservation_id.unwrap().to_string(),
            reservation.as_str().unwrap()
        );
    }
}

#[tokio::test]
async fn releasing_should_give_seats_back_at_once() {
    let api = TestApi::start().await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let users = api.admitted_users("fan", 2, &concert_id).await;
    let (alice, alice_queue) = &users[0];
    let (bob, bob_queue) = &users[1];
    let held = api
        .hold(alice, alice_queue, &schedule_id, &[5, 6])
        .await
        .expect(201);
    let path = format!("/reservations/{}", id(&held, "reservation_id"));

    api.request(Method::DELETE, &path)
        .token(alice)
        .send()
        .await
        .expect(204);
    let statuses = api.seat_statuses(bob, bob_queue, &schedule_id).await;
    assert_eq!(
        (statuses[&5].as_str(), statuses[&6].as_str()),
        ("AVAILABLE", "AVAILABLE")
    );
    api.hold(bob, bob_queue, &schedule_id, &[5, 6])
        .await
        .expect(201);
    assert_eq!(
        api.get(&path, Some(alice)).await.expect(200)["status"],
        "RELEASED"
    );
    // A retried release changes nothing, and does not free Bob's hold on the same seats.
    api.request(Method::DELETE, &path)
        .token(alice)
        .send()
        .await
        .expect(204);
    let statuses = api.seat_statuses(bob, bob_queue, &schedule_id).await;
    assert_eq!(
        (statuses[&5].as_str(), statuses[&6].as_str()),
        ("HELD", "HELD")
    );
}

#[tokio::test]
async fn expired_holds_should_free_seats_before_the_sweeper_and_the_sweeper_should_tidy_once() {
    let api = TestApi::start_with_manual_clock(|config| config.hold_ttl_seconds = 2, false).await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let users = api.admitted_users("fan", 2, &concert_id).await;
    let (alice, alice_queue) = &users[0];
    let (bob, bob_queue) = &users[1];
    let held = api
        .hold(alice, alice_queue, &schedule_id, &[7, 8])
        .await
        .expect(201);
    let reservation_id = id(&held, "reservation_id");
    api.hold(bob, bob_queue, &schedule_id, &[7])
        .await
        .expect_error(409, "SEAT_UNAVAILABLE");

    api.clock.advance(chrono::Duration::seconds(2));
    // No sweeper has run: the seats read AVAILABLE and can be held.
    let statuses = api.seat_statuses(bob, bob_queue, &schedule_id).await;
    assert_eq!(
        (statuses[&7].as_str(), statuses[&8].as_str()),
        ("AVAILABLE", "AVAILABLE")
    );
    api.hold(bob, bob_queue, &schedule_id, &[7])
        .await
        .expect(201);
    let path = format!("/reservations/{reservation_id}");
    assert_eq!(
        api.get(&path, Some(alice)).await.expect(200)["status"],
        "EXPIRED"
    );

    // Two sweepers at once: Alice's hold is tidied exactly once, and Bob's new hold on seat 7
    // is left alone.
    let services = &api.stack.services;
    let (first, second) = tokio::join!(
        services.sweep_expired_holds(),
        services.sweep_expired_holds()
    );
    assert_eq!(first.unwrap() + second.unwrap(), 1);
    assert_eq!(services.sweep_expired_holds().await.unwrap(), 0);
    let alice_id = api.get("/me", Some(alice)).await.expect(200)["user_id"].clone();
    let stored = services
        .store
        .reservation(
            parse_id(alice_id.as_str().unwrap()).unwrap(),
            parse_id(&reservation_id).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ReservationStatus::Expired);
    let seats = services
        .store
        .seat_map(parse_id(&schedule_id).unwrap(), 50)
        .await
        .unwrap();
    let seat = |no: u32| seats.iter().find(|seat| seat.seat.seat_no == no).unwrap();
    assert_eq!(seat(7).status, SeatStatus::Held);
    assert_ne!(seat(7).reservation_id.unwrap().to_string(), reservation_id);
    assert_eq!(seat(8).status, SeatStatus::Available);
    assert_eq!(seat(8).reservation_id, None);
    // Releasing an expired hold is a harmless no-op.
    api.request(Method::DELETE, &path)
        .token(alice)
        .send()
        .await
        .expect(204);
    assert_eq!(
        api.seat_statuses(bob, bob_queue, &schedule_id).await[&7],
        "HELD"
    );
}

#[tokio::test]
async fn races_across_seat_partitions_should_never_double_book() {
    // 1,100 seats are three seat partitions (1..=500, 501..=1000, 1001..=1100). 200 clients
    // race for pairs of seats at both boundaries, some pairs straddling two partitions.
    let api = TestApi::start_with(|config| config.queue_max_active = 200).await;
    let admin = api.admin().await;
    let mut body = e2e_tests::concert_body(1);
    body["seat_map"] = json!({"sections": [
        {"name": "Floor", "grade": "VIP", "price": 150000, "rows": 25, "seats_per_row": 20},
        {"name": "Stand", "grade": "R", "price": 99000, "rows": 30, "seats_per_row": 20},
    ]});
    let concert = api
        .post("/admin/concerts", Some(&admin), body)
        .await
        .expect(201);
    let concert_id = id(&concert, "concert_id");
    let schedule_id = id(&concert["schedules"][0], "schedule_id");
    assert_eq!(concert["schedules"][0]["total_seats"], 1100);
    let clients = api.admitted_users("racer", 200, &concert_id).await;

    let pairs: [[u32; 2]; 6] = [
        [499, 500],
        [500, 501],
        [501, 502],
        [999, 1000],
        [1000, 1001],
        [1001, 1002],
    ];
    let replies = join_all(
        clients
            .iter()
            .enumerate()
            .map(|(i, (token, queue))| api.hold(token, queue, &schedule_id, &pairs[i % 6])),
    )
    .await;

    let mut holder: BTreeMap<u64, usize> = BTreeMap::new();
    for (client, reply) in replies.iter().enumerate() {
        match reply.status.as_u16() {
            201 => {
                for seat in pairs[client % 6] {
                    assert!(
                        holder.insert(u64::from(seat), client).is_none(),
                        "seat {seat} held twice"
                    );
                }
            }
            409 => assert_eq!(reply.code(), "SEAT_UNAVAILABLE"),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    // Winners at both boundaries: at least one pair per boundary region, never overlapping.
    assert!(holder.keys().any(|seat| *seat <= 502));
    assert!(holder.keys().any(|seat| *seat >= 999));
    // The seat map reads every partition: all 1,100 seats in order, exactly the winners' held.
    let (token, queue) = &clients[0];
    let statuses = api.seat_statuses(token, queue, &schedule_id).await;
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        (1..=1100).collect::<Vec<_>>()
    );
    let held = held_seats(&statuses);
    assert_eq!(held, holder.keys().copied().collect());
    // The dates list counts seats across all partitions.
    let dates = api
        .request(Method::GET, &format!("/concerts/{concert_id}/schedules"))
        .token(token)
        .queue(queue)
        .send()
        .await
        .expect(200);
    assert_eq!(
        dates["items"][0]["available_seats"],
        1100 - holder.len() as u64
    );
}
