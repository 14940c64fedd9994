//! The test harness: a whole stack per test (its own table, its own gateway on a free loopback
//! port, the real emulators underneath) and a small HTTP client that speaks the API.
//!
//! Run through `infra/test.sh`, which starts the emulators and exports their endpoints.

pub mod pages;
pub mod webdriver;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::{Clock, Config};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub use local_stack::RunningStack;

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "correct-horse-battery";

pub struct TestApi {
    pub stack: RunningStack,
    pub secret: String,
    /// The stack's clock: the system clock, or a manual one that tests move by hand (see
    /// [`TestApi::start_with_manual_clock`]).
    pub clock: Clock,
    http: reqwest::Client,
}

/// A response: status and JSON body (`Value::Null` when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The contract's error code, if this is an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected reply: {}",
            self.body
        );
        self.body
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "unexpected reply: {}",
            self.body
        );
        self.body
    }
}

impl TestApi {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a stack whose config the test may adjust first. The scheduler is off: tests step
    /// admission themselves with [`TestApi::admit`].
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_options(adjust, false).await
    }

    pub async fn start_with_options(adjust: impl FnOnce(&mut Config), run_scheduler: bool) -> Self {
        Self::start_full(adjust, run_scheduler, Clock::system()).await
    }

    /// A stack whose time stands still at "now" until the test moves `api.clock`: expiry is
    /// then decided by the test, not by how fast the machine happens to run it.
    pub async fn start_with_manual_clock(
        adjust: impl FnOnce(&mut Config),
        run_scheduler: bool,
    ) -> Self {
        Self::start_full(adjust, run_scheduler, Clock::manual(chrono::Utc::now())).await
    }

    async fn start_full(
        adjust: impl FnOnce(&mut Config),
        run_scheduler: bool,
        clock: Clock,
    ) -> Self {
        assert!(
            std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
            "the end-to-end tests need the emulators: run them with infra/test.sh"
        );
        let secret = format!("test-secret-{}", uuid::Uuid::new_v4().simple());
        let table = format!("test-{}", uuid::Uuid::now_v7().simple());
        let mut config = Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table.clone()),
            "JWT_SECRET" => Some(secret.clone()),
            "ADMIN_USERNAMES" => Some(ADMIN.to_owned()),
            // As locally (see infra/local-stack/src/main.rs).
            "ADMIT_INTERVAL_SECONDS" => Some("1".to_owned()),
            // The emulators under a whole suite on a small machine answer in seconds what AWS
            // answers in milliseconds: time limits sized for AWS would turn that slowness into
            // faults these tests do not mean to inject (the fault tests set their own).
            "AWS_ATTEMPT_TIMEOUT_MILLIS" => Some("30000".to_owned()),
            "AWS_CALL_TIMEOUT_MILLIS" => Some("60000".to_owned()),
            "ADMIT_HAND_BACK_SECONDS" => Some("0".to_owned()),
            _ => None,
        })
        .expect("test config is valid");
        adjust(&mut config);
        let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let stack = local_stack::start(local_stack::StackOptions {
            template,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            config,
            clock: clock.clone(),
            seed_demo: false,
            run_scheduler,
            function_timeout: Some(std::time::Duration::from_secs(120)),
        })
        .await
        .expect("the local stack starts");
        Self {
            stack,
            secret,
            clock,
            http: reqwest::Client::new(),
        }
    }

    /// A request to build further (headers, body) and send.
    pub fn request(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            api: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            busy_ok: false,
        }
    }

    /// Sends a request. `body` is JSON unless it is a `Value::String`, which is sent as the raw
    /// body (for malformed-JSON tests).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut call = self.request(method, path);
        if let Some(token) = token {
            call = call.token(token);
        }
        call.body = body;
        call.send().await
    }

    async fn send(&self, call: Call<'_>) -> Reply {
        let path = call.path.clone();
        let mut request = self
            .http
            .request(call.method, format!("{}{path}", self.stack.url()));
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        request = match call.body.clone() {
            Some(Value::String(raw)) => {
                request.header("content-type", "application/json").body(raw)
            }
            Some(json) => request.json(&json),
            None => request,
        };
        let response = request.send().await.expect("the gateway answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
        };
        let busy = status == StatusCode::SERVICE_UNAVAILABLE
            && body["error"]["code"] == "SERVICE_BUSY"
            && headers.contains_key("retry-after");
        assert!(
            status.as_u16() < 500 || (call.busy_ok && busy),
            "the API answered {status} to {path}: {body}"
        );
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Signs up `username` with [`PASSWORD`] and returns the new user's id.
    pub async fn signup(&self, username: &str) -> String {
        let body = self
            .post(
                "/users",
                None,
                json!({"username": username, "password": PASSWORD, "name": "Test User"}),
            )
            .await
            .expect(201);
        body["user_id"].as_str().unwrap().to_owned()
    }

    pub async fn login(&self, username: &str) -> String {
        let body = self
            .post(
                "/auth/login",
                None,
                json!({"username": username, "password": PASSWORD}),
            )
            .await
            .expect(200);
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Signs up and logs in; returns the access token.
    pub async fn user(&self, username: &str) -> String {
        self.signup(username).await;
        self.login(username).await
    }

    pub async fn admin(&self) -> String {
        self.user(ADMIN).await
    }

    /// One admission step, as the scheduler would run it.
    pub async fn admit(&self) -> shared::operations::AdmitReport {
        self.stack
            .services
            .admit_step()
            .await
            .expect("the admission step runs")
    }

    /// Enters `concert_id`'s queue; returns the reply body (queue_token, position, ...). A
    /// `503 SERVICE_BUSY` (the emulators slow under a test's crowd) is retried after its
    /// Retry-After, as docs/API.md asks of clients: the entry keeps the fan's place.
    pub async fn enter(&self, access_token: &str, concert_id: &str) -> Value {
        let mut reply = None;
        for _ in 0..5 {
            let answer = self
                .request(Method::POST, "/queue/tokens")
                .token(access_token)
                .json(json!({ "concert_id": concert_id }))
                .busy_ok()
                .send()
                .await;
            if answer.status != StatusCode::SERVICE_UNAVAILABLE {
                reply = Some(answer);
                break;
            }
            let wait = answer.body["error"]["details"]["retry_after_seconds"]
                .as_u64()
                .unwrap_or(1);
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
        let reply = reply.expect("the queue entry stayed busy through five tries");
        assert!(
            reply.status == 201 || reply.status == 200,
            "cannot enter the queue: {}",
            reply.body
        );
        reply.body
    }

    /// Where a queue token stands (`GET /queue/tokens/current`).
    pub async fn queue_status(&self, access_token: &str, queue_token: &str) -> Value {
        self.request(Method::GET, "/queue/tokens/current")
            .token(access_token)
            .queue(queue_token)
            .send()
            .await
            .expect(200)
    }

    /// A user admitted to `concert_id`: signs up, enters, is admitted. Returns (access token,
    /// queue token). Needs a free active slot.
    pub async fn admitted_user(&self, username: &str, concert_id: &str) -> (String, String) {
        let token = self.user(username).await;
        let place = self.enter(&token, concert_id).await;
        let queue_token = place["queue_token"].as_str().unwrap().to_owned();
        self.admit().await;
        let status = self.queue_status(&token, &queue_token).await;
        assert_eq!(
            status["status"], "ACTIVE",
            "{username} was not admitted: {status}"
        );
        (token, queue_token)
    }

    /// `POST /reservations` for `seat_nos` of a schedule.
    pub async fn hold(
        &self,
        access_token: &str,
        queue_token: &str,
        schedule_id: &str,
        seat_nos: &[u32],
    ) -> Reply {
        self.request(Method::POST, "/reservations")
            .token(access_token)
            .queue(queue_token)
            .json(json!({ "schedule_id": schedule_id, "seat_nos": seat_nos }))
            .send()
            .await
    }

    /// Seat number → status, from `GET /schedules/{id}/seats`.
    pub async fn seat_statuses(
        &self,
        access_token: &str,
        queue_token: &str,
        schedule_id: &str,
    ) -> std::collections::BTreeMap<u64, String> {
        let body = self
            .request(Method::GET, &format!("/schedules/{schedule_id}/seats"))
            .token(access_token)
            .queue(queue_token)
            .send()
            .await
            .expect(200);
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|seat| {
                (
                    seat["seat_no"].as_u64().unwrap(),
                    seat["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Signs up `count` users named `{prefix}{i}`, concurrently; returns their access tokens.
    /// `count` users signed up and logged in, eight at a time: password hashing is slow on
    /// purpose, and hundreds of hashes at once on a small machine would outlast the functions'
    /// timeouts (each Lambda has a processor of its own; this machine has a few).
    pub async fn users(&self, prefix: &str, count: usize) -> Vec<String> {
        use futures::StreamExt;
        futures::stream::iter(0..count)
            .map(|i| async move { self.user(&format!("{prefix}{i}")).await })
            .buffered(8)
            .collect()
            .await
    }

    /// `count` users admitted to a concert: (access token, queue token) each. The stack's
    /// `queue_max_active` must leave room for them.
    pub async fn admitted_users(
        &self,
        prefix: &str,
        count: usize,
        concert_id: &str,
    ) -> Vec<(String, String)> {
        let tokens = self.users(prefix, count).await;
        let mut places: Vec<String> =
            futures::future::join_all(tokens.iter().map(|token| self.enter(token, concert_id)))
                .await
                .iter()
                .map(|place| place["queue_token"].as_str().unwrap().to_owned())
                .collect();
        // A step may admit nobody while it waits for a number whose entry is still on its way
        // (QUEUE_ENTRY_GRACE_MILLIS), and a place whose entry came too late is passed over
        // (EXPIRED): its fan takes a new one, as a client does. The emulators under a whole
        // suite are slow to deliver.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let statuses =
                futures::future::join_all(tokens.iter().zip(&places).map(|(token, queue)| {
                    self.request(Method::GET, "/queue/tokens/current")
                        .token(token)
                        .queue(queue)
                        .busy_ok()
                        .send()
                }))
                .await;
            let mut waiting = 0;
            for (i, reply) in statuses.iter().enumerate() {
                match (reply.status.as_u16(), reply.body["status"].as_str()) {
                    (200, Some("ACTIVE")) => {}
                    (200, Some("WAITING")) | (503, _) => waiting += 1,
                    _ => {
                        let place = self.enter(&tokens[i], concert_id).await;
                        places[i] = place["queue_token"].as_str().unwrap().to_owned();
                        waiting += 1;
                    }
                }
            }
            if waiting == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "admission stalled with {waiting} of {count} still waiting"
            );
            if self.admit().await.admitted == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        tokens.into_iter().zip(places).collect()
    }

    /// `POST /balance/charge`, with an idempotency key if given.
    pub async fn charge(&self, access_token: &str, amount: i64, key: Option<&str>) -> Reply {
        let mut call = self
            .request(Method::POST, "/balance/charge")
            .token(access_token)
            .json(json!({ "amount": amount }));
        if let Some(key) = key {
            call = call.header("idempotency-key", key);
        }
        call.send().await
    }

    /// `POST /payments` for a reservation, with an idempotency key if given.
    pub async fn pay(
        &self,
        access_token: &str,
        queue_token: &str,
        reservation_id: &str,
        key: Option<&str>,
    ) -> Reply {
        let mut call = self
            .request(Method::POST, "/payments")
            .token(access_token)
            .queue(queue_token)
            .json(json!({ "reservation_id": reservation_id }));
        if let Some(key) = key {
            call = call.header("idempotency-key", key);
        }
        call.send().await
    }

    /// Every page of a paged list endpoint (`items`, `next_cursor`), in the order served.
    pub async fn all_pages(&self, access_token: &str, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(cursor) => format!("{path}?limit=7&cursor={cursor}"),
                None => format!("{path}?limit=7"),
            };
            let page = self.get(&page_path, Some(access_token)).await.expect(200);
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// A concert on sale with one date, created by a fresh admin: (concert id, schedule id).
    pub async fn concert_with_one_date(&self) -> (String, String) {
        let admin = self.admin().await;
        let concert = self.concert_on_sale(&admin, 1).await;
        (
            id(&concert, "concert_id"),
            id(&concert["schedules"][0], "schedule_id"),
        )
    }

    /// Creates a concert on sale now with `schedules` dates and the default 50 seats.
    pub async fn concert_on_sale(&self, admin_token: &str, schedules: usize) -> Value {
        self.post(
            "/admin/concerts",
            Some(admin_token),
            concert_body(schedules),
        )
        .await
        .expect(201)
    }
}

/// The string at `key` of a JSON body.
#[track_caller]
pub fn id(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
        .to_owned()
}

/// A request being built; see [`TestApi::request`].
pub struct Call<'a> {
    api: &'a TestApi,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    /// A 503 SERVICE_BUSY is an answer this call may get (a test of contention).
    busy_ok: bool,
}

impl Call<'_> {
    pub fn token(self, access_token: &str) -> Self {
        self.header("authorization", &format!("Bearer {access_token}"))
    }

    pub fn queue(self, queue_token: &str) -> Self {
        self.header("x-queue-token", queue_token)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Accepts 503 SERVICE_BUSY (with its Retry-After) as an answer: for tests that contend
    /// on purpose. Any other 5xx still fails the test.
    pub fn busy_ok(mut self) -> Self {
        self.busy_ok = true;
        self
    }

    pub async fn send(self) -> Reply {
        self.api.send(self).await
    }
}

/// A valid `POST /admin/concerts` body: on sale from an hour ago for 30 days, 50 seats a date.
pub fn concert_body(schedules: usize) -> Value {
    let now = chrono::Utc::now();
    let at = |hours: i64| (now + chrono::Duration::hours(hours)).to_rfc3339();
    json!({
        "title": "Winter Live",
        "artist": "The Band",
        "venue": "Olympic Hall",
        "category": "ROCK",
        "description": "A night to remember.",
        "image_url": "https://example.com/poster.jpg",
        "booking_opens_at": at(-1),
        "booking_closes_at": at(24 * 30),
        "price": 55000,
        "schedules": (0..schedules).map(|i| json!({"starts_at": at(24 * 31 + i as i64 * 24)})).collect::<Vec<_>>(),
    })
}
