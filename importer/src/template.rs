//! Booking layout ("template") codes, chosen from the page's host.
//!
//! The big Korean ticket sites each lay out a sale page and its booking flow
//! in their own way (seat map and date picker placement, the "예매하기" button,
//! the fan-club presale step, queueing pages). The service uses the code to
//! pick the matching draft layout:
//!
//! | code          | hosts (the domain itself or any subdomain)                        |
//! |---------------|--------------------------------------------------------------------|
//! | `interpark`   | `interpark.com` (tickets., nol., ticket., www.), `globalinterpark.com`, `nol.com` |
//! | `yes24`       | `yes24.com` (ticket.yes24.com)                                      |
//! | `melon`       | `melon.com` (ticket.melon.com)                                      |
//! | `ticketlink`  | `ticketlink.co.kr`                                                  |
//! | `default`     | everything else, including IP-address hosts                         |
//!
//! Matching is on whole DNS labels at the end of the host: `nol.interpark.com`
//! matches `interpark.com`, but `evil-interpark.com.attacker.net` and
//! `notinterpark.com` do not.

use url::Url;

/// All codes [`template_code`] can return.
pub const TEMPLATE_CODES: [&str; 5] = ["interpark", "yes24", "melon", "ticketlink", "default"];

/// Registrable domains (suffix match on whole labels) and their codes.
const SITES: &[(&str, &str)] = &[
    ("interpark.com", "interpark"),
    ("globalinterpark.com", "interpark"),
    ("nol.com", "interpark"), // NOL, Interpark's rebranded ticket platform (e.g. world.nol.com)
    ("yes24.com", "yes24"),
    ("melon.com", "melon"),
    ("ticketlink.co.kr", "ticketlink"),
];

/// The layout code for a ticket page URL.
pub fn template_code(url: &Url) -> &'static str {
    let Some(url::Host::Domain(host)) = url.host() else {
        return "default";
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    SITES
        .iter()
        .find(|(domain, _)| host_is_within(&host, domain))
        .map(|(_, code)| *code)
        .unwrap_or("default")
}

/// True when `host` is `domain` or a subdomain of it.
fn host_is_within(host: &str, domain: &str) -> bool {
    match host.strip_suffix(domain) {
        Some("") => true,
        Some(prefix) => prefix.ends_with('.'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(u: &str) -> &'static str {
        template_code(&Url::parse(u).expect("test url"))
    }

    #[test]
    fn known_sites() {
        assert_eq!(
            code("https://tickets.interpark.com/goods/25001234"),
            "interpark"
        );
        assert_eq!(
            code("https://nol.interpark.com/ticket/goods/25001234"),
            "interpark"
        );
        assert_eq!(
            code("https://ticket.interpark.com/Ticket/Goods/GoodsInfo.asp?GoodsCode=1"),
            "interpark"
        );
        assert_eq!(
            code("https://www.globalinterpark.com/product/1"),
            "interpark"
        );
        assert_eq!(
            code("https://world.nol.com/ko/ticket/places/1"),
            "interpark"
        );
        assert_eq!(code("https://TICKETS.INTERPARK.COM./x"), "interpark");
        assert_eq!(code("http://ticket.yes24.com/Perf/51234"), "yes24");
        assert_eq!(
            code("https://ticket.melon.com/performance/index.htm?prodId=2100"),
            "melon"
        );
        assert_eq!(
            code("https://www.ticketlink.co.kr/product/5000"),
            "ticketlink"
        );
        assert_eq!(code("https://ticketlink.co.kr/product/5000"), "ticketlink");
    }

    #[test]
    fn lookalikes_are_default() {
        for u in [
            "https://evil-interpark.com.attacker.net/",
            "https://interpark.com.attacker.net/",
            "https://notinterpark.com/",
            "https://yes24.com.evil.example/",
            "https://ticket.melon.com.evil.example/",
            "https://fakemelon.com/",
            "https://nol.com.evil.example/",
            "https://carnol.com/",
            "https://ticketlink.co.kr.evil.example/",
            "https://ticketlink.com/",
            "https://example.com/interpark.com",
            "https://example.com/?next=ticket.yes24.com",
            "http://93.184.215.14/",
            "http://[2606:4700::1111]/",
        ] {
            assert_eq!(code(u), "default", "{u}");
        }
    }

    #[test]
    fn codes_listed() {
        for u in [
            "https://nol.interpark.com/",
            "https://ticket.yes24.com/",
            "https://ticket.melon.com/",
            "https://www.ticketlink.co.kr/",
            "https://example.com/",
        ] {
            assert!(TEMPLATE_CODES.contains(&code(u)));
        }
    }
}
