//! The project's performance instruments (see docs/PERFORMANCE.md and `infra/perf.sh`):
//!
//! - [`meter`]: a counting proxy in front of the AWS APIs: requests per API, item reads and
//!   writes per partition key, messages per SQS message group;
//! - [`calls`]: every endpoint once through the meter, against a budget of round trips;
//! - [`cold_start`]: a Lambda Runtime API of our own that times a function's init and first
//!   invocation and reads its peak memory;
//! - [`cpu`]: CPU time per process, to put our share beside the emulators';
//! - [`simulate`]: a whole on-sale on a virtual clock, through the project's own admission
//!   order and progress document, against a model of AWS's limits;
//! - [`report`]: the markdown tables, and the sections of docs/PERFORMANCE.md they replace.

pub mod calls;
pub mod cold_start;
pub mod cpu;
pub mod faults;
pub mod meter;
pub mod practice_cost;
pub mod report;
pub mod simulate;
pub mod tls;
