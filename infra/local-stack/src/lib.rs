//! The whole service on one machine.
//!
//! [`start`] creates the resources declared in template.yaml on the emulators the AWS SDK is
//! pointed at (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`), seeds demo data if asked, and
//! serves the template's HTTP routes with the same endpoint functions the Lambdas run. The
//! `local-stack` binary runs it for people; the end-to-end tests run it in-process, one stack
//! (and one table) per test.

pub mod gateway;
pub mod resources;
pub mod seed;
pub mod template;

use shared::runtime::Services;
use shared::{Clock, Config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct StackOptions {
    pub template: PathBuf,
    pub bind: SocketAddr,
    pub config: Config,
    pub clock: Clock,
    pub seed_demo: bool,
}

/// A running stack; dropping it (or [`RunningStack::stop`]) stops the gateway.
pub struct RunningStack {
    pub addr: SocketAddr,
    pub services: Arc<Services>,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl RunningStack {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub type StartError = Box<dyn std::error::Error + Send + Sync>;

pub async fn start(options: StackOptions) -> Result<RunningStack, StartError> {
    let template = template::Template::load(&options.template)?;
    let router = gateway::Router::new(&template.routes()?)?;
    let aws = aws_config::load_from_env().await;
    resources::create_table(
        &aws_sdk_dynamodb::Client::new(&aws),
        &template,
        &options.config.table_name,
    )
    .await?;
    let services = Arc::new(Services::build(options.config, &aws, options.clock).await?);
    if options.seed_demo {
        seed::demo(&services).await?;
    }
    let listener = TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = watch::channel(false);
    let server = tokio::spawn(gateway::serve(
        listener,
        Arc::new(router),
        services.clone(),
        stopped,
    ));
    Ok(RunningStack {
        addr,
        services,
        shutdown,
        server: Some(server),
    })
}
