//! Ed25519 verification under one rule, ZIP 215, for one signature and for many at once,
//! and signing through AWS-LC.
//!
//! **Why one rule.** RFC 8032 leaves open whether a verifier checks the cofactorless
//! equation `[s]B = R + [k]A` or the cofactored one `[8][s]B = [8]R + [8][k]A`, and
//! libraries differ; batch verification (one multiscalar multiplication for many
//! signatures) can only check the cofactored one soundly. In a BFT system two correct
//! replicas must never disagree on whether a signature holds: a faulty client that signs
//! with a crafted R (one with a small-order component) could otherwise get its request
//! accepted by a primary that checks in a batch and refused by a backup that checks it
//! alone, and every such request would cost a view change. ZIP 215 (Zcash, 2020) fixes
//! the rules (cofactored equation, canonical `s`, any encoding of `A` and `R`) so that
//! single and batch verification accept exactly the same signatures; ed25519-zebra
//! implements them. Every signature RFC 8032 signing produces (ed25519-dalek's
//! [`ed25519_dalek::Signer`]) verifies under them, and a third party still cannot
//! re-encode someone else's signature: `R`'s bytes are hashed into `k`.
//!
//! **Why batches.** Agreement checks many client signatures per batch (the primary, TOCS
//! §4.2) and every execution replica and filter checks the 2f+1 commit signatures of each
//! ORDER certificate. Batched, a certificate's three signatures cost 0.73 of three single
//! checks, and sixteen requests from one gateway 0.31 of sixteen (the batch shares the
//! key's term); one single ZIP 215 check costs what a strict RFC 8032 one did (36.7 against
//! 37.6 µs, AMD EPYC; `cargo bench -p palisade-wire --bench signatures`).
//!
//! **Deterministic coefficients.** A batch check multiplies each signature's equation by
//! a random 128-bit coefficient so that errors cannot cancel. The coefficients here come
//! from BLAKE3 over everything queued (Fiat–Shamir, as ed25519-dalek's own batch check
//! does): the pure protocol cores stay deterministic (same inputs, same answer), and a
//! signer who wants two wrong equations to cancel must find inputs whose hash makes
//! them cancel, one chance in 2^128 per try.

use ed25519_dalek::{SigningKey, VerifyingKey};
use ed25519_zebra::batch::{Item, Verifier};
use ed25519_zebra::{VerificationKey, VerificationKeyBytes};

/// Checks one signature under ZIP 215 (see the module docs).
pub fn verify_one(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Some(key) = decompressed(key) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from_bytes(signature), message)
        .is_ok()
}

/// Most keys [`decompressed`] keeps per thread. Every key checked here is a configured
/// one (replicas', clients', execution replicas'), looked up by the signer's id and never
/// taken from a message, so a deployment has a few dozen; the bound only keeps memory
/// bounded whatever a caller passes.
const MAX_CACHED_KEYS: usize = 256;

thread_local! {
    static DECOMPRESSED: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerificationKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// `key` in ed25519-zebra's form. Decompressing a point takes a field square root, 8% of
/// one check (2% of all CPU in `separate` under the latency suite, `perf record`), and the
/// same few keys check every message, so each thread keeps the keys it has met. The
/// answer is the same with or without the cache: decompression is a pure function.
fn decompressed(key: &VerifyingKey) -> Option<VerificationKey> {
    let bytes = key.to_bytes();
    DECOMPRESSED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(k) = cache.get(&bytes) {
            return Some(*k);
        }
        let k = VerificationKey::try_from(bytes).ok()?;
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(bytes, k);
        Some(k)
    })
}

/// Signs `message` with `key` (RFC 8032 Ed25519). Every signature in the system is made
/// here.
///
/// **Why AWS-LC.** Ed25519 signing is deterministic (RFC 8032 §5.1.6: the nonce is a
/// hash of the secret prefix and the message), so any correct implementation produces
/// the very same 64 bytes for one key and message; which library signs is invisible to
/// every verifier. AWS-LC's (s2n-bignum's verified scalar multiplication) signs in half
/// ed25519-dalek's time: 10.3 against 19.6 µs on the 2-vCPU Xeon of 2026-11-27 (`cargo
/// bench -p palisade-wire --bench signatures -- sign/`). Signing was 10% of all CPU in
/// `separate` under the latency suite (`perf record`): commits, pre-prepares, requests
/// and reply roots, nine signatures for a one-request batch. Verification stays with
/// ed25519-zebra, whose rule ([`verify_one`]) every replica must share.
pub fn sign(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let public = key.verifying_key().to_bytes();
    let signed = KEY_PAIRS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(&public) {
            // Expanding a seed costs one scalar multiplication: keep the pair. A key
            // pair AWS-LC refuses (it accepts any 32-byte seed) is signed by dalek below.
            let pair =
                aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(key.as_bytes()).ok()?;
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
            cache.insert(public, pair);
        }
        let signature = cache.get(&public)?.sign(message);
        signature.as_ref().try_into().ok()
    });
    signed.unwrap_or_else(|| {
        use ed25519_dalek::Signer as _;
        key.sign(message).to_bytes()
    })
}

thread_local! {
    /// AWS-LC key pairs by public key: a node signs with one or two keys, so this holds
    /// as few; [`MAX_CACHED_KEYS`] bounds it whatever a caller passes.
    static KEY_PAIRS: std::cell::RefCell<
        std::collections::HashMap<[u8; 32], aws_lc_rs::signature::Ed25519KeyPair>,
    > = std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Signatures queued for one batch check, under the same rule as [`verify_one`].
#[derive(Default)]
pub struct SignatureBatch {
    items: Vec<Item>,
    /// Absorbs every queued key, signature and message; seeds the coefficients.
    transcript: blake3::Hasher,
}

impl SignatureBatch {
    pub fn new() -> SignatureBatch {
        let mut transcript = blake3::Hasher::new();
        transcript.update(b"palisade/wire/signature-batch");
        SignatureBatch {
            items: Vec::new(),
            transcript,
        }
    }

    /// Queues `signature` by `key` over `message`; its index is the number queued before.
    pub fn push(&mut self, key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) {
        let key_bytes = key.to_bytes();
        self.transcript.update(&key_bytes);
        self.transcript.update(signature);
        self.transcript
            .update(&(message.len() as u64).to_le_bytes());
        self.transcript.update(message);
        self.items.push(Item::from((
            VerificationKeyBytes::from(key_bytes),
            ed25519_zebra::Signature::from_bytes(signature),
            message,
        )));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The indices of the queued signatures that do not hold, in queue order (empty: all
    /// hold). One batch check; only when it fails, each signature alone, to name the
    /// culprits (a faulty signer gains nothing but the cost of its own detection).
    pub fn failures(self) -> Vec<usize> {
        match self.items.len() {
            0 => return Vec::new(),
            1 => return self.single_failures(),
            _ => {}
        }
        let mut verifier = Verifier::new();
        for item in &self.items {
            verifier.queue(item.clone());
        }
        let rng = TranscriptRng(self.transcript.finalize_xof());
        if verifier.verify(rng).is_ok() {
            return Vec::new();
        }
        self.single_failures()
    }

    fn single_failures(self) -> Vec<usize> {
        self.items
            .into_iter()
            .enumerate()
            .filter(|(_, item)| item.clone().verify_single().is_err())
            .map(|(i, _)| i)
            .collect()
    }
}

/// The batch coefficients' source: BLAKE3's extendable output over the transcript.
struct TranscriptRng(blake3::OutputReader);

impl rand_core_06::RngCore for TranscriptRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

/// Unpredictable to anyone who cannot choose the transcript's hash output (see the
/// module docs): what a batch coefficient needs.
impl rand_core_06::CryptoRng for TranscriptRng {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    /// RFC 8032 signing is deterministic: the AWS-LC signer must give dalek's very bytes
    /// for every key and message, or a verifier could tell which library signed.
    #[test]
    fn aws_lc_signs_exactly_as_dalek_does() {
        let mut seed = [0u8; 32];
        for i in 0..(MAX_CACHED_KEYS as u64 + 20) {
            seed[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            let signer = SigningKey::from_bytes(&seed);
            for len in [0usize, 1, 59, 200] {
                let message: Vec<u8> = (0..len).map(|j| (j as u64 ^ i) as u8).collect();
                let ours = sign(&signer, &message);
                assert_eq!(
                    ours,
                    signer.sign(&message).to_bytes(),
                    "key {i}, {len} bytes"
                );
                assert!(verify_one(&signer.verifying_key(), &message, &ours));
            }
        }
        // Cached pairs are looked up by their own public key: two keys in turn.
        let (a, b) = (key(1), key(2));
        for _ in 0..3 {
            assert_eq!(sign(&a, b"x"), a.sign(b"x").to_bytes());
            assert_eq!(sign(&b, b"x"), b.sign(b"x").to_bytes());
            assert_ne!(sign(&a, b"x"), sign(&b, b"x"));
        }
    }

    #[test]
    fn dalek_signatures_verify_alone_and_in_batches() {
        let mut batch = SignatureBatch::new();
        for i in 0..5u8 {
            let message = [i; 40];
            let sig = key(i % 2).sign(&message).to_bytes();
            assert!(verify_one(&key(i % 2).verifying_key(), &message, &sig));
            assert!(!verify_one(&key(9).verifying_key(), &message, &sig));
            batch.push(&key(i % 2).verifying_key(), &message, &sig);
        }
        assert_eq!(batch.len(), 5);
        assert!(batch.failures().is_empty());
        assert!(SignatureBatch::new().failures().is_empty());
    }

    #[test]
    fn more_keys_than_the_cache_holds_are_each_judged_by_their_own_key() {
        let message = b"m";
        for round in 0..2 {
            for i in 0..(MAX_CACHED_KEYS + 44) {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let signer = SigningKey::from_bytes(&seed);
                let sig = signer.sign(message).to_bytes();
                assert!(
                    verify_one(&signer.verifying_key(), message, &sig),
                    "{round} {i}"
                );
                assert!(!verify_one(&key(250).verifying_key(), message, &sig));
                assert!(!verify_one(&signer.verifying_key(), b"n", &sig));
            }
        }
        assert!(DECOMPRESSED.with(|c| c.borrow().len()) <= MAX_CACHED_KEYS);
    }

    #[test]
    fn a_batch_names_exactly_the_signatures_that_do_not_hold() {
        let mut batch = SignatureBatch::new();
        for i in 0..6u8 {
            let message = [i; 8];
            let mut sig = key(1).sign(&message).to_bytes();
            if i == 2 {
                sig[10] ^= 1; // a corrupted R
            }
            // Index 4: a valid signature, but over another message.
            let signed = if i == 4 { [99u8; 8] } else { message };
            if i == 4 {
                sig = key(1).sign(&signed).to_bytes();
            }
            batch.push(&key(1).verifying_key(), &message, &sig);
        }
        assert_eq!(batch.failures(), vec![2, 4]);
        // One alone, and one under the wrong key.
        let mut one = SignatureBatch::new();
        let sig = key(1).sign(b"m").to_bytes();
        one.push(&key(2).verifying_key(), b"m", &sig);
        assert_eq!(one.failures(), vec![0]);
    }

    #[test]
    fn a_small_order_component_in_r_is_judged_alike_alone_and_in_batches() {
        // What a faulty signer can craft: R = [r]B + T with T of order 2, s = r + k·a.
        // It fails RFC 8032's cofactorless equation (what `verify_strict` checks) and
        // holds under the cofactored one. A batch check can only test the cofactored
        // one soundly, so single checks must too, or two correct replicas would judge
        // this signature differently (module docs).
        use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        use curve25519_dalek::scalar::Scalar;
        use sha2::{Digest as _, Sha512};

        let a = Scalar::from(0x1234_5678_9abc_def0u64) * Scalar::from(0x0fed_cba9_8765_4321u64);
        let public = (B * a).compress();
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let t = CompressedEdwardsY(minus_one).decompress().unwrap();
        assert!(t.is_small_order());
        let r = Scalar::from(987_654_321u64);
        let big_r = (B * r + t).compress();
        let message = b"crafted";
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(big_r.as_bytes())
                .chain_update(public.as_bytes())
                .chain_update(message),
        );
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        let crafted = VerifyingKey::from_bytes(public.as_bytes()).unwrap();

        let strict = crafted.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig));
        assert!(strict.is_err(), "the cofactorless rule refuses it");
        assert!(
            verify_one(&crafted, message, &sig),
            "ZIP 215 accepts it alone"
        );
        for others in 0..4u8 {
            let mut batch = SignatureBatch::new();
            for i in 0..others {
                let m = [i; 3];
                batch.push(&key(i).verifying_key(), &m, &key(i).sign(&m).to_bytes());
            }
            batch.push(&crafted, message, &sig);
            assert!(
                batch.failures().is_empty(),
                "and in a batch of {}",
                others + 1
            );
        }
    }

    #[test]
    fn a_non_canonical_s_is_refused_alone_and_in_a_batch() {
        // s + l: the same equation modulo l, but not the canonical encoding.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let message = b"canonical";
        let mut sig = key(3).sign(message).to_bytes();
        let mut carry = 0u16;
        for (i, l) in L.iter().enumerate() {
            let sum = u16::from(sig[32 + i]) + u16::from(*l) + carry;
            sig[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert!(!verify_one(&key(3).verifying_key(), message, &sig));
        let mut batch = SignatureBatch::new();
        batch.push(&key(3).verifying_key(), message, &sig);
        let good = key(3).sign(b"other").to_bytes();
        batch.push(&key(3).verifying_key(), b"other", &good);
        assert_eq!(batch.failures(), vec![0]);
    }
}
