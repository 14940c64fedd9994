//! Creating and reading concerts.

use crate::auth::Principal;
use crate::catalog::{Concert, ConcertStatus, NewConcert, Schedule};
use crate::error::{DomainError, Result};
use crate::ids::{new_id, parse_id};
use crate::runtime::Services;
use crate::store::{ClaimOf, Claimed, ConcertPage, ImportClaim};

/// A new concert and the dates that were created with it.
pub struct CreatedConcert {
    pub concert: Concert,
    pub schedules: Vec<Schedule>,
}

impl Services {
    /// `POST /admin/concerts`. Creating a concert is many writes (its dates and seats in
    /// batches, then the concert item, which makes it visible), and the function may stop
    /// between any two. So the request is claimed first, with the whole draft: the same request
    /// made again (after a lost answer, a timeout, or twice at once) finds the claim and gives
    /// the same concert, finishing it if the first attempt stopped midway.
    pub async fn create_concert(
        &self,
        admin: &Principal,
        body: NewConcert,
    ) -> Result<CreatedConcert> {
        let seats = body.validate()?;
        let request_key = request_key(admin, &body);
        let of = ClaimOf::Request(&request_key);
        let now = self.clock.now();
        let concert = body.concert(now);
        let mut schedules: Vec<Schedule> = body
            .schedules
            .iter()
            .map(|schedule| Schedule {
                schedule_id: new_id(),
                concert_id: concert.concert_id,
                starts_at: schedule.starts_at,
                total_seats: seats.len() as u32,
            })
            .collect();
        schedules.sort_by_key(|schedule| schedule.starts_at);
        let claim = ImportClaim {
            source_url: String::new(),
            concert,
            schedules,
            seats,
            claimed_at: now,
        };
        match self.store.claim_import(of, &claim).await? {
            Claimed::Won => {
                self.store
                    .create_concert(&claim.concert, &claim.schedules, &claim.seats)
                    .await?;
                Ok(CreatedConcert {
                    concert: claim.concert,
                    schedules: claim.schedules,
                })
            }
            Claimed::Existing(claim) => self.finish_creation(of, *claim).await,
        }
    }

    async fn finish_creation(&self, of: ClaimOf<'_>, claim: ImportClaim) -> Result<CreatedConcert> {
        match self.finish_claimed(of, claim).await? {
            Some((concert, schedules)) => Ok(CreatedConcert { concert, schedules }),
            // The same request is being carried out right now.
            None => Err(DomainError::busy()),
        }
    }

    /// A concert by the id from a path. An id that is not a UUID names no concert: `NOT_FOUND`.
    pub async fn concert(&self, raw_id: &str) -> Result<Concert> {
        let Some(concert_id) = parse_id(raw_id) else {
            return Err(DomainError::NotFound("concert"));
        };
        if let Some(concert) = self.catalog.concert(concert_id) {
            return Ok(concert);
        }
        let concert = self
            .store
            .concert(concert_id)
            .await?
            .ok_or(DomainError::NotFound("concert"))?;
        self.catalog.keep_concert(&concert);
        Ok(concert)
    }

    pub async fn list_concerts(
        &self,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<ConcertPage> {
        let limit = super::page_size(limit)?;
        self.store.list_concerts(limit, cursor).await
    }
}

/// A date of a concert with the seats that can be held now.
pub struct ScheduleAvailability {
    pub schedule: Schedule,
    pub available_seats: u32,
}

impl Services {
    /// `GET /concerts/{concert_id}/schedules`: the dates still ahead, with seats left, for a
    /// caller admitted from that concert's queue.
    pub async fn bookable_schedules(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_concert_id: &str,
    ) -> Result<Vec<ScheduleAvailability>> {
        let claims = self.admission_claims(principal, queue_token)?;
        let concert_id = parse_id(raw_concert_id).ok_or(DomainError::NotFound("concert"))?;
        if claims.cid != concert_id {
            return Err(DomainError::InvalidQueueToken(
                "the queue token is for another concert",
            ));
        }
        // The token's state and the catalog are independent reads: make them together.
        let (queue_state, catalog) = tokio::try_join!(
            self.store
                .queue_state(concert_id, principal.user_id, claims.shd),
            self.store.concert_with_schedules(concert_id),
        )?;
        let (token, progress) = queue_state;
        self.check_admitted(claims, token, &progress)?;
        let (concert, schedules) = catalog.ok_or(DomainError::NotFound("concert"))?;
        let now = self.clock.now();
        if concert.status(now) != ConcertStatus::BookingOpen {
            return Err(DomainError::BookingClosed("the concert is not on sale"));
        }
        let upcoming: Vec<Schedule> = schedules
            .into_iter()
            .filter(|schedule| schedule.starts_at > now)
            .collect();
        let counts = futures::future::try_join_all(
            upcoming
                .iter()
                .map(|schedule| self.store.available_seats(schedule, now)),
        )
        .await?;
        Ok(upcoming
            .into_iter()
            .zip(counts)
            .map(|(schedule, available_seats)| ScheduleAvailability {
                schedule,
                available_seats,
            })
            .collect())
    }
}

/// A digest of an admin and their request: the same body from the same admin is the same
/// request.
fn request_key(admin: &Principal, body: &NewConcert) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\n{body:?}", admin.user_id).as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}
