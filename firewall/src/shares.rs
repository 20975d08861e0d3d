//! Signature shares from distinct execution replicas on one message, combined the cheap
//! way first (issue 4; Yin et al., SOSP 2003, §4.2): combine g+1 shares and verify the
//! one combined signature; only when that fails, verify the shares one by one, discard
//! the bad ones (their senders are reported) and try again with the rest.

use std::collections::BTreeMap;

use palisade_crypto::ThresholdVerifier;
use palisade_wire::firewall::{SignatureShare, ThresholdSignature};

#[derive(Clone, Debug)]
struct Held {
    share: SignatureShare,
    /// Checked on its own (after a failed combination) and found good.
    verified: bool,
}

/// The result of [`ShareSet::try_certify`].
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    /// The combined signature, verified on the message.
    pub signature: Option<ThresholdSignature>,
    /// Replicas whose shares failed their individual check (removed from the set).
    pub bad: Vec<u32>,
    /// Combinations that did not verify.
    pub failed_combinations: u64,
}

/// Shares on one message, at most one per replica.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShareSet {
    shares: BTreeMap<u32, Held>,
}

impl ShareSet {
    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn insert(&mut self, replica: u32, share: SignatureShare) {
        self.shares.insert(
            replica,
            Held {
                share,
                verified: false,
            },
        );
    }

    pub fn remove(&mut self, replica: u32) {
        self.shares.remove(&replica);
    }

    /// With at least g+1 shares (g = `verifier.threshold()`), combine g+1 of them
    /// (individually verified ones first) and verify the combination on `message`. If
    /// it does not verify, check the unverified shares that took part one by one, remove
    /// the bad ones, and retry while g+1 remain. Each round removes a share or ends, so
    /// this costs at most one combination per bad share.
    pub fn try_certify(&mut self, verifier: &dyn ThresholdVerifier, message: &[u8]) -> Attempt {
        let needed = verifier.threshold().saturating_add(1);
        let mut attempt = Attempt::default();
        while self.shares.len() >= needed {
            let mut picked: Vec<u32> = self
                .shares
                .iter()
                .filter(|(_, h)| h.verified)
                .map(|(r, _)| *r)
                .collect();
            picked.extend(
                self.shares
                    .iter()
                    .filter(|(_, h)| !h.verified)
                    .map(|(r, _)| *r),
            );
            picked.truncate(needed);
            let chosen: Vec<(u32, SignatureShare)> = picked
                .iter()
                .filter_map(|r| self.shares.get(r).map(|h| (*r, h.share.clone())))
                .collect();
            if let Ok(signature) = verifier.combine(&chosen) {
                if verifier.verify(message, &signature) {
                    attempt.signature = Some(signature);
                    return attempt;
                }
            }
            attempt.failed_combinations += 1;
            let mut removed_any = false;
            for (replica, share) in &chosen {
                let already = self.shares.get(replica).is_some_and(|h| h.verified);
                if already {
                    continue;
                }
                if verifier.verify_share(*replica, message, share) {
                    if let Some(h) = self.shares.get_mut(replica) {
                        h.verified = true;
                    }
                } else {
                    self.shares.remove(replica);
                    attempt.bad.push(*replica);
                    removed_any = true;
                }
            }
            if !removed_any {
                // g+1 individually good shares that do not combine: the scheme is broken
                // (or the verifier misconfigured); waiting for more shares cannot help
                // this set, and looping would not either.
                tracing::warn!(
                    shares = chosen.len(),
                    "g+1 verified shares did not combine into a valid signature"
                );
                break;
            }
        }
        attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_crypto::{deal_from_seed, signer_from_bytes, verifier_from_bytes, SchemeKind};

    #[test]
    fn bad_shares_are_found_only_after_a_failed_combination() {
        // g = 2, five parties: replicas 1 and 3 sign something else.
        let keys = deal_from_seed(SchemeKind::Blst, 2, 5, [3; 32]).unwrap();
        let verifier = verifier_from_bytes(&keys.public).unwrap();
        let share = |i: u32, m: &[u8]| {
            signer_from_bytes(&keys.public, i, &keys.shares[i as usize])
                .unwrap()
                .sign_share(m)
        };
        let mut set = ShareSet::default();
        for i in 0..3 {
            let m: &[u8] = if i == 1 { b"other" } else { b"message" };
            set.insert(i, share(i, m));
        }
        let first = set.try_certify(verifier.as_ref(), b"message");
        assert!(first.signature.is_none());
        assert_eq!(first.bad, vec![1]);
        assert_eq!(first.failed_combinations, 1);
        assert_eq!(set.len(), 2);

        set.insert(3, share(3, b"other"));
        let second = set.try_certify(verifier.as_ref(), b"message");
        assert!(second.signature.is_none());
        assert_eq!(second.bad, vec![3]);

        set.insert(4, share(4, b"message"));
        let third = set.try_certify(verifier.as_ref(), b"message");
        assert_eq!(third.failed_combinations, 0);
        assert!(third.bad.is_empty());
        let signature = third.signature.unwrap();
        assert!(verifier.verify(b"message", &signature));
    }

    #[test]
    fn fewer_than_g_plus_one_shares_do_nothing() {
        let keys = deal_from_seed(SchemeKind::Blst, 1, 3, [4; 32]).unwrap();
        let verifier = verifier_from_bytes(&keys.public).unwrap();
        let mut set = ShareSet::default();
        set.insert(0, SignatureShare(vec![1, 2, 3]));
        let attempt = set.try_certify(verifier.as_ref(), b"m");
        assert!(attempt.signature.is_none() && attempt.bad.is_empty());
        assert_eq!(attempt.failed_combinations, 0);
    }
}
