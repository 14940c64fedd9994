//! The waiting queue: entering, polling, leaving, admission, and the check every booking
//! endpoint makes.

use crate::auth::{Principal, ISSUER};
use crate::catalog::ConcertStatus;
use crate::entry_queue::Entrant;
use crate::error::{DomainError, Result};
use crate::ids::{new_id, parse_id};
use crate::queue::{
    estimated_wait_seconds, position, QueueClaims, QueueCounter, QueueToken, StoredStatus,
    TokenStatus, QUEUE_AUDIENCE,
};
use crate::runtime::Services;
use crate::store::{Activation, Admission, AdmitConflict, MAX_ACTIVATIONS_PER_WRITE};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The body of `POST /queue/tokens`.
#[derive(Debug, Deserialize)]
pub struct EnterQueue {
    pub concert_id: String,
}

/// A place in line as the client is shown it.
pub struct Place {
    /// The signed queue token (the `X-Queue-Token` header of later requests).
    pub queue_token: String,
    pub token: QueueToken,
    pub status: TokenStatus,
    pub position: u64,
    /// True when this call created the place; false when it returned the caller's existing one.
    pub created: bool,
}

/// `GET /queue/tokens/current`.
pub struct QueueView {
    pub token_id: Uuid,
    pub concert_id: Uuid,
    pub status: TokenStatus,
    pub position: u64,
    pub estimated_wait_seconds: u64,
    pub active_until: Option<DateTime<Utc>>,
}

/// What one admitter step did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AdmitReport {
    pub admitted: usize,
    /// Entrants passed over because they had left, lapsed or been replaced.
    pub passed_over: usize,
    /// Entrants handed back because their concert had no free slot.
    pub deferred: usize,
}

/// An admitted caller, as proven by their queue token.
pub struct Admitted {
    pub claims: QueueClaims,
}

/// Bounds on one admitter step: rounds, and receive calls (10 messages each) per round.
const MAX_ROUNDS_PER_STEP: usize = 20;
const MAX_RECEIVES_PER_ROUND: usize = 50;
const QUEUE_TOKEN_HEADER_MISSING: &str = "an X-Queue-Token header is required";

impl Services {
    /// Takes a place in a concert's line, or returns the caller's live place if they have one.
    pub async fn enter_queue(&self, principal: &Principal, body: EnterQueue) -> Result<Place> {
        let concert_id = parse_id(&body.concert_id)
            .ok_or_else(|| DomainError::validation("concert_id", "must be a concert id"))?;
        // The concert, the caller's token and the line's counter: one read.
        let snapshot = self
            .store
            .queue_snapshot(concert_id, principal.user_id, true, None)
            .await?;
        let concert = snapshot.concert.ok_or(DomainError::NotFound("concert"))?;
        let now = self.clock.now();
        if concert.status(now) != ConcertStatus::BookingOpen {
            return Err(DomainError::BookingClosed("the concert is not on sale"));
        }
        let (existing, counter) = (snapshot.token, snapshot.counter);
        if let Some(token) = existing.filter(|token| token.is_alive(now)) {
            if token.status(now) == TokenStatus::Waiting {
                // Sent again in case the first send was lost (a crash between writing the
                // token and sending). SQS drops it as a duplicate within five minutes of the
                // first; otherwise the admitter passes over whichever copy comes second.
                self.entry_queue.send(&entrant_of(&token)).await?;
            }
            return self.place(token, &counter, now, false);
        }

        let counter = self.store.next_queue_number(concert_id).await?;
        let token = QueueToken {
            token_id: new_id(),
            user_id: principal.user_id,
            concert_id,
            number: counter.last_number,
            status: StoredStatus::Waiting,
            issued_at: now,
            expires_at: now + Duration::seconds(self.config.queue_wait_ttl_seconds),
            active_until: None,
        };
        if !self.store.put_queue_token(&token, now).await? {
            // The same user entered at the same moment and won; give them that place. The
            // number taken here stays unused, which only makes positions behind it one too
            // pessimistic until the admitter passes it.
            let (existing, counter) = self
                .store
                .queue_state(concert_id, principal.user_id)
                .await?;
            let token = existing.ok_or_else(|| DomainError::internal("queue token vanished"))?;
            return self.place(token, &counter, now, false);
        }
        if let Err(err) = self.entry_queue.send(&entrant_of(&token)).await {
            // Without its message the token would wait forever: end it, so that trying again
            // gives a fresh place instead of this dead one.
            let _ = self
                .store
                .end_queue_token(concert_id, principal.user_id, token.token_id)
                .await;
            return Err(err);
        }
        self.place(token, &counter, now, true)
    }

    fn place(
        &self,
        token: QueueToken,
        counter: &QueueCounter,
        now: DateTime<Utc>,
        created: bool,
    ) -> Result<Place> {
        let status = token.status(now);
        Ok(Place {
            queue_token: self.sign_queue_token(&token)?,
            position: match status {
                TokenStatus::Waiting => position(token.number, counter.admitted_up_to),
                _ => 0,
            },
            status,
            token,
            created,
        })
    }

    /// The JWT of a token. Its claims come from the stored token alone, so signing it again
    /// gives the same string: re-entering returns the very token the client already has.
    fn sign_queue_token(&self, token: &QueueToken) -> Result<String> {
        self.tokens.sign(&QueueClaims {
            sub: token.user_id,
            cid: token.concert_id,
            tid: token.token_id,
            num: token.number,
            iat: token.issued_at.timestamp(),
            exp: token.expires_at.timestamp() + self.config.queue_active_ttl_seconds,
            iss: ISSUER.to_owned(),
            aud: QUEUE_AUDIENCE.to_owned(),
        })
    }

    /// Verifies an `X-Queue-Token` header: signed by us, for the caller. `Ok(Err(claims))`
    /// when it is genuine but past its `exp`.
    fn queue_claims(
        &self,
        principal: &Principal,
        header: Option<&str>,
    ) -> Result<std::result::Result<QueueClaims, QueueClaims>> {
        let raw = header
            .map(str::trim)
            .filter(|raw| !raw.is_empty())
            .ok_or(DomainError::InvalidQueueToken(QUEUE_TOKEN_HEADER_MISSING))?;
        let claims: QueueClaims = self
            .tokens
            .decode(raw, QUEUE_AUDIENCE)
            .map_err(|_| DomainError::InvalidQueueToken("the queue token is invalid"))?;
        let claims = if claims.exp > self.clock.now().timestamp() {
            Ok(claims)
        } else {
            Err(claims)
        };
        let user = match &claims {
            Ok(claims) | Err(claims) => claims.sub,
        };
        if user != principal.user_id {
            return Err(DomainError::InvalidQueueToken(
                "the queue token belongs to another user",
            ));
        }
        Ok(claims)
    }

    /// `GET /queue/tokens/current`: where the caller stands.
    pub async fn queue_status(
        &self,
        principal: &Principal,
        header: Option<&str>,
    ) -> Result<QueueView> {
        let claims = match self.queue_claims(principal, header)? {
            Ok(claims) | Err(claims) => claims,
        };
        let (token, counter) = self.store.queue_state(claims.cid, claims.sub).await?;
        let now = self.clock.now();
        let token = token.filter(|token| token.token_id == claims.tid);
        let status = token
            .as_ref()
            .map_or(TokenStatus::Expired, |token| token.status(now));
        let position = match status {
            TokenStatus::Waiting => position(claims.num, counter.admitted_up_to),
            _ => 0,
        };
        Ok(QueueView {
            token_id: claims.tid,
            concert_id: claims.cid,
            status,
            position,
            estimated_wait_seconds: match status {
                TokenStatus::Waiting => estimated_wait_seconds(
                    position,
                    &counter.history,
                    now,
                    self.config.queue_max_active,
                    self.config.queue_active_ttl_seconds,
                ),
                _ => 0,
            },
            active_until: match status {
                TokenStatus::Active => token.and_then(|token| token.active_until),
                _ => None,
            },
        })
    }

    /// `DELETE /queue/tokens/current`: gives the place up (and an active slot, at once).
    pub async fn leave_queue(&self, principal: &Principal, header: Option<&str>) -> Result<()> {
        let claims = match self.queue_claims(principal, header)? {
            Ok(claims) | Err(claims) => claims,
        };
        if self
            .store
            .end_queue_token(claims.cid, claims.sub, claims.tid)
            .await?
        {
            Ok(())
        } else {
            Err(DomainError::QueueTokenExpired(
                "the queue token was replaced by a newer one",
            ))
        }
    }

    /// The check of every booking endpoint: the caller holds an ACTIVE queue token for
    /// `concert_id`. Endpoints that write repeat the ACTIVE condition inside their own
    /// transaction; this read gives the precise error.
    pub async fn require_admitted(
        &self,
        principal: &Principal,
        header: Option<&str>,
        concert_id: Uuid,
    ) -> Result<Admitted> {
        let claims = self.admission_claims(principal, header)?;
        if claims.cid != concert_id {
            return Err(DomainError::InvalidQueueToken(
                "the queue token is for another concert",
            ));
        }
        let (token, counter) = self.store.queue_state(claims.cid, claims.sub).await?;
        self.check_admitted(claims, token, &counter)
    }

    /// The queue token's claims for a booking endpoint: genuine, the caller's, not past `exp`.
    pub fn admission_claims(
        &self,
        principal: &Principal,
        header: Option<&str>,
    ) -> Result<QueueClaims> {
        self.queue_claims(principal, header)?
            .map_err(|_| DomainError::QueueTokenExpired("the queue token has expired"))
    }

    /// Judges a token's stored state for a booking endpoint.
    pub fn check_admitted(
        &self,
        claims: QueueClaims,
        token: Option<QueueToken>,
        counter: &QueueCounter,
    ) -> Result<Admitted> {
        let now = self.clock.now();
        match token.filter(|token| token.token_id == claims.tid) {
            None => Err(DomainError::QueueTokenExpired(
                "the queue token was replaced or has ended",
            )),
            Some(token) => match token.status(now) {
                TokenStatus::Active => Ok(Admitted { claims }),
                TokenStatus::Waiting => Err(DomainError::QueueNotAdmitted {
                    position: position(token.number, counter.admitted_up_to),
                }),
                TokenStatus::Expired => Err(DomainError::QueueTokenExpired(
                    "the queue token has expired or was used",
                )),
            },
        }
    }

    /// One admission step: takes entrants off the FIFO queue and activates them, in number
    /// order, while their concert has free slots. Safe to run concurrently with itself (every
    /// counter write is conditional on the version read).
    ///
    /// A step works in rounds. Each round first gathers every message it can see (SQS shows a
    /// concert's line a head at a time; the local emulator may show all of it, and out of
    /// order after hand-backs), then admits each concert's entrants sorted by number, deletes
    /// the handled messages and hands the rest back until the next step. Deleting unblocks the
    /// concert's group, so the next round sees its next entrants; a round that handles nothing
    /// ends the step.
    pub async fn admit_step(&self) -> Result<AdmitReport> {
        let mut report = AdmitReport::default();
        for _ in 0..MAX_ROUNDS_PER_STEP {
            let mut received = Vec::new();
            for _ in 0..MAX_RECEIVES_PER_ROUND {
                let batch = self.entry_queue.receive().await?;
                if batch.is_empty() {
                    break;
                }
                received.extend(batch);
            }
            if received.is_empty() {
                break;
            }
            let mut by_concert: BTreeMap<Uuid, Vec<(Entrant, String)>> = BTreeMap::new();
            let mut unreadable = Vec::new();
            for message in received {
                match message.entrant {
                    Some(entrant) => by_concert
                        .entry(entrant.concert_id)
                        .or_default()
                        .push((entrant, message.receipt)),
                    None => unreadable.push(message.receipt),
                }
            }
            if !unreadable.is_empty() {
                tracing::warn!(
                    count = unreadable.len(),
                    "deleting unreadable queue messages"
                );
                self.entry_queue.delete(&unreadable).await?;
            }
            let mut progress = false;
            for (concert_id, mut entrants) in by_concert {
                entrants.sort_by_key(|(entrant, _)| entrant.number);
                let outcome = self.admit_concert(concert_id, entrants).await?;
                progress |= !outcome.done.is_empty();
                report.admitted += outcome.admitted;
                report.passed_over += outcome.passed_over;
                report.deferred += outcome.deferred.len();
                self.entry_queue.delete(&outcome.done).await?;
                // Handed back until the next step (ADMIT_HAND_BACK_SECONDS): the full concert's
                // group stays blocked behind them, in order, while other concerts move, and
                // each waiting message is received about once a step.
                for receipt in &outcome.deferred {
                    self.entry_queue
                        .hand_back(receipt, self.config.admit_hand_back_seconds as i32)
                        .await?;
                }
            }
            if !progress {
                break;
            }
        }
        if report.admitted > 0 || report.passed_over > 0 {
            crate::metrics::count("Admissions", report.admitted as u64);
            tracing::info!(
                admitted = report.admitted,
                passed_over = report.passed_over,
                deferred = report.deferred,
                "admission step"
            );
        }
        Ok(report)
    }

    /// Admits one concert's entrants (in number order) into its free slots, in writes of at
    /// most [`MAX_ACTIVATIONS_PER_WRITE`] activations, until the entrants or the slots run out.
    async fn admit_concert(
        &self,
        concert_id: Uuid,
        entrants: Vec<(Entrant, String)>,
    ) -> Result<ConcertOutcome> {
        let mut outcome = ConcertOutcome::default();
        // Entrants admitted or passed over so far, by index into `entrants`.
        let mut handled = vec![false; entrants.len()];
        // Entrants known not to be waiting any more.
        let mut not_waiting: Vec<usize> = Vec::new();
        loop {
            let now = self.clock.now();
            // The counter first, then the active list: an admitter that writes in between
            // bumps the version this write is conditional on, so a stale list never counts.
            let counter = self.store.queue_counter(concert_id).await?;
            let active = self.store.live_active(concert_id, now).await?;
            let free = (self.config.queue_max_active as usize).saturating_sub(active.len());
            let NextWrite {
                chosen,
                passing,
                admitted_up_to,
            } = next_write(
                &entrants,
                &handled,
                &not_waiting,
                free,
                counter.admitted_up_to,
            );
            let activations: Vec<Activation> = chosen
                .iter()
                .map(|&index| Activation {
                    user_id: entrants[index].0.user_id,
                    token_id: entrants[index].0.token_id,
                })
                .collect();
            if activations.is_empty() && admitted_up_to == counter.admitted_up_to {
                // Nothing to write: those passed over are already behind admitted_up_to.
                for index in passing {
                    handled[index] = true;
                    outcome.passed_over += 1;
                }
                break;
            }
            let admission = Admission {
                concert_id,
                read: &counter,
                admitted_up_to,
                activations: &activations,
                active_until: now + Duration::seconds(self.config.queue_active_ttl_seconds),
                now,
            };
            match self.store.admit(admission).await? {
                Ok(()) => {
                    for &index in chosen.iter().chain(&passing) {
                        handled[index] = true;
                    }
                    outcome.admitted += chosen.len();
                    outcome.passed_over += passing.len();
                    // Go on while the per-write limit, not the free slots, stopped this write.
                    let waiting = handled.iter().any(|done| !done);
                    if !waiting || activations.len() >= free {
                        break;
                    }
                }
                Err(AdmitConflict::CounterChanged) => continue,
                Err(AdmitConflict::NotWaiting(failed)) => {
                    not_waiting.extend(failed.into_iter().map(|index| chosen[index]));
                }
            }
        }
        for ((_, receipt), done) in entrants.into_iter().zip(handled) {
            if done {
                outcome.done.push(receipt);
            } else {
                // No free slot: this entrant and everyone after them wait for a later step.
                outcome.deferred.push(receipt);
            }
        }
        Ok(outcome)
    }

    /// The live active slots of a concert, for tests and dashboards.
    pub async fn active_count(&self, concert_id: Uuid) -> Result<usize> {
        let active = self.store.live_active(concert_id, self.clock.now()).await?;
        Ok(active.len())
    }
}

/// What one admitter write takes from a concert's entrants (in number order): indexes to
/// activate and to pass over, and how far admission then reaches.
#[derive(Debug, PartialEq)]
struct NextWrite {
    chosen: Vec<usize>,
    passing: Vec<usize>,
    admitted_up_to: u64,
}

/// The entrants not yet `handled` that the next write activates (at most `free`, and at most
/// [`MAX_ACTIVATIONS_PER_WRITE`]) or passes over (those known `not_waiting`).
fn next_write(
    entrants: &[(Entrant, String)],
    handled: &[bool],
    not_waiting: &[usize],
    free: usize,
    admitted_up_to: u64,
) -> NextWrite {
    let mut next = NextWrite {
        chosen: Vec::new(),
        passing: Vec::new(),
        admitted_up_to,
    };
    for (index, (entrant, _)) in entrants.iter().enumerate() {
        if handled[index] {
            continue;
        }
        // A message seen before (redelivered after its admission) needs no shortcut: its
        // activation fails the WAITING condition and it is passed over here.
        if not_waiting.contains(&index) {
            next.admitted_up_to = next.admitted_up_to.max(entrant.number);
            next.passing.push(index);
        } else if next.chosen.len() < free.min(MAX_ACTIVATIONS_PER_WRITE) {
            next.admitted_up_to = next.admitted_up_to.max(entrant.number);
            next.chosen.push(index);
        }
    }
    next
}

fn entrant_of(token: &QueueToken) -> Entrant {
    Entrant {
        concert_id: token.concert_id,
        user_id: token.user_id,
        token_id: token.token_id,
        number: token.number,
    }
}

#[derive(Default)]
struct ConcertOutcome {
    admitted: usize,
    passed_over: usize,
    /// Receipts of messages that are handled (admitted or passed over): delete them.
    done: Vec<String>,
    /// Receipts to hand back: no free slot yet.
    deferred: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(count: u64) -> Vec<(Entrant, String)> {
        (1..=count)
            .map(|number| {
                let entrant = Entrant {
                    concert_id: Uuid::nil(),
                    user_id: Uuid::from_u128(u128::from(number)),
                    token_id: Uuid::from_u128(u128::from(number) + 1000),
                    number,
                };
                (entrant, format!("receipt-{number}"))
            })
            .collect()
    }

    #[test]
    fn when_more_slots_than_one_write_holds_should_take_the_first_49_then_the_rest() {
        let entrants = line(110);
        let mut handled = vec![false; 110];
        let first = next_write(&entrants, &handled, &[], 120, 0);
        assert_eq!(
            first.chosen,
            (0..MAX_ACTIVATIONS_PER_WRITE).collect::<Vec<_>>()
        );
        assert_eq!(first.admitted_up_to, 49);
        for &index in &first.chosen {
            handled[index] = true;
        }
        // The next write goes on in number order from where the first stopped.
        let second = next_write(&entrants, &handled, &[], 120 - 49, 49);
        assert_eq!(second.chosen, (49..98).collect::<Vec<_>>());
        assert_eq!(second.admitted_up_to, 98);
    }

    #[test]
    fn when_few_slots_should_take_only_those_and_pass_over_the_departed() {
        let entrants = line(10);
        let handled = vec![false; 10];
        // Entrant 2 (index 1) left; three slots are free.
        let next = next_write(&entrants, &handled, &[1], 3, 0);
        assert_eq!(next.chosen, [0, 2, 3]);
        assert_eq!(next.passing, [1]);
        assert_eq!(next.admitted_up_to, 4);
    }
}
