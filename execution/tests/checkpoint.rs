//! Checkpoint export/import: full, partial (diff) and tampered checkpoints.
// Test helpers outside #[test] fns panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::model::*;
use common::*;
use palisade_execution::{ExecError, FsConfig, MemStore, RedbStore};
use palisade_wire::checkpoint::{Checkpoint, InodeContent};
use palisade_wire::fs::*;
use proptest::prelude::*;

fn run(ops: &[FsOp]) -> H {
    let mut h = mem();
    for op in ops {
        let _ = h.op(op.clone());
    }
    h
}

/// Tampered variants of a checkpoint: each must be refused.
fn tampered(cp: &Checkpoint) -> Vec<(&'static str, Checkpoint)> {
    let mut out = Vec::new();
    let mut c = cp.clone();
    c.digest[0] ^= 1;
    out.push(("digest", c));
    let mut c = cp.clone();
    if let Some(img) = c.inodes.first_mut() {
        img.record.mode ^= 0o1;
        out.push(("record", c));
    }
    let mut c = cp.clone();
    if let Some(b) = c.inodes.iter_mut().find_map(|i| match &mut i.content {
        InodeContent::File(bl) if !bl.is_empty() => Some(&mut bl[0]),
        _ => None,
    }) {
        b.data[0] ^= 0xff;
        out.push(("block", c));
    }
    let mut c = cp.clone();
    c.meta.next_id += 1;
    out.push(("meta", c));
    let mut c = cp.clone();
    if let Some(e) = c.inodes.iter_mut().find_map(|i| match &mut i.content {
        InodeContent::Dir(es) if !es.is_empty() => Some(&mut es[0]),
        _ => None,
    }) {
        e.name.push(b'x');
        out.push(("entry", c));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn full_export_reproduces_the_state(ops in ops_s()) {
        let mut a = run(&resolved(&ops));
        let cp = a.fs.export_checkpoint(None).unwrap();
        let bytes = palisade_wire::encode(&cp).unwrap();
        let cp: Checkpoint = palisade_wire::decode(&bytes).unwrap();
        let mut b = mem();
        b.fs.import_checkpoint(&cp).unwrap();
        prop_assert_eq!(b.fs.digest(), a.fs.digest());
        prop_assert_eq!(b.fs.last_applied(), a.fs.last_applied());
        prop_assert_eq!(b.fs.meta(), a.fs.meta());
        prop_assert_eq!(b.list(ROOT_ID, 7), a.list(ROOT_ID, 7));
    }

    #[test]
    fn diff_export_repairs_a_diverged_replica(
        common in ops_s(),
        left in ops_s(),
        right in ops_s(),
        next in op_s(),
    ) {
        let mut l = common.clone();
        l.extend(left);
        let mut r = common;
        r.extend(right);
        let mut a = run(&resolved(&l));
        let mut b = run(&resolved(&r));
        let have = b.fs.leaf_hashes().unwrap();
        let cp = a.fs.export_checkpoint(Some(&have)).unwrap();
        prop_assert!(cp.inodes.len() <= cp.live_ids.len());
        let before = b.fs.digest();
        for (what, bad) in tampered(&cp) {
            let res = b.fs.import_checkpoint(&bad);
            prop_assert!(
                matches!(res, Err(ExecError::DigestMismatch | ExecError::BadCheckpoint(_))),
                "tampered {} accepted: {:?}", what, res
            );
            prop_assert_eq!(b.fs.digest(), before);
        }
        b.fs.import_checkpoint(&cp).unwrap();
        prop_assert_eq!(b.fs.digest(), a.fs.digest());
        prop_assert_eq!(b.fs.leaf_hashes().unwrap(), a.fs.leaf_hashes().unwrap());
        // Both continue identically from here.
        b.seconds = a.seconds;
        let mut model_ops = l.clone();
        model_ops.push(next);
        let next = resolved(&model_ops).pop().unwrap();
        prop_assert_eq!(a.op(next.clone()), b.op(next));
        prop_assert_eq!(b.fs.digest(), a.fs.digest());
    }
}

#[test]
fn malformed_checkpoints_are_refused_before_anything_changes() {
    let mut a = mem();
    let f = a.create(ROOT_ID, "f");
    a.write(f, 0, b"data").unwrap();
    let cp = a.fs.export_checkpoint(None).unwrap();
    let mut b = mem();
    let before = b.fs.digest();
    let mut cases = Vec::new();
    let mut c = cp.clone();
    c.live_ids.reverse();
    cases.push(c);
    let mut c = cp.clone();
    c.live_ids.retain(|id| *id != ROOT_ID);
    c.meta.inode_count -= 1;
    cases.push(c);
    let mut c = cp.clone();
    if let InodeContent::File(bl) = &mut c.inodes[1].content {
        bl[0].data = vec![0; 70_000];
    }
    cases.push(c);
    let mut c = cp.clone();
    c.inodes[1].content = InodeContent::Symlink;
    cases.push(c);
    let mut c = cp.clone();
    c.meta.inode_count = 1000;
    cases.push(c);
    let mut c = cp.clone();
    c.inodes.remove(1);
    cases.push(c);
    for (i, c) in cases.iter().enumerate() {
        let r = b.fs.import_checkpoint(c);
        assert!(
            matches!(r, Err(ExecError::BadCheckpoint(_))),
            "case {i}: {r:?}"
        );
        assert_eq!(b.fs.digest(), before);
    }
}

#[test]
fn checkpoint_moves_between_mem_and_redb() {
    let mut a = mem();
    let d = a.mkdir(ROOT_ID, "d");
    let f = a.create(d, "f");
    a.write(f, 70_000, b"sparse").unwrap();
    let cp = a.fs.export_checkpoint(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    b.fs.import_checkpoint(&cp).unwrap();
    assert_eq!(b.fs.digest(), a.fs.digest());
    drop(b);
    let mut b = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
    assert_eq!(b.fs.digest(), a.fs.digest());
    assert_eq!(b.read(f, 70_000, 10).0, b"sparse".to_vec());
    let _ = MemStore::new();
}
