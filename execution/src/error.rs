//! Errors of the execution state machine. These are failures of the replica itself
//! (storage, corruption, protocol misuse); per-operation NFS errors are `FsError` replies.

/// A failure of the state machine or its storage. Never an NFS-level error.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The storage failed (I/O, disk full, ...). Nothing of the batch was applied.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The stored state is malformed (not a database, undecodable records, broken
    /// invariants). The replica must not serve from it; it may fetch a checkpoint.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// A batch was offered out of order (Castro–Liskov §4.2: execute in sequence order).
    #[error("batch {got} is out of order: expected {expected}")]
    OutOfOrder { expected: u64, got: u64 },
    /// A checkpoint did not reproduce the digest it claimed; nothing was changed.
    #[error("checkpoint digest mismatch")]
    DigestMismatch,
    /// A checkpoint is malformed or exceeds the bounds of this file system.
    #[error("invalid checkpoint: {0}")]
    BadCheckpoint(String),
}

impl From<palisade_wire::WireError> for ExecError {
    fn from(e: palisade_wire::WireError) -> Self {
        ExecError::Corrupt(e.to_string())
    }
}

impl From<std::io::Error> for ExecError {
    fn from(e: std::io::Error) -> Self {
        ExecError::Storage(e.to_string())
    }
}
