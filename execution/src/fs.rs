//! [`FileSystem`]: the deterministic, durable NFSv3 state machine of one replica.

use std::collections::BTreeMap;

use palisade_wire::checkpoint::{BatchLeaves, ClientRecord, MetaRecord};
use palisade_wire::fs::{BatchContext, FileId, FileType, FsOp, FsResult, Timestamp, ROOT_ID};

use crate::digest::{DigestTree, StateDigest};
use crate::exec::{new_record, Exec};
use crate::overlay::Overlay;
use crate::store::{ChangeSet, Store};
use crate::{ExecError, FsConfig};

/// Inode ids read per storage call when scanning all inodes.
const ID_CHUNK: usize = 4096;

/// A batch run but not yet committed (see [`FileSystem::run_batch`]).
#[derive(Debug)]
pub struct RanBatch {
    changes: ChangeSet,
}

impl RanBatch {
    /// The exactly-once table records this batch changes (`None` deletes).
    pub fn clients(&mut self, clients: BTreeMap<u64, Option<ClientRecord>>) {
        self.changes.clients = clients;
    }

    /// The reply leaves this batch adds and drops, by sequence (`None` deletes).
    pub fn replies(&mut self, replies: BTreeMap<u64, Option<Vec<[u8; 32]>>>) {
        self.changes.replies = replies;
    }

    /// Whether the commit will wait for the disk: false only for a batch that changed
    /// no file (reads only), see [`FileSystem::run_batch`].
    pub fn is_durable(&self) -> bool {
        self.changes.durable
    }

    /// Commits this batch durably even if it changed no file: the caller is about to
    /// vouch for the state it leaves (a checkpoint).
    pub fn make_durable(&mut self) {
        self.changes.durable = true;
    }
}

/// The file system of one execution replica (and of the unreplicated gateway).
///
/// It applies agreed batches strictly in sequence order (Castro–Liskov §4.2), each as one
/// atomic durable commit of its [`Store`]. Its in-memory state — the meta record, the last
/// applied sequence number, and the Merkle tree of the digest — changes only after a
/// commit succeeded, so a failed batch leaves the file system exactly as it was.
pub struct FileSystem<S: Store> {
    pub(crate) store: S,
    pub(crate) config: FsConfig,
    pub(crate) meta: MetaRecord,
    pub(crate) last_applied: u64,
    pub(crate) tree: DigestTree,
}

impl<S: Store> FileSystem<S> {
    /// Opens the state in `store`; formats an empty store (root directory [`ROOT_ID`],
    /// mode 0o755, uid/gid 0, times zero). A corrupt store is an error, never a panic.
    pub fn open(mut store: S, config: FsConfig) -> Result<Self, ExecError> {
        let (meta, last_applied) = match store.load_meta()? {
            Some(m) => m,
            None => {
                let mut changes = ChangeSet {
                    meta: MetaRecord {
                        next_id: ROOT_ID + 1,
                        used_bytes: 0,
                        inode_count: 1,
                    },
                    last_applied: 0,
                    durable: true,
                    ..ChangeSet::default()
                };
                let root = new_record(FileType::Directory, 0o755, ROOT_ID, Timestamp::default());
                changes.inodes.insert(ROOT_ID, Some(root));
                store.commit(&changes)?;
                (changes.meta, 0)
            }
        };
        match store.inode(ROOT_ID)? {
            Some(r) if r.file_type == FileType::Directory => {}
            _ => return Err(ExecError::Corrupt("root directory missing".into())),
        }
        if meta.next_id <= ROOT_ID {
            return Err(ExecError::Corrupt(format!(
                "next id {} invalid",
                meta.next_id
            )));
        }
        let mut fs = FileSystem {
            store,
            config,
            meta,
            last_applied,
            tree: DigestTree::default(),
        };
        fs.mark_all_dirty()?;
        Ok(fs)
    }

    /// Marks every stored inode dirty (the digest is then rebuilt at the next `digest()`).
    fn mark_all_dirty(&mut self) -> Result<(), ExecError> {
        self.tree = DigestTree::default();
        let ids = self.all_ids()?;
        self.tree.mark_dirty(ids);
        Ok(())
    }

    /// Every live inode id in the store, ascending.
    pub(crate) fn all_ids(&self) -> Result<Vec<FileId>, ExecError> {
        let mut ids = Vec::new();
        let mut from = 0;
        loop {
            let chunk = self.store.inode_ids_from(from, ID_CHUNK)?;
            let full = chunk.len() == ID_CHUNK;
            let last = chunk.last().copied();
            ids.extend(chunk);
            match last {
                Some(l) if full && l < FileId::MAX => from = l + 1,
                _ => return Ok(ids),
            }
        }
    }

    /// Applies one agreed batch, in order, as ONE atomic durable commit (group commit:
    /// every WRITE is answered FILE_SYNC, so its data is on disk when this returns Ok).
    /// `ctx.sequence` must be `last_applied() + 1`, else `OutOfOrder` and nothing changes.
    /// On a storage error nothing of the batch is applied and the error is returned.
    pub fn apply_batch(
        &mut self,
        ctx: &BatchContext,
        ops: &[FsOp],
    ) -> Result<Vec<FsResult>, ExecError> {
        let (results, ran) = self.run_batch(ctx, ops)?;
        self.commit_batch(ran)?;
        // The callers of this (the unreplicated executor, the simulator's oracle) have
        // no idle moment to do it in later.
        self.apply_deferred()?;
        Ok(results)
    }

    /// The first half of [`FileSystem::apply_batch`]: runs the batch against the
    /// committed state and returns its results and its changes, committing nothing. The
    /// caller may add the replica's own records of the batch to the changes
    /// ([`RanBatch::clients`], [`RanBatch::replies`]), which then commit atomically
    /// with it in [`FileSystem::commit_batch`], so that what is on disk always belongs
    /// to the state on disk.
    pub fn run_batch(
        &self,
        ctx: &BatchContext,
        ops: &[FsOp],
    ) -> Result<(Vec<FsResult>, RanBatch), ExecError> {
        let expected = self
            .last_applied
            .checked_add(1)
            .ok_or(ExecError::OutOfOrder {
                expected: u64::MAX,
                got: ctx.sequence,
            })?;
        if ctx.sequence != expected {
            return Err(ExecError::OutOfOrder {
                expected,
                got: ctx.sequence,
            });
        }
        let base = ChangeSet {
            meta: self.meta,
            last_applied: ctx.sequence,
            ..ChangeSet::default()
        };
        let mut exec = Exec::new(Overlay::new(&self.store, base), ctx, self.config);
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(exec.apply(op)?);
        }
        let mut changes = exec.ov.changes;
        // A batch that changed nothing (reads only) needs no fsync: if it is lost in a
        // crash, replaying it changes nothing either. The replica's records commit
        // atomically with its `last_applied`, so losing them just replays the batch.
        changes.durable = !(changes.inodes.is_empty()
            && changes.entries.is_empty()
            && changes.children.is_empty()
            && changes.blocks.is_empty()
            && changes.meta == self.meta);
        Ok((results, RanBatch { changes }))
    }

    /// Runs one read-only operation ([`FsOp::is_read_only`]) against the committed state,
    /// outside any batch (TOCS §5.1.3): nothing is committed and `last_applied` stays.
    /// `None` for an operation that is not read-only, or one that tried to change the
    /// state anyway (a bug this refuses to answer rather than hide).
    pub fn read_only(&self, op: &FsOp) -> Result<Option<FsResult>, ExecError> {
        read_only_on(&self.store, self.meta, self.last_applied, self.config, op)
    }

    /// The second half of [`FileSystem::apply_batch`]: commits a batch that
    /// [`FileSystem::run_batch`] ran, if it is still the next one.
    pub fn commit_batch(&mut self, ran: RanBatch) -> Result<(), ExecError> {
        let changes = ran.changes;
        let expected = self.last_applied.saturating_add(1);
        if changes.last_applied != expected {
            return Err(ExecError::OutOfOrder {
                expected,
                got: changes.last_applied,
            });
        }
        let (meta, last_applied) = (changes.meta, changes.last_applied);
        // Every change to entries or blocks also rewrites the owning inode (its mtime,
        // size or used), so the changed inodes are exactly the dirty leaves.
        let dirty: Vec<FileId> = changes.inodes.keys().copied().collect();
        if let Err(e) = self.store.commit_deferred(changes) {
            tracing::warn!(sequence = last_applied, error = %e, "batch commit failed");
            self.reload();
            return Err(e);
        }
        self.meta = meta;
        self.last_applied = last_applied;
        self.tree.mark_dirty(dirty);
        Ok(())
    }

    /// Does the store work commits left for later, as much as is due
    /// ([`Store::apply_deferred`]): call it once the batch's answers are out.
    pub fn apply_deferred(&mut self) -> Result<(), ExecError> {
        self.store.apply_deferred()
    }

    /// Whether [`FileSystem::apply_deferred`] has work to do now.
    pub fn deferred_due(&self) -> bool {
        self.store.deferred_due()
    }

    /// Re-reads the in-memory copies from the store after a failed commit (they should
    /// be unchanged; if the store cannot even be read, the next batch will fail too).
    fn reload(&mut self) {
        match self.store.load_meta() {
            Ok(Some((meta, last))) => {
                self.meta = meta;
                self.last_applied = last;
            }
            Ok(None) => tracing::error!("store lost its meta record"),
            Err(e) => tracing::error!(error = %e, "store unreadable after failed commit"),
        }
    }

    /// The stored reply leaves, ascending sequence; more than `max` batches is
    /// corruption (the replica keeps a bounded window of them).
    pub fn replies(&self, max: usize) -> Result<Vec<BatchLeaves>, ExecError> {
        all_pages(
            |from| self.store.replies_from(from, ID_CHUNK),
            |b| b.sequence,
            max,
            "batches of reply leaves",
        )
    }

    /// The stored exactly-once table records, ascending client id; more than `max`
    /// records is corruption (the table holds one per registered client).
    pub fn clients(&self, max: usize) -> Result<Vec<ClientRecord>, ExecError> {
        all_pages(
            |from| self.store.clients_from(from, ID_CHUNK),
            |r| r.client,
            max,
            "exactly-once records",
        )
    }

    /// For a store with deferred fsyncs: a waiter that returns once every batch applied
    /// so far is durable (see [`Store::sync_waiter`]); `None` if `apply_batch` returning
    /// `Ok` already means durable.
    pub fn sync_waiter(&self) -> Option<crate::SyncWaiter> {
        self.store.sync_waiter()
    }

    /// The sequence number of the last applied batch (persisted with each batch).
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// The limits this file system runs with.
    pub fn config(&self) -> FsConfig {
        self.config
    }

    /// The meta record (next id, used bytes, inode count).
    pub fn meta(&self) -> MetaRecord {
        self.meta
    }

    /// The state digest. Recomputes only the inodes changed since the last call. If the
    /// store cannot be read, it logs the error and returns all zeros, which matches no
    /// real state (so no peer's checkpoint will agree with it); the unfinished work is
    /// kept for the next call. [`FileSystem::try_digest`] returns the error instead.
    pub fn digest(&mut self) -> StateDigest {
        match self.try_digest() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "state digest failed");
                StateDigest([0; 32])
            }
        }
    }

    /// The state digest, or the storage error that prevented computing it.
    pub fn try_digest(&mut self) -> Result<StateDigest, ExecError> {
        self.tree.refresh(&self.store)?;
        self.tree.digest(&self.meta)
    }

    /// The Merkle leaves: file id → leaf hash, for a partial checkpoint request.
    pub fn leaf_hashes(&mut self) -> Result<BTreeMap<FileId, [u8; 32]>, ExecError> {
        self.tree.refresh(&self.store)?;
        Ok(self.tree.leaves().clone())
    }

    /// The store (for inspection by tests and tools; changing it behind the file
    /// system's back is not supported).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Closes the file system and hands back its store (everything applied is in it).
    pub fn into_store(self) -> S {
        self.store
    }
}

/// Every record of a table read in pages of [`ID_CHUNK`] by ascending `key`
/// (`page(from)` returns the records with key ≥ `from`); more than `max` is corruption.
fn all_pages<T>(
    page: impl Fn(u64) -> Result<Vec<T>, ExecError>,
    key: impl Fn(&T) -> u64,
    max: usize,
    what: &str,
) -> Result<Vec<T>, ExecError> {
    let mut out: Vec<T> = Vec::new();
    loop {
        let from = match out.last().map(&key) {
            Some(u64::MAX) => return Ok(out),
            Some(k) => k + 1,
            None => 0,
        };
        let records = page(from)?;
        let full = records.len() == ID_CHUNK;
        out.extend(records);
        if out.len() > max {
            return Err(ExecError::Corrupt(format!("more than {max} {what} stored")));
        }
        if !full {
            return Ok(out);
        }
    }
}

/// [`FileSystem::read_only`] against any view of a state at `last_applied` (the live
/// store, or a [`crate::FsSnapshot`]).
pub(crate) fn read_only_on(
    view: &dyn crate::StateView,
    meta: MetaRecord,
    last_applied: u64,
    config: FsConfig,
    op: &FsOp,
) -> Result<Option<FsResult>, ExecError> {
    if !op.is_read_only() {
        return Ok(None);
    }
    let base = ChangeSet {
        meta,
        last_applied,
        ..ChangeSet::default()
    };
    // No read takes the time (READ leaves atime alone): any timestamp does.
    let ctx = BatchContext {
        sequence: last_applied,
        timestamp: Timestamp::default(),
    };
    let mut exec = Exec::new(Overlay::new(view, base), &ctx, config);
    let result = exec.apply(op)?;
    let changes = &exec.ov.changes;
    let untouched = changes.inodes.is_empty()
        && changes.entries.is_empty()
        && changes.children.is_empty()
        && changes.blocks.is_empty()
        && changes.meta == meta;
    Ok(untouched.then_some(result))
}
