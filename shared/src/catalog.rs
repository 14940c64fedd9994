//! The catalog: concerts, their dates (schedules) and each date's seat map.

use crate::error::{DomainError, Result};
use crate::rules::{CancellationPolicy, DEFAULT_TICKET_LIMIT, MAX_TICKET_LIMIT};
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most a single seat may cost, in won. Keeps every amount far below the balance cap.
pub const MAX_SEAT_PRICE: i64 = 10_000_000;
/// The most seats one schedule may have: creating a concert writes one item per seat per date.
pub const MAX_SEATS_PER_SCHEDULE: u32 = 5_000;
pub const MAX_SCHEDULES: usize = 30;
/// The most seat items one concert may create (seats per schedule times schedules), so that
/// creating it stays well inside an API request's time.
pub const MAX_SEATS_PER_CONCERT: usize = 50_000;
/// The seats a schedule gets when the concert has no seat map (API.md: seats 1..50).
pub const DEFAULT_SEAT_COUNT: u32 = 50;
const DEFAULT_SEATS_PER_ROW: u32 = 10;

/// The body of `POST /admin/concerts`.
#[derive(Debug, Deserialize)]
pub struct NewConcert {
    pub title: String,
    pub artist: String,
    pub venue: String,
    pub category: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub image_url: Option<String>,
    pub booking_opens_at: DateTime<Utc>,
    pub booking_closes_at: DateTime<Utc>,
    /// Turns on the randomised pre-queue (off unless given).
    #[serde(default)]
    pub prequeue: bool,
    pub schedules: Vec<NewSchedule>,
    #[serde(default)]
    pub seat_map: Option<SeatMap>,
    /// The one price of every seat when there is no seat map.
    #[serde(default)]
    pub price: Option<i64>,
    /// Seats one person may hold and own for one date (default 4).
    #[serde(default)]
    pub ticket_limit: Option<u32>,
    /// What cancelling costs by timing (default: the usual Korean schedule, docs/API.md).
    #[serde(default)]
    pub cancellation_fees: Option<CancellationPolicy>,
}

#[derive(Debug, Deserialize)]
pub struct NewSchedule {
    pub starts_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SeatMap {
    pub sections: Vec<Section>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Section {
    pub name: String,
    pub grade: String,
    pub price: i64,
    pub rows: u32,
    pub seats_per_row: u32,
}

impl NewConcert {
    /// The concert this body describes (its dates and seats are made separately), with a new
    /// id, created at `now`.
    pub fn concert(&self, now: DateTime<Utc>) -> Concert {
        Concert {
            concert_id: crate::ids::new_id(),
            title: self.title.clone(),
            artist: self.artist.clone(),
            venue: self.venue.clone(),
            category: self.category.clone(),
            description: self.description.clone(),
            image_url: self.image_url.clone(),
            booking_opens_at: self.booking_opens_at,
            booking_closes_at: self.booking_closes_at,
            prequeue: self.prequeue,
            source_url: None,
            template_code: None,
            cancelled: false,
            created_at: now,
            ticket_limit: self.ticket_limit.unwrap_or(DEFAULT_TICKET_LIMIT),
            cancellation_fees: self.cancellation_fees.clone().unwrap_or_default(),
            practice: None,
        }
    }

    /// Checks every field and returns the seats each schedule will have.
    pub fn validate(&self) -> Result<Vec<Seat>> {
        validate::text("title", &self.title, 1, 200)?;
        validate::text("artist", &self.artist, 1, 200)?;
        validate::text("venue", &self.venue, 1, 200)?;
        validate::text("category", &self.category, 1, 50)?;
        validate::text("description", &self.description, 0, 5000)?;
        if let Some(image_url) = &self.image_url {
            validate::http_url("image_url", image_url)?;
        }
        if let Some(limit) = self.ticket_limit {
            validate::range("ticket_limit", limit.into(), 1, MAX_TICKET_LIMIT.into())?;
        }
        if let Some(policy) = &self.cancellation_fees {
            policy.validate()?;
        }
        validate::plausible_time("booking_opens_at", self.booking_opens_at)?;
        validate::plausible_time("booking_closes_at", self.booking_closes_at)?;
        if self.booking_closes_at <= self.booking_opens_at {
            return Err(DomainError::validation(
                "booking_closes_at",
                "must be after booking_opens_at",
            ));
        }
        if self.schedules.is_empty() || self.schedules.len() > MAX_SCHEDULES {
            return Err(DomainError::validation(
                "schedules",
                format!("must list 1 to {MAX_SCHEDULES} dates"),
            ));
        }
        for (index, schedule) in self.schedules.iter().enumerate() {
            validate::plausible_time(&format!("schedules[{index}].starts_at"), schedule.starts_at)?;
            if schedule.starts_at < self.booking_opens_at {
                return Err(DomainError::validation(
                    format!("schedules[{index}].starts_at"),
                    "must not be before booking_opens_at",
                ));
            }
        }
        let seats = match &self.seat_map {
            Some(seat_map) => seat_map.seats()?,
            None => {
                let price = self.price.ok_or_else(|| {
                    DomainError::validation("price", "is required when there is no seat_map")
                })?;
                validate::range("price", price, 0, MAX_SEAT_PRICE)?;
                default_seats(price)
            }
        };
        if seats.len() * self.schedules.len() > MAX_SEATS_PER_CONCERT {
            return Err(DomainError::validation(
                "schedules",
                format!("seats times schedules must be at most {MAX_SEATS_PER_CONCERT}"),
            ));
        }
        Ok(seats)
    }
}

impl SeatMap {
    /// Numbers the seats 1..n, section by section, row by row.
    pub fn seats(&self) -> Result<Vec<Seat>> {
        if self.sections.is_empty() || self.sections.len() > 50 {
            return Err(DomainError::validation(
                "seat_map.sections",
                "must list 1 to 50 sections",
            ));
        }
        let mut total: u64 = 0;
        for (index, section) in self.sections.iter().enumerate() {
            let field = |name: &str| format!("seat_map.sections[{index}].{name}");
            validate::text(&field("name"), &section.name, 1, 50)?;
            validate::text(&field("grade"), &section.grade, 1, 20)?;
            validate::range(&field("price"), section.price, 0, MAX_SEAT_PRICE)?;
            validate::range(&field("rows"), section.rows.into(), 1, 200)?;
            validate::range(
                &field("seats_per_row"),
                section.seats_per_row.into(),
                1,
                200,
            )?;
            total += u64::from(section.rows) * u64::from(section.seats_per_row);
        }
        if total > u64::from(MAX_SEATS_PER_SCHEDULE) {
            return Err(DomainError::validation(
                "seat_map",
                format!("at most {MAX_SEATS_PER_SCHEDULE} seats per schedule"),
            ));
        }
        let mut seats = Vec::with_capacity(total as usize);
        for section in &self.sections {
            for row in 1..=section.rows {
                for _ in 0..section.seats_per_row {
                    seats.push(Seat {
                        seat_no: seats.len() as u32 + 1,
                        section: section.name.clone(),
                        row,
                        grade: section.grade.clone(),
                        price: section.price,
                    });
                }
            }
        }
        Ok(seats)
    }
}

fn default_seats(price: i64) -> Vec<Seat> {
    (1..=DEFAULT_SEAT_COUNT)
        .map(|seat_no| Seat {
            seat_no,
            section: "A".to_owned(),
            row: (seat_no - 1) / DEFAULT_SEATS_PER_ROW + 1,
            grade: "STANDARD".to_owned(),
            price,
        })
        .collect()
}

/// One seat of a schedule's map: where it is and what it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub seat_no: u32,
    pub section: String,
    pub row: u32,
    pub grade: String,
    pub price: i64,
}

/// A seat's state as stored. A HELD seat whose hold has expired is available to every read
/// and every write, whatever this says (see [`SeatStatus`] users in the store).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "AVAILABLE",
            Self::Held => "HELD",
            Self::Booked => "BOOKED",
        }
    }
}

/// A seat of a schedule with its state as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SeatState {
    pub seat: Seat,
    pub schedule_id: Uuid,
    pub concert_id: Uuid,
    pub status: SeatStatus,
    pub reservation_id: Option<Uuid>,
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// For a practice run's seat: when a real fan first held it (epoch ms).
    pub claimed_at_ms: Option<i64>,
}

impl SeatState {
    /// The status at `now`: a hold whose time has passed leaves the seat AVAILABLE, whether or
    /// not the sweeper has run.
    pub fn status(&self, now: DateTime<Utc>) -> SeatStatus {
        match (self.status, self.hold_expires_at) {
            (SeatStatus::Held, Some(until)) if now >= until => SeatStatus::Available,
            (SeatStatus::Held, None) => SeatStatus::Available,
            (status, _) => status,
        }
    }
}

/// A concert as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Concert {
    pub concert_id: Uuid,
    pub title: String,
    pub artist: String,
    pub venue: String,
    pub category: String,
    pub description: String,
    pub image_url: Option<String>,
    pub booking_opens_at: DateTime<Utc>,
    pub booking_closes_at: DateTime<Utc>,
    /// A randomised pre-queue: those who enter the queue before `booking_opens_at` are ordered
    /// at random among themselves at the opening, ahead of everyone who enters after it.
    #[serde(default)]
    pub prequeue: bool,
    /// For a concert imported from a ticket sale page: the page's (normalised) address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// For an imported concert: the booking-page layout to practise on (see the importer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_code: Option<String>,
    /// Shown through `status` only; stored only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    pub created_at: DateTime<Utc>,
    /// Seats one person may hold and own for one date.
    #[serde(default = "default_ticket_limit")]
    pub ticket_limit: u32,
    /// What cancelling a booking costs, by timing.
    #[serde(default)]
    pub cancellation_fees: CancellationPolicy,
    /// Set for a practice run's own concert: its crowd, venue and steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice: Option<crate::practice::PracticeSetup>,
}

fn default_ticket_limit() -> u32 {
    DEFAULT_TICKET_LIMIT
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConcertStatus {
    Scheduled,
    BookingOpen,
    BookingClosed,
    Cancelled,
}

impl Concert {
    /// The status is never stored: it follows from the booking window and the time.
    pub fn status(&self, now: DateTime<Utc>) -> ConcertStatus {
        if self.cancelled {
            ConcertStatus::Cancelled
        } else if now < self.booking_opens_at {
            ConcertStatus::Scheduled
        } else if now < self.booking_closes_at {
            ConcertStatus::BookingOpen
        } else {
            ConcertStatus::BookingClosed
        }
    }

    pub fn view(&self, now: DateTime<Utc>) -> ConcertView<'_> {
        ConcertView {
            concert: self,
            status: self.status(now),
        }
    }
}

/// A concert as the API shows it: its fields plus the derived status.
#[derive(Serialize)]
pub struct ConcertView<'a> {
    #[serde(flatten)]
    concert: &'a Concert,
    status: ConcertStatus,
}

/// One date of a concert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub schedule_id: Uuid,
    pub concert_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub total_seats: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, 10, 0, 0).unwrap()
    }

    fn concert_body(seat_map: Option<SeatMap>, price: Option<i64>) -> NewConcert {
        NewConcert {
            title: "Winter Live".into(),
            artist: "IU".into(),
            venue: "Olympic Hall".into(),
            category: "K-POP".into(),
            description: String::new(),
            image_url: None,
            booking_opens_at: at(1),
            booking_closes_at: at(20),
            prequeue: false,
            schedules: vec![NewSchedule { starts_at: at(24) }],
            seat_map,
            price,
            ticket_limit: None,
            cancellation_fees: None,
        }
    }

    fn field_of(result: Result<Vec<Seat>>) -> String {
        match result {
            Err(DomainError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn when_no_seat_map_should_make_fifty_seats_at_the_price() {
        let seats = concert_body(None, Some(110_000)).validate().unwrap();
        assert_eq!(seats.len(), 50);
        assert_eq!(
            seats.iter().map(|s| s.seat_no).collect::<Vec<_>>(),
            (1..=50).collect::<Vec<_>>()
        );
        assert!(seats.iter().all(|s| s.price == 110_000));
        assert_eq!(seats[49].row, 5);
    }

    #[test]
    fn when_no_seat_map_and_no_price_should_ask_for_price() {
        assert_eq!(field_of(concert_body(None, None).validate()), "price");
    }

    #[test]
    fn when_seat_map_given_should_number_seats_across_sections() {
        let map = SeatMap {
            sections: vec![
                Section {
                    name: "Floor".into(),
                    grade: "VIP".into(),
                    price: 200_000,
                    rows: 2,
                    seats_per_row: 3,
                },
                Section {
                    name: "Balcony".into(),
                    grade: "R".into(),
                    price: 90_000,
                    rows: 1,
                    seats_per_row: 4,
                },
            ],
        };
        let seats = concert_body(Some(map), None).validate().unwrap();
        assert_eq!(seats.len(), 10);
        assert_eq!(seats[5].seat_no, 6);
        assert_eq!((seats[5].section.as_str(), seats[5].row), ("Floor", 2));
        assert_eq!(seats[6].section, "Balcony");
        assert_eq!(seats[6].price, 90_000);
        assert_eq!(seats[9].seat_no, 10);
    }

    #[test]
    fn when_seat_map_is_too_big_should_refuse() {
        let map = SeatMap {
            sections: vec![Section {
                name: "Stadium".into(),
                grade: "R".into(),
                price: 1,
                rows: 200,
                seats_per_row: 200,
            }],
        };
        assert_eq!(
            field_of(concert_body(Some(map), None).validate()),
            "seat_map"
        );
    }

    #[test]
    fn when_window_is_backwards_or_schedule_early_should_name_field() {
        let mut body = concert_body(None, Some(1));
        body.booking_closes_at = body.booking_opens_at;
        assert_eq!(field_of(body.validate()), "booking_closes_at");
        let mut body = concert_body(None, Some(1));
        body.schedules[0].starts_at = at(1) - Duration::days(1);
        assert_eq!(field_of(body.validate()), "schedules[0].starts_at");
        let mut body = concert_body(None, Some(1));
        body.schedules.clear();
        assert_eq!(field_of(body.validate()), "schedules");
    }

    #[test]
    fn when_a_time_is_outside_the_years_clients_can_read_should_refuse() {
        let mut body = concert_body(None, Some(1000));
        body.booking_opens_at = "0000-01-01T00:30:00+01:00".parse().unwrap();
        assert_eq!(field_of(body.validate()), "booking_opens_at");
    }

    #[test]
    fn when_price_is_negative_should_refuse() {
        assert_eq!(field_of(concert_body(None, Some(-1)).validate()), "price");
    }

    #[test]
    fn status_should_follow_the_booking_window() {
        let concert = Concert {
            concert_id: Uuid::now_v7(),
            title: "t".into(),
            artist: "a".into(),
            venue: "v".into(),
            category: "c".into(),
            description: String::new(),
            image_url: None,
            booking_opens_at: at(1),
            booking_closes_at: at(20),
            prequeue: false,
            source_url: None,
            template_code: None,
            cancelled: false,
            created_at: at(1),
            ticket_limit: 4,
            cancellation_fees: CancellationPolicy::default(),
            practice: None,
        };
        assert_eq!(
            concert.status(at(1) - Duration::seconds(1)),
            ConcertStatus::Scheduled
        );
        assert_eq!(concert.status(at(1)), ConcertStatus::BookingOpen);
        assert_eq!(concert.status(at(20)), ConcertStatus::BookingClosed);
        let cancelled = Concert {
            cancelled: true,
            ..concert
        };
        assert_eq!(cancelled.status(at(5)), ConcertStatus::Cancelled);
        let view = serde_json::to_value(cancelled.view(at(5))).unwrap();
        assert_eq!(view["status"], "CANCELLED");
        assert_eq!(view["title"], "t");
    }
}
