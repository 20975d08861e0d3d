//! The firewall configuration end to end (Yin et al., SOSP 2003, §4): a gateway, 4
//! agreement nodes, 2 rows of 2 filters and 3 execution nodes (f = g = h = 1) started
//! in-process on loopback, each with its own authenticated links
//! (`palisade_node::LocalCluster`, what `palisade up` runs by default), driven by the real
//! NFS client through the shared checks in `nfs_checks`. Every reply the gateway accepts
//! crossed both filter rows with the execution cluster's threshold signature; every
//! request and reply body was sealed.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "cluster_kill/mod.rs"]
mod cluster_kill;
#[path = "nfs_checks/mod.rs"]
mod nfs_checks;

use std::path::Path;

use cluster_kill::within;
use nfs_checks::{pattern, Endpoint, Nfs};
use palisade_node::{ClusterMode, LocalCluster, Probe};

async fn start(dir: &Path) -> (LocalCluster, Endpoint) {
    cluster_kill::start(ClusterMode::Firewall, dir).await
}

/// What the filters and the gateway counted: replies crossed every row, nothing was
/// dropped as forged or unsolicited, and the gateway accepted only certified replies.
fn check_counters(cluster: &LocalCluster) {
    assert_eq!(cluster.filters(), 4);
    for i in 0..cluster.filters() {
        let h = cluster.filter(i).unwrap();
        let s = h.filter_stats().unwrap();
        assert!(s.orders_forwarded > 0, "filter {i}: {s:?}");
        assert!(s.replies_forwarded > 0, "filter {i}: {s:?}");
        for reason in [
            "bad certificate",
            "impostor",
            "bad share",
            "bad merkle path",
            "bad reply signature",
            "bad stable certificate",
            "uncertified body",
            "reply for a request never made",
            "unexpected from above",
            "unexpected from below",
        ] {
            assert_eq!(s.dropped(reason), 0, "filter {i} dropped {reason}: {s:?}");
        }
        assert!(s.bad_shares.is_empty(), "filter {i}: {s:?}");
        assert_eq!(Probe::get(&h.probe().refused), 0, "filter {i}");
    }
    // Claims were vouched for, over real links: by the whole bottom row to the top row,
    // and by f+1 relaying agreement nodes to the gateway (no pairing at either).
    for i in 0..2 {
        let s = cluster.filter(i).unwrap().filter_stats().unwrap();
        assert!(s.claims_vouched > 0, "top filter {i}: {s:?}");
    }
    let client = cluster.gateway().unwrap().service().client_stats();
    assert!(client.claims_vouched > 0, "{client:?}");
    let gw = cluster.gateway().unwrap().stats();
    assert_eq!(gw.undecodable_results, 0, "{gw:?}");
    assert_eq!(gw.unsealable_results, 0, "{gw:?}");
    assert_eq!(gw.unexpected_messages, 0, "{gw:?}");
}

/// The whole cluster, filters included, stops at once, twice, and restarts on the same
/// data directory (`cluster_kill::killed_as_a_whole_restarts_and_serves`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_killed_as_a_whole_restarts_and_serves() {
    cluster_kill::killed_as_a_whole_restarts_and_serves(ClusterMode::Firewall).await;
}

/// Every shared check on one export, then a restart of the whole cluster on the same
/// data directory: everything written before reads back, handles included, and the
/// restarted cluster keeps working (and survives a second restart). The restart resumes
/// only if the agreement nodes learnt the stable checkpoint from the firewall's
/// threshold-signed certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_and_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, ep) = start(dir.path()).await;
    within(&cluster, "check_all", nfs_checks::check_all(&ep, "suite")).await;
    let manifest = within(&cluster, "populate", nfs_checks::populate(&ep, "kept")).await;
    within(&cluster, "verify", nfs_checks::verify(&ep, &manifest)).await;
    let gw = cluster.gateway().unwrap().stats();
    assert!(gw.completed > 5000, "{gw:?}");
    check_counters(&cluster);
    // Stable checkpoints came up through the firewall and collected agreement's log.
    for i in 0..4 {
        let stable = Probe::get(&cluster.agreement(i).unwrap().probe().stable);
        assert!(stable > 0, "agreement {i} never learnt a stable checkpoint");
    }
    assert!(cluster.quiesce(std::time::Duration::from_secs(30)).await);
    cluster.shutdown().await;

    cluster_kill::two_clean_restarts(ClusterMode::Firewall, dir.path(), &manifest).await;
}

/// A bottom filter fails (h = 1 tolerates one faulty filter, and a crash is the mildest
/// fault): the other filter of its row still carries orders down and certified replies
/// up, and every write reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_filter_in_one_row_does_not_stop_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, ep) = start(dir.path()).await;
    let mut nfs = Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    let before = nfs.new_file(&root, b"before").await;
    nfs.write_all(&before, &pattern(1, 50_000), 8192).await;
    // Filter 3 is the bottom row's second column.
    cluster.kill_filter(3).await;
    let after = nfs.new_file(&root, b"after").await;
    nfs.write_all(&after, &pattern(2, 70_000), 8192).await;
    assert_eq!(nfs.read_all(&before, 1 << 20).await, pattern(1, 50_000));
    assert_eq!(nfs.read_all(&after, 1 << 20).await, pattern(2, 70_000));
    drop(nfs);
    cluster.shutdown().await;
}
