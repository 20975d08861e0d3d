//! What a simulated node's step asks of the world, in the simulator's terms.

use std::time::Duration;

use palisade_agreement::TimerKind;
use palisade_client::ClientTimer;
use palisade_execution::replica::ExecTimer;
use palisade_wire::agreement::{Digest, OrderCertificate, OrderedBatch, Sequence};

use crate::message::{Msg, NodeId};

/// A timer of some node. A node has at most one armed timer of each kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimTimer {
    Agreement(TimerKind),
    Execution(ExecTimer),
    Client(ClientTimer),
    /// A filter's next vouch deadline (`Filter::next_wake`).
    Filter,
    /// The workload's next submission.
    Submit,
    /// A restarted execution replica re-sends its latest stable certificate to
    /// agreement (as the node runtime does, `RESTART_RESEND`).
    RestartResend,
    /// A restarted agreement node vouches again for the stable checkpoint it recorded
    /// (as the node runtime does, `RESUME_RETRY`).
    ResumeVouch,
    /// An agreement node checks the signatures of the pre-prepares it accepted over
    /// the primary's link (`Input::CheckDeferred`).
    CheckDeferred,
}

/// One effect of a node's step.
#[derive(Clone, Debug)]
pub enum Effect {
    Send {
        to: NodeId,
        msg: Msg,
    },
    /// A send held back `after` longer than the network's delay (a delaying Byzantine
    /// filter).
    SendLater {
        to: NodeId,
        msg: Msg,
        after: Duration,
    },
    SetTimer {
        timer: SimTimer,
        after: Duration,
    },
    CancelTimer(SimTimer),
    /// An agreement replica delivered a batch (observed by the checker).
    Delivered {
        batch: OrderedBatch,
        certificate: OrderCertificate,
    },
    /// A client accepted a result (observed by the checker).
    Completed {
        request_id: u64,
        sequence: Sequence,
        result: Vec<u8>,
    },
    /// A client accepted the unordered answer to read-only `op`, read at `sequence`
    /// (observed by the checker, which reads `op` from its reference state there).
    CompletedRead {
        request_id: u64,
        sequence: Sequence,
        result: Vec<u8>,
        op: palisade_wire::fs::FsOp,
    },
    /// An execution replica's state after executing through `sequence`.
    Executed {
        sequence: Sequence,
        digest: Digest,
    },
}
