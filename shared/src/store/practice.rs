//! Practice runs: the run's own concert (kept out of the catalog's list) and its one date,
//! written together; a fan's place activated when the simulated line reaches it; the security
//! letters passed; and each fan's results (`USER#{user}`/`PRACTICE#{run}`), their history.

use super::items::{key, millis, token_key, ConcertItem, ScheduleItem};
use super::{applied, from_item, keys, s, sdk_error, to_item, Store};
use crate::catalog::{Concert, Schedule};
use crate::error::Result;
use crate::practice::PracticeResult;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A fan's results are kept this long.
const RESULT_DAYS: i64 = 365;

#[derive(Serialize, Deserialize)]
struct ResultItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    result: PracticeResult,
    ttl: i64,
}

impl Store {
    /// Writes a practice run's concert (with no catalog index entry) and its date, together.
    /// Its seats are not written: a practice date's seat item exists only once a real fan has
    /// held it.
    pub async fn put_practice_run(&self, concert: &Concert, schedule: &Schedule) -> Result<()> {
        let concert_item = to_item(&ConcertItem {
            pk: keys::concert(concert.concert_id),
            sk: keys::CONCERT_SK.to_owned(),
            gsi1pk: None,
            gsi1sk: None,
            concert: concert.clone(),
        })?;
        let schedule_item = to_item(&ScheduleItem {
            pk: keys::concert(concert.concert_id),
            sk: keys::schedule_sk(schedule.schedule_id),
            schedule: schedule.clone(),
        })?;
        let put = |item| super::money::put_new(&self.table, item);
        self.client
            .transact_write_items()
            .transact_items(put(concert_item)?)
            .transact_items(put(schedule_item)?)
            .send()
            .await
            .map_err(|err| sdk_error("put_practice_run", err))?;
        Ok(())
    }

    /// Activates a practice place whose turn has come, until `active_until`. False if the
    /// token is no longer `token_id` waiting (activated by a concurrent poll, left, replaced).
    pub async fn activate_practice_token(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        token_id: Uuid,
        active_until: DateTime<Utc>,
    ) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(token_key(concert_id, user_id)))
            .update_expression("SET #status = :active, active_until = :until")
            .condition_expression("token_id = :token AND #status = :waiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("ACTIVE"))
            .expression_attribute_values(":waiting", s("WAITING"))
            .expression_attribute_values(":until", millis(active_until))
            .expression_attribute_values(":token", s(token_id.to_string()))
            .send()
            .await;
        applied("activate_practice_token", result)
    }

    /// Records that the fan typed the security letters, on their token. False if the token is
    /// no longer `token_id`.
    pub async fn pass_practice_captcha(
        &self,
        concert_id: Uuid,
        user_id: Uuid,
        token_id: Uuid,
    ) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(token_key(concert_id, user_id)))
            .update_expression("SET practice.captcha_passed = :yes")
            .condition_expression("token_id = :token AND attribute_exists(practice)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":token", s(token_id.to_string()))
            .send()
            .await;
        applied("pass_practice_captcha", result)
    }

    /// Keeps a fan's result of a run (a later report of the same run replaces it).
    pub async fn put_practice_result(&self, user_id: Uuid, result: &PracticeResult) -> Result<()> {
        let item = to_item(&ResultItem {
            pk: keys::user(user_id),
            sk: keys::practice_sk(result.run_id),
            result: result.clone(),
            ttl: result.recorded_at.timestamp() + RESULT_DAYS * 86_400,
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|err| sdk_error("put_practice_result", err))?;
        Ok(())
    }

    /// A fan's results, newest run first (run ids are time-ordered), up to `limit`.
    pub async fn practice_results(&self, user_id: Uuid, limit: i32) -> Result<Vec<PracticeResult>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::user(user_id)))
            .expression_attribute_values(":prefix", s(keys::PRACTICE_SK_PREFIX))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|err| sdk_error("practice_results", err))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Ok(from_item::<ResultItem>(item)?.result))
            .collect()
    }

    /// One of a fan's results.
    pub async fn practice_result(
        &self,
        user_id: Uuid,
        run_id: Uuid,
    ) -> Result<Option<PracticeResult>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::practice_sk(run_id))))
            .send()
            .await
            .map_err(|err| sdk_error("practice_result", err))?;
        output
            .item
            .map(|item| Ok(from_item::<ResultItem>(item)?.result))
            .transpose()
    }
}
