//! `GET /schedules/{schedule_id}/seats`, `POST /reservations`, `GET /reservations/{id}`,
//! `DELETE /reservations/{id}`, `POST /reservations/{id}/cancel`,
//! `GET /reservations/{id}/cancellation`, `GET /me/reservations`.

use crate::{http, HandlerResult};
use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde_json::{json, Value};
use shared::operations::Terms;
use shared::reservations::Reservation;
use shared::runtime::Services;

pub async fn seats(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let map = services
        .seat_map(
            &principal,
            http::queue_token(&request),
            &http::path(&request, "schedule_id")?,
            http::query(&request, "zone").as_deref(),
        )
        .await?;
    let now = services.clock.now();
    let items: Vec<Value> = map
        .seats
        .iter()
        .map(|state| {
            json!({
                "seat_no": state.seat.seat_no,
                "section": state.seat.section,
                "row": state.seat.row,
                "grade": state.seat.grade,
                "price": state.seat.price,
                "status": state.status(now),
            })
        })
        .collect();
    http::json(
        200,
        &json!({
            "schedule_id": map.schedule_id,
            "items": items,
            "ticket_limit": {
                "limit": map.limit,
                "taken": map.taken,
                "remaining": map.limit.saturating_sub(map.taken),
            },
        }),
    )
}

/// `GET /schedules/{schedule_id}/zones`: the zones and their seats left.
pub async fn zones(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let (schedule_id, zones) = services
        .seat_zones(
            &principal,
            http::queue_token(&request),
            &http::path(&request, "schedule_id")?,
        )
        .await?;
    let items: Vec<Value> = zones
        .iter()
        .map(|zone| {
            json!({
                "zone": zone.zone,
                "name": zone.name,
                "grade": zone.grade,
                "price": zone.price,
                "total_seats": zone.total,
                "available_seats": zone.available,
            })
        })
        .collect();
    http::json(200, &json!({ "schedule_id": schedule_id, "items": items }))
}

pub async fn hold(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let reservation = services
        .hold(
            &principal,
            http::queue_token(&request),
            http::body(&request)?,
        )
        .await?;
    http::json(201, &view(&reservation, services.clock.now()))
}

pub async fn get(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let reservation = services
        .my_reservation(&principal, &http::path(&request, "reservation_id")?)
        .await?;
    http::json(200, &view(&reservation, services.clock.now()))
}

pub async fn release(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    services
        .release(&principal, &http::path(&request, "reservation_id")?)
        .await?;
    http::no_content()
}

/// A reservation as the API shows it, with its status as of `now`.
pub fn view(reservation: &Reservation, now: DateTime<Utc>) -> Value {
    json!({
        "reservation_id": reservation.reservation_id,
        "status": reservation.status(now),
        "schedule_id": reservation.schedule_id,
        "concert_id": reservation.concert_id,
        "concert_title": reservation.concert_title,
        "starts_at": reservation.starts_at,
        "seats": reservation.seats.iter().map(|seat| json!({
            "seat_no": seat.seat_no,
            "price": seat.price,
            "section": seat.section,
            "row": seat.row,
            "grade": seat.grade,
        })).collect::<Vec<_>>(),
        "amount": reservation.amount,
        "expires_at": reservation.expires_at,
        "created_at": reservation.created_at,
        "payment_id": reservation.payment_id,
        "paid_at": reservation.paid_at,
        "cancelled_at": reservation.cancelled_at,
        "refund": reservation.refund,
        "cancellation_fee": reservation.cancellation_fee,
    })
}

/// `GET /reservations/{reservation_id}/cancellation`: what cancelling would refund now.
pub async fn cancellation_terms(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let (reservation, preview) = services
        .cancellation_preview(&principal, &http::path(&request, "reservation_id")?)
        .await?;
    let (cancellable, refund, fee, reason) = match preview.terms {
        Terms::Cancellable { refund, fee } => (true, Some(refund), Some(fee), None),
        Terms::NotConfirmed => (
            false,
            None,
            None,
            Some("only a confirmed booking can be cancelled"),
        ),
        Terms::Closed(why) => (false, None, None, Some(why)),
    };
    http::json(
        200,
        &json!({
            "reservation_id": reservation.reservation_id,
            "status": reservation.status(preview.at),
            "amount": reservation.amount,
            "cancellable": cancellable,
            "refund": refund,
            "fee": fee,
            "reason": reason,
            "as_of": preview.at,
        }),
    )
}

pub async fn cancel(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let cancelled = services
        .cancel_booking(&principal, &http::path(&request, "reservation_id")?)
        .await?;
    http::json(200, &view(&cancelled, services.clock.now()))
}

pub async fn mine(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let (reservations, next_cursor) = services
        .my_reservations(
            &principal,
            http::query(&request, "limit").as_deref(),
            http::query(&request, "cursor").as_deref(),
        )
        .await?;
    let now = services.clock.now();
    let items: Vec<Value> = reservations
        .iter()
        .map(|reservation| view(reservation, now))
        .collect();
    http::json(200, &json!({ "items": items, "next_cursor": next_cursor }))
}
