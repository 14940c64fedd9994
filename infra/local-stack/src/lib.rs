//! The whole service on one machine.
//!
//! [`start`] creates the resources declared in template.yaml on the emulators the AWS SDK is
//! pointed at (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`), seeds demo data if asked, and
//! serves the template's HTTP routes with the same endpoint functions the Lambdas run. The
//! `local-stack` binary runs it for people; the end-to-end tests run it in-process, one stack
//! (and one table) per test.

pub mod gateway;
pub mod resources;
pub mod scheduler;
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
    /// Run the scheduled jobs every `config.admit_interval_seconds`. Tests that want to step
    /// admission themselves turn this off.
    pub run_scheduler: bool,
    /// Every function's timeout instead of the template's (`FUNCTION_TIMEOUT_SECONDS`): the
    /// emulators on a busy small machine answer in seconds what AWS answers in milliseconds.
    pub function_timeout: Option<std::time::Duration>,
}

/// A running stack; dropping it (or [`RunningStack::stop`]) stops the gateway.
pub struct RunningStack {
    pub addr: SocketAddr,
    pub services: Arc<Services>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningStack {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// The logical id of the queue that carries entrants to the admitter.
pub const ENTRY_QUEUE: &str = "EntryQueue";
/// The logical id of the queue where messages no admitter can read go.
pub const DEAD_LETTER_QUEUE: &str = "EntryDeadLetterQueue";
/// The logical id of the domain-event bus.
pub const EVENT_BUS: &str = "EventBus";

pub async fn start(options: StackOptions) -> Result<RunningStack, StartError> {
    let template = template::Template::load(&options.template)?;
    let mut routes = template.routes()?;
    if let Some(timeout) = options.function_timeout {
        for route in &mut routes {
            route.timeout_seconds = timeout.as_secs().max(1);
        }
    }
    let router = gateway::Router::new(&routes)?;
    let jobs = template
        .scheduled_binaries()
        .into_iter()
        .map(|binary| match functions::routes::job(&binary) {
            Some(job) => Ok((binary, job)),
            None => Err(format!(
                "template.yaml schedules {binary}, which has no job in functions::routes"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let aws = aws_config::load_from_env().await;
    let mut config = options.config;
    resources::create_table(
        &aws_sdk_dynamodb::Client::new(&aws),
        &template,
        &config.table_name,
    )
    .await?;
    let queues = resources::create_queues(
        &aws_sdk_sqs::Client::new(&aws),
        &template,
        &config.table_name,
    )
    .await?;
    config.queue_url = Some(
        queues
            .get(ENTRY_QUEUE)
            .ok_or("template.yaml has no EntryQueue")?
            .url
            .clone(),
    );
    config.dead_letter_queue_url = queues.get(DEAD_LETTER_QUEUE).map(|queue| queue.url.clone());
    let buses = resources::create_event_buses(
        &aws_sdk_eventbridge::Client::new(&aws),
        &template,
        &config.table_name,
    )
    .await?;
    config.event_bus_name = Some(
        buses
            .get(EVENT_BUS)
            .ok_or("template.yaml has no EventBus")?
            .clone(),
    );
    let interval = std::time::Duration::from_secs(config.admit_interval_seconds as u64);
    // The scheduled jobs are Lambdas of their own in AWS: their own clients and retry quota.
    let jobs_services = Arc::new(
        Services::build_in(
            config.clone(),
            &aws,
            options.clock.clone(),
            "ticketing-jobs",
        )
        .await?,
    );
    let services = Arc::new(Services::build(config, &aws, options.clock).await?);
    if options.seed_demo {
        seed::demo(&services).await?;
    }
    let listener = TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(gateway::serve(
        listener,
        Arc::new(router),
        services.clone(),
        stopped.clone(),
    ))];
    if options.run_scheduler {
        tasks.push(tokio::spawn(scheduler::run(
            jobs,
            jobs_services,
            interval,
            stopped,
        )));
    }
    Ok(RunningStack {
        addr,
        services,
        shutdown,
        tasks,
    })
}
