//! Domain events reach the stack's EventBridge bus: a rule on the bus forwards them to an SQS
//! queue made for this test, as a subscriber in AWS would.

use e2e_tests::{id, TestApi};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn holds_payments_and_cancellations_should_publish_their_events() {
    let api = TestApi::start().await;
    let aws = aws_config::load_from_env().await;
    let (sqs, events) = (
        aws_sdk_sqs::Client::new(&aws),
        aws_sdk_eventbridge::Client::new(&aws),
    );
    let bus = api.stack.services.events.bus().to_owned();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{bus}-subscriber"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name("all-ticketing-events")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["ticketing"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("all-ticketing-events")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("subscriber")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let (concert_id, schedule_id) = api.concert_with_one_date().await;
    let (alice, queue) = api.admitted_user("alice", &concert_id).await;
    api.charge(&alice, 100_000, None).await.expect(200);
    let held = api
        .hold(&alice, &queue, &schedule_id, &[1])
        .await
        .expect(201);
    let released = api
        .hold(&alice, &queue, &schedule_id, &[2])
        .await
        .expect(201);
    let path = format!("/reservations/{}", id(&released, "reservation_id"));
    api.request(reqwest::Method::DELETE, &path)
        .token(&alice)
        .send()
        .await
        .expect(204);
    let reservation_id = id(&held, "reservation_id");
    api.pay(&alice, &queue, &reservation_id, None)
        .await
        .expect(201);
    api.request(
        reqwest::Method::POST,
        &format!("/reservations/{reservation_id}/cancel"),
    )
    .token(&alice)
    .send()
    .await
    .expect(200);

    let expected: BTreeSet<&str> = [
        "HoldCreated",
        "HoldReleased",
        "PaymentCompleted",
        "BookingCancelled",
    ]
    .into();
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for message in received.messages.unwrap_or_default() {
            let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            assert_eq!(event["source"], "ticketing");
            if event["detail-type"] == "PaymentCompleted" {
                assert_eq!(event["detail"]["reservation_id"], reservation_id.as_str());
                assert!(event["detail"]["payment_id"].is_string());
            }
            seen.insert(event["detail-type"].as_str().unwrap().to_owned());
        }
        if expected.iter().all(|kind| seen.contains(*kind)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("events seen: {seen:?}, expected {expected:?}");
}
