//! Palisade's deterministic whole-pipeline simulator (DESIGN §3; issue 3, item 3; issue
//! 4, item 5).
//!
//! One thread and one seed run the SAME pure cores the real nodes run — the BFT
//! [`palisade_client::Client`] with a workload generator, 3f+1 PBFT
//! [`palisade_agreement::Replica`]s each with a [`palisade_agreement::DeliveryLog`],
//! (h+1)² [`palisade_firewall::Filter`]s in the firewall configuration, and 2g+1
//! [`palisade_execution::replica::ExecutionReplica`]s over in-memory stores — in
//! simulated time: a queue of message deliveries, timer firings and fault events. The
//! seed (ChaCha8, [`rng`]) decides every delay, loss, duplicate, partition, crash and
//! Byzantine choice, and deals the run's keys, so a seed replays exactly.
//!
//! Two configurations ([`scenario::SimConfig::h`], [`topology`]):
//! - `separate` (`h = None`): execution replicas reply to clients with ed25519-signed
//!   replies; the client waits for g+1 matching ones;
//! - firewall (`h = Some(h)`, Yin et al. SOSP 2003 §4): h+1 rows of h+1 filters between
//!   agreement and execution ([`filter_node`]); execution replicas threshold-sign one share
//!   per batch (BLS keys dealt from the seed, [`crypto_memo`]) and send shares, sealed
//!   bodies and stable shares to the bottom row only; certified replies climb the rows,
//!   replicas 0..=f of agreement relay them to the client, which accepts one certified
//!   reply and opens its sealed body; stable certificates garbage-collect agreement's
//!   log. The network has only the deployment's links: execution replicas reach the
//!   bottom row and each other, nothing else. Every message between layers goes through
//!   the simulated network, so loss, duplication, reordering and partitions hit filter
//!   links too; filters crash and restart empty.
//!
//! Faults ([`scenario`]): message delay and reordering, loss, duplication, partitions
//! that heal, crash and restart of any agreement, filter or execution node (execution
//! keeps its store, [`durable`]; or loses it and catches up by state transfer), a stop
//! of the whole cluster at once with its restart (`cluster-restart`: agreement remembers
//! only its last stable checkpoint, execution resumes where it was and says so with
//! restart checkpoints; `cluster-crash`: the same while the execution replicas stand at
//! different sequences, so that agreement orders anew where fewer than g+1 executed,
//! and the reference goes back over those batches unless a client accepted a result of
//! theirs), and
//! Byzantine behaviours as wrappers around a node's inputs or outputs ([`byzantine`],
//! [`execution_node`], [`filter_fault`], [`leak`]): an equivocating, censoring or badly
//! timestamping primary, a backup voting for conflicting digests, an execution replica
//! with wrong replies or a lying checkpoint digest; filters that drop everything, delay,
//! duplicate, forge certified replies and stable certificates, tamper with what they
//! pass, forward uncertified shares, bodies and raw bytes "as if certified", or replay
//! old certified replies; and leaking execution replicas that put secret bytes (request
//! plaintext, their state digest) into extra bodies, bad shares, bodies for requests
//! never made, raw bytes and floods.
//!
//! Invariants, checked after every step ([`invariants`], [`oracle`],
//! [`confidentiality`]): no two different batches committed at one sequence (over correct
//! replicas' deliveries and every valid ORDER certificate, in any view); one state digest
//! per sequence over correct execution replicas; every accepted result equals what the
//! committed order produces on a reference file system with the same exactly-once rule
//! (a read answered without ordering, `separate`: what the reference state after its
//! sequence answers, read no earlier than any result accepted before it was sent);
//! in the firewall configuration, on every message sent, **confidentiality**: what leaves
//! the top row or goes from agreement to a client is a certified reply (path and
//! signature verify) to a request ordered at its sequence, a verified stable certificate
//! or a fetch — or else made up by a compromised filter that never received anything
//! uncertified from below (information flow, see [`confidentiality`]); and, once the fault
//! phase ends, every request completes within a bound of simulated time. A failure names
//! the seed, the invariant and the command that replays it ([`simulation::Failure`]).
//!
//! Composition notes (what the runtime must mirror, or what differs from it):
//! - an agreement node re-sends, from its delivery log, the orders of a batch whose
//!   request a client retransmits after it was delivered
//!   ([`agreement_node::AgreementNode`]): without it, orders lost on the way to
//!   execution are never noticed when no later order follows (found by `partitions`);
//! - an execution replica that receives a re-delivered, certified order of a sequence it
//!   already executed re-sends that batch's cached replies, so lost replies are recovered
//!   (the `lossy-replies` scenario). A retransmission that arrives after a stable
//!   checkpoint let agreement collect the batch from its delivery log has no order to
//!   re-send: then agreement asks the execution replicas for their cached reply
//!   (`ExecutionMessage::ResendReply`, `separate` only; seeds 218, 453 and 694 of
//!   `lossy-replies` used to go unanswered), naming the sequence it delivered it at, so
//!   a replica that knows that batch only by its reply leaves fetches the body from its
//!   peers. The firewall configuration closes the same
//!   gap with overdue re-forwarding by the filters, below;
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
//! Firewall composition notes (what the runtime must mirror):
//! - an agreement node relays a certified reply once per distinct claim (sequence, root,
//!   signature; bounds, known client and Merkle path checked, not the signature), and a
//!   client's retransmission of a delivered request clears its "relayed" mark: relaying
//!   once for good lets a forging top filter take the one relay slot with garbage, and a
//!   relayed reply lost on the way would never be relayed again. When every top filter
//!   sent a claim, the node also sends the client a `Vouch`; f+1 vouches spare the
//!   client its pairing (`palisade_client::vouches`), and the confidentiality checker
//!   lets a vouch out only for a true claim;
//! - agreement collects its delivery log one stable interval back (through the previous
//!   stable sequence), as the filters do, so that a retransmission soon after a stable
//!   checkpoint still finds the order to re-send (seeds 9, 56, 65, 116, 119 … of
//!   `firewall` at K = 4 lost a reply for good without it);
//! - the firewall configuration runs with K = 8 ([`scenario::FIREWALL_CHECKPOINT_INTERVAL`]).
//!   A share or reply lost upward used to be recovered only when a client retransmission
//!   re-sent the batch's order while agreement and the filters still held it; a batch
//!   that fell out of every log first was never answered (at K = 8, in 500 seeds each:
//!   `firewall` 21 and 334, `firewall-chaos` 51, 174 and 373). Now a filter forwards an
//!   order whose replies are overdue down again by itself (`FilterConfig::overdue_after`),
//!   so the row below re-sends what it cached and the execution replicas what they made;
//!   0 of 700 seeds each of `firewall`, `firewall-chaos` and `lossy-replies --h 1` fail,
//!   and `tests/firewall.rs` keeps the former seeds as a regression test;
//! - only a replica that executed a batch and still cached its share and bodies could
//!   answer for it again, and that cache is not replicated state. So if a correct replica
//!   skipped a batch (state transfer) or lost its cache (restart), and a faulty one sent
//!   bad shares, only g valid shares existed for that batch, and a reply of it lost upward
//!   was never certified (`firewall-chaos` seed 102: replica 2 had no cache for sequences
//!   4 and 6, and replica 1 was excluded for bad shares; 1 of 1,200 seeds). Now the leaf
//!   hashes of the last two checkpoint intervals' replies are replicated state
//!   (`palisade_execution` `replica/reply_leaves.rs`): in the checkpoint digest, in state
//!   transfer, committed with each batch; a replica that skipped a batch signs its share
//!   over the leaves, and the bodies come from a replica that executed it;
//! - BLS verifications and combinations are memoized across the simulated nodes (pure
//!   functions; see [`crypto_memo`]): a firewall seed costs a few BLS operations per
//!   batch rather than one per node.
//!
//! Usage: `cargo run -p palisade-sim --release -- --seed 1234 --scenario byzantine-primary`,
//! `--seeds 0..200 --scenario all`, `--scenario firewall-chaos --h 2` (any scenario runs
//! through the firewall with `--h N`; the firewall scenarios default to h = 1),
//! `--trace` to print every message of a replayed seed, and `--ops N` for a longer soak.

pub mod agreement_node;
pub mod byzantine;
pub mod client_node;
pub mod confidentiality;
pub mod crypto_memo;
pub mod durable;
pub mod effect;
pub mod execution_node;
pub mod filter_fault;
pub mod filter_node;
pub mod firewall_setup;
pub mod invariants;
pub mod keys;
pub mod leak;
pub mod message;
pub mod network;
pub mod oracle;
pub mod rng;
pub mod scenario;
pub mod simulation;
pub mod topology;
pub mod workload;

pub use invariants::Violation;
pub use scenario::{Scenario, SimConfig};
pub use simulation::{run, Failure, RunStats, Simulation};
