//! Domain events on the project's own EventBridge bus, for whoever wants to react (mail,
//! analytics). They are published after the state change has committed; a failure to publish
//! is logged and counted, never undoes the change (see docs/ARCHITECTURE.md, "Events").

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use serde_json::Value;

pub const SOURCE: &str = "ticketing";

/// One event: its `detail-type` (HoldCreated, HoldExpired, …) and its detail.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainEvent {
    pub kind: &'static str,
    pub detail: Value,
}

impl DomainEvent {
    /// An event about a reservation (`HoldCreated`, `PaymentCompleted`, …).
    pub fn about(
        kind: &'static str,
        reservation: &crate::reservations::Reservation,
        payment_id: Option<uuid::Uuid>,
    ) -> Self {
        Self {
            kind,
            detail: serde_json::json!({
                "reservation_id": reservation.reservation_id,
                "user_id": reservation.user_id,
                "concert_id": reservation.concert_id,
                "schedule_id": reservation.schedule_id,
                "seat_nos": reservation.seat_nos(),
                "amount": reservation.amount,
                "expires_at": reservation.expires_at,
                "payment_id": payment_id,
            }),
        }
    }

    /// An event about a waiting-list entry (`WaitlistJoined`, `WaitlistOffered`,
    /// `WaitlistOfferPassed`).
    pub fn waitlist(kind: &'static str, entry: &crate::waitlist::WaitlistEntry) -> Self {
        Self {
            kind,
            detail: serde_json::json!({
                "entry_id": entry.entry_id,
                "user_id": entry.user_id,
                "concert_id": entry.concert_id,
                "schedule_id": entry.schedule_id,
                "grade": entry.grade,
                "count": entry.count,
                "reservation_id": entry.reservation_id,
            }),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EventPublisher {
    client: Client,
    bus: String,
}

impl EventPublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Publishes up to ten events a request.
    pub async fn publish(&self, events: Vec<DomainEvent>) {
        for chunk in events.chunks(10) {
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(event.kind)
                        .detail(event.detail.to_string())
                        .build()
                })
                .collect();
            match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) if output.failed_entry_count == 0 => {}
                Ok(output) => tracing::warn!(
                    failed = output.failed_entry_count,
                    "some domain events were not published"
                ),
                Err(err) => tracing::warn!(
                    error = %aws_sdk_eventbridge::error::DisplayErrorContext(&err),
                    "domain events were not published"
                ),
            }
        }
    }
}
