//! Concerts, schedules and seat maps.

use super::items::{millis, ConcertItem, ScheduleItem, SeatItem};
use super::{applied, cursor, from_item, keys, s, sdk_error, sort_key, to_item, Item, Store};
use crate::catalog::{Concert, Schedule, Seat, SeatStatus};
use crate::error::{DomainError, Result};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use std::time::Duration;
use uuid::Uuid;

/// One page of the concert list and the opaque cursor of the next, if any.
pub struct ConcertPage {
    pub items: Vec<Concert>,
    pub next_cursor: Option<String>,
}

/// BatchWriteItem takes at most 25 items a call.
const BATCH_SIZE: usize = 25;
/// Batches in flight at once when writing a seat map.
const BATCH_CONCURRENCY: usize = 8;
const BATCH_ATTEMPTS: u32 = 8;

impl Store {
    /// Writes a new concert with its schedules and their seats.
    ///
    /// A large seat map cannot be one transaction (100 items at most), so the order makes it
    /// safe instead: schedules and seats first, the concert item last. Until the concert item
    /// exists nothing can reach the others (every read starts from the concert or from a
    /// schedule id that only the concert's response reveals), and if writing fails midway the
    /// request fails and leaves only unreachable items, which the admin's retry does not reuse
    /// (ids are new each time).
    pub async fn create_concert(
        &self,
        concert: &Concert,
        schedules: &[Schedule],
        seats: &[Seat],
    ) -> Result<()> {
        let mut items = Vec::with_capacity(schedules.len() * (seats.len() + 1));
        for schedule in schedules {
            items.push(to_item(&ScheduleItem {
                pk: keys::concert(concert.concert_id),
                sk: keys::schedule_sk(schedule.schedule_id),
                schedule: schedule.clone(),
            })?);
            for seat in seats {
                items.push(to_item(&SeatItem {
                    pk: keys::seat_partition(schedule.schedule_id, seat.seat_no),
                    sk: keys::seat_sk(seat.seat_no),
                    schedule_id: schedule.schedule_id,
                    concert_id: concert.concert_id,
                    status: SeatStatus::Available,
                    reservation_id: None,
                    hold_expires_at: None,
                    first_claimed_at: None,
                    seat: seat.clone(),
                })?);
            }
        }
        if concert.prequeue {
            items.push(super::queue::pending_prequeue_item(concert)?);
        }
        let batches: Vec<Vec<Item>> = items.chunks(BATCH_SIZE).map(<[Item]>::to_vec).collect();
        stream::iter(batches)
            .map(|batch| self.write_batch(batch))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;

        let concert_item = to_item(&ConcertItem {
            pk: keys::concert(concert.concert_id),
            sk: keys::CONCERT_SK.to_owned(),
            gsi1pk: Some(keys::CONCERT_LIST.to_owned()),
            gsi1sk: Some(concert.concert_id.to_string()),
            concert: concert.clone(),
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(concert_item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        // Written already: by this very call (its answer was lost and the SDK retried it), or
        // by whoever finished the same claimed draft. The id is the draft's own either way.
        applied("create_concert", result)?;
        Ok(())
    }

    /// One BatchWriteItem, retrying whatever DynamoDB left unprocessed with backoff.
    async fn write_batch(&self, batch: Vec<Item>) -> Result<()> {
        let mut pending: Vec<WriteRequest> = batch
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(DomainError::internal)
            })
            .collect::<Result<_>>()?;
        for attempt in 0..BATCH_ATTEMPTS {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|err| sdk_error("batch_write_item", err))?;
            pending = output
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
        }
        Err(DomainError::internal(
            "batch_write_item: items left unprocessed",
        ))
    }

    pub async fn concert(&self, concert_id: Uuid) -> Result<Option<Concert>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::concert(concert_id)))
            .key(keys::SK, s(keys::CONCERT_SK))
            .send()
            .await
            .map_err(|err| sdk_error("concert", err))?;
        output
            .item
            .map(|item| from_item::<ConcertItem>(item).map(|item| item.concert))
            .transpose()
    }

    /// Concerts, newest first, `limit` at a time. `cursor` is the `next_cursor` of the page
    /// before; a cursor that is not one of ours is a `VALIDATION_FAILED` on `cursor`.
    pub async fn list_concerts(&self, limit: i32, cursor: Option<&str>) -> Result<ConcertPage> {
        let start_key = cursor
            .map(|cursor| {
                cursor::decode(
                    cursor,
                    &[keys::PK, keys::SK, keys::GSI1_PK, keys::GSI1_SK],
                    &[(keys::GSI1_PK, keys::CONCERT_LIST)],
                    &[],
                )
            })
            .transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :list")
            .expression_attribute_values(":list", s(keys::CONCERT_LIST))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|err| sdk_error("list_concerts", err))?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<ConcertItem>(item).map(|item| item.concert))
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = output.last_evaluated_key.map(|key| cursor::encode(&key));
        Ok(ConcertPage { items, next_cursor })
    }

    /// A concert and its schedules (earliest first): one `Query` on the concert's partition.
    pub async fn concert_with_schedules(
        &self,
        concert_id: Uuid,
    ) -> Result<Option<(Concert, Vec<Schedule>)>> {
        let mut concert = None;
        let mut schedules = Vec::new();
        for item in self
            .query_partition(keys::concert(concert_id), None, false)
            .await?
        {
            match sort_key(&item).as_str() {
                keys::CONCERT_SK => concert = Some(from_item::<ConcertItem>(item)?.concert),
                sk if sk.starts_with(keys::SCHEDULE_SK_PREFIX) => {
                    schedules.push(from_item::<ScheduleItem>(item)?.schedule)
                }
                _ => {}
            }
        }
        schedules.sort_by_key(|schedule| schedule.starts_at);
        Ok(concert.map(|concert| (concert, schedules)))
    }

    /// How many seats of a schedule can be held at `now`: available, or held by a hold whose
    /// time has passed (the sweeper may not have run yet; that changes nothing here).
    pub async fn available_seats(&self, schedule: &Schedule, now: DateTime<Utc>) -> Result<u32> {
        let values = [
            (":available", s(SeatStatus::Available.as_str())),
            (":held", s(SeatStatus::Held.as_str())),
            (":now", millis(now)),
        ];
        self.count_seats(
            schedule,
            "#status = :available OR (#status = :held AND hold_expires_at <= :now)",
            &values,
        )
        .await
    }
}
