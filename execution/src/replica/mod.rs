//! The execution replica core (Yin et al., SOSP 2003, §3; Castro–Liskov TOCS §4.3,
//! §5.3): a pure state machine around a [`FileSystem`](crate::FileSystem) that
//!
//! - verifies every ORDER certificate and every client signature before anything else,
//!   buffers batches that arrive ahead of their turn (bounded by `max_ahead`), asks
//!   agreement for missing ones when a gap persists (`FetchOrders`, backed-off timer), and
//!   executes batches strictly in sequence order, each as one atomic
//!   [`FileSystem::apply_batch`](crate::FileSystem::apply_batch);
//! - executes each (client, request id) at most once (a faulty primary can order a request
//!   twice) with a deterministic, bounded table that is part of the checkpointed state,
//!   and (`Signed` mode) re-sends a cached reply for a duplicate;
//! - answers a re-delivered ORDER of a sequence it already executed (agreement re-sends
//!   one when a client retransmits a delivered request whose replies were lost) by
//!   re-sending its cached replies of that batch (or, in `Threshold` mode, its cached
//!   share and reply bodies), after verifying the certificate;
//! - answers each executed request, in one of two [`ReplyMode`]s:
//!   - `Signed` (the `separate` configuration): the replies of a batch straight to their
//!     clients, each with its Merkle path to the batch's reply root and this replica's
//!     one ed25519 signature on that root (`BatchReply`); a client waits for g+1
//!     matching ones;
//!   - `Threshold` (the firewall configuration, SOSP 2003 §4; DESIGN §5 "one signature
//!     per batch"): one threshold-signature share per executed batch, over the RFC 6962
//!     Merkle root of the batch's replies, plus the reply bodies, all to the bottom
//!     filter row ([`ReplicaOutput::ToFirewall`]), which combines g+1 shares and sends
//!     each reply up with its Merkle path and the one combined signature;
//! - with a [`BodyKey`] (issue 4 §3), opens every request payload sealed by the gateway
//!   and seals every reply body for it, deterministically (the nonce is derived from
//!   sequence, client and request id), so every correct replica sends identical bytes
//!   and a compromised one has no bits of its own choosing in a reply;
//! - every K sequences signs a checkpoint and exchanges it with its peers; g+1 matching
//!   make a stable checkpoint. In `Signed` mode the replica reports its checkpoints and
//!   the [`CheckpointCertificate`](palisade_wire::execution::CheckpointCertificate) it
//!   formed to agreement for garbage collection; in `Threshold` mode nothing carrying a
//!   state digest goes up: a replica whose own digest is in the stable checkpoint sends
//!   its threshold share of `stable_message(n)` to the bottom filter row instead;
//! - detects its own divergence, and catches up by state transfer (TOCS §5.3.2) when it
//!   cannot reach a stable checkpoint by fetching orders, verified against the certified
//!   digest before anything changes.
//!
//! It reads no clock, opens no socket and draws no randomness: the runtime or the
//! simulator feeds [`ReplicaInput`]s and carries out the [`ReplicaOutput`]s (DESIGN §3).
//!
//! **The exactly-once table and the digest.** The table of executed request ids decides
//! what later batches do, so two replicas with different tables could diverge. It is
//! hashed into the checkpoint digest ([`ExecutionReplica::digest`] = H(file-system digest
//! ‖ table)), travels with the file-system checkpoint in state transfer
//! ([`ReplicaSnapshot`](palisade_wire::checkpoint::ReplicaSnapshot)), and is written to
//! the [`Store`](crate::Store) in the SAME atomic commit as the batch (or the installed
//! checkpoint) that changed it: a replica restarted from its data directory has exactly
//! its peers' table and digest at its sequence, and needs no state transfer. Per client
//! it is a sliding window (IPsec anti-replay, RFC 4303 §3.4.3): an id above the highest
//! one moves the window up; ids at or below `highest - CLIENT_WINDOW` count as executed
//! (a restarted gateway takes a clock-derived id base far above its old ids). A
//! duplicate is answered from the reply cache if its reply is there, else dropped and
//! counted; the reply cache is not durable, so after a restart a duplicate of an earlier
//! request gets no reply from this replica (its peers' caches still answer).
//!
//! **Reply leaves** (`reply_leaves.rs`). The leaf hashes of the replies of the last two
//! checkpoint intervals' batches are replicated state too, like the table: in the
//! digest, in state transfer, committed with each batch. A replica that skipped a batch
//! (state transfer) or lost its caches (restart) can still answer for it when its order
//! is re-delivered, so that g+1 correct replicas answer even beside g faulty ones: in the
//! firewall configuration it signs its share over the leaves; in `separate` it asks its
//! peers for the reply bodies it lacks, checks each against its leaves, and signs them
//! itself (`peer_replies.rs`). The same holds for a request whose batch has left
//! agreement's delivery log: agreement's `ResendReply` names the sequence it delivered
//! the request at, and a replica without a cached reply asks its peers for that one body.
//! Not covered: a `ResendReply` from an agreement node that no longer remembers the
//! sequence (its map of delivered requests is bounded), and batches older than the
//! leaves' window.
//!
//! **State transfer** (TOCS §5.3.2, simplified): at every checkpoint a replica freezes
//! its state ([`FileSystem::snapshot`](crate::FileSystem::snapshot): for redb an open
//! read transaction, O(pages changed since) thanks to copy-on-write; plus the Merkle
//! leaves and the exactly-once table at that point) and keeps the snapshots of its
//! latest stable checkpoint and of its newer own checkpoints (at most four). The asker
//! sends `FetchState` with its Merkle leaves to the signers of the stable checkpoint it
//! cannot reach — or, if it knows of no stable checkpoint beyond its state while orders
//! cannot be fetched (it missed the certificate), to every peer. A responder answers at
//! once from its newest snapshot at or above the asked sequence, preferring a stable
//! one, with that checkpoint's certificate if it is stable (else when it forms); it
//! answers a peer at most four times per snapshot, and otherwise — or without a
//! snapshot — at its next checkpoint. The difference is cut into `State` chunks of at
//! most [`STATE_CHUNK_BYTES`](palisade_wire::execution::STATE_CHUNK_BYTES). The asker
//! reassembles per responder (at most [`MAX_TRANSFER_BYTES`] each) and installs only once
//! it holds a certificate for that sequence whose digest the snapshot reproduces (the
//! table is checked by the combined digest, the file system by `import_checkpoint`),
//! storing file system and table in one commit; it then fetches orders from
//! `sequence + 1`.
//!
//! **Lost replies** (TOCS §4.1): a client that retransmits a delivered request makes
//! agreement re-send that batch's ORDER; a replica that already executed it re-sends its
//! cached replies. A batch the agreement log already dropped (a stable checkpoint covers
//! it) is not re-sent by agreement, so its lost replies stay lost (an agreement-side
//! gap: it would need to forward the retransmitted request itself).
//!
//! **The firewall configuration** (`Threshold` mode). Per executed batch the replica
//! builds one [`ReplyEntry`](palisade_wire::firewall::ReplyEntry) per request it
//! executed in that batch, in batch order; a duplicate (already in the exactly-once
//! table, which is replicated state) gets none, so every correct replica builds the same
//! entries. It signs its share of `reply_root_message(sequence, root)` and sends a
//! `ReplyShare` (the leaf hashes and the share), then one `ReplyBody` per entry. A batch
//! with no entry (a null batch, or only duplicates) produces no output at all: there is
//! nothing to certify, and a share over the empty root would only be one more message a
//! filter must check. Those messages are cached per sequence (bounded by
//! [`FIREWALL_CACHE_BATCHES`] and [`FIREWALL_CACHE_BYTES`]) so that a re-delivered ORDER
//! re-sends them, as `Signed` mode re-sends cached replies. The leaf hashes themselves
//! are replicated state (`reply_leaves.rs`, two checkpoint intervals of them): a batch
//! that left the cache, was skipped by state transfer or executed before a restart gets
//! a share signed over its leaves, without bodies. `FetchOrders` still goes out
//! as [`ReplicaOutput::ToAgreement`]: in the firewall deployment the runtime routes
//! "agreement" to the bottom filter row, which answers from the orders it forwarded.
//!
//! Other limits: a batch whose commit fails (storage error) stays buffered and is
//! retried on the next input (the snapshots are dropped then, so that the durable store
//! can reopen); the reply cache is not durable.

mod clients;
mod core;
mod firewall;
mod peer_replies;
mod pushed;
mod read_only;
mod redundant_orders;
mod reply_leaves;
mod stats;
mod transfer;
mod votes;

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use palisade_crypto::{BodyKey, ThresholdSigner};
use palisade_wire::agreement::{ClientId, OrderCertificate, OrderedBatch};
use palisade_wire::execution::{BatchReply, ExecReplicaId, ExecutionMessage, Reply};
use palisade_wire::firewall::FirewallMessage;

pub use self::core::ExecutionReplica;
pub use self::redundant_orders::RedundantOrders;
pub use self::stats::ReplicaStats;

/// Request ids remembered per client below the highest executed one; older ids count as
/// executed. Must be at least the clients' window of requests in flight (and match the
/// agreement cluster's `client_window`, 1024 by default), else a late request could be
/// taken for a replay.
pub const CLIENT_WINDOW: u64 = 1024;
/// Most replies cached per client for retransmission.
pub const REPLY_CACHE_ENTRIES: usize = 256;
/// Most reply bytes cached per client (a READ reply carries up to 1 MiB).
pub const REPLY_CACHE_BYTES: usize = 8 * 1024 * 1024;
/// Most executed batches whose firewall messages (share and bodies) are cached for
/// re-delivered orders (`Threshold` mode).
pub const FIREWALL_CACHE_BATCHES: usize = 1024;
/// Most bytes of reply bodies cached for re-delivered orders (`Threshold` mode); the
/// newest batch is kept whatever its size.
pub const FIREWALL_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Checkpoint intervals of batches whose reply leaves are kept as replicated state
/// (`Threshold` mode; see `reply_leaves.rs`): filters accept shares up to two intervals
/// back.
pub const REPLY_LEAVES_CHECKPOINTS: u64 = 2;
/// How long an order pushed by one agreement replica waits for f more replicas to push
/// the same batch (`pushed.rs`) before its certificate is checked instead. On loopback
/// the copies of replicas 0..=f arrive within tens of microseconds of each other; a
/// pusher that lets this expire is not waited for again until it pushes.
pub const PUSH_WAIT: Duration = Duration::from_millis(3);
/// Largest encoded state a replica exports or assembles in one transfer. A larger state
/// is refused (counted in [`ReplicaStats::state_too_large`]); the asker then cannot catch
/// up by state transfer.
pub const MAX_TRANSFER_BYTES: usize = 512 * 1024 * 1024;
/// Unanswered `FetchOrders` rounds after which a replica that knows of a stable checkpoint
/// beyond its state gives up on orders and asks for the state instead.
pub const FETCH_ATTEMPTS_BEFORE_TRANSFER: u32 = 3;
/// Largest back-off exponent of the fetch timers (timeout × 2^6 at most).
pub const MAX_BACKOFF: u32 = 6;

/// Static configuration of one execution replica.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This replica's id, `0..2g+1`.
    pub id: ExecReplicaId,
    /// Faulty execution replicas tolerated (the cluster has 2g+1).
    pub g: usize,
    /// Faulty agreement replicas tolerated (ORDER certificates need 2f+1 commits).
    pub f: usize,
    /// Agreement replicas' public keys, indexed by replica id.
    pub agreement_keys: Vec<VerifyingKey>,
    /// Clients' (gateways') public keys, indexed by client id.
    pub client_keys: Vec<VerifyingKey>,
    /// Execution replicas' public keys, indexed by id (length 2g+1).
    pub exec_keys: Vec<VerifyingKey>,
    /// K: a checkpoint after every sequence number divisible by K.
    pub checkpoint_interval: u64,
    /// Most sequence numbers beyond the next one that are buffered.
    pub max_ahead: u64,
    /// How long a gap may persist before orders (or state) are fetched; doubled per
    /// unanswered round.
    pub fetch_timeout: Duration,
    /// Some: request payloads arrive sealed for the execution cluster and reply bodies
    /// leave sealed for the gateway (issue 4 §3). None: plaintext (tests, simulator
    /// scenarios).
    pub body_key: Option<BodyKey>,
    /// How executed requests are answered.
    pub replies: ReplyMode,
}

/// How an execution replica answers the requests it executed.
#[derive(Clone, Debug)]
pub enum ReplyMode {
    /// `separate` configuration: the replies of a batch to their clients under one
    /// ed25519 signature of this replica on their Merkle root (`BatchReply`).
    Signed,
    /// Firewall configuration (SOSP 2003 §4; DESIGN §5 "one signature per batch"): one
    /// threshold share per executed batch over the Merkle root of its replies, to the
    /// bottom filter row, plus the reply bodies; and a threshold share of
    /// `stable_message(n)` when a checkpoint becomes stable, instead of the ed25519
    /// `CheckpointCertificate` to agreement. The signer's index must be this replica's id.
    Threshold(Arc<dyn ThresholdSigner>),
}

/// The timers a replica asks for. At most one of each kind is armed; a new `SetTimer` of
/// a kind replaces the armed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExecTimer {
    /// A gap in the sequence persisted: ask agreement for the missing orders.
    FetchOrders,
    /// A state transfer made no progress: ask again.
    FetchState,
    /// Pushed orders wait for f+1 matching copies: those that waited at least
    /// [`PUSH_WAIT`] are checked by their certificates.
    PushedOrders,
}

/// Everything that can happen to an execution replica.
#[derive(Clone, Debug)]
pub enum ReplicaInput {
    /// An ordered batch with its certificate (from agreement, or a filter row). Checked
    /// regardless of who delivered it.
    Order {
        batch: OrderedBatch,
        certificate: OrderCertificate,
    },
    /// An order agreement replica `from` pushed over its own authenticated link
    /// (`separate`): taken without its certificate once f+1 replicas pushed the same
    /// batch (`pushed.rs`), else checked as [`ReplicaInput::Order`] is. Also tells the
    /// routine second copy of an executed order (dropped) from a re-delivery.
    Pushed {
        from: palisade_wire::agreement::ReplicaId,
        batch: OrderedBatch,
        certificate: OrderCertificate,
    },
    /// A message from execution replica `from` (as the authenticated link says).
    Message {
        from: ExecReplicaId,
        message: ExecutionMessage,
    },
    /// A stable checkpoint certificate from agreement (in answer to `FetchOrders` for
    /// orders it collected). Self-certifying: g+1 execution replicas signed it.
    Stable(palisade_wire::execution::CheckpointCertificate),
    /// Agreement asks for the reply of a request executed long ago
    /// ([`ExecutionMessage::ResendReply`]), naming the sequence it was delivered at when
    /// it remembers it (a hint, checked against the reply leaves); `Signed` mode only.
    ResendReply {
        client: palisade_wire::agreement::ClientId,
        request_id: u64,
        sequence: Option<palisade_wire::agreement::Sequence>,
    },
    /// A read-only request that came over client `from`'s own link (`Signed` mode;
    /// `read_only.rs`): answered from the current state once this replica executed
    /// through `after`, without ordering.
    ReadOnly {
        from: ClientId,
        request: palisade_wire::agreement::Signed<palisade_wire::agreement::Request>,
        after: palisade_wire::agreement::Sequence,
    },
    /// A timer set by [`ReplicaOutput::SetTimer`] fired.
    Timer(ExecTimer),
}

/// The effects of one step, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaOutput {
    /// A reply to a client under this replica's signature on its batch (`Signed` mode).
    Reply {
        to: ClientId,
        reply: BatchReply,
    },
    /// The answer to a [`ReplicaInput::ReadOnly`] request, to its client over this
    /// replica's link (`Envelope::ReadOnlyReply`: unsigned, never forwarded).
    ReadOnlyReply {
        to: ClientId,
        reply: Reply,
    },
    /// To one execution replica, or (`None`) to every other one.
    ToExecution {
        to: Option<ExecReplicaId>,
        message: ExecutionMessage,
    },
    /// To every agreement node: `Checkpoint`, `Stable(cert)` (both `Signed` mode only),
    /// `FetchOrders` (in the firewall deployment the runtime routes these to the bottom
    /// filter row, which answers from the orders it forwarded).
    ToAgreement(ExecutionMessage),
    /// To every bottom-row filter (`Threshold` mode): `ReplyShare`, `ReplyBody`,
    /// `StableShare`.
    ToFirewall(FirewallMessage),
    SetTimer {
        kind: ExecTimer,
        after: Duration,
    },
    CancelTimer(ExecTimer),
}
