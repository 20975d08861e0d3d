//! [`RedbStore`]: the durable [`Store`], on redb.
//!
//! Why redb: it is a pure-Rust, embedded, copy-on-write B-tree with ACID write
//! transactions — exactly one atomic, durable commit per batch, which is what "every
//! WRITE is FILE_SYNC" (RFC 1813 §3.3.7) plus execute-in-order (Castro–Liskov §4.2) need.
//! A commit with `Durability::Immediate` is on disk when it returns (one fsync per batch:
//! group commit amortises it over the batch). Its ordered tables give the range reads the
//! file system needs (READDIR by id, a file's blocks), and tuple keys keep the layout
//! simple. Its copy-on-write pages with checksummed roots mean a crash mid-commit leaves
//! the previous commit intact. No C dependency (unlike RocksDB/LMDB), and no background
//! threads that could break determinism.
//!
//! A store opened with [`RedbStore::open`] keeps a write-ahead log beside the B-tree
//! (`wal.rs`, records from `log_record.rs`): a small batch is durable once its record is
//! synced, and the B-tree commits it with `Durability::None`; a batch too large to log
//! (over [`LOG_RECORD_MAX`]), or one that finds the log full, is a durable B-tree commit
//! that also starts the log again under a new epoch. Opening replays the log. Why: a
//! durable B-tree commit of one 4 KiB WRITE writes about 30 scattered pages and syncs
//! them, the log one record of about 5 KiB (measured with `examples/small_write_latency`
//! on the 2-vCPU test machine: 300 → 213 µs alone, 445 → 285 µs with three replicas
//! syncing at once). Batches that change nothing are logged without a sync: losing them
//! in a crash only means replaying read-only operations, and the next synced record
//! makes them durable with it.
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
//! commit, and replays the log up to the last successful commit; the file system above
//! it is then exactly as before the failed batch.

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
use crate::log_record;
use crate::pending::Pending;
use crate::store::{Block, BlockMeta, ChangeSet, StateView, Store, BLOCK_SIZE};
use crate::wal::Wal;
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
/// The write-ahead log's epoch (u64, little-endian): records of any other epoch are
/// never replayed (`wal.rs`). Absent in a store that has never been logged to.
const LOG_EPOCH_KEY: &str = "log_epoch";

/// Bytes of write-ahead log a store opened with [`RedbStore::open`] keeps (`wal.rs`): the
/// B-tree is made durable about once per this many bytes of logged batches.
pub const DEFAULT_LOG_BYTES: u64 = 16 << 20;

/// The largest log record. A larger batch (1 MiB WRITEs, or the many operations of
/// dozens of concurrent clients) commits the B-tree durably instead: its data is then
/// written once rather than twice, and one sync is already shared by all its bytes or
/// operations. (Measured beside 256 KiB, on the small-files workload of 32 clients:
/// 64 KiB was no slower, 4,188–4,288 against 4,079–4,163 ops/s.)
const LOG_RECORD_MAX: usize = 64 << 10;

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

/// A durable store in one redb database file, with (from [`RedbStore::open`]) a
/// write-ahead log beside it.
pub struct RedbStore {
    db: Mutex<Inner>,
    opener: Opener,
}

struct Inner {
    /// `None` after a failed commit until a reopen succeeds (retried on every access, so
    /// the store recovers once the disk has room again).
    opened: Option<Opened>,
    log: Option<Log>,
    /// Batches durable in the log but not yet written into the B-tree
    /// ([`Store::commit_deferred`], `pending.rs`): reads look there first; a full one,
    /// and anything that needs the B-tree itself, writes them ([`Inner::flushed`]).
    pending: Pending,
}

/// The write-ahead log and what has been committed through it.
struct Log {
    wal: Wal,
    /// The last applied sequence of the last successful commit; `None` while the store
    /// holds no state (its first commit, which formats it, is a durable B-tree commit).
    /// A reopen after a failed commit replays the log no further than this.
    committed: Option<u64>,
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
    /// Opens (or creates) the database `dir/state.redb` with its write-ahead log
    /// `dir/state.wal` of [`DEFAULT_LOG_BYTES`], creating `dir` if needed, and replays
    /// the log.
    pub fn open(dir: &Path) -> Result<RedbStore, ExecError> {
        Self::open_with_log(dir, DEFAULT_LOG_BYTES)
    }

    /// [`RedbStore::open`] with a log of `log_bytes`; 0 means no log: every batch
    /// that changed a file is then a durable B-tree commit of its own.
    pub fn open_with_log(dir: &Path, log_bytes: u64) -> Result<RedbStore, ExecError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let path = dir.join("state.redb");
        let log = match log_bytes {
            0 => None,
            n => Some(Log {
                wal: Wal::open(&dir.join("state.wal"), n).map_err(storage)?,
                committed: None,
            }),
        };
        Self::with_log(
            Box::new(move || {
                let p = path.clone();
                Ok((guarded_open(move || Database::create(p))?, None))
            }),
            log,
        )
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
        Self::with_log(opener, None)
    }

    fn with_log(opener: Opener, mut log: Option<Log>) -> Result<RedbStore, ExecError> {
        let opened = open_and_recover(&opener, &mut log, None)?;
        Ok(RedbStore {
            db: Mutex::new(Inner {
                pending: Pending::default(),
                opened: Some(opened),
                log,
            }),
            opener,
        })
    }
}

/// Opens the database, creates its tables, and replays its log (no further than
/// `upto`, if given).
fn open_and_recover(
    opener: &Opener,
    log: &mut Option<Log>,
    upto: Option<u64>,
) -> Result<Opened, ExecError> {
    let opened = opener()?;
    create_tables(&opened.0)?;
    if let Some(log) = log {
        recover(&opened.0, log, upto)?;
    }
    Ok(opened)
}

/// Creates every table, so that reads never meet a missing one.
fn create_tables(db: &Database) -> Result<(), ExecError> {
    let tx = db.begin_write().map_err(storage)?;
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

/// The log's epoch and the last applied sequence, as the B-tree's last commit left them.
fn log_state(db: &Database) -> Result<(Option<u64>, Option<u64>), ExecError> {
    let tx = db.begin_read().map_err(storage)?;
    let t = tx.open_table(META).map_err(open_table_error)?;
    let epoch = match t.get(LOG_EPOCH_KEY).map_err(storage)? {
        Some(v) => Some(u64::from_le_bytes(v.value().try_into().map_err(|_| {
            ExecError::Corrupt("the log epoch is not 8 bytes".into())
        })?)),
        None => None,
    };
    let last = match t.get(META_KEY).map_err(storage)? {
        Some(v) => Some(palisade_wire::decode::<(MetaRecord, u64)>(v.value())?.1),
        None => None,
    };
    Ok((epoch, last))
}

/// Brings the B-tree up to date with its log, makes that durable under a new epoch, and
/// starts the log again (`wal.rs`). Replays no record past `upto`: after a failed commit
/// the file system above holds the state of the last successful one, which must be
/// exactly what the store then holds.
fn recover(db: &Database, log: &mut Log, upto: Option<u64>) -> Result<(), ExecError> {
    let (epoch, last) = log_state(db)?;
    let (Some(epoch), Some(last)) = (epoch, last) else {
        // Never logged to (a new store, or one written without a log): whatever the log
        // file holds belongs to some other state.
        if !log.wal.is_fresh() {
            log.wal.erase().map_err(storage)?;
        }
        log.wal.reset(epoch.unwrap_or(0));
        log.committed = last;
        if last.is_some() {
            mark_epoch(db, log)?;
        }
        return Ok(());
    };
    let mut applied = last;
    let mut replayed = 0u64;
    // One commit without fsync per record (a record's block patches read the state the
    // record before left), then one durable commit of them all with the new epoch.
    log.wal.replay(epoch, last, |sequence, payload| {
        if upto.is_some_and(|u| sequence > u) {
            return Ok(());
        }
        let before = Before(db.begin_read().map_err(storage)?, None);
        let changes = log_record::decode(payload, &before)?;
        if changes.last_applied != sequence {
            return Err(ExecError::Corrupt(format!(
                "log record {sequence} holds the changes of batch {}",
                changes.last_applied
            )));
        }
        write_unsynced(db, &changes)?;
        applied = sequence;
        replayed += 1;
        Ok(())
    })?;
    if upto.is_some_and(|u| applied < u) {
        return Err(ExecError::Storage(format!(
            "the log ends at batch {applied}, before the last commit ({upto:?})"
        )));
    }
    let next = epoch.wrapping_add(1);
    let tx = db.begin_write().map_err(storage)?;
    set_epoch(&tx, next)?;
    tx.commit().map_err(storage)?;
    log.wal.reset(next);
    log.committed = Some(applied);
    if replayed > 0 {
        tracing::info!(
            replayed,
            from = last + 1,
            to = applied,
            "replayed batches from the write-ahead log"
        );
    }
    Ok(())
}

/// The committed state a log record is made against (`log_record.rs`): the B-tree,
/// under the batches still pending for it.
struct Before<'a>(ReadTransaction, Option<&'a Pending>);

impl log_record::Before for Before<'_> {
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        if let Some(held) = self.1.and_then(|p| p.block(id, index)) {
            return Ok(held);
        }
        read::block(&self.0, id, index)
    }
    fn client(&self, client: u64) -> Result<Option<ClientRecord>, ExecError> {
        if let Some(held) = self.1.and_then(|p| p.client(client)) {
            return Ok(held);
        }
        let t = self.0.open_table(CLIENTS).map_err(open_table_error)?;
        match t.get(client).map_err(storage)? {
            Some(v) => Ok(Some(palisade_wire::decode(v.value())?)),
            None => Ok(None),
        }
    }
}

/// A durable commit of nothing but a new log epoch, then a fresh log under it.
fn mark_epoch(db: &Database, log: &mut Log) -> Result<(), ExecError> {
    let next = log.wal.epoch().wrapping_add(1);
    let tx = db.begin_write().map_err(storage)?;
    set_epoch(&tx, next)?;
    tx.commit().map_err(storage)?;
    log.wal.reset(next);
    Ok(())
}

fn set_epoch(tx: &redb::WriteTransaction, epoch: u64) -> Result<(), ExecError> {
    let mut meta = tx.open_table(META).map_err(storage)?;
    meta.insert(LOG_EPOCH_KEY, epoch.to_le_bytes().as_slice())
        .map_err(storage)?;
    Ok(())
}

impl Inner {
    /// The open database, reopening (and replaying the log) first if a failed commit
    /// closed it. The B-tree may lag behind the pending batches: for reads that look
    /// there first, and for appending to the log.
    fn open_db(&mut self, opener: &Opener) -> Result<&Database, ExecError> {
        if self.opened.is_none() {
            // Every pending batch is in the log, and the replay goes through it.
            self.pending.take();
            let upto = self.log.as_ref().and_then(|l| l.committed);
            self.opened = Some(open_and_recover(opener, &mut self.log, upto)?);
            tracing::info!("database reopened");
        }
        match &self.opened {
            Some((db, _)) => Ok(db),
            None => Err(ExecError::Storage("database not open".into())),
        }
    }

    /// [`Inner::open_db`] with every pending batch written into the B-tree first: for
    /// whatever reads or writes the B-tree alone.
    fn flushed(&mut self, opener: &Opener) -> Result<&Database, ExecError> {
        if let (Some(changes), Some((db, _))) = (self.pending.take(), &self.opened) {
            if let Err(e) = write_unsynced(db, &changes) {
                // The batches are in the log: the reopen below replays them.
                tracing::warn!(sequence = changes.last_applied, error = %e,
                    "deferred B-tree write failed; reopening the database");
                self.opened = None;
            }
        }
        self.open_db(opener)
    }

    /// Commits `changes`: through the log when there is one and the batch is small
    /// enough, the B-tree then without an fsync; otherwise as a durable B-tree commit,
    /// which also starts the log again.
    fn commit(&mut self, opener: &Opener, changes: &ChangeSet) -> Result<(), ExecError> {
        self.flushed(opener)?;
        let Some(at) = self.append(opener, changes)? else {
            return self.commit_unlogged(opener, changes);
        };
        let result = match &self.opened {
            Some((db, _)) => write_unsynced(db, changes),
            None => Err(ExecError::Storage("database not open".into())),
        };
        if let Some(log) = &mut self.log {
            match result {
                Ok(()) => log.committed = Some(changes.last_applied),
                Err(_) => log.wal.rewind(at),
            }
        }
        result
    }

    /// [`Inner::commit`], except that a logged batch joins the pending ones: it is
    /// durable (and may be answered) once its record is, and written into the B-tree
    /// with them later.
    fn commit_deferred(&mut self, opener: &Opener, changes: ChangeSet) -> Result<(), ExecError> {
        if self.append(opener, &changes)?.is_none() {
            return self.commit_unlogged(opener, &changes);
        }
        if let Some(log) = &mut self.log {
            log.committed = Some(changes.last_applied);
        }
        self.pending.push(changes);
        Ok(())
    }

    /// Appends the record of `changes` to the log; `None` if the batch does not go
    /// through the log (no log, too large, the log is full, or it does not follow the
    /// last commit), else where the record starts.
    fn append(&mut self, opener: &Opener, changes: &ChangeSet) -> Result<Option<u64>, ExecError> {
        self.open_db(opener)?;
        let (Some((db, _)), Some(log)) = (&self.opened, &mut self.log) else {
            return Ok(None);
        };
        // Only the batch that follows the last commit is logged, so the log is always the
        // chain a replay follows; anything else (the format, a checkpoint import that
        // moves the state to another sequence) is a durable B-tree commit.
        let record = match log.committed {
            Some(c) if changes.last_applied == c.wrapping_add(1) => {
                let before = Before(db.begin_read().map_err(storage)?, Some(&self.pending));
                log_record::encode(changes, &before, LOG_RECORD_MAX)?
            }
            _ => None,
        };
        match record.filter(|r| r.len() <= LOG_RECORD_MAX && log.wal.fits(r.len())) {
            Some(record) => log
                .wal
                .append(changes.last_applied, &record, changes.durable)
                .map(Some)
                .map_err(storage),
            None => Ok(None),
        }
    }

    /// A B-tree commit of `changes` outside the log: durable unless there is no log and
    /// the batch need not be; with a log, it starts the log again under a new epoch.
    fn commit_unlogged(&mut self, opener: &Opener, changes: &ChangeSet) -> Result<(), ExecError> {
        self.flushed(opener)?;
        let Some((db, _)) = &self.opened else {
            return Err(ExecError::Storage("database not open".into()));
        };
        let Some(log) = &mut self.log else {
            let mut tx = db.begin_write().map_err(storage)?;
            if !changes.durable {
                tx.set_durability(Durability::None).map_err(storage)?;
            }
            write_changes(&tx, changes)?;
            return tx.commit().map_err(storage);
        };
        let next = log.wal.epoch().wrapping_add(1);
        let tx = db.begin_write().map_err(storage)?;
        write_changes(&tx, changes)?;
        set_epoch(&tx, next)?;
        tx.commit().map_err(storage)?;
        log.wal.reset(next);
        log.committed = Some(changes.last_applied);
        Ok(())
    }
}

/// Writes a logged batch into the B-tree without an fsync (the log made it durable).
fn write_unsynced(db: &Database, changes: &ChangeSet) -> Result<(), ExecError> {
    let mut tx = db.begin_write().map_err(storage)?;
    tx.set_durability(Durability::None).map_err(storage)?;
    write_changes(&tx, changes)?;
    tx.commit().map_err(storage)
}

impl RedbStore {
    /// Runs `f` on the open database, reopening it first if a failed commit closed it.
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A read transaction of the B-tree with every pending batch written into it.
    fn read_tx(&self) -> Result<redb::ReadTransaction, ExecError> {
        let mut inner = self.inner();
        inner.flushed(&self.opener)?.begin_read().map_err(storage)
    }

    /// `point` from the pending batches if they decide it, else `stored` from the
    /// B-tree (which lags behind them).
    fn read_live<T>(
        &self,
        point: impl FnOnce(&Pending) -> Option<T>,
        stored: impl FnOnce(&Pending, &ReadTransaction) -> Result<T, ExecError>,
    ) -> Result<T, ExecError> {
        let mut inner = self.inner();
        if let Some(held) = point(&inner.pending) {
            return Ok(held);
        }
        let tx = inner.open_db(&self.opener)?.begin_read().map_err(storage)?;
        stored(&inner.pending, &tx)
    }

    /// How many logged batches the B-tree does not hold yet (`pending.rs`).
    pub fn pending_batches(&self) -> usize {
        self.inner().pending.batches()
    }
}

/// Writes every change of `changes` in `tx`.
fn write_changes(tx: &redb::WriteTransaction, changes: &ChangeSet) -> Result<(), ExecError> {
    {
        let mut meta = tx.open_table(META).map_err(storage)?;
        let bytes =
            palisade_wire::encode(&(changes.meta, changes.last_applied)).map_err(storage)?;
        meta.insert(META_KEY, bytes.as_slice()).map_err(storage)?;
        // Only the tables the batch touches are opened: redb checks a table's definition
        // at every open, and a WRITE batch leaves two of the nine untouched, a read six.
        write_encoded(tx, INODES, &changes.inodes)?;
        if !changes.entries.is_empty() {
            let mut entries = tx.open_table(ENTRIES).map_err(storage)?;
            for ((dir, name), child) in &changes.entries {
                match child {
                    Some(c) => entries
                        .insert((*dir, name.as_slice()), *c)
                        .map_err(storage)?,
                    None => entries.remove((*dir, name.as_slice())).map_err(storage)?,
                };
            }
        }
        if !changes.children.is_empty() {
            let mut children = tx.open_table(CHILDREN).map_err(storage)?;
            for (key, name) in &changes.children {
                match name {
                    Some(n) => children.insert(*key, n.as_slice()).map_err(storage)?,
                    None => children.remove(*key).map_err(storage)?,
                };
            }
        }
        if !changes.blocks.is_empty() {
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
        }
        write_encoded(tx, CLIENTS, &changes.clients)?;
        if !changes.replies.is_empty() {
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
    }
    Ok(())
}

/// Writes `records` (encoded; `None` removes) into `table`, which is opened only if there
/// is something to write.
fn write_encoded<T: serde::Serialize>(
    tx: &redb::WriteTransaction,
    table: TableDefinition<u64, &[u8]>,
    records: &std::collections::BTreeMap<u64, Option<T>>,
) -> Result<(), ExecError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(table).map_err(storage)?;
    for (key, record) in records {
        match record {
            Some(r) => {
                let bytes = palisade_wire::encode(r).map_err(storage)?;
                table.insert(*key, bytes.as_slice()).map_err(storage)?;
            }
            None => {
                table.remove(*key).map_err(storage)?;
            }
        }
    }
    Ok(())
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

/// The live state: the pending batches over the B-tree.
impl StateView for RedbStore {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError> {
        self.read_live(|p| p.inode(id), |_, tx| read::inode(tx, id))
    }
    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError> {
        self.read_live(|p| p.entry(dir, name), |_, tx| read::entry(tx, dir, name))
    }
    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        self.read_live(
            |_| None,
            |p, tx| p.children_from(dir, from, limit, |n| read::children_from(tx, dir, from, n)),
        )
    }
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        self.read_live(|p| p.block(id, index), |_, tx| read::block(tx, id, index))
    }
    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        self.read_live(
            |_| None,
            |p, tx| {
                p.block_metas_from(id, from, limit, |n| read::block_metas_from(tx, id, from, n))
            },
        )
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
            .opened
            .as_ref()
            .and_then(|(_, handle)| handle.as_ref())
            .map(SyncHandle::waiter)
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), ExecError> {
        let inner = self.db.get_mut().unwrap_or_else(PoisonError::into_inner);
        let result = inner.commit(&self.opener, changes);
        if result.is_err() {
            // redb poisons a handle after an I/O error; the next access reopens the
            // database, which recovers the last durable commit, and replays the log up
            // to the last successful commit. Dropping the old handle now releases its
            // file lock.
            inner.opened = None;
        }
        result
    }

    fn commit_deferred(&mut self, changes: ChangeSet) -> Result<(), ExecError> {
        let inner = self.db.get_mut().unwrap_or_else(PoisonError::into_inner);
        let result = inner.commit_deferred(&self.opener, changes);
        if result.is_err() {
            inner.opened = None;
        }
        result
    }

    /// Writes the pending batches into the B-tree once there are enough of them
    /// (`pending.rs`); until then they cost nothing but memory and log replay.
    fn apply_deferred(&mut self) -> Result<(), ExecError> {
        let inner = self.db.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !inner.pending.is_full() {
            return Ok(());
        }
        inner.flushed(&self.opener).map(|_| ())
    }

    fn deferred_due(&self) -> bool {
        self.inner().pending.is_full()
    }
}
