//! The last hop up: an agreement node relaying certified replies from the top filter row
//! to the gateways (SOSP 2003 §4: the agreement cluster forwards replies to clients).
//!
//! The relay does not check the threshold signature. The filter rows are where a reply
//! must prove itself (one whole row is correct), and the gateway believes nothing it has
//! not checked; a check here protected nobody and was 11% of the firewall configuration's
//! CPU (a pairing per batch at each of f+1 relaying nodes, docs/PERFORMANCE.md).
//!
//! What the relay adds is its *word*. A claim (sequence, Merkle root, signature) that
//! every one of the h+1 top filters sent it over their authenticated links was sent by a
//! correct filter, so it is true (`vouch.rs` makes the same argument one row down). When
//! the last top filter's copy of a claim arrives, the relay sends the gateway a `Vouch`
//! for it; f+1 agreement nodes vouching make the claim true for the gateway too, which
//! then needs no pairing either. The reply itself goes on at its first copy, as before,
//! so nothing waits here and a relay that crashes loses nothing the gateway needed.
//!
//! Nor may the relay be the weak link for liveness or memory: a faulty top filter could
//! send a forged or tampered reply first, so a reply is relayed once per distinct claim,
//! up to `width` claims per request (one per top filter, enough for the true one to get
//! through); the table is bounded. Hashing the path to its root costs one BLAKE3 pass
//! over the body, no pairing.

use std::collections::{BTreeMap, BTreeSet};

use palisade_crypto::reply_root_of;
use palisade_wire::agreement::{ClientId, Digest, Sequence};
use palisade_wire::firewall::{CertifiedReply, ThresholdSignature, Vouch};

/// What to do with one certified reply from a top filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayDecision {
    /// The first copy making its claim since the client last asked: send it on, and,
    /// when `vouch` is set, this vouch too (every top filter has now sent the claim).
    Relay { vouch: Option<Vouch> },
    /// A copy making this claim was relayed already; when `vouch` is set, this copy
    /// completed the claim: send the gateway this vouch.
    AlreadyRelayed { vouch: Option<Vouch> },
    /// As many different claims as there are top filters were made for this request
    /// already: the rest can only be forgeries.
    TooManySignatures,
    /// Its audit path does not lead to a root (out of bounds, or a broken path).
    Malformed,
}

/// What a certified reply claims: that `signature` signs `root` at `sequence`.
type Claim = (Sequence, Digest, ThresholdSignature);

#[derive(Debug)]
struct Relayed {
    sequence: Sequence,
    /// Each claim made for the request, and the top filters that made it.
    claims: Vec<(Claim, BTreeSet<u32>)>,
}

/// Which certified replies were relayed, per (client, request id).
#[derive(Debug)]
pub struct ReplyRelay {
    width: usize,
    max_requests: usize,
    relayed: BTreeMap<(ClientId, u64), Relayed>,
}

impl ReplyRelay {
    /// `width`: the top row's width, h+1 (distinct claims relayed per request, and the
    /// top filters whose copies make a vouch); `max_requests`: requests remembered (the
    /// oldest by sequence go first).
    pub fn new(width: usize, max_requests: usize) -> ReplyRelay {
        ReplyRelay {
            width: width.max(1),
            max_requests: max_requests.max(1),
            relayed: BTreeMap::new(),
        }
    }

    /// Decides for one reply from top filter `from` (whose bounds the caller checked),
    /// and records it.
    pub fn offer(&mut self, from: u32, reply: &CertifiedReply) -> RelayDecision {
        let Ok(root) = reply_root_of(reply) else {
            return RelayDecision::Malformed;
        };
        let claim = (reply.sequence, root, reply.signature.clone());
        let key = (reply.entry.client, reply.entry.request_id);
        if !self.relayed.contains_key(&key) && self.relayed.len() >= self.max_requests {
            self.evict_oldest();
        }
        let width = self.width;
        let entry = self.relayed.entry(key).or_insert_with(|| Relayed {
            sequence: reply.sequence,
            claims: Vec::new(),
        });
        entry.sequence = entry.sequence.max(reply.sequence);
        let (first, vouchers) = match entry.claims.iter().position(|(c, _)| *c == claim) {
            Some(i) => (false, &mut entry.claims[i].1),
            None if entry.claims.len() >= width => return RelayDecision::TooManySignatures,
            None => {
                entry.claims.push((claim.clone(), BTreeSet::new()));
                let last = entry.claims.len() - 1;
                (true, &mut entry.claims[last].1)
            }
        };
        let completes = vouchers.insert(from) && vouchers.len() == width;
        let vouch = completes.then_some(Vouch {
            sequence: claim.0,
            root: claim.1,
            signature: claim.2,
        });
        if first {
            RelayDecision::Relay { vouch }
        } else {
            RelayDecision::AlreadyRelayed { vouch }
        }
    }

    /// The client asked again (a retransmission): the copy relayed before may have been
    /// lost, so the next one goes through.
    pub fn forget(&mut self, client: ClientId, request_id: u64) {
        self.relayed.remove(&(client, request_id));
    }

    /// Forgets every reply of a batch at or below `sequence` (a stable checkpoint).
    pub fn collect_through(&mut self, sequence: Sequence) {
        self.relayed.retain(|_, r| r.sequence > sequence);
    }

    /// Forgets everything (a restart of the relaying role).
    pub fn clear(&mut self) {
        self.relayed.clear();
    }

    pub fn len(&self) -> usize {
        self.relayed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.relayed.is_empty()
    }

    /// Drops the entries of the oldest sequence held (a late copy of one of them is
    /// relayed again, which the gateway drops as a duplicate).
    fn evict_oldest(&mut self) {
        let Some(oldest) = self.relayed.values().map(|r| r.sequence).min() else {
            return;
        };
        self.relayed.retain(|_, r| r.sequence > oldest);
        if self.relayed.len() >= self.max_requests {
            // One sequence held them all: make room anyway.
            self.relayed.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use palisade_wire::firewall::ReplyEntry;

    use super::*;

    fn reply(sequence: Sequence, request_id: u64, signature: u8) -> CertifiedReply {
        CertifiedReply {
            sequence,
            entry: ReplyEntry {
                client: 0,
                request_id,
                body: vec![1, 2, 3],
            },
            leaf_index: 0,
            leaf_count: 1,
            path: Vec::<Digest>::new(),
            signature: ThresholdSignature(vec![signature; 48]),
        }
    }

    fn vouch_of(r: &CertifiedReply) -> Option<Vouch> {
        Some(Vouch {
            sequence: r.sequence,
            root: reply_root_of(r).unwrap(),
            signature: r.signature.clone(),
        })
    }

    const RELAY: RelayDecision = RelayDecision::Relay { vouch: None };
    const ALREADY: RelayDecision = RelayDecision::AlreadyRelayed { vouch: None };

    #[test]
    fn once_per_claim_and_a_vouch_when_every_top_filter_sent_it() {
        let mut r = ReplyRelay::new(2, 100);
        let good = reply(5, 1, 7);
        assert_eq!(r.offer(0, &good), RELAY);
        // The same filter again: nothing.
        assert_eq!(r.offer(0, &good), ALREADY);
        // The other top filter's copy: not relayed again, but vouched for.
        assert_eq!(
            r.offer(1, &good),
            RelayDecision::AlreadyRelayed {
                vouch: vouch_of(&good)
            }
        );
        assert_eq!(r.offer(1, &good), ALREADY, "one vouch per claim");
        // A forgery arriving after (or before) the true one does not block it...
        assert_eq!(r.offer(0, &reply(5, 1, 9)), RELAY);
        // ...and forgeries cannot make the relay send without end.
        assert_eq!(
            r.offer(1, &reply(5, 1, 10)),
            RelayDecision::TooManySignatures
        );
        // A tampered body under the true signature is another claim: it does not take
        // the true reply's place either.
        let mut tampered = reply(5, 3, 7);
        tampered.entry.body = b"tampered".to_vec();
        assert_eq!(r.offer(0, &tampered), RELAY);
        assert_eq!(r.offer(0, &reply(5, 3, 7)), RELAY);
        // A broken audit path names no root at all.
        let mut broken = reply(5, 4, 7);
        broken.leaf_count = 2;
        assert_eq!(r.offer(0, &broken), RelayDecision::Malformed);
        // A retransmission lets the next copy through again.
        r.forget(0, 1);
        assert_eq!(r.offer(1, &good), RELAY);
        // One top filter (h = 0): its copy is relayed and vouched for at once.
        let mut one = ReplyRelay::new(1, 100);
        assert_eq!(
            one.offer(0, &good),
            RelayDecision::Relay {
                vouch: vouch_of(&good)
            }
        );
    }

    #[test]
    fn memory_is_bounded_and_collected_by_checkpoints() {
        let mut r = ReplyRelay::new(2, 3);
        for id in 1..=3 {
            assert_eq!(r.offer(0, &reply(id, id, 1)), RELAY);
        }
        assert_eq!(r.len(), 3);
        // Full: the oldest sequence goes.
        assert_eq!(r.offer(0, &reply(4, 4, 1)), RELAY);
        assert_eq!(r.len(), 3);
        assert_eq!(r.offer(0, &reply(1, 1, 1)), RELAY, "evicted");
        r.collect_through(3);
        assert_eq!(r.len(), 1);
        r.clear();
        assert!(r.is_empty());
    }
}
