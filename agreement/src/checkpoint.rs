//! Checkpoint messages and the stable checkpoint (TOCS §4.3).

use std::collections::BTreeMap;

use palisade_wire::agreement::{Checkpoint, Digest, ReplicaId, Sequence, Signed};

/// Collects checkpoint messages until 2f+1 agree on a state digest; that checkpoint is
/// then stable and its messages are the proof carried in view-change messages.
#[derive(Debug, Default)]
pub struct CheckpointTracker {
    /// Votes per checkpoint sequence above the stable one; one per replica (the first).
    votes: BTreeMap<Sequence, BTreeMap<ReplicaId, Signed<Checkpoint>>>,
    /// Per replica, its highest checkpoint message beyond our high watermark: how a
    /// replica that fell behind learns that 2f+1 others moved on (TOCS §5.3.2, state
    /// transfer). One per replica keeps this bounded at n messages.
    beyond: BTreeMap<ReplicaId, Signed<Checkpoint>>,
    stable: Sequence,
    stable_digest: Option<Digest>,
    proof: Vec<Signed<Checkpoint>>,
}

impl CheckpointTracker {
    pub fn new() -> CheckpointTracker {
        CheckpointTracker::default()
    }

    /// The last stable checkpoint: sequence, digest (none for the initial state), proof.
    pub fn stable(&self) -> (Sequence, Option<Digest>, &[Signed<Checkpoint>]) {
        (self.stable, self.stable_digest, &self.proof)
    }

    /// Adds a verified checkpoint message (sequence already checked to be a checkpoint
    /// inside the watermarks). Returns the sequence if it just became stable.
    pub fn add(&mut self, checkpoint: Signed<Checkpoint>, quorum: usize) -> Option<Sequence> {
        let c = checkpoint.message.clone();
        if c.sequence <= self.stable {
            return None;
        }
        let votes = self.votes.entry(c.sequence).or_default();
        votes.entry(c.replica).or_insert(checkpoint);
        let mut matching: Vec<Signed<Checkpoint>> = votes
            .values()
            .filter(|v| v.message.state_digest == c.state_digest)
            .cloned()
            .collect();
        if matching.len() < quorum {
            return None;
        }
        matching.truncate(quorum);
        self.adopt(c.sequence, c.state_digest, matching);
        Some(c.sequence)
    }

    /// Adds a verified checkpoint message from beyond the high watermark. Returns its
    /// sequence if 2f+1 replicas' latest such messages agree on it (then it is stable,
    /// with those messages as proof).
    pub fn add_beyond(
        &mut self,
        checkpoint: Signed<Checkpoint>,
        quorum: usize,
    ) -> Option<Sequence> {
        let c = checkpoint.message.clone();
        match self.beyond.get(&c.replica) {
            Some(old) if old.message.sequence >= c.sequence => return None,
            _ => {}
        }
        self.beyond.insert(c.replica, checkpoint);
        let matching: Vec<Signed<Checkpoint>> = self
            .beyond
            .values()
            .filter(|v| {
                v.message.sequence == c.sequence && v.message.state_digest == c.state_digest
            })
            .take(quorum)
            .cloned()
            .collect();
        if matching.len() < quorum {
            return None;
        }
        self.adopt(c.sequence, c.state_digest, matching);
        Some(c.sequence)
    }

    /// Makes a checkpoint stable from a proof that was verified elsewhere (a view-change
    /// message, TOCS §4.4), and forgets every vote at or below it.
    pub fn adopt(&mut self, sequence: Sequence, digest: Digest, proof: Vec<Signed<Checkpoint>>) {
        if sequence <= self.stable {
            return;
        }
        self.stable = sequence;
        self.stable_digest = Some(digest);
        self.proof = proof;
        self.votes = self.votes.split_off(&sequence.saturating_add(1));
        self.beyond.retain(|_, c| c.message.sequence > sequence);
    }

    /// Sequences with pending votes (for tests: proves old votes are collected).
    pub fn pending_sequences(&self) -> Vec<Sequence> {
        self.votes.keys().copied().collect()
    }
}
