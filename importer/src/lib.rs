//! Importing a draft concert from a ticket sale page.
//!
//! A fan pastes the address of a concert's ticket sale page. The service
//! fetches it **safely** ([`fetch`], guarded by [`guard`]), reads a draft
//! concert from it ([`parse`]) and picks a booking layout from the host
//! ([`template`]). [`import_page`] does all three.
//!
//! Every error is an [`ImportError`] that maps onto a 400 or 422 response
//! (never a 5xx): see [`ImportError::status`], [`ImportError::code`] and
//! [`ImportError::message`].

pub mod error;
pub mod fetch;
pub mod guard;
pub mod parse;
pub mod template;

pub use error::ImportError;
pub use fetch::{fetch_page, fetch_page_with_resolver, FetchPolicy, FetchedPage};
pub use guard::{classify_ip, RefusedClass, Resolver, StaticResolver, SystemResolver};
pub use parse::{parse_page, ParsedPage};
pub use template::template_code;

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

/// A fetched and parsed ticket page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedPage {
    /// The page's URL after redirects.
    pub final_url: Url,
    /// Booking layout code for the final host (see [`template_code`]).
    pub template: &'static str,
    /// What could be read from the page.
    pub parsed: ParsedPage,
}

/// Fetches `raw_url` under `policy` (system DNS), parses it and picks its
/// template.
pub async fn import_page(
    raw_url: &str,
    policy: &FetchPolicy,
    now: DateTime<Utc>,
) -> Result<ImportedPage, ImportError> {
    import_page_with_resolver(raw_url, policy, &SystemResolver, now).await
}

/// [`import_page`] with an injected resolver.
pub async fn import_page_with_resolver(
    raw_url: &str,
    policy: &FetchPolicy,
    resolver: &dyn Resolver,
    now: DateTime<Utc>,
) -> Result<ImportedPage, ImportError> {
    let page = fetch_page_with_resolver(raw_url, policy, resolver).await?;
    let parsed = parse_page(&page.html, &page.final_url, now);
    Ok(ImportedPage {
        template: template_code(&page.final_url),
        final_url: page.final_url,
        parsed,
    })
}
