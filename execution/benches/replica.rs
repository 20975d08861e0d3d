//! One execution replica without I/O (MemStore): verify the ORDER certificate and every
//! client signature, execute, sign one reply per request. 200 batches of 64 small
//! requests (half MKDIR, half GETATTR), checkpoints every K.
//!
//! `cargo bench -p palisade-execution --bench replica`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/replica_support/mod.rs"]
mod replica_support;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_wire::fs::{FsOp, SetAttr, ROOT_ID};
use replica_support::*;

const BATCHES: u64 = 200;
const PER_BATCH: u64 = 64;

fn inputs() -> Vec<palisade_execution::replica::ReplicaInput> {
    (1..=BATCHES)
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
        .collect()
}

fn execute_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("execution_replica");
    group.throughput(Throughput::Elements(BATCHES * PER_BATCH));
    group.sample_size(10);
    group.bench_function("200_batches_of_64_small_requests", |b| {
        b.iter_batched(
            || (replica(0), inputs()),
            |(mut r, inputs)| {
                let mut out = 0;
                for input in inputs {
                    out += replies(&r.step(input)).len();
                }
                assert_eq!(out as u64, BATCHES * PER_BATCH);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, execute_batches);
criterion_main!(benches);
