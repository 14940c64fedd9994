//! The DynamoDB adapter: one table, items mapped with `serde_dynamo`.
//!
//! The key design (partition and sort keys per entity, the GSI, the TTL attribute and why they
//! are shaped so) is in docs/ARCHITECTURE.md; [`keys`] is its executable form. Every function
//! here is one DynamoDB request unless its comment says otherwise, and every state change that
//! must be atomic is one conditional write or one `TransactWriteItems`.

mod catalog;
mod cursor;
mod holds;
pub mod keys;
mod money;
mod queue;
mod users;

use crate::error::DomainError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

pub use catalog::ConcertPage;
pub use holds::{HoldConflict, HoldContext, HOLD_SHARDS};
pub use money::{CancelWrite, MoneyRole, PaymentContext, PaymentWrite, SalesCounters};
pub use queue::{Activation, Admission, AdmitConflict};

pub type Item = HashMap<String, AttributeValue>;

/// The table and the client that reaches it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Any SDK failure we do not map to a domain outcome: logged in full, shown as `INTERNAL`.
pub(crate) fn sdk_error<E>(operation: &'static str, err: SdkError<E>) -> DomainError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().unwrap_or("unknown").to_owned();
    let message = err.message().unwrap_or_default().to_owned();
    tracing::error!(operation, code, message, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "DynamoDB request failed");
    DomainError::internal(format!("{operation}: {code}"))
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, DomainError> {
    serde_dynamo::to_item(value).map_err(DomainError::internal)
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, DomainError> {
    serde_dynamo::from_item(item).map_err(DomainError::internal)
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A `TransactWriteItems` being built, each item tagged with the role it plays, so that a
/// cancelled transaction can say which roles failed their condition.
pub(crate) struct Transaction<R> {
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    roles: Vec<R>,
}

impl<R: Copy> Transaction<R> {
    pub(crate) fn new() -> Self {
        Self {
            items: Vec::new(),
            roles: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, role: R, item: aws_sdk_dynamodb::types::TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }

    /// Runs it: `Ok(Err(roles))` when it was cancelled, with the roles whose condition failed
    /// or that collided with another transaction.
    pub(crate) async fn run(
        self,
        store: &Store,
        operation: &'static str,
    ) -> Result<Result<(), Vec<R>>, DomainError> {
        let result = store
            .client
            .transact_write_items()
            .set_transact_items(Some(self.items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.as_service_error().and_then(holds::cancellation_reasons) {
                Some(reasons) if !reasons.is_empty() => Ok(Err(reasons
                    .into_iter()
                    .filter_map(|(index, _)| self.roles.get(index).copied())
                    .collect())),
                _ => Err(sdk_error(operation, err)),
            },
        }
    }
}
