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
//!   and re-sends a cached reply for a duplicate;
//! - answers a re-delivered ORDER of a sequence it already executed (agreement re-sends
//!   one when a client retransmits a delivered request whose replies were lost) by
//!   re-sending its cached replies of that batch, after verifying the certificate;
//! - signs a `Reply` per executed request;
//! - every K sequences signs a checkpoint, collects g+1 matching ones into a
//!   [`CheckpointCertificate`](palisade_wire::execution::CheckpointCertificate) (a stable
//!   checkpoint) for agreement's garbage collection, and detects its own divergence;
//! - catches up by state transfer (TOCS §5.3.2) when it cannot reach a stable checkpoint
//!   by fetching orders, verified against the certified digest before anything changes.
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
//! Other limits: a batch whose commit fails (storage error) stays buffered and is
//! retried on the next input (the snapshots are dropped then, so that the durable store
//! can reopen); the reply cache is not durable.

mod clients;
mod core;
mod stats;
mod transfer;
mod votes;

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use palisade_wire::agreement::{ClientId, OrderCertificate, OrderedBatch, Signed};
use palisade_wire::execution::{ExecReplicaId, ExecutionMessage, Reply};

pub use self::core::ExecutionReplica;
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
}

/// The timers a replica asks for. At most one of each kind is armed; a new `SetTimer` of
/// a kind replaces the armed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExecTimer {
    /// A gap in the sequence persisted: ask agreement for the missing orders.
    FetchOrders,
    /// A state transfer made no progress: ask again.
    FetchState,
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
    /// A message from execution replica `from` (as the authenticated link says).
    Message {
        from: ExecReplicaId,
        message: ExecutionMessage,
    },
    /// A timer set by [`ReplicaOutput::SetTimer`] fired.
    Timer(ExecTimer),
}

/// The effects of one step, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaOutput {
    /// A signed reply to a client.
    Reply {
        to: ClientId,
        reply: Signed<Reply>,
    },
    /// To one execution replica, or (`None`) to every other one.
    ToExecution {
        to: Option<ExecReplicaId>,
        message: ExecutionMessage,
    },
    /// To every agreement node: `Checkpoint`, `Stable(cert)`, `FetchOrders`.
    ToAgreement(ExecutionMessage),
    SetTimer {
        kind: ExecTimer,
        after: Duration,
    },
    CancelTimer(ExecTimer),
}
