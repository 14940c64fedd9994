//! `perf`: the performance instruments. Run through `infra/perf.sh`, which builds what each one
//! needs and starts the emulators; the environment must point the AWS SDK at them.
//!
//! ```text
//! perf calls      [--write FILE]                    AWS calls per endpoint
//! perf cold-start --bin-dir DIR [--runs N] [--only a,b] [--write FILE]
//!                                                   init, first invocation, peak RSS per binary
//! perf meter      [--port N] [--faults SPEC --seed N]
//!                                                   a counting proxy for another process,
//!                                                   injecting faults (perf::faults) if asked
//! perf simulate   [--fans N] [--first-second N] [--shards N] [--seats N] [--dates N]
//!                 [--max-active N] [--admit-per-second N] [--admit-interval S]
//!                 [--events-per-call N]
//!                 [--entry function-url|api-gateway] [--horizon S] [--seed N]
//!                 [--table-writes N] [--table-reads N] [--entry-provisioned N]
//!                 [--compare N] [--check-onsale DOC] [--section NAME] [--write FILE]
//!                                                   the whole on-sale on a virtual clock against
//!                                                   a model of AWS's limits (perf::simulate);
//!                                                   --compare: also at N fans, for what does
//!                                                   and does not grow with the crowd
//! perf section    NAME [--write FILE]               standard input, after the provenance
//!                                                   line, as section NAME (for instruments
//!                                                   written in shell: the Lambda builds)
//! ```

use perf::{calls, cold_start, meter, practice_cost, report, simulate};
use std::path::{Path, PathBuf};
use std::time::Duration;

type Result<T> = std::result::Result<T, String>;

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return fail(
            "usage: perf calls|cold-start|meter|section [options] (see infra/perf.sh)".into(),
        );
    }
    let command = args.remove(0);
    let outcome = match command.as_str() {
        "calls" => run_calls(&Flags::parse(&args, &["--write"])).await,
        "cold-start" => {
            cold_start_all(&Flags::parse(
                &args,
                &["--bin-dir", "--runs", "--only", "--tls", "--write"],
            ))
            .await
        }
        "meter" => run_meter(&Flags::parse(&args, &["--port", "--faults", "--seed"])).await,
        "section" => section_from_stdin(&args),
        "simulate" => run_simulate(&Flags::parse(
            &args,
            &[
                "--fans",
                "--first-second",
                "--shards",
                "--seats",
                "--dates",
                "--max-active",
                "--admit-per-second",
                "--events-per-call",
                "--entry",
                "--horizon",
                "--seed",
                "--compare",
                "--table-writes",
                "--table-reads",
                "--entry-provisioned",
                "--section",
                "--admit-interval",
                "--check-onsale",
                "--write",
            ],
        )),
        _ => Err(format!("unknown command {command}")),
    };
    if let Err(err) = outcome {
        fail(err);
    }
}

fn fail(message: String) {
    eprintln!("perf: {message}");
    std::process::exit(2);
}

struct Flags(Vec<(String, String)>);

impl Flags {
    fn parse(args: &[String], known: &[&str]) -> Self {
        let mut flags = Vec::new();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if !known.contains(&flag.as_str()) {
                fail(format!("unknown flag {flag}; known: {}", known.join(" ")));
            }
            match args.next() {
                Some(value) => flags.push((flag.clone(), value.clone())),
                None => fail(format!("{flag} needs a value")),
            }
        }
        Self(flags)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(flag, _)| flag == name)
            .map(|(_, v)| v.as_str())
    }
}

fn run_simulate(flags: &Flags) -> Result<()> {
    let number = |name: &str, default: u64| -> Result<u64> {
        flags.get(name).map_or(Ok(default), |v| {
            v.replace(['_', ','], "")
                .parse()
                .map_err(|_| format!("{name} must be a number, not {v}"))
        })
    };
    let defaults = simulate::Settings::default();
    let mut settings = simulate::Settings {
        fans: number("--fans", defaults.fans.into())? as u32,
        first_second: number("--first-second", defaults.first_second.into())? as u32,
        shards: number("--shards", defaults.shards.into())?.clamp(1, 256) as u32,
        seats: number("--seats", defaults.seats.into())? as u32,
        dates: number("--dates", defaults.dates.into())?.max(1) as u32,
        max_active: number("--max-active", defaults.max_active.into())?.max(1) as u32,
        admit_per_second: number("--admit-per-second", defaults.admit_per_second.into())? as u32,
        events_per_call: number("--events-per-call", defaults.events_per_call.into())?.clamp(1, 10)
            as u32,
        horizon_seconds: number("--horizon", defaults.horizon_seconds.into())? as u32,
        admit_interval_seconds: number("--admit-interval", defaults.admit_interval_seconds.into())?
            .clamp(1, 60) as u32,
        seed: number("--seed", defaults.seed)?,
        ..defaults
    };
    let quotas = &mut settings.quotas;
    quotas.table_writes = number("--table-writes", quotas.table_writes.into())?.max(1_000) as u32;
    quotas.table_reads = number("--table-reads", quotas.table_reads.into())?.max(3_000) as u32;
    quotas.entry_provisioned =
        number("--entry-provisioned", quotas.entry_provisioned.into())? as u32;
    settings.entry = match flags.get("--entry").unwrap_or("function-url") {
        "function-url" => simulate::EntryPath::FunctionUrl,
        "api-gateway" => simulate::EntryPath::ApiGateway,
        other => {
            return Err(format!(
                "--entry must be function-url or api-gateway, not {other}"
            ))
        }
    };
    let started = std::time::Instant::now();
    let main = simulate::simulate(settings.clone());
    let took = started.elapsed().as_secs_f64();
    let mut body = format!(
        "{}\n\n{}\nSimulated in {took:.0} s.\n",
        report::provenance(),
        main.table()
    );
    if let Some(doc) = flags.get("--check-onsale") {
        let text = std::fs::read_to_string(doc).map_err(|e| format!("{doc}: {e}"))?;
        body = format!(
            "{}\n\n{}",
            report::provenance(),
            simulate::check_against_onsale(&main, &text)
        );
    }
    if let Some(compare) = flags.get("--compare") {
        let fans: u32 = compare
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| format!("--compare must be a number, not {compare}"))?;
        let scale = f64::from(fans) / f64::from(settings.fans.max(1));
        let small = simulate::simulate(simulate::Settings {
            fans,
            first_second: (f64::from(settings.first_second) * scale) as u32,
            ..settings.clone()
        });
        body.push_str(&simulate::compare(&small, &main));
    }
    println!("{body}");
    write(flags, flags.get("--section").unwrap_or("simulate"), &body)
}

fn section_from_stdin(args: &[String]) -> Result<()> {
    let (name, rest) = args.split_first().ok_or("section needs a NAME")?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| e.to_string())?;
    let body = format!("{} {text}", report::provenance());
    print!("{body}");
    write(&Flags::parse(rest, &["--write"]), name, &body)
}

fn write(flags: &Flags, section: &str, body: &str) -> Result<()> {
    if let Some(path) = flags.get("--write") {
        report::write_section(Path::new(path), section, body)
            .map_err(|e| format!("{path}: {e}"))?;
        println!("(written to {path}, section {section})");
    }
    Ok(())
}

async fn run_calls(flags: &Flags) -> Result<()> {
    let meter = meter::interpose().await?;
    let api = e2e_tests::TestApi::start().await;
    let steps = calls::walk(&api, &meter).await;
    let over: Vec<_> = steps
        .iter()
        .filter(|step| step.tally.dynamodb_round_trips() > step.budget)
        .map(|step| step.name)
        .collect();
    let body = format!(
        "{}\n\n{}\n{}",
        report::provenance(),
        calls::table(&steps),
        if over.is_empty() {
            "Every request is within its budget of round trips.".to_owned()
        } else {
            format!("Over budget: {}.", over.join(", "))
        }
    );
    println!("{body}");
    write(flags, "calls", &body)?;

    // A practice run, one fan through the whole of it at each difficulty, on a clock the walk
    // moves (the line's wait is simulated time).
    let api = e2e_tests::TestApi::start_with_manual_clock(|_| {}, false).await;
    let runs = practice_cost::walk(&api, &meter).await;
    let body = format!(
        "{}\n\n{}",
        report::provenance(),
        practice_cost::table(&runs)
    );
    println!("{body}");
    write(flags, "practice-cost", &body)
}

async fn run_meter(flags: &Flags) -> Result<()> {
    let port: u16 = flags
        .get("--port")
        .unwrap_or("0")
        .parse()
        .map_err(|_| "--port: not a port")?;
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let meter = meter::Meter::new(
        &env("AWS_ENDPOINT_URL_DYNAMODB")?,
        &env("AWS_ENDPOINT_URL")?,
    );
    let seed = flags
        .get("--seed")
        .unwrap_or("1")
        .parse()
        .map_err(|_| "--seed: not a whole number")?;
    meter.set_faults(perf::faults::FaultPlan::parse(
        flags.get("--faults").unwrap_or(""),
        seed,
    )?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "meter listening on http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    meter::serve(listener, meter).await;
    Ok(())
}

/// The binaries to measure: every function, then the floor.
fn binaries(only: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = functions::routes::ENDPOINTS
        .iter()
        .map(|(name, _)| name.to_string())
        .chain(
            functions::routes::JOBS
                .iter()
                .map(|(name, _)| name.to_string()),
        )
        .collect();
    names.push("hello-lambda".into());
    if let Some(only) = only {
        let wanted: Vec<&str> = only.split(',').collect();
        names.retain(|name| wanted.contains(&name.as_str()));
    }
    names
}

/// The sample event for a binary: `events/NAME.json`, `events/scheduled/NAME.json`, or `{}`.
fn event(root: &Path, name: &str) -> Vec<u8> {
    [
        root.join(format!("events/{name}.json")),
        root.join(format!("events/scheduled/{name}.json")),
    ]
    .iter()
    .find_map(|path| std::fs::read(path).ok())
    .unwrap_or_else(|| b"{}".to_vec())
}

async fn cold_start_all(flags: &Flags) -> Result<()> {
    let bin_dir = PathBuf::from(flags.get("--bin-dir").ok_or("--bin-dir is required")?);
    let bin_dir = bin_dir.canonicalize().unwrap_or(bin_dir);
    let runs: usize = flags
        .get("--runs")
        .unwrap_or("5")
        .parse()
        .map_err(|_| "--runs: not a number")?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    // The resources the functions need, created as the local stack creates them, and the
    // signing key in Secrets Manager, read at init as it is in AWS.
    let api = e2e_tests::TestApi::start().await;
    let config = &api.stack.services.config;
    let aws = aws_config::load_from_env().await;
    let arn = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("cold-start-{}", std::process::id()))
        .secret_string(&api.secret)
        .send()
        .await
        .map_err(|e| format!("cannot create the signing-key secret: {e}"))?
        .arn
        .ok_or("the secret has no ARN")?;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| name.starts_with("AWS_"))
        .collect();
    // As in AWS, every endpoint the functions call is HTTPS (`--tls off`: straight to the
    // emulators, as before): a TLS proxy of our own in front of each emulator.
    let tls = flags.get("--tls").unwrap_or("on") != "off";
    let _tls_dir;
    if tls {
        let dir = std::env::temp_dir().join(format!("cold-start-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let authority = perf::tls::Authority::new(&dir)?;
        for (name, value) in env.iter_mut() {
            if name != "AWS_ENDPOINT_URL" && name != "AWS_ENDPOINT_URL_DYNAMODB" {
                continue;
            }
            let upstream: std::net::SocketAddr = value
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .parse()
                .map_err(|_| format!("{name}={value}: expected http://IP:PORT"))?;
            let proxy = authority.proxy(upstream).await?;
            *value = format!("https://127.0.0.1:{}", proxy.port());
        }
        env.push((
            "SSL_CERT_FILE".into(),
            authority.ca_file.display().to_string(),
        ));
        _tls_dir = Some(dir);
    } else {
        _tls_dir = None;
    }
    env.extend([
        ("TABLE_NAME".into(), config.table_name.clone()),
        ("JWT_SECRET_ARN".into(), arn),
        (
            "QUEUE_URL".into(),
            config.queue_url.clone().unwrap_or_default(),
        ),
        (
            "EVENT_BUS_NAME".into(),
            config.event_bus_name.clone().unwrap_or_default(),
        ),
        ("RUST_LOG".into(), "warn".into()),
    ]);

    let mut rows = String::from(
        "| function | binary | init p50 (min–max) | first invocation p50 | peak RSS p50 (max) | answer |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    let mut inits_over = Vec::new();
    let mut rss_over = Vec::new();
    for name in binaries(flags.get("--only")) {
        let binary = bin_dir.join(&name);
        let size = std::fs::metadata(&binary)
            .map_err(|e| format!("{}: {e} (build it first)", binary.display()))?
            .len();
        // The admitter's run lasts most of a minute by design: its init and memory are what
        // matter, so it is stopped a few seconds in.
        let answer_within = if name == "admitter" {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(30)
        };
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(
                cold_start::measure(&binary, &name, event(&root, &name), &env, answer_within)
                    .await?,
            );
        }
        let mut inits: Vec<u64> = samples.iter().map(|s| s.init.as_micros() as u64).collect();
        let mut rss: Vec<u64> = samples.iter().map(|s| s.peak_rss_kib).collect();
        let mut firsts: Vec<u64> = samples
            .iter()
            .filter_map(|s| s.first_invocation.map(|d| d.as_micros() as u64))
            .collect();
        let init = report::median(&mut inits);
        let peak = report::median(&mut rss);
        let first = if firsts.is_empty() {
            "still running (stopped)".to_owned()
        } else {
            format!("{:.1} ms", report::median(&mut firsts) as f64 / 1000.0)
        };
        let answer = if samples.iter().any(|s| s.errored) {
            "error"
        } else if samples.iter().all(|s| s.first_invocation.is_some()) {
            "response"
        } else {
            "–"
        };
        if name != "hello-lambda" {
            if init > 20_000 {
                inits_over.push(name.clone());
            }
            if peak > 24 * 1024 {
                rss_over.push(name.clone());
            }
        }
        let row = format!(
            "| `{name}` | {:.1} MB | {:.1} ms ({:.1}–{:.1}) | {first} | {:.1} MB ({:.1}) | {answer} |\n",
            size as f64 / 1e6,
            init as f64 / 1000.0,
            inits[0] as f64 / 1000.0,
            inits[inits.len() - 1] as f64 / 1000.0,
            peak as f64 / 1024.0,
            rss[rss.len() - 1] as f64 / 1024.0,
        );
        print!("{row}");
        rows.push_str(&row);
    }
    let verdict = |over: &[String], what: &str| {
        if over.is_empty() {
            format!("Every function is within the {what} target.")
        } else {
            format!("Over the {what} target: {}.", over.join(", "))
        }
    };
    let body = format!(
        "{} {runs} cold starts per binary from `{}`, {}; median, with the spread.\n\n{rows}\n{} {}",
        report::provenance(),
        bin_dir.strip_prefix(&root).unwrap_or(&bin_dir).display(),
        if tls {
            "every AWS endpoint over TLS (a proxy of the instrument's own in front of each \
             emulator), as in AWS"
        } else {
            "the emulators over plain HTTP"
        },
        verdict(&inits_over, "init ≤ 20 ms"),
        verdict(&rss_over, "peak RSS ≤ 24 MB"),
    );
    println!("\n{body}");
    write(
        flags,
        if tls {
            "cold-start"
        } else {
            "cold-start-plain"
        },
        &body,
    )
}
