//! A measurement, not a test (ignored by default; no timed assertion): how many small
//! requests one execution replica verifies, executes and answers per second.
//! Run: `cargo test --release -p palisade-execution --test replica_throughput -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replica_support;

use std::time::Instant;

use palisade_wire::fs::{FsOp, SetAttr, ROOT_ID};
use replica_support::*;

#[test]
#[ignore]
fn small_requests_per_second() {
    const BATCHES: u64 = 200;
    const PER_BATCH: u64 = 64;
    let inputs: Vec<_> = (1..=BATCHES)
        .map(|s| {
            let reqs = (0..PER_BATCH)
                .map(|i| {
                    let id = (s - 1) * PER_BATCH + i + 1;
                    let op = if i % 2 == 0 {
                        FsOp::Mkdir {
                            dir: ROOT_ID,
                            name: format!("d{id}").into_bytes(),
                            attr: SetAttr::default(),
                        }
                    } else {
                        FsOp::GetAttr { id: ROOT_ID }
                    };
                    request(i % 2, id, &op)
                })
                .collect();
            order(s, reqs)
        })
        .collect();
    let mut r = replica(0);
    let start = Instant::now();
    let mut replies_out = 0;
    for input in inputs {
        replies_out += replies(&r.step(input)).len();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(replies_out as u64, BATCHES * PER_BATCH);
    println!(
        "{} requests in {:.3} s: {:.0} requests/s (batches of {PER_BATCH}, K = {K})",
        replies_out,
        secs,
        replies_out as f64 / secs
    );
}
