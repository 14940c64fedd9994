//! `POST /practice/runs/{run_id}/captcha/answer`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::runs::answer)).await
}
