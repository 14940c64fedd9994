//! `POST /users`, `POST /auth/login`, `GET /me`.

use crate::{http, HandlerResult};
use lambda_http::Request;
use serde_json::json;
use shared::runtime::Services;

pub async fn create_user(services: &Services, request: Request) -> HandlerResult {
    let user = services.signup(http::body(&request)?).await?;
    http::json(
        201,
        &json!({
            "user_id": user.user_id,
            "username": user.username,
            "name": user.name,
            "created_at": user.created_at,
        }),
    )
}

pub async fn login(services: &Services, request: Request) -> HandlerResult {
    let issued = services.login(http::body(&request)?).await?;
    http::json(
        200,
        &json!({
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        }),
    )
}

pub async fn me(services: &Services, request: Request) -> HandlerResult {
    let principal = http::principal(services, &request)?;
    let user = services.me(&principal).await?;
    http::json(
        200,
        &json!({
            "user_id": user.user_id,
            "username": user.username,
            "name": user.name,
            "balance": user.balance,
            "last_entered_url": user.last_entered_url,
            "last_entered_at": user.last_entered_at,
        }),
    )
}
