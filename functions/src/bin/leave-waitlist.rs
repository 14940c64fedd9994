//! `DELETE /schedules/{schedule_id}/waitlist`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::waitlist::leave)).await
}
