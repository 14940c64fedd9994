//! `GET /reservations/{reservation_id}/cancellation`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::reservations::cancellation_terms)).await
}
