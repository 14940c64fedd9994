//! `GET /concerts/{concert_id}/schedules`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::catalog::list_schedules)).await
}
