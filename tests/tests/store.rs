//! The DynamoDB adapter on its own, against DynamoDB Local: the conditional writes the domain
//! relies on, under concurrency, without the HTTP layer in between.

use chrono::Duration;
use e2e_tests::TestApi;
use futures::future::join_all;
use shared::ids::new_id;
use shared::money::{Account, EntryType};
use shared::queue::{QueueToken, StoredStatus};
use shared::store::Role;

#[tokio::test]
async fn each_entry_shard_should_hand_out_each_number_once_under_concurrency() {
    let api = TestApi::start().await;
    let store = &api.stack.services.store;
    let concert = new_id();
    let counters = join_all((0..200).map(|i| store.next_queue_number(concert, i % 2))).await;
    let mut numbers: Vec<u64> = counters.into_iter().map(|number| number.unwrap()).collect();
    numbers.sort_unstable();
    // Two shards, each numbering its own hundred from 1.
    let expected: Vec<u64> = (1..=100).flat_map(|n| [n, n]).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn a_balance_change_from_a_stale_read_should_fail_and_change_nothing() {
    let api = TestApi::start().await;
    let token = api.user("saver").await;
    let user_id = shared::ids::parse_id(
        api.get("/me", Some(&token)).await.expect(200)["user_id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let store = &api.stack.services.store;
    let now = api.clock.now();
    let read = store.account(user_id).await.unwrap().unwrap();
    assert_eq!(read, Account::default());
    // Twenty writers all start from the same read: exactly one may apply its change.
    let attempts = join_all((0..20).map(|_| async {
        let (entry, after) = read
            .apply(EntryType::Charge, 1_000, None, new_id(), now)
            .unwrap();
        store.charge(user_id, read, after, &entry, None, now).await
    }))
    .await;
    let applied = attempts
        .iter()
        .filter(|attempt| matches!(attempt, Ok(Ok(()))))
        .count();
    assert_eq!(applied, 1);
    for attempt in attempts {
        // Refused for the stale balance, or for colliding with the winner's transaction.
        if let Ok(Err(cancelled)) = attempt {
            assert!(
                cancelled.failed(Role::Account) || (cancelled.busy && cancelled.failed.is_empty()),
                "{cancelled:?}"
            );
        }
    }
    assert_eq!(
        store.account(user_id).await.unwrap().unwrap(),
        Account {
            balance: 1_000,
            ledger_seq: 1
        }
    );
    let (ledger, _) = store.ledger(user_id, 10, None).await.unwrap();
    assert_eq!(ledger.len(), 1);
}

#[tokio::test]
async fn a_live_queue_token_should_not_be_replaced_but_an_ended_one_should() {
    let api = TestApi::start().await;
    let store = &api.stack.services.store;
    let now = api.clock.now();
    let (concert, user) = (new_id(), new_id());
    store.next_queue_number(concert, 0).await.unwrap();
    let token = |number| QueueToken {
        token_id: new_id(),
        user_id: user,
        concert_id: concert,
        number,
        shard: 0,
        prequeue_rank: None,
        opens_at: None,
        status: StoredStatus::Waiting,
        issued_at: now,
        expires_at: now + Duration::hours(1),
        active_until: None,
        entered_at_ms: 0,
        practice: None,
    };
    let first = token(1);
    assert!(store.put_queue_token(&first, now).await.unwrap());
    assert!(!store.put_queue_token(&token(2), now).await.unwrap());
    // Once its time has passed it may be replaced, without anyone tidying it first.
    assert!(store
        .put_queue_token(&token(3), now + Duration::hours(1))
        .await
        .unwrap());
    let (stored, _) = store.queue_state(concert, user, 0).await.unwrap();
    assert_eq!(stored.unwrap().number, 3);
    // Ending a token that was replaced changes nothing.
    assert!(!store
        .end_queue_token(concert, user, first.token_id)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_cursor_should_only_continue_the_query_that_made_it() {
    let api = TestApi::start().await;
    let store = &api.stack.services.store;
    let other = api.user("other").await;
    let other_id = shared::ids::parse_id(
        api.get("/me", Some(&other)).await.expect(200)["user_id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    api.charge(&other, 10, None).await.expect(200);
    api.charge(&other, 10, None).await.expect(200);
    let (_, cursor) = store.ledger(other_id, 1, None).await.unwrap();
    let cursor = cursor.expect("a second page");
    // Someone else's cursor does not read this user's ledger.
    assert!(store.ledger(new_id(), 1, Some(&cursor)).await.is_err());
    assert!(store
        .reservations_of(other_id, 1, Some(&cursor))
        .await
        .is_err());
    assert_eq!(
        store
            .ledger(other_id, 1, Some(&cursor))
            .await
            .unwrap()
            .0
            .len(),
        1
    );
}

/// The SDK gives every `TransactWriteItems` call a `ClientRequestToken` and repeats it on its
/// own retries: the store under test must take the same token with the same request as done
/// (no second effect), and refuse the token with another request. This is what makes a retry
/// after a lost answer safe (docs/RELIABILITY.md); it runs against DynamoDB Local in
/// `infra/test.sh` and against LocalStack in `infra/localstack.sh`.
#[tokio::test]
async fn a_transaction_repeated_with_its_client_request_token_should_have_one_effect() {
    use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
    let api = TestApi::start().await;
    let store = &api.stack.services.store;
    let key = std::collections::HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("TEST#{}", new_id())),
        ),
        ("sk".to_owned(), AttributeValue::S("COUNTER".to_owned())),
    ]);
    let add = |amount: i64| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(store.table())
                    .set_key(Some(key.clone()))
                    .update_expression("ADD n :amount")
                    .expression_attribute_values(":amount", AttributeValue::N(amount.to_string()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let counter = || async {
        let item = store
            .client()
            .get_item()
            .table_name(store.table())
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        item["n"].as_n().unwrap().parse::<i64>().unwrap()
    };
    let token = new_id().to_string();
    for _ in 0..3 {
        store
            .client()
            .transact_write_items()
            .client_request_token(&token)
            .transact_items(add(1))
            .send()
            .await
            .expect("the same token and request again is answered as done");
    }
    assert_eq!(counter().await, 1, "the repeats had no effect");
    let other = store
        .client()
        .transact_write_items()
        .client_request_token(&token)
        .transact_items(add(5))
        .send()
        .await
        .expect_err("the token with another request is refused");
    assert!(
        other
            .as_service_error()
            .is_some_and(|err| err.is_idempotent_parameter_mismatch_exception()),
        "{other:?}"
    );
    assert_eq!(counter().await, 1);
}
