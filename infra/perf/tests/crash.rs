//! Every multi-step operation stopped between each pair of its steps, as a Lambda killed at its
//! timeout is stopped, then carried on as a client or the next scheduled run would: it must
//! complete, or be cleanly undone, with nobody stranded and nothing done twice.
//!
//! A meter (the perf crate's proxy) stands between this process and the emulators. A test arms
//! a stop on one request of its own table (the n-th request of one AWS action): the request is
//! held forever, either before it reaches DynamoDB or SQS, or after it was carried out with its
//! answer held back. When the operation reaches it, the test drops the operation's future
//! there: nothing after that point runs, as in a killed process.

use e2e_tests::{concert_body, id, TestApi};
use perf::meter::{self, Meter, StopAt};
use serde_json::{json, Value};
use shared::auth::Principal;
use shared::runtime::Services;
use std::future::Future;
use std::sync::{Arc, OnceLock};

static METER: OnceLock<Arc<Meter>> = OnceLock::new();

/// The process-wide meter, put in front of the emulators before any stack starts. It runs on a
/// runtime of its own: each test has its own runtime, which ends with the test.
async fn meter() -> Arc<Meter> {
    METER
        .get_or_init(|| {
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().expect("a runtime for the meter");
                runtime.block_on(async {
                    let meter = meter::interpose_holding(std::time::Duration::ZERO)
                        .await
                        .expect("the emulators are running (infra/test.sh)");
                    sender.send(meter).expect("the test waits for the meter");
                    std::future::pending::<()>().await;
                });
            });
            receiver.recv().expect("the meter starts")
        })
        .clone()
}

/// A stack behind the meter, with a short grace for missing queue numbers and a short hold on
/// received messages, so that what a crash leaves behind is tidied within a test's time.
async fn stack() -> (Arc<Meter>, TestApi) {
    let meter = meter().await;
    let api = TestApi::start_with(|config| {
        config.queue_entry_grace_millis = 3_000;
        config.queue_receive_visibility_seconds = 2;
    })
    .await;
    (meter, api)
}

fn table(api: &TestApi) -> String {
    api.stack.services.config.table_name.clone()
}

/// Where to stop: the `occurrence`-th `action` of this test's table; `after` it was done.
fn at(api: &TestApi, action: &str, occurrence: usize, after: bool) -> StopAt {
    StopAt {
        action: action.to_owned(),
        scope: table(api),
        occurrence,
        after,
    }
}

/// Runs `operation` until it reaches `stop`, and drops it there. Panics if it finished first:
/// the stop is not on its path.
async fn stop_in<F: Future>(meter: &Meter, api: &TestApi, stop: StopAt, operation: F) {
    let what = format!(
        "{} #{} ({})",
        stop.action,
        stop.occurrence,
        if stop.after { "after" } else { "before" }
    );
    let reached = meter.stop_at(stop);
    tokio::select! {
        _ = operation => panic!("the operation finished without reaching {what}"),
        _ = reached.notified() => {}
    }
    meter.clear_stops(&table(api));
}

fn principal(services: &Services, token: &str) -> Principal {
    services
        .authenticate(Some(&format!("Bearer {token}")))
        .expect("a valid access token")
}

/// Steps the admitter until the fan's place is ACTIVE (waiting out the grace for a missing
/// number if there is one).
async fn admitted(api: &TestApi, token: &str, queue_token: &str) {
    for _ in 0..40 {
        api.admit().await;
        let status = api.queue_status(token, queue_token).await;
        match status["status"].as_str() {
            Some("ACTIVE") => return,
            Some("WAITING") => {}
            other => panic!("the place ended: {other:?} {status}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("not admitted");
}

#[tokio::test]
async fn entering_the_queue_stopped_at_any_step_should_leave_a_place_the_retry_finds_or_none() {
    let (meter, api) = stack().await;
    let services = &api.stack.services;
    let (concert_id, _) = api.concert_with_one_date().await;
    let body = || shared::operations::EnterQueue {
        concert_id: concert_id.clone(),
    };
    // Entry is: read (BatchGetItem), number (UpdateItem), token (PutItem), message (SQS).
    let stops = [
        ("DynamoDB.UpdateItem", false),
        ("DynamoDB.UpdateItem", true),
        ("DynamoDB.PutItem", false),
        ("DynamoDB.PutItem", true),
        ("SQS.SendMessage", false),
        ("SQS.SendMessage", true),
    ];
    for (index, (action, after)) in stops.into_iter().enumerate() {
        let token = api.user(&format!("stopped{index}")).await;
        let fan = principal(services, &token);
        stop_in(
            &meter,
            &api,
            at(&api, action, 1, after),
            services.enter_queue(&fan, body()),
        )
        .await;
        // The fan tries again, as anyone told nothing would: one place, admitted in turn.
        let place = services.enter_queue(&fan, body()).await.unwrap();
        let again = services.enter_queue(&fan, body()).await.unwrap();
        assert_eq!(
            place.token.token_id, again.token.token_id,
            "one place ({action})"
        );
        admitted(&api, &token, &place.queue_token).await;
        // Whoever came after is not held up for good by what the stop left behind.
        let next = api.user(&format!("after{index}")).await;
        let next_place = id(&api.enter(&next, &concert_id).await, "queue_token");
        admitted(&api, &next, &next_place).await;
        // Both leave, freeing their slots for the next round of this test.
        for (token, queue) in [(&token, &place.queue_token), (&next, &next_place)] {
            services
                .leave_queue(&principal(services, token), Some(queue))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_hold_stopped_before_or_after_its_write_should_be_found_by_its_retry() {
    let (meter, api) = stack().await;
    let services = &api.stack.services;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    for (index, after) in [false, true].into_iter().enumerate() {
        let (token, queue) = api
            .admitted_user(&format!("holder{index}"), &concert_id)
            .await;
        let fan = principal(services, &token);
        let seats = vec![1 + 2 * index as u32, 2 + 2 * index as u32];
        let hold = || shared::reservations::NewHold {
            schedule_id: schedule_id.clone(),
            seat_nos: seats.clone(),
        };
        stop_in(
            &meter,
            &api,
            at(&api, "DynamoDB.TransactWriteItems", 1, after),
            services.hold(&fan, Some(&queue), hold()),
        )
        .await;
        // The retry is answered with a hold of those seats (the first attempt's, if it was
        // written), never refused because of it.
        let held = services.hold(&fan, Some(&queue), hold()).await.unwrap();
        let mine = api.get("/me/reservations", Some(&token)).await.expect(200);
        let items = mine["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "one reservation: {mine}");
        assert_eq!(items[0]["reservation_id"], held.reservation_id.to_string());
        let statuses = api.seat_statuses(&token, &queue, &schedule_id).await;
        for seat in &seats {
            assert_eq!(statuses[&u64::from(*seat)], "HELD");
        }
    }
}

/// A fan with a hold, and money to pay for it: (access token, queue token, reservation).
async fn fan_with_a_hold(api: &TestApi, name: &str, seat: u32) -> (String, String, String) {
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let (token, queue) = api.admitted_user(name, &concert_id).await;
    api.charge(&token, 200_000, None).await.expect(200);
    let held = api
        .hold(&token, &queue, &schedule_id, &[seat])
        .await
        .expect(201);
    (token, queue, id(&held, "reservation_id"))
}

fn count(ledger: &Value, kind: &str) -> usize {
    ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["type"] == kind)
        .count()
}

#[tokio::test]
async fn a_payment_stopped_before_or_after_its_write_should_charge_once_when_retried() {
    let (meter, api) = stack().await;
    let services = &api.stack.services;
    for (index, after) in [false, true].into_iter().enumerate() {
        let (token, queue, reservation) = fan_with_a_hold(&api, &format!("payer{index}"), 5).await;
        let fan = principal(services, &token);
        let key = format!("pay-{index}");
        let pay = || shared::money::Pay {
            reservation_id: reservation.clone(),
        };
        stop_in(
            &meter,
            &api,
            at(&api, "DynamoDB.TransactWriteItems", 1, after),
            services.pay(&fan, Some(&queue), Some(&key), pay()),
        )
        .await;
        let paid = services
            .pay(&fan, Some(&queue), Some(&key), pay())
            .await
            .unwrap();
        assert_eq!(paid.status, 201);
        let ledger = api
            .get("/balance/transactions", Some(&token))
            .await
            .expect(200);
        assert_eq!(count(&ledger, "PAYMENT"), 1, "{ledger}");
        let stored = api
            .get(&format!("/reservations/{reservation}"), Some(&token))
            .await
            .expect(200);
        assert_eq!(stored["status"], "CONFIRMED");
        assert_eq!(
            api.get("/balance", Some(&token)).await.expect(200)["balance"],
            200_000 - 55_000
        );
    }
}

#[tokio::test]
async fn a_charge_a_cancellation_and_a_release_stopped_after_their_write_should_act_once() {
    let (meter, api) = stack().await;
    let services = &api.stack.services;
    let (token, queue, reservation) = fan_with_a_hold(&api, "canceller", 9).await;
    let fan = principal(services, &token);

    // A charge whose answer was lost: the retry with its key charges nothing more.
    let charge = || shared::money::Charge { amount: 1_000 };
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.TransactWriteItems", 1, true),
        services.charge(&fan, Some("top-up"), charge()),
    )
    .await;
    services
        .charge(&fan, Some("top-up"), charge())
        .await
        .unwrap();
    let ledger = api
        .get("/balance/transactions", Some(&token))
        .await
        .expect(200);
    assert_eq!(
        count(&ledger, "CHARGE"),
        2,
        "the first charge and this one: {ledger}"
    );

    // Paid, then cancelled with the answer lost: the retry answers the same refund, once.
    api.pay(&token, &queue, &reservation, Some("pay"))
        .await
        .expect(201);
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.TransactWriteItems", 1, true),
        services.cancel_booking(&fan, &reservation),
    )
    .await;
    let cancelled = services.cancel_booking(&fan, &reservation).await.unwrap();
    assert_eq!(cancelled.refund, Some(55_000));
    let ledger = api
        .get("/balance/transactions", Some(&token))
        .await
        .expect(200);
    assert_eq!(count(&ledger, "REFUND"), 1, "{ledger}");
    assert_eq!(
        api.get("/balance", Some(&token)).await.expect(200)["balance"],
        201_000
    );

    // A release with its answer lost: the retry succeeds, the seats are free.
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let queue = id(&api.enter(&token, &concert_id).await, "queue_token");
    api.admit().await;
    let held = api
        .hold(&token, &queue, &schedule_id, &[3, 4])
        .await
        .expect(201);
    let held = id(&held, "reservation_id");
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.TransactWriteItems", 1, true),
        services.release(&fan, &held),
    )
    .await;
    services.release(&fan, &held).await.unwrap();
    let statuses = api.seat_statuses(&token, &queue, &schedule_id).await;
    assert_eq!(
        (statuses[&3].as_str(), statuses[&4].as_str()),
        ("AVAILABLE", "AVAILABLE")
    );

    // Leaving the line with the answer lost: the retry succeeds too.
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.TransactWriteItems", 1, true),
        services.leave_queue(&fan, Some(&queue)),
    )
    .await;
    services.leave_queue(&fan, Some(&queue)).await.unwrap();
}

#[tokio::test]
async fn a_signup_stopped_after_its_write_should_be_answered_by_its_retry() {
    let (meter, api) = stack().await;
    let services = &api.stack.services;
    let signup = || shared::users::Signup {
        username: "lost_answer".into(),
        password: e2e_tests::PASSWORD.into(),
        name: "Lost Answer".into(),
    };
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.TransactWriteItems", 1, true),
        services.signup(signup()),
    )
    .await;
    let user = services.signup(signup()).await.unwrap();
    // The account the first attempt made, not a second one, and not USERNAME_TAKEN.
    let token = api.login("lost_answer").await;
    let me = api.get("/me", Some(&token)).await.expect(200);
    assert_eq!(me["user_id"], user.user_id.to_string());
    // Someone else asking for the name is still refused.
    let other = shared::users::Signup {
        password: "another-password".into(),
        ..signup()
    };
    assert_eq!(
        services.signup(other).await.unwrap_err(),
        shared::DomainError::UsernameTaken
    );
}

#[tokio::test]
async fn creating_a_concert_stopped_at_any_step_should_give_one_concert() {
    let meter = meter().await;
    // The clock is moved on by hand past the time after which a claim's creator is taken for
    // gone.
    let api = TestApi::start_with_manual_clock(|_| {}, false).await;
    let services = &api.stack.services;
    let admin_token = api.admin().await;
    let admin = principal(services, &admin_token);
    // Creating is: claim (PutItem), the date and 50 seats (BatchWriteItem ×3), the concert
    // item (PutItem).
    let stops = [
        ("DynamoDB.PutItem", 1, true),
        ("DynamoDB.BatchWriteItem", 1, true),
        ("DynamoDB.PutItem", 2, false),
        ("DynamoDB.PutItem", 2, true),
    ];
    for (index, (action, occurrence, after)) in stops.into_iter().enumerate() {
        let mut body = concert_body(1);
        body["title"] = json!(format!("Stopped concert {index}"));
        let draft =
            || -> shared::catalog::NewConcert { serde_json::from_value(body.clone()).unwrap() };
        stop_in(
            &meter,
            &api,
            at(&api, action, occurrence, after),
            services.create_concert(&admin, draft()),
        )
        .await;
        // The retry finishes the claimed draft once the claim's creator may be taken for gone
        // (until then it would be told to come back).
        api.clock.set(
            api.clock.now() + chrono::Duration::seconds(shared::store::CLAIM_TAKEOVER_SECONDS + 1),
        );
        let created = services
            .create_concert(&admin, draft())
            .await
            .expect("the retry gives the concert");
        let again = services.create_concert(&admin, draft()).await.unwrap();
        assert_eq!(created.concert.concert_id, again.concert.concert_id);
        let listed = api.get("/concerts?limit=100", None).await.expect(200);
        let named: Vec<&Value> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["title"] == format!("Stopped concert {index}").as_str())
            .collect();
        assert_eq!(named.len(), 1, "one concert: {named:?}");
        // Complete: its date has all 50 seats.
        let concert_id = created.concert.concert_id.to_string();
        let (token, queue) = api
            .admitted_user(&format!("checker{index}"), &concert_id)
            .await;
        let schedule_id = created.schedules[0].schedule_id.to_string();
        assert_eq!(
            api.seat_statuses(&token, &queue, &schedule_id).await.len(),
            50
        );
    }
}

#[tokio::test]
async fn an_admission_step_stopped_after_its_write_should_admit_once_and_go_on() {
    let (meter, api) = stack().await;
    let (concert_id, _) = api.concert_with_one_date().await;
    let first = api.user("first").await;
    let first_queue = id(&api.enter(&first, &concert_id).await, "queue_token");
    // Stopped after the write that admits the first fan, before its message is deleted.
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.TransactWriteItems", 1, true),
        api.stack.services.admit_step(),
    )
    .await;
    assert_eq!(
        api.queue_status(&first, &first_queue).await["status"],
        "ACTIVE"
    );
    let second = api.user("second").await;
    let second_queue = id(&api.enter(&second, &concert_id).await, "queue_token");
    // The first fan's message comes back when its hold on it runs out (2 s here): it is
    // dropped, and the second is admitted.
    admitted(&api, &second, &second_queue).await;
    assert_eq!(
        api.queue_status(&first, &first_queue).await["status"],
        "ACTIVE"
    );
    assert_eq!(
        api.stack
            .services
            .active_count(shared::ids::parse_id(&concert_id).unwrap())
            .await
            .unwrap(),
        2
    );

    // Stopped before its write: nothing happened, and the next step admits.
    let third = api.user("third").await;
    let third_queue = id(&api.enter(&third, &concert_id).await, "queue_token");
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.TransactWriteItems", 1, false),
        api.stack.services.admit_step(),
    )
    .await;
    assert_eq!(
        api.queue_status(&third, &third_queue).await["status"],
        "WAITING"
    );
    admitted(&api, &third, &third_queue).await;
}

#[tokio::test]
async fn the_sweeper_stopped_between_its_steps_should_finish_on_its_next_run() {
    let meter = meter().await;
    let api = TestApi::start_with_manual_clock(
        |config| config.queue_receive_visibility_seconds = 2,
        false,
    )
    .await;
    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let (token, queue) = api.admitted_user("sleeper", &concert_id).await;
    let held = api
        .hold(&token, &queue, &schedule_id, &[11, 12])
        .await
        .expect(201);
    let reservation = id(&held, "reservation_id");
    api.clock
        .set(api.clock.now() + chrono::Duration::seconds(301));
    // Expiring is: find (Query), free each seat (UpdateItem ×2), mark the hold EXPIRED
    // (UpdateItem). Stopped after the first seat was freed.
    stop_in(
        &meter,
        &api,
        at(&api, "DynamoDB.UpdateItem", 1, true),
        api.stack.services.sweep_expired_holds(),
    )
    .await;
    assert_eq!(api.stack.services.sweep_expired_holds().await.unwrap(), 1);
    let stored = api
        .get(&format!("/reservations/{reservation}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(stored["status"], "EXPIRED");
    // Nothing left to tidy.
    assert_eq!(api.stack.services.sweep_expired_holds().await.unwrap(), 0);
}
