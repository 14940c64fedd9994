//! The waiting queue's rules: what a queue token is, what state it is in at a given time, where
//! its holder stands in line, and how long the wait should be.
//!
//! A queue token is two things. The JWT the client holds names the user, the concert, the token
//! id and the place in line (signed, so it cannot be forged or moved to another user or concert).
//! Its live state (WAITING, ACTIVE, EXPIRED and the times) is a DynamoDB item, because it changes:
//! the admitter activates it, paying or leaving ends it. Every decision below compares stored
//! times with the clock, so a token whose time has passed is expired everywhere at once, with no
//! sweeper involved.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const QUEUE_AUDIENCE: &str = "queue";

/// The claims of a queue token JWT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueClaims {
    pub sub: Uuid,
    /// The concert this place in line is for.
    pub cid: Uuid,
    /// The token id; a later token of the same user for the same concert has another.
    pub tid: Uuid,
    /// The place in line within its shard: 1 for the shard's first entrant (0 in a pre-queue).
    pub num: u64,
    /// The entry shard the place belongs to (absent, so 0, in tokens of one-shard lines).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shd: u32,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl crate::auth::Expiring for QueueClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StoredStatus {
    Waiting,
    Active,
    /// Ended early: the holder left or paid.
    Expired,
}

/// The status a client sees: the stored one, corrected by the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenStatus {
    Waiting,
    Active,
    Expired,
}

/// A queue token's live state, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueToken {
    pub token_id: Uuid,
    pub user_id: Uuid,
    pub concert_id: Uuid,
    /// The place in its shard's line (0 for a pre-queue entrant, whose place is its rank).
    pub number: u64,
    /// The entry shard: its counter numbered the place and its message group carries it.
    #[serde(default)]
    pub shard: u32,
    /// Set for an entrant of a randomised pre-queue: a uniformly random rank, admitted in rank
    /// order at the opening, ahead of everyone who entered after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prequeue_rank: Option<u64>,
    /// For an early entrant: the opening, before which nobody is admitted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "chrono::serde::ts_milliseconds_option"
    )]
    pub opens_at: Option<DateTime<Utc>>,
    pub status: StoredStatus,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub issued_at: DateTime<Utc>,
    /// Until when the token may wait to be admitted.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub expires_at: DateTime<Utc>,
    /// Set when admitted: until when the holder may book.
    #[serde(default, with = "chrono::serde::ts_milliseconds_option")]
    pub active_until: Option<DateTime<Utc>>,
    /// When the place was numbered (wall clock, epoch ms): the admitter merges shards on it.
    #[serde(default)]
    pub entered_at_ms: i64,
    /// A place in a practice run's line (its crowd is simulated, `practice::crowd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice: Option<PracticePlace>,
}

/// Where a fan stood when they entered a practice run's line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PracticePlace {
    /// When they entered, ms after the opening.
    pub entered_ms: i64,
    /// The people then ahead of them: rivals who were faster and real fans before them.
    pub ahead: u64,
    /// They typed the run's security letters (the seat map and holds need it).
    #[serde(default)]
    pub captcha_passed: bool,
}

impl QueueToken {
    pub fn status(&self, now: DateTime<Utc>) -> TokenStatus {
        match self.status {
            StoredStatus::Expired => TokenStatus::Expired,
            StoredStatus::Active => match self.active_until {
                Some(until) if now < until => TokenStatus::Active,
                _ => TokenStatus::Expired,
            },
            StoredStatus::Waiting if now < self.expires_at => TokenStatus::Waiting,
            StoredStatus::Waiting => TokenStatus::Expired,
        }
    }

    /// Still holds a place: waiting in time, or active in time.
    pub fn is_alive(&self, now: DateTime<Utc>) -> bool {
        self.status(now) != TokenStatus::Expired
    }

    /// Whether admission has gone past this waiting place without admitting it: its shard's
    /// `admitted_up_to` reached its number while it still waits. Only a place whose entrant
    /// left, or whose entry never reached the admitter in time (a crash or a fault between
    /// taking the number and sending it), is passed over; the place has ended.
    pub fn passed_over(&self, progress: &ShardProgress) -> bool {
        self.status == StoredStatus::Waiting
            && self.prequeue_rank.is_none()
            && self.number <= progress.admitted_up_to
    }

    /// The status at `now` in the light of the shard's progress: a place passed over has
    /// expired.
    pub fn status_in_line(&self, now: DateTime<Utc>, progress: &ShardProgress) -> TokenStatus {
        if self.passed_over(progress) {
            TokenStatus::Expired
        } else {
            self.status(now)
        }
    }

    /// The time after which nothing about this token matters any more.
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.active_until.unwrap_or(self.expires_at)
    }
}

/// The people ahead of place `number` when everyone up to `admitted_up_to` has been admitted
/// (or passed over): 0 means next in line.
pub fn position(number: u64, admitted_up_to: u64) -> u64 {
    number.saturating_sub(admitted_up_to).saturating_sub(1)
}

/// Where a waiting token stands, from its own shard's progress: the people ahead of it in its
/// shard, times the number of shards (entrants pick shards uniformly, so the other shards hold
/// about as many people ahead). Exact with one shard; an estimate with more.
pub fn position_in_line(token: &QueueToken, progress: &ShardProgress, shards: u32) -> u64 {
    match token.prequeue_rank {
        Some(rank) => progress
            .pre_ahead_of(rank)
            .saturating_mul(u64::from(shards.max(1))),
        None => numbered_position(
            token.number,
            progress.admitted_up_to,
            progress.pre_remaining(),
            shards,
        ),
    }
}

/// The position of numbered place `number` of a shard that admission has taken up to
/// `admitted_up_to`, with `pre_remaining` pre-queue entrants of the shard still ahead of every
/// numbered place, in a line of `shards` entry shards.
pub fn numbered_position(number: u64, admitted_up_to: u64, pre_remaining: u64, shards: u32) -> u64 {
    (position(number, admitted_up_to) + pre_remaining).saturating_mul(u64::from(shards.max(1)))
}

/// The wait shown with `position`: the opening first (for an early entrant), then the people
/// ahead at the pace the entrant's shard has been admitted at, which stands for the concert's
/// (shards are filled evenly).
pub fn shown_wait_seconds(
    position: u64,
    shard_history: &AdmissionHistory,
    shards: u32,
    opens_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_active: u32,
    active_ttl_seconds: i64,
) -> u64 {
    let history = AdmissionHistory {
        admitted_total: shard_history.admitted_total * u64::from(shards.max(1)),
        first_admitted_at: shard_history.first_admitted_at,
    };
    let until_opening = opens_at.map_or(0, |opens_at| (opens_at - now).num_seconds().max(0) as u64);
    until_opening + estimated_wait_seconds(position, &history, now, max_active, active_ttl_seconds)
}

/// A concert's admission progress as published for waiting clients (`GET
/// /queue/progress/{concert_id}`, cached about a second at the edge): with the place their
/// signed queue token names (shard and number), a client computes its position and wait as
/// `GET /queue/tokens/current` would, and asks the API only once admission has reached its
/// number. Nothing in it is about any one fan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueProgress {
    pub concert_id: Uuid,
    /// When the progress was read.
    pub published_at: DateTime<Utc>,
    /// How many entry shards the line has (a token's `shd` is below it).
    pub entry_shards: u32,
    /// The active slots and their time, for the wait before anyone has been admitted.
    pub max_active: u32,
    pub active_ttl_seconds: i64,
    /// Per entry shard, in shard order.
    pub shards: Vec<PublishedShard>,
}

/// One entry shard's progress, as published.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishedShard {
    /// Every numbered place of the shard up to this one has been admitted or passed over.
    pub admitted_up_to: u64,
    /// Pre-queue entrants of the shard still ahead of every numbered place.
    pub pre_remaining: u64,
    /// Admissions from the shard so far, and the first one's time: the admission pace.
    pub admitted: u64,
    pub first_admitted_at: Option<DateTime<Utc>>,
}

/// Where a numbered place stands by the published progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishedStanding {
    Waiting {
        position: u64,
        estimated_wait_seconds: u64,
    },
    /// Admission has reached the place: it was admitted, or passed over (its holder left or
    /// it came too late). Only the API knows which.
    Reached,
}

impl QueueProgress {
    /// The document for `shards`' progress (shard order), read at `now`.
    pub fn publish(
        concert_id: Uuid,
        shards: &[ShardProgress],
        now: DateTime<Utc>,
        max_active: u32,
        active_ttl_seconds: i64,
    ) -> Self {
        QueueProgress {
            concert_id,
            published_at: now,
            entry_shards: shards.len() as u32,
            max_active,
            active_ttl_seconds,
            shards: shards
                .iter()
                .map(|progress| PublishedShard {
                    admitted_up_to: progress.admitted_up_to,
                    pre_remaining: progress.pre_remaining(),
                    admitted: progress.history.admitted_total,
                    first_admitted_at: progress.history.first_admitted_at,
                })
                .collect(),
        }
    }

    /// Where numbered place `number` of shard `shard` stands at `now` (a pre-queue place, number
    /// 0, is ranked in secret: its holder asks the API). `None` for a shard the line does not
    /// have.
    pub fn standing(
        &self,
        shard: u32,
        number: u64,
        now: DateTime<Utc>,
    ) -> Option<PublishedStanding> {
        let published = self.shards.get(shard as usize)?;
        if number == 0 {
            return None;
        }
        if number <= published.admitted_up_to {
            return Some(PublishedStanding::Reached);
        }
        let position = numbered_position(
            number,
            published.admitted_up_to,
            published.pre_remaining,
            self.entry_shards,
        );
        let history = AdmissionHistory {
            admitted_total: published.admitted,
            first_admitted_at: published.first_admitted_at,
        };
        Some(PublishedStanding::Waiting {
            position,
            estimated_wait_seconds: shown_wait_seconds(
                position,
                &history,
                self.entry_shards,
                None,
                now,
                self.max_active,
                self.active_ttl_seconds,
            ),
        })
    }
}

/// How admission has gone so far for one concert, kept on the concert's queue counter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdmissionHistory {
    pub admitted_total: u64,
    pub first_admitted_at: Option<DateTime<Utc>>,
}

/// Seconds until `position` more people have been admitted, at the rate observed since the
/// concert's first admission. Before there is a rate to observe, assume every active slot turns
/// over once per active period, which is the slowest the queue can move while people are
/// waiting.
pub fn estimated_wait_seconds(
    position: u64,
    history: &AdmissionHistory,
    now: DateTime<Utc>,
    max_active: u32,
    active_ttl_seconds: i64,
) -> u64 {
    let people = position + 1;
    let observed = history.first_admitted_at.and_then(|first| {
        let elapsed = (now - first).num_milliseconds() as f64 / 1000.0;
        // Under a few seconds of history the rate is noise (the first step admits a burst).
        (elapsed >= 5.0 && history.admitted_total > 0)
            .then(|| history.admitted_total as f64 / elapsed)
    });
    let per_second =
        observed.unwrap_or_else(|| f64::from(max_active.max(1)) / active_ttl_seconds.max(1) as f64);
    (people as f64 / per_second).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn token(status: StoredStatus, active_until: Option<DateTime<Utc>>) -> QueueToken {
        QueueToken {
            token_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            concert_id: Uuid::now_v7(),
            number: 7,
            shard: 0,
            prequeue_rank: None,
            opens_at: None,
            status,
            issued_at: t0(),
            expires_at: t0() + Duration::hours(6),
            active_until,
            entered_at_ms: 0,
            practice: None,
        }
    }

    #[test]
    fn a_waiting_place_that_admission_went_past_should_have_expired() {
        let waiting = token(StoredStatus::Waiting, None);
        let mut progress = ShardProgress {
            admitted_up_to: 6,
            ..ShardProgress::default()
        };
        assert_eq!(
            waiting.status_in_line(t0(), &progress),
            TokenStatus::Waiting
        );
        progress.admitted_up_to = 7;
        assert!(waiting.passed_over(&progress));
        assert_eq!(
            waiting.status_in_line(t0(), &progress),
            TokenStatus::Expired
        );
        // Admitted places are not passed over: admission moved past them by admitting them.
        let active = token(StoredStatus::Active, Some(t0() + Duration::minutes(10)));
        assert_eq!(active.status_in_line(t0(), &progress), TokenStatus::Active);
        // A pre-queue place is ranked, not numbered.
        let early = QueueToken {
            prequeue_rank: Some(5),
            number: 0,
            ..token(StoredStatus::Waiting, None)
        };
        assert!(!early.passed_over(&progress));
    }

    #[test]
    fn when_waiting_token_outlives_its_deadline_should_be_expired() {
        let waiting = token(StoredStatus::Waiting, None);
        assert_eq!(waiting.status(t0()), TokenStatus::Waiting);
        assert_eq!(
            waiting.status(t0() + Duration::hours(6)),
            TokenStatus::Expired
        );
    }

    #[test]
    fn when_active_period_ends_should_be_expired_without_any_sweeper() {
        let active = token(StoredStatus::Active, Some(t0() + Duration::seconds(600)));
        assert_eq!(active.status(t0()), TokenStatus::Active);
        assert_eq!(
            active.status(t0() + Duration::seconds(599)),
            TokenStatus::Active
        );
        assert_eq!(
            active.status(t0() + Duration::seconds(600)),
            TokenStatus::Expired
        );
        assert!(!active.is_alive(t0() + Duration::seconds(600)));
    }

    #[test]
    fn when_ended_early_should_be_expired_whatever_the_times() {
        let ended = token(StoredStatus::Expired, Some(t0() + Duration::hours(1)));
        assert_eq!(ended.status(t0()), TokenStatus::Expired);
    }

    #[test]
    fn position_should_count_the_people_ahead() {
        assert_eq!(position(1, 0), 0);
        assert_eq!(position(5, 0), 4);
        assert_eq!(position(5, 3), 1);
        assert_eq!(position(5, 9), 0);
    }

    #[test]
    fn with_one_shard_and_no_pre_queue_the_position_should_be_exact() {
        let progress = ShardProgress {
            admitted_up_to: 3,
            ..ShardProgress::default()
        };
        assert_eq!(
            position_in_line(&token(StoredStatus::Waiting, None), &progress, 1),
            3
        );
    }

    #[test]
    fn with_shards_the_position_should_scale_the_shard_by_the_shard_count() {
        let progress = ShardProgress {
            admitted_up_to: 3,
            ..ShardProgress::default()
        };
        // Three ahead in its own shard, so about twelve ahead over four shards.
        assert_eq!(
            position_in_line(&token(StoredStatus::Waiting, None), &progress, 4),
            12
        );
    }

    #[test]
    fn pre_queue_positions_should_follow_the_rank_and_the_cursor() {
        let mut progress = ShardProgress {
            pre_count: 1000,
            ..ShardProgress::default()
        };
        let mut early = token(StoredStatus::Waiting, None);
        early.prequeue_rank = Some(u64::MAX / 4);
        // A quarter of the way through the rank range: about 250 ahead.
        assert_eq!(position_in_line(&early, &progress, 1), 249);
        // Those who come after the opening stand behind the whole pre-queue.
        let late = token(StoredStatus::Waiting, None);
        assert_eq!(position_in_line(&late, &progress, 1), 6 + 999);
        // Half the pre-queue admitted: the early one is next, the late one 500 closer.
        progress.pre_cursor = Some(u64::MAX / 2);
        assert_eq!(position_in_line(&early, &progress, 1), 0);
        assert_eq!(position_in_line(&late, &progress, 1), 6 + 500);
        progress.pre_done = true;
        assert_eq!(position_in_line(&late, &progress, 1), 6);
    }

    #[test]
    fn wait_estimate_should_use_the_observed_rate_once_there_is_one() {
        let history = AdmissionHistory {
            admitted_total: 100,
            first_admitted_at: Some(t0()),
        };
        // 100 admitted in 50 s: 2 a second, so 10 people take 5 s.
        let now = t0() + Duration::seconds(50);
        assert_eq!(estimated_wait_seconds(9, &history, now, 100, 600), 5);
    }

    #[test]
    fn the_published_progress_should_place_a_token_as_the_api_does() {
        // Token number 7 of shard 1; shard 1 admitted up to 3, with a pre-queue half through.
        let mut waiting = token(StoredStatus::Waiting, None);
        waiting.shard = 1;
        let shards = [
            ShardProgress::default(),
            ShardProgress {
                admitted_up_to: 3,
                history: AdmissionHistory {
                    admitted_total: 40,
                    first_admitted_at: Some(t0()),
                },
                pre_count: 100,
                pre_cursor: Some(u64::MAX / 2),
                ..ShardProgress::default()
            },
        ];
        let now = t0() + Duration::seconds(20);
        let published = QueueProgress::publish(Uuid::now_v7(), &shards, now, 10, 600);
        // Through JSON, as a client gets it.
        let published: QueueProgress =
            serde_json::from_str(&serde_json::to_string(&published).unwrap()).unwrap();
        let position = position_in_line(&waiting, &shards[1], 2);
        assert_eq!(position, (3 + 50) * 2);
        let wait = shown_wait_seconds(position, &shards[1].history, 2, None, now, 10, 600);
        assert_eq!(
            published.standing(1, 7, now),
            Some(PublishedStanding::Waiting {
                position,
                estimated_wait_seconds: wait,
            })
        );
        // Admission reached the number: only the API knows whether it was admitted.
        assert_eq!(
            published.standing(1, 3, now),
            Some(PublishedStanding::Reached)
        );
        // A pre-queue place (number 0) and a shard the line does not have: ask the API.
        assert_eq!(published.standing(1, 0, now), None);
        assert_eq!(published.standing(2, 7, now), None);
    }

    #[test]
    fn wait_estimate_before_any_admission_should_assume_slots_turn_over_once_per_period() {
        let none = AdmissionHistory::default();
        // 10 slots every 600 s: the 20th person in line waits 1200 s.
        assert_eq!(estimated_wait_seconds(19, &none, t0(), 10, 600), 1200);
    }
}

/// How far admission has come in one entry shard of a concert's line: what a poller reads
/// with its token. Written by the admitter (and, before the opening, counted up by the
/// pre-queue's entrants).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardProgress {
    /// Every place of the shard up to this number has been admitted or passed over.
    pub admitted_up_to: u64,
    /// Admissions from this shard, for the wait estimate.
    pub history: AdmissionHistory,
    /// Entrants of the shard's pre-queue.
    pub pre_count: u64,
    /// The rank of the last pre-queue entrant admitted or passed over in this shard.
    pub pre_cursor: Option<u64>,
    /// Every pre-queue entrant of the shard has been admitted or passed over.
    pub pre_done: bool,
}

impl ShardProgress {
    /// Pre-queue entrants of the shard ranked ahead of `rank` and not yet admitted. Ranks are
    /// uniform over the `u64` range, so the share of the range between the cursor and `rank`
    /// is the share of the pre-queue between them.
    pub fn pre_ahead_of(&self, rank: u64) -> u64 {
        let cursor = self.pre_cursor.unwrap_or(0);
        if self.pre_done || rank <= cursor {
            return 0;
        }
        share(self.pre_count, rank - cursor)
    }

    /// Pre-queue entrants of the shard not yet admitted.
    pub fn pre_remaining(&self) -> u64 {
        if self.pre_done || self.pre_count == 0 {
            return 0;
        }
        share(self.pre_count, u64::MAX - self.pre_cursor.unwrap_or(0))
    }
}

/// `count` × `span` / 2⁶⁴, rounded down.
fn share(count: u64, span: u64) -> u64 {
    ((u128::from(count) * u128::from(span)) >> 64) as u64
}
