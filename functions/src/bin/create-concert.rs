//! `POST /admin/concerts`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::catalog::create_concert)).await
}
