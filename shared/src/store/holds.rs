//! Seat holds: the seat items of a schedule and the reservation items under their owners.
//!
//! A hold is one transaction: every seat taken on condition it is free (AVAILABLE, or HELD by a
//! hold whose time has passed), the reservation written, and the holder's queue token checked
//! ACTIVE. Releasing and expiring give seats back only if they are still held by that very
//! reservation, so a late sweeper can never free a seat someone else has since taken.

use super::items::{
    cancellation_reasons, key, millis, progress_key, reservation_key, seat_key, seat_state,
    token_key, ConcertItem, ProgressItem, ReservationItem, ScheduleItem, SeatItem, TokenItem,
};
use super::tickets::{tickets_from, tickets_key, SlotChange, TicketsWrite};
use super::{
    applied, from_item, keys, s, sdk_error, sort_key, to_item, Item, Reason, Role, Store,
    Transaction,
};
use crate::catalog::{Concert, Schedule, SeatState, SeatStatus};
use crate::error::{DomainError, Result};
use crate::queue::{QueueToken, ShardProgress};
use crate::reservations::{Reservation, ReservationStatus};
use crate::rules::Tickets;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Held reservations are indexed by expiry over this many GSI partitions, so the index of an
/// on-sale's holds is not one hot partition. Each hold writes its shard twice (the entry when it
/// is made, its removal when it ends): 32 shards take about 16,000 holds/s.
pub const HOLD_SHARDS: u128 = 32;
/// Kept this long after a hold ends unpaid, then DynamoDB's TTL may delete the reservation.
const UNPAID_RETENTION_SECONDS: i64 = 7 * 86_400;

/// Everything a hold request must know before it writes, read together.
pub struct HoldContext {
    pub concert: Option<Concert>,
    pub schedule: Option<Schedule>,
    /// The requested seats that exist.
    pub seats: Vec<SeatState>,
    pub token: Option<QueueToken>,
    /// The progress of the token's entry shard (for the position in a refusal).
    pub progress: ShardProgress,
    /// The caller's tickets for the date, if they ever held any.
    pub tickets: Option<Tickets>,
}

/// Why a hold transaction did not go through.
#[derive(Debug, PartialEq)]
pub enum HoldConflict {
    /// These seats failed their condition: taken since they were read.
    Seats(Vec<u32>),
    /// An item was busy (another transaction on it) or throttled: nothing is known taken.
    Busy,
    /// The queue token is no longer ACTIVE.
    QueueToken,
}

fn hold_shard(reservation_id: Uuid) -> u128 {
    reservation_id.as_u128() % HOLD_SHARDS
}

/// The sort key of a live hold in the expiry index: zero-padded epoch ms, so text order is time
/// order, then the id to keep keys unique.
fn hold_index_sk(expires_at: DateTime<Utc>, reservation_id: Uuid) -> String {
    format!("{:013}#{reservation_id}", expires_at.timestamp_millis())
}

impl Store {
    /// The concert and the schedule (unless `with_catalog` is false: the caller has them), the
    /// requested seats, and the caller's queue token with its shard's progress: one consistent
    /// `BatchGetItem`.
    pub async fn hold_context(
        &self,
        concert_id: Uuid,
        schedule_id: Uuid,
        seat_nos: &[u32],
        user_id: Uuid,
        shard: u32,
        with_catalog: bool,
    ) -> Result<HoldContext> {
        let mut request = KeysAndAttributes::builder();
        if with_catalog {
            request = request
                .keys(key(keys::concert(concert_id), keys::CONCERT_SK.to_owned()))
                .keys(key(
                    keys::concert(concert_id),
                    keys::schedule_sk(schedule_id),
                ));
        }
        let mut request = request
            .keys(token_key(concert_id, user_id))
            .keys(progress_key(concert_id, shard))
            .keys(tickets_key(user_id, schedule_id))
            .consistent_read(true);
        for seat_no in seat_nos {
            request = request.keys(seat_key(schedule_id, *seat_no));
        }
        let items = self
            .batch_get(request.build().map_err(DomainError::internal)?)
            .await?;
        let mut context = HoldContext {
            concert: None,
            schedule: None,
            seats: Vec::new(),
            token: None,
            progress: ShardProgress::default(),
            tickets: None,
        };
        for item in items {
            let sk = sort_key(&item);
            match sk.as_str() {
                sk if sk.starts_with(keys::TICKETS_SK_PREFIX) => {
                    context.tickets = Some(tickets_from(item)?);
                }
                keys::CONCERT_SK => context.concert = Some(from_item::<ConcertItem>(item)?.concert),
                keys::QUEUE_TOKEN_SK => context.token = Some(from_item::<TokenItem>(item)?.token),
                keys::QUEUE_PROGRESS_SK => {
                    context.progress = from_item::<ProgressItem>(item)?.into();
                }
                sk if sk.starts_with(keys::SEAT_SK_PREFIX) => {
                    context.seats.push(seat_state(from_item::<SeatItem>(item)?));
                }
                sk if sk.starts_with(keys::SCHEDULE_SK_PREFIX) => {
                    context.schedule = Some(from_item::<ScheduleItem>(item)?.schedule);
                }
                _ => {}
            }
        }
        context.seats.sort_by_key(|seat| seat.seat.seat_no);
        Ok(context)
    }

    /// `BatchGetItem` of one table's keys, retrying unprocessed keys a few times.
    pub(crate) async fn batch_get(&self, request: KeysAndAttributes) -> Result<Vec<Item>> {
        let mut pending = Some(request);
        let mut items = Vec::new();
        for attempt in 0..5u32 {
            let Some(request) = pending.take() else { break };
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|err| sdk_error("batch_get_item", err))?;
            items.extend(
                output
                    .responses
                    .and_then(|mut responses| responses.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table));
            if pending.is_some() {
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        if pending.is_some() {
            return Err(DomainError::internal(
                "batch_get_item: keys left unprocessed",
            ));
        }
        Ok(items)
    }

    /// Every seat of a schedule of `total_seats` seats, by number.
    pub async fn seat_map(&self, schedule_id: Uuid, total_seats: u32) -> Result<Vec<SeatState>> {
        self.seats_in_blocks(schedule_id, 0..keys::seat_blocks(total_seats))
            .await
    }

    /// The seats in seat partitions `blocks` of a schedule (see `keys::SEATS_PER_PARTITION`),
    /// one `Query` per partition, all together; by number.
    pub async fn seats_in_blocks(
        &self,
        schedule_id: Uuid,
        blocks: std::ops::Range<u32>,
    ) -> Result<Vec<SeatState>> {
        let pages = futures::future::try_join_all(blocks.map(|block| {
            self.query_partition(
                keys::seat_block(schedule_id, block),
                Some(keys::SEAT_SK_PREFIX),
                false,
            )
        }))
        .await?;
        let mut seats = pages
            .into_iter()
            .flatten()
            .map(|item| from_item::<SeatItem>(item).map(seat_state))
            .collect::<Result<Vec<_>>>()?;
        seats.sort_by_key(|seat| seat.seat.seat_no);
        Ok(seats)
    }

    /// The hold transaction (see the module comment). `token_id` must be the caller's ACTIVE
    /// queue token for the reservation's concert.
    pub async fn create_hold(
        &self,
        reservation: &Reservation,
        token_id: Uuid,
        tickets: &TicketsWrite,
        now: DateTime<Utc>,
        practice: bool,
    ) -> Result<Result<(), HoldConflict>> {
        let seat_nos = reservation.seat_nos();
        let mut request = self.client.transact_write_items();
        for item in self.hold_items(reservation, now, practice)? {
            request = request.transact_items(item);
        }
        request = request
            .transact_items(self.active_token_check(
                reservation.concert_id,
                reservation.user_id,
                token_id,
                now,
            )?)
            .transact_items(self.tickets_put(
                reservation.user_id,
                reservation.schedule_id,
                tickets,
            )?);
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(err) => {
                let Some(reasons) = err.as_service_error().and_then(cancellation_reasons) else {
                    return Err(sdk_error("create_hold", err));
                };
                let failed = |(index, code): &&(usize, String)| {
                    Reason::of(code) == Some(Reason::Condition) && *index <= seat_nos.len() + 1
                };
                let taken: Vec<u32> = reasons
                    .iter()
                    .filter(failed)
                    .filter(|(index, _)| *index < seat_nos.len())
                    .map(|(index, _)| seat_nos[*index])
                    .collect();
                // Items: the seats, the reservation, the token check, the caller's tickets.
                let tickets_changed = reasons.iter().any(|(index, code)| {
                    *index == seat_nos.len() + 2 && Reason::of(code) == Some(Reason::Condition)
                });
                if reasons
                    .iter()
                    .filter(failed)
                    .any(|(index, _)| *index == seat_nos.len() + 1)
                {
                    Ok(Err(HoldConflict::QueueToken))
                } else if !taken.is_empty() {
                    Ok(Err(HoldConflict::Seats(taken)))
                } else if tickets_changed
                    || reasons
                        .iter()
                        .all(|(_, code)| Reason::of(code) == Some(Reason::Busy))
                {
                    // Busy items, or another hold, payment or release of the caller's for this
                    // date changed their tickets since the read: read again.
                    Ok(Err(HoldConflict::Busy))
                } else {
                    Err(sdk_error("create_hold", err))
                }
            }
        }
    }

    /// The items a hold writes, seats first: each seat taken on condition it is free (AVAILABLE,
    /// or HELD by a hold whose time has passed), then the reservation (new, with its entry in
    /// the live-hold index). A practice run's seat (`practice`) may not exist yet: it is
    /// written whole by its first hold, which also records when a real fan first claimed it.
    pub(crate) fn hold_items(
        &self,
        reservation: &Reservation,
        now: DateTime<Utc>,
        practice: bool,
    ) -> Result<Vec<TransactWriteItem>> {
        let mut items = Vec::new();
        for seat in &reservation.seats {
            let seat_no = seat.seat_no;
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(seat_key(reservation.schedule_id, seat_no)));
            let update = if practice {
                update
                    .update_expression(
                        "SET #status = :held, reservation_id = :reservation, hold_expires_at = :until, \
                         first_claimed_at = if_not_exists(first_claimed_at, :now), \
                         schedule_id = :schedule, concert_id = :concert, seat_no = :seat_no, \
                         #section = :section, #row = :row, grade = :grade, price = :price",
                    )
                    .condition_expression(
                        "attribute_not_exists(pk) OR #status = :available \
                         OR (#status = :held AND hold_expires_at <= :now)",
                    )
                    .expression_attribute_names("#section", "section")
                    .expression_attribute_names("#row", "row")
                    .expression_attribute_values(":schedule", s(reservation.schedule_id.to_string()))
                    .expression_attribute_values(":concert", s(reservation.concert_id.to_string()))
                    .expression_attribute_values(":seat_no", AttributeValue::N(seat_no.to_string()))
                    .expression_attribute_values(":section", s(seat.section.clone()))
                    .expression_attribute_values(":row", AttributeValue::N(seat.row.to_string()))
                    .expression_attribute_values(":grade", s(seat.grade.clone()))
                    .expression_attribute_values(":price", AttributeValue::N(seat.price.to_string()))
            } else {
                update
                    .update_expression(
                        "SET #status = :held, reservation_id = :reservation, hold_expires_at = :until",
                    )
                    .condition_expression(
                        "attribute_exists(pk) AND (#status = :available \
                         OR (#status = :held AND hold_expires_at <= :now))",
                    )
            };
            let update = update
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":held", s(SeatStatus::Held.as_str()))
                .expression_attribute_values(":available", s(SeatStatus::Available.as_str()))
                .expression_attribute_values(
                    ":reservation",
                    s(reservation.reservation_id.to_string()),
                )
                .expression_attribute_values(":until", millis(reservation.expires_at))
                .expression_attribute_values(":now", millis(now))
                .build()
                .map_err(DomainError::internal)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let item = to_item(&ReservationItem {
            pk: keys::user(reservation.user_id),
            sk: keys::reservation_sk(reservation.reservation_id),
            gsi1pk: Some(keys::holds(hold_shard(reservation.reservation_id))),
            gsi1sk: Some(hold_index_sk(
                reservation.expires_at,
                reservation.reservation_id,
            )),
            ttl: Some(reservation.expires_at.timestamp() + UNPAID_RETENTION_SECONDS),
            reservation: reservation.clone(),
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(DomainError::internal)?;
        items.push(TransactWriteItem::builder().put(put).build());
        Ok(items)
    }

    /// A transaction item that checks the user's queue token for a concert is `token_id` and
    /// ACTIVE at `now`: how every booking write proves admission inside its own request.
    pub(crate) fn active_token_check(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        token_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(token_key(concert_id, user_id)))
            .condition_expression("token_id = :token AND #status = :active AND active_until > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(token_id.to_string()))
            .expression_attribute_values(":active", s("ACTIVE"))
            .expression_attribute_values(":now", millis(now))
            .build()
            .map_err(DomainError::internal)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A reservation of `user_id`. Someone else's reservation is simply not found.
    pub async fn reservation(
        &self,
        user_id: Uuid,
        reservation_id: Uuid,
    ) -> Result<Option<Reservation>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(reservation_key(user_id, reservation_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("reservation", err))?;
        output
            .item
            .map(|item| from_item::<ReservationItem>(item).map(|item| item.reservation))
            .transpose()
    }

    /// A transaction item that gives a seat back, on condition it is still `status` and held
    /// or booked by `reservation_id`.
    pub(crate) fn free_seat(
        &self,
        schedule_id: Uuid,
        seat_no: u32,
        reservation_id: Uuid,
        status: SeatStatus,
    ) -> Result<Update> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(seat_key(schedule_id, seat_no)))
            .update_expression("SET #status = :available REMOVE reservation_id, hold_expires_at")
            .condition_expression("reservation_id = :reservation AND #status = :was")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":available", s(SeatStatus::Available.as_str()))
            .expression_attribute_values(":reservation", s(reservation_id.to_string()))
            .expression_attribute_values(":was", s(status.as_str()))
            .build()
            .map_err(DomainError::internal)
    }

    /// Releases a live hold: the reservation RELEASED and its seats AVAILABLE, in one
    /// transaction. False if the reservation is no longer a live hold.
    pub async fn release_hold(
        &self,
        reservation: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        for attempt in 0..3u64 {
            match self
                .release_transaction(reservation, SlotChange::Release, now)?
                .run(self, "release_hold")
                .await?
            {
                Ok(()) => return Ok(true),
                // Ran out, or its time passed so near now that another hold of the caller's
                // took its places under the ticket limit: no longer a live hold.
                Err(cancelled)
                    if cancelled.failed(Role::Reservation) || cancelled.failed(Role::Tickets) =>
                {
                    return Ok(false)
                }
                // A seat collided with someone's concurrent attempt to hold it (which fails,
                // the seat being held), or an item was throttled: try again.
                Err(cancelled) if cancelled.failed.is_empty() => {}
                Err(cancelled) => {
                    return Err(DomainError::internal(format!(
                        "release failed on {:?}",
                        cancelled.failed
                    )))
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10 * (attempt + 1))).await;
        }
        Err(DomainError::busy())
    }

    /// The items that release a live hold: the reservation RELEASED on condition it is HELD
    /// and in time, each seat AVAILABLE on condition it is still held by it.
    /// `slot_change`: the holder gave the seats back (a drop), or they were freed for them (a
    /// declined payment).
    pub(crate) fn release_transaction(
        &self,
        reservation: &Reservation,
        slot_change: SlotChange,
        now: DateTime<Utc>,
    ) -> Result<Transaction> {
        let mut transaction = Transaction::new();
        let close = self
            .close_hold(reservation, ReservationStatus::Released)
            .condition_expression("#status = :held AND expires_at > :now")
            .expression_attribute_values(":now", millis(now))
            .build()
            .map_err(DomainError::internal)?;
        transaction.push(
            Role::Reservation,
            TransactWriteItem::builder().update(close).build(),
        );
        for seat_no in reservation.seat_nos() {
            let free = self.free_seat(
                reservation.schedule_id,
                seat_no,
                reservation.reservation_id,
                SeatStatus::Held,
            )?;
            transaction.push(
                Role::Seat,
                TransactWriteItem::builder().update(free).build(),
            );
        }
        if let Some(tickets) = self.tickets_update(reservation, slot_change, now)? {
            transaction.push(Role::Tickets, tickets);
        }
        Ok(transaction)
    }

    /// An update that ends a HELD reservation as `to` and drops it from the live-hold index;
    /// the caller adds the condition on time.
    fn close_hold(&self, reservation: &Reservation, to: ReservationStatus) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(reservation_key(
                reservation.user_id,
                reservation.reservation_id,
            )))
            .update_expression("SET #status = :to REMOVE gsi1pk, gsi1sk")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":held", s(ReservationStatus::Held.as_str()))
    }

    /// Live-hold index entries of one shard whose time has passed, oldest first.
    pub async fn expired_holds(
        &self,
        shard: u128,
        now: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<Reservation>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :shard AND gsi1sk < :now")
            .expression_attribute_values(":shard", s(keys::holds(shard)))
            // Expired means `expires_at <= now`: every key of a hold ending at `now` sorts
            // before "{now + 1 ms}#".
            .expression_attribute_values(":now", s(format!("{:013}#", now.timestamp_millis() + 1)))
            .limit(limit)
            .send()
            .await
            .map_err(|err| sdk_error("expired_holds", err))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<ReservationItem>(item).map(|item| item.reservation))
            .collect()
    }

    /// Tidies one expired hold: each seat still held by it goes back to AVAILABLE (a seat
    /// someone else has taken since is left alone), then the reservation becomes EXPIRED.
    /// True if this call moved the reservation (so exactly one of two racing sweepers reports
    /// it); false if it was already tidied or is not an expired hold.
    pub async fn expire_hold(&self, reservation: &Reservation, now: DateTime<Utc>) -> Result<bool> {
        for seat_no in reservation.seat_nos() {
            let free = self.free_seat(
                reservation.schedule_id,
                seat_no,
                reservation.reservation_id,
                SeatStatus::Held,
            )?;
            // A seat someone else holds now fails the condition and is rightly left alone.
            applied("expire_hold seat", self.update_item(free).send().await)?;
        }
        let close = self
            .close_hold(reservation, ReservationStatus::Expired)
            .condition_expression("#status = :held AND expires_at <= :now")
            .expression_attribute_values(":now", millis(now))
            .build()
            .map_err(DomainError::internal)?;
        applied("expire_hold", self.update_item(close).send().await)
    }

    /// A transaction's `Update` as a single `UpdateItem` request, so one builder serves both.
    fn update_item(
        &self,
        update: Update,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
    }
}
