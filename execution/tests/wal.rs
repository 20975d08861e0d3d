//! The durable store's write-ahead log (`wal.rs`): a batch is durable once its record
//! is, the B-tree catches up at open, and records the B-tree already holds are never
//! replayed again.
//!
//! A crash is simulated by copying the store's files while it is open: the copy holds
//! what the process had written (a process crash keeps the page cache; what the log
//! syncs survives a power loss too). Each test first shows that the B-tree file alone
//! lacks what the log must bring back, so it fails if the log did nothing.
// Test helpers outside #[test] fns panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use palisade_execution::{FsConfig, RedbStore};
use palisade_wire::fs::*;

/// Copies the store's files in `from` to a new directory; `with_log: false` leaves
/// the log behind.
fn crash_copy(from: &Path, with_log: bool) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::copy(from.join("state.redb"), to.path().join("state.redb")).unwrap();
    if with_log {
        std::fs::copy(from.join("state.wal"), to.path().join("state.wal")).unwrap();
    }
    to
}

/// The last applied sequence of the B-tree file alone (opened without a log).
fn btree_last_applied(dir: &Path) -> u64 {
    let copy = crash_copy(dir, false);
    let h = H::new(
        RedbStore::open_with_log(copy.path(), 0).unwrap(),
        FsConfig::default(),
    );
    h.fs.last_applied()
}

#[test]
fn a_logged_batch_is_replayed_onto_the_btree_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    let formatted = h.fs.last_applied();
    let f = h.create(ROOT_ID, "a");
    h.write(f, 0, &[7u8; 4096]).unwrap();
    h.write(f, 4096, b"tail").unwrap();
    let (last, digest) = (h.fs.last_applied(), h.fs.digest());
    assert!(last >= formatted + 3);

    assert_eq!(
        btree_last_applied(dir.path()),
        formatted,
        "the B-tree alone must not hold the logged batches (else this test shows nothing)"
    );
    let copy = crash_copy(dir.path(), true);
    let mut r = H::new(RedbStore::open(copy.path()).unwrap(), FsConfig::default());
    assert_eq!(r.fs.last_applied(), last);
    assert_eq!(r.fs.digest(), digest);
    assert_eq!(
        r.read(f, 4090, 10).0,
        b"\x07\x07\x07\x07\x07\x07tail".to_vec()
    );
    // The replay was made durable: the recovered B-tree alone now holds it.
    assert_eq!(btree_last_applied(copy.path()), last);
    // And the recovered store goes on logging from there.
    r.write(f, 0, b"again").unwrap();
    let again = crash_copy(copy.path(), true);
    let mut r2 = H::new(RedbStore::open(again.path()).unwrap(), FsConfig::default());
    assert_eq!(r2.fs.last_applied(), r.fs.last_applied());
    assert_eq!(r2.fs.digest(), r.fs.digest());
}

#[test]
fn a_batch_too_large_to_log_commits_the_btree_and_ends_the_log_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    let f = h.create(ROOT_ID, "big");
    h.write(f, 0, b"small").unwrap();
    let before = h.fs.last_applied();
    assert!(btree_last_applied(dir.path()) < before);
    // 512 KiB in one batch: more than a log record may hold.
    h.write(f, 0, &vec![1u8; 512 * 1024]).unwrap();
    let last = h.fs.last_applied();
    assert_eq!(btree_last_applied(dir.path()), last);
    // A later small batch is logged under the new epoch and replays alone.
    h.write(f, 0, b"after").unwrap();
    let copy = crash_copy(dir.path(), true);
    let mut r = H::new(RedbStore::open(copy.path()).unwrap(), FsConfig::default());
    assert_eq!(r.fs.last_applied(), last + 1);
    assert_eq!(r.fs.digest(), h.fs.digest());
}

#[test]
fn a_full_log_makes_the_btree_durable_and_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    // Room for four records of one (60 KB) block each.
    let mut h = H::new(
        RedbStore::open_with_log(dir.path(), 300 * 1024).unwrap(),
        FsConfig::default(),
    );
    let f = h.create(ROOT_ID, "f");
    for i in 0..20u8 {
        h.write(f, 0, &[i; 60_000]).unwrap();
    }
    let last = h.fs.last_applied();
    let durable = btree_last_applied(dir.path());
    assert!(
        durable > 2 && durable < last,
        "the B-tree was made durable when the log filled ({durable} of {last})"
    );
    let copy = crash_copy(dir.path(), true);
    let mut r = H::new(
        RedbStore::open_with_log(copy.path(), 300 * 1024).unwrap(),
        FsConfig::default(),
    );
    assert_eq!(r.fs.last_applied(), last);
    assert_eq!(r.fs.digest(), h.fs.digest());
}

#[test]
fn a_store_written_without_a_log_opens_with_one_and_ignores_a_stale_log() {
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let mut h = H::new(
            RedbStore::open_with_log(dir.path(), 0).unwrap(),
            FsConfig::default(),
        );
        let f = h.create(ROOT_ID, "f");
        h.write(f, 0, b"no log").unwrap();
        h.fs.digest()
    };
    // A log file left by some other store, with records that would chain on.
    let other = tempfile::tempdir().unwrap();
    {
        let mut o = H::new(RedbStore::open(other.path()).unwrap(), FsConfig::default());
        for i in 0..5 {
            o.create(ROOT_ID, &format!("other{i}"));
        }
    }
    std::fs::copy(other.path().join("state.wal"), dir.path().join("state.wal")).unwrap();
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    assert_eq!(h.fs.digest(), digest);
    assert_eq!(h.lookup(ROOT_ID, "other0"), Err(FsError::NoEnt));
    let f = h.lookup(ROOT_ID, "f").unwrap();
    h.write(f, 0, b"logged").unwrap();
    let copy = crash_copy(dir.path(), true);
    let mut r = H::new(RedbStore::open(copy.path()).unwrap(), FsConfig::default());
    assert_eq!(r.fs.digest(), h.fs.digest());
    assert_eq!(r.read(f, 0, 6).0, b"logged".to_vec());
}

#[test]
fn reads_only_batches_are_logged_in_order_before_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    let f = h.create(ROOT_ID, "f");
    for _ in 0..3 {
        h.op(FsOp::GetAttr { id: f }).unwrap();
    }
    h.write(f, 0, b"x").unwrap();
    let copy = crash_copy(dir.path(), true);
    let mut r = H::new(RedbStore::open(copy.path()).unwrap(), FsConfig::default());
    assert_eq!(r.fs.last_applied(), h.fs.last_applied());
    assert_eq!(r.fs.digest(), h.fs.digest());
}

#[test]
fn a_commit_that_moves_to_another_sequence_is_a_durable_btree_commit() {
    use palisade_execution::{ChangeSet, Store};
    let dir = tempfile::tempdir().unwrap();
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    h.create(ROOT_ID, "f");
    let (meta, _) = h.fs.store().load_meta().unwrap().unwrap();
    // As a checkpoint import that takes the state back to an earlier sequence does.
    let mut store = RedbStore::open(dir.path().join("other").as_path()).unwrap();
    let format = ChangeSet {
        meta,
        last_applied: 10,
        durable: true,
        ..ChangeSet::default()
    };
    store.commit(&format).unwrap();
    store
        .commit(&ChangeSet {
            last_applied: 11,
            ..format.clone()
        })
        .unwrap();
    store
        .commit(&ChangeSet {
            last_applied: 5,
            ..format
        })
        .unwrap();
    // Logged, it would end the log's chain (5 does not follow 11) and be lost in a
    // crash; as a durable B-tree commit the B-tree file alone holds it.
    let copy = crash_copy(&dir.path().join("other"), false);
    let alone = RedbStore::open_with_log(copy.path(), 0).unwrap();
    assert_eq!(alone.load_meta().unwrap().map(|(_, l)| l), Some(5));
    drop(store);
}

/// Commits `data` at `offset` of `f` as one batch whose B-tree write is left for later
/// (`FileSystem::commit_batch`, as an execution replica commits).
fn write_deferred<S: palisade_execution::Store>(h: &mut H<S>, f: FileId, offset: u64, data: &[u8]) {
    let ctx = h.ctx();
    let op = FsOp::Write {
        id: f,
        offset,
        data: data.to_vec(),
    };
    let (results, ran) = h.fs.run_batch(&ctx, &[op]).unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    h.fs.commit_batch(ran).unwrap();
}

#[test]
fn a_deferred_batch_is_read_at_once_and_survives_a_crash_and_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    let f = h.create(ROOT_ID, "a");
    write_deferred(&mut h, f, 0, b"first");
    let last = h.fs.last_applied();
    // A crash before anything touched the store again: only the log holds the batch.
    let crashed = crash_copy(dir.path(), true);
    assert!(btree_last_applied(dir.path()) < last);
    // The live store answers with it (from its pending batches, `pending.rs`).
    assert_eq!(h.read(f, 0, 5).0, b"first");
    let mut r = H::new(
        RedbStore::open(crashed.path()).unwrap(),
        FsConfig::default(),
    );
    assert_eq!(r.fs.last_applied(), last);
    assert_eq!(r.read(f, 0, 5).0, b"first");

    // A clean close with a batch still deferred: redb makes its earlier non-durable
    // commits durable as it closes, the log still holds the deferred one.
    write_deferred(&mut h, f, 0, b"second");
    let (last, digest) = (h.fs.last_applied(), h.fs.digest());
    write_deferred(&mut h, f, 6, b"third");
    drop(h);
    let mut r = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    assert_eq!(r.fs.last_applied(), last + 1);
    assert_ne!(r.fs.digest(), digest);
    assert_eq!(r.read(f, 0, 11).0, b"secondthird");
}
