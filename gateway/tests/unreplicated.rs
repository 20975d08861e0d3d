//! The unreplicated gateway end to end: a real gateway started in-process on a
//! temporary data directory, driven by the real NFS client crate (`nfs3_client`)
//! through the shared checks in `nfs_checks` (which replicated modes run too).

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod nfs_checks;

use std::net::SocketAddr;
use std::path::Path;

use nfs_checks::Endpoint;
use palisade_gateway::{FsConfig, Gateway, GatewayError, GatewayOptions};

fn options() -> GatewayOptions {
    GatewayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..GatewayOptions::default()
    }
}

async fn start(dir: &Path) -> (Gateway, Endpoint) {
    let gw = Gateway::start(dir, FsConfig::default(), &options())
        .await
        .expect("gateway starts");
    assert_ne!(gw.local_addr().port(), 0);
    let ep = Endpoint::from_addr(gw.local_addr());
    (gw, ep)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, ep) = start(dir.path()).await;
    nfs_checks::check_file_lifecycle(&ep, "life").await;
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_setattr_guarded_create_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, ep) = start(dir.path()).await;
    nfs_checks::check_symlink(&ep, "link").await;
    nfs_checks::check_setattr(&ep, "attr").await;
    nfs_checks::check_guarded_create(&ep, "guard").await;
    nfs_checks::check_setattr_guard(&ep, "sync").await;
    nfs_checks::check_bad_names(&ep, "names").await;
    let fs_errors = gw.nfs_stats().fs_errors;
    assert!(fs_errors >= 10, "refusals were not counted: {fs_errors}");
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_handles_fsstat_and_fsinfo() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, ep) = start(dir.path()).await;
    nfs_checks::check_forged_handles(&ep).await;
    nfs_checks::check_fsstat_fsinfo(&ep).await;
    assert!(gw.nfs_stats().rejected_handles >= 5);
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_entries_list_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, ep) = start(dir.path()).await;
    nfs_checks::check_large_directory(&ep, "big", 5000).await;
    // Eight clients creating at once share commits (group commit).
    let stats = gw.executor_stats();
    assert!(stats.max_batch_ops > 1, "{stats:?}");
    assert!(stats.batches < stats.ops, "{stats:?}");
    assert_eq!(stats.storage_errors, 0);
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, ep) = start(dir.path()).await;
    let manifest = nfs_checks::populate(&ep, "kept").await;
    nfs_checks::verify(&ep, &manifest).await;
    gw.shutdown().await.unwrap();

    let (gw, ep) = start(dir.path()).await;
    nfs_checks::verify(&ep, &manifest).await;
    // The restarted file system keeps working: new files get fresh ids.
    let mut nfs = nfs_checks::Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    let f = nfs.new_file(&root, b"after-restart").await;
    let new_id = nfs.getattr(&f).await.unwrap().fileid;
    for (_, old, _) in &manifest.files {
        assert_ne!(nfs.getattr(old).await.unwrap().fileid, new_id);
    }
    gw.shutdown().await.unwrap();

    // And once more, with the file written after the first restart.
    let (gw, ep) = start(dir.path()).await;
    nfs_checks::verify(&ep, &manifest).await;
    let mut nfs = nfs_checks::Nfs::connect(&ep).await;
    assert_eq!(nfs.getattr(&f).await.unwrap().fileid, new_id);
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_data_dir_fails_start_up_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.redb"), vec![0x5Au8; 64 * 1024]).unwrap();
    let err = match Gateway::start(dir.path(), FsConfig::default(), &options()).await {
        Ok(_) => panic!("a corrupt data dir must not start"),
        Err(e) => e,
    };
    assert!(matches!(err, GatewayError::OpenData { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_port_and_a_locked_data_dir_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, _) = start(dir.path()).await;
    let other = tempfile::tempdir().unwrap();
    let taken = GatewayOptions {
        listen: gw.local_addr(),
        ..GatewayOptions::default()
    };
    match Gateway::start(other.path(), FsConfig::default(), &taken).await {
        Err(GatewayError::Bind { addr, .. }) => assert_eq!(addr, gw.local_addr()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("two gateways on one port"),
    }
    // The failed start released its own data dir: it can start now.
    let (gw2, _) = start(other.path()).await;
    gw2.shutdown().await.unwrap();
    // The running gateway's data dir is in use.
    assert!(matches!(
        Gateway::start(dir.path(), FsConfig::default(), &options()).await,
        Err(GatewayError::OpenData { .. })
    ));
    gw.shutdown().await.unwrap();
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    let opts = GatewayOptions {
        listen: v6,
        ..GatewayOptions::default()
    };
    assert!(matches!(
        Gateway::start(other.path(), FsConfig::default(), &opts).await,
        Err(GatewayError::Ipv6Unsupported(_))
    ));
}

/// FSSTAT reports the file system's own numbers (patched nfsserve, vendor/nfsserve),
/// not nfsserve's hard-coded ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsstat_reports_true_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let config = FsConfig {
        capacity_bytes: 1 << 30,
        max_files: 1000,
        ..FsConfig::default()
    };
    let gw = Gateway::start(dir.path(), config, &options())
        .await
        .unwrap();
    let ep = Endpoint::from_addr(gw.local_addr());
    let mut nfs = nfs_checks::Nfs::connect(&ep).await;
    let empty = nfs.fsstat().await.unwrap();
    assert_eq!((empty.tbytes, empty.tfiles), (1 << 30, 1000));
    assert_eq!((empty.fbytes, empty.abytes), (1 << 30, 1 << 30));
    assert_eq!(
        (empty.ffiles, empty.afiles),
        (999, 999),
        "the root uses one inode"
    );
    assert_eq!(empty.invarsec, 0);

    let root = nfs.root.clone();
    let f = nfs.new_file(&root, b"one-mib").await;
    nfs.write_all(&f, &nfs_checks::pattern(1, 1 << 20), 1 << 20)
        .await;
    let used = nfs.getattr(&f).await.unwrap().used;
    assert!(used >= 1 << 20);
    let full = nfs.fsstat().await.unwrap();
    assert_eq!(full.fbytes, (1 << 30) - used);
    assert_eq!(full.ffiles, 998);

    nfs.remove(&root, b"one-mib").await.unwrap();
    let after = nfs.fsstat().await.unwrap();
    assert_eq!((after.fbytes, after.ffiles), (1 << 30, 999));
    gw.shutdown().await.unwrap();
}

/// The whole shared suite on ONE export, as the replicated modes will run it: the checks
/// do not interfere with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_share_one_export() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, ep) = start(dir.path()).await;
    nfs_checks::check_all(&ep, "suite").await;
    let manifest = nfs_checks::populate(&ep, "suite-kept").await;
    gw.shutdown().await.unwrap();
    let (gw, ep) = start(dir.path()).await;
    nfs_checks::verify(&ep, &manifest).await;
    gw.shutdown().await.unwrap();
}

/// A WRITE is one operation through the service (no GETATTR first for pre-op
/// attributes, see `PalisadeNfs::write_pre_op_attr`), is answered FILE_SYNC only once its
/// batch is durable (deferred fsync, pipelined commit), and reads back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_one_operation_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, ep) = start(dir.path()).await;
    let mut nfs = nfs_checks::Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    let f = nfs.new_file(&root, b"w").await;
    let data = nfs_checks::pattern(7, 4 << 20);
    let before = gw.executor_stats().ops;
    // `write_all` asserts every reply says FILE_SYNC.
    nfs.write_all(&f, &data, 1 << 20).await;
    assert_eq!(gw.executor_stats().ops - before, 4);
    let mut back = Vec::new();
    for i in 0..4u64 {
        let (part, _) = nfs.read(&f, i << 20, 1 << 20).await.unwrap();
        back.extend_from_slice(&part);
    }
    assert_eq!(back, data);
    gw.shutdown().await.unwrap();
    // Everything answered was on disk: a restart on the same directory reads it back.
    let (gw, ep) = start(dir.path()).await;
    let mut nfs = nfs_checks::Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    let f = nfs.lookup(&root, b"w").await.unwrap();
    let (part, _) = nfs.read(&f, 3 << 20, 1 << 20).await.unwrap();
    assert_eq!(part, data[3 << 20..]);
    gw.shutdown().await.unwrap();
}
