//! [`SignedRoots`]: the batch roots whose execution-replica signature a client checked
//! (`Matching` acceptance), so that the other replies of a batch cost hashes only.

use std::collections::VecDeque;

use palisade_wire::agreement::{Digest, Sequence, Signature};
use palisade_wire::execution::ExecReplicaId;

/// A bounded, first-in-first-out set of verified (replica, sequence, root, signature).
/// The replica is part of the key: a signature checked under replica 0's key says
/// nothing about a reply that claims to come from replica 1. Lookups are linear; the set
/// holds a few batches' worth of entries per replica.
#[derive(Debug)]
pub struct SignedRoots {
    capacity: usize,
    entries: VecDeque<(ExecReplicaId, Sequence, Digest, Signature)>,
}

impl SignedRoots {
    /// An empty set holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> SignedRoots {
        SignedRoots {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
        }
    }

    pub fn contains(
        &self,
        replica: ExecReplicaId,
        sequence: Sequence,
        root: &Digest,
        signature: &Signature,
    ) -> bool {
        self.entries
            .iter()
            .any(|(r, s, d, sig)| *r == replica && *s == sequence && d == root && sig == signature)
    }

    /// Remembers a verified entry, forgetting the oldest when full.
    pub fn insert(
        &mut self,
        replica: ExecReplicaId,
        sequence: Sequence,
        root: Digest,
        signature: Signature,
    ) {
        if self.contains(replica, sequence, &root, &signature) {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((replica, sequence, root, signature));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_by_replica_and_bounded() {
        let mut s = SignedRoots::new(2);
        let (root, sig) = (Digest([1; 32]), Signature([2; 64]));
        s.insert(0, 5, root, sig);
        assert!(s.contains(0, 5, &root, &sig));
        assert!(!s.contains(1, 5, &root, &sig), "another replica's claim");
        assert!(!s.contains(0, 6, &root, &sig));
        s.insert(0, 5, root, sig);
        assert_eq!(s.len(), 1);
        s.insert(1, 5, root, sig);
        s.insert(2, 5, root, sig);
        assert_eq!(s.len(), 2);
        assert!(!s.contains(0, 5, &root, &sig), "the oldest was forgotten");
        assert!(s.contains(2, 5, &root, &sig));
    }
}
