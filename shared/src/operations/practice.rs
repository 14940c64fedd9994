//! Practice runs (see `crate::practice`): making one, its line (the crowd ahead, admission at
//! the run's pace), its security letters, its seats with the crowd laid over them, and each
//! fan's results against the crowd.

use super::queue::Place;
use crate::auth::Principal;
use crate::catalog::{Concert, Schedule, Seat, SeatState, SeatStatus};
use crate::error::{DomainError, Result};
use crate::ids::{new_id, parse_id, random_u64};
use crate::practice::crowd::Crowd;
use crate::practice::venue::{Venue, CODES};
use crate::practice::{
    captcha, Difficulty, NewResult, NewRun, PracticeResult, PracticeSetup,
    DEFAULT_COUNTDOWN_SECONDS, MAX_COUNTDOWN_SECONDS,
};
use crate::queue::{PracticePlace, QueueToken, StoredStatus, TokenStatus};
use crate::runtime::Services;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// The largest seed a run takes: exact as a JavaScript number.
const MAX_SEED: u64 = (1 << 53) - 1;
/// Runs one fan may start a minute (each writes a concert and a date).
const RUNS_PER_MINUTE: u64 = 10;
/// The layouts whose sites ask for the security letters before the seats.
const SITES_WITH_LETTERS: [&str; 4] = ["interpark", "yes24", "melon", "ticketlink"];

/// A run as `GET /practice/runs/{run_id}` shows it: the run, and its crowd at this moment.
pub struct RunView {
    pub concert: Concert,
    pub schedule: Schedule,
    pub now: DateTime<Utc>,
    /// Rivals in line so far, and people through it.
    pub in_line: u64,
    pub admitted: u64,
    /// Seats the crowd holds or bought now, of the venue's.
    pub seats_gone: u32,
    pub total_seats: u32,
    pub pace_per_second: f64,
}

/// A fan's place in a practice line now.
pub struct PracticeStanding {
    pub status: TokenStatus,
    pub position: u64,
    pub estimated_wait_seconds: u64,
}

/// A practice zone as the overview shows it.
pub struct ZoneView {
    pub zone: u32,
    pub name: String,
    pub grade: String,
    pub price: i64,
    pub total: u32,
    pub available: u32,
}

/// A fan's history: the latest runs, and the best per site.
pub struct History {
    pub recent: Vec<PracticeResult>,
    pub best: BTreeMap<String, PracticeResult>,
}

/// Milliseconds after a run's opening.
fn offset(concert: &Concert, at: DateTime<Utc>) -> i64 {
    (at - concert.booking_opens_at).num_milliseconds()
}

impl Services {
    /// The crowd of a practice concert (`None` for any other).
    pub(crate) fn crowd_of(&self, concert: &Concert) -> Option<Arc<Crowd>> {
        let setup = concert.practice.as_ref()?;
        self.crowds.get(concert.concert_id, setup)
    }

    /// `POST /practice/runs`: a run of a concert, opening after a countdown (or at the
    /// concert's own opening), with its own concert and date.
    pub async fn create_practice_run(
        &self,
        principal: &Principal,
        body: NewRun,
    ) -> Result<(Concert, Schedule)> {
        let source_id = parse_id(&body.concert_id)
            .ok_or_else(|| DomainError::validation("concert_id", "must be a concert id"))?;
        let difficulty = match &body.difficulty {
            Some(choice) => choice.resolve()?,
            None => Difficulty::preset("normal").expect("a preset"),
        };
        if body.seed.is_some_and(|seed| seed > MAX_SEED) {
            return Err(DomainError::validation("seed", "must be 0 to 2^53 - 1"));
        }
        let countdown = body.countdown_seconds.unwrap_or(DEFAULT_COUNTDOWN_SECONDS);
        crate::validate::range(
            "countdown_seconds",
            countdown.into(),
            5,
            MAX_COUNTDOWN_SECONDS.into(),
        )?;
        if let Some(venue) = &body.venue {
            if !CODES.contains(&venue.as_str()) {
                return Err(DomainError::validation(
                    "venue",
                    "must be theatre, hall, arena or stadium",
                ));
            }
        }
        if let Some(site) = &body.site {
            if !importer::template::TEMPLATE_CODES.contains(&site.as_str()) {
                return Err(DomainError::validation(
                    "site",
                    "must be interpark, yes24, melon, ticketlink or default",
                ));
            }
        }
        let (source, schedules) = self
            .store
            .concert_with_schedules(source_id)
            .await?
            .ok_or(DomainError::NotFound("concert"))?;
        if source.practice.is_some() {
            return Err(DomainError::validation(
                "concert_id",
                "is a practice run; start a run of its concert instead",
            ));
        }
        let now = self.clock.now();
        let opens_at = match body.start.as_deref().unwrap_or("now") {
            "now" => now + Duration::seconds(countdown.into()),
            "open" if source.booking_opens_at > now + Duration::seconds(5) => {
                source.booking_opens_at
            }
            "open" => {
                return Err(DomainError::BookingClosed(
                    "the concert's opening has passed; practise now instead",
                ))
            }
            _ => return Err(DomainError::validation("start", "must be now or open")),
        };
        if self
            .store
            .count_use(principal.user_id, "practice", now)
            .await?
            > RUNS_PER_MINUTE
        {
            return Err(DomainError::RateLimited(
                "too many practice runs started this minute; try again in a minute",
            ));
        }
        let venue = match &body.venue {
            Some(code) => Venue::by_code(code).expect("checked above"),
            None => Venue::for_size(schedules.first().map_or(0, |s| s.total_seats)),
        };
        let run_id = new_id();
        let site = body.site.clone().or_else(|| source.template_code.clone());
        let captcha = site
            .as_deref()
            .is_some_and(|site| SITES_WITH_LETTERS.contains(&site));
        let concert = Concert {
            concert_id: run_id,
            booking_opens_at: opens_at,
            booking_closes_at: opens_at + Duration::hours(2),
            prequeue: false,
            cancelled: false,
            created_at: now,
            template_code: site,
            practice: Some(PracticeSetup {
                seed: body.seed.unwrap_or_else(random_u64),
                difficulty,
                venue: venue.code.to_owned(),
                source_concert_id: source.concert_id,
                captcha,
                hold_ttl_seconds: self.config.hold_ttl_seconds,
                created_by: principal.user_id,
            }),
            ..source
        };
        let starts_at = schedules
            .iter()
            .map(|s| s.starts_at)
            .find(|at| *at > opens_at + Duration::hours(3))
            .unwrap_or(opens_at + Duration::days(30));
        let schedule = Schedule {
            schedule_id: new_id(),
            concert_id: run_id,
            starts_at,
            total_seats: venue.total_seats(),
        };
        self.store.put_practice_run(&concert, &schedule).await?;
        self.catalog.keep_concert(&concert);
        self.catalog.keep_schedule(&schedule);
        Ok((concert, schedule))
    }

    /// `GET /practice/runs/{run_id}`: the run and its crowd now (public, like a concert).
    pub async fn practice_run(&self, raw_run_id: &str) -> Result<RunView> {
        let run_id = parse_id(raw_run_id).ok_or(DomainError::NotFound("practice run"))?;
        let (concert, schedules) = self
            .store
            .concert_with_schedules(run_id)
            .await?
            .filter(|(concert, _)| concert.practice.is_some())
            .ok_or(DomainError::NotFound("practice run"))?;
        let schedule = schedules
            .into_iter()
            .next()
            .ok_or(DomainError::NotFound("practice run"))?;
        let crowd = self
            .crowd_of(&concert)
            .ok_or_else(|| DomainError::internal("no crowd"))?;
        let setup = concert.practice.as_ref().expect("a practice run");
        let now = self.clock.now();
        let at = offset(&concert, now);
        Ok(RunView {
            in_line: crowd.rivals_before(at),
            admitted: crowd.admitted_by(at),
            seats_gone: crowd.seats_gone(at),
            total_seats: schedule.total_seats,
            pace_per_second: setup.difficulty.pace_per_second(),
            now,
            concert,
            schedule,
        })
    }

    /// Entering a practice run's line: the fan stands behind the rivals who pressed "book"
    /// before them and the real fans who entered before them; no message goes to the
    /// admitter, whose work the crowd's pace does.
    pub(super) async fn enter_practice_line(
        &self,
        principal: &Principal,
        concert: &Concert,
        existing: Option<QueueToken>,
    ) -> Result<Place> {
        let now = self.clock.now();
        if let Some(token) = existing.filter(|token| token.is_alive(now)) {
            let token = self.practice_token_now(concert, token).await?;
            return self.practice_place(concert, token, false);
        }
        let crowd = self
            .crowd_of(concert)
            .ok_or_else(|| DomainError::internal("no crowd"))?;
        let entered_ms = offset(concert, now).max(0);
        // Real fans are ordered by this counter, as a line's shard orders its entrants.
        let rank = self.store.next_queue_number(concert.concert_id, 0).await?;
        let token = QueueToken {
            token_id: new_id(),
            user_id: principal.user_id,
            concert_id: concert.concert_id,
            number: rank,
            shard: 0,
            prequeue_rank: None,
            opens_at: None,
            status: StoredStatus::Waiting,
            issued_at: now,
            expires_at: now + Duration::seconds(self.config.queue_wait_ttl_seconds),
            active_until: None,
            entered_at_ms: now.timestamp_millis(),
            practice: Some(PracticePlace {
                entered_ms,
                ahead: crowd.rivals_before(entered_ms) + rank.saturating_sub(1),
                captcha_passed: false,
            }),
        };
        if !self.store.put_queue_token(&token, now).await? {
            let existing = self
                .store
                .queue_token(concert.concert_id, principal.user_id)
                .await?
                .ok_or(DomainError::busy())?;
            if existing.token_id != token.token_id {
                // Entered at the same moment by another request of the fan's: that place.
                let existing = self.practice_token_now(concert, existing).await?;
                return self.practice_place(concert, existing, false);
            }
        }
        let token = self.practice_token_now(concert, token).await?;
        self.practice_place(concert, token, true)
    }

    fn practice_place(&self, concert: &Concert, token: QueueToken, created: bool) -> Result<Place> {
        let standing = self.practice_standing(concert, &token);
        Ok(Place {
            queue_token: self.sign_queue_token(&token)?,
            token,
            status: standing.status,
            position: standing.position,
            created,
        })
    }

    /// A practice place as of now: activated if its turn has come (one conditional write; a
    /// concurrent poll that did it first is as good).
    pub(super) async fn practice_token_now(
        &self,
        concert: &Concert,
        token: QueueToken,
    ) -> Result<QueueToken> {
        let now = self.clock.now();
        let (Some(place), Some(crowd)) = (&token.practice, self.crowd_of(concert)) else {
            return Ok(token);
        };
        if token.status(now) != TokenStatus::Waiting
            || offset(concert, now) < crowd.admission_at(place.entered_ms, place.ahead)
        {
            return Ok(token);
        }
        let active_until = now + Duration::seconds(self.config.queue_active_ttl_seconds);
        if self
            .store
            .activate_practice_token(
                token.concert_id,
                token.user_id,
                token.token_id,
                active_until,
            )
            .await?
        {
            return Ok(QueueToken {
                status: StoredStatus::Active,
                active_until: Some(active_until),
                ..token
            });
        }
        Ok(self
            .store
            .queue_token(token.concert_id, token.user_id)
            .await?
            .filter(|stored| stored.token_id == token.token_id)
            .unwrap_or(token))
    }

    /// Where a practice place stands now: its position falls as the line moves at the run's
    /// pace.
    pub(super) fn practice_standing(
        &self,
        concert: &Concert,
        token: &QueueToken,
    ) -> PracticeStanding {
        let now = self.clock.now();
        let status = token.status(now);
        let (Some(place), Some(crowd), TokenStatus::Waiting) =
            (&token.practice, self.crowd_of(concert), status)
        else {
            return PracticeStanding {
                status,
                position: 0,
                estimated_wait_seconds: 0,
            };
        };
        let at = offset(concert, now);
        let admitted = crowd.admitted_by(at);
        let due = crowd.admission_at(place.entered_ms, place.ahead);
        PracticeStanding {
            status,
            position: place.ahead.saturating_sub(admitted),
            estimated_wait_seconds: ((due - at).max(0) as u64).div_ceil(1_000),
        }
    }

    /// A practice date's seats in `blocks` as an admitted fan sees them: the layout's seats,
    /// what real fans hold or bought (`stored`), and the crowd's seats at this moment.
    pub(crate) fn practice_seats(
        &self,
        concert: &Concert,
        schedule_id: Uuid,
        blocks: std::ops::Range<u32>,
        stored: Vec<SeatState>,
    ) -> Vec<SeatState> {
        let Some(total) = concert
            .practice
            .as_ref()
            .and_then(|setup| Venue::by_code(&setup.venue))
            .map(|venue| venue.total_seats())
        else {
            return stored;
        };
        let first = blocks.start * crate::practice::venue::ZONE_SEATS + 1;
        let last = (blocks.end * crate::practice::venue::ZONE_SEATS).min(total);
        (first..=last)
            .filter_map(|seat_no| self.practice_seat_state(concert, schedule_id, seat_no, &stored))
            .collect()
    }

    /// One seat of a practice date now: as stored if a real fan held it, else the layout's,
    /// and held by the crowd if a rival holds it now.
    pub(crate) fn practice_seat_state(
        &self,
        concert: &Concert,
        schedule_id: Uuid,
        seat_no: u32,
        stored: &[SeatState],
    ) -> Option<SeatState> {
        let crowd = self.crowd_of(concert)?;
        let now = self.clock.now();
        let mut state = match stored.iter().find(|state| state.seat.seat_no == seat_no) {
            Some(state) => state.clone(),
            None => SeatState {
                seat: self.practice_seat(concert, seat_no)?,
                schedule_id,
                concert_id: concert.concert_id,
                status: SeatStatus::Available,
                reservation_id: None,
                hold_expires_at: None,
                claimed_at_ms: None,
            },
        };
        let claimed = state
            .claimed_at_ms
            .map(|ms| ms - concert.booking_opens_at.timestamp_millis());
        if state.status(now) == SeatStatus::Available
            && crowd.rival_holds(seat_no, offset(concert, now), claimed)
        {
            // A rival's: shown held, by nobody the fan can see.
            state.status = SeatStatus::Held;
            state.reservation_id = None;
            state.hold_expires_at = Some(now + Duration::days(1));
        }
        Some(state)
    }

    /// The seat of a practice venue a hold asks for, if the layout has it.
    fn practice_seat(&self, concert: &Concert, seat_no: u32) -> Option<Seat> {
        Venue::by_code(&concert.practice.as_ref()?.venue)?.seat(seat_no)
    }

    /// A practice date's zones with their seats left now.
    pub(crate) fn practice_zones(&self, concert: &Concert, seats: &[SeatState]) -> Vec<ZoneView> {
        let Some(venue) = concert
            .practice
            .as_ref()
            .and_then(|setup| Venue::by_code(&setup.venue))
        else {
            return Vec::new();
        };
        let now = self.clock.now();
        venue
            .zones
            .iter()
            .map(|zone| {
                let range = zone.seat_nos();
                ZoneView {
                    zone: zone.index,
                    name: zone.name.clone(),
                    grade: zone.grade.to_owned(),
                    price: zone.price,
                    total: crate::practice::venue::ZONE_SEATS,
                    available: seats
                        .iter()
                        .filter(|s| range.contains(&s.seat.seat_no))
                        .filter(|s| s.status(now) == SeatStatus::Available)
                        .count() as u32,
                }
            })
            .collect()
    }

    /// `POST /practice/runs/{run_id}/captcha`: new security letters for an admitted fan.
    pub async fn practice_captcha(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_run_id: &str,
    ) -> Result<(String, String)> {
        let concert = self
            .admitted_practice(principal, queue_token, raw_run_id)
            .await?;
        if !concert.practice.as_ref().is_some_and(|setup| setup.captcha) {
            return Err(DomainError::NotFound("security letters"));
        }
        let id = captcha::new_id(
            &self.captcha_key,
            &concert.concert_id.to_string(),
            &principal.user_id.to_string(),
            self.clock.now().timestamp_millis(),
            random_u64(),
        );
        let image = captcha::image(&self.captcha_key, &id);
        Ok((id, image))
    }

    /// `POST /practice/runs/{run_id}/captcha/answer`: checks the typed letters; right, the
    /// fan's place may see the seats; wrong, a new picture comes with the refusal.
    pub async fn answer_practice_captcha(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_run_id: &str,
        captcha_id: &str,
        answer: &str,
    ) -> Result<()> {
        let concert = self
            .admitted_practice(principal, queue_token, raw_run_id)
            .await?;
        let (run, user) = (
            concert.concert_id.to_string(),
            principal.user_id.to_string(),
        );
        let now_ms = self.clock.now().timestamp_millis();
        if !captcha::check_id(&self.captcha_key, captcha_id, &run, &user, now_ms) {
            return Err(DomainError::validation(
                "captcha_id",
                "is not a current picture of this run: ask for a new one",
            ));
        }
        if !captcha::matches(&self.captcha_key, captcha_id, answer) {
            let id = captcha::new_id(&self.captcha_key, &run, &user, now_ms, random_u64());
            let image = captcha::image(&self.captcha_key, &id);
            return Err(DomainError::CaptchaMismatch {
                captcha_id: id,
                image,
            });
        }
        let claims = self.admission_claims(principal, queue_token)?;
        if !self
            .store
            .pass_practice_captcha(concert.concert_id, principal.user_id, claims.tid)
            .await?
        {
            return Err(DomainError::QueueTokenExpired(
                "the queue token was replaced by a newer one",
            ));
        }
        Ok(())
    }

    /// The practice concert of a run whose line admitted the caller.
    async fn admitted_practice(
        &self,
        principal: &Principal,
        queue_token: Option<&str>,
        raw_run_id: &str,
    ) -> Result<Concert> {
        let run_id = parse_id(raw_run_id).ok_or(DomainError::NotFound("practice run"))?;
        // The queue token is judged before anything is read.
        self.admission_claims(principal, queue_token)?;
        let concert = self.concert(raw_run_id).await?;
        if concert.practice.is_none() {
            return Err(DomainError::NotFound("practice run"));
        }
        self.require_admitted(principal, queue_token, run_id)
            .await?;
        Ok(concert)
    }

    /// `POST /practice/runs/{run_id}/results`: the fan's run, timed by the page step by step,
    /// set against the crowd and kept in their history.
    pub async fn record_practice_result(
        &self,
        principal: &Principal,
        raw_run_id: &str,
        body: NewResult,
    ) -> Result<PracticeResult> {
        body.validate()?;
        let run_id = parse_id(raw_run_id).ok_or(DomainError::NotFound("practice run"))?;
        let concert = self.concert(raw_run_id).await?;
        let setup = concert
            .practice
            .clone()
            .ok_or(DomainError::NotFound("practice run"))?;
        let crowd = self
            .crowd_of(&concert)
            .ok_or_else(|| DomainError::internal("no crowd"))?;
        let reservation = match body.reservation_id.as_deref() {
            Some(raw) => {
                let id = parse_id(raw).ok_or_else(|| {
                    DomainError::validation("reservation_id", "must be a reservation id")
                })?;
                let reservation = self
                    .store
                    .reservation(principal.user_id, id)
                    .await?
                    .filter(|r| r.concert_id == run_id)
                    .ok_or(DomainError::NotFound("reservation"))?;
                Some(reservation)
            }
            None => None,
        };
        let place = self
            .store
            .queue_token(run_id, principal.user_id)
            .await?
            .and_then(|token| token.practice);
        let venue = Venue::by_code(&setup.venue);
        let total = venue.as_ref().map_or(1, Venue::total_seats).max(1);
        let picked_ms = reservation.as_ref().map(|r| offset(&concert, r.created_at));
        let now = self.clock.now();
        let result = PracticeResult {
            run_id,
            title: concert.title.clone(),
            site: concert
                .template_code
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            difficulty: setup.difficulty.clone(),
            venue: setup.venue.clone(),
            entered_ms: place.as_ref().map(|p| p.entered_ms),
            faster_than_percent: place
                .as_ref()
                .map(|p| (crowd.share_slower(p.entered_ms) * 1000.0).round() / 10.0),
            ahead_at_entry: place.as_ref().map(|p| p.ahead),
            picked_ms,
            seats_gone_percent: picked_ms.map(|at| {
                (f64::from(crowd.seats_gone(at)) * 1000.0 / f64::from(total)).round() / 10.0
            }),
            seats: reservation
                .as_ref()
                .map(|r| r.seat_nos())
                .unwrap_or_default(),
            grade: reservation
                .as_ref()
                .and_then(|r| r.seats.first().map(|s| s.grade.clone())),
            total_ms: body.steps.iter().map(|s| s.ms).sum(),
            steps: body.steps,
            recorded_at: now,
        };
        self.store
            .put_practice_result(principal.user_id, &result)
            .await?;
        Ok(result)
    }

    /// `GET /me/practice`: the fan's latest runs, and their best per site (seats won in the
    /// least time; without seats, the quickest into line).
    pub async fn practice_history(&self, principal: &Principal) -> Result<History> {
        let recent = self.store.practice_results(principal.user_id, 50).await?;
        let mut best: BTreeMap<String, PracticeResult> = BTreeMap::new();
        let rank = |r: &PracticeResult| {
            (
                r.seats.is_empty(),
                if r.seats.is_empty() { 0 } else { r.total_ms },
                -(r.faster_than_percent.unwrap_or(0.0) * 10.0) as i64,
            )
        };
        for result in &recent {
            let better = best
                .get(&result.site)
                .is_none_or(|current| rank(result) < rank(current));
            if better {
                best.insert(result.site.clone(), result.clone());
            }
        }
        Ok(History {
            recent: recent.into_iter().take(20).collect(),
            best,
        })
    }
}
