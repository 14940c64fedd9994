//! The fans' HTTP client: one attempt at a time, timed and written into the run's history, and
//! a retrying call that does what the contract tells a client to do with a transient answer.
//!
//! The contract (docs/API.md) says a `503 SERVICE_BUSY` is safe to retry (with the same
//! `Idempotency-Key` where there is one) after its `Retry-After`, and a request whose answer
//! never came (a dropped connection, a timeout, a restarted server) is as safe to retry as a
//! 5xx. A chain is one request and its retries; every attempt of it is kept, so the checks can
//! tell "done", "not done" and "unknown" apart, as Jepsen does.

use reqwest::{Client, Method};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// An HTTP answer: its status and body.
    Status(u16, Value),
    /// No answer: the connection failed or the client timed out.
    Lost(String),
}

impl Answer {
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Status(status, _) => Some(*status),
            Answer::Lost(_) => None,
        }
    }

    pub fn body(&self) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Answer::Status(_, body) => body,
            Answer::Lost(_) => &NULL,
        }
    }

    /// A 2xx or a 4xx: the request was done, or was not.
    pub fn is_definite(&self) -> bool {
        matches!(self.status(), Some(status) if status < 500 && !self.is_retryable_4xx())
    }

    /// A 429 the client may retry: the API's own throttling or `RATE_LIMITED` contention.
    fn is_retryable_4xx(&self) -> bool {
        self.status() == Some(429)
    }
}

/// One attempt, as the history keeps it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub endpoint: &'static str,
    /// When it was sent and when its answer came (wall clock, epoch milliseconds).
    pub sent_ms: u64,
    pub answered_ms: u64,
    pub answer: Answer,
    /// For a 503: whether it carried a `Retry-After` header.
    pub retry_after: Option<u64>,
}

/// A finished chain: its attempts' answers, first to last. The last is the chain's verdict.
#[derive(Clone, Debug)]
pub struct Chain {
    pub answers: Vec<Answer>,
    /// When the first attempt was sent and the last answered (epoch milliseconds).
    pub first_sent_ms: u64,
    pub last_answered_ms: u64,
}

impl Chain {
    pub fn last(&self) -> &Answer {
        self.answers.last().expect("a chain has an attempt")
    }

    /// Whether any attempt before the last had an unknown outcome (5xx or no answer): the
    /// request may have been done by that attempt.
    pub fn had_unknown_attempt(&self) -> bool {
        self.answers[..self.answers.len() - 1]
            .iter()
            .any(|answer| answer.status().is_none_or(|status| status >= 500))
    }
}

/// Latencies per endpoint (µs), answers per status, and the history of every attempt.
#[derive(Default)]
pub struct Record {
    pub samples: Mutex<BTreeMap<&'static str, Vec<u64>>>,
    pub history: Mutex<Vec<Attempt>>,
    pub requests: AtomicU64,
    pub internal_errors: AtomicU64,
    pub next_chain: AtomicU64,
}

pub struct Api {
    pub http: Client,
    pub url: String,
    pub record: Record,
    /// Give up retrying after this instant (moved on for the checks after the on-sale).
    deadline: Mutex<Instant>,
    /// The edge's copy of the queue's progress document (see [`Api::queue_progress`]).
    edge: tokio::sync::Mutex<Option<EdgeCopy>>,
}

/// The progress document as the edge last fetched it: when it asked (epoch ms and instant),
/// when it was answered, and what it got (`None`: no usable answer, ask the API).
#[derive(Clone)]
pub struct EdgeCopy {
    pub fetched: Instant,
    pub sent_ms: u64,
    pub answered_ms: u64,
    pub document: Option<shared::queue::QueueProgress>,
}

/// How long the edge keeps the progress document (the template's `ProgressCachePolicy`).
pub const EDGE_TTL: Duration = Duration::from_secs(1);

/// A request to make: endpoint label, method, path, headers and body.
pub struct Call<'a> {
    pub endpoint: &'static str,
    pub method: Method,
    pub path: String,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<Value>,
}

impl Api {
    pub fn new(url: &str, fans: usize, deadline: Instant) -> Result<Self, String> {
        Ok(Self {
            http: Client::builder()
                // API Gateway gives up on an integration after 29 s; so does this client.
                .timeout(Duration::from_secs(29))
                .pool_max_idle_per_host(fans.max(16))
                .build()
                .map_err(|e| e.to_string())?,
            url: url.trim_end_matches('/').to_owned(),
            record: Record::default(),
            deadline: Mutex::new(deadline),
            edge: tokio::sync::Mutex::new(None),
        })
    }

    /// `GET /queue/progress/{concert_id}` as the fans get it through the edge: one request to
    /// the service a second, whatever the crowd (the template's CloudFront distribution keeps
    /// it that long, and collapses the misses that arrive together into one), every fan served
    /// the same copy in between.
    pub async fn queue_progress(&self, concert_id: &str) -> EdgeCopy {
        let mut edge = self.edge.lock().await;
        if let Some(copy) = edge
            .as_ref()
            .filter(|copy| copy.fetched.elapsed() < EDGE_TTL)
        {
            return copy.clone();
        }
        let fetched = Instant::now();
        let sent_ms = self.now_ms();
        let answer = self
            .once(Call {
                endpoint: "GET /queue/progress/{id}",
                method: Method::GET,
                path: format!("/queue/progress/{concert_id}"),
                headers: &[],
                body: None,
            })
            .await;
        let document = match answer.status() {
            Some(200) => serde_json::from_value(answer.body().clone()).ok(),
            _ => None,
        };
        let copy = EdgeCopy {
            fetched,
            sent_ms,
            answered_ms: self.now_ms(),
            document,
        };
        *edge = Some(copy.clone());
        copy
    }

    pub fn set_deadline(&self, deadline: Instant) {
        *self.deadline.lock().unwrap() = deadline;
    }

    fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap()
    }

    /// The wall clock, epoch milliseconds: the service runs on this machine's clock too, so
    /// the times it reports (admission, expiry) compare with these.
    pub fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// One attempt, timed and kept in the history.
    async fn attempt(&self, call: &Call<'_>) -> Attempt {
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}{}", self.url, call.path));
        for (header, value) in call.headers {
            request = request.header(*header, *value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let sent_ms = self.now_ms();
        let started = Instant::now();
        let (answer, retry_after) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                match response.bytes().await {
                    Ok(bytes) => (
                        Answer::Status(
                            status,
                            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                        ),
                        retry_after,
                    ),
                    Err(err) => (Answer::Lost(err.to_string()), None),
                }
            }
            Err(err) => (Answer::Lost(err.to_string()), None),
        };
        let elapsed = started.elapsed().as_micros() as u64;
        self.record.requests.fetch_add(1, Relaxed);
        self.record
            .samples
            .lock()
            .unwrap()
            .entry(call.endpoint)
            .or_default()
            .push(elapsed);
        if answer.status() == Some(500) {
            self.record.internal_errors.fetch_add(1, Relaxed);
        }
        let attempt = Attempt {
            endpoint: call.endpoint,
            sent_ms,
            answered_ms: self.now_ms(),
            answer,
            retry_after,
        };
        self.record.history.lock().unwrap().push(attempt.clone());
        attempt
    }

    /// The request, retried as the contract allows until it is done or refused (a 2xx or a
    /// 4xx other than 429) or the run's deadline passes. Every attempt is the same request:
    /// same body, same headers (so the same `Idempotency-Key`).
    pub async fn call(&self, call: Call<'_>) -> Chain {
        let id = self.record.next_chain.fetch_add(1, Relaxed);
        let mut answers = Vec::new();
        let mut first_sent_ms = None;
        let mut pause = Duration::from_millis(200);
        loop {
            let attempt = self.attempt(&call).await;
            first_sent_ms.get_or_insert(attempt.sent_ms);
            let definite = attempt.answer.is_definite();
            let retry_after = attempt.retry_after;
            let last_answered_ms = attempt.answered_ms;
            answers.push(attempt.answer);
            if definite || Instant::now() >= self.deadline() {
                return Chain {
                    answers,
                    first_sent_ms: first_sent_ms.unwrap_or(0),
                    last_answered_ms,
                };
            }
            // Retry-After when the service gave one (capped: the run has a deadline), else an
            // exponential pause; both jittered so that the crowd does not come back at once.
            let base = retry_after.map_or(pause, |s| Duration::from_secs(s.min(3)));
            let jitter = Duration::from_millis(fastrand_u64(id, answers.len() as u64) % 250);
            tokio::time::sleep(base + jitter).await;
            pause = (pause * 2).min(Duration::from_secs(3));
        }
    }

    /// One attempt only, no retries (the fans' polls: the next poll is the retry).
    pub async fn once(&self, call: Call<'_>) -> Answer {
        self.attempt(&call).await.answer
    }
}

/// A cheap deterministic spread for the retry jitter.
fn fastrand_u64(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definite_answers_should_be_2xx_and_4xx_but_429() {
        assert!(Answer::Status(201, json!({})).is_definite());
        assert!(Answer::Status(409, json!({})).is_definite());
        assert!(!Answer::Status(429, json!({})).is_definite());
        assert!(!Answer::Status(503, json!({})).is_definite());
        assert!(!Answer::Status(500, json!({})).is_definite());
        assert!(!Answer::Lost("reset".into()).is_definite());
    }

    #[test]
    fn a_chain_should_know_when_an_earlier_attempt_may_have_been_done() {
        let chain = |answers| Chain {
            answers,
            first_sent_ms: 0,
            last_answered_ms: 0,
        };
        assert!(chain(vec![
            Answer::Lost("timeout".into()),
            Answer::Status(409, json!({}))
        ])
        .had_unknown_attempt());
        assert!(!chain(vec![
            Answer::Status(429, json!({})),
            Answer::Status(409, json!({}))
        ])
        .had_unknown_attempt());
        assert!(!chain(vec![Answer::Status(503, json!({}))]).had_unknown_attempt());
    }
}
