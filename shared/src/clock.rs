//! The one source of "now".
//!
//! Every expiry in the system (access tokens, holds, queue tokens) is decided by comparing a
//! stored time with `Clock::now`, so tests that need time to pass move this clock instead of
//! sleeping.

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

/// Wall-clock time, or a manual clock for tests. Cheap to clone; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual_millis: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands still at `at` until moved with [`Clock::advance`] or [`Clock::set`].
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual_millis: Some(Arc::new(AtomicI64::new(at.timestamp_millis()))),
        }
    }

    /// The time, to the millisecond (what is stored and shown; finer means nothing here).
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual_millis {
            None => Utc::now().trunc_subsecs(3),
            Some(millis) => Utc
                .timestamp_millis_opt(millis.load(Ordering::SeqCst))
                .single()
                .expect("manual clock holds a valid timestamp"),
        }
    }

    /// Moves a manual clock forward. Panics on the system clock: a test bug, not a runtime path.
    pub fn advance(&self, by: Duration) {
        let millis = self
            .manual_millis
            .as_ref()
            .expect("only a manual clock can be advanced");
        millis.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    pub fn set(&self, at: DateTime<Utc>) {
        let millis = self
            .manual_millis
            .as_ref()
            .expect("only a manual clock can be set");
        millis.store(at.timestamp_millis(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_manual_clock_advances_clones_should_see_the_same_time() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = Clock::manual(start);
        let clone = clock.clone();
        clock.advance(Duration::seconds(90));
        assert_eq!(clone.now(), start + Duration::seconds(90));
        clone.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn when_system_clock_should_be_close_to_utc_now() {
        let drift = (Clock::system().now() - Utc::now()).num_seconds().abs();
        assert!(drift <= 1);
    }
}
