//! One filter without I/O processing batches (SOSP 2003 §4): real ed25519 ORDER
//! certificates (2f+1 commits), a real BLS threshold key set (g = 1, three replicas).
//!
//! - `bottom_row`: a bottom filter takes an ORDER of 64 requests from above (certificate
//!   checked, forwarded down), the g+1 reply shares of two replicas (combined, one
//!   signature verified) and one replica's 64 reply bodies (each checked under the
//!   certified Merkle root, RFC 6962), and sends 64 certified replies up.
//! - `top_row`: a top filter takes the same ORDER from an agreement replica and the 64
//!   certified replies from below (audit path checked per reply, the signature once per
//!   batch) and sends them up.
//!
//! Inputs are built before timing; only `Filter::step` is measured.
//!
//! `cargo bench -p palisade-firewall --bench filter`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_firewall::{FilterInput, FilterOutput};
use palisade_wire::envelope::Envelope;
use palisade_wire::firewall::FirewallMessage;
use support::*;

const BATCHES: u64 = 8;
const PER_BATCH: u64 = 64;

fn batches() -> Vec<palisade_wire::agreement::OrderedBatch> {
    (1..=BATCHES)
        .map(|s| {
            let ids: Vec<(u64, u64)> = (0..PER_BATCH).map(|i| (i % 4, s * 1000 + i)).collect();
            batch(s, &ids)
        })
        .collect()
}

fn bottom_inputs(cluster: &Cluster) -> Vec<FilterInput> {
    let mut inputs = Vec::new();
    for b in batches() {
        let es = entries(&b);
        inputs.push(FilterInput::FromAbove {
            from: 0,
            envelope: order_envelope(&b, certificate_by(&b, &[0, 1, 2])),
        });
        inputs.push(from_below(0, reply_share(cluster, 0, b.sequence, &es)));
        inputs.push(from_below(1, reply_share(cluster, 1, b.sequence, &es)));
        for e in &es {
            inputs.push(from_below(0, reply_body(0, b.sequence, e)));
        }
    }
    inputs
}

fn top_inputs(cluster: &Cluster) -> Vec<FilterInput> {
    let mut inputs = Vec::new();
    for b in batches() {
        inputs.push(order_from(0, &b));
        for reply in certified(cluster, b.sequence, &entries(&b)) {
            inputs.push(FilterInput::FromBelow {
                from: 0,
                envelope: Envelope::Firewall(FirewallMessage::CertifiedReply(reply)),
            });
        }
    }
    inputs
}

fn certified_up(out: &[FilterOutput]) -> usize {
    replies_up(out).len()
}

fn filters(c: &mut Criterion) {
    let cluster = cluster();
    let mut g = c.benchmark_group("filter");
    g.throughput(Throughput::Elements(BATCHES * PER_BATCH));
    g.sample_size(10);
    g.bench_function("bottom_row_8_batches_of_64", |b| {
        b.iter_batched(
            || (bottom(&cluster), bottom_inputs(&cluster)),
            |(mut f, inputs)| {
                let mut up = 0;
                for i in inputs {
                    up += certified_up(&f.step(i));
                }
                assert_eq!(up as u64, BATCHES * PER_BATCH);
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("top_row_8_batches_of_64", |b| {
        b.iter_batched(
            || (top(&cluster), top_inputs(&cluster)),
            |(mut f, inputs)| {
                let mut up = 0;
                for i in inputs {
                    up += certified_up(&f.step(i));
                }
                assert_eq!(up as u64, BATCHES * PER_BATCH);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
