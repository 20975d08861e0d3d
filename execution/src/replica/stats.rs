//! Counters of an execution replica: what it did, and every input it dropped, by reason.

/// What an execution replica did and dropped. Every drop is counted here and logged
/// (`tracing`, debug level; divergence and storage failures at warn/error).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Batches executed (null batches included).
    pub batches_executed: u64,
    /// Of those, batches committed without waiting for the disk: they changed no file
    /// and are not at a checkpoint's sequence.
    pub batches_unsynced: u64,
    /// Requests executed (each exactly once).
    pub requests_executed: u64,
    /// Replies sent for newly executed requests: signed replies (`Signed` mode) or reply
    /// bodies under a share (`Threshold` mode).
    pub replies_sent: u64,
    /// Cached replies re-sent for requests ordered again (`Signed` mode).
    pub replies_resent: u64,
    /// `Threshold` mode: batches certified (one `ReplyShare` each).
    pub reply_shares_sent: u64,
    /// `Threshold` mode: executed batches with no reply to certify (null, or only
    /// duplicates): nothing sent.
    pub batches_without_replies: u64,
    /// `Threshold` mode: stable-checkpoint shares sent.
    pub stable_shares_sent: u64,
    /// `Threshold` mode: cached shares and bodies re-sent for re-delivered orders.
    pub firewall_messages_resent: u64,
    /// `Threshold` mode: shares signed for re-delivered orders of batches this replica
    /// knows only by their reply leaves (it skipped them by state transfer, or lost its
    /// cache in a restart).
    pub shares_from_leaves: u64,
    /// `Signed` mode: re-delivered orders of batches whose replies this replica lacked
    /// (it knew them only by their leaves), for which it asked its peers.
    pub replies_fetched: u64,
    /// `Signed` mode: replies sent to a peer that asked for them.
    pub replies_served: u64,
    /// `Signed` mode: peers' asks refused (sequence outside the window, or asked too often).
    pub reply_fetches_refused: u64,
    /// `Signed` mode: replies taken from a peer (checked against the leaves), signed and sent.
    pub replies_from_peers: u64,
    /// `Signed` mode: replies from peers for sequences not asked for, dropped.
    pub unsolicited_replies: u64,
    /// `Signed` mode: replies from peers whose leaf is not among the batch's, dropped.
    pub bad_peer_replies: u64,
    /// Requests ordered again after they were executed (not executed twice).
    pub duplicate_requests: u64,
    /// Duplicates (executed, or below their client's window) with no cached reply to
    /// re-send: dropped.
    pub duplicates_without_reply: u64,
    /// Requests whose payload is not an `FsOp` (answered `Inval`).
    pub undecodable_requests: u64,
    /// Requests whose sealed payload does not open with the body key (answered `Inval`).
    pub unsealable_requests: u64,
    /// Orders for sequences already executed or already buffered.
    pub duplicate_orders: u64,
    /// Re-delivered orders of executed sequences (certificate verified) that made this
    /// replica re-send cached replies (counted in `replies_resent`) or cached firewall
    /// messages (counted in `firewall_messages_resent`).
    pub orders_redelivered: u64,
    /// Pushed orders taken on f+1 matching pushes, without a certificate check.
    pub orders_agreed_by_pushers: u64,
    /// Large pushed orders (`LARGE_BATCH_BYTES` of payload or more) taken at their one copy by
    /// their certificate.
    pub large_orders_certified: u64,
    /// Routine second copies of executed pushed orders, dropped unchecked.
    pub orders_redundant: u64,
    /// Second, different batches one agreement replica pushed at one sequence, dropped.
    pub orders_conflicting: u64,
    /// Times pushed orders waited `PUSH_WAIT` in vain and were checked by certificate.
    pub push_waits_expired: u64,
    /// Orders beyond `last_applied + max_ahead`, dropped.
    pub orders_too_far_ahead: u64,
    /// Orders whose certificate did not verify, dropped.
    pub bad_certificates: u64,
    /// Certified orders whose batch is out of bounds (too many requests, an oversized
    /// payload), dropped.
    pub malformed_batches: u64,
    /// Batches that could not be committed (storage failure); retried later.
    pub storage_errors: u64,
    /// Replies or checkpoints that could not be signed (encoding failure).
    pub sign_failures: u64,
    /// `FetchOrders` sent to agreement.
    pub fetch_orders_sent: u64,
    /// Own checkpoints taken.
    pub checkpoints_taken: u64,
    /// Of those, restart checkpoints (`ExecutionReplica::start`).
    pub restart_checkpoints: u64,
    /// Restarts after which every execution replica's restart checkpoint arrived and
    /// no g+1 of them named one sequence and digest: nothing can become stable, so
    /// agreement waits (reported once per restart; `ExecutionReplica::restart_resend`).
    pub restart_stalls: u64,
    /// Stable checkpoints adopted (formed here or received).
    pub stable_checkpoints: u64,
    /// Checkpoint messages or certificates dropped (bad signature, bad sequence, stale).
    pub bad_checkpoints: u64,
    /// Stable checkpoints whose digest differed from this replica's own.
    pub divergences: u64,
    /// `FetchState` requests accepted from peers.
    pub state_requests: u64,
    /// `FetchState` requests from a peer already answered often from the current
    /// snapshot: left for the next checkpoint.
    pub state_requests_deferred: u64,
    /// State transfers served (exports sent).
    pub state_transfers_served: u64,
    /// Exports or assemblies refused for exceeding [`super::MAX_TRANSFER_BYTES`].
    pub state_too_large: u64,
    /// State transfers this replica started (or restarted after a timeout).
    pub state_transfers_started: u64,
    /// State transfers installed.
    pub state_transfers_completed: u64,
    /// State chunks or snapshots refused (malformed, inconsistent, digest mismatch).
    pub bad_state: u64,
    /// State chunks nobody asked for, or for a state already passed.
    pub unsolicited_state: u64,
    /// Messages out of bounds, from an unknown sender, or not meant for an execution
    /// replica.
    pub malformed_messages: u64,
    /// Read-only requests answered without ordering (`read_only.rs`).
    pub reads_answered: u64,
    /// Read-only requests left unanswered (the client orders them instead): not
    /// read-only, not opening or decoding, from a client other than the link's, out of
    /// bounds, in `Threshold` mode, or a storage error.
    pub reads_refused: u64,
    /// Read-only requests dropped unanswered from a full wait queue.
    pub reads_dropped: u64,
}
