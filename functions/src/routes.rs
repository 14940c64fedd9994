//! Every endpoint by the name of its Lambda binary, for the local gateway, which reads the
//! routes themselves (method and path → binary) from template.yaml.

use crate::{endpoints, handler, Handler};

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
];

pub fn endpoint(binary: &str) -> Option<Handler> {
    ENDPOINTS
        .iter()
        .find(|(name, _)| *name == binary)
        .map(|(_, handler)| *handler)
}
