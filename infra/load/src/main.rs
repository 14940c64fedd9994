//! `load`: an on-sale in miniature against a running ticketing API.
//!
//! ```text
//! cargo run --release -p load -- [--url http://127.0.0.1:3000] [--fans 200] [--seats 100]
//!                                [--admin admin] [--password password123] [--seconds 120]
//! ```
//!
//! An admin creates a concert with `--seats` seats; `--fans` users sign up, enter the queue at
//! the same moment, wait to be admitted, look at the seat map, try to hold two seats (up to
//! three tries on conflicts), charge their balance and pay. Every request is timed; the report
//! gives count, p50, p95, p99 and max per endpoint, the outcomes, and a check of the admin's
//! sales figures against the payments made (no seat sold twice). Bounded: it stops after
//! `--seconds` whatever happens. Point it only at your own deployment.

use futures::future::join_all;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Options {
    url: String,
    fans: usize,
    seats: u32,
    admin: String,
    password: String,
    seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        url: "http://127.0.0.1:3000".into(),
        fans: 200,
        seats: 100,
        admin: "admin".into(),
        password: "password123".into(),
        seconds: 120,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--url" => options.url = value.trim_end_matches('/').to_owned(),
            "--fans" => options.fans = number(&value)? as usize,
            "--seats" => options.seats = number(&value)? as u32,
            "--admin" => options.admin = value,
            "--password" => options.password = value,
            "--seconds" => options.seconds = number(&value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

/// Latencies per endpoint, in microseconds.
#[derive(Default)]
struct Timings(Mutex<BTreeMap<&'static str, Vec<u64>>>);

struct Api {
    http: Client,
    url: String,
    timings: Timings,
}

struct Reply {
    status: u16,
    body: Value,
}

impl Api {
    async fn call(
        &self,
        name: &'static str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Reply, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        for (header, value) in headers {
            request = request.header(*header, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|e| format!("{name}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| format!("{name}: {e}"))?;
        let elapsed = started.elapsed().as_micros() as u64;
        self.timings
            .0
            .lock()
            .unwrap()
            .entry(name)
            .or_default()
            .push(elapsed);
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 500 {
            return Err(format!("{name}: {status} {body}"));
        }
        Ok(Reply { status, body })
    }

    /// Signs up (unless the name exists) and logs in; returns an access token.
    async fn account(&self, username: &str, password: &str) -> Result<String, String> {
        let body = json!({"username": username, "password": password, "name": username});
        let signup = self
            .call("POST /users", Method::POST, "/users", &[], Some(body))
            .await?;
        if signup.status != 201 && signup.status != 409 {
            return Err(format!("signup {username}: {}", signup.body));
        }
        let body = json!({"username": username, "password": password});
        let login = self
            .call(
                "POST /auth/login",
                Method::POST,
                "/auth/login",
                &[],
                Some(body),
            )
            .await?;
        login.body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("login {username}: {}", login.body))
    }
}

#[derive(Default, Debug)]
struct Outcome {
    paid: bool,
    conflicts: u32,
    gave_up: bool,
}

/// One fan: queue, wait, look, hold, charge, pay.
async fn fan(
    api: &Api,
    token: &str,
    concert_id: &str,
    deadline: Instant,
) -> Result<Outcome, String> {
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let body = json!({ "concert_id": concert_id });
    let place = api
        .call(
            "POST /queue/tokens",
            Method::POST,
            "/queue/tokens",
            &auth,
            Some(body),
        )
        .await?;
    let queue_token = place.body["queue_token"]
        .as_str()
        .ok_or(format!("enter: {}", place.body))?
        .to_owned();
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-queue-token", queue_token.as_str()),
    ];
    loop {
        if Instant::now() > deadline {
            return Ok(Outcome {
                gave_up: true,
                ..Outcome::default()
            });
        }
        let status = api
            .call(
                "GET /queue/tokens/current",
                Method::GET,
                "/queue/tokens/current",
                &headers,
                None,
            )
            .await?;
        if status.body["status"] == "ACTIVE" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let schedules = api
        .call(
            "GET /concerts/{id}/schedules",
            Method::GET,
            &format!("/concerts/{concert_id}/schedules"),
            &headers,
            None,
        )
        .await?;
    let schedule_id = schedules.body["items"][0]["schedule_id"]
        .as_str()
        .ok_or(format!("schedules: {}", schedules.body))?
        .to_owned();
    let mut outcome = Outcome::default();
    for _ in 0..3 {
        if Instant::now() > deadline {
            return Ok(Outcome {
                gave_up: true,
                ..outcome
            });
        }
        let map = api
            .call(
                "GET /schedules/{id}/seats",
                Method::GET,
                &format!("/schedules/{schedule_id}/seats"),
                &headers,
                None,
            )
            .await?;
        let free: Vec<u64> = map.body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|seat| seat["status"] == "AVAILABLE")
                    .filter_map(|seat| seat["seat_no"].as_u64())
                    .collect()
            })
            .unwrap_or_default();
        if free.len() < 2 {
            // Sold out: give the place up, as a fan closing the tab would (its slot goes to
            // the next in line at once instead of after QUEUE_ACTIVE_TTL_SECONDS).
            api.call(
                "DELETE /queue/tokens/current",
                Method::DELETE,
                "/queue/tokens/current",
                &headers,
                None,
            )
            .await?;
            return Ok(outcome);
        }
        // Everyone aims at the front rows: the worst case for conflicts.
        let pick = (uuid::Uuid::new_v4().as_u128() % (free.len() as u128 - 1).min(8)) as usize;
        let seats = [free[pick], free[pick + 1]];
        let body = json!({ "schedule_id": schedule_id, "seat_nos": seats });
        let hold = api
            .call(
                "POST /reservations",
                Method::POST,
                "/reservations",
                &headers,
                Some(body),
            )
            .await?;
        if hold.status == 409 {
            outcome.conflicts += 1;
            continue;
        }
        let reservation_id = hold.body["reservation_id"]
            .as_str()
            .ok_or(format!("hold: {}", hold.body))?
            .to_owned();
        let amount = hold.body["amount"].as_i64().unwrap_or(0);
        let charge_key = uuid::Uuid::new_v4().to_string();
        let mut charge_headers = headers.to_vec();
        charge_headers.push(("idempotency-key", &charge_key));
        api.call(
            "POST /balance/charge",
            Method::POST,
            "/balance/charge",
            &charge_headers,
            Some(json!({ "amount": amount })),
        )
        .await?;
        let pay_key = uuid::Uuid::new_v4().to_string();
        let mut pay_headers = headers.to_vec();
        pay_headers.push(("idempotency-key", &pay_key));
        let paid = api
            .call(
                "POST /payments",
                Method::POST,
                "/payments",
                &pay_headers,
                Some(json!({ "reservation_id": reservation_id })),
            )
            .await?;
        outcome.paid = paid.status == 201;
        return Ok(outcome);
    }
    // Three conflicts in a row: give the place up for someone else.
    api.call(
        "DELETE /queue/tokens/current",
        Method::DELETE,
        "/queue/tokens/current",
        &headers,
        None,
    )
    .await?;
    Ok(outcome)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let options = options()?;
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let api = Arc::new(Api {
        http: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?,
        url: options.url.clone(),
        timings: Timings::default(),
    });
    let admin = api.account(&options.admin, &options.password).await?;
    let now = chrono::Utc::now();
    let rows = options.seats.div_ceil(20);
    let concert = json!({
        "title": "Load test", "artist": "Load", "venue": "Loopback Arena", "category": "TEST",
        "booking_opens_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "booking_closes_at": (now + chrono::Duration::days(1)).to_rfc3339(),
        "schedules": [{"starts_at": (now + chrono::Duration::days(2)).to_rfc3339()}],
        "seat_map": {"sections": [{"name": "Floor", "grade": "R", "price": 50000, "rows": rows, "seats_per_row": 20}]},
    });
    let bearer = format!("Bearer {admin}");
    let created = api
        .call(
            "POST /admin/concerts",
            Method::POST,
            "/admin/concerts",
            &[("authorization", &bearer)],
            Some(concert),
        )
        .await?;
    let concert_id = created.body["concert_id"]
        .as_str()
        .ok_or(format!("create concert: {}", created.body))?
        .to_owned();
    println!(
        "concert {concert_id}: {} seats, {} fans",
        rows * 20,
        options.fans
    );

    let run = uuid::Uuid::new_v4().simple().to_string();
    let tokens: Vec<String> = join_all((0..options.fans).map(|i| {
        let api = api.clone();
        let name = format!("load_{}_{i}", &run[..8]);
        async move { api.account(&name, "load-test-password").await }
    }))
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    println!("{} fans signed up; the on-sale starts", tokens.len());

    let started = Instant::now();
    let outcomes = join_all(
        tokens
            .iter()
            .map(|token| fan(&api, token, &concert_id, deadline)),
    )
    .await;
    let elapsed = started.elapsed();

    let mut errors = 0;
    let (mut paid, mut conflicts, mut gave_up) = (0, 0, 0);
    for outcome in &outcomes {
        match outcome {
            Ok(outcome) => {
                paid += outcome.paid as u32;
                conflicts += outcome.conflicts;
                gave_up += outcome.gave_up as u32;
            }
            Err(err) => {
                errors += 1;
                eprintln!("error: {err}");
            }
        }
    }
    let sales = api
        .call(
            "GET /admin/concerts/{id}/sales",
            Method::GET,
            &format!("/admin/concerts/{concert_id}/sales"),
            &[("authorization", &bearer)],
            None,
        )
        .await?;
    let sold = sales.body["schedules"][0]["sold_seats"]
        .as_i64()
        .unwrap_or(-1);

    println!("\non-sale took {:.1} s", elapsed.as_secs_f64());
    println!(
        "{:<32} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "endpoint", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (name, samples) in api.timings.0.lock().unwrap().iter_mut() {
        samples.sort_unstable();
        println!(
            "{:<32} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            name,
            samples.len(),
            percentile(samples, 0.50),
            percentile(samples, 0.95),
            percentile(samples, 0.99),
            percentile(samples, 1.0),
        );
    }
    println!("\npaid: {paid}, hold conflicts (409): {conflicts}, gave up waiting: {gave_up}, errors: {errors}");
    println!(
        "seats sold per the sales report: {sold} (expected {})",
        paid * 2
    );
    if sold != i64::from(paid) * 2 || errors > 0 {
        return Err("the sales report does not match the payments, or requests failed".into());
    }
    Ok(())
}
