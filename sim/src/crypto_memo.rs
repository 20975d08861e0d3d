//! The execution cluster's threshold keys and the gateway/execution body key for one
//! simulated run, and a memoizing [`ThresholdVerifier`] shared by every simulated node.
//!
//! BLS operations cost about 0.5–2.5 ms each, and in a real deployment every filter,
//! agreement node and gateway checks the same combined signature of a batch on its own.
//! Verification and combination are pure functions of their inputs, so the simulator
//! computes each distinct one once per run and hands every node that asks the same
//! answer: behaviour is unchanged (a node that asks about other bytes gets the answer for
//! those bytes), and a seed costs a few BLS operations per batch instead of dozens.
//! [`CryptoCounters`] records how many calls there were and how many were computed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use palisade_crypto::{
    deal_from_seed, signer_from_bytes, verifier_from_bytes, BodyKey, CryptoError, ThresholdSigner,
    ThresholdVerifier,
};
use palisade_wire::firewall::{SignatureShare, ThresholdSignature};

/// Most memoized answers of each kind (a run needs a few per batch; beyond this the
/// memo starts over, which only costs time).
const MAX_MEMO: usize = 1 << 16;

/// Calls to the shared verifier, and how many were real BLS operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CryptoCounters {
    pub calls: u64,
    pub computed: u64,
}

#[derive(Debug, Default)]
struct Memo {
    verify: BTreeMap<(Vec<u8>, Vec<u8>), bool>,
    verify_share: BTreeMap<(u32, Vec<u8>, Vec<u8>), bool>,
    combine: BTreeMap<Vec<(u32, Vec<u8>)>, ThresholdSignature>,
    counters: CryptoCounters,
}

/// A [`ThresholdVerifier`] that computes each distinct question once.
#[derive(Debug)]
pub struct MemoVerifier {
    inner: Arc<dyn ThresholdVerifier>,
    memo: Mutex<Memo>,
}

impl MemoVerifier {
    pub fn new(inner: Arc<dyn ThresholdVerifier>) -> MemoVerifier {
        MemoVerifier {
            inner,
            memo: Mutex::new(Memo::default()),
        }
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        // One thread: poisoning cannot happen; if it did, the memo is still consistent
        // (entries are inserted whole).
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn counters(&self) -> CryptoCounters {
        self.memo().counters
    }
}

fn bounded_insert<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_MEMO {
        map.clear();
    }
    map.insert(key, value);
}

impl ThresholdVerifier for MemoVerifier {
    fn threshold(&self) -> usize {
        self.inner.threshold()
    }

    fn parties(&self) -> usize {
        self.inner.parties()
    }

    fn verify_share(&self, signer: u32, message: &[u8], share: &SignatureShare) -> bool {
        let key = (signer, message.to_vec(), share.0.clone());
        let mut memo = self.memo();
        memo.counters.calls += 1;
        if let Some(known) = memo.verify_share.get(&key) {
            return *known;
        }
        memo.counters.computed += 1;
        let ok = self.inner.verify_share(signer, message, share);
        bounded_insert(&mut memo.verify_share, key, ok);
        ok
    }

    fn combine(&self, shares: &[(u32, SignatureShare)]) -> Result<ThresholdSignature, CryptoError> {
        let key: Vec<(u32, Vec<u8>)> = shares.iter().map(|(i, s)| (*i, s.0.clone())).collect();
        let mut memo = self.memo();
        memo.counters.calls += 1;
        if let Some(known) = memo.combine.get(&key) {
            return Ok(known.clone());
        }
        memo.counters.computed += 1;
        let signature = self.inner.combine(shares)?;
        bounded_insert(&mut memo.combine, key, signature.clone());
        Ok(signature)
    }

    fn verify(&self, message: &[u8], signature: &ThresholdSignature) -> bool {
        let key = (message.to_vec(), signature.0.clone());
        let mut memo = self.memo();
        memo.counters.calls += 1;
        if let Some(known) = memo.verify.get(&key) {
            return *known;
        }
        memo.counters.computed += 1;
        let ok = self.inner.verify(message, signature);
        bounded_insert(&mut memo.verify, key, ok);
        ok
    }
}

/// The firewall configuration's keys for one run, all derived from the seed.
#[derive(Debug, Clone)]
pub struct FirewallKeys {
    /// The execution cluster's public key, memoized, shared by every node.
    pub verifier: Arc<MemoVerifier>,
    /// One threshold signer per execution replica (index = replica id).
    pub signers: Vec<Arc<dyn ThresholdSigner>>,
    /// Shared by gateways and execution replicas only (issue 4 §3).
    pub body_key: BodyKey,
}

impl FirewallKeys {
    /// Deals g+1-of-2g+1 BLS keys (`palisade_crypto::DEFAULT_SCHEME`) and a body key from `seed`.
    pub fn from_seed(seed: u64, g: usize) -> Result<FirewallKeys, CryptoError> {
        let parties = 2 * g + 1;
        let dealt = deal_from_seed(
            palisade_crypto::DEFAULT_SCHEME,
            g,
            parties,
            derive(seed, 0xF1),
        )?;
        let verifier = Arc::new(MemoVerifier::new(verifier_from_bytes(&dealt.public)?));
        let signers = dealt
            .shares
            .iter()
            .enumerate()
            .map(|(i, share)| signer_from_bytes(&dealt.public, i as u32, share))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FirewallKeys {
            verifier,
            signers,
            body_key: BodyKey::from_bytes(derive(seed, 0xB0))?,
        })
    }

    /// The verifier as the trait object the cores take.
    pub fn verifier(&self) -> Arc<dyn ThresholdVerifier> {
        self.verifier.clone()
    }
}

/// 32 bytes for one purpose from the run's seed.
fn derive(seed: u64, domain: u8) -> [u8; 32] {
    let mut b = [domain; 32];
    b[..8].copy_from_slice(&seed.to_le_bytes());
    b
}

/// A `rand` 0.9 cryptographic RNG over a seeded ChaCha8 stream, for sealing requests
/// (a random nonce each): deterministic, so a seed replays exactly.
#[derive(Debug, Clone)]
pub struct SealRng(rand_chacha::ChaCha8Rng);

impl SealRng {
    pub fn new(seed: u64, stream: u64) -> SealRng {
        use rand_chacha::rand_core::SeedableRng;
        let mut b = derive(seed, 0x5E);
        b[8..16].copy_from_slice(&stream.to_le_bytes());
        SealRng(rand_chacha::ChaCha8Rng::from_seed(b))
    }
}

impl rand::RngCore for SealRng {
    fn next_u32(&mut self) -> u32 {
        rand_chacha::rand_core::Rng::next_u32(&mut self.0)
    }

    fn next_u64(&mut self) -> u64 {
        rand_chacha::rand_core::Rng::next_u64(&mut self.0)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_chacha::rand_core::Rng::fill_bytes(&mut self.0, dest)
    }
}

impl rand::CryptoRng for SealRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::firewall::stable_message;

    #[test]
    fn memoized_answers_equal_computed_ones() {
        let keys = FirewallKeys::from_seed(3, 1).unwrap();
        let m = stable_message(4);
        let shares: Vec<_> = [0u32, 2]
            .iter()
            .map(|i| (*i, keys.signers[*i as usize].sign_share(&m)))
            .collect();
        let v = keys.verifier();
        let sig = v.combine(&shares).unwrap();
        assert!(v.verify(&m, &sig));
        assert!(v.verify(&m, &sig));
        assert!(!v.verify(&stable_message(5), &sig));
        assert!(v.verify_share(0, &m, &shares[0].1));
        assert!(!v.verify_share(1, &m, &shares[0].1));
        let c = keys.verifier.counters();
        assert_eq!(c.calls, 6);
        assert_eq!(c.computed, 5);
        // Another subset combines to the same bytes (BLS uniqueness), memoized or not.
        let other: Vec<_> = [1u32, 2]
            .iter()
            .map(|i| (*i, keys.signers[*i as usize].sign_share(&m)))
            .collect();
        assert_eq!(v.combine(&other).unwrap(), sig);
    }

    #[test]
    fn a_seed_deals_the_same_keys() {
        let a = FirewallKeys::from_seed(9, 1).unwrap();
        let b = FirewallKeys::from_seed(9, 1).unwrap();
        let m = b"x";
        assert_eq!(a.signers[1].sign_share(m), b.signers[1].sign_share(m));
        assert_eq!(a.body_key.to_bytes(), b.body_key.to_bytes());
    }
}
