//! Scheduled jobs: run by EventBridge rules in AWS and by the local scheduler on a laptop.

use crate::JobResult;
use shared::runtime::Services;
use std::time::{Duration, Instant};

/// One admission step (the local scheduler runs this every `ADMIT_INTERVAL_SECONDS`).
pub async fn admit_step(services: &Services) -> JobResult {
    services.admit_step().await?;
    Ok(())
}

/// The admitter's scheduled run in AWS: the rule fires once a minute, and one run admits every
/// `ADMIT_INTERVAL_SECONDS` for most of that minute, so admission moves at the configured pace
/// rather than in one burst a minute. Runs that overlap are safe (conditional counter writes).
pub async fn admit_for_a_minute(services: &Services) -> JobResult {
    const RUN_FOR: Duration = Duration::from_secs(50);
    let interval = Duration::from_secs(services.config.admit_interval_seconds as u64);
    let started = Instant::now();
    loop {
        let step_started = Instant::now();
        // A failed step (a throttled request, say) must not end the minute's admissions: the
        // next step starts from what is stored, whatever this one managed.
        if let Err(err) = services.admit_step().await {
            tracing::error!(error = %err, "admission step failed");
        }
        if started.elapsed() + interval > RUN_FOR {
            return Ok(());
        }
        tokio::time::sleep(interval.saturating_sub(step_started.elapsed())).await;
    }
}

/// The hold sweeper's run: tidies expired holds in storage (correctness never waits for it),
/// then offers the seats that came free to the waiting lists of sold-out dates. A failure of
/// one does not keep the other from running.
pub async fn sweep_holds(services: &Services) -> JobResult {
    let swept = services.sweep_expired_holds().await;
    let offered = services.offer_to_waitlists().await;
    swept?;
    offered?;
    Ok(())
}
