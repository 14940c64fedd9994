//! The checks after an on-sale: the final state as every fan reads it (reservations, balance,
//! ledger) against what each fan was told along the way.
//!
//! The invariants are DESIGN.md's: no seat booked twice, every ledger exact, sales equal to the
//! confirmed amounts. The honesty checks are Jepsen's: a 2xx must have been done, a 4xx must
//! not have been, and a request answered 5xx (or not at all) and then retried must have had at
//! most one effect in all. The queue checks compare the positions fans were shown with the
//! order in which they were in fact admitted.

use crate::client::{Answer, Api, Call, Chain};
use crate::fan::{Journal, Place};
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// One fan's records after the run, as the API shows them to the fan.
#[derive(Default)]
pub struct Account {
    pub reservations: Vec<Value>,
    pub balance: i64,
    /// Newest first, as listed.
    pub ledger: Vec<Value>,
    /// The fan's waiting-list entry, if they joined one.
    pub waitlist: Option<Value>,
}

/// Reads every fan's reservations, balance and ledger, and the waiting-list entry of those
/// who joined one.
pub async fn accounts(
    api: &Api,
    tokens: &[String],
    journals: &[Journal],
) -> Result<Vec<Account>, String> {
    let mut accounts = Vec::with_capacity(tokens.len());
    for (token, journal) in tokens.iter().zip(journals) {
        let bearer = format!("Bearer {token}");
        let headers = [("authorization", bearer.as_str())];
        let reservations =
            all_pages(api, "GET /me/reservations", "/me/reservations", &headers).await?;
        let chain = api
            .call(Call {
                endpoint: "GET /balance",
                method: Method::GET,
                path: "/balance".into(),
                headers: &headers,
                body: None,
            })
            .await;
        let balance = match chain.last() {
            Answer::Status(200, body) => body["balance"].as_i64().unwrap_or(-1),
            other => return Err(format!("balance: {other:?}")),
        };
        let ledger = all_pages(
            api,
            "GET /balance/transactions",
            "/balance/transactions",
            &headers,
        )
        .await?;
        let waitlist = match &journal.waitlist_schedule {
            Some(schedule_id) => {
                let chain = api
                    .call(Call {
                        endpoint: "GET /schedules/{id}/waitlist",
                        method: Method::GET,
                        path: format!("/schedules/{schedule_id}/waitlist"),
                        headers: &headers,
                        body: None,
                    })
                    .await;
                match chain.last() {
                    Answer::Status(200, body) => Some(body.clone()),
                    Answer::Status(404, _) => None,
                    other => return Err(format!("waiting-list entry: {other:?}")),
                }
            }
            None => None,
        };
        accounts.push(Account {
            reservations,
            balance,
            ledger,
            waitlist,
        });
    }
    Ok(accounts)
}

/// Every item of a paged list (`items`, `next_cursor`).
async fn all_pages(
    api: &Api,
    endpoint: &'static str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}?limit=100&cursor={cursor}"),
            None => format!("{path}?limit=100"),
        };
        let chain = api
            .call(Call {
                endpoint,
                method: Method::GET,
                path: page_path,
                headers,
                body: None,
            })
            .await;
        let body = match chain.last() {
            Answer::Status(200, body) => body.clone(),
            other => return Err(format!("{endpoint}: {other:?}")),
        };
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(items),
        }
    }
}

/// What the money check found for one fan: the ledger chains from 0 without a gap and ends at
/// the balance, which is charges − payments + refunds.
pub fn check_ledger(balance: i64, entries: &[Value]) -> Result<(), String> {
    // Newest first on the wire; the chain reads oldest first.
    let mut running = 0;
    let mut net = 0;
    for entry in entries.iter().rev() {
        let (before, after, amount) = (
            entry["balance_before"].as_i64().unwrap_or(-1),
            entry["balance_after"].as_i64().unwrap_or(-1),
            entry["amount"].as_i64().unwrap_or(-1),
        );
        if before != running {
            return Err(format!(
                "gap: an entry starts at {before}, the one before ended at {running}"
            ));
        }
        let signed = match entry["type"].as_str() {
            Some("CHARGE") | Some("REFUND") => amount,
            Some("PAYMENT") => -amount,
            other => return Err(format!("unknown entry type {other:?}")),
        };
        if after != before + signed || after < 0 {
            return Err(format!("entry {before} → {after} does not apply {signed}"));
        }
        net += signed;
        running = after;
    }
    if balance != running || balance != net {
        return Err(format!(
            "balance {balance}, ledger ends at {running}, charges − payments + refunds = {net}"
        ));
    }
    Ok(())
}

/// The books over all fans: statuses, confirmed seats and amounts.
pub struct Books {
    pub statuses: BTreeMap<String, u64>,
    /// (schedule, seat) → how many confirmed reservations hold it.
    pub confirmed_seats: HashMap<(String, u64), u32>,
    pub confirmed_amount: i64,
    /// Fans whose balance is not what their ledger says.
    pub money_failures: Vec<String>,
    /// When the last hold still HELD runs out (epoch ms).
    pub held_until: Option<i64>,
}

pub fn books(accounts: &[Account]) -> Books {
    let mut books = Books {
        statuses: BTreeMap::new(),
        confirmed_seats: HashMap::new(),
        confirmed_amount: 0,
        money_failures: Vec::new(),
        held_until: None,
    };
    for (fan, account) in accounts.iter().enumerate() {
        for reservation in &account.reservations {
            let status = reservation["status"].as_str().unwrap_or("?").to_owned();
            if status == "HELD" {
                let expires = reservation["expires_at"]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                    .map(|at| at.timestamp_millis());
                books.held_until = books.held_until.max(expires);
            }
            if status == "CONFIRMED" {
                books.confirmed_amount += reservation["amount"].as_i64().unwrap_or(0);
                for seat in reservation["seats"].as_array().into_iter().flatten() {
                    let key = (
                        reservation["schedule_id"].as_str().unwrap_or("").to_owned(),
                        seat["seat_no"].as_u64().unwrap_or(0),
                    );
                    *books.confirmed_seats.entry(key).or_default() += 1;
                }
            }
            *books.statuses.entry(status).or_default() += 1;
        }
        if let Err(failure) = check_ledger(account.balance, &account.ledger) {
            books.money_failures.push(format!("fan {fan}: {failure}"));
        }
    }
    books
}

/// Answers that were not true, found by comparing what fans were told with the final state.
#[derive(Default)]
pub struct Honesty {
    /// Checks made, per rule.
    pub checked: BTreeMap<&'static str, u64>,
    /// Broken, per rule, with examples.
    pub broken: BTreeMap<&'static str, Vec<String>>,
    /// Requests that never got a definite answer before the deadline.
    pub unknown: u64,
}

impl Honesty {
    fn check(&mut self, rule: &'static str, ok: bool, example: impl FnOnce() -> String) {
        *self.checked.entry(rule).or_default() += 1;
        if !ok {
            self.broken.entry(rule).or_default().push(example());
        }
    }

    pub fn broken_count(&self) -> usize {
        self.broken.values().map(Vec::len).sum()
    }
}

fn status_of(reservations: &[Value], id: &str) -> Option<String> {
    reservations
        .iter()
        .find(|r| r["reservation_id"] == id)
        .and_then(|r| r["status"].as_str())
        .map(str::to_owned)
}

fn entries_for<'a>(ledger: &'a [Value], kind: &'a str, related: &'a str) -> usize {
    ledger
        .iter()
        .filter(|e| e["type"] == kind && e["related_id"] == related)
        .count()
}

/// A chain's answers, in order, for a report ("no answer" for a lost one).
fn answers_of(chain: &Chain) -> String {
    chain
        .answers
        .iter()
        .map(|answer| {
            answer
                .status()
                .map_or("no answer".to_owned(), |status| status.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A reservation as a report names it.
fn describe(reservation: &Value) -> String {
    format!(
        "{} {} seats {:?} created {} expires {}",
        reservation["reservation_id"],
        reservation["status"],
        seats_of(reservation),
        reservation["created_at"],
        reservation["expires_at"]
    )
}

/// When a reservation's hold runs out (epoch milliseconds).
fn expires_ms(reservation: &Value) -> Option<i64> {
    epoch_ms(&reservation["expires_at"])
}

fn created_ms(reservation: &Value) -> Option<i64> {
    epoch_ms(&reservation["created_at"])
}

fn epoch_ms(at: &Value) -> Option<i64> {
    at.as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.timestamp_millis())
}

fn seats_of(reservation: &Value) -> Vec<u64> {
    let mut seats: Vec<u64> = reservation["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|seat| seat["seat_no"].as_u64())
        .collect();
    seats.sort_unstable();
    seats
}

fn definite_status(chain: &Chain) -> Option<u16> {
    chain
        .last()
        .is_definite()
        .then(|| chain.last().status())
        .flatten()
}

fn millis(at: &Value) -> Option<i64> {
    at.as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.timestamp_millis())
}

/// The reservations a fan learnt of from the waiting list: offers shown while polling, and the
/// one the final entry names.
fn offered_to(journal: &Journal, account: &Account) -> Vec<String> {
    let mut ids: Vec<String> = journal
        .waitlist_views
        .iter()
        .chain(account.waitlist.iter())
        .filter_map(|view| view["reservation_id"].as_str())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Every rule of "every answer honest", fan by fan, and the seller rules (`limit`: the
/// concert's ticket limit).
pub fn honesty(journals: &[Journal], accounts: &[Account], limit: u64) -> Honesty {
    let mut honesty = Honesty::default();
    for (fan, (journal, account)) in journals.iter().zip(accounts).enumerate() {
        let reservations = &account.reservations;
        let ledger = &account.ledger;
        let chains = journal
            .holds
            .iter()
            .map(|(chain, _)| chain)
            .chain(journal.charges.iter())
            .chain(journal.pays.iter().map(|(chain, _)| chain))
            .chain(journal.cancels.iter().map(|(chain, _)| chain))
            .chain(journal.releases.iter().map(|(chain, _)| chain))
            .chain(journal.leaves.iter())
            .chain(journal.waitlist_joins.iter())
            .chain(journal.waitlist_leaves.iter().map(|(chain, _)| chain));
        honesty.unknown += chains
            .filter(|chain| definite_status(chain).is_none())
            .count() as u64;

        // Holds: a 201 holds what it says; every reservation the fan has was announced to
        // them (one effect per request, and a 409 is never the fan's own earlier attempt).
        let mut announced = Vec::new();
        for (chain, seats) in &journal.holds {
            match (definite_status(chain), chain.last()) {
                (Some(201), Answer::Status(_, body)) => {
                    let id = body["reservation_id"].as_str().unwrap_or("").to_owned();
                    let stored = reservations
                        .iter()
                        .find(|r| r["reservation_id"] == id.as_str());
                    honesty.check(
                        "a hold answered 201 holds the seats it names",
                        stored.is_some_and(|r| seats_of(r) == *seats),
                        || format!("fan {fan}: reservation {id} for {seats:?}: {stored:?}"),
                    );
                    announced.push(id);
                }
                (Some(409), _) if chain.had_unknown_attempt() => {
                    // An unannounced hold of the fan's on those seats that was still live
                    // when the 409 came back (one that had run out before, the kills' restarts
                    // being slow, freed its seats, which someone else may then have taken).
                    let own: Vec<&Value> = reservations
                        .iter()
                        .filter(|r| {
                            !journal_announces(journal, r)
                                && seats_of(r).iter().any(|seat| seats.contains(seat))
                                && expires_ms(r).is_none_or(|at| at > chain.last_answered_ms as i64)
                        })
                        .collect();
                    honesty.check(
                        "a 409 after a retry is never about the fan's own earlier attempt",
                        own.is_empty(),
                        || {
                            format!(
                                "fan {fan}: seats {seats:?} refused (sent at {} ms, answered at {} ms: {}), \
                                 held by their own unannounced hold: {}",
                                chain.first_sent_ms,
                                chain.last_answered_ms,
                                answers_of(chain),
                                own.iter()
                                    .map(|r| describe(r))
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            )
                        },
                    );
                }
                _ => {}
            }
        }
        // A waiting-list offer is announced by the entry that names it.
        let offers = offered_to(journal, account);
        announced.extend(offers.iter().cloned());
        let unknown_holds = journal
            .holds
            .iter()
            .filter(|(chain, _)| definite_status(chain).is_none())
            .count();
        let orphans: Vec<&Value> = reservations
            .iter()
            .filter(|r| {
                !announced
                    .iter()
                    .any(|id| r["reservation_id"] == id.as_str())
            })
            .collect();
        // An offer made to a fan who then left the waiting list before a poll showed it (the
        // offer stays theirs until it runs out, as docs/API.md says): one per time they
        // joined, of the date they waited for.
        let unseen_offers = if journal.waitlist_leaves.is_empty() {
            0
        } else {
            orphans
                .iter()
                .filter(|r| {
                    journal
                        .waitlist_schedule
                        .as_deref()
                        .is_some_and(|schedule| r["schedule_id"] == schedule)
                })
                .count()
                .min(journal.waitlist_joins.len())
        };
        // A hold whose answer was lost and which ran out before the retry reached the
        // service (the fan's retry, or the service's own after a lost answer from DynamoDB and
        // a stall): the retry rightly made a new one (the seats were free again), and the first
        // ended unpaid. Only where a hold request of those very seats was sent before the
        // orphan was made and was still unanswered after the orphan's time ran out.
        let retried_after_expiry = orphans
            .iter()
            .filter(|r| {
                let (Some(created_ms), Some(expired_ms)) = (created_ms(r), expires_ms(r)) else {
                    return false;
                };
                r["status"] == "EXPIRED"
                    && journal.holds.iter().any(|(chain, seats)| {
                        chain.first_sent_ms as i64 <= created_ms
                            && {
                                let mut asked = seats.clone();
                                asked.sort_unstable();
                                asked == seats_of(r)
                            }
                            && chain.last_answered_ms as i64 > expired_ms
                    })
            })
            .count();
        honesty.check(
            "every reservation was answered to its fan (one effect per hold request)",
            orphans.len() <= unknown_holds + unseen_offers + retried_after_expiry,
            || {
                let holds: Vec<String> = journal
                    .holds
                    .iter()
                    .map(|(chain, seats)| {
                        format!(
                            "seats {seats:?} sent at {} answered at {}: {}",
                            chain.first_sent_ms,
                            chain.last_answered_ms,
                            answers_of(chain)
                        )
                    })
                    .collect();
                format!(
                    "fan {fan}: {} reservation(s) never announced: {:?}; the fan's holds: {holds:?}; \
                     waiting list: joined {} time(s), left {} time(s), {} view(s)",
                    orphans.len(),
                    orphans
                        .iter()
                        .map(|r| describe(r))
                        .collect::<Vec<_>>(),
                    journal.waitlist_joins.len(),
                    journal.waitlist_leaves.len(),
                    journal.waitlist_views.len(),
                )
            },
        );

        // The ticket limit: a hold that would pass it is refused, and nobody ends with more.
        // (A first hold that ran out before the second was answered, slowed down by faults,
        // no longer counts: only a second hold made wholly within the first's time is judged.)
        for (chain, seats, first_until) in &journal.past_limit {
            if *first_until <= chain.last_answered_ms as i64 {
                continue;
            }
            honesty.check(
                "a hold past the ticket limit is refused",
                definite_status(chain) != Some(201),
                || format!("fan {fan}: {seats:?} held on top of a live hold"),
            );
        }
        let mut taken: BTreeMap<&str, u64> = BTreeMap::new();
        for reservation in reservations {
            if matches!(reservation["status"].as_str(), Some("HELD" | "CONFIRMED")) {
                *taken
                    .entry(reservation["schedule_id"].as_str().unwrap_or(""))
                    .or_default() += seats_of(reservation).len() as u64;
            }
        }
        for (schedule, seats) in taken {
            honesty.check(
                "no fan holds or owns more than the ticket limit of a date",
                seats <= limit,
                || format!("fan {fan}: {seats} seats of {schedule} (limit {limit})"),
            );
        }

        // The waiting list: one offer per entry, of the seats asked for, to the fan.
        if let Some(entry) = &account.waitlist {
            honesty.check(
                "a waiting-list entry is offered seats once",
                offers.len() <= 1,
                || format!("fan {fan}: entry {} offered {offers:?}", entry["entry_id"]),
            );
            if let Some(id) = entry["reservation_id"].as_str() {
                let stored = reservations.iter().find(|r| r["reservation_id"] == id);
                honesty.check(
                    "an offer holds the seats the fan asked for, in the fan's name",
                    stored
                        .is_some_and(|r| Some(seats_of(r).len() as u64) == entry["count"].as_u64()),
                    || {
                        format!(
                            "fan {fan}: offer {id} for {} seats: {stored:?}",
                            entry["count"]
                        )
                    },
                );
            }
        }

        // Charges: each 200 is one CHARGE entry; no more entries than requests.
        let mut answered_charges = 0;
        for chain in &journal.charges {
            if let (Some(200), Answer::Status(_, body)) = (definite_status(chain), chain.last()) {
                answered_charges += 1;
                let id = &body["transaction_id"];
                honesty.check(
                    "a charge answered 200 is in the ledger once",
                    ledger
                        .iter()
                        .filter(|e| e["type"] == "CHARGE" && &e["transaction_id"] == id)
                        .count()
                        == 1,
                    || format!("fan {fan}: charge {id}"),
                );
            }
        }
        let charges_in_ledger = ledger.iter().filter(|e| e["type"] == "CHARGE").count();
        let unknown_charges = journal
            .charges
            .iter()
            .filter(|chain| definite_status(chain).is_none())
            .count();
        honesty.check(
            "no charge without a request (retries with one key charge once)",
            charges_in_ledger >= answered_charges
                && charges_in_ledger <= answered_charges + unknown_charges,
            || format!("fan {fan}: {charges_in_ledger} CHARGE entries for {answered_charges} answered charges"),
        );

        // Payments.
        for (chain, reservation) in &journal.pays {
            let payments = entries_for(ledger, "PAYMENT", reservation);
            let status = status_of(reservations, reservation);
            match definite_status(chain) {
                Some(201) => {
                    let cancelled = journal
                        .cancels
                        .iter()
                        .any(|(c, r)| r == reservation && definite_status(c) == Some(200));
                    let expected = if cancelled { "CANCELLED" } else { "CONFIRMED" };
                    honesty.check(
                        "a payment answered 201 is confirmed and charged once",
                        payments == 1 && status.as_deref() == Some(expected),
                        || {
                            format!(
                                "fan {fan}: {reservation}: {payments} payments, status {status:?}"
                            )
                        },
                    );
                }
                Some(402) => honesty.check(
                    "a payment declined 402 charged nothing and released the hold",
                    payments == 0 && status.as_deref() == Some("RELEASED"),
                    || format!("fan {fan}: {reservation}: {payments} payments, status {status:?}"),
                ),
                Some(_) => honesty.check(
                    "a payment refused 4xx charged nothing",
                    payments == 0,
                    || {
                        format!(
                            "fan {fan}: {reservation}: refused {:?} but {payments} payments",
                            chain.last()
                        )
                    },
                ),
                None => honesty.check(
                    "a payment without an answer charged at most once",
                    payments <= 1,
                    || format!("fan {fan}: {reservation}: {payments} payments"),
                ),
            }
        }
        for reservation in reservations {
            let id = reservation["reservation_id"].as_str().unwrap_or("");
            honesty.check(
                "no reservation is paid twice",
                entries_for(ledger, "PAYMENT", id) <= 1,
                || {
                    format!(
                        "fan {fan}: {id} paid {} times",
                        entries_for(ledger, "PAYMENT", id)
                    )
                },
            );
        }

        // Cancellations and releases.
        for (chain, reservation) in &journal.cancels {
            let refunds = entries_for(ledger, "REFUND", reservation);
            let status = status_of(reservations, reservation);
            match definite_status(chain) {
                Some(200) => honesty.check(
                    "a cancellation answered 200 is cancelled and refunded once",
                    refunds == 1 && status.as_deref() == Some("CANCELLED"),
                    || format!("fan {fan}: {reservation}: {refunds} refunds, status {status:?}"),
                ),
                Some(_) => honesty.check(
                    "a cancellation refused 4xx refunded nothing",
                    refunds == 0,
                    || {
                        format!(
                            "fan {fan}: {reservation}: refused {:?} but refunded",
                            chain.last()
                        )
                    },
                ),
                None => {}
            }
        }
        for (chain, reservation) in &journal.releases {
            if definite_status(chain) == Some(204) {
                let status = status_of(reservations, reservation);
                honesty.check(
                    "a release answered 204 released the hold",
                    matches!(status.as_deref(), Some("RELEASED") | Some("EXPIRED")),
                    || format!("fan {fan}: {reservation}: status {status:?}"),
                );
            }
        }
    }
    honesty
}

/// Offers go in line order: when a fan got an offer, everyone who joined before them asking
/// for as many seats or fewer (of any grade), whose joining had been answered by then and who
/// was still on the line, got theirs first.
pub fn waitlist_order(journals: &[Journal], accounts: &[Account], honesty: &mut Honesty) {
    struct Entry {
        fan: usize,
        joined_ms: i64,
        /// When the fan was told they were on the line.
        answered_ms: i64,
        count: u64,
        offered_ms: Option<i64>,
        left_ms: Option<i64>,
    }
    let entries: Vec<Entry> = journals
        .iter()
        .zip(accounts)
        .enumerate()
        .filter_map(|(fan, (journal, account))| {
            let entry = account.waitlist.as_ref()?;
            let offered_ms = entry["reservation_id"].as_str().and_then(|id| {
                let reservation = account
                    .reservations
                    .iter()
                    .find(|r| r["reservation_id"] == id)?;
                millis(&reservation["created_at"])
            });
            let left_ms = journal
                .waitlist_leaves
                .iter()
                .filter(|(chain, _)| definite_status(chain) == Some(204))
                .map(|(_, at)| *at as i64)
                .min();
            Some(Entry {
                fan,
                joined_ms: millis(&entry["joined_at"])?,
                answered_ms: journal.waitlist_joins.first()?.last_answered_ms as i64,
                count: entry["count"].as_u64()?,
                offered_ms,
                left_ms,
            })
        })
        .collect();
    for later in &entries {
        let Some(offered_ms) = later.offered_ms else {
            continue;
        };
        for earlier in &entries {
            if earlier.joined_ms >= later.joined_ms
                || earlier.count > later.count
                || earlier.answered_ms >= offered_ms
            {
                continue;
            }
            let served_first = earlier.offered_ms.is_some_and(|at| at <= offered_ms);
            let gone = earlier.left_ms.is_some_and(|at| at <= offered_ms);
            honesty.check(
                "waiting-list offers go in line order",
                served_first || gone,
                || {
                    format!(
                        "fan {} (joined {}, {} seats) was offered seats at {offered_ms} before fan {} (joined {}, {} seats)",
                        later.fan, later.joined_ms, later.count, earlier.fan, earlier.joined_ms, earlier.count
                    )
                },
            );
        }
    }
}

/// Whether the fan was told about this reservation by a 201.
fn journal_announces(journal: &Journal, reservation: &Value) -> bool {
    journal.holds.iter().any(|(chain, _)| {
        definite_status(chain) == Some(201)
            && chain.last().body()["reservation_id"] == reservation["reservation_id"]
    })
}

/// How the positions fans were shown compare with the order they were admitted in.
#[derive(Default)]
pub struct Positions {
    pub admitted: usize,
    pub polls: usize,
    /// Pairs in one shard admitted out of number order (must be 0).
    pub out_of_order: Vec<String>,
    /// Polls that showed fewer people ahead than were in fact admitted ahead afterwards (must
    /// be 0).
    pub understated: Vec<String>,
    /// Polls that showed the same position as another fan's poll of the same instant in the
    /// same shard (must be 0 with one shard).
    pub shared_positions: Vec<String>,
    /// Pairs in different shards admitted against the arrival bound: the first was answered
    /// its place more than a second before the second asked, yet admitted later (must be 0).
    pub against_arrival: Vec<String>,
    /// How much later than the later arrival each of those was admitted, ms.
    pub against_arrival_late_ms: Vec<u64>,
    /// How far positions were above the people admitted ahead afterwards, per poll.
    pub overstatement: Vec<u64>,
    /// |estimated − actual| wait, in seconds, per poll of a fan later admitted; and the actual
    /// waits.
    pub wait_errors: Vec<u64>,
    pub actual_waits: Vec<u64>,
}

/// Checks the positions shown against the admissions that happened. `shards` is
/// `QUEUE_ENTRY_SHARDS`: a position is the people ahead in the fan's shard times it.
pub fn positions(journals: &[Journal], shards: u64) -> Positions {
    let shards = shards.max(1);
    let mut out = Positions::default();
    // Admitted places by shard: (number, admitted ms, fan).
    let mut by_shard: BTreeMap<u64, Vec<(u64, u64, usize)>> = BTreeMap::new();
    for (fan, journal) in journals.iter().enumerate() {
        if let Some((place, at)) = &journal.admitted {
            by_shard
                .entry(place.shard)
                .or_default()
                .push((place.number, *at, fan));
        }
    }
    out.admitted = by_shard.values().map(Vec::len).sum();
    for admitted in by_shard.values_mut() {
        admitted.sort_unstable();
        for pair in admitted.windows(2) {
            let ((n1, at1, f1), (n2, at2, f2)) = (pair[0], pair[1]);
            if at1 > at2 {
                out.out_of_order.push(format!(
                    "number {n1} (fan {f1}) admitted at {at1}, after number {n2} (fan {f2}) at {at2}"
                ));
            }
        }
    }
    // Each poll against the admissions that followed it.
    let place_of_token = |journal: &Journal, token: &str| -> Option<Place> {
        journal
            .places
            .iter()
            .find(|(place, _)| place.token_id == token)
            .map(|(place, _)| place.clone())
    };
    // Polls by shard, for the same-instant comparison: (answered, sent, position, fan).
    let mut shard_polls: BTreeMap<u64, Vec<(u64, u64, u64, usize)>> = BTreeMap::new();
    for (fan, journal) in journals.iter().enumerate() {
        for poll in &journal.polls {
            let Some(place) = place_of_token(journal, &poll.token_id) else {
                continue;
            };
            out.polls += 1;
            let ahead_after = by_shard.get(&place.shard).map_or(0, |admitted| {
                admitted
                    .iter()
                    .filter(|(number, at, _)| *number < place.number && *at >= poll.answered_ms)
                    .count() as u64
            });
            let shown_in_shard = poll.position / shards;
            if shown_in_shard < ahead_after {
                out.understated.push(format!(
                    "fan {fan} (shard {}, number {}) was shown position {} at {}, and {ahead_after} of their shard were admitted ahead of them afterwards",
                    place.shard, place.number, poll.position, poll.answered_ms
                ));
            } else {
                out.overstatement.push(shown_in_shard - ahead_after);
            }
            if let Some((admitted, at)) = &journal.admitted {
                if admitted.token_id == poll.token_id {
                    let actual = at.saturating_sub(poll.answered_ms) / 1000;
                    out.actual_waits.push(actual);
                    out.wait_errors
                        .push(poll.estimated_wait_seconds.abs_diff(actual));
                }
            }
            shard_polls.entry(place.shard).or_default().push((
                poll.answered_ms,
                poll.sent_ms,
                poll.position,
                fan,
            ));
        }
    }
    // With one shard, two fans' polls that overlapped in time and saw no admission in
    // between cannot show the same position. Admission writes are a few a second; only
    // polls that both began and ended between two admissions are compared.
    if shards == 1 {
        let mut admissions: Vec<u64> = by_shard.values().flatten().map(|(_, at, _)| *at).collect();
        admissions.sort_unstable();
        admissions.dedup();
        let epoch = |sent: u64, answered: u64| {
            let first = admissions.partition_point(|&at| at < sent);
            let last = admissions.partition_point(|&at| at <= answered);
            (first == last).then_some(first)
        };
        for polls in shard_polls.values() {
            let mut seen: HashMap<(usize, u64), usize> = HashMap::new();
            for &(answered, sent, position, fan) in polls {
                let Some(epoch) = epoch(sent, answered) else {
                    continue;
                };
                if let Some(&other) = seen.get(&(epoch, position)) {
                    if other != fan {
                        out.shared_positions.push(format!(
                            "fans {other} and {fan} were both shown position {position} between the same two admissions"
                        ));
                    }
                } else {
                    seen.insert((epoch, position), fan);
                }
            }
        }
    }
    // Across shards: the arrival bound of docs/API.md (more than a second apart: in order).
    let arrivals: Vec<(u64, u64, u64, u64, usize)> = journals
        .iter()
        .enumerate()
        .filter_map(|(fan, journal)| {
            let (place, at) = journal.admitted.as_ref()?;
            let (_, chain) = journal
                .places
                .iter()
                .find(|(p, _)| p.token_id == place.token_id)?;
            Some((
                chain.first_sent_ms,
                chain.last_answered_ms,
                place.shard,
                *at,
                fan,
            ))
        })
        .collect();
    let mut by_answer = arrivals.clone();
    by_answer.sort_unstable_by_key(|a| a.1);
    let mut by_sent = arrivals;
    by_sent.sort_unstable_by_key(|a| a.0);
    // For each fan B, the latest admission among those answered more than a second before B
    // asked must not come after B's.
    let mut latest: Option<(u64, usize)> = None;
    let mut next = 0;
    for &(sent, _, _, at, fan) in &by_sent {
        while next < by_answer.len() && by_answer[next].1 + 1_000 < sent {
            let (_, _, _, other_at, other) = by_answer[next];
            latest = latest.max(Some((other_at, other)));
            next += 1;
        }
        if let Some((other_at, other)) = latest {
            if other_at > at {
                out.against_arrival_late_ms.push(other_at - at);
                out.against_arrival.push(format!(
                    "fan {other} had their place more than a second before fan {fan} asked, and was admitted {} ms after them",
                    other_at - at
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fan::Poll;
    use serde_json::json;

    #[test]
    fn when_ledger_chains_should_pass_and_when_gapped_should_fail() {
        let entry = |kind: &str, amount: i64, before: i64, after: i64| json!({"type": kind, "amount": amount, "balance_before": before, "balance_after": after});
        // Newest first, as the API lists them.
        let good = [
            entry("REFUND", 50, 0, 50),
            entry("PAYMENT", 100, 100, 0),
            entry("CHARGE", 100, 0, 100),
        ];
        assert_eq!(check_ledger(50, &good), Ok(()));
        assert!(check_ledger(40, &good).is_err());
        let gapped = [entry("PAYMENT", 100, 90, -10), entry("CHARGE", 100, 0, 100)];
        assert!(check_ledger(-10, &gapped).is_err());
    }

    fn chain(answers: Vec<Answer>, first_sent_ms: u64, last_answered_ms: u64) -> Chain {
        Chain {
            answers,
            first_sent_ms,
            last_answered_ms,
        }
    }

    fn admitted_fan(shard: u64, number: u64, entered_ms: u64, admitted_ms: u64) -> Journal {
        let place = Place {
            token_id: format!("{shard}-{number}"),
            shard,
            number,
        };
        Journal {
            places: vec![(
                place.clone(),
                chain(
                    vec![Answer::Status(201, json!({}))],
                    entered_ms,
                    entered_ms + 10,
                ),
            )],
            admitted: Some((place, admitted_ms)),
            ..Journal::default()
        }
    }

    #[test]
    fn admissions_out_of_number_order_in_a_shard_should_be_found() {
        let journals = vec![
            admitted_fan(0, 1, 0, 5_000),
            admitted_fan(0, 2, 0, 4_000),
            admitted_fan(1, 1, 0, 3_000),
        ];
        let found = positions(&journals, 2);
        assert_eq!(found.out_of_order.len(), 1);
    }

    #[test]
    fn a_position_below_the_people_admitted_ahead_later_should_be_found() {
        let mut waiting = admitted_fan(0, 3, 0, 9_000);
        waiting.polls.push(Poll {
            token_id: "0-3".into(),
            sent_ms: 900,
            answered_ms: 1_000,
            position: 0,
            estimated_wait_seconds: 8,
        });
        let journals = vec![
            admitted_fan(0, 1, 0, 2_000),
            admitted_fan(0, 2, 0, 3_000),
            waiting,
        ];
        let found = positions(&journals, 1);
        assert_eq!(found.understated.len(), 1, "two were ahead, zero shown");
        assert!(found.out_of_order.is_empty());
        assert_eq!(found.wait_errors, [0]);
    }

    #[test]
    fn two_fans_shown_one_position_between_the_same_admissions_should_be_found() {
        let mut a = admitted_fan(0, 5, 0, 9_000);
        let mut b = admitted_fan(0, 6, 0, 9_500);
        for (journal, token) in [(&mut a, "0-5"), (&mut b, "0-6")] {
            journal.polls.push(Poll {
                token_id: token.into(),
                sent_ms: 1_000,
                answered_ms: 1_100,
                position: 2,
                estimated_wait_seconds: 5,
            });
        }
        let found = positions(&[admitted_fan(0, 1, 0, 500), a, b], 1);
        assert_eq!(found.shared_positions.len(), 1);
    }

    #[test]
    fn a_later_arrival_admitted_first_across_shards_should_be_found() {
        // Fan 0 had their place at 10 ms; fan 1 asked at 5 s; fan 1 went first.
        let journals = vec![
            admitted_fan(0, 1, 0, 9_000),
            admitted_fan(1, 1, 5_000, 6_000),
        ];
        assert_eq!(positions(&journals, 2).against_arrival.len(), 1);
        // Within a second of each other: either order is within the bound.
        let journals = vec![admitted_fan(0, 1, 0, 9_000), admitted_fan(1, 1, 500, 6_000)];
        assert!(positions(&journals, 2).against_arrival.is_empty());
    }

    #[test]
    fn an_unannounced_reservation_should_break_honesty() {
        let hold = chain(
            vec![
                Answer::Lost("timeout".into()),
                Answer::Status(409, json!({"error": {"code": "SEAT_UNAVAILABLE"}})),
            ],
            0,
            10,
        );
        let journal = Journal {
            holds: vec![(hold, vec![3, 4])],
            ..Journal::default()
        };
        let account = Account {
            reservations: vec![json!({
                "reservation_id": "r1", "status": "HELD",
                "seats": [{"seat_no": 3}, {"seat_no": 4}],
            })],
            ..Account::default()
        };
        let found = honesty(&[journal], &[account], 4);
        assert_eq!(found.broken_count(), 2, "{:?}", found.broken);
    }

    #[test]
    fn a_hold_remade_after_the_first_ran_out_inside_one_slow_request_should_pass() {
        // One request, answered 201 (r2) 20 s after it was sent: the service's own retry,
        // after a lost answer and a stall, found its first hold (r1) run out and made a new one.
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .expect("in range")
                .to_rfc3339()
        };
        let seats = json!([{"seat_no": 3}, {"seat_no": 4}]);
        let sent = 1_780_308_000_000_i64;
        let account = |r1_created: i64| Account {
            reservations: vec![
                json!({"reservation_id": "r1", "status": "EXPIRED", "seats": seats,
                       "created_at": at(r1_created), "expires_at": at(r1_created + 15_000)}),
                json!({"reservation_id": "r2", "status": "HELD", "seats": seats,
                       "created_at": at(sent + 19_000), "expires_at": at(sent + 34_000)}),
            ],
            ..Account::default()
        };
        let journal = || Journal {
            holds: vec![(
                chain(
                    vec![Answer::Status(
                        201,
                        json!({"reservation_id": "r2", "status": "HELD"}),
                    )],
                    sent as u64,
                    sent as u64 + 20_000,
                ),
                vec![3, 4],
            )],
            ..Journal::default()
        };
        let found = honesty(&[journal()], &[account(sent + 7)], 4);
        assert_eq!(found.broken_count(), 0, "{:?}", found.broken);
        // A hold made before the request was sent is not its earlier attempt.
        let found = honesty(&[journal()], &[account(sent - 7)], 4);
        assert_eq!(found.broken_count(), 1, "{:?}", found.broken);
    }

    #[test]
    fn a_hold_past_the_limit_that_succeeded_should_break_the_rules() {
        let ok = |id: &str| Answer::Status(201, json!({"reservation_id": id, "status": "HELD"}));
        let journal = Journal {
            holds: vec![
                (chain(vec![ok("r1")], 0, 10), vec![1, 2, 3]),
                (chain(vec![ok("r2")], 20, 30), vec![7, 8]),
            ],
            past_limit: vec![(chain(vec![ok("r2")], 20, 30), vec![7, 8], 300_000)],
            ..Journal::default()
        };
        let seats = |nos: &[u64]| {
            nos.iter()
                .map(|n| json!({"seat_no": n}))
                .collect::<Vec<_>>()
        };
        let account = Account {
            reservations: vec![
                json!({"reservation_id": "r1", "status": "CONFIRMED", "schedule_id": "s", "seats": seats(&[1, 2, 3])}),
                json!({"reservation_id": "r2", "status": "HELD", "schedule_id": "s", "seats": seats(&[7, 8])}),
            ],
            ..Account::default()
        };
        let found = honesty(&[journal], &[account], 4);
        assert_eq!(
            found.broken.keys().copied().collect::<Vec<_>>(),
            [
                "a hold past the ticket limit is refused",
                "no fan holds or owns more than the ticket limit of a date"
            ]
        );
    }

    #[test]
    fn an_offer_to_a_later_fan_first_should_be_found() {
        let fan = |joined: &str, answered: u64, count: u64, offered: Option<&str>| {
            let journal = Journal {
                waitlist_joins: vec![chain(
                    vec![Answer::Status(201, json!({}))],
                    answered - 5,
                    answered,
                )],
                ..Journal::default()
            };
            let mut account = Account {
                waitlist: Some(json!({
                    "joined_at": joined, "count": count,
                    "reservation_id": offered.map(|_| "r"),
                })),
                ..Account::default()
            };
            if let Some(at) = offered {
                account
                    .reservations
                    .push(json!({"reservation_id": "r", "created_at": at}));
            }
            (journal, account)
        };
        // Fan 0 joined first for 1 seat; fan 1 joined later for 2 and was offered them while
        // fan 0 waited on.
        let (j0, a0) = fan("2026-06-01T10:00:00Z", 1_780_308_000_100, 1, None);
        let (j1, a1) = fan(
            "2026-06-01T10:00:01Z",
            1_780_308_001_100,
            2,
            Some("2026-06-01T10:00:05Z"),
        );
        let mut found = Honesty::default();
        waitlist_order(&[j0, j1], &[a0, a1], &mut found);
        assert_eq!(found.broken_count(), 1, "{:?}", found.broken);
        // Fan 0 asking for more than fan 1 got: no rule broken.
        let (j0, a0) = fan("2026-06-01T10:00:00Z", 1_780_308_000_100, 3, None);
        let (j1, a1) = fan(
            "2026-06-01T10:00:01Z",
            1_780_308_001_100,
            2,
            Some("2026-06-01T10:00:05Z"),
        );
        let mut found = Honesty::default();
        waitlist_order(&[j0, j1], &[a0, a1], &mut found);
        assert_eq!(found.broken_count(), 0);
    }
}
