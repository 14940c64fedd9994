//! `local-stack`: the API on 127.0.0.1:$PORT against the emulators. Started by
//! `infra/run-local.sh`, which starts the emulators first and sets the AWS endpoints.

use local_stack::{start, StackOptions};
use shared::{Clock, Config};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), local_stack::StartError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
        )
        .init();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let port: u16 = env("PORT")
        .map(|p| p.parse())
        .transpose()
        .map_err(|_| "PORT must be a port number")?
        .unwrap_or(3000);
    // Locally the table is named by TABLE_NAME (default "ticketing"); in AWS CloudFormation
    // names it and the template passes the name in.
    // ADMIT_INTERVAL_SECONDS is 1 locally (API.md), 10 in the template's default.
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some(env(name).unwrap_or_else(|| "ticketing".into())),
        "ADMIT_INTERVAL_SECONDS" => Some(env(name).unwrap_or_else(|| "1".into())),
        // The emulator returns a FIFO group's messages out of order once their visibility
        // timeout runs out, so locally the admitter hands messages back visible at once.
        "ADMIT_HAND_BACK_SECONDS" => Some(env(name).unwrap_or_else(|| "0".into())),
        // One process stands for every Lambda environment of every function at once: a retry
        // quota for all of them together, not for one.
        "AWS_RETRY_QUOTA" => Some(env(name).unwrap_or_else(|| "50000".into())),
        _ => env(name),
    })?;
    let template = PathBuf::from(env("TEMPLATE_PATH").unwrap_or_else(|| "template.yaml".into()));
    let stack = start(StackOptions {
        template,
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        config,
        clock: Clock::system(),
        seed_demo: env("SEED_DEMO").as_deref().unwrap_or("1") == "1",
        run_scheduler: true,
        function_timeout: env("FUNCTION_TIMEOUT_SECONDS")
            .map(|seconds| seconds.parse().map(std::time::Duration::from_secs))
            .transpose()
            .map_err(|_| "FUNCTION_TIMEOUT_SECONDS must be a whole number of seconds")?,
    })
    .await?;
    println!("Ticketing API listening on {}", stack.url());
    println!("Try: curl {}/health", stack.url());
    tokio::signal::ctrl_c().await?;
    println!("Stopping.");
    stack.stop().await;
    Ok(())
}
