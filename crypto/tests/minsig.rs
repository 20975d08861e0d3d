#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! `SchemeKind::BlsMinSig` specifics: a combined signature is the plain min-sig BLS
//! signature of the master secret (checked with `blst::min_sig` itself), and the G1/G2
//! encodings that must be refused — non-canonical, identity, outside the subgroup — as
//! shares, signatures and key points. The round trips, refusals and uniqueness across
//! subsets shared by all schemes are in `tests/threshold.rs`.

use blstrs::G1Projective;
use blstrs::{G1Affine, G2Affine, Scalar};
use ff::Field;
use group::prime::PrimeCurveAffine;
use group::Curve;
use palisade_crypto::*;
use palisade_wire::firewall::{SignatureShare, ThresholdSignature};
use std::sync::Arc;

const KIND: SchemeKind = SchemeKind::BlsMinSig;

struct Cluster {
    keys: DealtKeys,
    verifier: Arc<dyn ThresholdVerifier>,
    signers: Vec<Arc<dyn ThresholdSigner>>,
}

fn cluster(g: usize, seed: u8) -> Cluster {
    let keys = deal_from_seed(KIND, g, 2 * g + 1, [seed; 32]).unwrap();
    let verifier = verifier_from_bytes(&keys.public).unwrap();
    let signers = keys
        .shares
        .iter()
        .enumerate()
        .map(|(i, s)| signer_from_bytes(&keys.public, i as u32, s).unwrap())
        .collect();
    Cluster {
        keys,
        verifier,
        signers,
    }
}

fn shares(c: &Cluster, who: &[u32], msg: &[u8]) -> Vec<(u32, SignatureShare)> {
    who.iter()
        .map(|&i| (i, c.signers[i as usize].sign_share(msg)))
        .collect()
}

/// The secret scalar of share `i` (its bytes after the 5-byte header).
fn secret_of(keys: &DealtKeys, i: usize) -> Scalar {
    let body: [u8; 32] = keys.shares[i][5..].try_into().unwrap();
    Option::from(Scalar::from_bytes_be(&body)).unwrap()
}

/// Every g+1 subset of a g = 3 key set (35 of them) gives the same 48 bytes, and those
/// bytes are the min-sig BLS signature of the master secret f(0) — interpolated here
/// from the secret shares, independently of the scheme's code — which `blst::min_sig`
/// verifies against the first commitment point under the scheme's tag.
#[test]
fn the_combined_signature_is_the_master_keys_bls_signature() {
    let g = 3;
    let c = cluster(g, 21);
    let msg = b"reply root of batch 99";
    let all: Vec<u32> = (0..(2 * g + 1) as u32).collect();
    let mut combined = None;
    for mask in 0u32..(1 << all.len()) {
        if mask.count_ones() as usize != g + 1 {
            continue;
        }
        let who: Vec<u32> = all
            .iter()
            .copied()
            .filter(|i| mask & (1 << i) != 0)
            .collect();
        let sig = c.verifier.combine(&shares(&c, &who, msg)).unwrap();
        assert_eq!(sig.0.len(), 48);
        match &combined {
            None => combined = Some(sig),
            Some(first) => assert_eq!(first, &sig, "subset {who:?}"),
        }
    }
    let combined = combined.unwrap();
    assert!(c.verifier.verify(msg, &combined));

    // f(0) = Σ λᵢ f(i+1) over the first g+1 parties, λᵢ = Π_{j≠i} xⱼ / (xⱼ − xᵢ).
    let xs: Vec<Scalar> = (1..=(g + 1) as u64).map(Scalar::from).collect();
    let mut master = Scalar::zero();
    for (i, xi) in xs.iter().enumerate() {
        let mut lambda = Scalar::one();
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                lambda *= *xj * Option::<Scalar>::from((*xj - xi).invert()).unwrap();
            }
        }
        master += lambda * secret_of(&c.keys, i);
    }
    let sk = blst::min_sig::SecretKey::from_bytes(&master.to_bytes_be()).unwrap();
    assert_eq!(
        sk.sign(msg, BLS_MIN_SIG_DST, &[]).compress().to_vec(),
        combined.0
    );
    // The public key is the first commitment point (after the 9-byte header).
    assert_eq!(
        sk.sk_to_pk().compress().to_vec(),
        c.keys.public[9..9 + 96].to_vec()
    );
    let pk = blst::min_sig::PublicKey::key_validate(&c.keys.public[9..9 + 96]).unwrap();
    let sig = blst::min_sig::Signature::sig_validate(&combined.0, true).unwrap();
    assert_eq!(
        sig.verify(true, msg, BLS_MIN_SIG_DST, &[], &pk, true),
        blst::BLST_ERROR::BLST_SUCCESS
    );
    // And under another tag (e.g. the IETF basic suite's) it is not a signature.
    assert_ne!(
        sig.verify(
            true,
            msg,
            b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_",
            &[],
            &pk,
            true
        ),
        blst::BLST_ERROR::BLST_SUCCESS
    );
}

#[test]
fn shares_and_signatures_are_48_bytes_and_not_interchangeable_with_blst() {
    let c = cluster(1, 2);
    let msg = b"m";
    let share = c.signers[0].sign_share(msg);
    assert_eq!(share.0.len(), 48);
    let sig = c.verifier.combine(&shares(&c, &[0, 1], msg)).unwrap();
    // A min-sig signature means nothing to a blsttc key set, and back.
    let other = deal_from_seed(SchemeKind::Blst, 1, 3, [2; 32]).unwrap();
    let blst_verifier = verifier_from_bytes(&other.public).unwrap();
    assert!(!blst_verifier.verify(msg, &sig));
    let blst_signer = signer_from_bytes(&other.public, 0, &other.shares[0]).unwrap();
    let foreign = SignatureShare(blst_signer.sign_share(msg).0);
    assert!(!c.verifier.verify_share(0, msg, &foreign));
    assert!(!c
        .verifier
        .verify(msg, &ThresholdSignature(foreign.0.clone())));
    // Key bytes of the two schemes do not mix.
    assert!(matches!(
        signer_from_bytes(&c.keys.public, 0, &other.shares[0]),
        Err(CryptoError::KeyMismatch(_))
    ));
}

/// The BLS12-381 base field modulus p, big-endian.
const P: [u8; 48] = [
    0x1a, 0x01, 0x11, 0xea, 0x39, 0x7f, 0xe6, 0x9a, 0x4b, 0x1b, 0xa7, 0xb6, 0x43, 0x4b, 0xac, 0xd7,
    0x64, 0x77, 0x4b, 0x84, 0xf3, 0x85, 0x12, 0xbf, 0x67, 0x30, 0xd2, 0xa0, 0xf6, 0xb0, 0xf6, 0x24,
    0x1e, 0xab, 0xff, 0xfe, 0xb1, 0x53, 0xff, 0xff, 0xb9, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xab,
];

/// The BLS12-381 group order r, big-endian.
const R: [u8; 32] = [
    0x73, 0xed, 0xa7, 0x53, 0x29, 0x9d, 0x7d, 0x48, 0x33, 0x39, 0xd8, 0x08, 0x09, 0xa1, 0xd8, 0x05,
    0x53, 0xbd, 0xa4, 0x02, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
];

/// The same x written as x + p, flags kept, when x + p still fits under the three flag
/// bits (it does when x's top byte is small); `None` otherwise.
fn x_plus_p(compressed: &[u8]) -> Option<Vec<u8>> {
    let flags = compressed[0] & 0xe0;
    let mut x = compressed.to_vec();
    x[0] &= 0x1f;
    let mut carry = 0u16;
    for i in (0..48).rev() {
        let s = x[i] as u16 + P[i] as u16 + carry;
        x[i] = s as u8;
        carry = s >> 8;
    }
    (carry == 0 && x[0] & 0xe0 == 0).then(|| {
        x[0] |= flags;
        x
    })
}

/// Every way a share or a combined signature must be refused, as a share (verify_share,
/// combine) and as a combined signature (verify).
fn assert_refused(c: &Cluster, msg: &[u8], bytes: &[u8], why: &str) {
    assert!(
        !c.verifier
            .verify_share(0, msg, &SignatureShare(bytes.to_vec())),
        "{why}"
    );
    assert!(
        !c.verifier.verify(msg, &ThresholdSignature(bytes.to_vec())),
        "{why}"
    );
    let mut s = shares(c, &[0, 1], msg);
    s[1].1 = SignatureShare(bytes.to_vec());
    assert!(
        matches!(c.verifier.combine(&s), Err(CryptoError::MalformedShare(1))),
        "{why}"
    );
}

/// x + p names the same point to a decoder that reduces mod p: a second byte form a
/// filter could substitute undetected. Refused, for shares and signatures alike.
#[test]
fn non_canonical_g1_encodings_are_refused() {
    let c = cluster(1, 12);
    let mut found = 0;
    for n in 0u32..200 {
        let msg = n.to_le_bytes();
        let share = c.signers[0].sign_share(&msg);
        let sig = c.verifier.combine(&shares(&c, &[0, 1], &msg)).unwrap();
        assert!(c.verifier.verify(&msg, &sig));
        for bytes in [&share.0, &sig.0] {
            if let Some(alt) = x_plus_p(bytes) {
                assert_ne!(&alt, bytes);
                assert_refused(&c, &msg, &alt, "x + p");
                found += 1;
            }
        }
        if found >= 4 {
            break;
        }
    }
    assert!(
        found >= 4,
        "no signature with a small enough x in 200 tries"
    );

    let msg = b"flags";
    let sig = c.verifier.combine(&shares(&c, &[0, 1], msg)).unwrap();
    // Compression flag cleared: a 48-byte "uncompressed" form does not exist.
    let mut no_compression = sig.0.clone();
    no_compression[0] &= 0x7f;
    assert_refused(&c, msg, &no_compression, "compression flag cleared");
    // Infinity flag set on a non-zero x.
    let mut fake_infinity = sig.0.clone();
    fake_infinity[0] |= 0x40;
    assert_refused(&c, msg, &fake_infinity, "infinity flag on a point");
    // The sign flag flipped: a valid encoding of −σ, a different point that must not
    // verify (it parses, so combine accepts it as a share; the result fails).
    let mut negated = sig.0.clone();
    negated[0] ^= 0x20;
    assert!(!c.verifier.verify(msg, &ThresholdSignature(negated.clone())));
    assert!(!c
        .verifier
        .verify_share(0, msg, &SignatureShare(negated.clone())));
    // Wrong lengths.
    for len in [0usize, 47, 49, 96] {
        let mut b = sig.0.clone();
        b.resize(len, 0);
        assert_refused(&c, msg, &b, "wrong length");
    }
    assert_refused(&c, msg, &[0xff; 48], "all ones");
}

/// The identity is a point of G1 but no signature: with σ = O the check e(σ, g₂) =
/// e(H(m), pk) would only need H(m) or pk to be O.
#[test]
fn the_identity_is_refused() {
    let c = cluster(1, 13);
    let msg = b"identity";
    let mut identity = vec![0u8; 48];
    identity[0] = 0xc0;
    assert!(bool::from(
        Option::<G1Affine>::from(G1Affine::from_compressed(
            &identity.clone().try_into().unwrap()
        ))
        .unwrap()
        .is_identity()
    ));
    assert_refused(&c, msg, &identity, "identity");
    // Identity with the sign flag set is not even an encoding.
    let mut signed_identity = identity.clone();
    signed_identity[0] |= 0x20;
    assert_refused(&c, msg, &signed_identity, "signed identity");
    // Shares that interpolate to the identity: with x = 1, 2 the Lagrange coefficients
    // at 0 are 2 and −1, so σ₀ and 2σ₀ combine to 2σ₀ − 2σ₀ = O.
    let share = c.signers[0].sign_share(msg);
    let point: G1Affine = Option::from(G1Affine::from_compressed(
        &share.0.clone().try_into().unwrap(),
    ))
    .unwrap();
    let doubled = (G1Projective::from(point) + point)
        .to_affine()
        .to_compressed()
        .to_vec();
    let s = vec![(0u32, share), (1u32, SignatureShare(doubled))];
    assert!(matches!(
        c.verifier.combine(&s),
        Err(CryptoError::BadSignature)
    ));
}

/// A point on E(Fp) outside the order-r subgroup (a random x is one with probability
/// ~1/2; its cofactor part makes it fail the subgroup check).
fn g1_outside_subgroup() -> Vec<u8> {
    for k in 1u8..=255 {
        let mut bytes = [0u8; 48];
        bytes[0] = 0x80;
        bytes[47] = k;
        if let Some(p) = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(&bytes)) {
            if !bool::from(p.is_torsion_free()) && p.to_compressed() == bytes {
                return bytes.to_vec();
            }
        }
    }
    panic!("no small x on the curve");
}

fn g2_outside_subgroup() -> Vec<u8> {
    for k in 1u8..=255 {
        let mut bytes = [0u8; 96];
        bytes[0] = 0x80;
        bytes[95] = k;
        if let Some(p) = Option::<G2Affine>::from(G2Affine::from_compressed_unchecked(&bytes)) {
            if !bool::from(p.is_torsion_free()) && p.to_compressed() == bytes {
                return bytes.to_vec();
            }
        }
    }
    panic!("no small x on the twist");
}

#[test]
fn points_outside_the_subgroup_are_refused() {
    let c = cluster(1, 14);
    let msg = b"subgroup";
    let bad = g1_outside_subgroup();
    assert_refused(&c, msg, &bad, "G1 point outside the subgroup");
    // In a key set, as either commitment point.
    let bad2 = g2_outside_subgroup();
    for at in [9usize, 9 + 96] {
        let mut public = c.keys.public.clone();
        public[at..at + 96].copy_from_slice(&bad2);
        assert!(matches!(
            verifier_from_bytes(&public),
            Err(CryptoError::MalformedKey(_))
        ));
    }
}

#[test]
fn degenerate_key_sets_are_refused() {
    let c = cluster(1, 15);
    let mut identity = vec![0u8; 96];
    identity[0] = 0xc0;
    // The master key O.
    let mut public = c.keys.public.clone();
    public[9..9 + 96].copy_from_slice(&identity);
    assert!(matches!(
        verifier_from_bytes(&public),
        Err(CryptoError::MalformedKey(_))
    ));
    // C₁ = −C₀ makes party 0's key C₀ + C₁ = O.
    let mut public = c.keys.public.clone();
    let mut negated = public[9..9 + 96].to_vec();
    negated[0] ^= 0x20;
    public[9 + 96..9 + 192].copy_from_slice(&negated);
    assert!(matches!(
        verifier_from_bytes(&public),
        Err(CryptoError::MalformedKey(_))
    ));
    // A commitment point written with c0 + p (second half of the compressed G2 point).
    let mut public = c.keys.public.clone();
    let point = public[9..9 + 96].to_vec();
    let mut c0 = point[48..].to_vec();
    let mut carry = 0u16;
    for i in (0..48).rev() {
        let s = c0[i] as u16 + P[i] as u16 + carry;
        c0[i] = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    public[9 + 48..9 + 96].copy_from_slice(&c0);
    assert!(matches!(
        verifier_from_bytes(&public),
        Err(CryptoError::MalformedKey(_))
    ));
    // A constant polynomial (C₁ = O) is a valid, if odd, key set: every share is f(0).
    let mut public = c.keys.public.clone();
    public[9 + 96..9 + 192].copy_from_slice(&identity);
    assert!(verifier_from_bytes(&public).is_ok());
}

#[test]
fn secret_shares_must_be_canonical_non_zero_scalars() {
    let c = cluster(1, 16);
    let header = &c.keys.shares[0][..5];
    let with = |body: &[u8]| [header, body].concat();
    // r itself, r + 1 (≥ r), zero: refused as scalars.
    let mut r_plus_1 = R;
    r_plus_1[31] += 1;
    for body in [R, r_plus_1, [0u8; 32], [0xff; 32]] {
        assert!(matches!(
            signer_from_bytes(&c.keys.public, 0, &with(&body)),
            Err(CryptoError::MalformedKey(_))
        ));
    }
    // r − 1 is a scalar, but not this party's share.
    let mut r_minus_1 = R;
    r_minus_1[31] -= 1;
    assert!(matches!(
        signer_from_bytes(&c.keys.public, 0, &with(&r_minus_1)),
        Err(CryptoError::KeyMismatch(_))
    ));
    // Another party's share under this index.
    let mut swapped = c.keys.shares[1].clone();
    swapped[1..5].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        signer_from_bytes(&c.keys.public, 0, &swapped),
        Err(CryptoError::KeyMismatch(_))
    ));
    // The real one still works.
    assert!(signer_from_bytes(&c.keys.public, 0, &c.keys.shares[0]).is_ok());
}

/// Hostile shares, signatures and keys never panic, and random bytes never verify.
#[test]
fn hostile_bytes_never_panic_and_never_verify() {
    use proptest::prelude::*;
    let c = cluster(1, 17);
    let msg = b"hostile";
    let good = shares(&c, &[0, 1, 2], msg);
    proptest!(ProptestConfig::with_cases(256), |(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        fixed in proptest::collection::vec(any::<u8>(), 48..=48),
        signer in 0u32..5,
        flip in 0usize..(48 * 8),
    )| {
        for b in [&bytes, &fixed] {
            prop_assert!(!c.verifier.verify_share(signer, msg, &SignatureShare(b.clone())));
            prop_assert!(!c.verifier.verify(msg, &ThresholdSignature(b.clone())));
            let mut s = good.clone();
            s[1].1 = SignatureShare(b.clone());
            if let Ok(sig) = c.verifier.combine(&s) {
                prop_assert!(!c.verifier.verify(msg, &sig));
            }
            let _ = verifier_from_bytes(b);
            let _ = signer_from_bytes(&c.keys.public, 0, b);
        }
        // One flipped bit of a good share: never a valid share or signature.
        let mut s = good[0].1.clone();
        s.0[flip / 8] ^= 1 << (flip % 8);
        prop_assert!(!c.verifier.verify_share(0, msg, &s));
        prop_assert!(!c.verifier.verify(msg, &ThresholdSignature(s.0.clone())));
        // One flipped bit of the key set: refused or a different key.
        let mut p = c.keys.public.clone();
        let i = 9 + flip % (p.len() - 9);
        p[i] ^= 1 << (flip % 8);
        if let Ok(v) = verifier_from_bytes(&p) {
            let sig = c.verifier.combine(&good).unwrap();
            prop_assert!(!v.verify(msg, &sig));
        }
    });
}
