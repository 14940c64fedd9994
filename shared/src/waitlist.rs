//! The waiting list of a sold-out date (예매대기): a fan asks for `count` seats of a grade (or of
//! any grade); seats that come free (cancelled, released, run out) are offered to the first in
//! line whose request they fit, held for them for a while, then passed on if not paid.

use crate::error::{DomainError, Result};
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The body of `POST /schedules/{schedule_id}/waitlist`.
#[derive(Debug, Deserialize)]
pub struct JoinWaitlist {
    /// The grade wanted; absent (or null): any grade.
    #[serde(default)]
    pub grade: Option<String>,
    pub count: u32,
}

impl JoinWaitlist {
    pub fn validate(&self) -> Result<()> {
        validate::range(
            "count",
            self.count.into(),
            1,
            crate::reservations::MAX_SEATS_PER_HOLD as i64,
        )?;
        if let Some(grade) = &self.grade {
            validate::text("grade", grade, 1, 20)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaitlistStatus {
    /// In line.
    Waiting,
    /// Seats are held for the fan until `offered_until`.
    Offered,
    /// The fan paid for the offered seats.
    Taken,
    /// The offer ran out unpaid (or was released): the seats went to the next in line.
    Passed,
    /// The fan left the line.
    Left,
}

impl WaitlistStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "WAITING",
            Self::Offered => "OFFERED",
            Self::Taken => "TAKEN",
            Self::Passed => "PASSED",
            Self::Left => "LEFT",
        }
    }

    /// The entry has ended: a new one may replace it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Taken | Self::Passed | Self::Left)
    }
}

/// A fan's place on a date's waiting list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    pub entry_id: Uuid,
    pub user_id: Uuid,
    pub concert_id: Uuid,
    pub schedule_id: Uuid,
    /// `None`: any grade.
    #[serde(default)]
    pub grade: Option<String>,
    pub count: u32,
    pub status: WaitlistStatus,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub joined_at: DateTime<Utc>,
    /// The offered hold, once offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<Uuid>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "chrono::serde::ts_milliseconds_option"
    )]
    pub offered_until: Option<DateTime<Utc>>,
}

impl WaitlistEntry {
    /// The status at `now`: an offer whose time has passed has been passed on, unless it was
    /// paid (which `taken` says).
    pub fn status(&self, now: DateTime<Utc>, taken: bool) -> WaitlistStatus {
        match self.status {
            WaitlistStatus::Offered if taken => WaitlistStatus::Taken,
            WaitlistStatus::Offered if self.offered_until.is_some_and(|until| now >= until) => {
                WaitlistStatus::Passed
            }
            status => status,
        }
    }

    /// Whether seats of `grade` fit this request.
    pub fn wants(&self, grade: &str) -> bool {
        self.grade.as_deref().is_none_or(|wanted| wanted == grade)
    }
}

/// `count` free seats for a request: a run of consecutive seat numbers if there is one, else
/// the first ones. `free` is (seat number, grade), sorted by seat number.
pub fn pick_seats(free: &[(u32, String)], entry: &WaitlistEntry) -> Option<Vec<u32>> {
    let fitting: Vec<u32> = free
        .iter()
        .filter(|(_, grade)| entry.wants(grade))
        .map(|(seat_no, _)| *seat_no)
        .collect();
    let count = entry.count as usize;
    if fitting.len() < count {
        return None;
    }
    let run = fitting
        .windows(count)
        .find(|window| window[count - 1] - window[0] == count as u32 - 1);
    Some(match run {
        Some(run) => run.to_vec(),
        None => fitting[..count].to_vec(),
    })
}

/// Checks that a waiting-list request fits the fan's ticket limit now.
pub fn check_limit(count: u32, limit: u32, taken: u32) -> Result<()> {
    if taken + count > limit {
        return Err(DomainError::TicketLimitReached {
            limit,
            taken,
            requested: count,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(grade: Option<&str>, count: u32) -> WaitlistEntry {
        WaitlistEntry {
            entry_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            concert_id: Uuid::now_v7(),
            schedule_id: Uuid::now_v7(),
            grade: grade.map(str::to_owned),
            count,
            status: WaitlistStatus::Waiting,
            joined_at: Utc::now(),
            reservation_id: None,
            offered_until: None,
        }
    }

    fn free(seats: &[(u32, &str)]) -> Vec<(u32, String)> {
        seats.iter().map(|(n, g)| (*n, (*g).to_owned())).collect()
    }

    #[test]
    fn a_request_should_get_seats_side_by_side_of_its_grade_when_it_can() {
        let seats = free(&[(3, "R"), (7, "VIP"), (8, "VIP"), (10, "VIP"), (11, "VIP")]);
        assert_eq!(pick_seats(&seats, &entry(Some("VIP"), 2)), Some(vec![7, 8]));
        assert_eq!(
            pick_seats(&seats, &entry(Some("VIP"), 3)),
            Some(vec![7, 8, 10])
        );
        assert_eq!(pick_seats(&seats, &entry(Some("R"), 2)), None);
        assert_eq!(pick_seats(&seats, &entry(None, 2)), Some(vec![7, 8]));
    }

    #[test]
    fn an_offer_should_pass_on_once_its_time_is_up_unless_paid() {
        let now = Utc::now();
        let mut offered = entry(None, 1);
        offered.status = WaitlistStatus::Offered;
        offered.offered_until = Some(now);
        assert_eq!(offered.status(now, false), WaitlistStatus::Passed);
        assert_eq!(offered.status(now, true), WaitlistStatus::Taken);
        offered.offered_until = Some(now + chrono::Duration::minutes(1));
        assert_eq!(offered.status(now, false), WaitlistStatus::Offered);
    }
}
