//! Hostile bytes on the NFS port: records that claim huge sizes must be refused without
//! allocating what they claim (patched nfsserve, vendor/nfsserve/PATCHES.md §3), and the
//! gateway keeps serving. Its own test binary, so that the peak memory of this process
//! measures only this gateway.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod nfs_checks;

use std::time::Duration;

use palisade_gateway::handle::HandleCodec;
use palisade_gateway::{FsConfig, Gateway, GatewayOptions, DEFAULT_EXPORT_NAME};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Not a timing assertion: only a guard so that a server which keeps a hostile
/// connection open fails the test instead of hanging it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Peak resident memory of this process, in bytes (Linux /proc).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Sends `bytes` and waits until the server closes the connection.
async fn expect_closed(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may close before it has read everything; a write error is fine.
    let _ = s.write_all(bytes).await;
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(HANG_GUARD, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "server kept a hostile connection open");
}

fn u32be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// An NFSv3 WRITE call whose data claims `claimed` bytes but carries 16.
fn lying_write(claimed: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for v in [1u32, 0, 2, 100_003, 3, 7, 0, 0, 0, 0] {
        // xid, CALL, rpcvers 2, NFS program, v3, WRITE, AUTH_NULL cred + verf
        body.extend_from_slice(&u32be(v));
    }
    let fh = HandleCodec::new(DEFAULT_EXPORT_NAME).encode(1);
    body.extend_from_slice(&u32be(fh.len() as u32));
    body.extend_from_slice(&fh);
    body.extend_from_slice(&[0u8; 3]); // pad 17 → 20
    body.extend_from_slice(&0u64.to_be_bytes()); // offset
    body.extend_from_slice(&u32be(16)); // count
    body.extend_from_slice(&u32be(2)); // FILE_SYNC
    body.extend_from_slice(&u32be(claimed)); // opaque length
    body.extend_from_slice(&[7u8; 16]);
    let mut record = u32be(0x8000_0000 | body.len() as u32).to_vec();
    record.extend_from_slice(&body);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_claiming_gigabytes_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let options = GatewayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start(dir.path(), FsConfig::default(), &options)
        .await
        .unwrap();
    let addr = gw.local_addr();
    let before = peak_rss();

    // A fragment header claiming 2 GiB - 1 (not the last fragment), then a little data.
    let mut huge = u32be(0x7FFF_FFFF).to_vec();
    huge.extend_from_slice(&[0u8; 64]);
    expect_closed(addr, &huge).await;

    // Many fragments that together exceed the record limit.
    let mut many = Vec::new();
    for _ in 0..6 {
        many.extend_from_slice(&u32be(1 << 20));
        many.extend_from_slice(&vec![0u8; 1 << 20]);
    }
    expect_closed(addr, &many).await;

    // A small record whose WRITE data claims almost 4 GiB.
    expect_closed(addr, &lying_write(0xFFFF_FFF0)).await;

    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 256 << 20, "peak memory grew by {} MiB", grown >> 20);

    // Still serving, and nothing was written by the lying WRITE.
    let ep = nfs_checks::Endpoint::from_addr(addr);
    let mut nfs = nfs_checks::Nfs::connect(&ep).await;
    let root = nfs.root.clone();
    assert_eq!(nfs.getattr(&root).await.unwrap().fileid, 1);
    let f = nfs.new_file(&root, b"after").await;
    nfs.write(&f, 0, b"fine").await.unwrap();
    assert_eq!(nfs.read_all(&f, 100).await, b"fine");
    gw.shutdown().await.unwrap();
}
