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

/// Seat numbers per seat partition. A date's seats are spread over partitions of this many
/// consecutive seat numbers (1..=500 in block 0, 501..=1000 in block 1, ...): holds on one date
/// share the write capacity of ⌈seats / 500⌉ partitions, and a seat's partition follows from
/// its number alone, so a hold reads and writes its seats without first looking the date up.
/// Holds on different dates never meet. A venue of up to 500 seats is one partition, whose
/// seat map is one `Query`; a larger one is read with one `Query` per block, in parallel.
pub const SEATS_PER_PARTITION: u32 = 500;

/// The partition of a seat.
pub fn seat_partition(schedule_id: Uuid, seat_no: u32) -> String {
    seat_block(schedule_id, seat_no.saturating_sub(1) / SEATS_PER_PARTITION)
}

/// Every seat partition of a date with `total_seats` seats, block 0 first.
pub fn seat_partitions(schedule_id: Uuid, total_seats: u32) -> Vec<String> {
    (0..seat_blocks(total_seats))
        .map(|block| seat_block(schedule_id, block))
        .collect()
}

/// How many seat partitions a date with `total_seats` seats has.
pub fn seat_blocks(total_seats: u32) -> u32 {
    total_seats.div_ceil(SEATS_PER_PARTITION).max(1)
}

/// Seat partition number `block` of a date.
pub fn seat_block(schedule_id: Uuid, block: u32) -> String {
    format!("SCHEDULE#{schedule_id}#{block}")
}
pub fn seat_sk(seat_no: u32) -> String {
    // Zero-padded so seats sort by number.
    format!("SEAT#{seat_no:05}")
}
pub const SEAT_SK_PREFIX: &str = "SEAT#";

/// A concert's admission item: the admitters' turn (`version`) and the concert's admission
/// totals. Written only by the admitter, a few times a second at most.
pub fn queue(concert_id: Uuid) -> String {
    format!("QUEUE#{concert_id}")
}
pub const QUEUE_ADMISSION_SK: &str = "ADMISSION";

/// One entry shard of a concert's line. Its `COUNTER` item numbers the shard's entrants (one
/// `ADD` per entry); its `PROGRESS` item says how far admission has come in the shard (written
/// by the admitter, read by every poll of the shard's entrants). Entrants pick a shard at
/// random, so entries and polls of one concert spread over `QUEUE_ENTRY_SHARDS` partitions.
pub fn queue_shard(concert_id: Uuid, shard: u32) -> String {
    format!("QUEUE#{concert_id}#{shard}")
}
pub const QUEUE_COUNTER_SK: &str = "COUNTER";
pub const QUEUE_PROGRESS_SK: &str = "PROGRESS";
/// Entrants of a shard the admitter took out of the entry queue to reach an earlier number.
pub const QUEUE_STASH_SK: &str = "STASH";

/// One shard of a concert's randomised pre-queue: an item per early entrant, sorted by their
/// random rank, which the admitter reads in order at the opening.
pub fn prequeue(concert_id: Uuid, shard: u32) -> String {
    format!("PREQ#{concert_id}#{shard}")
}
pub fn prequeue_sk(rank: u64, user_id: Uuid) -> String {
    // Zero-padded so entrants sort by rank.
    format!("RANK#{rank:020}#{user_id}")
}
pub const PREQUEUE_SK_PREFIX: &str = "RANK#";
/// A sort key after every entrant of rank `rank` and before any of a higher rank ('~' sorts
/// after every character of a user id).
pub fn prequeue_after(rank: u64) -> String {
    format!("RANK#{rank:020}#~")
}

/// The concerts whose pre-queue has not been drained yet, one item each (sort key
/// `CONCERT#{id}`): written when an admin creates such a concert, deleted by the admitter once
/// the pre-queue is through. The admitter reads this small partition every step.
pub const PREQUEUES: &str = "PREQUEUES";

/// The concerts that have entrants in a shard's stash (sort key `CONCERT#{concert_id}`): the
/// admitter visits them every step even when the entry queue shows none of their messages.
pub const STASHES: &str = "STASHES";

/// A concert's active shoppers: one small item per admitted user (sort key `USER#{user_id}`),
/// written by the admitter and deleted when the shopper pays or leaves. Nothing grows with the
/// number of shoppers, so the cap is not bounded by what one item can hold.
pub fn queue_active(concert_id: Uuid) -> String {
    format!("QACTIVE#{concert_id}")
}
pub const ACTIVE_SK_PREFIX: &str = "USER#";

/// An imported page's claim on its concert, keyed by a digest of the page's normalised address
/// (addresses may be longer than a key may be).
pub fn import(page_key: &str) -> String {
    format!("IMPORT#{page_key}")
}
pub const IMPORT_SK: &str = "IMPORT";

/// An admin's concert creation: the claim of one request (a digest of the admin and the
/// request), with the whole draft, written before the concert, so that the request made again
/// (after a lost answer, or at once twice) gives the same concert. Kept 24 hours.
pub fn creation(request_key: &str) -> String {
    format!("CREATE#{request_key}")
}

/// A user's uses of a rate-limited action (`what`) in one minute (epoch minutes).
pub fn rate(user_id: Uuid, what: &str, minute: i64) -> String {
    format!("RATE#{user_id}#{what}#{minute}")
}
pub const RATE_SK: &str = "RATE";

/// One item per user per concert: the user's one place in that concert's line.
pub fn queue_token(concert_id: Uuid, user_id: Uuid) -> String {
    format!("QTOKEN#{concert_id}#{user_id}")
}
pub const QUEUE_TOKEN_SK: &str = "TOKEN";

/// A user's tickets for one date (the ticket limit and the seat-parking rule), in the user's
/// partition.
pub fn tickets_sk(schedule_id: Uuid) -> String {
    format!("{TICKETS_SK_PREFIX}{schedule_id}")
}
pub const TICKETS_SK_PREFIX: &str = "TICKETS#";

/// A fan's result of a practice run, under their own partition.
pub fn practice_sk(run_id: Uuid) -> String {
    format!("{PRACTICE_SK_PREFIX}{run_id}")
}

pub const PRACTICE_SK_PREFIX: &str = "PRACTICE#";

/// A user's place on a date's waiting list, in the user's partition (one per user and date).
pub fn waitlist_sk(schedule_id: Uuid) -> String {
    format!("WAIT#{schedule_id}")
}

/// A date's waiting line in the index: entries waiting or holding an offer, in join order.
pub fn waitline(schedule_id: Uuid) -> String {
    format!("WAITLINE#{schedule_id}")
}

/// The dates that have a waiting list (sort key `SCHEDULE#{id}`), which the offering job
/// reads every run; kept until a day after the show.
pub const WAITLISTS: &str = "WAITLISTS";

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

/// A schedule's sales counters: one item per date (sort key) in each of a concert's
/// [`SALES_SHARDS`] sales partitions. A payment or cancellation adds to one shard, picked at
/// random, so a concert's payments share the write capacity of all of them; the sales figures
/// add the shards up.
pub fn sales_sk(schedule_id: Uuid) -> String {
    format!("SALES#{schedule_id}")
}
pub const SALES_SHARDS: u32 = 16;
pub fn sales_shard(concert_id: Uuid, shard: u32) -> String {
    format!("SALES#{concert_id}#{shard}")
}
pub const SALES_SK_PREFIX: &str = "SALES#";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_should_fall_in_blocks_of_consecutive_numbers() {
        let id = Uuid::nil();
        let block = |seat_no| seat_partition(id, seat_no);
        assert_eq!(block(1), block(500));
        assert_ne!(block(500), block(501));
        assert_eq!(block(501), block(1000));
        assert_eq!(seat_partitions(id, 50), [block(1)]);
        assert_eq!(seat_partitions(id, 500), [block(1)]);
        assert_eq!(
            seat_partitions(id, 1001),
            [block(1), block(501), block(1001)]
        );
    }

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
