//! Counters of what a client did and, above all, what it refused.

/// Counters exposed for metrics and tests. Every dropped reply increments exactly one
/// `replies_*` drop counter and logs one `tracing` debug line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Submissions that got a request id.
    pub submitted: u64,
    /// Submissions answered `Busy` (window full).
    pub busy: u64,
    /// Submissions refused outright (oversized payload, unsignable).
    pub refused: u64,
    /// Requests whose result was accepted (g+1 matching replies, or one certified reply).
    pub completed: u64,
    /// Request retransmissions (each a send to every agreement replica).
    pub retransmissions: u64,
    /// Replies counted towards some result.
    pub replies_counted: u64,
    /// Replies for a request id that is not outstanding (never sent, or already
    /// complete: the late replies of the replicas beyond the first g+1 land here).
    pub replies_unknown_request: u64,
    /// Replies addressed to another client.
    pub replies_wrong_client: u64,
    /// Replies with a bad signature, an unknown signer or broken bounds.
    pub replies_invalid: u64,
    /// Replies counted on their link's authentication instead of a signature check
    /// ([`crate::ClientInput::LinkReply`] from the replica they name).
    pub replies_link_authenticated: u64,
    /// The same reply again from the same replica (a retransmission).
    pub replies_duplicate: u64,
    /// A replica sent a reply that differs from the one it sent before for the same
    /// request: proof that the replica is faulty. It is excluded for that request.
    pub replies_conflicting: u64,
    /// Replies of the kind the configured [`crate::Acceptance`] does not use (a signed
    /// reply to a client that accepts certified ones, or the reverse).
    pub replies_wrong_mode: u64,
    /// Certified replies refused: broken bounds, a Merkle path that leads nowhere, or a
    /// combined signature that does not verify on its batch root.
    pub bad_certificates: u64,
    /// Certified replies whose (sequence, root, signature) was verified before: accepted
    /// without a second signature check (the replies of one batch cost one check).
    pub certificates_cached: u64,
    /// Certified replies whose claim this client checked with a pairing.
    pub certificates_checked: u64,
    /// Claims (a batch's root and signature) taken as true because f+1 agreement nodes
    /// vouched that every top filter sent them (no pairing).
    pub claims_vouched: u64,
    /// Batch replies whose (replica, sequence, root, signature) was verified before:
    /// counted without a second signature check.
    pub reply_signatures_cached: u64,
    /// Read-only requests completed by 2g+1 equal answers, unordered.
    pub reads_unordered: u64,
    /// Read-only requests ordered after the replicas' answers disagreed.
    pub reads_disagreed: u64,
    /// Read-only requests ordered after `read_only_wait` passed without 2g+1 answers.
    pub reads_timed_out: u64,
    /// Read-only answers dropped: for no request in its read-only phase, for another
    /// client, naming a replica other than the link's, out of bounds, or a replica's
    /// second answer.
    pub read_answers_dropped: u64,
}
