//! The practice site in a real browser: Debian's headless chromium, driven through
//! chromedriver, against the local stack (scheduler on, two shoppers at a time). One fan
//! imports a sale page served on this machine and waits for its open time; a second fan picks
//! it from the list; both queue and press "hold" on seat 1 together: one wins and pays, the
//! other is told the seat went to someone else; a third waits in line until the winner has
//! paid. Screenshots of each step go to `target/screenshots/`.

use chrono::{Duration, Utc};
use e2e_tests::pages::{korean_sale_page, Page, PageServer};
use e2e_tests::webdriver::{Browser, Driver};
use e2e_tests::TestApi;
use std::path::PathBuf;

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/screenshots")
        .join(format!("{name}.png"))
}

/// From the concert page to the seat map of its first date: wait for the open time, book,
/// wait in line until admitted, pick the date.
async fn queue_to_seats(browser: &Browser) {
    browser
        .wait_for("#book-button:enabled", |_| true, "enabled at the open time")
        .await
        .click()
        .await;
    browser
        .wait_for(
            "body[data-screen='queue'], body[data-screen='dates']",
            |_| true,
            "in line",
        )
        .await;
    browser.on_screen("dates").await;
    browser.find(".schedule-pick").await.click().await;
    browser.on_screen("seats").await;
    browser
        .wait_for(".seat[data-status='AVAILABLE']", |_| true, "a seat map")
        .await;
}

/// Waits until one of two browsers that pressed "hold" together holds the seat (on the payment
/// screen) and the other has been told it lost it: (winner, loser).
async fn race_outcome<'a>(a: &'a Browser, b: &'a Browser) -> (&'a Browser, &'a Browser) {
    let screen = "return document.body.dataset.screen";
    for _ in 0..150 {
        let a_won = a.script(screen).await == "pay";
        let b_won = b.script(screen).await == "pay";
        assert!(!(a_won && b_won), "both held seat 1");
        if a_won && told_seat_lost(b).await {
            return (a, b);
        }
        if b_won && told_seat_lost(a).await {
            return (b, a);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the race for seat 1 did not end with one winner and one clear refusal");
}

/// Whether the page told its fan that seat 1 went to someone else: the hold was refused with
/// the contract's `SEAT_UNAVAILABLE`, or (when the other hold landed first) the live map took
/// the seat out of the fan's choice before the request left, and said so.
async fn told_seat_lost(browser: &Browser) -> bool {
    browser.text_of("#error").await.contains("SEAT_UNAVAILABLE")
        || browser
            .text_of("#seat-message")
            .await
            .contains("Someone else just took seat(s) 1")
}

/// A script counting the page's requests (resource timing) whose address contains `path`.
fn requests_to(path: &str) -> String {
    format!(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('{path}')).length"
    )
}

async fn choose_seat(browser: &Browser, seat_no: u32) {
    browser
        .find(&format!(".seat[data-seat-no='{seat_no}']"))
        .await
        .click()
        .await;
    browser
        .wait_for(
            &format!(".seat[data-seat-no='{seat_no}'][aria-pressed='true']"),
            |_| true,
            "selected",
        )
        .await;
}

#[tokio::test]
async fn a_fan_should_practise_an_imported_on_sale_from_countdown_to_payment() {
    // The page states an open time a few seconds from now, to the second (JSON-LD).
    let opens_at = Utc::now() + Duration::seconds(12);
    let opens_at = opens_at - Duration::nanoseconds(i64::from(opens_at.timestamp_subsec_nanos()));
    let server = PageServer::start(vec![(
        "/goods/26001",
        Page::html(korean_sale_page(opens_at)),
    )])
    .await;
    let addr = server.addr;
    let api = TestApi::start_with_options(
        move |config| {
            config.import_test_allow = vec![addr];
            config.queue_max_active = 2;
        },
        true,
    )
    .await;
    let base = api.stack.url();
    let driver = Driver::start().await;

    let fan = driver.browser().await;
    fan.go(&format!("{base}/")).await;
    fan.on_screen("login").await;
    fan.screenshot(&shot("01-login")).await;
    fan.sign_up(&base, "browser_fan", "Practice Fan", "en")
        .await;

    // Import: the concert page with its countdown, the Book button off until the open time.
    fan.find("#import-url")
        .await
        .type_text(&server.url("/goods/26001"))
        .await;
    fan.find("#import-button").await.click().await;
    fan.on_screen("concert").await;
    fan.wait_for(
        "#concert-title",
        |text| text.contains("IU"),
        "the imported title",
    )
    .await;
    let book = fan.find("#book-button").await;
    assert!(!book.enabled().await, "Book is off before the open time");
    fan.screenshot(&shot("02-countdown")).await;

    // A second fan picks the same concert from the list.
    let rival = driver.browser().await;
    rival
        .sign_up(&base, "browser_rival", "Practice Fan", "en")
        .await;
    rival
        .wait_for(".concert-pick", |_| true, "the concert list")
        .await
        .click()
        .await;
    rival.on_screen("concert").await;

    // The open time passes; both book, wait in line and reach the seat map.
    queue_to_seats(&fan).await;
    // The seat map says how many the fan may still take under the ticket limit.
    fan.wait_for(
        "#ticket-limit",
        |text| text.contains("4 more seat(s)") && text.contains("limit 4 per person"),
        "the ticket limit",
    )
    .await;
    fan.screenshot(&shot("04-seat-map")).await;
    queue_to_seats(&rival).await;

    // A third fan comes later: both slots are taken, so they wait in line.
    let late = driver.browser().await;
    late.sign_up(&base, "browser_late", "Practice Fan", "en")
        .await;
    late.wait_for(".concert-pick", |_| true, "the concert list")
        .await
        .click()
        .await;
    late.on_screen("concert").await;
    late.wait_for("#book-button:enabled", |_| true, "enabled")
        .await
        .click()
        .await;
    late.on_screen("queue").await;
    late.wait_for("#queue-position", |text| text.contains('0'), "a position")
        .await;
    late.screenshot(&shot("03-waiting-room")).await;
    // While waiting, the page places itself from the public progress document and its own
    // token, and asks the API nothing about its place.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(late.script(&requests_to("/queue/tokens/current")).await, 0);
    assert!(late.script(&requests_to("/queue/progress/")).await.as_u64() >= Some(2));

    // Both want seat 1 and press "hold" at the same moment: one wins the race at the server,
    // the other is told the seat went to someone else.
    choose_seat(&fan, 1).await;
    choose_seat(&rival, 1).await;
    let fan_hold = fan.find("#hold-button").await;
    let rival_hold = rival.find("#hold-button").await;
    fan_hold.click().await;
    rival_hold.click().await;
    let (winner, loser) = race_outcome(&fan, &rival).await;
    winner
        .wait_for(
            "#hold-timer",
            |text| !text.trim().is_empty(),
            "a running timer",
        )
        .await;
    winner.screenshot(&shot("05-hold")).await;
    loser
        .wait_for(
            ".seat[data-seat-no='1'][data-status='HELD']",
            |_| true,
            "seat 1 shown held",
        )
        .await;
    loser.screenshot(&shot("06-lost-race")).await;

    // The winner charges the practice balance and pays.
    winner
        .find("#charge-amount")
        .await
        .type_text("200000")
        .await;
    winner.find("#charge-button").await.click().await;
    winner
        .wait_for("#balance", |text| text.contains("200"), "the new balance")
        .await;
    winner.find("#pay-button").await.click().await;
    winner.on_screen("done").await;
    winner
        .wait_for(
            "#reservation-result",
            |text| text.contains("CONFIRMED"),
            "confirmed",
        )
        .await;
    winner
        .wait_for(
            ".my-reservation[data-status='CONFIRMED']",
            |_| true,
            "listed",
        )
        .await;
    let timing = winner.find("#timing-table").await.text().await;
    assert!(!timing.trim().is_empty(), "the step timings are shown");
    winner.screenshot(&shot("07-paid")).await;

    // Paying ended the winner's queue token, which freed a slot: the late fan is let in, on
    // one question to the API once the document showed admission had reached their place.
    late.on_screen("dates").await;
    assert_eq!(late.script(&requests_to("/queue/tokens/current")).await, 1);

    // The loser sees the seat booked.
    loser
        .wait_for(
            ".seat[data-seat-no='1'][data-status='BOOKED']",
            |_| true,
            "seat 1 shown booked",
        )
        .await;

    // The booking-page layouts the importer picks by the page's host, on the same seat map.
    for layout in ["interpark", "yes24", "melon", "ticketlink"] {
        loser
            .script(&format!(
                "document.body.className = 'layout-{layout}'; window.scrollTo(0, 0);"
            ))
            .await;
        loser
            .screenshot(&shot(&format!("08-layout-{layout}")))
            .await;
    }

    fan.close().await;
    rival.close().await;
    late.close().await;
}
