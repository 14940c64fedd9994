//! Balances, ledger entries, payments, idempotency records and sales counters.
//!
//! Every change of a balance is one transaction that also writes its ledger entry, on
//! condition that the user's `ledger_seq` is still the one read (an optimistic version: a
//! concurrent change makes the loser re-read and try again, never lose or double an update).

use super::items::{
    millis, progress_key, reservation_key, seat_key, token_key, ProfileItem, ProgressItem,
    ReservationItem, ScheduleItem, TokenItem,
};
use super::{
    cursor, from_item, keys, s, sdk_error, sort_key, to_item, Cancelled, Item, Role, SlotChange,
    Store, Transaction,
};
use crate::catalog::{Schedule, SeatStatus};
use crate::error::{DomainError, Result};
use crate::money::{Account, IdempotentOutcome, LedgerEntry, Payment, IDEMPOTENCY_TTL_SECONDS};
use crate::queue::{QueueToken, ShardProgress};
use crate::reservations::{Reservation, ReservationStatus};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct LedgerItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    entry: LedgerEntry,
}

#[derive(Serialize, Deserialize)]
struct PaymentItem {
    pk: String,
    sk: String,
    status: String,
    #[serde(flatten)]
    payment: Payment,
}

#[derive(Serialize, Deserialize)]
struct IdempotencyItem {
    pk: String,
    sk: String,
    ttl: i64,
    #[serde(flatten)]
    outcome: IdempotentOutcome,
}

/// A schedule's sales so far: seats booked now, net revenue, and what was refunded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SalesCounters {
    #[serde(default)]
    pub sold_seats: i64,
    #[serde(default)]
    pub revenue: i64,
    #[serde(default)]
    pub refunded: i64,
    /// Cancellation fees kept (part of `revenue`).
    #[serde(default)]
    pub fees: i64,
}

#[derive(Deserialize)]
struct SalesItem {
    schedule_id: Uuid,
    #[serde(flatten)]
    counters: SalesCounters,
}

/// Everything a payment must know before it writes, read together.
pub struct PaymentContext {
    pub reservation: Option<Reservation>,
    pub account: Option<Account>,
    pub token: Option<QueueToken>,
    /// The progress of the token's entry shard (for the position in a refusal).
    pub progress: ShardProgress,
    /// The first answer recorded under the request's idempotency key, if there is one.
    pub replay: Option<IdempotentOutcome>,
}

/// The payment transaction's inputs.
pub struct PaymentWrite<'a> {
    pub reservation: &'a Reservation,
    pub payment: &'a Payment,
    pub read: Account,
    pub after: Account,
    pub entry: &'a LedgerEntry,
    pub token_id: Uuid,
    pub idempotency: Option<(&'a str, &'a IdempotentOutcome)>,
    pub now: DateTime<Utc>,
}

/// The cancellation transaction's inputs.
pub struct CancelWrite<'a> {
    pub reservation: &'a Reservation,
    pub read: Account,
    pub after: Account,
    pub entry: &'a LedgerEntry,
    /// What goes back to the balance, and what the fee kept.
    pub refund: i64,
    pub fee: i64,
    pub now: DateTime<Utc>,
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(keys::PK.to_owned(), s(pk)), (keys::SK.to_owned(), s(sk))])
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn rfc3339(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn update(update: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> Result<TransactWriteItem> {
    let update = update.build().map_err(DomainError::internal)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A transaction's put of an item that must not exist yet.
pub(super) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(DomainError::internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl Store {
    /// A user's account and, if `idempotency_key` is given, the first answer recorded under it:
    /// one consistent read.
    pub async fn account_and_replay(
        &self,
        user_id: Uuid,
        idempotency_key: Option<&str>,
    ) -> Result<(Option<Account>, Option<IdempotentOutcome>)> {
        let mut request = KeysAndAttributes::builder()
            .keys(key(keys::user(user_id), keys::USER_PROFILE))
            .consistent_read(true);
        if let Some(idempotency_key) = idempotency_key {
            request = request.keys(idempotency_record_key(user_id, idempotency_key));
        }
        let (mut account, mut replay) = (None, None);
        for item in self
            .batch_get(request.build().map_err(DomainError::internal)?)
            .await?
        {
            match sort_key(&item).as_str() {
                keys::USER_PROFILE => {
                    account = Some(account_of(&from_item::<ProfileItem>(item)?));
                }
                keys::IDEMPOTENCY_SK => replay = Some(from_item::<IdempotencyItem>(item)?.outcome),
                _ => {}
            }
        }
        Ok((account, replay))
    }

    pub async fn account(&self, user_id: Uuid) -> Result<Option<Account>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::USER_PROFILE)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("account", err))?;
        output
            .item
            .map(|item| from_item::<ProfileItem>(item).map(|profile| account_of(&profile)))
            .transpose()
    }

    pub async fn idempotent_outcome(
        &self,
        user_id: Uuid,
        idempotency_key: &str,
    ) -> Result<Option<IdempotentOutcome>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_record_key(user_id, idempotency_key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("idempotent_outcome", err))?;
        Ok(output
            .item
            .map(from_item::<IdempotencyItem>)
            .transpose()?
            .map(|item| item.outcome))
    }

    fn balance_change(
        &self,
        user_id: Uuid,
        read: Account,
        after: Account,
    ) -> Result<TransactWriteItem> {
        update(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::user(user_id), keys::USER_PROFILE)))
                .update_expression("SET balance = :after, ledger_seq = :next")
                .condition_expression("ledger_seq = :seq AND balance = :before")
                .expression_attribute_values(":after", n(after.balance))
                .expression_attribute_values(":next", n(after.ledger_seq))
                .expression_attribute_values(":seq", n(read.ledger_seq))
                .expression_attribute_values(":before", n(read.balance)),
        )
    }

    fn ledger_put(&self, user_id: Uuid, entry: &LedgerEntry) -> Result<TransactWriteItem> {
        put_new(
            &self.table,
            to_item(&LedgerItem {
                pk: keys::user(user_id),
                sk: keys::ledger_sk(entry.seq),
                entry: entry.clone(),
            })?,
        )
    }

    fn idempotency_put(
        &self,
        user_id: Uuid,
        idempotency_key: &str,
        outcome: &IdempotentOutcome,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        put_new(
            &self.table,
            to_item(&IdempotencyItem {
                pk: keys::idempotency(user_id, idempotency_key),
                sk: keys::IDEMPOTENCY_SK.to_owned(),
                ttl: now.timestamp() + IDEMPOTENCY_TTL_SECONDS,
                outcome: outcome.clone(),
            })?,
        )
    }

    /// A charge: the balance, its ledger entry and the idempotency record, all or none.
    pub async fn charge(
        &self,
        user_id: Uuid,
        read: Account,
        after: Account,
        entry: &LedgerEntry,
        idempotency: Option<(&str, &IdempotentOutcome)>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Cancelled>> {
        let mut transaction = Transaction::new();
        transaction.push(Role::Account, self.balance_change(user_id, read, after)?);
        transaction.push(Role::Ledger, self.ledger_put(user_id, entry)?);
        if let Some((idempotency_key, outcome)) = idempotency {
            transaction.push(
                Role::Idempotency,
                self.idempotency_put(user_id, idempotency_key, outcome, now)?,
            );
        }
        transaction.run(self, "charge").await
    }

    /// The reservation, the payer's account, their queue token and its shard's progress, and the first
    /// answer recorded under the request's idempotency key if one is given: one read.
    pub async fn payment_context(
        &self,
        user_id: Uuid,
        reservation_id: Uuid,
        concert_id: Uuid,
        shard: u32,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentContext> {
        let mut request = KeysAndAttributes::builder()
            .keys(reservation_key(user_id, reservation_id))
            .keys(key(keys::user(user_id), keys::USER_PROFILE))
            .keys(token_key(concert_id, user_id))
            .keys(progress_key(concert_id, shard))
            .consistent_read(true);
        if let Some(idempotency_key) = idempotency_key {
            request = request.keys(idempotency_record_key(user_id, idempotency_key));
        }
        let request = request.build().map_err(DomainError::internal)?;
        let mut context = PaymentContext {
            reservation: None,
            account: None,
            token: None,
            progress: ShardProgress::default(),
            replay: None,
        };
        for item in self.batch_get(request).await? {
            let sk = sort_key(&item);
            match sk.as_str() {
                keys::USER_PROFILE => {
                    context.account = Some(account_of(&from_item::<ProfileItem>(item)?));
                }
                keys::QUEUE_TOKEN_SK => context.token = Some(from_item::<TokenItem>(item)?.token),
                keys::QUEUE_PROGRESS_SK => {
                    context.progress = from_item::<ProgressItem>(item)?.into()
                }
                keys::IDEMPOTENCY_SK => {
                    context.replay = Some(from_item::<IdempotencyItem>(item)?.outcome);
                }
                sk if sk.starts_with(keys::RESERVATION_SK_PREFIX) => {
                    context.reservation = Some(from_item::<ReservationItem>(item)?.reservation);
                }
                _ => {}
            }
        }
        Ok(context)
    }

    /// The payment: debit, reservation CONFIRMED, seats BOOKED, payment and ledger entry and
    /// idempotency record written, queue token used up and its slot freed, sales counted. One
    /// transaction (at most 12 items).
    pub async fn pay(&self, write: PaymentWrite<'_>) -> Result<Result<(), Cancelled>> {
        let reservation = write.reservation;
        let user_id = reservation.user_id;
        let mut transaction = Transaction::new();
        transaction.push(
            Role::Account,
            self.balance_change(user_id, write.read, write.after)?,
        );
        transaction.push(
            Role::Reservation,
            update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(reservation_key(user_id, reservation.reservation_id)))
                    .update_expression(
                        "SET #status = :confirmed, payment_id = :payment, paid_at = :paid \
                         REMOVE gsi1pk, gsi1sk, #ttl",
                    )
                    .condition_expression("#status = :held AND expires_at > :now")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_names("#ttl", keys::TTL)
                    .expression_attribute_values(
                        ":confirmed",
                        s(ReservationStatus::Confirmed.as_str()),
                    )
                    .expression_attribute_values(":held", s(ReservationStatus::Held.as_str()))
                    .expression_attribute_values(
                        ":payment",
                        s(write.payment.payment_id.to_string()),
                    )
                    .expression_attribute_values(":paid", rfc3339(write.now))
                    .expression_attribute_values(":now", millis(write.now)),
            )?,
        );
        for seat_no in reservation.seat_nos() {
            transaction.push(
                Role::Seat,
                update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(seat_key(reservation.schedule_id, seat_no)))
                        .update_expression("SET #status = :booked REMOVE hold_expires_at")
                        .condition_expression("reservation_id = :reservation AND #status = :held")
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":booked", s(SeatStatus::Booked.as_str()))
                        .expression_attribute_values(":held", s(SeatStatus::Held.as_str()))
                        .expression_attribute_values(
                            ":reservation",
                            s(reservation.reservation_id.to_string()),
                        ),
                )?,
            );
        }
        transaction.push(
            Role::Payment,
            put_new(
                &self.table,
                to_item(&PaymentItem {
                    pk: keys::user(user_id),
                    sk: keys::payment_sk(write.payment.payment_id),
                    status: "COMPLETED".to_owned(),
                    payment: write.payment.clone(),
                })?,
            )?,
        );
        transaction.push(Role::Ledger, self.ledger_put(user_id, write.entry)?);
        transaction.push(
            Role::QueueToken,
            update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(token_key(reservation.concert_id, user_id)))
                    .update_expression("SET #status = :expired")
                    .condition_expression(
                        "token_id = :token AND #status = :active AND active_until > :now",
                    )
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":expired", s("EXPIRED"))
                    .expression_attribute_values(":active", s("ACTIVE"))
                    .expression_attribute_values(":token", s(write.token_id.to_string()))
                    .expression_attribute_values(":now", millis(write.now)),
            )?,
        );
        transaction.push(
            Role::ActiveSlot,
            self.free_active_slot(reservation.concert_id, user_id, write.token_id)?,
        );
        transaction.push(
            Role::Sales,
            self.sales_change(
                reservation,
                reservation.seats.len() as i64,
                reservation.amount,
                0,
                0,
            )?,
        );
        if let Some(tickets) = self.tickets_update(reservation, SlotChange::Book, write.now)? {
            transaction.push(Role::Tickets, tickets);
        }
        if let Some((idempotency_key, outcome)) = write.idempotency {
            transaction.push(
                Role::Idempotency,
                self.idempotency_put(user_id, idempotency_key, outcome, write.now)?,
            );
        }
        transaction.run(self, "pay").await
    }

    /// "Insufficient balance: no payment, hold released": the hold released as by its holder,
    /// with the 402 remembered under the idempotency key, all or none.
    ///
    /// The decision rests on the balance read, so the account is checked unchanged in the same
    /// transaction: a charge that lands meanwhile makes this fail (and the payment re-read).
    pub async fn decline_payment(
        &self,
        reservation: &Reservation,
        read: Account,
        idempotency: Option<(&str, &IdempotentOutcome)>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Cancelled>> {
        let mut transaction = self.release_transaction(reservation, SlotChange::Free, now)?;
        let unchanged = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::user(reservation.user_id),
                keys::USER_PROFILE,
            )))
            .condition_expression("ledger_seq = :seq AND balance = :balance")
            .expression_attribute_values(":seq", n(read.ledger_seq))
            .expression_attribute_values(":balance", n(read.balance))
            .build()
            .map_err(DomainError::internal)?;
        transaction.push(
            Role::Account,
            TransactWriteItem::builder()
                .condition_check(unchanged)
                .build(),
        );
        if let Some((idempotency_key, outcome)) = idempotency {
            transaction.push(
                Role::Idempotency,
                self.idempotency_put(reservation.user_id, idempotency_key, outcome, now)?,
            );
        }
        transaction.run(self, "decline_payment").await
    }

    /// Cancelling a booking: the reservation CANCELLED, its seats back on sale, the amount
    /// refunded with its ledger entry, sales counted back. One transaction.
    pub async fn cancel_booking(&self, write: CancelWrite<'_>) -> Result<Result<(), Cancelled>> {
        let reservation = write.reservation;
        let user_id = reservation.user_id;
        let mut transaction = Transaction::new();
        transaction.push(
            Role::Reservation,
            update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(reservation_key(user_id, reservation.reservation_id)))
                    .update_expression(
                        "SET #status = :cancelled, cancelled_at = :at, refund = :refund, \
                         cancellation_fee = :fee",
                    )
                    .condition_expression("#status = :confirmed")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(
                        ":cancelled",
                        s(ReservationStatus::Cancelled.as_str()),
                    )
                    .expression_attribute_values(
                        ":confirmed",
                        s(ReservationStatus::Confirmed.as_str()),
                    )
                    .expression_attribute_values(":at", rfc3339(write.now))
                    .expression_attribute_values(":refund", n(write.refund))
                    .expression_attribute_values(":fee", n(write.fee)),
            )?,
        );
        for seat_no in reservation.seat_nos() {
            let free = self.free_seat(
                reservation.schedule_id,
                seat_no,
                reservation.reservation_id,
                SeatStatus::Booked,
            )?;
            transaction.push(
                Role::Seat,
                TransactWriteItem::builder().update(free).build(),
            );
        }
        transaction.push(
            Role::Account,
            self.balance_change(user_id, write.read, write.after)?,
        );
        transaction.push(Role::Ledger, self.ledger_put(user_id, write.entry)?);
        transaction.push(
            Role::Sales,
            self.sales_change(
                reservation,
                -(reservation.seats.len() as i64),
                -write.refund,
                write.refund,
                write.fee,
            )?,
        );
        if let Some(tickets) = self.tickets_update(reservation, SlotChange::Free, write.now)? {
            transaction.push(Role::Tickets, tickets);
        }
        transaction.run(self, "cancel_booking").await
    }

    /// The change of a date's sales: seats sold, revenue (payments less refunds, so fees kept
    /// stay in it), refunds and cancellation fees.
    fn sales_change(
        &self,
        reservation: &Reservation,
        seats: i64,
        revenue: i64,
        refunded: i64,
        fees: i64,
    ) -> Result<TransactWriteItem> {
        update(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::sales_shard(
                        reservation.concert_id,
                        crate::ids::random_below(keys::SALES_SHARDS),
                    ),
                    keys::sales_sk(reservation.schedule_id),
                )))
                .update_expression(
                    "SET schedule_id = :schedule ADD sold_seats :seats, revenue :revenue, refunded :refunded, fees :fees",
                )
                .expression_attribute_values(":schedule", s(reservation.schedule_id.to_string()))
                .expression_attribute_values(":seats", n(seats))
                .expression_attribute_values(":revenue", n(revenue))
                .expression_attribute_values(":refunded", n(refunded))
                .expression_attribute_values(":fees", n(fees)),
        )
    }

    /// A user's ledger, newest first.
    pub async fn ledger(
        &self,
        user_id: Uuid,
        limit: i32,
        page: Option<&str>,
    ) -> Result<(Vec<LedgerEntry>, Option<String>)> {
        let (items, next) = self
            .user_items(user_id, keys::LEDGER_SK_PREFIX, limit, page)
            .await?;
        let entries = items
            .into_iter()
            .map(|item| from_item::<LedgerItem>(item).map(|item| item.entry))
            .collect::<Result<_>>()?;
        Ok((entries, next))
    }

    /// A user's reservations, newest first.
    pub async fn reservations_of(
        &self,
        user_id: Uuid,
        limit: i32,
        page: Option<&str>,
    ) -> Result<(Vec<Reservation>, Option<String>)> {
        let (items, next) = self
            .user_items(user_id, keys::RESERVATION_SK_PREFIX, limit, page)
            .await?;
        let reservations = items
            .into_iter()
            .map(|item| from_item::<ReservationItem>(item).map(|item| item.reservation))
            .collect::<Result<_>>()?;
        Ok((reservations, next))
    }

    /// One page of the items of a user's partition whose sort key starts with `prefix`,
    /// newest first (sort keys are UUID v7 or zero-padded sequence numbers).
    async fn user_items(
        &self,
        user_id: Uuid,
        prefix: &str,
        limit: i32,
        page: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>)> {
        let partition = keys::user(user_id);
        let start_key = page
            .map(|page| {
                cursor::decode(
                    page,
                    &[keys::PK, keys::SK],
                    &[(keys::PK, &partition)],
                    &[(keys::SK, prefix)],
                )
            })
            .transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(partition.clone()))
            .expression_attribute_values(":prefix", s(prefix))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|err| sdk_error("user_items", err))?;
        Ok((
            output.items.unwrap_or_default(),
            output.last_evaluated_key.map(|key| cursor::encode(&key)),
        ))
    }

    /// A concert's schedules and each one's sales counters: a `Query` of the concert's partition
    /// and one of each sales shard, all together.
    pub async fn sales(
        &self,
        concert_id: Uuid,
    ) -> Result<Option<(Vec<Schedule>, HashMap<Uuid, SalesCounters>)>> {
        let shards = futures::future::try_join_all((0..keys::SALES_SHARDS).map(|shard| {
            self.query_partition(
                keys::sales_shard(concert_id, shard),
                Some(keys::SALES_SK_PREFIX),
                false,
            )
        }));
        let (concert_items, shard_items) = tokio::try_join!(
            self.query_partition(keys::concert(concert_id), None, false),
            shards
        )?;
        let mut found = false;
        let mut schedules = Vec::new();
        for item in concert_items {
            let sk = sort_key(&item);
            if sk == keys::CONCERT_SK {
                found = true;
            } else if sk.starts_with(keys::SCHEDULE_SK_PREFIX) {
                schedules.push(from_item::<ScheduleItem>(item)?.schedule);
            }
        }
        let mut sales: HashMap<Uuid, SalesCounters> = HashMap::new();
        for item in shard_items.into_iter().flatten() {
            let item = from_item::<SalesItem>(item)?;
            let total = sales.entry(item.schedule_id).or_default();
            total.sold_seats += item.counters.sold_seats;
            total.revenue += item.counters.revenue;
            total.refunded += item.counters.refunded;
            total.fees += item.counters.fees;
        }
        schedules.sort_by_key(|schedule| schedule.starts_at);
        Ok(found.then_some((schedules, sales)))
    }

    /// Seats of a schedule under a live hold at `now`.
    pub async fn held_seats(&self, schedule: &Schedule, now: DateTime<Utc>) -> Result<u32> {
        let values = [
            (":held", s(SeatStatus::Held.as_str())),
            (":now", millis(now)),
        ];
        self.count_seats(
            schedule,
            "#status = :held AND hold_expires_at > :now",
            &values,
        )
        .await
    }
}

fn idempotency_record_key(user_id: Uuid, idempotency_key: &str) -> Item {
    key(
        keys::idempotency(user_id, idempotency_key),
        keys::IDEMPOTENCY_SK,
    )
}

fn account_of(profile: &ProfileItem) -> Account {
    Account {
        balance: profile.user.balance,
        ledger_seq: profile.ledger_seq,
    }
}
