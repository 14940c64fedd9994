//! Cold start and memory of a Lambda binary, measured through a Lambda Runtime API of our own.
//!
//! AWS starts a function's process, the runtime inside it initialises and asks the Runtime API
//! for its first event (`GET /2018-06-01/runtime/invocation/next`); the time until that ask is
//! what Lambda reports as "Init Duration". This module plays the Runtime API for one process:
//! it starts the binary, times the first ask (init), hands it one event, times the answer
//! (first invocation), then reads the process's peak resident memory (`VmHWM`) and stops it.
//! A second ask for an event is left waiting, as Lambda leaves a warm, idle function.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One cold start.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Process start → first ask for an event.
    pub init: Duration,
    /// First event handed over → its answer; `None` when the function had not answered within
    /// the time allowed (the admitter's run lasts most of a minute by design).
    pub first_invocation: Option<Duration>,
    /// `true` when the function reported an error (`/error`) instead of a response.
    pub errored: bool,
    /// Peak resident set size of the process, in KiB (`VmHWM`), read after the answer.
    pub peak_rss_kib: u64,
}

#[derive(Default)]
struct Progress {
    started: Option<Instant>,
    init: Option<Duration>,
    handed_over: Option<Instant>,
    answered: Option<(Duration, bool)>,
    on_init: Option<oneshot::Sender<()>>,
    on_answer: Option<oneshot::Sender<()>>,
}

const REQUEST_ID: &str = "8f9f2c4e-0000-4000-8000-000000000001";

/// Starts `binary` with `env` (plus the Runtime API variables) and measures one cold start
/// with `event` as the first invocation. `answer_within` bounds the wait for the answer.
pub async fn measure(
    binary: &Path,
    name: &str,
    event: Vec<u8>,
    env: &[(String, String)],
    answer_within: Duration,
) -> Result<Sample, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| e.to_string())?;
    let api = listener.local_addr().map_err(|e| e.to_string())?;
    let (init_tx, init_rx) = oneshot::channel();
    let (answer_tx, answer_rx) = oneshot::channel();
    let progress = Arc::new(Mutex::new(Progress {
        on_init: Some(init_tx),
        on_answer: Some(answer_tx),
        ..Progress::default()
    }));
    let event = Bytes::from(event);
    let server = tokio::spawn(serve(listener, progress.clone(), event));

    let mut command = tokio::process::Command::new(binary);
    command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    progress.lock().unwrap().started = Some(Instant::now());
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id().ok_or("the process exited at once")?;

    let outcome = async {
        tokio::select! {
            _ = init_rx => {}
            status = child.wait() => {
                return Err(format!("{name} exited before asking for an event ({status:?})"));
            }
            _ = tokio::time::sleep(Duration::from_secs(30)) => {
                return Err(format!("{name} did not ask for an event within 30 s"));
            }
        }
        tokio::select! {
            _ = answer_rx => {}
            status = child.wait() => {
                return Err(format!("{name} exited before answering ({status:?})"));
            }
            _ = tokio::time::sleep(answer_within) => {}
        }
        Ok(())
    }
    .await;
    let peak_rss_kib = peak_rss_kib(pid);
    let _ = child.kill().await;
    server.abort();
    outcome?;
    let progress = progress.lock().unwrap();
    Ok(Sample {
        init: progress.init.ok_or("no init time")?,
        first_invocation: progress.answered.map(|(took, _)| took),
        errored: progress.answered.is_some_and(|(_, errored)| errored),
        peak_rss_kib: peak_rss_kib.ok_or("cannot read the process's peak memory")?,
    })
}

/// `VmHWM` of a live process: the most resident memory it has had.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn serve(listener: TcpListener, progress: Arc<Mutex<Progress>>, event: Bytes) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let progress = progress.clone();
        let event = event.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let progress = progress.clone();
                let event = event.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(request, &progress, event).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// The Runtime API: `next` (first: the event; later: wait forever), `response`, `error`.
async fn answer(
    request: Request<Incoming>,
    progress: &Mutex<Progress>,
    event: Bytes,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let _ = request.into_body().collect().await;
    if path.ends_with("/invocation/next") {
        let first = {
            let mut p = progress.lock().unwrap();
            if p.init.is_none() {
                p.init = p.started.map(|started| started.elapsed());
                p.handed_over = Some(Instant::now());
                if let Some(tx) = p.on_init.take() {
                    let _ = tx.send(());
                }
                true
            } else {
                false
            }
        };
        if !first {
            // A warm function waits here until the next event; we never send one.
            std::future::pending::<()>().await;
        }
        let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
        return Response::builder()
            .header("lambda-runtime-aws-request-id", REQUEST_ID)
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:cold-start",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .header("content-type", "application/json")
            .body(Full::new(event))
            .expect("a static response builds");
    }
    let errored = path.ends_with("/error");
    if path.ends_with("/response") || errored {
        let mut p = progress.lock().unwrap();
        if p.answered.is_none() {
            p.answered = p.handed_over.map(|at| (at.elapsed(), errored));
            if let Some(tx) = p.on_answer.take() {
                let _ = tx.send(());
            }
        }
    }
    Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("a static response builds")
}
