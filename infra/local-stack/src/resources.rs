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
