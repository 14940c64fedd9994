//! The operations behind the endpoints: one method per use case on [`Services`], each checking
//! its input, applying the rules and making (ideally) one storage request.
//!
//! [`Services`]: crate::runtime::Services

mod catalog;
mod money;
mod queue;
mod reservations;

pub use catalog::{CreatedConcert, ScheduleAvailability, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use money::{Replied, ScheduleSales};
pub use queue::{AdmitReport, Admitted, EnterQueue, Place, QueueView};
mod users;
