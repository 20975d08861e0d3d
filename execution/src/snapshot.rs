//! [`FsSnapshot`]: a read-only view of the file system frozen at one sequence number, so
//! that a replica can serve the state of its last checkpoint at any later time
//! (Castro–Liskov TOCS §5.3.2: replicas keep the checkpoint states that peers may ask
//! for; here the last one). Without it, a replica could answer a state request only at
//! its next checkpoint, which never comes when too few replicas are live to make progress.
//!
//! Cost: the store's own snapshot ([`Store::snapshot`]) — for [`crate::RedbStore`] an open
//! read transaction, which copy-on-write pages make O(pages changed afterwards) — plus a
//! copy of the Merkle leaves at that point (one hash per inode), which a diff export
//! compares against the asker's leaves.

use std::collections::BTreeMap;

use palisade_wire::checkpoint::{Checkpoint, MetaRecord};
use palisade_wire::fs::{FileId, FsOp, FsResult};

use crate::checkpoint::export;
use crate::fs::{read_only_on, FileSystem};
use crate::store::{StateView, Store};
use crate::FsConfig;
use crate::{ExecError, StateDigest};

/// The state of a file system at `last_applied`, readable while the file system moves on.
pub struct FsSnapshot<V: StateView> {
    view: V,
    last_applied: u64,
    meta: MetaRecord,
    digest: StateDigest,
    leaves: BTreeMap<FileId, [u8; 32]>,
}

impl<V: StateView> FsSnapshot<V> {
    /// The sequence number the snapshot was taken at.
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// The file-system digest at that point.
    pub fn digest(&self) -> StateDigest {
        self.digest
    }

    /// [`FileSystem::read_only`] as it would have answered at that sequence (the
    /// simulator's reference checks unordered reads with it).
    pub fn read_only(&self, op: &FsOp, config: FsConfig) -> Result<Option<FsResult>, ExecError> {
        read_only_on(&self.view, self.meta, self.last_applied, config, op)
    }

    /// Exports the snapshot's state, whole (`have == None`) or as the difference against
    /// a receiver's leaves, exactly as [`FileSystem::export_checkpoint`] would have at
    /// that sequence.
    pub fn export_checkpoint(
        &self,
        have: Option<&BTreeMap<FileId, [u8; 32]>>,
    ) -> Result<Checkpoint, ExecError> {
        export(
            &self.view,
            &self.leaves,
            have,
            Checkpoint {
                last_applied: self.last_applied,
                digest: self.digest.0,
                meta: self.meta,
                live_ids: Vec::new(),
                inodes: Vec::new(),
            },
        )
    }
}

impl<S: Store> FileSystem<S> {
    /// A read-only snapshot of the current state (see [`FsSnapshot`]).
    pub fn snapshot(&mut self) -> Result<FsSnapshot<S::Snapshot>, ExecError> {
        let digest = self.try_digest()?;
        Ok(FsSnapshot {
            view: self.store.snapshot()?,
            last_applied: self.last_applied,
            meta: self.meta,
            digest,
            leaves: self.tree.leaves().clone(),
        })
    }
}
