//! Users: signup input and the profile the API shows.

use crate::error::Result;
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The body of `POST /users`.
#[derive(Debug, Deserialize)]
pub struct Signup {
    pub username: String,
    pub password: String,
    pub name: String,
}

impl Signup {
    pub fn validate(&self) -> Result<()> {
        validate::username(&self.username)?;
        validate::password(&self.password)?;
        validate::text("name", &self.name, 1, 100)
    }
}

/// The body of `POST /auth/login`. Lengths are not checked here: any wrong input gets the same
/// `UNAUTHENTICATED` answer as a wrong password.
#[derive(Debug, Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// A user as stored, less the password hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: Uuid,
    pub username: String,
    pub name: String,
    pub balance: i64,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub last_entered_url: Option<String>,
    /// When `last_entered_url` was entered.
    #[serde(default)]
    pub last_entered_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signup(username: &str, password: &str, name: &str) -> Signup {
        Signup {
            username: username.into(),
            password: password.into(),
            name: name.into(),
        }
    }

    #[test]
    fn when_signup_is_in_range_should_pass() {
        assert!(signup("fan_01", "password1", "Kim").validate().is_ok());
    }

    #[test]
    fn when_signup_field_is_out_of_range_should_name_it() {
        use crate::error::DomainError::Validation;
        let field = |s: Signup| match s.validate() {
            Err(Validation { field, .. }) => field,
            other => panic!("expected validation error, got {other:?}"),
        };
        assert_eq!(field(signup("x", "password1", "Kim")), "username");
        assert_eq!(field(signup("fan", "short", "Kim")), "password");
        assert_eq!(field(signup("fan", &"p".repeat(129), "Kim")), "password");
        assert_eq!(field(signup("fan", "password1", "")), "name");
        assert_eq!(field(signup("fan", "password1", &"n".repeat(101))), "name");
    }
}
