//! The ticketing domain.
//!
//! Three rooms with arrows pointing one way: the rules and types ([`users`], [`catalog`],
//! [`auth`], [`error`]) know nothing of Lambda or DynamoDB; the [`store`] translates them to
//! DynamoDB items and requests; the HTTP entry points (the `functions` crate) translate requests
//! into calls on this crate. Everything that is read from the environment is in [`config`], and
//! everything that asks for the time asks the [`clock`].

pub mod auth;
pub mod catalog;
pub mod catalog_cache;
pub mod clock;
pub mod config;
pub mod entry_queue;
pub mod error;
pub mod events;
pub mod ids;
pub mod metrics;
pub mod money;
pub mod operations;
pub mod practice;
pub mod queue;
pub mod reservations;
pub mod rules;
pub mod runtime;
pub mod store;
pub mod users;
pub mod validate;
pub mod waitlist;

pub use clock::Clock;
pub use config::Config;
pub use error::{DomainError, Result};
