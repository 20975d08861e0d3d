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
//!
//! Composition notes (what the runtime must mirror, or what differs from it):
//! - an agreement node re-sends, from its delivery log, the orders of a batch whose
//!   request a client retransmits after it was delivered
//!   ([`agreement_node::AgreementNode`]): without it, orders lost on the way to
//!   execution are never noticed when no later order follows (found by `partitions`);
//! - an execution replica that receives a re-delivered, certified order of a sequence it
//!   already executed re-sends that batch's cached replies, so lost replies are recovered
//!   (the `lossy-replies` scenario). Open gap: a retransmission that arrives after a stable
//!   checkpoint let agreement collect the batch from its delivery log triggers no
//!   re-send (about 2 seeds in 1000 of `lossy-replies`, e.g. 453 and 694);
//! - gateways crash and restart only with `SimConfig::client_crashes` (a test in
//!   `tests/scenarios.rs` turns it on): their in-flight requests are abandoned and the
//!   new incarnation numbers requests from `incarnation * 2^40 + 1` ([`client_node`]),
//!   as the runtime does with a clock-derived `ClientConfig::first_request_id`;
//! - execution replicas run over [`durable::DurableStore`] (a shared `MemStore`) so that
//!   a crash keeps the committed state, the exactly-once table included: a replica
//!   restarted from its store has the same digest at once and is checked like any other;
//! - a node down or still recovering counts against f or g (a restarted execution replica
//!   until it reaches where its peers were at its restart): no second crash of its kind
//!   is injected meanwhile;
//! - the `chaos` scenario (loss, partitions, crashes with store loss at once) exercises
//!   state transfer served from the snapshot each replica keeps of its checkpoints.
//!
//! Usage: `cargo run -p palisade-sim --release -- --seed 1234 --scenario byzantine-primary`,
//! `--seeds 0..200 --scenario all`, and `--ops N` for a longer soak.

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
