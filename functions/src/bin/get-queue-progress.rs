//! `GET /queue/progress/{concert_id}`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::queue::progress)).await
}
