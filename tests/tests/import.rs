//! `POST /performances/import` through HTTP: a page served on this machine (reachable only
//! through the test-only `IMPORT_TEST_ALLOW` setting), the same page twice, the user's last
//! entered URL, and every refusal in the contract's error format.

use chrono::{Duration, Utc};
use e2e_tests::pages::{korean_sale_page, Page, PageServer};
use e2e_tests::{id, TestApi};
use serde_json::json;

async fn import(api: &TestApi, token: &str, url: &str) -> e2e_tests::Reply {
    api.post("/performances/import", Some(token), json!({ "url": url }))
        .await
}

#[tokio::test]
async fn a_sale_page_should_become_one_bookable_concert_however_often_it_is_imported() {
    let opens_at = (Utc::now() + Duration::minutes(5))
        .with_timezone(&Utc)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        + Duration::days(1);
    let server = PageServer::start(vec![(
        "/goods/26001",
        Page::html(korean_sale_page(opens_at)),
    )])
    .await;
    let addr = server.addr;
    let api = TestApi::start_with(move |config| config.import_test_allow = vec![addr]).await;
    let fan = api.user("importer").await;

    let url = server.url("/goods/26001?utm_source=share#seats");
    let concert = import(&api, &fan, &url).await.expect(201);
    assert_eq!(concert["title"], "2026 IU Concert HEREH");
    assert_eq!(concert["artist"], "IU");
    assert_eq!(concert["venue"], "KSPO DOME");
    assert_eq!(
        concert["image_url"],
        "https://images.example.com/iu-poster.jpg"
    );
    assert_eq!(concert["status"], "SCHEDULED");
    assert_eq!(concert["template_code"], "default");
    assert_eq!(concert["source_url"], server.url("/goods/26001"));
    let opens: chrono::DateTime<Utc> = concert["booking_opens_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(opens, opens_at);
    assert_eq!(concert["schedules"][0]["total_seats"], 50);

    // The same page, written another way, by another fan: the same concert.
    let other = api.user("importer_two").await;
    let again = import(&api, &other, &server.url("/goods/26001/"))
        .await
        .expect(201);
    assert_eq!(again["concert_id"], concert["concert_id"]);

    // Both fans find what they entered when they come back.
    let me = api.get("/me", Some(&fan)).await.expect(200);
    assert_eq!(me["last_entered_url"], server.url("/goods/26001"));
    assert!(me["last_entered_at"].is_string());

    // The concert is a real one: listed, and its seats are on sale from the open time.
    let concert_id = id(&concert, "concert_id");
    let shown = api
        .get(&format!("/concerts/{concert_id}"), None)
        .await
        .expect(200);
    assert_eq!(shown["template_code"], "default");
}

#[tokio::test]
async fn two_fans_importing_one_page_at_once_should_get_one_concert() {
    let server =
        PageServer::start(vec![("/goods/1", Page::html(korean_sale_page(Utc::now())))]).await;
    let addr = server.addr;
    let api = TestApi::start_with(move |config| config.import_test_allow = vec![addr]).await;
    let fans = api.users("racer", 8).await;
    let url = server.url("/goods/1");
    let replies = futures::future::join_all(fans.iter().map(|fan| import(&api, fan, &url))).await;
    let ids: std::collections::BTreeSet<String> = replies
        .into_iter()
        .map(|reply| id(&reply.expect(201), "concert_id"))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let listed = api.get("/concerts", None).await.expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn addresses_that_are_not_public_should_be_refused_directly_and_through_redirects() {
    let server = PageServer::start(vec![
        (
            "/to-metadata",
            Page::redirect("http://169.254.169.254/latest/meta-data/"),
        ),
        ("/to-private", Page::redirect("http://10.0.0.1/")),
        (
            "/to-loopback-name",
            Page::redirect("http://localhost/admin"),
        ),
        ("/poster.png", Page::other("image/png", "not html")),
    ])
    .await;
    let addr = server.addr;
    let api = TestApi::start_with(move |config| {
        config.import_test_allow = vec![addr];
        config.imports_per_minute = 1_000;
    })
    .await;
    let fan = api.user("prober").await;

    for refused in [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://127.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
    ] {
        let reply = import(&api, &fan, refused).await;
        let body = reply.expect_error(422, "IMPORT_REFUSED");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{refused}"
        );
    }
    // Allowed for the first hop (the test server), refused where it redirects.
    for path in ["/to-metadata", "/to-private", "/to-loopback-name"] {
        import(&api, &fan, &server.url(path))
            .await
            .expect_error(422, "IMPORT_REFUSED");
    }
    // Not a page, and not a fetchable address at all.
    import(&api, &fan, &server.url("/poster.png"))
        .await
        .expect_error(422, "IMPORT_FAILED");
    for bad in [
        "ftp://example.com/",
        "not a url",
        "https://user:pw@example.com/",
        "http://example.com:8080/",
    ] {
        let body = import(&api, &fan, bad)
            .await
            .expect_error(400, "VALIDATION_FAILED");
        assert_eq!(body["error"]["details"]["field"], "url", "{bad}");
    }
    api.post("/performances/import", Some(&fan), json!({}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    api.post(
        "/performances/import",
        None,
        json!({ "url": "https://example.com/" }),
    )
    .await
    .expect_error(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn without_the_test_setting_even_the_test_server_should_be_refused() {
    let server = PageServer::start(vec![("/", Page::html("<title>x</title>"))]).await;
    let api = TestApi::start().await;
    let fan = api.user("default_fan").await;
    // Its port is not 80 or 443: refused before any address is looked at.
    import(&api, &fan, &server.url("/"))
        .await
        .expect_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_fan_should_be_limited_to_ten_page_fetches_a_minute() {
    let api = TestApi::start().await;
    let fan = api.user("eager").await;
    // Each is fetched (and refused); none was imported before.
    for i in 0..10 {
        import(&api, &fan, &format!("http://10.0.0.1/page{i}"))
            .await
            .expect_error(422, "IMPORT_REFUSED");
    }
    let body = import(&api, &fan, "http://10.0.0.1/page10")
        .await
        .expect_error(429, "RATE_LIMITED");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("minute"));
    // Someone else is not held back.
    let other = api.user("patient").await;
    import(&api, &other, "http://10.0.0.1/page0")
        .await
        .expect_error(422, "IMPORT_REFUSED");
}
