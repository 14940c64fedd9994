//! Queue tokens, each concert's entry shards and admission item, its active list and its
//! pre-queue.

use super::items::{
    cancellation_reasons, from_millis, millis, number, progress_key, token_key, ConcertItem,
    ProgressItem, ScheduleItem, TokenItem,
};
use super::{
    applied, from_item, keys, s, sdk_error, sort_key, to_item, Item, Role, Store, Transaction,
};
use crate::catalog::{Concert, Schedule};
use crate::entry_queue::Entrant;
use crate::error::{DomainError, Result};
use crate::queue::{QueueToken, ShardProgress};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// The most items one `TransactWriteItems` may hold.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The most entrants a shard's stash holds (about 130 bytes each, so some 50 KB).
pub const MAX_STASHED: usize = 400;

/// The items of one admission write: the admission item, a progress item per shard it moves, a
/// stash item per shard whose stash it changes, and two per activation (token, active-list
/// item).
pub fn admission_items(moved_shards: usize, stashes: usize, activations: usize) -> usize {
    1 + moved_shards + stashes + 2 * activations
}

/// A user's place for a concert as one read sees it.
#[derive(Debug, Default)]
pub struct QueueSnapshot {
    pub concert: Option<Concert>,
    /// The schedule asked for, if it is one of the concert's.
    pub schedule: Option<Schedule>,
    pub token: Option<QueueToken>,
    /// The progress of the shard the caller's token names.
    pub progress: ShardProgress,
    /// The caller's tickets for the date, if asked and they ever held any.
    pub tickets: Option<crate::rules::Tickets>,
}

/// What the admitter reads before a write: its turn, every shard's progress, counter and stash.
#[derive(Clone, Debug, Default)]
pub struct AdmissionState {
    /// The admission item's version: the write is conditional on it.
    pub version: u64,
    /// Indexed by shard.
    pub shards: Vec<ShardProgress>,
    /// Each shard's last number handed out, indexed by shard.
    pub last_numbers: Vec<u64>,
    /// Entrants each shard's stash holds (taken out of the entry queue, not yet admitted),
    /// indexed by shard.
    pub stashes: Vec<Vec<Entrant>>,
}

/// A shard's stash as stored.
#[derive(Serialize, Deserialize)]
struct StashItem {
    pk: String,
    sk: String,
    entrants: Vec<Entrant>,
    ttl: i64,
}

/// One admission by the admitter: the token to activate.
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

/// An early entrant of a pre-queue, as the admitter reads them in rank order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreEntrant {
    pub rank: u64,
    pub user_id: Uuid,
    pub token_id: Uuid,
}

#[derive(Serialize, Deserialize)]
struct PreEntrantItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    entrant: PreEntrant,
    ttl: i64,
}

/// A concert whose pre-queue has not been drained yet.
#[derive(Serialize, Deserialize)]
struct PendingPrequeueItem {
    pk: String,
    sk: String,
    concert_id: Uuid,
    /// The booking window's opening, epoch milliseconds.
    opens_at: i64,
}

/// One admitter write for one concert.
pub struct Admission<'a> {
    pub concert_id: Uuid,
    /// The admission item's version as read; the write is conditional on it.
    pub version: u64,
    /// The new progress of every shard this write moves: (shard, progress).
    pub progress: &'a [(u32, ShardProgress)],
    /// The new stash of every shard whose stash this write changes (empty: deleted).
    pub stashes: &'a [(u32, Vec<Entrant>)],
    /// `Some(true)`: put the concert on the list of concerts with a stash; `Some(false)`: take
    /// it off.
    pub stash_listed: Option<bool>,
    pub activations: &'a [Activation],
    pub active_until: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Why an admission transaction did not go through.
#[derive(Debug, PartialEq)]
pub enum AdmitConflict {
    /// Someone else wrote the admission item since it was read (another admitter ran), or an
    /// item was busy: read again.
    CounterChanged,
    /// These activations (by index) are no longer waiting: they left, lapsed or were replaced.
    NotWaiting(Vec<usize>),
}

fn active_key(concert_id: Uuid, user_id: Uuid) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::queue_active(concert_id))),
        (keys::SK.to_owned(), s(keys::user(user_id))),
    ])
}

fn admission_key(concert_id: Uuid) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::queue(concert_id))),
        (keys::SK.to_owned(), s(keys::QUEUE_ADMISSION_SK)),
    ])
}

fn shard_counter_key(concert_id: Uuid, shard: u32) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::queue_shard(concert_id, shard))),
        (keys::SK.to_owned(), s(keys::QUEUE_COUNTER_SK)),
    ])
}

fn stash_key(concert_id: Uuid, shard: u32) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::queue_shard(concert_id, shard))),
        (keys::SK.to_owned(), s(keys::QUEUE_STASH_SK)),
    ])
}

fn pending_prequeue_key(concert_id: Uuid) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::PREQUEUES)),
        (keys::SK.to_owned(), s(keys::concert(concert_id))),
    ])
}

/// The item that puts a concert on the admitter's list of pre-queues to drain; written with the
/// concert.
pub(crate) fn pending_prequeue_item(concert: &Concert) -> Result<Item> {
    to_item(&PendingPrequeueItem {
        pk: keys::PREQUEUES.to_owned(),
        sk: keys::concert(concert.concert_id),
        concert_id: concert.concert_id,
        opens_at: concert.booking_opens_at.timestamp_millis(),
    })
}

/// A whole-number attribute of an item (0 when absent).
fn n_attribute(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// The entry shard an item of one (its partition key ends in `#{shard}`), if below `shards`.
fn shard_of(item: &Item, shards: u32) -> Option<usize> {
    item.get(keys::PK)
        .and_then(|pk| pk.as_s().ok())
        .and_then(|pk| pk.rsplit('#').next())
        .and_then(|shard| shard.parse::<usize>().ok())
        .filter(|&shard| shard < shards as usize)
}

/// Retries a single-item write that a transaction holds for a moment.
fn transaction_conflict<E: ProvideErrorMetadata>(
    err: &aws_sdk_dynamodb::error::SdkError<E>,
) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some("TransactionConflictException")
}

impl Store {
    /// The user's token for a concert and its shard's progress, in one consistent read.
    pub async fn queue_state(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        shard: u32,
    ) -> Result<(Option<QueueToken>, ShardProgress)> {
        let snapshot = self
            .queue_snapshot(concert_id, user_id, shard, false, None, None)
            .await?;
        Ok((snapshot.token, snapshot.progress))
    }

    /// The user's token for a concert alone, read consistently.
    pub async fn queue_token(&self, concert_id: Uuid, user_id: Uuid) -> Result<Option<QueueToken>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(token_key(concert_id, user_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("queue_token", err))?;
        output
            .item
            .map(|item| Ok(from_item::<TokenItem>(item)?.token))
            .transpose()
    }

    /// The user's token for a concert, the progress of entry shard `shard` and, if asked, the
    /// concert item, one of its schedules and the user's tickets for a date: one consistent
    /// `BatchGetItem`.
    pub async fn queue_snapshot(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        shard: u32,
        with_concert: bool,
        schedule_id: Option<Uuid>,
        tickets_for: Option<Uuid>,
    ) -> Result<QueueSnapshot> {
        let mut request = KeysAndAttributes::builder()
            .keys(token_key(concert_id, user_id))
            .keys(progress_key(concert_id, shard))
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
        if let Some(schedule_id) = tickets_for {
            request = request.keys(super::tickets::tickets_key(user_id, schedule_id));
        }
        let items = self
            .batch_get(request.build().map_err(DomainError::internal)?)
            .await?;
        let mut snapshot = QueueSnapshot::default();
        for item in items {
            match sort_key(&item).as_str() {
                sk if sk.starts_with(keys::TICKETS_SK_PREFIX) => {
                    snapshot.tickets = Some(super::tickets::tickets_from(item)?);
                }
                keys::QUEUE_TOKEN_SK => {
                    snapshot.token = Some(from_item::<TokenItem>(item)?.token);
                }
                keys::CONCERT_SK => {
                    snapshot.concert = Some(from_item::<ConcertItem>(item)?.concert);
                }
                keys::QUEUE_PROGRESS_SK => {
                    snapshot.progress = from_item::<ProgressItem>(item)?.into();
                }
                _ => snapshot.schedule = Some(from_item::<ScheduleItem>(item)?.schedule),
            }
        }
        Ok(snapshot)
    }

    /// Every item of `keys` that exists: `BatchGetItem`s of up to 100 keys, sent together.
    async fn batch_get_all(&self, keys: &[Item], consistent: bool) -> Result<Vec<Item>> {
        let requests = keys
            .chunks(100)
            .map(|chunk| {
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(DomainError::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(futures::future::try_join_all(
            requests.into_iter().map(|request| self.batch_get(request)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect())
    }

    /// The progress of each of a concert's `shards` entry shards, in shard order, as the
    /// published progress document shows it: an eventually consistent `BatchGetItem` (half
    /// the read units; the document is a second old at the edge anyway).
    pub async fn shards_progress(
        &self,
        concert_id: Uuid,
        shards: u32,
    ) -> Result<Vec<ShardProgress>> {
        let keys: Vec<Item> = (0..shards)
            .map(|shard| progress_key(concert_id, shard))
            .collect();
        let items = self.batch_get_all(&keys, false).await?;
        let mut progress = vec![ShardProgress::default(); shards as usize];
        for item in items {
            let Some(shard) = shard_of(&item, shards) else {
                continue;
            };
            progress[shard] = from_item::<ProgressItem>(item)?.into();
        }
        Ok(progress)
    }

    /// The admitter's view of a concert: the admission item's version, and the progress and
    /// counter of each of its `shards` entry shards, read consistently (one `BatchGetItem` of
    /// up to 100 keys, or a few together).
    pub async fn admission_state(&self, concert_id: Uuid, shards: u32) -> Result<AdmissionState> {
        let mut keys_wanted = vec![admission_key(concert_id)];
        for shard in 0..shards {
            keys_wanted.push(progress_key(concert_id, shard));
            keys_wanted.push(shard_counter_key(concert_id, shard));
            keys_wanted.push(stash_key(concert_id, shard));
        }
        let items = self.batch_get_all(&keys_wanted, true).await?;
        let mut state = AdmissionState {
            version: 0,
            shards: vec![ShardProgress::default(); shards as usize],
            last_numbers: vec![0; shards as usize],
            stashes: vec![Vec::new(); shards as usize],
        };
        for item in items {
            let sk = sort_key(&item);
            if sk == keys::QUEUE_ADMISSION_SK {
                state.version = n_attribute(&item, "version");
                continue;
            }
            let Some(shard) = shard_of(&item, shards) else {
                continue;
            };
            match sk.as_str() {
                keys::QUEUE_COUNTER_SK => {
                    state.last_numbers[shard] = n_attribute(&item, "last_number")
                }
                keys::QUEUE_STASH_SK => {
                    state.stashes[shard] = from_item::<StashItem>(item)?.entrants;
                }
                _ => state.shards[shard] = from_item::<ProgressItem>(item)?.into(),
            }
        }
        Ok(state)
    }

    /// The concert's active shoppers still in their time, and until when, read consistently.
    /// Read it after the admission item: an admitter that wrote in between has bumped the
    /// version the caller's write is conditional on.
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

    /// Takes the next number of one entry shard of a concert's line (an atomic counter).
    pub async fn next_queue_number(&self, concert_id: Uuid, shard: u32) -> Result<u64> {
        let item = self
            .add_one(
                shard_counter_key(concert_id, shard),
                "last_number",
                "next_queue_number",
            )
            .await?;
        Ok(n_attribute(&item, "last_number"))
    }

    /// Counts an early entrant into a shard of a concert's pre-queue (for positions).
    pub async fn count_prequeue_entrant(&self, concert_id: Uuid, shard: u32) -> Result<()> {
        self.add_one(
            progress_key(concert_id, shard),
            "pre_count",
            "count_prequeue_entrant",
        )
        .await?;
        Ok(())
    }

    /// `ADD attribute 1` on one item, retried while a transaction holds the item; returns the
    /// item as it now stands.
    async fn add_one(
        &self,
        key: Item,
        attribute: &'static str,
        operation: &'static str,
    ) -> Result<Item> {
        for attempt in 0..5u64 {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression("ADD #attribute :one")
                .expression_attribute_names("#attribute", attribute)
                .expression_attribute_values(":one", number(1))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(output) => return Ok(output.attributes.unwrap_or_default()),
                // The admitter's transaction holds the item this instant.
                Err(err) if transaction_conflict(&err) => {
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                Err(err) => return Err(sdk_error(operation, err)),
            }
        }
        Err(DomainError::internal(format!(
            "{operation}: the item stayed busy"
        )))
    }

    /// Writes a new token unless the user still holds a live place for this concert, with its
    /// pre-queue item if it is an early entrant. Returns false, writing nothing, when they do.
    pub async fn put_queue_token(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<bool> {
        let item = to_item(&TokenItem {
            pk: keys::queue_token(token.concert_id, token.user_id),
            sk: keys::QUEUE_TOKEN_SK.to_owned(),
            token: token.clone(),
            // Kept a day past its end for support questions, then DynamoDB may delete it.
            ttl: token.ends_at().timestamp() + 86_400,
        })?;
        let put = Put::builder()
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
            .build()
            .map_err(DomainError::internal)?;
        let Some(rank) = token.prequeue_rank else {
            let result = self
                .client
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .send()
                .await;
            return applied("put_queue_token", result);
        };
        let entrant = to_item(&PreEntrantItem {
            pk: keys::prequeue(token.concert_id, token.shard),
            sk: keys::prequeue_sk(rank, token.user_id),
            entrant: PreEntrant {
                rank,
                user_id: token.user_id,
                token_id: token.token_id,
            },
            ttl: token.ends_at().timestamp() + 86_400,
        })?;
        let mut transaction = Transaction::new();
        transaction.push(
            Role::QueueToken,
            TransactWriteItem::builder().put(put).build(),
        );
        transaction.push(
            Role::PreEntrant,
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(entrant))
                        .build()
                        .map_err(DomainError::internal)?,
                )
                .build(),
        );
        match transaction.run(self, "put_queue_token").await? {
            Ok(()) => Ok(true),
            Err(cancelled) if cancelled.failed(Role::QueueToken) => Ok(false),
            // An item was busy or throttled: the caller answers SERVICE_BUSY and the fan tries
            // again (nothing was written).
            Err(cancelled) if cancelled.failed.is_empty() => Err(DomainError::busy()),
            Err(_) => Err(DomainError::internal(
                "put_queue_token: the pre-queue entry collided",
            )),
        }
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
                Err(cancelled) if cancelled.failed(Role::QueueToken) => return Ok(false),
                // The items are busy (an admitter or a payment writing them): try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10 << attempt)).await,
            }
        }
        Err(DomainError::busy())
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

    /// The transaction item that gives a shopper (a token) a place in the concert's active list
    /// until `until`, replacing the user's earlier place if there was one.
    pub(crate) fn active_put(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        token_id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        let active = to_item(&ActiveItem {
            pk: keys::queue_active(concert_id),
            sk: keys::user(user_id),
            user_id,
            token_id,
            until: until.timestamp_millis(),
            ttl: until.timestamp() + 86_400,
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(active))
            .build()
            .map_err(DomainError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The transaction item that frees a shopper's place in the concert's active list: deletes
    /// their item if it belongs to `token_id` (or is already gone). Freeing only lowers the
    /// count, so it needs no turn on the admission item: an admitter that read the item as
    /// live admits one fewer, never one too many.
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

    /// The concerts with entrants in a stash.
    pub async fn concerts_with_stash(&self) -> Result<Vec<Uuid>> {
        let items = self
            .query_partition(keys::STASHES.to_owned(), None, true)
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| item.get("concert_id")?.as_s().ok()?.parse().ok())
            .collect())
    }

    /// The concerts whose pre-queue is still to be drained, with their opening times.
    pub async fn pending_prequeues(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        let items = self
            .query_partition(keys::PREQUEUES.to_owned(), None, true)
            .await?;
        items
            .into_iter()
            .map(|item| {
                let item: PendingPrequeueItem = from_item(item)?;
                Ok((item.concert_id, from_millis(item.opens_at)))
            })
            .collect()
    }

    /// Takes a concert off the list of pre-queues to drain: its line is the entry queue's now.
    pub async fn finish_prequeue(&self, concert_id: Uuid) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(pending_prequeue_key(concert_id)))
            .send()
            .await
            .map_err(|err| sdk_error("finish_prequeue", err))?;
        Ok(())
    }

    /// Up to `limit` early entrants of one pre-queue shard ranked after `after`, in rank order,
    /// and whether the shard may hold more after them.
    pub async fn prequeue_page(
        &self,
        concert_id: Uuid,
        shard: u32,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<PreEntrant>, bool)> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(keys::prequeue(concert_id, shard)))
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32);
        let query = match after {
            // '~' sorts after every character of a user id: past every entrant of that rank.
            Some(rank) => query
                .key_condition_expression("pk = :pk AND sk > :after")
                .expression_attribute_values(":after", s(keys::prequeue_after(rank))),
            None => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(keys::PREQUEUE_SK_PREFIX)),
        };
        let output = query
            .send()
            .await
            .map_err(|err| sdk_error("prequeue_page", err))?;
        let more = output.last_evaluated_key.is_some();
        let entrants = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Ok(from_item::<PreEntrantItem>(item)?.entrant))
            .collect::<Result<Vec<_>>>()?;
        Ok((entrants, more))
    }

    /// The admitter's write: the admission item (its turn, on condition no other admitter wrote
    /// since `version` was read), the progress of every shard it moves, and for every
    /// activation the token (on condition it is still the same one and still waiting) and the
    /// shopper's item in the active list. All or none; at most
    /// [`max_activations_per_write`] activations.
    pub async fn admit(&self, admission: Admission<'_>) -> Result<Result<(), AdmitConflict>> {
        let Admission {
            concert_id,
            version,
            progress,
            stashes,
            stash_listed,
            activations,
            active_until,
            now,
        } = admission;
        let listing = usize::from(stash_listed.is_some());
        if admission_items(progress.len(), stashes.len() + listing, activations.len())
            > MAX_TRANSACTION_ITEMS
        {
            return Err(DomainError::internal("admit: too many items for one write"));
        }
        let turn = Update::builder()
            .table_name(&self.table)
            .set_key(Some(admission_key(concert_id)))
            .update_expression("SET version = :next ADD admitted_total :admitted")
            .condition_expression("attribute_not_exists(version) OR version = :version")
            .expression_attribute_values(":version", number(version))
            .expression_attribute_values(":next", number(version + 1))
            .expression_attribute_values(":admitted", number(activations.len()))
            .build()
            .map_err(DomainError::internal)?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(turn).build());
        for (shard, shard_progress) in progress {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(progress_key(concert_id, *shard)))
                .expression_attribute_values(":up_to", number(shard_progress.admitted_up_to))
                .expression_attribute_values(
                    ":total",
                    number(shard_progress.history.admitted_total),
                )
                .expression_attribute_values(
                    ":done",
                    AttributeValue::Bool(shard_progress.pre_done),
                );
            let mut set = vec![
                "admitted_up_to = :up_to",
                "admitted_total = :total",
                "pre_done = :done",
            ];
            if let Some(first) = shard_progress.history.first_admitted_at {
                update = update.expression_attribute_values(":first", millis(first));
                set.push("first_admitted_at = :first");
            }
            if let Some(cursor) = shard_progress.pre_cursor {
                update = update.expression_attribute_values(":cursor", number(cursor));
                set.push("pre_cursor = :cursor");
            }
            let update = update
                .update_expression(format!("SET {}", set.join(", ")))
                .build()
                .map_err(DomainError::internal)?;
            request = request.transact_items(TransactWriteItem::builder().update(update).build());
        }
        for (shard, entrants) in stashes {
            let item = if entrants.is_empty() {
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(stash_key(concert_id, *shard)))
                            .build()
                            .map_err(DomainError::internal)?,
                    )
                    .build()
            } else {
                let stash = to_item(&StashItem {
                    pk: keys::queue_shard(concert_id, *shard),
                    sk: keys::QUEUE_STASH_SK.to_owned(),
                    entrants: entrants.clone(),
                    ttl: now.timestamp() + 86_400,
                })?;
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(stash))
                            .build()
                            .map_err(DomainError::internal)?,
                    )
                    .build()
            };
            request = request.transact_items(item);
        }
        if let Some(listed) = stash_listed {
            let key = HashMap::from([
                (keys::PK.to_owned(), s(keys::STASHES)),
                (keys::SK.to_owned(), s(keys::concert(concert_id))),
            ]);
            let item = if listed {
                let mut item = key;
                item.insert("concert_id".to_owned(), s(concert_id.to_string()));
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .build()
                            .map_err(DomainError::internal)?,
                    )
                    .build()
            } else {
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key))
                            .build()
                            .map_err(DomainError::internal)?,
                    )
                    .build()
            };
            request = request.transact_items(item);
        }
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
            request = request.transact_items(self.active_put(
                concert_id,
                activation.user_id,
                activation.token_id,
                active_until,
            )?);
        }
        // Items: the admission item, the progress items, the stash items, then a token and an
        // active-list item per activation.
        let first_token = 1 + progress.len() + stashes.len() + listing;
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.as_service_error().and_then(cancellation_reasons) {
                // A token that failed its condition is no longer waiting: pass it over. Anything
                // else (the admission item changed or was busy, a token was being written at the
                // same moment) means: read again and retry.
                Some(reasons) if !reasons.is_empty() => {
                    let not_waiting: Vec<usize> = reasons
                        .iter()
                        .filter(|(index, code)| {
                            *index >= first_token
                                && (index - first_token) % 2 == 0
                                && code == "ConditionalCheckFailed"
                        })
                        .map(|(index, _)| (index - first_token) / 2)
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
