//! The smallest Rust Lambda: answers every event with the event itself. Its cold start and
//! memory are the floor the functions' own figures are read against (`infra/perf.sh cold-start`).
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
