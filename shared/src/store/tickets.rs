//! A user's tickets for one date: the item that keeps the ticket limit and the seat-parking
//! rule (`rules::Tickets`), under the user's own partition (`USER#{user}`/`TICKETS#{date}`).
//!
//! A hold writes the whole item in its transaction, on condition of the version it read, so two
//! holds of one user for one date cannot both take the last places. Paying, releasing,
//! declining and cancelling change the reservation's own slots in their transactions, each on
//! condition the slot is still that reservation's. A hold that ran out needs no write: its slot
//! is free again by its time, and the next hold settles it as a drop (`Tickets::settle`).

use super::items::key;
use super::{from_item, keys, s, to_item, Item};
use crate::error::{DomainError, Result};
use crate::reservations::Reservation;
use crate::rules::{LimitSlot, Tickets, MAX_DROPS_KEPT};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
pub(crate) struct TicketsItem {
    pk: String,
    sk: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    drops: Vec<i64>,
    /// Slot number ("0".."9") → slot.
    #[serde(default)]
    slots: HashMap<String, LimitSlot>,
    ttl: i64,
}

pub(crate) fn tickets_key(user_id: Uuid, schedule_id: Uuid) -> Item {
    key(keys::user(user_id), keys::tickets_sk(schedule_id))
}

pub(crate) fn tickets_from(item: Item) -> Result<Tickets> {
    let item: TicketsItem = from_item(item)?;
    let mut slots = Vec::new();
    for (index, slot) in item.slots {
        let index: usize = index
            .parse()
            .map_err(|_| DomainError::internal("tickets: a slot is not numbered"))?;
        if slots.len() <= index {
            slots.resize(index + 1, None);
        }
        slots[index] = Some(slot);
    }
    Ok(Tickets {
        slots,
        drops: item.drops,
        version: item.version,
    })
}

/// What a hold writes: the new state of the user's tickets for the date, on condition the
/// stored item is still at `tickets.version` (0: there was none).
pub struct TicketsWrite {
    pub tickets: Tickets,
    /// Kept until a day after the show.
    pub keep_until: DateTime<Utc>,
}

/// How a reservation's slots change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotChange {
    /// Paid: its slots are booked for good.
    Book,
    /// Given back by its holder: the slots are free, and the holder let seats go (a drop).
    Release,
    /// Freed without the holder letting seats go (declined, cancelled).
    Free,
}

impl super::Store {
    /// A user's tickets for a date, read consistently; `None` if they never held any.
    pub async fn tickets(&self, user_id: Uuid, schedule_id: Uuid) -> Result<Option<Tickets>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(tickets_key(user_id, schedule_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| super::sdk_error("tickets", err))?;
        output.item.map(tickets_from).transpose()
    }

    /// The hold's write of a user's tickets for a date.
    pub(crate) fn tickets_put(
        &self,
        user_id: Uuid,
        schedule_id: Uuid,
        write: &TicketsWrite,
    ) -> Result<TransactWriteItem> {
        let slots = write
            .tickets
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| Some((index.to_string(), slot.clone()?)))
            .collect();
        let drops = write.tickets.drops.clone();
        let drops = drops[drops.len().saturating_sub(MAX_DROPS_KEPT)..].to_vec();
        let read_version = write.tickets.version;
        let item = to_item(&TicketsItem {
            pk: keys::user(user_id),
            sk: keys::tickets_sk(schedule_id),
            version: read_version + 1,
            drops,
            slots,
            ttl: write.keep_until.timestamp() + 86_400,
        })?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match read_version {
            0 => put.condition_expression("attribute_not_exists(pk)"),
            version => put
                .condition_expression("version = :version")
                .expression_attribute_values(":version", AttributeValue::N(version.to_string())),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(DomainError::internal)?)
            .build())
    }

    /// The change of a reservation's slots in the user's tickets, for the transaction that
    /// pays, releases, declines or cancels it; `None` for a reservation made before the limit
    /// was kept (it has no slots).
    pub(crate) fn tickets_update(
        &self,
        reservation: &Reservation,
        change: SlotChange,
        now: DateTime<Utc>,
    ) -> Result<Option<TransactWriteItem>> {
        if reservation.limit_slots.is_empty() {
            return Ok(None);
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(tickets_key(
                reservation.user_id,
                reservation.schedule_id,
            )))
            .expression_attribute_names("#slots", "slots")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":reservation", s(reservation.reservation_id.to_string()));
        let mut paths = Vec::new();
        let mut conditions = Vec::new();
        for slot in &reservation.limit_slots {
            let name = format!("#s{slot}");
            update = update.expression_attribute_names(&name, slot.to_string());
            paths.push(format!("#slots.{name}"));
            conditions.push(format!("#slots.{name}.reservation_id = :reservation"));
        }
        let expression = match change {
            SlotChange::Book => {
                let booked = to_item(&LimitSlot {
                    reservation_id: reservation.reservation_id,
                    until_ms: None,
                    offer: false,
                })?;
                update = update.expression_attribute_values(":booked", AttributeValue::M(booked));
                let sets: Vec<String> = paths.iter().map(|p| format!("{p} = :booked")).collect();
                format!("SET {} ADD version :one", sets.join(", "))
            }
            SlotChange::Release => {
                update = update
                    .expression_attribute_values(
                        ":drop",
                        AttributeValue::L(vec![AttributeValue::N(
                            now.timestamp_millis().to_string(),
                        )]),
                    )
                    .expression_attribute_values(":none", AttributeValue::L(Vec::new()));
                format!(
                    "REMOVE {} SET drops = list_append(if_not_exists(drops, :none), :drop) ADD version :one",
                    paths.join(", ")
                )
            }
            SlotChange::Free => format!("REMOVE {} ADD version :one", paths.join(", ")),
        };
        let update = update
            .update_expression(expression)
            .condition_expression(conditions.join(" AND "))
            .build()
            .map_err(DomainError::internal)?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }
}
