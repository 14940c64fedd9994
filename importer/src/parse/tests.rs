use super::*;
use chrono::Duration;

fn url(s: &str) -> Url {
    Url::parse(s).expect("test url")
}

fn utc_at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

/// A fixed "now" for the tests: 2025-01-15 00:00 UTC.
fn now() -> DateTime<Utc> {
    utc_at("2025-01-15T00:00:00Z")
}

fn parse(html: &str, page: &str) -> ParsedPage {
    parse_page(html, &url(page), now())
}

const FULL_KO: &str = r#"<!doctype html>
<html lang="ko"><head>
<meta charset="utf-8">
<title>아이유 콘서트 - 인터파크 티켓</title>
<meta property="og:title" content="OG 제목">
<meta property="og:image" content="https://cdn.example.com/og.jpg">
<script type="application/ld+json">
{
  "@context": "https://schema.org",
  "@type": "MusicEvent",
  "name": "  2025 아이유   콘서트 \n <HEREH> ",
  "description": "아이유의 <b>단독</b> 콘서트.\n\n  많은 관심 부탁드립니다.",
  "image": {"@type": "ImageObject", "url": "/posters/iu.jpg"},
  "startDate": "2025-04-12T19:00:00+09:00",
  "location": {"@type": "Place", "name": "KSPO DOME", "address": "서울 송파구"},
  "performer": [{"@type": "MusicGroup", "name": "아이유"}, {"@type": "Person", "name": "아이유"}],
  "offers": [
    {"@type": "Offer", "availabilityStarts": "2025-03-05T20:00:00+09:00", "price": 154000},
    {"@type": "Offer", "validFrom": "2025-03-04T20:00+09:00"}
  ]
}
</script>
</head><body><h1>아이유 콘서트</h1></body></html>"#;

#[test]
fn full_json_ld_korean_page() {
    let p = parse(FULL_KO, "https://tickets.interpark.com/goods/25001234");
    assert_eq!(p.title.as_deref(), Some("2025 아이유 콘서트 <HEREH>"));
    assert_eq!(
        p.description.as_deref(),
        Some("아이유의 단독 콘서트. 많은 관심 부탁드립니다.")
    );
    assert_eq!(
        p.image_url.as_deref(),
        Some("https://tickets.interpark.com/posters/iu.jpg")
    );
    assert_eq!(p.starts_at, Some(utc_at("2025-04-12T10:00:00Z")));
    assert_eq!(p.venue.as_deref(), Some("KSPO DOME"));
    assert_eq!(p.artist.as_deref(), Some("아이유"), "duplicates removed");
    assert_eq!(
        clean_markup("<The Golden Hour> 콘서트").as_deref(),
        Some("<The Golden Hour> 콘서트")
    );
    assert_eq!(clean_markup("a<br>b &lt;c&gt;").as_deref(), Some("a b <c>"));
    // Earliest of availabilityStarts / validFrom over all offers.
    assert_eq!(p.opens_at, Some(utc_at("2025-03-04T11:00:00Z")));
}

#[test]
fn full_json_ld_english_page() {
    let html = r#"<html><head>
<title>Coldplay | Ticket Site</title>
<script type="application/ld+json">
{"@context":"http://schema.org","@type":["Event","MusicEvent"],
 "name":"Coldplay: Music of the Spheres","description":"World tour &amp; more",
 "image":["javascript:alert(1)","https://img.example.com/coldplay.jpg"],
 "startDate":"2025-04-16T19:30:00","location":[{"@type":"Place","name":"Goyang Stadium"}],
 "performer":[{"@type":"MusicGroup","name":"Coldplay"},{"@type":"Person","name":"Special Guest"}],
 "offers":{"@type":"AggregateOffer","offers":[{"validFrom":"2025-03-05T10:00:00Z"}]}}
</script></head><body></body></html>"#;
    let p = parse(html, "https://www.example.com/e/1");
    assert_eq!(p.title.as_deref(), Some("Coldplay: Music of the Spheres"));
    assert_eq!(p.description.as_deref(), Some("World tour & more"));
    assert_eq!(
        p.image_url.as_deref(),
        Some("https://img.example.com/coldplay.jpg")
    );
    // No offset, non-Korean page: UTC.
    assert_eq!(p.starts_at, Some(utc_at("2025-04-16T19:30:00Z")));
    assert_eq!(p.venue.as_deref(), Some("Goyang Stadium"));
    assert_eq!(p.artist.as_deref(), Some("Coldplay, Special Guest"));
    assert_eq!(p.opens_at, Some(utc_at("2025-03-05T10:00:00Z")));

    // The same page on a .kr host: naive dates are KST.
    let p = parse(html, "https://tickets.example.co.kr/e/1");
    assert_eq!(p.starts_at, Some(utc_at("2025-04-16T10:30:00Z")));
}

#[test]
fn og_only_page() {
    let html = r#"<html><head>
<meta property="og:title" content=" 세븐틴   월드투어 ">
<meta property="og:description" content="Seventeen tour in Seoul">
<meta property="og:image" content="/img/svt.png">
<meta name="twitter:title" content="Twitter title">
</head><body><p>본문</p></body></html>"#;
    let p = parse(html, "https://ticket.yes24.com/Perf/51234");
    assert_eq!(p.title.as_deref(), Some("세븐틴 월드투어"));
    assert_eq!(p.description.as_deref(), Some("Seventeen tour in Seoul"));
    assert_eq!(
        p.image_url.as_deref(),
        Some("https://ticket.yes24.com/img/svt.png")
    );
    assert_eq!(p.venue, None);
    assert_eq!(p.artist, None);
    assert_eq!(p.starts_at, None);
    assert_eq!(p.opens_at, None);
}

#[test]
fn twitter_and_meta_description_fallbacks() {
    let html = r#"<html><head><title>Page title</title>
<meta name="twitter:title" content="Twitter title">
<meta name="twitter:image" content="https://pbs.example.com/t.jpg">
<meta name="description" content="Plain   description">
</head></html>"#;
    let p = parse(html, "https://example.com/");
    assert_eq!(p.title.as_deref(), Some("Twitter title"));
    assert_eq!(p.description.as_deref(), Some("Plain description"));
    assert_eq!(
        p.image_url.as_deref(),
        Some("https://pbs.example.com/t.jpg")
    );
}

#[test]
fn title_only_page() {
    let html =
        "<html><head><title>\n  NewJeans   Fan Meeting \t</title></head><body>Hello</body></html>";
    let p = parse(html, "https://example.com/x");
    assert_eq!(
        p,
        ParsedPage {
            title: Some("NewJeans Fan Meeting".into()),
            ..ParsedPage::default()
        }
    );
}

#[test]
fn json_ld_wins_over_open_graph() {
    let html = r#"<html><head>
<meta property="og:title" content="OG title">
<meta property="og:description" content="OG description">
<meta property="og:image" content="https://cdn.example.com/og.jpg">
<script type="application/ld+json">
{"@type":"Event","name":"LD title","description":"LD description","image":"https://cdn.example.com/ld.jpg"}
</script></head></html>"#;
    let p = parse(html, "https://example.com/");
    assert_eq!(p.title.as_deref(), Some("LD title"));
    assert_eq!(p.description.as_deref(), Some("LD description"));
    assert_eq!(
        p.image_url.as_deref(),
        Some("https://cdn.example.com/ld.jpg")
    );
}

#[test]
fn json_ld_fields_fall_back_individually() {
    // JSON-LD has only a name and an unusable image: the rest comes from OG.
    let html = r#"<html><head>
<meta property="og:description" content="OG description">
<meta property="og:image" content="https://cdn.example.com/og.jpg">
<script type="application/ld+json">{"@type":"TheaterEvent","name":"LD","image":"data:image/png;base64,AAAA"}</script>
</head></html>"#;
    let p = parse(html, "https://example.com/");
    assert_eq!(p.title.as_deref(), Some("LD"));
    assert_eq!(p.description.as_deref(), Some("OG description"));
    assert_eq!(
        p.image_url.as_deref(),
        Some("https://cdn.example.com/og.jpg")
    );
}

#[test]
fn json_ld_in_graph() {
    let html = r#"<html><head><script type="application/ld+json">
{"@context":"https://schema.org","@graph":[
  {"@type":"WebSite","name":"Ticket Site"},
  {"@type":"WebPage","name":"Page"},
  {"@type":"MusicEvent","name":"BTS Live","startDate":"2025-06-13T18:00:00+09:00",
   "location":{"name":"Busan Asiad"},"performer":{"@type":"MusicGroup","name":"BTS"}}
]}</script></head></html>"#;
    let p = parse(html, "https://example.com/");
    assert_eq!(p.title.as_deref(), Some("BTS Live"));
    assert_eq!(p.venue.as_deref(), Some("Busan Asiad"));
    assert_eq!(p.artist.as_deref(), Some("BTS"));
    assert_eq!(p.starts_at, Some(utc_at("2025-06-13T09:00:00Z")));
}

#[test]
fn json_ld_top_level_array_and_main_entity() {
    let html = r#"<script type="application/ld+json">
[{"@type":"Organization","name":"Org"},{"@type":"WebPage","mainEntity":{"@type":"Festival","name":"Waterbomb"}}]
</script>"#;
    assert_eq!(
        parse(html, "https://example.com/").title.as_deref(),
        Some("Waterbomb")
    );
}

#[test]
fn malformed_json_ld_is_ignored() {
    let html = r#"<html><head><title>Fallback</title>
<meta property="og:description" content="OG">
<script type="application/ld+json">{"@type":"Event","name":"Broken",</script>
<script type="application/ld+json">{"@type":"Event","name":</script>
<script type="application/ld+json">"just a string"</script>
<script type="application/ld+json">{"@type":"Event","name":{"nested":true},"image":42,"startDate":"not a date","offers":"free","location":7}</script>
</head></html>"#;
    let p = parse(html, "https://example.com/");
    assert_eq!(p.title.as_deref(), Some("Fallback"));
    assert_eq!(p.description.as_deref(), Some("OG"));
    assert_eq!(p.image_url, None);
    assert_eq!(p.starts_at, None);
    assert_eq!(p.opens_at, None);
    assert_eq!(p.venue, None);

    // A malformed block followed by a valid one: the valid one is used.
    let html = r#"<script type="application/ld+json">{oops</script>
<script type="application/ld+json"><!-- {"@type":"Event","name":"Good"} --></script>"#;
    assert_eq!(
        parse(html, "https://example.com/").title.as_deref(),
        Some("Good")
    );
}

#[test]
fn other_script_types_are_not_json_ld() {
    let html = r#"<title>T</title><script type="application/json">{"@type":"Event","name":"Nope"}</script>"#;
    assert_eq!(
        parse(html, "https://example.com/").title.as_deref(),
        Some("T")
    );
}

#[test]
fn missing_fields_are_none() {
    let html =
        r#"<script type="application/ld+json">{"@type":"Event","name":"Only a name"}</script>"#;
    let p = parse(html, "https://example.com/");
    assert_eq!(p.title.as_deref(), Some("Only a name"));
    assert_eq!(p.description, None);
    assert_eq!(p.image_url, None);
    assert_eq!(p.opens_at, None);
    assert_eq!(p.venue, None);
    assert_eq!(p.artist, None);
    assert_eq!(p.starts_at, None);

    assert_eq!(parse("", "https://example.com/"), ParsedPage::default());
    assert_eq!(
        parse(
            "<html><head></head><body></body></html>",
            "https://example.com/"
        ),
        ParsedPage::default()
    );
}

#[test]
fn images_are_resolved_and_filtered() {
    let case = |img: &str| {
        let html = format!(r#"<meta property="og:image" content="{img}">"#);
        parse(
            &html,
            "https://ticket.melon.com/performance/index.htm?prodId=1",
        )
        .image_url
    };
    assert_eq!(
        case("poster.jpg").as_deref(),
        Some("https://ticket.melon.com/performance/poster.jpg")
    );
    assert_eq!(
        case("../img/p.jpg").as_deref(),
        Some("https://ticket.melon.com/img/p.jpg")
    );
    assert_eq!(
        case("//cdnticket.melon.co.kr/p.jpg").as_deref(),
        Some("https://cdnticket.melon.co.kr/p.jpg")
    );
    assert_eq!(
        case("http://img.example.com/a b.jpg").as_deref(),
        Some("http://img.example.com/a%20b.jpg")
    );
    assert_eq!(case("javascript:alert(1)"), None);
    assert_eq!(case("JaVaScRiPt:alert(1)"), None);
    assert_eq!(case(" javascript:alert(document.cookie) "), None);
    assert_eq!(case("data:image/png;base64,AAAA"), None);
    assert_eq!(case("file:///etc/passwd"), None);
    assert_eq!(case("ftp://example.com/a.jpg"), None);
    assert_eq!(case("   "), None);
    assert_eq!(
        case(&format!("https://example.com/{}", "a".repeat(3000))),
        None
    );

    // A refused og:image falls back to twitter:image.
    let html = r#"<meta property="og:image" content="javascript:alert(1)">
<meta name="twitter:image" content="/t.jpg">"#;
    assert_eq!(
        parse(html, "https://example.com/a/").image_url.as_deref(),
        Some("https://example.com/t.jpg")
    );
}

#[test]
fn long_text_is_capped_on_char_boundaries() {
    let title = "가".repeat(300);
    let desc = "설명 ".repeat(1500);
    let html = format!(
        r#"<meta property="og:title" content="{title}"><meta property="og:description" content="{desc}">"#
    );
    let p = parse(&html, "https://example.com/");
    assert_eq!(
        p.title.as_ref().map(|t| t.chars().count()),
        Some(MAX_TITLE_CHARS)
    );
    let d = p.description.expect("description");
    assert!(d.chars().count() <= MAX_DESCRIPTION_CHARS);
    assert!(d.chars().count() >= MAX_DESCRIPTION_CHARS - 1);
    assert!(!d.ends_with(' '));
}

fn body(text: &str) -> String {
    format!("<html><body><div class=\"info\">{text}</div></body></html>")
}

fn opens(text: &str, page: &str) -> Option<DateTime<Utc>> {
    parse(&body(text), page).opens_at
}

#[test]
fn open_time_phrasings() {
    let com = "https://www.example.com/event/1";
    let kr = "https://www.example.co.kr/event/1";
    let cases: &[(&str, &str, &str)] = &[
        // Korean: always KST unless a zone is given.
        ("티켓오픈 2025.03.05(수) 20:00", com, "2025-03-05T11:00:00Z"),
        (
            "티켓 오픈: 2025년 3월 5일 (수) 오후 8시",
            com,
            "2025-03-05T11:00:00Z",
        ),
        ("예매오픈 3월 5일 20시", com, "2025-03-05T11:00:00Z"),
        (
            "티켓오픈 일시 : 2025. 3. 5.(수) 오후 8:00",
            com,
            "2025-03-05T11:00:00Z",
        ),
        ("일반예매 2025-03-05 14:00", com, "2025-03-05T05:00:00Z"),
        (
            "예매 시작 : 2025년 03월 05일 수요일 오전 11시 30분",
            com,
            "2025-03-05T02:30:00Z",
        ),
        ("티켓오픈 25.03.05(수) PM 8:00", com, "2025-03-05T11:00:00Z"),
        (
            "티켓오픈 2025.03.05 20:00 (UTC)",
            com,
            "2025-03-05T20:00:00Z",
        ),
        // English with a zone.
        (
            "Tickets on sale March 5, 8 PM KST",
            com,
            "2025-03-05T11:00:00Z",
        ),
        (
            "On sale: 5 March 2025 at 20:00 GMT",
            kr,
            "2025-03-05T20:00:00Z",
        ),
        (
            "General on sale Wed, Mar 5 2025 10:00 AM EST",
            com,
            "2025-03-05T15:00:00Z",
        ),
        (
            "General on sale Wed, Mar 5 2025 10:00 AM EDT",
            com,
            "2025-03-05T14:00:00Z",
        ),
        (
            "Tickets go on sale Friday, March 7, 2025 at 10 a.m. PST",
            com,
            "2025-03-07T18:00:00Z",
        ),
        (
            "On sale March 7 2025 10:00 PDT",
            com,
            "2025-03-07T17:00:00Z",
        ),
        (
            "On sale: 5 March 2025 at 20:00 JST",
            com,
            "2025-03-05T11:00:00Z",
        ),
        (
            "On sale: 5 March 2025 at 20:00 UTC+9",
            com,
            "2025-03-05T11:00:00Z",
        ),
        (
            "On sale: 5 March 2025 at 20:00 GMT-05:00",
            com,
            "2025-03-06T01:00:00Z",
        ),
        (
            "On sale: 5 March 2025 at 20:00 +09:00",
            com,
            "2025-03-05T11:00:00Z",
        ),
        (
            "On sale: 5 March 2025 at 20:00 (+0530)",
            com,
            "2025-03-05T14:30:00Z",
        ),
        ("On sale 2025-03-05T20:00:00Z", com, "2025-03-05T20:00:00Z"),
        // English without a zone: UTC on a non-Korean host, KST on .kr.
        (
            "On sale: 5 March 2025 at 20:00",
            com,
            "2025-03-05T20:00:00Z",
        ),
        ("On sale: 5 March 2025 at 20:00", kr, "2025-03-05T11:00:00Z"),
        (
            "General on sale Wed, Mar 5 2025 10:00 AM",
            com,
            "2025-03-05T10:00:00Z",
        ),
        (
            "Ticket sales open 5th March 2025, 12 PM",
            com,
            "2025-03-05T12:00:00Z",
        ),
        ("Onsale: Fri • Mar 07 • 12 AM", com, "2025-03-07T00:00:00Z"),
    ];
    for (text, page, expected) in cases {
        assert_eq!(opens(text, page), Some(utc_at(expected)), "{text} @ {page}");
    }
}

#[test]
fn english_time_is_kst_when_page_says_kst_or_is_korean() {
    let text = "Ticket info (all times KST). On sale: 5 March 2025 at 20:00";
    assert_eq!(
        opens(text, "https://www.example.com/"),
        Some(utc_at("2025-03-05T11:00:00Z"))
    );
    let html = "<html lang=\"ko-KR\"><body>On sale: 5 March 2025 at 20:00</body></html>";
    assert_eq!(
        parse(html, "https://www.example.com/").opens_at,
        Some(utc_at("2025-03-05T11:00:00Z"))
    );
    // A Korean ticket site, even on a .com host.
    assert_eq!(
        opens(
            "On sale: 5 March 2025 at 20:00",
            "https://ticket.yes24.com/Perf/1"
        ),
        Some(utc_at("2025-03-05T11:00:00Z"))
    );
}

#[test]
fn year_less_dates_are_the_next_occurrence() {
    let page = url("https://example.com/");
    let text = body("예매오픈 3월 5일 20시");
    // Before the date this year: this year.
    let p = parse_page(&text, &page, utc_at("2025-01-15T00:00:00Z"));
    assert_eq!(p.opens_at, Some(utc_at("2025-03-05T11:00:00Z")));
    // After it: next year.
    let p = parse_page(&text, &page, utc_at("2025-06-01T00:00:00Z"));
    assert_eq!(p.opens_at, Some(utc_at("2026-03-05T11:00:00Z")));
    // An hour before: still this year.
    let p = parse_page(&text, &page, utc_at("2025-03-05T10:00:00Z"));
    assert_eq!(p.opens_at, Some(utc_at("2025-03-05T11:00:00Z")));
    // English without a year.
    let text = body("Tickets on sale March 5, 8 PM KST");
    let p = parse_page(&text, &page, utc_at("2025-12-31T00:00:00Z"));
    assert_eq!(p.opens_at, Some(utc_at("2026-03-05T11:00:00Z")));
    // February 29 without a year: the next leap year.
    let text = body("티켓오픈 2월 29일 20:00");
    let p = parse_page(&text, &page, utc_at("2025-01-15T00:00:00Z"));
    assert_eq!(p.opens_at, Some(utc_at("2028-02-29T11:00:00Z")));
}

#[test]
fn open_time_in_table_cells_and_inline_markup() {
    let html = r#"<html><body><table>
<tr><th>공연기간</th><td>2025.04.12 ~ 2025.04.13</td></tr>
<tr><th>티켓오픈</th><td><strong>2025.03.05(수)</strong> <span>20:00</span></td></tr>
</table></body></html>"#;
    assert_eq!(
        parse(html, "https://example.com/").opens_at,
        Some(utc_at("2025-03-05T11:00:00Z"))
    );
    let html = "<p>On sale: <b>5</b> <i>March</i> 2025 at <time>20:00</time></p>";
    assert_eq!(
        parse(html, "https://example.com/").opens_at,
        Some(utc_at("2025-03-05T20:00:00Z"))
    );
}

#[test]
fn open_time_skips_presale_and_invisible_text() {
    let html = body("팬클럽 선예매 오픈 2025.03.04(화) 20:00 / 일반예매 오픈 2025.03.05(수) 20:00");
    assert_eq!(
        parse(&html, "https://example.com/").opens_at,
        Some(utc_at("2025-03-05T11:00:00Z"))
    );
    let html = r#"<html><head><title>티켓오픈 2025.03.01 20:00</title>
<style>/* 티켓오픈 2025.03.02 20:00 */</style></head>
<body><script>var t = "티켓오픈 2025.03.03 20:00";</script>
<template>티켓오픈 2025.03.04 20:00</template>
<p>Nothing here</p></body></html>"#;
    assert_eq!(parse(html, "https://example.com/").opens_at, None);
}

#[test]
fn open_time_requires_date_and_time_near_the_label() {
    let com = "https://example.com/";
    for text in [
        "티켓오픈 2025년 3월 5일", // no clock time
        "티켓오픈 안내는 추후 공지됩니다. 공연일 2025.04.12 19:00",
        "On sale now! Concert date: March 10, 8 PM",
        "On sale soon",
        "Tickets on sale March 5",
        "티켓오픈 2025.13.05 20:00",      // month 13
        "티켓오픈 2025.02.30 20:00",      // no such day
        "티켓오픈 2025.03.05 25:00",      // no such hour
        "티켓오픈 2025.03.05 20:75",      // no such minute
        "On sale: 5 March 2025 at 13 PM", // not a time
        "티켓오픈",
        "",
    ] {
        assert_eq!(opens(text, com), None, "{text}");
    }
}

#[test]
fn json_ld_open_time_beats_text() {
    let html = r#"<script type="application/ld+json">{"@type":"Event","name":"E","offers":{"availabilityStarts":"2025-03-01T12:00:00+09:00"}}</script>
<body>티켓오픈 2025.03.05(수) 20:00</body>"#;
    assert_eq!(
        parse(html, "https://example.com/").opens_at,
        Some(utc_at("2025-03-01T03:00:00Z"))
    );
    // JSON-LD event without an open time: the text is used.
    let html = r#"<script type="application/ld+json">{"@type":"Event","name":"E"}</script>
<body>티켓오픈 2025.03.05(수) 20:00</body>"#;
    assert_eq!(
        parse(html, "https://example.com/").opens_at,
        Some(utc_at("2025-03-05T11:00:00Z"))
    );
}

#[test]
fn iso_dates() {
    let kst = kst();
    let cases = [
        ("2025-03-05T20:00:00+09:00", "2025-03-05T11:00:00Z"),
        ("2025-03-05T20:00:00.000+0900", "2025-03-05T11:00:00Z"),
        ("2025-03-05T20:00+09:00", "2025-03-05T11:00:00Z"),
        ("2025-03-05T11:00:00Z", "2025-03-05T11:00:00Z"),
        ("2025-03-05T20:00:00", "2025-03-05T11:00:00Z"),
        ("2025-03-05 20:00", "2025-03-05T11:00:00Z"),
        ("2025-03-05", "2025-03-04T15:00:00Z"),
    ];
    for (s, expected) in cases {
        assert_eq!(parse_iso_datetime(s, kst), Some(utc_at(expected)), "{s}");
    }
    for s in [
        "",
        "soon",
        "2025-13-01",
        "2025-03-05T25:00",
        "9999999-01-01",
    ] {
        assert_eq!(parse_iso_datetime(s, kst), None, "{s}");
    }
}

#[test]
fn offsets() {
    assert_eq!(
        parse_offset("+9").map(|o| o.local_minus_utc()),
        Some(9 * 3600)
    );
    assert_eq!(
        parse_offset("+09:00").map(|o| o.local_minus_utc()),
        Some(9 * 3600)
    );
    assert_eq!(
        parse_offset("-0530").map(|o| o.local_minus_utc()),
        Some(-(5 * 3600 + 1800))
    );
    assert_eq!(
        parse_offset("+ 9").map(|o| o.local_minus_utc()),
        Some(9 * 3600)
    );
    assert_eq!(parse_offset("+15"), None);
    assert_eq!(parse_offset("+0975"), None);
    assert_eq!(parse_offset("9"), None);
    assert_eq!(parse_offset(""), None);
}

#[test]
fn regexes_compile() {
    for r in [
        &*LABEL, &*NUM_DATE, &*KO_DATE, &*EN_MDY, &*EN_DMY, &*TIME, &*ZONE, &*KST_WORD,
    ] {
        // The fallback regex matches nothing, not even the empty string.
        assert!(r.as_str() != r"[^\s\S]");
    }
}

#[test]
fn garbage_and_hostile_input_never_panics() {
    let page = url("https://example.com/");
    let mut inputs: Vec<String> = Vec::new();
    // Binary-ish: every byte value, decoded lossily, plus NULs and lone surrogates' replacement.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    inputs.push(String::from_utf8_lossy(&bytes).into_owned());
    inputs.push("\0\0\0<\0h\0t\0m\0l\0>\u{fffd}\u{feff}".repeat(100));
    // Deeply nested elements.
    inputs.push(format!(
        "{}티켓오픈 2025.03.05 20:00{}",
        "<div>".repeat(5000),
        "</div>".repeat(10)
    ));
    inputs.push("<b><i><u><span>".repeat(2000));
    inputs.push("<table><tr><td>".repeat(1000));
    // Deeply nested JSON-LD (beyond serde_json's recursion limit and ours).
    inputs.push(format!(
        r#"<script type="application/ld+json">{}{{"@type":"Event"}}{}</script>"#,
        "[".repeat(5000),
        "]".repeat(5000)
    ));
    inputs.push(format!(
        r#"<script type="application/ld+json">{}{{"@type":"Event","name":"deep"}}{}</script>"#,
        r#"{"@graph":"#.repeat(100),
        "}".repeat(100)
    ));
    // Unterminated everything.
    inputs.push(r#"<html><head><meta property="og:image" content="<script type="application/ld+json">{"@type":"#.into());
    inputs.push("<!--".into());
    inputs.push("<![CDATA[".into());
    inputs.push("<svg><title>x</title><math><mi>".repeat(200));
    // Many labels with nonsense numbers.
    inputs.push("티켓오픈 99.99.99 99:99 On sale 0 Mar 0 0:0 예매오픈 0월 0일 0시 ".repeat(500));
    inputs.push("On sale: Feb 29 24:00 KST On sale: 31 Apr 2025 12 PM +99:99 ".repeat(50));
    inputs.push("티켓오픈 9999.12.31 23:59 On sale: 31 December 262143 at 23:59".into());
    inputs.push(format!(
        "<title>{}</title>",
        "\u{200b}\u{3000} ".repeat(1000)
    ));
    for input in &inputs {
        let p = parse_page(input, &page, now());
        if let Some(t) = &p.title {
            assert!(t.chars().count() <= MAX_TITLE_CHARS);
        }
    }
    // The deeply nested page still yields its open time.
    let p = parse_page(&inputs[2], &page, now());
    assert_eq!(p.opens_at, Some(utc_at("2025-03-05T11:00:00Z")));
    // Dates at the edge of the calendar do not overflow.
    let near_end = DateTime::<Utc>::MAX_UTC - Duration::days(1);
    let p = parse_page("On sale: Jan 1 00:00 KST", &page, near_end);
    assert_eq!(p.opens_at, None);
    let p = parse_page("On sale: Dec 31 23:59 KST", &page, near_end);
    assert!(p.opens_at.is_some_and(|t| t > near_end));
}
