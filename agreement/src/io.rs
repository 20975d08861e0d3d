//! The seam between the pure state machine and whatever drives it: [`Input`] in,
//! [`Output`] out (DESIGN §3, "sans-IO").

use std::time::Duration;

use palisade_wire::agreement::{
    AgreementMessage, Digest, OrderCertificate, OrderedBatch, ReplicaId, Request, Sequence, Signed,
};
use palisade_wire::fs::Timestamp;

/// The timers a replica asks its runtime for. At most one of each kind is armed; a new
/// `SetTimer` of a kind replaces the armed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// The primary's batch delay: propose a partial batch when it fires.
    Batch,
    /// TOCS §4.4: in the normal case, "a request is waiting too long" (the primary is
    /// suspected); during a view change, "no valid new-view arrived in time".
    ViewChange,
    /// While waiting, periodically tell peers how far this replica got, so that they
    /// retransmit lost commits, bodies and checkpoints. Shorter than the view-change
    /// timeout, so a replica that merely lost messages recovers before suspecting the
    /// primary.
    Status,
    /// The primary held requests while `Config::max_batches_unanswered` batches were
    /// unanswered and no client reported progress in time: propose them anyway.
    Pacing,
}

/// Everything that can happen to a replica.
#[derive(Clone, Debug)]
pub enum Input {
    /// A request from a client (gateway). Clients send every request to all replicas,
    /// so a faulty primary cannot hide it from the backups (TOCS §4.1, §4.4).
    ClientRequest(Signed<Request>),
    /// A client reports it has accepted replies through this sequence number (over its
    /// authenticated link; a batching hint, see `Config::max_batches_unanswered`).
    RepliedThrough(Sequence),
    /// A request that arrived over the authenticated link of the very client it names
    /// (the runtime checked the link's identity). The link proves who sent it, so it is
    /// admitted without checking its signature; the signature is checked only where it
    /// must convince a third party: by the primary before it proposes the request, and
    /// by a backup about to suspect the primary over it. Backups that hold the identical
    /// bytes then accept the primary's batch without checking (they already know the
    /// client sent it), and execution trusts the 2f+1 commits (see
    /// `palisade_wire::agreement::OrderCertificate::verify`). In the normal case this
    /// makes one signature check per request instead of one per replica.
    LinkRequest(Signed<Request>),
    /// A message from replica `from` (as the authenticated link says). Its signature is
    /// checked regardless: `from` only decides where fetch replies go.
    Message {
        from: ReplicaId,
        message: AgreementMessage,
    },
    /// A timer set by [`Output::SetTimer`] fired.
    Timer(TimerKind),
    /// The runtime's clock reading, passed in as data; the primary stamps batches with
    /// it and backups check batch timestamps against it.
    Tick(Timestamp),
    /// The execution cluster made its checkpoint at `sequence` stable (g+1 matching
    /// signed digests, verified by the runtime). The replica then vouches for it with a
    /// PBFT checkpoint message (TOCS §4.3); 2f+1 of those collect the log.
    StableCheckpoint {
        sequence: Sequence,
        state_digest: Digest,
    },
    /// The runtime's record of its last stable checkpoint, from before this replica
    /// restarted. Vouched for like [`Input::StableCheckpoint`], but it does not end
    /// [`crate::Replica::await_execution`]: the execution replicas may have executed
    /// batches past it, and only their own restart checkpoint says how far they got.
    /// Taking the record for it let a restarted primary assign an executed sequence
    /// number again whenever the record was stable before the restart checkpoint came.
    RecordedCheckpoint {
        sequence: Sequence,
        state_digest: Digest,
    },
    /// Check the signatures of the pre-prepares this replica accepted over the primary's
    /// link and has not checked yet (`Replica::has_deferred_checks`). A runtime steps it
    /// right after sending the outputs of a step that left some: the prepares are out
    /// while the check runs, and a commit waits for it (TOCS §3.2; see
    /// `Replica::pre_prepare_signature_holds`).
    CheckDeferred,
}

/// The effects a step asks for, in order. This core keeps no durable log: a replica that
/// restarts rejoins from the others' next stable checkpoint and view change, so there is
/// no `Persist` effect (a crash-recovery mode would add one before each `Broadcast`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        to: ReplicaId,
        message: AgreementMessage,
    },
    /// To every other replica.
    Broadcast(AgreementMessage),
    SetTimer {
        kind: TimerKind,
        after: Duration,
    },
    CancelTimer(TimerKind),
    /// The next batch of the total order, in sequence order without gaps, with the
    /// certificate that lets anyone downstream check it.
    Deliver {
        batch: OrderedBatch,
        certificate: OrderCertificate,
    },
    /// This replica fell behind: 2f+1 replicas proved a stable checkpoint at `sequence`
    /// beyond what it delivered, so batches up to `sequence` will not be delivered here.
    /// Execution must fetch the state with `state_digest` (TOCS §5.3.2); deliveries
    /// resume at `sequence + 1`.
    StateTransfer {
        sequence: Sequence,
        state_digest: Digest,
    },
}
