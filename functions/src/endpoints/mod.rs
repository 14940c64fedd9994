//! One module per area of the API; one function per endpoint.

pub mod catalog;
pub mod health;
pub mod jobs;
pub mod money;
pub mod practice;
pub mod queue;
pub mod reservations;
pub mod runs;
pub mod users;
pub mod waitlist;
