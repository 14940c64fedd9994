//! The meter: a counting proxy in front of the AWS APIs.
//!
//! The service finds DynamoDB, SQS, EventBridge and Secrets Manager through the standard
//! endpoint variables (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`). Point both at the meter
//! and it forwards every request to the real emulator behind it, after reading what the request
//! is: which API (`X-Amz-Target`), which partition keys it reads and writes, which SQS message
//! groups it sends to. Nothing in the product knows it is there, so what it counts is exactly
//! what the product sends; in AWS the same requests would go to the same keys.
//!
//! Counting follows what DynamoDB bills and throttles per partition:
//! - a **write** is one item put, updated or deleted, alone, in a batch or in a transaction; a
//!   transaction's `ConditionCheck` is counted as a write too, because DynamoDB charges it
//!   write capacity on the item's partition;
//! - a **read** is one item got (alone or in a batch) or one `Query` of a partition;
//! - an item put with a `gsi1pk` also writes that index partition (`gsi1:` prefix). An update
//!   that adds or removes the index key writes it too, but names no value the meter can see
//!   when it removes one, so index writes are a lower bound.
//!
//! Item counts are not what DynamoDB throttles on: it meters capacity units, by item size (an
//! update costs the larger of the item's sizes before and after, per KB) and by kind (two per
//! item in a transaction). So the meter also asks DynamoDB for the capacity each request
//! consumed (`ReturnConsumedCapacity`) and puts it on the request's partition keys: exactly for
//! a request on one item or one partition, shared evenly among the keys of a batch or a
//! transaction. Requests that fail their condition are charged by DynamoDB too, but their
//! error answer does not say how much, so capacity counts are a lower bound where conditions
//! fail. The meter rewrites request bodies: it is for emulators only, never real AWS (the
//! requests' signatures no longer match).

use crate::faults::{Fault, FaultCounts, FaultPlan, Loss};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

/// Which AWS service a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Service {
    DynamoDb,
    Sqs,
    EventBridge,
    SecretsManager,
    Other,
}

impl Service {
    pub fn label(self) -> &'static str {
        match self {
            Service::DynamoDb => "DynamoDB",
            Service::Sqs => "SQS",
            Service::EventBridge => "EventBridge",
            Service::SecretsManager => "SecretsManager",
            Service::Other => "other",
        }
    }
}

/// What one AWS request is and touches, read from its headers and JSON body.
#[derive(Debug, Default, PartialEq)]
pub struct Classified {
    pub service: Option<Service>,
    pub operation: String,
    /// Partition keys written, one entry per item (`gsi1:` prefix for the index).
    pub writes: Vec<String>,
    /// Partition keys read, one entry per item or query.
    pub reads: Vec<String>,
    /// SQS message groups sent to, one entry per message.
    pub groups: Vec<String>,
    /// EventBridge events put.
    pub events: u64,
}

/// Reads an AWS JSON-protocol request: `target` is the `X-Amz-Target` header
/// (`DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessage`, `AWSEvents.PutEvents`, ...).
pub fn classify(target: &str, body: &[u8]) -> Classified {
    let (prefix, operation) = target.split_once('.').unwrap_or(("", target));
    let service = match prefix {
        p if p.starts_with("DynamoDB") => Service::DynamoDb,
        "AmazonSQS" => Service::Sqs,
        "AWSEvents" => Service::EventBridge,
        "secretsmanager" => Service::SecretsManager,
        _ => Service::Other,
    };
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut out = Classified {
        service: Some(service),
        operation: operation.to_owned(),
        ..Classified::default()
    };
    match service {
        Service::DynamoDb => dynamodb_keys(operation, &body, &mut out),
        Service::Sqs => {
            let mut group = |message: &Value| {
                if let Some(group) = message["MessageGroupId"].as_str() {
                    out.groups.push(group.to_owned());
                }
            };
            match operation {
                "SendMessage" => group(&body),
                "SendMessageBatch" => entries(&body).for_each(group),
                _ => {}
            }
        }
        Service::EventBridge if operation == "PutEvents" => {
            out.events = entries(&body).count() as u64;
        }
        _ => {}
    }
    out
}

fn entries(body: &Value) -> impl Iterator<Item = &Value> {
    body["Entries"].as_array().into_iter().flatten()
}

/// The partition key of a DynamoDB item or key map, `{"pk": {"S": "USER#..."}, ...}`.
fn partition(item: &Value) -> Option<String> {
    item["pk"]["S"].as_str().map(str::to_owned)
}

/// The index partition an item is put into, if it carries the index key.
fn index_partition(item: &Value) -> Option<String> {
    item["gsi1pk"]["S"]
        .as_str()
        .map(|key| format!("gsi1:{key}"))
}

fn dynamodb_keys(operation: &str, body: &Value, out: &mut Classified) {
    let put = |out: &mut Classified, item: &Value| {
        out.writes.extend(partition(item));
        out.writes.extend(index_partition(item));
    };
    match operation {
        "PutItem" => put(out, &body["Item"]),
        "UpdateItem" => {
            out.writes.extend(partition(&body["Key"]));
            out.writes.extend(updated_index_partition(body));
        }
        "DeleteItem" => out.writes.extend(partition(&body["Key"])),
        "GetItem" => out.reads.extend(partition(&body["Key"])),
        "TransactWriteItems" => {
            for item in body["TransactItems"].as_array().into_iter().flatten() {
                if item["Put"].is_object() {
                    put(out, &item["Put"]["Item"]);
                }
                for kind in ["Update", "Delete", "ConditionCheck"] {
                    out.writes.extend(partition(&item[kind]["Key"]));
                }
                if item["Update"].is_object() {
                    out.writes.extend(updated_index_partition(&item["Update"]));
                }
            }
        }
        "TransactGetItems" => {
            for item in body["TransactItems"].as_array().into_iter().flatten() {
                out.reads.extend(partition(&item["Get"]["Key"]));
            }
        }
        "BatchWriteItem" => {
            for requests in body["RequestItems"].as_object().into_iter().flatten() {
                for request in requests.1.as_array().into_iter().flatten() {
                    if request["PutRequest"].is_object() {
                        put(out, &request["PutRequest"]["Item"]);
                    }
                    out.writes
                        .extend(partition(&request["DeleteRequest"]["Key"]));
                }
            }
        }
        "BatchGetItem" => {
            for table in body["RequestItems"].as_object().into_iter().flatten() {
                for key in table.1["Keys"].as_array().into_iter().flatten() {
                    out.reads.extend(partition(key));
                }
            }
        }
        "Query" => out.reads.extend(queried_partition(body)),
        "Scan" => out.reads.push("(scan)".to_owned()),
        _ => {}
    }
}

/// The index partition an update sets (`SET ... gsi1pk = :v`), when the value is in the request.
fn updated_index_partition(update: &Value) -> Option<String> {
    let expression = update["UpdateExpression"].as_str()?;
    let value = equated_value(expression, &update["ExpressionAttributeNames"], "gsi1pk")?;
    update["ExpressionAttributeValues"][value]["S"]
        .as_str()
        .map(|key| format!("gsi1:{key}"))
}

/// The partition a `Query` reads: the value its key condition equates the partition key to.
fn queried_partition(query: &Value) -> Option<String> {
    let expression = query["KeyConditionExpression"].as_str()?;
    let names = &query["ExpressionAttributeNames"];
    let (attribute, label) = match query["IndexName"].as_str() {
        Some(index) => ("gsi1pk", format!("{index}:")),
        None => ("pk", String::new()),
    };
    let value = equated_value(expression, names, attribute)?;
    let key = query["ExpressionAttributeValues"][value]["S"].as_str()?;
    Some(format!("{label}{key}"))
}

/// In an expression such as `#pk = :pk AND begins_with(#sk, :p)` or `SET gsi1pk = :h, ...`,
/// the placeholder of the value that `attribute` (directly or through `#name`) is set equal to.
fn equated_value<'a>(expression: &'a str, names: &Value, attribute: &str) -> Option<&'a str> {
    let resolves = |name: &str| {
        name == attribute || (name.starts_with('#') && names[name].as_str() == Some(attribute))
    };
    let mut rest = expression;
    while let Some(at) = rest.find('=') {
        let name = rest[..at]
            .split(|c: char| c.is_whitespace() || c == ',' || c == '(')
            .rfind(|part| !part.is_empty())
            .unwrap_or("");
        let right = rest[at + 1..].trim_start();
        let value_end = right
            .find(|c: char| c.is_whitespace() || c == ',' || c == ')')
            .unwrap_or(right.len());
        if resolves(name) && right.starts_with(':') {
            return Some(&right[..value_end]);
        }
        rest = &rest[at + 1..];
    }
    None
}

/// Everything counted since the last reset.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Requests per `"Service Operation"`.
    pub calls: BTreeMap<String, u64>,
    /// Requests that the emulator answered with an error, per `"Operation ErrorType"`.
    pub errors: BTreeMap<String, u64>,
    pub writes: BTreeMap<String, u64>,
    pub reads: BTreeMap<String, u64>,
    /// Write and read capacity units consumed, per partition key.
    pub write_units: BTreeMap<String, f64>,
    pub read_units: BTreeMap<String, f64>,
    pub groups: BTreeMap<String, u64>,
    pub events: u64,
    /// Round-trip time of each request to the emulator, in microseconds, per `"Service Operation"`.
    pub latency_us: BTreeMap<String, Vec<u64>>,
    /// Faults injected, per `"kind Service.Operation"`.
    #[serde(default)]
    pub faults: FaultCounts,
    /// When each DynamoDB request was in flight (microseconds since the meter started), to tell
    /// requests sent one after another from requests sent together.
    #[serde(skip)]
    pub dynamodb_spans_us: Vec<(u64, u64)>,
}

impl Tally {
    fn add(&mut self, classified: &Classified, error: Option<String>, span_us: (u64, u64)) {
        let elapsed_us = span_us.1 - span_us.0;
        let service = classified.service.unwrap_or(Service::Other);
        if service == Service::DynamoDb {
            self.dynamodb_spans_us.push(span_us);
        }
        let call = format!("{} {}", service.label(), classified.operation);
        *self.calls.entry(call.clone()).or_default() += 1;
        self.latency_us.entry(call).or_default().push(elapsed_us);
        if let Some(error) = error {
            let key = format!("{} {error}", classified.operation);
            *self.errors.entry(key).or_default() += 1;
        }
        for (keys, counts) in [
            (&classified.writes, &mut self.writes),
            (&classified.reads, &mut self.reads),
            (&classified.groups, &mut self.groups),
        ] {
            for key in keys {
                *counts.entry(key.clone()).or_default() += 1;
            }
        }
        self.events += classified.events;
    }

    /// Puts the capacity a DynamoDB answer reports on the request's keys.
    fn add_capacity(&mut self, classified: &Classified, answer: &Value) {
        let reported: Vec<&Value> = match &answer["ConsumedCapacity"] {
            Value::Array(list) => list.iter().collect(),
            one @ Value::Object(_) => vec![one],
            _ => return,
        };
        let (keys, units) = if classified.writes.is_empty() {
            (&classified.reads, &mut self.read_units)
        } else {
            (&classified.writes, &mut self.write_units)
        };
        let (index_keys, table_keys): (Vec<&String>, Vec<&String>) =
            keys.iter().partition(|key| key.starts_with("gsi1:"));
        for capacity in reported {
            let table = capacity["Table"]["CapacityUnits"]
                .as_f64()
                .or_else(|| capacity["CapacityUnits"].as_f64())
                .unwrap_or(0.0);
            let index: f64 = capacity["GlobalSecondaryIndexes"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, index)| index["CapacityUnits"].as_f64())
                .sum();
            // A query of the index reports its units as the table's.
            let (table, index) = if table_keys.is_empty() {
                (0.0, table + index)
            } else {
                (table, index)
            };
            for (keys, total) in [(&table_keys, table), (&index_keys, index)] {
                if keys.is_empty() || total == 0.0 {
                    continue;
                }
                let each = total / keys.len() as f64;
                for key in keys.iter() {
                    *units.entry((*key).clone()).or_default() += each;
                }
            }
        }
    }

    /// Requests to one service.
    pub fn requests(&self, service: Service) -> u64 {
        let prefix = format!("{} ", service.label());
        self.calls
            .iter()
            .filter(|(call, _)| call.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// DynamoDB round trips: requests in flight at the same time count as one (a handler that
    /// sends two reads together waits for one round trip, not two).
    pub fn dynamodb_round_trips(&self) -> usize {
        let mut spans = self.dynamodb_spans_us.clone();
        spans.sort_unstable();
        let mut trips = 0;
        let mut busy_until = None;
        for (start, end) in spans {
            match busy_until {
                Some(until) if start < until => busy_until = Some(until.max(end)),
                _ => {
                    trips += 1;
                    busy_until = Some(end);
                }
            }
        }
        trips
    }

    /// The operations of one service, e.g. `["BatchGetItem", "TransactWriteItems"]`, one entry
    /// per request, in name order.
    pub fn operations(&self, service: Service) -> Vec<String> {
        let prefix = format!("{} ", service.label());
        self.calls
            .iter()
            .filter_map(|(call, n)| {
                let op = call.strip_prefix(&prefix)?;
                Some(std::iter::repeat_n(op.to_owned(), *n as usize))
            })
            .flatten()
            .collect()
    }
}

/// The meter's shared state: forwarded-to addresses, the tally and the faults to inject.
pub struct Meter {
    dynamodb: String,
    aws: String,
    http: reqwest::Client,
    /// Added to every DynamoDB round trip (see [`interpose`]).
    delay: std::time::Duration,
    epoch: Instant,
    tally: Mutex<Tally>,
    faults: Mutex<FaultPlan>,
    stops: Mutex<Vec<Stop>>,
}

/// Where a test stops an operation, as a Lambda killed between two steps is stopped: at the
/// `occurrence`-th request (from when it is set) of `action` (`"DynamoDB.PutItem"`) whose body
/// mentions `scope` (a table name: one test's own requests). `after`: the request is carried
/// out first and only its answer is held back (the step committed, its caller never knew).
#[derive(Clone, Debug)]
pub struct StopAt {
    pub action: String,
    pub scope: String,
    pub occurrence: usize,
    pub after: bool,
}

struct Stop {
    at: StopAt,
    seen: usize,
    reached: Arc<tokio::sync::Notify>,
}

/// The connection is to be closed without an answer (a lost answer).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the meter dropped the connection (an injected fault)")
    }
}

impl std::error::Error for Dropped {}

impl Meter {
    /// `dynamodb` and `aws`: the real endpoints (the values `AWS_ENDPOINT_URL_DYNAMODB` and
    /// `AWS_ENDPOINT_URL` had before they were pointed at the meter).
    pub fn new(dynamodb: &str, aws: &str) -> Arc<Self> {
        Self::with_delay(dynamodb, aws, std::time::Duration::ZERO)
    }

    /// A meter that holds every DynamoDB answer for `delay` before passing it on.
    pub fn with_delay(dynamodb: &str, aws: &str, delay: std::time::Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            dynamodb: dynamodb.trim_end_matches('/').to_owned(),
            aws: aws.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .expect("an HTTP client without TLS always builds"),
            epoch: Instant::now(),
            tally: Mutex::new(Tally::default()),
            faults: Mutex::new(FaultPlan::none()),
            stops: Mutex::new(Vec::new()),
        })
    }

    /// Holds the request `at` names forever (its caller waits until it gives up, or is
    /// dropped); the returned notice fires when it arrives.
    pub fn stop_at(&self, at: StopAt) -> Arc<tokio::sync::Notify> {
        let reached = Arc::new(tokio::sync::Notify::new());
        self.stops.lock().unwrap().push(Stop {
            at,
            seen: 0,
            reached: reached.clone(),
        });
        reached
    }

    /// Stops holding requests of `scope` from now on (those held stay held).
    pub fn clear_stops(&self, scope: &str) {
        self.stops
            .lock()
            .unwrap()
            .retain(|stop| stop.at.scope != scope);
    }

    /// The stop this request reaches, if any: (its notice, whether to carry it out first).
    fn stop_for(&self, action: &str, body: &[u8]) -> Option<(Arc<tokio::sync::Notify>, bool)> {
        let body = String::from_utf8_lossy(body);
        let mut stops = self.stops.lock().unwrap();
        let position = stops.iter_mut().position(|stop| {
            if stop.at.action != action || !body.contains(&stop.at.scope) {
                return false;
            }
            stop.seen += 1;
            stop.seen == stop.at.occurrence
        })?;
        let stop = stops.remove(position);
        Some((stop.reached, stop.at.after))
    }

    /// Injects `plan`'s faults from now on (an empty plan stops injecting).
    pub fn set_faults(&self, plan: FaultPlan) {
        *self.faults.lock().unwrap() = plan;
    }

    pub fn fault_spec(&self) -> String {
        self.faults.lock().unwrap().spec().to_owned()
    }

    /// Takes what was counted so far and starts again from zero.
    pub fn take(&self) -> Tally {
        std::mem::take(&mut *self.tally.lock().unwrap())
    }

    pub fn snapshot(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// `POST /__meter/faults` with `{"spec": "throttle=0.1,...", "seed": 7}`: injects those
    /// faults from now on (`""`: none). Answers the plan now in force.
    async fn faults_from(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let body = match request.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => return plain(StatusCode::BAD_REQUEST, err.to_string()),
        };
        let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let spec = asked["spec"].as_str().unwrap_or("");
        let seed = asked["seed"].as_u64().unwrap_or(1);
        match FaultPlan::parse(spec, seed) {
            Ok(plan) => {
                self.set_faults(plan);
                let body = serde_json::json!({ "spec": self.fault_spec(), "seed": seed });
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .expect("a static response builds")
            }
            Err(err) => plain(StatusCode::BAD_REQUEST, err),
        }
    }

    /// Forwards one request to the emulator behind, counting it, and injects the fault the
    /// plan draws for it. `Err(Dropped)`: close the connection without an answer.
    async fn forward(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Dropped> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => return Ok(plain(StatusCode::BAD_REQUEST, err.to_string())),
        };
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let classified = classify(&target, &body);
        let service = classified.service.unwrap_or(Service::Other);
        let action = format!("{}.{}", service.label(), classified.operation);
        if let Some((reached, after)) = self.stop_for(&action, &body) {
            if after {
                let upstream = Upstream {
                    method: parts.method.clone(),
                    path: parts
                        .uri
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_owned(),
                    headers: parts.headers.clone(),
                    body: body.clone(),
                };
                let _ = self.send_upstream(&classified, upstream).await;
            }
            reached.notify_one();
            std::future::pending::<()>().await;
        }
        let fault = match service {
            Service::Other | Service::SecretsManager => None,
            _ => self
                .faults
                .lock()
                .unwrap()
                .next(service.label(), &classified.operation),
        };
        if let Some(fault) = &fault {
            let key = format!(
                "{} {}.{}",
                fault.kind().label(),
                service.label(),
                classified.operation
            );
            *self.tally.lock().unwrap().faults.entry(key).or_default() += 1;
        }
        let upstream = Upstream {
            method: parts.method.clone(),
            path: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            headers: parts.headers.clone(),
            body: body.clone(),
        };
        match fault {
            Some(Fault::Refuse {
                status,
                error_type,
                body: mut error,
            }) => {
                // Refused before it reached the service: counted as a request that failed.
                let now = self.epoch.elapsed().as_micros() as u64;
                self.tally
                    .lock()
                    .unwrap()
                    .add(&classified, Some(error_type.clone()), (now, now));
                error["__type"] = Value::String(qualified_error(service, &error_type));
                return Ok(aws_error(status, &error));
            }
            Some(Fault::Delay(ms)) => tokio::time::sleep(ms_duration(ms)).await,
            _ => {}
        }
        // Forwarded from a task of its own, so that a caller who gives up (a client timeout)
        // does not take the request back: it still lands, as it would in AWS.
        let meter = self.clone();
        let stall = match fault {
            Some(Fault::Stall(ms)) => ms,
            _ => 0,
        };
        let sent = tokio::spawn(async move {
            if stall > 0 {
                tokio::time::sleep(ms_duration(stall)).await;
            }
            meter.send_upstream(&classified, upstream).await
        });
        let reply = match sent.await {
            Ok(Ok(reply)) => reply,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "meter: forwarding failed");
                return Ok(plain(StatusCode::BAD_GATEWAY, err));
            }
            Err(_) => {
                return Ok(plain(
                    StatusCode::BAD_GATEWAY,
                    "forwarding task failed".into(),
                ))
            }
        };
        match fault {
            Some(Fault::Lose(Loss::ServerError)) => Ok(aws_error(
                500,
                &serde_json::json!({
                    "__type": qualified_error(service, "InternalServerError"),
                    "message": "Internal server error",
                }),
            )),
            Some(Fault::Lose(Loss::Dropped)) => Err(Dropped),
            Some(Fault::Lose(Loss::TimedOut(ms))) => {
                tokio::time::sleep(ms_duration(ms)).await;
                Err(Dropped)
            }
            Some(Fault::Duplicate(ms)) => {
                let meter = self.clone();
                let copy = Upstream {
                    body: with_new_deduplication_id(&body),
                    method: parts.method,
                    path: parts
                        .uri
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_owned(),
                    headers: parts.headers,
                };
                tokio::spawn(async move {
                    tokio::time::sleep(ms_duration(ms)).await;
                    let classified = classify(&target, &copy.body);
                    if let Err(err) = meter.send_upstream(&classified, copy).await {
                        tracing::warn!(error = %err, "meter: the duplicate was not sent");
                    }
                });
                Ok(reply)
            }
            _ => Ok(reply),
        }
    }

    /// Sends a request to the emulator behind and counts it; the emulator's answer.
    async fn send_upstream(
        &self,
        classified: &Classified,
        request: Upstream,
    ) -> Result<Response<Full<Bytes>>, String> {
        let is_dynamodb = classified.service == Some(Service::DynamoDb);
        let body = if is_dynamodb {
            ask_for_capacity(request.body)
        } else {
            request.body
        };
        let upstream = if is_dynamodb {
            &self.dynamodb
        } else {
            &self.aws
        };
        let mut outgoing = self
            .http
            .request(request.method, format!("{upstream}{}", request.path));
        for (name, value) in &request.headers {
            if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
                outgoing = outgoing.header(name, value);
            }
        }
        let started = self.epoch.elapsed().as_micros() as u64;
        let response = outgoing
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if is_dynamodb && !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let ended = self.epoch.elapsed().as_micros() as u64;
        let error = (!status.is_success()).then(|| error_type(&bytes));
        let mut tally = self.tally.lock().unwrap();
        tally.add(classified, error, (started, ended));
        if is_dynamodb && status.is_success() {
            tally.add_capacity(
                classified,
                &serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            );
        }
        drop(tally);
        let mut reply = Response::builder().status(status.as_u16());
        for (name, value) in &headers {
            if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING {
                reply = reply.header(name, value);
            }
        }
        reply.body(Full::new(bytes)).map_err(|e| e.to_string())
    }
}

/// A request as it is sent on to the emulator.
struct Upstream {
    method: hyper::Method,
    path: String,
    headers: hyper::HeaderMap,
    body: Bytes,
}

fn ms_duration(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}

/// An error type as the service's JSON protocol names it.
fn qualified_error(service: Service, error_type: &str) -> String {
    match service {
        Service::DynamoDb => format!("com.amazonaws.dynamodb.v20120810#{error_type}"),
        Service::Sqs => format!("com.amazonaws.sqs#{error_type}"),
        _ => error_type.to_owned(),
    }
}

/// An AWS JSON-protocol error answer.
fn aws_error(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a static response builds")
}

/// An SQS `SendMessage` body with its deduplication id changed, so that SQS takes the copy as
/// another message.
fn with_new_deduplication_id(body: &Bytes) -> Bytes {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut request)) => {
            let id = request
                .get("MessageDeduplicationId")
                .and_then(Value::as_str)
                .unwrap_or("message")
                .to_owned();
            request.insert(
                "MessageDeduplicationId".into(),
                Value::String(format!("{id}-again")),
            );
            serde_json::to_vec(&request).map_or(body.clone(), Bytes::from)
        }
        _ => body.clone(),
    }
}

/// The request with `ReturnConsumedCapacity` set (to `INDEXES`, which breaks the units down by
/// table and index) unless the caller asked for it already.
fn ask_for_capacity(body: Bytes) -> Bytes {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut request)) if !request.contains_key("ReturnConsumedCapacity") => {
            request.insert("ReturnConsumedCapacity".into(), "INDEXES".into());
            serde_json::to_vec(&request).map_or(body, Bytes::from)
        }
        _ => body,
    }
}

/// The short name of an AWS JSON error (`com.amazonaws.dynamodb.v20120810#TransactionCanceledException`
/// → `TransactionCanceledException`).
fn error_type(body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    body["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| "error".to_owned())
}

/// Serves the meter on `listener` until the process ends. Besides forwarding, it answers
/// `GET /__meter` with the tally as JSON, `POST /__meter/reset` by zeroing it and
/// `POST /__meter/faults` by changing the faults it injects.
pub async fn serve(listener: TcpListener, meter: Arc<Meter>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let meter = meter.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let meter = meter.clone();
                async move {
                    match (request.method().as_str(), request.uri().path()) {
                        ("GET", "/__meter") => Ok(json_reply(&meter.snapshot())),
                        ("POST", "/__meter/reset") => Ok(json_reply(&meter.take())),
                        ("POST", "/__meter/faults") => Ok(meter.faults_from(request).await),
                        _ => meter.forward(request).await,
                    }
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// Starts a meter on a free loopback port; returns its URL.
pub async fn start(meter: Arc<Meter>) -> std::io::Result<String> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, meter));
    Ok(url)
}

/// The round trip [`interpose`] adds to each DynamoDB request.
pub const ROUND_TRIP: std::time::Duration = std::time::Duration::from_millis(50);

/// Puts a meter between this process's AWS clients and the emulators: starts one in front of
/// the endpoints that `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL` name, then points both
/// variables at it. Call it before any AWS configuration is loaded, while nothing else reads
/// the environment.
///
/// Every DynamoDB answer is held for [`ROUND_TRIP`], a slow real network round trip: the
/// emulator on loopback answers in well under a millisecond, too fast to tell requests a
/// handler sent together from requests it sent one after another. Held this long, requests sent
/// together always overlap and requests sent in turn never do, so round trips are counted the
/// same on every run.
pub async fn interpose() -> Result<Arc<Meter>, String> {
    interpose_holding(ROUND_TRIP).await
}

/// [`interpose`], holding each DynamoDB answer for `delay` (zero: as it comes).
pub async fn interpose_holding(delay: std::time::Duration) -> Result<Arc<Meter>, String> {
    let endpoint = |name: &str| {
        std::env::var(name).map_err(|_| format!("{name} is not set: start the emulators first"))
    };
    let meter = Meter::with_delay(
        &endpoint("AWS_ENDPOINT_URL_DYNAMODB")?,
        &endpoint("AWS_ENDPOINT_URL")?,
        delay,
    );
    let url = start(meter.clone()).await.map_err(|e| e.to_string())?;
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &url);
    std::env::set_var("AWS_ENDPOINT_URL", &url);
    Ok(meter)
}

fn json_reply(tally: &Tally) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(tally).unwrap_or_default();
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a static response builds")
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(text)))
        .expect("a static response builds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify_json(target: &str, body: Value) -> Classified {
        classify(target, &serde_json::to_vec(&body).unwrap())
    }

    #[test]
    fn when_transaction_should_count_every_item_and_index_write() {
        let c = classify_json(
            "DynamoDB_20120810.TransactWriteItems",
            json!({"TransactItems": [
                {"Update": {"Key": {"pk": {"S": "SCHEDULE#1"}, "sk": {"S": "SEAT#00001"}}}},
                {"Update": {"Key": {"pk": {"S": "SCHEDULE#1"}, "sk": {"S": "SEAT#00002"}}}},
                {"Put": {"Item": {"pk": {"S": "USER#u"}, "gsi1pk": {"S": "HOLDS#3"}}}},
                {"ConditionCheck": {"Key": {"pk": {"S": "QTOKEN#c#u"}}}},
            ]}),
        );
        assert_eq!(c.service, Some(Service::DynamoDb));
        assert_eq!(c.operation, "TransactWriteItems");
        assert_eq!(
            c.writes,
            [
                "SCHEDULE#1",
                "SCHEDULE#1",
                "USER#u",
                "gsi1:HOLDS#3",
                "QTOKEN#c#u"
            ]
        );
        assert!(c.reads.is_empty());
    }

    #[test]
    fn when_query_should_read_the_partition_its_key_condition_names() {
        let table = classify_json(
            "DynamoDB_20120810.Query",
            json!({"KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
                   "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
                   "ExpressionAttributeValues": {":pk": {"S": "SCHEDULE#9"}, ":prefix": {"S": "SEAT#"}}}),
        );
        assert_eq!(table.reads, ["SCHEDULE#9"]);
        let index = classify_json(
            "DynamoDB_20120810.Query",
            json!({"IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :h AND gsi1sk <= :t",
                   "ExpressionAttributeValues": {":h": {"S": "HOLDS#0"}, ":t": {"S": "9"}}}),
        );
        assert_eq!(index.reads, ["gsi1:HOLDS#0"]);
    }

    #[test]
    fn when_update_sets_the_index_key_should_count_the_index_write() {
        let c = classify_json(
            "DynamoDB_20120810.UpdateItem",
            json!({"Key": {"pk": {"S": "USER#u"}},
                   "UpdateExpression": "SET #s = :s, gsi1pk = :h",
                   "ExpressionAttributeNames": {"#s": "status"},
                   "ExpressionAttributeValues": {":s": {"S": "HELD"}, ":h": {"S": "HOLDS#1"}}}),
        );
        assert_eq!(c.writes, ["USER#u", "gsi1:HOLDS#1"]);
    }

    #[test]
    fn when_batches_should_count_each_key() {
        let get = classify_json(
            "DynamoDB_20120810.BatchGetItem",
            json!({"RequestItems": {"t": {"Keys": [{"pk": {"S": "A"}}, {"pk": {"S": "B"}}]}}}),
        );
        assert_eq!(get.reads, ["A", "B"]);
        let write = classify_json(
            "DynamoDB_20120810.BatchWriteItem",
            json!({"RequestItems": {"t": [{"PutRequest": {"Item": {"pk": {"S": "A"}}}},
                                          {"DeleteRequest": {"Key": {"pk": {"S": "B"}}}}]}}),
        );
        assert_eq!(write.writes, ["A", "B"]);
    }

    #[test]
    fn when_sqs_send_should_name_the_message_groups() {
        let one = classify_json(
            "AmazonSQS.SendMessage",
            json!({"QueueUrl": "q", "MessageGroupId": "concert-1", "MessageBody": "{}"}),
        );
        assert_eq!(
            (one.service, one.groups),
            (Some(Service::Sqs), vec!["concert-1".to_owned()])
        );
        let batch = classify_json(
            "AmazonSQS.SendMessageBatch",
            json!({"Entries": [{"MessageGroupId": "a"}, {"MessageGroupId": "b"}]}),
        );
        assert_eq!(batch.groups, ["a", "b"]);
    }

    #[test]
    fn when_put_events_should_count_entries() {
        let c = classify_json("AWSEvents.PutEvents", json!({"Entries": [{}, {}, {}]}));
        assert_eq!((c.service, c.events), (Some(Service::EventBridge), 3));
    }

    #[test]
    fn when_capacity_is_reported_should_share_it_among_the_request_keys() {
        let mut tally = Tally::default();
        let update = classify_json(
            "DynamoDB_20120810.UpdateItem",
            json!({"Key": {"pk": {"S": "QUEUE#c"}}}),
        );
        tally.add_capacity(
            &update,
            &json!({"ConsumedCapacity": {"CapacityUnits": 5.0, "Table": {"CapacityUnits": 5.0}}}),
        );
        let transaction = classify_json(
            "DynamoDB_20120810.TransactWriteItems",
            json!({"TransactItems": [
                {"Update": {"Key": {"pk": {"S": "SCHEDULE#1"}}}},
                {"Put": {"Item": {"pk": {"S": "USER#u"}, "gsi1pk": {"S": "HOLDS#0"}}}},
            ]}),
        );
        tally.add_capacity(
            &transaction,
            &json!({"ConsumedCapacity": [{"CapacityUnits": 6.0, "Table": {"CapacityUnits": 4.0},
                     "GlobalSecondaryIndexes": {"gsi1": {"CapacityUnits": 2.0}}}]}),
        );
        assert_eq!(tally.write_units["QUEUE#c"], 5.0);
        assert_eq!(tally.write_units["SCHEDULE#1"], 2.0);
        assert_eq!(tally.write_units["USER#u"], 2.0);
        assert_eq!(tally.write_units["gsi1:HOLDS#0"], 2.0);
        assert!(tally.read_units.is_empty());
    }

    #[test]
    fn when_dynamodb_request_should_ask_for_capacity_once() {
        let asked = ask_for_capacity(Bytes::from_static(b"{\"TableName\":\"t\"}"));
        let asked: Value = serde_json::from_slice(&asked).unwrap();
        assert_eq!(asked["ReturnConsumedCapacity"], "INDEXES");
        let own = ask_for_capacity(Bytes::from_static(
            b"{\"ReturnConsumedCapacity\":\"TOTAL\"}",
        ));
        let own: Value = serde_json::from_slice(&own).unwrap();
        assert_eq!(own["ReturnConsumedCapacity"], "TOTAL");
    }

    #[test]
    fn when_tallied_should_sum_requests_per_service() {
        let mut tally = Tally::default();
        let get = classify_json(
            "DynamoDB_20120810.GetItem",
            json!({"Key": {"pk": {"S": "USER#u"}}}),
        );
        tally.add(&get, None, (0, 10));
        tally.add(
            &get,
            Some("ConditionalCheckFailedException".into()),
            (5, 20),
        );
        tally.add(&get, None, (30, 40));
        assert_eq!(tally.requests(Service::DynamoDb), 3);
        assert_eq!(tally.requests(Service::Sqs), 0);
        assert_eq!(
            tally.operations(Service::DynamoDb),
            ["GetItem", "GetItem", "GetItem"]
        );
        assert_eq!(tally.reads["USER#u"], 3);
        // The first two overlapped: two round trips, not three.
        assert_eq!(tally.dynamodb_round_trips(), 2);
        assert_eq!(tally.errors["GetItem ConditionalCheckFailedException"], 1);
    }
}
