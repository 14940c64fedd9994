//! Waiting lists for sold-out dates: joining, where one stands, leaving, and the offering job
//! that gives seats that came free to the first in line (see `crate::waitlist`).

use crate::auth::Principal;
use crate::catalog::SeatStatus;
use crate::error::{DomainError, Result};
use crate::events::DomainEvent;
use crate::ids::{new_id, parse_id};
use crate::queue::{QueueToken, StoredStatus, TokenStatus};
use crate::reservations::{Reservation, ReservationStatus, ReservedSeat};
use crate::runtime::Services;
use crate::store::{keys, Offer, TicketsWrite};
use crate::waitlist::{check_limit, pick_seats, JoinWaitlist, WaitlistEntry, WaitlistStatus};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Entries of one line the offering job looks at per run.
const LINE_PAGE: i32 = 100;

/// What became of one offer.
enum Offered {
    Made,
    /// The fan's ticket limit leaves no room for the request now: passed over for now.
    OverLimit,
    /// Something changed since the read (a seat taken, the entry or the fan's tickets or token
    /// written): this run stops offering seats of the date, so nobody behind goes first; the
    /// next run reads again.
    Changed,
}

/// A fan's entry as the API shows it.
pub struct WaitlistView {
    pub entry: WaitlistEntry,
    pub status: WaitlistStatus,
    /// Entries ahead, while waiting.
    pub ahead: Option<u64>,
    /// While offered: the held reservation, and the queue token to pay it with.
    pub offer: Option<(Reservation, String)>,
}

impl Services {
    /// `POST /schedules/{schedule_id}/waitlist` (Bearer + ACTIVE queue token for the concert).
    pub async fn join_waitlist(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_schedule_id: &str,
        body: JoinWaitlist,
    ) -> Result<(WaitlistView, bool)> {
        body.validate()?;
        let schedule_id = parse_id(raw_schedule_id).ok_or(DomainError::NotFound("schedule"))?;
        let claims = self.admission_claims(principal, queue_token)?;
        let snapshot = self
            .store
            .queue_snapshot(
                claims.cid,
                principal.user_id,
                claims.shd,
                true,
                Some(schedule_id),
                Some(schedule_id),
            )
            .await?;
        let tickets = snapshot.tickets;
        self.check_admitted(claims.clone(), snapshot.token, &snapshot.progress)?;
        let (Some(concert), Some(schedule)) = (snapshot.concert, snapshot.schedule) else {
            return Err(DomainError::NotFound("schedule"));
        };
        let now = self.clock.now();
        if concert.status(now) != crate::catalog::ConcertStatus::BookingOpen
            || schedule.starts_at <= now
        {
            return Err(DomainError::BookingClosed("this date is not on sale"));
        }
        let taken = tickets.map_or(0, |tickets| tickets.taken(now));
        check_limit(body.count, concert.ticket_limit, taken)?;
        let entry = WaitlistEntry {
            entry_id: new_id(),
            user_id: principal.user_id,
            concert_id: concert.concert_id,
            schedule_id,
            grade: body.grade,
            count: body.count,
            status: WaitlistStatus::Waiting,
            joined_at: now,
            reservation_id: None,
            offered_until: None,
        };
        if !self.store.join_waitlist(&entry, schedule.starts_at).await? {
            // On the line already: that place is the answer.
            return Ok((
                self.waitlist_status(principal, raw_schedule_id).await?,
                false,
            ));
        }
        self.events
            .publish(vec![DomainEvent::waitlist("WaitlistJoined", &entry)])
            .await;
        let view = WaitlistView {
            ahead: Some(self.store.waitlist_ahead(&entry).await?),
            status: entry.status,
            entry,
            offer: None,
        };
        Ok((view, true))
    }

    /// `GET /schedules/{schedule_id}/waitlist`: the caller's entry.
    pub async fn waitlist_status(
        &self,
        principal: &Principal,
        raw_schedule_id: &str,
    ) -> Result<WaitlistView> {
        let schedule_id = parse_id(raw_schedule_id).ok_or(DomainError::NotFound("schedule"))?;
        let entry = self
            .store
            .waitlist_entry(principal.user_id, schedule_id)
            .await?
            .ok_or(DomainError::NotFound("waiting-list entry"))?;
        let now = self.clock.now();
        let reservation = match entry.reservation_id {
            Some(id) => self.store.reservation(principal.user_id, id).await?,
            None => None,
        };
        let taken = reservation
            .as_ref()
            .is_some_and(|r| r.status(now) == ReservationStatus::Confirmed);
        let status = entry.status(now, taken);
        let ahead = match status {
            WaitlistStatus::Waiting => Some(self.store.waitlist_ahead(&entry).await?),
            _ => None,
        };
        let offer = match (status, reservation) {
            (WaitlistStatus::Offered, Some(reservation)) => {
                let token = self
                    .store
                    .queue_token(entry.concert_id, principal.user_id)
                    .await?
                    .filter(|token| token.status(now) == TokenStatus::Active);
                match token {
                    Some(token) => Some((reservation, self.sign_queue_token(&token)?)),
                    None => None,
                }
            }
            _ => None,
        };
        Ok(WaitlistView {
            entry,
            status,
            ahead,
            offer,
        })
    }

    /// `DELETE /schedules/{schedule_id}/waitlist`: leaves the line (an offer already made
    /// stays the fan's until it is paid, released or runs out).
    pub async fn leave_waitlist(&self, principal: &Principal, raw_schedule_id: &str) -> Result<()> {
        let schedule_id = parse_id(raw_schedule_id).ok_or(DomainError::NotFound("schedule"))?;
        let Some(entry) = self
            .store
            .waitlist_entry(principal.user_id, schedule_id)
            .await?
        else {
            return Err(DomainError::NotFound("waiting-list entry"));
        };
        if entry.status.is_final() {
            // Left already (a repeated request), or done with.
            return Ok(());
        }
        self.store
            .end_waitlist_entry(
                &entry,
                &[WaitlistStatus::Waiting, WaitlistStatus::Offered],
                WaitlistStatus::Left,
            )
            .await?;
        Ok(())
    }

    /// The offering job: for every date with a line, settles offers whose time is up (paid:
    /// TAKEN; not: PASSED, their seats free again) and offers free seats to the first in line
    /// whose request they fit. Safe to run twice at once: every offer is one transaction on
    /// the entry's and the seats' state. Returns the offers made.
    pub async fn offer_to_waitlists(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut offered = 0;
        for (schedule_id, concert_id, starts_at) in self.store.waitlist_dates().await? {
            if starts_at <= now {
                continue;
            }
            offered += self.offer_for_date(schedule_id, concert_id, now).await?;
        }
        if offered > 0 {
            crate::metrics::count("WaitlistOffers", offered as u64);
        }
        Ok(offered)
    }

    async fn offer_for_date(
        &self,
        schedule_id: Uuid,
        concert_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let line = self.store.waitline(schedule_id, LINE_PAGE).await?;
        if line.is_empty() {
            return Ok(0);
        }
        let mut waiting = Vec::new();
        for entry in line {
            match entry.status {
                WaitlistStatus::Waiting => waiting.push(entry),
                WaitlistStatus::Offered => self.settle_offer(&entry, now).await?,
                _ => {}
            }
        }
        if waiting.is_empty() {
            return Ok(0);
        }
        let concert = self.concert(&concert_id.to_string()).await?;
        let schedule = self
            .store
            .concert_with_schedules(concert_id)
            .await?
            .and_then(|(_, schedules)| {
                schedules
                    .into_iter()
                    .find(|schedule| schedule.schedule_id == schedule_id)
            })
            .ok_or(DomainError::NotFound("schedule"))?;
        let seats = self
            .store
            .seats_in_blocks(schedule_id, 0..keys::seat_blocks(schedule.total_seats))
            .await?;
        let mut free: Vec<(u32, String)> = seats
            .iter()
            .filter(|seat| seat.status(now) == SeatStatus::Available)
            .map(|seat| (seat.seat.seat_no, seat.seat.grade.clone()))
            .collect();
        // First come, first offered: once a request cannot be met, nobody behind it who could
        // take the same seats goes first (any grade stops everyone; a grade stops its own).
        let mut stopped_any = false;
        let mut stopped: Vec<String> = Vec::new();
        let mut made = 0;
        for entry in waiting {
            let blocked = stopped_any
                || match &entry.grade {
                    None => !stopped.is_empty(),
                    Some(grade) => stopped.contains(grade),
                };
            if blocked {
                continue;
            }
            let Some(seat_nos) = pick_seats(&free, &entry) else {
                match &entry.grade {
                    None => stopped_any = true,
                    Some(grade) => stopped.push(grade.clone()),
                }
                continue;
            };
            match self
                .offer(&entry, &concert, &schedule, &seats, &seat_nos, now)
                .await?
            {
                Offered::Made => {
                    made += 1;
                    free.retain(|(seat_no, _)| !seat_nos.contains(seat_no));
                }
                Offered::OverLimit => {}
                Offered::Changed => break,
            }
        }
        Ok(made)
    }

    /// Settles an offer whose time is up: TAKEN if it was paid, PASSED otherwise.
    async fn settle_offer(&self, entry: &WaitlistEntry, now: DateTime<Utc>) -> Result<()> {
        let Some(reservation_id) = entry.reservation_id else {
            return Ok(());
        };
        let reservation = self
            .store
            .reservation(entry.user_id, reservation_id)
            .await?;
        let status = reservation.as_ref().map(|r| r.status(now));
        let to = match status {
            Some(ReservationStatus::Confirmed) | Some(ReservationStatus::Cancelled) => {
                WaitlistStatus::Taken
            }
            Some(ReservationStatus::Held) => return Ok(()),
            _ => WaitlistStatus::Passed,
        };
        if self
            .store
            .end_waitlist_entry(entry, &[WaitlistStatus::Offered], to)
            .await?
            && to == WaitlistStatus::Passed
        {
            self.events
                .publish(vec![DomainEvent::waitlist("WaitlistOfferPassed", entry)])
                .await;
        }
        Ok(())
    }

    /// One offer: the seats held for the fan for `HOLD_TTL_SECONDS`, with a queue token to pay
    /// them.
    async fn offer(
        &self,
        entry: &WaitlistEntry,
        concert: &crate::catalog::Concert,
        schedule: &crate::catalog::Schedule,
        seats: &[crate::catalog::SeatState],
        seat_nos: &[u32],
        now: DateTime<Utc>,
    ) -> Result<Offered> {
        let (tickets, token) = tokio::try_join!(
            self.store.tickets(entry.user_id, entry.schedule_id),
            self.store.queue_token(entry.concert_id, entry.user_id),
        )?;
        let mut tickets = tickets.unwrap_or_default();
        tickets.settle(now);
        let reservation_id = new_id();
        let expires_at = now + Duration::seconds(self.config.hold_ttl_seconds);
        let Some(slots) = tickets.claim(
            reservation_id,
            expires_at,
            true,
            entry.count,
            concert.ticket_limit,
            now,
        ) else {
            return Ok(Offered::OverLimit);
        };
        let offer_token = QueueToken {
            token_id: new_id(),
            user_id: entry.user_id,
            concert_id: entry.concert_id,
            number: 0,
            shard: 0,
            prequeue_rank: None,
            opens_at: None,
            status: StoredStatus::Active,
            issued_at: now,
            expires_at,
            active_until: Some(expires_at),
            entered_at_ms: now.timestamp_millis(),
            practice: None,
        };
        let reserved: Vec<ReservedSeat> = seats
            .iter()
            .filter(|seat| seat_nos.contains(&seat.seat.seat_no))
            .map(|seat| ReservedSeat {
                seat_no: seat.seat.seat_no,
                section: seat.seat.section.clone(),
                row: seat.seat.row,
                grade: seat.seat.grade.clone(),
                price: seat.seat.price,
            })
            .collect();
        let reservation = Reservation {
            reservation_id,
            user_id: entry.user_id,
            schedule_id: entry.schedule_id,
            concert_id: entry.concert_id,
            concert_title: concert.title.clone(),
            starts_at: schedule.starts_at,
            amount: reserved.iter().map(|seat| seat.price).sum(),
            seats: reserved,
            status: ReservationStatus::Held,
            created_at: now,
            expires_at,
            payment_id: None,
            paid_at: None,
            cancelled_at: None,
            refund: None,
            queue_token_id: Some(offer_token.token_id),
            limit_slots: slots,
            cancellation_fee: None,
        };
        let write = TicketsWrite {
            tickets,
            keep_until: schedule.starts_at,
        };
        let offer = Offer {
            entry,
            reservation: &reservation,
            tickets: &write,
            token: &offer_token,
            replaces_token: token.map(|token| token.token_id),
        };
        match self.store.make_offer(offer, now).await? {
            Ok(()) => {
                self.events
                    .publish(vec![
                        DomainEvent::waitlist("WaitlistOffered", entry),
                        DomainEvent::about("HoldCreated", &reservation, None),
                    ])
                    .await;
                Ok(Offered::Made)
            }
            Err(_) => Ok(Offered::Changed),
        }
    }
}
