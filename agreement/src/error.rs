//! Why an input was refused. Every refusal is counted in [`crate::Stats`] and logged;
//! none is fatal to the replica.

use palisade_wire::agreement::{Sequence, VerifyError, View};

use crate::client_table::AdmitError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Reject {
    #[error("invalid message: {0}")]
    Invalid(#[from] VerifyError),
    #[error("request not admitted: {0}")]
    Admit(#[from] AdmitError),
    #[error("sequence {0} outside the watermarks")]
    OutsideWindow(Sequence),
    #[error("message for view {got}, replica is in view {current}")]
    WrongView { got: View, current: View },
    #[error("bad timestamp: {0}")]
    Timestamp(&'static str),
    #[error("conflicting pre-prepare for sequence {0}")]
    ConflictingPrePrepare(Sequence),
    #[error("conflicting vote from replica {0}")]
    ConflictingVote(u32),
    #[error("protocol rule: {0}")]
    Rule(&'static str),
    /// A vote the slot has no use for any more (it prepared in that view, or committed
    /// with that digest): dropped before its signature is checked.
    #[error("redundant vote for sequence {0}")]
    Redundant(Sequence),
}
