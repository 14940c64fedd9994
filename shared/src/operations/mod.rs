//! The operations behind the endpoints: one method per use case on [`Services`], each checking
//! its input, applying the rules and making (ideally) one storage request.
//!
//! [`Services`]: crate::runtime::Services

mod catalog;
mod import;
mod money;
mod queue;
mod reservations;

pub use catalog::{CreatedConcert, ScheduleAvailability};
pub use import::{normalise, ImportRequest, Imported};
pub use money::{Replied, ScheduleSales};
pub use queue::{AdmitReport, Admitted, EnterQueue, Place, QueueView};
mod users;

use crate::error::{DomainError, Result};

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
