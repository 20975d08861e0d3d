//! RedbStore: durability across reopen, equivalence with MemStore, large directories,
//! corrupt files and failing commits.
// Test helpers outside #[test] fns panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::model::*;
use common::*;
use palisade_execution::{ExecError, FileSystem, FsConfig, MemStore, RedbStore};
use palisade_wire::fs::*;
use proptest::prelude::*;
use redb::backends::InMemoryBackend;
use redb::StorageBackend;

fn workload<S: palisade_execution::Store>(h: &mut H<S>) -> FileId {
    let d = h.mkdir(ROOT_ID, "docs");
    let f = h.create(d, "a.txt");
    h.write(f, 0, b"hello").unwrap();
    h.write(f, 200_000, b"far away").unwrap();
    h.op(FsOp::Symlink {
        dir: ROOT_ID,
        name: b"ln".to_vec(),
        target: b"docs/a.txt".to_vec(),
        attr: SetAttr::default(),
    })
    .unwrap();
    h.create(d, "b");
    h.rename(d, "b", ROOT_ID, "c").unwrap();
    h.setattr(
        f,
        SetAttr {
            size: Some(100_000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    f
}

#[test]
fn state_survives_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica");
    let (digest, last, f) = {
        let mut h = H::new(RedbStore::open(&path).unwrap(), FsConfig::default());
        let f = workload(&mut h);
        (h.fs.digest(), h.fs.last_applied(), f)
    };
    assert!(path.join("state.redb").exists());
    let mut h = H::new(RedbStore::open(&path).unwrap(), FsConfig::default());
    assert_eq!(h.fs.last_applied(), last);
    assert_eq!(h.fs.digest(), digest);
    let (data, eof) = h.read(f, 0, 10);
    assert_eq!((data, eof), (b"hello\0\0\0\0\0".to_vec(), false));
    assert_eq!(h.attr(f).size, 100_000);
    assert_eq!(h.lookup(ROOT_ID, "c"), Ok(f + 2));
    // Ids continue from the persisted counter.
    assert_eq!(h.create(ROOT_ID, "new"), f + 3);
}

#[test]
fn mem_and_redb_reach_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    let mut m = mem();
    workload(&mut r);
    workload(&mut m);
    assert_eq!(r.fs.digest(), m.fs.digest());
    assert_eq!(r.fs.leaf_hashes().unwrap(), m.fs.leaf_hashes().unwrap());
}

#[test]
fn ten_thousand_entries_list_exactly_in_pages_of_100() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    let d = h.mkdir(ROOT_ID, "big");
    let n = 10_000;
    for chunk in (0..n).collect::<Vec<u32>>().chunks(1000) {
        let ops: Vec<FsOp> = chunk
            .iter()
            .map(|i| FsOp::Create {
                dir: d,
                name: format!("file-{i:05}").into_bytes(),
                how: CreateHow::Guarded(SetAttr::default()),
            })
            .collect();
        assert!(h.batch(&ops).iter().all(|r| r.is_ok()));
    }
    // Remove every 7th, so cookies of deleted entries are skipped correctly.
    let ops: Vec<FsOp> = (0..n)
        .step_by(7)
        .map(|i| FsOp::Remove {
            dir: d,
            name: format!("file-{i:05}").into_bytes(),
        })
        .collect();
    assert!(h.batch(&ops).iter().all(|r| r.is_ok()));
    let listed = h.list(d, 100);
    let expected: Vec<(FileId, Vec<u8>)> = (0..n)
        .filter(|i| i % 7 != 0)
        .map(|i| (u64::from(i) + d + 1, format!("file-{i:05}").into_bytes()))
        .collect();
    assert_eq!(listed.len(), expected.len());
    assert_eq!(listed, expected);
    assert_eq!(h.attr(d).size, expected.len() as u64);
}

#[test]
fn corrupt_file_is_an_error_not_a_panic() {
    for garbage in [
        vec![0xA5u8; 64 * 1024],
        b"definitely not a database".to_vec(),
        {
            let mut v: Vec<u8> = (0..100_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            v[..9].copy_from_slice(b"redb\x1A\x0A\xA9\x0D\x0A");
            v
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.redb"), &garbage).unwrap();
        let r = RedbStore::open(dir.path()).and_then(|s| FileSystem::open(s, FsConfig::default()));
        assert!(
            matches!(r, Err(ExecError::Corrupt(_) | ExecError::Storage(_))),
            "{:?}",
            r.err()
        );
    }
}

#[test]
fn valid_database_with_garbage_records_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            t.insert("state", [0xffu8; 3].as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let r = RedbStore::open(dir.path()).and_then(|s| FileSystem::open(s, FsConfig::default()));
    assert!(matches!(r, Err(ExecError::Corrupt(_))), "{:?}", r.err());
}

#[test]
fn reply_leaves_commit_with_their_batch_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let leaves = vec![[7u8; 32], [8u8; 32]];
    {
        let mut fs =
            FileSystem::open(RedbStore::open(dir.path()).unwrap(), FsConfig::default()).unwrap();
        let ctx = |sequence: u64| BatchContext {
            sequence,
            timestamp: t(sequence as u32),
        };
        let (_, mut ran) = fs.run_batch(&ctx(1), &[]).unwrap();
        ran.replies([(1, Some(leaves.clone()))].into());
        fs.commit_batch(ran).unwrap();
        let (_, mut ran) = fs.run_batch(&ctx(2), &[]).unwrap();
        ran.replies([(2, Some(vec![[9u8; 32]]))].into());
        fs.commit_batch(ran).unwrap();
        // Batch 3 run twice: once one run committed, the other is no longer the next.
        let (_, stale) = fs.run_batch(&ctx(3), &[]).unwrap();
        let (_, mut ran) = fs.run_batch(&ctx(3), &[]).unwrap();
        ran.replies([(1, None)].into());
        fs.commit_batch(ran).unwrap();
        assert!(matches!(
            fs.commit_batch(stale),
            Err(ExecError::OutOfOrder {
                expected: 4,
                got: 3
            })
        ));
    }
    let fs = FileSystem::open(RedbStore::open(dir.path()).unwrap(), FsConfig::default()).unwrap();
    assert_eq!(fs.last_applied(), 3);
    let stored = fs.replies(10).unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (stored[0].sequence, stored[0].leaves.clone()),
        (2, vec![[9u8; 32]])
    );
    assert!(matches!(fs.replies(0), Err(ExecError::Corrupt(_))));
}

#[test]
fn torn_reply_leaves_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    drop(FileSystem::open(RedbStore::open(dir.path()).unwrap(), FsConfig::default()).unwrap());
    {
        let db = redb::Database::create(dir.path().join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(redb::TableDefinition::<u64, &[u8]>::new("replies"))
                .unwrap();
            t.insert(1, [0u8; 33].as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let fs = FileSystem::open(RedbStore::open(dir.path()).unwrap(), FsConfig::default()).unwrap();
    assert!(matches!(fs.replies(10), Err(ExecError::Corrupt(_))));
}

/// A backend that refuses to write while `full` is set, like a full disk.
#[derive(Debug)]
struct FullDisk {
    inner: Arc<InMemoryBackend>,
    full: Arc<AtomicBool>,
}

impl FullDisk {
    fn check(&self) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) {
            Err(std::io::Error::from_raw_os_error(28))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for FullDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

#[test]
fn disk_full_fails_the_batch_and_keeps_the_file_system_usable() {
    let inner = Arc::new(InMemoryBackend::new());
    let full = Arc::new(AtomicBool::new(false));
    let (i2, f2) = (Arc::clone(&inner), Arc::clone(&full));
    let store = RedbStore::open_with_backend(move || {
        Ok(FullDisk {
            inner: Arc::clone(&i2),
            full: Arc::clone(&f2),
        })
    })
    .unwrap();
    let mut h = H::new(store, FsConfig::default());
    let mut reference = mem();
    let f = workload(&mut h);
    workload(&mut reference);
    let digest = h.fs.digest();
    assert_eq!(digest, reference.fs.digest());
    let last = h.fs.last_applied();

    full.store(true, Ordering::SeqCst);
    let ctx = h.ctx();
    let r = h.fs.apply_batch(
        &ctx,
        &[
            FsOp::Write {
                id: f,
                offset: 0,
                data: vec![7u8; 300_000],
            },
            FsOp::Mkdir {
                dir: ROOT_ID,
                name: b"lost".to_vec(),
                attr: SetAttr::default(),
            },
        ],
    );
    assert!(matches!(r, Err(ExecError::Storage(_))), "{r:?}");
    assert_eq!(h.fs.last_applied(), last);
    full.store(false, Ordering::SeqCst);

    assert_eq!(h.fs.digest(), digest);
    assert_eq!(h.lookup(ROOT_ID, "lost"), Err(FsError::NoEnt));
    assert_eq!(h.read(f, 0, 5).0, b"hello".to_vec());
    // Same next operations on both: still equal.
    reference.seconds = h.seconds;
    let a = h.mkdir(ROOT_ID, "after");
    let b = reference.mkdir(ROOT_ID, "after");
    assert_eq!(a, b);
    assert_eq!(h.fs.digest(), reference.fs.digest());
    let _ = MemStore::new();
}

#[test]
fn read_only_batches_advance_last_applied_and_a_later_write_makes_it_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
        h.mkdir(ROOT_ID, "d");
        h.op(FsOp::GetAttr { id: ROOT_ID }).unwrap();
        h.op(FsOp::GetAttr { id: ROOT_ID }).unwrap();
        assert_eq!(h.fs.last_applied(), 3);
        h.mkdir(ROOT_ID, "e");
        h.op(FsOp::GetAttr { id: ROOT_ID }).unwrap();
    }
    let h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    // The durable commit of batch 4 carried the non-durable batches 2 and 3 with it;
    // batch 5 (read-only) may or may not have reached the disk, and either is correct:
    // replaying it changes nothing.
    assert!(
        (4..=5).contains(&h.fs.last_applied()),
        "{}",
        h.fs.last_applied()
    );
}

#[test]
fn file_systems_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<palisade_execution::DurableFileSystem>();
    assert_send::<FileSystem<MemStore>>();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Random operation sequences, in batches of up to 10: RedbStore answers exactly as
    /// MemStore does, the digest maintained incrementally (asked after every batch)
    /// equals MemStore's, and equals the digest rebuilt from scratch after a reopen.
    #[test]
    fn redb_matches_mem_and_incremental_matches_rebuilt(ops in ops_s()) {
        let ops = resolved(&ops);
        let dir = tempfile::tempdir().unwrap();
        let mut r = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
        let mut m = mem();
        for batch in ops.chunks(10) {
            prop_assert_eq!(r.batch(batch), m.batch(batch));
            prop_assert_eq!(r.fs.digest(), m.fs.digest());
        }
        let digest = r.fs.digest();
        let leaves = r.fs.leaf_hashes().unwrap();
        drop(r);
        let mut r = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
        prop_assert_eq!(r.fs.digest(), digest);
        prop_assert_eq!(r.fs.leaf_hashes().unwrap(), leaves);
    }
}

/// A backend that counts the bytes redb writes.
#[derive(Debug)]
struct Counting {
    inner: InMemoryBackend,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl StorageBackend for Counting {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.written.fetch_add(data.len() as u64, Ordering::SeqCst);
        self.inner.write(offset, data)
    }
}

/// Full 64 KiB blocks must cost about their size on disk, not a 128 KiB redb page each
/// (a leaf holding a whole 64 KiB value would need one).
#[test]
fn full_blocks_are_written_at_about_their_size() {
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let w2 = Arc::clone(&written);
    let store = RedbStore::open_with_backend(move || {
        Ok(Counting {
            inner: InMemoryBackend::new(),
            written: Arc::clone(&w2),
        })
    })
    .unwrap();
    let mut h = H::new(store, FsConfig::default());
    let f = h.create(ROOT_ID, "big");
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let before = written.load(Ordering::SeqCst);
    for i in 0..16u64 {
        h.write(f, i << 20, &data).unwrap();
    }
    let bytes = written.load(Ordering::SeqCst) - before;
    let payload = 16u64 << 20;
    assert!(
        bytes < payload + payload / 4,
        "{bytes} bytes written for {payload} bytes of data"
    );
    for i in [0u64, 7, 15] {
        assert_eq!(h.read(f, i << 20, 1 << 20).0, data);
    }
    // Shrinking into a block drops its tail; growing again reads zeros there.
    h.setattr(
        f,
        SetAttr {
            size: Some(65_000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    h.setattr(
        f,
        SetAttr {
            size: Some(1 << 20),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let (back, _) = h.read(f, 0, 1 << 20);
    assert_eq!(&back[..65_000], &data[..65_000]);
    assert!(back[65_000..].iter().all(|&b| b == 0));
}

/// A block stored whole (before blocks were split into a head and a tail) reads whole.
#[test]
fn a_block_stored_whole_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let f = {
        let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
        let f = h.create(ROOT_ID, "old");
        h.write(f, 0, &[1u8; 65_536]).unwrap();
        f
    };
    // Rewrite the block the way the earlier layout stored it: all of it in "blocks",
    // nothing in "block_tails".
    let whole: Vec<u8> = (0..65_536u32).map(|i| (i % 253) as u8).collect();
    {
        let db = redb::Database::create(dir.path().join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let blocks: redb::TableDefinition<(u64, u64), &[u8]> =
                redb::TableDefinition::new("blocks");
            let tails: redb::TableDefinition<(u64, u64), &[u8]> =
                redb::TableDefinition::new("block_tails");
            let metas: redb::TableDefinition<(u64, u64), ([u8; 32], u32)> =
                redb::TableDefinition::new("block_metas");
            tx.open_table(blocks)
                .unwrap()
                .insert((f, 0), whole.as_slice())
                .unwrap();
            tx.open_table(tails).unwrap().remove((f, 0)).unwrap();
            tx.open_table(metas)
                .unwrap()
                .insert((f, 0), (*blake3::hash(&whole).as_bytes(), 65_536))
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    assert_eq!(h.read(f, 0, 65_536).0, whole);
    // Overwriting part of it stores the new layout; the rest of the old bytes stay.
    h.write(f, 65_500, &[9u8; 36]).unwrap();
    let (back, _) = h.read(f, 0, 65_536);
    assert_eq!(&back[..65_500], &whole[..65_500]);
    assert_eq!(&back[65_500..], &[9u8; 36]);
}

/// A backend that logs every write (offset, length), resize and fsync it receives.
#[derive(Debug)]
struct Logged {
    inner: Arc<InMemoryBackend>,
    log: Arc<std::sync::Mutex<Vec<String>>>,
    full: Arc<AtomicBool>,
}

impl Logged {
    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }
}

impl StorageBackend for Logged {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.note(format!("len {len}"));
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.note("sync".into());
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.note(format!("write {offset} {}", data.len()));
        self.inner.write(offset, data)
    }
}

type Log = Arc<std::sync::Mutex<Vec<String>>>;

fn logged_store(deferred: bool) -> (RedbStore, Log, Arc<AtomicBool>) {
    let inner = Arc::new(InMemoryBackend::new());
    let log: Log = Arc::default();
    let full = Arc::new(AtomicBool::new(false));
    let (i2, l2, f2) = (Arc::clone(&inner), Arc::clone(&log), Arc::clone(&full));
    let make = move || {
        Ok(Logged {
            inner: Arc::clone(&i2),
            log: Arc::clone(&l2),
            full: Arc::clone(&f2),
        })
    };
    let store = if deferred {
        RedbStore::open_with_backend_deferred_sync(make)
    } else {
        RedbStore::open_with_backend(make)
    }
    .unwrap();
    (store, log, full)
}

/// Deferred fsyncs change only *when* the fsync runs, never what the disk sees: the
/// writes, resizes and fsyncs arrive in exactly the order of synchronous commits (so
/// redb's crash safety is untouched), and a commit returns before its fsync.
#[test]
fn deferred_sync_keeps_the_synchronous_order_of_writes_and_fsyncs() {
    let (store, sync_log, _) = logged_store(false);
    let mut s = H::new(store, FsConfig::default());
    assert!(s.fs.sync_waiter().is_none());
    let (store, deferred_log, _) = logged_store(true);
    let mut d = H::new(store, FsConfig::default());
    let data = vec![5u8; 300_000];
    for h in [&mut s, &mut d] {
        workload(h);
        let f = h.create(ROOT_ID, "big");
        h.write(f, 0, &data).unwrap();
    }
    // `d`'s last commit returned, but its fsync has not run yet.
    let last = deferred_log.lock().unwrap().last().cloned();
    assert!(
        last.as_deref().is_some_and(|e| e.starts_with("write")),
        "{last:?}"
    );
    assert_eq!(
        sync_log.lock().unwrap().last().map(String::as_str),
        Some("sync")
    );
    d.fs.sync_waiter().unwrap().wait().unwrap();
    assert_eq!(*deferred_log.lock().unwrap(), *sync_log.lock().unwrap());
    assert_eq!(d.fs.digest(), s.fs.digest());
}

/// A failed deferred fsync fails its waiter and the next commit (nothing written after
/// it may count as durable); the store then reopens and serves again.
#[test]
fn a_failed_deferred_fsync_fails_the_waiter_and_the_next_commit_then_recovers() {
    let (store, _, full) = logged_store(true);
    let mut h = H::new(store, FsConfig::default());
    h.mkdir(ROOT_ID, "before");
    full.store(true, Ordering::SeqCst);
    let waiter = h.fs.sync_waiter().unwrap();
    let err = waiter.wait().unwrap_err();
    assert!(err.to_string().contains("os error 28"), "{err}");
    let ctx = h.ctx();
    let r = h.fs.apply_batch(
        &ctx,
        &[FsOp::Mkdir {
            dir: ROOT_ID,
            name: b"lost".to_vec(),
            attr: SetAttr::default(),
        }],
    );
    assert!(matches!(r, Err(ExecError::Storage(_))), "{r:?}");
    full.store(false, Ordering::SeqCst);
    let d = h.mkdir(ROOT_ID, "after");
    h.fs.sync_waiter().unwrap().wait().unwrap();
    assert_eq!(h.lookup(ROOT_ID, "after"), Ok(d));
    assert_eq!(h.lookup(ROOT_ID, "lost"), Err(FsError::NoEnt));
}
