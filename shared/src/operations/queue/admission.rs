//! Admission: the admitter's step, which turns waiting places into active ones in the order
//! [`line`](super::line) decides, while the concert has free slots.
//!
//! A step works in rounds. Each round receives every message SQS shows (each message group,
//! one per entry shard, from its head) into a pool held in flight, reads each concert's
//! admission state (its turn, and every shard's progress, counter and stash), plans the order
//! and admits along it in writes of one transaction each: the admission item (the admitters'
//! turn, so two admitters never fill one free slot), the progress of every shard the write
//! moves, and each activated token with its active-list item. A message is deleted once the
//! write that handled its place has committed; a place handled twice (a crash between the
//! write and the delete, a message delivered twice) fails the "still waiting" condition or is
//! below its shard's progress, and is dropped.
//!
//! A shard held up by a missing number while later places of it are known gets those later
//! places stashed (written to the shard's stash item, then their messages deleted), so that SQS
//! shows the rest of the shard's group, where the missing place may be. Every write and every
//! delete may fail or be repeated: each is conditional, and what a crash leaves behind (a
//! stashed place whose message comes back, a message whose place was admitted) is recognised
//! and dropped in a later round.

use super::line::{self, Known, Next, ShardLine};
use super::AdmitReport;
use crate::entry_queue::Received;
use crate::error::Result;
use crate::queue::ShardProgress;
use crate::runtime::Services;
use crate::store::{
    admission_items, Activation, Admission, AdmissionState, AdmitConflict, MAX_STASHED,
    MAX_TRANSACTION_ITEMS,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Bounds on one admitter step: rounds, and receive calls (10 messages each) per round.
const MAX_ROUNDS_PER_STEP: usize = 20;
const MAX_RECEIVES_PER_ROUND: usize = 200;
const RECEIVES_AT_ONCE: usize = 4;
/// Writes one concert's admission may try in a round before it leaves the rest for later.
const MAX_WRITES_PER_ROUND: usize = 100;

/// A message of the entry queue the admitter holds in flight.
#[derive(Clone, Debug)]
struct Held {
    entrant: Known,
    receipt: String,
}

/// What a round did for one concert.
#[derive(Default)]
struct RoundOutcome {
    admitted: usize,
    passed_over: usize,
    /// Messages still held: not yet theirs to take.
    kept: Vec<Held>,
    /// The concert had no free slot for someone it could have admitted.
    full: bool,
    /// ... because the step's pace was spent, not the slots (`QUEUE_ADMIT_PER_SECOND`).
    paced: bool,
    /// Anything was written or deleted.
    changed: bool,
}

impl Services {
    /// One admission step: activates waiting entrants in their line's order while their
    /// concert has free slots. Safe to run concurrently with itself (every write is
    /// conditional on the concert's admission version as read) and to stop anywhere.
    ///
    /// Concerts whose randomised pre-queue has opened go first: their early entrants are
    /// admitted in rank order, and until the pre-queue is through, the entry queue's messages
    /// for those concerts wait. A full concert's messages are handed back hidden until the next
    /// step (`ADMIT_HAND_BACK_SECONDS`), so its groups stay blocked behind them while other
    /// concerts move. A round that neither receives nor changes anything ends the step, and
    /// what is left in the pool is handed back visible at once.
    pub async fn admit_step(&self) -> Result<AdmitReport> {
        let mut report = AdmitReport::default();
        self.admission_budget.start_step();
        // Once a step: the pre-queues to drain, and the concerts with stashed places (visited
        // every round, messages or not).
        let (prequeues, stashed) = tokio::try_join!(
            self.store.pending_prequeues(),
            self.store.concerts_with_stash()
        )?;
        let held_back = self.admit_prequeues(prequeues, &mut report).await?;
        let stashed: HashSet<Uuid> = stashed
            .into_iter()
            .filter(|concert| !held_back.contains(concert))
            .collect();
        let mut pool: BTreeMap<Uuid, Vec<Held>> = BTreeMap::new();
        let outcome = self
            .admit_rounds(&held_back, &stashed, &mut pool, &mut report)
            .await;
        // Whatever happened, what is left is shown again at once, for the next step: held
        // until its visibility ran out, a failed step would hold its groups up that long.
        let left: Vec<Held> = pool.into_values().flatten().collect();
        if let Err(err) = self.entry_queue.hand_back(&receipts(&left), 0).await {
            tracing::warn!(error = %err, count = left.len(), "messages not handed back; SQS shows them again when their visibility runs out");
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
        outcome.map(|()| report)
    }

    /// The rounds of a step (see [`Services::admit_step`]). A concert whose round fails (a
    /// fault that outlasted the retries) keeps its messages for the next round; a failed
    /// receive ends the step.
    async fn admit_rounds(
        &self,
        held_back: &HashSet<Uuid>,
        stashed: &HashSet<Uuid>,
        pool: &mut BTreeMap<Uuid, Vec<Held>>,
        report: &mut AdmitReport,
    ) -> Result<()> {
        let hand_back_seconds = self.config.admit_hand_back_seconds as i32;
        // A concert whose pace is spent has slots: its messages must be in sight again when the
        // next step starts (a second early; SQS counts whole seconds), or that step would find
        // nothing and the pace would be halved.
        let paced_hand_back_seconds =
            hand_back_seconds.min((self.config.admit_interval_seconds as i32 - 1).max(0));
        // Concerts found without a free slot (or with their pace spent): nothing more of theirs
        // this step; their messages are hidden this many seconds.
        let mut full: HashMap<Uuid, i32> = HashMap::new();
        for _ in 0..MAX_ROUNDS_PER_STEP {
            let received = self.receive_all().await?;
            let mut unreadable = Vec::new();
            // Messages to hand back, by how long they stay hidden.
            let mut again: BTreeMap<i32, Vec<String>> = BTreeMap::new();
            let mut new_messages = 0;
            for message in received {
                let Some(entrant) = message.entrant.clone() else {
                    unreadable.push(message);
                    continue;
                };
                if held_back.contains(&entrant.concert_id) {
                    // The concert's pre-queue goes first: these wait, in order, until it is
                    // through.
                    report.deferred += 1;
                    again
                        .entry(hand_back_seconds)
                        .or_default()
                        .push(message.receipt);
                } else if let Some(&hidden) = full.get(&entrant.concert_id) {
                    // Handed back earlier in this step (and visible again at once locally).
                    again.entry(hidden).or_default().push(message.receipt);
                } else {
                    new_messages += 1;
                    pool.entry(entrant.concert_id).or_default().push(Held {
                        entrant,
                        receipt: message.receipt,
                    });
                }
            }
            if !unreadable.is_empty() {
                tracing::warn!(
                    count = unreadable.len(),
                    "moving unreadable queue messages to the dead-letter queue"
                );
                self.entry_queue.dead_letter(&unreadable).await?;
            }
            futures::future::try_join_all(
                again
                    .iter()
                    .map(|(&hidden, receipts)| self.entry_queue.hand_back(receipts, hidden)),
            )
            .await?;
            let mut changed = false;
            let concerts: BTreeSet<Uuid> = pool
                .keys()
                .chain(stashed.iter().filter(|concert| !full.contains_key(concert)))
                .copied()
                .collect();
            for concert_id in concerts {
                let held = pool.remove(&concert_id).unwrap_or_default();
                let outcome = match self.admit_round(concert_id, held.clone()).await {
                    Ok(outcome) => outcome,
                    Err(err) => {
                        tracing::warn!(%concert_id, error = %err, "admission round failed; trying again");
                        if !held.is_empty() {
                            pool.insert(concert_id, held);
                        }
                        continue;
                    }
                };
                changed |= outcome.changed;
                report.admitted += outcome.admitted;
                report.passed_over += outcome.passed_over;
                if outcome.full {
                    // No free slot: hidden until the next step, so their groups stay blocked
                    // behind them, in order, while other concerts move, and each waiting
                    // message is received about once a step (a paced concert's, see above).
                    report.deferred += outcome.kept.len();
                    let hidden = if outcome.paced {
                        paced_hand_back_seconds
                    } else {
                        hand_back_seconds
                    };
                    full.insert(concert_id, hidden);
                    self.entry_queue
                        .hand_back(&receipts(&outcome.kept), hidden)
                        .await?;
                } else if !outcome.kept.is_empty() {
                    pool.insert(concert_id, outcome.kept);
                }
            }
            if !changed && new_messages == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Every message SQS shows now (each group from its head).
    /// Receives go out [`RECEIVES_AT_ONCE`] together: SQS answers each with other groups, and
    /// one slow or lost answer does not hold up the rest.
    async fn receive_all(&self) -> Result<Vec<Received>> {
        let mut received = Vec::new();
        for _ in 0..MAX_RECEIVES_PER_ROUND / RECEIVES_AT_ONCE {
            let batches = futures::future::join_all(
                (0..RECEIVES_AT_ONCE).map(|_| self.entry_queue.receive()),
            )
            .await;
            let mut empty = 0;
            let mut failed = None;
            for batch in batches {
                match batch {
                    Ok(batch) if batch.is_empty() => empty += 1,
                    Ok(batch) => received.extend(batch),
                    Err(err) => failed = Some(err),
                }
            }
            if let Some(err) = failed {
                if received.is_empty() {
                    return Err(err);
                }
                // What did come is worked on; the rest shows again in a later round.
                return Ok(received);
            }
            if empty > 0 {
                return Ok(received);
            }
        }
        // Some group may not have shown its head. Not reached below ~2,000 groups in flight.
        tracing::warn!("the entry queue was not drained in one round");
        Ok(received)
    }

    /// One round for one concert: plans its order from what it holds and what its shards'
    /// stashes hold, admits along it, and stashes what stands behind a missing number.
    async fn admit_round(&self, concert_id: Uuid, held: Vec<Held>) -> Result<RoundOutcome> {
        let shards = self.config.queue_entry_shards;
        let mut outcome = RoundOutcome::default();
        // The counters are read before the messages are judged: a number handed out after
        // this read belongs to someone who came after it.
        let read_at_ms = Utc::now().timestamp_millis();
        let state = self.store.admission_state(concert_id, shards).await?;
        if only_stale_stashes(&state) {
            // Every stashed place has been handled: tidy the stashes and the list away.
            self.write_stashes(&state, concert_id, Vec::new(), Some(false))
                .await?;
        }
        let (lines, messages, stale) = known_lines(&state, held);
        if !stale.is_empty() {
            // Places already handled (a message delivered again, or of a place passed over),
            // or of a shard this line no longer has.
            self.entry_queue.delete(&receipts(&stale)).await?;
            outcome.changed = true;
        }
        let grace = std::time::Duration::from_millis(self.config.queue_entry_grace_millis as u64);
        let plan = line::plan(&lines, read_at_ms, |shard, number| {
            self.missing.waited(concert_id, shard, number, grace)
        });
        let candidates: Vec<Candidate> = plan.order.iter().map(Candidate::from).collect();
        let admitted = self
            .admit_in_order(
                concert_id,
                &candidates,
                &HashSet::new(),
                Some(state.clone()),
            )
            .await?;
        outcome.admitted = admitted.admitted;
        outcome.passed_over = admitted.passed_over;
        outcome.full = admitted.full;
        outcome.paced = admitted.paced;
        // A missing number is waited for only while the line is watched: a full concert's
        // messages are handed back out of sight, so they cannot be told missing then. A paced
        // concert's are out of sight only until the next step.
        if outcome.full && !outcome.paced {
            self.missing.forget_concert(concert_id);
        } else {
            self.missing.note(concert_id, &plan.missing);
        }
        tracing::debug!(
            %concert_id,
            held = lines.iter().map(|line| line.known.len()).sum::<usize>(),
            order = plan.order.len(),
            missing = ?plan.missing,
            admitted = outcome.admitted,
            passed_over = outcome.passed_over,
            full = outcome.full,
            "admission round"
        );
        let handled: HashSet<(u32, u64)> = candidates
            .iter()
            .zip(&admitted.handled)
            .filter(|(_, done)| **done)
            .map(|(candidate, _)| (candidate.shard, candidate.place.number()))
            .collect();
        let mut kept: Vec<Held> = Vec::new();
        let mut done: Vec<Held> = Vec::new();
        for message in messages {
            if handled.contains(&(message.entrant.shard, message.entrant.number)) {
                done.push(message);
            } else {
                kept.push(message);
            }
        }
        if !done.is_empty() {
            self.entry_queue.delete(&receipts(&done)).await?;
            outcome.changed = true;
        }
        if admitted.admitted > 0 || admitted.passed_over > 0 {
            outcome.changed = true;
            let up_to: Vec<u64> = state.shards.iter().map(|p| p.admitted_up_to).collect();
            self.missing.forget_up_to(concert_id, &up_to);
        }
        // Dig for missing numbers, unless the concert is full (nobody could be admitted now).
        // A concert whose pace is spent has slots and is watched: it digs, or a number that
        // SQS shows only behind more than a receive's worth of later places would be passed
        // over once its grace ran out (the simulated on-sale found two such places).
        if (!outcome.full || outcome.paced) && !plan.missing.is_empty() {
            let (stashed, rest) = self
                .stash_behind_missing(concert_id, &plan.missing, kept)
                .await?;
            kept = rest;
            if !stashed.is_empty() {
                self.entry_queue.delete(&receipts(&stashed)).await?;
                outcome.changed = true;
            }
        }
        outcome.kept = kept;
        Ok(outcome)
    }

    /// Stashes the held places of each shard that stand behind its missing number (up to
    /// [`MAX_STASHED`] a shard), in one write on the admitters' turn. Returns the messages
    /// stashed (to delete) and those still held.
    async fn stash_behind_missing(
        &self,
        concert_id: Uuid,
        missing: &[(u32, u64)],
        held: Vec<Held>,
    ) -> Result<(Vec<Held>, Vec<Held>)> {
        let shards = self.config.queue_entry_shards;
        let state = self.store.admission_state(concert_id, shards).await?;
        let mut stashes: Vec<(u32, Vec<Known>)> = Vec::new();
        let mut stashed_keys: HashSet<(u32, u64)> = HashSet::new();
        // The first missing number of each shard: what stands behind it is stashed.
        let mut first_missing: BTreeMap<u32, u64> = BTreeMap::new();
        for &(shard, number) in missing {
            first_missing.entry(shard).or_insert(number);
        }
        for (shard, number) in first_missing {
            let Some(progress) = state.shards.get(shard as usize) else {
                continue;
            };
            let mut stash: BTreeMap<u64, Known> = state.stashes[shard as usize]
                .iter()
                .filter(|known| known.number > progress.admitted_up_to)
                .map(|known| (known.number, known.clone()))
                .collect();
            let before = stash.len();
            for message in &held {
                let entrant = &message.entrant;
                let behind = entrant.shard == shard && entrant.number > number;
                if behind
                    && stash.len() < MAX_STASHED
                    && stash.insert(entrant.number, entrant.clone()).is_none()
                {
                    stashed_keys.insert((shard, entrant.number));
                }
            }
            if stash.len() != before || state.stashes[shard as usize].len() != before {
                stashes.push((shard, stash.into_values().collect()));
            }
            if admission_items(0, stashes.len(), 0) >= MAX_TRANSACTION_ITEMS {
                break;
            }
        }
        if stashes.is_empty() {
            return Ok((Vec::new(), held));
        }
        if !self
            .write_stashes(&state, concert_id, stashes.clone(), Some(true))
            .await?
        {
            // Another admitter wrote meanwhile: dig in a later round.
            return Ok((Vec::new(), held));
        }
        let written: HashSet<(u32, u64)> = stashes
            .iter()
            .flat_map(|(shard, entrants)| entrants.iter().map(move |e| (*shard, e.number)))
            .collect();
        Ok(held.into_iter().partition(|message| {
            let key = (message.entrant.shard, message.entrant.number);
            stashed_keys.contains(&key) && written.contains(&key)
        }))
    }

    /// Writes shards' stashes (and puts the concert on, or takes it off, the list of concerts
    /// with a stash) on the admitters' turn as `state` read it. With no stashes given, deletes
    /// every stash `state` has. False if another admitter wrote first.
    async fn write_stashes(
        &self,
        state: &AdmissionState,
        concert_id: Uuid,
        mut stashes: Vec<(u32, Vec<Known>)>,
        listed: Option<bool>,
    ) -> Result<bool> {
        if stashes.is_empty() {
            stashes = state
                .stashes
                .iter()
                .enumerate()
                .filter(|(_, stash)| !stash.is_empty())
                .map(|(shard, _)| (shard as u32, Vec::new()))
                .take(MAX_TRANSACTION_ITEMS - 2)
                .collect();
        }
        let now = self.clock.now();
        let write = Admission {
            concert_id,
            version: state.version,
            progress: &[],
            stashes: &stashes,
            stash_listed: listed,
            activations: &[],
            active_until: now,
            now,
        };
        Ok(self.store.admit(write).await?.is_ok())
    }

    /// The most one concert admits in a step when admission is paced.
    fn admissions_per_step(&self) -> Option<usize> {
        let per_second = self.config.queue_admit_per_second as usize;
        (per_second > 0).then(|| per_second * self.config.admit_interval_seconds.max(1) as usize)
    }

    /// Admits `candidates` (in the order given) into the concert's free slots, each write as
    /// many as one transaction holds, until the candidates or the slots run out. Each write
    /// moves the progress of the shards it touches; a shard in `last_pages` whose candidates
    /// are all handled is marked through with its pre-queue.
    /// `read` is the admission state if the caller has just read it (the first write uses it
    /// instead of reading again).
    pub(super) async fn admit_in_order(
        &self,
        concert_id: Uuid,
        candidates: &[Candidate],
        last_pages: &HashSet<u32>,
        mut read: Option<AdmissionState>,
    ) -> Result<InOrder> {
        let shards = self.config.queue_entry_shards;
        let mut outcome = InOrder {
            handled: vec![false; candidates.len()],
            admitted: 0,
            passed_over: 0,
            full: false,
            paced: false,
        };
        if candidates.is_empty() && last_pages.is_empty() {
            return Ok(outcome);
        }
        // Candidates known not to be waiting any more, and places nobody took up.
        let mut not_waiting: Vec<usize> = candidates
            .iter()
            .enumerate()
            .filter(|(_, candidate)| matches!(candidate.place, Slot::Gap(_)))
            .map(|(index, _)| index)
            .collect();
        for attempt in 0..MAX_WRITES_PER_ROUND {
            let now = self.clock.now();
            // The admission item first, then the active list: an admitter that writes in
            // between bumps the version this write is conditional on, so a stale list never
            // counts.
            let state = match read.take() {
                Some(state) => state,
                None => self.store.admission_state(concert_id, shards).await?,
            };
            let active = self.store.live_active(concert_id, now).await?;
            // Free slots, and no more than the step's pace allows.
            let slots = (self.config.queue_max_active as usize).saturating_sub(active.len());
            let pace = self
                .admission_budget
                .left(concert_id, self.admissions_per_step());
            let free = slots.min(pace);
            outcome.paced = pace < slots;
            let NextWrite { chosen, passing } =
                next_write(candidates, &outcome.handled, &not_waiting, free);
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
                outcome.full = outcome.handled.iter().any(|done| !done) && free == 0;
                outcome.paced &= outcome.full;
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
                stashes: &[],
                stash_listed: None,
                activations: &activations,
                active_until: now + Duration::seconds(self.config.queue_active_ttl_seconds),
                now,
            };
            match self.store.admit(admission).await? {
                Ok(()) => {
                    self.admission_budget.spend(concert_id, chosen.len());
                    outcome.handled = after;
                    outcome.admitted += chosen.len();
                    outcome.passed_over += passing.len();
                    // Go on while one transaction's size, not the free slots, stopped this
                    // write.
                    let waiting = outcome.handled.iter().any(|done| !done);
                    if waiting && chosen.len() >= free {
                        outcome.full = true;
                    }
                    if !waiting || chosen.len() >= free {
                        outcome.paced &= outcome.full;
                        break;
                    }
                }
                Err(AdmitConflict::CounterChanged) => {
                    // Another admitter's turn, or a busy item: read again after a moment.
                    let jitter = (Uuid::new_v4().as_u128() % 20) as u64;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        (5 << attempt.min(4)) + jitter,
                    ))
                    .await;
                }
                Err(AdmitConflict::NotWaiting(failed)) => {
                    not_waiting.extend(failed.into_iter().map(|index| chosen[index]));
                }
            }
        }
        Ok(outcome)
    }
}

/// Each shard's line as the admitter knows it (its stash and the messages held, by number),
/// the messages that may be admitted from, and the messages of places already handled.
fn known_lines(state: &AdmissionState, held: Vec<Held>) -> (Vec<ShardLine>, Vec<Held>, Vec<Held>) {
    let mut lines: Vec<ShardLine> = state
        .shards
        .iter()
        .zip(&state.last_numbers)
        .map(|(progress, &last_number)| ShardLine {
            admitted_up_to: progress.admitted_up_to,
            last_number,
            known: Vec::new(),
        })
        .collect();
    let mut by_shard: Vec<BTreeMap<u64, Known>> = vec![BTreeMap::new(); lines.len()];
    for (shard, stash) in state.stashes.iter().enumerate() {
        for known in stash {
            if known.number > lines[shard].admitted_up_to {
                by_shard[shard].insert(known.number, known.clone());
            }
        }
    }
    // Two messages of one place (a send repeated after the deduplication window, or one
    // message received again with a new receipt) are both kept: both are deleted once the
    // place is handled.
    let mut messages = Vec::new();
    let mut stale = Vec::new();
    for message in held {
        let shard = message.entrant.shard as usize;
        let Some(line) = lines.get(shard) else {
            stale.push(message);
            continue;
        };
        if message.entrant.number <= line.admitted_up_to {
            stale.push(message);
            continue;
        }
        by_shard[shard].insert(message.entrant.number, message.entrant.clone());
        messages.push(message);
    }
    for (line, known) in lines.iter_mut().zip(by_shard) {
        line.known = known.into_values().collect();
    }
    (lines, messages, stale)
}

/// Whether the concert has stash items and every place in them has been handled.
fn only_stale_stashes(state: &AdmissionState) -> bool {
    state.stashes.iter().any(|stash| !stash.is_empty())
        && state
            .stashes
            .iter()
            .zip(&state.shards)
            .all(|(stash, progress)| stash.iter().all(|k| k.number <= progress.admitted_up_to))
}

fn receipts(held: &[Held]) -> Vec<String> {
    held.iter().map(|message| message.receipt.clone()).collect()
}

/// Someone the admitter may activate, or a place it passes over.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    pub user_id: Uuid,
    pub token_id: Uuid,
    pub shard: u32,
    pub place: Slot,
}

/// Where a candidate stands in its shard.
#[derive(Clone, Copy, Debug)]
pub(super) enum Slot {
    /// A numbered place of the entry queue.
    Number(u64),
    /// A numbered place nobody took up.
    Gap(u64),
    /// A pre-queue rank.
    Rank(u64),
}

impl Slot {
    fn number(self) -> u64 {
        match self {
            Slot::Number(n) | Slot::Gap(n) | Slot::Rank(n) => n,
        }
    }
}

impl From<&Next> for Candidate {
    fn from(next: &Next) -> Self {
        match next {
            Next::Entrant(known) => Self {
                user_id: known.user_id,
                token_id: known.token_id,
                shard: known.shard,
                place: Slot::Number(known.number),
            },
            Next::Gap { shard, number } => Self {
                user_id: Uuid::nil(),
                token_id: Uuid::nil(),
                shard: *shard,
                place: Slot::Gap(*number),
            },
        }
    }
}

/// What [`Services::admit_in_order`] did.
pub(super) struct InOrder {
    /// By candidate: admitted or passed over.
    pub handled: Vec<bool>,
    pub admitted: usize,
    pub passed_over: usize,
    /// Someone waiting could not be admitted for want of a free slot.
    pub full: bool,
    /// The slot was there but the step's pace was spent.
    pub paced: bool,
}

/// What one admitter write takes from the candidates (in order): indexes to activate and to
/// pass over.
#[derive(Debug, Default, PartialEq)]
struct NextWrite {
    chosen: Vec<usize>,
    passing: Vec<usize>,
}

/// The candidates not yet `handled` that the next write activates (up to `free` of them) or
/// passes over (those known `not_waiting`), in order, as far as one transaction holds. It stops
/// at the first waiting candidate it cannot take: the places it handles are an unbroken run of
/// each shard, so a shard's progress never passes someone still waiting.
fn next_write(
    candidates: &[Candidate],
    handled: &[bool],
    not_waiting: &[usize],
    free: usize,
) -> NextWrite {
    let mut next = NextWrite::default();
    let mut shards: HashSet<u32> = HashSet::new();
    for (index, &done) in handled.iter().enumerate() {
        if done {
            continue;
        }
        let shard = candidates[index].shard;
        let moved = shards.len() + usize::from(!shards.contains(&shard));
        if not_waiting.contains(&index) {
            if admission_items(moved, 0, next.chosen.len()) > MAX_TRANSACTION_ITEMS {
                break;
            }
            next.passing.push(index);
        } else {
            if next.chosen.len() >= free
                || admission_items(moved, 0, next.chosen.len() + 1) > MAX_TRANSACTION_ITEMS
            {
                break;
            }
            next.chosen.push(index);
        }
        shards.insert(shard);
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
            Slot::Number(number) | Slot::Gap(number) => {
                progress.admitted_up_to = progress.admitted_up_to.max(number)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(shard: u32, number: u64) -> Candidate {
        Candidate {
            user_id: Uuid::from_u128((u128::from(shard) << 64) | u128::from(number)),
            token_id: Uuid::now_v7(),
            shard,
            place: Slot::Number(number),
        }
    }

    #[test]
    fn when_more_slots_than_one_write_holds_should_take_the_first_then_the_rest() {
        let candidates: Vec<Candidate> = (1..=110).map(|n| candidate(0, n)).collect();
        let mut handled = vec![false; 110];
        // One shard: the admission item, its progress, and 49 activations of two items each.
        let first = next_write(&candidates, &handled, &[], 1000);
        assert_eq!(first.chosen, (0..49).collect::<Vec<_>>());
        for &index in &first.chosen {
            handled[index] = true;
        }
        // The next write goes on in order from where the first stopped.
        let second = next_write(&candidates, &handled, &[], 1000);
        assert_eq!(second.chosen, (49..98).collect::<Vec<_>>());
    }

    #[test]
    fn when_few_slots_should_take_only_those_and_pass_over_the_departed_before_them() {
        let candidates: Vec<Candidate> = (1..=10).map(|n| candidate(0, n)).collect();
        let handled = vec![false; 10];
        // Candidates 2 and 9 (indexes 1, 8) left; three slots are free.
        let next = next_write(&candidates, &handled, &[1, 8], 3);
        assert_eq!(next.chosen, [0, 2, 3]);
        // Number 9 is behind someone still waiting: passing it would move the shard's
        // progress past them.
        assert_eq!(next.passing, [1]);
    }

    #[test]
    fn a_write_should_count_a_progress_item_per_shard_it_moves() {
        // Forty shards, one candidate each: 1 + 40 + 2 × 29 = 99 items.
        let candidates: Vec<Candidate> = (0..60).map(|shard| candidate(shard, 1)).collect();
        let next = next_write(&candidates, &[false; 60], &[], 1000);
        assert_eq!(next.chosen.len(), 33, "1 + 33 + 2 × 33 = 100 items");
    }

    #[test]
    fn a_write_should_move_only_the_shards_it_touches() {
        let state = AdmissionState {
            version: 4,
            shards: vec![ShardProgress::default(); 3],
            last_numbers: vec![0; 3],
            stashes: vec![Vec::new(); 3],
        };
        let mut candidates = vec![candidate(0, 1), candidate(2, 1), candidate(2, 2)];
        candidates[1].place = Slot::Gap(1);
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
        // Shard 2: number 1 passed over (nobody took it up), number 2 admitted.
        assert_eq!(progress[1].1.admitted_up_to, 2);
        assert_eq!(progress[1].1.history.admitted_total, 1);
        assert_eq!(progress[1].1.history.first_admitted_at, Some(now));
    }

    fn held(shard: u32, number: u64) -> Held {
        Held {
            entrant: Known {
                concert_id: Uuid::nil(),
                user_id: Uuid::from_u128(u128::from(number)),
                token_id: Uuid::from_u128(u128::from(number)),
                number,
                shard,
                entered_at_ms: number as i64,
            },
            receipt: format!("{shard}-{number}"),
        }
    }

    #[test]
    fn known_lines_should_join_stash_and_messages_and_drop_what_was_handled() {
        let mut state = AdmissionState {
            version: 1,
            shards: vec![ShardProgress::default(); 2],
            last_numbers: vec![9, 0],
            stashes: vec![vec![held(0, 5).entrant, held(0, 2).entrant], Vec::new()],
        };
        state.shards[0].admitted_up_to = 2;
        let (lines, messages, stale) = known_lines(
            &state,
            vec![held(0, 1), held(0, 4), held(0, 4), held(0, 3), held(7, 1)],
        );
        let numbers: Vec<u64> = lines[0].known.iter().map(|k| k.number).collect();
        assert_eq!(numbers, [3, 4, 5]);
        let receipts =
            |held: &[Held]| -> Vec<String> { held.iter().map(|m| m.receipt.clone()).collect() };
        // Number 4 came twice: both copies are kept, to be deleted together.
        assert_eq!(receipts(&messages), ["0-4", "0-4", "0-3"]);
        // Number 1 was admitted, shard 7 does not exist.
        assert_eq!(receipts(&stale), ["0-1", "7-1"]);
    }
}
