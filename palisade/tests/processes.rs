//! The replicated configurations as separate processes, the way a deployment runs them:
//! `palisade keygen` (with `--h 1` for the firewall), then one `palisade node --config
//! FILE` per node. A write workload runs through the gateway; the primary's process is
//! killed (SIGKILL) in the middle of it; the view change completes, the workload
//! completes, and every acknowledged write reads back equal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/nfs_checks/mod.rs"]
mod nfs_checks;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nfs_checks::{pattern, Endpoint, Nfs};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

/// `nodes` consecutive free loopback ports plus one for NFS. Tests of this file run in
/// parallel and probe before any node binds, so each call starts its search elsewhere.
fn free_ports(nodes: u16) -> (u16, u16) {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = 30_000 + (std::process::id() % 200) as u16 * 50 + call * 16;
    for base in (start..60_000).step_by(32) {
        if (0..=nodes).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok()) {
            return (base, base + nodes);
        }
    }
    panic!("no free ports");
}

fn node(keys: &Path, name: &str, log: &Path) -> Proc {
    let out = std::fs::File::create(log.join(format!("{name}.log"))).unwrap();
    Proc(
        palisade()
            .args(["node", "--config"])
            .arg(keys.join(format!("{name}.toml")))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_process_loses_no_acknowledged_write() {
    kill_the_primary_process(false).await;
}

/// The same through the firewall: 4 filter processes between agreement and execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_firewall_killing_the_primary_process_loses_no_acknowledged_write() {
    kill_the_primary_process(true).await;
}

async fn kill_the_primary_process(firewall: bool) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let (base, nfs_port) = free_ports(if firewall { 12 } else { 8 });
    let mut keygen = palisade();
    keygen.args(["keygen", "--out"]).arg(&keys).args([
        "--base-port",
        &base.to_string(),
        "--nfs-port",
        &nfs_port.to_string(),
    ]);
    if firewall {
        keygen.args(["--h", "1"]);
    }
    let status = keygen.stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    let mut names = vec!["execution-0", "execution-1", "execution-2"];
    if firewall {
        names.extend(["filter-0", "filter-1", "filter-2", "filter-3"]);
    }
    names.extend([
        "agreement-0",
        "agreement-1",
        "agreement-2",
        "agreement-3",
        "gateway-0",
    ]);
    let mut procs = Vec::new();
    for name in names {
        procs.push((name, node(&keys, name, dir.path())));
    }
    let primary = procs.iter().position(|(n, _)| *n == "agreement-0").unwrap();
    let ep = Endpoint::from_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, nfs_port)));
    // Wait for the gateway to serve.
    let mut up = false;
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", nfs_port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "gateway never listened");

    let mut nfs = Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    let work = nfs.mkdir(&root, b"work").await.unwrap();
    let mut acked = Vec::new();
    for i in 0..60u64 {
        if i == 20 {
            // SIGKILL the primary of view 0 (agreement replica 0).
            let (name, p) = &mut procs[primary];
            assert_eq!(*name, "agreement-0");
            p.0.kill().unwrap();
            p.0.wait().unwrap();
        }
        let name = format!("f{i}");
        let data = pattern(i, 500 + (i as usize * 7919) % 150_000);
        let f = nfs.new_file(&work, name.as_bytes()).await;
        nfs.write_all(&f, &data, 64 * 1024).await;
        acked.push((name, data));
    }
    drop(nfs);
    let mut nfs = Nfs::connect(&ep).await;
    for (name, data) in &acked {
        let f = nfs.lookup(&work, name.as_bytes()).await.unwrap();
        assert_eq!(&nfs.read_all(&f, 1 << 20).await, data, "{name}");
    }
    // The surviving replicas moved to a new view (their logs say so). The event's own
    // fields follow its message; the span before it names the view the step began in.
    drop(procs);
    let log = std::fs::read_to_string(dir.path().join("agreement-1.log")).unwrap();
    assert!(
        log.lines().any(|l| l
            .split_once("entered a new view")
            .is_some_and(|(_, fields)| fields.contains(" view=") && !fields.contains(" view=0 "))),
        "no view change in agreement-1's log:\n{log}"
    );
}
