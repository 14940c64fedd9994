//! The hold sweeper, run every minute by an EventBridge schedule: tidies expired holds.
use functions::{endpoints, job};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run_job(job!(endpoints::jobs::sweep_holds)).await
}
