//! Vouches for certified-reply claims, and the replies waiting on them (firewall
//! configuration).
//!
//! An agreement node sends a `Vouch` for a claim (sequence, Merkle root, signature) when
//! every top filter sent it certified replies making that claim: one of those filters is
//! correct and checked it (`palisade_firewall::ReplyRelay`). An agreement node may be
//! faulty, so the client believes the word of f+1 of them — one is correct — and then
//! needs no pairing of its own. A certified reply whose claim is not yet vouched for
//! waits here, at most `vouch_wait`, after which the client checks the signature itself.
//!
//! Bounded: at most [`MAX_CLAIMS`] claims are counted (the lowest sequence goes first;
//! forgetting one only costs a pairing later), at most [`MAX_WAITING_PER_REQUEST`] replies
//! wait per request, and waiting replies take at most `max_bytes` (beyond that, a reply
//! is checked at once instead).

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::agreement::{Digest, Sequence};
use palisade_wire::firewall::{CertifiedReply, ThresholdSignature};

/// Most claims whose vouchers are counted.
pub const MAX_CLAIMS: usize = 256;
/// Most replies (distinct claims) waiting per request; one is the normal case.
pub const MAX_WAITING_PER_REQUEST: usize = 4;

/// What a certified reply claims: `signature` signs `root` at `sequence`.
pub type Claim = (Sequence, Digest, ThresholdSignature);

/// A reply waiting for its claim to be vouched for.
#[derive(Debug)]
pub struct Waiting {
    pub request_id: u64,
    pub claim: Claim,
    pub reply: CertifiedReply,
    bytes: usize,
}

/// Vouchers per claim, and the replies waiting on them.
#[derive(Debug)]
pub struct Vouches {
    vouchers: BTreeMap<Claim, BTreeSet<u32>>,
    waiting: BTreeMap<u64, Vec<Waiting>>,
    bytes: usize,
    max_bytes: usize,
}

fn reply_bytes(reply: &CertifiedReply) -> usize {
    reply
        .entry
        .body
        .len()
        .saturating_add(reply.path.len().saturating_mul(32))
        .saturating_add(256)
}

impl Vouches {
    pub fn new(max_bytes: usize) -> Vouches {
        Vouches {
            vouchers: BTreeMap::new(),
            waiting: BTreeMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Agreement node `from` vouches for `claim`. When that makes `needed` distinct
    /// vouchers, the claim is true: it is forgotten here (the caller remembers it as
    /// verified) and the replies waiting on it are returned.
    pub fn vouch(&mut self, claim: Claim, from: u32, needed: usize) -> Option<Vec<Waiting>> {
        if !self.vouchers.contains_key(&claim) && self.vouchers.len() >= MAX_CLAIMS {
            self.vouchers.pop_first();
        }
        let vouchers = self.vouchers.entry(claim.clone()).or_default();
        vouchers.insert(from);
        if vouchers.len() < needed {
            return None;
        }
        self.vouchers.remove(&claim);
        let mut released = Vec::new();
        for waiting in self.waiting.values_mut() {
            let (hit, rest): (Vec<_>, Vec<_>) = std::mem::take(waiting)
                .into_iter()
                .partition(|w| w.claim == claim);
            *waiting = rest;
            released.extend(hit);
        }
        self.waiting.retain(|_, w| !w.is_empty());
        for w in &released {
            self.bytes = self.bytes.saturating_sub(w.bytes);
        }
        Some(released)
    }

    /// Lets `reply` (to `request_id`, making `claim`) wait for vouchers. Gives it back
    /// when there is no room (check it now instead; not copied, a body may be 1 MiB). A
    /// second reply making the same claim for the same request is not needed and is
    /// dropped (`Ok`).
    pub fn wait(
        &mut self,
        request_id: u64,
        claim: Claim,
        reply: CertifiedReply,
    ) -> Result<(), CertifiedReply> {
        let bytes = reply_bytes(&reply);
        let waiting = self.waiting.entry(request_id).or_default();
        if waiting.iter().any(|w| w.claim == claim) {
            return Ok(());
        }
        if waiting.len() >= MAX_WAITING_PER_REQUEST
            || self.bytes.saturating_add(bytes) > self.max_bytes
        {
            if waiting.is_empty() {
                self.waiting.remove(&request_id);
            }
            return Err(reply);
        }
        waiting.push(Waiting {
            request_id,
            claim,
            reply,
            bytes,
        });
        self.bytes = self.bytes.saturating_add(bytes);
        Ok(())
    }

    /// Forgets the replies waiting for `request_id` (it completed).
    pub fn remove(&mut self, request_id: u64) {
        if let Some(waiting) = self.waiting.remove(&request_id) {
            for w in waiting {
                self.bytes = self.bytes.saturating_sub(w.bytes);
            }
        }
    }

    /// Takes every waiting reply (their time is up).
    pub fn take_waiting(&mut self) -> Vec<Waiting> {
        self.bytes = 0;
        std::mem::take(&mut self.waiting)
            .into_values()
            .flatten()
            .collect()
    }

    /// Whether any reply waits.
    pub fn any_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Bytes of replies waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::firewall::ReplyEntry;

    fn reply(request_id: u64, signature: u8) -> CertifiedReply {
        CertifiedReply {
            sequence: 3,
            entry: ReplyEntry {
                client: 0,
                request_id,
                body: vec![1; 10],
            },
            leaf_index: 0,
            leaf_count: 1,
            path: vec![],
            signature: ThresholdSignature(vec![signature; 48]),
        }
    }

    fn claim(signature: u8) -> Claim {
        (3, Digest([1; 32]), ThresholdSignature(vec![signature; 48]))
    }

    #[test]
    fn f_plus_one_distinct_vouchers_release_the_replies_of_their_claim() {
        let mut v = Vouches::new(1 << 20);
        assert!(v.wait(1, claim(7), reply(1, 7)).is_ok());
        assert!(
            v.wait(1, claim(7), reply(1, 7)).is_ok(),
            "a copy is not kept twice"
        );
        assert!(v.wait(1, claim(9), reply(1, 9)).is_ok());
        assert!(v.wait(2, claim(7), reply(2, 7)).is_ok());
        assert!(v.vouch(claim(7), 0, 2).is_none());
        assert!(v.vouch(claim(7), 0, 2).is_none(), "the same node twice");
        let released = v.vouch(claim(7), 1, 2).unwrap();
        let mut ids: Vec<u64> = released.iter().map(|w| w.request_id).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
        // The other claim still waits.
        assert!(v.any_waiting());
        assert_eq!(v.take_waiting().len(), 1);
        assert_eq!(v.bytes(), 0);
        // Vouchers may come before any reply: the claim completes all the same.
        assert!(v.vouch(claim(5), 2, 2).is_none());
        assert!(v.vouch(claim(5), 3, 2).unwrap().is_empty());
    }

    #[test]
    fn waiting_and_counting_are_bounded() {
        let mut v = Vouches::new(1 << 20);
        for s in 0..MAX_WAITING_PER_REQUEST as u8 {
            assert!(v.wait(1, claim(s), reply(1, s)).is_ok());
        }
        assert!(v.wait(1, claim(99), reply(1, 99)).is_err());
        v.remove(1);
        assert!(!v.any_waiting());
        assert_eq!(v.bytes(), 0);
        let mut small = Vouches::new(100);
        assert!(small.wait(1, claim(1), reply(1, 1)).is_err());
        assert!(!small.any_waiting());
        for s in 0..=MAX_CLAIMS as u64 {
            let c = (s, Digest([2; 32]), ThresholdSignature(vec![1; 48]));
            assert!(v.vouch(c, 0, 2).is_none());
        }
        assert_eq!(v.vouchers.len(), MAX_CLAIMS);
    }
}
