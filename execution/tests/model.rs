//! Property tests: the file system against a simple reference model, and the digest's
//! determinism across instances and batch splits.
// Test helpers outside #[test] fns panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::model::*;
use common::*;
use palisade_execution::{FileSystem, FsConfig, MemStore, RedbStore, Store};
use palisade_wire::fs::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_reference_model(ops in ops_s()) {
        let mut h = mem();
        let mut model = Model::new();
        for op in &ops {
            agrees_with_model(&mut h, &mut model, op)?;
            // Ask for the digest now and then, so the incremental tree is exercised.
            if h.fs.last_applied().is_multiple_of(5) {
                h.fs.digest();
            }
        }
        // The incrementally maintained digest equals one rebuilt from scratch.
        let digest = h.fs.digest();
        let mut reopened = FileSystem::open(h.fs.into_store(), FsConfig::default()).unwrap();
        prop_assert_eq!(reopened.digest(), digest);
    }

    /// The durable store holds logged batches in memory until enough gather for one
    /// B-tree write (`pending.rs`), and reads lay them over the B-tree: through it the
    /// file system must still match the model, and the state its log brings back after a
    /// crash must be the same state.
    #[test]
    fn a_logged_store_with_pending_batches_matches_the_reference_model(ops in ops_s()) {
        let dir = tempfile::tempdir().unwrap();
        let mut h = H::new(RedbStore::open(dir.path()).unwrap(), FsConfig::default());
        let mut model = Model::new();
        let mut mem = mem();
        let mut held = 0;
        for op in &ops {
            let op = &agrees_with_model(&mut h, &mut model, op)?;
            // The same batches (a listing is several), so the same times.
            let from_mem = mem.op(op.clone());
            observe(&mut mem, op, from_mem).ok();
            held = held.max(h.fs.store().pending_batches());
        }
        prop_assert_eq!(h.fs.digest(), mem.fs.digest());
        if ops.len() > 1 {
            prop_assert!(held > 1, "no batch was ever pending: the test shows nothing");
        }
        let crashed = tempfile::tempdir().unwrap();
        for file in ["state.redb", "state.wal"] {
            std::fs::copy(dir.path().join(file), crashed.path().join(file)).unwrap();
        }
        let mut replayed = FileSystem::open(RedbStore::open(crashed.path()).unwrap(), FsConfig::default()).unwrap();
        prop_assert_eq!(replayed.last_applied(), h.fs.last_applied());
        prop_assert_eq!(replayed.digest(), mem.fs.digest());
    }

    #[test]
    fn digest_is_deterministic_and_split_independent(
        ops in ops_s(),
        cuts in proptest::collection::vec(0usize..64, 0..8),
    ) {
        let ops = resolved(&ops);
        let one_per_batch: Vec<usize> = (0..ops.len()).collect();
        let mut a = run_split(&ops, &one_per_batch);
        let mut b = run_split(&ops, &one_per_batch);
        let mut c = run_split(&ops, &cuts);
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(a.digest(), c.digest());
        prop_assert_eq!(a.leaf_hashes().unwrap(), c.leaf_hashes().unwrap());
    }
}

/// Applies `op` (resolved against the model's names) to the model and to `h` as one
/// batch; their observable results must be equal. Returns the resolved operation.
fn agrees_with_model<S: Store>(
    h: &mut H<S>,
    model: &mut Model,
    op: &FsOp,
) -> Result<FsOp, TestCaseError> {
    let op = model.resolve(op);
    let expected = model.apply(&op);
    let got = h.op(op.clone());
    let got = observe(h, &op, got);
    prop_assert_eq!(&got, &expected, "op {:?}", op);
    Ok(op)
}

#[test]
fn digest_changes_with_state_and_time() {
    let mk = |ts| {
        let mut fs = FileSystem::open(MemStore::new(), FsConfig::default()).unwrap();
        let ctx = BatchContext {
            sequence: 1,
            timestamp: t(ts),
        };
        fs.apply_batch(
            &ctx,
            &[FsOp::Mkdir {
                dir: ROOT_ID,
                name: b"d".to_vec(),
                attr: SetAttr::default(),
            }],
        )
        .unwrap();
        fs
    };
    let empty = FileSystem::open(MemStore::new(), FsConfig::default())
        .unwrap()
        .digest();
    let (d1, d2, d1b) = (mk(1).digest(), mk(2).digest(), mk(1).digest());
    assert_ne!(empty, d1);
    assert_ne!(d1, d2);
    assert_eq!(d1, d1b);
}
