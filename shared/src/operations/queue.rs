//! The waiting queue: entering, polling, leaving, admission, and the check every booking
//! endpoint makes.

use crate::auth::{Principal, ISSUER};
use crate::catalog::ConcertStatus;
use crate::entry_queue::Entrant;
use crate::error::{DomainError, Result};
use crate::ids::{new_id, parse_id, random_below, random_u64};
use crate::queue::{
    estimated_wait_seconds, position_in_line, AdmissionHistory, QueueClaims, QueueToken,
    ShardProgress, StoredStatus, TokenStatus, QUEUE_AUDIENCE,
};
use crate::runtime::Services;
use crate::store::{
    max_activations_per_write, Activation, Admission, AdmissionState, AdmitConflict, PreEntrant,
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Entrants handed back because their concert had no free slot (or its pre-queue goes
    /// first).
    pub deferred: usize,
}

/// An admitted caller, as proven by their queue token.
pub struct Admitted {
    pub claims: QueueClaims,
}

/// Bounds on one admitter step: rounds, and receive calls (10 messages each) per round.
const MAX_ROUNDS_PER_STEP: usize = 20;
const MAX_RECEIVES_PER_ROUND: usize = 200;
/// Writes one concert's admission may try in a round before it leaves the rest for later.
const MAX_WRITES_PER_ROUND: usize = 100;
/// How long after a pre-queue's opening the admitter waits before it drains it. An early
/// entrant whose write completes later than this is moved to the line behind (see
/// `enter_queue`), so the drain never misses anyone.
const PREQUEUE_GRACE_MILLIS: i64 = 2_000;
const QUEUE_TOKEN_HEADER_MISSING: &str = "an X-Queue-Token header is required";

impl Services {
    /// Takes a place in a concert's line, or returns the caller's live place if they have one.
    ///
    /// The place is in one of the concert's entry shards, picked at random: its counter numbers
    /// the place and its message group carries it to the admitter. Before the opening of a
    /// concert with a pre-queue, the place is a random rank in the pre-queue instead.
    pub async fn enter_queue(&self, principal: &Principal, body: EnterQueue) -> Result<Place> {
        let concert_id = parse_id(&body.concert_id)
            .ok_or_else(|| DomainError::validation("concert_id", "must be a concert id"))?;
        let shard = random_below(self.config.queue_entry_shards);
        // The caller's token, the shard's progress and (unless this process has it cached) the
        // concert: one read.
        let cached = self.catalog.concert(concert_id);
        let snapshot = self
            .store
            .queue_snapshot(concert_id, principal.user_id, shard, cached.is_none(), None)
            .await?;
        let concert = match cached {
            Some(concert) => concert,
            None => {
                let concert = snapshot.concert.ok_or(DomainError::NotFound("concert"))?;
                self.catalog.keep_concert(&concert);
                concert
            }
        };
        let now = self.clock.now();
        let early = match concert.status(now) {
            ConcertStatus::BookingOpen => false,
            ConcertStatus::Scheduled if concert.prequeue => true,
            _ => return Err(DomainError::BookingClosed("the concert is not on sale")),
        };
        if let Some(token) = snapshot.token.filter(|token| token.is_alive(now)) {
            if token.status(now) == TokenStatus::Waiting && token.prequeue_rank.is_none() {
                // Sent again in case the first send was lost (a crash between writing the
                // token and sending). SQS drops it as a duplicate within five minutes of the
                // first; otherwise the admitter passes over whichever copy comes second.
                self.entry_queue.send(&entrant_of(&token)).await?;
            }
            let progress = if token.shard == shard {
                snapshot.progress
            } else {
                self.store
                    .queue_state(concert_id, principal.user_id, token.shard)
                    .await?
                    .1
            };
            return self.place(token, &progress, now, false);
        }

        let (number, prequeue_rank) = if early {
            self.store.count_prequeue_entrant(concert_id, shard).await?;
            (0, Some(random_u64()))
        } else {
            (self.store.next_queue_number(concert_id, shard).await?, None)
        };
        // An early entrant's wait starts at the opening.
        let waits_from = if early { concert.booking_opens_at } else { now };
        let token = QueueToken {
            token_id: new_id(),
            user_id: principal.user_id,
            concert_id,
            number,
            shard,
            prequeue_rank,
            opens_at: early.then_some(concert.booking_opens_at),
            status: StoredStatus::Waiting,
            issued_at: now,
            expires_at: waits_from + Duration::seconds(self.config.queue_wait_ttl_seconds),
            active_until: None,
        };
        if !self.store.put_queue_token(&token, now).await? {
            // The same user entered at the same moment and won; give them that place. The
            // number taken here stays unused, which only makes positions behind it one too
            // pessimistic until the admitter passes it.
            let (existing, progress) = self
                .store
                .queue_state(concert_id, principal.user_id, shard)
                .await?;
            let token = existing.ok_or_else(|| DomainError::internal("queue token vanished"))?;
            // The winner's shard may be another one: its progress gives the position.
            let progress = if token.shard == shard {
                progress
            } else {
                self.store
                    .queue_state(concert_id, principal.user_id, token.shard)
                    .await?
                    .1
            };
            return self.place(token, &progress, now, false);
        }
        if early {
            let grace = concert.booking_opens_at + Duration::milliseconds(PREQUEUE_GRACE_MILLIS);
            if self.clock.now() >= grace {
                // The write took so long that the admitter may already be draining the
                // pre-queue, and could miss it: give the place up and enter the line instead.
                self.store
                    .end_queue_token(concert_id, principal.user_id, token.token_id)
                    .await?;
                return Box::pin(self.enter_queue(principal, body)).await;
            }
        } else if let Err(err) = self.entry_queue.send(&entrant_of(&token)).await {
            // Without its message the token would wait forever: end it, so that trying again
            // gives a fresh place instead of this dead one.
            let _ = self
                .store
                .end_queue_token(concert_id, principal.user_id, token.token_id)
                .await;
            return Err(err);
        }
        self.place(token, &snapshot.progress, now, true)
    }

    fn place(
        &self,
        token: QueueToken,
        progress: &ShardProgress,
        now: DateTime<Utc>,
        created: bool,
    ) -> Result<Place> {
        let status = token.status(now);
        Ok(Place {
            queue_token: self.sign_queue_token(&token)?,
            position: match status {
                TokenStatus::Waiting => {
                    position_in_line(&token, progress, self.config.queue_entry_shards)
                }
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
            shd: token.shard,
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
        let (token, progress) = self
            .store
            .queue_state(claims.cid, claims.sub, claims.shd)
            .await?;
        let now = self.clock.now();
        let token = token.filter(|token| token.token_id == claims.tid);
        let status = token
            .as_ref()
            .map_or(TokenStatus::Expired, |token| token.status(now));
        let shards = self.config.queue_entry_shards;
        let position = match (&token, status) {
            (Some(token), TokenStatus::Waiting) => position_in_line(token, &progress, shards),
            _ => 0,
        };
        let estimated_wait_seconds = match (&token, status) {
            (Some(token), TokenStatus::Waiting) => {
                // The shard's admissions stand for the concert's: shards are filled evenly.
                let history = AdmissionHistory {
                    admitted_total: progress.history.admitted_total * u64::from(shards),
                    first_admitted_at: progress.history.first_admitted_at,
                };
                let until_opening = token
                    .opens_at
                    .map_or(0, |opens_at| (opens_at - now).num_seconds().max(0) as u64);
                until_opening
                    + estimated_wait_seconds(
                        position,
                        &history,
                        now,
                        self.config.queue_max_active,
                        self.config.queue_active_ttl_seconds,
                    )
            }
            _ => 0,
        };
        Ok(QueueView {
            token_id: claims.tid,
            concert_id: claims.cid,
            status,
            position,
            estimated_wait_seconds,
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
        let (token, progress) = self
            .store
            .queue_state(claims.cid, claims.sub, claims.shd)
            .await?;
        self.check_admitted(claims, token, &progress)
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
        progress: &ShardProgress,
    ) -> Result<Admitted> {
        let now = self.clock.now();
        match token.filter(|token| token.token_id == claims.tid) {
            None => Err(DomainError::QueueTokenExpired(
                "the queue token was replaced or has ended",
            )),
            Some(token) => match token.status(now) {
                TokenStatus::Active => Ok(Admitted { claims }),
                TokenStatus::Waiting => Err(DomainError::QueueNotAdmitted {
                    position: position_in_line(&token, progress, self.config.queue_entry_shards),
                }),
                TokenStatus::Expired => Err(DomainError::QueueTokenExpired(
                    "the queue token has expired or was used",
                )),
            },
        }
    }

    /// One admission step: activates waiting entrants in arrival order while their concert has
    /// free slots. Safe to run concurrently with itself (every write is conditional on the
    /// concert's admission version as read).
    ///
    /// Concerts whose randomised pre-queue has opened go first: their early entrants are
    /// admitted in rank order, and until the pre-queue is through, the entry queue's messages
    /// for those concerts wait.
    ///
    /// Then the entry queue, in rounds. SQS shows each message group (entry shard) from its
    /// head, and no more of a group while any of its messages is in flight. Each round receives
    /// every message it can see into a pool of messages held in flight, merges each concert's
    /// pool by arrival ([`in_arrival_order`]), admits those it may and deletes them. Messages
    /// not yet admissible stay in the pool, in flight, so their groups stay blocked and the next
    /// round sees more of exactly the groups that were drained: those whose newest message held
    /// the merge back. A full concert's messages are handed back until the next step. A round
    /// that neither receives nor admits anything ends the step, and what is left in the pool is
    /// handed back visible at once.
    pub async fn admit_step(&self) -> Result<AdmitReport> {
        let mut report = AdmitReport::default();
        let held = self.admit_prequeues(&mut report).await?;
        let hand_back_seconds = self.config.admit_hand_back_seconds as i32;
        // Received and not yet handled, by concert, held in flight across rounds.
        let mut pool: BTreeMap<Uuid, Vec<Arrival>> = BTreeMap::new();
        // Concerts found without a free slot: nothing more of theirs this step.
        let mut full: HashSet<Uuid> = HashSet::new();
        for _ in 0..MAX_ROUNDS_PER_STEP {
            // The shards' counters of the concerts already in the pool, read before receiving:
            // a shard whose every number is then in the pool has nothing unseen that arrived
            // before this read (see `complete_shards`).
            let read_at_ms = Utc::now().timestamp_millis();
            let in_pool: Vec<Uuid> = pool.keys().copied().collect();
            let states: HashMap<Uuid, AdmissionState> =
                futures::future::try_join_all(in_pool.iter().map(|&concert_id| async move {
                    let state = self
                        .store
                        .admission_state(concert_id, self.config.queue_entry_shards)
                        .await?;
                    Ok::<_, DomainError>((concert_id, state))
                }))
                .await?
                .into_iter()
                .collect();
            let mut received = Vec::new();
            let mut drained = false;
            for _ in 0..MAX_RECEIVES_PER_ROUND {
                let batch = self.entry_queue.receive().await?;
                if batch.is_empty() {
                    drained = true;
                    break;
                }
                received.extend(batch);
            }
            if !drained {
                // Some group may not have shown its head: those who arrived behind it can still
                // be admitted out of order. Not reached below ~2,000 groups in flight.
                tracing::warn!("the entry queue was not drained in one round");
            }
            // SQS stamps arrivals with the wall clock, so the settle time is measured on it
            // (not on the business clock, which tests may stop).
            let now_ms = Utc::now().timestamp_millis();
            let mut unreadable = Vec::new();
            let mut again = Vec::new();
            let mut new_messages = 0;
            for message in received {
                let Some(entrant) = message.entrant else {
                    unreadable.push(message.receipt);
                    continue;
                };
                if held.contains(&entrant.concert_id) {
                    // The concert's pre-queue goes first: these wait, in order, until it is
                    // through.
                    report.deferred += 1;
                    again.push(message.receipt);
                    continue;
                }
                if full.contains(&entrant.concert_id) {
                    // Handed back earlier in this step (and visible again at once locally).
                    again.push(message.receipt);
                    continue;
                }
                new_messages += 1;
                let arrivals = pool.entry(entrant.concert_id).or_default();
                // Seen again (its visibility ran out during a long step): keep the new receipt.
                arrivals.retain(|arrival| arrival.entrant.token_id != entrant.token_id);
                arrivals.push(Arrival {
                    entrant,
                    sent_at_ms: message.sent_at_ms.unwrap_or(now_ms),
                    receipt: message.receipt,
                });
            }
            if !unreadable.is_empty() {
                tracing::warn!(
                    count = unreadable.len(),
                    "deleting unreadable queue messages"
                );
                self.entry_queue.delete(&unreadable).await?;
            }
            self.entry_queue
                .hand_back(&again, hand_back_seconds)
                .await?;
            let mut progress = false;
            for concert_id in pool.keys().copied().collect::<Vec<_>>() {
                let arrivals = pool.remove(&concert_id).unwrap_or_default();
                let complete = states
                    .get(&concert_id)
                    .map(|state| complete_shards(&arrivals, state))
                    .unwrap_or_default();
                let bounds = Bounds {
                    now_ms,
                    settle_ms: self.config.queue_settle_millis,
                    complete: &complete,
                    read_at_ms,
                };
                let (ready, later) = in_arrival_order(arrivals, &bounds);
                let candidates: Vec<Candidate> = ready
                    .iter()
                    .map(|arrival| Candidate::from(&arrival.entrant))
                    .collect();
                let outcome = self
                    .admit_in_order(concert_id, &candidates, &HashSet::new())
                    .await?;
                progress |= outcome.handled.iter().any(|&done| done);
                report.admitted += outcome.admitted;
                report.passed_over += outcome.passed_over;
                let (mut done, mut deferred) = (Vec::new(), Vec::new());
                for (arrival, handled) in ready.into_iter().zip(&outcome.handled) {
                    if *handled {
                        done.push(arrival.receipt);
                    } else {
                        deferred.push(arrival);
                    }
                }
                self.entry_queue.delete(&done).await?;
                if deferred.is_empty() {
                    if !later.is_empty() {
                        pool.insert(concert_id, later);
                    }
                } else {
                    // No free slot: this concert's messages are handed back until the next step
                    // (ADMIT_HAND_BACK_SECONDS), so its groups stay blocked behind them, in
                    // order, while other concerts move, and each waiting message is received
                    // about once a step.
                    report.deferred += deferred.len() + later.len();
                    full.insert(concert_id);
                    deferred.extend(later);
                    self.entry_queue
                        .hand_back(&receipts(deferred), hand_back_seconds)
                        .await?;
                }
            }
            if !progress && new_messages == 0 {
                break;
            }
        }
        // Not yet theirs to take (within the settle time, or behind a shard that has not shown
        // its next entrants): shown again at once, for the next step.
        let left: Vec<Arrival> = pool.into_values().flatten().collect();
        self.entry_queue.hand_back(&receipts(left), 0).await?;
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

    /// Drains every pre-queue whose opening (and grace) has passed, as far as free slots allow;
    /// takes the drained ones off the list. Returns the concerts whose pre-queue is not through
    /// yet: their entry-queue messages wait.
    async fn admit_prequeues(&self, report: &mut AdmitReport) -> Result<HashSet<Uuid>> {
        let mut held = HashSet::new();
        for (concert_id, opens_at) in self.store.pending_prequeues().await? {
            let ready_at = opens_at + Duration::milliseconds(PREQUEUE_GRACE_MILLIS);
            if self.clock.now() >= ready_at && self.drain_prequeue(concert_id, report).await? {
                self.store.finish_prequeue(concert_id).await?;
                tracing::info!(%concert_id, "pre-queue drained");
            } else {
                held.insert(concert_id);
            }
        }
        Ok(held)
    }

    /// Admits a concert's early entrants in rank order, merged over its shards, into its free
    /// slots. True once every shard's pre-queue is through.
    async fn drain_prequeue(&self, concert_id: Uuid, report: &mut AdmitReport) -> Result<bool> {
        let shards = self.config.queue_entry_shards;
        let page_size = max_activations_per_write(shards);
        for _ in 0..MAX_ROUNDS_PER_STEP {
            let state = self.store.admission_state(concert_id, shards).await?;
            let open: Vec<u32> = (0..shards)
                .filter(|&shard| !state.shards[shard as usize].pre_done)
                .collect();
            if open.is_empty() {
                return Ok(true);
            }
            let pages = futures::future::try_join_all(open.iter().map(|&shard| {
                let cursor = state.shards[shard as usize].pre_cursor;
                self.store
                    .prequeue_page(concert_id, shard, cursor, page_size)
            }))
            .await?;
            let pages: Vec<(u32, Vec<PreEntrant>, bool)> = open
                .into_iter()
                .zip(pages)
                .map(|(shard, (page, more))| (shard, page, more))
                .collect();
            let (candidates, last_pages) = merge_ranks(&pages);
            let outcome = self
                .admit_in_order(concert_id, &candidates, &last_pages)
                .await?;
            report.admitted += outcome.admitted;
            report.passed_over += outcome.passed_over;
            if outcome.handled.iter().any(|&done| !done) {
                // No free slot: the rest of the pre-queue waits for a later step.
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Admits `candidates` (in the order given) into the concert's free slots, in writes of at
    /// most [`max_activations_per_write`] activations, until the candidates or the slots run
    /// out. Each write moves the progress of the shards it touches; a shard in `last_pages`
    /// whose candidates are all handled is marked through with its pre-queue.
    async fn admit_in_order(
        &self,
        concert_id: Uuid,
        candidates: &[Candidate],
        last_pages: &HashSet<u32>,
    ) -> Result<InOrder> {
        let shards = self.config.queue_entry_shards;
        let per_write = max_activations_per_write(shards);
        let mut outcome = InOrder {
            handled: vec![false; candidates.len()],
            admitted: 0,
            passed_over: 0,
        };
        if candidates.is_empty() && last_pages.is_empty() {
            return Ok(outcome);
        }
        // Candidates known not to be waiting any more.
        let mut not_waiting: Vec<usize> = Vec::new();
        for _ in 0..MAX_WRITES_PER_ROUND {
            let now = self.clock.now();
            // The admission item first, then the active list: an admitter that writes in
            // between bumps the version this write is conditional on, so a stale list never
            // counts.
            let state = self.store.admission_state(concert_id, shards).await?;
            let active = self.store.live_active(concert_id, now).await?;
            let free = (self.config.queue_max_active as usize).saturating_sub(active.len());
            let NextWrite { chosen, passing } =
                next_write(&outcome.handled, &not_waiting, free.min(per_write));
            let mut after = outcome.handled.clone();
            for &index in chosen.iter().chain(&passing) {
                after[index] = true;
            }
            let progress = next_progress(
                &state, candidates, &after, &chosen, &passing, last_pages, now,
            );
            if chosen.is_empty() && progress.is_empty() {
                // Nothing to write: those passed over are behind the shard's progress already.
                for index in passing {
                    outcome.handled[index] = true;
                    outcome.passed_over += 1;
                }
                break;
            }
            let activations: Vec<Activation> = chosen
                .iter()
                .map(|&index| Activation {
                    user_id: candidates[index].user_id,
                    token_id: candidates[index].token_id,
                })
                .collect();
            let admission = Admission {
                concert_id,
                version: state.version,
                progress: &progress,
                activations: &activations,
                active_until: now + Duration::seconds(self.config.queue_active_ttl_seconds),
                now,
            };
            match self.store.admit(admission).await? {
                Ok(()) => {
                    outcome.handled = after;
                    outcome.admitted += chosen.len();
                    outcome.passed_over += passing.len();
                    // Go on while the per-write limit, not the free slots, stopped this write.
                    let waiting = outcome.handled.iter().any(|done| !done);
                    if !waiting || chosen.len() >= free {
                        break;
                    }
                }
                Err(AdmitConflict::CounterChanged) => continue,
                Err(AdmitConflict::NotWaiting(failed)) => {
                    not_waiting.extend(failed.into_iter().map(|index| chosen[index]));
                }
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

fn receipts(arrivals: Vec<Arrival>) -> Vec<String> {
    arrivals
        .into_iter()
        .map(|arrival| arrival.receipt)
        .collect()
}

/// A message from the entry queue, with when SQS received it.
struct Arrival {
    entrant: Entrant,
    sent_at_ms: i64,
    receipt: String,
}

/// What bounds the merge of one concert's shards in a round.
struct Bounds<'a> {
    /// The wall clock now, epoch milliseconds.
    now_ms: i64,
    settle_ms: i64,
    /// Shards with nothing unseen that was numbered before `read_at_ms`.
    complete: &'a HashSet<u32>,
    read_at_ms: i64,
}

/// One concert's entrants as received, split into those the admitter may take now, in arrival
/// order, and those that must wait for a later round.
///
/// SQS keeps each message group (entry shard) in the order it received the messages, and shows
/// a group's head only: entrants of a shard not yet shown arrived no earlier than the newest
/// one shown. So an entrant may be taken only if no shard can still show someone who arrived
/// before them: their arrival is
/// - no later than the newest shown of every shard that showed any, unless that shard is known
///   complete (every number it had handed out when its counter was read is shown: its unseen
///   entrants took their numbers after that read, so they arrived after it),
/// - no later than that read, for complete shards,
/// - and at least `settle_ms` old (a shard that showed nothing may have an entry SQS accepted
///   a moment ago but does not show yet).
///
/// Those taken are exactly in arrival order across shards; ties (the same millisecond) go by
/// shard, then number.
fn in_arrival_order(mut arrivals: Vec<Arrival>, bounds: &Bounds) -> (Vec<Arrival>, Vec<Arrival>) {
    let mut newest: HashMap<u32, i64> = HashMap::new();
    for arrival in &arrivals {
        let seen = newest.entry(arrival.entrant.shard).or_insert(i64::MIN);
        *seen = (*seen).max(arrival.sent_at_ms);
    }
    let cutoff = newest
        .iter()
        .map(|(shard, &newest)| {
            if bounds.complete.contains(shard) {
                bounds.read_at_ms
            } else {
                newest
            }
        })
        .fold(bounds.now_ms - bounds.settle_ms, i64::min);
    arrivals.sort_by_key(|arrival| {
        (
            arrival.sent_at_ms,
            arrival.entrant.shard,
            arrival.entrant.number,
        )
    });
    arrivals
        .into_iter()
        .partition(|arrival| arrival.sent_at_ms <= cutoff)
}

/// The shards of which every number handed out and not yet admitted, as `state` read them, is
/// among `arrivals`. A number taken but never sent (an entry that failed midway) keeps its
/// shard from counting as complete until admission passes it; that only slows the merge.
fn complete_shards(arrivals: &[Arrival], state: &AdmissionState) -> HashSet<u32> {
    let mut numbers: HashMap<u32, HashSet<u64>> = HashMap::new();
    for arrival in arrivals {
        numbers
            .entry(arrival.entrant.shard)
            .or_default()
            .insert(arrival.entrant.number);
    }
    let empty = HashSet::new();
    (0..state.shards.len())
        .filter(|&shard| {
            let admitted_up_to = state.shards[shard].admitted_up_to;
            let last = state.last_numbers.get(shard).copied().unwrap_or(0);
            let shown = numbers.get(&(shard as u32)).unwrap_or(&empty);
            last.saturating_sub(admitted_up_to) <= shown.len() as u64
                && (admitted_up_to + 1..=last).all(|number| shown.contains(&number))
        })
        .map(|shard| shard as u32)
        .collect()
}

/// One page of each open pre-queue shard (shard, entrants in rank order, whether it may hold
/// more), merged: the entrants the admitter may take in rank order, and the shards whose every
/// remaining entrant is among them. Entrants ranked after the last one read of a shard with
/// more to read wait for the next page, since that shard's unread entrants may rank before
/// them.
fn merge_ranks(pages: &[(u32, Vec<PreEntrant>, bool)]) -> (Vec<Candidate>, HashSet<u32>) {
    let bound = pages
        .iter()
        .filter(|(_, _, more)| *more)
        .filter_map(|(_, page, _)| page.last().map(|entrant| entrant.rank))
        .min()
        .unwrap_or(u64::MAX);
    let mut candidates = Vec::new();
    let mut last_pages = HashSet::new();
    for (shard, page, more) in pages {
        if !more && page.iter().all(|entrant| entrant.rank <= bound) {
            last_pages.insert(*shard);
        }
        candidates.extend(
            page.iter()
                .filter(|entrant| entrant.rank <= bound)
                .map(|entrant| Candidate {
                    user_id: entrant.user_id,
                    token_id: entrant.token_id,
                    shard: *shard,
                    place: Slot::Rank(entrant.rank),
                }),
        );
    }
    candidates.sort_by_key(|candidate| match candidate.place {
        Slot::Rank(rank) | Slot::Number(rank) => (rank, candidate.shard),
    });
    (candidates, last_pages)
}

/// Someone the admitter may activate.
#[derive(Clone, Debug)]
struct Candidate {
    user_id: Uuid,
    token_id: Uuid,
    shard: u32,
    place: Slot,
}

/// Where a candidate stands in its shard.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// A numbered place of the entry queue.
    Number(u64),
    /// A pre-queue rank.
    Rank(u64),
}

impl From<&Entrant> for Candidate {
    fn from(entrant: &Entrant) -> Self {
        Self {
            user_id: entrant.user_id,
            token_id: entrant.token_id,
            shard: entrant.shard,
            place: Slot::Number(entrant.number),
        }
    }
}

/// What [`Services::admit_in_order`] did.
struct InOrder {
    /// By candidate: admitted or passed over.
    handled: Vec<bool>,
    admitted: usize,
    passed_over: usize,
}

/// What one admitter write takes from the candidates (in order): indexes to activate and to
/// pass over.
#[derive(Debug, PartialEq)]
struct NextWrite {
    chosen: Vec<usize>,
    passing: Vec<usize>,
}

/// The candidates not yet `handled` that the next write activates (the first `limit` of them)
/// or passes over (those known `not_waiting`).
fn next_write(handled: &[bool], not_waiting: &[usize], limit: usize) -> NextWrite {
    let mut next = NextWrite {
        chosen: Vec::new(),
        passing: Vec::new(),
    };
    for (index, &done) in handled.iter().enumerate() {
        if done {
            continue;
        }
        // A message seen before (redelivered after its admission) needs no shortcut: its
        // activation fails the WAITING condition and it is passed over here.
        if not_waiting.contains(&index) {
            next.passing.push(index);
        } else if next.chosen.len() < limit {
            next.chosen.push(index);
        }
    }
    next
}

/// The progress a write leaves in each shard it changes: how far admission reaches in the
/// shard (numbers or ranks of those activated and passed over), the shard's admissions, and
/// whether its pre-queue is through (a shard of `last_pages` with all its candidates handled
/// `after` the write). Shards whose progress would not change are left out.
fn next_progress(
    state: &AdmissionState,
    candidates: &[Candidate],
    after: &[bool],
    chosen: &[usize],
    passing: &[usize],
    last_pages: &HashSet<u32>,
    now: DateTime<Utc>,
) -> Vec<(u32, ShardProgress)> {
    let mut changed: BTreeMap<u32, ShardProgress> = BTreeMap::new();
    fn entry<'a>(
        changed: &'a mut BTreeMap<u32, ShardProgress>,
        state: &AdmissionState,
        shard: u32,
    ) -> Option<&'a mut ShardProgress> {
        let current = state.shards.get(shard as usize)?;
        Some(changed.entry(shard).or_insert_with(|| current.clone()))
    }
    for (&index, activated) in chosen
        .iter()
        .map(|index| (index, true))
        .chain(passing.iter().map(|index| (index, false)))
    {
        let candidate = &candidates[index];
        let Some(progress) = entry(&mut changed, state, candidate.shard) else {
            continue;
        };
        match candidate.place {
            Slot::Number(number) => progress.admitted_up_to = progress.admitted_up_to.max(number),
            Slot::Rank(rank) => {
                progress.pre_cursor = Some(progress.pre_cursor.map_or(rank, |c| c.max(rank)));
            }
        }
        if activated {
            progress.history.admitted_total += 1;
            progress.history.first_admitted_at.get_or_insert(now);
        }
    }
    for &shard in last_pages {
        let through = candidates
            .iter()
            .zip(after)
            .all(|(candidate, &done)| candidate.shard != shard || done);
        if through {
            if let Some(progress) = entry(&mut changed, state, shard) {
                progress.pre_done = true;
            }
        }
    }
    changed
        .into_iter()
        .filter(|(shard, progress)| state.shards.get(*shard as usize) != Some(progress))
        .collect()
}

fn entrant_of(token: &QueueToken) -> Entrant {
    Entrant {
        concert_id: token.concert_id,
        user_id: token.user_id,
        token_id: token.token_id,
        number: token.number,
        shard: token.shard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entrant(shard: u32, number: u64) -> Entrant {
        Entrant {
            concert_id: Uuid::nil(),
            user_id: Uuid::from_u128(u128::from(shard) << 64 | u128::from(number)),
            token_id: Uuid::now_v7(),
            number,
            shard,
        }
    }

    fn arrival(shard: u32, number: u64, sent_at_ms: i64) -> Arrival {
        Arrival {
            entrant: entrant(shard, number),
            sent_at_ms,
            receipt: format!("{shard}-{number}"),
        }
    }

    fn receipts(arrivals: &[Arrival]) -> Vec<&str> {
        arrivals.iter().map(|a| a.receipt.as_str()).collect()
    }

    fn bounds(now_ms: i64, settle_ms: i64, complete: &[u32]) -> Bounds<'static> {
        let complete: &'static HashSet<u32> =
            Box::leak(Box::new(complete.iter().copied().collect()));
        Bounds {
            now_ms,
            settle_ms,
            complete,
            read_at_ms: now_ms - 1_000,
        }
    }

    #[test]
    fn shards_should_merge_in_arrival_order() {
        let arrivals = vec![
            arrival(0, 1, 1_000),
            arrival(0, 2, 1_030),
            arrival(1, 1, 1_010),
            arrival(1, 2, 1_040),
            arrival(2, 1, 1_020),
        ];
        // Long settled: every shard's newest bounds the merge. Shard 0 may still show someone
        // after 1_030, so 1_040 waits.
        let (ready, later) = in_arrival_order(arrivals, &bounds(100_000, 1_000, &[]));
        assert_eq!(receipts(&ready), ["0-1", "1-1", "2-1"]);
        assert_eq!(receipts(&later), ["0-2", "1-2"]);
    }

    #[test]
    fn arrivals_within_the_settle_time_should_wait() {
        let arrivals = vec![arrival(0, 1, 9_000), arrival(0, 2, 9_600)];
        let (ready, later) = in_arrival_order(arrivals, &bounds(10_000, 1_000, &[]));
        assert_eq!(receipts(&ready), ["0-1"]);
        assert_eq!(receipts(&later), ["0-2"]);
    }

    #[test]
    fn a_shard_that_shows_nobody_should_not_hold_up_the_others() {
        let arrivals = vec![arrival(3, 1, 1_000), arrival(3, 2, 1_001)];
        let (ready, later) = in_arrival_order(arrivals, &bounds(5_000, 1_000, &[]));
        assert_eq!(receipts(&ready), ["3-1", "3-2"]);
        assert!(later.is_empty());
    }

    #[test]
    fn a_complete_shard_should_bound_the_merge_by_when_its_counter_was_read() {
        let arrivals = vec![
            arrival(0, 1, 1_000),
            arrival(1, 1, 1_010),
            arrival(1, 2, 1_020),
        ];
        // Shard 0 has shown every number it had handed out when its counter was read (at
        // 4_000): its unseen entrants arrived after that, so shard 1's 1_020 may go.
        let (ready, later) = in_arrival_order(arrivals, &bounds(5_000, 500, &[0]));
        assert_eq!(receipts(&ready), ["0-1", "1-1", "1-2"]);
        assert!(later.is_empty());
    }

    #[test]
    fn a_shard_is_complete_only_when_every_number_not_yet_admitted_is_shown() {
        let mut state = AdmissionState {
            version: 0,
            shards: vec![ShardProgress::default(); 3],
            last_numbers: vec![2, 3, 0],
        };
        state.shards[1].admitted_up_to = 1;
        let arrivals = vec![
            arrival(0, 1, 1_000),
            arrival(0, 2, 1_001),
            // Shard 1 shows 3 but not 2.
            arrival(1, 3, 1_002),
        ];
        // Shard 2 handed out nothing: complete (and constrains nothing, showing nobody).
        assert_eq!(complete_shards(&arrivals, &state), HashSet::from([0, 2]));
    }

    #[test]
    fn when_more_slots_than_one_write_holds_should_take_the_first_then_the_rest() {
        let mut handled = vec![false; 110];
        let first = next_write(&handled, &[], 49);
        assert_eq!(first.chosen, (0..49).collect::<Vec<_>>());
        for &index in &first.chosen {
            handled[index] = true;
        }
        // The next write goes on in order from where the first stopped.
        let second = next_write(&handled, &[], 49);
        assert_eq!(second.chosen, (49..98).collect::<Vec<_>>());
    }

    #[test]
    fn when_few_slots_should_take_only_those_and_pass_over_the_departed() {
        let handled = vec![false; 10];
        // Candidate 2 (index 1) left; three slots are free.
        let next = next_write(&handled, &[1], 3);
        assert_eq!(next.chosen, [0, 2, 3]);
        assert_eq!(next.passing, [1]);
    }

    #[test]
    fn a_write_should_move_only_the_shards_it_touches() {
        let state = AdmissionState {
            version: 4,
            shards: vec![ShardProgress::default(); 3],
            last_numbers: vec![0; 3],
        };
        let candidates: Vec<Candidate> = [entrant(0, 1), entrant(2, 1), entrant(2, 2)]
            .iter()
            .map(Candidate::from)
            .collect();
        let now = Utc::now();
        let progress = next_progress(
            &state,
            &candidates,
            &[true, true, true],
            &[0, 2],
            &[1],
            &HashSet::new(),
            now,
        );
        let shards: Vec<u32> = progress.iter().map(|(shard, _)| *shard).collect();
        assert_eq!(shards, [0, 2]);
        assert_eq!(progress[0].1.admitted_up_to, 1);
        assert_eq!(progress[0].1.history.admitted_total, 1);
        // Shard 2: number 1 passed over, number 2 admitted.
        assert_eq!(progress[1].1.admitted_up_to, 2);
        assert_eq!(progress[1].1.history.admitted_total, 1);
        assert_eq!(progress[1].1.history.first_admitted_at, Some(now));
    }

    fn pre(rank: u64) -> PreEntrant {
        PreEntrant {
            rank,
            user_id: Uuid::from_u128(u128::from(rank)),
            token_id: Uuid::now_v7(),
        }
    }

    #[test]
    fn pre_queue_pages_should_merge_by_rank_up_to_the_shortest_unread_shard() {
        let pages = vec![
            (0, vec![pre(10), pre(40)], true),
            (1, vec![pre(20), pre(30), pre(50)], false),
            (2, vec![], false),
        ];
        let (candidates, last_pages) = merge_ranks(&pages);
        let ranks: Vec<u64> = candidates
            .iter()
            .map(|c| match c.place {
                Slot::Rank(rank) | Slot::Number(rank) => rank,
            })
            .collect();
        // Shard 0 may hold ranks after 40 that come before 50: 50 waits for its next page.
        assert_eq!(ranks, [10, 20, 30, 40]);
        assert_eq!(last_pages, HashSet::from([2]));
    }
}
