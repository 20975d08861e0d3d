//! Ed25519 verification as the protocol does it: one signature alone (RFC 8032 strict,
//! as before, against ZIP 215), an ORDER certificate's three commit signatures by three
//! replicas, and sixteen requests signed by one gateway, each checked one by one against
//! one batch check (`palisade_wire::signature`); and signing, ed25519-dalek against the
//! AWS-LC signer every node uses (`palisade_wire::signature::sign`).
//!
//! `cargo bench -p palisade-wire --bench signatures`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use palisade_wire::signature::{sign, verify_one, SignatureBatch};

/// `count` signatures over distinct 59-byte messages (the size of the signing bytes of a
/// request: domain tag, separator and BLAKE3 digest), by `signers` keys in turn.
fn signed(count: usize, signers: usize) -> Vec<(VerifyingKey, Vec<u8>, [u8; 64])> {
    (0..count)
        .map(|i| {
            let key = SigningKey::from_bytes(&[(i % signers) as u8 + 1; 32]);
            let message = vec![i as u8; 59];
            let signature = key.sign(&message).to_bytes();
            (key.verifying_key(), message, signature)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let one = signed(1, 1);
    let (key, message, signature) = &one[0];
    let mut g = c.benchmark_group("ed25519");
    let signer = SigningKey::from_bytes(&[1; 32]);
    g.bench_function("sign/dalek", |b| b.iter(|| signer.sign(message).to_bytes()));
    g.bench_function("sign/aws-lc", |b| b.iter(|| sign(&signer, message)));
    g.bench_function("one/strict-rfc8032", |b| {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        b.iter(|| key.verify_strict(message, &sig).unwrap())
    });
    g.bench_function("one/zip215", |b| {
        b.iter(|| assert!(verify_one(key, message, signature)))
    });
    for (name, count, signers) in [("certificate-3", 3, 3), ("requests-16", 16, 1)] {
        let items = signed(count, signers);
        g.bench_function(format!("{name}/one-by-one"), |b| {
            b.iter(|| {
                for (k, m, s) in &items {
                    assert!(verify_one(k, m, s));
                }
            })
        });
        g.bench_function(format!("{name}/batch"), |b| {
            b.iter(|| {
                let mut batch = SignatureBatch::new();
                for (k, m, s) in &items {
                    batch.push(k, m, s);
                }
                assert!(batch.failures().is_empty());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
