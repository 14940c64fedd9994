//! Business metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per metric,
//! which CloudWatch Logs turns into a metric in the `Ticketing` namespace without any API call.

use serde_json::json;
use std::sync::OnceLock;

pub const NAMESPACE: &str = "Ticketing";

/// Where metric lines go instead of stdout, if set: for a test that reads them.
static SINK: OnceLock<fn(&str)> = OnceLock::new();

/// Sends every metric line to `sink` instead of stdout, for the rest of the process. The first
/// call wins.
pub fn send_to(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// Counts `value` of `name` (HoldsCreated, SeatConflicts, HoldsExpired, Admissions, Payments…).
pub fn count(name: &str, value: u64) {
    if value == 0 {
        return;
    }
    let line = json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
        name: value,
    });
    match SINK.get() {
        Some(sink) => sink(&line.to_string()),
        None => println!("{line}"),
    }
}
