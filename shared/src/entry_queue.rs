//! The SQS FIFO queue that carries queue entrants to the admitter, in order.
//!
//! One message group per entry shard of a concert (`{concert}#{shard}`) keeps each shard's
//! entrants in the order SQS received them and lets concerts and shards move independently; the
//! token id is the deduplication id, so a retried send is not a second place. Each message
//! carries its place: shard, number and when it was numbered, by which the admitter orders the
//! line (`operations::queue::line`). It deletes a message once its place is admitted or passed
//! over, and hands the rest back for a later round or step.

use crate::error::{DomainError, Result};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The message body: who entered which concert's queue, with which token and number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entrant {
    pub concert_id: Uuid,
    pub user_id: Uuid,
    pub token_id: Uuid,
    pub number: u64,
    /// The entry shard (absent, so 0, in messages of one-shard lines).
    #[serde(default)]
    pub shard: u32,
    /// When the place was numbered: the entry's wall clock, epoch ms, right after its shard's
    /// counter answered. The admitter merges shards on it.
    #[serde(default)]
    pub entered_at_ms: i64,
}

impl Entrant {
    /// The message group: one per entry shard of a concert.
    pub fn group(&self) -> String {
        format!("{}#{}", self.concert_id, self.shard)
    }
}

/// A received message: its entrant (or `None` if the body is not one) and its receipt.
#[derive(Clone, Debug)]
pub struct Received {
    pub entrant: Option<Entrant>,
    /// The body as sent.
    pub body: Option<String>,
    pub receipt: String,
}

#[derive(Clone, Debug)]
pub struct EntryQueue {
    client: Client,
    url: String,
    /// How long a receive hides its messages before SQS shows them again by itself.
    visibility_seconds: i32,
    /// Where messages no admitter can read go (`DEAD_LETTER_QUEUE_URL`).
    dead_letter_url: Option<String>,
}

/// A failed SQS request: `SERVICE_BUSY` if it was a transient fault the SDK's retries did not
/// outlast, `INTERNAL` otherwise.
fn sqs_error<E>(operation: &'static str, err: aws_sdk_sqs::error::SdkError<E>) -> DomainError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    if crate::store::is_transient(&err) {
        tracing::warn!(operation, error = %DisplayErrorContext(&err), "SQS request failed after retries");
        return DomainError::busy();
    }
    tracing::error!(operation, error = %DisplayErrorContext(&err), "SQS request failed");
    DomainError::internal(format!("{operation} failed"))
}

impl EntryQueue {
    pub fn new(
        client: Client,
        url: impl Into<String>,
        dead_letter_url: Option<String>,
        visibility_seconds: i32,
    ) -> Self {
        Self {
            client,
            url: url.into(),
            visibility_seconds,
            dead_letter_url,
        }
    }

    pub async fn send(&self, entrant: &Entrant) -> Result<()> {
        let body = serde_json::to_string(entrant).map_err(DomainError::internal)?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_group_id(entrant.group())
            .message_deduplication_id(entrant.token_id.to_string())
            .message_body(body)
            .send()
            .await
            .map_err(|err| sqs_error("send_message", err))?;
        Ok(())
    }

    /// Up to 10 messages, without waiting: a long poll would hold the admitter's step (and,
    /// against the single-threaded local emulator, every other request).
    ///
    /// Each receive carries a `ReceiveRequestAttemptId` of its own, which the SDK repeats on
    /// its retries: a retry after a lost answer gets the messages the lost answer carried (an
    /// attempt id holds for five minutes, while none of its messages was changed), rather than
    /// finding them in flight and their message groups hidden for the visibility timeout.
    /// (moto ignores it.)
    pub async fn receive(&self) -> Result<Vec<Received>> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(self.visibility_seconds)
            .wait_time_seconds(0)
            .receive_request_attempt_id(uuid::Uuid::new_v4().simple().to_string())
            .send()
            .await
            .map_err(|err| sqs_error("receive_message", err))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                let receipt = message.receipt_handle?;
                let entrant = message
                    .body
                    .as_deref()
                    .and_then(|body| serde_json::from_str(body).ok());
                Some(Received {
                    entrant,
                    body: message.body,
                    receipt,
                })
            })
            .collect())
    }

    /// Moves messages no admitter can read to the dead-letter queue (whose alarm tells the
    /// operators), then deletes them here: left in place, one would block its message group.
    /// Without a dead-letter queue they are left to SQS's redrive policy.
    pub async fn dead_letter(&self, messages: &[Received]) -> Result<()> {
        let Some(url) = &self.dead_letter_url else {
            return Ok(());
        };
        for message in messages {
            let id = uuid::Uuid::new_v4().to_string();
            self.client
                .send_message()
                .queue_url(url)
                .message_group_id("unreadable")
                .message_deduplication_id(&id)
                .message_body(message.body.as_deref().unwrap_or(""))
                .send()
                .await
                .map_err(|err| sqs_error("send_message (dead letter)", err))?;
        }
        let receipts: Vec<String> = messages.iter().map(|m| m.receipt.clone()).collect();
        self.delete(&receipts).await
    }

    /// Deletes handled messages, ten to a request, the requests together.
    pub async fn delete(&self, receipts: &[String]) -> Result<()> {
        futures::future::try_join_all(receipts.chunks(10).map(|chunk| self.delete_batch(chunk)))
            .await?;
        Ok(())
    }

    async fn delete_batch(&self, chunk: &[String]) -> Result<()> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(index, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .map_err(DomainError::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        let output = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| sqs_error("delete_message_batch", err))?;
        if !output.failed.is_empty() {
            // Not fatal: the message comes back and its entrant is passed over as handled.
            tracing::warn!(
                failed = output.failed.len(),
                "some queue messages were not deleted"
            );
        }
        Ok(())
    }

    /// Hands messages back to be received again after `delay_seconds`, ten to a request, the
    /// requests together. Their groups stay blocked until then, which is what a full concert
    /// wants.
    pub async fn hand_back(&self, receipts: &[String], delay_seconds: i32) -> Result<()> {
        futures::future::try_join_all(
            receipts
                .chunks(10)
                .map(|chunk| self.hand_back_batch(chunk, delay_seconds)),
        )
        .await?;
        Ok(())
    }

    async fn hand_back_batch(&self, chunk: &[String], delay_seconds: i32) -> Result<()> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(index, receipt)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(delay_seconds)
                    .build()
                    .map_err(DomainError::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        let output = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| sqs_error("change_message_visibility_batch", err))?;
        if !output.failed.is_empty() {
            // Not fatal: the message comes back when its visibility timeout ends.
            tracing::warn!(
                failed = output.failed.len(),
                "some queue messages were not handed back"
            );
        }
        Ok(())
    }
}
