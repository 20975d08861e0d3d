//! Counters of the NFS adapter. Plain atomics for now; a Prometheus endpoint will export
//! them in a later issue.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the NFS adapter has refused or seen fail. All counts only grow.
#[derive(Debug, Default)]
pub struct NfsStats {
    /// File handles refused with NFS3ERR_BADHANDLE (wrong length, version or export).
    pub rejected_handles: AtomicU64,
    /// Operations the file system answered with an error (any `FsError`).
    pub fs_errors: AtomicU64,
    /// Of those, server-side failures: `Io`, `NoSpc`, `ServerFault`.
    pub server_errors: AtomicU64,
    /// Replies of the wrong kind for their operation (a bug or a hostile service),
    /// answered NFS3ERR_SERVERFAULT.
    pub unexpected_replies: AtomicU64,
}

/// A point-in-time copy of [`NfsStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NfsStatsSnapshot {
    pub rejected_handles: u64,
    pub fs_errors: u64,
    pub server_errors: u64,
    pub unexpected_replies: u64,
}

impl NfsStats {
    pub fn snapshot(&self) -> NfsStatsSnapshot {
        NfsStatsSnapshot {
            rejected_handles: self.rejected_handles.load(Ordering::Relaxed),
            fs_errors: self.fs_errors.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            unexpected_replies: self.unexpected_replies.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
