//! Static configuration of one agreement replica.

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use palisade_wire::agreement::{ReplicaId, View, MAX_BATCH_REQUESTS, MAX_REPLICAS, MAX_WINDOW};

/// The default [`Config::client_window`]: request ids remembered per client below the
/// highest one ordered (the gateway's client keeps its ids in flight within it).
pub const DEFAULT_CLIENT_WINDOW: u64 = 1024;

/// Everything a replica needs to know before it can take part (TOCS §4: n = 3f+1
/// replicas, keys of replicas and clients, checkpoint interval K, watermark window L).
#[derive(Clone, Debug)]
pub struct Config {
    /// Faults tolerated; the cluster has n = 3f+1 replicas.
    pub f: usize,
    /// This replica's id, `0..n`.
    pub id: ReplicaId,
    /// Public keys of all replicas, indexed by replica id (length n).
    pub replica_keys: Vec<VerifyingKey>,
    /// Public keys of the clients (gateways), indexed by client id.
    pub client_keys: Vec<VerifyingKey>,
    /// Most requests in one batch.
    pub max_batch_requests: usize,
    /// Most payload bytes in one batch (a single larger request still goes alone).
    pub max_batch_bytes: usize,
    /// How long the primary waits for a batch to fill before proposing it anyway.
    /// Zero proposes every admitted request at once.
    pub batch_delay: Duration,
    /// Most batches the primary keeps proposed but not yet committed here; while that
    /// many are in flight, requests queue up and go out together once one commits
    /// (TOCS §5.1: the primary batches when the number of requests in progress exceeds
    /// a sliding window). Self-clocking: at low load a request is proposed at once, at
    /// high load batches grow to whatever arrived meanwhile, so the per-batch
    /// signatures are shared by many requests. Zero: no limit (batching by
    /// `batch_delay` alone).
    pub max_batches_in_flight: u64,
    /// Most batches the primary keeps proposed beyond the highest sequence number that
    /// any client reports answered ([`crate::Input::RepliedThrough`]). While that many
    /// are unanswered, requests queue and go out together once a client reports
    /// progress or `pacing_timeout` has passed. This paces batches by execution (with the
    /// firewall, by certification) rather than by agreement alone: the commit window
    /// above lets a batch go every agreement round, which is much shorter than an
    /// execution and certification round, so without this the batches that queue in
    /// front of execution stay small and each pays the per-batch threshold signature
    /// and certificate checks. Zero: no limit. Clients that report nothing cost each
    /// batch at most `pacing_timeout`; a client that reports too much releases only
    /// the batches already proposed (the hint is clamped to them).
    pub max_batches_unanswered: u64,
    /// Longest time requests wait for a client to report progress (see
    /// `max_batches_unanswered`).
    pub pacing_timeout: Duration,
    /// K: a checkpoint every K sequence numbers (TOCS §4.3).
    pub checkpoint_interval: u64,
    /// L: sequence numbers accepted above the low watermark; 2K by default, so the
    /// primary can keep proposing while the next checkpoint becomes stable.
    pub window: u64,
    /// A backup accepts a batch timestamp only within this distance of its own clock.
    pub max_timestamp_skew: Duration,
    /// Base timeout of the view-change timer; doubled for each successive view change
    /// without progress (TOCS §4.5.2).
    pub view_change_timeout: Duration,
    /// Interval of status messages while this replica waits for something (see
    /// [`crate::TimerKind::Status`]); keep it well below `view_change_timeout`.
    pub status_interval: Duration,
    /// Per client: most requests admitted and not yet ordered, and how many ids below
    /// the highest ordered one are remembered (ids further below are duplicates). Ids
    /// above the window are admitted: the window slides up when they are ordered, so a
    /// client restarted with a larger id base is served (see [`crate::client_table`]).
    pub client_window: u64,
    /// Most admitted-but-unordered requests held in total; beyond that new requests are
    /// refused (the client retries), so no client can make a replica allocate without
    /// bound.
    pub max_pending_requests: usize,
    /// Requests whose payload has at least this many bytes go by name in the primary's
    /// pre-prepares ([`palisade_wire::agreement::BatchEntry::Named`], TOCS §5.1 separate
    /// request transmission): every replica got them from their client already, so the
    /// primary does not send each backup the payload again. A backup that lacks one
    /// fetches the batch. `usize::MAX`: every request inline.
    pub named_requests_from: usize,
    /// Count a commit that came over its signer's own link without checking its
    /// signature (TOCS §3.2: the link's MAC authenticates a vote this replica consumes,
    /// as it does every prepare). The ORDER certificates this replica then delivers may
    /// hold a faulty replica's bad signature, so only where nothing needs them to verify:
    /// `separate`, whose execution replicas take an order on f+1 matching pushes (or
    /// fetch answers) from distinct agreement replicas and check a certificate only when
    /// those disagree. Not through the firewall, whose filters check every certificate.
    pub link_authenticated_commits: bool,
    /// The f backups after the primary's 2f voting ones keep their prepares and commits
    /// to themselves while the others make progress, and speak up when a sequence they
    /// withheld a vote for stays uncommitted for a status interval (`quiet.rs`).
    pub quiet_votes: bool,
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{keys} replica keys given, but n = 3f+1 = {n}")]
    ReplicaCount { keys: usize, n: usize },
    #[error("replica id {0} is not below n")]
    BadId(ReplicaId),
    #[error("invalid setting: {0}")]
    Invalid(&'static str),
}

impl Config {
    /// A configuration with the defaults used by the local cluster: K = 64, L = 2K,
    /// batches of at most 256 requests or 3 MiB, 1 ms batch delay, 1 s skew, 500 ms base
    /// view-change timeout, 100 ms status interval, a window of 1024 request ids per
    /// client, requests of 16 KiB or more named in pre-prepares.
    pub fn new(
        f: usize,
        id: ReplicaId,
        replica_keys: Vec<VerifyingKey>,
        client_keys: Vec<VerifyingKey>,
    ) -> Config {
        Config {
            f,
            id,
            replica_keys,
            client_keys,
            max_batch_requests: 256,
            max_batch_bytes: 3 * 1024 * 1024,
            batch_delay: Duration::from_millis(1),
            max_batches_in_flight: 0,
            max_batches_unanswered: 0,
            pacing_timeout: Duration::from_millis(5),
            checkpoint_interval: 64,
            window: 128,
            max_timestamp_skew: Duration::from_secs(1),
            view_change_timeout: Duration::from_millis(500),
            status_interval: Duration::from_millis(100),
            client_window: DEFAULT_CLIENT_WINDOW,
            max_pending_requests: 16 * 1024,
            named_requests_from: 16 * 1024,
            link_authenticated_commits: false,
            quiet_votes: false,
        }
    }

    /// n = 3f+1.
    pub fn n(&self) -> usize {
        self.f.saturating_mul(3).saturating_add(1)
    }

    /// 2f+1: the size of a prepare+pre-prepare, commit, checkpoint or view-change quorum.
    pub fn quorum(&self) -> usize {
        self.f.saturating_mul(2).saturating_add(1)
    }

    /// The primary of view `v` (TOCS §4.1: `p = v mod |R|`).
    pub fn primary(&self, view: View) -> ReplicaId {
        // n <= MAX_REPLICAS (checked in validate), so the remainder fits.
        (view % self.n() as u64) as ReplicaId
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.n();
        if n > MAX_REPLICAS {
            return Err(ConfigError::ReplicaCount {
                keys: self.replica_keys.len(),
                n,
            });
        }
        if self.replica_keys.len() != n {
            return Err(ConfigError::ReplicaCount {
                keys: self.replica_keys.len(),
                n,
            });
        }
        if self.id as usize >= n {
            return Err(ConfigError::BadId(self.id));
        }
        if self.max_batch_requests == 0 || self.max_batch_requests > MAX_BATCH_REQUESTS {
            return Err(ConfigError::Invalid(
                "max_batch_requests must be in 1..=4096",
            ));
        }
        if self.checkpoint_interval == 0 {
            return Err(ConfigError::Invalid("checkpoint_interval must be positive"));
        }
        if self.window < self.checkpoint_interval || self.window > MAX_WINDOW as u64 {
            return Err(ConfigError::Invalid("window must be in K..=4096"));
        }
        if self.max_batches_unanswered > 0 && self.pacing_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "pacing_timeout must be positive when batches are paced",
            ));
        }
        if self.client_window == 0 || self.max_pending_requests == 0 {
            return Err(ConfigError::Invalid(
                "client window and pending bound must be positive",
            ));
        }
        Ok(())
    }
}
