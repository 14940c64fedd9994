//! Business metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per metric,
//! which CloudWatch Logs turns into a metric in the `Ticketing` namespace without any API call.

use serde_json::json;

pub const NAMESPACE: &str = "Ticketing";

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
    println!("{line}");
}
