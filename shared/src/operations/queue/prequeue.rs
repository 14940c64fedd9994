//! The randomised pre-queue: early entrants ranked at random, drained in rank order from the
//! opening, ahead of everyone who entered after it.

use super::admission::{Candidate, Slot};
use super::entry::PREQUEUE_GRACE_MILLIS;
use super::AdmitReport;
use crate::error::Result;
use crate::runtime::Services;
use crate::store::PreEntrant;
use chrono::Duration;
use std::collections::HashSet;
use uuid::Uuid;

/// Early entrants read per shard and page.
const PREQUEUE_PAGE: usize = 40;
/// Rounds one step spends on a pre-queue.
const MAX_ROUNDS: usize = 20;

impl Services {
    /// Drains every pre-queue whose opening (and grace) has passed, as far as free slots allow;
    /// takes the drained ones off the list. Returns the concerts whose pre-queue is not through
    /// yet: their entry-queue messages wait.
    pub(super) async fn admit_prequeues(
        &self,
        pending: Vec<(Uuid, chrono::DateTime<chrono::Utc>)>,
        report: &mut AdmitReport,
    ) -> Result<HashSet<Uuid>> {
        let mut held = HashSet::new();
        for (concert_id, opens_at) in pending {
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
        let page_size = PREQUEUE_PAGE;
        for _ in 0..MAX_ROUNDS {
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
                .admit_in_order(concert_id, &candidates, &last_pages, Some(state))
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
        Slot::Rank(rank) | Slot::Number(rank) | Slot::Gap(rank) => (rank, candidate.shard),
    });
    (candidates, last_pages)
}

#[cfg(test)]
mod tests {
    use super::*;

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
                Slot::Rank(rank) | Slot::Number(rank) | Slot::Gap(rank) => rank,
            })
            .collect();
        // Shard 0 may hold ranks after 40 that come before 50: 50 waits for its next page.
        assert_eq!(ranks, [10, 20, 30, 40]);
        assert_eq!(last_pages, HashSet::from([2]));
    }
}
