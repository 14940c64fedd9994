//! `GET /schedules/{schedule_id}/zones`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::reservations::zones)).await
}
