//! The order of admission: which known entrants of a concert's line the admitter may take now,
//! in which order, and which places it passes over as never taken up. Plain functions over what
//! the admitter has read, unit-tested here.
//!
//! Within an entry shard the order is the shard's numbers: the counter numbered each place as
//! it was taken, so number order is arrival order, and a waiting fan's position (the numbers
//! between them and the shard's `admitted_up_to`) is exactly the people admitted before them.
//! SQS shows each message group in the order it received the sends, which under concurrent
//! entry differs from number order by the entries in flight at once; so the admitter sorts
//! what it knows by number and admits a shard's places only in an unbroken run from
//! `admitted_up_to + 1`.
//!
//! A number may never arrive: its entry crashed between taking the number and sending it, or
//! a lost answer made the counter count twice. The admitter learns that a number is missing
//! when it knows a later one of the same shard; it waits for it while it could still come (the
//! entry's message must be sent within `QUEUE_ENTRY_GRACE_MILLIS` of its number, or the entry
//! gives its place up), then passes it over as a gap. A place passed over is ended: a token
//! still waiting with a number at or below its shard's `admitted_up_to` is expired (see
//! `QueueToken::passed_over`), and a late message for it is dropped.
//!
//! Across shards, places are merged by the time each was numbered (`entered_at_ms`, the entry's
//! clock when its counter answered). A shard bounds the merge while it may still show an
//! earlier place: one that has nothing beyond its run numbered no earlier than when its counter
//! was read (if the counter showed nothing more) or than its run's last place (if a number is
//! outstanding). So two places more than the clocks' skew apart are admitted in the order they
//! were taken, whatever shards they are in.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// An entrant the admitter knows of, from a message it holds or from its shard's stash.
pub type Known = crate::entry_queue::Entrant;

/// One entry shard of a concert as the admitter sees it in a round.
#[derive(Debug, Default)]
pub struct ShardLine {
    pub admitted_up_to: u64,
    /// The shard's counter (its last number handed out), as read at `read_at_ms`.
    pub last_number: u64,
    /// Known entrants numbered after `admitted_up_to`: sorted by number, one per number.
    pub known: Vec<Known>,
}

/// The next place of the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Entrant(Known),
    /// A place nobody took up: passed over.
    Gap {
        shard: u32,
        number: u64,
    },
}

#[cfg(test)]
impl Next {
    pub fn shard(&self) -> u32 {
        match self {
            Next::Entrant(known) => known.shard,
            Next::Gap { shard, .. } => *shard,
        }
    }

    pub fn number(&self) -> u64 {
        match self {
            Next::Entrant(known) => known.number,
            Next::Gap { number, .. } => *number,
        }
    }
}

/// What the admitter may do in a round.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// The places to admit (or pass over), in order.
    pub order: Vec<Next>,
    /// Numbers handed out and not seen that hold their shard up: (shard, number), every such
    /// number between a shard's known places, in order. Entrants known behind a shard's first
    /// may be stashed so that SQS shows more of the shard's group.
    pub missing: Vec<(u32, u64)>,
}

/// The order of admission over a concert's shards (indexed by shard). `is_gap(shard, number)`
/// says whether a missing number has been waited for long enough: one with later places known
/// is then passed over, one at the end of what its shard shows stops holding the other shards
/// up. `read_at_ms` is when the shards' counters were read.
pub fn plan(lines: &[ShardLine], read_at_ms: i64, is_gap: impl Fn(u32, u64) -> bool) -> Plan {
    let mut missing = Vec::new();
    // Each shard's run, with the merge key of each place, and the bound on what it has not
    // shown yet.
    let mut runs: Vec<(Vec<(i64, Next)>, i64)> = Vec::with_capacity(lines.len());
    for (shard, line) in lines.iter().enumerate() {
        let shard = shard as u32;
        let mut run: Vec<(i64, Next)> = Vec::new();
        let mut last_key = i64::MIN;
        let mut known = line.known.iter().peekable();
        let mut number = line.admitted_up_to + 1;
        let bound = loop {
            // Entrants at or below the run's start were dealt with before.
            while known.next_if(|k| k.number < number).is_some() {}
            match known.peek() {
                Some(k) if k.number == number => {
                    last_key = k.entered_at_ms;
                    run.push((last_key, Next::Entrant((*k).clone())));
                    known.next();
                    number += 1;
                }
                // A later place is known, so this one was numbered before it: it is missing.
                Some(_) => {
                    if is_gap(shard, number) {
                        run.push((last_key, Next::Gap { shard, number }));
                        number += 1;
                    } else {
                        // Every number missing between the known ones is waited for from now,
                        // together, not one after another.
                        let known_numbers: Vec<u64> = known.map(|k| k.number).collect();
                        let last = known_numbers.last().copied().unwrap_or(number);
                        missing.extend(
                            (number..last)
                                .filter(|n| known_numbers.binary_search(n).is_err())
                                .map(|n| (shard, n)),
                        );
                        break last_key;
                    }
                }
                // Handed out before the counter was read, not shown yet: it comes next, unless
                // it has been missing so long that its entry is surely gone (a number taken
                // twice by a retried counter, or an entry stopped before its message): then the
                // shard stops holding the others up, without passing the number over.
                None if number <= line.last_number => {
                    missing.push((shard, number));
                    if is_gap(shard, number) {
                        break read_at_ms;
                    }
                    break last_key;
                }
                // Nothing more was handed out when the counter was read.
                None => break read_at_ms,
            }
        };
        runs.push((run, bound));
    }
    // Merge by key: take the smallest head while no shard whose run is used up may still show
    // something earlier.
    let mut order = Vec::new();
    let mut heads = vec![0usize; runs.len()];
    loop {
        let next = runs
            .iter()
            .enumerate()
            .filter_map(|(shard, (run, _))| run.get(heads[shard]).map(|(key, _)| (*key, shard)))
            .min();
        let Some((key, shard)) = next else { break };
        let cap = runs
            .iter()
            .enumerate()
            .filter(|(other, (run, _))| *other != shard && heads[*other] >= run.len())
            .map(|(_, (_, bound))| *bound)
            .min()
            .unwrap_or(i64::MAX);
        if key > cap {
            break;
        }
        order.push(runs[shard].0[heads[shard]].1.clone());
        heads[shard] += 1;
    }
    Plan { order, missing }
}

/// When the admitter first saw each missing number, to pass it over once it has waited the
/// grace time. Kept in the admitter's memory: a restarted admitter waits the grace again, which
/// only delays.
#[derive(Debug, Default)]
pub struct MissingSince {
    seen: std::sync::Mutex<HashMap<(Uuid, u32, u64), Instant>>,
}

impl MissingSince {
    /// Notes that these numbers of a concert are missing now (keeping the first sighting).
    pub fn note(&self, concert_id: Uuid, missing: &[(u32, u64)]) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap();
        for &(shard, number) in missing {
            seen.entry((concert_id, shard, number)).or_insert(now);
        }
    }

    /// Whether a number has been missing for `grace` or longer.
    pub fn waited(&self, concert_id: Uuid, shard: u32, number: u64, grace: Duration) -> bool {
        self.seen
            .lock()
            .unwrap()
            .get(&(concert_id, shard, number))
            .is_some_and(|since| since.elapsed() >= grace)
    }

    /// Forgets every number of a concert: its line cannot be watched while it is full (its
    /// messages are handed back out of sight), so the wait starts again.
    pub fn forget_concert(&self, concert_id: Uuid) {
        self.seen
            .lock()
            .unwrap()
            .retain(|(concert, _, _), _| *concert != concert_id);
    }

    /// Forgets the numbers of a concert's shards up to where admission has come.
    pub fn forget_up_to(&self, concert_id: Uuid, admitted_up_to: &[u64]) {
        self.seen
            .lock()
            .unwrap()
            .retain(|(concert, shard, number), _| {
                *concert != concert_id
                    || admitted_up_to
                        .get(*shard as usize)
                        .is_none_or(|up_to| number > up_to)
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(shard: u32, number: u64, at: i64) -> Known {
        Known {
            concert_id: Uuid::nil(),
            shard,
            number,
            user_id: Uuid::from_u128((u128::from(shard) << 64) | u128::from(number)),
            token_id: Uuid::from_u128(u128::from(number)),
            entered_at_ms: at,
        }
    }

    fn line(admitted_up_to: u64, last_number: u64, known: Vec<Known>) -> ShardLine {
        ShardLine {
            admitted_up_to,
            last_number,
            known,
        }
    }

    fn places(plan: &Plan) -> Vec<(u32, u64, bool)> {
        plan.order
            .iter()
            .map(|next| {
                (
                    next.shard(),
                    next.number(),
                    matches!(next, Next::Gap { .. }),
                )
            })
            .collect()
    }

    #[test]
    fn one_shard_should_go_in_number_order_whatever_order_sqs_showed() {
        // SQS received 3, 1, 2 (sent in that order): the line is 1, 2, 3.
        let lines = [line(
            0,
            3,
            vec![known(0, 1, 30), known(0, 2, 10), known(0, 3, 20)],
        )];
        let plan = plan(&lines, 1_000, |_, _| false);
        assert_eq!(places(&plan), [(0, 1, false), (0, 2, false), (0, 3, false)]);
        assert!(plan.missing.is_empty());
    }

    #[test]
    fn a_missing_number_should_hold_its_shard_until_it_is_a_gap() {
        // Number 2 was handed out (4 is known) but not seen.
        let lines = [line(
            0,
            4,
            vec![known(0, 1, 10), known(0, 3, 30), known(0, 4, 40)],
        )];
        let waiting = plan(&lines, 1_000, |_, _| false);
        assert_eq!(places(&waiting), [(0, 1, false)]);
        assert_eq!(waiting.missing, [(0, 2)]);
        // Several missing numbers are all waited for at once.
        let several = [line(
            0,
            9,
            vec![known(0, 1, 10), known(0, 4, 40), known(0, 7, 70)],
        )];
        assert_eq!(
            plan(&several, 1_000, |_, _| false).missing,
            [(0, 2), (0, 3), (0, 5), (0, 6)]
        );
        // Once it has waited long enough it is passed over, and the rest follow.
        let passed = plan(&lines, 1_000, |_, number| number == 2);
        assert_eq!(
            places(&passed),
            [(0, 1, false), (0, 2, true), (0, 3, false), (0, 4, false)]
        );
        assert!(passed.missing.is_empty());
    }

    #[test]
    fn a_number_handed_out_but_not_shown_should_never_be_passed_over_without_a_later_one() {
        // The counter is at 5; 3..5 are still on their way (or further back in the queue).
        let lines = [line(0, 5, vec![known(0, 1, 10), known(0, 2, 20)])];
        let plan = plan(&lines, 1_000, |_, _| true);
        assert_eq!(places(&plan), [(0, 1, false), (0, 2, false)]);
        assert_eq!(plan.missing, [(0, 3)], "waited for, not passed over");
    }

    #[test]
    fn a_number_missing_too_long_at_a_shards_end_should_stop_holding_up_the_others() {
        // Shard 1 counted a number 2 that never came (nothing after it either).
        let lines = [
            line(0, 2, vec![known(0, 1, 100), known(0, 2, 300)]),
            line(0, 2, vec![known(1, 1, 150)]),
        ];
        let waiting = plan(&lines, 1_000, |_, _| false);
        assert_eq!(places(&waiting), [(0, 1, false), (1, 1, false)]);
        let waited = plan(&lines, 1_000, |shard, number| (shard, number) == (1, 2));
        assert_eq!(
            places(&waited),
            [(0, 1, false), (1, 1, false), (0, 2, false)]
        );
    }

    #[test]
    fn shards_should_merge_by_when_places_were_taken() {
        let lines = [
            line(0, 2, vec![known(0, 1, 100), known(0, 2, 300)]),
            line(0, 2, vec![known(1, 1, 200), known(1, 2, 400)]),
        ];
        let plan = plan(&lines, 1_000, |_, _| false);
        assert_eq!(
            places(&plan),
            [(0, 1, false), (1, 1, false), (0, 2, false), (1, 2, false)]
        );
    }

    #[test]
    fn a_shard_with_a_place_on_its_way_should_bound_the_others() {
        // Shard 1 handed out number 2 after its number 1 (at 150) and has not shown it: no
        // place of another shard taken after 150 may go before it.
        let lines = [
            line(
                0,
                3,
                vec![known(0, 1, 100), known(0, 2, 200), known(0, 3, 300)],
            ),
            line(0, 2, vec![known(1, 1, 150)]),
        ];
        let plan = plan(&lines, 1_000, |_, _| false);
        assert_eq!(places(&plan), [(0, 1, false), (1, 1, false)]);
    }

    #[test]
    fn an_idle_shard_should_bound_the_others_by_when_its_counter_was_read() {
        // Shard 1 had handed out nothing when its counter was read at 250: whoever it numbers
        // later came after 250.
        let lines = [
            line(
                0,
                3,
                vec![known(0, 1, 100), known(0, 2, 200), known(0, 3, 300)],
            ),
            line(0, 0, vec![]),
        ];
        let plan = plan(&lines, 250, |_, _| false);
        assert_eq!(places(&plan), [(0, 1, false), (0, 2, false)]);
    }

    #[test]
    fn known_places_below_the_run_should_be_ignored() {
        // A redelivered message of an admitted place, and a stash entry left behind.
        let lines = [line(
            2,
            3,
            vec![known(0, 1, 10), known(0, 2, 20), known(0, 3, 30)],
        )];
        let plan = plan(&lines, 1_000, |_, _| false);
        assert_eq!(places(&plan), [(0, 3, false)]);
    }

    #[test]
    fn missing_numbers_should_wait_the_grace_then_be_forgotten_once_passed() {
        let memory = MissingSince::default();
        let concert = Uuid::nil();
        memory.note(concert, &[(0, 2)]);
        assert!(!memory.waited(concert, 0, 2, Duration::from_secs(60)));
        assert!(memory.waited(concert, 0, 2, Duration::ZERO));
        assert!(!memory.waited(concert, 0, 3, Duration::ZERO), "never noted");
        memory.forget_up_to(concert, &[2]);
        assert!(!memory.waited(concert, 0, 2, Duration::ZERO));
    }
}
