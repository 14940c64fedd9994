//! `GET /openapi.yaml`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::practice::openapi)).await
}
