//! `POST /practice/runs/{run_id}/captcha`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::runs::captcha)).await
}
