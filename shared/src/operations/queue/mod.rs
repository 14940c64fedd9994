//! The waiting queue: entering ([`entry`]), polling, leaving, admission ([`admission`], in the
//! order [`line`] decides, the randomised [`prequeue`] first), and the check every booking
//! endpoint makes.

mod admission;
mod entry;
pub mod line;
mod prequeue;

use crate::auth::{Principal, ISSUER};
use crate::entry_queue::Entrant;
use crate::error::{DomainError, Result};
use crate::queue::{
    position_in_line, shown_wait_seconds, QueueClaims, QueueProgress, QueueToken, ShardProgress,
    TokenStatus, QUEUE_AUDIENCE,
};
use crate::runtime::Services;
use chrono::{DateTime, Utc};
use serde::Deserialize;
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

/// How many people each concert may still admit in the current step, when admission is
/// paced (`QUEUE_ADMIT_PER_SECOND`). Kept in the admitter's memory and started again with each
/// step; two admitters running at once would each have a step's budget.
#[derive(Debug, Default)]
pub struct AdmissionBudget {
    spent: std::sync::Mutex<std::collections::HashMap<Uuid, usize>>,
}

impl AdmissionBudget {
    /// A new step: every concert's budget is whole again.
    pub fn start_step(&self) {
        self.spent.lock().unwrap().clear();
    }

    /// What `concert_id` may still admit this step, of `per_step` (`None`: no pacing).
    pub fn left(&self, concert_id: Uuid, per_step: Option<usize>) -> usize {
        per_step.map_or(usize::MAX, |per_step| {
            let spent = self.spent.lock().unwrap().get(&concert_id).copied();
            per_step.saturating_sub(spent.unwrap_or(0))
        })
    }

    pub fn spend(&self, concert_id: Uuid, admitted: usize) {
        *self.spent.lock().unwrap().entry(concert_id).or_default() += admitted;
    }
}

/// An admitted caller, as proven by their queue token.
pub struct Admitted {
    pub claims: QueueClaims,
}

const QUEUE_TOKEN_HEADER_MISSING: &str = "an X-Queue-Token header is required";

impl Services {
    fn place(
        &self,
        token: QueueToken,
        progress: &ShardProgress,
        now: DateTime<Utc>,
        created: bool,
    ) -> Result<Place> {
        let status = token.status_in_line(now, progress);
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
    pub(crate) fn sign_queue_token(&self, token: &QueueToken) -> Result<String> {
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
        let mut token = token.filter(|token| token.token_id == claims.tid);
        if token
            .as_ref()
            .is_some_and(|token| token.passed_over(&progress))
        {
            // One read of two items is not one snapshot: the admitter's write that moved the
            // shard past this place may have activated it, after the token was read. The token
            // read alone, now, says which.
            token = self
                .store
                .queue_token(claims.cid, claims.sub)
                .await?
                .filter(|token| token.token_id == claims.tid);
        }
        if let Some(practice) = token.clone().filter(|token| token.practice.is_some()) {
            // A practice run's line moves at its crowd's pace.
            let concert = self.concert(&claims.cid.to_string()).await?;
            let practice = self.practice_token_now(&concert, practice).await?;
            let standing = self.practice_standing(&concert, &practice);
            return Ok(QueueView {
                token_id: claims.tid,
                concert_id: claims.cid,
                status: standing.status,
                position: standing.position,
                estimated_wait_seconds: standing.estimated_wait_seconds,
                active_until: match standing.status {
                    TokenStatus::Active => practice.active_until,
                    _ => None,
                },
            });
        }
        let status = token.as_ref().map_or(TokenStatus::Expired, |token| {
            token.status_in_line(now, &progress)
        });
        let shards = self.config.queue_entry_shards;
        let position = match (&token, status) {
            (Some(token), TokenStatus::Waiting) => position_in_line(token, &progress, shards),
            _ => 0,
        };
        let estimated_wait_seconds = match (&token, status) {
            (Some(token), TokenStatus::Waiting) => shown_wait_seconds(
                position,
                &progress.history,
                shards,
                token.opens_at,
                now,
                self.config.queue_max_active,
                self.config.queue_active_ttl_seconds,
            ),
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

    /// `GET /queue/progress/{concert_id}`: the concert's admission progress, for waiting
    /// clients to compute their own position from (see [`QueueProgress`]). Public: it says
    /// nothing about anyone. One eventually consistent read of the shards' progress items; the
    /// edge caches the answer about a second, so a waiting crowd of any size costs the origin
    /// about one of these a second per concert.
    pub async fn queue_progress(&self, raw_concert_id: &str) -> Result<QueueProgress> {
        let concert = self.concert(raw_concert_id).await?;
        let shards = self
            .store
            .shards_progress(concert.concert_id, self.config.queue_entry_shards.max(1))
            .await?;
        Ok(QueueProgress::publish(
            concert.concert_id,
            &shards,
            self.clock.now(),
            self.config.queue_max_active,
            self.config.queue_active_ttl_seconds,
        ))
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
        let token = self.practice_admission(token, None).await?;
        self.check_admitted(claims, token, &progress)
    }

    /// A practice place whose turn came while the fan was not polling is activated by the
    /// booking request that finds it (the crowd's pace admits, not the admitter); any other
    /// token as it is. `concert`: the token's concert if the caller has it.
    pub(crate) async fn practice_admission(
        &self,
        token: Option<QueueToken>,
        concert: Option<&crate::catalog::Concert>,
    ) -> Result<Option<QueueToken>> {
        let Some(token) = token else {
            return Ok(None);
        };
        if token.practice.is_none() || token.status(self.clock.now()) != TokenStatus::Waiting {
            return Ok(Some(token));
        }
        let concert = match concert {
            Some(concert) => concert.clone(),
            None => self.concert(&token.concert_id.to_string()).await?,
        };
        let token = self.practice_token_now(&concert, token).await?;
        if token.status(self.clock.now()) == TokenStatus::Waiting {
            return Err(DomainError::QueueNotAdmitted {
                position: self.practice_standing(&concert, &token).position,
            });
        }
        Ok(Some(token))
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

    /// Judges a token's stored state for a booking endpoint. A waiting place admission went
    /// past is refused as not admitted (position 0), not as expired: the token may have been
    /// activated by the very write the progress was read after.
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

    /// The live active slots of a concert, for tests and dashboards.
    pub async fn active_count(&self, concert_id: Uuid) -> Result<usize> {
        let active = self.store.live_active(concert_id, self.clock.now()).await?;
        Ok(active.len())
    }
}

fn entrant_of(token: &QueueToken) -> Entrant {
    Entrant {
        concert_id: token.concert_id,
        user_id: token.user_id,
        token_id: token.token_id,
        number: token.number,
        shard: token.shard,
        entered_at_ms: token.entered_at_ms,
    }
}
