//! Practice runs: an on-sale of a concert played against a simulated crowd of rivals, for fans
//! to practise the real thing (docs/API.md, "Practice runs").
//!
//! A run is its own concert with one date whose seats are a venue's layout ([`venue`]); the
//! rivals ([`crowd`]) exist only as a deterministic function of the run's seed: where they
//! stand in line, when each is admitted, which seats they take and when, and which of those
//! holds run out unpaid. Nothing is written for a rival: what a real fan does is stored as any
//! booking is, and the crowd is laid over it when the line or the seats are read. The security
//! letters ([`captcha`]) are derived from the service's key, so checking them stores nothing.

pub mod captcha;
pub mod crowd;
pub mod venue;

use crate::error::{DomainError, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The crowds this process built lately, by run (a crowd takes a few milliseconds to build and
/// never changes).
#[derive(Debug, Default)]
pub struct CrowdCache {
    crowds: std::sync::Mutex<std::collections::VecDeque<(Uuid, std::sync::Arc<crowd::Crowd>)>>,
}

impl CrowdCache {
    const KEPT: usize = 16;

    /// The crowd of a run, built if this process has not got it.
    pub fn get(&self, run_id: Uuid, setup: &PracticeSetup) -> Option<std::sync::Arc<crowd::Crowd>> {
        if let Some((_, crowd)) = self
            .crowds
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| *id == run_id)
        {
            return Some(crowd.clone());
        }
        let venue = venue::Venue::by_code(&setup.venue)?;
        let crowd = std::sync::Arc::new(crowd::Crowd::new(
            setup.seed,
            &setup.difficulty,
            &venue,
            (setup.hold_ttl_seconds * 1_000).clamp(0, i64::from(u32::MAX)) as u32,
        ));
        let mut crowds = self.crowds.lock().unwrap();
        if crowds.len() >= Self::KEPT {
            crowds.pop_front();
        }
        crowds.push_back((run_id, crowd.clone()));
        Some(crowd)
    }
}

/// What makes a concert a practice run (stored on the run's own concert).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PracticeSetup {
    /// The crowd follows from it alone.
    pub seed: u64,
    pub difficulty: Difficulty,
    /// The venue's code ([`venue::CODES`]).
    pub venue: String,
    /// The concert being practised.
    pub source_concert_id: Uuid,
    /// The site's steps include the security letters before the seats.
    pub captcha: bool,
    /// How long holds last in this run; rivals' unpaid holds come back after it.
    pub hold_ttl_seconds: i64,
    pub created_by: Uuid,
}

/// The body of `POST /practice/runs`.
#[derive(Debug, Deserialize)]
pub struct NewRun {
    pub concert_id: String,
    /// A preset name (`easy`, `normal`, `hard`, `extreme`) or `{rivals, reaction,
    /// focus_percent}`; `normal` when absent.
    #[serde(default)]
    pub difficulty: Option<DifficultyChoice>,
    /// A venue code; when absent, the smallest that holds the concert's first date.
    #[serde(default)]
    pub venue: Option<String>,
    /// `now` (the default: the run opens `countdown_seconds` from now) or `open` (at the
    /// concert's own opening, which must be ahead).
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub countdown_seconds: Option<u32>,
    /// To play a given crowd again; random when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The booking site whose steps to practise (`interpark`, `yes24`, `melon`, `ticketlink`,
    /// `default`); the imported page's when absent.
    #[serde(default)]
    pub site: Option<String>,
}

/// The body of `POST /practice/runs/{run_id}/captcha/answer`.
#[derive(Debug, Deserialize)]
pub struct CaptchaAnswer {
    pub captcha_id: String,
    pub answer: String,
}

impl CaptchaAnswer {
    pub fn validate(&self) -> Result<()> {
        crate::validate::text("captcha_id", &self.captcha_id, 1, 300)?;
        crate::validate::text("answer", &self.answer, 1, 20)
    }
}

/// The default countdown to a run's opening, and its bounds.
pub const DEFAULT_COUNTDOWN_SECONDS: u32 = 30;
pub const MAX_COUNTDOWN_SECONDS: u32 = 600;

/// One timed step of a practice, as the page reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTime {
    pub step: String,
    /// Milliseconds the step took.
    pub ms: u64,
}

/// The body of `POST /practice/runs/{run_id}/results`.
#[derive(Debug, Deserialize)]
pub struct NewResult {
    pub steps: Vec<StepTime>,
    /// The reservation the fan won, if any.
    #[serde(default)]
    pub reservation_id: Option<String>,
}

impl NewResult {
    pub fn validate(&self) -> Result<()> {
        if self.steps.len() > 20 {
            return Err(DomainError::validation("steps", "at most 20 steps"));
        }
        for (index, step) in self.steps.iter().enumerate() {
            crate::validate::text(&format!("steps[{index}].step"), &step.step, 1, 40)?;
            crate::validate::range(&format!("steps[{index}].ms"), step.ms as i64, 0, 3_600_000)?;
        }
        Ok(())
    }
}

/// A practice run's outcome for one fan, as kept in their history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PracticeResult {
    pub run_id: Uuid,
    pub title: String,
    /// The booking-page layout practised.
    pub site: String,
    pub difficulty: Difficulty,
    pub venue: String,
    /// When the fan entered the line, ms after the opening (`None`: never entered).
    pub entered_ms: Option<i64>,
    /// Of the crowd, the percentage who entered after the fan.
    pub faster_than_percent: Option<f64>,
    /// The people ahead of the fan when they entered.
    pub ahead_at_entry: Option<u64>,
    /// When the fan's hold was made, ms after the opening, and the percentage of seats gone
    /// then.
    pub picked_ms: Option<i64>,
    pub seats_gone_percent: Option<f64>,
    /// The seats won, and their grade.
    pub seats: Vec<u32>,
    pub grade: Option<String>,
    pub steps: Vec<StepTime>,
    /// The whole practice, ms (the steps' sum).
    pub total_ms: u64,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// The fewest and most rivals a run may have.
pub const MIN_RIVALS: u32 = 100;
pub const MAX_RIVALS: u32 = 200_000;

/// How fast the rivals press "book" at the opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    /// Half within 0.6 s: the macro-and-server-clock crowd of the biggest shows.
    Fast,
    /// Half within 1.5 s.
    Normal,
    /// Half within 3.5 s.
    Relaxed,
}

impl Reaction {
    /// The median reaction, in milliseconds after the opening.
    pub fn median_ms(self) -> f64 {
        match self {
            Reaction::Fast => 600.0,
            Reaction::Normal => 1_500.0,
            Reaction::Relaxed => 3_500.0,
        }
    }
}

/// How hard a run is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difficulty {
    pub rivals: u32,
    pub reaction: Reaction,
    /// Of the rivals, the share (percent) after the best grade.
    pub focus_percent: u32,
}

impl Difficulty {
    /// The presets the page offers.
    pub fn preset(name: &str) -> Option<Self> {
        let (rivals, reaction, focus_percent) = match name {
            "easy" => (3_000, Reaction::Relaxed, 40),
            "normal" => (10_000, Reaction::Normal, 60),
            "hard" => (30_000, Reaction::Fast, 70),
            "extreme" => (100_000, Reaction::Fast, 85),
            _ => return None,
        };
        Some(Self {
            rivals,
            reaction,
            focus_percent,
        })
    }

    pub fn validate(&self) -> Result<()> {
        crate::validate::range(
            "difficulty.rivals",
            self.rivals.into(),
            MIN_RIVALS.into(),
            MAX_RIVALS.into(),
        )?;
        crate::validate::range(
            "difficulty.focus_percent",
            self.focus_percent.into(),
            0,
            100,
        )?;
        Ok(())
    }

    /// The admission pace of the run's line, people a second: a crowd of 10,000 goes through
    /// in about 50 s, 100,000 in about two minutes.
    pub fn pace_per_second(&self) -> f64 {
        (f64::from(self.rivals) / 50.0).clamp(100.0, 800.0)
    }
}

/// A small deterministic generator (SplitMix64): the crowd must be the same on every machine
/// and for every real fan of a run, from its seed alone.
#[derive(Clone, Debug)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator for one item of a run (a rival, a letter), independent of the others.
    pub fn for_item(seed: u64, stream: u64, item: u64) -> Self {
        let mut mixer = Self(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let base = mixer.next_u64();
        Self(base ^ item.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// The standard normal distribution's CDF (Abramowitz and Stegun 7.1.26; error below 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Its inverse (Acklam's algorithm; relative error below 1.2e-9), for `p` in (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A `difficulty` given by preset name or in full.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum DifficultyChoice {
    Preset(String),
    Custom(Difficulty),
}

impl DifficultyChoice {
    pub fn resolve(&self) -> Result<Difficulty> {
        let difficulty = match self {
            DifficultyChoice::Preset(name) => Difficulty::preset(name).ok_or_else(|| {
                DomainError::validation(
                    "difficulty",
                    "must be easy, normal, hard or extreme, or {rivals, reaction, focus_percent}",
                )
            })?,
            DifficultyChoice::Custom(difficulty) => difficulty.clone(),
        };
        difficulty.validate()?;
        Ok(difficulty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_distribution_should_invert() {
        for p in [0.001, 0.02, 0.3, 0.5, 0.77, 0.99] {
            let x = normal_quantile(p);
            assert!((normal_cdf(x) - p).abs() < 1e-6, "{p}: {x}");
        }
        assert!((normal_quantile(0.5)).abs() < 1e-9);
    }

    #[test]
    fn the_generator_should_be_the_same_everywhere() {
        let mut random = Random::new(7);
        let first: Vec<u64> = (0..3).map(|_| random.next_u64()).collect();
        assert_eq!(
            first,
            [
                Random::new(7).next_u64(),
                {
                    let mut r = Random::new(7);
                    r.next_u64();
                    r.next_u64()
                },
                {
                    let mut r = Random::new(7);
                    r.next_u64();
                    r.next_u64();
                    r.next_u64()
                }
            ]
        );
        assert_ne!(
            Random::for_item(7, 1, 1).next_u64(),
            Random::for_item(7, 1, 2).next_u64()
        );
    }
}
