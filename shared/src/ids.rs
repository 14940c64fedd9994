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

/// A uniformly random number below `bound` (at least 1).
pub fn random_below(bound: u32) -> u32 {
    (random_u64() % u64::from(bound.max(1))) as u32
}

/// 64 random bits, from the operating system's generator (through a version 4 UUID, whose
/// other 58 random bits and 6 fixed ones are left out).
pub fn random_u64() -> u64 {
    let (high, low) = Uuid::new_v4().as_u64_pair();
    // The version nibble sits in bits 12..16 of `high`; its last 16 bits are replaced by
    // random ones from `low`.
    (high & !0xFFFF) | (low & 0xFFFF)
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

    #[test]
    fn random_numbers_should_cover_the_whole_range() {
        let draws: Vec<u64> = (0..2000).map(|_| random_u64()).collect();
        // Every bit is set in some draw and clear in another.
        for bit in 0..64 {
            assert!(
                draws.iter().any(|d| d >> bit & 1 == 1),
                "bit {bit} never set"
            );
            assert!(
                draws.iter().any(|d| d >> bit & 1 == 0),
                "bit {bit} never clear"
            );
        }
        assert!((0..1000).all(|_| random_below(7) < 7));
    }
}
