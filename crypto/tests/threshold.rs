#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Threshold signatures: round trips, refusals, and uniqueness across share subsets, for
//! every compiled-in scheme.

use palisade_crypto::*;
use palisade_wire::firewall::{SignatureShare, ThresholdSignature};
use std::sync::Arc;

fn schemes() -> Vec<SchemeKind> {
    let mut s = vec![SchemeKind::Blst, SchemeKind::BlsMinSig];
    if cfg!(feature = "threshold-crypto") {
        s.push(SchemeKind::ThresholdCrypto);
    }
    s
}

struct Cluster {
    verifier: Arc<dyn ThresholdVerifier>,
    signers: Vec<Arc<dyn ThresholdSigner>>,
}

fn cluster(kind: SchemeKind, g: usize, seed: u8) -> Cluster {
    let parties = 2 * g + 1;
    let keys = deal_from_seed(kind, g, parties, [seed; 32]).unwrap();
    assert_eq!(keys.shares.len(), parties);
    let verifier = verifier_from_bytes(&keys.public).unwrap();
    let signers = keys
        .shares
        .iter()
        .enumerate()
        .map(|(i, s)| signer_from_bytes(&keys.public, i as u32, s).unwrap())
        .collect();
    Cluster { verifier, signers }
}

fn shares(c: &Cluster, who: &[u32], msg: &[u8]) -> Vec<(u32, SignatureShare)> {
    who.iter()
        .map(|&i| (i, c.signers[i as usize].sign_share(msg)))
        .collect()
}

/// All subsets of `0..n` of size `k`.
fn subsets(n: u32, k: usize) -> Vec<Vec<u32>> {
    (0u32..(1 << n))
        .filter(|m| m.count_ones() as usize == k)
        .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
        .collect()
}

#[test]
fn g_plus_one_of_2g_plus_one_combine_and_verify() {
    for kind in schemes() {
        for g in [1usize, 2] {
            let c = cluster(kind, g, 7);
            assert_eq!(c.verifier.threshold(), g);
            assert_eq!(c.verifier.parties(), 2 * g + 1);
            let msg = b"reply root of batch 17";
            for (i, s) in c.signers.iter().enumerate() {
                assert_eq!(s.index(), i as u32);
                let share = s.sign_share(msg);
                assert!(
                    c.verifier.verify_share(i as u32, msg, &share),
                    "{kind:?} g={g}"
                );
            }
            let who: Vec<u32> = (0..=g as u32).collect();
            let sig = c.verifier.combine(&shares(&c, &who, msg)).unwrap();
            assert!(c.verifier.verify(msg, &sig), "{kind:?} g={g}");
            assert!(!c.verifier.verify(b"another message", &sig));
        }
    }
}

#[test]
fn signatures_are_unique_whichever_subset_combined_them() {
    for kind in schemes() {
        for g in [1usize, 2] {
            let c = cluster(kind, g, 9);
            let msg = b"stable checkpoint 64";
            let n = (2 * g + 1) as u32;
            let mut seen: Option<ThresholdSignature> = None;
            // Every subset of size g+1, and the full set (only its first g+1 count).
            let mut sets = subsets(n, g + 1);
            sets.push((0..n).rev().collect());
            for who in sets {
                let sig = c.verifier.combine(&shares(&c, &who, msg)).unwrap();
                assert!(c.verifier.verify(msg, &sig));
                match &seen {
                    None => seen = Some(sig),
                    Some(first) => assert_eq!(first, &sig, "{kind:?} g={g} subset {who:?}"),
                }
            }
        }
    }
}

#[test]
fn wrong_message_wrong_signer_and_tampering_fail() {
    for kind in schemes() {
        let c = cluster(kind, 1, 3);
        let msg = b"m";
        let share = c.signers[0].sign_share(msg);
        assert!(!c.verifier.verify_share(0, b"other", &share));
        assert!(
            !c.verifier.verify_share(1, msg, &share),
            "share credited to another signer"
        );
        assert!(!c.verifier.verify_share(99, msg, &share));
        let mut bad = share.clone();
        bad.0[10] ^= 1;
        assert!(!c.verifier.verify_share(0, msg, &bad));
        assert!(!c
            .verifier
            .verify_share(0, msg, &SignatureShare(vec![1, 2, 3])));

        // A wrong share combines (combine does not verify) but the result fails.
        let mut s = shares(&c, &[0, 1], msg);
        s[1].1 = c.signers[1].sign_share(b"other");
        let sig = c.verifier.combine(&s).unwrap();
        assert!(!c.verifier.verify(msg, &sig));

        let good = c.verifier.combine(&shares(&c, &[0, 2], msg)).unwrap();
        assert!(c.verifier.verify(msg, &good));
        let mut tampered = good.clone();
        tampered.0[5] ^= 0x40;
        assert!(!c.verifier.verify(msg, &tampered));
        assert!(!c.verifier.verify(msg, &ThresholdSignature(vec![])));
        assert!(!c.verifier.verify(msg, &ThresholdSignature(vec![0xff; 96])));
        // A share is not a combined signature.
        assert!(!c.verifier.verify(msg, &ThresholdSignature(share.0.clone())));
    }
}

#[test]
fn combine_refuses_bad_input() {
    for kind in schemes() {
        let c = cluster(kind, 2, 4);
        let msg = b"m";
        let too_few = shares(&c, &[0, 1], msg);
        assert!(matches!(
            c.verifier.combine(&too_few),
            Err(CryptoError::NotEnoughShares { got: 2, need: 3 })
        ));
        let dup = shares(&c, &[0, 1, 1], msg);
        assert!(matches!(
            c.verifier.combine(&dup),
            Err(CryptoError::DuplicateSigner(1))
        ));
        let mut unknown = shares(&c, &[0, 1, 2], msg);
        unknown[2].0 = 5;
        assert!(matches!(
            c.verifier.combine(&unknown),
            Err(CryptoError::UnknownSigner(5))
        ));
        let mut garbage = shares(&c, &[0, 1, 2], msg);
        garbage[1].1 = SignatureShare(vec![0xab; 96]);
        assert!(matches!(
            c.verifier.combine(&garbage),
            Err(CryptoError::MalformedShare(1))
        ));
    }
}

#[test]
fn dealing_is_deterministic_from_a_seed_and_fresh_from_an_rng() {
    for kind in schemes() {
        let a = deal_from_seed(kind, 1, 3, [1; 32]).unwrap();
        let b = deal_from_seed(kind, 1, 3, [1; 32]).unwrap();
        let other = deal_from_seed(kind, 1, 3, [2; 32]).unwrap();
        assert_eq!(a.public, b.public);
        assert_eq!(a.shares, b.shares);
        assert_ne!(a.public, other.public);
        let r1 = deal(kind, 1, 3, &mut rand::rng()).unwrap();
        let r2 = deal(kind, 1, 3, &mut rand::rng()).unwrap();
        assert_ne!(r1.public, r2.public);
        assert_eq!(scheme_of(&r1.public).unwrap(), kind);
        let dbg = format!("{r1:?}");
        assert!(!dbg.contains(&format!("{:?}", r1.shares[0])));
    }
}

#[test]
fn malformed_and_mismatched_keys_are_refused() {
    for kind in schemes() {
        malformed_and_mismatched_keys_are_refused_for(kind);
    }
}

fn malformed_and_mismatched_keys_are_refused_for(kind: SchemeKind) {
    let keys = deal_from_seed(kind, 1, 3, [5; 32]).unwrap();
    let other = deal_from_seed(kind, 1, 3, [6; 32]).unwrap();
    assert!(verifier_from_bytes(&[]).is_err());
    assert!(matches!(
        verifier_from_bytes(&[9, 0, 0]),
        Err(CryptoError::UnknownScheme(9))
    ));
    // Every truncation, and one extra byte, is refused.
    for len in 0..keys.public.len() {
        assert!(
            verifier_from_bytes(&keys.public[..len]).is_err(),
            "{kind:?} len {len}"
        );
    }
    let mut long = keys.public.clone();
    long.push(0);
    assert!(verifier_from_bytes(&long).is_err());
    // Parameters: g >= parties, zero parties, too many parties, g differing from the
    // commitment's degree.
    for (g, p) in [(3u32, 3u32), (0, 0), (1, 100_000), (2, 5), (0, 3)] {
        let mut bad = keys.public.clone();
        bad[1..5].copy_from_slice(&g.to_le_bytes());
        bad[5..9].copy_from_slice(&p.to_le_bytes());
        assert!(
            verifier_from_bytes(&bad).is_err(),
            "{kind:?} g={g} parties={p}"
        );
    }
    // A point that is not on the curve (the last G1 point of the commitment).
    let mut off_curve = keys.public.clone();
    let n = off_curve.len();
    for b in &mut off_curve[n - 48..n - 30] {
        *b = 0x5a;
    }
    assert!(verifier_from_bytes(&off_curve).is_err(), "{kind:?}");
    assert!(deal_from_seed(kind, 3, 3, [0; 32]).is_err());
    assert!(deal_from_seed(kind, 1, MAX_PARTIES + 1, [0; 32]).is_err());

    // Shares: wrong index, another dealing, truncated, wrong scheme tag.
    assert!(signer_from_bytes(&keys.public, 1, &keys.shares[0]).is_err());
    assert!(matches!(
        signer_from_bytes(&keys.public, 0, &other.shares[0]),
        Err(CryptoError::KeyMismatch(_))
    ));
    assert!(signer_from_bytes(&keys.public, 0, &keys.shares[0][..20]).is_err());
    assert!(signer_from_bytes(&keys.public, 0, &[]).is_err());
    let mut wrong_tag = keys.shares[0].clone();
    wrong_tag[0] = if kind == SchemeKind::Blst { 3 } else { 1 };
    assert!(signer_from_bytes(&keys.public, 0, &wrong_tag).is_err());
    assert!(signer_from_bytes(&keys.public, 7, &keys.shares[0]).is_err());
    let mut long_share = keys.shares[0].clone();
    long_share.push(0);
    assert!(signer_from_bytes(&keys.public, 0, &long_share).is_err());
    let s = signer_from_bytes(&keys.public, 2, &keys.shares[2]).unwrap();
    let dbg = format!("{s:?}");
    assert!(dbg.contains("index: 2"), "{dbg}");
}

/// Hostile key bytes never panic, whatever they are.
#[test]
fn random_key_bytes_never_panic() {
    use proptest::prelude::*;
    for kind in [SchemeKind::Blst, SchemeKind::BlsMinSig] {
        let keys = deal_from_seed(kind, 1, 3, [8; 32]).unwrap();
        proptest!(ProptestConfig::with_cases(256), |(bytes in proptest::collection::vec(any::<u8>(), 0..200), flip in 0usize..400)| {
            let _ = verifier_from_bytes(&bytes);
            let _ = signer_from_bytes(&keys.public, 0, &bytes);
            let _ = signer_from_bytes(&bytes, 0, &keys.shares[0]);
            let mut p = keys.public.clone();
            let i = flip % p.len();
            p[i] ^= 0x81;
            if let Ok(v) = verifier_from_bytes(&p) {
                let _ = v.verify(b"m", &ThresholdSignature(bytes.clone()));
            }
        });
    }
}

#[test]
fn the_default_scheme_is_min_sig_and_deals() {
    assert_eq!(DEFAULT_SCHEME, SchemeKind::BlsMinSig);
    assert_eq!(SchemeKind::default(), DEFAULT_SCHEME);
    let keys = deal(SchemeKind::default(), 1, 3, &mut rand::rng()).unwrap();
    assert_eq!(scheme_of(&keys.public).unwrap(), DEFAULT_SCHEME);
}

#[cfg(not(feature = "threshold-crypto"))]
#[test]
fn threshold_crypto_needs_its_feature() {
    assert!(matches!(
        deal_from_seed(SchemeKind::ThresholdCrypto, 1, 3, [0; 32]),
        Err(CryptoError::SchemeUnavailable(SchemeKind::ThresholdCrypto))
    ));
    let mut public = deal_from_seed(SchemeKind::Blst, 1, 3, [0; 32])
        .unwrap()
        .public;
    public[0] = 2;
    assert!(matches!(
        verifier_from_bytes(&public),
        Err(CryptoError::SchemeUnavailable(SchemeKind::ThresholdCrypto))
    ));
}

/// The BLS12-381 base field modulus p, big-endian.
const P: [u8; 48] = [
    0x1a, 0x01, 0x11, 0xea, 0x39, 0x7f, 0xe6, 0x9a, 0x4b, 0x1b, 0xa7, 0xb6, 0x43, 0x4b, 0xac, 0xd7,
    0x64, 0x77, 0x4b, 0x84, 0xf3, 0x85, 0x12, 0xbf, 0x67, 0x30, 0xd2, 0xa0, 0xf6, 0xb0, 0xf6, 0x24,
    0x1e, 0xab, 0xff, 0xfe, 0xb1, 0x53, 0xff, 0xff, 0xb9, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xab,
];

/// `x + p` over 48 big-endian bytes (x < p, so no overflow past 2^382).
fn plus_p(x: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 48];
    let mut carry = 0u16;
    for i in (0..48).rev() {
        let s = x[i] as u16 + P[i] as u16 + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// A compressed G2 point is x = (c1, c0), 48 bytes each, c1 first with the flag bits.
/// Writing c0 + p instead of c0 names the same point to a decoder that reduces mod p; such
/// a second byte form would let a filter change a certified reply's bytes undetected, so
/// it must be refused — as a share and as a combined signature. (Schemes with signatures
/// in G2; `BlsMinSig`'s G1 encodings are tested in `tests/minsig.rs`.)
#[test]
fn non_canonical_point_encodings_are_refused() {
    for kind in schemes()
        .into_iter()
        .filter(|k| *k != SchemeKind::BlsMinSig)
    {
        let c = cluster(kind, 1, 12);
        let msg = b"canonical";
        let share = c.signers[0].sign_share(msg);
        let sig = c.verifier.combine(&shares(&c, &[0, 1], msg)).unwrap();
        assert!(c.verifier.verify(msg, &sig));
        for bytes in [&share.0, &sig.0] {
            let mut alt = bytes[..48].to_vec();
            alt.extend_from_slice(&plus_p(&bytes[48..]));
            assert_ne!(&alt, bytes);
            assert!(!c
                .verifier
                .verify_share(0, msg, &SignatureShare(alt.clone())));
            assert!(!c.verifier.verify(msg, &ThresholdSignature(alt.clone())));
            let mut s = shares(&c, &[0, 1], msg);
            s[0].1 = SignatureShare(alt);
            assert!(matches!(
                c.verifier.combine(&s),
                Err(CryptoError::MalformedShare(0))
            ));
        }
    }
}
