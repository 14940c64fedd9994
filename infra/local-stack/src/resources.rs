//! Creates the template's resources on the local emulators, from the template's own
//! definitions (a second, hand-written copy would drift).

use crate::template::{Template, TemplateError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot create {resource}: {message}")]
    Create { resource: String, message: String },
}

/// The logical id of the application table in template.yaml.
pub const TABLE_LOGICAL_ID: &str = "Table";

/// Creates the table named `table_name` with the key schema, indexes and TTL of the template's
/// `Table` resource. An existing table of that name is left as it is.
pub async fn create_table(
    client: &Client,
    template: &Template,
    table_name: &str,
) -> Result<(), ResourceError> {
    let shape = |message: &str| TemplateError::Shape(format!("{TABLE_LOGICAL_ID}: {message}"));
    let properties = template
        .properties(TABLE_LOGICAL_ID)
        .ok_or_else(|| shape("no such resource"))?;
    let list = |name: &str| {
        properties
            .get(name)
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default()
    };
    let text = |value: &Value, name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| shape(&format!("missing {name}")))
    };
    let key_schema = |elements: &[Value]| {
        elements
            .iter()
            .map(|element| {
                KeySchemaElement::builder()
                    .attribute_name(text(element, "AttributeName")?)
                    .key_type(KeyType::from(text(element, "KeyType")?.as_str()))
                    .build()
                    .map_err(|e| shape(&e.to_string()))
            })
            .collect::<Result<Vec<_>, TemplateError>>()
    };

    let mut request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&list("KeySchema"))?));
    for definition in list("AttributeDefinitions") {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&definition, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(
                    text(&definition, "AttributeType")?.as_str(),
                ))
                .build()
                .map_err(|e| shape(&e.to_string()))?,
        );
    }
    for index in list("GlobalSecondaryIndexes") {
        let schema = index
            .get("KeySchema")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        let projection = index
            .get("Projection")
            .map(|p| text(p, "ProjectionType"))
            .transpose()?
            .unwrap_or_else(|| "ALL".into());
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(&index, "IndexName")?)
                .set_key_schema(Some(key_schema(&schema)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection.as_str()))
                        .build(),
                )
                .build()
                .map_err(|e| shape(&e.to_string()))?,
        );
    }

    let create_error = |err: String| ResourceError::Create {
        resource: format!("table {table_name}"),
        message: err,
    };
    match request.send().await {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(err) => {
            return Err(create_error(
                aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string(),
            ))
        }
    }

    if let Some(ttl) = properties.get("TimeToLiveSpecification") {
        if ttl.get("Enabled").and_then(Value::as_bool) == Some(true) {
            client
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(text(ttl, "AttributeName")?)
                        .enabled(true)
                        .build()
                        .map_err(|e| shape(&e.to_string()))?,
                )
                .send()
                .await
                .map_err(|err| {
                    create_error(aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string())
                })?;
        }
    }
    Ok(())
}

/// A queue created from the template: its URL and ARN.
#[derive(Clone, Debug)]
pub struct CreatedQueue {
    pub url: String,
    pub arn: String,
}

/// Creates every `AWS::SQS::Queue` of the template, named `{prefix}-{LogicalId}` (plus `.fifo`
/// for FIFO queues), with the template's attributes. Dead-letter queues come first so that a
/// `RedrivePolicy`'s `!GetAtt X.Arn` can be filled in. Creating an existing queue with the same
/// attributes returns it.
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    template: &Template,
    prefix: &str,
) -> Result<std::collections::HashMap<String, CreatedQueue>, ResourceError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut pending: Vec<(&str, &Value)> = template.resources_of_type("AWS::SQS::Queue").collect();
    let mut created: std::collections::HashMap<String, CreatedQueue> =
        std::collections::HashMap::new();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for (logical_id, properties) in pending {
            let dead_letter = properties
                .get("RedrivePolicy")
                .and_then(|policy| policy.get("deadLetterTargetArn"))
                .and_then(get_att_arn);
            if let Some(target) = &dead_letter {
                if !created.contains_key(target) {
                    waiting.push((logical_id, properties));
                    continue;
                }
            }
            let fifo = properties.get("FifoQueue").and_then(Value::as_bool) == Some(true);
            let name = format!("{prefix}-{logical_id}{}", if fifo { ".fifo" } else { "" });
            let mut request = client.create_queue().queue_name(&name);
            let scalar = |value: &Value| match value {
                Value::Bool(flag) => Some(flag.to_string()),
                Value::Number(number) => Some(number.to_string()),
                Value::String(text) => Some(text.clone()),
                _ => None,
            };
            for (attribute, key) in [
                (QueueAttributeName::FifoQueue, "FifoQueue"),
                (
                    QueueAttributeName::ContentBasedDeduplication,
                    "ContentBasedDeduplication",
                ),
                (
                    QueueAttributeName::MessageRetentionPeriod,
                    "MessageRetentionPeriod",
                ),
                (QueueAttributeName::VisibilityTimeout, "VisibilityTimeout"),
                (QueueAttributeName::DeduplicationScope, "DeduplicationScope"),
                (
                    QueueAttributeName::FifoThroughputLimit,
                    "FifoThroughputLimit",
                ),
            ] {
                if let Some(value) = properties.get(key).and_then(scalar) {
                    request = request.attributes(attribute, value);
                }
            }
            if let Some(target) = dead_letter {
                let max_receive = properties
                    .get("RedrivePolicy")
                    .and_then(|policy| policy.get("maxReceiveCount"))
                    .and_then(scalar)
                    .unwrap_or_else(|| "10".into());
                let policy = serde_json::json!({
                    "deadLetterTargetArn": created[&target].arn,
                    "maxReceiveCount": max_receive,
                });
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let failed = |err: String| ResourceError::Create {
                resource: format!("queue {name}"),
                message: err,
            };
            let url = request
                .send()
                .await
                .map_err(|err| failed(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string()))?
                .queue_url
                .ok_or_else(|| failed("no queue URL returned".into()))?;
            let arn = client
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|err| failed(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string()))?
                .attributes
                .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
                .ok_or_else(|| failed("no queue ARN returned".into()))?;
            created.insert(logical_id.to_owned(), CreatedQueue { url, arn });
        }
        if waiting.len() == before {
            return Err(TemplateError::Shape(
                "a queue's RedrivePolicy names a queue that is not in the template".into(),
            )
            .into());
        }
        pending = waiting;
    }
    Ok(created)
}

/// `!GetAtt Name.Arn` → `Name`.
fn get_att_arn(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!GetAtt" || tagged.tag == "GetAtt" => tagged
            .value
            .as_str()
            .and_then(|target| target.strip_suffix(".Arn"))
            .map(str::to_owned),
        Value::Mapping(mapping) => mapping
            .get("Fn::GetAtt")
            .and_then(Value::as_sequence)
            .and_then(|parts| parts.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// Creates every `AWS::Events::EventBus` of the template, named `{prefix}-{LogicalId}`, and
/// returns logical id → bus name. An existing bus is reused.
pub async fn create_event_buses(
    client: &aws_sdk_eventbridge::Client,
    template: &Template,
    prefix: &str,
) -> Result<std::collections::HashMap<String, String>, ResourceError> {
    let mut created = std::collections::HashMap::new();
    for (logical_id, _) in template.resources_of_type("AWS::Events::EventBus") {
        let name = format!("{prefix}-{logical_id}");
        if let Err(err) = client.create_event_bus().name(&name).send().await {
            let exists = err
                .as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception());
            if !exists {
                return Err(ResourceError::Create {
                    resource: format!("event bus {name}"),
                    message: aws_sdk_eventbridge::error::DisplayErrorContext(&err).to_string(),
                });
            }
        }
        created.insert(logical_id.to_owned(), name);
    }
    Ok(created)
}
