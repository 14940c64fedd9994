//! One module per area of the API; one function per endpoint.

pub mod catalog;
pub mod health;
pub mod users;
