//! Partition and sort keys of every item in the table (see docs/ARCHITECTURE.md).
//!
//! Keys are prefixed by entity so one table holds them all and one `Query` on a partition
//! returns exactly one aggregate: a user's profile with their ledger and reservations, a
//! concert with its schedules, a schedule's seats.

use uuid::Uuid;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// Epoch seconds after which DynamoDB's TTL may delete the item. Correctness never depends on it.
pub const TTL: &str = "ttl";

pub fn user(user_id: Uuid) -> String {
    format!("USER#{user_id}")
}
pub const USER_PROFILE: &str = "PROFILE";

/// Usernames are unique through an item keyed by the name itself, written in the same
/// transaction as the profile.
pub fn username(username: &str) -> String {
    format!("USERNAME#{username}")
}
pub const USERNAME_SK: &str = "USERNAME";

pub fn concert(concert_id: Uuid) -> String {
    format!("CONCERT#{concert_id}")
}
pub const CONCERT_SK: &str = "CONCERT";
/// The GSI partition that lists concerts; written only when an admin creates one.
pub const CONCERT_LIST: &str = "CONCERTS";

pub fn schedule_sk(schedule_id: Uuid) -> String {
    format!("SCHEDULE#{schedule_id}")
}
pub const SCHEDULE_SK_PREFIX: &str = "SCHEDULE#";

/// A schedule's seats share one partition: the seat map is one `Query`, and holds on different
/// schedules never meet.
pub fn schedule(schedule_id: Uuid) -> String {
    format!("SCHEDULE#{schedule_id}")
}
pub fn seat_sk(seat_no: u32) -> String {
    // Zero-padded so seats sort by number.
    format!("SEAT#{seat_no:05}")
}
pub const SEAT_SK_PREFIX: &str = "SEAT#";

/// A concert's waiting-queue counter: numbering, admission progress, the active list.
pub fn queue(concert_id: Uuid) -> String {
    format!("QUEUE#{concert_id}")
}
pub const QUEUE_COUNTER_SK: &str = "COUNTER";

/// A concert's active shoppers: one small item per admitted user (sort key `USER#{user_id}`),
/// written by the admitter and deleted when the shopper pays or leaves. Nothing grows with the
/// number of shoppers, so the cap is not bounded by what one item can hold.
pub fn queue_active(concert_id: Uuid) -> String {
    format!("QACTIVE#{concert_id}")
}
pub const ACTIVE_SK_PREFIX: &str = "USER#";

/// One item per user per concert: the user's one place in that concert's line.
pub fn queue_token(concert_id: Uuid, user_id: Uuid) -> String {
    format!("QTOKEN#{concert_id}#{user_id}")
}
pub const QUEUE_TOKEN_SK: &str = "TOKEN";

/// A reservation, under its owner's partition.
pub fn reservation_sk(reservation_id: Uuid) -> String {
    format!("RES#{reservation_id}")
}
pub const RESERVATION_SK_PREFIX: &str = "RES#";

/// The GSI partition of one shard of the live-hold expiry index.
pub fn holds(shard: u128) -> String {
    format!("HOLDS#{shard}")
}

/// A ledger entry: zero-padded sequence number, so the partition lists the chain in order.
pub fn ledger_sk(seq: u64) -> String {
    format!("TXN#{seq:012}")
}
pub const LEDGER_SK_PREFIX: &str = "TXN#";

pub fn payment_sk(payment_id: Uuid) -> String {
    format!("PAY#{payment_id}")
}

/// An idempotency record: keys are the client's, scoped to the user who sent them.
pub fn idempotency(user_id: Uuid, key: &str) -> String {
    format!("IDEM#{user_id}#{key}")
}
pub const IDEMPOTENCY_SK: &str = "IDEM";

/// A schedule's sales counters, in its concert's partition.
pub fn sales_sk(schedule_id: Uuid) -> String {
    format!("SALES#{schedule_id}")
}
pub const SALES_SK_PREFIX: &str = "SALES#";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_keys_should_sort_by_seat_number() {
        let mut keys: Vec<String> = [10, 2, 1, 100, 50].into_iter().map(seat_sk).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "SEAT#00001",
                "SEAT#00002",
                "SEAT#00010",
                "SEAT#00050",
                "SEAT#00100"
            ]
        );
    }
}
