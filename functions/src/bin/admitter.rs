//! The admitter, run every minute by an EventBridge schedule: admits queue entrants in order.
use functions::{endpoints, job};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_job(job!(endpoints::jobs::admit_for_a_minute)).await
}
