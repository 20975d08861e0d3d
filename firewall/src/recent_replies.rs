//! [`RecentReplies`]: the certified replies an agreement node received from the top filter
//! row, kept so that a gateway that asks again can still be answered.
//!
//! Why: only agreement replicas 0..=f relay certified replies (one of them is correct),
//! so a reply whose copies to those f+1 were lost on the last hop, or reached them while
//! they were down, never reaches its gateway. The gateway retransmits its request, but
//! once a stable checkpoint collected the batch, neither agreement's delivery log nor the
//! filters' logs and caches hold it any more, and nothing below re-sends it: the request
//! was never answered. (`palisade-sim` seeds 91 and 103 of the `firewall` scenario, once
//! a crash lost an execution replica's unsynced commits as a real disk would.)
//!
//! Every top filter sends every certified reply to every agreement node, so the other
//! nodes usually hold a copy. Each node keeps what it received, bounded in bytes and in
//! requests, oldest first out, and not collected by checkpoints (that is what it is for);
//! on a retransmission of a request it delivered, a node holding a reply for it sends the
//! reply to the gateway. The gateway checks it as any other (`palisade-client`).
//!
//! A faulty top filter may send garbage: copies are kept per sending filter, at most one
//! each (equal copies stored once), so it cannot crowd out a correct filter's copy, and
//! the node checks nothing it would not check on relaying.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use palisade_wire::agreement::ClientId;
use palisade_wire::firewall::CertifiedReply;

use crate::cache::reply_bytes as size_of;

/// A request's copies, and the top filters that sent each.
type Copies = Vec<(BTreeSet<u32>, CertifiedReply)>;

/// Certified replies by (client, request id), oldest first out.
#[derive(Debug)]
pub struct RecentReplies {
    max_requests: usize,
    max_bytes: usize,
    bytes: usize,
    replies: BTreeMap<(ClientId, u64), Copies>,
    /// Requests in the order their first copy came: the eviction order.
    arrival: VecDeque<(ClientId, u64)>,
}

impl RecentReplies {
    /// The agreement nodes' bound on requests kept: a few windows of every gateway's
    /// requests in flight.
    pub const DEFAULT_REQUESTS: usize = 4096;
    /// The agreement nodes' bound on bytes kept: 64 certified 1 MiB READ replies.
    pub const DEFAULT_BYTES: usize = 64 << 20;

    /// At most `max_requests` requests and `max_bytes` of replies (a reply larger than
    /// that is not kept).
    pub fn new(max_requests: usize, max_bytes: usize) -> RecentReplies {
        RecentReplies {
            max_requests: max_requests.max(1),
            max_bytes,
            bytes: 0,
            replies: BTreeMap::new(),
            arrival: VecDeque::new(),
        }
    }

    /// Keeps the copy top filter `from` sent (its bounds checked by the caller): the
    /// first copy from each filter, equal copies once.
    pub fn keep(&mut self, from: u32, reply: CertifiedReply) {
        let size = size_of(&reply);
        if size > self.max_bytes {
            return;
        }
        let key = (reply.entry.client, reply.entry.request_id);
        if let Some(copies) = self.replies.get_mut(&key) {
            if copies.iter().any(|(senders, _)| senders.contains(&from)) {
                return;
            }
            if let Some((senders, _)) = copies.iter_mut().find(|(_, r)| *r == reply) {
                senders.insert(from);
                return;
            }
        }
        while self.bytes.saturating_add(size) > self.max_bytes
            || (!self.replies.contains_key(&key) && self.replies.len() >= self.max_requests)
        {
            if !self.evict_oldest() {
                break;
            }
        }
        if !self.replies.contains_key(&key) {
            self.arrival.push_back(key);
        }
        self.bytes = self.bytes.saturating_add(size);
        self.replies
            .entry(key)
            .or_default()
            .push((BTreeSet::from([from]), reply));
    }

    /// The copies kept for a request (usually one; more only if top filters disagreed).
    pub fn get(&self, client: ClientId, request_id: u64) -> impl Iterator<Item = &CertifiedReply> {
        self.replies
            .get(&(client, request_id))
            .into_iter()
            .flatten()
            .map(|(_, reply)| reply)
    }

    /// Requests with a kept reply.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    /// Bytes counted for the kept replies (as the filters' reply cache counts them).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets the request whose first copy came first; false if nothing is kept.
    fn evict_oldest(&mut self) -> bool {
        let Some(key) = self.arrival.pop_front() else {
            return false;
        };
        if let Some(copies) = self.replies.remove(&key) {
            let freed: usize = copies.iter().map(|(_, r)| size_of(r)).sum();
            self.bytes = self.bytes.saturating_sub(freed);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::firewall::{ReplyEntry, ThresholdSignature};

    fn reply(client: ClientId, request_id: u64, body: &[u8]) -> CertifiedReply {
        CertifiedReply {
            sequence: request_id,
            entry: ReplyEntry {
                client,
                request_id,
                body: body.to_vec(),
            },
            leaf_index: 0,
            leaf_count: 1,
            path: Vec::new(),
            signature: ThresholdSignature(vec![7; 48]),
        }
    }

    #[test]
    fn one_copy_per_filter_equal_copies_once() {
        let mut recent = RecentReplies::new(16, 1 << 20);
        recent.keep(0, reply(1, 5, b"true"));
        recent.keep(1, reply(1, 5, b"true"));
        assert_eq!(recent.get(1, 5).count(), 1, "equal copies are stored once");
        // A faulty filter's second, different copy is ignored; its first one counts.
        recent.keep(0, reply(1, 5, b"forged"));
        assert_eq!(recent.get(1, 5).count(), 1);
        recent.keep(2, reply(1, 5, b"forged"));
        let bodies: Vec<&[u8]> = recent.get(1, 5).map(|r| &r.entry.body[..]).collect();
        assert_eq!(bodies, vec![&b"true"[..], &b"forged"[..]]);
        assert_eq!(recent.get(1, 6).count(), 0);
        assert_eq!(recent.get(2, 5).count(), 0);
    }

    #[test]
    fn the_oldest_requests_go_first_within_both_bounds() {
        let mut recent = RecentReplies::new(3, 1 << 20);
        for id in 1..=4 {
            recent.keep(0, reply(1, id, b"x"));
        }
        assert_eq!(recent.len(), 3);
        assert_eq!(recent.get(1, 1).count(), 0, "the oldest went");
        assert_eq!(recent.get(1, 4).count(), 1);
        // Bytes, as the filters' reply cache counts them: room for two 1,000-byte bodies.
        let one = size_of(&reply(1, 1, &[0; 1_000]));
        let mut recent = RecentReplies::new(100, 2 * one);
        for id in 1..=3 {
            recent.keep(0, reply(1, id, &[0; 1_000]));
        }
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.bytes(), 2 * one);
        assert_eq!(recent.get(1, 1).count(), 0);
        // Larger than the whole budget: not kept, nothing evicted for it.
        recent.keep(0, reply(1, 9, &[0; 4_000]));
        assert_eq!(recent.get(1, 9).count(), 0);
        assert_eq!(recent.len(), 2);
    }
}
