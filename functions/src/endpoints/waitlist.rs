//! `POST`, `GET` and `DELETE /schedules/{schedule_id}/waitlist`: a sold-out date's waiting list.

use crate::endpoints::reservations;
use crate::{http, HandlerResult};
use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde_json::{json, Value};
use shared::operations::WaitlistView;
use shared::runtime::Services;

pub async fn join(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let (entry, joined) = services
        .join_waitlist(
            &principal,
            http::queue_token(&request),
            &http::path(&request, "schedule_id")?,
            http::body(&request)?,
        )
        .await?;
    let status = if joined { 201 } else { 200 };
    http::json(status, &view(&entry, services.clock.now()))
}

pub async fn get(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let entry = services
        .waitlist_status(&principal, &http::path(&request, "schedule_id")?)
        .await?;
    http::json(200, &view(&entry, services.clock.now()))
}

pub async fn leave(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    services
        .leave_waitlist(&principal, &http::path(&request, "schedule_id")?)
        .await?;
    http::no_content()
}

/// An entry as the API shows it: while offered, the held reservation and the queue token to
/// pay it with.
fn view(entry: &WaitlistView, now: DateTime<Utc>) -> Value {
    let offer = entry.offer.as_ref().map(|(reservation, queue_token)| {
        json!({
            "reservation": reservations::view(reservation, now),
            "queue_token": queue_token,
            "expires_at": reservation.expires_at,
        })
    });
    json!({
        "entry_id": entry.entry.entry_id,
        "schedule_id": entry.entry.schedule_id,
        "concert_id": entry.entry.concert_id,
        "grade": entry.entry.grade,
        "count": entry.entry.count,
        "status": entry.status,
        "joined_at": entry.entry.joined_at,
        "ahead": entry.ahead,
        "reservation_id": entry.entry.reservation_id,
        "offer": offer,
    })
}
