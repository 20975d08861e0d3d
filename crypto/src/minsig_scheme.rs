//! [`SchemeKind::BlsMinSig`]: threshold BLS on BLS12-381 in the *min-sig* setting —
//! signatures in G1 (48 bytes compressed), public keys in G2 (96 bytes compressed) —
//! directly over `blstrs` and `blst`.
//!
//! Boneh–Lynn–Shacham signatures, made threshold by Shamir sharing of the secret over Fr
//! (Boldyreva, PKC 2003): the dealer draws f of degree g, party `i` holds f(i + 1) (the
//! same convention as [`SchemeKind::Blst`]), the key set commits to f's coefficients in
//! G2 (Feldman), and g+1 shares σᵢ = f(xᵢ)·H(m) interpolate at x = 0 to σ = f(0)·H(m),
//! the one BLS signature of the master key — whichever g+1 shares were used.
//!
//! Why min-sig: the firewall puts one combination and three combined-signature checks on
//! every reply's path (bottom row, top row, gateway; SOSP 2003 §4). With signatures in G1,
//! hashing to the curve, signing, decompressing and subgroup-checking a signature and the
//! Lagrange combination are all G1 work, about three times cheaper than in G2; a
//! verification is still two Miller loops and one final exponentiation, and here the G2
//! side of both (the generator and the public key) is fixed, so its line functions are
//! precomputed once per key set. What grows is the public key set (96 bytes per
//! commitment point), which is read once at start-up.
//!
//! Hash to G1 is RFC 9380's `BLS12381G1_XMD:SHA-256_SSWU_RO_` suite under [`DST`], a
//! domain separation tag that names Palisade (RFC 9380 §3.1).
//!
//! Acceptance (everything here can come from the network): a share or signature is
//! accepted only as the canonical 48-byte compressed encoding of a G1 point that is on
//! the curve, in the prime-order subgroup and not the identity; key points likewise in
//! G2. Re-encoding an accepted point gives back the same bytes, so what crosses the
//! firewall has one byte form.
//!
//! Build note: `blsttc` (the other scheme) enables `blst`'s `portable` feature, and
//! cargo unifies features, so this scheme is built `portable` too. For `blst` 0.3.17
//! that costs next to nothing: a portable x86-64 build carries both the ADX (`mulx`) and
//! the plain code paths and picks ADX at run time from CPUID (`__blst_platform_cap`);
//! measured here, a host-ADX build of the same operations is within noise of it.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use blstrs::{Bls12, G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Scalar};
use ff::Field;
use group::prime::PrimeCurveAffine;
use group::{Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};
use palisade_wire::firewall::{SignatureShare, ThresholdSignature};
use rand_chacha_03::rand_core::SeedableRng;

use crate::error::CryptoError;
use crate::threshold::{
    check_combine_input, PublicHeader, SchemeKind, ShareHeader, ThresholdSigner, ThresholdVerifier,
};
use crate::DealtKeys;

/// The hash-to-G1 domain separation tag of [`SchemeKind::BlsMinSig`]:
/// `APPLICATION-Vxx-CSyy-with-SUITE` (RFC 9380 §3.1), where the suite is RFC 9380
/// §8.8.1's random-oracle hash to BLS12-381 G1. A combined signature is a plain min-sig
/// BLS signature under this tag, checkable by any BLS library (e.g. `blst::min_sig`)
/// against the key set's first commitment point.
pub const DST: &[u8] = b"PALISADE-V01-CS01-with-BLS12381G1_XMD:SHA-256_SSWU_RO_";

/// Compressed G1 point: a signature share or a combined signature.
const SIG: usize = 48;
/// Compressed G2 point: one commitment to a coefficient of the dealing polynomial.
const PK: usize = 96;
/// Big-endian scalar: a secret share.
const SK: usize = 32;

/// Deal with `seed` (parameters already checked). Deterministic: the coefficients of f
/// are drawn from ChaCha20 seeded with `seed`. f(0) and every share are non-zero (a zero
/// one, probability ~2⁻²⁵⁵, makes the dealer draw again from the same stream).
pub(crate) fn deal(g: usize, parties: usize, seed: [u8; 32]) -> Result<DealtKeys, CryptoError> {
    let mut rng = rand_chacha_03::ChaCha20Rng::from_seed(seed);
    let (mut coefficients, mut values) = loop {
        let coefficients: Vec<Scalar> = (0..=g).map(|_| Scalar::random(&mut rng)).collect();
        let values: Vec<Scalar> = (0..parties)
            .map(|i| evaluate(&coefficients, &x_of(i as u32)))
            .collect();
        let zero =
            bool::from(coefficients[0].is_zero()) || values.iter().any(|v| bool::from(v.is_zero()));
        if !zero {
            break (coefficients, values);
        }
    };
    let mut commitment = Vec::with_capacity((g + 1) * PK);
    for a in &coefficients {
        commitment.extend_from_slice(&(G2Projective::generator() * a).to_affine().to_compressed());
    }
    let public = PublicHeader::encode(SchemeKind::BlsMinSig, g, parties, &commitment);
    let shares = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut sk = v.to_bytes_be();
            let bytes = ShareHeader::encode(SchemeKind::BlsMinSig, i as u32, &sk);
            zeroize::Zeroize::zeroize(&mut sk);
            bytes
        })
        .collect();
    // Best effort: `Scalar` has no `Zeroize`; overwrite the polynomial and its values.
    coefficients.iter_mut().for_each(|c| *c = Scalar::zero());
    values.iter_mut().for_each(|v| *v = Scalar::zero());
    std::hint::black_box((&coefficients, &values));
    Ok(DealtKeys { public, shares })
}

/// Party `index`'s evaluation point: index + 1 (0 is the secret's).
fn x_of(index: u32) -> Scalar {
    Scalar::from(u64::from(index) + 1)
}

/// f(x) by Horner's rule over Fr.
fn evaluate(coefficients: &[Scalar], x: &Scalar) -> Scalar {
    coefficients
        .iter()
        .rev()
        .fold(Scalar::zero(), |acc, c| acc * x + c)
}

/// Lagrange coefficients at x = 0 for the points `xs` (distinct, or `None`):
/// λᵢ = Π_{j≠i} xⱼ / (xⱼ − xᵢ), with one field inversion for all the denominators
/// (Montgomery's trick).
fn lagrange_at_zero(xs: &[Scalar]) -> Option<Vec<Scalar>> {
    let mut numerators = Vec::with_capacity(xs.len());
    let mut denominators = Vec::with_capacity(xs.len());
    for (i, xi) in xs.iter().enumerate() {
        let (mut num, mut den) = (Scalar::one(), Scalar::one());
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                num *= xj;
                den *= *xj - xi;
            }
        }
        numerators.push(num);
        denominators.push(den);
    }
    let mut prefix = Vec::with_capacity(xs.len());
    let mut product = Scalar::one();
    for d in &denominators {
        prefix.push(product);
        product *= d;
    }
    // Zero exactly when two points coincide.
    let mut inverse: Scalar = Option::from(product.invert())?;
    let mut out = vec![Scalar::zero(); xs.len()];
    for i in (0..xs.len()).rev() {
        out[i] = numerators[i] * inverse * prefix[i];
        inverse *= denominators[i];
    }
    Some(out)
}

/// A signature share or combined signature: canonical compressed G1, in the subgroup,
/// not the identity.
fn parse_signature(bytes: &[u8]) -> Option<G1Affine> {
    let arr: &[u8; SIG] = bytes.try_into().ok()?;
    let point: G1Affine = Option::from(G1Affine::from_compressed(arr))?;
    if bool::from(point.is_identity()) || point.to_compressed() != *arr {
        return None;
    }
    Some(point)
}

/// A commitment point: canonical compressed G2, on the curve and in the subgroup.
fn parse_g2(bytes: &[u8]) -> Option<G2Affine> {
    let arr: &[u8; PK] = bytes.try_into().ok()?;
    let point: G2Affine = Option::from(G2Affine::from_compressed(arr))?;
    (point.to_compressed() == *arr).then_some(point)
}

/// Line functions of −g₂, shared by every key set: the fixed half of each check.
fn neg_generator() -> &'static G2Prepared {
    static LINES: OnceLock<G2Prepared> = OnceLock::new();
    LINES.get_or_init(|| G2Prepared::from(-G2Affine::generator()))
}

/// Messages kept by [`ThresholdVerifier::prepare`]: a bottom filter prepares one per
/// batch it is collecting shares for, and a few batches are in flight at once.
const PREPARED: usize = 8;

/// The message-dependent half of a check, computed ahead by `prepare`: the Miller loop
/// of e(H(m), pk). What is left when the signature comes is the loop of e(σ, −g₂) and
/// the final exponentiation; the two loops multiply to what one two-pair loop gives.
/// Measured (`cargo bench -p palisade-crypto --bench threshold -- "verify_combined|prepare"`):
/// a check takes 605 µs unprepared and 438 µs prepared; preparing takes 176 µs.
struct Prepared {
    message: Vec<u8>,
    half: blstrs::MillerLoopResult,
}

/// e(σ, −g₂) · e(H(m), pk) = 1, i.e. e(σ, g₂) = e(H(m), pk): two Miller loops over
/// precomputed lines and one final exponentiation. `sig` was parsed (in G1, not the
/// identity), `key` is a checked key point, so this is BLS verification (Boneh–Lynn–
/// Shacham, J. Cryptology 2004, §3).
fn pairing_check(sig: &G1Affine, message: &[u8], key: &G2Prepared) -> bool {
    let hashed = G1Projective::hash_to_curve(message, DST, &[]).to_affine();
    let loops = Bls12::multi_miller_loop(&[(sig, neg_generator()), (&hashed, key)]);
    bool::from(loops.final_exponentiation().is_identity())
}

/// One party's public key share fᵢ·g₂ and, once first needed, its lines.
struct KeyShare {
    point: G2Affine,
    lines: OnceLock<G2Prepared>,
}

/// The public key set: the master key with its lines precomputed, and every party's
/// public key share (lines computed on first use: shares are only checked one by one
/// when a combination fails).
pub(crate) struct MinSigVerifier {
    g: usize,
    public_key: G2Prepared,
    shares: Vec<KeyShare>,
    /// The latest [`PREPARED`] messages' halves, oldest first.
    prepared: Mutex<VecDeque<Prepared>>,
}

impl std::fmt::Debug for MinSigVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinSigVerifier")
            .field("g", &self.g)
            .field("parties", &self.shares.len())
            .finish_non_exhaustive()
    }
}

impl MinSigVerifier {
    pub fn from_header(header: &PublicHeader<'_>) -> Result<MinSigVerifier, CryptoError> {
        if header.body.len() != (header.g + 1) * PK {
            return Err(CryptoError::MalformedKey(
                "commitment length differs from (g+1) G2 points",
            ));
        }
        let commitment = header
            .body
            .chunks_exact(PK)
            .map(parse_g2)
            .collect::<Option<Vec<_>>>()
            .ok_or(CryptoError::MalformedKey(
                "commitment point not canonical or not in G2",
            ))?;
        let master = match commitment.first() {
            Some(m) if !bool::from(m.is_identity()) => *m,
            _ => return Err(CryptoError::MalformedKey("public key is the identity")),
        };
        let shares = (0..header.parties as u32)
            .map(|i| {
                let x = x_of(i);
                // Horner from the top coefficient: g multiplications in G2.
                let mut top = commitment.iter().rev();
                let start = top
                    .next()
                    .map_or(G2Projective::identity(), G2Projective::from);
                let point = top.fold(start, |acc, c| acc * x + c).to_affine();
                // A crafted commitment can make a share's key the identity; refuse it.
                (!bool::from(point.is_identity())).then(|| KeyShare {
                    point,
                    lines: OnceLock::new(),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(CryptoError::MalformedKey(
                "a public key share is the identity",
            ))?;
        Ok(MinSigVerifier {
            g: header.g,
            public_key: G2Prepared::from(master),
            shares,
            prepared: Mutex::new(VecDeque::with_capacity(PREPARED)),
        })
    }

    /// The prepared half for `message`, if `prepare` computed it (and it is still kept).
    fn prepared_half(&self, message: &[u8]) -> Option<blstrs::MillerLoopResult> {
        let kept = self.prepared.lock().ok()?;
        kept.iter().find(|p| p.message == message).map(|p| p.half)
    }
}

impl ThresholdVerifier for MinSigVerifier {
    fn threshold(&self) -> usize {
        self.g
    }

    fn parties(&self) -> usize {
        self.shares.len()
    }

    fn verify_share(&self, signer: u32, message: &[u8], share: &SignatureShare) -> bool {
        let Some(key) = self.shares.get(signer as usize) else {
            return false;
        };
        let Some(sig) = parse_signature(&share.0) else {
            return false;
        };
        let lines = key.lines.get_or_init(|| G2Prepared::from(key.point));
        pairing_check(&sig, message, lines)
    }

    fn combine(&self, shares: &[(u32, SignatureShare)]) -> Result<ThresholdSignature, CryptoError> {
        check_combine_input(self.g, self.shares.len(), shares)?;
        let parsed = shares
            .iter()
            .map(|(i, s)| parse_signature(&s.0).ok_or(CryptoError::MalformedShare(*i)))
            .collect::<Result<Vec<_>, _>>()?;
        let chosen = self.g + 1;
        let xs: Vec<Scalar> = shares.iter().take(chosen).map(|(i, _)| x_of(*i)).collect();
        // Signers were checked distinct, so the points are distinct.
        let lambdas = lagrange_at_zero(&xs).ok_or(CryptoError::BadSignature)?;
        let sum = parsed
            .iter()
            .zip(&lambdas)
            .fold(G1Projective::identity(), |acc, (s, l)| acc + s * l);
        // Only bad shares sum to the identity; verification would refuse it anyway.
        let sig = sum.to_affine();
        if bool::from(sig.is_identity()) {
            return Err(CryptoError::BadSignature);
        }
        Ok(ThresholdSignature(sig.to_compressed().to_vec()))
    }

    fn verify(&self, message: &[u8], signature: &ThresholdSignature) -> bool {
        let Some(sig) = parse_signature(&signature.0) else {
            return false;
        };
        match self.prepared_half(message) {
            Some(half) => {
                let loops = Bls12::multi_miller_loop(&[(&sig, neg_generator())]) + half;
                bool::from(loops.final_exponentiation().is_identity())
            }
            None => pairing_check(&sig, message, &self.public_key),
        }
    }

    fn prepare(&self, message: &[u8]) {
        if self.prepared_half(message).is_some() {
            return;
        }
        let hashed = G1Projective::hash_to_curve(message, DST, &[]).to_affine();
        let half = Bls12::multi_miller_loop(&[(&hashed, &self.public_key)]);
        // A poisoned lock (a panic elsewhere while holding it) only costs the shortcut.
        if let Ok(mut kept) = self.prepared.lock() {
            if kept.len() >= PREPARED {
                kept.pop_front();
            }
            kept.push_back(Prepared {
                message: message.to_vec(),
                half,
            });
        }
    }
}

/// One party's secret share, held as a `blst` secret key (zeroised on drop).
pub(crate) struct MinSigSigner {
    index: u32,
    secret: blst::min_sig::SecretKey,
}

impl std::fmt::Debug for MinSigSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinSigSigner")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl MinSigSigner {
    pub fn from_headers(
        public: &PublicHeader<'_>,
        share: &ShareHeader<'_>,
    ) -> Result<MinSigSigner, CryptoError> {
        if share.body.len() != SK {
            return Err(CryptoError::MalformedKey("secret share is not 32 bytes"));
        }
        // Refuses a scalar ≥ r or zero, so the accepted bytes are canonical.
        let secret = blst::min_sig::SecretKey::from_bytes(share.body)
            .map_err(|_| CryptoError::MalformedKey("secret share is not a non-zero scalar"))?;
        let verifier = MinSigVerifier::from_header(public)?;
        let expected = verifier
            .shares
            .get(share.index as usize)
            .ok_or(CryptoError::UnknownSigner(share.index))?;
        if secret.sk_to_pk().compress() != expected.point.to_compressed() {
            return Err(CryptoError::KeyMismatch(
                "secret share does not match the key set's commitment",
            ));
        }
        Ok(MinSigSigner {
            index: share.index,
            secret,
        })
    }
}

impl ThresholdSigner for MinSigSigner {
    fn index(&self) -> u32 {
        self.index
    }

    fn sign_share(&self, message: &[u8]) -> SignatureShare {
        SignatureShare(self.secret.sign(message, DST, &[]).compress().to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lagrange_interpolates_a_polynomial_at_zero() {
        let f = [Scalar::from(7u64), Scalar::from(11u64), Scalar::from(13u64)];
        for xs in [[1u64, 2, 3], [3, 1, 5], [2, 4, 9]] {
            let xs: Vec<Scalar> = xs.iter().map(|x| Scalar::from(*x)).collect();
            let lambdas = lagrange_at_zero(&xs).unwrap();
            let at_zero = xs
                .iter()
                .zip(&lambdas)
                .fold(Scalar::zero(), |acc, (x, l)| acc + evaluate(&f, x) * l);
            assert_eq!(at_zero, f[0]);
        }
        let same = [Scalar::from(2u64), Scalar::from(2u64)];
        assert!(lagrange_at_zero(&same).is_none());
    }

    #[test]
    fn a_prepared_message_verifies_exactly_as_an_unprepared_one() {
        let keys = deal(1, 3, [8; 32]).unwrap();
        let header = PublicHeader::parse(&keys.public).unwrap();
        let verifier = MinSigVerifier::from_header(&header).unwrap();
        let sign = |m: &[u8]| {
            let shares: Vec<_> = (0..2u32)
                .map(|i| {
                    let share = ShareHeader::parse(&keys.shares[i as usize]).unwrap();
                    let signer = MinSigSigner::from_headers(&header, &share).unwrap();
                    (i, signer.sign_share(m))
                })
                .collect();
            verifier.combine(&shares).unwrap()
        };
        let (good, other) = (sign(b"root 1"), sign(b"root 2"));
        let mut flipped = good.clone();
        flipped.0[47] ^= 1;
        let answers = |v: &MinSigVerifier| {
            [
                v.verify(b"root 1", &good),
                v.verify(b"root 1", &other),
                v.verify(b"root 1", &flipped),
                v.verify(b"root 2", &other),
                v.verify(b"root 2", &good),
            ]
        };
        let unprepared = answers(&verifier);
        assert_eq!(unprepared, [true, false, false, true, false]);
        verifier.prepare(b"root 1");
        verifier.prepare(b"root 1");
        assert_eq!(verifier.prepared.lock().unwrap().len(), 1, "kept once");
        assert!(verifier.prepared_half(b"root 1").is_some());
        assert_eq!(answers(&verifier), unprepared);
        // Bounded: the oldest goes first, and is then checked the long way, alike.
        for i in 0..PREPARED as u32 {
            verifier.prepare(&i.to_le_bytes());
        }
        assert_eq!(verifier.prepared.lock().unwrap().len(), PREPARED);
        assert!(verifier.prepared_half(b"root 1").is_none());
        assert_eq!(answers(&verifier), unprepared);
    }

    #[test]
    fn a_share_is_its_polynomial_value_times_the_hash() {
        let keys = deal(1, 3, [4; 32]).unwrap();
        let header = PublicHeader::parse(&keys.public).unwrap();
        let share = ShareHeader::parse(&keys.shares[1]).unwrap();
        let signer = MinSigSigner::from_headers(&header, &share).unwrap();
        let value: Scalar = Option::from(Scalar::from_bytes_be(
            &<[u8; 32]>::try_from(share.body).unwrap(),
        ))
        .unwrap();
        let expected = (G1Projective::hash_to_curve(b"m", DST, &[]) * value)
            .to_affine()
            .to_compressed();
        assert_eq!(signer.sign_share(b"m").0, expected.to_vec());
    }
}
