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
use palisade_execution::{FileSystem, FsConfig, RedbStore};
use palisade_wire::fs::*;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("log");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let dir = tempfile::tempdir_in(".").unwrap();
    let store = match mode {
        "log" => RedbStore::open(dir.path()).unwrap(),
        _ => RedbStore::open_with_log(dir.path(), 0).unwrap(),
    };
    let mut fs = FileSystem::open(store, FsConfig::default()).unwrap();
    let mut seq = 0;
    let mut run = |fs: &mut FileSystem<RedbStore>, ops: Vec<FsOp>| {
        seq += 1;
        let ctx = BatchContext {
            sequence: seq,
            timestamp: Timestamp {
                seconds: seq as u32,
                nanos: 0,
            },
        };
        fs.apply_batch(&ctx, &ops).unwrap()
    };
    let r = run(
        &mut fs,
        vec![FsOp::Create {
            dir: ROOT_ID,
            name: b"f".to_vec(),
            how: CreateHow::Guarded(SetAttr::default()),
        }],
    );
    let Ok(FsReply::Created { id, .. }) = &r[0] else {
        panic!()
    };
    let id = *id;
    run(
        &mut fs,
        vec![FsOp::Write {
            id,
            offset: 0,
            data: vec![1u8; 65536],
        }],
    );
    let mut w = Vec::new();
    let mut g = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        run(&mut fs, vec![FsOp::GetAttr { id }]);
        g.push(t.elapsed().as_micros() as u64);
        let t = Instant::now();
        run(
            &mut fs,
            vec![FsOp::Write {
                id,
                offset: ((i % 16) * 4096) as u64,
                data: vec![i as u8; 4096],
            }],
        );
        w.push(t.elapsed().as_micros() as u64);
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    w.sort();
    g.sort();
    println!(
        "{mode}: WRITE p50 {} p90 {} µs; GETATTR p50 {} p90 {} µs",
        w[n / 2],
        w[n * 9 / 10],
        g[n / 2],
        g[n * 9 / 10]
    );
}
