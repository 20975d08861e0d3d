//! A rough throughput figure, not a test of speed (nothing is asserted about time):
//! `cargo test --release -p palisade-agreement --test throughput -- --ignored --nocapture`
//! runs 4 replicas in one thread and prints requests per second for a few batch sizes.

mod common;

use common::{request, Cluster};

#[test]
#[ignore = "prints a measurement; run by hand in release mode"]
fn throughput_by_batch_size() {
    for batch in [1usize, 16, 64] {
        let mut c = Cluster::with(1, |cfg| {
            cfg.max_batch_requests = batch;
            cfg.checkpoint_interval = 1024;
            cfg.window = 4096;
            cfg.client_window = 100_000;
            cfg.max_pending_requests = 100_000;
        });
        let n = 4096u64;
        let requests: Vec<_> = (1..=n).map(|i| request(0, i, &[0u8; 128])).collect();
        let start = std::time::Instant::now();
        for r in requests {
            c.submit(r);
        }
        c.settle();
        let elapsed = start.elapsed();
        assert_eq!(c.delivered_requests(3).len() as u64, n);
        c.check_invariants();
        eprintln!(
            "batch {batch:>3}: {n} requests, 4 replicas in one thread: {elapsed:?}, \
             {:.0} requests/s for the cluster, {:.1} µs per request per replica",
            n as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / n as f64 / 4.0
        );
    }
}
