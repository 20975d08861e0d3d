//! Certified replies a filter forwarded, kept to answer retransmissions (SOSP 2003 §4:
//! "retransmissions are answered from a bounded cache"). Bounded by bytes; the oldest
//! sequence goes first. Re-sending a cached reply sends bytes that already crossed this
//! filter once, and that the execution cluster's unique threshold signature fixes.
//!
//! Replies stay past the stable checkpoint that collects their order: a reply lost on
//! its way up after that can only come from here, when agreement asks for it again on a
//! client's retransmission (`ExecutionMessage::ResendReply`, see `Filter::on_resend`).

use std::collections::BTreeMap;

use palisade_wire::agreement::Sequence;
use palisade_wire::firewall::CertifiedReply;

use crate::log::RequestKey;

/// Per cached reply: bytes charged besides its body, path and signature.
const ENTRY_OVERHEAD: usize = 96;

/// The bytes a cached reply is charged.
pub(crate) fn reply_bytes(reply: &CertifiedReply) -> usize {
    reply
        .entry
        .body
        .len()
        .saturating_add(reply.path.len().saturating_mul(32))
        .saturating_add(reply.signature.0.len())
        .saturating_add(ENTRY_OVERHEAD)
}

/// Certified replies by sequence and request.
#[derive(Clone, Debug)]
pub(crate) struct ReplyCache {
    by_sequence: BTreeMap<Sequence, BTreeMap<RequestKey, CertifiedReply>>,
    /// Each cached request's sequence (a request is ordered once; a later sequence for
    /// the same key replaces the index entry).
    by_request: BTreeMap<RequestKey, Sequence>,
    bytes: usize,
    max_bytes: usize,
}

impl ReplyCache {
    pub fn new(max_bytes: usize) -> ReplyCache {
        ReplyCache {
            by_sequence: BTreeMap::new(),
            by_request: BTreeMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Caches `reply`, then evicts whole sequences, oldest first, until the cache fits.
    pub fn insert(&mut self, reply: CertifiedReply) {
        let key = (reply.entry.client, reply.entry.request_id);
        let size = reply_bytes(&reply);
        self.by_request.insert(key, reply.sequence);
        let replies = self.by_sequence.entry(reply.sequence).or_default();
        if let Some(old) = replies.insert(key, reply) {
            self.bytes = self.bytes.saturating_sub(reply_bytes(&old));
        }
        self.bytes = self.bytes.saturating_add(size);
        while self.bytes > self.max_bytes {
            let Some((sequence, evicted)) = self.by_sequence.pop_first() else {
                break;
            };
            self.forget(sequence, evicted);
        }
    }

    /// The cached reply to one request, whatever its sequence.
    pub fn get(&self, key: &RequestKey) -> Option<&CertifiedReply> {
        let sequence = self.by_request.get(key)?;
        self.by_sequence.get(sequence)?.get(key)
    }

    /// Uncounts the replies of `sequence` just removed, and their index entries.
    fn forget(&mut self, sequence: Sequence, removed: BTreeMap<RequestKey, CertifiedReply>) {
        for (key, r) in removed {
            self.bytes = self.bytes.saturating_sub(reply_bytes(&r));
            if self.by_request.get(&key) == Some(&sequence) {
                self.by_request.remove(&key);
            }
        }
    }

    /// The cached replies of `sequence` for every one of `requests`, or `None` if any
    /// is missing.
    pub fn all_of<'a>(
        &self,
        sequence: Sequence,
        requests: impl Iterator<Item = &'a RequestKey>,
    ) -> Option<Vec<CertifiedReply>> {
        let cached = self.by_sequence.get(&sequence)?;
        requests.map(|key| cached.get(key).cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::firewall::{ReplyEntry, ThresholdSignature};

    fn reply(sequence: Sequence, request_id: u64) -> CertifiedReply {
        CertifiedReply {
            sequence,
            entry: ReplyEntry {
                client: 1,
                request_id,
                body: vec![0; 100],
            },
            leaf_index: 0,
            leaf_count: 1,
            path: vec![],
            signature: ThresholdSignature(vec![0; 96]),
        }
    }

    #[test]
    fn evicts_whole_sequences_oldest_first() {
        let one = reply_bytes(&reply(1, 1));
        let mut cache = ReplyCache::new(3 * one);
        cache.insert(reply(1, 1));
        cache.insert(reply(1, 2));
        cache.insert(reply(2, 3));
        assert_eq!(cache.bytes(), 3 * one);
        assert!(cache.all_of(1, [(1, 1), (1, 2)].iter()).is_some());
        cache.insert(reply(3, 4));
        // Sequence 1 (two replies) went as a whole.
        assert_eq!(cache.bytes(), 2 * one);
        assert!(cache.all_of(1, [(1, 1)].iter()).is_none());
        assert!(cache.all_of(2, [(1, 3)].iter()).is_some());
        assert!(cache.all_of(2, [(1, 3), (1, 9)].iter()).is_none());
        // The same reply again is not counted twice.
        cache.insert(reply(3, 4));
        assert_eq!(cache.bytes(), 2 * one);
        // By request, whatever the sequence; evicted ones are gone from the index too.
        assert_eq!(cache.get(&(1, 4)).map(|r| r.sequence), Some(3));
        assert_eq!(cache.get(&(1, 3)).map(|r| r.sequence), Some(2));
        assert!(cache.get(&(1, 1)).is_none());
        cache.insert(reply(4, 5));
        cache.insert(reply(5, 6));
        assert!(cache.get(&(1, 3)).is_none());
        assert_eq!(cache.get(&(1, 6)).map(|r| r.sequence), Some(5));
        assert_eq!(cache.by_request.len(), 3);
    }
}
