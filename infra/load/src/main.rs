//! `load`: an on-sale in miniature against a running ticketing API, healthy or under faults.
//!
//! ```text
//! cargo run --release -p load -- [--url http://127.0.0.1:3000] [--fans 500] [--seats 200]
//!     [--dates 1] [--admin admin] [--password password123] [--seconds 300]
//!     [--meter http://127.0.0.1:PORT] [--cpu name=pid,name=pid]
//!     [--faults SPEC] [--seed N] [--kills N --kill-pid-file FILE]
//!     [--write FILE] [--section NAME]
//! ```
//!
//! An admin creates a concert with `--seats` seats on each of `--dates` dates; `--fans` users
//! sign up and log in. Then the on-sale: every fan enters the queue at the same moment, waits
//! to be admitted (following the line, as the practice page does, from the public progress
//! document, fetched once a second for the whole crowd as the edge would, and asking the API
//! only when admission has reached their place), reads the dates and the seat map of the first date, and tries to hold 1 to 4
//! seats side by side (half of them aim at the front rows, so many want the same seats; up to
//! three tries on conflicts). What each fan then does is fixed by their number: most charge
//! their balance and pay, some pay and cancel for a refund, some release the hold, some walk
//! away and let it expire, some pay without enough balance and are declined. Every request is
//! retried as the contract allows a client to (a 503 after its `Retry-After`, a lost answer at
//! once, with the same `Idempotency-Key`), and every attempt is kept.
//!
//! With `--faults` (which needs `--meter`, a `perf meter` in front of the emulators) the meter
//! injects those faults for the whole on-sale (see `perf::faults`), and `--kills N` kills the
//! service process named in `--kill-pid-file` N times with SIGKILL at seeded moments (whoever
//! started it restarts it). Faults stop when every fan is done; then the line must drain and
//! every hold end.
//!
//! The report: outcomes, double bookings (must be 0), 500 answers (must be 0), the money check
//! (every fan's balance equals their ledger, chained without a gap), sales against confirmed
//! amounts, every answer checked against the final state, the positions fans were shown
//! against the order they were admitted in, and whether everyone finished; latency percentiles
//! per endpoint; with `--meter` the partition heat and the faults injected; with `--cpu` the
//! CPU time of the named processes. `--write` puts it in that markdown file's `--section`
//! (default `onsale`).
//!
//! Bounded: it stops after `--seconds` whatever happens. Point it only at your own deployment.
//! `infra/perf.sh onsale` and `infra/perf.sh chaos` start everything they need and run it.

mod checks;
mod client;
mod fan;

use client::{Answer, Api, Call};
use fan::{Journal, Outcome, Progress, Setting};
use futures::stream::{self, StreamExt};
use perf::faults::SplitMix64;
use perf::meter::Tally;
use perf::{cpu, report};
use reqwest::{Client, Method};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
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
    faults: Option<String>,
    /// Faults stop this many seconds into the on-sale (default: at its end); the liveness
    /// checks then ask that the line drains and every hold ends before the deadline.
    fault_seconds: Option<u64>,
    seed: u64,
    kills: u32,
    kill_pid_file: Option<String>,
    write: Option<String>,
    section: String,
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
        faults: None,
        fault_seconds: None,
        seed: 1,
        kills: 0,
        kill_pid_file: None,
        write: None,
        section: "onsale".into(),
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
            "--faults" => options.faults = Some(value),
            "--fault-seconds" => options.fault_seconds = Some(number(&value)?),
            "--seed" => options.seed = number(&value)?,
            "--kills" => options.kills = value.parse().map_err(|_| "--kills: a number")?,
            "--kill-pid-file" => options.kill_pid_file = Some(value),
            "--write" => options.write = Some(value),
            "--section" => options.section = value,
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
    if options.faults.is_some() && options.meter.is_none() {
        return Err("--faults needs --meter: the meter injects them".into());
    }
    if options.kills > 0 && options.kill_pid_file.is_none() {
        return Err("--kills needs --kill-pid-file".into());
    }
    Ok(options)
}

/// A setting of the service, as the environment gives it to both (see infra/perf.sh).
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

async fn set_faults(http: &Client, meter: &str, spec: &str, seed: u64) -> Result<(), String> {
    let response = http
        .post(format!("{meter}/__meter/faults"))
        .json(&json!({ "spec": spec, "seed": seed }))
        .send()
        .await
        .map_err(|e| format!("meter: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "meter refused the faults: {}",
            response.text().await.unwrap_or_default()
        ));
    }
    Ok(())
}

/// Kills the process named in `pid_file` `kills` times with SIGKILL, at moments spread over
/// `window` and drawn from `seed`; returns when each kill happened (seconds into the on-sale).
async fn killer(pid_file: String, kills: u32, window: Duration, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed ^ 0x6b69_6c6c);
    let started = Instant::now();
    let mut at: Vec<f64> = (0..kills)
        .map(|_| 2.0 + rng.unit() * window.as_secs_f64().max(3.0))
        .collect();
    at.sort_by(f64::total_cmp);
    let mut done = Vec::new();
    for moment in at {
        let wait = Duration::from_secs_f64(moment).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        let Ok(pid) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        let pid = pid.trim().to_owned();
        let killed = tokio::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .await
            .is_ok_and(|status| status.success());
        if killed {
            println!(
                "{:>5.1} s  killed the service (pid {pid})",
                started.elapsed().as_secs_f64()
            );
            done.push(started.elapsed().as_secs_f64());
        }
    }
    done
}

/// Signs up (unless the name exists) and logs in; returns an access token.
async fn account(api: &Api, username: &str, password: &str) -> Result<String, String> {
    let body = json!({"username": username, "password": password, "name": username});
    let signup = api
        .call(Call {
            endpoint: "POST /users",
            method: Method::POST,
            path: "/users".into(),
            headers: &[],
            body: Some(body),
        })
        .await;
    match signup.last().status() {
        Some(201) | Some(409) => {}
        _ => return Err(format!("signup {username}: {:?}", signup.last())),
    }
    let body = json!({"username": username, "password": password});
    let login = api
        .call(Call {
            endpoint: "POST /auth/login",
            method: Method::POST,
            path: "/auth/login".into(),
            headers: &[],
            body: Some(body),
        })
        .await;
    login.last().body()["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or(format!("login {username}: {:?}", login.last()))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let options = options()?;
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let api = Arc::new(Api::new(&options.url, options.fans, deadline)?);
    let progress = Arc::new(Progress::default());
    let admin = account(&api, &options.admin, &options.password).await?;
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
        .call(Call {
            endpoint: "POST /admin/concerts",
            method: Method::POST,
            path: "/admin/concerts".into(),
            headers: &[("authorization", &bearer)],
            body: Some(concert),
        })
        .await;
    let concert_id = created.last().body()["concert_id"]
        .as_str()
        .ok_or(format!("create concert: {:?}", created.last()))?
        .to_owned();
    let ticket_limit = created.last().body()["ticket_limit"].as_u64().unwrap_or(4);
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
            async move { account(&api, &name, "load-test-password").await }
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
    api.record.samples.lock().unwrap().clear();
    api.record.history.lock().unwrap().clear();
    api.record.requests.store(0, Relaxed);
    api.record.internal_errors.store(0, Relaxed);
    let meter_http = Client::new();
    if let Some(meter) = &options.meter {
        meter_tally(&meter_http, meter, true).await?;
        if let Some(spec) = &options.faults {
            set_faults(&meter_http, meter, spec, options.seed).await?;
            println!("faults on: {spec} (seed {})", options.seed);
        }
    }
    // Faults for a window of the on-sale, then the service recovers while the fans finish.
    let fault_window = match (&options.meter, &options.faults, options.fault_seconds) {
        (Some(meter), Some(_), Some(seconds)) => {
            let (http, meter, seed) = (meter_http.clone(), meter.clone(), options.seed);
            Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                match set_faults(&http, &meter, "", seed).await {
                    Ok(()) => println!("faults off after {seconds} s; the on-sale goes on"),
                    Err(err) => eprintln!("could not turn the faults off: {err}"),
                }
            }))
        }
        _ => None,
    };
    let killing = options.kill_pid_file.clone().map(|file| {
        tokio::spawn(killer(
            file,
            options.kills,
            Duration::from_secs(20),
            options.seed,
        ))
    });
    let cpu_before = cpu_of(&options.cpu);
    let own_cpu_before = cpu::own_cpu_ms();
    let started = Instant::now();
    let ticker = {
        let progress = progress.clone();
        let fans = options.fans as u64;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let p = &progress;
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
    let setting_ref = Setting {
        api: &api,
        progress: &progress,
        concert_id: &concert_id,
        active_ttl_seconds: setting("QUEUE_ACTIVE_TTL_SECONDS", 600),
        hold_ttl_seconds: setting("HOLD_TTL_SECONDS", 300),
        fans: tokens.len() as u64,
        deadline,
    };
    let runs = futures::future::join_all(tokens.iter().enumerate().map(|(i, token)| {
        let setting = &setting_ref;
        async move {
            let mut journal = Journal::default();
            let outcome = fan::fan(setting, i, token, &mut journal).await;
            setting.progress.done.fetch_add(1, Relaxed);
            (outcome, journal)
        }
    }))
    .await;
    let elapsed = started.elapsed();
    ticker.abort();
    if let Some(window) = fault_window {
        window.abort();
    }
    // Faults stop here: what follows is the service recovering, then the checks.
    if let (Some(meter), Some(_)) = (&options.meter, &options.faults) {
        set_faults(&meter_http, meter, "", options.seed).await?;
    }
    let kills = match killing {
        Some(task) => {
            task.abort();
            task.await.unwrap_or_default()
        }
        None => Vec::new(),
    };
    let requests = api.record.requests.load(Relaxed);
    let internal_errors = api.record.internal_errors.load(Relaxed);
    // The tables cover the on-sale, not the checks that follow it.
    let mut latencies = api.record.samples.lock().unwrap().clone();
    let history = api.record.history.lock().unwrap().clone();
    let own_cpu = cpu::own_cpu_ms() - own_cpu_before;
    let cpu_after = cpu_of(&options.cpu);
    let tally = match &options.meter {
        Some(meter) => Some(meter_tally(&meter_http, meter, false).await?),
        None => None,
    };
    let (outcomes, journals): (Vec<Result<Outcome, String>>, Vec<Journal>) =
        runs.into_iter().unzip();

    // --- checks, after the on-sale -----------------------------------------------------------
    // The checks read every fan's books, retrying as the fans did, with time of their own.
    let deadline = Instant::now()
        + Duration::from_secs(
            setting("HOLD_TTL_SECONDS", 300) + setting("ADMIT_INTERVAL_SECONDS", 1) + 120,
        );
    api.set_deadline(deadline);
    let mut errors = Vec::new();
    let mut count = BTreeMap::<&str, u64>::new();
    for (fan, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(o) => {
                for (name, yes) in [
                    ("admitted", o.admitted),
                    ("held seats", o.held),
                    ("paid", o.paid),
                    ("paid, then cancelled", o.cancelled),
                    ("declined (402)", o.declined),
                    ("hold ran out before paying (410)", o.hold_ran_out),
                    ("found no seats left", o.sold_out),
                    ("joined the waiting list", o.waitlisted),
                    ("were offered seats from the waiting list", o.offered),
                    (
                        "tried to pass the ticket limit and were refused (409)",
                        o.refused_past_limit,
                    ),
                    ("still waiting at the deadline", o.gave_up),
                ] {
                    *count.entry(name).or_default() += yes as u64;
                }
                *count.entry("hold conflicts (409)").or_default() += o.conflicts as u64;
                if o.reentered > 0 {
                    *count
                        .entry("took a new place after theirs ended")
                        .or_default() += 1;
                }
            }
            Err(err) => errors.push(format!("fan {fan}: {err}")),
        }
    }
    // Abandoned holds run out by themselves: wait for the last of them and one sweep (within
    // the deadline), so the final figures show them expired and their seats back on sale.
    let mut accounts = checks::accounts(&api, &tokens, &journals).await?;
    let mut books = checks::books(&accounts);
    let sweep_ms = setting("ADMIT_INTERVAL_SECONDS", 1) as i64 * 1000;
    if let Some(last) = books.held_until {
        let wait_ms = last + sweep_ms + 1_000 - chrono::Utc::now().timestamp_millis();
        let wait = Duration::from_millis(wait_ms.max(0) as u64);
        if Instant::now() + wait < deadline {
            println!(
                "waiting {:.0} s for abandoned holds to expire",
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
            accounts = checks::accounts(&api, &tokens, &journals).await?;
            books = checks::books(&accounts);
        }
    }
    let mut honesty = checks::honesty(&journals, &accounts, ticket_limit);
    checks::waitlist_order(&journals, &accounts, &mut honesty);
    let shards = setting("QUEUE_ENTRY_SHARDS", 1);
    let positions = checks::positions(&journals, shards);
    let still_held = books.statuses.get("HELD").copied().unwrap_or(0);
    let sales_chain = api
        .call(Call {
            endpoint: "GET /admin/concerts/{id}/sales",
            method: Method::GET,
            path: format!("/admin/concerts/{concert_id}/sales"),
            headers: &[("authorization", &bearer)],
            body: None,
        })
        .await;
    let sales = sales_chain.last().body().clone();
    let sold: i64 = sales["schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["sold_seats"].as_i64().unwrap_or(0))
        .sum();
    let held_in_sales: i64 = sales["schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["held_seats"].as_i64().unwrap_or(0))
        .sum();
    let revenue = sales["revenue"].as_i64().unwrap_or(-1);
    // Revenue is payments less refunds: the confirmed bookings and the fees cancellations kept.
    let fees = sales["fees"].as_i64().unwrap_or(0);
    let double_booked = books.confirmed_seats.values().filter(|n| **n > 1).count();
    let busy_without_retry_after = history
        .iter()
        .filter(|a| a.answer.status() == Some(503) && a.retry_after.is_none())
        .count();
    let stuck = count
        .get("still waiting at the deadline")
        .copied()
        .unwrap_or(0);

    // --- report ------------------------------------------------------------------------------
    let mut out = String::new();
    let faults_line = match &options.faults {
        Some(spec) => format!(
            ", faults `{spec}` (seed {}){}{}",
            options.seed,
            match options.fault_seconds {
                Some(seconds) if elapsed.as_secs() > seconds => {
                    format!(" for the first {seconds} s")
                }
                _ => String::new(),
            },
            if kills.is_empty() {
                String::new()
            } else {
                format!(", the service killed {} times", kills.len())
            }
        ),
        None if !kills.is_empty() => format!(", the service killed {} times", kills.len()),
        None => String::new(),
    };
    out.push_str(&format!(
        "{} `load --fans {} --seats {} --dates {}`{}{faults_line}: the on-sale took {:.1} s, {requests} requests.\n\n",
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
    for (status, n) in &books.statuses {
        out.push_str(&format!("| {status} | {n} |\n"));
    }
    let money_ok = tokens.len() - books.money_failures.len();
    out.push_str(&format!(
        "\n| check | result |\n|---|---|\n\
         | seats sold (sales report) | {sold} |\n\
         | seats in confirmed reservations | {} |\n\
         | double bookings (a seat in two confirmed reservations) | {double_booked} |\n\
         | `500 INTERNAL` answers | {internal_errors} |\n\
         | `503` answers without `Retry-After` | {busy_without_retry_after} |\n\
         | fans whose run failed | {} |\n\
         | fans still waiting at the deadline | {stuck} |\n\
         | holds not ended after their time and one sweep | {still_held} (seats held in the sales report: {held_in_sales}) |\n\
         | money: balances equal to their ledgers | {money_ok} of {} |\n\
         | revenue (sales report) = confirmed amounts + cancellation fees | {revenue} = {} + {fees} |\n\
         | answers checked against the final state | {} checks, {} broken |\n\
         | requests left without a definite answer at the deadline | {} |\n",
        books.confirmed_seats.len(),
        errors.len(),
        tokens.len(),
        books.confirmed_amount,
        honesty.checked.values().sum::<u64>(),
        honesty.broken_count(),
        honesty.unknown,
    ));
    out.push_str(&answers_table(&history));
    out.push_str(&honesty_table(&honesty));
    out.push_str(&positions_table(
        &positions,
        shards,
        options.faults.is_some(),
    ));
    if let Some(tally) = &tally {
        if !tally.faults.is_empty() {
            out.push_str("\nFaults the meter injected:\n\n| fault | count |\n|---|---:|\n");
            for (fault, n) in &tally.faults {
                out.push_str(&format!("| {fault} | {n} |\n"));
            }
        }
    }
    out.push_str(
        "\nLatency as the client saw it (the local gateway, our handlers and the emulators; every attempt):\n\n\
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
        if options.faults.is_none() {
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
    for failure in books.money_failures.iter().take(10) {
        eprintln!("money: {failure}");
    }
    for (rule, examples) in &honesty.broken {
        for example in examples.iter().take(5) {
            eprintln!("dishonest ({rule}): {example}");
        }
    }
    for (name, list) in [
        ("out of order", &positions.out_of_order),
        ("understated", &positions.understated),
        ("shared position", &positions.shared_positions),
        ("against arrival", &positions.against_arrival),
    ] {
        for example in list.iter().take(5) {
            eprintln!("positions ({name}): {example}");
        }
    }
    if let Some(path) = &options.write {
        report::write_section(Path::new(path), &options.section, &out)
            .map_err(|e| format!("{path}: {e}"))?;
        println!("(written to {path}, section {})", options.section);
    }
    let sold_matches =
        sold == books.confirmed_seats.len() as i64 && revenue == books.confirmed_amount + fees;
    // Under injected faults a place's message may reach the admitter only after its number has
    // been missing for the grace (lost and stalled receives leave messages in flight, hidden
    // for the receive visibility): the merge then stops waiting for that shard, and the place
    // is admitted late rather than passed over, after later arrivals of other shards. Reported,
    // and judged only in runs without injected faults (docs/RELIABILITY.md).
    let late_arrivals_broken = if options.faults.is_some() {
        0
    } else {
        positions.against_arrival.len()
    };
    let positions_broken = positions.out_of_order.len()
        + positions.understated.len()
        + positions.shared_positions.len()
        + late_arrivals_broken;
    if double_booked > 0
        || internal_errors > 0
        || busy_without_retry_after > 0
        || !errors.is_empty()
        || !books.money_failures.is_empty()
        || !sold_matches
        || honesty.broken_count() > 0
        || positions_broken > 0
        || stuck > 0
        || still_held > 0
    {
        return Err("the on-sale broke a rule: see the checks above".into());
    }
    Ok(())
}

fn cpu_of(pids: &[(String, u32)]) -> Vec<(String, Option<u64>)> {
    pids.iter()
        .map(|(name, pid)| (name.clone(), cpu::cpu_ms(*pid)))
        .collect()
}

/// Every attempt's answer by endpoint: done (2xx), refused (4xx), busy (503), internal (500),
/// no answer.
fn answers_table(history: &[client::Attempt]) -> String {
    let mut rows: BTreeMap<&str, [u64; 6]> = BTreeMap::new();
    for attempt in history {
        let row = rows.entry(attempt.endpoint).or_default();
        let column = match &attempt.answer {
            Answer::Status(status, _) if *status < 300 => 0,
            Answer::Status(429, _) => 2,
            Answer::Status(status, _) if *status < 500 => 1,
            Answer::Status(503, _) => 3,
            Answer::Status(500, _) => 4,
            Answer::Status(_, _) | Answer::Lost(_) => 5,
        };
        row[column] += 1;
    }
    let mut out = String::from(
        "\nAnswers to every attempt, by endpoint:\n\n\
         | endpoint | 2xx | 4xx | 429 | 503 | 500 | other 5xx or no answer |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (endpoint, row) in rows {
        out.push_str(&format!(
            "| `{endpoint}` | {} | {} | {} | {} | {} | {} |\n",
            row[0], row[1], row[2], row[3], row[4], row[5]
        ));
    }
    out
}

fn honesty_table(honesty: &checks::Honesty) -> String {
    let mut out = String::from(
        "\nEvery answer against the final state:\n\n| rule | checked | broken |\n|---|---:|---:|\n",
    );
    for (rule, checked) in &honesty.checked {
        let broken = honesty.broken.get(rule).map_or(0, Vec::len);
        out.push_str(&format!("| {rule} | {checked} | {broken} |\n"));
    }
    out
}

fn positions_table(positions: &checks::Positions, shards: u64, faults: bool) -> String {
    let mut over = positions.overstatement.clone();
    let mut errors = positions.wait_errors.clone();
    let mut waits = positions.actual_waits.clone();
    over.sort_unstable();
    errors.sort_unstable();
    waits.sort_unstable();
    format!(
        "\nPositions shown against admissions ({} fans admitted, {} polls while waiting, {shards} entry shard(s)):\n\n\
         | check | result |\n|---|---|\n\
         | pairs of one shard admitted out of number order | {} |\n\
         | polls showing fewer ahead than were admitted ahead afterwards | {} |\n\
         | polls showing one position to two fans between the same admissions (one shard) | {} |\n\
         | fans admitted after someone who asked more than a second after them | {}{} |\n\
         | positions above those admitted ahead afterwards (leavers and passed places), p50 / max | {} / {} |\n\
         | estimated wait against the wait that followed, abs. error p50 / p90 s (actual p50 / p90 s) | {} / {} ({} / {}) |\n",
        positions.admitted,
        positions.polls,
        positions.out_of_order.len(),
        positions.understated.len(),
        positions.shared_positions.len(),
        positions.against_arrival.len(),
        match positions.against_arrival_late_ms.iter().max() {
            Some(late) if faults => format!(
                " (under injected faults: reported, not judged; the latest by {:.1} s)",
                *late as f64 / 1000.0
            ),
            _ => String::new(),
        },
        report::percentile(&over, 0.5),
        over.last().copied().unwrap_or(0),
        report::percentile(&errors, 0.5),
        report::percentile(&errors, 0.9),
        report::percentile(&waits, 0.5),
        report::percentile(&waits, 0.9),
    )
}

/// The stack's settings that shape the run, as the environment gives them to both (see
/// infra/perf.sh), for the report's first line.
fn stack_settings() -> String {
    let shown: Vec<String> = [
        "QUEUE_ENTRY_SHARDS",
        "QUEUE_MAX_ACTIVE",
        "HOLD_TTL_SECONDS",
        "SQS_SERVED_BY",
    ]
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
