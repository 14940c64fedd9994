//! `POST /reservations/{reservation_id}/cancel`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::reservations::cancel)).await
}
