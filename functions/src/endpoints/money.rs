//! `POST /balance/charge`, `GET /balance`, `GET /balance/transactions`, `POST /payments`.

use crate::{http, HandlerResult};
use lambda_http::Request;
use serde_json::{json, Value};
use shared::operations::Replied;
use shared::runtime::Services;

fn replied(replied: Replied) -> HandlerResult {
    http::json(replied.status, &replied.body)
}

pub async fn charge(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    replied(
        services
            .charge(
                &principal,
                http::idempotency_key(&request)?,
                http::body(&request)?,
            )
            .await?,
    )
}

pub async fn balance(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let balance = services.balance(&principal).await?;
    http::json(200, &json!({ "balance": balance }))
}

pub async fn transactions(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let (entries, next_cursor) = services
        .ledger(
            &principal,
            http::query(&request, "limit").as_deref(),
            http::query(&request, "cursor").as_deref(),
        )
        .await?;
    let items: Vec<Value> = entries
        .iter()
        .map(|entry| {
            json!({
                "transaction_id": entry.transaction_id,
                "type": entry.kind,
                "amount": entry.amount,
                "balance_before": entry.balance_before,
                "balance_after": entry.balance_after,
                "related_id": entry.related_id,
                "created_at": entry.created_at,
            })
        })
        .collect();
    http::json(200, &json!({ "items": items, "next_cursor": next_cursor }))
}

pub async fn pay(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    replied(
        services
            .pay(
                &principal,
                http::queue_token(&request),
                http::idempotency_key(&request)?,
                http::body(&request)?,
            )
            .await?,
    )
}
