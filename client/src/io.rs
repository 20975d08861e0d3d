//! The seam between the client core and whatever drives it: [`ClientInput`] in,
//! [`ClientOutput`] out (DESIGN §3, "sans-IO").

use std::time::Duration;

use palisade_wire::agreement::{ReplicaId, Request, Signed};
use palisade_wire::execution::{BatchReply, ExecReplicaId, Reply};
use palisade_wire::firewall::{CertifiedReply, Vouch};

/// The client's timers. At most one of each kind is armed; a new `SetTimer` replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClientTimer {
    /// Some outstanding request's retransmission time has come (TOCS §4.1: "if the
    /// client does not receive replies soon enough, it broadcasts the request").
    Retransmit,
    /// Certified replies waited `vouch_wait` for f+1 agreement nodes to vouch for
    /// their claims: check them.
    Vouch,
    /// Some read-only request waited `read_only_wait` without 2g+1 equal answers: order
    /// it ([`crate::read_only`]).
    ReadOnly,
}

/// Everything that can happen to a client.
#[derive(Clone, Debug)]
pub enum ClientInput {
    /// A new operation (the canonical encoding of an `FsOp`). Answered with
    /// [`ClientOutput::Accepted`] and the request id, or [`ClientOutput::Busy`] when the
    /// window is full, or [`ClientOutput::Refused`] when the payload can never be sent.
    Submit { payload: Vec<u8> },
    /// A new operation that only reads (`FsOp::is_read_only`), answered like
    /// [`ClientInput::Submit`]. With `Matching` acceptance and a non-zero
    /// `read_only_wait` it goes to the execution replicas unordered first
    /// ([`crate::read_only`]); otherwise it is exactly a `Submit`.
    SubmitRead { payload: Vec<u8> },
    /// An answer to a read-only request that came over execution replica `from`'s own
    /// authenticated link (unsigned: the link is its authentication, and it is never
    /// forwarded). Counted only if `from` is the replica it names.
    ReadOnlyReply { from: ExecReplicaId, reply: Reply },
    /// A reply from an execution replica, as received (not yet verified); used with
    /// [`crate::Acceptance::Matching`].
    Reply(BatchReply),
    /// A reply that came over execution replica `from`'s own authenticated link. The
    /// link's MAC authenticates it as a point-to-point message (TOCS §3.2: MACs suffice
    /// for what the receiver consumes itself and never forwards), so when `from` is the
    /// replica the reply names it counts without a check of its batch signature; a reply
    /// naming another replica is checked as [`ClientInput::Reply`] is.
    LinkReply {
        from: palisade_wire::execution::ExecReplicaId,
        reply: BatchReply,
    },
    /// A reply certified by the execution cluster's threshold signature, as received
    /// through the firewall and an agreement node (not yet verified); used with
    /// [`crate::Acceptance::Certified`].
    Certified(CertifiedReply),
    /// Agreement node `from` (as the authenticated link says) vouches that every top
    /// filter sent it certified replies making this claim ([`crate::vouches`]).
    Vouch { from: u32, vouch: Vouch },
    /// A timer set by [`ClientOutput::SetTimer`] fired.
    Timer(ClientTimer),
}

/// The effects of one step, in the order they must happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// The submission got this request id (`first_request_id`, then one more each time).
    Accepted {
        request_id: u64,
    },
    /// The window is full: submit again after some request completed.
    Busy,
    /// The submission can never be sent (its payload is larger than
    /// [`palisade_wire::agreement::MAX_REQUEST_PAYLOAD`], which every agreement replica
    /// would refuse). No request id was used. (An addition to the issue-3 API contract:
    /// without it such a submission would wait forever.)
    Refused {
        reason: &'static str,
    },
    /// Send this signed request to agreement replica `to`, or to every agreement replica
    /// when `to` is `None`.
    SendRequest {
        to: Option<ReplicaId>,
        request: Signed<Request>,
    },
    /// Send this signed read-only request to every execution replica, to be answered
    /// once the replica has executed through `after` (`Envelope::ReadOnly`).
    SendReadOnly {
        request: Signed<Request>,
        after: u64,
    },
    /// Tell every agreement replica that this client has accepted replies through this
    /// sequence number (`Envelope::RepliedThrough`; a batching hint for the primary).
    RepliedThrough(u64),
    /// g+1 execution replicas agreed on this result (the encoding of an `FsResult`, or
    /// its sealed form when the execution cluster seals reply bodies) for the request,
    /// executed in the batch at `sequence`.
    Complete {
        request_id: u64,
        sequence: u64,
        result: Vec<u8>,
    },
    /// All 2g+1 execution replicas gave this same answer to a read-only request, without
    /// ordering ([`crate::read_only`]); `sequence` is the highest one they read at. The
    /// result is sealed, when reply bodies are, under the read-only label
    /// (`BodyKey::open_read_reply`).
    CompleteReadOnly {
        request_id: u64,
        sequence: u64,
        result: Vec<u8>,
    },
    SetTimer {
        kind: ClientTimer,
        after: Duration,
    },
    CancelTimer(ClientTimer),
}
