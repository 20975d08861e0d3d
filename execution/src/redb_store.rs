//! [`RedbStore`]: the durable [`Store`], on redb.
//!
//! Why redb: it is a pure-Rust, embedded, copy-on-write B-tree with ACID write
//! transactions — exactly one atomic, durable commit per batch, which is what "every
//! WRITE is FILE_SYNC" (RFC 1813 §3.3.7) plus execute-in-order (Castro–Liskov §4.2) need.
//! A commit with `Durability::Immediate` is on disk when it returns (one fsync per batch:
//! group commit amortises it over the batch). Its ordered tables give the range reads the
//! file system needs (READDIR by id, a file's blocks), and tuple keys keep the layout
//! simple. Its copy-on-write pages with checksummed roots mean a crash mid-commit leaves
//! the previous commit intact, so no write-ahead log of our own is needed. No C
//! dependency (unlike RocksDB/LMDB), and no background threads that could break
//! determinism. Batches that change nothing commit with `Durability::None` (no fsync):
//! losing them in a crash only means replaying read-only operations.
//!
//! Commits use redb's default single-fsync protocol (commit slot + xxhash checksums), not
//! two-phase commit: 2PC doubles the fsyncs per batch to defend against an attacker who
//! controls page flush order AND crashes the process mid-fsync AND writes crafted data. A
//! replica corrupted that way would still be caught: its checkpoint digest disagrees with
//! the g+1 correct ones and it fetches a checkpoint (Castro–Liskov §5.3.2). Quick-repair
//! is off too: recovery after a crash walks the whole file once, in exchange for cheaper
//! commits on every batch.
//!
//! After a failed commit (disk full, I/O error) redb refuses further work on that handle
//! (`PreviousIo`), so the store reopens the database, which recovers the last durable
//! commit; the file system above it is then exactly as before the failed batch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use palisade_wire::checkpoint::{BatchLeaves, ClientRecord, InodeRecord, MetaRecord};
use palisade_wire::fs::FileId;
use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, StorageBackend,
    StorageError, TableDefinition,
};

use crate::deferred_sync::{DeferredSync, SyncHandle, SyncWaiter};
use crate::store::{Block, BlockMeta, ChangeSet, StateView, Store, BLOCK_SIZE};
use crate::ExecError;

/// "state" → encode((MetaRecord, last_applied)).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const INODES: TableDefinition<u64, &[u8]> = TableDefinition::new("inodes");
const ENTRIES: TableDefinition<(u64, &[u8]), u64> = TableDefinition::new("entries");
const CHILDREN: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("children");
/// (file id, block index) → the block's first [`HEAD_MAX`] bytes (all of a shorter block).
const BLOCKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("blocks");
/// (file id, block index) → the block's bytes past [`HEAD_MAX`], if it has any.
const BLOCK_TAILS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("block_tails");
const BLOCK_METAS: TableDefinition<(u64, u64), ([u8; 32], u32)> =
    TableDefinition::new("block_metas");

/// client id → encode(ClientRecord): the execution replica's exactly-once table.
const CLIENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("clients");
/// sequence → that batch's reply leaf hashes, concatenated (32 bytes each).
const REPLIES: TableDefinition<u64, &[u8]> = TableDefinition::new("replies");

const META_KEY: &str = "state";

/// The most bytes of a block stored in [`BLOCKS`]; the rest goes to [`BLOCK_TAILS`].
///
/// Why: redb keeps a value inside its leaf page, and pages come in power-of-two sizes.
/// A leaf holding one full 64 KiB block needs 64 KiB plus its header and key, so it
/// would take a 128 KiB page: every block written would cost twice its size in page
/// writes, memset and fsynced bytes (measured: 528 MB written for 256 MiB of data).
/// Keeping the head just under 64 KiB (the header and a fixed-width key take 24 bytes;
/// 128 leaves a margin) lets each head fill one 64 KiB page; the short tails pack many
/// to a 4 KiB leaf. A block stored whole by an earlier version (no tail) reads the same.
const HEAD_MAX: usize = 64 * 1024 - 128;

/// An open database and, if its fsyncs are deferred, the handle for their waiters.
type Opened = (Database, Option<SyncHandle>);
type Opener = Box<dyn Fn() -> Result<Opened, ExecError> + Send + Sync>;

/// A durable store in one redb database file.
pub struct RedbStore {
    /// `None` after a failed commit until a reopen succeeds (retried on every access, so
    /// the store recovers once the disk has room again).
    db: Mutex<Option<Opened>>,
    opener: Opener,
}

fn storage(e: impl std::fmt::Display) -> ExecError {
    ExecError::Storage(e.to_string())
}

/// Classifies an open failure: a file that is not (or no longer) a redb database is
/// corrupt state; anything else is a storage failure.
fn open_error(e: DatabaseError) -> ExecError {
    match &e {
        DatabaseError::Storage(StorageError::Corrupted(_))
        | DatabaseError::UpgradeRequired(_)
        | DatabaseError::RepairAborted => ExecError::Corrupt(e.to_string()),
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            ExecError::Corrupt(e.to_string())
        }
        _ => ExecError::Storage(e.to_string()),
    }
}

/// Runs redb's open, turning a panic on a hostile file into an error (redb's debug
/// builds assert on some malformed pages; the state on disk must never crash us).
fn guarded_open(
    f: impl FnOnce() -> Result<Database, DatabaseError>,
) -> Result<Database, ExecError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(open_error),
        Err(_) => Err(ExecError::Corrupt("database open panicked".into())),
    }
}

impl RedbStore {
    /// Opens (or creates) the database `dir/state.redb`, creating `dir` if needed.
    pub fn open(dir: &Path) -> Result<RedbStore, ExecError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let path = dir.join("state.redb");
        Self::with_opener(Box::new(move || {
            let p = path.clone();
            Ok((guarded_open(move || Database::create(p))?, None))
        }))
    }

    /// [`RedbStore::open`] with deferred commit fsyncs ([`DeferredSync`]): a commit
    /// returns before its fsync, and is durable only once a [`Store::sync_waiter`] taken
    /// after it returns `Ok`. For a caller that answers nothing before that (the
    /// unreplicated gateway's executor), so the next batch executes during the fsync.
    pub fn open_deferred_sync(dir: &Path) -> Result<RedbStore, ExecError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let path = dir.join("state.redb");
        Self::with_opener(Box::new(move || {
            // As `Database::create` opens it.
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(storage)?;
            let backend = redb::backends::FileBackend::new(file).map_err(open_error)?;
            let (backend, handle) = DeferredSync::new(backend);
            let db = guarded_open(move || Database::builder().create_with_backend(backend))?;
            Ok((db, Some(handle)))
        }))
    }

    /// Opens a database on a custom redb backend; `make` is called again to reopen it
    /// after a failed commit (tests use it to simulate a full disk).
    pub fn open_with_backend<B, F>(make: F) -> Result<RedbStore, ExecError>
    where
        B: StorageBackend,
        F: Fn() -> Result<B, std::io::Error> + Send + Sync + 'static,
    {
        Self::with_opener(Box::new(move || {
            let backend = make().map_err(storage)?;
            Ok((
                guarded_open(move || Database::builder().create_with_backend(backend))?,
                None,
            ))
        }))
    }

    /// [`RedbStore::open_with_backend`] with deferred fsyncs, as
    /// [`RedbStore::open_deferred_sync`] (tests use it to hold or fail an fsync).
    pub fn open_with_backend_deferred_sync<B, F>(make: F) -> Result<RedbStore, ExecError>
    where
        B: StorageBackend,
        F: Fn() -> Result<B, std::io::Error> + Send + Sync + 'static,
    {
        Self::with_opener(Box::new(move || {
            let (backend, handle) = DeferredSync::new(make().map_err(storage)?);
            let db = guarded_open(move || Database::builder().create_with_backend(backend))?;
            Ok((db, Some(handle)))
        }))
    }

    fn with_opener(opener: Opener) -> Result<RedbStore, ExecError> {
        let db = opener()?;
        let store = RedbStore {
            db: Mutex::new(Some(db)),
            opener,
        };
        store.create_tables()?;
        Ok(store)
    }

    /// Creates every table, so that reads never meet a missing one.
    fn create_tables(&self) -> Result<(), ExecError> {
        let tx = self.with_db(|db| db.begin_write().map_err(storage))?;
        {
            tx.open_table(META).map_err(open_table_error)?;
            tx.open_table(INODES).map_err(open_table_error)?;
            tx.open_table(ENTRIES).map_err(open_table_error)?;
            tx.open_table(CHILDREN).map_err(open_table_error)?;
            tx.open_table(BLOCKS).map_err(open_table_error)?;
            tx.open_table(BLOCK_TAILS).map_err(open_table_error)?;
            tx.open_table(BLOCK_METAS).map_err(open_table_error)?;
            tx.open_table(CLIENTS).map_err(open_table_error)?;
            tx.open_table(REPLIES).map_err(open_table_error)?;
        }
        tx.commit().map_err(storage)
    }

    /// Runs `f` on the open database, reopening it first if a failed commit closed it.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, ExecError>,
    ) -> Result<T, ExecError> {
        let mut guard = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some((self.opener)()?);
            tracing::info!("database reopened");
        }
        match guard.as_ref() {
            Some((db, _)) => f(db),
            None => Err(ExecError::Storage("database not open".into())),
        }
    }

    fn read_tx(&self) -> Result<redb::ReadTransaction, ExecError> {
        self.with_db(|db| db.begin_read().map_err(storage))
    }

    fn write(&self, changes: &ChangeSet) -> Result<(), ExecError> {
        let mut tx = self.with_db(|db| db.begin_write().map_err(storage))?;
        if !changes.durable {
            tx.set_durability(Durability::None).map_err(storage)?;
        }
        {
            let mut meta = tx.open_table(META).map_err(storage)?;
            let bytes =
                palisade_wire::encode(&(changes.meta, changes.last_applied)).map_err(storage)?;
            meta.insert(META_KEY, bytes.as_slice()).map_err(storage)?;
            let mut inodes = tx.open_table(INODES).map_err(storage)?;
            for (id, rec) in &changes.inodes {
                match rec {
                    Some(rec) => {
                        let bytes = palisade_wire::encode(rec).map_err(storage)?;
                        inodes.insert(*id, bytes.as_slice()).map_err(storage)?;
                    }
                    None => {
                        inodes.remove(*id).map_err(storage)?;
                    }
                }
            }
            let mut entries = tx.open_table(ENTRIES).map_err(storage)?;
            for ((dir, name), child) in &changes.entries {
                match child {
                    Some(c) => entries
                        .insert((*dir, name.as_slice()), *c)
                        .map_err(storage)?,
                    None => entries.remove((*dir, name.as_slice())).map_err(storage)?,
                };
            }
            let mut children = tx.open_table(CHILDREN).map_err(storage)?;
            for (key, name) in &changes.children {
                match name {
                    Some(n) => children.insert(*key, n.as_slice()).map_err(storage)?,
                    None => children.remove(*key).map_err(storage)?,
                };
            }
            let mut blocks = tx.open_table(BLOCKS).map_err(storage)?;
            let mut tails = tx.open_table(BLOCK_TAILS).map_err(storage)?;
            let mut metas = tx.open_table(BLOCK_METAS).map_err(storage)?;
            for (key, block) in &changes.blocks {
                match block {
                    Some(b) => {
                        let (head, tail) = b.data.split_at(b.data.len().min(HEAD_MAX));
                        blocks.insert(*key, head).map_err(storage)?;
                        if tail.is_empty() {
                            // A shorter new version must not inherit an old tail.
                            tails.remove(*key).map_err(storage)?;
                        } else {
                            tails.insert(*key, tail).map_err(storage)?;
                        }
                        let m = b.meta();
                        metas.insert(*key, (m.hash, m.len)).map_err(storage)?;
                    }
                    None => {
                        blocks.remove(*key).map_err(storage)?;
                        tails.remove(*key).map_err(storage)?;
                        metas.remove(*key).map_err(storage)?;
                    }
                }
            }
            let mut clients = tx.open_table(CLIENTS).map_err(storage)?;
            for (client, record) in &changes.clients {
                match record {
                    Some(r) => {
                        let bytes = palisade_wire::encode(r).map_err(storage)?;
                        clients.insert(*client, bytes.as_slice()).map_err(storage)?;
                    }
                    None => {
                        clients.remove(*client).map_err(storage)?;
                    }
                }
            }
            let mut replies = tx.open_table(REPLIES).map_err(storage)?;
            for (sequence, leaves) in &changes.replies {
                match leaves {
                    Some(leaves) => {
                        replies
                            .insert(*sequence, leaves.as_flattened())
                            .map_err(storage)?;
                    }
                    None => {
                        replies.remove(*sequence).map_err(storage)?;
                    }
                }
            }
        }
        tx.commit().map_err(storage)
    }
}

fn open_table_error(e: redb::TableError) -> ExecError {
    match e {
        redb::TableError::TableTypeMismatch { .. } | redb::TableError::TableIsMultimap(_) => {
            ExecError::Corrupt(e.to_string())
        }
        other => storage(other),
    }
}

fn decode_inode(bytes: &[u8]) -> Result<InodeRecord, ExecError> {
    Ok(palisade_wire::decode(bytes)?)
}

mod read {
    //! The reads of [`StateView`], over one read transaction: the live store opens one
    //! per call, a [`RedbSnapshot`] keeps one open.
    use super::*;

    pub(super) fn inode(
        tx: &ReadTransaction,
        id: FileId,
    ) -> Result<Option<InodeRecord>, ExecError> {
        let t = tx.open_table(INODES).map_err(open_table_error)?;
        match t.get(id).map_err(storage)? {
            Some(v) => Ok(Some(decode_inode(v.value())?)),
            None => Ok(None),
        }
    }

    pub(super) fn entry(
        tx: &ReadTransaction,
        dir: FileId,
        name: &[u8],
    ) -> Result<Option<FileId>, ExecError> {
        let t = tx.open_table(ENTRIES).map_err(open_table_error)?;
        Ok(t.get((dir, name)).map_err(storage)?.map(|v| v.value()))
    }

    pub(super) fn children_from(
        tx: &ReadTransaction,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        let t = tx.open_table(CHILDREN).map_err(open_table_error)?;
        let mut out = Vec::new();
        for item in t.range((dir, from)..=(dir, u64::MAX)).map_err(storage)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(storage)?;
            out.push((k.value().1, v.value().to_vec()));
        }
        Ok(out)
    }

    pub(super) fn block(
        tx: &ReadTransaction,
        id: FileId,
        index: u64,
    ) -> Result<Option<Block>, ExecError> {
        let mut data = {
            let t = tx.open_table(BLOCKS).map_err(open_table_error)?;
            match t.get((id, index)).map_err(storage)? {
                Some(v) => {
                    let head = v.value();
                    // Room for the tail up front, so appending it does not reallocate.
                    let mut data = Vec::with_capacity(if head.len() == HEAD_MAX {
                        BLOCK_SIZE as usize
                    } else {
                        head.len()
                    });
                    data.extend_from_slice(head);
                    data
                }
                None => return Ok(None),
            }
        };
        if data.len() == HEAD_MAX {
            let t = tx.open_table(BLOCK_TAILS).map_err(open_table_error)?;
            if let Some(tail) = t.get((id, index)).map_err(storage)? {
                data.extend_from_slice(tail.value());
            }
        }
        let t = tx.open_table(BLOCK_METAS).map_err(open_table_error)?;
        let (hash, _) = t
            .get((id, index))
            .map_err(storage)?
            .map(|v| v.value())
            .ok_or_else(|| ExecError::Corrupt(format!("block {id}/{index} has no hash")))?;
        Ok(Some(Block { hash, data }))
    }

    pub(super) fn block_metas_from(
        tx: &ReadTransaction,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        let t = tx.open_table(BLOCK_METAS).map_err(open_table_error)?;
        let mut out = Vec::new();
        for item in t.range((id, from)..=(id, u64::MAX)).map_err(storage)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(storage)?;
            let (hash, len) = v.value();
            out.push((k.value().1, BlockMeta { hash, len }));
        }
        Ok(out)
    }
}

impl StateView for RedbStore {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError> {
        read::inode(&self.read_tx()?, id)
    }
    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError> {
        read::entry(&self.read_tx()?, dir, name)
    }
    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        read::children_from(&self.read_tx()?, dir, from, limit)
    }
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        read::block(&self.read_tx()?, id, index)
    }
    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        read::block_metas_from(&self.read_tx()?, id, from, limit)
    }
}

/// The committed state of a [`RedbStore`] at one moment: a redb read transaction held
/// open. redb is a copy-on-write B-tree with MVCC, so the pages this transaction sees
/// stay allocated while it lives and later commits write new pages beside them: taking
/// it is O(1), keeping it costs the pages changed since (freed when it is dropped).
pub struct RedbSnapshot {
    tx: ReadTransaction,
}

impl StateView for RedbSnapshot {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError> {
        read::inode(&self.tx, id)
    }
    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError> {
        read::entry(&self.tx, dir, name)
    }
    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        read::children_from(&self.tx, dir, from, limit)
    }
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        read::block(&self.tx, id, index)
    }
    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        read::block_metas_from(&self.tx, id, from, limit)
    }
}

impl Store for RedbStore {
    type Snapshot = RedbSnapshot;

    fn snapshot(&self) -> Result<RedbSnapshot, ExecError> {
        Ok(RedbSnapshot {
            tx: self.read_tx()?,
        })
    }

    fn load_meta(&self) -> Result<Option<(MetaRecord, u64)>, ExecError> {
        let tx = self.read_tx()?;
        let t = tx.open_table(META).map_err(open_table_error)?;
        match t.get(META_KEY).map_err(storage)? {
            Some(v) => Ok(Some(palisade_wire::decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn inode_ids_from(&self, from: FileId, limit: usize) -> Result<Vec<FileId>, ExecError> {
        let tx = self.read_tx()?;
        let t = tx.open_table(INODES).map_err(open_table_error)?;
        let mut out = Vec::new();
        for item in t.range(from..).map_err(storage)? {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item.map_err(storage)?;
            out.push(k.value());
        }
        Ok(out)
    }

    fn clients_from(&self, from: u64, limit: usize) -> Result<Vec<ClientRecord>, ExecError> {
        let tx = self.read_tx()?;
        let t = tx.open_table(CLIENTS).map_err(open_table_error)?;
        let mut out = Vec::new();
        for item in t.range(from..).map_err(storage)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(storage)?;
            let record: ClientRecord = palisade_wire::decode(v.value())?;
            if record.client != k.value() {
                return Err(ExecError::Corrupt(format!(
                    "client record {} stored under key {}",
                    record.client,
                    k.value()
                )));
            }
            out.push(record);
        }
        Ok(out)
    }

    fn replies_from(&self, from: u64, limit: usize) -> Result<Vec<BatchLeaves>, ExecError> {
        let tx = self.read_tx()?;
        let t = tx.open_table(REPLIES).map_err(open_table_error)?;
        let mut out = Vec::new();
        for item in t.range(from..).map_err(storage)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(storage)?;
            let (leaves, rest) = v.value().as_chunks::<32>();
            if !rest.is_empty() {
                return Err(ExecError::Corrupt(format!(
                    "reply leaves of sequence {} are not whole hashes",
                    k.value()
                )));
            }
            out.push(BatchLeaves {
                sequence: k.value(),
                leaves: leaves.to_vec(),
            });
        }
        Ok(out)
    }

    fn sync_waiter(&self) -> Option<SyncWaiter> {
        let guard = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        guard
            .as_ref()
            .and_then(|(_, handle)| handle.as_ref())
            .map(SyncHandle::waiter)
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), ExecError> {
        let result = self.write(changes);
        if result.is_err() {
            // redb poisons a handle after an I/O error; the next access reopens the
            // database, which recovers the last durable commit. Dropping the old handle
            // now releases its file lock.
            *self.db.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        result
    }
}
