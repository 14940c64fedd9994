//! The faults the meter can inject between the service and the emulators, as a cloud gives
//! them during an on-sale.
//!
//! A [`FaultPlan`] is a rate per fault kind, optionally narrowed to one service or one action,
//! and a seed. For every request the meter draws from the plan's generator, in the order the
//! requests reach it, and injects at most one fault:
//!
//! - `throttle`: answered with the service's throttling error, never forwarded. DynamoDB answers
//!   `ProvisionedThroughputExceededException`, `ThrottlingException` or `RequestLimitExceeded`
//!   (and a transaction may instead be cancelled with `TransactionConflict`), SQS and
//!   EventBridge `ThrottlingException`;
//! - `lost`: forwarded and committed by the emulator, then the answer is lost: the caller is
//!   told `500 InternalServerError`, or the connection is dropped, or the answer never comes
//!   (held for the stall time, then dropped);
//! - `latency`: forwarded after a random delay of up to `latency_ms`;
//! - `stall`: held for `stall_ms` (longer than a function's timeout), then forwarded, whether
//!   or not the caller is still waiting: a write that lands after its caller gave up;
//! - `duplicate` (SQS `SendMessage` only): forwarded, and a copy with another deduplication id
//!   is sent a moment later, as a producer's retry after the deduplication window would.
//!
//! The spec is `KIND[@SELECTOR]=RATE,...`, where `SELECTOR` is a service (`DynamoDB`, `SQS`,
//! `EventBridge`) or one action (`DynamoDB.TransactWriteItems`), plus `latency_ms=N` and
//! `stall_ms=N`; `all=RATE` sets every kind. The same seed and the same order of requests give
//! the same faults; concurrent requests reach the meter in an order the machine decides, so a
//! run is repeatable in its fault mix, not request for request.

use std::collections::BTreeMap;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Throttle,
    Lost,
    Latency,
    Stall,
    Duplicate,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Throttle,
        FaultKind::Lost,
        FaultKind::Latency,
        FaultKind::Stall,
        FaultKind::Duplicate,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::Lost => "lost",
            FaultKind::Latency => "latency",
            FaultKind::Stall => "stall",
            FaultKind::Duplicate => "duplicate",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.label() == text)
    }

    /// Whether this kind can happen to `service`'s `operation` at all.
    fn applies_to(self, service: &str, operation: &str) -> bool {
        match self {
            FaultKind::Duplicate => service == "SQS" && operation == "SendMessage",
            _ => true,
        }
    }
}

/// What the meter does to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer this error (status, `__type`, message, optional extra fields) without forwarding.
    Refuse {
        status: u16,
        error_type: String,
        body: serde_json::Value,
    },
    /// Forward, then lose the answer this way.
    Lose(Loss),
    /// Forward after this many milliseconds.
    Delay(u64),
    /// Hold this many milliseconds, then forward.
    Stall(u64),
    /// Forward, and send a copy with another deduplication id after this many milliseconds.
    Duplicate(u64),
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Refuse { .. } => FaultKind::Throttle,
            Fault::Lose(_) => FaultKind::Lost,
            Fault::Delay(_) => FaultKind::Latency,
            Fault::Stall(_) => FaultKind::Stall,
            Fault::Duplicate(_) => FaultKind::Duplicate,
        }
    }
}

/// How an answer is lost after the request was carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// `500 InternalServerError`.
    ServerError,
    /// The connection is closed without an answer.
    Dropped,
    /// No answer for the stall time, then the connection is closed.
    TimedOut(u64),
}

/// A rate for one kind, on every request or on those of one service or action.
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    kind: FaultKind,
    /// `None`: every request; `Some("DynamoDB")` or `Some("DynamoDB.PutItem")`.
    selector: Option<String>,
    rate: f64,
}

/// The faults to inject, and the generator that decides which request gets which.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    rules: Vec<Rule>,
    latency_ms: u64,
    stall_ms: u64,
    rng: SplitMix64,
    spec: String,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::none()
    }
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        Self {
            rules: Vec::new(),
            latency_ms: 300,
            stall_ms: 12_000,
            rng: SplitMix64::new(0),
            spec: String::new(),
        }
    }

    pub fn parse(spec: &str, seed: u64) -> Result<Self, String> {
        let mut plan = Self::none();
        plan.rng = SplitMix64::new(seed);
        plan.spec = spec.trim().to_owned();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or(format!("faults: expected KIND=RATE, got {part}"))?;
            let number = |v: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or(format!("faults: {part}: not a number"))
            };
            match name {
                "latency_ms" => plan.latency_ms = number(value)? as u64,
                "stall_ms" => plan.stall_ms = number(value)? as u64,
                _ => {
                    let rate = number(value)?;
                    if rate > 1.0 {
                        return Err(format!("faults: {part}: a rate is at most 1"));
                    }
                    let (kind, selector) = match name.split_once('@') {
                        Some((kind, selector)) => (kind, Some(selector.to_owned())),
                        None => (name, None),
                    };
                    let kinds: Vec<FaultKind> = if kind == "all" {
                        FaultKind::ALL.to_vec()
                    } else {
                        vec![FaultKind::parse(kind).ok_or(format!(
                            "faults: unknown kind {kind} (throttle, lost, latency, stall, duplicate, all)"
                        ))?]
                    };
                    for kind in kinds {
                        plan.rules.push(Rule {
                            kind,
                            selector: selector.clone(),
                            rate,
                        });
                    }
                }
            }
        }
        Ok(plan)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|rule| rule.rate == 0.0)
    }

    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The rate of `kind` for `service`'s `operation`: the most specific rule that names it.
    fn rate(&self, kind: FaultKind, service: &str, operation: &str) -> f64 {
        if !kind.applies_to(service, operation) {
            return 0.0;
        }
        let action = format!("{service}.{operation}");
        let specificity = |rule: &Rule| match rule.selector.as_deref() {
            None => Some(0),
            Some(s) if s == service => Some(1),
            Some(s) if s == action => Some(2),
            Some(_) => None,
        };
        self.rules
            .iter()
            .filter(|rule| rule.kind == kind)
            .filter_map(|rule| specificity(rule).map(|level| (level, rule.rate)))
            .max_by_key(|(level, _)| *level)
            .map_or(0.0, |(_, rate)| rate)
    }

    /// The fault for the next request, if any. `service` is the meter's label (`DynamoDB`,
    /// `SQS`, ...), `operation` the action.
    pub fn next(&mut self, service: &str, operation: &str) -> Option<Fault> {
        if self.rules.is_empty() {
            return None;
        }
        for kind in FaultKind::ALL {
            let rate = self.rate(kind, service, operation);
            // One draw per kind whatever the rate, so that a rule for one action does not
            // shift the faults every other request gets.
            let draw = self.rng.unit();
            if draw >= rate {
                continue;
            }
            let pick = self.rng.next_u64();
            return Some(match kind {
                FaultKind::Throttle => throttle(service, operation, pick),
                FaultKind::Lost => Fault::Lose(match pick % 3 {
                    0 => Loss::ServerError,
                    1 => Loss::Dropped,
                    _ => Loss::TimedOut(self.stall_ms),
                }),
                FaultKind::Latency => Fault::Delay(pick % self.latency_ms.max(1)),
                FaultKind::Stall => Fault::Stall(self.stall_ms),
                FaultKind::Duplicate => Fault::Duplicate(200 + pick % 2_000),
            });
        }
        None
    }
}

/// The throttling answer a service gives.
fn throttle(service: &str, operation: &str, pick: u64) -> Fault {
    let refuse = |error_type: &str, message: &str| Fault::Refuse {
        status: 400,
        error_type: error_type.to_owned(),
        body: serde_json::json!({ "message": message }),
    };
    match service {
        "DynamoDB" => {
            if operation == "TransactWriteItems" && pick % 4 == 3 {
                // A transaction that collided with another on one of its items: every item's
                // reason is given, the colliding one says TransactionConflict.
                return Fault::Refuse {
                    status: 400,
                    error_type: "TransactionCanceledException".to_owned(),
                    body: serde_json::json!({
                        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
                        "CancellationReasons": [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}],
                    }),
                };
            }
            match pick % 3 {
                0 => refuse(
                    "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded.",
                ),
                1 => refuse(
                    "ThrottlingException",
                    "Throughput exceeds the current capacity of your table or index.",
                ),
                _ => refuse(
                    "RequestLimitExceeded",
                    "Throughput exceeds the current throughput limit for your account.",
                ),
            }
        }
        _ => refuse("ThrottlingException", "Rate exceeded"),
    }
}

/// Faults injected so far, per kind and action (`"lost DynamoDB.PutItem"`).
pub type FaultCounts = BTreeMap<String, u64>;

/// The fault schedule's generator: the practice crowd's small seedable SplitMix64, so that a
/// schedule replays from its seed on every machine.
pub use shared::practice::Random as SplitMix64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_should_give_the_same_faults() {
        let draw = |seed| {
            let mut plan = FaultPlan::parse("throttle=0.2,lost=0.2", seed).unwrap();
            (0..200)
                .map(|_| plan.next("DynamoDB", "PutItem").map(|f| f.kind()))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn rates_should_come_out_near_what_was_asked() {
        let mut plan = FaultPlan::parse("throttle=0.1,lost=0.2", 1).unwrap();
        let mut counts = BTreeMap::new();
        for _ in 0..20_000 {
            if let Some(fault) = plan.next("DynamoDB", "GetItem") {
                *counts.entry(fault.kind()).or_insert(0) += 1;
            }
        }
        let share = |kind| counts.get(&kind).copied().unwrap_or(0) as f64 / 20_000.0;
        assert!((share(FaultKind::Throttle) - 0.1).abs() < 0.01);
        // Lost answers are drawn after throttles: 0.9 × 0.2 of all requests.
        assert!((share(FaultKind::Lost) - 0.18).abs() < 0.01);
    }

    #[test]
    fn the_most_specific_rule_should_win() {
        let plan = FaultPlan::parse("lost=0.1,lost@SQS=0.3,lost@SQS.SendMessage=0.5", 1).unwrap();
        assert_eq!(plan.rate(FaultKind::Lost, "DynamoDB", "PutItem"), 0.1);
        assert_eq!(plan.rate(FaultKind::Lost, "SQS", "ReceiveMessage"), 0.3);
        assert_eq!(plan.rate(FaultKind::Lost, "SQS", "SendMessage"), 0.5);
        // Duplicates only exist for sends.
        let plan = FaultPlan::parse("all=0.5", 1).unwrap();
        assert_eq!(plan.rate(FaultKind::Duplicate, "DynamoDB", "PutItem"), 0.0);
        assert_eq!(plan.rate(FaultKind::Duplicate, "SQS", "SendMessage"), 0.5);
    }

    #[test]
    fn a_bad_spec_should_say_what_is_wrong() {
        assert!(FaultPlan::parse("thrrottle=0.1", 1)
            .unwrap_err()
            .contains("unknown kind"));
        assert!(FaultPlan::parse("lost=2", 1)
            .unwrap_err()
            .contains("at most 1"));
        assert!(FaultPlan::parse("lost", 1)
            .unwrap_err()
            .contains("KIND=RATE"));
        let plan = FaultPlan::parse("stall_ms=500,stall=1", 1).unwrap();
        let mut plan = plan;
        assert_eq!(plan.next("DynamoDB", "Query"), Some(Fault::Stall(500)));
    }

    #[test]
    fn a_throttled_transaction_should_sometimes_be_a_conflict() {
        let kinds: std::collections::BTreeSet<String> = (0..40)
            .map(
                |pick| match throttle("DynamoDB", "TransactWriteItems", pick) {
                    Fault::Refuse { error_type, .. } => error_type,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert!(kinds.contains("TransactionCanceledException"));
        assert!(kinds.contains("ThrottlingException"));
    }
}
