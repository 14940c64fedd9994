//! `POST /performances/import`: a draft concert from a real concert's ticket sale page, to
//! practise its on-sale on.
//!
//! The page is fetched and parsed by the `importer` crate (the SSRF guard lives there). The
//! same page, however its address is written, gives one concert: the normalised address is
//! claimed first (an item keyed by its digest), and the concert is created by whoever claimed
//! it.

use crate::auth::Principal;
use crate::catalog::{Concert, NewConcert, NewSchedule, Schedule, SeatMap, Section};
use crate::error::{DomainError, Result};
use crate::ids::new_id;
use crate::runtime::Services;
use crate::store::{ClaimOf, Claimed, ImportClaim};
use chrono::{DateTime, Duration, Utc};
use importer::{FetchPolicy, ImportError, ImportedPage};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

/// The body of `POST /performances/import`.
#[derive(Debug, Deserialize)]
pub struct ImportRequest {
    pub url: String,
}

/// An imported concert and its dates.
pub struct Imported {
    pub concert: Concert,
    pub schedules: Vec<Schedule>,
}

/// How long an imported concert stays on sale once it opens.
const SALE_DAYS: i64 = 30;
/// How long to wait for a concert another import of the same page is creating.
const WAIT_FOR_OTHER_IMPORT_MS: u64 = 5_000;

impl Services {
    pub async fn import_performance(
        &self,
        principal: &Principal,
        body: ImportRequest,
    ) -> Result<Imported> {
        let policy = self.import_policy();
        let raw = body.url.trim();
        if raw.is_empty() {
            return Err(DomainError::validation("url", "is required"));
        }
        let url = importer::guard::validate_url(raw, &policy).map_err(import_error)?;
        let normalised = normalise(&url);
        let now = self.clock.now();
        // Kept whatever happens next, so that coming back restores what the fan entered.
        self.store
            .set_last_entered_url(principal.user_id, normalised.as_str(), now)
            .await?;
        let page_key = page_key(&normalised);
        let of = ClaimOf::Page(&page_key);
        if let Some(claim) = self.store.import_claim(of).await? {
            return self.finish_import(of, claim).await;
        }
        // Each fetch costs an outbound request of up to 5 s: a fan gets a few a minute.
        if self
            .store
            .count_use(principal.user_id, "import", now)
            .await?
            > self.config.imports_per_minute
        {
            return Err(DomainError::RateLimited(
                "too many pages imported this minute; try again in a minute",
            ));
        }
        let page = importer::import_page(raw, &policy, now)
            .await
            .map_err(import_error)?;
        let claim = draft(&page, &normalised, now)?;
        match self.store.claim_import(of, &claim).await? {
            Claimed::Won => {
                self.store
                    .create_concert(&claim.concert, &claim.schedules, &claim.seats)
                    .await?;
                Ok(Imported {
                    concert: claim.concert,
                    schedules: claim.schedules,
                })
            }
            Claimed::Existing(claim) => self.finish_import(of, *claim).await,
        }
    }

    async fn finish_import(&self, of: ClaimOf<'_>, claim: ImportClaim) -> Result<Imported> {
        match self.finish_claimed(of, claim).await? {
            Some((concert, schedules)) => Ok(Imported { concert, schedules }),
            None => Err(DomainError::ImportFailed(
                "this page is being imported right now; try again in a moment".to_owned(),
            )),
        }
    }

    /// The concert of a claim made before: read it, or wait while its creator finishes it, or
    /// finish it if the creator is gone (stopped between claiming and finishing). `None` if
    /// its creator is still at work after a few seconds.
    pub(super) async fn finish_claimed(
        &self,
        of: ClaimOf<'_>,
        claim: ImportClaim,
    ) -> Result<Option<(Concert, Vec<Schedule>)>> {
        let started = std::time::Instant::now();
        loop {
            if let Some(created) = self
                .store
                .concert_with_schedules(claim.concert.concert_id)
                .await?
            {
                return Ok(Some(created));
            }
            if self
                .store
                .take_over_import(of, &claim, self.clock.now())
                .await?
            {
                self.store
                    .create_concert(&claim.concert, &claim.schedules, &claim.seats)
                    .await?;
                return Ok(Some((claim.concert, claim.schedules)));
            }
            if started.elapsed() > std::time::Duration::from_millis(WAIT_FOR_OTHER_IMPORT_MS) {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// What the import may fetch: public addresses on ports 80 and 443, and nothing else,
    /// unless the test-only `IMPORT_TEST_ALLOW` names a local test server.
    fn import_policy(&self) -> FetchPolicy {
        let allowed = &self.config.import_test_allow;
        FetchPolicy {
            allow_addresses: allowed.iter().map(|addr| addr.ip()).collect(),
            allow_ports: allowed.iter().map(|addr| addr.port()).collect(),
            ..FetchPolicy::default()
        }
    }
}

/// The importer's refusal in the contract's terms: 400 for an address that is not a fetchable
/// URL, 422 for one that is refused or failed.
fn import_error(err: ImportError) -> DomainError {
    match err.status() {
        400 => DomainError::validation(err.field().unwrap_or("url"), err.message()),
        _ if err.code() == "IMPORT_REFUSED" => DomainError::ImportRefused(err.message()),
        _ => DomainError::ImportFailed(err.message()),
    }
}

/// The address that names a page: scheme and host in lower case (the URL parser does that),
/// no default port, no fragment, no tracking parameters, the other query parameters sorted.
pub fn normalise(url: &Url) -> Url {
    let mut url = url.clone();
    url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_tracking(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if url.path().len() > 1 && url.path().ends_with('/') {
        let trimmed = url.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
    }
    url
}

fn is_tracking(name: &str) -> bool {
    name.starts_with("utm_") || matches!(name, "fbclid" | "gclid" | "ref" | "NaPm")
}

/// The key of a page's claim: a digest of its normalised address.
fn page_key(url: &Url) -> String {
    Sha256::digest(url.as_str().as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The draft concert of a page: what it states, and defaults for the rest. It opens at the
/// page's open time (or now), is on sale for [`SALE_DAYS`], has one date (the page's, if it is
/// after the sale opens) and a practice seat map of 50 seats in three grades.
fn draft(page: &ImportedPage, source: &Url, now: DateTime<Utc>) -> Result<ImportClaim> {
    let parsed = &page.parsed;
    let opens_at = parsed.opens_at.unwrap_or(now);
    let closes_at = opens_at.max(now) + Duration::days(SALE_DAYS);
    let starts_at = parsed
        .starts_at
        .filter(|starts| *starts > opens_at.max(now) + Duration::hours(1))
        .unwrap_or(closes_at + Duration::days(1));
    let title = parsed
        .title
        .clone()
        .filter(|title| !title.trim().is_empty())
        .unwrap_or_else(|| source.host_str().unwrap_or("Imported concert").to_owned());
    let image_url = parsed
        .image_url
        .clone()
        .filter(|image| crate::validate::http_url("image_url", image).is_ok());
    let body = NewConcert {
        title: truncate(&title, 200),
        artist: truncate(parsed.artist.as_deref().unwrap_or("To be announced"), 200),
        venue: truncate(parsed.venue.as_deref().unwrap_or("To be announced"), 200),
        category: "PRACTICE".to_owned(),
        description: truncate(parsed.description.as_deref().unwrap_or(""), 5000),
        image_url,
        booking_opens_at: opens_at,
        booking_closes_at: closes_at,
        prequeue: false,
        schedules: vec![NewSchedule { starts_at }],
        seat_map: Some(practice_seat_map()),
        price: None,
        ticket_limit: None,
        cancellation_fees: None,
    };
    let seats = body.validate()?;
    let concert = Concert {
        source_url: Some(source.to_string()),
        template_code: Some(page.template.to_owned()),
        ..body.concert(now)
    };
    let schedules = vec![Schedule {
        schedule_id: new_id(),
        concert_id: concert.concert_id,
        starts_at,
        total_seats: seats.len() as u32,
    }];
    Ok(ImportClaim {
        source_url: source.to_string(),
        concert,
        schedules,
        seats,
        claimed_at: now,
    })
}

/// Three grades, as a small hall sells them: 50 seats.
fn practice_seat_map() -> SeatMap {
    let section = |name: &str, grade: &str, price: i64, rows: u32| Section {
        name: name.to_owned(),
        grade: grade.to_owned(),
        price,
        rows,
        seats_per_row: 10,
    };
    SeatMap {
        sections: vec![
            section("Floor A", "VIP", 165_000, 2),
            section("Floor B", "R", 143_000, 2),
            section("Balcony", "S", 121_000, 1),
        ],
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn the_same_page_written_differently_should_normalise_to_one_address() {
        let a = normalise(&url(
            "HTTPS://Tickets.Example.com:443/goods/123/?b=2&a=1&utm_source=x#seat",
        ));
        let b = normalise(&url("https://tickets.example.com/goods/123?a=1&b=2"));
        assert_eq!(a, b);
        assert_eq!(page_key(&a), page_key(&b));
        assert_ne!(
            page_key(&b),
            page_key(&normalise(&url("https://tickets.example.com/goods/124")))
        );
    }

    fn page(parsed: importer::ParsedPage) -> ImportedPage {
        ImportedPage {
            final_url: url("https://tickets.example.com/goods/1"),
            template: "default",
            parsed,
        }
    }

    #[test]
    fn a_page_with_an_open_time_should_open_then_with_a_practice_seat_map() {
        let now = Utc::now();
        let opens = now + Duration::minutes(5);
        let claim = draft(
            &page(importer::ParsedPage {
                title: Some("IU Concert".into()),
                opens_at: Some(opens),
                ..Default::default()
            }),
            &url("https://tickets.example.com/goods/1"),
            now,
        )
        .unwrap();
        assert_eq!(claim.concert.title, "IU Concert");
        assert_eq!(claim.concert.booking_opens_at, opens);
        assert_eq!(claim.concert.template_code.as_deref(), Some("default"));
        assert_eq!(claim.seats.len(), 50);
        assert!(claim.schedules[0].starts_at > claim.concert.booking_closes_at);
    }

    #[test]
    fn a_page_that_states_nothing_should_open_now_under_its_host_name() {
        let now = Utc::now();
        let claim = draft(
            &page(importer::ParsedPage::default()),
            &url("https://tickets.example.com/goods/1"),
            now,
        )
        .unwrap();
        assert_eq!(claim.concert.title, "tickets.example.com");
        assert_eq!(claim.concert.booking_opens_at, now);
        assert_eq!(claim.concert.artist, "To be announced");
    }
}
