//! Parsing a draft concert out of a ticket sale page.
//!
//! The document is parsed with a real HTML parser (`scraper`, i.e. html5ever);
//! no regular expression ever runs over raw HTML. Regular expressions are used
//! only over the page's *visible text* to find a ticket open time.
//!
//! # Sources and priority
//!
//! 1. **JSON-LD** (`<script type="application/ld+json">`): the first object
//!    whose `@type` is an event (`Event`, or any `…Event` such as
//!    `MusicEvent`, or `Festival`), found at the top level, inside a top-level
//!    array, inside `@graph`, or under `mainEntity` / `itemListElement`.
//!    Fields: `name`, `description`, `image` (string, array, or `ImageObject`
//!    with `url` / `contentUrl`), `startDate`, `location.name`,
//!    `performer.name` (several performers are joined with ", "), and the
//!    earliest `offers[].availabilityStarts` (else `validFrom`) as the open
//!    time. Malformed JSON-LD is ignored.
//! 2. **Open Graph** `og:title`, `og:description`, `og:image`, then
//!    **Twitter** `twitter:title`, `twitter:description`, `twitter:image`.
//! 3. `<title>` and `<meta name="description">`.
//!
//! **Conflict rule:** for every field the first source in that order that
//! yields a usable value wins, so when JSON-LD and Open Graph disagree the
//! JSON-LD value is used. The event fields (venue, artist, start, open time)
//! come only from JSON-LD, except that a missing open time is looked for in
//! the visible text.
//!
//! # Normalisation
//!
//! Text is trimmed and runs of whitespace collapse to one space; JSON-LD text
//! is additionally stripped of HTML markup and entities. The title, venue and
//! artist are capped at [`MAX_TITLE_CHARS`] characters and the description at
//! [`MAX_DESCRIPTION_CHARS`] (always on character boundaries). Image URLs are
//! resolved against the page URL and kept only when `http` or `https`.
//!
//! # Open time in the text
//!
//! Without a structured open time, the visible text (not `<script>`,
//! `<style>`, `<template>`, `<noscript>` or `<head>`) is searched for a label
//! such as `티켓오픈`, `예매오픈`, `일반예매`, `예매 시작`, `On sale`,
//! `General on sale`, `Tickets go on sale`, `Ticket sales open` followed
//! closely by a date and a clock time, e.g. `티켓오픈 2025.03.05(수) 20:00`,
//! `티켓 오픈: 2025년 3월 5일 (수) 오후 8시`, `예매오픈 3월 5일 20시`,
//! `Tickets on sale March 5, 8 PM KST`, `On sale: 5 March 2025 at 20:00`,
//! `General on sale Wed, Mar 5 2025 10:00 AM`. Fan-club presales
//! (`선예매 오픈`) are skipped; a date without a clock time is not enough.
//!
//! Time zones: an explicit zone wins (`KST`, `JST`, `UTC`, `GMT`, `Z`,
//! `EST`/`EDT`, `PST`/`PDT`, `UTC+9`, `+09:00`). Otherwise Korean phrasings
//! are KST (UTC+9). English phrasings, and JSON-LD dates without an offset,
//! are KST when the page is Korean — its host ends in `.kr` or is one of the
//! Korean ticket sites of [`crate::template`], or `<html lang="ko…">` — or
//! its text says `KST`; otherwise UTC. A date without a year is the next such
//! date after `now`.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use ego_tree::iter::Edge;
use regex::{Captures, Regex};
use scraper::{Html, Node, Selector};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// Longest title (and venue, artist) kept, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description kept, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest image URL kept, in bytes.
pub const MAX_IMAGE_URL_LEN: usize = 2048;

const KST_SECS: i32 = 9 * 3600;
/// How deep JSON-LD is searched for events.
const MAX_JSONLD_DEPTH: usize = 12;

/// What could be read from a ticket page. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedPage {
    /// Event or page title (≤ 200 characters).
    pub title: Option<String>,
    /// Description (≤ 2000 characters).
    pub description: Option<String>,
    /// Absolute http(s) URL of the poster image.
    pub image_url: Option<String>,
    /// When tickets go on sale.
    pub opens_at: Option<DateTime<Utc>>,
    /// Venue name.
    pub venue: Option<String>,
    /// Performer(s).
    pub artist: Option<String>,
    /// When the concert starts.
    pub starts_at: Option<DateTime<Utc>>,
}

/// Parses a ticket page. Never panics, whatever `html` contains.
pub fn parse_page(html: &str, page_url: &Url, now: DateTime<Utc>) -> ParsedPage {
    let doc = Html::parse_document(html);
    let meta = collect_meta(&doc);
    let text = visible_text(&doc);

    let lang_ko = doc
        .root_element()
        .value()
        .attr("lang")
        .is_some_and(|l| l.trim().to_ascii_lowercase().starts_with("ko"));
    let host = page_url
        .host_str()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let korean_page =
        lang_ko || host.ends_with(".kr") || crate::template::template_code(page_url) != "default";
    let mentions_kst = KST_WORD.is_match(&text);
    let default_offset = if korean_page || mentions_kst {
        kst()
    } else {
        utc()
    };

    let event = JsonLdEvent::find(&doc, page_url, default_offset);

    let title = event
        .title
        .clone()
        .or_else(|| meta_text(&meta, &["og:title", "twitter:title"]))
        .or_else(|| title_element(&doc))
        .and_then(|t| cap(&t, MAX_TITLE_CHARS));
    let description = event
        .description
        .clone()
        .or_else(|| {
            meta_text(
                &meta,
                &["og:description", "twitter:description", "description"],
            )
        })
        .and_then(|t| cap(&t, MAX_DESCRIPTION_CHARS));
    let image_url = event.image.clone().or_else(|| {
        [
            "og:image",
            "og:image:url",
            "og:image:secure_url",
            "twitter:image",
            "twitter:image:src",
        ]
        .iter()
        .filter_map(|k| meta.get(*k))
        .find_map(|v| resolve_image(v, page_url))
    });
    let opens_at = event
        .opens_at
        .or_else(|| find_open_time(&text, now, default_offset));

    ParsedPage {
        title,
        description,
        image_url,
        opens_at,
        venue: event.venue,
        artist: event.artist,
        starts_at: event.starts_at,
    }
}

fn kst() -> FixedOffset {
    FixedOffset::east_opt(KST_SECS).unwrap_or_else(utc)
}

fn utc() -> FixedOffset {
    Utc.fix()
}

// ---------------------------------------------------------------------------
// Text helpers

/// Trims and collapses whitespace; `None` when nothing is left.
fn collapse(s: &str) -> Option<String> {
    let out = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!out.is_empty()).then_some(out)
}

/// Caps at `max` characters (on a character boundary), trimming the end.
fn cap(s: &str, max: usize) -> Option<String> {
    let out: String = s.chars().take(max).collect();
    collapse(&out)
}

/// Text from JSON-LD may carry HTML markup or entities: decode entities and
/// strip tags with the HTML parser, then collapse whitespace. Korean titles
/// often use angle brackets as quotation marks (`2025 <HEREH> 콘서트`), so
/// markup is only stripped when every element in it is a real HTML element;
/// otherwise the `<`…`>` are kept as text.
fn clean_markup(s: &str) -> Option<String> {
    if !s.contains('<') && !s.contains('&') {
        return collapse(s);
    }
    let frag = Html::parse_fragment(s);
    let only_html = frag
        .root_element()
        .descendants()
        .skip(1)
        .filter_map(|n| n.value().as_element())
        .all(|el| KNOWN_HTML_ELEMENTS.contains(&el.name()));
    let frag = if only_html {
        frag
    } else {
        Html::parse_fragment(&s.replace('<', "&lt;"))
    };
    let mut out = String::new();
    push_text(frag.root_element(), &mut out, false);
    collapse(&out)
}

const KNOWN_HTML_ELEMENTS: [&str; 46] = [
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "data",
    "dfn",
    "em",
    "font",
    "i",
    "kbd",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "time",
    "u",
    "br",
    "p",
    "div",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "img",
    "hr",
    "blockquote",
    "pre",
    "center",
    "table",
    "tr",
    "td",
    "th",
    "tbody",
];

const SKIP_ELEMENTS: [&str; 7] = [
    "script", "style", "template", "noscript", "head", "svg", "iframe",
];
const INLINE_ELEMENTS: [&str; 24] = [
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
    "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u",
];

/// Appends the text below `root`, skipping non-visible elements. Block-level
/// element boundaries become spaces; inline ones join directly. Iterative, so
/// deeply nested documents cannot overflow the stack.
fn push_text(root: scraper::ElementRef<'_>, out: &mut String, skip_head: bool) {
    let mut skipping = 0usize;
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    if SKIP_ELEMENTS.contains(&name) && (skip_head || name != "head") {
                        skipping += 1;
                    } else if !INLINE_ELEMENTS.contains(&name) {
                        out.push(' ');
                    }
                }
                Node::Text(t) if skipping == 0 => out.push_str(t),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    let name = el.name();
                    if SKIP_ELEMENTS.contains(&name) && (skip_head || name != "head") {
                        skipping = skipping.saturating_sub(1);
                    } else if !INLINE_ELEMENTS.contains(&name) {
                        out.push(' ');
                    }
                }
            }
        }
    }
}

/// The page's visible text, whitespace collapsed.
fn visible_text(doc: &Html) -> String {
    let mut out = String::new();
    push_text(doc.root_element(), &mut out, true);
    collapse(&out).unwrap_or_default()
}

fn selector(css: &str) -> Option<Selector> {
    Selector::parse(css).ok()
}

/// `<meta property|name=… content=…>`: first non-empty value per lower-cased key.
fn collect_meta(doc: &Html) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let Some(sel) = selector("meta") else {
        return map;
    };
    for el in doc.select(&sel) {
        let v = el.value();
        let Some(content) = v.attr("content") else {
            continue;
        };
        for key in [v.attr("property"), v.attr("name")].into_iter().flatten() {
            let key = key.trim().to_ascii_lowercase();
            if !key.is_empty() && !content.trim().is_empty() {
                map.entry(key).or_insert_with(|| content.to_string());
            }
        }
    }
    map
}

fn meta_text(meta: &HashMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| meta.get(*k))
        .find_map(|v| collapse(v))
}

fn title_element(doc: &Html) -> Option<String> {
    let sel = selector("head title").or_else(|| selector("title"))?;
    let el = doc.select(&sel).next()?;
    collapse(&el.text().collect::<String>())
}

/// Resolves an image reference against the page; only http(s) survives.
fn resolve_image(raw: &str, base: &Url) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_IMAGE_URL_LEN {
        return None;
    }
    let url = base.join(raw).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.as_str().len() <= MAX_IMAGE_URL_LEN;
    ok.then(|| url.to_string())
}

// ---------------------------------------------------------------------------
// JSON-LD

#[derive(Debug, Default)]
struct JsonLdEvent {
    title: Option<String>,
    description: Option<String>,
    image: Option<String>,
    opens_at: Option<DateTime<Utc>>,
    venue: Option<String>,
    artist: Option<String>,
    starts_at: Option<DateTime<Utc>>,
}

impl JsonLdEvent {
    /// The first event in the page's JSON-LD blocks (or an empty record).
    fn find(doc: &Html, base: &Url, default_offset: FixedOffset) -> Self {
        let Some(sel) = selector("script") else {
            return Self::default();
        };
        for script in doc.select(&sel) {
            let is_ld = script.value().attr("type").is_some_and(|t| {
                t.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("application/ld+json")
            });
            if !is_ld {
                continue;
            }
            let raw: String = script.text().collect();
            let Some(value) = parse_json_lenient(&raw) else {
                continue;
            };
            if let Some(event) = first_event(&value, 0) {
                return Self::from_value(event, base, default_offset);
            }
        }
        Self::default()
    }

    fn from_value(ev: &Value, base: &Url, default_offset: FixedOffset) -> Self {
        let opens_at = ev
            .get("offers")
            .and_then(|o| earliest_offer_start(o, default_offset, 0));
        Self {
            title: ev.get("name").and_then(|v| text_of(v, 0)),
            description: ev.get("description").and_then(|v| text_of(v, 0)),
            image: ev.get("image").and_then(|v| image_of(v, base, 0)),
            starts_at: ev
                .get("startDate")
                .and_then(|v| text_of(v, 0))
                .and_then(|s| parse_iso_datetime(&s, default_offset)),
            venue: ev
                .get("location")
                .and_then(|v| name_of(v, 0))
                .and_then(|s| cap(&s, MAX_TITLE_CHARS)),
            artist: ev
                .get("performer")
                .or_else(|| ev.get("performers"))
                .and_then(names_of)
                .and_then(|s| cap(&s, MAX_TITLE_CHARS)),
            opens_at,
        }
    }
}

/// Parses JSON-LD, tolerating HTML comment / CDATA wrappers around it.
fn parse_json_lenient(raw: &str) -> Option<Value> {
    let trimmed = raw.trim();
    if let Ok(v) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    let unwrapped = trimmed
        .trim_start_matches("<!--")
        .trim_end_matches("-->")
        .trim()
        .trim_start_matches("//<![CDATA[")
        .trim_start_matches("<![CDATA[")
        .trim_end_matches("//]]>")
        .trim_end_matches("]]>")
        .trim();
    serde_json::from_str(unwrapped).ok()
}

fn is_event_type(v: &Value) -> bool {
    let check = |t: &str| {
        let t = t
            .trim()
            .trim_start_matches("http://schema.org/")
            .trim_start_matches("https://schema.org/")
            .trim_start_matches("schema:");
        t.ends_with("Event") || t == "Festival"
    };
    match v.get("@type") {
        Some(Value::String(t)) => check(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(check),
        _ => false,
    }
}

fn first_event(v: &Value, depth: usize) -> Option<&Value> {
    if depth > MAX_JSONLD_DEPTH {
        return None;
    }
    match v {
        Value::Array(items) => items.iter().find_map(|i| first_event(i, depth + 1)),
        Value::Object(map) => {
            if is_event_type(v) {
                return Some(v);
            }
            ["@graph", "mainEntity", "itemListElement", "item"]
                .iter()
                .filter_map(|k| map.get(*k))
                .find_map(|child| first_event(child, depth + 1))
        }
        _ => None,
    }
}

/// A text value: string, `{"@value": …}`, or the first usable array item.
fn text_of(v: &Value, depth: usize) -> Option<String> {
    if depth > MAX_JSONLD_DEPTH {
        return None;
    }
    match v {
        Value::String(s) => clean_markup(s),
        Value::Array(items) => items.iter().find_map(|i| text_of(i, depth + 1)),
        Value::Object(map) => map.get("@value").and_then(|i| text_of(i, depth + 1)),
        _ => None,
    }
}

/// The name of a Place / Person / Organization (or a plain string).
fn name_of(v: &Value, depth: usize) -> Option<String> {
    if depth > MAX_JSONLD_DEPTH {
        return None;
    }
    match v {
        Value::String(s) => clean_markup(s),
        Value::Array(items) => items.iter().find_map(|i| name_of(i, depth + 1)),
        Value::Object(map) => map.get("name").and_then(|n| text_of(n, depth + 1)),
        _ => None,
    }
}

/// Performer names, de-duplicated and joined with ", " (at most 10).
fn names_of(v: &Value) -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for item in items {
        if let Some(n) = name_of(item, 1) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        if names.len() >= 10 {
            break;
        }
    }
    (!names.is_empty()).then(|| names.join(", "))
}

fn image_of(v: &Value, base: &Url, depth: usize) -> Option<String> {
    if depth > MAX_JSONLD_DEPTH {
        return None;
    }
    match v {
        Value::String(s) => resolve_image(s, base),
        Value::Array(items) => items.iter().find_map(|i| image_of(i, base, depth + 1)),
        Value::Object(map) => ["url", "contentUrl"]
            .iter()
            .filter_map(|k| map.get(*k))
            .find_map(|i| image_of(i, base, depth + 1)),
        _ => None,
    }
}

/// Earliest `availabilityStarts` (else `validFrom`) over one or more offers,
/// looking one level into `AggregateOffer.offers`.
fn earliest_offer_start(
    v: &Value,
    default_offset: FixedOffset,
    depth: usize,
) -> Option<DateTime<Utc>> {
    if depth > 2 {
        return None;
    }
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| earliest_offer_start(i, default_offset, depth + 1))
            .min(),
        Value::Object(map) => {
            let own = ["availabilityStarts", "validFrom"]
                .iter()
                .filter_map(|k| map.get(*k))
                .filter_map(|d| text_of(d, 0))
                .find_map(|s| parse_iso_datetime(&s, default_offset));
            let nested = map
                .get("offers")
                .and_then(|o| earliest_offer_start(o, default_offset, depth + 1));
            own.into_iter().chain(nested).min()
        }
        _ => None,
    }
}

/// ISO 8601 / schema.org dates: with an offset, without one (then
/// `default_offset`), or a bare date (midnight in `default_offset`).
fn parse_iso_datetime(s: &str, default_offset: FixedOffset) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let s = match s.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => s.to_string(),
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(&s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(&s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&s, fmt) {
            return local_to_utc(naive, default_offset);
        }
    }
    let date = NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()?;
    local_to_utc(date.and_time(NaiveTime::MIN), default_offset)
}

fn local_to_utc(naive: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|dt| dt.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------
// Open time in the visible text

fn re(pattern: &str) -> Regex {
    // The patterns are constants: a failure here is a programming error that
    // the unit tests catch; fall back to a never-matching regex rather than
    // panicking at run time.
    Regex::new(pattern).unwrap_or_else(|_| Regex::new(r"[^\s\S]").expect("trivial regex"))
}

static KST_WORD: LazyLock<Regex> = LazyLock::new(|| re(r"\bKST\b|한국\s*시간"));

/// Labels that introduce a ticket open time.
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?i)(?P<ko>티켓\s*예매\s*오픈|티켓\s*판매\s*시작|티켓\s*오픈|예매\s*오픈|예매\s*시작|",
        r"판매\s*시작|일반\s*예매(?:\s*오픈)?|오픈\s*일시|예매\s*일시)",
        r"|(?P<en>(?:general\s+|public\s+)?on[\s-]?sale|tickets?\s+sales?\s+(?:open|start|begin)s?",
        r"|sales?\s+(?:start|open|begin)s?|tickets?\s+(?:open|release)s?|ticket\s+opening)"
    ))
});

const MONTHS: &str = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec";
const WEEKDAYS: &str = "mon|tue|wed|thu|fri|sat|sun";

/// `2025.03.05(수)`, `2025-03-05`, `25.3.5`, `03/05`.
static NUM_DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:(?P<y>\d{4}|\d{2})\s*[./-]\s*)?(?P<mo>\d{1,2})\s*[./-]\s*(?P<d>\d{1,2})(?:\s*\.)?(?:\s*[(（]\s*[^)）\d]{1,9}\s*[)）])?",
    )
});
/// `2025년 3월 5일 (수)`, `3월 5일`.
static KO_DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:(?P<y>\d{4})\s*년\s*)?(?P<mo>\d{1,2})\s*월\s*(?P<d>\d{1,2})\s*일(?:\s*[(（]?\s*[월화수목금토일](?:요일)?\s*[)）]?)?",
    )
});
/// `Wed, Mar 5 2025`, `March 5, 2025`, `March 5th`.
static EN_MDY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?:\b(?:{WEEKDAYS})[a-z]*\.?[\s,•·]*)?\b(?P<mon>{MONTHS})[a-z]*\.?[\s•·]*(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:[\s,•·]*(?P<y>\d{{4}})\b)?"
    ))
});
/// `5 March 2025`, `Wed 5th of March`.
static EN_DMY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?:\b(?:{WEEKDAYS})[a-z]*\.?[\s,•·]*)?\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?[\s.\-]*(?:of\s+)?(?P<mon>{MONTHS})[a-z]*\.?(?:[\s,•·]*(?P<y>\d{{4}})\b)?"
    ))
});
/// A clock time right after the date: `20:00`, `오후 8시`, `8 PM`, `at 20:00`,
/// `10:00 AM`, `20시 30분`, `T20:00:00`.
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^[\s,•·\-–~@T]*(?:(?i:at|from)\s+|부터\s*)?",
        r"(?P<mer1>오전|오후|낮|밤|저녁|새벽|(?i:a\.m\.|p\.m\.|am|pm))?\s*",
        r"(?P<h>\d{1,2})(?:\s*:\s*(?P<mi>\d{2})(?::\d{2}(?:\.\d+)?)?|\s*(?P<si>시)(?:\s*(?P<km>\d{1,2})\s*분|\s*(?P<half>반))?)?",
        r"\s*(?P<mer2>(?i:a\.m\.|p\.m\.|am\b|pm\b))?"
    ))
});
/// An explicit zone right after the time.
static ZONE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^\s*[(（\[]?\s*(?:(?P<abbr>(?i:KST|JST|UTC|GMT|EST|EDT|PST|PDT|Z))\b",
        r"(?:\s*(?P<off1>[+-]\s*\d{1,2}(?::?\d{2})?))?|(?P<off2>[+-]\d{2}:?\d{2}))"
    ))
});

/// Words that may stand between a label and its date ("티켓오픈 일시 :",
/// "On sale: ", "Tickets go on sale on …").
const FILLER_WORDS: [&str; 24] = [
    "일시",
    "일정",
    "시간",
    "날짜",
    "일자",
    "안내",
    "예정",
    "예정일",
    "일시는",
    "오픈",
    "시작",
    "date",
    "dates",
    "time",
    "at",
    "on",
    "from",
    "is",
    "are",
    "will",
    "be",
    "begins",
    "starts",
    "opens",
];

struct DateHit<'t> {
    start: usize,
    end: usize,
    caps: Captures<'t>,
    korean: bool,
    english_month: bool,
}

/// Finds the first labelled open time in `text`.
fn find_open_time(
    text: &str,
    now: DateTime<Utc>,
    en_default: FixedOffset,
) -> Option<DateTime<Utc>> {
    for label in LABEL.captures_iter(text) {
        let Some(whole) = label.get(0) else { continue };
        let korean_label = label.name("ko").is_some();
        let before = text.get(..whole.start()).unwrap_or_default();
        if korean_label && before.trim_end().ends_with('선') {
            continue; // 선예매 오픈: a (fan-club) presale, not the general open
        }
        let window = window_after(text, whole.end(), 100);
        if let Some(dt) = parse_dated_time(window, korean_label, now, en_default) {
            return Some(dt);
        }
    }
    None
}

/// Up to `max_chars` characters of `text` from byte offset `start`.
fn window_after(text: &str, start: usize, max_chars: usize) -> &str {
    let rest = text.get(start..).unwrap_or_default();
    match rest.char_indices().nth(max_chars) {
        Some((i, _)) => &rest[..i],
        None => rest,
    }
}

fn earliest_date(window: &str) -> Option<DateHit<'_>> {
    let candidates: [(&Regex, bool, bool); 4] = [
        (&NUM_DATE, false, false),
        (&KO_DATE, true, false),
        (&EN_MDY, false, true),
        (&EN_DMY, false, true),
    ];
    candidates
        .iter()
        .filter_map(|(r, korean, english_month)| {
            let caps = r.captures(window)?;
            let m = caps.get(0)?;
            Some(DateHit {
                start: m.start(),
                end: m.end(),
                caps,
                korean: *korean,
                english_month: *english_month,
            })
        })
        // Earliest start; at equal starts the longer match (more detail).
        .min_by_key(|h| (h.start, usize::MAX - h.end))
}

fn prefix_is_filler(prefix: &str) -> bool {
    if prefix.chars().count() > 30 {
        return false;
    }
    prefix
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .all(|t| FILLER_WORDS.contains(&t.to_lowercase().as_str()))
}

fn parse_dated_time(
    window: &str,
    korean_label: bool,
    now: DateTime<Utc>,
    en_default: FixedOffset,
) -> Option<DateTime<Utc>> {
    let hit = earliest_date(window)?;
    if !prefix_is_filler(window.get(..hit.start)?) {
        return None;
    }
    let caps = &hit.caps;
    let day: u32 = caps.name("d")?.as_str().parse().ok()?;
    let month: u32 = if hit.english_month {
        month_number(caps.name("mon")?.as_str())?
    } else {
        caps.name("mo")?.as_str().parse().ok()?
    };
    let year: Option<i32> = match caps.name("y") {
        Some(y) => {
            let y: i32 = y.as_str().parse().ok()?;
            Some(if y < 100 { 2000 + y } else { y })
        }
        None => None,
    };

    let after_date = window.get(hit.end..)?;
    let time = TIME.captures(after_date)?;
    let (hour, minute) = clock(&time)?;
    let time_end = time.get(0)?.end();
    let after_time = after_date.get(time_end..).unwrap_or_default();

    let offset = match explicit_zone(after_time) {
        Some(z) => z,
        None if korean_label || hit.korean => kst(),
        None => en_default,
    };

    let build = |y: i32| -> Option<DateTime<Utc>> {
        let date = NaiveDate::from_ymd_opt(y, month, day)?;
        let naive = if hour == 24 {
            date.succ_opt()?.and_hms_opt(0, minute, 0)?
        } else {
            date.and_hms_opt(hour, minute, 0)?
        };
        local_to_utc(naive, offset)
    };
    match year {
        Some(y) => build(y),
        // No year: the next such date after `now` (Feb 29 may skip years).
        None => {
            let this_year = now.with_timezone(&offset).year();
            (this_year..=this_year + 8)
                .filter_map(build)
                .find(|dt| *dt > now)
        }
    }
}

fn month_number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let idx = MONTHS.split('|').position(|m| lower.starts_with(m))?;
    u32::try_from(idx + 1).ok()
}

/// (hour 0–24, minute) from a TIME match; `None` unless the match is clearly
/// a clock time (has minutes, `시`, or AM/PM).
fn clock(time: &Captures<'_>) -> Option<(u32, u32)> {
    let mut hour: u32 = time.name("h")?.as_str().parse().ok()?;
    let minute: u32 = if let Some(mi) = time.name("mi").or_else(|| time.name("km")) {
        mi.as_str().parse().ok()?
    } else if time.name("half").is_some() {
        30
    } else {
        0
    };
    let meridiem = time
        .name("mer1")
        .or_else(|| time.name("mer2"))
        .map(|m| m.as_str().to_ascii_lowercase().replace('.', ""));
    let is_clock = time.name("mi").is_some() || time.name("si").is_some() || meridiem.is_some();
    if !is_clock || minute > 59 {
        return None;
    }
    match meridiem.as_deref() {
        Some("pm" | "오후" | "저녁" | "밤") => {
            if hour > 12 && meridiem.as_deref() == Some("pm") {
                return None;
            }
            if hour < 12 {
                hour += 12;
            }
        }
        Some("am" | "오전" | "새벽") => {
            if hour > 12 {
                return None;
            }
            if hour == 12 {
                hour = 0;
            }
        }
        Some("낮") if hour < 7 => hour += 12,
        _ => {}
    }
    if hour > 24 || (hour == 24 && minute != 0) {
        return None;
    }
    Some((hour, minute))
}

fn explicit_zone(after_time: &str) -> Option<FixedOffset> {
    let z = ZONE.captures(after_time)?;
    if let Some(off) = z.name("off2") {
        return parse_offset(off.as_str());
    }
    let abbr = z.name("abbr")?.as_str().to_ascii_uppercase();
    let base_hours = match abbr.as_str() {
        "KST" | "JST" => 9,
        "UTC" | "GMT" | "Z" => 0,
        "EST" => -5,
        "EDT" => -4,
        "PST" => -8,
        "PDT" => -7,
        _ => return None,
    };
    match (abbr.as_str(), z.name("off1")) {
        ("UTC" | "GMT", Some(off)) => parse_offset(off.as_str()),
        _ => FixedOffset::east_opt(base_hours * 3600),
    }
}

/// `+9`, `+09`, `-5`, `+09:00`, `+0900`, `+ 9`.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let (sign, digits) = match s.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let digits = digits.replace(':', "");
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 | 4 => {
            let (h, m) = digits.split_at_checked(digits.len() - 2)?;
            (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)
        }
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests;
