//! Queue tokens and each concert's queue counter.

use super::catalog::{ConcertItem, ScheduleItem};
use super::holds::cancellation_reasons;
use super::{
    applied, from_item, keys, s, sdk_error, sort_key, to_item, Item, Role, Store, Transaction,
};
use crate::catalog::{Concert, Schedule};
use crate::error::{DomainError, Result};
use crate::queue::{AdmissionHistory, QueueCounter, QueueToken};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// A transaction holds at most 100 items: the counter and two per activation (token, active-list
/// item).
pub const MAX_ACTIVATIONS_PER_WRITE: usize = 49;

#[derive(Serialize, Deserialize)]
pub(crate) struct TokenItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    pub token: QueueToken,
    ttl: i64,
}

/// The counter as stored: times as epoch milliseconds, so conditions can compare them.
#[derive(Default, Deserialize)]
pub(crate) struct CounterItem {
    #[serde(default)]
    last_number: u64,
    #[serde(default)]
    admitted_up_to: u64,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    admitted_total: u64,
    #[serde(default)]
    first_admitted_at: Option<i64>,
}

fn millis(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp_millis().to_string())
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl From<CounterItem> for QueueCounter {
    fn from(item: CounterItem) -> Self {
        Self {
            last_number: item.last_number,
            admitted_up_to: item.admitted_up_to,
            version: item.version,
            history: AdmissionHistory {
                admitted_total: item.admitted_total,
                first_admitted_at: item.first_admitted_at.map(from_millis),
            },
        }
    }
}

/// A user's place for a concert as one read sees it.
#[derive(Debug, Default)]
pub struct QueueSnapshot {
    pub concert: Option<Concert>,
    /// The schedule asked for, if it is one of the concert's.
    pub schedule: Option<Schedule>,
    pub token: Option<QueueToken>,
    pub counter: QueueCounter,
}

/// One admission by the admitter: the token to activate and until when.
pub struct Activation {
    pub user_id: Uuid,
    pub token_id: Uuid,
}

/// A shopper's item in a concert's active list.
#[derive(Serialize, Deserialize)]
struct ActiveItem {
    pk: String,
    sk: String,
    user_id: Uuid,
    token_id: Uuid,
    /// Until when (epoch milliseconds) the shopper may book: the token's `active_until`.
    until: i64,
    ttl: i64,
}

/// One admitter write for one concert.
pub struct Admission<'a> {
    pub concert_id: Uuid,
    /// The counter as read; the write is conditional on its version.
    pub read: &'a QueueCounter,
    pub admitted_up_to: u64,
    pub activations: &'a [Activation],
    pub active_until: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Why an admission transaction did not go through.
#[derive(Debug, PartialEq)]
pub enum AdmitConflict {
    /// Someone else wrote the counter since it was read (a token left or paid, or another
    /// admitter ran): read it again.
    CounterChanged,
    /// These activations (by index) are no longer waiting: they left, lapsed or were replaced.
    NotWaiting(Vec<usize>),
}

pub(crate) fn token_key(concert_id: Uuid, user_id: Uuid) -> Item {
    HashMap::from([
        (
            keys::PK.to_owned(),
            s(keys::queue_token(concert_id, user_id)),
        ),
        (keys::SK.to_owned(), s(keys::QUEUE_TOKEN_SK)),
    ])
}

fn active_key(concert_id: Uuid, user_id: Uuid) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::queue_active(concert_id))),
        (keys::SK.to_owned(), s(keys::user(user_id))),
    ])
}

pub(crate) fn counter_key(concert_id: Uuid) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::queue(concert_id))),
        (keys::SK.to_owned(), s(keys::QUEUE_COUNTER_SK)),
    ])
}

impl Store {
    /// The user's token for a concert and the concert's counter, in one consistent read.
    pub async fn queue_state(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
    ) -> Result<(Option<QueueToken>, QueueCounter)> {
        let snapshot = self
            .queue_snapshot(concert_id, user_id, false, None)
            .await?;
        Ok((snapshot.token, snapshot.counter))
    }

    /// The user's token for a concert, the concert's counter and, if asked, the concert item
    /// and one of its schedules: one consistent `BatchGetItem`.
    pub async fn queue_snapshot(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        with_concert: bool,
        schedule_id: Option<Uuid>,
    ) -> Result<QueueSnapshot> {
        let mut request = KeysAndAttributes::builder()
            .keys(token_key(concert_id, user_id))
            .keys(counter_key(concert_id))
            .consistent_read(true);
        if with_concert {
            request = request.keys(HashMap::from([
                (keys::PK.to_owned(), s(keys::concert(concert_id))),
                (keys::SK.to_owned(), s(keys::CONCERT_SK)),
            ]));
        }
        if let Some(schedule_id) = schedule_id {
            request = request.keys(HashMap::from([
                (keys::PK.to_owned(), s(keys::concert(concert_id))),
                (keys::SK.to_owned(), s(keys::schedule_sk(schedule_id))),
            ]));
        }
        let items = self
            .batch_get(request.build().map_err(DomainError::internal)?)
            .await?;
        let mut snapshot = QueueSnapshot::default();
        for item in items {
            match sort_key(&item).as_str() {
                keys::QUEUE_TOKEN_SK => {
                    snapshot.token = Some(from_item::<TokenItem>(item)?.token);
                }
                keys::CONCERT_SK => {
                    snapshot.concert = Some(from_item::<ConcertItem>(item)?.concert);
                }
                keys::QUEUE_COUNTER_SK => snapshot.counter = from_item::<CounterItem>(item)?.into(),
                _ => snapshot.schedule = Some(from_item::<ScheduleItem>(item)?.schedule),
            }
        }
        Ok(snapshot)
    }

    /// A concert's counter, read consistently (a default one if nobody has entered yet).
    pub async fn queue_counter(&self, concert_id: Uuid) -> Result<QueueCounter> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(counter_key(concert_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("queue_counter", err))?;
        Ok(output
            .item
            .map(from_item::<CounterItem>)
            .transpose()?
            .map(QueueCounter::from)
            .unwrap_or_default())
    }

    /// The concert's active shoppers still in their time, and until when, read consistently.
    /// Read it after the counter: an admitter that wrote in between has bumped the version the
    /// caller's write is conditional on.
    pub async fn live_active(
        &self,
        concert_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<HashMap<Uuid, DateTime<Utc>>> {
        let items = self
            .query_partition(
                keys::queue_active(concert_id),
                Some(keys::ACTIVE_SK_PREFIX),
                true,
            )
            .await?;
        let mut active = HashMap::with_capacity(items.len());
        for item in items {
            let item: ActiveItem = from_item(item)?;
            let until = from_millis(item.until);
            if now < until {
                active.insert(item.user_id, until);
            }
        }
        Ok(active)
    }

    /// Takes the next number of a concert's line (an atomic counter) and returns it with the
    /// counter as it now stands.
    pub async fn next_queue_number(&self, concert_id: Uuid) -> Result<QueueCounter> {
        for attempt in 0..5u64 {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(counter_key(concert_id)))
                .update_expression("ADD last_number :one")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(output) => {
                    let item = output.attributes.ok_or_else(|| {
                        DomainError::internal("next_queue_number: no attributes returned")
                    })?;
                    return Ok(from_item::<CounterItem>(item)?.into());
                }
                // A transaction (the admitter's, a payment's) holds the counter this instant.
                Err(err)
                    if err.as_service_error().and_then(|e| e.code())
                        == Some("TransactionConflictException") =>
                {
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                Err(err) => return Err(sdk_error("next_queue_number", err)),
            }
        }
        Err(DomainError::internal(
            "next_queue_number: the counter stayed busy",
        ))
    }

    /// Writes a new token unless the user still holds a live place for this concert. Returns
    /// false, writing nothing, when they do.
    pub async fn put_queue_token(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<bool> {
        let item = to_item(&TokenItem {
            pk: keys::queue_token(token.concert_id, token.user_id),
            sk: keys::QUEUE_TOKEN_SK.to_owned(),
            token: token.clone(),
            // Kept a day past its end for support questions, then DynamoDB may delete it.
            ttl: token.ends_at().timestamp() + 86_400,
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR #status = :expired \
                 OR (#status = :waiting AND expires_at <= :now) \
                 OR (#status = :active AND active_until <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expired", s("EXPIRED"))
            .expression_attribute_values(":waiting", s("WAITING"))
            .expression_attribute_values(":active", s("ACTIVE"))
            .expression_attribute_values(":now", millis(now))
            .send()
            .await;
        applied("put_queue_token", result)
    }

    /// Ends a token (the holder left): the token becomes EXPIRED and its slot in the concert's
    /// active list is freed, in one transaction. False if `token_id` is no longer the user's
    /// token for the concert.
    pub async fn end_queue_token(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        token_id: Uuid,
    ) -> Result<bool> {
        for attempt in 0..5u64 {
            let mut transaction = Transaction::new();
            transaction.push(
                Role::QueueToken,
                self.end_token_update(concert_id, user_id, token_id)?,
            );
            transaction.push(
                Role::ActiveSlot,
                self.free_active_slot(concert_id, user_id, token_id)?,
            );
            match transaction.run(self, "end_queue_token").await? {
                Ok(()) => return Ok(true),
                Err(failed) if failed.contains(&Role::QueueToken) => return Ok(false),
                // The items are busy (an admitter or a payment writing them): try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10 << attempt)).await,
            }
        }
        Err(DomainError::internal(
            "end_queue_token: the token stayed busy",
        ))
    }

    /// The transaction item that marks a token EXPIRED, on condition it is still `token_id`.
    pub(crate) fn end_token_update(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        token_id: Uuid,
    ) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(token_key(concert_id, user_id)))
            .update_expression("SET #status = :expired")
            .condition_expression("token_id = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expired", s("EXPIRED"))
            .expression_attribute_values(":token", s(token_id.to_string()))
            .build()
            .map_err(DomainError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The transaction item that frees a shopper's place in the concert's active list: deletes
    /// their item if it belongs to `token_id` (or is already gone). Freeing only lowers the
    /// count, so it needs no turn on the counter: an admitter that read the item as live
    /// admits one fewer, never one too many.
    pub(crate) fn free_active_slot(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        token_id: Uuid,
    ) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(active_key(concert_id, user_id)))
            .condition_expression("attribute_not_exists(pk) OR token_id = :token")
            .expression_attribute_values(":token", s(token_id.to_string()))
            .build()
            .map_err(DomainError::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The admitter's write: the counter (how far admission has come, the history) on condition
    /// no other admitter wrote it since `counter.version` was read, and for every activation
    /// the token (on condition it is still the same one and still waiting) and the shopper's
    /// item in the active list. All or none; at most [`MAX_ACTIVATIONS_PER_WRITE`] activations.
    pub async fn admit(&self, admission: Admission<'_>) -> Result<Result<(), AdmitConflict>> {
        let Admission {
            concert_id,
            read: counter,
            admitted_up_to,
            activations,
            active_until,
            now,
        } = admission;
        if activations.len() > MAX_ACTIVATIONS_PER_WRITE {
            return Err(DomainError::internal(
                "admit: too many activations for one write",
            ));
        }
        let first_admitted_at = match (counter.history.first_admitted_at, activations.is_empty()) {
            (Some(first), _) => Some(first),
            (None, false) => Some(now),
            (None, true) => None,
        };
        let mut counter_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(counter_key(concert_id)))
            .expression_attribute_values(":up_to", AttributeValue::N(admitted_up_to.to_string()))
            .expression_attribute_values(
                ":total",
                AttributeValue::N(
                    (counter.history.admitted_total + activations.len() as u64).to_string(),
                ),
            )
            .expression_attribute_values(":version", AttributeValue::N(counter.version.to_string()))
            .expression_attribute_values(
                ":next",
                AttributeValue::N((counter.version + 1).to_string()),
            );
        counter_update = match first_admitted_at {
            Some(first) => counter_update
                .update_expression(
                    "SET admitted_up_to = :up_to, admitted_total = :total, version = :next, \
                     first_admitted_at = :first",
                )
                .expression_attribute_values(":first", millis(first)),
            None => counter_update.update_expression(
                "SET admitted_up_to = :up_to, admitted_total = :total, version = :next",
            ),
        };
        let counter_update = counter_update
            .condition_expression("attribute_not_exists(version) OR version = :version")
            .build()
            .map_err(DomainError::internal)?;

        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(counter_update).build());
        for activation in activations {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(token_key(concert_id, activation.user_id)))
                .update_expression("SET #status = :active, active_until = :until")
                .condition_expression(
                    "token_id = :token AND #status = :waiting AND expires_at > :now",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":active", s("ACTIVE"))
                .expression_attribute_values(":waiting", s("WAITING"))
                .expression_attribute_values(":until", millis(active_until))
                .expression_attribute_values(":now", millis(now))
                .expression_attribute_values(":token", s(activation.token_id.to_string()))
                .build()
                .map_err(DomainError::internal)?;
            request = request.transact_items(TransactWriteItem::builder().update(update).build());
            let active = to_item(&ActiveItem {
                pk: keys::queue_active(concert_id),
                sk: keys::user(activation.user_id),
                user_id: activation.user_id,
                token_id: activation.token_id,
                until: active_until.timestamp_millis(),
                ttl: active_until.timestamp() + 86_400,
            })?;
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(active))
                .build()
                .map_err(DomainError::internal)?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.as_service_error().and_then(cancellation_reasons) {
                // A token that failed its condition is no longer waiting: pass it over. Anything
                // else (the counter changed or was busy, a token was being written at the same
                // moment) means: read again and retry.
                // Items: the counter, then a token and an active-list item per activation.
                Some(reasons) if !reasons.is_empty() => {
                    let not_waiting: Vec<usize> = reasons
                        .iter()
                        .filter(|(index, code)| {
                            *index > 0 && index % 2 == 1 && code == "ConditionalCheckFailed"
                        })
                        .map(|(index, _)| (index - 1) / 2)
                        .collect();
                    if not_waiting.is_empty() {
                        Ok(Err(AdmitConflict::CounterChanged))
                    } else {
                        Ok(Err(AdmitConflict::NotWaiting(not_waiting)))
                    }
                }
                _ => Err(sdk_error("admit", err)),
            },
        }
    }
}
