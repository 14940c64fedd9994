//! The operations behind the endpoints: one method per use case on [`Services`], each checking
//! its input, applying the rules and making (ideally) one storage request.
//!
//! [`Services`]: crate::runtime::Services

mod catalog;
mod import;
mod money;
mod practice;
pub mod queue;
mod reservations;
mod users;
mod waitlist;

pub use catalog::{CreatedConcert, ScheduleAvailability};
pub use import::{normalise, ImportRequest, Imported};
pub use money::{CancellationPreview, Replied, ScheduleSales, Terms};
pub use practice::{History, PracticeStanding, RunView, ZoneView};
pub use queue::line::MissingSince;
pub use queue::{AdmitReport, Admitted, EnterQueue, Place, QueueView};
pub use reservations::SeatMap;
pub use waitlist::WaitlistView;

use crate::error::{DomainError, Result};

/// How long after a hold, a cancellation or a signup the same request made again is taken as a
/// retry of the first and answered as it was (API.md: a 409 is never about the caller's own
/// earlier attempt). Longer than any client's retries of one request; after it, the contract's
/// 409.
pub const REPEAT_WINDOW_SECONDS: i64 = 120;

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// The `limit` query parameter of a paged list: 1..=100, 20 when absent.
fn page_size(limit: Option<&str>) -> Result<i32> {
    match limit {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
            .ok_or_else(|| {
                DomainError::validation("limit", format!("must be from 1 to {MAX_PAGE_SIZE}"))
            }),
    }
}
