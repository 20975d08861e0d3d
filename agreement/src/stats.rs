//! Counters of what a replica did and, above all, what it refused.

/// Counters exposed for metrics and tests. Every dropped input increments exactly one
/// `*_dropped`/`rejected` counter and logs one `tracing` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests_admitted: u64,
    /// Request id already pending or ordered (a retransmission or a replay).
    pub requests_duplicate: u64,
    /// Request id too far above, or below, the client's window.
    pub requests_out_of_window: u64,
    /// Bad client signature, unknown client, or oversized payload.
    pub requests_invalid: u64,
    /// Refused because the pending queue is full.
    pub requests_queue_full: u64,
    /// Replica messages with a bad signature, unknown signer or broken bounds.
    pub messages_invalid: u64,
    /// Sequence numbers outside the low/high watermarks (TOCS §4.3).
    pub messages_outside_window: u64,
    /// Messages for a view other than the one they must belong to.
    pub messages_wrong_view: u64,
    /// Otherwise well-formed messages refused by a protocol rule (not from the primary,
    /// votes after the fact, a view-change proof that does not check, ...).
    pub messages_rejected: u64,
    /// Pre-prepares refused for their timestamp (backwards, or beyond the skew).
    pub pre_prepares_bad_timestamp: u64,
    /// A second, different pre-prepare for a (view, sequence): primary equivocation.
    pub pre_prepares_conflicting: u64,
    /// A replica voted twice differently in one view for one sequence.
    pub votes_conflicting: u64,
    /// Votes that arrived after their slot had what they would add (a prepare after the
    /// slot prepared in that view with that digest, a commit after it committed with
    /// that digest): dropped unverified. With n = 4 the last of the others' votes of
    /// each kind usually lands here: 8 of 21 vote checks per batch are spared.
    pub votes_redundant: u64,
    pub batches_proposed: u64,
    /// Times the primary began holding requests because `max_batches_unanswered`
    /// proposed batches were unanswered.
    pub batches_paced: u64,
    /// Times it proposed held requests because no client reported progress in time.
    pub pacing_timeouts: u64,
    pub batches_delivered: u64,
    pub requests_delivered: u64,
    pub checkpoints_stable: u64,
    pub view_changes_started: u64,
    pub new_views_installed: u64,
    /// Times a new primary held 2f+1 or more view-changes that did not yet decide every
    /// sequence (TOCS §4.5.2) and waited for more.
    pub new_views_undecided: u64,
    pub batches_fetched: u64,
    /// Prepares and commits this replica kept to itself in its quiet role (`quiet.rs`).
    pub votes_withheld: u64,
    /// Times a quiet replica sent its withheld votes because a sequence stayed
    /// uncommitted for a status interval.
    pub quiet_speak_ups: u64,
    /// Pre-prepares whose named requests ([`palisade_wire::agreement::BatchEntry`]) this
    /// backup rebuilt from the requests it held.
    pub pre_prepares_rebuilt: u64,
    /// Pre-prepares naming a request this backup lacked (or held with other bytes):
    /// their batch was fetched from the primary.
    pub pre_prepares_fetched: u64,
    /// Pre-prepares that came over the primary's own link with a bad signature (checked
    /// after this replica prepared, before it would commit): the primary is faulty.
    pub pre_prepares_forged: u64,
    /// A view change that gathered no f+1 support was abandoned for the lower view that
    /// 2f+1 commits show still running (this replica follows it without voting).
    pub views_rejoined: u64,
}
