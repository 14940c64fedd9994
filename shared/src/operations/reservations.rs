//! Seat maps, holds, and the owner's view and release of a reservation; the hold sweeper.

use super::REPEAT_WINDOW_SECONDS;
use crate::auth::Principal;
use crate::catalog::{ConcertStatus, SeatState, SeatStatus};
use crate::error::{DomainError, Result};
use crate::events::DomainEvent;
use crate::ids::{new_id, parse_id};
use crate::metrics;
use crate::reservations::{NewHold, Reservation, ReservationStatus, ReservedSeat};
use crate::runtime::Services;
use crate::store::{keys, HoldConflict, TicketsWrite, HOLD_SHARDS};
use chrono::Duration;
use uuid::Uuid;

/// Reads and transactions a hold tries before it answers `SERVICE_BUSY`.
const HOLD_ATTEMPTS: u32 = 3;

/// Expired holds one sweeper run tidies at most per index shard (more wait for the next run).
const SWEEP_PAGE: i32 = 100;
const SWEEP_PAGES_PER_SHARD: usize = 10;

/// A date's seats as an admitted fan sees them, and how many more the fan may take.
pub struct SeatMap {
    pub schedule_id: Uuid,
    pub seats: Vec<SeatState>,
    /// The concert's ticket limit per person for the date.
    pub limit: u32,
    /// Seats the caller holds (in time) or booked for the date.
    pub taken: u32,
    /// The date's concert.
    pub concert: Option<crate::catalog::Concert>,
}

/// A practice run whose site asks for the security letters lets a fan see and hold seats only
/// once they typed them.
fn check_letters(
    concert: &crate::catalog::Concert,
    token: Option<&crate::queue::QueueToken>,
) -> Result<()> {
    let wants_letters = concert.practice.as_ref().is_some_and(|setup| setup.captcha);
    let typed = token
        .and_then(|token| token.practice.as_ref())
        .is_some_and(|place| place.captcha_passed);
    if wants_letters && !typed {
        return Err(DomainError::Forbidden(
            "type the security letters (보안문자) first",
        ));
    }
    Ok(())
}

impl Services {
    /// `GET /schedules/{schedule_id}/seats` for a caller admitted to the schedule's concert:
    /// every seat, or one zone's (`zone`: a block of 500 seat numbers from 0).
    pub async fn seat_map(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_schedule_id: &str,
        zone: Option<&str>,
    ) -> Result<SeatMap> {
        let claims = self.admission_claims(principal, queue_token)?;
        let schedule_id = parse_id(raw_schedule_id).ok_or(DomainError::NotFound("schedule"))?;
        let zone = zone
            .map(|raw| {
                raw.parse::<u32>()
                    .ok()
                    .filter(|zone| *zone < 100)
                    .ok_or_else(|| {
                        DomainError::validation("zone", "must be a zone number, 0 to 99")
                    })
            })
            .transpose()?;
        // The token, its shard's progress, and the concert and the schedule unless this process
        // has them cached, in one read; the first block of seats asked for in another,
        // together; a venue larger than one block reads the rest after.
        let cached_concert = self.catalog.concert(claims.cid);
        let cached_schedule = self.catalog.schedule(claims.cid, schedule_id);
        let first_block = zone.unwrap_or(0);
        let (snapshot, mut seats) = tokio::try_join!(
            self.store.queue_snapshot(
                claims.cid,
                principal.user_id,
                claims.shd,
                cached_concert.is_none(),
                cached_schedule.is_none().then_some(schedule_id),
                Some(schedule_id),
            ),
            self.store
                .seats_in_blocks(schedule_id, first_block..first_block + 1),
        )?;
        if seats
            .first()
            .is_some_and(|first| first.concert_id != claims.cid)
        {
            return Err(DomainError::InvalidQueueToken(
                "the queue token is for another concert",
            ));
        }
        let token = self
            .practice_admission(
                snapshot.token,
                cached_concert.as_ref().or(snapshot.concert.as_ref()),
            )
            .await?;
        self.check_admitted(claims.clone(), token.clone(), &snapshot.progress)?;
        if let (None, Some(concert)) = (&cached_concert, &snapshot.concert) {
            self.catalog.keep_concert(concert);
        }
        if let (None, Some(schedule)) = (&cached_schedule, &snapshot.schedule) {
            self.catalog.keep_schedule(schedule);
        }
        let concert = cached_concert.or(snapshot.concert);
        let Some(schedule) = cached_schedule.or(snapshot.schedule) else {
            // Not a date of the concert the queue token admits to.
            return Err(if seats.is_empty() {
                DomainError::NotFound("schedule")
            } else {
                DomainError::InvalidQueueToken("the queue token is for another concert")
            });
        };
        let now = self.clock.now();
        let Some(concert) = concert.filter(|c| c.status(now) == ConcertStatus::BookingOpen) else {
            return Err(DomainError::BookingClosed("the concert is not on sale"));
        };
        check_letters(&concert, token.as_ref())?;
        let all = keys::seat_blocks(schedule.total_seats);
        let blocks = match zone {
            Some(zone) if zone >= all => return Err(DomainError::NotFound("zone")),
            Some(zone) => zone..zone + 1,
            None => {
                if all > 1 {
                    seats.extend(self.store.seats_in_blocks(schedule_id, 1..all).await?);
                }
                0..all
            }
        };
        if concert.practice.is_some() {
            seats = self.practice_seats(&concert, schedule_id, blocks, seats);
        } else if seats.is_empty() {
            return Err(DomainError::NotFound("schedule"));
        }
        Ok(SeatMap {
            schedule_id,
            seats,
            limit: concert.ticket_limit,
            taken: snapshot.tickets.map_or(0, |tickets| tickets.taken(now)),
            concert: Some(concert),
        })
    }

    /// `GET /schedules/{schedule_id}/zones`: a date's zones (blocks of 500 seat numbers) with
    /// their seats left, for a map that opens on the overview.
    pub async fn seat_zones(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_schedule_id: &str,
    ) -> Result<(Uuid, Vec<super::ZoneView>)> {
        let map = self
            .seat_map(principal, queue_token, raw_schedule_id, None)
            .await?;
        let concert = map.concert.as_ref().expect("set by seat_map");
        if concert.practice.is_some() {
            return Ok((map.schedule_id, self.practice_zones(concert, &map.seats)));
        }
        let now = self.clock.now();
        let mut zones: Vec<super::ZoneView> = Vec::new();
        for seat in &map.seats {
            let zone = (seat.seat.seat_no - 1) / keys::SEATS_PER_PARTITION;
            if zones.last().is_none_or(|last| last.zone != zone) {
                zones.push(super::ZoneView {
                    zone,
                    name: seat.seat.section.clone(),
                    grade: seat.seat.grade.clone(),
                    price: seat.seat.price,
                    total: 0,
                    available: 0,
                });
            }
            let last = zones.last_mut().expect("pushed above");
            last.total += 1;
            if seat.status(now) == SeatStatus::Available {
                last.available += 1;
            }
        }
        Ok((map.schedule_id, zones))
    }

    /// `POST /reservations`: holds 1..4 seats together for `HOLD_TTL_SECONDS`, all or none.
    ///
    /// A fresh read decides: seats it shows taken are refused at once (DynamoDB bills a failed
    /// conditional write, so sure losers are turned away by a read). A transaction that then
    /// loses a race, or meets a busy item, is judged again from a new read, so a 409 always
    /// rests on a read that shows the seats taken. Seats the read shows held by the caller's
    /// own hold of exactly these seats, made with the same queue token moments ago, are the
    /// caller's earlier attempt of this very request (its answer was lost, or the client sent
    /// it twice): that hold is the answer, not a conflict.
    pub async fn hold(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        body: NewHold,
    ) -> Result<Reservation> {
        let (schedule_id, seat_nos) = body.validate()?;
        let claims = self.admission_claims(principal, queue_token)?;
        for attempt in 0..HOLD_ATTEMPTS {
            // The concert and the date from this process's cache if it has both (they never
            // change after creation), so that an on-sale's holds do not all read one concert
            // partition.
            let cached = (
                self.catalog.concert(claims.cid),
                self.catalog.schedule(claims.cid, schedule_id),
            );
            let with_catalog = cached.0.is_none() || cached.1.is_none();
            let context = self
                .store
                .hold_context(
                    claims.cid,
                    schedule_id,
                    &seat_nos,
                    principal.user_id,
                    claims.shd,
                    with_catalog,
                )
                .await?;
            let token_id = claims.tid;
            let token = self
                .practice_admission(
                    context.token,
                    cached.0.as_ref().or(context.concert.as_ref()),
                )
                .await?;
            self.check_admitted(claims.clone(), token.clone(), &context.progress)?;
            let (concert, schedule) = if with_catalog {
                (context.concert, context.schedule)
            } else {
                cached
            };
            let (Some(concert), Some(schedule)) = (concert, schedule) else {
                // The schedule is not one of the concert the queue token admits to.
                return Err(DomainError::NotFound("schedule"));
            };
            if with_catalog {
                self.catalog.keep_concert(&concert);
                self.catalog.keep_schedule(&schedule);
            }
            let now = self.clock.now();
            if concert.status(now) != ConcertStatus::BookingOpen || schedule.starts_at <= now {
                return Err(DomainError::BookingClosed("this date is not on sale"));
            }
            check_letters(&concert, token.as_ref())?;
            let mut seats_read = context.seats;
            if concert.practice.is_some() {
                // A practice date's seats: the layout's, with the crowd laid over them.
                seats_read = seat_nos
                    .iter()
                    .map(|&seat_no| {
                        self.practice_seat_state(&concert, schedule_id, seat_no, &seats_read)
                            .ok_or(DomainError::NotFound("seat"))
                    })
                    .collect::<Result<_>>()?;
            }
            if seats_read.len() != seat_nos.len() {
                return Err(DomainError::NotFound("seat"));
            }
            let taken: Vec<u32> = seats_read
                .iter()
                .filter(|seat| seat.status(now) != SeatStatus::Available)
                .map(|seat| seat.seat.seat_no)
                .collect();
            if !taken.is_empty() {
                if let Some(own) = self
                    .own_hold(principal, token_id, schedule_id, &seats_read)
                    .await?
                {
                    return Ok(own);
                }
                metrics::count("SeatConflicts", 1);
                return Err(DomainError::SeatUnavailable { seat_nos: taken });
            }
            // The rules: no hold while the caller cools down from letting too many go, and the
            // caller's tickets for this date within the concert's limit.
            let mut tickets = context.tickets.unwrap_or_default();
            tickets.settle(now);
            if let Some(wait) = self.config.parking.wait(&tickets.drops, now) {
                metrics::count("HoldCooldowns", 1);
                return Err(DomainError::HoldCooldown {
                    retry_after_seconds: wait,
                });
            }
            let reservation_id = new_id();
            let expires_at = now + Duration::seconds(self.config.hold_ttl_seconds);
            let count = seat_nos.len() as u32;
            let taken = tickets.taken(now);
            let Some(slots) = tickets.claim(
                reservation_id,
                expires_at,
                false,
                count,
                concert.ticket_limit,
                now,
            ) else {
                metrics::count("TicketLimitRefusals", 1);
                return Err(DomainError::TicketLimitReached {
                    limit: concert.ticket_limit,
                    taken,
                    requested: count,
                });
            };
            let seats: Vec<ReservedSeat> = seats_read
                .into_iter()
                .map(|state| ReservedSeat {
                    seat_no: state.seat.seat_no,
                    section: state.seat.section,
                    row: state.seat.row,
                    grade: state.seat.grade,
                    price: state.seat.price,
                })
                .collect();
            let reservation = Reservation {
                reservation_id,
                user_id: principal.user_id,
                schedule_id,
                concert_id: concert.concert_id,
                concert_title: concert.title,
                starts_at: schedule.starts_at,
                amount: seats.iter().map(|seat| seat.price).sum(),
                seats,
                status: ReservationStatus::Held,
                created_at: now,
                expires_at,
                payment_id: None,
                paid_at: None,
                cancelled_at: None,
                refund: None,
                queue_token_id: Some(token_id),
                limit_slots: slots,
                cancellation_fee: None,
            };
            let write = TicketsWrite {
                tickets,
                keep_until: schedule.starts_at,
            };
            match self
                .store
                .create_hold(
                    &reservation,
                    token_id,
                    &write,
                    now,
                    concert.practice.is_some(),
                )
                .await?
            {
                Ok(()) => {
                    metrics::count("HoldsCreated", 1);
                    self.events
                        .publish(vec![DomainEvent::about("HoldCreated", &reservation, None)])
                        .await;
                    return Ok(reservation);
                }
                // Someone's hold landed between the read and the write, or an item was busy:
                // the next read says which, and what to answer.
                Err(HoldConflict::Seats(_) | HoldConflict::Busy) => {
                    let jitter = (Uuid::new_v4().as_u128() % 20) as u64;
                    tokio::time::sleep(std::time::Duration::from_millis((10 << attempt) + jitter))
                        .await;
                }
                Err(HoldConflict::QueueToken) => {
                    return Err(DomainError::QueueTokenExpired(
                        "the queue token is no longer active",
                    ))
                }
            }
        }
        Err(DomainError::busy())
    }

    /// The caller's own live hold of exactly `seats` (as read: all held by one reservation),
    /// made with queue token `token_id` within [`REPEAT_WINDOW_SECONDS`]: the earlier attempt
    /// of the request being made again. One read of the caller's reservation, and only when
    /// every seat asked for is held by the same one.
    async fn own_hold(
        &self,
        principal: &Principal,
        token_id: Uuid,
        schedule_id: Uuid,
        seats: &[SeatState],
    ) -> Result<Option<Reservation>> {
        let now = self.clock.now();
        let holders: std::collections::BTreeSet<Option<Uuid>> = seats
            .iter()
            .map(|seat| {
                (seat.status(now) == SeatStatus::Held)
                    .then_some(seat.reservation_id)
                    .flatten()
            })
            .collect();
        let [Some(reservation_id)] = holders.into_iter().collect::<Vec<_>>()[..] else {
            return Ok(None);
        };
        let Some(reservation) = self
            .store
            .reservation(principal.user_id, reservation_id)
            .await?
        else {
            // Someone else's.
            return Ok(None);
        };
        let mut asked: Vec<u32> = seats.iter().map(|seat| seat.seat.seat_no).collect();
        asked.sort_unstable();
        let mut held = reservation.seat_nos();
        held.sort_unstable();
        let same_request = reservation.status(now) == ReservationStatus::Held
            && reservation.schedule_id == schedule_id
            && held == asked
            && reservation.queue_token_id == Some(token_id)
            && now - reservation.created_at <= Duration::seconds(REPEAT_WINDOW_SECONDS);
        Ok(same_request.then_some(reservation))
    }

    /// One of the caller's reservations; anyone else's is `NOT_FOUND`.
    pub async fn my_reservation(&self, principal: &Principal, raw_id: &str) -> Result<Reservation> {
        let reservation_id = parse_id(raw_id).ok_or(DomainError::NotFound("reservation"))?;
        self.store
            .reservation(principal.user_id, reservation_id)
            .await?
            .ok_or(DomainError::NotFound("reservation"))
    }

    /// `DELETE /reservations/{id}`: gives a live hold's seats back at once. Releasing a hold
    /// that is already released or expired changes nothing and succeeds (a retried DELETE).
    pub async fn release(&self, principal: &Principal, raw_id: &str) -> Result<()> {
        let reservation = self.my_reservation(principal, raw_id).await?;
        let now = self.clock.now();
        match reservation.status(now) {
            ReservationStatus::Held => {
                if self.store.release_hold(&reservation, now).await? {
                    metrics::count("HoldsReleased", 1);
                    self.events
                        .publish(vec![DomainEvent::about("HoldReleased", &reservation, None)])
                        .await;
                    return Ok(());
                }
                // It stopped being a live hold between the read and the write: judge again.
                let reservation = self.my_reservation(principal, raw_id).await?;
                match reservation.status(self.clock.now()) {
                    ReservationStatus::Released | ReservationStatus::Expired => Ok(()),
                    _ => Err(DomainError::ReservationNotPayable),
                }
            }
            ReservationStatus::Released | ReservationStatus::Expired => Ok(()),
            ReservationStatus::Confirmed | ReservationStatus::Cancelled => {
                Err(DomainError::ReservationNotPayable)
            }
        }
    }

    /// The hold sweeper: marks expired holds EXPIRED and gives their seats back in storage.
    /// Nothing depends on it for correctness; safe to run twice at once and to race payments.
    pub async fn sweep_expired_holds(&self) -> Result<usize> {
        let now = self.clock.now();
        // The shards are independent: sweep them together.
        let expired: Vec<DomainEvent> = futures::future::try_join_all(
            (0..HOLD_SHARDS).map(|shard| self.sweep_shard(shard, now)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        let count = expired.len();
        if count > 0 {
            tracing::info!(count, "expired holds tidied");
            metrics::count("HoldsExpired", count as u64);
            self.events.publish(expired).await;
        }
        Ok(count)
    }

    /// Expires the holds of one index shard whose time has passed; returns their events.
    async fn sweep_shard(
        &self,
        shard: u128,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<DomainEvent>> {
        let mut expired = Vec::new();
        for _ in 0..SWEEP_PAGES_PER_SHARD {
            let holds = self.store.expired_holds(shard, now, SWEEP_PAGE).await?;
            let page_was_full = holds.len() == SWEEP_PAGE as usize;
            for reservation in holds {
                if self.store.expire_hold(&reservation, now).await? {
                    expired.push(DomainEvent::about("HoldExpired", &reservation, None));
                }
            }
            if !page_was_full {
                break;
            }
        }
        Ok(expired)
    }
}
