//! Seat holds and bookings: the rules of a reservation's life.
//!
//! ```text
//!            hold (1..4 seats, HOLD_TTL_SECONDS)
//!   ─────────────▶ HELD ──pay──▶ CONFIRMED ──cancel before the show──▶ CANCELLED
//!                   │ ╲
//!          release  │  ╲ time runs out (read as EXPIRED at once; the sweeper tidies storage)
//!                   ▼   ▼
//!             RELEASED  EXPIRED
//! ```

use crate::error::{DomainError, Result};
use crate::ids::parse_id;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// The most seats one reservation may hold.
pub const MAX_SEATS_PER_HOLD: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Held,
    Confirmed,
    Expired,
    Released,
    Cancelled,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Confirmed => "CONFIRMED",
            Self::Expired => "EXPIRED",
            Self::Released => "RELEASED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// A seat of a reservation and what it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedSeat {
    pub seat_no: u32,
    pub section: String,
    pub row: u32,
    pub grade: String,
    pub price: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub schedule_id: Uuid,
    pub concert_id: Uuid,
    pub concert_title: String,
    pub starts_at: DateTime<Utc>,
    pub seats: Vec<ReservedSeat>,
    pub amount: i64,
    /// As stored; read it through [`Reservation::status`], which knows about time.
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
    /// When a HELD reservation's hold ends.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// What was refunded on cancellation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<i64>,
    /// The queue token the hold was made with: a repeat of the same request with it is
    /// recognised as the same hold (see `Services::hold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_token_id: Option<Uuid>,
    /// The slots of the holder's tickets for the date this reservation takes (the ticket
    /// limit, `rules::Tickets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limit_slots: Vec<u8>,
    /// What cancelling it cost (kept from the refund).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_fee: Option<i64>,
}

impl Reservation {
    /// The status at `now`: a HELD reservation whose time has passed is EXPIRED, whether or not
    /// the sweeper has written that down yet.
    pub fn status(&self, now: DateTime<Utc>) -> ReservationStatus {
        match self.status {
            ReservationStatus::Held if now >= self.expires_at => ReservationStatus::Expired,
            status => status,
        }
    }

    pub fn seat_nos(&self) -> Vec<u32> {
        self.seats.iter().map(|seat| seat.seat_no).collect()
    }
}

/// The body of `POST /reservations`.
#[derive(Debug, Deserialize)]
pub struct NewHold {
    pub schedule_id: String,
    pub seat_nos: Vec<u32>,
}

impl NewHold {
    /// The schedule and the seat numbers, sorted (a fixed order for the transaction items).
    pub fn validate(&self) -> Result<(Uuid, Vec<u32>)> {
        let schedule_id = parse_id(&self.schedule_id)
            .ok_or_else(|| DomainError::validation("schedule_id", "must be a schedule id"))?;
        if self.seat_nos.is_empty() || self.seat_nos.len() > MAX_SEATS_PER_HOLD {
            return Err(DomainError::validation(
                "seat_nos",
                format!("must list 1 to {MAX_SEATS_PER_HOLD} seats"),
            ));
        }
        let distinct: BTreeSet<u32> = self.seat_nos.iter().copied().collect();
        if distinct.len() != self.seat_nos.len() {
            return Err(DomainError::validation(
                "seat_nos",
                "must not repeat a seat",
            ));
        }
        if distinct.contains(&0) {
            return Err(DomainError::validation(
                "seat_nos",
                "seat numbers start at 1",
            ));
        }
        Ok((schedule_id, distinct.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn hold(seat_nos: Vec<u32>) -> NewHold {
        NewHold {
            schedule_id: Uuid::now_v7().to_string(),
            seat_nos,
        }
    }

    fn field(result: Result<(Uuid, Vec<u32>)>) -> String {
        match result {
            Err(DomainError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn when_hold_names_one_to_four_distinct_seats_should_sort_them() {
        assert_eq!(hold(vec![7, 3, 5]).validate().unwrap().1, vec![3, 5, 7]);
    }

    #[test]
    fn when_hold_names_too_many_repeated_or_zero_seats_should_refuse() {
        assert_eq!(field(hold(vec![]).validate()), "seat_nos");
        assert_eq!(field(hold(vec![1, 2, 3, 4, 5]).validate()), "seat_nos");
        assert_eq!(field(hold(vec![2, 2]).validate()), "seat_nos");
        assert_eq!(field(hold(vec![0]).validate()), "seat_nos");
        let bad_schedule = NewHold {
            schedule_id: "x".into(),
            seat_nos: vec![1],
        };
        assert_eq!(field(bad_schedule.validate()), "schedule_id");
    }

    #[test]
    fn when_hold_time_passes_should_read_expired() {
        let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let reservation = Reservation {
            reservation_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            schedule_id: Uuid::now_v7(),
            concert_id: Uuid::now_v7(),
            concert_title: "t".into(),
            starts_at: t0 + Duration::days(30),
            seats: vec![],
            amount: 0,
            status: ReservationStatus::Held,
            created_at: t0,
            expires_at: t0 + Duration::seconds(300),
            payment_id: None,
            paid_at: None,
            cancelled_at: None,
            refund: None,
            queue_token_id: None,
            limit_slots: Vec::new(),
            cancellation_fee: None,
        };
        assert_eq!(reservation.status(t0), ReservationStatus::Held);
        assert_eq!(
            reservation.status(t0 + Duration::seconds(300)),
            ReservationStatus::Expired
        );
        let confirmed = Reservation {
            status: ReservationStatus::Confirmed,
            ..reservation
        };
        assert_eq!(
            confirmed.status(t0 + Duration::days(1)),
            ReservationStatus::Confirmed
        );
    }
}
