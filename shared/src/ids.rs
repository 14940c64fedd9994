//! Identifiers: UUID v7 everywhere, so that ids sort by creation time and DynamoDB sort keys
//! built from them list newest-first without a separate timestamp.

use uuid::Uuid;

pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Parses an id taken from a path or body. Anything that is not a UUID cannot name a stored
/// item, so callers turn `None` into `NOT_FOUND` (for paths) or `VALIDATION_FAILED` (for bodies).
pub fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_ids_are_made_in_order_they_should_sort_in_order() {
        let ids: Vec<String> = (0..50).map(|_| new_id().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn when_id_is_not_a_uuid_should_be_none() {
        assert!(parse_id("not-a-uuid").is_none());
        assert!(parse_id("../etc").is_none());
        assert!(parse_id(&new_id().to_string()).is_some());
    }
}
