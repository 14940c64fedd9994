//! Reads what the local stack needs from template.yaml: the HTTP routes and the resource
//! definitions. The template stays the one source of truth; nothing here repeats it.

use serde_yaml::{Mapping, Value};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

/// An HttpApi route of a function: `GET /concerts/{concert_id}` → binary `get-concert`, with
/// the function's timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub binary: String,
    /// The function's `Timeout` (or the `Globals` one): Lambda stops it after this long.
    pub timeout_seconds: u64,
}

/// Lambda's own default, for a function that sets no `Timeout`.
const LAMBDA_DEFAULT_TIMEOUT_SECONDS: u64 = 3;

pub struct Template {
    resources: Mapping,
    /// `Globals.Function.Timeout`.
    global_timeout_seconds: Option<u64>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let document: Value = serde_yaml::from_str(text)?;
        let resources = document
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| TemplateError::Shape("no Resources".into()))?;
        let global_timeout_seconds = document
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Timeout"))
            .and_then(Value::as_u64);
        Ok(Self {
            resources,
            global_timeout_seconds,
        })
    }

    /// `(logical id, Properties)` of every resource of a CloudFormation type.
    pub fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources.iter().filter_map(move |(id, resource)| {
            (resource.get("Type")?.as_str()? == kind)
                .then(|| Some((id.as_str()?, resource.get("Properties")?)))
                .flatten()
        })
    }

    /// The Properties of one resource by logical id.
    pub fn properties(&self, logical_id: &str) -> Option<&Value> {
        self.resources.get(logical_id)?.get("Properties")
    }

    /// Every HttpApi event of every function, with the binary that serves it.
    pub fn routes(&self) -> Result<Vec<Route>, TemplateError> {
        let mut routes = Vec::new();
        for (id, resource) in &self.resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let id = id.as_str().unwrap_or("?");
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            let Some(events) = events else { continue };
            for event in events.values() {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let binary = binary_of(resource).ok_or_else(|| {
                    TemplateError::Shape(format!("{id} has no Metadata.BuildProperties.Binary"))
                })?;
                let field = |name: &str| {
                    event
                        .get("Properties")
                        .and_then(|p| p.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            TemplateError::Shape(format!("{id}: HttpApi event has no {name}"))
                        })
                };
                let timeout_seconds = resource
                    .get("Properties")
                    .and_then(|p| p.get("Timeout"))
                    .and_then(Value::as_u64)
                    .or(self.global_timeout_seconds)
                    .unwrap_or(LAMBDA_DEFAULT_TIMEOUT_SECONDS);
                routes.push(Route {
                    method: field("Method")?.to_ascii_uppercase(),
                    path: field("Path")?,
                    binary: binary.to_owned(),
                    timeout_seconds,
                });
            }
        }
        Ok(routes)
    }
}

impl Template {
    /// The binaries of every function with a `Schedule` event.
    pub fn scheduled_binaries(&self) -> Vec<String> {
        self.resources
            .values()
            .filter(|resource| {
                resource.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function")
            })
            .filter(|resource| {
                resource
                    .get("Properties")
                    .and_then(|p| p.get("Events"))
                    .and_then(Value::as_mapping)
                    .is_some_and(|events| {
                        events
                            .values()
                            .any(|e| e.get("Type").and_then(Value::as_str) == Some("Schedule"))
                    })
            })
            .filter_map(|resource| binary_of(resource).map(str::to_owned))
            .collect()
    }
}

fn binary_of(resource: &Value) -> Option<&str> {
    resource
        .get("Metadata")?
        .get("BuildProperties")?
        .get("Binary")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Globals:
  Function:
    Timeout: 10
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
  GetConcertFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: get-concert
    Properties:
      Environment:
        Variables:
          TABLE_NAME: !Ref Table
      Events:
        Api:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: get
            Path: /concerts/{concert_id}
        Nightly:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
"#;

    #[test]
    fn when_template_has_http_events_should_list_their_routes() {
        let template = Template::parse(TEMPLATE).unwrap();
        assert_eq!(
            template.routes().unwrap(),
            vec![Route {
                method: "GET".into(),
                path: "/concerts/{concert_id}".into(),
                binary: "get-concert".into(),
                // The function sets none: the Globals' timeout.
                timeout_seconds: 10,
            }]
        );
    }

    #[test]
    fn when_function_has_a_schedule_event_should_list_its_binary() {
        let template = Template::parse(TEMPLATE).unwrap();
        assert_eq!(
            template.scheduled_binaries(),
            vec!["get-concert".to_owned()]
        );
    }

    #[test]
    fn when_asked_for_tables_should_find_them_despite_intrinsic_tags() {
        let template = Template::parse(TEMPLATE).unwrap();
        let tables: Vec<_> = template.resources_of_type("AWS::DynamoDB::Table").collect();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].0, "Table");
    }
}
