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
        let to_hash = password.clone();
        let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&to_hash))
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
        match self.store.create_user(&user, &password_hash).await {
            Err(DomainError::UsernameTaken) => match self.own_signup(&user, password).await? {
                Some(earlier) => Ok(earlier),
                None => Err(DomainError::UsernameTaken),
            },
            other => other.map(|()| user),
        }
    }

    /// The account a signup made moments ago with this very name, password and display name:
    /// the same signup made again (its answer was lost), answered as it was, never as
    /// `USERNAME_TAKEN`. Only within the repeat window, so that it tells nothing about older
    /// accounts.
    async fn own_signup(&self, asked: &User, password: String) -> Result<Option<User>> {
        let Some(credentials) = self.store.credentials(&asked.username).await? else {
            return Ok(None);
        };
        let Some(existing) = self.store.user(credentials.user_id).await? else {
            return Ok(None);
        };
        let recent = self.clock.now() - existing.created_at
            <= chrono::Duration::seconds(super::REPEAT_WINDOW_SECONDS);
        if !recent || existing.name != asked.name {
            return Ok(None);
        }
        let hash = credentials.password_hash;
        let same_password =
            tokio::task::spawn_blocking(move || auth::verify_password(&password, Some(&hash)))
                .await
                .map_err(DomainError::internal)?;
        Ok(same_password.then_some(existing))
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
