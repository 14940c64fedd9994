//! The DynamoDB adapter: one table, items mapped with `serde_dynamo`.
//!
//! The key design (partition and sort keys per entity, the GSI, the TTL attribute and why they
//! are shaped so) is in docs/ARCHITECTURE.md; [`keys`] is its executable form. Every function
//! here is one DynamoDB request unless its comment says otherwise, and every state change that
//! must be atomic is one conditional write or one `TransactWriteItems`.

mod catalog;
mod cursor;
mod holds;
mod imports;
mod items;
pub mod keys;
mod money;
mod practice;
mod queue;
mod tickets;
mod users;
mod waitlist;

use crate::error::DomainError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

pub use catalog::ConcertPage;
pub use holds::{HoldConflict, HoldContext, HOLD_SHARDS};
pub use imports::{ClaimOf, Claimed, ImportClaim, CLAIM_TAKEOVER_SECONDS};
pub use money::{CancelWrite, PaymentContext, PaymentWrite, SalesCounters};
pub use queue::{
    admission_items, Activation, Admission, AdmissionState, AdmitConflict, PreEntrant,
    QueueSnapshot, MAX_STASHED, MAX_TRANSACTION_ITEMS,
};
pub use tickets::{SlotChange, TicketsWrite};
pub use waitlist::Offer;

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

/// Any SDK failure we do not map to a domain outcome. A transient one (throttled, timed out,
/// unreachable, a 5xx: see [`is_transient`]) has already been retried by the SDK and is
/// `SERVICE_BUSY`; anything else is `INTERNAL`. Logged in full either way.
pub(crate) fn sdk_error<E>(operation: &'static str, err: SdkError<E>) -> DomainError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().unwrap_or("unknown").to_owned();
    let message = err.message().unwrap_or_default().to_owned();
    if is_transient(&err) {
        tracing::warn!(operation, code, message, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "AWS request failed after retries");
        return DomainError::busy();
    }
    tracing::error!(operation, code, message, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "AWS request failed");
    DomainError::internal(format!("{operation}: {code}"))
}

/// Error codes AWS services use for "slow down" and "try again": the SDK's own retry
/// classification, plus DynamoDB's `TransactionConflictException` (a single-item write that
/// met a transaction on its item).
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "TransactionConflictException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Whether an AWS SDK failure is a transient fault (throttling, a timeout, a lost connection,
/// a 5xx) rather than a request that can never succeed. Any AWS service's error.
pub fn is_transient<E>(err: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() >= 500
                || err
                    .code()
                    .is_some_and(|code| TRANSIENT_CODES.contains(&code))
        }
        _ => false,
    }
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, DomainError> {
    serde_dynamo::to_item(value).map_err(DomainError::internal)
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, DomainError> {
    serde_dynamo::from_item(item).map_err(DomainError::internal)
}

/// An item's sort key ("" if it has none), which says what kind of item it is.
pub(crate) fn sort_key(item: &Item) -> String {
    item.get(keys::SK)
        .and_then(|sk| sk.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// What an item of a transaction is, to read a cancelled transaction's reasons by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Account,
    Ledger,
    Idempotency,
    Reservation,
    Seat,
    Payment,
    QueueToken,
    /// The shopper's item in the concert's active list.
    ActiveSlot,
    /// An early entrant's item in a concert's pre-queue.
    PreEntrant,
    Sales,
    /// The user's tickets for the date (ticket limit, seat parking).
    Tickets,
    /// A waiting-list entry.
    Waitlist,
}

/// `Ok(true)` if a conditional write went through, `Ok(false)` if its condition failed.
pub(crate) fn applied<O, E>(
    operation: &'static str,
    result: Result<O, SdkError<E>>,
) -> Result<bool, DomainError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(err) => Err(sdk_error(operation, err)),
    }
}

impl Store {
    /// Every item of a partition (whose sort key starts with `prefix`, if given), following
    /// pages to the end; a consistent read if `consistent`.
    pub(crate) async fn query_partition(
        &self,
        pk: String,
        prefix: Option<&str>,
        consistent: bool,
    ) -> Result<Vec<Item>, DomainError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(consistent)
                .set_exclusive_start_key(start_key);
            query = match prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let output = query
                .send()
                .await
                .map_err(|err| sdk_error("query_partition", err))?;
            items.extend(output.items.unwrap_or_default());
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                return Ok(items);
            }
        }
    }

    /// How many seats of a schedule pass `filter` (a filter expression over `#status`,
    /// `hold_expires_at` and `values`): a `COUNT` query per seat partition, all together, which
    /// read the partitions but return no items.
    pub(crate) async fn count_seats(
        &self,
        schedule: &crate::catalog::Schedule,
        filter: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<u32, DomainError> {
        let partitions = keys::seat_partitions(schedule.schedule_id, schedule.total_seats);
        let counts = futures::future::try_join_all(
            partitions
                .into_iter()
                .map(|partition| self.count_in_partition(partition, filter, values)),
        )
        .await?;
        Ok(counts.into_iter().sum())
    }

    async fn count_in_partition(
        &self,
        partition: String,
        filter: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<u32, DomainError> {
        let mut count = 0;
        let mut start_key = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression(filter)
                .expression_attribute_names("#status", "status")
                .set_expression_attribute_values(Some(
                    values
                        .iter()
                        .map(|(name, value)| (name.to_string(), value.clone()))
                        .chain([
                            (":pk".to_owned(), s(partition.clone())),
                            (":prefix".to_owned(), s(keys::SEAT_SK_PREFIX)),
                        ])
                        .collect(),
                ))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|err| sdk_error("count_seats", err))?;
            count += output.count.max(0) as u32;
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                return Ok(count);
            }
        }
    }
}

/// A `TransactWriteItems` being built, each item tagged with the role it plays, so that a
/// cancelled transaction can say which roles failed their condition.
pub(crate) struct Transaction {
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    roles: Vec<Role>,
}

impl Transaction {
    pub(crate) fn new() -> Self {
        Self {
            items: Vec::new(),
            roles: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, role: Role, item: aws_sdk_dynamodb::types::TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }

    /// Runs it: `Ok(Err(cancelled))` when it was cancelled, saying which roles failed their
    /// condition and whether any item was only busy.
    pub(crate) async fn run(
        self,
        store: &Store,
        operation: &'static str,
    ) -> Result<Result<(), Cancelled>, DomainError> {
        let result = store
            .client
            .transact_write_items()
            .set_transact_items(Some(self.items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.as_service_error().and_then(items::cancellation_reasons) {
                Some(reasons) if !reasons.is_empty() => {
                    let mut cancelled = Cancelled::default();
                    for (index, code) in reasons {
                        match Reason::of(&code) {
                            Some(Reason::Condition) => {
                                cancelled.failed.extend(self.roles.get(index).copied())
                            }
                            Some(Reason::Busy) => cancelled.busy = true,
                            None => return Err(sdk_error(operation, err)),
                        }
                    }
                    Ok(Err(cancelled))
                }
                _ => Err(sdk_error(operation, err)),
            },
        }
    }
}

/// Why a transaction was cancelled.
#[derive(Debug, Default, PartialEq)]
pub struct Cancelled {
    /// The roles whose condition failed: the state is not what the transaction expected.
    pub failed: Vec<Role>,
    /// Some item was busy (another transaction on it) or throttled: the same transaction may
    /// go through if tried again.
    pub busy: bool,
}

impl Cancelled {
    pub fn failed(&self, role: Role) -> bool {
        self.failed.contains(&role)
    }
}

/// What a cancellation reason's code says about an item.
#[derive(Debug, PartialEq)]
pub(crate) enum Reason {
    /// `ConditionalCheckFailed`.
    Condition,
    /// `TransactionConflict`, `ThrottlingError`, `ProvisionedThroughputExceeded`: try again.
    Busy,
}

impl Reason {
    /// `None` for a reason no retry can fix (`ValidationError`, an item too large, ...).
    pub(crate) fn of(code: &str) -> Option<Self> {
        match code {
            "ConditionalCheckFailed" => Some(Self::Condition),
            "TransactionConflict"
            | "ThrottlingError"
            | "ProvisionedThroughputExceeded"
            | "RequestLimitExceeded" => Some(Self::Busy),
            _ => None,
        }
    }
}
