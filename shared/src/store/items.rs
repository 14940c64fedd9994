//! The item types and keys that more than one part of the store reads or writes: the catalog's
//! concert, date and seat items, reservations, profiles, queue tokens and entry-shard progress,
//! and the helpers that build their keys and attribute values. Each entity's own requests stay
//! in its module; what they share is here, so that no module takes types from another.

use super::{keys, s, Item};
use crate::catalog::{Concert, Schedule, Seat, SeatState, SeatStatus};
use crate::queue::{AdmissionHistory, QueueToken, ShardProgress};
use crate::reservations::Reservation;
use crate::users::User;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
pub(crate) struct ConcertItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    /// In the catalog's list (`CONCERTS`); a practice run's concert is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi1sk: Option<String>,
    #[serde(flatten)]
    pub concert: Concert,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ScheduleItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(flatten)]
    pub schedule: Schedule,
}

/// A seat of one schedule. `status` is `AVAILABLE` when written; holds and bookings change it,
/// and while it is HELD or BOOKED `reservation_id` says by whom. A HELD seat is free again the
/// moment `hold_expires_at` (epoch ms) has passed.
#[derive(Serialize, Deserialize)]
pub(crate) struct SeatItem {
    pub pk: String,
    pub sk: String,
    pub schedule_id: Uuid,
    pub concert_id: Uuid,
    pub status: SeatStatus,
    #[serde(default)]
    pub reservation_id: Option<Uuid>,
    #[serde(default)]
    pub hold_expires_at: Option<i64>,
    /// A practice run's seat: when a real fan first held it (epoch ms); rivals who came later
    /// lost it (`practice::crowd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_claimed_at: Option<i64>,
    #[serde(flatten)]
    pub seat: Seat,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ReservationItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    /// `HOLDS#{shard}` while HELD, absent otherwise (a sparse index of live holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gsi1sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ttl: Option<i64>,
    #[serde(flatten)]
    pub reservation: Reservation,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ProfileItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    /// How many ledger entries the user has; every balance change bumps it (see `money`).
    #[serde(default)]
    pub ledger_seq: u64,
    #[serde(flatten)]
    pub user: User,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct TokenItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    #[serde(flatten)]
    pub token: QueueToken,
    pub(crate) ttl: i64,
}

/// A shard's progress as stored: times as epoch milliseconds.
#[derive(Default, Deserialize)]
pub(crate) struct ProgressItem {
    #[serde(default)]
    pub(crate) admitted_up_to: u64,
    #[serde(default)]
    pub(crate) admitted_total: u64,
    #[serde(default)]
    pub(crate) first_admitted_at: Option<i64>,
    #[serde(default)]
    pub(crate) pre_count: u64,
    #[serde(default)]
    pub(crate) pre_cursor: Option<u64>,
    #[serde(default)]
    pub(crate) pre_done: bool,
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl From<ProgressItem> for ShardProgress {
    fn from(item: ProgressItem) -> Self {
        Self {
            admitted_up_to: item.admitted_up_to,
            history: AdmissionHistory {
                admitted_total: item.admitted_total,
                first_admitted_at: item.first_admitted_at.map(from_millis),
            },
            pre_count: item.pre_count,
            pre_cursor: item.pre_cursor,
            pre_done: item.pre_done,
        }
    }
}

pub(crate) fn millis(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp_millis().to_string())
}

pub(crate) fn key(pk: String, sk: String) -> Item {
    HashMap::from([(keys::PK.to_owned(), s(pk)), (keys::SK.to_owned(), s(sk))])
}

pub(crate) fn seat_key(schedule_id: Uuid, seat_no: u32) -> Item {
    key(
        keys::seat_partition(schedule_id, seat_no),
        keys::seat_sk(seat_no),
    )
}

pub(crate) fn reservation_key(user_id: Uuid, reservation_id: Uuid) -> Item {
    key(keys::user(user_id), keys::reservation_sk(reservation_id))
}

pub(crate) fn seat_state(item: SeatItem) -> SeatState {
    SeatState {
        seat: item.seat,
        schedule_id: item.schedule_id,
        concert_id: item.concert_id,
        status: item.status,
        reservation_id: item.reservation_id,
        hold_expires_at: item
            .hold_expires_at
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        claimed_at_ms: item.first_claimed_at,
    }
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

pub(crate) fn progress_key(concert_id: Uuid, shard: u32) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::queue_shard(concert_id, shard))),
        (keys::SK.to_owned(), s(keys::QUEUE_PROGRESS_SK)),
    ])
}

/// The index of each cancellation reason that is not "None", with its code.
pub(crate) fn cancellation_reasons(
    err: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Option<Vec<(usize, String)>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => Some(
            cancelled
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter_map(|(index, reason)| match reason.code() {
                    None | Some("None") => None,
                    Some(code) => Some((index, code.to_owned())),
                })
                .collect(),
        ),
        _ => None,
    }
}
