//! `GET /practice/runs/{run_id}`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::runs::get)).await
}
