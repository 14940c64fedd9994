//! Balances, the ledger and payments: the rules that keep every won accounted for.
//!
//! A user's balance only ever changes together with one ledger entry that records it
//! (`balance_before` → `balance_after`), in the same transaction. Entries are numbered by the
//! user's `ledger_seq`, which every change bumps on condition it is the number read, so the
//! ledger is a gap-free chain in the order the changes happened, whatever the concurrency.

use crate::error::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most one charge may add, in won.
pub const MAX_CHARGE: i64 = 1_000_000;
/// No balance may ever exceed this, in won.
pub const BALANCE_CAP: i64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryType {
    Charge,
    Payment,
    Refund,
}

/// One line of a user's ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub transaction_id: Uuid,
    /// The entry's place in the user's chain: 1 for the first.
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// Always positive; `kind` says which way it went.
    pub amount: i64,
    pub balance_before: i64,
    pub balance_after: i64,
    /// The reservation a payment or refund was for.
    pub related_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A user's balance and how many ledger entries it has, as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub balance: i64,
    pub ledger_seq: u64,
}

impl Account {
    /// The entry (and the account after it) that moves `amount` in the direction of `kind`.
    pub fn apply(
        &self,
        kind: EntryType,
        amount: i64,
        related_id: Option<Uuid>,
        transaction_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(LedgerEntry, Account)> {
        let after = match kind {
            EntryType::Charge | EntryType::Refund => self.balance + amount,
            EntryType::Payment => self.balance - amount,
        };
        if after < 0 {
            return Err(DomainError::InsufficientBalance {
                balance: self.balance,
                amount,
            });
        }
        if after > BALANCE_CAP {
            return Err(DomainError::validation(
                "amount",
                format!("the balance may not exceed {BALANCE_CAP}"),
            ));
        }
        let entry = LedgerEntry {
            transaction_id,
            seq: self.ledger_seq + 1,
            kind,
            amount,
            balance_before: self.balance,
            balance_after: after,
            related_id,
            created_at: now,
        };
        Ok((
            entry,
            Account {
                balance: after,
                ledger_seq: self.ledger_seq + 1,
            },
        ))
    }
}

/// The body of `POST /balance/charge`.
#[derive(Debug, Deserialize, Serialize)]
pub struct Charge {
    pub amount: i64,
}

impl Charge {
    pub fn validate(&self) -> Result<()> {
        crate::validate::range("amount", self.amount, 1, MAX_CHARGE)
    }
}

/// The body of `POST /payments`.
#[derive(Debug, Deserialize, Serialize)]
pub struct Pay {
    pub reservation_id: String,
}

/// A completed payment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: Uuid,
    pub reservation_id: Uuid,
    pub amount: i64,
    pub balance_before: i64,
    pub balance_after: i64,
    pub paid_at: DateTime<Utc>,
}

/// Checks an `Idempotency-Key` header: 1 to 64 visible ASCII characters.
pub fn idempotency_key(raw: Option<&str>) -> Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let valid = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(DomainError::validation(
            "Idempotency-Key",
            "must be 1 to 64 visible ASCII characters",
        ));
    }
    Ok(Some(raw.to_owned()))
}

/// The first outcome of a request made with an idempotency key, replayed on every retry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdempotentOutcome {
    /// What was asked: the operation and its canonical body. A retry must ask the same.
    pub request: String,
    pub status: u16,
    pub body: String,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// The canonical form of a request for comparing retries: operation name and the body with its
/// keys sorted.
pub fn request_fingerprint(operation: &str, body: &impl Serialize) -> String {
    let value = serde_json::to_value(body).unwrap_or_default();
    format!("{operation} {value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn when_charging_should_chain_before_and_after() {
        let account = Account {
            balance: 1_000,
            ledger_seq: 4,
        };
        let (entry, after) = account
            .apply(EntryType::Charge, 500, None, Uuid::now_v7(), now())
            .unwrap();
        assert_eq!(
            (entry.seq, entry.balance_before, entry.balance_after),
            (5, 1_000, 1_500)
        );
        assert_eq!(
            after,
            Account {
                balance: 1_500,
                ledger_seq: 5
            }
        );
    }

    #[test]
    fn when_paying_more_than_the_balance_should_refuse_with_both_numbers() {
        let account = Account {
            balance: 100,
            ledger_seq: 1,
        };
        assert_eq!(
            account.apply(EntryType::Payment, 101, None, Uuid::now_v7(), now()),
            Err(DomainError::InsufficientBalance {
                balance: 100,
                amount: 101
            })
        );
        assert!(account
            .apply(EntryType::Payment, 100, None, Uuid::now_v7(), now())
            .is_ok());
    }

    #[test]
    fn when_a_charge_would_pass_the_cap_should_refuse() {
        let account = Account {
            balance: BALANCE_CAP - 10,
            ledger_seq: 1,
        };
        assert!(account
            .apply(EntryType::Charge, 11, None, Uuid::now_v7(), now())
            .is_err());
        assert!(account
            .apply(EntryType::Charge, 10, None, Uuid::now_v7(), now())
            .is_ok());
    }

    #[test]
    fn charge_amount_should_be_one_to_a_million() {
        assert!(Charge { amount: 0 }.validate().is_err());
        assert!(Charge { amount: 1 }.validate().is_ok());
        assert!(Charge { amount: MAX_CHARGE }.validate().is_ok());
        assert!(Charge {
            amount: MAX_CHARGE + 1
        }
        .validate()
        .is_err());
    }

    #[test]
    fn idempotency_keys_should_be_short_visible_ascii() {
        assert_eq!(idempotency_key(None), Ok(None));
        assert_eq!(idempotency_key(Some("abc-123")), Ok(Some("abc-123".into())));
        assert!(idempotency_key(Some("")).is_err());
        assert!(idempotency_key(Some(&"k".repeat(65))).is_err());
        assert!(idempotency_key(Some("has space")).is_err());
    }

    #[test]
    fn fingerprints_should_not_depend_on_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(request_fingerprint("x", &a), request_fingerprint("x", &b));
        assert_ne!(request_fingerprint("x", &a), request_fingerprint("y", &a));
    }
}
