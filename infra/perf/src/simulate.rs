//! The simulated on-sale (`infra/perf.sh simulate`): a whole on-sale at a size no machine here
//! can run, on a virtual clock, against a model of AWS's limits.
//!
//! What is the project's own code: the order of admission (`line::plan`, the merge of the
//! entry shards by numbering time, gaps and all), the progress document the waiting page
//! follows (`QueueProgress::publish`) and the position and wait the page computes from it
//! (`QueueProgress::standing`). The admitter around it is modelled as it works: rounds that see
//! up to 10 messages a group, stashes behind missing numbers, writes of up to 100 items with
//! the state and the active list read before each, the pace (`QUEUE_ADMIT_PER_SECOND`) and a
//! run that steps for 50 s of each minute. What is modelled: every request's AWS calls, as the calls
//! table (`infra/perf.sh calls`) counts them, with each item's key and size; and AWS's limits
//! as its documentation states them (each with its source in [`Quotas`]):
//!
//! - DynamoDB: a table warmed to a throughput has at least that throughput ÷ 1,000 writes (or
//!   ÷ 3,000 reads) partitions; each key lives in one of them (by hash) and each partition
//!   serves 1,000 write and 3,000 read units a second, whatever the table's throughput. The
//!   table as a whole serves its warm throughput. No split for heat is assumed: AWS splits a
//!   partition only after minutes of sustained heat and never splits one item.
//! - SQS FIFO in high-throughput mode: 300 sends a second per message group (a group maps to
//!   one partition) and 70,000 calls a second per API action per queue (the largest Regions).
//! - Lambda: a function scales by 1,000 environments every 10 s from what it has (its
//!   provisioned concurrency), within the account's concurrency; a new environment pays its
//!   init (the cold-start instrument's median with TLS) before its first request.
//! - API Gateway: requests a second per account and Region; CloudFront: requests a second per
//!   distribution. A request over any limit is throttled and counted; the SDK retries DynamoDB
//!   and SQS throttles with backoff (AWS_MAX_ATTEMPTS), the fan retries a refused request
//!   after a second.
//!
//! The fans: `fans` press "enter" in the first `arrival_seconds`, `first_second` of them in
//! the first second, the rest ever fewer (an exponential decline); then the mix of the
//! on-sale run (`infra/load`) once admitted: 55% pay, 10% pay and cancel, 10% release, 15%
//! walk away, 10% are declined, each wanting 1 to 4 seats, half at the front. Waiting fans
//! follow the progress document through the edge (a second's cache, one origin request a
//! second), pacing their looks by their wait as the page does; a sample of them records what
//! it showed, to be checked against when each was admitted.

use chrono::{DateTime, Duration, TimeZone, Utc};
use shared::entry_queue::Entrant;
use shared::operations::queue::line::{self, Next, ShardLine};
use shared::practice::{normal_quantile, Random};
use shared::queue::{PublishedStanding, QueueProgress, ShardProgress};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use uuid::Uuid;

const MS: u64 = 1_000;
const SECOND: u64 = 1_000_000;
/// The admitter's limits per step (shared/src/operations/queue/admission.rs).
const MAX_ROUNDS_PER_STEP: usize = 20;
const RECEIVED_PER_GROUP: usize = 10;
const MAX_WRITES_PER_ROUND: usize = 100;
const ITEMS_PER_TRANSACTION: usize = 100;
/// Seats per block item partition (`SCHEDULE#{date}#{block}`).
const BLOCK_SEATS: u32 = 500;
/// Seat-map query of a block: about 128 KB eventually consistent.
const BLOCK_QUERY_UNITS: u32 = 16;
const HOLD_INDEX_SHARDS: u64 = 32;
/// The most places a shard's stash holds (shared/src/store/queue.rs).
const MAX_STASHED: usize = 400;
const SALES_SHARDS: u64 = 16;

/// AWS's limits as the simulation applies them.
#[derive(Clone, Debug)]
pub struct Quotas {
    /// CloudFront, requests a second per distribution (default 250,000; raisable).
    pub cloudfront_rps: u32,
    /// API Gateway, requests a second per account and Region (default 10,000; raisable).
    pub api_gateway_rps: u32,
    /// Lambda concurrency of the account (default 1,000; raised on request).
    pub lambda_concurrency: u32,
    /// Lambda scaling: environments a function may add every 10 s (since November 2023).
    pub lambda_scale_step: u32,
    /// Provisioned concurrency of the queue-entry function (pre-initialised environments).
    pub entry_provisioned: u32,
    /// DynamoDB: the table's warm throughput (units a second) and per-partition limits.
    pub table_writes: u32,
    pub table_reads: u32,
    pub partition_writes: u32,
    pub partition_reads: u32,
    /// SQS high-throughput FIFO: sends a second per message group, calls a second per action.
    pub sqs_group_rps: u32,
    pub sqs_action_rps: u32,
    /// EventBridge PutEvents calls a second (us-east-1: 10,000).
    pub eventbridge_rps: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            cloudfront_rps: 250_000,
            api_gateway_rps: 10_000,
            lambda_concurrency: 10_000,
            lambda_scale_step: 1_000,
            entry_provisioned: 3_000,
            table_writes: 400_000,
            table_reads: 400_000,
            partition_writes: 1_000,
            partition_reads: 3_000,
            sqs_group_rps: 300,
            sqs_action_rps: 70_000,
            eventbridge_rps: 10_000,
        }
    }
}

/// How queue entry reaches the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPath {
    /// CloudFront to the entry function's URL: no API Gateway request.
    FunctionUrl,
    /// Through API Gateway, with every other request.
    ApiGateway,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub fans: u32,
    pub first_second: u32,
    pub arrival_seconds: u32,
    pub shards: u32,
    pub seats: u32,
    pub dates: u32,
    pub max_active: u32,
    /// `QUEUE_ADMIT_PER_SECOND` (0: as many as slots and writes allow).
    pub admit_per_second: u32,
    pub admit_interval_seconds: u32,
    pub active_ttl_seconds: u32,
    pub hold_ttl_seconds: u32,
    pub grace_millis: u64,
    pub horizon_seconds: u32,
    /// Events per `PutEvents` call (1: one call per event; 10: batched).
    pub events_per_call: u32,
    pub entry: EntryPath,
    pub sample_every: u32,
    pub seed: u64,
    pub quotas: Quotas,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            fans: 1_000_000,
            first_second: 60_000,
            arrival_seconds: 60,
            shards: 256,
            seats: 50_000,
            dates: 2,
            max_active: 10_000,
            admit_per_second: 0,
            admit_interval_seconds: 10,
            active_ttl_seconds: 600,
            hold_ttl_seconds: 300,
            grace_millis: 12_000,
            horizon_seconds: 900,
            events_per_call: 1,
            entry: EntryPath::FunctionUrl,
            sample_every: 1_000,
            seed: 1,
            quotas: Quotas::default(),
        }
    }
}

/// A partition key the model tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    /// `QUEUE#{concert}#{s}`: the shard's counter, progress and stash.
    Shard(u32),
    /// The fan's own items (token, account, reservations): spread over the table.
    Fan(u32),
    /// The concert's admission item and its active list `QACTIVE#{concert}`.
    Admission,
    Active,
    /// A date's block of seats.
    Block(u32, u32),
    Holds(u32),
    Sales(u32),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Shard(s) => format!("QUEUE#{{concert}}#{s}"),
            Key::Fan(_) => "a fan's own items".into(),
            Key::Admission => "the admission item".into(),
            Key::Active => "QACTIVE#{concert}".into(),
            Key::Block(d, b) => format!("SCHEDULE#{{date {d}}}#{b}"),
            Key::Holds(n) => format!("HOLDS#{n}"),
            Key::Sales(k) => format!("SALES#{{concert}}#{k}"),
        }
    }

    fn hash(&self) -> u64 {
        let (kind, a, b) = match *self {
            Key::Shard(s) => (1, u64::from(s), 0),
            Key::Fan(f) => (2, u64::from(f), 0),
            Key::Admission => (3, 0, 0),
            Key::Active => (4, 0, 0),
            Key::Block(d, b) => (5, u64::from(d), u64::from(b)),
            Key::Holds(n) => (6, u64::from(n), 0),
            Key::Sales(k) => (7, u64::from(k), 0),
        };
        Random::for_item(kind, a, b).next_u64()
    }
}

/// A limit per second of virtual time.
#[derive(Debug)]
struct PerSecond {
    limit: u32,
    used: Vec<u32>,
}

impl PerSecond {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            used: Vec::new(),
        }
    }

    fn slot(&mut self, at: u64) -> &mut u32 {
        let second = (at / SECOND) as usize;
        if self.used.len() <= second {
            self.used.resize(second + 1, 0);
        }
        &mut self.used[second]
    }

    fn fits(&mut self, at: u64, units: u32) -> bool {
        let limit = self.limit;
        *self.slot(at) + units <= limit
    }

    fn take(&mut self, at: u64, units: u32) -> bool {
        let limit = self.limit;
        let used = self.slot(at);
        if *used + units > limit {
            return false;
        }
        *used += units;
        true
    }

    fn peak(&self) -> u32 {
        self.used.iter().copied().max().unwrap_or(0)
    }
}

/// A Lambda function's environments.
#[derive(Debug, Default)]
struct Function {
    provisioned: u32,
    in_flight: u32,
    environments: u32,
    peak: u32,
    invocations: u64,
    cold_starts: u64,
    per_second: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Lambda {
    Enter,
    Progress,
    Status,
    Seats,
    Hold,
    Pay,
    Release,
    Cancel,
    Sweeper,
}

/// How a request reaches its function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// CloudFront, then API Gateway.
    Api,
    /// CloudFront, then the function's URL.
    Edge,
    /// A scheduled job: no request quota.
    Schedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A fan presses "enter" (or tries again after a refusal).
    Press(u32),
    /// The entry's steps: the shard's counter, the token, the message.
    Counter(u32),
    Token(u32),
    Send(u32),
    Placed(u32),
    /// A sampled fan's look at the progress document.
    Look(u32),
    Publish,
    AdmitStep,
    /// An admitted fan's steps: sees it, holds, then what their kind does.
    Shop(u32, u8),
    /// A hold left to expire is swept: (fan).
    Sweep(u32),
    /// The fan's active place ends (left, or its time ran out).
    Leave(u32),
}

#[derive(Clone, Copy, Debug, Default)]
struct Fan {
    pressed: u64,
    placed: u64,
    shard: u32,
    number: u64,
    entered_at_ms: i64,
    /// When the shard's counter took the number (the place's true time).
    counted: u64,
    /// Attempts of the counter's `ADD` so far (the SDK's retries).
    attempts: u8,
    admitted: u64,
    /// Admission order (u32::MAX: not admitted).
    admission: u32,
    seats: u32,
    date: u32,
    block: u32,
    in_line: bool,
    left: bool,
}

const NEVER: u64 = u64::MAX;

/// The stated bound on admissions out of the order places were taken, across shards: the
/// clocks' skew (Lambda's clocks are kept within a millisecond or so) plus the spread of the
/// counter's answers, retries included.
pub const FAIRNESS_BOUND_MS: u32 = 250;

/// One look a sampled fan made: when, what the page showed.
#[derive(Clone, Copy, Debug)]
struct Look {
    fan: u32,
    at: u64,
    position: u64,
    wait_seconds: u64,
}

/// Requests by service and action, and throttles by limit and key.
#[derive(Debug, Default)]
pub struct Costs {
    pub requests: BTreeMap<String, u64>,
    /// Item writes of the queue's shared key shapes (each write names one item of them).
    pub item_writes: BTreeMap<String, u64>,
    pub throttled: BTreeMap<String, u64>,
    pub throttled_keys: BTreeMap<String, u64>,
}

impl Costs {
    fn count(&mut self, what: &str, n: u64) {
        *self.requests.entry(what.to_owned()).or_default() += n;
    }

    fn throttle(&mut self, limit: &str, key: Option<String>) {
        *self.throttled.entry(limit.to_owned()).or_default() += 1;
        if let Some(key) = key {
            *self.throttled_keys.entry(key).or_default() += 1;
        }
    }
}

/// What the simulation found.
#[derive(Debug)]
pub struct Outcome {
    pub settings: Settings,
    pub costs: Costs,
    /// Seconds from pressing to having a place: p50, p99, max; and when the last fan had one.
    pub place_p50: f64,
    pub place_p99: f64,
    pub place_max: f64,
    pub all_placed_at: f64,
    pub placed: u32,
    pub admitted: u32,
    pub admitted_by_second: Vec<u32>,
    pub sold: u32,
    pub sold_out_at: Option<f64>,
    /// Admissions out of number order in a shard, or after someone whose place was taken
    /// more than [`FAIRNESS_BOUND_MS`] later; and the largest such gap seen.
    pub fairness_violations: u64,
    pub largest_inversion_ms: f64,
    pub looks: usize,
    /// |shown − true| ÷ true, for looks with 1,000 to 20,000 truly ahead: p50, p95, max.
    pub position_error: (f64, f64, f64),
    /// The same with 20,000 or more ahead.
    pub position_error_far: (f64, f64, f64),
    /// People, for looks with fewer than 1,000 ahead: p50, p95, max.
    pub position_error_near: (u64, u64, u64),
    /// Shown wait ÷ the wait that followed, for waits over 10 s: p5, p50, p95.
    pub wait_ratio: (f64, f64, f64),
    /// CloudFront requests a second for the progress document (peak), and origin requests a
    /// second while fans waited (peak, mean).
    pub edge_peak_rps: u64,
    pub origin_wait_peak_rps: u64,
    pub origin_wait_mean_rps: f64,
    pub entry_peak_rps: u32,
    pub lambda_peaks: Vec<(String, u32, u64, u64)>,
    pub hottest: Vec<(String, u32, u32)>,
    pub sqs_group_peak: u32,
    pub sqs_send_peak: u32,
    pub eventbridge_peak: u32,
    pub table_write_peak: u32,
    pub table_read_peak: u32,
    pub partitions: u32,
}

struct Sim {
    s: Settings,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    random: Random,
    fans: Vec<Fan>,
    concert: Uuid,
    t0: DateTime<Utc>,
    costs: Costs,
    // Limits.
    cloudfront: PerSecond,
    api_gateway: PerSecond,
    table_writes: PerSecond,
    table_reads: PerSecond,
    partition_writes: Vec<PerSecond>,
    partition_reads: Vec<PerSecond>,
    key_writes: HashMap<Key, PerSecond>,
    key_reads: HashMap<Key, PerSecond>,
    sqs_groups: Vec<PerSecond>,
    sqs_sends: PerSecond,
    sqs_other: PerSecond,
    eventbridge: PerSecond,
    events_pending: u32,
    lambdas: BTreeMap<Lambda, Function>,
    account_in_flight: u32,
    // The line.
    counters: Vec<u64>,
    groups: Vec<VecDeque<u32>>,
    /// Per shard: places the admitter stashed (taken out of SQS so that it shows more of the
    /// group, where a missing number may be).
    stashes: Vec<Vec<u32>>,
    progress: Vec<ShardProgress>,
    missing_since: HashMap<(u32, u64), u64>,
    admitted_order: Vec<u32>,
    active: u32,
    in_line: u64,
    docs: Vec<QueueProgress>,
    looks: Vec<Look>,
    // Seats: free per block, per date.
    free: Vec<Vec<u32>>,
    sold: u32,
    sold_out_at: Option<u64>,
    admitted_this_step: u32,
}

/// Draws a log-normal value with the given median and spread.
fn log_normal(random: &mut Random, median: f64, sigma: f64) -> f64 {
    let u = random.unit().clamp(1e-9, 1.0 - 1e-9);
    median * (sigma * normal_quantile(u)).exp()
}

impl Lambda {
    /// A typical duration in AWS: DynamoDB round trips of a few milliseconds, in turn.
    fn duration_ms(self) -> u64 {
        match self {
            Lambda::Enter => 30,
            Lambda::Progress | Lambda::Status => 10,
            Lambda::Seats | Lambda::Cancel => 20,
            Lambda::Hold | Lambda::Pay | Lambda::Release | Lambda::Sweeper => 25,
        }
    }
}

impl Sim {
    fn new(s: Settings) -> Self {
        let q = &s.quotas;
        let partitions = (q.table_writes.div_ceil(q.partition_writes))
            .max(q.table_reads.div_ceil(q.partition_reads))
            .max(4);
        let blocks = s.seats.div_ceil(s.dates).div_ceil(BLOCK_SEATS);
        let per_date = s.seats / s.dates;
        let free = (0..s.dates)
            .map(|_| {
                (0..blocks)
                    .map(|b| (per_date - b * BLOCK_SEATS).min(BLOCK_SEATS))
                    .collect()
            })
            .collect();
        let mut lambdas = BTreeMap::new();
        for f in [
            Lambda::Enter,
            Lambda::Progress,
            Lambda::Status,
            Lambda::Seats,
            Lambda::Hold,
            Lambda::Pay,
            Lambda::Release,
            Lambda::Cancel,
            Lambda::Sweeper,
        ] {
            let provisioned = if f == Lambda::Enter {
                q.entry_provisioned
            } else {
                0
            };
            lambdas.insert(
                f,
                Function {
                    provisioned,
                    environments: provisioned,
                    ..Function::default()
                },
            );
        }
        let mut sim = Self {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            random: Random::for_item(s.seed, 100, 0),
            fans: vec![Fan::default(); s.fans as usize],
            concert: Uuid::from_u128(0xC0C0),
            t0: Utc.with_ymd_and_hms(2027, 1, 1, 11, 0, 0).unwrap(),
            costs: Costs::default(),
            cloudfront: PerSecond::new(q.cloudfront_rps),
            api_gateway: PerSecond::new(q.api_gateway_rps),
            table_writes: PerSecond::new(q.table_writes),
            table_reads: PerSecond::new(q.table_reads),
            partition_writes: (0..partitions)
                .map(|_| PerSecond::new(q.partition_writes))
                .collect(),
            partition_reads: (0..partitions)
                .map(|_| PerSecond::new(q.partition_reads))
                .collect(),
            key_writes: HashMap::new(),
            key_reads: HashMap::new(),
            sqs_groups: (0..s.shards)
                .map(|_| PerSecond::new(q.sqs_group_rps))
                .collect(),
            sqs_sends: PerSecond::new(q.sqs_action_rps),
            sqs_other: PerSecond::new(q.sqs_action_rps),
            eventbridge: PerSecond::new(q.eventbridge_rps),
            events_pending: 0,
            lambdas,
            account_in_flight: 0,
            counters: vec![0; s.shards as usize],
            groups: vec![VecDeque::new(); s.shards as usize],
            stashes: vec![Vec::new(); s.shards as usize],
            progress: vec![ShardProgress::default(); s.shards as usize],
            missing_since: HashMap::new(),
            admitted_order: Vec::new(),
            active: 0,
            in_line: 0,
            docs: Vec::new(),
            looks: Vec::new(),
            free,
            sold: 0,
            sold_out_at: None,
            admitted_this_step: 0,
            s,
        };
        sim.arrivals();
        sim.at(0, Ev::Publish);
        sim.at(0, Ev::AdmitStep);
        sim
    }

    fn at(&mut self, time: u64, event: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq, event)));
    }

    /// Press times: `first_second` fans spread over the first second, the rest over the
    /// following seconds at a rate falling by e every 15 s.
    fn arrivals(&mut self) {
        let first = self.s.first_second.min(self.s.fans);
        let rest = self.s.fans - first;
        let span = f64::from(self.s.arrival_seconds.max(2) - 1);
        let tau = 15.0_f64;
        let whole = 1.0 - (-span / tau).exp();
        for fan in 0..self.s.fans {
            let seconds = if fan < first {
                (f64::from(fan) + 0.5) / f64::from(first)
            } else {
                let u = (f64::from(fan - first) + 0.5) / f64::from(rest.max(1));
                1.0 - tau * (1.0 - u * whole).ln()
            };
            let at = (seconds * SECOND as f64) as u64;
            self.fans[fan as usize].pressed = at;
            self.fans[fan as usize].placed = NEVER;
            self.fans[fan as usize].admitted = NEVER;
            self.fans[fan as usize].admission = u32::MAX;
            self.at(at, Ev::Press(fan));
        }
    }

    fn latency(&mut self, median_ms: f64) -> u64 {
        (log_normal(&mut self.random, median_ms, 0.3) * MS as f64) as u64
    }

    fn partition(&self, key: Key) -> usize {
        (key.hash() % self.partition_writes.len() as u64) as usize
    }

    /// Takes `units` of `key`'s partition (writes or reads) and of the table, all or nothing
    /// over the items of one request.
    fn dynamodb(&mut self, action: &str, writes: &[(Key, u32)], reads: &[(Key, u32)]) -> bool {
        let at = self.now;
        let mut by_partition: BTreeMap<(bool, usize), u32> = BTreeMap::new();
        for &(key, units) in writes {
            *by_partition.entry((true, self.partition(key))).or_default() += units;
        }
        for &(key, units) in reads {
            *by_partition
                .entry((false, self.partition(key)))
                .or_default() += units;
        }
        let total_writes: u32 = writes.iter().map(|(_, u)| u).sum();
        let total_reads: u32 = reads.iter().map(|(_, u)| u).sum();
        self.costs.count(&format!("DynamoDB {action}"), 1);
        for (&(write, partition), &units) in &by_partition {
            let limit = if write {
                &mut self.partition_writes[partition]
            } else {
                &mut self.partition_reads[partition]
            };
            if !limit.fits(at, units) {
                let key = writes
                    .iter()
                    .chain(reads)
                    .find(|(k, _)| self.partition(*k) == partition)
                    .map(|(k, _)| k.name());
                let kind = if write {
                    "DynamoDB partition writes (1,000 units/s)"
                } else {
                    "DynamoDB partition reads (3,000 units/s)"
                };
                self.costs.throttle(kind, key);
                return false;
            }
        }
        if !self.table_writes.fits(at, total_writes) || !self.table_reads.fits(at, total_reads) {
            self.costs
                .throttle("DynamoDB table (warm throughput)", None);
            return false;
        }
        for (&(write, partition), &units) in &by_partition {
            if write {
                self.partition_writes[partition].take(at, units);
            } else {
                self.partition_reads[partition].take(at, units);
            }
        }
        self.table_writes.take(at, total_writes);
        self.table_reads.take(at, total_reads);
        for &(key, _) in writes {
            let shape = match key {
                Key::Shard(_) => "QUEUE#{id}#{n}",
                Key::Admission => "QUEUE#{id}",
                Key::Active => "QACTIVE#{id}",
                _ => continue,
            };
            *self.costs.item_writes.entry(shape.to_owned()).or_default() += 1;
        }
        for &(key, units) in writes {
            self.key_writes
                .entry(key)
                .or_insert_with(|| PerSecond::new(u32::MAX))
                .take(at, units);
        }
        for &(key, units) in reads {
            self.key_reads
                .entry(key)
                .or_insert_with(|| PerSecond::new(u32::MAX))
                .take(at, units);
        }
        true
    }

    /// A request to `function` by way of `via`: `None` if a limit refused it. The caller ends
    /// the invocation with [`Sim::end`].
    fn invoke(&mut self, function: Lambda, via: Via) -> Option<u64> {
        let at = self.now;
        if via != Via::Schedule {
            self.costs.count("CloudFront requests", 1);
            if !self.cloudfront.take(at, 1) {
                self.costs
                    .throttle("CloudFront requests/s per distribution", None);
                return None;
            }
        }
        if via == Via::Api {
            self.costs.count("API Gateway requests", 1);
            if !self.api_gateway.take(at, 1) {
                self.costs
                    .throttle("API Gateway requests/s per account", None);
                return None;
            }
        }
        let q = &self.s.quotas;
        let steps = (at / (10 * SECOND)) as u32 + 1;
        let account = q.lambda_concurrency;
        let scale = q.lambda_scale_step;
        let f = self.lambdas.get_mut(&function).unwrap();
        let limit = (f.provisioned + scale * steps).min(account);
        if function != Lambda::Enter {
            // Requests answered within the event: concurrency from the invocations of the
            // second and the function's duration.
            let second = (at / SECOND) as usize;
            if f.per_second.len() <= second {
                f.per_second.resize(second + 1, 0);
            }
            let concurrent = (u64::from(f.per_second[second] + 1) * function.duration_ms())
                .div_ceil(1_000) as u32;
            if concurrent > limit {
                self.costs.throttle(
                    "Lambda scaling (+1,000 every 10 s)",
                    Some(format!("{function:?}")),
                );
                return None;
            }
            f.per_second[second] += 1;
            f.peak = f.peak.max(concurrent);
            f.invocations += 1;
            self.costs.count(&format!("Lambda {function:?}"), 1);
            f.in_flight += 1;
            self.account_in_flight += 1;
            return Some(0);
        }
        if f.in_flight >= limit || self.account_in_flight >= account {
            self.costs.throttle(
                if self.account_in_flight >= account {
                    "Lambda concurrency of the account"
                } else {
                    "Lambda scaling (+1,000 every 10 s)"
                },
                Some(format!("{function:?}")),
            );
            return None;
        }
        f.in_flight += 1;
        f.invocations += 1;
        f.peak = f.peak.max(f.in_flight);
        self.account_in_flight += 1;
        // A new environment pays its init first (the cold-start instrument's median with TLS).
        let mut delay = 2 * MS;
        if f.in_flight > f.environments {
            f.environments = f.in_flight;
            f.cold_starts += 1;
            delay += 50 * MS;
        }
        self.costs.count(&format!("Lambda {function:?}"), 1);
        Some(delay)
    }

    fn end(&mut self, function: Lambda) {
        let f = self.lambdas.get_mut(&function).unwrap();
        f.in_flight -= 1;
        self.account_in_flight -= 1;
    }

    /// A DynamoDB request with the SDK's retries: the delay until it succeeded, or `None`.
    fn dynamodb_with_retries(
        &mut self,
        action: &str,
        writes: &[(Key, u32)],
        reads: &[(Key, u32)],
    ) -> Option<u64> {
        let start = self.now;
        let mut waited = 0;
        for attempt in 0..4u32 {
            self.now = start + waited;
            let done = self.dynamodb(action, writes, reads);
            if done {
                self.now = start;
                return Some(waited + self.latency(4.0));
            }
            waited += (25 * MS) << attempt;
        }
        self.now = start;
        None
    }

    fn put_event(&mut self) {
        self.events_pending += 1;
        if self.events_pending >= self.s.events_per_call {
            self.events_pending = 0;
            self.costs.count("EventBridge PutEvents", 1);
            if !self.eventbridge.take(self.now, 1) {
                self.costs.throttle("EventBridge PutEvents/s", None);
            }
        }
    }

    fn run(mut self) -> Outcome {
        let horizon = u64::from(self.s.horizon_seconds) * SECOND;
        while let Some(Reverse((time, _, event))) = self.queue.pop() {
            if time > horizon {
                break;
            }
            self.now = time;
            self.handle(event);
        }
        self.outcome()
    }

    fn handle(&mut self, event: Ev) {
        match event {
            Ev::Press(fan) => self.press(fan),
            Ev::Counter(fan) => self.counter(fan),
            Ev::Token(fan) => self.token(fan),
            Ev::Send(fan) => self.send(fan),
            Ev::Placed(fan) => self.placed(fan),
            Ev::Look(fan) => self.look(fan),
            Ev::Publish => self.publish(),
            Ev::AdmitStep => self.admit_step(),
            Ev::Shop(fan, stage) => self.shop(fan, stage),
            Ev::Sweep(fan) => self.sweep(fan),
            // The active time ran out: the admitter's read leaves the item out from then on.
            Ev::Leave(fan) => {
                self.leave_without_write(fan);
            }
        }
    }

    fn retry_later(&mut self, fan: u32) {
        let wait = SECOND + self.random.below(SECOND);
        self.at(self.now + wait, Ev::Press(fan));
    }

    // ---- Entry: read, counter, token, message (the calls table's `POST /queue/tokens`).

    fn press(&mut self, fan: u32) {
        let via = match self.s.entry {
            EntryPath::FunctionUrl => Via::Edge,
            EntryPath::ApiGateway => Via::Api,
        };
        let Some(delay) = self.invoke(Lambda::Enter, via) else {
            self.costs.count("refused entries (retried)", 1);
            return self.retry_later(fan);
        };
        let shard = self.random.below(u64::from(self.s.shards)) as u32;
        self.fans[fan as usize].shard = shard;
        // The token, the shard's progress (consistent); the concert from the process cache.
        let reads = [(Key::Fan(fan), 1), (Key::Shard(shard), 1)];
        match self.dynamodb_with_retries("BatchGetItem", &[], &reads) {
            Some(took) => self.at(self.now + delay + took, Ev::Counter(fan)),
            None => self.entry_failed(fan),
        }
    }

    fn entry_failed(&mut self, fan: u32) {
        self.end(Lambda::Enter);
        self.costs.count("entries answered 503 (retried)", 1);
        self.retry_later(fan);
    }

    /// The counter's `ADD`: the number is taken when an attempt commits, so each attempt is
    /// an event of its own (the SDK's backoff between them).
    fn counter(&mut self, fan: u32) {
        let shard = self.fans[fan as usize].shard;
        if self.dynamodb("UpdateItem", &[(Key::Shard(shard), 1)], &[]) {
            self.fans[fan as usize].attempts = 0;
            self.counters[shard as usize] += 1;
            let skew = self.random.below(2 * MS + 1) as i64 - MS as i64;
            let at = self.now + self.latency(4.0);
            let f = &mut self.fans[fan as usize];
            f.counted = self.now;
            f.number = self.counters[shard as usize];
            f.entered_at_ms = self.t0.timestamp_millis() + ((at as i64 + skew) / 1_000);
            return self.at(at, Ev::Token(fan));
        }
        let f = &mut self.fans[fan as usize];
        f.attempts += 1;
        if f.attempts >= 4 {
            f.attempts = 0;
            return self.entry_failed(fan);
        }
        let backoff = (25 * MS) << (f.attempts - 1);
        self.at(self.now + backoff, Ev::Counter(fan));
    }

    fn token(&mut self, fan: u32) {
        match self.dynamodb_with_retries("PutItem", &[(Key::Fan(fan), 1)], &[]) {
            Some(took) => self.at(self.now + took, Ev::Send(fan)),
            // The retry finds the number taken and no token: the admitter passes it over.
            None => self.entry_failed(fan),
        }
    }

    fn send(&mut self, fan: u32) {
        let shard = self.fans[fan as usize].shard as usize;
        self.costs.count("SQS SendMessage", 1);
        let mut waited = 0;
        for attempt in 0..4u32 {
            let at = self.now + waited;
            if self.sqs_sends.fits(at, 1) && self.sqs_groups[shard].fits(at, 1) {
                self.sqs_sends.take(at, 1);
                self.sqs_groups[shard].take(at, 1);
                let took = waited + self.latency(8.0);
                self.at(self.now + took, Ev::Placed(fan));
                return;
            }
            self.costs.throttle(
                if self.sqs_sends.fits(at, 1) {
                    "SQS sends/s per message group"
                } else {
                    "SQS calls/s per action"
                },
                Some(format!("group {{concert}}#{shard}")),
            );
            waited += (25 * MS) << attempt;
        }
        self.entry_failed(fan);
    }

    fn placed(&mut self, fan: u32) {
        self.end(Lambda::Enter);
        let shard = self.fans[fan as usize].shard as usize;
        self.groups[shard].push_back(fan);
        let f = &mut self.fans[fan as usize];
        f.placed = self.now + 20 * MS;
        f.in_line = true;
        self.in_line += 1;
        if fan.is_multiple_of(self.s.sample_every.max(1)) {
            let at = f.placed;
            self.at(at, Ev::Look(fan));
        }
    }

    // ---- Waiting: the progress document, read through the edge.

    fn publish(&mut self) {
        let at = self.t0 + Duration::microseconds(self.now as i64);
        self.docs.push(QueueProgress::publish(
            self.concert,
            &self.progress,
            at,
            self.s.max_active,
            i64::from(self.s.active_ttl_seconds),
        ));
        // The edge's one origin request a second while anyone waits: the document from every
        // shard's progress, eventually consistent (half a unit an item, counted as a unit every
        // second item).
        if self.in_line > 0 {
            self.costs
                .count("origin requests for the progress document", 1);
            if self.invoke(Lambda::Progress, Via::Api).is_some() {
                self.end(Lambda::Progress);
            }
            let reads: Vec<(Key, u32)> = (0..self.s.shards)
                .step_by(2)
                .map(|s| (Key::Shard(s), 1))
                .collect();
            let _ = self.dynamodb("BatchGetItem (progress document)", &[], &reads);
        }
        let next = self.now + SECOND;
        if next <= u64::from(self.s.horizon_seconds) * SECOND {
            self.at(next, Ev::Publish);
        }
    }

    fn look(&mut self, fan: u32) {
        let f = self.fans[fan as usize];
        if f.admitted <= self.now {
            return;
        }
        // The edge's copy: fetched from the origin up to a second ago.
        let second = (self.now / SECOND) as usize;
        let Some(doc) = self.docs.get(second.saturating_sub(1)) else {
            return self.at(self.now + SECOND, Ev::Look(fan));
        };
        let at = self.t0 + Duration::microseconds(self.now as i64);
        // Once admission has reached the place, the page asks the API (see `admit`).
        if let Some(PublishedStanding::Waiting {
            position,
            estimated_wait_seconds,
        }) = doc.standing(f.shard, f.number, at)
        {
            self.looks.push(Look {
                fan,
                at: self.now,
                position,
                wait_seconds: estimated_wait_seconds,
            });
            // The page's pace: a second near the head, 5 s while 50 s or more remain.
            let pause = (estimated_wait_seconds * 100).clamp(1_000, 5_000) * MS;
            self.at(self.now + pause, Ev::Look(fan));
        }
    }

    // ---- Admission: the admitter's step in rounds, in the order `line::plan` gives.

    fn admit_step(&mut self) {
        let step_start = self.now;
        self.admitted_this_step = 0;
        for round in 0..MAX_ROUNDS_PER_STEP {
            self.now = step_start + round as u64 * 60 * MS;
            if !self.admit_round() {
                break;
            }
        }
        self.now = step_start;
        // In AWS the rule starts a run each minute, which steps for 50 s (functions/src/
        // endpoints/jobs.rs, `admit_for_a_minute`): no step in the minute's last 10 s.
        let interval = u64::from(self.s.admit_interval_seconds) * SECOND;
        let minute = 60 * SECOND;
        let mut next = step_start + interval;
        if next % minute + interval > 50 * SECOND {
            next = (next / minute + 1) * minute;
        }
        self.at(next, Ev::AdmitStep);
    }

    /// One round; false when it admitted nobody.
    fn admit_round(&mut self) -> bool {
        let mut free = self.s.max_active.saturating_sub(self.active);
        if self.s.admit_per_second > 0 {
            // `QUEUE_ADMIT_PER_SECOND`: a step admits at most the pace times its interval.
            let per_step = self.s.admit_per_second * self.s.admit_interval_seconds;
            free = free.min(per_step.saturating_sub(self.admitted_this_step));
        }
        if free == 0 {
            return false;
        }
        let shards = self.s.shards as usize;
        // The state: admission item, every shard's progress, counter and stash (one partition
        // key a shard), consistent.
        let mut state_reads: Vec<(Key, u32)> =
            (0..self.s.shards).map(|s| (Key::Shard(s), 3)).collect();
        state_reads.push((Key::Admission, 1));
        if !self.dynamodb("BatchGetItem (admitter)", &[], &state_reads) {
            return false;
        }
        // What SQS shows: up to 10 from each group's head. A message whose place admission
        // passed over (a gap, waited for past the grace) is dropped, and its fan, finding the
        // place ended, enters again.
        let mut lines: Vec<ShardLine> = Vec::with_capacity(shards);
        let mut received = 0u64;
        for shard in 0..shards {
            let up_to = self.progress[shard].admitted_up_to;
            let stale: Vec<u32> = self.groups[shard]
                .iter()
                .take(RECEIVED_PER_GROUP)
                .chain(&self.stashes[shard])
                .copied()
                .filter(|&fan| self.fans[fan as usize].number <= up_to)
                .collect();
            for fan in stale {
                self.groups[shard].retain(|&other| other != fan);
                self.stashes[shard].retain(|&other| other != fan);
                self.fans[fan as usize].in_line = false;
                self.in_line -= 1;
                self.costs
                    .count("places passed over (the fan entered again)", 1);
                let again = self.now + SECOND;
                self.at(again, Ev::Press(fan));
            }
            let mut known: Vec<Entrant> = self.groups[shard]
                .iter()
                .take(RECEIVED_PER_GROUP)
                .chain(&self.stashes[shard])
                .map(|&fan| {
                    let f = &self.fans[fan as usize];
                    Entrant {
                        concert_id: self.concert,
                        user_id: Uuid::from_u128(u128::from(fan) + 1),
                        token_id: Uuid::from_u128(u128::from(fan)),
                        number: f.number,
                        shard: shard as u32,
                        entered_at_ms: f.entered_at_ms,
                    }
                })
                .collect();
            received += known.len() as u64;
            known.sort_by_key(|k| k.number);
            lines.push(ShardLine {
                admitted_up_to: self.progress[shard].admitted_up_to,
                last_number: self.counters[shard],
                known,
            });
        }
        let calls = received.div_ceil(10).max(1);
        self.costs.count("SQS ReceiveMessage", calls);
        let _ = self.sqs_other.take(self.now, calls as u32);
        let now_ms = self.t0.timestamp_millis() + (self.now / MS) as i64;
        let grace = self.s.grace_millis * MS;
        let since = &self.missing_since;
        let now = self.now;
        let plan = line::plan(&lines, now_ms, |shard, number| {
            since
                .get(&(shard, number))
                .is_some_and(|&first| first + grace <= now)
        });
        for missing in &plan.missing {
            self.missing_since.entry(*missing).or_insert(now);
        }
        // Writes of up to 100 items: the admission item, each shard moved, and per entrant its
        // token and its active-list item; 2 units an item (transactions).
        let mut admitted = 0u32;
        let mut writes = 0usize;
        let mut order = plan.order.into_iter().peekable();
        while order.peek().is_some() && admitted < free && writes < MAX_WRITES_PER_ROUND {
            let mut items: Vec<(Key, u32)> = vec![(Key::Admission, 2)];
            let mut batch: Vec<Next> = Vec::new();
            let mut moved: Vec<u32> = Vec::new();
            while let Some(next) = order.peek() {
                let shard = match next {
                    Next::Entrant(k) => k.shard,
                    Next::Gap { shard, .. } => *shard,
                };
                let new_shard = !moved.contains(&shard);
                let grow = usize::from(new_shard)
                    + if matches!(next, Next::Entrant(_)) {
                        2
                    } else {
                        0
                    };
                let entrants = batch
                    .iter()
                    .filter(|n| matches!(n, Next::Entrant(_)))
                    .count() as u32;
                if items.len() + grow > ITEMS_PER_TRANSACTION
                    || (matches!(next, Next::Entrant(_)) && admitted + entrants >= free)
                {
                    break;
                }
                if new_shard {
                    moved.push(shard);
                    items.push((Key::Shard(shard), 2));
                }
                if let Next::Entrant(k) = next {
                    let fan = k.token_id.as_u128() as u32;
                    items.push((Key::Fan(fan), 2));
                    items.push((Key::Active, 2));
                }
                batch.push(order.next().unwrap());
            }
            if batch.is_empty() {
                break;
            }
            writes += 1;
            // Each write reads the admission state again (the round's read serves the first)
            // and the active list, consistent, before it (admission.rs, `admit_in_order`).
            if writes > 1 && !self.dynamodb("BatchGetItem (admitter)", &[], &state_reads) {
                break;
            }
            let units = (self.active * 110).div_ceil(4096).max(1);
            if !self.dynamodb("Query (active list)", &[], &[(Key::Active, units)]) {
                break;
            }
            if !self.dynamodb("TransactWriteItems (admission)", &items, &[]) {
                // Throttled: the rest waits for the next round.
                break;
            }
            for next in batch {
                match next {
                    Next::Entrant(k) => {
                        let fan = k.token_id.as_u128() as u32;
                        self.admit(fan, k.shard, k.number);
                        admitted += 1;
                    }
                    Next::Gap { shard, number } => {
                        self.progress[shard as usize].admitted_up_to = number;
                    }
                }
            }
        }
        // Digging, unless no slot is free (a spent pace still digs, as the admitter does).
        if self.active < self.s.max_active {
            self.stash_behind(&plan.missing);
        }
        if self.active >= self.s.max_active {
            // A full concert's messages are handed back out of sight: the admitter forgets its
            // missing numbers (admission.rs, `forget_concert`).
            self.missing_since.clear();
        }
        if admitted > 0 {
            let deletes = u64::from(admitted).div_ceil(10);
            self.costs.count("SQS DeleteMessageBatch", deletes);
            let _ = self.sqs_other.take(self.now, deletes as u32);
        }
        self.admitted_this_step += admitted;
        admitted > 0
    }

    /// Stashes the places SQS shows behind each shard's first missing number (up to 400 a
    /// shard), one write of the shard's stash item each, and deletes their messages, so that
    /// the next round sees further into the group (admission.rs, `stash_behind_missing`).
    fn stash_behind(&mut self, missing: &[(u32, u64)]) {
        let mut first: BTreeMap<u32, u64> = BTreeMap::new();
        for &(shard, number) in missing {
            first.entry(shard).or_insert(number);
        }
        for (shard, number) in first {
            let shard = shard as usize;
            let room = MAX_STASHED.saturating_sub(self.stashes[shard].len());
            let behind: Vec<u32> = self.groups[shard]
                .iter()
                .take(RECEIVED_PER_GROUP)
                .copied()
                .filter(|&fan| self.fans[fan as usize].number > number)
                .take(room)
                .collect();
            if behind.is_empty() {
                continue;
            }
            let size = (self.stashes[shard].len() + behind.len()) as u32 * 130;
            let units = 2 * size.div_ceil(1024);
            if !self.dynamodb(
                "TransactWriteItems (stash)",
                &[(Key::Shard(shard as u32), units), (Key::Admission, 2)],
                &[],
            ) {
                continue;
            }
            self.costs
                .count("SQS DeleteMessageBatch", behind.len().div_ceil(10) as u64);
            self.groups[shard].retain(|fan| !behind.contains(fan));
            self.stashes[shard].extend(behind);
        }
    }

    fn admit(&mut self, fan: u32, shard: u32, number: u64) {
        let at = self.now + 30 * MS;
        let group = &mut self.groups[shard as usize];
        if let Some(i) = group
            .iter()
            .take(RECEIVED_PER_GROUP)
            .position(|&f| f == fan)
        {
            group.remove(i);
        } else {
            self.stashes[shard as usize].retain(|&f| f != fan);
        }
        let progress = &mut self.progress[shard as usize];
        progress.admitted_up_to = number;
        progress.history.admitted_total += 1;
        if progress.history.first_admitted_at.is_none() {
            progress.history.first_admitted_at = Some(self.t0 + Duration::microseconds(at as i64));
        }
        let f = &mut self.fans[fan as usize];
        f.admitted = at;
        f.admission = self.admitted_order.len() as u32;
        f.in_line = false;
        self.in_line -= 1;
        self.admitted_order.push(fan);
        self.active += 1;
        // The page sees it at its next look (the edge's copy is up to a second old, the page
        // looks every second near the head), then asks the API once.
        let sees = at + self.random.below(2 * SECOND);
        self.at(sees, Ev::Shop(fan, 0));
        let ttl = at + u64::from(self.s.active_ttl_seconds) * SECOND;
        self.at(ttl, Ev::Leave(fan));
    }

    // ---- Shopping: the mix of the on-sale run.

    fn shop(&mut self, fan: u32, stage: u8) {
        // A cancellation comes after the fan has left the line (paying ended their place).
        if self.fans[fan as usize].left && stage < 3 {
            return;
        }
        let kind = fan % 20;
        match stage {
            // The status, then the seat map of the fan's date.
            0 => {
                if self.invoke(Lambda::Status, Via::Api).is_some() {
                    let shard = self.fans[fan as usize].shard;
                    let _ = self.dynamodb_with_retries(
                        "BatchGetItem",
                        &[],
                        &[(Key::Fan(fan), 1), (Key::Shard(shard), 1)],
                    );
                    self.end(Lambda::Status);
                }
                let date = fan % self.s.dates;
                self.fans[fan as usize].date = date;
                self.seat_map(date);
                let think = (log_normal(&mut self.random, 15.0, 0.5) * SECOND as f64) as u64;
                self.at(self.now + think, Ev::Shop(fan, 1));
            }
            // The hold: 1 to 4 seats side by side in a block with room, half at the front.
            1 => {
                let mut random = Random::for_item(self.s.seed, 7, u64::from(fan));
                let want = match random.below(20) {
                    0..=3 => 1,
                    4..=14 => 2,
                    15..=16 => 3,
                    _ => 4,
                };
                let date = self.fans[fan as usize].date as usize;
                let blocks = self.free[date].len() as u32;
                let front = random.unit() < 0.5;
                let candidates: Vec<u32> = (0..blocks)
                    .filter(|&b| self.free[date][b as usize] >= want)
                    .filter(|&b| !front || b < 5.min(blocks))
                    .collect();
                let candidates = if candidates.is_empty() {
                    (0..blocks)
                        .filter(|&b| self.free[date][b as usize] >= want)
                        .collect()
                } else {
                    candidates
                };
                if candidates.is_empty() {
                    // Nothing left for them: they go.
                    return self.leave(fan);
                }
                let block = candidates[random.below(candidates.len() as u64) as usize];
                if self.invoke(Lambda::Hold, Via::Api).is_none() {
                    return self.at(self.now + SECOND, Ev::Shop(fan, 1));
                }
                let seats_block = Key::Block(date as u32, block);
                let read = self.dynamodb_with_retries(
                    "BatchGetItem",
                    &[],
                    &[(Key::Fan(fan), 1), (seats_block, want)],
                );
                let hold = [
                    (seats_block, 2 * want),
                    (Key::Fan(fan), 4),
                    (Key::Holds(fan % HOLD_INDEX_SHARDS as u32), 2),
                ];
                let written = read.and_then(|_| {
                    self.dynamodb_with_retries("TransactWriteItems (hold)", &hold, &[])
                });
                self.end(Lambda::Hold);
                if written.is_none() {
                    return self.at(self.now + SECOND, Ev::Shop(fan, 1));
                }
                self.put_event();
                self.free[date][block as usize] -= want;
                let f = &mut self.fans[fan as usize];
                f.seats = want;
                f.block = block;
                let next = match kind {
                    // Walks away (leaving the line, as the on-sale's fans do): the hold runs
                    // out.
                    15..=17 => {
                        let expires = self.now + u64::from(self.s.hold_ttl_seconds) * SECOND;
                        self.at(expires, Ev::Sweep(fan));
                        return self.leave(fan);
                    }
                    _ => 20 * SECOND,
                };
                self.at(self.now + next, Ev::Shop(fan, 2));
            }
            // Pay (and maybe cancel later), release, or be declined.
            2 => {
                let f = self.fans[fan as usize];
                let seats_block = Key::Block(f.date, f.block);
                let (function, action) = match kind {
                    0..=12 => (Lambda::Pay, "TransactWriteItems (payment)"),
                    13 | 14 => (Lambda::Release, "TransactWriteItems (release)"),
                    _ => (Lambda::Pay, "TransactWriteItems (declined)"),
                };
                if self.invoke(function, Via::Api).is_none() {
                    return self.at(self.now + SECOND, Ev::Shop(fan, 2));
                }
                let _ = self.dynamodb_with_retries("BatchGetItem", &[], &[(Key::Fan(fan), 5)]);
                let mut items = vec![
                    (seats_block, 2 * f.seats),
                    (Key::Fan(fan), 10),
                    (Key::Holds(fan % HOLD_INDEX_SHARDS as u32), 2),
                ];
                if kind <= 12 {
                    // A payment ends the queue token and its active-list item, and counts the
                    // sale.
                    items.push((Key::Active, 2));
                    items.push((Key::Sales(fan % SALES_SHARDS as u32), 2));
                }
                let done = self.dynamodb_with_retries(action, &items, &[]);
                self.end(function);
                if done.is_none() {
                    return self.at(self.now + SECOND, Ev::Shop(fan, 2));
                }
                self.put_event();
                if kind <= 12 {
                    self.sold += f.seats;
                    if self.sold >= self.s.seats && self.sold_out_at.is_none() {
                        self.sold_out_at = Some(self.now);
                    }
                    if kind >= 11 {
                        self.at(self.now + 10 * SECOND, Ev::Shop(fan, 3));
                    }
                    // The payment's transaction ended the queue token and its active item.
                    self.leave_without_write(fan);
                } else {
                    self.free[f.date as usize][f.block as usize] += f.seats;
                    self.leave(fan);
                }
            }
            // A cancellation with refund: the seats come back.
            _ => {
                let f = self.fans[fan as usize];
                if self.invoke(Lambda::Cancel, Via::Api).is_none() {
                    return self.at(self.now + SECOND, Ev::Shop(fan, 3));
                }
                let items = [
                    (Key::Block(f.date, f.block), 2 * f.seats),
                    (Key::Fan(fan), 8),
                    (Key::Sales(fan % SALES_SHARDS as u32), 2),
                ];
                let _ = self.dynamodb_with_retries("GetItem", &[], &[(Key::Fan(fan), 2)]);
                let done = self.dynamodb_with_retries("TransactWriteItems (cancel)", &items, &[]);
                self.end(Lambda::Cancel);
                if done.is_none() {
                    return self.at(self.now + SECOND, Ev::Shop(fan, 3));
                }
                self.put_event();
                self.sold -= f.seats;
                self.free[f.date as usize][f.block as usize] += f.seats;
            }
        }
    }

    /// A seat map of a date: a query of every block, sent together (eventually consistent).
    fn seat_map(&mut self, date: u32) {
        if self.invoke(Lambda::Seats, Via::Api).is_none() {
            return;
        }
        let blocks = self.free[date as usize].len() as u32;
        for block in 0..blocks {
            let _ = self.dynamodb_with_retries(
                "Query (seat map)",
                &[],
                &[(Key::Block(date, block), BLOCK_QUERY_UNITS)],
            );
        }
        self.end(Lambda::Seats);
    }

    fn sweep(&mut self, fan: u32) {
        let f = self.fans[fan as usize];
        if self.invoke(Lambda::Sweeper, Via::Schedule).is_some() {
            let items = [
                (Key::Block(f.date, f.block), 2 * f.seats),
                (Key::Fan(fan), 2),
                (Key::Holds(fan % HOLD_INDEX_SHARDS as u32), 2),
            ];
            let _ = self.dynamodb_with_retries("TransactWriteItems (expiry)", &items, &[]);
            self.end(Lambda::Sweeper);
        }
        self.put_event();
        self.free[f.date as usize][f.block as usize] += f.seats;
    }

    /// The fan goes: `DELETE /queue/tokens/current`, or their active time runs out (the
    /// admitter's read of the list then leaves the item out; the model counts its removal).
    fn leave(&mut self, fan: u32) {
        if self.leave_without_write(fan) {
            let _ = self.dynamodb(
                "TransactWriteItems (leave the line)",
                &[(Key::Active, 2), (Key::Fan(fan), 2)],
                &[],
            );
        }
    }

    /// Frees the fan's slot; false if it was free already.
    fn leave_without_write(&mut self, fan: u32) -> bool {
        let f = &mut self.fans[fan as usize];
        if f.left || f.admitted == NEVER {
            return false;
        }
        f.left = true;
        self.active -= 1;
        true
    }

    // ---- The figures.

    fn outcome(self) -> Outcome {
        let horizon = u64::from(self.s.horizon_seconds) * SECOND;
        let mut place: Vec<u64> = self
            .fans
            .iter()
            .filter(|f| f.placed != NEVER)
            .map(|f| f.placed - f.pressed)
            .collect();
        place.sort_unstable();
        let pct = |v: &[u64], p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            v[((v.len() - 1) as f64 * p).round() as usize] as f64 / SECOND as f64
        };
        let all_placed_at = self
            .fans
            .iter()
            .map(|f| f.placed)
            .max()
            .filter(|&p| p != NEVER)
            .map_or(f64::NAN, |p| p as f64 / SECOND as f64);
        let (violations, largest_inversion) = order_violations(
            self.admitted_order.iter().map(|&fan| {
                let f = &self.fans[fan as usize];
                (f.shard, f.number, f.counted)
            }),
            self.s.shards,
        );
        let mut admitted_by_second = vec![0u32; self.s.horizon_seconds as usize + 1];
        for &fan in &self.admitted_order {
            let f = &self.fans[fan as usize];
            let second = ((f.admitted / SECOND) as usize).min(admitted_by_second.len() - 1);
            admitted_by_second[second] += 1;
        }
        // Shown positions against what followed: people admitted after the look and before
        // the fan.
        let mut admitted_at: Vec<u64> = self
            .admitted_order
            .iter()
            .map(|&fan| self.fans[fan as usize].admitted)
            .collect();
        admitted_at.sort_unstable();
        let mut far = Vec::new();
        let mut farther = Vec::new();
        let mut near = Vec::new();
        let mut ratios = Vec::new();
        for look in &self.looks {
            let f = &self.fans[look.fan as usize];
            if f.admitted == NEVER {
                continue;
            }
            let before = admitted_at.partition_point(|&a| a <= look.at) as u64;
            let ahead = u64::from(f.admission).saturating_sub(before);
            let error = look.position.abs_diff(ahead);
            if ahead >= 20_000 {
                farther.push(error as f64 / ahead as f64);
            } else if ahead >= 1_000 {
                far.push(error as f64 / ahead as f64);
            } else {
                near.push(error);
            }
            let waited = (f.admitted - look.at) as f64 / SECOND as f64;
            if waited > 10.0 {
                ratios.push(look.wait_seconds as f64 / waited);
            }
        }
        let fpct = |v: &mut Vec<f64>, p: f64| -> f64 {
            if v.is_empty() {
                return f64::NAN;
            }
            v.sort_by(f64::total_cmp);
            v[((v.len() - 1) as f64 * p).round() as usize]
        };
        let upct = |v: &mut Vec<u64>, p: f64| -> u64 {
            if v.is_empty() {
                return 0;
            }
            v.sort_unstable();
            v[((v.len() - 1) as f64 * p).round() as usize]
        };
        // The edge's load from waiting fans: each looks every 5 s while 50 s or more remain,
        // every wait ÷ 10 s below that, every second under 10 s (the page's pace, by the wait
        // that followed).
        let seconds = self.s.horizon_seconds as usize + 1;
        // A rate of a fifth a second while 50 s or more remain (a difference array), then the
        // last 50 s second by second.
        let mut far_rate = vec![0f64; seconds + 2];
        let mut edge = vec![0f64; seconds + 1];
        let mut waiting = vec![0i64; seconds + 2];
        for f in &self.fans {
            if f.placed == NEVER {
                continue;
            }
            let from = ((f.placed / SECOND) as usize).min(seconds);
            let until = ((f.admitted.min(horizon) / SECOND) as usize).min(seconds);
            waiting[from] += 1;
            waiting[until] -= 1;
            let near_from = if f.admitted == NEVER {
                until
            } else {
                until.saturating_sub(50).max(from)
            };
            far_rate[from] += 0.2;
            far_rate[near_from] -= 0.2;
            for (second, looks) in edge.iter_mut().enumerate().take(until).skip(near_from) {
                let left =
                    (f.admitted.saturating_sub(second as u64 * SECOND)) as f64 / SECOND as f64;
                *looks += 1.0 / (left / 10.0).clamp(1.0, 5.0);
            }
        }
        let mut rate = 0.0;
        for second in 0..seconds {
            rate += far_rate[second];
            edge[second] += rate;
        }
        let edge_looks: f64 = edge.iter().sum();
        let edge_peak_rps = edge
            .iter()
            .enumerate()
            .map(|(second, looks)| {
                looks + self.cloudfront.used.get(second).copied().unwrap_or(0) as f64
            })
            .fold(0.0, f64::max)
            .round() as u64;
        // Origin requests while fans wait: the document once a second, and each admitted
        // fan's one status request.
        let mut in_line = 0i64;
        let mut origin = Vec::new();
        for second in 0..seconds {
            in_line += waiting[second];
            if in_line > 0 {
                origin.push(1 + u64::from(admitted_by_second[second]));
            }
        }
        let origin_wait_peak_rps = origin.iter().copied().max().unwrap_or(0);
        let origin_wait_mean_rps = if origin.is_empty() {
            0.0
        } else {
            origin.iter().sum::<u64>() as f64 / origin.len() as f64
        };
        let mut hottest: Vec<(String, u32, u32)> = self
            .key_writes
            .iter()
            .map(|(k, l)| (*k, l.peak(), self.key_reads.get(k).map_or(0, |r| r.peak())))
            .chain(
                self.key_reads
                    .iter()
                    .filter(|(k, _)| !self.key_writes.contains_key(k))
                    .map(|(k, l)| (*k, 0, l.peak())),
            )
            .filter(|(k, _, _)| !matches!(k, Key::Fan(_)))
            .map(|(k, w, r)| (k.name(), w, r))
            .collect();
        hottest.sort_by_key(|(_, writes, reads)| std::cmp::Reverse(writes * 3 + reads));
        hottest.truncate(6);
        let lambda_peaks = self
            .lambdas
            .iter()
            .map(|(name, f)| (format!("{name:?}"), f.peak, f.invocations, f.cold_starts))
            .collect();
        let mut costs = self.costs;
        costs.count(
            "CloudFront requests for the progress document (waiting fans' looks)",
            edge_looks.round() as u64,
        );
        if edge_peak_rps > u64::from(self.s.quotas.cloudfront_rps) {
            costs.throttle("CloudFront requests/s per distribution (looks)", None);
        }
        Outcome {
            place_p50: pct(&place, 0.5),
            place_p99: pct(&place, 0.99),
            place_max: pct(&place, 1.0),
            all_placed_at,
            placed: place.len() as u32,
            admitted: self.admitted_order.len() as u32,
            admitted_by_second,
            sold: self.sold,
            sold_out_at: self.sold_out_at.map(|t| t as f64 / SECOND as f64),
            fairness_violations: violations,
            largest_inversion_ms: largest_inversion as f64 / MS as f64,
            looks: self.looks.len(),
            position_error: (
                fpct(&mut far, 0.5),
                fpct(&mut far, 0.95),
                fpct(&mut far, 1.0),
            ),
            position_error_far: (
                fpct(&mut farther, 0.5),
                fpct(&mut farther, 0.95),
                fpct(&mut farther, 1.0),
            ),
            position_error_near: (
                upct(&mut near, 0.5),
                upct(&mut near, 0.95),
                upct(&mut near, 1.0),
            ),
            wait_ratio: (
                fpct(&mut ratios, 0.05),
                fpct(&mut ratios, 0.5),
                fpct(&mut ratios, 0.95),
            ),
            edge_peak_rps,
            origin_wait_peak_rps,
            origin_wait_mean_rps,
            entry_peak_rps: self.lambdas[&Lambda::Enter].peak,
            lambda_peaks,
            hottest,
            sqs_group_peak: self
                .sqs_groups
                .iter()
                .map(PerSecond::peak)
                .max()
                .unwrap_or(0),
            sqs_send_peak: self.sqs_sends.peak(),
            eventbridge_peak: self.eventbridge.peak(),
            table_write_peak: self.table_writes.peak(),
            table_read_peak: self.table_reads.peak(),
            partitions: self.partition_writes.len() as u32,
            costs,
            settings: self.s,
        }
    }
}

/// Fairness over admissions in the order they happened, each `(shard, number, counted)` (when
/// the shard's counter took the number, µs). Within a shard numbers must come in order,
/// exactly. Across shards places are merged by the entrant's clock after the counter answered,
/// so an earlier place may follow a later one by the clocks' skew plus the spread of the
/// counter's answers; an admission after someone whose place was taken more than
/// [`FAIRNESS_BOUND_MS`] later is a violation. Returns the violations and the largest such gap
/// (µs).
fn order_violations(admissions: impl Iterator<Item = (u32, u64, u64)>, shards: u32) -> (u64, u64) {
    let bound = u64::from(FAIRNESS_BOUND_MS) * MS;
    let mut latest = 0u64;
    let mut violations = 0;
    let mut largest_inversion = 0u64;
    let mut last_number = vec![0u64; shards as usize];
    for (shard, number, counted) in admissions {
        let inversion = latest.saturating_sub(counted);
        largest_inversion = largest_inversion.max(inversion);
        if inversion > bound || number < last_number[shard as usize] {
            violations += 1;
        }
        last_number[shard as usize] = number;
        latest = latest.max(counted);
    }
    (violations, largest_inversion)
}

/// Runs the simulation.
pub fn simulate(settings: Settings) -> Outcome {
    Sim::new(settings).run()
}

/// Shares as percentages, or a dash where no look qualified.
fn percents((a, b, c): (f64, f64, f64)) -> String {
    if a.is_nan() {
        return "– (no such look by a fan admitted within the run)".into();
    }
    format!("{:.1}% / {:.1}% / {:.1}%", a * 100.0, b * 100.0, c * 100.0)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Outcome {
    /// The markdown report.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let q = &s.quotas;
        let throttled: u64 = self.costs.throttled.values().sum();
        let mut out = format!(
            "{} fans pressing in the first {} s ({} in the first second), {} entry shards, {} seats \
             over {} dates, `QUEUE_MAX_ACTIVE` {}, admission every {} s{}, entry through {}; \
             {} s simulated (seed {}).\n\n",
            thousands(u64::from(s.fans)),
            s.arrival_seconds,
            thousands(u64::from(s.first_second)),
            s.shards,
            thousands(u64::from(s.seats)),
            s.dates,
            thousands(u64::from(s.max_active)),
            s.admit_interval_seconds,
            if s.admit_per_second > 0 {
                format!(" at most {} a second (`QUEUE_ADMIT_PER_SECOND`)", s.admit_per_second)
            } else {
                String::new()
            },
            match s.entry {
                EntryPath::FunctionUrl => "CloudFront to the entry function's URL",
                EntryPath::ApiGateway => "API Gateway",
            },
            s.horizon_seconds,
            s.seed,
        );
        out.push_str(&format!(
            "Quotas applied: CloudFront {}/s; API Gateway {}/s; Lambda {} concurrent in the account, \
             +{} a function every 10 s, {} provisioned for queue entry; DynamoDB table warmed to \
             {} writes and {} reads a second ({} partitions), {} writes and {} reads a second a \
             partition; SQS {} sends a second a message group, {} calls a second an action; \
             EventBridge {} `PutEvents` a second ({} event{} a call).\n\n",
            thousands(q.cloudfront_rps.into()),
            thousands(q.api_gateway_rps.into()),
            thousands(q.lambda_concurrency.into()),
            thousands(q.lambda_scale_step.into()),
            thousands(q.entry_provisioned.into()),
            thousands(q.table_writes.into()),
            thousands(q.table_reads.into()),
            self.partitions,
            thousands(q.partition_writes.into()),
            thousands(q.partition_reads.into()),
            q.sqs_group_rps,
            thousands(q.sqs_action_rps.into()),
            thousands(q.eventbridge_rps.into()),
            s.events_per_call,
            if s.events_per_call == 1 { "" } else { "s" },
        ));
        out.push_str("| figure | value |\n|---|---:|\n");
        let mut row = |name: &str, value: String| out.push_str(&format!("| {name} | {value} |\n"));
        row(
            "fans with a place",
            format!(
                "{} of {}",
                thousands(self.placed.into()),
                thousands(s.fans.into())
            ),
        );
        row(
            "pressing to a place: p50 / p99 / max",
            format!(
                "{:.2} s / {:.2} s / {:.2} s",
                self.place_p50, self.place_p99, self.place_max
            ),
        );
        row(
            "every fan has a place by",
            format!("{:.1} s", self.all_placed_at),
        );
        row("throttled requests", thousands(throttled));
        row(
            "admitted (first come, first served)",
            thousands(self.admitted.into()),
        );
        row(
            "admissions out of order: in a shard, or across shards beyond the bound",
            format!(
                "{} (bound {FAIRNESS_BOUND_MS} ms; largest inversion {:.0} ms)",
                self.fairness_violations, self.largest_inversion_ms
            ),
        );
        row(
            "seats sold",
            format!(
                "{} of {}{}",
                thousands(self.sold.into()),
                thousands(s.seats.into()),
                self.sold_out_at
                    .map(|t| format!(", sold out at {t:.0} s"))
                    .unwrap_or_default()
            ),
        );
        row(
            &format!(
                "shown position against the people admitted before the fan, 20,000 or more \
                 ahead: p50 / p95 / max error ({} looks in all)",
                thousands(self.looks as u64)
            ),
            percents(self.position_error_far),
        );
        row(
            "the same, 1,000 to 20,000 ahead",
            percents(self.position_error),
        );
        let (n50, n95, nmax) = self.position_error_near;
        row(
            "the same, fewer than 1,000 ahead: p50 / p95 / max, people",
            format!("{n50} / {n95} / {nmax}"),
        );
        let (w5, w50, w95) = self.wait_ratio;
        row(
            "shown wait ÷ the wait that followed (waits over 10 s): p5 / p50 / p95",
            format!("{w5:.2} / {w50:.2} / {w95:.2}"),
        );
        row(
            "CloudFront requests a second, waiting fans' looks and entries (peak)",
            thousands(self.edge_peak_rps),
        );
        row(
            "origin requests a second while fans wait: peak / mean",
            format!(
                "{} / {:.1} (the document once a second, and one status request per admission)",
                thousands(self.origin_wait_peak_rps),
                self.origin_wait_mean_rps
            ),
        );
        row(
            "SQS sends a second: the busiest group / the queue",
            format!(
                "{} / {}",
                thousands(self.sqs_group_peak.into()),
                thousands(self.sqs_send_peak.into())
            ),
        );
        row(
            "DynamoDB table units a second (peak): writes / reads",
            format!(
                "{} / {}",
                thousands(self.table_write_peak.into()),
                thousands(self.table_read_peak.into())
            ),
        );
        row(
            "EventBridge `PutEvents` a second (peak)",
            thousands(self.eventbridge_peak.into()),
        );
        out.push_str("\nLambda: peak concurrency, invocations, new environments.\n\n");
        out.push_str("| function | peak concurrent | invocations | new environments (queue entry) |\n|---|---:|---:|---:|\n");
        for (name, peak, invocations, cold) in &self.lambda_peaks {
            out.push_str(&format!(
                "| {name} | {} | {} | {} |\n",
                thousands(u64::from(*peak)),
                thousands(*invocations),
                thousands(*cold)
            ));
        }
        out.push_str("\nThe hottest keys: units a second at their busiest second.\n\n");
        out.push_str("| key | writes | reads |\n|---|---:|---:|\n");
        for (key, writes, reads) in &self.hottest {
            out.push_str(&format!(
                "| `{key}` | {} | {} |\n",
                thousands(u64::from(*writes)),
                thousands(u64::from(*reads))
            ));
        }
        out.push_str(
            "\nWhat the on-sale asked of AWS (requests):\n\n| request | count |\n|---|---:|\n",
        );
        for (what, count) in &self.costs.requests {
            out.push_str(&format!("| {what} | {} |\n", thousands(*count)));
        }
        if throttled > 0 {
            out.push_str("\nThrottled, by limit:\n\n| limit | requests |\n|---|---:|\n");
            for (what, count) in &self.costs.throttled {
                out.push_str(&format!("| {what} | {} |\n", thousands(*count)));
            }
            out.push_str("\nThrottled, by key:\n\n| key | requests |\n|---|---:|\n");
            let mut keys: Vec<_> = self.costs.throttled_keys.iter().collect();
            keys.sort_by(|a, b| b.1.cmp(a.1));
            for (key, count) in keys.into_iter().take(8) {
                out.push_str(&format!("| `{key}` | {} |\n", thousands(*count)));
            }
        }
        out
    }
}

/// The model beside the local on-sale run (`infra/perf.sh onsale`) at that run's size: item
/// writes of the queue's shared keys and SQS messages, from the on-sale section of `doc`.
pub fn check_against_onsale(outcome: &Outcome, doc: &str) -> String {
    let section = doc
        .split("<!-- perf:onsale -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /perf:onsale -->").next())
        .unwrap_or_default();
    // `| `SHAPE` | keys written | item writes | ...`
    let measured_writes = |shape: &str| -> Option<u64> {
        let prefix = format!("| `{shape}` |");
        let line = section.lines().find(|line| line.starts_with(&prefix))?;
        line.split('|').nth(3)?.trim().replace(',', "").parse().ok()
    };
    // "... 8 message groups carried 517 entries ..."
    let measured_messages = section
        .split("message groups carried ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.replace(',', "").parse::<u64>().ok());
    let show = |n: Option<u64>| n.map_or("–".to_owned(), thousands);
    let mut out = format!(
        "The model against the local on-sale run (`infra/perf.sh onsale`, its section above) at \
         that run's size: {} fans at once, {} shards, {} seats, `QUEUE_MAX_ACTIVE` {}, a step \
         every {} s.\n\n| queue key | item writes, simulated | item writes, on-sale run |\n\
         |---|---:|---:|\n",
        outcome.settings.fans,
        outcome.settings.shards,
        outcome.settings.seats,
        outcome.settings.max_active,
        outcome.settings.admit_interval_seconds,
    );
    for shape in ["QUEUE#{id}#{n}", "QUEUE#{id}", "QACTIVE#{id}"] {
        out.push_str(&format!(
            "| `{shape}` | {} | {} |\n",
            show(outcome.costs.item_writes.get(shape).copied()),
            show(measured_writes(shape)),
        ));
    }
    out.push_str(&format!(
        "| SQS messages (entries) | {} | {} |\n",
        show(outcome.costs.requests.get("SQS SendMessage").copied()),
        show(measured_messages),
    ));
    out
}

/// What grows with the crowd and what does not: two runs side by side.
pub fn compare(small: &Outcome, large: &Outcome) -> String {
    let mut out = format!(
        "\nThe same on-sale with {} fans ({} in the first second) beside it:\n\n\
         | figure | {} fans | {} fans |\n|---|---:|---:|\n",
        thousands(small.settings.fans.into()),
        thousands(small.settings.first_second.into()),
        thousands(small.settings.fans.into()),
        thousands(large.settings.fans.into()),
    );
    let mut row = |name: &str, a: String, b: String| {
        out.push_str(&format!("| {name} | {a} | {b} |\n"));
    };
    row(
        "every fan has a place by",
        format!("{:.1} s", small.all_placed_at),
        format!("{:.1} s", large.all_placed_at),
    );
    row(
        "throttled requests",
        thousands(small.costs.throttled.values().sum()),
        thousands(large.costs.throttled.values().sum()),
    );
    row(
        "admissions out of order beyond the bound",
        small.fairness_violations.to_string(),
        large.fairness_violations.to_string(),
    );
    row(
        "origin requests a second while fans wait: peak / mean",
        format!(
            "{} / {:.1}",
            small.origin_wait_peak_rps, small.origin_wait_mean_rps
        ),
        format!(
            "{} / {:.1}",
            large.origin_wait_peak_rps, large.origin_wait_mean_rps
        ),
    );
    row(
        "CloudFront requests a second (peak)",
        thousands(small.edge_peak_rps),
        thousands(large.edge_peak_rps),
    );
    row(
        "shown position error, 20,000 or more ahead: p50 / p95 / max",
        percents(small.position_error_far),
        percents(large.position_error_far),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Settings {
        Settings {
            fans: 3_000,
            first_second: 1_000,
            arrival_seconds: 10,
            shards: 8,
            seats: 1_000,
            dates: 1,
            max_active: 200,
            horizon_seconds: 300,
            sample_every: 10,
            ..Settings::default()
        }
    }

    #[test]
    fn a_small_on_sale_should_place_everyone_and_admit_in_order() {
        let outcome = simulate(small());
        assert_eq!(outcome.placed, 3_000);
        assert_eq!(outcome.fairness_violations, 0);
        assert!(outcome.admitted > 1_000, "{}", outcome.admitted);
        // Nothing on the way in is throttled at these quotas.
        assert!(
            !outcome
                .costs
                .throttled
                .keys()
                .any(|limit| limit.starts_with("SQS") || limit.starts_with("Lambda")),
            "{:?}",
            outcome.costs.throttled
        );
        assert!(outcome.looks > 0);
        // One counter write and one message per entrant, spread over the shards.
        assert_eq!(outcome.costs.requests["SQS SendMessage"], 3_000);
        assert_eq!(outcome.costs.requests["DynamoDB UpdateItem"], 3_000);
    }

    #[test]
    fn admissions_out_of_order_should_be_counted_as_unfair() {
        let ms = |n: u64| n * MS;
        // In order, and across shards within the bound: fair.
        let fair = [
            (0, 1, ms(0)),
            (1, 1, ms(100)),
            (0, 2, ms(50)),
            (1, 2, ms(300)),
        ];
        assert_eq!(order_violations(fair.into_iter(), 2), (0, ms(50)));
        // A shard's numbers the wrong way round, however close in time.
        let swapped = [(0, 2, ms(10)), (0, 1, ms(11))];
        assert_eq!(order_violations(swapped.into_iter(), 1).0, 1);
        // A place taken 400 ms before one admitted ahead of it, in another shard.
        let late = [(1, 1, ms(500)), (0, 1, ms(100))];
        assert_eq!(order_violations(late.into_iter(), 2), (1, ms(400)));
    }

    #[test]
    fn a_limit_that_is_too_low_should_throttle_and_still_place_everyone() {
        let mut settings = small();
        settings.entry = EntryPath::ApiGateway;
        settings.quotas.api_gateway_rps = 300;
        let outcome = simulate(settings);
        assert!(
            outcome.costs.throttled["API Gateway requests/s per account"] > 0,
            "{:?}",
            outcome.costs.throttled
        );
        assert_eq!(outcome.placed, 3_000);
        assert!(outcome.place_max > 1.0);
    }
}
