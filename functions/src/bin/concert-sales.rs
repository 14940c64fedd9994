//! `GET /admin/concerts/{concert_id}/sales`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::catalog::sales)).await
}
