//! `load`: an on-sale in miniature against a running ticketing API.
//!
//! ```text
//! cargo run --release -p load -- [--url http://127.0.0.1:3000] [--fans 500] [--seats 200]
//!     [--dates 1] [--admin admin] [--password password123] [--seconds 300]
//!     [--meter http://127.0.0.1:PORT] [--cpu name=pid,name=pid] [--write docs/PERFORMANCE.md]
//! ```
//!
//! An admin creates a concert with `--seats` seats on each of `--dates` dates; `--fans` users
//! sign up and log in. Then the on-sale: every fan enters the queue at the same moment, waits
//! to be admitted, reads the dates and the seat map of the first date, and tries to hold 1 to 4
//! seats side by side (half of them aim at the front rows, so many want the same seats; up to
//! three tries on conflicts). What each fan then does is fixed by their number: most charge
//! their balance and pay, some pay and cancel for a refund, some release the hold, some walk
//! away and let it expire, some pay without enough balance and are declined.
//!
//! It prints progress while it runs and then reports: seats sold, double bookings (a seat in
//! two confirmed reservations: must be 0), 5xx answers (must be 0), conflicts, latency
//! percentiles per endpoint, and the money check (every fan's balance equals their ledger, and
//! the ledger chains without a gap). With `--meter` (a `perf meter` in front of the emulators)
//! it adds the partition-heat tables; with `--cpu` the CPU time of the named processes per
//! request. `--write` puts the report in that markdown file's `onsale` section.
//!
//! Bounded: it stops after `--seconds` whatever happens. Point it only at your own deployment.
//! `infra/perf.sh onsale` starts everything it needs and runs it.

use futures::stream::{self, StreamExt};
use perf::meter::Tally;
use perf::{cpu, report};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Options {
    url: String,
    fans: usize,
    seats: u32,
    dates: u32,
    admin: String,
    password: String,
    seconds: u64,
    meter: Option<String>,
    cpu: Vec<(String, u32)>,
    write: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        url: "http://127.0.0.1:3000".into(),
        fans: 500,
        seats: 200,
        dates: 1,
        admin: "admin".into(),
        password: "password123".into(),
        seconds: 300,
        meter: None,
        cpu: Vec::new(),
        write: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{flag}: expected a positive whole number"))
        };
        match flag.as_str() {
            "--url" => options.url = value.trim_end_matches('/').to_owned(),
            "--fans" => options.fans = number(&value)? as usize,
            "--seats" => options.seats = number(&value)? as u32,
            "--dates" => options.dates = number(&value)? as u32,
            "--admin" => options.admin = value,
            "--password" => options.password = value,
            "--seconds" => options.seconds = number(&value)?,
            "--meter" => options.meter = Some(value.trim_end_matches('/').to_owned()),
            "--write" => options.write = Some(value),
            "--cpu" => {
                for pair in value.split(',') {
                    let (name, pid) = pair
                        .split_once('=')
                        .ok_or(format!("--cpu: expected name=pid, got {pair}"))?;
                    let pid = pid.parse().map_err(|_| format!("--cpu: bad pid {pid}"))?;
                    options.cpu.push((name.to_owned(), pid));
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

/// What a fan does once a hold succeeds; fixed by the fan's number so runs are comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Plan {
    /// Charge the balance, pay.
    Pay,
    /// Pay, then cancel the booking for a refund.
    PayThenCancel,
    /// Give the seats back at once.
    Release,
    /// Leave the line and let the hold run out.
    Abandon,
    /// Pay without charging enough: declined, and the hold is released.
    Decline,
}

impl Plan {
    fn of(fan: usize) -> Self {
        match fan % 20 {
            0..=10 => Plan::Pay,
            11..=12 => Plan::PayThenCancel,
            13..=14 => Plan::Release,
            15..=17 => Plan::Abandon,
            _ => Plan::Decline,
        }
    }

    /// How many seats side by side the fan wants: 1 to 4.
    fn seats(fan: usize) -> usize {
        [2, 1, 2, 3, 2, 4, 1, 2, 3, 2][fan % 10]
    }

    /// Half the fans aim at the front rows, where everyone collides.
    fn aims_at_front(fan: usize) -> bool {
        fan.is_multiple_of(2)
    }
}

/// Latencies per endpoint, in microseconds, and the count of 5xx answers.
#[derive(Default)]
struct Timings {
    samples: Mutex<BTreeMap<&'static str, Vec<u64>>>,
    server_errors: AtomicU64,
    requests: AtomicU64,
}

/// Live counters for the progress line.
#[derive(Default)]
struct Progress {
    entered: AtomicU64,
    admitted: AtomicU64,
    holds: AtomicU64,
    conflicts: AtomicU64,
    paid: AtomicU64,
    done: AtomicU64,
}

struct Api {
    http: Client,
    url: String,
    timings: Timings,
    progress: Progress,
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
        self.timings.requests.fetch_add(1, Relaxed);
        self.timings
            .samples
            .lock()
            .unwrap()
            .entry(name)
            .or_default()
            .push(elapsed);
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 500 {
            self.timings.server_errors.fetch_add(1, Relaxed);
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

    /// Every item of a paged list (`items`, `next_cursor`).
    async fn all_pages(
        &self,
        name: &'static str,
        path: &str,
        bearer: &str,
    ) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(cursor) => format!("{path}?limit=100&cursor={cursor}"),
                None => format!("{path}?limit=100"),
            };
            let page = self
                .call(
                    name,
                    Method::GET,
                    &page_path,
                    &[("authorization", bearer)],
                    None,
                )
                .await?;
            if page.status != 200 {
                return Err(format!("{name}: {} {}", page.status, page.body));
            }
            items.extend(page.body["items"].as_array().cloned().unwrap_or_default());
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(items),
            }
        }
    }
}

#[derive(Default, Debug)]
struct Outcome {
    admitted: bool,
    held: bool,
    paid: bool,
    cancelled: bool,
    declined: bool,
    conflicts: u32,
    sold_out: bool,
    gave_up: bool,
}

/// One fan: queue, wait, look, hold, then follow their plan.
async fn fan(
    api: &Api,
    number: usize,
    token: &str,
    concert_id: &str,
    deadline: Instant,
) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let place = api
        .call(
            "POST /queue/tokens",
            Method::POST,
            "/queue/tokens",
            &auth,
            Some(json!({ "concert_id": concert_id })),
        )
        .await?;
    api.progress.entered.fetch_add(1, Relaxed);
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
            outcome.gave_up = true;
            return Ok(outcome);
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
        // Poll about once a second, spread so that fans do not poll in lockstep.
        tokio::time::sleep(Duration::from_millis(800 + (number as u64 * 37) % 400)).await;
    }
    outcome.admitted = true;
    api.progress.admitted.fetch_add(1, Relaxed);
    let leave = || async {
        api.call(
            "DELETE /queue/tokens/current",
            Method::DELETE,
            "/queue/tokens/current",
            &headers,
            None,
        )
        .await
    };
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
    let wanted = Plan::seats(number);
    let mut hold = None;
    for attempt in 0..3 {
        if Instant::now() > deadline {
            outcome.gave_up = true;
            return Ok(outcome);
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
        let Some(seats) = pick(&free, wanted, number, attempt) else {
            outcome.sold_out = true;
            leave().await?;
            return Ok(outcome);
        };
        let reply = api
            .call(
                "POST /reservations",
                Method::POST,
                "/reservations",
                &headers,
                Some(json!({ "schedule_id": schedule_id, "seat_nos": seats })),
            )
            .await?;
        match reply.status {
            201 => {
                hold = Some(reply.body);
                break;
            }
            409 => {
                outcome.conflicts += 1;
                api.progress.conflicts.fetch_add(1, Relaxed);
            }
            _ => return Err(format!("hold: {} {}", reply.status, reply.body)),
        }
    }
    let Some(hold) = hold else {
        // Three conflicts in a row: give the place up for someone else.
        leave().await?;
        return Ok(outcome);
    };
    outcome.held = true;
    api.progress.holds.fetch_add(1, Relaxed);
    let reservation_id = hold["reservation_id"]
        .as_str()
        .ok_or(format!("hold: {hold}"))?
        .to_owned();
    let amount = hold["amount"].as_i64().unwrap_or(0);
    let plan = Plan::of(number);
    match plan {
        Plan::Release => {
            api.call(
                "DELETE /reservations/{id}",
                Method::DELETE,
                &format!("/reservations/{reservation_id}"),
                &auth,
                None,
            )
            .await?;
            leave().await?;
            return Ok(outcome);
        }
        Plan::Abandon => {
            leave().await?;
            return Ok(outcome);
        }
        Plan::Pay | Plan::PayThenCancel | Plan::Decline => {}
    }
    // A declining fan charges one won too little.
    let charge = if plan == Plan::Decline {
        amount - 1
    } else {
        amount
    };
    let charge_key = uuid::Uuid::new_v4().to_string();
    let charged = api
        .call(
            "POST /balance/charge",
            Method::POST,
            "/balance/charge",
            &[
                ("authorization", bearer.as_str()),
                ("idempotency-key", &charge_key),
            ],
            Some(json!({ "amount": charge })),
        )
        .await?;
    if charged.status != 200 {
        return Err(format!("charge: {} {}", charged.status, charged.body));
    }
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
    match paid.status {
        201 => {
            outcome.paid = true;
            api.progress.paid.fetch_add(1, Relaxed);
        }
        402 => {
            outcome.declined = true;
            leave().await?;
            return Ok(outcome);
        }
        _ => return Err(format!("pay: {} {}", paid.status, paid.body)),
    }
    if plan == Plan::PayThenCancel {
        let cancelled = api
            .call(
                "POST /reservations/{id}/cancel",
                Method::POST,
                &format!("/reservations/{reservation_id}/cancel"),
                &auth,
                None,
            )
            .await?;
        outcome.cancelled = cancelled.status == 200;
    }
    Ok(outcome)
}

/// `count` seats side by side from `free` (sorted seat numbers): the frontmost run for a fan
/// who aims at the front, a run at a spot picked from the fan's number otherwise. `None` when
/// no such run is left.
fn pick(free: &[u64], count: usize, fan: usize, attempt: usize) -> Option<Vec<u64>> {
    let runs: Vec<&[u64]> = free
        .windows(count)
        .filter(|w| w[count - 1] - w[0] == count as u64 - 1)
        .collect();
    if runs.is_empty() {
        return None;
    }
    let index = if Plan::aims_at_front(fan) {
        // The front few runs, so that fans aiming there collide often but not always.
        (fan / 2 + attempt) % runs.len().min(4)
    } else {
        (fan * 7919 + attempt * 104_729) % runs.len()
    };
    Some(runs[index].to_vec())
}

/// What the money check found for one fan.
fn check_ledger(balance: i64, entries: &[Value]) -> Result<(), String> {
    // Newest first on the wire; the chain reads oldest first.
    let mut running = 0;
    let mut net = 0;
    for entry in entries.iter().rev() {
        let (before, after, amount) = (
            entry["balance_before"].as_i64().unwrap_or(-1),
            entry["balance_after"].as_i64().unwrap_or(-1),
            entry["amount"].as_i64().unwrap_or(-1),
        );
        if before != running {
            return Err(format!(
                "gap: an entry starts at {before}, the one before ended at {running}"
            ));
        }
        let signed = match entry["type"].as_str() {
            Some("CHARGE") | Some("REFUND") => amount,
            Some("PAYMENT") => -amount,
            other => return Err(format!("unknown entry type {other:?}")),
        };
        if after != before + signed || after < 0 {
            return Err(format!("entry {before} → {after} does not apply {signed}"));
        }
        net += signed;
        running = after;
    }
    if balance != running || balance != net {
        return Err(format!(
            "balance {balance}, ledger ends at {running}, charges − payments + refunds = {net}"
        ));
    }
    Ok(())
}

/// What the fans' own records say after the on-sale.
struct Books {
    /// Reservations by status.
    statuses: BTreeMap<String, u64>,
    /// (schedule, seat) → how many confirmed reservations hold it.
    confirmed_seats: HashMap<(String, u64), u32>,
    confirmed_amount: i64,
    /// Fans whose balance is not what their ledger says.
    money_failures: Vec<String>,
    /// When the last hold still HELD runs out.
    held_until: Option<chrono::DateTime<chrono::Utc>>,
}

async fn ledgers_and_bookings(api: &Api, tokens: &[String]) -> Result<Books, String> {
    let mut books = Books {
        statuses: BTreeMap::new(),
        confirmed_seats: HashMap::new(),
        confirmed_amount: 0,
        money_failures: Vec::new(),
        held_until: None,
    };
    for token in tokens {
        let bearer = format!("Bearer {token}");
        for reservation in api
            .all_pages("GET /me/reservations", "/me/reservations", &bearer)
            .await?
        {
            let status = reservation["status"].as_str().unwrap_or("?").to_owned();
            if status == "HELD" {
                let expires = reservation["expires_at"]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                    .map(|at| at.with_timezone(&chrono::Utc));
                books.held_until = books.held_until.max(expires);
            }
            if status == "CONFIRMED" {
                books.confirmed_amount += reservation["amount"].as_i64().unwrap_or(0);
                for seat in reservation["seats"].as_array().into_iter().flatten() {
                    let key = (
                        reservation["schedule_id"].as_str().unwrap_or("").to_owned(),
                        seat["seat_no"].as_u64().unwrap_or(0),
                    );
                    *books.confirmed_seats.entry(key).or_default() += 1;
                }
            }
            *books.statuses.entry(status).or_default() += 1;
        }
        let balance = api
            .call(
                "GET /balance",
                Method::GET,
                "/balance",
                &[("authorization", &bearer)],
                None,
            )
            .await?
            .body["balance"]
            .as_i64()
            .unwrap_or(-1);
        let ledger = api
            .all_pages(
                "GET /balance/transactions",
                "/balance/transactions",
                &bearer,
            )
            .await?;
        if let Err(failure) = check_ledger(balance, &ledger) {
            books.money_failures.push(failure);
        }
    }
    Ok(books)
}

fn cpu_of(pids: &[(String, u32)]) -> Vec<(String, Option<u64>)> {
    pids.iter()
        .map(|(name, pid)| (name.clone(), cpu::cpu_ms(*pid)))
        .collect()
}

async fn meter_tally(http: &Client, meter: &str, reset: bool) -> Result<Tally, String> {
    let request = if reset {
        http.post(format!("{meter}/__meter/reset"))
    } else {
        http.get(format!("{meter}/__meter"))
    };
    request
        .send()
        .await
        .map_err(|e| format!("meter: {e}"))?
        .json()
        .await
        .map_err(|e| format!("meter: {e}"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let options = options()?;
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let api = Arc::new(Api {
        http: Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(options.fans.max(16))
            .build()
            .map_err(|e| e.to_string())?,
        url: options.url.clone(),
        timings: Timings::default(),
        progress: Progress::default(),
    });
    let admin = api.account(&options.admin, &options.password).await?;
    let now = chrono::Utc::now();
    let rows = options.seats.div_ceil(20);
    let concert = json!({
        "title": "Load test", "artist": "Load", "venue": "Loopback Arena", "category": "TEST",
        "booking_opens_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "booking_closes_at": (now + chrono::Duration::days(1)).to_rfc3339(),
        "schedules": (0..options.dates)
            .map(|d| json!({"starts_at": (now + chrono::Duration::days(2 + d as i64)).to_rfc3339()}))
            .collect::<Vec<_>>(),
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
        "concert {concert_id}: {} dates × {} seats, {} fans",
        options.dates,
        rows * 20,
        options.fans
    );

    // Sign-ups are not part of the on-sale: password hashing is slow on purpose, and a crowd
    // signs up over days, not in the first minute.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tokens: Vec<String> = stream::iter(0..options.fans)
        .map(|i| {
            let api = api.clone();
            let name = format!("load_{}_{i}", &run[..8]);
            async move { api.account(&name, "load-test-password").await }
        })
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    println!(
        "{} fans signed up and logged in; the on-sale starts",
        tokens.len()
    );

    // Everything from here on is the on-sale.
    api.timings.samples.lock().unwrap().clear();
    api.timings.requests.store(0, Relaxed);
    let meter_http = Client::new();
    if let Some(meter) = &options.meter {
        meter_tally(&meter_http, meter, true).await?;
    }
    let cpu_before = cpu_of(&options.cpu);
    let own_cpu_before = cpu::own_cpu_ms();
    let started = Instant::now();
    let ticker = {
        let api = api.clone();
        let fans = options.fans as u64;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let p = &api.progress;
                println!(
                    "{:>5.1} s  entered {}/{fans}  admitted {}  holds {}  conflicts {}  paid {}  done {}",
                    started.elapsed().as_secs_f64(),
                    p.entered.load(Relaxed),
                    p.admitted.load(Relaxed),
                    p.holds.load(Relaxed),
                    p.conflicts.load(Relaxed),
                    p.paid.load(Relaxed),
                    p.done.load(Relaxed),
                );
            }
        })
    };
    let outcomes = futures::future::join_all(tokens.iter().enumerate().map(|(i, token)| {
        let api = api.clone();
        let concert_id = concert_id.clone();
        async move {
            let outcome = fan(&api, i, token, &concert_id, deadline).await;
            api.progress.done.fetch_add(1, Relaxed);
            outcome
        }
    }))
    .await;
    let elapsed = started.elapsed();
    ticker.abort();
    let requests = api.timings.requests.load(Relaxed);
    // The latency table covers the on-sale, not the checks that follow it.
    let mut latencies = api.timings.samples.lock().unwrap().clone();
    let own_cpu = cpu::own_cpu_ms() - own_cpu_before;
    let cpu_after = cpu_of(&options.cpu);
    let tally = match &options.meter {
        Some(meter) => Some(meter_tally(&meter_http, meter, false).await?),
        None => None,
    };

    // --- checks, after the on-sale -----------------------------------------------------------
    let mut errors = Vec::new();
    let mut count = BTreeMap::<&str, u64>::new();
    for outcome in &outcomes {
        match outcome {
            Ok(o) => {
                for (name, yes) in [
                    ("admitted", o.admitted),
                    ("held seats", o.held),
                    ("paid", o.paid),
                    ("paid, then cancelled", o.cancelled),
                    ("declined (402)", o.declined),
                    ("found no seats left", o.sold_out),
                    ("still waiting at the deadline", o.gave_up),
                ] {
                    *count.entry(name).or_default() += yes as u64;
                }
                *count.entry("hold conflicts (409)").or_default() += o.conflicts as u64;
            }
            Err(err) => errors.push(err.clone()),
        }
    }
    // Abandoned holds run out by themselves: wait for the last of them (within the deadline),
    // so the final figures show them expired and their seats back on sale.
    let mut books = ledgers_and_bookings(&api, &tokens).await?;
    if let Some(last) = books.held_until {
        let wait =
            (last - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
        if Instant::now() + wait < deadline {
            println!(
                "waiting {:.0} s for abandoned holds to expire",
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
            books = ledgers_and_bookings(&api, &tokens).await?;
        }
    }
    let Books {
        statuses,
        confirmed_seats,
        confirmed_amount,
        money_failures,
        ..
    } = books;
    let double_booked = confirmed_seats.values().filter(|n| **n > 1).count();
    let sales = api
        .call(
            "GET /admin/concerts/{id}/sales",
            Method::GET,
            &format!("/admin/concerts/{concert_id}/sales"),
            &[("authorization", &bearer)],
            None,
        )
        .await?;
    let sold: i64 = sales.body["schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["sold_seats"].as_i64().unwrap_or(0))
        .sum();
    let revenue = sales.body["revenue"].as_i64().unwrap_or(-1);
    let server_errors = api.timings.server_errors.load(Relaxed);

    // --- report ------------------------------------------------------------------------------
    let mut out = String::new();
    out.push_str(&format!(
        "{} `load --fans {} --seats {} --dates {}`{}: the on-sale took {:.1} s, {requests} requests.\n\n",
        report::provenance(),
        options.fans,
        rows * 20,
        options.dates,
        stack_settings(),
        elapsed.as_secs_f64()
    ));
    out.push_str("| outcome | fans |\n|---|---:|\n");
    for (name, n) in &count {
        out.push_str(&format!("| {name} | {n} |\n"));
    }
    out.push_str("\n| reservations at the end, by status | count |\n|---|---:|\n");
    for (status, n) in &statuses {
        out.push_str(&format!("| {status} | {n} |\n"));
    }
    out.push_str(&format!(
        "\n| check | result |\n|---|---|\n\
         | seats sold (sales report) | {sold} |\n\
         | seats in confirmed reservations | {} |\n\
         | double bookings (a seat in two confirmed reservations) | {double_booked} |\n\
         | 5xx answers | {server_errors} |\n\
         | fans whose run failed | {} |\n\
         | money: balances equal to their ledgers | {} of {} |\n\
         | revenue (sales report) = confirmed amounts | {revenue} = {confirmed_amount} |\n",
        confirmed_seats.len(),
        errors.len(),
        tokens.len() - money_failures.len(),
        tokens.len(),
    ));
    out.push_str(
        "\nLatency as the client saw it (the local gateway, our handlers and the emulators):\n\n\
         | endpoint | count | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (name, samples) in latencies.iter_mut() {
        samples.sort_unstable();
        let ms = |p| report::percentile(samples, p) as f64 / 1000.0;
        out.push_str(&format!(
            "| `{name}` | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            samples.len(),
            ms(0.5),
            ms(0.95),
            ms(0.99),
            ms(1.0)
        ));
    }
    if let Some(tally) = &tally {
        out.push_str(
            "\nTime the emulators took per AWS request (the meter's view):\n\n\
             | AWS request | count | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|\n",
        );
        for (call, samples) in &tally.latency_us {
            let mut samples = samples.clone();
            samples.sort_unstable();
            let operation = call.split(' ').nth(1).unwrap_or("");
            let failed: u64 = tally
                .errors
                .iter()
                .filter(|(key, _)| key.split(' ').next() == Some(operation))
                .map(|(_, n)| n)
                .sum();
            out.push_str(&format!(
                "| {call} | {} | {:.1} | {:.1} | {failed} |\n",
                samples.len(),
                report::percentile(&samples, 0.5) as f64 / 1000.0,
                report::percentile(&samples, 0.99) as f64 / 1000.0,
            ));
        }
        out.push_str("\nPartition heat over the on-sale:\n\n");
        out.push_str(&report::heat(tally, 10));
        out.push_str(&report::entry_spread(tally));
        if let Some((key, unit_share, write_share)) = report::hottest_write_share(tally) {
            out.push_str(&format!(
                "\nThe hottest partition key is `{}` (a `{}` key): {:.1}% of all write units, \
                 {:.1}% of all item writes.\n",
                report::shorten(&key),
                report::entity(&key),
                unit_share * 100.0,
                write_share * 100.0
            ));
        }
    }
    if !options.cpu.is_empty() {
        out.push_str(&format!(
            "\nCPU time over the on-sale ({requests} API requests):\n\n\
             | process | CPU s | share | CPU ms per API request |\n|---|---:|---:|---:|\n"
        ));
        let mut rows: Vec<(String, u64)> = cpu_before
            .iter()
            .zip(&cpu_after)
            .filter_map(|((name, before), (_, after))| Some((name.clone(), (*after)? - (*before)?)))
            .collect();
        rows.push(("load (the fans' client)".into(), own_cpu));
        let total: u64 = rows.iter().map(|(_, ms)| ms).sum();
        for (name, ms) in rows {
            out.push_str(&format!(
                "| {name} | {:.1} | {} | {:.2} |\n",
                ms as f64 / 1000.0,
                report::share(ms, total),
                ms as f64 / requests.max(1) as f64
            ));
        }
    }
    println!("\n{out}");
    for err in errors.iter().take(10) {
        eprintln!("error: {err}");
    }
    for failure in money_failures.iter().take(10) {
        eprintln!("money: {failure}");
    }
    if let Some(path) = &options.write {
        report::write_section(Path::new(path), "onsale", &out)
            .map_err(|e| format!("{path}: {e}"))?;
        println!("(written to {path}, section onsale)");
    }
    let sold_matches = sold == confirmed_seats.len() as i64 && revenue == confirmed_amount;
    if double_booked > 0
        || server_errors > 0
        || !errors.is_empty()
        || !money_failures.is_empty()
        || !sold_matches
    {
        return Err("the on-sale broke a rule: see the checks above".into());
    }
    Ok(())
}

/// The stack's settings that shape the heat, as the environment gives them to both (see
/// infra/perf.sh), for the report's first line.
fn stack_settings() -> String {
    let shown: Vec<String> = ["QUEUE_ENTRY_SHARDS", "QUEUE_MAX_ACTIVE", "HOLD_TTL_SECONDS"]
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok()?;
            Some(format!("{name}={value}"))
        })
        .collect();
    if shown.is_empty() {
        String::new()
    } else {
        format!(" with {}", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_seats_side_by_side_are_free_should_pick_a_run() {
        let free = [1, 2, 3, 5, 6, 9];
        let run = pick(&free, 2, 1, 0).unwrap();
        assert_eq!(run.len(), 2);
        assert_eq!(run[1], run[0] + 1);
        assert_eq!(pick(&free, 3, 0, 0), Some(vec![1, 2, 3]));
        assert_eq!(pick(&free, 4, 0, 0), None);
    }

    #[test]
    fn when_ledger_chains_should_pass_and_when_gapped_should_fail() {
        let entry = |kind: &str, amount: i64, before: i64, after: i64| json!({"type": kind, "amount": amount, "balance_before": before, "balance_after": after});
        // Newest first, as the API lists them.
        let good = [
            entry("REFUND", 50, 0, 50),
            entry("PAYMENT", 100, 100, 0),
            entry("CHARGE", 100, 0, 100),
        ];
        assert_eq!(check_ledger(50, &good), Ok(()));
        assert!(check_ledger(40, &good).is_err());
        let gapped = [entry("PAYMENT", 100, 90, -10), entry("CHARGE", 100, 0, 100)];
        assert!(check_ledger(-10, &gapped).is_err());
    }

    #[test]
    fn when_fans_are_numbered_should_mix_every_plan() {
        let plans: std::collections::BTreeSet<Plan> = (0..20).map(Plan::of).collect();
        assert_eq!(plans.len(), 5);
        let sizes: std::collections::BTreeSet<usize> = (0..10).map(Plan::seats).collect();
        assert_eq!(sizes, [1, 2, 3, 4].into());
    }
}
