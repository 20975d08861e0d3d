//! Shared by `separate.rs` and `firewall.rs`: the whole cluster stops at once, with the
//! execution replicas past the last stable checkpoint (all agreement keeps on disk),
//! twice; each restart on the same data directory serves every file written before, and
//! new writes are answered — agreement resumes after the restart checkpoint of the
//! execution replicas instead of assigning their sequence numbers again
//! (`ExecutionReplica::start`).

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use palisade_node::{ClusterMode, LocalCluster, LocalClusterOptions, Probe};

use crate::nfs_checks::{self, pattern, Endpoint, Nfs};

/// Longest a phase of a test may go without the gateway completing a single call. The
/// NFS test client has no timeout of its own, so a call the cluster never answered
/// would hang the test (and CI) silently; this turns it into a failure that says where
/// every node stood. It bounds progress, not the phase: on a loaded machine a phase may
/// take minutes, and a client retransmits at most every 8 s.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// Runs `phase`, or fails with `what` and [`describe`] once the gateway completed no
/// call for [`STALL_LIMIT`].
pub async fn within<T>(cluster: &LocalCluster, what: &str, phase: impl Future<Output = T>) -> T {
    let completed = || cluster.gateway().map(|g| g.stats().completed);
    let mut phase = std::pin::pin!(phase);
    let (mut last, mut since) = (completed(), std::time::Instant::now());
    loop {
        if let Ok(v) = tokio::time::timeout(Duration::from_secs(1), &mut phase).await {
            return v;
        }
        let now = completed();
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        } else if since.elapsed() >= STALL_LIMIT {
            panic!(
                "{what}: no call completed for {STALL_LIMIT:?}\n{}",
                describe(cluster)
            );
        }
    }
}

/// Where every node of `cluster` stands: probes, link counters, the gateway's stats.
pub fn describe(cluster: &LocalCluster) -> String {
    let mut s = String::new();
    // Killed nodes have no handle; f = g = 1 here, so 4 and 3 bound the ids.
    for (kind, node) in (0..4)
        .filter_map(|i| cluster.agreement(i).map(|n| ("agreement", n)))
        .chain((0..3).filter_map(|i| cluster.execution(i).map(|n| ("execution", n))))
        .chain((0..cluster.filters()).filter_map(|i| cluster.filter(i).map(|n| ("filter", n))))
    {
        let p = node.probe();
        let _ = writeln!(
            s,
            "{kind} {:?}: view {} sequence {} stable {} refused {} replies_asked {} \
             redundant_orders {}\n  links {:?}",
            node.id(),
            Probe::get(&p.view),
            Probe::get(&p.sequence),
            Probe::get(&p.stable),
            Probe::get(&p.refused),
            Probe::get(&p.replies_asked),
            Probe::get(&p.redundant_orders),
            node.net_stats(),
        );
    }
    if let Some(gw) = cluster.gateway() {
        let _ = writeln!(
            s,
            "gateway: {:?}\n  client core: {:?}",
            gw.stats(),
            gw.service().client_stats(),
        );
    }
    s
}

/// A local cluster of `mode` on `dir`, and its NFS endpoint. Logs go to the test's
/// output when `RUST_LOG` is set.
pub async fn start(mode: ClusterMode, dir: &Path) -> (LocalCluster, Endpoint) {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let cluster = LocalCluster::start(&LocalClusterOptions {
        mode,
        data: dir.to_path_buf(),
        nfs_listen: "127.0.0.1:0".parse().unwrap(),
        base_port: None,
        export_name: None,
    })
    .await
    .expect("cluster starts");
    let ep = Endpoint::from_addr(cluster.nfs_addr().unwrap());
    (cluster, ep)
}

/// See the module doc.
pub async fn killed_as_a_whole_restarts_and_serves(mode: ClusterMode) {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, ep) = start(mode, dir.path()).await;
    let manifest = nfs_checks::populate(&ep, "before").await;
    let k = palisade_node::cluster::LOCAL_CHECKPOINT_INTERVAL;
    let seqs: Vec<u64> = (0..3)
        .map(|i| Probe::get(&cluster.execution(i).unwrap().probe().sequence))
        .collect();
    let stable = Probe::get(&cluster.agreement(0).unwrap().probe().stable);
    // What makes this test mean something: execution is past agreement's resume point.
    if seqs.iter().all(|s| s % k == 0) {
        // Land between checkpoints: one more call.
        let mut nfs = Nfs::connect(&ep).await;
        let root = nfs.root.clone();
        nfs.getattr(&root).await.unwrap();
    }
    let seqs: Vec<u64> = (0..3)
        .map(|i| Probe::get(&cluster.execution(i).unwrap().probe().sequence))
        .collect();
    assert!(
        seqs.iter().any(|s| *s > stable),
        "{seqs:?} vs stable {stable}"
    );
    cluster.kill().await;

    // A liveness bound, not a timing: without the restart checkpoint, the restarted
    // cluster never answers (agreement reassigns executed sequence numbers).
    tokio::time::timeout(
        Duration::from_secs(180),
        restart_twice(mode, dir.path(), &manifest),
    )
    .await
    .expect("the restarted cluster answers");
}

/// After a clean shutdown of a cluster of `mode` on `dir` that wrote `manifest`: a
/// restart reads it all back (handles included) and writes a new file with a new file
/// id, and a second restart reads both back.
pub async fn two_clean_restarts(mode: ClusterMode, dir: &Path, manifest: &nfs_checks::Manifest) {
    let (cluster, ep) = start(mode, dir).await;
    within(
        &cluster,
        "verify after a restart",
        nfs_checks::verify(&ep, manifest),
    )
    .await;
    let (f, new_id) = within(&cluster, "write after a restart", async {
        let mut nfs = Nfs::connect(&ep).await;
        let root = nfs.root.clone();
        let f = nfs.new_file(&root, b"after-restart").await;
        nfs.write_all(&f, &pattern(9, 100_000), 1 << 16).await;
        let new_id = nfs.getattr(&f).await.unwrap().fileid;
        for (_, old, _) in &manifest.files {
            assert_ne!(nfs.getattr(old).await.unwrap().fileid, new_id);
        }
        (f, new_id)
    })
    .await;
    cluster.shutdown().await;

    let (cluster, ep) = start(mode, dir).await;
    within(&cluster, "read after a second restart", async {
        nfs_checks::verify(&ep, manifest).await;
        let mut nfs = Nfs::connect(&ep).await;
        assert_eq!(nfs.getattr(&f).await.unwrap().fileid, new_id);
        assert_eq!(nfs.read_all(&f, 1 << 20).await, pattern(9, 100_000));
    })
    .await;
    cluster.shutdown().await;
}

/// Starts the cluster on `dir` and reads back everything written before.
async fn restart_and_verify(
    mode: ClusterMode,
    dir: &Path,
    manifest: &nfs_checks::Manifest,
    written: &[(Vec<u8>, Vec<u8>)],
) -> (LocalCluster, Nfs) {
    let (cluster, ep) = start(mode, dir).await;
    nfs_checks::verify(&ep, manifest).await;
    let mut nfs = Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    for (name, data) in written {
        let f = nfs.lookup(&root, name).await.unwrap();
        assert_eq!(&nfs.read_all(&f, 1 << 20).await, data);
    }
    (cluster, nfs)
}

async fn restart_twice(mode: ClusterMode, dir: &Path, manifest: &nfs_checks::Manifest) {
    let mut written: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for round in 0..2u64 {
        let (cluster, mut nfs) = restart_and_verify(mode, dir, manifest, &written).await;
        let root = nfs.root.clone();
        let name = format!("after-kill-{round}").into_bytes();
        let data = pattern(40 + round, 50_000 + round as usize);
        let f = nfs.new_file(&root, &name).await;
        nfs.write_all(&f, &data, 1 << 14).await;
        assert_eq!(nfs.read_all(&f, 1 << 20).await, data);
        written.push((name, data));
        drop(nfs);
        cluster.kill().await;
    }
    let (cluster, nfs) = restart_and_verify(mode, dir, manifest, &written).await;
    drop(nfs);
    cluster.shutdown().await;
}
