//! Users: the profile item and the username item that makes names unique and serves login.

use super::items::ProfileItem;
use super::{from_item, keys, s, sdk_error, to_item, Store};
use crate::error::{DomainError, Result};
use crate::users::User;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct UsernameItem {
    pk: String,
    sk: String,
    user_id: Uuid,
    password_hash: String,
}

/// What login needs to know about a username.
pub struct Credentials {
    pub user_id: Uuid,
    pub password_hash: String,
}

impl Store {
    /// Creates the profile and claims the username in one transaction: both or neither.
    pub async fn create_user(&self, user: &User, password_hash: &str) -> Result<()> {
        let username_item = to_item(&UsernameItem {
            pk: keys::username(&user.username),
            sk: keys::USERNAME_SK.to_owned(),
            user_id: user.user_id,
            password_hash: password_hash.to_owned(),
        })?;
        let profile_item = to_item(&ProfileItem {
            pk: keys::user(user.user_id),
            sk: keys::USER_PROFILE.to_owned(),
            ledger_seq: 0,
            user: user.clone(),
        })?;
        let put = |item| super::money::put_new(&self.table, item);
        for attempt in 0..5u64 {
            let result = self
                .client
                .transact_write_items()
                .transact_items(put(username_item.clone())?)
                .transact_items(put(profile_item.clone())?)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(err)
                    if matches!(
                        err.as_service_error(),
                        Some(TransactWriteItemsError::TransactionCanceledException(_))
                    ) =>
                {
                    // Taken, or another signup for the same name is in flight: which one, the
                    // username item says.
                    match self.credentials(&user.username).await? {
                        // This very signup, written by an attempt whose answer was lost.
                        Some(taken) if taken.user_id == user.user_id => return Ok(()),
                        Some(_) => return Err(DomainError::UsernameTaken),
                        None => {}
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
                Err(err) => return Err(sdk_error("create_user", err)),
            }
        }
        Err(DomainError::busy())
    }

    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::username(username)))
            .key(keys::SK, s(keys::USERNAME_SK))
            .send()
            .await
            .map_err(|err| sdk_error("credentials", err))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let item: UsernameItem = from_item(item)?;
        Ok(Some(Credentials {
            user_id: item.user_id,
            password_hash: item.password_hash,
        }))
    }

    pub async fn user(&self, user_id: Uuid) -> Result<Option<User>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::user(user_id)))
            .key(keys::SK, s(keys::USER_PROFILE))
            .send()
            .await
            .map_err(|err| sdk_error("user", err))?;
        output
            .item
            .map(|item| from_item::<ProfileItem>(item).map(|profile| profile.user))
            .transpose()
    }
}
