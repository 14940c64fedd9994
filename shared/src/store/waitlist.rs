//! Waiting lists: each fan's entry under their own partition (`USER#{user}`/`WAIT#{date}`, one
//! per user and date), indexed in line order while it waits or holds an offer
//! (`gsi1pk = WAITLINE#{date}`, `gsi1sk = {joined_ms}#{entry}`), and the list of dates that have
//! a line (`WAITLISTS`), which the offering job reads.
//!
//! An offer is one transaction: the seats taken as a hold takes them, the offered reservation,
//! the entry WAITING → OFFERED (so an entry is offered seats once), the fan's tickets (the
//! ticket limit), and a queue token ACTIVE until the offer ends (with its place in the active
//! list), with which the fan pays.

use super::items::{key, TokenItem};
use super::tickets::TicketsWrite;
use super::{
    applied, from_item, keys, s, sdk_error, to_item, Cancelled, Item, Role, Store, Transaction,
};
use crate::error::{DomainError, Result};
use crate::queue::QueueToken;
use crate::reservations::Reservation;
use crate::waitlist::{WaitlistEntry, WaitlistStatus};
use aws_sdk_dynamodb::types::{AttributeValue, Put, Select, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct EntryItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(flatten)]
    entry: WaitlistEntry,
    ttl: i64,
}

#[derive(Serialize, Deserialize)]
struct LineItem {
    pk: String,
    sk: String,
    schedule_id: Uuid,
    concert_id: Uuid,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    starts_at: DateTime<Utc>,
    ttl: i64,
}

fn entry_key(user_id: Uuid, schedule_id: Uuid) -> Item {
    key(keys::user(user_id), keys::waitlist_sk(schedule_id))
}

fn line_position(entry: &WaitlistEntry) -> String {
    format!(
        "{:013}#{}",
        entry.joined_at.timestamp_millis(),
        entry.entry_id
    )
}

/// What an offer writes.
pub struct Offer<'a> {
    pub entry: &'a WaitlistEntry,
    pub reservation: &'a Reservation,
    pub tickets: &'a TicketsWrite,
    /// The queue token the fan pays with, and the token it replaces (`None`: there was none).
    pub token: &'a QueueToken,
    pub replaces_token: Option<Uuid>,
}

impl Store {
    /// Puts a fan on a date's line, unless they are on it already (false, nothing written).
    pub async fn join_waitlist(
        &self,
        entry: &WaitlistEntry,
        starts_at: DateTime<Utc>,
    ) -> Result<bool> {
        let ttl = starts_at.timestamp() + 86_400;
        let item = to_item(&EntryItem {
            pk: keys::user(entry.user_id),
            sk: keys::waitlist_sk(entry.schedule_id),
            gsi1pk: Some(keys::waitline(entry.schedule_id)),
            gsi1sk: Some(line_position(entry)),
            entry: entry.clone(),
            ttl,
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR #status IN (:taken, :passed, :left) \
                 OR entry_id = :entry",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":taken", s(WaitlistStatus::Taken.as_str()))
            .expression_attribute_values(":passed", s(WaitlistStatus::Passed.as_str()))
            .expression_attribute_values(":left", s(WaitlistStatus::Left.as_str()))
            .expression_attribute_values(":entry", s(entry.entry_id.to_string()))
            .build()
            .map_err(DomainError::internal)?;
        let line = to_item(&LineItem {
            pk: keys::WAITLISTS.to_owned(),
            sk: keys::schedule_sk(entry.schedule_id),
            schedule_id: entry.schedule_id,
            concert_id: entry.concert_id,
            starts_at,
            ttl,
        })?;
        let mut transaction = Transaction::new();
        transaction.push(
            Role::Waitlist,
            TransactWriteItem::builder().put(put).build(),
        );
        transaction.push(
            Role::Waitlist,
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(line))
                        .build()
                        .map_err(DomainError::internal)?,
                )
                .build(),
        );
        match transaction.run(self, "join_waitlist").await? {
            Ok(()) => Ok(true),
            Err(Cancelled { failed, .. }) if !failed.is_empty() => Ok(false),
            Err(_) => Err(DomainError::busy()),
        }
    }

    /// A fan's entry for a date, read consistently.
    pub async fn waitlist_entry(
        &self,
        user_id: Uuid,
        schedule_id: Uuid,
    ) -> Result<Option<WaitlistEntry>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(entry_key(user_id, schedule_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("waitlist_entry", err))?;
        output
            .item
            .map(|item| Ok(from_item::<EntryItem>(item)?.entry))
            .transpose()
    }

    /// Entries of a date's line ahead of `entry` (waiting or holding an offer).
    pub async fn waitlist_ahead(&self, entry: &WaitlistEntry) -> Result<u64> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :line AND gsi1sk < :me")
            .expression_attribute_values(":line", s(keys::waitline(entry.schedule_id)))
            .expression_attribute_values(":me", s(line_position(entry)))
            .select(Select::Count)
            .send()
            .await
            .map_err(|err| sdk_error("waitlist_ahead", err))?;
        Ok(output.count.max(0) as u64)
    }

    /// The first `limit` entries of a date's line, in order (the index is read eventually
    /// consistently: every write that acts on an entry is conditional on its state).
    pub async fn waitline(&self, schedule_id: Uuid, limit: i32) -> Result<Vec<WaitlistEntry>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :line")
            .expression_attribute_values(":line", s(keys::waitline(schedule_id)))
            .limit(limit)
            .send()
            .await
            .map_err(|err| sdk_error("waitline", err))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Ok(from_item::<EntryItem>(item)?.entry))
            .collect()
    }

    /// The dates with a waiting list, and their concerts and start times.
    pub async fn waitlist_dates(&self) -> Result<Vec<(Uuid, Uuid, DateTime<Utc>)>> {
        let items = self
            .query_partition(keys::WAITLISTS.to_owned(), None, true)
            .await?;
        items
            .into_iter()
            .map(|item| {
                let line: LineItem = from_item(item)?;
                Ok((line.schedule_id, line.concert_id, line.starts_at))
            })
            .collect()
    }

    /// Ends an entry as `to` (LEFT, TAKEN or PASSED) and takes it out of the line, on condition
    /// it is still `entry_id` in state `from`. False if it was not.
    pub async fn end_waitlist_entry(
        &self,
        entry: &WaitlistEntry,
        from: &[WaitlistStatus],
        to: WaitlistStatus,
    ) -> Result<bool> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(entry_key(entry.user_id, entry.schedule_id)))
            .update_expression("SET #status = :to REMOVE gsi1pk, gsi1sk")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":entry", s(entry.entry_id.to_string()));
        let mut allowed = Vec::new();
        for (index, status) in from.iter().enumerate() {
            let name = format!(":from{index}");
            update = update.expression_attribute_values(&name, s(status.as_str()));
            allowed.push(name);
        }
        let update = update
            .condition_expression(format!(
                "entry_id = :entry AND #status IN ({})",
                allowed.join(", ")
            ))
            .build()
            .map_err(DomainError::internal)?;
        let result = self
            .client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .set_update_expression(Some(update.update_expression))
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await;
        applied("end_waitlist_entry", result)
    }

    /// Makes an offer (see the module comment). `Ok(Err(cancelled))` if anything changed since
    /// it was read: a seat taken, the entry no longer waiting, the fan's tickets or token
    /// changed; the next run reads again.
    pub async fn make_offer(
        &self,
        offer: Offer<'_>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Cancelled>> {
        let Offer {
            entry,
            reservation,
            tickets,
            token,
            replaces_token,
        } = offer;
        let mut transaction = Transaction::new();
        for (index, item) in self
            .hold_items(reservation, now, false)?
            .into_iter()
            .enumerate()
        {
            let role = if index < reservation.seats.len() {
                Role::Seat
            } else {
                Role::Reservation
            };
            transaction.push(role, item);
        }
        let offered = Update::builder()
            .table_name(&self.table)
            .set_key(Some(entry_key(entry.user_id, entry.schedule_id)))
            .update_expression(
                "SET #status = :offered, reservation_id = :reservation, offered_until = :until",
            )
            .condition_expression("entry_id = :entry AND #status = :waiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":offered", s(WaitlistStatus::Offered.as_str()))
            .expression_attribute_values(":waiting", s(WaitlistStatus::Waiting.as_str()))
            .expression_attribute_values(":entry", s(entry.entry_id.to_string()))
            .expression_attribute_values(":reservation", s(reservation.reservation_id.to_string()))
            .expression_attribute_values(
                ":until",
                AttributeValue::N(reservation.expires_at.timestamp_millis().to_string()),
            )
            .build()
            .map_err(DomainError::internal)?;
        transaction.push(
            Role::Waitlist,
            TransactWriteItem::builder().update(offered).build(),
        );
        transaction.push(
            Role::Tickets,
            self.tickets_put(reservation.user_id, reservation.schedule_id, tickets)?,
        );
        let token_item = to_item(&TokenItem {
            pk: keys::queue_token(token.concert_id, token.user_id),
            sk: keys::QUEUE_TOKEN_SK.to_owned(),
            token: token.clone(),
            ttl: token.ends_at().timestamp() + 86_400,
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(token_item));
        let put = match replaces_token {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(read) => put
                .condition_expression("token_id = :read")
                .expression_attribute_values(":read", s(read.to_string())),
        };
        transaction.push(
            Role::QueueToken,
            TransactWriteItem::builder()
                .put(put.build().map_err(DomainError::internal)?)
                .build(),
        );
        // The fan shops with it as an admitted fan does: a place in the active list, which
        // the payment frees. Taken without a turn on the admission item, so an admitter that
        // counted the list a moment before may admit up to the cap beside it: the cap is
        // passed by at most the offers of that moment.
        transaction.push(
            Role::ActiveSlot,
            self.active_put(
                token.concert_id,
                token.user_id,
                token.token_id,
                token.ends_at(),
            )?,
        );
        transaction.run(self, "make_offer").await
    }
}
