//! FsSnapshot: the state of one sequence stays readable, and exports exactly as it did
//! then, while the file system moves on (MemStore copy, RedbStore read transaction).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use palisade_execution::{FsConfig, MemStore, RedbStore, Store};
use palisade_wire::fs::*;

/// Builds some state, snapshots it, changes (and deletes) much of it, then checks that
/// the snapshot's exports equal the ones taken at snapshot time, and that another file
/// system reaches the snapshot's digest by importing them.
fn snapshot_outlives_later_batches<S: Store>(mut h: H<S>, mut other: H<MemStore>) {
    let d = h.mkdir(ROOT_ID, "d");
    let f = h.create(d, "f");
    h.write(f, 0, &[7u8; 200_000]).unwrap();
    let g = h.create(ROOT_ID, "g");
    h.write(g, 10, b"gee").unwrap();
    let full_then = h.fs.export_checkpoint(None).unwrap();
    let digest_then = h.fs.digest();
    let leaves_then = h.fs.leaf_hashes().unwrap();
    let snap = h.fs.snapshot().unwrap();
    assert_eq!(snap.last_applied(), h.fs.last_applied());
    assert_eq!(snap.digest(), digest_then);
    // Later batches: overwrite, truncate, remove, create.
    h.write(f, 100, &[9u8; 70_000]).unwrap();
    h.remove(ROOT_ID, "g").unwrap();
    h.create(d, "new");
    h.setattr(
        f,
        SetAttr {
            size: Some(5),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_ne!(h.fs.digest(), digest_then);
    assert_eq!(snap.export_checkpoint(None).unwrap(), full_then);
    // A diff against a receiver that holds part of the state: only what differs.
    let mut have: BTreeMap<FileId, [u8; 32]> = BTreeMap::new();
    other.mkdir(ROOT_ID, "d");
    for (id, leaf) in other.fs.leaf_hashes().unwrap() {
        have.insert(id, leaf);
    }
    let diff = snap.export_checkpoint(Some(&have)).unwrap();
    assert_eq!(diff.live_ids, full_then.live_ids);
    // A receiver already at the snapshot's state gets no inode at all.
    let none = snap.export_checkpoint(Some(&leaves_then)).unwrap();
    assert!(none.inodes.is_empty());
    assert_eq!(none.digest, digest_then.0);
    other.fs.import_checkpoint(&diff).unwrap();
    assert_eq!(other.fs.digest(), digest_then);
}

#[test]
fn a_mem_store_snapshot_outlives_later_batches() {
    snapshot_outlives_later_batches(mem(), mem());
}

#[test]
fn a_redb_snapshot_outlives_later_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    snapshot_outlives_later_batches(H::new(store, FsConfig::default()), mem());
}

#[test]
fn replicas_with_snapshots_can_move_to_their_own_thread() {
    // The runtime runs each replica on a dedicated thread: its kept snapshots (a redb
    // read transaction, a MemStore copy) must not make it !Send.
    fn send<T: Send>() {}
    send::<palisade_execution::ExecutionReplica<RedbStore>>();
    send::<palisade_execution::ExecutionReplica<MemStore>>();
}
