//! A short-lived, per-process copy of concert and date items.
//!
//! Every hold, seat map and queue entry needs its concert (the booking window) and, for holds
//! and seat maps, the date. Read from DynamoDB each time, a big on-sale would read one concert
//! partition tens of thousands of times a second, far beyond a partition's 3,000 read units.
//! Concert and date items never change after creation (no endpoint updates them), so each
//! process keeps what it read for [`CATALOG_CACHE_SECONDS`]; a warm Lambda environment then
//! reads a concert at most once in that time. Should an update endpoint be added, this is how
//! stale its changes may be on the hot paths.

use crate::catalog::{Concert, Schedule};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a process keeps a concert or date item.
pub const CATALOG_CACHE_SECONDS: u64 = 10;
/// Entries kept at most; the oldest half is dropped when full (a process serves few concerts).
const CAPACITY: usize = 1_000;

#[derive(Debug, Default)]
pub struct CatalogCache {
    concerts: Mutex<HashMap<Uuid, (Instant, Concert)>>,
    schedules: Mutex<HashMap<Uuid, (Instant, Schedule)>>,
}

impl CatalogCache {
    pub fn concert(&self, concert_id: Uuid) -> Option<Concert> {
        fresh(&self.concerts, concert_id)
    }

    /// The date, if it is cached and belongs to `concert_id`.
    pub fn schedule(&self, concert_id: Uuid, schedule_id: Uuid) -> Option<Schedule> {
        fresh(&self.schedules, schedule_id).filter(|schedule| schedule.concert_id == concert_id)
    }

    pub fn keep_concert(&self, concert: &Concert) {
        keep(&self.concerts, concert.concert_id, concert.clone());
    }

    pub fn keep_schedule(&self, schedule: &Schedule) {
        keep(&self.schedules, schedule.schedule_id, schedule.clone());
    }
}

fn fresh<T: Clone>(map: &Mutex<HashMap<Uuid, (Instant, T)>>, id: Uuid) -> Option<T> {
    let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (read_at, value) = map.get(&id)?;
    (read_at.elapsed() < Duration::from_secs(CATALOG_CACHE_SECONDS)).then(|| value.clone())
}

fn keep<T>(map: &Mutex<HashMap<Uuid, (Instant, T)>>, id: Uuid, value: T) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if map.len() >= CAPACITY {
        let mut ages: Vec<Instant> = map.values().map(|(read_at, _)| *read_at).collect();
        ages.sort_unstable();
        let cutoff = ages[ages.len() / 2];
        map.retain(|_, (read_at, _)| *read_at > cutoff);
    }
    map.insert(id, (Instant::now(), value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn schedule(concert_id: Uuid) -> Schedule {
        Schedule {
            schedule_id: Uuid::now_v7(),
            concert_id,
            starts_at: Utc::now(),
            total_seats: 50,
        }
    }

    #[test]
    fn a_date_should_be_found_only_under_its_own_concert() {
        let cache = CatalogCache::default();
        let concert = Uuid::now_v7();
        let date = schedule(concert);
        cache.keep_schedule(&date);
        assert_eq!(
            cache.schedule(concert, date.schedule_id),
            Some(date.clone())
        );
        assert_eq!(cache.schedule(Uuid::now_v7(), date.schedule_id), None);
    }

    #[test]
    fn when_full_should_drop_the_oldest_and_keep_the_newest() {
        let cache = CatalogCache::default();
        let concert = Uuid::now_v7();
        let dates: Vec<Schedule> = (0..CAPACITY + 1).map(|_| schedule(concert)).collect();
        for date in &dates {
            cache.keep_schedule(date);
        }
        let last = dates.last().unwrap();
        assert!(cache.schedule(concert, last.schedule_id).is_some());
        assert!(cache.schedules.lock().unwrap().len() <= CAPACITY);
    }
}
