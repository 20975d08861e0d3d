//! Palisade's deterministic whole-pipeline simulator (DESIGN §3; issue 3, item 3).
//!
//! One thread and one seed run the SAME pure cores the real nodes run — the BFT
//! [`palisade_client::Client`] with a workload generator, 3f+1 PBFT
//! [`palisade_agreement::Replica`]s each with a [`palisade_agreement::DeliveryLog`], and
//! 2g+1 [`palisade_execution::replica::ExecutionReplica`]s over in-memory stores — in
//! simulated time: a queue of message deliveries, timer firings and fault events. The
//! seed (ChaCha8, [`rng`]) decides every delay, loss, duplicate, partition, crash and
//! Byzantine choice, so a seed replays exactly.
//!
//! Faults ([`scenario`]): message delay and reordering, loss, duplication, partitions
//! that heal, crash and restart of any agreement or execution node (execution keeps its
//! store, [`durable`]; or loses it and catches up by state transfer), and Byzantine
//! behaviours as wrappers around a node's inputs or outputs ([`byzantine`],
//! [`execution_node`]): an equivocating, censoring or badly timestamping primary, a backup
//! voting for conflicting digests, an execution replica with wrong replies or a lying
//! checkpoint digest.
//!
//! Invariants, checked after every step ([`invariants`], [`oracle`]): no two different
//! batches committed at one sequence (over correct replicas' deliveries and every valid
//! ORDER certificate, in any view); one state digest per sequence over correct execution
//! replicas; every accepted result equals what the committed order produces on a
//! reference file system with the same exactly-once rule; and, once the fault phase ends,
//! every request completes within a bound of simulated time. A failure names the seed,
//! the invariant and the command that replays it ([`simulation::Failure`]).

pub mod agreement_node;
pub mod byzantine;
pub mod client_node;
pub mod durable;
pub mod effect;
pub mod execution_node;
pub mod invariants;
pub mod keys;
pub mod message;
pub mod network;
pub mod oracle;
pub mod rng;
pub mod scenario;
pub mod simulation;
pub mod workload;

pub use invariants::Violation;
pub use scenario::{Scenario, SimConfig};
pub use simulation::{run, Failure, RunStats, Simulation};
