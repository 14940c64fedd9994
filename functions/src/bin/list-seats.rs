//! `GET /schedules/{schedule_id}/seats`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::reservations::seats)).await
}
