//! Errors of the import pipeline and how they map onto HTTP responses.
//!
//! Every failure that can be caused by the URL a fan pasted, or by the remote
//! page it points at, maps onto a 4xx status — never a 5xx:
//!
//! | variant group                                   | status | code                |
//! |-------------------------------------------------|--------|---------------------|
//! | the URL itself is unusable (syntax, scheme, port, userinfo, length) | 400 | `VALIDATION_FAILED` (field `url`) |
//! | the URL, or a redirect, leads to a refused address or URL | 422 | `IMPORT_REFUSED` |
//! | the fetch failed (DNS, connect, timeout, HTTP status, size, type, redirects) | 422 | `IMPORT_FAILED` |

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::guard::RefusedClass;

/// Why importing a ticket page failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// The text is not an absolute URL (or is empty).
    InvalidUrl(String),
    /// The URL is longer than the allowed maximum (in bytes).
    UrlTooLong { len: usize, max: usize },
    /// The scheme is not `http` or `https`.
    BadScheme(String),
    /// The port is not 80 or 443.
    BadPort(u16),
    /// The URL carries a user name or password (`user:pass@host`).
    UserInfo,
    /// The host resolved to (or is) an address that must never be fetched.
    RefusedAddress {
        /// The host as written in the URL.
        host: String,
        /// The offending address.
        addr: IpAddr,
        /// Which class of address it is.
        class: RefusedClass,
        /// True when the address was reached through a redirect.
        via_redirect: bool,
    },
    /// A redirect pointed at a URL that fails validation (scheme, port,
    /// userinfo, syntax). The inner error says why.
    RefusedRedirect {
        location: String,
        reason: Box<ImportError>,
    },
    /// More redirects than the policy allows.
    TooManyRedirects { max: usize },
    /// The body (or its declared length) exceeds the limit, in bytes.
    TooLarge { max: usize },
    /// The response is not an HTML document. `None` means no Content-Type.
    NotHtml(Option<String>),
    /// The whole fetch did not finish within the time limit.
    Timeout(Duration),
    /// The remote server answered with a non-success HTTP status.
    UpstreamStatus(u16),
    /// The connection failed or the server sent an invalid response.
    Connect { host: String, detail: String },
    /// The host name could not be resolved.
    Dns { host: String },
}

impl ImportError {
    /// HTTP status this error should be reported with (400 or 422).
    pub fn status(&self) -> u16 {
        if self.is_validation() {
            400
        } else {
            422
        }
    }

    /// Machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            e if e.is_validation() => "VALIDATION_FAILED",
            ImportError::RefusedAddress { .. } | ImportError::RefusedRedirect { .. } => {
                "IMPORT_REFUSED"
            }
            _ => "IMPORT_FAILED",
        }
    }

    /// The request field at fault, for validation errors (`Some("url")`).
    pub fn field(&self) -> Option<&'static str> {
        self.is_validation().then_some("url")
    }

    /// Human-readable explanation, safe to show to the fan.
    pub fn message(&self) -> String {
        match self {
            ImportError::InvalidUrl(why) => format!("the URL is not valid: {why}"),
            ImportError::UrlTooLong { len, max } => {
                format!("the URL is too long ({len} bytes; at most {max} are allowed)")
            }
            ImportError::BadScheme(s) => {
                format!("only http and https URLs can be imported, not \"{s}\"")
            }
            ImportError::BadPort(p) => {
                format!("only the standard web ports 80 and 443 are allowed, not {p}")
            }
            ImportError::UserInfo => {
                "URLs with a user name or password (user:pass@host) are not allowed".to_string()
            }
            ImportError::RefusedAddress {
                host,
                addr,
                class,
                via_redirect,
            } => {
                let what = crate::guard::describe_refusal(*addr, *class);
                let host_is_addr = host.trim_matches(|c| c == '[' || c == ']') == addr.to_string();
                match (via_redirect, host_is_addr) {
                    (false, true) => format!("refused: {what}"),
                    (false, false) => {
                        format!("refused: {host} resolves to a forbidden address: {what}")
                    }
                    (true, true) => {
                        format!("refused: the page redirected to a forbidden address: {what}")
                    }
                    (true, false) => format!(
                        "refused: the page redirected to {host}, which resolves to a forbidden address: {what}"
                    ),
                }
            }
            ImportError::RefusedRedirect { location, reason } => format!(
                "refused: the page redirected to a URL that is not allowed ({location}): {}",
                reason.message()
            ),
            ImportError::TooManyRedirects { max } => {
                format!("the page redirected more than {max} times")
            }
            ImportError::TooLarge { max } => {
                format!("the page is larger than the limit of {max} bytes")
            }
            ImportError::NotHtml(None) => {
                "the address did not return an HTML page (no Content-Type given)".to_string()
            }
            ImportError::NotHtml(Some(ct)) => {
                format!("the address did not return an HTML page (Content-Type {ct})")
            }
            ImportError::Timeout(d) => format!(
                "the page did not load within {:.1} seconds",
                d.as_secs_f64()
            ),
            ImportError::UpstreamStatus(s) => {
                format!("the ticket site answered with HTTP status {s}")
            }
            ImportError::Connect { host, detail } => {
                format!("could not load the page from {host}: {detail}")
            }
            ImportError::Dns { host } => format!("the host name {host} could not be resolved"),
        }
    }

    fn is_validation(&self) -> bool {
        matches!(
            self,
            ImportError::InvalidUrl(_)
                | ImportError::UrlTooLong { .. }
                | ImportError::BadScheme(_)
                | ImportError::BadPort(_)
                | ImportError::UserInfo
        )
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ImportError {}
