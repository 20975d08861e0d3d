//! A quick throughput measurement of the durable file system (not a test: no timed
//! assertions). Run: `cargo run -p palisade-execution --release --example write_bench`.
//! Applies 256 sequential 1 MiB WRITEs, one per batch (so one fsync each), then reads,
//! then 1000 CREATEs one per batch and 1000 in one batch, and times the digest.
// A measurement tool: any failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::Batches;
use palisade_execution::RedbStore;
use palisade_wire::fs::*;
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let mut b = Batches::new(RedbStore::open(dir.path()).unwrap());
    let id = b.create("big");
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut times = Vec::new();
    let t0 = Instant::now();
    for i in 0..256u64 {
        let t = Instant::now();
        let r = b.run(vec![FsOp::Write {
            id,
            offset: i << 20,
            data: data.clone(),
        }]);
        assert!(r[0].is_ok());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = t0.elapsed().as_secs_f64();
    let first: f64 = times[..32].iter().sum::<f64>() / 32.0;
    let last: f64 = times[224..].iter().sum::<f64>() / 32.0;
    println!("mean of first 32 writes {first:.2} ms, of last 32 {last:.2} ms");
    let buckets: Vec<String> = times
        .chunks(32)
        .map(|c| format!("{:.1}", c.iter().sum::<f64>() / 32.0))
        .collect();
    println!("per-32 means: {}", buckets.join(" "));
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("256 x 1 MiB writes: total {:.2} s, {:.0} MiB/s, per write median {:.2} ms, first-quartile {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        total, 256.0 / total, times[128], times[64], times[230], times[255]);
    let t = Instant::now();
    let d = b.fs.digest();
    println!(
        "digest after: {:.1} ms ({:02x?})",
        t.elapsed().as_secs_f64() * 1e3,
        &d.0[..4]
    );
    let t = Instant::now();
    for i in 0..256u64 {
        let r = b.run(vec![FsOp::Read {
            id,
            offset: i << 20,
            count: 1 << 20,
        }]);
        assert!(r[0].is_ok());
    }
    println!(
        "256 x 1 MiB reads (one per batch): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for i in 0..1000 {
        b.run(vec![FsOp::Create {
            dir: ROOT_ID,
            name: format!("f{i}").into_bytes(),
            how: CreateHow::Guarded(SetAttr::default()),
        }]);
    }
    println!(
        "1000 creates, one per batch: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let ops: Vec<FsOp> = (0..1000)
        .map(|i| FsOp::Create {
            dir: ROOT_ID,
            name: format!("g{i}").into_bytes(),
            how: CreateHow::Guarded(SetAttr::default()),
        })
        .collect();
    b.run(ops);
    println!(
        "1000 creates in one batch: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let d = b.fs.digest();
    println!(
        "digest after creates: {:.1} ms ({:02x?})",
        t.elapsed().as_secs_f64() * 1e3,
        &d.0[..4]
    );
}
