//! Claims of concerts being created (an imported page's, an admin request's): one concert per
//! page or request, however many times it is asked for; and the user's last entered URL.

use super::items::millis;
use super::{applied, from_item, keys, s, sdk_error, to_item, Item, Store};
use crate::catalog::{Concert, Schedule, Seat};
use crate::error::{DomainError, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A claim on a concert being created: written before the concert, so that the same page
/// imported twice (or by two users at once), or the same admin request made again, gives one
/// concert. It carries the whole draft, so that whoever finds a claim whose creator died can
/// finish the same concert.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportClaim {
    /// The page's address (empty for an admin's request).
    #[serde(default)]
    pub source_url: String,
    pub concert: Concert,
    pub schedules: Vec<Schedule>,
    pub seats: Vec<Seat>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub claimed_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct ImportItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    claim: ImportClaim,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

/// Where a claim is kept: an imported page's (kept for good: the page's concert), or an admin
/// request's (kept a day, as idempotency records are).
#[derive(Clone, Copy, Debug)]
pub enum ClaimOf<'a> {
    /// The digest of a normalised page address.
    Page(&'a str),
    /// The digest of an admin and their request.
    Request(&'a str),
}

impl ClaimOf<'_> {
    fn pk(self) -> String {
        match self {
            ClaimOf::Page(key) => keys::import(key),
            ClaimOf::Request(key) => keys::creation(key),
        }
    }

    fn ttl(self, now: DateTime<Utc>) -> Option<i64> {
        match self {
            ClaimOf::Page(_) => None,
            ClaimOf::Request(_) => Some(now.timestamp() + 86_400),
        }
    }
}

/// How long a claim's creator may take before someone else finishes its concert: well past the
/// import function's 10 s timeout, so the creator is surely gone.
pub const CLAIM_TAKEOVER_SECONDS: i64 = 30;

fn claim_key(of: ClaimOf) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(of.pk())),
        (keys::SK.to_owned(), s(keys::IMPORT_SK)),
    ])
}

/// What claiming a page gave.
pub enum Claimed {
    /// This call claimed the page: it creates the concert.
    Won,
    /// The page was claimed before: this is the claim.
    Existing(Box<ImportClaim>),
}

impl Store {
    /// The claim, if one was made before (a consistent read).
    pub async fn import_claim(&self, of: ClaimOf<'_>) -> Result<Option<ImportClaim>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(of)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("import_claim", err))?;
        output
            .item
            .map(|item| from_item::<ImportItem>(item).map(|item| item.claim))
            .transpose()
    }

    /// Claims a page or request for `claim.concert`, unless it is claimed already. A retry of
    /// this very claim (its answer lost) finds its own claim, and wins.
    pub async fn claim_import(&self, of: ClaimOf<'_>, claim: &ImportClaim) -> Result<Claimed> {
        let item = to_item(&ImportItem {
            pk: of.pk(),
            sk: keys::IMPORT_SK.to_owned(),
            claim: claim.clone(),
            ttl: of.ttl(claim.claimed_at),
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if applied("claim_import", result)? {
            return Ok(Claimed::Won);
        }
        let existing = self.import_claim(of).await?.ok_or_else(DomainError::busy)?;
        if existing.concert.concert_id == claim.concert.concert_id {
            return Ok(Claimed::Won);
        }
        Ok(Claimed::Existing(Box::new(existing)))
    }

    /// Takes over a claim whose creator has not finished its concert in
    /// [`CLAIM_TAKEOVER_SECONDS`]: true if this call now owns it.
    pub async fn take_over_import(
        &self,
        of: ClaimOf<'_>,
        claim: &ImportClaim,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if now - claim.claimed_at < Duration::seconds(CLAIM_TAKEOVER_SECONDS) {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(of)))
            .update_expression("SET claimed_at = :now")
            .condition_expression("claimed_at = :then")
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":then", millis(claim.claimed_at))
            .send()
            .await;
        applied("take_over_import", result)
    }

    /// Counts one more use of `what` by a user in the current minute and returns the count so
    /// far: a fixed-window rate limit, one small item per user, action and minute, which
    /// DynamoDB's TTL clears away.
    pub async fn count_use(
        &self,
        user_id: uuid::Uuid,
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let minute = now.timestamp().div_euclid(60);
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::rate(user_id, what, minute)))
            .key(keys::SK, s(keys::RATE_SK))
            .update_expression("ADD uses :one SET #ttl = :ttl")
            .expression_attribute_names("#ttl", keys::TTL)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N((minute * 60 + 3600).to_string()),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|err| sdk_error("count_use", err))?;
        Ok(output
            .attributes
            .and_then(|attributes| attributes.get("uses").cloned())
            .and_then(|uses| uses.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }

    /// Remembers the address a user entered last, and when.
    pub async fn set_last_entered_url(
        &self,
        user_id: uuid::Uuid,
        url: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::user(user_id)))
            .key(keys::SK, s(keys::USER_PROFILE))
            .update_expression("SET last_entered_url = :url, last_entered_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":url", s(url))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .send()
            .await;
        if applied("set_last_entered_url", result)? {
            Ok(())
        } else {
            Err(DomainError::NotFound("user"))
        }
    }
}
