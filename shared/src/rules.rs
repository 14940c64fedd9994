//! The rules large ticket sellers apply on top of booking: a ticket limit per person per date,
//! cancellation fees by timing, and a cooldown for whoever keeps taking seats and letting them
//! go (seat parking). Plain functions over plain types; the store keeps their state on one item
//! per user and date, written in the same transaction as the seats.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The ticket limit when a concert sets none: four per person per date (1인 4매).
pub const DEFAULT_TICKET_LIMIT: u32 = 4;
/// The largest limit a concert may set.
pub const MAX_TICKET_LIMIT: u32 = 10;

/// The drops kept per user and date: more than any parking rule counts.
pub const MAX_DROPS_KEPT: usize = 20;

/// One of a user's places under a date's ticket limit: taken by a reservation, until its hold
/// runs out or for good once booked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitSlot {
    pub reservation_id: Uuid,
    /// When the hold runs out (epoch ms); `None` once booked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// Held for the user by a waiting-list offer: letting it run out is not seat parking.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub offer: bool,
}

impl LimitSlot {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.until_ms
            .is_none_or(|until| until > now.timestamp_millis())
    }
}

/// A user's tickets for one date, as the rules see them: the slots (index → slot) and when
/// they lately let holds go.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tickets {
    /// Indexed by slot number, `None` where free.
    pub slots: Vec<Option<LimitSlot>>,
    /// When holds were released or ran out unpaid, epoch ms, oldest first (the last
    /// [`MAX_DROPS_KEPT`]).
    pub drops: Vec<i64>,
    /// The stored item's version (0: none yet); a hold writes the item on condition of it.
    pub version: u64,
}

impl Tickets {
    /// Seats held (in time) or booked.
    pub fn taken(&self, now: DateTime<Utc>) -> u32 {
        self.slots
            .iter()
            .flatten()
            .filter(|slot| slot.is_live(now))
            .count() as u32
    }

    /// Frees the slots whose hold ran out unpaid, recording each such hold once as a drop
    /// (unless it was a waiting-list offer).
    pub fn settle(&mut self, now: DateTime<Utc>) {
        let mut lapsed: Vec<(Uuid, i64)> = Vec::new();
        for place in &mut self.slots {
            if let Some(slot) = place.as_ref().filter(|slot| !slot.is_live(now)) {
                if let (false, Some(until)) = (slot.offer, slot.until_ms) {
                    if !lapsed.iter().any(|(id, _)| *id == slot.reservation_id) {
                        lapsed.push((slot.reservation_id, until));
                    }
                }
                *place = None;
            }
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        self.drops
            .extend(lapsed.into_iter().map(|(_, until)| until));
        self.drops.sort_unstable();
        let excess = self.drops.len().saturating_sub(MAX_DROPS_KEPT);
        self.drops.drain(..excess);
    }

    /// Takes `count` free slots for a hold of `reservation_id` until `until`, within `limit`;
    /// `None` (and nothing changed) if the limit does not allow it. Settle first.
    pub fn claim(
        &mut self,
        reservation_id: Uuid,
        until: DateTime<Utc>,
        offer: bool,
        count: u32,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Option<Vec<u8>> {
        if self.taken(now) + count > limit {
            return None;
        }
        let free: Vec<usize> = (0..limit as usize)
            .filter(|&index| self.slots.get(index).is_none_or(Option::is_none))
            .take(count as usize)
            .collect();
        if free.len() < count as usize {
            return None;
        }
        for &index in &free {
            if self.slots.len() <= index {
                self.slots.resize(index + 1, None);
            }
            self.slots[index] = Some(LimitSlot {
                reservation_id,
                until_ms: Some(until.timestamp_millis()),
                offer,
            });
        }
        Some(free.into_iter().map(|index| index as u8).collect())
    }
}

/// The seat-parking rule: a user who let `drops` holds of one date go (released, or ran out
/// unpaid) within `window` must wait `cooldown` after the last of them before holding again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParkingRule {
    pub drops: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

impl ParkingRule {
    /// Seconds left to wait before the next hold, if the rule applies now; `drops` are when
    /// holds were let go (epoch ms, settled: see [`Tickets::settle`]).
    pub fn wait(&self, drops: &[i64], now: DateTime<Utc>) -> Option<u32> {
        if self.drops == 0 {
            return None;
        }
        let now_ms = now.timestamp_millis();
        let from = now_ms - self.window.num_milliseconds();
        let mut recent: Vec<i64> = drops
            .iter()
            .copied()
            .filter(|&at| at > from && at <= now_ms)
            .collect();
        if (recent.len() as u32) < self.drops {
            return None;
        }
        recent.sort_unstable();
        let last = *recent.last()?;
        let until = last + self.cooldown.num_milliseconds();
        (until > now_ms).then(|| ((until - now_ms + 999) / 1000) as u32)
    }
}

/// Korea Standard Time, in which sellers count "the day of booking" and "days before the show".
pub fn korea() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("UTC+9 is a valid offset")
}

fn korean_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&korea()).date_naive()
}

/// A step of a fee schedule: from `days_before` days before the show (counted in Korean
/// calendar days, 0 being the show's day) the fee is `percent` of the price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeStep {
    pub days_before: u32,
    pub percent: u32,
}

/// When a confirmed booking may be cancelled and what it costs (a concert setting).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationPolicy {
    /// Free within this many days after the day of booking (the day itself is always free)...
    pub free_days_after_booking: u32,
    /// ...while the show is at least this many days away.
    pub free_until_days_before: u32,
    /// Outside the free period and before the first step: this much per seat, in won.
    pub booking_fee_per_seat: i64,
    /// The fee by how near the show is; the step with the fewest `days_before` not below the
    /// days left applies.
    pub steps: Vec<FeeStep>,
    /// No cancellation when the show is this many days away or fewer (0: on its day).
    pub closed_days_before: u32,
}

impl Default for CancellationPolicy {
    /// The usual Korean schedule (the Fair Trade Commission's standard for performances):
    /// free on the day of booking and within 7 days after it while the show is 10 or more days
    /// away; otherwise the booking fee (2,000 won a ticket) until 10 days before, 10% of the
    /// price 9 to 7 days before, 20% 6 to 3 days before, 30% 2 to 1 days before; none on the
    /// show's day.
    fn default() -> Self {
        Self {
            free_days_after_booking: 7,
            free_until_days_before: 10,
            booking_fee_per_seat: 2_000,
            steps: vec![
                FeeStep {
                    days_before: 9,
                    percent: 10,
                },
                FeeStep {
                    days_before: 6,
                    percent: 20,
                },
                FeeStep {
                    days_before: 2,
                    percent: 30,
                },
            ],
            closed_days_before: 0,
        }
    }
}

/// What cancelling would give back now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancellationTerms {
    /// It may be cancelled: `fee` is kept, `refund` goes back to the balance.
    Cancellable { refund: i64, fee: i64 },
    /// Too near the show.
    Closed,
}

impl CancellationPolicy {
    pub fn validate(&self) -> crate::Result<()> {
        use crate::DomainError;
        let field = |name: &str| format!("cancellation_fees.{name}");
        crate::validate::range(
            &field("booking_fee_per_seat"),
            self.booking_fee_per_seat,
            0,
            crate::catalog::MAX_SEAT_PRICE,
        )?;
        crate::validate::range(
            &field("free_days_after_booking"),
            self.free_days_after_booking.into(),
            0,
            365,
        )?;
        crate::validate::range(
            &field("free_until_days_before"),
            self.free_until_days_before.into(),
            0,
            365,
        )?;
        crate::validate::range(
            &field("closed_days_before"),
            self.closed_days_before.into(),
            0,
            365,
        )?;
        if self.steps.len() > 10 {
            return Err(DomainError::validation(field("steps"), "at most 10 steps"));
        }
        for (index, step) in self.steps.iter().enumerate() {
            crate::validate::range(
                &field(&format!("steps[{index}].percent")),
                step.percent.into(),
                0,
                100,
            )?;
            crate::validate::range(
                &field(&format!("steps[{index}].days_before")),
                step.days_before.into(),
                0,
                365,
            )?;
        }
        Ok(())
    }

    /// The terms of cancelling now a booking of `amount` for `seats` seats made at
    /// `booked_at` for a show at `show_at`.
    pub fn terms(
        &self,
        amount: i64,
        seats: u32,
        booked_at: DateTime<Utc>,
        show_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> CancellationTerms {
        let today = korean_date(now);
        let days_before = (korean_date(show_at) - today).num_days();
        if days_before <= i64::from(self.closed_days_before) {
            return CancellationTerms::Closed;
        }
        let since_booking = (today - korean_date(booked_at)).num_days();
        let free = since_booking <= 0
            || (since_booking <= i64::from(self.free_days_after_booking)
                && days_before >= i64::from(self.free_until_days_before));
        let fee = if free {
            0
        } else {
            match self
                .steps
                .iter()
                .filter(|step| i64::from(step.days_before) >= days_before)
                .min_by_key(|step| step.days_before)
            {
                Some(step) => amount * i64::from(step.percent) / 100,
                None => self.booking_fee_per_seat * i64::from(seats),
            }
        };
        let fee = fee.clamp(0, amount);
        CancellationTerms::Cancellable {
            refund: amount - fee,
            fee,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A moment in Korea time.
    fn kst(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        korea()
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn terms(booked: DateTime<Utc>, now: DateTime<Utc>) -> CancellationTerms {
        // Two seats of 50,000 won; the show on 30 June at 19:00 in Seoul.
        CancellationPolicy::default().terms(100_000, 2, booked, kst(2026, 6, 30, 19), now)
    }

    fn fee(booked: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
        match terms(booked, now) {
            CancellationTerms::Cancellable { fee, refund } => {
                assert_eq!(fee + refund, 100_000);
                fee
            }
            CancellationTerms::Closed => panic!("closed"),
        }
    }

    #[test]
    fn the_korean_schedule_should_charge_by_how_near_the_show_is() {
        let booked = kst(2026, 6, 1, 10);
        // The day of booking, and within 7 days while the show is 10 or more days away: free.
        assert_eq!(fee(booked, kst(2026, 6, 1, 23)), 0);
        assert_eq!(fee(booked, kst(2026, 6, 8, 12)), 0);
        // From the 8th day: the booking fee, 2,000 won a ticket.
        assert_eq!(fee(booked, kst(2026, 6, 9, 12)), 4_000);
        assert_eq!(fee(booked, kst(2026, 6, 20, 12)), 4_000);
        // 9 to 7 days before: 10%; 6 to 3: 20%; 2 to 1: 30%.
        assert_eq!(fee(booked, kst(2026, 6, 21, 12)), 10_000);
        assert_eq!(fee(booked, kst(2026, 6, 23, 12)), 10_000);
        assert_eq!(fee(booked, kst(2026, 6, 24, 12)), 20_000);
        assert_eq!(fee(booked, kst(2026, 6, 27, 12)), 20_000);
        assert_eq!(fee(booked, kst(2026, 6, 28, 0)), 30_000);
        assert_eq!(fee(booked, kst(2026, 6, 29, 23)), 30_000);
        // The show's day: no cancellation.
        assert_eq!(
            terms(booked, kst(2026, 6, 30, 9)),
            CancellationTerms::Closed
        );
    }

    #[test]
    fn a_booking_made_near_the_show_should_be_free_only_on_its_day() {
        let booked = kst(2026, 6, 25, 10);
        assert_eq!(fee(booked, kst(2026, 6, 25, 22)), 0);
        // The next day is within 7 days of booking, but the show is near: 20%.
        assert_eq!(fee(booked, kst(2026, 6, 26, 9)), 20_000);
    }

    #[test]
    fn days_should_be_counted_in_korea_time() {
        // 23:30 UTC on 20 June is 08:30 on 21 June in Seoul: 9 days before, 10%.
        let booked = kst(2026, 6, 1, 10);
        let now = Utc.with_ymd_and_hms(2026, 6, 20, 23, 30, 0).unwrap();
        assert_eq!(fee(booked, now), 10_000);
    }

    #[test]
    fn the_limit_should_count_live_holds_and_bookings_and_reuse_lapsed_slots() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let lapsed_at = now.timestamp_millis() - 1_000;
        let slot = |reservation_id: Uuid, until: Option<i64>| {
            Some(LimitSlot {
                reservation_id,
                until_ms: until,
                offer: false,
            })
        };
        let ran_out = Uuid::now_v7();
        let mut tickets = Tickets {
            slots: vec![
                slot(Uuid::now_v7(), None),                                  // booked
                slot(Uuid::now_v7(), Some(now.timestamp_millis() + 60_000)), // held
                slot(ran_out, Some(lapsed_at)), // a two-seat hold that ran out
                slot(ran_out, Some(lapsed_at)),
            ],
            drops: Vec::new(),
            version: 3,
        };
        assert_eq!(tickets.taken(now), 2);
        tickets.settle(now);
        assert_eq!(
            tickets.drops,
            vec![lapsed_at],
            "one drop per hold, not per seat"
        );
        assert_eq!(tickets.slots.len(), 2);
        let until = now + Duration::minutes(5);
        let before = tickets.clone();
        assert_eq!(
            tickets.claim(Uuid::now_v7(), until, false, 3, 4, now),
            None,
            "2 + 3 > 4"
        );
        assert_eq!(tickets, before, "a refused claim changes nothing");
        let mine = Uuid::now_v7();
        assert_eq!(
            tickets.claim(mine, until, false, 2, 4, now),
            Some(vec![2, 3])
        );
        assert_eq!(tickets.taken(now), 4);
        assert_eq!(tickets.claim(Uuid::now_v7(), until, false, 1, 4, now), None);
        // Settling again records nothing new: nothing else ran out.
        tickets.settle(now);
        assert_eq!(tickets.drops, vec![lapsed_at]);
    }

    #[test]
    fn a_lapsed_waiting_list_offer_should_not_count_as_a_drop() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let mut tickets = Tickets::default();
        let past = now - Duration::minutes(6);
        tickets
            .claim(
                Uuid::now_v7(),
                past + Duration::minutes(5),
                true,
                2,
                4,
                past,
            )
            .unwrap();
        tickets.settle(now);
        assert!(tickets.drops.is_empty());
        assert_eq!(tickets.taken(now), 0);
    }

    #[test]
    fn only_the_latest_drops_should_be_kept() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let mut tickets = Tickets {
            drops: (0..MAX_DROPS_KEPT as i64).collect(),
            ..Tickets::default()
        };
        let past = now - Duration::minutes(6);
        tickets
            .claim(
                Uuid::now_v7(),
                past + Duration::minutes(5),
                false,
                1,
                4,
                past,
            )
            .unwrap();
        tickets.settle(now);
        assert_eq!(tickets.drops.len(), MAX_DROPS_KEPT);
        assert_eq!(tickets.drops[0], 1, "the oldest went");
    }

    #[test]
    fn parking_should_wait_the_cooldown_after_the_last_of_enough_drops() {
        let rule = ParkingRule {
            drops: 3,
            window: Duration::minutes(10),
            cooldown: Duration::minutes(2),
        };
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let ago = |s: i64| now.timestamp_millis() - s * 1000;
        assert_eq!(rule.wait(&[ago(300), ago(200)], now), None);
        // A third, 30 s ago: 90 s left of the cooldown.
        assert_eq!(rule.wait(&[ago(300), ago(200), ago(30)], now), Some(90));
        // Drops older than the window do not count.
        assert_eq!(rule.wait(&[ago(900), ago(200), ago(30)], now), None);
        // Long enough after the last: free again.
        assert_eq!(rule.wait(&[ago(500), ago(400), ago(300)], now), None);
    }
}
