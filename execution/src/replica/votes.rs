//! Collecting signed checkpoints into stable checkpoints (TOCS §4.3: a checkpoint with a
//! proof is stable; here g+1 matching digests from distinct execution replicas, since at
//! most g are faulty and so at least one correct replica vouches for the state).

use std::collections::BTreeMap;

use palisade_wire::agreement::{Digest, Sequence, Signed};
use palisade_wire::execution::{CheckpointCertificate, ExecCheckpoint, ExecReplicaId};

/// Checkpoint sequences remembered per sender. A correct replica's checkpoints are K
/// apart and peers run close together; a faulty sender can only evict its own entries.
pub(crate) const VOTES_PER_SENDER: usize = 4;

/// Signed checkpoints (already verified) by sender and sequence.
#[derive(Debug, Default)]
pub(crate) struct CheckpointVotes {
    by_sender: BTreeMap<ExecReplicaId, BTreeMap<Sequence, Signed<ExecCheckpoint>>>,
}

impl CheckpointVotes {
    /// Adds a verified checkpoint. The first one a sender signed for a sequence stays (a
    /// second, different one proves the sender faulty, and must not count twice).
    pub(crate) fn add(&mut self, signed: Signed<ExecCheckpoint>) {
        let sender = signed.message.replica;
        let mine = self.by_sender.entry(sender).or_default();
        mine.entry(signed.message.sequence).or_insert(signed);
        while mine.len() > VOTES_PER_SENDER {
            mine.pop_first();
        }
    }

    /// A certificate for `(sequence, digest)` if at least `quorum` distinct senders
    /// signed it: exactly those signatures, in sender order.
    pub(crate) fn certificate(
        &self,
        sequence: Sequence,
        digest: Digest,
        quorum: usize,
    ) -> Option<CheckpointCertificate> {
        let signatures: Vec<Signed<ExecCheckpoint>> = self
            .by_sender
            .values()
            .filter_map(|m| m.get(&sequence))
            .filter(|s| s.message.state_digest == digest)
            .cloned()
            .collect();
        (signatures.len() >= quorum).then_some(CheckpointCertificate {
            sequence,
            state_digest: digest,
            signatures,
        })
    }

    /// The newest checkpoint `sender` signed that is still kept.
    pub(crate) fn latest_of(&self, sender: ExecReplicaId) -> Option<&Signed<ExecCheckpoint>> {
        self.by_sender
            .get(&sender)
            .and_then(|m| m.values().next_back())
    }

    /// The senders with a checkpoint above `sequence`.
    pub(crate) fn ahead_of(&self, sequence: Sequence) -> Vec<ExecReplicaId> {
        self.by_sender
            .iter()
            .filter(|(_, m)| m.range(sequence.saturating_add(1)..).next().is_some())
            .map(|(sender, _)| *sender)
            .collect()
    }

    /// Forgets every checkpoint at or below `sequence` (a stable checkpoint covers it).
    pub(crate) fn collect(&mut self, sequence: Sequence) {
        for m in self.by_sender.values_mut() {
            *m = m.split_off(&sequence.saturating_add(1));
            if sequence == Sequence::MAX {
                m.clear();
            }
        }
    }
}
