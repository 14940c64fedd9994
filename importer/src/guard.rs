//! Server-side request forgery (SSRF) guard: which URLs and addresses the
//! importer may fetch.
//!
//! The importer fetches an address that an anonymous user typed in, from
//! inside our network. Without a guard that is a proxy into our private
//! network and our cloud provider's metadata service (which hands out
//! credentials). So, for every URL we are about to request — the one the fan
//! pasted and every redirect target — we refuse:
//!
//! * schemes other than `http` and `https` (no `file:`, `ftp:`, `gopher:`…);
//! * ports other than 80 and 443 (no probing of internal services that listen
//!   on other ports of a public host);
//! * user information (`user:pass@host`), which is only ever used to smuggle
//!   credentials or to disguise the real host (`https://ticket.yes24.com@evil/`);
//! * URLs longer than [`MAX_URL_LEN`] bytes;
//! * hosts for which **any** resolved address is not a public unicast address
//!   (see [`classify_ip`] for the full list: loopback, private, link-local,
//!   unique-local, site-local, multicast, broadcast, CGNAT shared space,
//!   unspecified, documentation, benchmarking, reserved and IETF special-use
//!   ranges, and cloud metadata endpoints). IPv6 addresses that embed an IPv4
//!   address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
//!   `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the embedded address.
//!
//! Numeric host spellings such as `http://0x7f000001/`, `http://2130706433/`,
//! `http://017700000001/` and `http://127.1/` are turned into `127.0.0.1` by
//! the WHATWG URL parser (the `url` crate) before we see the host, and are
//! therefore checked as addresses, not as names.
//!
//! Checking alone is not enough: a name can resolve to a public address when
//! checked and to `127.0.0.1` a millisecond later (DNS rebinding). The fetcher
//! therefore connects only to the exact address that passed the check (see
//! [`crate::fetch`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

use serde::Serialize;
use url::{Host, Url};

use crate::error::ImportError;
use crate::fetch::FetchPolicy;

/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Ports that may be fetched (whatever the scheme).
pub const ALLOWED_PORTS: [u16; 2] = [80, 443];

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10` (deprecated site-local).
    SiteLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `100.64/10`, carrier-grade NAT shared address space.
    SharedCgnat,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`.
    Benchmarking,
    /// `240/4`, `192.0.0/24`, `192.88.99/24`, `100::/64`, `2001::/23`,
    /// `64:ff9b:1::/48` and every IPv6 address outside `2000::/3`.
    Reserved,
    /// Cloud instance metadata endpoints: `169.254.169.254`,
    /// `fd00:ec2::254`, `100.100.100.200` (Alibaba), `168.63.129.16` (Azure).
    CloudMetadata,
}

impl RefusedClass {
    /// Phrase used in messages: "the address X is {describe}".
    pub fn describe(self) -> &'static str {
        match self {
            RefusedClass::Loopback => "a loopback address",
            RefusedClass::Private => "a private network address",
            RefusedClass::LinkLocal => "a link-local address",
            RefusedClass::UniqueLocal => "a unique-local (private IPv6) address",
            RefusedClass::SiteLocal => "a site-local address",
            RefusedClass::Multicast => "a multicast address",
            RefusedClass::Broadcast => "a broadcast address",
            RefusedClass::SharedCgnat => "a carrier-grade NAT (shared) address",
            RefusedClass::Unspecified => "an unspecified address",
            RefusedClass::Documentation => "a documentation-only address",
            RefusedClass::Benchmarking => "a benchmarking address",
            RefusedClass::Reserved => "a reserved or special-purpose address",
            RefusedClass::CloudMetadata => "a cloud metadata service address",
        }
    }
}

/// "the address 127.0.0.1 is a loopback address", mentioning an embedded
/// IPv4 address where that is what was judged.
pub fn describe_refusal(addr: IpAddr, class: RefusedClass) -> String {
    match addr {
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) if classify_ipv4(v4) == Some(class) => format!(
                "the address {addr}, which embeds {v4}, {}",
                with_verb(class)
            ),
            _ => format!("the address {addr} {}", with_verb(class)),
        },
        IpAddr::V4(_) => format!("the address {addr} {}", with_verb(class)),
    }
}

fn with_verb(class: RefusedClass) -> String {
    format!("is {}", class.describe())
}

/// Classifies an address: `None` for a public unicast address that may be
/// fetched, otherwise the reason it must not be.
pub fn classify_ip(ip: IpAddr) -> Option<RefusedClass> {
    match ip {
        IpAddr::V4(v4) => classify_ipv4(v4),
        IpAddr::V6(v6) => classify_ipv6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    let n = Ipv6Addr::new(
        net[0], net[1], net[2], net[3], net[4], net[5], net[6], net[7],
    );
    (u128::from(ip) & mask) == (u128::from(n) & mask)
}

fn classify_ipv4(ip: Ipv4Addr) -> Option<RefusedClass> {
    use RefusedClass::*;
    const METADATA: [[u8; 4]; 3] = [
        [169, 254, 169, 254], // AWS, GCP, Azure, OpenStack, …
        [100, 100, 100, 200], // Alibaba Cloud
        [168, 63, 129, 16],   // Azure WireServer
    ];
    // Order matters: the most specific ranges come first.
    let table: &[([u8; 4], u32, RefusedClass)] = &[
        ([0, 0, 0, 0], 8, Unspecified),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([100, 64, 0, 0], 10, SharedCgnat),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([192, 88, 99, 0], 24, Reserved),
        ([224, 0, 0, 0], 4, Multicast),
        ([255, 255, 255, 255], 32, Broadcast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    if METADATA.iter().any(|m| Ipv4Addr::from(*m) == ip) {
        return Some(CloudMetadata);
    }
    table
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, class)| *class)
}

/// The IPv4 address embedded in an IPv4-mapped (`::ffff:0:0/96`),
/// IPv4-compatible (`::/96`, except `::` and `::1`), NAT64 (`64:ff9b::/96`)
/// or 6to4 (`2002::/16`) IPv6 address.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return Some(low32);
    }
    if in_v6(ip, [0; 8], 96) && bits > 1 {
        return Some(low32);
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

fn classify_ipv6(ip: Ipv6Addr) -> Option<RefusedClass> {
    use RefusedClass::*;
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(CloudMetadata);
    }
    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(Unspecified);
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some(Loopback);
    }
    if let Some(v4) = embedded_ipv4(ip) {
        return classify_ipv4(v4);
    }
    let table: &[([u16; 8], u32, RefusedClass)] = &[
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Reserved), // local-use NAT64
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Reserved),     // discard-only
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Documentation),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Documentation),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Reserved), // Teredo, ORCHID, benchmarking…
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, UniqueLocal),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, SiteLocal),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Multicast),
    ];
    if let Some((_, _, class)) = table.iter().find(|(n, p, _)| in_v6(ip, *n, *p)) {
        return Some(*class);
    }
    // Only global unicast (2000::/3) is reachable on the public internet.
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some(Reserved);
    }
    None
}

/// The policy as it applies to a connection on `port`: the test-only address exemptions hold
/// only on the test-only ports, so that an exempt test server's address stays refused on 80
/// and 443 (and through a redirect there).
pub fn for_port(policy: &FetchPolicy, port: u16) -> FetchPolicy {
    let mut policy = policy.clone();
    if !policy.allow_ports.contains(&port) {
        policy.allow_addresses.clear();
    }
    policy
}

/// Checks one address against the policy.
///
/// `allow_private` (tests only) lifts every check except the cloud metadata
/// one; `allow_addresses` (tests only) lifts the checks for exactly the listed
/// addresses.
pub fn check_addr(
    host: &str,
    addr: IpAddr,
    policy: &FetchPolicy,
    via_redirect: bool,
) -> Result<(), ImportError> {
    let Some(class) = classify_ip(addr) else {
        return Ok(());
    };
    let exempt = policy.allow_addresses.contains(&addr)
        || (policy.allow_private && class != RefusedClass::CloudMetadata);
    if exempt {
        return Ok(());
    }
    Err(ImportError::RefusedAddress {
        host: host.to_string(),
        addr,
        class,
        via_redirect,
    })
}

/// Parses and validates a URL: syntax, length, scheme, userinfo, port.
/// Does not resolve the host (see [`resolve_checked`]).
pub fn validate_url(raw: &str, policy: &FetchPolicy) -> Result<Url, ImportError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ImportError::InvalidUrl("it is empty".into()));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(ImportError::UrlTooLong {
            len: raw.len(),
            max: MAX_URL_LEN,
        });
    }
    let url = Url::parse(raw).map_err(|e| ImportError::InvalidUrl(e.to_string()))?;
    validate_parsed(&url, policy)?;
    Ok(url)
}

/// Validates an already parsed URL (used for redirect targets).
pub fn validate_parsed(url: &Url, policy: &FetchPolicy) -> Result<(), ImportError> {
    if url.as_str().len() > MAX_URL_LEN {
        return Err(ImportError::UrlTooLong {
            len: url.as_str().len(),
            max: MAX_URL_LEN,
        });
    }
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(ImportError::BadScheme(other.to_string())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ImportError::UserInfo);
    }
    if url.host().is_none() {
        return Err(ImportError::InvalidUrl("it has no host".into()));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ImportError::InvalidUrl("it has no port".into()))?;
    if !ALLOWED_PORTS.contains(&port) && !policy.allow_ports.contains(&port) {
        return Err(ImportError::BadPort(port));
    }
    Ok(())
}

/// A boxed, sendable future (the resolver trait must be object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves host names to addresses. Injectable so tests can make any name
/// resolve to any address without touching real DNS.
pub trait Resolver: Send + Sync {
    /// All addresses of `host` (a domain name, never an IP literal).
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver, through `tokio::net::lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?;
            Ok(addrs.map(|sa: SocketAddr| sa.ip()).collect())
        })
    }
}

/// A fixed table of names to addresses; unknown names fail to resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the addresses of `host` (case-insensitive).
    pub fn with(mut self, host: &str, addrs: &[IpAddr]) -> Self {
        self.table.insert(host.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let found = self.table.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown host"))
        })
    }
}

/// Resolves the URL's host and checks **every** address; returns the one
/// address to connect to (IPv4 preferred; IPv4-mapped IPv6 addresses are
/// unwrapped to plain IPv4).
pub async fn resolve_checked(
    url: &Url,
    policy: &FetchPolicy,
    resolver: &dyn Resolver,
    via_redirect: bool,
) -> Result<IpAddr, ImportError> {
    let host_str = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match url.host() {
        Some(Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
        Some(Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
        Some(Host::Domain(name)) => {
            // A domain that still parses as an address (should not happen
            // after WHATWG normalisation, but be defensive).
            if let Ok(ip) = name.trim_end_matches('.').parse::<IpAddr>() {
                vec![ip]
            } else {
                resolver
                    .resolve(name, port)
                    .await
                    .map_err(|_| ImportError::Dns {
                        host: host_str.clone(),
                    })?
            }
        }
        None => return Err(ImportError::InvalidUrl("it has no host".into())),
    };
    if addrs.is_empty() {
        return Err(ImportError::Dns { host: host_str });
    }
    let policy = &for_port(policy, port);
    for addr in &addrs {
        check_addr(&host_str, *addr, policy, via_redirect)?;
    }
    let unwrap = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let chosen = addrs
        .iter()
        .copied()
        .map(unwrap)
        .find(IpAddr::is_ipv4)
        .unwrap_or_else(|| unwrap(addrs[0]));
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn refused_address_classes() {
        use RefusedClass::*;
        let cases: &[(&str, RefusedClass)] = &[
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fec0::1", SiteLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("255.255.255.255", Broadcast),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("192.0.2.10", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.99", Documentation),
            ("2001:db8::1", Documentation),
            ("240.0.0.1", Reserved),
            ("250.1.2.3", Reserved),
            ("192.0.0.8", Reserved),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("169.254.169.254", CloudMetadata),
            ("fd00:ec2::254", CloudMetadata),
            ("100.100.100.200", CloudMetadata),
            // IPv4-mapped / compatible, judged by the embedded address.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("::127.0.0.1", Loopback),
            ("::192.168.0.1", Private),
            // NAT64 and 6to4, judged by the embedded address.
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a00:1", Private),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("2002:7f00:1::", Loopback),
            ("2002:c0a8:101::1", Private),
            ("2002:a9fe:a9fe::", CloudMetadata),
            // Other IPv6 special space.
            ("2001::1", Reserved),
            ("100::1", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("4000::1", Reserved),
        ];
        for (addr, class) in cases {
            assert_eq!(classify_ip(ip(addr)), Some(*class), "{addr}");
        }
    }

    #[test]
    fn public_addresses_allowed() {
        for addr in [
            "93.184.215.14",
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "223.130.195.200",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:93.184.215.14",
            "64:ff9b::5db8:d70e",
            "2002:5db8:d70e::1",
        ] {
            assert_eq!(classify_ip(ip(addr)), None, "{addr}");
            assert!(check_addr("h", ip(addr), &FetchPolicy::default(), false).is_ok());
        }
    }

    #[test]
    fn refusal_message_names_class() {
        let err = check_addr("127.0.0.1", ip("127.0.0.1"), &FetchPolicy::default(), false)
            .expect_err("loopback refused");
        assert_eq!(err.status(), 422);
        assert_eq!(err.code(), "IMPORT_REFUSED");
        assert!(
            err.message()
                .contains("the address 127.0.0.1 is a loopback address"),
            "{}",
            err.message()
        );
        let err = check_addr("x", ip("::ffff:10.0.0.1"), &FetchPolicy::default(), true)
            .expect_err("refused");
        assert!(
            err.message().contains("embeds 10.0.0.1"),
            "{}",
            err.message()
        );
        assert!(err.message().contains("redirected"), "{}", err.message());
    }

    #[test]
    fn policy_exemptions() {
        let p = FetchPolicy {
            allow_addresses: vec![ip("127.0.0.1")],
            ..FetchPolicy::default()
        };
        assert!(check_addr("h", ip("127.0.0.1"), &p, false).is_ok());
        assert!(check_addr("h", ip("127.0.0.2"), &p, false).is_err());
        let p = FetchPolicy {
            allow_private: true,
            timeout: Duration::from_secs(1),
            ..FetchPolicy::default()
        };
        assert!(check_addr("h", ip("10.0.0.1"), &p, false).is_ok());
        // Metadata endpoints stay refused even then.
        assert!(check_addr("h", ip("169.254.169.254"), &p, false).is_err());
    }

    #[test]
    fn url_validation() {
        let p = FetchPolicy::default();
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("not a url", "syntax"),
            ("/relative/path", "relative"),
            ("ftp://example.com/", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("javascript:alert(1)", "scheme"),
            ("gopher://example.com/", "scheme"),
            ("http://example.com:8080/", "port"),
            ("https://example.com:22/", "port"),
            ("http://user:pass@example.com/", "userinfo"),
            ("http://user@example.com/", "userinfo"),
            ("https://ticket.yes24.com@evil.example/", "userinfo"),
        ];
        for (u, why) in bad {
            let err = validate_url(u, &p).expect_err(u);
            assert_eq!(err.status(), 400, "{u} ({why})");
            assert_eq!(err.code(), "VALIDATION_FAILED");
            assert_eq!(err.field(), Some("url"));
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(
            validate_url(&long, &p),
            Err(ImportError::UrlTooLong { .. })
        ));
        for ok in [
            "http://example.com/",
            "https://example.com:443/x?y=1",
            "http://example.com:80/",
            "https://example.com:80/",
            "  https://tickets.interpark.com/goods/123  ",
        ] {
            assert!(validate_url(ok, &p).is_ok(), "{ok}");
        }
    }

    #[tokio::test]
    async fn numeric_host_forms_are_loopback() {
        let p = FetchPolicy::default();
        let r = StaticResolver::new();
        for u in [
            "http://0x7f000001/",
            "http://2130706433/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.0.0.1/",
            "http://0177.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::1]/",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        ] {
            let url = validate_url(u, &p).expect(u);
            let err = resolve_checked(&url, &p, &r, false).await.expect_err(u);
            match err {
                ImportError::RefusedAddress { class, .. } => {
                    assert_eq!(class, RefusedClass::Loopback, "{u}")
                }
                other => panic!("{u}: unexpected {other:?}"),
            }
        }
        let url = validate_url("http://0/", &p).expect("0");
        assert!(resolve_checked(&url, &p, &r, false).await.is_err());
    }

    #[tokio::test]
    async fn any_bad_resolved_address_refuses() {
        let p = FetchPolicy::default();
        let r = StaticResolver::new()
            .with("mixed.example", &[ip("93.184.215.14"), ip("10.0.0.5")])
            .with(
                "public.example",
                &[ip("2606:4700::1111"), ip("93.184.215.14")],
            )
            .with("empty.example", &[]);
        let url = validate_url("https://mixed.example/", &p).expect("url");
        let err = resolve_checked(&url, &p, &r, false)
            .await
            .expect_err("mixed");
        assert!(err.message().contains("10.0.0.5"), "{}", err.message());
        assert!(err.message().contains("mixed.example"), "{}", err.message());

        let url = validate_url("https://public.example/", &p).expect("url");
        let chosen = resolve_checked(&url, &p, &r, false).await.expect("public");
        assert_eq!(chosen, ip("93.184.215.14"), "IPv4 preferred");

        let url = validate_url("https://empty.example/", &p).expect("url");
        let err = resolve_checked(&url, &p, &r, false)
            .await
            .expect_err("empty");
        assert_eq!(err.code(), "IMPORT_FAILED");
        let url = validate_url("https://unknown.example/", &p).expect("url");
        let err = resolve_checked(&url, &p, &r, false)
            .await
            .expect_err("unknown");
        assert!(matches!(err, ImportError::Dns { .. }));
    }
}
