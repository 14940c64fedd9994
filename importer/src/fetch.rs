//! Fetching a ticket page safely.
//!
//! [`fetch_page`] enforces, for the URL the fan pasted **and every redirect**:
//!
//! * the URL rules of [`crate::guard`] (http/https only, ports 80/443 only, no
//!   userinfo, at most 2048 bytes);
//! * the address rules of [`crate::guard`]: the host is resolved once, every
//!   address is checked, and the request is then **pinned** to the checked
//!   address — the HTTP client gets a resolver that knows only that one host
//!   and that one address, so a DNS answer that changes between check and
//!   connect (DNS rebinding) cannot redirect the connection. Proxies from the
//!   environment are ignored for the same reason;
//! * redirects are never followed by the HTTP client: each `Location` is
//!   resolved against the current URL and checked again, at most
//!   [`FetchPolicy::max_redirects`] times;
//! * one deadline ([`FetchPolicy::timeout`], default 5 s) for the whole fetch,
//!   all redirects and the body included;
//! * the body is streamed and reading stops with an error as soon as it
//!   exceeds [`FetchPolicy::max_bytes`] (default 2 MiB);
//! * only `text/html` and `application/xhtml+xml` responses are accepted (a
//!   missing Content-Type is refused); the body is decoded with the charset
//!   from the header or an early `<meta charset>` (e.g. `euc-kr`), else as
//!   UTF-8, lossily.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use url::Url;

use crate::error::ImportError;
use crate::guard::{self, Resolver, SystemResolver};

/// Limits and (test-only) exemptions for [`fetch_page`].
///
/// `FetchPolicy::default()` is the production policy. The `allow_*` fields
/// exist **only** so tests can fetch from a local test server; they must never
/// be set in production, where they would reopen the SSRF hole this module
/// closes.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// TESTS ONLY. Lifts the address check for every class except cloud
    /// metadata endpoints. Default `false`; never enable in production.
    pub allow_private: bool,
    /// TESTS ONLY. Exact addresses exempt from the address check (e.g. the
    /// `127.0.0.1` of a test server, so that a redirect from it to another
    /// refused address can be tested). Default empty.
    pub allow_addresses: Vec<IpAddr>,
    /// TESTS ONLY. Ports allowed besides 80 and 443 (a test server listens
    /// on an ephemeral port). Default empty.
    pub allow_ports: Vec<u16>,
    /// Deadline for the whole fetch, redirects and body included.
    pub timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Most redirects followed.
    pub max_redirects: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_addresses: Vec::new(),
            allow_ports: Vec::new(),
            timeout: Duration::from_secs(5),
            max_bytes: 2 * 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// A fetched HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPage {
    /// The URL of the page after redirects (resolve relative links against it).
    pub final_url: Url,
    /// The decoded document.
    pub html: String,
}

const USER_AGENT: &str = concat!(
    "Mozilla/5.0 (compatible; ConcertImporter/",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Fetches `raw_url` under `policy`, resolving names with the system resolver.
pub async fn fetch_page(raw_url: &str, policy: &FetchPolicy) -> Result<FetchedPage, ImportError> {
    fetch_page_with_resolver(raw_url, policy, &SystemResolver).await
}

/// [`fetch_page`] with an injected resolver (tests map names to addresses).
pub async fn fetch_page_with_resolver(
    raw_url: &str,
    policy: &FetchPolicy,
    resolver: &dyn Resolver,
) -> Result<FetchedPage, ImportError> {
    // The URL is validated before the clock starts: a bad URL is a 400.
    let url = guard::validate_url(raw_url, policy)?;
    match tokio::time::timeout(policy.timeout, fetch_inner(url, policy, resolver)).await {
        Ok(result) => result,
        Err(_) => Err(ImportError::Timeout(policy.timeout)),
    }
}

async fn fetch_inner(
    mut url: Url,
    policy: &FetchPolicy,
    resolver: &dyn Resolver,
) -> Result<FetchedPage, ImportError> {
    let mut redirects = 0usize;
    loop {
        let via_redirect = redirects > 0;
        let addr = guard::resolve_checked(&url, policy, resolver, via_redirect).await?;
        let mut response = send_pinned(&url, addr, policy).await?;

        // Belt and braces: the peer must be the address we checked.
        if let Some(peer) = response.remote_addr() {
            if peer.ip() != addr {
                let host = url.host_str().unwrap_or_default().to_string();
                let policy = guard::for_port(policy, peer.port());
                guard::check_addr(&host, peer.ip(), &policy, via_redirect)?;
            }
        }

        let status = response.status();
        if status.is_redirection() {
            let Some(location) = response.headers().get(LOCATION) else {
                return Err(ImportError::UpstreamStatus(status.as_u16()));
            };
            redirects += 1;
            if redirects > policy.max_redirects {
                return Err(ImportError::TooManyRedirects {
                    max: policy.max_redirects,
                });
            }
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            url = next_url(&url, &location, policy)?;
            continue;
        }
        if !status.is_success() {
            return Err(ImportError::UpstreamStatus(status.as_u16()));
        }

        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let charset = html_charset(content_type.as_deref())?;

        if let Some(len) = response.content_length() {
            if len > policy.max_bytes as u64 {
                return Err(ImportError::TooLarge {
                    max: policy.max_bytes,
                });
            }
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&url, &e, policy))?
        {
            if body.len() + chunk.len() > policy.max_bytes {
                return Err(ImportError::TooLarge {
                    max: policy.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let html = decode(&body, charset.as_deref());
        return Ok(FetchedPage {
            final_url: url,
            html,
        });
    }
}

/// Resolves a redirect target against the current URL and validates it.
fn next_url(current: &Url, location: &str, policy: &FetchPolicy) -> Result<Url, ImportError> {
    let refused = |reason: ImportError| ImportError::RefusedRedirect {
        location: truncate(location, 200),
        reason: Box::new(reason),
    };
    let next = current
        .join(location.trim())
        .map_err(|e| refused(ImportError::InvalidUrl(e.to_string())))?;
    guard::validate_parsed(&next, policy).map_err(refused)?;
    Ok(next)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Sends one GET request to `url`, connecting only to `addr`.
async fn send_pinned(
    url: &Url,
    addr: IpAddr,
    policy: &FetchPolicy,
) -> Result<reqwest::Response, ImportError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(USER_AGENT)
        // The overall deadline is enforced around the whole fetch; this only
        // bounds a single connection attempt.
        .connect_timeout(policy.timeout);
    if let Some(url::Host::Domain(name)) = url.host() {
        builder = builder.dns_resolver(Arc::new(PinnedResolve {
            host: name.to_ascii_lowercase(),
            addr,
        }));
    }
    let client = builder.build().map_err(|e| ImportError::Connect {
        host: url.host_str().unwrap_or_default().to_string(),
        detail: format!("could not set up the HTTP client ({e})"),
    })?;
    client
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
        )
        .send()
        .await
        .map_err(|e| transport_error(url, &e, policy))
}

fn transport_error(url: &Url, e: &reqwest::Error, policy: &FetchPolicy) -> ImportError {
    if e.is_timeout() {
        return ImportError::Timeout(policy.timeout);
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let detail = if e.is_connect() {
        "the connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else {
        "the server's response was invalid"
    };
    ImportError::Connect {
        host,
        detail: detail.to_string(),
    }
}

/// The only DNS the HTTP client may use: it knows exactly one name, mapped to
/// the address that passed the guard, and fails for everything else.
struct PinnedResolve {
    host: String,
    addr: IpAddr,
}

impl reqwest::dns::Resolve for PinnedResolve {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let result: Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> =
            if name.as_str().eq_ignore_ascii_case(&self.host) {
                // Port 0: reqwest substitutes the URL's port.
                let addrs: reqwest::dns::Addrs =
                    Box::new(std::iter::once(SocketAddr::new(self.addr, 0)));
                Ok(addrs)
            } else {
                Err("host is not the pinned host".into())
            };
        Box::pin(async move { result })
    }
}

/// Checks the Content-Type and returns its charset parameter, if any.
fn html_charset(content_type: Option<&str>) -> Result<Option<String>, ImportError> {
    let Some(ct) = content_type else {
        return Err(ImportError::NotHtml(None));
    };
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence != "text/html" && essence != "application/xhtml+xml" {
        return Err(ImportError::NotHtml(Some(truncate(ct, 100))));
    }
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    });
    Ok(charset)
}

/// Decodes the body: BOM, then the header charset, then a `<meta charset>` in
/// the first 1024 bytes, then UTF-8 — always lossily.
fn decode(body: &[u8], header_charset: Option<&str>) -> String {
    let encoding = header_charset
        .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
        .or_else(|| sniff_meta_charset(body))
        .unwrap_or(encoding_rs::UTF_8);
    // `decode` lets a BOM override the label and replaces malformed sequences.
    let (text, _, _) = encoding.decode(body);
    text.into_owned()
}

/// Minimal form of the HTML "prescan": looks for `charset=` in the first
/// 1024 bytes and returns the encoding it names.
fn sniff_meta_charset(body: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = &body[..body.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let pos = lower.windows(8).position(|w| w == b"charset=")?;
    let rest = &lower[pos + 8..];
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
        .unwrap_or(rest.len());
    let enc = encoding_rs::Encoding::for_label(&rest[..end])?;
    // UTF-16 labels in a byte-level prescan mean UTF-8 (per the HTML spec).
    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        return Some(encoding_rs::UTF_8);
    }
    Some(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(html_charset(Some("text/html")), Ok(None));
        assert_eq!(
            html_charset(Some("Text/HTML; Charset=\"EUC-KR\"")),
            Ok(Some("EUC-KR".into()))
        );
        assert_eq!(html_charset(Some("application/xhtml+xml")), Ok(None));
        assert_eq!(html_charset(None), Err(ImportError::NotHtml(None)));
        assert!(html_charset(Some("application/json")).is_err());
        assert!(html_charset(Some("text/htmlx")).is_err());
        assert!(html_charset(Some("image/svg+xml")).is_err());
    }

    #[test]
    fn decoding() {
        let (bytes, _, _) = encoding_rs::EUC_KR.encode("티켓오픈");
        assert_eq!(decode(&bytes, Some("euc-kr")), "티켓오픈");
        let mut doc = b"<html><head><meta charset=\"euc-kr\"></head><body>".to_vec();
        doc.extend_from_slice(&bytes);
        assert!(decode(&doc, None).contains("티켓오픈"));
        assert_eq!(decode(b"ok \xff\xfe", None), "ok \u{fffd}\u{fffd}");
        assert_eq!(decode("한글".as_bytes(), Some("nonsense-charset")), "한글");
    }

    #[test]
    fn redirect_targets() {
        let p = FetchPolicy::default();
        let base = Url::parse("https://ticket.example/a/b").expect("base");
        assert_eq!(
            next_url(&base, "/c?d=1", &p).expect("relative").as_str(),
            "https://ticket.example/c?d=1"
        );
        assert_eq!(
            next_url(&base, "//other.example/x", &p)
                .expect("scheme-relative")
                .as_str(),
            "https://other.example/x"
        );
        for bad in [
            "file:///etc/passwd",
            "ftp://x.example/",
            "http://x.example:8080/",
            "http://u:p@x.example/",
            "http://[::1",
        ] {
            let err = next_url(&base, bad, &p).expect_err(bad);
            assert_eq!(err.code(), "IMPORT_REFUSED", "{bad}");
            assert_eq!(err.status(), 422, "{bad}");
        }
    }
}
