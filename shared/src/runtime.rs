//! What every process builds once at start: the AWS clients and the signing key.
//!
//! Lambda keeps a process for many invocations, so this runs once per cold start. It does no
//! network I/O unless the signing key (or the edge's secret) must be fetched from Secrets
//! Manager.

use crate::auth::{EdgeSecret, TokenKeys};
use crate::catalog_cache::CatalogCache;
use crate::config::{check_secret_length, Config, SecretSource};
use crate::entry_queue::EntryQueue;
use crate::events::EventPublisher;
use crate::operations::MissingSince;
use crate::store::Store;
use crate::Clock;
use std::sync::Arc;

/// Everything a handler needs, built once and shared by reference.
#[derive(Clone)]
pub struct Services {
    pub config: Config,
    pub clock: Clock,
    pub store: Store,
    pub tokens: TokenKeys,
    /// When set, only requests that came through the edge are answered (`EDGE_SECRET_ARN`).
    pub edge_secret: Option<EdgeSecret>,
    pub entry_queue: EntryQueue,
    pub events: EventPublisher,
    /// Concert and date items this process read lately (they never change after creation).
    pub catalog: Arc<CatalogCache>,
    /// When the admitter first missed each number of a line (see `operations::queue::line`).
    pub missing: Arc<MissingSince>,
    /// What each concert may still admit in the admitter's current step (paced admission).
    pub admission_budget: Arc<crate::operations::queue::AdmissionBudget>,
    /// The crowds of practice runs this process played lately (each a pure function of its
    /// run, built once).
    pub crowds: Arc<crate::practice::CrowdCache>,
    /// The key of practice runs' security letters, derived from the signing key.
    pub captcha_key: Arc<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot read a secret from Secrets Manager: {0}")]
    Secret(String),
}

impl Services {
    /// Reads the environment, loads AWS settings (region, credentials, and endpoint overrides
    /// such as `AWS_ENDPOINT_URL_DYNAMODB` for the local emulators) and builds the clients.
    pub async fn from_env() -> Result<Self, StartError> {
        let config = Config::from_env()?;
        let aws = aws_config::load_from_env().await;
        Self::build(config, &aws, Clock::system()).await
    }

    /// The AWS settings every client of this process uses: `aws`'s region, credentials and
    /// endpoints, with the retry and timeout policy of [`Config`]. Retries are the SDK's
    /// standard mode: exponential backoff with full jitter (so that throttled callers do not
    /// come back in step) and a retry budget per client that stops retrying when most calls
    /// fail. A `TransactWriteItems` carries a `ClientRequestToken` that the SDK generates once
    /// per call and repeats on each retry, so a retry after a lost answer has one effect.
    pub fn aws_settings(config: &Config, aws: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        use std::time::Duration;
        aws.to_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(config.aws_max_attempts)
                    .with_initial_backoff(Duration::from_millis(25))
                    .with_max_backoff(Duration::from_secs(1)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_millis(
                        config.aws_attempt_timeout_millis,
                    ))
                    .operation_timeout(Duration::from_millis(config.aws_call_timeout_millis))
                    .build(),
            )
            .build()
    }

    pub async fn build(
        config: Config,
        aws: &aws_config::SdkConfig,
        clock: Clock,
    ) -> Result<Self, StartError> {
        Self::build_in(config, aws, clock, "ticketing").await
    }

    /// [`Services::build`], with the AWS clients' retry quota (the SDK's token bucket, which
    /// stops retrying when most calls fail) in a partition of its own named `partition`, of
    /// `AWS_RETRY_QUOTA` tokens. A Lambda environment is a process with one request at a time;
    /// the local stack, one process serving every function and the scheduled jobs, gives the
    /// jobs their own partition and a larger quota, as the many environments it stands for
    /// would have between them.
    pub async fn build_in(
        config: Config,
        aws: &aws_config::SdkConfig,
        clock: Clock,
        partition: &'static str,
    ) -> Result<Self, StartError> {
        let aws = &Self::aws_settings(&config, aws);
        let quota = || {
            aws_sdk_dynamodb::config::retry::RetryPartition::custom(partition)
                .token_bucket(
                    aws_sdk_dynamodb::config::retry::TokenBucket::builder()
                        .capacity(config.aws_retry_quota)
                        .build(),
                )
                .build()
        };
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(aws)
            .retry_partition(quota())
            .build();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb);
        if matches!(config.jwt_secret, SecretSource::SecretsManager(_)) {
            // A new Lambda environment: the first DynamoDB connection's TLS handshake, which
            // the first request would otherwise pay, is made beside the key read, in the
            // background, so that init never waits for it (a slow or unreachable DynamoDB
            // delays nothing but that request).
            tokio::spawn(warm_connection(dynamodb.clone()));
        }
        // Both secrets at once (two reads): an edge-only stack's cold start waits for one
        // round trip, as any other's.
        let (secret, edge_secret) = tokio::try_join!(
            resolve_secret(aws, "JWT_SECRET", &config.jwt_secret),
            async {
                match &config.edge_secret {
                    None => Ok(None),
                    Some(source) => resolve_secret(aws, "EDGE_SECRET", source).await.map(Some),
                }
            }
        )?;
        let store = Store::new(dynamodb, &config.table_name);
        let queue_url = config
            .queue_url
            .clone()
            .ok_or(crate::config::ConfigError::Missing("QUEUE_URL"))?;
        let sqs = aws_sdk_sqs::config::Builder::from(aws)
            .retry_partition(quota())
            .build();
        let entry_queue = EntryQueue::new(
            aws_sdk_sqs::Client::from_conf(sqs),
            queue_url,
            config.dead_letter_queue_url.clone(),
            config.queue_receive_visibility_seconds as i32,
        );
        let bus = config
            .event_bus_name
            .clone()
            .ok_or(crate::config::ConfigError::Missing("EVENT_BUS_NAME"))?;
        let events = EventPublisher::new(aws_sdk_eventbridge::Client::new(aws), bus);
        Ok(Self {
            catalog: Arc::default(),
            missing: Arc::default(),
            admission_budget: Arc::default(),
            crowds: Arc::default(),
            captcha_key: Arc::new(crate::practice::captcha::key(secret.as_bytes())),
            events,
            entry_queue,
            tokens: TokenKeys::from_secret(secret.as_bytes()),
            edge_secret: edge_secret.map(EdgeSecret::new),
            config,
            clock,
            store,
        })
    }
}

/// A secret's value: given, or read from Secrets Manager and checked as the setting `name`
/// would be.
async fn resolve_secret(
    aws: &aws_config::SdkConfig,
    name: &'static str,
    source: &SecretSource,
) -> Result<String, StartError> {
    match source {
        SecretSource::Value(secret) => Ok(secret.clone()),
        SecretSource::SecretsManager(arn) => {
            let secret = read_secret(aws, arn).await?;
            check_secret_length(name, &secret)?;
            Ok(secret)
        }
    }
}

/// A secret's string from Secrets Manager.
async fn read_secret(aws: &aws_config::SdkConfig, arn: &str) -> Result<String, StartError> {
    aws_sdk_secretsmanager::Client::new(aws)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| {
            StartError::Secret(aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string())
        })?
        .secret_string
        .ok_or_else(|| StartError::Secret("the secret has no string value".into()))
}

/// Opens the client's connection to DynamoDB (TCP and TLS) with the cheapest request it has,
/// `DescribeEndpoints` (no table, no item, no capacity), once, so that the first request's
/// calls find it open. Its answer does not matter, only the connection it leaves in the pool.
async fn warm_connection(dynamodb: aws_sdk_dynamodb::Client) {
    let once = aws_sdk_dynamodb::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
    if let Err(err) = dynamodb
        .describe_endpoints()
        .customize()
        .config_override(once)
        .send()
        .await
    {
        tracing::debug!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "warming the DynamoDB connection");
    }
}
