//! PBFT (Castro & Liskov, OSDI 1999; TOCS 20(4), 2002) as a pure state machine.
//!
//! A [`Replica`] is driven by [`Input`]s (client requests, replica messages, timer
//! expiries, clock readings, stable execution checkpoints) and answers each with a list
//! of [`Output`]s (send, broadcast, set/cancel timer, deliver). It does no I/O and reads no
//! clock: a runtime or a simulator carries out the outputs (DESIGN §3).
//!
//! What it implements, by paper section:
//! - request admission with a per-client window of request ids ([`client_table`], §4.1);
//! - batching bounded by count, bytes and delay ([`batcher`], §5.1);
//! - pre-prepare, prepare, commit, in-order delivery ([`replica`], [`log`], §4.2); the
//!   primary fixes each batch's timestamp, backups check it; a backup prepares on a
//!   pre-prepare from the primary's own link before checking its signature, and checks
//!   it before it commits ([`Input::CheckDeferred`], §3.2);
//! - checkpoints, watermarks, log garbage collection ([`checkpoint`], §4.3);
//! - view change and new view with a backed-off timer ([`view_change`], §4.4–4.5), with
//!   the `P`/`Q` sets and the decision procedure of §4.5.1–4.5.2, since prepares are
//!   unsigned;
//! - the ORDER certificate: 2f+1 signed commits, verifiable by anyone
//!   ([`palisade_wire::agreement::OrderCertificate::verify`], [`certificate`]);
//! - which replicas push a delivered order to the execution replicas ([`pushers`]: f+1 of
//!   them, one for a large batch).
//!
//! - status messages and retransmission, so a replica that lost messages catches up
//!   (commit certificates and bodies, or a stable checkpoint proof and a
//!   [`Output::StateTransfer`]) before it suspects the primary; status messages also
//!   carry views: a replica in a lower view gets the current new-view message, and one
//!   alone in a view change learns where the others are;
//! - 2f+1 commits complete a slot without the matching pre-prepare, including a commit
//!   from a replica that sent this one a conflicting commit (an equivocating primary);
//! - a view change that gathers no f+1 support is abandoned for the lower view that
//!   2f+1 commits (or 2f peers' status) show still running; the replica then follows
//!   that view WITHOUT voting in it, so that its view-change message stays truthful
//!   ([`Replica::may_vote`]);
//! - the per-client window of request ids slides forward when a client restarts with a
//!   larger base (ids below the window are duplicates, IPsec-style).
//!
//! Limits, on purpose or not yet done:
//! - no durable log (no `Persist` effect): a restarted replica rejoins from the others'
//!   checkpoints and the next view change (TOCS §5.3 recovery is not implemented). The
//!   execution replicas are the durable memory instead: a stable execution checkpoint
//!   need not be at a multiple of K (a restart checkpoint, where execution resumed after
//!   the whole cluster stopped), a primary never proposes at or below one
//!   ([`Replica`]'s execution floor), and a replica restarted on used state proposes
//!   nothing until one reached it ([`Replica::await_execution`]);
//! - prepares are authenticated by their links (the Noise session's AEAD tag is the MAC
//!   of TOCS §3.2) and carry no signature; every other replica message is signed
//!   (ed25519), because it is forwarded as evidence (see [`palisade_wire::agreement`]);
//!   commits could be link-authenticated too only if the ORDER certificate became
//!   something else than 2f+1 signed commits;
//! - retransmission answers (`Status`) and batch fetches are not rate-limited here: the
//!   runtime must bound how often it feeds one peer's messages in;
//! - requests of batches skipped by a state transfer are forgotten (clients
//!   retransmit), and a faulty primary can put an already ordered request into a new
//!   batch that backups accept before they delivered the first one; execution must
//!   drop duplicates by (client, request id).
//!
//! - [`DeliveryLog`]: delivered batches with their certificates, kept until a stable
//!   execution checkpoint covers them, to answer an execution replica's `FetchOrders`.
//!
//! The output towards execution is protocol-neutral ([`OrderedBatch`] plus
//! [`OrderCertificate`], an enum with a `Pbft` variant), so FaB Paxos can fill the same
//! seam. Where MACs suffice and where signatures are needed is explained in
//! [`palisade_wire::agreement`] and [`certificate`].

pub mod batcher;
pub mod certificate;
pub mod checkpoint;
pub mod client_table;
pub mod config;
pub mod delivery;
pub mod error;
pub mod io;
pub mod log;
pub mod pushers;
pub mod quiet;
pub mod replica;
pub mod stats;
pub mod view_change;

pub use config::{Config, ConfigError, DEFAULT_CLIENT_WINDOW};
pub use delivery::{DeliveryLog, DeliveryStats};
pub use error::Reject;
pub use io::{Input, Output, TimerKind};
pub use palisade_wire::agreement::{OrderCertificate, OrderedBatch};
pub use pushers::{Pushers, LARGE_BATCH_BYTES};
pub use replica::{Replica, Status};
pub use stats::Stats;
