//! The `separate` configuration end to end: a gateway, 4 agreement and 3 execution nodes
//! (f = g = 1) started in-process on loopback, each with its own authenticated links
//! (`palisade_node::LocalCluster`, what `palisade up --mode separate` runs), driven by the
//! real NFS client through the shared checks in `nfs_checks`.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "cluster_kill/mod.rs"]
mod cluster_kill;
#[path = "nfs_checks/mod.rs"]
mod nfs_checks;

use std::path::Path;
use std::time::Duration;

use cluster_kill::within;
use nfs_checks::{pattern, Endpoint, Nfs};
use palisade_node::{ClusterMode, LocalCluster, Probe};

async fn start(dir: &Path) -> (LocalCluster, Endpoint) {
    cluster_kill::start(ClusterMode::Separate, dir).await
}

/// Every shared check on one export, then a restart of the whole cluster on the same
/// data directory: everything written before reads back, handles included, and the
/// restarted cluster keeps working (and survives a second restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_and_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, ep) = start(dir.path()).await;
    within(&cluster, "check_all", nfs_checks::check_all(&ep, "suite")).await;
    let manifest = within(&cluster, "populate", nfs_checks::populate(&ep, "kept")).await;
    within(&cluster, "verify", nfs_checks::verify(&ep, &manifest)).await;
    let gw = cluster.gateway().unwrap().stats();
    assert!(gw.completed > 5000, "{gw:?}");
    assert_eq!(gw.undecodable_results, 0);
    cluster.shutdown().await;

    cluster_kill::two_clean_restarts(ClusterMode::Separate, dir.path(), &manifest).await;
}

/// The whole cluster stops at once, twice, and restarts on the same data directory
/// (`cluster_kill::killed_as_a_whole_restarts_and_serves`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_killed_as_a_whole_restarts_and_serves() {
    cluster_kill::killed_as_a_whole_restarts_and_serves(ClusterMode::Separate).await;
}

/// The primary fails in the middle of a write workload: the backups change view, the
/// workload completes, and every write that was acknowledged reads back equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_mid_workload_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, ep) = start(dir.path()).await;
    let mut nfs = Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    let work = nfs.mkdir(&root, b"work").await.unwrap();
    drop(nfs);

    const WRITERS: u64 = 4;
    const FILES: u64 = 40;
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let ep = ep.clone();
        let work = work.clone();
        let acked_tx = acked_tx.clone();
        writers.push(tokio::spawn(async move {
            let mut nfs = Nfs::connect(&ep).await;
            for i in 0..FILES {
                let name = format!("w{w}-f{i}");
                let data = pattern(w * 1000 + i, 1000 + (i as usize * 3001) % 70_000);
                let f = nfs.new_file(&work, name.as_bytes()).await;
                nfs.write_all(&f, &data, 32 * 1024).await;
                acked_tx.send((name, data)).unwrap();
            }
        }));
    }
    drop(acked_tx);
    // Let the workload get going, then kill the primary of view 0.
    let mut acked = Vec::new();
    while acked.len() < 20 {
        acked.push(acked_rx.recv().await.expect("writers stopped early"));
    }
    let primary = cluster.primary();
    assert_eq!(primary, 0, "view 0's primary is replica 0");
    cluster.kill_agreement(primary).await;
    within(&cluster, "the workload after the view change", async {
        for w in writers {
            w.await.unwrap();
        }
    })
    .await;
    while let Some(a) = acked_rx.recv().await {
        acked.push(a);
    }
    assert_eq!(acked.len() as u64, WRITERS * FILES);
    // The view change completed at every live replica.
    for i in 1..4 {
        let view = Probe::get(&cluster.agreement(i).unwrap().probe().view);
        assert!(view >= 1, "replica {i} still in view {view}");
    }
    assert_ne!(cluster.primary(), primary);

    // Every acknowledged write reads back equal.
    let nfs = within(&cluster, "reading back", async {
        let mut nfs = Nfs::connect(&ep).await;
        for (name, data) in &acked {
            let f = nfs.lookup(&work, name.as_bytes()).await.unwrap();
            assert_eq!(&nfs.read_all(&f, 1 << 20).await, data, "{name}");
        }
        nfs
    })
    .await;
    // And the execution replicas agree on how far they got.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seqs: Vec<u64> = (0..3)
        .map(|i| Probe::get(&cluster.execution(i).unwrap().probe().sequence))
        .collect();
    assert!(seqs.iter().all(|s| *s > 0), "{seqs:?}");
    drop(nfs);
    cluster.shutdown().await;
}

/// The gateway restarts alone while the replicas keep running: its new requests are not
/// taken for replays of the old incarnation's (same client id), and everything written
/// before and after reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_alone_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, ep) = start(dir.path()).await;
    let mut nfs = Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    let before = nfs.new_file(&root, b"before").await;
    nfs.write_all(&before, &pattern(1, 5000), 4096).await;
    drop(nfs);
    cluster.restart_gateway().await.unwrap();
    assert_eq!(cluster.nfs_addr().unwrap().port(), ep.port);
    let mut nfs = Nfs::connect(&ep).await;
    let after = nfs.new_file(&root, b"after").await;
    nfs.write_all(&after, &pattern(2, 7000), 4096).await;
    assert_eq!(nfs.read_all(&before, 1 << 20).await, pattern(1, 5000));
    assert_eq!(nfs.read_all(&after, 1 << 20).await, pattern(2, 7000));
    let (entries, _) = nfs.list(&root, 8192, 32768).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    drop(nfs);
    cluster.shutdown().await;
}
