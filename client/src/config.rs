//! Static configuration of one BFT client.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use palisade_crypto::ThresholdVerifier;
use palisade_wire::agreement::ClientId;

/// What makes a result acceptable.
#[derive(Clone, Debug)]
pub enum Acceptance {
    /// g+1 matching ed25519-signed replies (the `separate` configuration).
    Matching,
    /// One reply certified by the execution cluster's threshold signature (the firewall
    /// configuration, SOSP 2003 §4): its Merkle path leads to a batch root that the
    /// combined signature of g+1 execution replicas signs.
    Certified(Arc<dyn ThresholdVerifier>),
}

/// The agreement replicas' default `client_window` and the execution replicas'
/// `CLIENT_WINDOW` (`palisade_node` checks at compile time that it fits both): see
/// [`ClientConfig::replay_window`].
pub const REPLAY_WINDOW: u64 = 1024;

/// What a client needs to know: its id, the execution cluster's keys (replica `i` signs
/// with `exec_keys[i]`; there are 2g+1 of them) or its threshold public key (in
/// `acceptance`), how many agreement replicas to send to, how many requests it may keep
/// in flight, and when to retransmit.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub id: ClientId,
    /// Faulty execution replicas tolerated: g+1 matching replies complete a request.
    pub g: usize,
    /// Public keys of the execution replicas, indexed by replica id.
    pub exec_keys: Vec<VerifyingKey>,
    /// Number of agreement replicas (3f+1 for PBFT).
    pub agreement_replicas: usize,
    /// Most requests in flight at once (at least 1 is used even if 0 is given). Keep it
    /// at or below the agreement replicas' per-client window, or they refuse the excess.
    pub window: usize,
    /// The replicas' anti-replay window: agreement (`client_window`) and execution
    /// (`CLIENT_WINDOW`) take an id more than this far below the highest one ordered
    /// for the client for a replay. The client never submits an id this far above its
    /// oldest request in flight ([`REPLAY_WINDOW`] by default; at most the smaller of
    /// the two).
    pub replay_window: u64,
    /// How long a request waits for its result before it is sent again (doubled on each
    /// retransmission up to a bound, see [`crate::retransmit`]).
    pub retransmit_after: Duration,
    /// The id of this client's first request (0 is taken as 1). Ids only ever increase,
    /// also across restarts: agreement and execution remember ids per client to drop
    /// replays (TOCS §4.1 exactly-once), so a restarted gateway that began at 1 again
    /// would see its new requests taken for duplicates. The runtime passes a clock value
    /// (microseconds since the epoch at start), the simulator a deterministic base that
    /// grows with each restart. Agreement's window then slides up to the new ids.
    pub first_request_id: u64,
    /// Which replies complete a request: g+1 matching signed ones, or one certified one.
    pub acceptance: Acceptance,
    /// `Certified`: how long a certified reply waits for f+1 agreement nodes to vouch
    /// for its claim before the client checks the signature itself
    /// ([`crate::vouches`]). Zero checks every reply at once.
    pub vouch_wait: Duration,
    /// `Matching`: how long a read-only request waits for 2g+1 equal answers from the
    /// execution replicas before it is ordered ([`crate::read_only`]). Zero orders every
    /// request (no read-only fast path).
    pub read_only_wait: Duration,
}

impl ClientConfig {
    /// The window actually used (never zero, so a misconfigured client still works).
    pub fn effective_window(&self) -> usize {
        self.window.max(1)
    }

    /// f+1 of the `agreement_replicas` = 3f+1: agreement nodes whose word on a vouched
    /// reply makes it true (one of them is correct).
    pub fn vouch_quorum(&self) -> usize {
        self.agreement_replicas.saturating_sub(1) / 3 + 1
    }

    /// g+1: matching replies that make a result.
    pub fn reply_quorum(&self) -> usize {
        self.g.saturating_add(1)
    }
}
