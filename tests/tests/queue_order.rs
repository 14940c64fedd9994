//! The order of admission: in number order within a shard whatever order SQS shows, merged
//! across shards by when places were taken; the positions shown against that order; a number
//! that never arrives; and the randomised pre-queue.

use chrono::{DateTime, Duration, Utc};
use e2e_tests::{concert_body, id, TestApi};
use reqwest::Method;
use serde_json::Value;
use shared::entry_queue::Entrant;
use shared::ids::parse_id;
use shared::queue::{QueueToken, StoredStatus};
use std::collections::BTreeSet;

/// A fan in line: (access token, queue token).
type Fan = (String, String);

fn claims(queue_token: &str) -> Value {
    use base64::Engine;
    let payload = queue_token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A waiting place taken straight from the store, as an entry makes it: the shard's next
/// number and the token; the message that carries it is the caller's to send (or not).
async fn waiting_place(
    api: &TestApi,
    concert: uuid::Uuid,
    shard: u32,
    entered_at_ms: i64,
) -> (QueueToken, Entrant) {
    let services = &api.stack.services;
    let now = api.clock.now();
    let token = QueueToken {
        token_id: shared::ids::new_id(),
        user_id: shared::ids::new_id(),
        concert_id: concert,
        number: services
            .store
            .next_queue_number(concert, shard)
            .await
            .unwrap(),
        shard,
        prequeue_rank: None,
        opens_at: None,
        status: StoredStatus::Waiting,
        issued_at: now,
        expires_at: now + Duration::hours(1),
        active_until: None,
        entered_at_ms,
        practice: None,
    };
    assert!(services.store.put_queue_token(&token, now).await.unwrap());
    let entrant = Entrant {
        concert_id: concert,
        user_id: token.user_id,
        token_id: token.token_id,
        number: token.number,
        shard,
        entered_at_ms,
    };
    (token, entrant)
}

/// Enters `count` fans one after another (each entry answered before the next is sent), so
/// their arrival order is the order of the returned list.
async fn enter_in_turn(api: &TestApi, concert_id: &str, prefix: &str, count: usize) -> Vec<Fan> {
    let mut fans = Vec::new();
    for token in api.users(prefix, count).await {
        let place = api.enter(&token, concert_id).await;
        fans.push((token, id(&place, "queue_token")));
        // Arrivals a few milliseconds apart: SQS stamps them to the millisecond.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    fans
}

/// Steps the admitter until every fan has been admitted. Whoever is admitted leaves at once,
/// freeing the slot for the next. Returns the fans' indexes in the groups they were admitted
/// in, one group per step.
async fn admission_groups(api: &TestApi, fans: &[Fan]) -> Vec<BTreeSet<usize>> {
    let mut waiting: BTreeSet<usize> = (0..fans.len()).collect();
    let mut groups = Vec::new();
    for _ in 0..200 {
        if waiting.is_empty() {
            return groups;
        }
        api.admit().await;
        let mut group = BTreeSet::new();
        for &index in &waiting {
            let (token, queue) = &fans[index];
            if api.queue_status(token, queue).await["status"] == "ACTIVE" {
                group.insert(index);
            }
        }
        for &index in &group {
            let (token, queue) = &fans[index];
            api.request(Method::DELETE, "/queue/tokens/current")
                .token(token)
                .queue(queue)
                .send()
                .await
                .expect(204);
            waiting.remove(&index);
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    panic!("not everyone was admitted: {waiting:?} still waiting after {groups:?}");
}

#[tokio::test]
async fn entrants_spread_over_shards_should_be_admitted_in_arrival_order() {
    spread_over_shards_in_arrival_order(4).await;
}

#[tokio::test]
async fn entrants_spread_over_more_shards_than_one_write_holds_should_be_admitted_in_arrival_order()
{
    // 100 shards: more progress items than one transaction holds, most of them empty.
    spread_over_shards_in_arrival_order(100).await;
}

async fn spread_over_shards_in_arrival_order(shards: u32) {
    let api = TestApi::start_with(|config| {
        config.queue_entry_shards = shards;
        config.queue_max_active = 3;
    })
    .await;
    let (concert_id, _) = api.concert_with_one_date().await;
    let fans = enter_in_turn(&api, &concert_id, "order", 24).await;
    let shards: BTreeSet<u64> = fans
        .iter()
        .map(|(_, queue)| claims(queue)["shd"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        shards.len() >= 3,
        "entrants should spread over the shards: {shards:?}"
    );

    // Three slots: each step admits the next three in arrival order, whatever their shards.
    let groups = admission_groups(&api, &fans).await;
    let expected: Vec<BTreeSet<usize>> = (0..8).map(|g| (g * 3..g * 3 + 3).collect()).collect();
    assert_eq!(groups, expected);
}

#[tokio::test]
async fn the_merge_should_keep_arrival_order_when_shards_show_only_their_heads() {
    // SQS shows at most ten messages of a group at a time. Twelve fans arrive in shard 0, then
    // twelve in shard 1 (placed in line through the store and the entry queue themselves, to
    // choose their shards): when the admitter sees shard 0's first ten and shard 1's first
    // ten, shard 0's eleventh and twelfth still come before anyone of shard 1.
    let api = TestApi::start_with(|config| {
        config.queue_entry_shards = 2;
        config.queue_max_active = 15;
    })
    .await;
    let services = &api.stack.services;
    let (concert_id, _) = api.concert_with_one_date().await;
    let concert = parse_id(&concert_id).unwrap();
    let mut tokens = Vec::new();
    for index in 0..24 {
        let shard = u32::from(index >= 12);
        let (token, entrant) =
            waiting_place(&api, concert, shard, Utc::now().timestamp_millis()).await;
        services.entry_queue.send(&entrant).await.unwrap();
        tokens.push(token);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let mut waiting: BTreeSet<usize> = (0..tokens.len()).collect();
    let mut groups = Vec::new();
    while !waiting.is_empty() && groups.len() < 10 {
        api.admit().await;
        let mut group = BTreeSet::new();
        for &index in &waiting {
            let token = &tokens[index];
            let (stored, _) = services
                .store
                .queue_state(concert, token.user_id, token.shard)
                .await
                .unwrap();
            if stored.unwrap().status == StoredStatus::Active {
                group.insert(index);
            }
        }
        for &index in &group {
            let token = &tokens[index];
            assert!(services
                .store
                .end_queue_token(concert, token.user_id, token.token_id)
                .await
                .unwrap());
            waiting.remove(&index);
        }
        groups.push(group);
    }
    let expected: Vec<BTreeSet<usize>> = vec![(0..15).collect(), (15..24).collect()];
    assert_eq!(groups, expected);
}

#[tokio::test]
async fn fans_entering_together_should_be_shown_positions_in_the_order_they_are_admitted() {
    // Thirty fans press at once: their sends reach SQS in another order than their counter
    // numbered them. Positions count by number, so admission must go by number too.
    const FANS: usize = 30;
    let api = TestApi::start_with(|config| config.queue_max_active = 5).await;
    let (concert_id, _) = api.concert_with_one_date().await;
    let tokens = api.users("together", FANS).await;
    let places =
        futures::future::join_all(tokens.iter().map(|token| api.enter(token, &concert_id))).await;
    let fans: Vec<Fan> = tokens
        .into_iter()
        .zip(&places)
        .map(|(token, place)| (token, id(place, "queue_token")))
        .collect();
    let number = |fan: &Fan| claims(&fan.1)["num"].as_u64().unwrap();
    let mut waiting: BTreeSet<usize> = (0..FANS).collect();
    let mut steps = 0;
    while !waiting.is_empty() {
        steps += 1;
        assert!(steps < 50, "the line did not drain: {waiting:?}");
        api.admit().await;
        let mut positions = Vec::new();
        let mut admitted = Vec::new();
        for &index in &waiting {
            let (token, queue) = &fans[index];
            let status = api.queue_status(token, queue).await;
            match status["status"].as_str() {
                Some("ACTIVE") => admitted.push(index),
                Some("WAITING") => positions.push((status["position"].as_u64().unwrap(), index)),
                other => panic!("fan {index}: {other:?}"),
            }
        }
        // Everyone still waiting has a place of their own: 0, 1, 2, ... in number order.
        positions.sort_unstable();
        assert_eq!(
            positions
                .iter()
                .map(|(position, _)| *position)
                .collect::<Vec<_>>(),
            (0..positions.len() as u64).collect::<Vec<_>>(),
            "positions after step {steps}"
        );
        let by_number: Vec<usize> = {
            let mut rest: Vec<usize> = positions.iter().map(|(_, index)| *index).collect();
            rest.sort_by_key(|&index| number(&fans[index]));
            rest
        };
        assert_eq!(
            positions
                .iter()
                .map(|(_, index)| *index)
                .collect::<Vec<_>>(),
            by_number
        );
        // Those admitted had lower numbers than anyone still waiting.
        let lowest_waiting = positions.iter().map(|(_, i)| number(&fans[*i])).min();
        for &index in &admitted {
            assert!(Some(number(&fans[index])) < lowest_waiting.or(Some(u64::MAX)));
            let (token, queue) = &fans[index];
            api.request(Method::DELETE, "/queue/tokens/current")
                .token(token)
                .queue(queue)
                .send()
                .await
                .expect(204);
            waiting.remove(&index);
        }
        assert!(admitted.len() <= 5);
    }
}

#[tokio::test]
async fn a_number_that_never_arrives_should_hold_its_shard_for_the_grace_then_be_passed_over() {
    // Three places taken in one shard; the entry of the second stopped after writing its
    // token and before sending its message (a crash between two steps).
    let api = TestApi::start_with(|config| config.queue_entry_grace_millis = 3_000).await;
    let services = &api.stack.services;
    let (concert_id, _) = api.concert_with_one_date().await;
    let concert = parse_id(&concert_id).unwrap();
    let mut tokens = Vec::new();
    for index in 0..3 {
        let (token, entrant) = waiting_place(&api, concert, 0, Utc::now().timestamp_millis()).await;
        if index != 1 {
            services.entry_queue.send(&entrant).await.unwrap();
        }
        tokens.push(token);
    }
    let (api, tokens) = (&api, &tokens);
    let status = |index: usize| {
        let token = &tokens[index];
        async move {
            let (stored, progress) = services
                .store
                .queue_state(concert, token.user_id, 0)
                .await
                .unwrap();
            stored.unwrap().status_in_line(api.clock.now(), &progress)
        }
    };
    use shared::queue::TokenStatus;
    // Number 2 may still be on its way: number 3 waits behind it.
    assert_eq!(api.admit().await.admitted, 1);
    assert_eq!(status(0).await, TokenStatus::Active);
    assert_eq!(status(2).await, TokenStatus::Waiting);
    assert_eq!(api.admit().await.admitted, 0);
    // Past the grace, number 2 is passed over and 3 goes.
    tokio::time::sleep(std::time::Duration::from_millis(3_200)).await;
    let report = api.admit().await;
    assert_eq!((report.admitted, report.passed_over), (1, 1));
    assert_eq!(status(2).await, TokenStatus::Active);
    // The place that never arrived has ended: its holder sees it expired, not waiting forever.
    assert_eq!(status(1).await, TokenStatus::Expired);
}

#[tokio::test]
async fn a_paced_line_should_dig_for_a_number_sqs_shows_late_instead_of_passing_it_over() {
    // One a step. Shard 1 holds four early places; shard 0 has twelve, but the message of its
    // number 2 reaches SQS behind all the others, so a receive (ten a group) shows 1, 3..11.
    // Each step's one admission goes to a place ahead of number 2: the line is never out of
    // slots, only of pace, and must still dig for number 2 before its grace runs out.
    let api = TestApi::start_with(|config| {
        config.queue_entry_shards = 2;
        config.queue_max_active = 50;
        config.queue_admit_per_second = 1;
        config.admit_interval_seconds = 1;
        config.queue_entry_grace_millis = 800;
    })
    .await;
    let services = &api.stack.services;
    let (concert_id, _) = api.concert_with_one_date().await;
    let concert = parse_id(&concert_id).unwrap();
    let start = Utc::now().timestamp_millis();
    let mut places: Vec<(QueueToken, Entrant)> = Vec::new();
    for (shard, count, from_ms) in [(1u32, 4i64, 0i64), (0, 12, 10)] {
        for index in 0..count {
            places.push(waiting_place(&api, concert, shard, start + from_ms + index).await);
        }
    }
    // Shard 0's number 2 is place 5 of the list; its message goes last.
    let late = 5;
    for (index, (_, entrant)) in places.iter().enumerate() {
        if index != late {
            services.entry_queue.send(entrant).await.unwrap();
        }
    }
    services.entry_queue.send(&places[late].1).await.unwrap();

    let mut passed_over = 0;
    for _ in 0..8 {
        let report = api.admit().await;
        assert!(report.admitted <= 1, "{report:?}");
        passed_over += report.passed_over;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert_eq!(
        passed_over, 0,
        "a place was passed over although its message was there"
    );
    // In order: shard 1's four, then shard 0's numbers 1, 2, 3, 4.
    for (index, (token, _)) in places.iter().enumerate() {
        let (stored, progress) = services
            .store
            .queue_state(concert, token.user_id, token.shard)
            .await
            .unwrap();
        let status = stored.unwrap().status_in_line(api.clock.now(), &progress);
        let expected = if index < 8 {
            shared::queue::TokenStatus::Active
        } else {
            shared::queue::TokenStatus::Waiting
        };
        assert_eq!(status, expected, "place {index} (shard {})", token.shard);
    }
}

#[tokio::test]
async fn the_pre_queue_should_randomise_only_the_early_entrants() {
    pre_queue_randomises_only_the_early_entrants(4).await;
}

#[tokio::test]
async fn the_pre_queue_over_more_shards_than_one_write_holds_should_drain_in_rank_order() {
    // 100 shards, most with nobody in their pre-queue.
    pre_queue_randomises_only_the_early_entrants(100).await;
}

async fn pre_queue_randomises_only_the_early_entrants(shards: u32) {
    const EARLY: usize = 30;
    const LATE: usize = 10;
    let api = TestApi::start_with_manual_clock(
        |config| {
            config.queue_entry_shards = shards;
            config.queue_max_active = 5;
        },
        false,
    )
    .await;
    let admin = api.admin().await;
    let opens_at: DateTime<Utc> = api.clock.now() + Duration::minutes(10);
    let mut body = concert_body(1);
    body["booking_opens_at"] = opens_at.to_rfc3339().into();
    body["prequeue"] = true.into();
    let concert = api
        .post("/admin/concerts", Some(&admin), body.clone())
        .await
        .expect(201);
    assert_eq!(concert["prequeue"], true);
    assert_eq!(concert["status"], "SCHEDULED");
    let concert_id = id(&concert, "concert_id");

    // A concert without a pre-queue still turns early entrants away.
    body["prequeue"] = false.into();
    let plain = api
        .post("/admin/concerts", Some(&admin), body)
        .await
        .expect(201);
    let early_bird = api.user("early_bird").await;
    api.post(
        "/queue/tokens",
        Some(&early_bird),
        serde_json::json!({ "concert_id": id(&plain, "concert_id") }),
    )
    .await
    .expect_error(422, "BOOKING_CLOSED");

    // Before the opening: a place in the pre-queue, waiting at least until the opening.
    let early = enter_in_turn(&api, &concert_id, "early", EARLY).await;
    let (token, queue) = &early[0];
    let status = api.queue_status(token, queue).await;
    assert_eq!(status["status"], "WAITING");
    assert!(status["position"].as_u64().unwrap() < EARLY as u64 * u64::from(shards));
    assert!(status["estimated_wait_seconds"].as_u64().unwrap() >= 600);
    // Nobody is admitted before the opening.
    assert_eq!(api.admit().await.admitted, 0);

    // After the opening: the line, behind everyone who came early.
    api.clock.set(opens_at + Duration::seconds(3));
    let late = enter_in_turn(&api, &concert_id, "late", LATE).await;
    let everyone: Vec<Fan> = early.iter().chain(&late).cloned().collect();
    let groups = admission_groups(&api, &everyone).await;
    let order: Vec<usize> = groups.iter().flatten().copied().collect();

    // Every early entrant before every late one (five slots, so in groups of five)...
    let early_groups: BTreeSet<usize> = groups[..EARLY / 5].iter().flatten().copied().collect();
    assert_eq!(early_groups, (0..EARLY).collect());
    // ...the late ones in arrival order...
    let late_groups: Vec<BTreeSet<usize>> = groups[EARLY / 5..].to_vec();
    let expected: Vec<BTreeSet<usize>> = (0..LATE / 5)
        .map(|g| (EARLY + g * 5..EARLY + g * 5 + 5).collect())
        .collect();
    assert_eq!(late_groups, expected);
    // ...and the early ones not in theirs, but in the order of their random ranks, merged over
    // the shards.
    assert_ne!(order[..EARLY], (0..EARLY).collect::<Vec<_>>()[..]);
    let concert = parse_id(&concert_id).unwrap();
    let mut ranks = Vec::new();
    for group in &groups[..EARLY / 5] {
        let mut group_ranks = Vec::new();
        for &index in group {
            let claims = claims(&everyone[index].1);
            let user = parse_id(claims["sub"].as_str().unwrap()).unwrap();
            let shard = claims["shd"].as_u64().unwrap_or(0) as u32;
            let (token, _) = api
                .stack
                .services
                .store
                .queue_state(concert, user, shard)
                .await
                .unwrap();
            group_ranks.push(
                token
                    .unwrap()
                    .prequeue_rank
                    .expect("an early entrant has a rank"),
            );
        }
        group_ranks.sort_unstable();
        ranks.push(group_ranks);
    }
    for pair in ranks.windows(2) {
        assert!(
            pair[0].last() < pair[1].first(),
            "groups out of rank order: {ranks:?}"
        );
    }
}
