//! One fan of the on-sale: queue, wait, look, hold, then follow their plan; every request
//! retried as the contract allows, and what the fan was told kept in their journal for the
//! checks.

use crate::client::{Answer, Api, Call, Chain};
use reqwest::Method;
use serde_json::{json, Value};
use shared::queue::PublishedStanding;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What a fan does once a hold succeeds; fixed by the fan's number so runs are comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Plan {
    /// Charge the balance, pay.
    Pay,
    /// Pay, then cancel the booking for a refund.
    PayThenCancel,
    /// Give the seats back at once.
    Release,
    /// Leave the line and let the hold run out.
    Abandon,
    /// Pay without charging enough: declined, and the hold is released.
    Decline,
}

impl Plan {
    pub fn of(fan: usize) -> Self {
        match fan % 20 {
            0..=10 => Plan::Pay,
            11..=12 => Plan::PayThenCancel,
            13..=14 => Plan::Release,
            15..=17 => Plan::Abandon,
            _ => Plan::Decline,
        }
    }

    /// How many seats side by side the fan wants: 1 to 4.
    pub fn seats(fan: usize) -> usize {
        [2, 1, 2, 3, 2, 4, 1, 2, 3, 2][fan % 10]
    }

    /// Half the fans aim at the front rows, where everyone collides.
    fn aims_at_front(fan: usize) -> bool {
        fan.is_multiple_of(2)
    }

    /// One fan in eight tries to take more than the ticket limit: once their hold succeeds, a
    /// second hold that would pass it.
    pub fn greedy(fan: usize) -> bool {
        fan % 8 == 5
    }

    /// Three fans in four who find the date sold out join its waiting list.
    pub fn waits(fan: usize) -> bool {
        !fan.is_multiple_of(4)
    }
}

/// Live counters for the progress line.
#[derive(Default)]
pub struct Progress {
    pub entered: AtomicU64,
    pub admitted: AtomicU64,
    pub holds: AtomicU64,
    pub conflicts: AtomicU64,
    pub paid: AtomicU64,
    pub done: AtomicU64,
    /// Fans on the waiting list, waiting for an offer.
    pub on_waitlist: AtomicU64,
}

/// What the fan ended up doing.
#[derive(Default, Debug)]
pub struct Outcome {
    pub admitted: bool,
    pub held: bool,
    pub paid: bool,
    pub cancelled: bool,
    pub declined: bool,
    pub conflicts: u32,
    pub sold_out: bool,
    pub gave_up: bool,
    /// Times the fan found their place ended and took a new one.
    pub reentered: u32,
    /// The hold ran out before the payment reached it (410).
    pub hold_ran_out: bool,
    /// A hold past the ticket limit was refused (409 TICKET_LIMIT_REACHED).
    pub refused_past_limit: bool,
    pub waitlisted: bool,
    /// Seats came from the waiting list.
    pub offered: bool,
}

/// A place in line as the queue token's claims name it.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub token_id: String,
    pub shard: u64,
    pub number: u64,
}

/// One answer to a poll while waiting.
#[derive(Clone, Debug)]
pub struct Poll {
    pub token_id: String,
    pub sent_ms: u64,
    pub answered_ms: u64,
    pub position: u64,
    pub estimated_wait_seconds: u64,
}

/// Everything the fan asked and was told, for the checks after the run.
#[derive(Default, Debug)]
pub struct Journal {
    /// Each place the fan was given, with the chain that gave it.
    pub places: Vec<(Place, Chain)>,
    pub polls: Vec<Poll>,
    /// The place that was admitted, and when (the service's clock, epoch ms).
    pub admitted: Option<(Place, u64)>,
    /// Hold chains with the seats asked for.
    pub holds: Vec<(Chain, Vec<u64>)>,
    pub charges: Vec<Chain>,
    /// Payment chains with the reservation paid.
    pub pays: Vec<(Chain, String)>,
    pub cancels: Vec<(Chain, String)>,
    pub releases: Vec<(Chain, String)>,
    pub leaves: Vec<Chain>,
    /// Second holds that would pass the ticket limit, with the seats asked for and when the
    /// first hold ran out (epoch ms).
    pub past_limit: Vec<(Chain, Vec<u64>, i64)>,
    /// The date whose waiting list the fan joined.
    pub waitlist_schedule: Option<String>,
    /// Joining the waiting list, and leaving it (with when, the service's clock).
    pub waitlist_joins: Vec<Chain>,
    pub waitlist_leaves: Vec<(Chain, u64)>,
    /// Each answer of `GET /schedules/{id}/waitlist` the fan got.
    pub waitlist_views: Vec<Value>,
}

/// What the fan needs to know about the run.
pub struct Setting<'a> {
    pub api: &'a Api,
    pub progress: &'a Progress,
    pub concert_id: &'a str,
    /// `QUEUE_ACTIVE_TTL_SECONDS`: an ACTIVE token's `active_until` less this is when it was
    /// admitted.
    pub active_ttl_seconds: u64,
    /// `HOLD_TTL_SECONDS`: how long a waiting-list fan keeps waiting once everyone else is done.
    pub hold_ttl_seconds: u64,
    pub fans: u64,
    pub deadline: Instant,
}

/// A request that needs an answer to go on with: the chain's verdict, or an error naming it.
fn definite(chain: &Chain, what: &str) -> Result<(u16, Value), String> {
    match chain.last() {
        Answer::Status(status, body) if chain.last().is_definite() => Ok((*status, body.clone())),
        other => Err(format!("{what}: no answer before the deadline ({other:?})")),
    }
}

/// The claims of a queue token (its middle part), read without checking the signature: the
/// fan only wants to know its place.
pub fn place_of(queue_token: &str) -> Option<Place> {
    use base64::Engine;
    let payload = queue_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(Place {
        token_id: claims["tid"].as_str()?.to_owned(),
        shard: claims["shd"].as_u64().unwrap_or(0),
        number: claims["num"].as_u64()?,
    })
}

/// One fan: queue, wait, look, hold, then follow their plan.
pub async fn fan(
    setting: &Setting<'_>,
    number: usize,
    token: &str,
    journal: &mut Journal,
) -> Result<Outcome, String> {
    let api = setting.api;
    let mut outcome = Outcome::default();
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let enter = || async {
        api.call(Call {
            endpoint: "POST /queue/tokens",
            method: Method::POST,
            path: "/queue/tokens".into(),
            headers: &auth,
            body: Some(json!({ "concert_id": setting.concert_id })),
        })
        .await
    };
    let chain = enter().await;
    let (_, body) = definite(&chain, "enter")?;
    setting.progress.entered.fetch_add(1, Relaxed);
    let mut queue_token = body["queue_token"]
        .as_str()
        .ok_or(format!("enter: {body}"))?
        .to_owned();
    journal.places.push((
        place_of(&queue_token).ok_or("enter: unreadable token")?,
        chain,
    ));

    // Wait to be admitted, looking about once a second (spread so that fans do not look in
    // lockstep). As the practice page does, a fan follows the line from the progress document
    // (through the edge, `Api::queue_progress`) and its own token, and asks the API only once
    // the document shows admission has reached its place, or when the document is unusable
    // (a pre-queue place, an error). A place that ends while waiting (passed over after a
    // failed entry) is taken again, as a fan would.
    loop {
        if Instant::now() > setting.deadline {
            outcome.gave_up = true;
            return Ok(outcome);
        }
        let place = place_of(&queue_token).ok_or("poll: unreadable token")?;
        let edge = api.queue_progress(setting.concert_id).await;
        let standing = edge.document.as_ref().and_then(|document| {
            document.standing(place.shard as u32, place.number, chrono::Utc::now())
        });
        if let Some(PublishedStanding::Waiting {
            position,
            estimated_wait_seconds,
        }) = standing
        {
            // The document is as old as the edge's request for it.
            journal.polls.push(Poll {
                token_id: place.token_id,
                sent_ms: edge.sent_ms,
                answered_ms: edge.answered_ms,
                position,
                estimated_wait_seconds,
            });
            tokio::time::sleep(Duration::from_millis(800 + (number as u64 * 37) % 400)).await;
            continue;
        }
        let headers = [
            ("authorization", bearer.as_str()),
            ("x-queue-token", queue_token.as_str()),
        ];
        let sent_ms = api.now_ms();
        let answer = api
            .once(Call {
                endpoint: "GET /queue/tokens/current",
                method: Method::GET,
                path: "/queue/tokens/current".into(),
                headers: &headers,
                body: None,
            })
            .await;
        let answered_ms = api.now_ms();
        let body = answer.body();
        let ended = match answer.status() {
            Some(200) if body["status"] == "ACTIVE" => {
                let until = body["active_until"]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                    .ok_or(format!("poll: ACTIVE without active_until: {body}"))?;
                let admitted_ms =
                    until.timestamp_millis() as u64 - setting.active_ttl_seconds * 1000;
                journal.admitted = Some((place, admitted_ms));
                break;
            }
            Some(200) if body["status"] == "WAITING" => {
                journal.polls.push(Poll {
                    token_id: place.token_id,
                    sent_ms,
                    answered_ms,
                    position: body["position"].as_u64().unwrap_or(u64::MAX),
                    estimated_wait_seconds: body["estimated_wait_seconds"]
                        .as_u64()
                        .unwrap_or(u64::MAX),
                });
                false
            }
            Some(200) => true,
            Some(401) => true,
            Some(status) if status < 500 && status != 429 => {
                return Err(format!("poll: {status} {body}"))
            }
            _ => false,
        };
        if ended {
            outcome.reentered += 1;
            let chain = enter().await;
            let (_, body) = definite(&chain, "enter again")?;
            queue_token = body["queue_token"]
                .as_str()
                .ok_or(format!("enter again: {body}"))?
                .to_owned();
            journal.places.push((
                place_of(&queue_token).ok_or("enter again: unreadable token")?,
                chain,
            ));
            continue;
        }
        tokio::time::sleep(Duration::from_millis(800 + (number as u64 * 37) % 400)).await;
    }
    outcome.admitted = true;
    setting.progress.admitted.fetch_add(1, Relaxed);
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-queue-token", queue_token.as_str()),
    ];
    let get = |endpoint: &'static str, path: String| {
        api.call(Call {
            endpoint,
            method: Method::GET,
            path,
            headers: &headers,
            body: None,
        })
    };
    let concert_id = setting.concert_id;
    let (status, schedules) = definite(
        &get(
            "GET /concerts/{id}/schedules",
            format!("/concerts/{concert_id}/schedules"),
        )
        .await,
        "schedules",
    )?;
    let schedule_id = schedules["items"][0]["schedule_id"]
        .as_str()
        .ok_or(format!("schedules: {status} {schedules}"))?
        .to_owned();
    let wanted = Plan::seats(number);
    let mut hold = None;
    for attempt in 0..3 {
        if Instant::now() > setting.deadline {
            outcome.gave_up = true;
            return Ok(outcome);
        }
        let (status, map) = definite(
            &get(
                "GET /schedules/{id}/seats",
                format!("/schedules/{schedule_id}/seats"),
            )
            .await,
            "seat map",
        )?;
        let free: Vec<u64> = map["items"]
            .as_array()
            .ok_or(format!("seat map: {status} {map}"))?
            .iter()
            .filter(|seat| seat["status"] == "AVAILABLE")
            .filter_map(|seat| seat["seat_no"].as_u64())
            .collect();
        let Some(seats) = pick(&free, wanted, number, attempt) else {
            outcome.sold_out = true;
            if Plan::waits(number) && free.is_empty() {
                wait_for_offer(
                    setting,
                    number,
                    &bearer,
                    &headers,
                    &schedule_id,
                    wanted,
                    journal,
                    &mut outcome,
                )
                .await?;
            } else {
                leave(api, &headers, journal).await?;
            }
            return Ok(outcome);
        };
        let chain = api
            .call(Call {
                endpoint: "POST /reservations",
                method: Method::POST,
                path: "/reservations".into(),
                headers: &headers,
                body: Some(json!({ "schedule_id": schedule_id, "seat_nos": seats })),
            })
            .await;
        journal.holds.push((chain.clone(), seats));
        match definite(&chain, "hold")? {
            (201, body) => {
                hold = Some(body);
                break;
            }
            (409, _) => {
                outcome.conflicts += 1;
                setting.progress.conflicts.fetch_add(1, Relaxed);
            }
            (status, body) => return Err(format!("hold: {status} {body}")),
        }
    }
    let Some(hold) = hold else {
        // Three conflicts in a row: give the place up for someone else.
        leave(api, &headers, journal).await?;
        return Ok(outcome);
    };
    outcome.held = true;
    setting.progress.holds.fetch_add(1, Relaxed);
    if Plan::greedy(number) {
        let until = hold["expires_at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or(0, |at| at.timestamp_millis());
        let first = (wanted, until);
        past_limit(
            setting,
            number,
            &headers,
            &schedule_id,
            first,
            journal,
            &mut outcome,
        )
        .await?;
    }
    let reservation_id = hold["reservation_id"]
        .as_str()
        .ok_or(format!("hold: {hold}"))?
        .to_owned();
    let amount = hold["amount"].as_i64().unwrap_or(0);
    let plan = Plan::of(number);
    match plan {
        Plan::Release => {
            let chain = api
                .call(Call {
                    endpoint: "DELETE /reservations/{id}",
                    method: Method::DELETE,
                    path: format!("/reservations/{reservation_id}"),
                    headers: &auth,
                    body: None,
                })
                .await;
            journal.releases.push((chain.clone(), reservation_id));
            definite(&chain, "release")?;
            leave(api, &headers, journal).await?;
            return Ok(outcome);
        }
        Plan::Abandon => {
            leave(api, &headers, journal).await?;
            return Ok(outcome);
        }
        Plan::Pay | Plan::PayThenCancel | Plan::Decline => {}
    }
    // A declining fan charges one won too little.
    let charge = if plan == Plan::Decline {
        amount - 1
    } else {
        amount
    };
    let charge_key = uuid::Uuid::new_v4().to_string();
    let chain = api
        .call(Call {
            endpoint: "POST /balance/charge",
            method: Method::POST,
            path: "/balance/charge".into(),
            headers: &[
                ("authorization", bearer.as_str()),
                ("idempotency-key", &charge_key),
            ],
            body: Some(json!({ "amount": charge })),
        })
        .await;
    journal.charges.push(chain.clone());
    match definite(&chain, "charge")? {
        (200, _) => {}
        (status, body) => return Err(format!("charge: {status} {body}")),
    }
    let pay_key = uuid::Uuid::new_v4().to_string();
    let mut pay_headers = headers.to_vec();
    pay_headers.push(("idempotency-key", &pay_key));
    let chain = api
        .call(Call {
            endpoint: "POST /payments",
            method: Method::POST,
            path: "/payments".into(),
            headers: &pay_headers,
            body: Some(json!({ "reservation_id": reservation_id })),
        })
        .await;
    journal.pays.push((chain.clone(), reservation_id.clone()));
    match definite(&chain, "pay")? {
        (201, _) => {
            outcome.paid = true;
            setting.progress.paid.fetch_add(1, Relaxed);
        }
        (402, _) => {
            outcome.declined = true;
            leave(api, &headers, journal).await?;
            return Ok(outcome);
        }
        // Slowed down by faults, the fan took longer than the hold lasts.
        (410, _) => {
            outcome.hold_ran_out = true;
            leave(api, &headers, journal).await?;
            return Ok(outcome);
        }
        (status, body) => return Err(format!("pay: {status} {body}")),
    }
    if plan == Plan::PayThenCancel {
        let chain = api
            .call(Call {
                endpoint: "POST /reservations/{id}/cancel",
                method: Method::POST,
                path: format!("/reservations/{reservation_id}/cancel"),
                headers: &auth,
                body: None,
            })
            .await;
        journal.cancels.push((chain.clone(), reservation_id));
        outcome.cancelled = definite(&chain, "cancel")?.0 == 200;
    }
    Ok(outcome)
}

/// A second hold that, with the first (`held` seats until `held_until`), passes the ticket
/// limit: it must be refused while the first is live.
async fn past_limit(
    setting: &Setting<'_>,
    number: usize,
    headers: &[(&str, &str)],
    schedule_id: &str,
    (held, held_until): (usize, i64),
    journal: &mut Journal,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let api = setting.api;
    let chain = api
        .call(Call {
            endpoint: "GET /schedules/{id}/seats",
            method: Method::GET,
            path: format!("/schedules/{schedule_id}/seats"),
            headers,
            body: None,
        })
        .await;
    let (_, map) = definite(&chain, "seat map")?;
    let limit = map["ticket_limit"]["limit"].as_u64().unwrap_or(4) as usize;
    let free: Vec<u64> = map["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|seat| seat["status"] == "AVAILABLE")
        .filter_map(|seat| seat["seat_no"].as_u64())
        .collect();
    let extra = (limit + 1).saturating_sub(held).clamp(1, 4);
    let seats = match pick(&free, extra, number, 0) {
        Some(seats) => seats,
        None if free.len() >= extra => free[..extra].to_vec(),
        None => return Ok(()),
    };
    let chain = api
        .call(Call {
            endpoint: "POST /reservations",
            method: Method::POST,
            path: "/reservations".into(),
            headers,
            body: Some(json!({ "schedule_id": schedule_id, "seat_nos": seats })),
        })
        .await;
    journal.holds.push((chain.clone(), seats.clone()));
    journal.past_limit.push((chain.clone(), seats, held_until));
    match definite(&chain, "hold past the limit")? {
        (409, body) if body["error"]["code"] == "TICKET_LIMIT_REACHED" => {
            outcome.refused_past_limit = true;
        }
        // The seats went meanwhile; or the limit failed (the checks say so).
        (409, _) | (201, _) => {}
        (status, body) => return Err(format!("hold past the limit: {status} {body}")),
    }
    Ok(())
}

/// A fan who found the date sold out: joins its waiting list for the seats they wanted, gives
/// the place in line up, and waits for an offer, which they pay; they wait while others are
/// still shopping and a hold's time after (seats held then may still come free).
#[allow(clippy::too_many_arguments)]
async fn wait_for_offer(
    setting: &Setting<'_>,
    number: usize,
    bearer: &str,
    headers: &[(&str, &str)],
    schedule_id: &str,
    wanted: usize,
    journal: &mut Journal,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let api = setting.api;
    let path = format!("/schedules/{schedule_id}/waitlist");
    let chain = api
        .call(Call {
            endpoint: "POST /schedules/{id}/waitlist",
            method: Method::POST,
            path: path.clone(),
            headers,
            body: Some(json!({ "count": wanted })),
        })
        .await;
    journal.waitlist_joins.push(chain.clone());
    journal.waitlist_schedule = Some(schedule_id.to_owned());
    match definite(&chain, "join the waiting list")? {
        (200 | 201, _) => {}
        (status, body) => return Err(format!("join the waiting list: {status} {body}")),
    }
    outcome.waitlisted = true;
    leave(api, headers, journal).await?;
    let progress = setting.progress;
    progress.on_waitlist.fetch_add(1, Relaxed);
    let auth = [("authorization", bearer)];
    let patience = Duration::from_secs(setting.hold_ttl_seconds + 5);
    let mut others_done_at: Option<Instant> = None;
    let result = loop {
        let others_done =
            progress.done.load(Relaxed) + progress.on_waitlist.load(Relaxed) >= setting.fans;
        if !others_done {
            others_done_at = None;
        } else if others_done_at.is_none() {
            others_done_at = Some(Instant::now());
        }
        let waited_out = others_done_at.is_some_and(|at| at.elapsed() > patience);
        if Instant::now() > setting.deadline || waited_out {
            let chain = api
                .call(Call {
                    endpoint: "DELETE /schedules/{id}/waitlist",
                    method: Method::DELETE,
                    path: path.clone(),
                    headers: &auth,
                    body: None,
                })
                .await;
            journal.waitlist_leaves.push((chain.clone(), api.now_ms()));
            break definite(&chain, "leave the waiting list").map(drop);
        }
        let answer = api
            .once(Call {
                endpoint: "GET /schedules/{id}/waitlist",
                method: Method::GET,
                path: path.clone(),
                headers: &auth,
                body: None,
            })
            .await;
        if answer.status() == Some(200) {
            let view = answer.body().clone();
            journal.waitlist_views.push(view.clone());
            match view["status"].as_str() {
                Some("OFFERED") => {
                    outcome.offered = true;
                    break take_offer(setting, bearer, &view, journal, outcome).await;
                }
                Some("WAITING") => {}
                _ => break Ok(()),
            }
        }
        tokio::time::sleep(Duration::from_millis(1000 + (number as u64 * 53) % 500)).await;
    };
    progress.on_waitlist.fetch_sub(1, Relaxed);
    result
}

/// Pays an offer from the waiting list with the queue token that came with it.
async fn take_offer(
    setting: &Setting<'_>,
    bearer: &str,
    view: &Value,
    journal: &mut Journal,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let api = setting.api;
    let offer = &view["offer"];
    let (Some(reservation_id), Some(queue_token)) = (
        offer["reservation"]["reservation_id"].as_str(),
        offer["queue_token"].as_str(),
    ) else {
        return Err(format!("an offer without its reservation or token: {view}"));
    };
    let amount = offer["reservation"]["amount"].as_i64().unwrap_or(0);
    let charge_key = uuid::Uuid::new_v4().to_string();
    let chain = api
        .call(Call {
            endpoint: "POST /balance/charge",
            method: Method::POST,
            path: "/balance/charge".into(),
            headers: &[("authorization", bearer), ("idempotency-key", &charge_key)],
            body: Some(json!({ "amount": amount })),
        })
        .await;
    journal.charges.push(chain.clone());
    if definite(&chain, "charge for the offer")?.0 != 200 {
        return Err(format!("charge for the offer: {:?}", chain.last()));
    }
    let pay_key = uuid::Uuid::new_v4().to_string();
    let chain = api
        .call(Call {
            endpoint: "POST /payments",
            method: Method::POST,
            path: "/payments".into(),
            headers: &[
                ("authorization", bearer),
                ("x-queue-token", queue_token),
                ("idempotency-key", &pay_key),
            ],
            body: Some(json!({ "reservation_id": reservation_id })),
        })
        .await;
    journal
        .pays
        .push((chain.clone(), reservation_id.to_owned()));
    match definite(&chain, "pay the offer")? {
        (201, _) => {
            outcome.paid = true;
            setting.progress.paid.fetch_add(1, Relaxed);
        }
        (410, _) => outcome.hold_ran_out = true,
        (status, body) => return Err(format!("pay the offer: {status} {body}")),
    }
    Ok(())
}

/// Gives the place in line up.
async fn leave(api: &Api, headers: &[(&str, &str)], journal: &mut Journal) -> Result<(), String> {
    let chain = api
        .call(Call {
            endpoint: "DELETE /queue/tokens/current",
            method: Method::DELETE,
            path: "/queue/tokens/current".into(),
            headers,
            body: None,
        })
        .await;
    journal.leaves.push(chain.clone());
    definite(&chain, "leave")?;
    Ok(())
}

/// `count` seats side by side from `free` (sorted seat numbers): the frontmost run for a fan
/// who aims at the front, a run at a spot picked from the fan's number otherwise. `None` when
/// no such run is left.
pub fn pick(free: &[u64], count: usize, fan: usize, attempt: usize) -> Option<Vec<u64>> {
    let runs: Vec<&[u64]> = free
        .windows(count)
        .filter(|w| w[count - 1] - w[0] == count as u64 - 1)
        .collect();
    if runs.is_empty() {
        return None;
    }
    let index = if Plan::aims_at_front(fan) {
        // The front few runs, so that fans aiming there collide often but not always.
        (fan / 2 + attempt) % runs.len().min(4)
    } else {
        (fan * 7919 + attempt * 104_729) % runs.len()
    };
    Some(runs[index].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_seats_side_by_side_are_free_should_pick_a_run() {
        let free = [1, 2, 3, 5, 6, 9];
        let run = pick(&free, 2, 1, 0).unwrap();
        assert_eq!(run.len(), 2);
        assert_eq!(run[1], run[0] + 1);
        assert_eq!(pick(&free, 3, 0, 0), Some(vec![1, 2, 3]));
        assert_eq!(pick(&free, 4, 0, 0), None);
    }

    #[test]
    fn when_fans_are_numbered_should_mix_every_plan() {
        let plans: std::collections::BTreeSet<Plan> = (0..20).map(Plan::of).collect();
        assert_eq!(plans.len(), 5);
        let sizes: std::collections::BTreeSet<usize> = (0..10).map(Plan::seats).collect();
        assert_eq!(sizes, [1, 2, 3, 4].into());
    }

    #[test]
    fn a_queue_token_should_name_its_place() {
        use base64::Engine;
        let claims = json!({"sub": "u", "tid": "t-1", "num": 7, "shd": 3});
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).unwrap());
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.signature");
        assert_eq!(
            place_of(&token),
            Some(Place {
                token_id: "t-1".into(),
                shard: 3,
                number: 7
            })
        );
    }
}
