//! The rival crowd of a practice run, a pure function of the run's seed.
//!
//! - **The line.** Rivals press "book" at the opening plus a reaction time drawn from a
//!   log-normal distribution (half within the reaction's median, a long tail), so the number
//!   of rivals in line before any moment is a closed form (`rivals_before`). Admission moves
//!   at the run's pace: by `t`, `min(arrived(t), pace × t)` people are through. A real fan who
//!   enters at `a` stands behind the rivals who were faster and the real fans before them.
//! - **The seats.** Rival `k` (in arrival order) is admitted at `max(arrival, k / pace)`,
//!   thinks (the security letters, the map) for a log-normal while, and then takes 1 to 4
//!   seats side by side where it can, the best grade first for the share of the crowd after
//!   it, the front rows more than the back; most of the crowd never gets that far. Each
//!   take is simulated in time order against the seats taken before it, so two rivals never
//!   share a seat; a fifth of the holds run out unpaid at the hold time and the seats come
//!   back (the cancelled-seat pickup, 취켓팅), and rivals do not take them again.
//! - **Real fans win ties they were first to.** A rival's take of a seat a real fan claimed
//!   before it fails (the rival loses that seat), and a real fan's hold of a seat a rival
//!   holds at that moment is refused as any conflict is: see [`Crowd::rival_holds`].
//!
//! Everything is in milliseconds after the opening.

use super::venue::{Venue, ZONE_SEATS};
use super::{normal_cdf, normal_quantile, Difficulty, Random};

/// The log-normal spread of reaction times.
const REACTION_SIGMA: f64 = 0.9;
/// Think time before a rival's take: median and spread.
const THINK_MEDIAN_MS: f64 = 15_000.0;
const THINK_SIGMA: f64 = 0.6;
/// Share of rivals who get as far as taking seats.
const TAKERS: f64 = 0.4;
/// Share of rival holds that run out unpaid.
const UNPAID: f64 = 0.2;
const NEVER: u32 = u32::MAX;

/// A run's crowd.
#[derive(Clone, Debug)]
pub struct Crowd {
    rivals: u32,
    median_ms: f64,
    pace_per_ms: f64,
    /// Per seat (index `seat_no - 1`): when a rival took it, and when that hold ran out
    /// unpaid (`NEVER` if not).
    taken_at: Vec<u32>,
    released_at: Vec<u32>,
    /// (time, +1 taken / -1 released), in time order, and the running count after each.
    events: Vec<(u32, i32)>,
    gone_after: Vec<u32>,
}

impl Crowd {
    pub fn new(seed: u64, difficulty: &Difficulty, venue: &Venue, hold_ttl_ms: u32) -> Self {
        let rivals = difficulty.rivals;
        // The seed shifts the crowd's reaction a little, run to run.
        let median_ms =
            difficulty.reaction.median_ms() * (0.85 + 0.3 * Random::for_item(seed, 1, 0).unit());
        let pace_per_ms = difficulty.pace_per_second() / 1_000.0;
        let mut crowd = Self {
            rivals,
            median_ms,
            pace_per_ms,
            taken_at: vec![NEVER; venue.total_seats() as usize],
            released_at: vec![NEVER; venue.total_seats() as usize],
            events: Vec::new(),
            gone_after: Vec::new(),
        };
        crowd.take_seats(seed, difficulty, venue, hold_ttl_ms);
        crowd
    }

    /// When rival `k` (0-based, in arrival order) pressed "book".
    fn arrival_ms(&self, k: u32) -> f64 {
        let p = (f64::from(k) + 0.5) / f64::from(self.rivals);
        self.median_ms * (REACTION_SIGMA * normal_quantile(p)).exp()
    }

    /// Rivals in line before `at` (they pressed "book" earlier).
    pub fn rivals_before(&self, at: i64) -> u64 {
        if at <= 0 {
            return 0;
        }
        let z = ((at as f64) / self.median_ms).ln() / REACTION_SIGMA;
        (normal_cdf(z) * f64::from(self.rivals)).floor() as u64
    }

    /// People through the line by `at` (admitted), of those who arrived.
    pub fn admitted_by(&self, at: i64) -> u64 {
        if at <= 0 {
            return 0;
        }
        let by_pace = (self.pace_per_ms * at as f64).floor() as u64;
        self.rivals_before(at).min(by_pace)
    }

    /// When someone with `ahead` people ahead, who entered at `entered`, is admitted.
    pub fn admission_at(&self, entered: i64, ahead: u64) -> i64 {
        let by_pace = (ahead as f64 / self.pace_per_ms).ceil() as i64;
        entered.max(0).max(by_pace)
    }

    /// Of the crowd, the share who entered the line after `at` (0 to 1).
    pub fn share_slower(&self, at: i64) -> f64 {
        1.0 - self.rivals_before(at) as f64 / f64::from(self.rivals.max(1))
    }

    /// Whether a rival holds (or bought) `seat_no` at `at`; `claimed` is when a real fan first
    /// claimed the seat, if ever: a rival whose take came after it lost the seat.
    pub fn rival_holds(&self, seat_no: u32, at: i64, claimed: Option<i64>) -> bool {
        let Some(index) = (seat_no as usize).checked_sub(1) else {
            return false;
        };
        let (Some(&taken), Some(&released)) =
            (self.taken_at.get(index), self.released_at.get(index))
        else {
            return false;
        };
        if taken == NEVER || at < i64::from(taken) {
            return false;
        }
        if claimed.is_some_and(|claimed| claimed <= i64::from(taken)) {
            return false;
        }
        released == NEVER || at < i64::from(released)
    }

    /// Seats rivals hold or bought at `at`.
    pub fn seats_gone(&self, at: i64) -> u32 {
        let after = self
            .events
            .partition_point(|(time, _)| i64::from(*time) <= at);
        if after == 0 {
            0
        } else {
            self.gone_after[after - 1]
        }
    }

    /// When the last seat a rival will take is taken (`None`: the crowd takes none).
    pub fn last_take_ms(&self) -> Option<u32> {
        self.taken_at.iter().copied().filter(|t| *t != NEVER).max()
    }

    fn take_seats(&mut self, seed: u64, difficulty: &Difficulty, venue: &Venue, hold_ttl_ms: u32) {
        // When each taker takes, in time order.
        let mut takes: Vec<(u32, u32)> = Vec::new();
        for k in 0..self.rivals {
            let mut random = Random::for_item(seed, 2, u64::from(k));
            if random.unit() >= TAKERS {
                continue;
            }
            let admitted = self.arrival_ms(k).max(f64::from(k + 1) / self.pace_per_ms);
            let think = THINK_MEDIAN_MS * (THINK_SIGMA * normal_quantile(random.unit())).exp();
            let at = (admitted + think).min(f64::from(u32::MAX - 1)) as u32;
            takes.push((at, k));
        }
        takes.sort_unstable();
        let mut free: Vec<bool> = vec![true; self.taken_at.len()];
        let mut free_in_zone: Vec<u32> = vec![ZONE_SEATS; venue.zones.len()];
        let mut left = self.taken_at.len() as u32;
        for (at, k) in takes {
            if left == 0 {
                break;
            }
            let mut random = Random::for_item(seed, 3, u64::from(k));
            let count = match random.below(20) {
                0..=3 => 1,
                4..=14 => 2,
                15..=16 => 3,
                _ => 4,
            }
            .min(left);
            let grade = if random.unit() * 100.0 < f64::from(difficulty.focus_percent) {
                0
            } else {
                random.below(super::venue::GRADES.len() as u64) as usize
            };
            let Some(zone) = pick_zone(venue, &free_in_zone, grade, count, &mut random) else {
                break;
            };
            let seats = pick_seats(&free, venue, zone, count, &mut random);
            let unpaid = random.unit() < UNPAID;
            for seat in seats {
                free[seat] = false;
                free_in_zone[zone] -= 1;
                left -= 1;
                self.taken_at[seat] = at;
                self.events.push((at, 1));
                if unpaid {
                    let released = at.saturating_add(hold_ttl_ms);
                    self.released_at[seat] = released;
                    self.events.push((released, -1));
                }
            }
        }
        self.events.sort_unstable();
        let mut gone = 0i64;
        self.gone_after = self
            .events
            .iter()
            .map(|(_, change)| {
                gone += i64::from(*change);
                gone as u32
            })
            .collect();
    }
}

/// The zone a rival goes for: one of the first three of its grade (front first) with room,
/// else the best other zone with room.
fn pick_zone(
    venue: &Venue,
    free_in_zone: &[u32],
    grade: usize,
    count: u32,
    random: &mut Random,
) -> Option<usize> {
    let wanted = super::venue::GRADES[grade].0;
    let open: Vec<usize> = venue
        .zones
        .iter()
        .filter(|zone| zone.grade == wanted && free_in_zone[zone.index as usize] >= count)
        .map(|zone| zone.index as usize)
        .take(3)
        .collect();
    if !open.is_empty() {
        return Some(open[random.below(open.len() as u64) as usize]);
    }
    (0..venue.zones.len())
        .find(|&zone| free_in_zone[zone] >= count)
        .or_else(|| (0..venue.zones.len()).find(|&zone| free_in_zone[zone] > 0))
}

/// Seat indexes (`seat_no - 1`) a rival takes in a zone: `count` side by side in one row if it
/// can find them from a spot nearer the front than the back, else the first free ones.
fn pick_seats(
    free: &[bool],
    venue: &Venue,
    zone: usize,
    count: u32,
    random: &mut Random,
) -> Vec<usize> {
    let zone = &venue.zones[zone];
    let first = (zone.first_seat() - 1) as usize;
    let size = ZONE_SEATS as usize;
    let per_row = zone.seats_per_row as usize;
    let count = count as usize;
    let u = random.unit();
    let start = ((u * u) * size as f64) as usize;
    for step in 0..size {
        let offset = (start + step) % size;
        let in_row = offset % per_row;
        if in_row + count > per_row {
            continue;
        }
        if (offset..offset + count).all(|o| free[first + o]) {
            return (first + offset..first + offset + count).collect();
        }
    }
    (first..first + size)
        .filter(|&index| free[index])
        .take(count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::practice::Reaction;

    fn hard() -> Difficulty {
        Difficulty {
            rivals: 30_000,
            reaction: Reaction::Fast,
            focus_percent: 70,
        }
    }

    #[test]
    fn the_same_seed_should_play_the_same_crowd() {
        let venue = Venue::by_code("hall").unwrap();
        let a = Crowd::new(42, &hard(), &venue, 300_000);
        let b = Crowd::new(42, &hard(), &venue, 300_000);
        let c = Crowd::new(43, &hard(), &venue, 300_000);
        assert_eq!(a.taken_at, b.taken_at);
        assert_eq!(a.released_at, b.released_at);
        assert_ne!(a.taken_at, c.taken_at, "another seed, another crowd");
        for at in [500, 1_500, 10_000, 60_000] {
            assert_eq!(a.rivals_before(at), b.rivals_before(at));
        }
    }

    #[test]
    fn the_line_should_fill_fast_and_drain_at_the_pace() {
        let venue = Venue::by_code("hall").unwrap();
        let crowd = Crowd::new(1, &hard(), &venue, 300_000);
        // Most press within seconds; a long tail.
        let at_1s = crowd.rivals_before(1_000);
        assert!(at_1s > 15_000 && at_1s < 25_000, "{at_1s}");
        assert!(crowd.rivals_before(30_000) > 29_500);
        assert_eq!(crowd.rivals_before(0), 0);
        // 30,000 rivals at 600 a second: the line is through in about 50 s.
        assert_eq!(crowd.admitted_by(10_000), 6_000);
        assert_eq!(crowd.admission_at(800, 12_000), 20_000);
        assert!((crowd.share_slower(1_000) - (1.0 - at_1s as f64 / 30_000.0)).abs() < 1e-9);
    }

    #[test]
    fn rivals_should_empty_the_map_in_seconds_and_give_some_seats_back() {
        let venue = Venue::by_code("hall").unwrap();
        let crowd = Crowd::new(7, &hard(), &venue, 300_000);
        let total = venue.total_seats();
        let at = |s: i64| crowd.seats_gone(s * 1_000);
        assert_eq!(at(0), 0);
        assert!(at(20) > total / 4, "a quarter gone in 20 s: {}", at(20));
        assert!(at(120) >= total * 95 / 100, "sold out: {}", at(120));
        // Unpaid holds run out after the hold time: seats come back.
        assert!(at(500) < at(120), "{} then {}", at(120), at(500));
        // No seat is taken twice; the best grade goes first.
        let vip_gone = (1..=2_000)
            .filter(|&s| crowd.rival_holds(s, 15_000, None))
            .count();
        let s_gone = (4_001..=5_000)
            .filter(|&s| crowd.rival_holds(s, 15_000, None))
            .count();
        assert!(
            vip_gone * 1_000 > s_gone * 2_000,
            "VIP {vip_gone}, S {s_gone}"
        );
    }

    #[test]
    fn a_real_fan_who_claimed_a_seat_first_should_keep_it_from_the_rival() {
        let venue = Venue::by_code("theatre").unwrap();
        let crowd = Crowd::new(3, &hard(), &venue, 300_000);
        let (seat, taken) = (1..=1_000u32)
            .filter_map(|seat| {
                let t = crowd.taken_at[seat as usize - 1];
                (t != NEVER).then_some((seat, i64::from(t)))
            })
            .next()
            .unwrap();
        assert!(!crowd.rival_holds(seat, taken - 1, None));
        assert!(crowd.rival_holds(seat, taken, None));
        assert!(
            !crowd.rival_holds(seat, taken + 5, Some(taken - 100)),
            "the fan was first"
        );
        assert!(crowd.rival_holds(seat, taken + 5, Some(taken + 1)));
    }
}
