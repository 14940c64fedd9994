//! Every endpoint by the name of its Lambda binary, for the local gateway, which reads the
//! routes themselves (method and path → binary) from template.yaml, and every scheduled job.

use crate::{endpoints, handler, job, Handler, Job};

/// `(binary name, endpoint)` for every HTTP function.
pub const ENDPOINTS: &[(&str, Handler)] = &[
    ("health", handler!(endpoints::health::health)),
    ("create-user", handler!(endpoints::users::create_user)),
    ("login", handler!(endpoints::users::login)),
    ("get-me", handler!(endpoints::users::me)),
    (
        "create-concert",
        handler!(endpoints::catalog::create_concert),
    ),
    ("list-concerts", handler!(endpoints::catalog::list_concerts)),
    ("get-concert", handler!(endpoints::catalog::get_concert)),
    (
        "list-schedules",
        handler!(endpoints::catalog::list_schedules),
    ),
    ("enter-queue", handler!(endpoints::queue::enter)),
    ("get-queue-token", handler!(endpoints::queue::current)),
    ("leave-queue", handler!(endpoints::queue::leave)),
    ("get-queue-progress", handler!(endpoints::queue::progress)),
    ("list-seats", handler!(endpoints::reservations::seats)),
    (
        "create-reservation",
        handler!(endpoints::reservations::hold),
    ),
    ("get-reservation", handler!(endpoints::reservations::get)),
    (
        "release-reservation",
        handler!(endpoints::reservations::release),
    ),
    (
        "cancel-reservation",
        handler!(endpoints::reservations::cancel),
    ),
    (
        "get-cancellation-terms",
        handler!(endpoints::reservations::cancellation_terms),
    ),
    ("join-waitlist", handler!(endpoints::waitlist::join)),
    ("get-waitlist", handler!(endpoints::waitlist::get)),
    ("leave-waitlist", handler!(endpoints::waitlist::leave)),
    (
        "list-my-reservations",
        handler!(endpoints::reservations::mine),
    ),
    ("charge-balance", handler!(endpoints::money::charge)),
    ("get-balance", handler!(endpoints::money::balance)),
    (
        "list-transactions",
        handler!(endpoints::money::transactions),
    ),
    ("create-payment", handler!(endpoints::money::pay)),
    ("concert-sales", handler!(endpoints::catalog::sales)),
    ("import-performance", handler!(endpoints::practice::import)),
    ("list-zones", handler!(endpoints::reservations::zones)),
    ("create-practice-run", handler!(endpoints::runs::create)),
    ("get-practice-run", handler!(endpoints::runs::get)),
    ("practice-captcha", handler!(endpoints::runs::captcha)),
    ("answer-practice-captcha", handler!(endpoints::runs::answer)),
    ("record-practice-result", handler!(endpoints::runs::results)),
    ("list-practice-results", handler!(endpoints::runs::history)),
    ("web-page", handler!(endpoints::practice::page)),
    ("web-asset", handler!(endpoints::practice::asset)),
    ("openapi-document", handler!(endpoints::practice::openapi)),
];

/// `(binary name, one step)` for every scheduled function. The binaries themselves may do more
/// per run (the admitter loops for a minute); the local scheduler runs one step at a time.
pub const JOBS: &[(&str, Job)] = &[
    ("admitter", job!(endpoints::jobs::admit_step)),
    ("hold-sweeper", job!(endpoints::jobs::sweep_holds)),
];

pub fn job(binary: &str) -> Option<Job> {
    JOBS.iter()
        .find(|(name, _)| *name == binary)
        .map(|(_, job)| *job)
}

pub fn endpoint(binary: &str) -> Option<Handler> {
    ENDPOINTS
        .iter()
        .find(|(name, _)| *name == binary)
        .map(|(_, handler)| *handler)
}
