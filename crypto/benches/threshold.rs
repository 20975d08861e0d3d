//! Costs of the firewall's cryptography: the threshold-signature operations (sign a share,
//! verify a share, combine g+1, verify the combination) for every compiled-in scheme side
//! by side, plus the firewall's per-reply critical path (one combination at the bottom
//! row, then three checks of the combined signature: bottom row, top row, gateway);
//! sealing and opening request and reply bodies, and the Merkle root of a batch.
//!
//! `cargo bench -p palisade-crypto --bench threshold -- threshold` (BlsMinSig and blsttc)
//! or add `--features threshold-crypto` (all three schemes). Each group is one operation
//! with one entry per scheme, so one run compares them under the same load. Kept quick:
//! small samples and short measurement windows; report medians from one run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use palisade_crypto::{
    deal_from_seed, leaf_hash, root, signer_from_bytes, verifier_from_bytes, BodyKey, SchemeKind,
    ThresholdSigner, ThresholdVerifier,
};
use palisade_wire::agreement::Digest;
use palisade_wire::firewall::{reply_root_message, ReplyEntry, SignatureShare, ThresholdSignature};

const G: usize = 1;

fn schemes() -> Vec<(SchemeKind, &'static str)> {
    let mut s = vec![
        (SchemeKind::BlsMinSig, "bls_min_sig"),
        (SchemeKind::Blst, "blsttc"),
    ];
    if cfg!(feature = "threshold-crypto") {
        s.push((SchemeKind::ThresholdCrypto, "threshold_crypto"));
    }
    s
}

/// One scheme's dealt keys, g+1 signers, their shares on the message and the combination.
struct Fixture {
    name: &'static str,
    verifier: Arc<dyn ThresholdVerifier>,
    signers: Vec<Arc<dyn ThresholdSigner>>,
    shares: Vec<(u32, SignatureShare)>,
    combined: ThresholdSignature,
}

fn fixture(kind: SchemeKind, name: &'static str, message: &[u8]) -> Fixture {
    let keys = deal_from_seed(kind, G, 2 * G + 1, [3; 32]).unwrap();
    let verifier = verifier_from_bytes(&keys.public).unwrap();
    let signers: Vec<_> = (0..=G as u32)
        .map(|i| signer_from_bytes(&keys.public, i, &keys.shares[i as usize]).unwrap())
        .collect();
    let shares: Vec<_> = signers
        .iter()
        .map(|s| (s.index(), s.sign_share(message)))
        .collect();
    let combined = verifier.combine(&shares).unwrap();
    assert!(verifier.verify(message, &combined));
    Fixture {
        name,
        verifier,
        signers,
        shares,
        combined,
    }
}

fn quick<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    group
}

fn threshold(c: &mut Criterion) {
    let message = reply_root_message(17, &Digest([0x5a; 32]));
    let fixtures: Vec<Fixture> = schemes()
        .into_iter()
        .map(|(kind, name)| fixture(kind, name, &message))
        .collect();

    let mut group = quick(c, "threshold/sign_share");
    for f in &fixtures {
        group.bench_function(f.name, |b| {
            b.iter(|| f.signers[0].sign_share(black_box(&message)))
        });
    }
    group.finish();

    let mut group = quick(c, "threshold/verify_share");
    for f in &fixtures {
        group.bench_function(f.name, |b| {
            b.iter(|| {
                assert!(f
                    .verifier
                    .verify_share(0, black_box(&message), &f.shares[0].1))
            })
        });
    }
    group.finish();

    let mut group = quick(c, &format!("threshold/combine_{}_shares", G + 1));
    for f in &fixtures {
        group.bench_function(f.name, |b| {
            b.iter(|| f.verifier.combine(black_box(&f.shares)).unwrap())
        });
    }
    group.finish();

    let mut group = quick(c, "threshold/verify_combined");
    for f in &fixtures {
        group.bench_function(f.name, |b| {
            b.iter(|| assert!(f.verifier.verify(black_box(&message), &f.combined)))
        });
    }
    group.finish();

    // SOSP 2003 §4: the bottom row combines g+1 shares and checks the result, the top row
    // and the gateway check it again (each once per batch, through `VerifiedRoots`).
    // A bottom filter prepares a root's message when its first share comes
    // (`ThresholdVerifier::prepare`): what is left when the g-th more arrives, and what
    // preparing costs (a fresh message each time; a no-op for schemes that keep none).
    let mut group = quick(c, "threshold/verify_combined_prepared");
    for f in &fixtures {
        f.verifier.prepare(&message);
        group.bench_function(f.name, |b| {
            b.iter(|| assert!(f.verifier.verify(black_box(&message), &f.combined)))
        });
    }
    group.finish();
    let mut group = quick(c, "threshold/prepare");
    for f in &fixtures {
        let mut n = 0u64;
        group.bench_function(f.name, |b| {
            b.iter(|| {
                n += 1;
                f.verifier
                    .prepare(black_box(&reply_root_message(n, &Digest([0x5a; 32]))))
            })
        });
    }
    group.finish();

    let mut group = quick(c, "threshold/reply_path_combine_and_3_verifies");
    for f in &fixtures {
        group.bench_function(f.name, |b| {
            b.iter(|| {
                let sig = f.verifier.combine(black_box(&f.shares)).unwrap();
                for _ in 0..3 {
                    assert!(f.verifier.verify(black_box(&message), &sig));
                }
            })
        });
    }
    group.finish();
}

fn seal(c: &mut Criterion) {
    use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
    let key = BodyKey::from_bytes([7; 32]).unwrap();
    // The RustCrypto implementation of the same AEAD, which sealed bodies before AWS-LC's:
    // measured beside it on the same bodies.
    let rustcrypto = aes_gcm_siv::Aes256GcmSiv::new(&[7u8; 32].into());
    let nonce = aes_gcm_siv::Nonce::from([1u8; 12]);
    let mut rng = rand::rng();
    let mut group = quick(c, "seal");
    for (size, label) in [
        (128usize, "128B"),
        (4 * 1024, "4KiB"),
        (1024 * 1024, "1MiB"),
    ] {
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
        group.bench_function(format!("rustcrypto_seal_{label}"), |b| {
            b.iter(|| {
                let mut out = black_box(&body).clone();
                let tag = rustcrypto
                    .encrypt_in_place_detached(&nonce, b"aad", &mut out)
                    .unwrap();
                out.extend_from_slice(&tag);
                out
            })
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
    let mut group = quick(c, "merkle");
    group.bench_function("root_of_64_leaves", |b| b.iter(|| root(black_box(&leaves))));
    group.bench_function("leaf_hashes_and_root_of_64_replies", |b| {
        b.iter(|| palisade_crypto::reply_root(black_box(&entries)))
    });
    group.finish();
}

criterion_group!(benches, threshold, seal, merkle);
criterion_main!(benches);
