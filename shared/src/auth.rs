//! Who is calling: password hashing and access tokens.
//!
//! Passwords are stored only as argon2id PHC strings (salted, slow on purpose). Access tokens are
//! JWTs signed with HS256; verification pins the algorithm (a token that names another one, or
//! `none`, is refused), requires `exp`, checks the audience so that a token of another kind
//! (a queue token, signed with the same key) cannot pass as an access token, and compares the
//! expiry with the injected [`Clock`] rather than the system time.

use crate::clock::Clock;
use crate::error::{DomainError, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use password_hash::rand_core::OsRng;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// Hashes a password with argon2id and the crate's default (OWASP-recommended) cost.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(DomainError::internal)
}

/// Checks a password against a stored hash. With no stored hash (unknown username) it still
/// spends the time of one verification, so a wrong username and a wrong password cannot be told
/// apart by timing.
pub fn verify_password(password: &str, stored_hash: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let (hash, known) = match stored_hash {
        Some(hash) => (hash, true),
        None => (
            DUMMY
                .get_or_init(|| hash_password("timing-equaliser").unwrap_or_default())
                .as_str(),
            false,
        ),
    };
    let matches = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    known && matches
}

/// The signing key for every token this service issues. Built once per process.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
}

/// The `iss` of every token this service signs.
pub const ISSUER: &str = "ticketing";

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
        }
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(DomainError::internal)
    }

    /// Verifies signature, algorithm, issuer and audience, and that the token has not expired
    /// by the injected clock.
    pub fn verify<C: DeserializeOwned + Expiring>(
        &self,
        token: &str,
        audience: &str,
        clock: &Clock,
    ) -> Result<C, TokenError> {
        let claims: C = self.decode(token, audience)?;
        if claims.expires_at() <= clock.now().timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Verifies signature, algorithm, issuer and audience but leaves `exp` to the caller, for
    /// a token whose holder may still ask what became of it after it expired.
    pub fn decode<C: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<C, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        // Expiry is judged against the injected clock, so tests can move time.
        validation.validate_exp = false;
        jsonwebtoken::decode::<C>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

/// Claims that carry an expiry in seconds since the epoch.
pub trait Expiring {
    fn expires_at(&self) -> i64;
}

/// The caller of an authenticated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

impl Expiring for AccessClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

const ACCESS_AUDIENCE: &str = "access";

/// A freshly issued access token and its lifetime in seconds.
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: i64,
}

pub fn issue_access_token(
    keys: &TokenKeys,
    clock: &Clock,
    principal: &Principal,
    ttl_seconds: i64,
) -> Result<IssuedAccessToken> {
    let now = clock.now().timestamp();
    let claims = AccessClaims {
        sub: principal.user_id,
        username: principal.username.clone(),
        iat: now,
        exp: now + ttl_seconds,
        iss: ISSUER.to_owned(),
        aud: ACCESS_AUDIENCE.to_owned(),
    };
    Ok(IssuedAccessToken {
        token: keys.sign(&claims)?,
        expires_in: ttl_seconds,
    })
}

/// Reads `Authorization: Bearer <token>` (the header's value is passed in) into a principal.
pub fn authenticate(keys: &TokenKeys, clock: &Clock, header: Option<&str>) -> Result<Principal> {
    let header = header.ok_or(DomainError::Unauthenticated("an access token is required"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(DomainError::Unauthenticated(
            "the Authorization header must be 'Bearer <token>'",
        ))?;
    match keys.verify::<AccessClaims>(token, ACCESS_AUDIENCE, clock) {
        Ok(claims) => Ok(Principal {
            user_id: claims.sub,
            username: claims.username,
        }),
        Err(TokenError::Expired) => {
            Err(DomainError::Unauthenticated("the access token has expired"))
        }
        Err(TokenError::Invalid) => {
            Err(DomainError::Unauthenticated("the access token is invalid"))
        }
    }
}

/// The proof that a request came through the template's CloudFront distribution: a secret
/// value the distribution adds to every request it forwards, in [`EdgeSecret::HEADER`]. A
/// request without it reached the execute-api address or the entry function's URL directly,
/// around the WAF at the edge (docs/ARCHITECTURE.md, "The edge").
#[derive(Clone)]
pub struct EdgeSecret(String);

impl EdgeSecret {
    pub const HEADER: &'static str = "x-origin-verify";

    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Whether `header` (the request's [`EdgeSecret::HEADER`]) is the secret, compared in time
    /// that does not depend on where the two first differ.
    pub fn admits(&self, header: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        header.is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.0.as_bytes())))
    }

    /// The request as [`DomainError`] when it did not come through the edge.
    pub fn check(&self, header: Option<&str>) -> Result<()> {
        if self.admits(header) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(
                "this service answers only through its CloudFront address",
            ))
        }
    }
}

impl std::fmt::Debug for EdgeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EdgeSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn the_edge_secret_should_admit_only_its_own_value() {
        let secret = EdgeSecret::new("0123456789abcdef0123456789abcdef".into());
        assert!(secret.admits(Some("0123456789abcdef0123456789abcdef")));
        for other in [
            None,
            Some(""),
            Some("0123456789abcdef0123456789abcdeF"),
            Some("0123456789abcdef0123456789abcde"),
            Some("0123456789abcdef0123456789abcdef0"),
        ] {
            assert!(!secret.admits(other), "{other:?}");
            assert_eq!(
                secret.check(other).unwrap_err().code(),
                "FORBIDDEN",
                "{other:?}"
            );
        }
        assert!(!format!("{secret:?}").contains("0123"));
    }

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    fn alice() -> Principal {
        Principal {
            user_id: Uuid::now_v7(),
            username: "alice".into(),
        }
    }

    fn clock() -> Clock {
        Clock::manual(Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap())
    }

    #[test]
    fn when_password_is_right_should_verify_and_hash_is_argon2id() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a phc string")));
    }

    #[test]
    fn when_token_is_fresh_should_authenticate() {
        let (keys, clock, who) = (keys(), clock(), alice());
        let issued = issue_access_token(&keys, &clock, &who, 3600).unwrap();
        let header = format!("Bearer {}", issued.token);
        assert_eq!(authenticate(&keys, &clock, Some(&header)).unwrap(), who);
    }

    #[test]
    fn when_token_has_expired_should_refuse() {
        let (keys, clock, who) = (keys(), clock(), alice());
        let issued = issue_access_token(&keys, &clock, &who, 60).unwrap();
        clock.advance(Duration::seconds(60));
        let header = format!("Bearer {}", issued.token);
        assert_eq!(
            authenticate(&keys, &clock, Some(&header)),
            Err(DomainError::Unauthenticated("the access token has expired"))
        );
    }

    #[test]
    fn when_token_is_signed_with_another_key_should_refuse() {
        let (clock, who) = (clock(), alice());
        let forged = TokenKeys::from_secret(b"another-secret-another-secret-00");
        let issued = issue_access_token(&forged, &clock, &who, 3600).unwrap();
        let header = format!("Bearer {}", issued.token);
        assert!(authenticate(&keys(), &clock, Some(&header)).is_err());
    }

    #[test]
    fn when_token_names_alg_none_should_refuse() {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        let clock = clock();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"sub": Uuid::now_v7(), "username": "admin", "iat": 0,
                "exp": clock.now().timestamp() + 600, "iss": "ticketing", "aud": "access"})
            .to_string(),
        );
        let token = format!("Bearer {header}.{claims}.");
        assert!(authenticate(&keys(), &clock, Some(&token)).is_err());
    }

    #[test]
    fn when_token_has_another_audience_should_refuse() {
        let (keys, clock) = (keys(), clock());
        let claims = AccessClaims {
            sub: Uuid::now_v7(),
            username: "alice".into(),
            iat: 0,
            exp: clock.now().timestamp() + 600,
            iss: ISSUER.into(),
            aud: "queue".into(),
        };
        let header = format!("Bearer {}", keys.sign(&claims).unwrap());
        assert!(authenticate(&keys, &clock, Some(&header)).is_err());
    }

    #[test]
    fn when_header_is_missing_or_malformed_should_refuse() {
        let (keys, clock) = (keys(), clock());
        assert!(authenticate(&keys, &clock, None).is_err());
        assert!(authenticate(&keys, &clock, Some("Basic abc")).is_err());
        assert!(authenticate(&keys, &clock, Some("Bearer ")).is_err());
        assert!(authenticate(&keys, &clock, Some("Bearer a.b.c")).is_err());
    }
}
