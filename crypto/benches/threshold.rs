//! Costs of the firewall's cryptography: the threshold-signature operations (sign a share,
//! verify a share, combine g+1, verify the combination) for each compiled-in scheme, sealing
//! and opening request and reply bodies, and the Merkle root of a batch.
//!
//! `cargo bench -p palisade-crypto` (blst only) or
//! `cargo bench -p palisade-crypto --features threshold-crypto` (both schemes). Kept quick:
//! small samples and short measurement windows; report medians from one run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_crypto::{
    deal_from_seed, leaf_hash, root, signer_from_bytes, verifier_from_bytes, BodyKey, SchemeKind,
};
use palisade_wire::agreement::Digest;
use palisade_wire::firewall::{reply_root_message, ReplyEntry};

const G: usize = 1;

fn schemes() -> Vec<(SchemeKind, &'static str)> {
    let mut s = vec![(SchemeKind::Blst, "blst")];
    if cfg!(feature = "threshold-crypto") {
        s.push((SchemeKind::ThresholdCrypto, "threshold_crypto"));
    }
    s
}

fn threshold(c: &mut Criterion) {
    let message = reply_root_message(17, &Digest([0x5a; 32]));
    for (kind, name) in schemes() {
        let keys = deal_from_seed(kind, G, 2 * G + 1, [3; 32]).unwrap();
        let verifier = verifier_from_bytes(&keys.public).unwrap();
        let signers: Vec<_> = (0..=G as u32)
            .map(|i| signer_from_bytes(&keys.public, i, &keys.shares[i as usize]).unwrap())
            .collect();
        let shares: Vec<_> = signers
            .iter()
            .map(|s| (s.index(), s.sign_share(&message)))
            .collect();
        let combined = verifier.combine(&shares).unwrap();
        assert!(verifier.verify(&message, &combined));

        let mut group = c.benchmark_group(format!("threshold/{name}"));
        group.sample_size(20);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(2));
        group.bench_function("sign_share", |b| {
            b.iter(|| signers[0].sign_share(black_box(&message)))
        });
        group.bench_function("verify_share", |b| {
            b.iter(|| assert!(verifier.verify_share(0, black_box(&message), &shares[0].1)))
        });
        group.bench_function(format!("combine_{}_shares", G + 1), |b| {
            b.iter(|| verifier.combine(black_box(&shares)).unwrap())
        });
        group.bench_function("verify_combined", |b| {
            b.iter(|| assert!(verifier.verify(black_box(&message), &combined)))
        });
        group.finish();
    }
}

fn seal(c: &mut Criterion) {
    let key = BodyKey::from_bytes([7; 32]);
    let mut rng = rand::rng();
    let mut group = c.benchmark_group("seal");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    for (size, label) in [(4 * 1024usize, "4KiB"), (1024 * 1024, "1MiB")] {
        let body = vec![0xa5u8; size];
        let request = key.seal_request(1, &body, &mut rng);
        let reply = key.seal_reply(9, 1, 2, &body);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("seal_request_{label}"), |b| {
            b.iter(|| key.seal_request(1, black_box(&body), &mut rng))
        });
        group.bench_function(format!("open_request_{label}"), |b| {
            b.iter(|| key.open_request(1, black_box(&request)).unwrap())
        });
        group.bench_function(format!("seal_reply_{label}"), |b| {
            b.iter(|| key.seal_reply(9, 1, 2, black_box(&body)))
        });
        group.bench_function(format!("open_reply_{label}"), |b| {
            b.iter(|| key.open_reply(9, 1, 2, black_box(&reply)).unwrap())
        });
    }
    group.finish();
}

fn merkle(c: &mut Criterion) {
    let entries: Vec<ReplyEntry> = (0..64u64)
        .map(|i| ReplyEntry {
            client: i % 4,
            request_id: i,
            body: vec![i as u8; 128],
        })
        .collect();
    let leaves: Vec<Digest> = entries.iter().map(leaf_hash).collect();
    let mut group = c.benchmark_group("merkle");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("root_of_64_leaves", |b| b.iter(|| root(black_box(&leaves))));
    group.bench_function("leaf_hashes_and_root_of_64_replies", |b| {
        b.iter(|| palisade_crypto::reply_root(black_box(&entries)))
    });
    group.finish();
}

criterion_group!(benches, threshold, seal, merkle);
criterion_main!(benches);
