//! The seam between the pure file-system logic and storage.
//!
//! The logic never writes to a [`Store`] while it runs a batch: it reads through a
//! per-batch overlay ([`crate::overlay::Overlay`]) and collects every change in a
//! [`ChangeSet`], which the store then commits in ONE atomic step. A store therefore needs
//! only point reads, two ordered range reads, and an atomic commit — which both an
//! in-memory map ([`crate::MemStore`]) and a transactional B-tree ([`crate::RedbStore`])
//! give directly. A failed commit leaves the store as it was, so the batch is simply not
//! applied.
//!
//! Logical tables:
//! - meta: the [`MetaRecord`] and the last applied sequence number;
//! - inodes: file id → [`InodeRecord`];
//! - entries: (dir, name) → child id, for LOOKUP;
//! - children: (dir, child id) → name, for READDIR in id order without a scan;
//! - blocks: (file id, block index) → data, beside its blake3 hash (for the digest);
//! - clients: client id → [`ClientRecord`], the execution replica's exactly-once table
//!   (replicated state, covered by its checkpoint digest). It is written in the SAME
//!   commit as the batch that changed it, so a replica restarted from its store knows
//!   exactly which requests the batches it holds executed.
//! - replies: sequence → the leaf hashes of that batch's replies, for the last few
//!   checkpoint intervals (both reply modes; replicated state like the clients
//!   table, and committed with its batch for the same reason).

use std::collections::BTreeMap;

use palisade_wire::checkpoint::{BatchLeaves, ClientRecord, InodeRecord, MetaRecord};
use palisade_wire::fs::FileId;

use crate::ExecError;

/// Size of a data block. A write touches only the blocks it covers.
pub const BLOCK_SIZE: u64 = 64 * 1024;

/// A stored data block with its hash (blake3 of `data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub hash: [u8; 32],
    pub data: Vec<u8>,
}

impl Block {
    pub fn new(data: Vec<u8>) -> Block {
        Block {
            hash: *blake3::hash(&data).as_bytes(),
            data,
        }
    }

    pub fn meta(&self) -> BlockMeta {
        BlockMeta {
            hash: self.hash,
            // A block never exceeds BLOCK_SIZE (64 KiB).
            len: u32::try_from(self.data.len()).unwrap_or(u32::MAX),
        }
    }
}

/// What the digest and truncation need of a block, without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    pub hash: [u8; 32],
    pub len: u32,
}

/// Read access to a state (a store, or a store seen through a batch's overlay).
pub trait StateView {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError>;
    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError>;
    /// Entries of `dir` with child id ≥ `from`, ascending id, at most `limit`.
    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError>;
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError>;
    /// Hashes and lengths of the blocks of `id` with index ≥ `from`, ascending index, at
    /// most `limit`.
    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError>;
}

/// Everything one batch (or one checkpoint import) changes. `None` deletes.
#[derive(Clone, Debug, Default)]
pub struct ChangeSet {
    pub meta: MetaRecord,
    pub last_applied: u64,
    /// False only for batches that changed nothing but `last_applied`: they may commit
    /// without an fsync (a crash then replays them, which is harmless).
    pub durable: bool,
    pub inodes: BTreeMap<FileId, Option<InodeRecord>>,
    pub entries: BTreeMap<(FileId, Vec<u8>), Option<FileId>>,
    pub children: BTreeMap<(FileId, FileId), Option<Vec<u8>>>,
    pub blocks: BTreeMap<(FileId, u64), Option<Block>>,
    /// Exactly-once table records by client id (whole records: a client's record is
    /// small and bounded by the window).
    pub clients: BTreeMap<u64, Option<ClientRecord>>,
    /// Reply leaf hashes by sequence.
    pub replies: BTreeMap<u64, Option<Vec<[u8; 32]>>>,
}

/// A durable (or in-memory) home for the file-system state.
pub trait Store: StateView {
    /// A read-only view of the committed state at the moment [`Store::snapshot`] was
    /// called, unaffected by later commits.
    type Snapshot: StateView;
    /// Freezes the committed state (see [`crate::FsSnapshot`]). Must be cheap in the
    /// size of the state for a durable store (a read transaction of a copy-on-write
    /// B-tree); an in-memory store may copy.
    fn snapshot(&self) -> Result<Self::Snapshot, ExecError>;
    /// The meta record and last applied sequence number; `None` for an empty store.
    fn load_meta(&self) -> Result<Option<(MetaRecord, u64)>, ExecError>;
    /// Live inode ids ≥ `from`, ascending, at most `limit` (to rebuild the digest at open).
    fn inode_ids_from(&self, from: FileId, limit: usize) -> Result<Vec<FileId>, ExecError>;
    /// Exactly-once table records with client id ≥ `from`, ascending, at most `limit`.
    fn clients_from(&self, from: u64, limit: usize) -> Result<Vec<ClientRecord>, ExecError>;
    /// Stored reply leaves with sequence ≥ `from`, ascending, at most `limit` batches.
    fn replies_from(&self, from: u64, limit: usize) -> Result<Vec<BatchLeaves>, ExecError>;
    /// Applies `changes` atomically: all of them or, on error, none. Durable on return,
    /// unless the store defers its fsyncs (then see [`Store::sync_waiter`]).
    fn commit(&mut self, changes: &ChangeSet) -> Result<(), ExecError>;
    /// [`Store::commit`], except that the store may leave the work that durability does
    /// not need (a logged batch's B-tree write) for later: [`Store::apply_deferred`], or
    /// whatever needs it done. The batch is durable, and may be answered, when this
    /// returns; every read sees it.
    fn commit_deferred(&mut self, changes: ChangeSet) -> Result<(), ExecError> {
        self.commit(&changes)
    }
    /// Does the work [`Store::commit_deferred`] left, or as much of it as is due (the
    /// durable store writes its pending batches into the B-tree only once enough have
    /// gathered, `pending.rs`). A replica calls it once its replies are out, so the work
    /// stays off the reply's path.
    fn apply_deferred(&mut self) -> Result<(), ExecError> {
        Ok(())
    }
    /// Whether [`Store::apply_deferred`] has work to do now.
    fn deferred_due(&self) -> bool {
        false
    }
    /// For a store that defers its commit fsyncs ([`crate::RedbStore::open_deferred_sync`]):
    /// a waiter that returns once every commit so far is durable. `None`: every commit
    /// is durable when `commit` returns.
    fn sync_waiter(&self) -> Option<crate::deferred_sync::SyncWaiter> {
        None
    }
}
