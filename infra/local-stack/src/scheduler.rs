//! The local stand-in for EventBridge scheduled rules (which the emulator never fires): runs one
//! step of every scheduled function of template.yaml every `ADMIT_INTERVAL_SECONDS`.

use functions::Job;
use shared::runtime::Services;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(
    jobs: Vec<(String, Job)>,
    services: Arc<Services>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        for (name, job) in &jobs {
            if let Err(err) = job(&services).await {
                tracing::error!(job = name.as_str(), error = %err, "scheduled job failed");
            }
        }
    }
}
