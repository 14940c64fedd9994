//! `POST /admin/concerts`, `GET /admin/concerts/{concert_id}/sales`, `GET /concerts`,
//! `GET /concerts/{concert_id}`, `GET /concerts/{concert_id}/schedules`.

use crate::{http, HandlerResult};
use lambda_http::Request;
use serde_json::{json, Value};
use shared::runtime::Services;

pub async fn create_concert(services: &Services, request: Request) -> HandlerResult {
    let admin = http::admin(services, &request)?;
    let created = services
        .create_concert(&admin, http::body(&request)?)
        .await?;
    let body = concert_with_dates(services, &created.concert, &created.schedules)?;
    http::json(201, &body)
}

/// A concert as the API shows it, with its dates (`schedule_id`, `starts_at`, `total_seats`).
pub(crate) fn concert_with_dates(
    services: &Services,
    concert: &shared::catalog::Concert,
    schedules: &[shared::catalog::Schedule],
) -> Result<Value, shared::DomainError> {
    let mut body = serde_json::to_value(concert.view(services.clock.now()))
        .map_err(shared::DomainError::internal)?;
    body["schedules"] = schedules
        .iter()
        .map(|schedule| {
            json!({
                "schedule_id": schedule.schedule_id,
                "starts_at": schedule.starts_at,
                "total_seats": schedule.total_seats,
            })
        })
        .collect::<Value>();
    Ok(body)
}

pub async fn list_concerts(services: &Services, request: Request) -> HandlerResult {
    let page = services
        .list_concerts(
            http::query(&request, "limit").as_deref(),
            http::query(&request, "cursor").as_deref(),
        )
        .await?;
    let now = services.clock.now();
    let items: Vec<_> = page.items.iter().map(|concert| concert.view(now)).collect();
    http::json(
        200,
        &json!({ "items": items, "next_cursor": page.next_cursor }),
    )
}

pub async fn get_concert(services: &Services, request: Request) -> HandlerResult {
    let concert = services
        .concert(&http::path(&request, "concert_id")?)
        .await?;
    http::json(200, &concert.view(services.clock.now()))
}

pub async fn list_schedules(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let schedules = services
        .bookable_schedules(
            &principal,
            http::queue_token(&request),
            &http::path(&request, "concert_id")?,
        )
        .await?;
    let items: Vec<Value> = schedules
        .iter()
        .map(|item| {
            json!({
                "schedule_id": item.schedule.schedule_id,
                "starts_at": item.schedule.starts_at,
                "total_seats": item.schedule.total_seats,
                "available_seats": item.available_seats,
            })
        })
        .collect();
    http::json(200, &json!({ "items": items }))
}

pub async fn sales(services: &Services, request: Request) -> HandlerResult {
    http::admin(services, &request)?;
    let raw_id = http::path(&request, "concert_id")?;
    let sales = services.sales(&raw_id).await?;
    // The id as stored (the path may spell it otherwise: upper case, no hyphens...).
    let concert_id =
        shared::ids::parse_id(&raw_id).ok_or(shared::DomainError::NotFound("concert"))?;
    let schedules: Vec<Value> = sales
        .iter()
        .map(|item| {
            json!({
                "schedule_id": item.schedule_id,
                "sold_seats": item.counters.sold_seats,
                "held_seats": item.held_seats,
                "revenue": item.counters.revenue,
                "refunded": item.counters.refunded,
                "fees": item.counters.fees,
            })
        })
        .collect();
    let revenue: i64 = sales.iter().map(|item| item.counters.revenue).sum();
    let refunded: i64 = sales.iter().map(|item| item.counters.refunded).sum();
    let fees: i64 = sales.iter().map(|item| item.counters.fees).sum();
    http::json(
        200,
        &json!({
            "concert_id": concert_id,
            "schedules": schedules,
            "revenue": revenue,
            "refunded": refunded,
            "fees": fees,
        }),
    )
}
