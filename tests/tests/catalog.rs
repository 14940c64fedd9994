//! Admin concert creation and the public catalog through HTTP.

use e2e_tests::{concert_body, Reply, TestApi};
use serde_json::{json, Value};
use std::collections::HashSet;

fn field(reply: Reply) -> String {
    let body = reply.expect_error(400, "VALIDATION_FAILED");
    body["error"]["details"]["field"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn admin_should_create_a_concert_that_the_catalog_then_shows() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let created = api
        .post("/admin/concerts", Some(&admin), concert_body(2))
        .await
        .expect(201);
    assert_eq!(created["title"], "Winter Live");
    assert_eq!(created["status"], "BOOKING_OPEN");
    assert_eq!(created["image_url"], "https://example.com/poster.jpg");
    let schedules = created["schedules"].as_array().unwrap();
    assert_eq!(schedules.len(), 2);
    assert!(schedules.iter().all(|s| s["total_seats"] == 50));
    assert!(schedules[0]["starts_at"].as_str() < schedules[1]["starts_at"].as_str());

    let id = created["concert_id"].as_str().unwrap();
    let one = api.get(&format!("/concerts/{id}"), None).await.expect(200);
    for key in [
        "concert_id",
        "title",
        "artist",
        "venue",
        "category",
        "description",
        "image_url",
        "booking_opens_at",
        "booking_closes_at",
        "status",
    ] {
        assert_eq!(one[key], created[key], "{key}");
    }
    let list = api.get("/concerts", None).await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["concert_id"], created["concert_id"]);
    assert_eq!(list["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_seat_map_should_set_the_seat_count_of_every_date() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let mut body = concert_body(1);
    body["seat_map"] = json!({"sections": [
        {"name": "Floor", "grade": "VIP", "price": 200000, "rows": 2, "seats_per_row": 10},
        {"name": "Balcony", "grade": "R", "price": 99000, "rows": 3, "seats_per_row": 5},
    ]});
    body.as_object_mut().unwrap().remove("price");
    let created = api
        .post("/admin/concerts", Some(&admin), body)
        .await
        .expect(201);
    assert_eq!(created["schedules"][0]["total_seats"], 35);
}

#[tokio::test]
async fn status_should_follow_the_booking_window() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let now = chrono::Utc::now();
    let mut later = concert_body(1);
    later["booking_opens_at"] = json!((now + chrono::Duration::days(1)).to_rfc3339());
    let scheduled = api
        .post("/admin/concerts", Some(&admin), later)
        .await
        .expect(201);
    assert_eq!(scheduled["status"], "SCHEDULED");
    let mut past = concert_body(1);
    past["booking_opens_at"] = json!((now - chrono::Duration::days(3)).to_rfc3339());
    past["booking_closes_at"] = json!((now - chrono::Duration::days(2)).to_rfc3339());
    let closed = api
        .post("/admin/concerts", Some(&admin), past)
        .await
        .expect(201);
    assert_eq!(closed["status"], "BOOKING_CLOSED");
}

#[tokio::test]
async fn only_admins_should_create_concerts() {
    let api = TestApi::start().await;
    let fan = api.user("fan").await;
    api.post("/admin/concerts", Some(&fan), concert_body(1))
        .await
        .expect_error(403, "FORBIDDEN");
    api.post("/admin/concerts", None, concert_body(1))
        .await
        .expect_error(401, "UNAUTHENTICATED");
    // Nothing was created by the refused attempts.
    let list = api.get("/concerts", None).await.expect(200);
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn concert_creation_should_refuse_bad_input_naming_the_field() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let create = |body: Value| api.post("/admin/concerts", Some(&admin), body);
    let with = |key: &str, value: Value| {
        let mut body = concert_body(1);
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = concert_body(1);
        body.as_object_mut().unwrap().remove(key);
        body
    };
    assert_eq!(field(create(json!("{oops")).await), "body");
    assert_eq!(field(create(without("title")).await), "title");
    assert_eq!(field(create(with("title", json!(""))).await), "title");
    assert_eq!(field(create(with("title", json!(7))).await), "title");
    assert_eq!(
        field(create(with("booking_opens_at", json!("soon"))).await),
        "booking_opens_at"
    );
    assert_eq!(
        field(create(with("booking_closes_at", json!("2000-01-01T00:00:00Z"))).await),
        "booking_closes_at"
    );
    assert_eq!(field(create(with("price", json!(-1))).await), "price");
    assert_eq!(field(create(with("price", json!(1.5))).await), "price");
    assert_eq!(field(create(without("price")).await), "price");
    assert_eq!(
        field(create(with("image_url", json!("javascript:alert(1)"))).await),
        "image_url"
    );
    assert_eq!(
        field(create(with("schedules", json!([]))).await),
        "schedules"
    );
    assert_eq!(
        field(
            create(with(
                "schedules",
                json!([{"starts_at": "2000-01-01T00:00:00Z"}])
            ))
            .await
        ),
        "schedules[0].starts_at"
    );
    assert_eq!(
        field(
            create(with(
                "seat_map",
                json!({"sections": [
                    {"name": "A", "grade": "R", "price": 1, "rows": 0, "seats_per_row": 10}
                ]})
            ))
            .await
        ),
        "seat_map.sections[0].rows"
    );
    assert_eq!(
        field(create(with("seat_map", json!({"sections": [{"name": "A"}]}))).await),
        "seat_map.sections[0].grade"
    );
    let list = api.get("/concerts", None).await.expect(200);
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_or_malformed_concert_ids_should_be_not_found() {
    let api = TestApi::start().await;
    api.get(&format!("/concerts/{}", uuid::Uuid::now_v7()), None)
        .await
        .expect_error(404, "NOT_FOUND");
    api.get("/concerts/not-a-uuid", None)
        .await
        .expect_error(404, "NOT_FOUND");
    api.get("/no/such/route", None)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn the_concert_list_should_page_newest_first_without_gaps() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let concert = api.concert_on_sale(&admin, 1).await;
        created.push(concert["concert_id"].as_str().unwrap().to_owned());
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/concerts?limit=2&cursor={cursor}"),
            None => "/concerts?limit=2".to_owned(),
        };
        let page = api.get(&path, None).await.expect(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|c| c["concert_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);

    api.get("/concerts?limit=0", None)
        .await
        .expect_error(400, "VALIDATION_FAILED");
    api.get("/concerts?limit=abc", None)
        .await
        .expect_error(400, "VALIDATION_FAILED");
    api.get("/concerts?cursor=bm90LW91cnM", None)
        .await
        .expect_error(400, "VALIDATION_FAILED");
}
