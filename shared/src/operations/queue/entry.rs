//! Taking a place in a concert's line.
//!
//! Entry is three steps, each one request: the shard's counter numbers the place, the token
//! item records it (one per user and concert), and a message carries it to the admitter. Any of
//! them may fail, time out or lose its answer, and the function may be stopped between any two.
//! What each leaves behind, and who cleans it up:
//!
//! - a number taken and never used (stopped before the token, or a lost answer that made the
//!   counter count twice): the admitter passes it over once it has waited the grace time
//!   (`line`), which only delays those behind it;
//! - a token written and no message sent (the send failed, or the function stopped): the fan is
//!   told 503 (or nothing) and retries; the retry finds the waiting token and sends its message
//!   again, which keeps the place (SQS drops a duplicate within five minutes, the admitter any
//!   later one). If nobody retries in time, admission passes the number over and the token
//!   reads EXPIRED: the fan sees it ended and takes a new place;
//! - a token written twice (the SDK retried a put whose answer was lost): the second attempt
//!   finds the first's token, recognises its own id and carries on;
//! - a message sent so late that the admitter may have passed the number over: the entry sees
//!   the time it took and answers 503 rather than vouch for the place; the retry finds out
//!   which it is (the place kept, or ended and a new one taken).

use super::{entrant_of, EnterQueue, Place};
use crate::auth::Principal;
use crate::catalog::ConcertStatus;
use crate::error::{DomainError, Result};
use crate::ids::{new_id, parse_id, random_below, random_u64};
use crate::queue::{QueueToken, ShardProgress, StoredStatus, TokenStatus};
use crate::runtime::Services;
use chrono::{Duration, Utc};

/// How long after a pre-queue's opening the admitter waits before it drains it. An early
/// entrant whose write completes later than this is moved to the line behind (see
/// `enter_queue`), so the drain never misses anyone.
pub(super) const PREQUEUE_GRACE_MILLIS: i64 = 2_000;

/// Kept back from the grace time: an entry sends its message only this long before the grace
/// runs out, and one whose send ended later answers 503 rather than vouch for a place that may
/// have been passed over.
const SEND_MARGIN_MILLIS: i64 = 1_000;

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
            .queue_snapshot(
                concert_id,
                principal.user_id,
                shard,
                cached.is_none(),
                None,
                None,
            )
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
        if concert.practice.is_some() {
            // A practice run's line: the crowd ahead is simulated (`practice::crowd`).
            return self
                .enter_practice_line(principal, &concert, snapshot.token)
                .await;
        }
        if let Some(token) = snapshot.token.filter(|token| token.is_alive(now)) {
            let progress = self
                .progress_of(&token, shard, snapshot.progress.clone())
                .await?;
            if token.passed_over(&progress) {
                // Admission went past this place (its message never came in time): it has
                // ended. End it in storage too, so that a new place can replace it.
                self.store
                    .end_queue_token(concert_id, principal.user_id, token.token_id)
                    .await?;
            } else {
                if token.status(now) == TokenStatus::Waiting && token.prequeue_rank.is_none() {
                    // Sent again in case the first send was lost (a crash between writing the
                    // token and sending). SQS drops it as a duplicate within five minutes of
                    // the first; otherwise the admitter drops whichever copy comes second.
                    self.entry_queue.send(&entrant_of(&token)).await?;
                }
                return self.place(token, &progress, now, false);
            }
        }

        let started = Utc::now();
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
            entered_at_ms: Utc::now().timestamp_millis(),
            practice: None,
        };
        if !self.store.put_queue_token(&token, now).await? {
            let existing = self
                .store
                .queue_token(concert_id, principal.user_id)
                .await?
                .ok_or(DomainError::busy())?;
            if existing.token_id != token.token_id {
                // The same user entered at the same moment and won; give them that place. The
                // number taken here is never sent: the admitter passes it over.
                let progress = self
                    .progress_of(&existing, shard, snapshot.progress)
                    .await?;
                return self.place(existing, &progress, now, false);
            }
            // Our own write, whose answer was lost and retried: carry on.
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
            return self.place(token, &snapshot.progress, now, true);
        }
        let late = || {
            (Utc::now() - started).num_milliseconds()
                > self.config.queue_entry_grace_millis - SEND_MARGIN_MILLIS
        };
        if late() {
            // Too late to send: the admitter may pass the number over before it shows. The
            // place stays as it is; trying again finds out whether it still stands.
            return Err(DomainError::busy());
        }
        let sent = self.entry_queue.send(&entrant_of(&token)).await;
        if sent.is_err() || late() {
            // The place is kept: trying again finds it and sends its message again, and keeps
            // it if that comes in time. If it does not, admission passes the number over, and
            // the retry (or a poll) finds the place ended and takes a new one.
            sent?;
            return Err(DomainError::busy());
        }
        self.place(token, &snapshot.progress, now, true)
    }

    /// The progress of `token`'s shard: `read` if that is the shard it was read for, else read
    /// now.
    async fn progress_of(
        &self,
        token: &QueueToken,
        read_for: u32,
        read: ShardProgress,
    ) -> Result<ShardProgress> {
        if token.shard == read_for {
            return Ok(read);
        }
        Ok(self
            .store
            .queue_state(token.concert_id, token.user_id, token.shard)
            .await?
            .1)
    }
}
