//! What every process builds once at start: the AWS clients and the signing key.
//!
//! Lambda keeps a process for many invocations, so this runs once per cold start. It does no
//! network I/O unless the signing key must be fetched from Secrets Manager.

use crate::auth::TokenKeys;
use crate::catalog_cache::CatalogCache;
use crate::config::{check_secret_length, Config, SecretSource};
use crate::entry_queue::EntryQueue;
use crate::events::EventPublisher;
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
    pub entry_queue: EntryQueue,
    pub events: EventPublisher,
    /// Concert and date items this process read lately (they never change after creation).
    pub catalog: Arc<CatalogCache>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot read the signing key from Secrets Manager: {0}")]
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

    pub async fn build(
        config: Config,
        aws: &aws_config::SdkConfig,
        clock: Clock,
    ) -> Result<Self, StartError> {
        let secret = match &config.jwt_secret {
            SecretSource::Value(secret) => secret.clone(),
            SecretSource::SecretsManager(arn) => {
                let secret = aws_sdk_secretsmanager::Client::new(aws)
                    .get_secret_value()
                    .secret_id(arn)
                    .send()
                    .await
                    .map_err(|err| {
                        StartError::Secret(
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string(),
                        )
                    })?
                    .secret_string
                    .ok_or_else(|| StartError::Secret("the secret has no string value".into()))?;
                check_secret_length(&secret)?;
                secret
            }
        };
        let store = Store::new(aws_sdk_dynamodb::Client::new(aws), &config.table_name);
        let queue_url = config
            .queue_url
            .clone()
            .ok_or(crate::config::ConfigError::Missing("QUEUE_URL"))?;
        let entry_queue = EntryQueue::new(aws_sdk_sqs::Client::new(aws), queue_url);
        let bus = config
            .event_bus_name
            .clone()
            .ok_or(crate::config::ConfigError::Missing("EVENT_BUS_NAME"))?;
        let events = EventPublisher::new(aws_sdk_eventbridge::Client::new(aws), bus);
        Ok(Self {
            catalog: Arc::default(),
            events,
            entry_queue,
            tokens: TokenKeys::from_secret(secret.as_bytes()),
            config,
            clock,
            store,
        })
    }
}
