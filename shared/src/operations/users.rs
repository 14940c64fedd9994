//! Signup, login and the caller's profile.

use crate::auth::{self, IssuedAccessToken, Principal};
use crate::error::{DomainError, Result};
use crate::ids::new_id;
use crate::runtime::Services;
use crate::users::{Login, Signup, User};

impl Services {
    pub async fn signup(&self, signup: Signup) -> Result<User> {
        signup.validate()?;
        let password = signup.password;
        // Hashing is deliberately slow CPU work; keep it off the async workers.
        let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(DomainError::internal)??;
        let user = User {
            user_id: new_id(),
            username: signup.username,
            name: signup.name,
            balance: 0,
            created_at: self.clock.now(),
            last_entered_url: None,
            last_entered_at: None,
        };
        self.store.create_user(&user, &password_hash).await?;
        Ok(user)
    }

    /// A wrong username and a wrong password get the same answer, in about the same time.
    pub async fn login(&self, login: Login) -> Result<IssuedAccessToken> {
        let credentials = if login.username.len() <= 32 {
            self.store.credentials(&login.username).await?
        } else {
            None
        };
        let stored_hash = credentials.as_ref().map(|c| c.password_hash.clone());
        let password = login.password;
        let verified = tokio::task::spawn_blocking(move || {
            auth::verify_password(&password, stored_hash.as_deref())
        })
        .await
        .map_err(DomainError::internal)?;
        match credentials {
            Some(credentials) if verified => auth::issue_access_token(
                &self.tokens,
                &self.clock,
                &Principal {
                    user_id: credentials.user_id,
                    username: login.username,
                },
                self.config.access_token_ttl_seconds,
            ),
            _ => Err(DomainError::Unauthenticated("wrong username or password")),
        }
    }

    pub async fn me(&self, principal: &Principal) -> Result<User> {
        self.store
            .user(principal.user_id)
            .await?
            .ok_or(DomainError::NotFound("user"))
    }

    /// Reads `Authorization: Bearer …` into the caller, or `UNAUTHENTICATED`.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        auth::authenticate(&self.tokens, &self.clock, authorization)
    }

    /// The caller, who must also be an admin (`ADMIN_USERNAMES`).
    pub fn authenticate_admin(&self, authorization: Option<&str>) -> Result<Principal> {
        let principal = self.authenticate(authorization)?;
        if !self.config.is_admin(&principal.username) {
            return Err(DomainError::Forbidden("admin only"));
        }
        Ok(principal)
    }
}
