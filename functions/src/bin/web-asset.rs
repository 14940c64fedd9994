//! `GET /web/{file}`: the practice page's scripts and styles
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::practice::asset)).await
}
