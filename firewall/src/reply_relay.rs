//! The last hop up: an agreement node relaying certified replies from the top filter row
//! to the gateways (SOSP 2003 §4: the agreement cluster forwards replies to clients).
//!
//! The relay does not check the threshold signature. The filter rows are where a reply
//! must prove itself (every row checks it, and one whole row is correct), and the gateway
//! checks it again before it believes anything; a check here protected nobody and was
//! 11% of the firewall configuration's CPU (a pairing per batch at each of f+1 relaying
//! nodes, docs/PERFORMANCE.md). What the relay must still do is not be the weak link for
//! liveness or memory: a faulty top filter could send a forged or tampered reply first, so
//! a reply is relayed once per distinct *claim* — the sequence, the Merkle root its body
//! and audit path hash to, and the signature (a BLS threshold signature is unique and
//! bodies are sealed deterministically, so every correct filter sends the same claim) —
//! up to `max_signatures` claims per request, one per top filter being enough for the
//! true one to get through; and the table is bounded. Hashing the path to its root costs
//! one BLAKE3 pass over the body, no pairing.

use std::collections::BTreeMap;

use palisade_crypto::reply_root_of;
use palisade_wire::agreement::{ClientId, Digest, Sequence};
use palisade_wire::firewall::{CertifiedReply, ThresholdSignature};

/// What to do with one certified reply from above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayDecision {
    /// First copy with this signature since the client last asked: send it on.
    Relay,
    /// A copy making this claim was relayed already.
    AlreadyRelayed,
    /// As many different claims as there are top filters were relayed for this request
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
    claims: Vec<Claim>,
}

/// Which certified replies were relayed, per (client, request id).
#[derive(Debug)]
pub struct ReplyRelay {
    max_signatures: usize,
    max_requests: usize,
    relayed: BTreeMap<(ClientId, u64), Relayed>,
}

impl ReplyRelay {
    /// `max_signatures`: distinct signatures relayed per request (h+1, the top row's
    /// width); `max_requests`: requests remembered (the oldest by sequence go first).
    pub fn new(max_signatures: usize, max_requests: usize) -> ReplyRelay {
        ReplyRelay {
            max_signatures: max_signatures.max(1),
            max_requests: max_requests.max(1),
            relayed: BTreeMap::new(),
        }
    }

    /// Decides for one reply (whose bounds the caller checked) and records a relay.
    pub fn offer(&mut self, reply: &CertifiedReply) -> RelayDecision {
        let Ok(root) = reply_root_of(reply) else {
            return RelayDecision::Malformed;
        };
        let claim = (reply.sequence, root, reply.signature.clone());
        let key = (reply.entry.client, reply.entry.request_id);
        if let Some(seen) = self.relayed.get_mut(&key) {
            if seen.claims.contains(&claim) {
                return RelayDecision::AlreadyRelayed;
            }
            if seen.claims.len() >= self.max_signatures {
                return RelayDecision::TooManySignatures;
            }
            seen.claims.push(claim);
            seen.sequence = seen.sequence.max(reply.sequence);
            return RelayDecision::Relay;
        }
        if self.relayed.len() >= self.max_requests {
            self.evict_oldest();
        }
        self.relayed.insert(
            key,
            Relayed {
                sequence: reply.sequence,
                claims: vec![claim],
            },
        );
        RelayDecision::Relay
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

    #[test]
    fn once_per_signature_up_to_the_top_rows_width() {
        let mut r = ReplyRelay::new(2, 100);
        assert_eq!(r.offer(&reply(5, 1, 7)), RelayDecision::Relay);
        // The other top filter's copy: the same unique signature.
        assert_eq!(r.offer(&reply(5, 1, 7)), RelayDecision::AlreadyRelayed);
        // A forgery arriving after (or before) the true one does not block it...
        assert_eq!(r.offer(&reply(5, 1, 9)), RelayDecision::Relay);
        // ...and forgeries cannot make the relay send without end.
        assert_eq!(r.offer(&reply(5, 1, 10)), RelayDecision::TooManySignatures);
        // A tampered body under the true signature is another claim: it does not take
        // the true reply's place either.
        let mut tampered = reply(5, 3, 7);
        tampered.entry.body = b"tampered".to_vec();
        assert_eq!(r.offer(&tampered), RelayDecision::Relay);
        assert_eq!(r.offer(&reply(5, 3, 7)), RelayDecision::Relay);
        // A broken audit path names no root at all.
        let mut broken = reply(5, 4, 7);
        broken.leaf_count = 2;
        assert_eq!(r.offer(&broken), RelayDecision::Malformed);
        assert_eq!(r.offer(&reply(5, 2, 7)), RelayDecision::Relay);
        // A retransmission lets the next copy through again.
        r.forget(0, 1);
        assert_eq!(r.offer(&reply(5, 1, 7)), RelayDecision::Relay);
    }

    #[test]
    fn memory_is_bounded_and_collected_by_checkpoints() {
        let mut r = ReplyRelay::new(2, 3);
        for id in 1..=3 {
            assert_eq!(r.offer(&reply(id, id, 1)), RelayDecision::Relay);
        }
        assert_eq!(r.len(), 3);
        // Full: the oldest sequence goes.
        assert_eq!(r.offer(&reply(4, 4, 1)), RelayDecision::Relay);
        assert_eq!(r.len(), 3);
        assert_eq!(r.offer(&reply(1, 1, 1)), RelayDecision::Relay, "evicted");
        r.collect_through(3);
        assert_eq!(r.len(), 1);
        r.clear();
        assert!(r.is_empty());
    }
}
