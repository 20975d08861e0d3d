//! A measurement (not a test: no timed assertions): the time of one 4 KiB FILE_SYNC
//! WRITE batch, each after a GETATTR batch as the latency workload interleaves them, on
//! the durable store with its write-ahead log (`log`) or without (`sync`: a durable
//! B-tree commit per batch). The store lives in a temporary directory under the current
//! one, so run it on the disk to measure:
//!
//! `cargo run -p palisade-execution --release --example small_write_latency -- log 2000`
//!
//! Start three at once to see what 2g+1 replicas on one machine see.
// A measurement tool: any failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::Batches;
use palisade_execution::RedbStore;
use palisade_wire::fs::*;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("log");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let dir = tempfile::tempdir_in(".").unwrap();
    let store = match mode {
        "log" => RedbStore::open(dir.path()).unwrap(),
        _ => RedbStore::open_with_log(dir.path(), 0).unwrap(),
    };
    let mut b = Batches::new(store);
    let id = b.create("f");
    b.run(vec![FsOp::Write {
        id,
        offset: 0,
        data: vec![1u8; 65536],
    }]);
    let (mut writes, mut getattrs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t = Instant::now();
        b.run(vec![FsOp::GetAttr { id }]);
        getattrs.push(t.elapsed().as_micros());
        let t = Instant::now();
        b.run(vec![FsOp::Write {
            id,
            offset: ((i % 16) * 4096) as u64,
            data: vec![i as u8; 4096],
        }]);
        writes.push(t.elapsed().as_micros());
        // Not back to back: a client waits for its reply before the next call.
        std::thread::sleep(Duration::from_micros(500));
    }
    writes.sort_unstable();
    getattrs.sort_unstable();
    println!(
        "{mode}: WRITE p50 {} p90 {} µs; GETATTR p50 {} p90 {} µs",
        writes[n / 2],
        writes[n * 9 / 10],
        getattrs[n / 2],
        getattrs[n * 9 / 10]
    );
}
