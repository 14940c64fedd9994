//! Page cursors: a query's `LastEvaluatedKey`, handed to the client as an opaque string and
//! checked on the way back in, so a cursor can only ever continue the query that made it.

use super::{s, Item};
use crate::error::{DomainError, Result};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use std::collections::HashMap;

pub(crate) fn encode(key: &Item) -> String {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.as_s().ok()?.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).unwrap_or_default())
}

/// Decodes a cursor that must have exactly the attributes `names`, the values `fixed` and the
/// prefixes `prefixes`; anything else is `VALIDATION_FAILED` on `cursor`.
pub(crate) fn decode(
    cursor: &str,
    names: &[&str],
    fixed: &[(&str, &str)],
    prefixes: &[(&str, &str)],
) -> Result<Item> {
    let invalid = || DomainError::validation("cursor", "is not a cursor this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let well_formed = plain.len() == names.len()
        && names.iter().all(|name| plain.contains_key(*name))
        && fixed
            .iter()
            .all(|(name, value)| plain.get(*name).map(String::as_str) == Some(*value))
        && prefixes.iter().all(|(name, prefix)| {
            plain
                .get(*name)
                .is_some_and(|value| value.starts_with(prefix))
        })
        && plain
            .values()
            .all(|value| !value.is_empty() && value.len() <= 200);
    if !well_formed {
        return Err(invalid());
    }
    Ok(plain
        .into_iter()
        .map(|(name, value)| (name, s(value)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), s(*v))).collect()
    }

    #[test]
    fn when_cursor_round_trips_should_give_the_same_key() {
        let key = key(&[("pk", "USER#1"), ("sk", "TXN#000000000003")]);
        let decoded = decode(
            &encode(&key),
            &["pk", "sk"],
            &[("pk", "USER#1")],
            &[("sk", "TXN#")],
        );
        assert_eq!(decoded.unwrap(), key);
    }

    #[test]
    fn when_cursor_is_not_ours_should_refuse() {
        let names = ["pk", "sk"];
        assert!(decode("!!!", &names, &[], &[]).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("{}"), &names, &[], &[]).is_err());
        // Another user's partition, or another kind of item, does not continue this query.
        let other_user = encode(&key(&[("pk", "USER#2"), ("sk", "TXN#1")]));
        assert!(decode(&other_user, &names, &[("pk", "USER#1")], &[]).is_err());
        let other_kind = encode(&key(&[("pk", "USER#1"), ("sk", "PROFILE")]));
        assert!(decode(&other_kind, &names, &[("pk", "USER#1")], &[("sk", "TXN#")]).is_err());
    }
}
