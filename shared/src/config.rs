//! Settings, read once at start from the environment into one typed struct.
//!
//! A missing or malformed setting is an error at start (a cold start that fails loudly), never a
//! panic inside a handler. Defaults are the ones API.md ("Local stack") documents.

use crate::rules::ParkingRule;
use std::collections::BTreeSet;

/// Where the key that signs access and queue tokens comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretSource {
    /// `JWT_SECRET`: the key itself (local stack, tests).
    Value(String),
    /// `JWT_SECRET_ARN`: a Secrets Manager secret, read once at cold start (AWS).
    SecretsManager(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub table_name: String,
    pub jwt_secret: SecretSource,
    /// `EDGE_SECRET` (the value: local stack, tests) or `EDGE_SECRET_ARN` (a Secrets Manager
    /// secret, read once at cold start): when set, a request is answered only if it carries
    /// this value in `X-Origin-Verify`, which the template's CloudFront distribution adds to
    /// every request it forwards (`EdgeOnly`). A request that came another way, to the API's
    /// execute-api address or the entry function's URL, never went through the WAF at the
    /// edge, and is refused `403 FORBIDDEN`. Unset (the default): no such check.
    pub edge_secret: Option<SecretSource>,
    pub access_token_ttl_seconds: i64,
    pub hold_ttl_seconds: i64,
    pub queue_active_ttl_seconds: i64,
    pub queue_max_active: u32,
    /// `QUEUE_ADMIT_PER_SECOND`: the most people one concert admits a second (0: as many as
    /// its free slots allow). Each step admits at most this times the step's interval: what
    /// the admitted do next (the seat map, the active list) has limits of its own, which a
    /// step filling thousands of slots at once would throttle (docs/PERFORMANCE.md, the
    /// simulated on-sale).
    pub queue_admit_per_second: u32,
    /// How long a queue token may wait to be admitted before it lapses.
    pub queue_wait_ttl_seconds: i64,
    /// The admitter's step: in AWS one scheduled run admits every this many seconds for a
    /// minute; locally the scheduler runs one step this often.
    pub admit_interval_seconds: i64,
    /// How long the admitter hides a full concert's entrants before it looks at them again:
    /// `ADMIT_HAND_BACK_SECONDS`, by default one step. 0 shows them again at once (more
    /// receives, but no visibility timeouts: the local emulator mishandles those on FIFO
    /// queues, so the local stack uses 0).
    pub admit_hand_back_seconds: i64,
    /// `QUEUE_ENTRY_SHARDS`: how many counter items and SQS message groups each concert's line
    /// is spread over. One shard takes about 250 entries/s (the message group's 300 sends/s
    /// with a margin), so size it from the expected rate: 40 for 10,000 entries/s. With one
    /// shard positions are exact; with more they are estimates (see docs/ARCHITECTURE.md).
    pub queue_entry_shards: u32,
    /// `QUEUE_ENTRY_GRACE_MILLIS`: how long the admitter waits for a place whose number was
    /// taken (a later one of its shard is known) but whose message has not come, before it
    /// passes the place over. An entry sends its message only within this time of taking its
    /// number (less a second), so only an entry stopped midway, or one whose message was held
    /// up on its way, is passed over; its holder then sees the place ended.
    pub queue_entry_grace_millis: i64,
    pub admin_usernames: BTreeSet<String>,
    /// `IMPORT_TEST_ALLOW`: for tests only, never set in production: addresses (and ports) the
    /// page import may fetch although they are not public, as `127.0.0.1:8080,127.0.0.1:9090`.
    /// Empty by default: the import fetches public addresses on ports 80 and 443 only.
    pub import_test_allow: Vec<std::net::SocketAddr>,
    /// `IMPORTS_PER_MINUTE`: pages one user may have fetched a minute (pages imported before
    /// are not fetched again and do not count); beyond it, `429 RATE_LIMITED`.
    pub imports_per_minute: u64,
    /// `REQUEST_TIMEOUT_MILLIS`: how long a request may run when its invocation names no
    /// deadline (in Lambda the function's own deadline, less a margin, decides). Past it the
    /// request is stopped and answered `SERVICE_BUSY`.
    pub request_timeout_millis: u64,
    /// `AWS_ATTEMPT_TIMEOUT_MILLIS`: one attempt of an AWS request, after which the SDK gives
    /// it up and retries.
    pub aws_attempt_timeout_millis: u64,
    /// `AWS_CALL_TIMEOUT_MILLIS`: an AWS request with all its retries; sized so that the few
    /// calls a request makes one after another fit in the function's timeout.
    pub aws_call_timeout_millis: u64,
    /// `AWS_RETRY_QUOTA`: the SDK's retry token bucket per process (500 by default, as the
    /// SDK's): each retry takes tokens, a success gives some back, and an empty bucket means no
    /// more retries, so that a failing dependency is not hammered.
    pub aws_retry_quota: usize,
    /// `AWS_MAX_ATTEMPTS`: attempts per AWS request (the SDK's standard retry mode: jittered
    /// exponential backoff, and a retry budget that stops retrying when most calls fail).
    pub aws_max_attempts: u32,
    /// The seat-parking rule: `HOLD_DROPS_BEFORE_COOLDOWN` holds of one date released or left
    /// to run out within `HOLD_DROP_WINDOW_SECONDS`, and the user waits
    /// `HOLD_COOLDOWN_SECONDS` after the last before holding seats of that date again (0
    /// drops: no rule).
    pub parking: ParkingRule,
    /// `QUEUE_URL`: the SQS FIFO queue that carries queue entrants to the admitter.
    pub queue_url: Option<String>,
    /// `QUEUE_RECEIVE_VISIBILITY_SECONDS`: how long the admitter holds the entry queue's
    /// messages it received before SQS shows them again by itself (if the admitter stops
    /// without handing them back, its shard waits this long). Longer than one admission step.
    pub queue_receive_visibility_seconds: i64,
    /// `DEAD_LETTER_QUEUE_URL`: where the admitter moves messages it cannot read.
    pub dead_letter_queue_url: Option<String>,
    /// `EVENT_BUS_NAME`: the EventBridge bus that domain events go to.
    pub event_bus_name: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("setting {0} is required")]
    Missing(&'static str),
    #[error("setting {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The most entry shards a concert may have. The admitter's writes do not cap it (each moves
/// only the shards whose places it takes, as many as fit in 100 items, and a step makes as many
/// writes as it needs); each admission round reads every shard's progress, counter and stash
/// (3 items a shard, 8 `BatchGetItem`s of 100 at 256), which grows with it. 256 groups of
/// about 250 entries a second each take 64,000 entries a second.
pub const MAX_ENTRY_SHARDS: i64 = 256;

/// The shortest HMAC key we accept: 256 bits, as HS256 wants.
pub const MIN_SECRET_BYTES: usize = 32;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the config from any name → value lookup, so tests need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let table_name = get("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?;
        // A secret given as `name` itself or as the Secrets Manager secret `name_ARN`.
        let secret = |name: &'static str, arn: &str| -> Result<_, ConfigError> {
            match (get(name), get(arn)) {
                (Some(secret), _) => {
                    check_secret_length(name, &secret)?;
                    Ok(Some(SecretSource::Value(secret)))
                }
                (None, arn) => Ok(arn.map(SecretSource::SecretsManager)),
            }
        };
        let jwt_secret = secret("JWT_SECRET", "JWT_SECRET_ARN")?
            .ok_or(ConfigError::Missing("JWT_SECRET or JWT_SECRET_ARN"))?;
        let edge_secret = secret("EDGE_SECRET", "EDGE_SECRET_ARN")?;
        let number = |name: &'static str, default: i64, min: i64, max: i64| match get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(value) if (min..=max).contains(&value) => Ok(value),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: format!("expected a whole number from {min} to {max}, got {raw:?}"),
                }),
            },
        };
        let admit_interval_seconds = number("ADMIT_INTERVAL_SECONDS", 10, 1, 60)?;
        let admit_hand_back_seconds =
            number("ADMIT_HAND_BACK_SECONDS", admit_interval_seconds, 0, 60)?;
        let admin_usernames = get("ADMIN_USERNAMES")
            .unwrap_or_else(|| "admin".to_owned())
            .split(',')
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect();
        Ok(Self {
            table_name,
            jwt_secret,
            edge_secret,
            access_token_ttl_seconds: number("ACCESS_TOKEN_TTL_SECONDS", 3600, 60, 86_400)?,
            hold_ttl_seconds: number("HOLD_TTL_SECONDS", 300, 1, 3600)?,
            queue_active_ttl_seconds: number("QUEUE_ACTIVE_TTL_SECONDS", 600, 1, 86_400)?,
            // Each active shopper is one item; the admitter reads them all every step (about
            // 110 bytes each, so 10,000 are two 1 MB pages).
            queue_max_active: number("QUEUE_MAX_ACTIVE", 100, 1, 10_000)? as u32,
            queue_admit_per_second: number("QUEUE_ADMIT_PER_SECOND", 0, 0, 100_000)? as u32,
            queue_wait_ttl_seconds: number("QUEUE_WAIT_TTL_SECONDS", 21_600, 60, 604_800)?,
            admit_interval_seconds,
            admit_hand_back_seconds,
            queue_entry_shards: number("QUEUE_ENTRY_SHARDS", 1, 1, MAX_ENTRY_SHARDS)? as u32,
            queue_entry_grace_millis: {
                // A full concert's messages are handed back out of sight: a number must not be
                // taken for missing while it may just be hidden.
                let hidden_ms = admit_hand_back_seconds * 1000;
                let grace = number(
                    "QUEUE_ENTRY_GRACE_MILLIS",
                    (hidden_ms + 2_000).max(5_000),
                    2_000,
                    600_000,
                )?;
                if grace <= hidden_ms + 1_000 {
                    return Err(ConfigError::Invalid {
                        name: "QUEUE_ENTRY_GRACE_MILLIS",
                        reason: format!(
                            "must exceed ADMIT_HAND_BACK_SECONDS by more than a second ({hidden_ms} ms)"
                        ),
                    });
                }
                grace
            },
            admin_usernames,
            imports_per_minute: number("IMPORTS_PER_MINUTE", 10, 1, 10_000)? as u64,
            import_test_allow: match get("IMPORT_TEST_ALLOW") {
                None => Vec::new(),
                Some(raw) => raw
                    .split(',')
                    .map(|one| one.trim().parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| ConfigError::Invalid {
                        name: "IMPORT_TEST_ALLOW",
                        reason: format!("expected address:port pairs, got {raw:?}"),
                    })?,
            },
            request_timeout_millis: number("REQUEST_TIMEOUT_MILLIS", 8_000, 100, 900_000)? as u64,
            aws_attempt_timeout_millis: number("AWS_ATTEMPT_TIMEOUT_MILLIS", 3_000, 50, 60_000)?
                as u64,
            aws_call_timeout_millis: number("AWS_CALL_TIMEOUT_MILLIS", 7_000, 100, 900_000)? as u64,
            aws_max_attempts: number("AWS_MAX_ATTEMPTS", 4, 1, 10)? as u32,
            aws_retry_quota: number("AWS_RETRY_QUOTA", 500, 10, 10_000_000)? as usize,
            parking: ParkingRule {
                drops: number("HOLD_DROPS_BEFORE_COOLDOWN", 3, 0, 100)? as u32,
                window: chrono::Duration::seconds(number(
                    "HOLD_DROP_WINDOW_SECONDS",
                    600,
                    1,
                    86_400,
                )?),
                cooldown: chrono::Duration::seconds(number(
                    "HOLD_COOLDOWN_SECONDS",
                    120,
                    1,
                    86_400,
                )?),
            },
            queue_url: get("QUEUE_URL"),
            dead_letter_queue_url: get("DEAD_LETTER_QUEUE_URL"),
            queue_receive_visibility_seconds: number(
                "QUEUE_RECEIVE_VISIBILITY_SECONDS",
                5,
                1,
                43_200,
            )?,
            event_bus_name: get("EVENT_BUS_NAME"),
        })
    }

    pub fn is_admin(&self, username: &str) -> bool {
        self.admin_usernames.contains(username)
    }
}

/// A shared secret (the signing key, the edge's proof) is at least [`MIN_SECRET_BYTES`] long;
/// `name` is the setting it came from.
pub fn check_secret_length(name: &'static str, secret: &str) -> Result<(), ConfigError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| env.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn when_only_required_settings_should_use_documented_defaults() {
        let config = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(config.hold_ttl_seconds, 300);
        assert_eq!(config.queue_active_ttl_seconds, 600);
        assert_eq!(config.queue_max_active, 100);
        assert_eq!(config.queue_admit_per_second, 0, "no pace unless asked");
        assert!(config.is_admin("admin"));
        assert!(!config.is_admin("alice"));
    }

    #[test]
    fn when_many_shoppers_are_wanted_should_allow_ten_thousand_active() {
        let wanted = |n: &str| {
            config(&[
                ("TABLE_NAME", "t"),
                ("JWT_SECRET", SECRET),
                ("QUEUE_MAX_ACTIVE", n),
            ])
        };
        assert_eq!(wanted("10000").unwrap().queue_max_active, 10_000);
        assert!(wanted("10001").is_err());
    }

    #[test]
    fn when_a_fast_line_is_wanted_should_allow_256_entry_shards() {
        let wanted = |n: &str| {
            config(&[
                ("TABLE_NAME", "t"),
                ("JWT_SECRET", SECRET),
                ("QUEUE_ENTRY_SHARDS", n),
            ])
        };
        assert_eq!(wanted("256").unwrap().queue_entry_shards, 256);
        assert!(wanted("257").is_err());
        assert!(wanted("0").is_err());
    }

    #[test]
    fn the_grace_for_a_missing_number_should_outlast_a_full_concerts_hand_back() {
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)];
            all.extend_from_slice(pairs);
            config(&all)
        };
        // In AWS a full concert's messages are hidden for one step (10 s).
        assert_eq!(with(&[]).unwrap().queue_entry_grace_millis, 12_000);
        assert_eq!(
            with(&[("ADMIT_HAND_BACK_SECONDS", "0")])
                .unwrap()
                .queue_entry_grace_millis,
            5_000
        );
        let err = with(&[("QUEUE_ENTRY_GRACE_MILLIS", "8000")]).unwrap_err();
        assert!(
            err.to_string().contains("QUEUE_ENTRY_GRACE_MILLIS"),
            "{err}"
        );
    }

    #[test]
    fn when_table_missing_should_fail_at_start() {
        assert_eq!(
            config(&[("JWT_SECRET", SECRET)]),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
    }

    #[test]
    fn when_secret_is_short_should_refuse_it() {
        assert!(config(&[("TABLE_NAME", "t"), ("JWT_SECRET", "short")]).is_err());
    }

    #[test]
    fn when_secret_arn_given_should_read_from_secrets_manager() {
        let config = config(&[("TABLE_NAME", "t"), ("JWT_SECRET_ARN", "arn:x")]).unwrap();
        assert_eq!(
            config.jwt_secret,
            SecretSource::SecretsManager("arn:x".into())
        );
    }

    #[test]
    fn edge_secret_should_be_off_unless_set_and_refused_when_short() {
        let base = [("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)];
        assert_eq!(config(&base).unwrap().edge_secret, None);
        // The template passes an empty EDGE_SECRET_ARN when EdgeOnly is off.
        let empty = config(&[base[0], base[1], ("EDGE_SECRET_ARN", "")]).unwrap();
        assert_eq!(empty.edge_secret, None);
        let arn = config(&[base[0], base[1], ("EDGE_SECRET_ARN", "arn:edge")]).unwrap();
        assert_eq!(
            arn.edge_secret,
            Some(SecretSource::SecretsManager("arn:edge".into()))
        );
        let value = config(&[base[0], base[1], ("EDGE_SECRET", SECRET)]).unwrap();
        assert_eq!(value.edge_secret, Some(SecretSource::Value(SECRET.into())));
        let err = config(&[base[0], base[1], ("EDGE_SECRET", "short")]).unwrap_err();
        assert!(err.to_string().contains("EDGE_SECRET"), "{err}");
    }

    #[test]
    fn when_number_is_malformed_should_name_the_setting() {
        let err = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("HOLD_TTL_SECONDS", "soon"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("HOLD_TTL_SECONDS"));
    }

    #[test]
    fn when_admins_listed_should_split_on_commas() {
        let config = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("ADMIN_USERNAMES", "root, ops ,"),
        ])
        .unwrap();
        assert!(config.is_admin("root") && config.is_admin("ops"));
        assert!(!config.is_admin("admin"));
    }
}
