//! `POST /users`
use functions::{endpoints, handler};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(handler!(endpoints::users::create_user)).await
}
