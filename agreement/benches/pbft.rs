//! PBFT without I/O: four replicas in one thread (the in-crate FIFO test cluster) ordering
//! 1,024 signed 128-byte requests, by batch size. Shows what the agreement core costs per
//! request (signing and verifying dominate) with no network in the way.
//!
//! `cargo bench -p palisade-agreement --bench pbft`

#[path = "../tests/common/mod.rs"]
mod common;

use common::{request, Cluster};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const REQUESTS: u64 = 1024;

fn order_requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("pbft_4_replicas_order_1024_requests");
    group.throughput(Throughput::Elements(REQUESTS));
    group.sample_size(10);
    for batch in [1usize, 16, 64] {
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_batched(
                || {
                    let cluster = Cluster::with(1, |cfg| {
                        cfg.max_batch_requests = batch;
                        cfg.checkpoint_interval = 1024;
                        cfg.window = 4096;
                        cfg.client_window = 100_000;
                        cfg.max_pending_requests = 100_000;
                    });
                    let requests: Vec<_> =
                        (1..=REQUESTS).map(|i| request(0, i, &[0u8; 128])).collect();
                    (cluster, requests)
                },
                |(mut cluster, requests)| {
                    for r in requests {
                        cluster.submit(r);
                    }
                    cluster.settle();
                    assert_eq!(cluster.delivered_requests(3).len() as u64, REQUESTS);
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, order_requests);
criterion_main!(benches);
