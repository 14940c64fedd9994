//! What a practice run costs: one fan's whole run, at each difficulty, through the meter.
//!
//! The crowd is computed, never stored (shared/src/practice), so a run's cost is its real
//! fans' requests: the line's polls (as many as the wait is long, which the difficulty sets),
//! the seat map's refreshes, the security letters, the hold, the payment and the result. The
//! walk plays one fan as the page does, on a clock the walk moves: the run's page read every
//! 5 s of a 30 s countdown, the line polled every second until admitted, the zone overview
//! once, the zone's seats every 2 s for 10 s of choosing, then the letters, a hold of two
//! seats, a charge, the payment, the result and the history.

use crate::meter::{Meter, Service, Tally};
use chrono::Duration;
use e2e_tests::{id, TestApi};
use reqwest::Method;
use serde_json::{json, Value};

/// One difficulty's run for one fan, by phase.
pub struct RunCost {
    pub difficulty: &'static str,
    pub rivals: u64,
    pub venue: &'static str,
    pub seats: u64,
    /// Seconds the fan waited in line, and the polls it took.
    pub waited_s: i64,
    pub polls: u64,
    /// Whether seats were left for the fan to hold and pay.
    pub won: bool,
    pub phases: Vec<(&'static str, Cost)>,
}

/// Requests and capacity units of a phase.
#[derive(Clone, Copy, Default)]
pub struct Cost {
    pub requests: u64,
    pub dynamodb: u64,
    pub read_units: f64,
    pub write_units: f64,
    pub sqs: u64,
    pub events: u64,
}

impl Cost {
    fn add(&mut self, tally: &Tally) {
        self.requests += 1;
        self.dynamodb += tally.requests(Service::DynamoDb);
        self.read_units += tally.read_units.values().sum::<f64>();
        self.write_units += tally.write_units.values().sum::<f64>();
        self.sqs += tally.requests(Service::Sqs);
        self.events += tally.events;
    }

    fn plus(self, other: Cost) -> Cost {
        Cost {
            requests: self.requests + other.requests,
            dynamodb: self.dynamodb + other.dynamodb,
            read_units: self.read_units + other.read_units,
            write_units: self.write_units + other.write_units,
            sqs: self.sqs + other.sqs,
            events: self.events + other.events,
        }
    }
}

/// The presets with the venue each is played in here.
const RUNS: [(&str, &str); 4] = [
    ("easy", "theatre"),
    ("normal", "hall"),
    ("hard", "arena"),
    ("extreme", "stadium"),
];

/// Sends a request with the meter zeroed first; adds what it cost to `cost`.
async fn metered(
    meter: &Meter,
    cost: &mut Cost,
    request: impl std::future::Future<Output = e2e_tests::Reply>,
) -> Value {
    meter.take();
    let reply = request.await;
    cost.add(&meter.take());
    assert!(
        reply.status.is_success(),
        "the practice walk was refused: {} {}",
        reply.status,
        reply.body
    );
    reply.body
}

/// Plays one fan's run per difficulty; `api` runs on a manual clock behind `meter`.
pub async fn walk(api: &TestApi, meter: &Meter) -> Vec<RunCost> {
    let admin = api.admin().await;
    let concert = api.concert_on_sale(&admin, 1).await;
    let concert_id = id(&concert, "concert_id");
    let key = shared::practice::captcha::key(api.secret.as_bytes());
    let mut runs = Vec::new();
    for (round, (difficulty, venue)) in RUNS.into_iter().enumerate() {
        let fan = api.user(&format!("practice_cost_{round}")).await;
        let mut phases = Vec::new();

        let mut setup = Cost::default();
        let run = metered(
            meter,
            &mut setup,
            api.post(
                "/practice/runs",
                Some(&fan),
                json!({
                    "concert_id": concert_id, "difficulty": difficulty, "venue": venue,
                    "site": "interpark", "countdown_seconds": 30, "seed": round,
                }),
            ),
        )
        .await;
        let run_id = id(&run, "run_id");
        let schedule_id = id(&run["schedules"][0], "schedule_id");
        let seats = run["schedules"][0]["total_seats"].as_u64().unwrap_or(0);
        let opens: chrono::DateTime<chrono::Utc> = run["booking_opens_at"]
            .as_str()
            .and_then(|at| at.parse().ok())
            .expect("a run has an opening");
        let path = format!("/practice/runs/{run_id}");
        for second in (0..30).step_by(5) {
            api.clock.set(opens - Duration::seconds(30 - second));
            metered(meter, &mut setup, api.get(&path, None)).await;
        }
        phases.push(("run and countdown", setup));

        // The line: pressed at +1.0 s, polled every second until admitted.
        let mut line = Cost::default();
        api.clock.set(opens + Duration::milliseconds(1_000));
        let place = metered(
            meter,
            &mut line,
            api.post("/queue/tokens", Some(&fan), json!({ "concert_id": run_id })),
        )
        .await;
        let rivals = preset_rivals(difficulty);
        let queue = id(&place, "queue_token");
        let mut polls = 0;
        let mut waited_s = 0;
        loop {
            waited_s += 1;
            api.clock.advance(Duration::seconds(1));
            polls += 1;
            if waited_s % 5 == 0 {
                // The page's crowd figures.
                metered(meter, &mut line, api.get(&path, None)).await;
            }
            let status = metered(
                meter,
                &mut line,
                api.request(Method::GET, "/queue/tokens/current")
                    .token(&fan)
                    .queue(&queue)
                    .send(),
            )
            .await;
            if status["status"] == "ACTIVE" || waited_s > 600 {
                break;
            }
        }
        phases.push(("line", line));

        // The security letters, the dates, the zones, a zone's seats refreshed while choosing.
        let mut seats_cost = Cost::default();
        let picture = metered(
            meter,
            &mut seats_cost,
            api.request(Method::POST, &format!("{path}/captcha"))
                .token(&fan)
                .queue(&queue)
                .send(),
        )
        .await;
        let captcha_id = id(&picture, "captcha_id");
        let typed = shared::practice::captcha::answer(&key, &captcha_id);
        metered(
            meter,
            &mut seats_cost,
            api.request(Method::POST, &format!("{path}/captcha/answer"))
                .token(&fan)
                .queue(&queue)
                .json(json!({ "captcha_id": captcha_id, "answer": typed }))
                .send(),
        )
        .await;
        metered(
            meter,
            &mut seats_cost,
            api.request(Method::GET, &format!("/concerts/{run_id}/schedules"))
                .token(&fan)
                .queue(&queue)
                .send(),
        )
        .await;
        let zones = metered(
            meter,
            &mut seats_cost,
            api.request(Method::GET, &format!("/schedules/{schedule_id}/zones"))
                .token(&fan)
                .queue(&queue)
                .send(),
        )
        .await;
        // The zone with the most seats left (the crowd empties the others meanwhile).
        let zone = zones["items"]
            .as_array()
            .into_iter()
            .flatten()
            .max_by_key(|zone| zone["available_seats"].as_u64().unwrap_or(0))
            .and_then(|zone| zone["zone"].as_u64())
            .unwrap_or(0);
        let mut free = Vec::new();
        for refresh in 0..5 {
            if refresh > 0 {
                api.clock.advance(Duration::seconds(2));
            }
            let map = metered(
                meter,
                &mut seats_cost,
                api.request(
                    Method::GET,
                    &format!("/schedules/{schedule_id}/seats?zone={zone}"),
                )
                .token(&fan)
                .queue(&queue)
                .send(),
            )
            .await;
            free = map["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|seat| seat["status"] == "AVAILABLE")
                .filter_map(|seat| seat["seat_no"].as_u64())
                .collect();
        }
        let mut payment = Cost::default();
        let mut won = false;
        let mut reservation_id = None;
        if !free.is_empty() {
            let hold = metered(
                meter,
                &mut seats_cost,
                api.request(Method::POST, "/reservations")
                    .token(&fan)
                    .queue(&queue)
                    .json(json!({ "schedule_id": schedule_id, "seat_nos": &free[..2.min(free.len())] }))
                    .send(),
            )
            .await;
            let reservation = id(&hold, "reservation_id");
            let amount = hold["amount"].as_i64().unwrap_or(0);
            metered(
                meter,
                &mut payment,
                api.charge(&fan, amount, Some(&format!("cost-charge-{round}"))),
            )
            .await;
            metered(
                meter,
                &mut payment,
                api.pay(
                    &fan,
                    &queue,
                    &reservation,
                    Some(&format!("cost-pay-{round}")),
                ),
            )
            .await;
            won = true;
            reservation_id = Some(reservation);
        }
        phases.push(("letters and seats", seats_cost));
        metered(
            meter,
            &mut payment,
            api.post(
                &format!("{path}/results"),
                Some(&fan),
                json!({ "steps": [{"step": "queue", "ms": waited_s * 1000}],
                        "reservation_id": reservation_id }),
            ),
        )
        .await;
        metered(meter, &mut payment, api.get("/me/practice", Some(&fan))).await;
        phases.push(("payment and result", payment));
        runs.push(RunCost {
            difficulty,
            rivals,
            venue,
            seats,
            waited_s,
            polls,
            won,
            phases,
        });
    }
    runs
}

fn preset_rivals(difficulty: &str) -> u64 {
    shared::practice::Difficulty::preset(difficulty).map_or(0, |d| d.rivals.into())
}

/// The table of [`walk`]'s runs, in markdown.
pub fn table(runs: &[RunCost]) -> String {
    let mut out = String::from(
        "| difficulty | rivals | venue (seats) | waited in line | seats won | phase | requests | DynamoDB requests | read units | write units | SQS | EventBridge |\n\
         |---|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let total = run
            .phases
            .iter()
            .fold(Cost::default(), |sum, (_, cost)| sum.plus(*cost));
        let rows = run
            .phases
            .iter()
            .map(|(name, cost)| (*name, *cost))
            .chain([("**whole run**", total)]);
        for (name, cost) in rows {
            out.push_str(&format!(
                "| {} | {} | {} ({}) | {} s ({} polls) | {} | {name} | {} | {} | {:.1} | {:.1} | {} | {} |\n",
                run.difficulty,
                run.rivals,
                run.venue,
                run.seats,
                run.waited_s,
                run.polls,
                if run.won { "2" } else { "none left" },
                cost.requests,
                cost.dynamodb,
                cost.read_units,
                cost.write_units,
                cost.sqs,
                cost.events,
            ));
        }
    }
    out
}
