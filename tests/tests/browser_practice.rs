//! A practice run at a hard setting in a real browser: a fan creates a run of a concert on sale
//! from the page (30,000 rivals, a 5,000-seat hall, Interpark's steps, a short countdown), a
//! second fan joins it by its link; both wait behind thousands in line and see the count fall,
//! type the security letters (a wrong answer is refused with a new picture), open the same
//! zone and watch the crowd's seats vanish, the same for both; a seat the crowd held unpaid
//! comes back while the fan is choosing, the fan holds it, goes through the site's steps,
//! pays, and sees where they stood against the crowd. Screenshots (Korean and English,
//! desktop and phone) go to `target/screenshots/practice-*.png`.

use e2e_tests::webdriver::{Browser, Driver};
use e2e_tests::{id, TestApi};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/screenshots")
        .join(format!("practice-{name}.png"))
}

/// Korean and English, desktop (1280×900) and phone (390×844); leaves the page in Korean on
/// the desktop. On the phone, nothing may overflow the page sideways.
async fn shots(browser: &Browser, name: &str) {
    for lang in ["ko", "en"] {
        browser.set_lang(lang).await;
        for (size, width, height, mobile) in
            [("desktop", 1280, 900, false), ("phone", 390, 844, true)]
        {
            browser.viewport(width, height, mobile).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
            browser.script("window.scrollTo(0, 0)").await;
            browser
                .screenshot(&shot(&format!("{name}-{lang}-{size}")))
                .await;
            if mobile {
                let overflow = browser
                    .script("return document.documentElement.scrollWidth - window.innerWidth")
                    .await;
                assert!(
                    overflow.as_i64().unwrap_or(0) <= 0,
                    "{name} ({lang}) overflows a phone's width by {overflow} px"
                );
            }
        }
    }
    browser.set_lang("ko").await;
    browser.viewport(1280, 900, false).await;
}

async fn number(browser: &Browser, script: &str) -> i64 {
    let value = browser.script(script).await;
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{script} gave {value}"))
}

/// The seats the zone map shows taken, and when the page last refreshed it.
async fn taken(browser: &Browser) -> (BTreeSet<u32>, i64) {
    let map = browser
        .script(
            "const m = document.getElementById('seat-map');
             return [m.dataset.takenSeats || '', m.dataset.refreshedAt || '0'];",
        )
        .await;
    let seats = map[0]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (seats, map[1].as_str().unwrap_or("0").parse().unwrap())
}

/// A read of the map made after `after` (page time, ms).
async fn fresh_taken(browser: &Browser, after: i64) -> (BTreeSet<u32>, i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = taken(browser).await;
        if read.1 > after {
            return read;
        }
        assert!(Instant::now() < deadline, "the seat map stopped refreshing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits in line until admitted (the dates screen), then takes the first date.
async fn wait_in_line_and_pick_date(browser: &Browser) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let screen = browser.script("return document.body.dataset.screen").await;
        if screen == "dates" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never admitted; the page says {:?}",
            browser.text_of("#error").await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser.find(".schedule-pick").await.click().await;
    browser.on_screen("captcha").await;
}

/// Types the security letters: the right ones for the picture shown.
async fn pass_letters(browser: &Browser, key: &[u8]) {
    let image = browser
        .wait_for("#captcha-image[data-captcha-id]", |_| true, "a picture")
        .await;
    let captcha_id = image.attribute("data-captcha-id").await.unwrap();
    let letters = shared::practice::captcha::answer(key, &captcha_id);
    browser
        .find("#captcha-answer")
        .await
        .type_text(&letters)
        .await;
    browser.find("#captcha-submit-button").await.click().await;
    browser.on_screen("seats").await;
}

#[tokio::test]
async fn a_fan_should_practise_a_hard_on_sale_against_the_crowd_and_see_where_they_stood() {
    let api = TestApi::start_with(|config| config.hold_ttl_seconds = 30).await;
    let key = shared::practice::captcha::key(api.secret.as_bytes());
    let admin = api.admin().await;
    let concert_id = id(&api.concert_on_sale(&admin, 1).await, "concert_id");
    let base = api.stack.url();
    let driver = Driver::start().await;

    // The first fan opens the concert and creates a hard run from the page.
    let fan = driver.browser().await;
    fan.viewport(1280, 900, false).await;
    fan.sign_up(&base, "crowd_fan", "연습 팬", "ko").await;
    fan.set_lang("ko").await;
    fan.find(&format!(".concert-pick[data-concert-id='{concert_id}']"))
        .await
        .click()
        .await;
    fan.on_screen("concert").await;
    let hard = fan
        .find("#run-difficulty option[value='hard']")
        .await
        .text()
        .await;
    assert!(hard.contains("30,000"), "{hard}");
    fan.script(
        "document.getElementById('run-difficulty').value = 'hard';
         document.getElementById('run-venue').value = 'hall';
         document.getElementById('run-site').value = 'interpark';",
    )
    .await;
    fan.find("#run-countdown").await.type_text("12").await;
    fan.find("#run-start-button").await.click().await;
    fan.wait_for("#run-box[data-run-id]", |_| true, "the run")
        .await;
    let link = fan
        .script("return document.getElementById('run-link').value")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(link.contains("?run="), "{link}");
    let run_id = link.split("?run=").nth(1).unwrap().to_owned();
    assert!(!fan.find("#book-button").await.enabled().await);
    fan.wait_for(
        "#countdown",
        |text| text.starts_with("00:00:"),
        "a countdown",
    )
    .await;
    fan.screenshot(&shot("countdown-ko-desktop")).await;

    // A second fan joins by the link.
    let friend = driver.browser().await;
    friend.viewport(1280, 900, false).await;
    friend.sign_up(&base, "crowd_friend", "연습 팬", "ko").await;
    friend.go(&link).await;
    friend.on_screen("concert").await;
    friend
        .wait_for("#run-box[data-run-id]", |_| true, "the run")
        .await;

    // The opening: both press 예매하기 at once and stand behind thousands.
    let book = fan
        .wait_for("#book-button:enabled", |_| true, "enabled at the opening")
        .await;
    // A human's reaction: a quarter of a second after the button lights up.
    tokio::time::sleep(Duration::from_millis(250)).await;
    book.click().await;
    friend.find("#book-button:enabled").await.click().await;
    fan.on_screen("queue").await;
    fan.wait_for("#queue-position[data-position]", |_| true, "a place")
        .await;
    let first = number(
        &fan,
        "return document.getElementById('queue-position').dataset.position",
    )
    .await;
    assert!(first > 1_000, "only {first} ahead at a hard setting");
    fan.wait_for("#crowd-in-line", |text| text != "—", "the crowd figures")
        .await;
    // The crowd's clock runs while pictures are taken: the fan goes on at a fan's pace and
    // the friend, a step behind, is photographed on each screen (queue, letters, zones).
    let count_falls = async {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = number(
                &fan,
                "return document.getElementById('queue-position').dataset.position",
            )
            .await;
            if now < first {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the count ahead did not fall from {first}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let friend_in_line = async {
        friend
            .wait_for("#crowd-in-line", |text| text != "—", "the crowd figures")
            .await;
        shots(&friend, "queue").await;
    };
    tokio::join!(count_falls, friend_in_line);

    // Admitted: the date, then the security letters before any seat.
    wait_in_line_and_pick_date(&fan).await;
    let image = fan
        .wait_for("#captcha-image[data-captcha-id]", |_| true, "a picture")
        .await;
    let refused_id = image.attribute("data-captcha-id").await.unwrap();
    let src = image.attribute("src").await.unwrap_or_default();
    assert!(
        src.starts_with("data:image/svg+xml"),
        "{}",
        &src[..src.len().min(40)]
    );
    fan.find("#captcha-answer").await.type_text("WRONGX").await;
    fan.find("#captcha-submit-button").await.click().await;
    fan.wait_for("#captcha-message", |text| !text.is_empty(), "the refusal")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while fan
        .find("#captcha-image")
        .await
        .attribute("data-captcha-id")
        .await
        .as_deref()
        == Some(&refused_id)
    {
        assert!(
            Instant::now() < deadline,
            "no new picture after a wrong answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        fan.script("return document.body.dataset.screen").await,
        "captcha",
        "a wrong answer does not open the seats"
    );
    pass_letters(&fan, &key).await;

    // The zone overview of the hall; the fan opens a zone the crowd is emptying.
    fan.wait_for(".zone-pick[data-available]", |_| true, "the zones")
        .await;
    assert_eq!(fan.find_all(".zone-pick").await.len(), 10);
    // A zone the crowd has begun on may be empty by the time its seats load (the crowd keeps
    // going while the page asks): then the fan goes back and picks again, as a fan would.
    let mut picks = 0;
    let (zone, before, at) = loop {
        picks += 1;
        let zone = fan
            .script(
                "const zones = [...document.querySelectorAll('.zone-pick')];
                 const going = zones.filter((z) => Number(z.dataset.available) > 0 && Number(z.dataset.available) < 500)
                   .sort((a, b) => Number(b.dataset.available) - Number(a.dataset.available))[0];
                 return Number((going ?? zones.find((z) => Number(z.dataset.available) > 0) ?? zones[0]).dataset.zone);",
            )
            .await
            .as_i64()
            .expect("a zone with seats left");
        fan.find(&format!(".zone-pick[data-zone='{zone}']"))
            .await
            .click()
            .await;
        fan.wait_for(".seat[data-status]", |_| true, "the zone's seats")
            .await;
        assert_eq!(fan.find_all(".seat").await.len(), 500);
        let (before, at) = fresh_taken(&fan, 0).await;
        if before.len() < 500 || picks == 5 {
            break (zone, before, at);
        }
        fan.find("#back-to-zones-button").await.click().await;
        fan.wait_for(".zone-pick[data-available]", |_| true, "the zones")
            .await;
    };

    // Seats vanish while the fan looks.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen_taken = before.clone();
    loop {
        let (now, _) = fresh_taken(&fan, at).await;
        seen_taken.extend(now.iter().copied());
        if now.difference(&before).count() > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no seat of zone {zone} vanished ({} taken)",
            before.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shots(&fan, "zone-map").await;

    // The friend, in the same run, opens the same zone and sees the same seats gone: a read
    // of the friend's map between two equal reads of the fan's is equal to them.
    wait_in_line_and_pick_date(&friend).await;
    friend
        .wait_for("#captcha-image[data-captcha-id]", |_| true, "a picture")
        .await;
    shots(&friend, "captcha").await;
    pass_letters(&friend, &key).await;
    friend
        .wait_for(".zone-pick[data-available]", |_| true, "the zones")
        .await;
    shots(&friend, "zones").await;
    friend
        .find(&format!(".zone-pick[data-zone='{zone}']"))
        .await
        .click()
        .await;
    friend
        .wait_for(".seat[data-status]", |_| true, "the zone's seats")
        .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (a, at) = fresh_taken(&fan, 0).await;
        let (b, bt) = fresh_taken(&friend, at).await;
        let (c, _) = fresh_taken(&fan, bt).await;
        seen_taken.extend(a.iter().copied());
        if a == c {
            assert_eq!(
                a, b,
                "two fans of one run see different seats gone in zone {zone}"
            );
            assert!(!a.is_empty());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the zone never stood still to compare"
        );
    }

    // A seat seen taken comes back (a rival's hold ran out unpaid) while the fan chooses.
    let deadline = Instant::now() + Duration::from_secs(70);
    let returned = loop {
        let (now, _) = fresh_taken(&fan, 0).await;
        let back: Vec<u32> = seen_taken.difference(&now).copied().collect();
        if let Some(&seat) = back.first() {
            break seat;
        }
        seen_taken.extend(now.iter().copied());
        assert!(
            Instant::now() < deadline,
            "no seat of zone {zone} came back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    friend.close().await;

    // The fan takes the seat that came back and goes through Interpark's steps.
    fan.find(&format!(".seat[data-seat-no='{returned}']"))
        .await
        .click()
        .await;
    fan.wait_for(
        &format!(".seat[data-seat-no='{returned}'][aria-pressed='true']"),
        |_| true,
        "chosen",
    )
    .await;
    fan.find("#hold-button").await.click().await;
    fan.on_screen("price").await;
    fan.find("#price-next-button").await.click().await;
    fan.on_screen("booker").await;
    fan.find("#booker-phone")
        .await
        .type_text("010-1234-5678")
        .await;
    fan.find("#booker-next-button").await.click().await;
    fan.wait_for(
        "#booker-message",
        |text| !text.is_empty(),
        "the terms asked for",
    )
    .await;
    assert_eq!(
        fan.script("return document.body.dataset.screen").await,
        "booker"
    );
    fan.find("#booker-terms").await.click().await;
    fan.find("#booker-next-button").await.click().await;
    fan.on_screen("method").await;
    fan.find("#method-form input[value='card']")
        .await
        .click()
        .await;
    fan.find("#method-next-button").await.click().await;
    fan.on_screen("pay").await;
    // The practice balance is short: charge what the page suggests, then pay.
    fan.wait_for("#pay-short", |text| !text.is_empty(), "the balance short")
        .await;
    fan.find("#charge-button").await.click().await;
    fan.wait_for("#pay-short", |text| text.is_empty(), "enough balance")
        .await;
    fan.find("#pay-button").await.click().await;
    fan.on_screen("done").await;

    // Where the fan stood against the crowd.
    let result = fan
        .wait_for(
            "#run-result[data-faster-than]",
            |text| text.contains('%'),
            "the result",
        )
        .await;
    let faster: f64 = result
        .attribute("data-faster-than")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..100.0).contains(&faster), "{faster}");
    let gone: f64 = result
        .attribute("data-seats-gone")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(gone > 0.0, "seats gone when the fan picked: {gone}");
    let text = result.text().await;
    assert!(text.contains(&returned.to_string()), "{text}");
    fan.wait_for(
        "#timing-table",
        |text| text.contains("보안문자"),
        "the letters timed",
    )
    .await;
    fan.wait_for("#practice-recent", |text| text.contains('%'), "the history")
        .await;
    shots(&fan, "results").await;
    // The result is recorded for the fan's history.
    let login = api
        .post(
            "/auth/login",
            None,
            serde_json::json!({"username": "crowd_fan", "password": "practice-password"}),
        )
        .await
        .expect(200);
    let history = api
        .get("/me/practice", Some(&id(&login, "access_token")))
        .await
        .expect(200);
    assert_eq!(history["items"][0]["run_id"], run_id);
    fan.close().await;
}
