//! Input checks shared by every endpoint. Each failure names the field it is about, so that a
//! client can point at it (API.md: "details name the field").

use crate::error::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

/// Parses a JSON request body. Malformed JSON, a wrong type or a missing field becomes
/// `VALIDATION_FAILED` naming the field (`body` when the problem is the document itself).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => return Err(DomainError::validation("body", "a JSON body is required")),
        // serde would read an array into a struct field by field; every body here is an object.
        Some(b'{') => {}
        Some(_) => return Err(DomainError::validation("body", "must be a JSON object")),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let inner = err.inner();
        let reason = inner.to_string();
        // A syntax error is about the document, wherever the parser happened to be.
        let path = match inner.classify() {
            serde_json::error::Category::Data => err.path().to_string(),
            _ => ".".to_owned(),
        };
        let field = missing_field_name(&reason)
            .map(|missing| {
                if path == "." {
                    missing.to_owned()
                } else {
                    format!("{path}.{missing}")
                }
            })
            .unwrap_or_else(|| if path == "." { "body".to_owned() } else { path });
        DomainError::validation(field, strip_position(&reason))
    })?;
    deserializer
        .end()
        .map_err(|err| DomainError::validation("body", strip_position(&err.to_string())))?;
    Ok(parsed)
}

/// serde reports a missing field at the path of the object that lacks it, with the field's name
/// only in the message: "missing field `username`".
fn missing_field_name(reason: &str) -> Option<&str> {
    reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// "expected a string at line 1 column 15" → "expected a string": positions mean nothing to a
/// client that did not format the body by hand.
fn strip_position(reason: &str) -> String {
    match reason.find(" at line ") {
        Some(index) => reason[..index].to_owned(),
        None => reason.to_owned(),
    }
}

/// A string of `min..=max` characters (Unicode scalar values), after trimming nothing: what the
/// client sent is what is stored.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let length = value.chars().count();
    if length < min || length > max {
        return Err(DomainError::validation(
            field,
            format!("must be {min} to {max} characters long"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DomainError::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// 3..32 characters of `[a-z0-9_]`.
pub fn username(value: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if !(3..=32).contains(&value.len()) || !value.chars().all(allowed) {
        return Err(DomainError::validation(
            "username",
            "must be 3 to 32 characters of a-z, 0-9 and _",
        ));
    }
    Ok(())
}

pub fn password(value: &str) -> Result<()> {
    let length = value.chars().count();
    if !(8..=128).contains(&length) {
        return Err(DomainError::validation(
            "password",
            "must be 8 to 128 characters long",
        ));
    }
    Ok(())
}

/// An absolute http(s) URL of at most 2,048 characters.
pub fn http_url(field: &str, value: &str) -> Result<url::Url> {
    if value.len() > 2048 {
        return Err(DomainError::validation(
            field,
            "must be at most 2048 characters",
        ));
    }
    match url::Url::parse(value) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(parsed)
        }
        _ => Err(DomainError::validation(
            field,
            "must be an http or https URL",
        )),
    }
}

/// A time that every client can read back as RFC 3339: from the year 1970 to 9999 in UTC.
pub fn plausible_time(field: &str, value: DateTime<Utc>) -> Result<()> {
    use chrono::Datelike;
    if (1970..=9999).contains(&value.year()) {
        Ok(())
    } else {
        Err(DomainError::validation(
            field,
            "must be a time between the years 1970 and 9999",
        ))
    }
}

/// An RFC 3339 time, normalised to UTC.
pub fn timestamp(field: &str, value: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| DomainError::validation(field, "must be an RFC 3339 time"))
}

pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<()> {
    if !(min..=max).contains(&value) {
        return Err(DomainError::validation(
            field,
            format!("must be from {min} to {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Signup {
        username: String,
        age: u32,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        price: i64,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<Signup>(body.as_bytes()).unwrap_err() {
            DomainError::Validation { field, .. } => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn when_body_is_malformed_should_blame_the_body() {
        assert_eq!(field_of("{\"username\": "), "body");
        assert_eq!(field_of(""), "body");
        assert_eq!(field_of("[]"), "body");
        assert_eq!(field_of("{\"username\":\"a\",\"age\":1} trailing"), "body");
    }

    #[test]
    fn when_type_is_wrong_should_name_the_field() {
        assert_eq!(field_of(r#"{"username": 5, "age": 1}"#), "username");
        assert_eq!(field_of(r#"{"username": "a", "age": -1}"#), "age");
        assert_eq!(
            field_of(r#"{"username": "a", "age": 1, "nested": {"price": "x"}}"#),
            "nested.price"
        );
    }

    #[test]
    fn when_field_is_missing_should_name_it() {
        assert_eq!(field_of(r#"{"age": 1}"#), "username");
        assert_eq!(
            field_of(r#"{"username": "a", "age": 1, "nested": {}}"#),
            "nested.price"
        );
    }

    #[test]
    fn when_username_has_capitals_or_wrong_length_should_refuse() {
        assert!(username("alice_01").is_ok());
        assert!(username("Alice").is_err());
        assert!(username("al").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("al ice").is_err());
    }

    #[test]
    fn when_text_length_counts_characters_not_bytes() {
        assert!(text("name", "김철수", 1, 3).is_ok());
        assert!(text("name", "", 1, 3).is_err());
        assert!(text("name", "a\u{0}b", 1, 10).is_err());
    }

    #[test]
    fn when_url_is_not_http_should_refuse() {
        assert!(http_url("image_url", "https://example.com/a.png").is_ok());
        assert!(http_url("image_url", "ftp://example.com/a.png").is_err());
        assert!(http_url("image_url", "javascript:alert(1)").is_err());
        assert!(http_url("image_url", "not a url").is_err());
    }

    #[test]
    fn when_timestamp_has_offset_should_normalise_to_utc() {
        let parsed = timestamp("t", "2026-12-01T19:00:00+09:00").unwrap();
        assert_eq!(parsed.to_rfc3339(), "2026-12-01T10:00:00+00:00");
        assert!(timestamp("t", "tomorrow").is_err());
    }
}
