//! The reply path of the firewall configuration (Yin et al., SOSP 2003, §4; DESIGN §5 "one
//! signature per batch"): one threshold-signature share per executed batch, over the
//! RFC 6962 Merkle root of its replies, and the cache that re-sends a batch's messages
//! when its ORDER is delivered again.

use std::collections::BTreeMap;

use palisade_crypto::ThresholdSigner;
use palisade_wire::agreement::{ClientId, Digest, Sequence};
use palisade_wire::execution::ExecReplicaId;
use palisade_wire::firewall::{
    reply_root_message, FirewallMessage, ReplyBody, ReplyEntry, ReplyShare, StableShare,
};

/// The messages of one executed batch, in the order they go to the bottom filter row:
/// first this replica's [`reply_share`] over `leaves` (the leaf hashes of `entries`, in
/// batch order), then one `ReplyBody` per entry. Deterministic: equal entries give equal
/// leaves and (BLS) equal shares on every correct replica. No entries, no messages: there
/// is nothing to certify.
pub(crate) fn batch_messages(
    signer: &dyn ThresholdSigner,
    sequence: Sequence,
    replica: ExecReplicaId,
    entries: Vec<ReplyEntry>,
    leaves: Vec<Digest>,
) -> Vec<FirewallMessage> {
    if entries.is_empty() {
        return Vec::new();
    }
    let mut messages = Vec::with_capacity(entries.len() + 1);
    messages.push(reply_share(signer, sequence, replica, leaves));
    messages.extend(entries.into_iter().map(|entry| {
        FirewallMessage::ReplyBody(ReplyBody {
            sequence,
            replica,
            entry,
        })
    }));
    messages
}

/// This replica's `ReplyShare` of a batch: the leaf hashes of its replies and its share
/// of the signature on `reply_root_message(sequence, root(leaves))`. Sent alone (no
/// bodies) for a batch whose replies this replica knows only as leaves: the bodies come
/// from a replica that executed it, and a filter checks each against the leaves.
pub(crate) fn reply_share(
    signer: &dyn ThresholdSigner,
    sequence: Sequence,
    replica: ExecReplicaId,
    leaves: Vec<Digest>,
) -> FirewallMessage {
    let root = palisade_crypto::root(&leaves);
    let share = signer.sign_share(&reply_root_message(sequence, &root));
    FirewallMessage::ReplyShare(ReplyShare {
        sequence,
        replica,
        leaves,
        share,
    })
}

/// This replica's share of the signature on `stable_message(sequence)`.
pub(crate) fn stable_share(
    signer: &dyn ThresholdSigner,
    sequence: Sequence,
    replica: ExecReplicaId,
) -> FirewallMessage {
    FirewallMessage::StableShare(StableShare {
        sequence,
        replica,
        share: signer.sign_share(&palisade_wire::firewall::stable_message(sequence)),
    })
}

fn size(messages: &[FirewallMessage]) -> usize {
    messages
        .iter()
        .map(|m| match m {
            FirewallMessage::ReplyBody(b) => b.entry.body.len(),
            FirewallMessage::ReplyShare(s) => s.leaves.len() * 32 + s.share.0.len(),
            _ => 0,
        })
        .sum()
}

/// The (client, request id) of every request of a batch, in batch order: what a
/// re-delivered order must match before the cached messages of its sequence go out again
/// (as `Signed` mode re-sends only replies cached for the re-delivered requests).
pub(crate) type BatchKeys = Vec<(ClientId, u64)>;

/// One executed batch's messages and the requests they answer.
#[derive(Debug)]
struct CachedBatch {
    keys: BatchKeys,
    messages: Vec<FirewallMessage>,
}

/// The firewall messages of recently executed batches, by sequence, for re-sending when
/// agreement re-delivers an ORDER (a client retransmitted a request whose certified
/// reply was lost). Bounded by batches and bytes, oldest sequence evicted first; the
/// newest batch stays whatever its size. Not replicated state: whether a batch is still
/// cached changes only whether a copy is re-sent.
#[derive(Debug)]
pub(crate) struct FirewallCache {
    batches: BTreeMap<Sequence, CachedBatch>,
    bytes: usize,
    max_batches: usize,
    max_bytes: usize,
}

impl FirewallCache {
    pub(crate) fn new(max_batches: usize, max_bytes: usize) -> FirewallCache {
        FirewallCache {
            batches: BTreeMap::new(),
            bytes: 0,
            max_batches: max_batches.max(1),
            max_bytes,
        }
    }

    /// The cached messages of `sequence`, if the batch executed there had exactly these
    /// requests.
    pub(crate) fn get(
        &self,
        sequence: Sequence,
        keys: &[(ClientId, u64)],
    ) -> Option<&[FirewallMessage]> {
        self.batches
            .get(&sequence)
            .filter(|b| b.keys == keys)
            .map(|b| b.messages.as_slice())
    }

    /// True if a batch executed at `sequence` is cached, whatever its requests.
    pub(crate) fn contains(&self, sequence: Sequence) -> bool {
        self.batches.contains_key(&sequence)
    }

    pub(crate) fn insert(
        &mut self,
        sequence: Sequence,
        keys: BatchKeys,
        messages: Vec<FirewallMessage>,
    ) {
        self.bytes = self.bytes.saturating_add(size(&messages));
        if let Some(old) = self
            .batches
            .insert(sequence, CachedBatch { keys, messages })
        {
            self.bytes = self.bytes.saturating_sub(size(&old.messages));
        }
        while self.batches.len() > self.max_batches
            || (self.bytes > self.max_bytes && self.batches.len() > 1)
        {
            let Some((_, gone)) = self.batches.pop_first() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(size(&gone.messages));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(sequence: Sequence, len: usize) -> Vec<FirewallMessage> {
        vec![FirewallMessage::ReplyBody(ReplyBody {
            sequence,
            replica: 0,
            entry: ReplyEntry {
                client: 0,
                request_id: sequence,
                body: vec![0; len],
            },
        })]
    }

    fn keys(sequence: Sequence) -> BatchKeys {
        vec![(0, sequence)]
    }

    #[test]
    fn cache_is_bounded_by_batches_and_bytes() {
        let mut c = FirewallCache::new(2, 100);
        c.insert(1, keys(1), body(1, 10));
        c.insert(2, keys(2), body(2, 10));
        c.insert(3, keys(3), body(3, 10));
        assert!(c.get(1, &keys(1)).is_none());
        assert!(c.get(2, &keys(2)).is_some() && c.get(3, &keys(3)).is_some());
        assert_eq!(c.bytes(), 20);
        c.insert(4, keys(4), body(4, 95));
        assert!(c.get(3, &keys(3)).is_none() && c.get(4, &keys(4)).is_some());
        assert_eq!(c.bytes(), 95);
        // The newest batch stays even when it alone is over the byte bound.
        c.insert(5, keys(5), body(5, 500));
        assert!(c.get(4, &keys(4)).is_none() && c.get(5, &keys(5)).is_some());
        assert_eq!(c.bytes(), 500);
        c.clear();
        assert!(c.get(5, &keys(5)).is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn a_batch_with_other_requests_finds_nothing() {
        let mut c = FirewallCache::new(2, 100);
        c.insert(1, vec![(0, 1), (1, 1)], body(1, 10));
        assert!(c.get(1, &[(0, 1), (1, 1)]).is_some());
        assert!(c.get(1, &[(0, 1)]).is_none());
        assert!(c.get(1, &[(1, 1), (0, 1)]).is_none());
    }
}
