//! The reply leaves of recent batches: for each batch executed in the last few
//! checkpoint intervals, the leaf hashes of the replies it produced, in batch order —
//! exactly what a replica's threshold share (firewall) or batch signature (`separate`)
//! signs the Merkle root of (SOSP 2003 §4.2; DESIGN §5 "one signature per batch").
//!
//! **Why replicated state.** The bottom filters certify a batch's replies once g+1
//! shares on one root combine. A replica that skipped the batch (state transfer) or lost
//! its message cache (restart) used to have nothing to sign; with one faulty replica
//! sending bad shares, only g valid shares could then exist, and a reply lost on its way
//! up was never certified (the simulator's `firewall-chaos` seed 102). With the leaves
//! covered by the checkpoint digest and moved by state transfer, every correct replica
//! can sign its share of any batch in the window; the bodies come from any replica that
//! executed it (a filter checks each body against the certified leaves). In `separate`
//! the replica fetches the bodies from its peers and checks them against these leaves
//! itself (`peer_replies.rs`).
//!
//! **Why durable with the batch.** The leaves enter the checkpoint digest, so a replica
//! reopened from its data directory must hold exactly the leaves its peers hold at the
//! same sequence: they commit in the batch's own atomic commit, like the exactly-once
//! table.
//!
//! **Window.** After executing sequence `s` the replica holds the batches in
//! `(s - window, s]` that produced replies. Filters keep a sequence until the stable
//! checkpoint after next (they collect only through the *previous* stable sequence), so
//! a window of two checkpoint intervals covers every sequence a filter still accepts a
//! share for. Bounded: at most `window` batches of at most `MAX_BATCH_REPLIES` leaves.

use std::collections::BTreeMap;

use palisade_wire::agreement::{Digest, Sequence};
use palisade_wire::checkpoint::BatchLeaves;
use palisade_wire::firewall::MAX_BATCH_REPLIES;

use crate::ExecError;

/// Store changes of the reply leaves, by sequence (`None` deletes).
pub(crate) type LeafChanges = BTreeMap<u64, Option<Vec<[u8; 32]>>>;

/// The reply leaves of the batches in the window, by sequence. Deterministic: equal
/// executions give equal maps, and so equal [`ReplyLeaves::hash`]es.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplyLeaves {
    window: u64,
    batches: BTreeMap<Sequence, Vec<Digest>>,
}

impl ReplyLeaves {
    pub(crate) fn new(window: u64) -> ReplyLeaves {
        ReplyLeaves {
            window: window.max(1),
            batches: BTreeMap::new(),
        }
    }

    /// The leaves of the batch executed at `sequence`, if it produced replies and is
    /// still in the window.
    pub(crate) fn get(&self, sequence: Sequence) -> Option<&[Digest]> {
        self.batches.get(&sequence).map(Vec::as_slice)
    }

    /// The sequences that leave the window once `sequence` is executed.
    fn leaving(&self, sequence: Sequence) -> impl Iterator<Item = Sequence> + '_ {
        let floor = sequence.saturating_sub(self.window);
        self.batches.range(..=floor).map(|(s, _)| *s)
    }

    /// What executing `sequence` with these reply leaves changes in the store: the
    /// batch in (if it produced replies), and the batches that leave the window out.
    pub(crate) fn changes(&self, sequence: Sequence, leaves: &[Digest]) -> LeafChanges {
        let mut changes: LeafChanges = self.leaving(sequence).map(|s| (s, None)).collect();
        if !leaves.is_empty() {
            changes.insert(sequence, Some(leaves.iter().map(|d| d.0).collect()));
        }
        changes
    }

    /// Applies what [`ReplyLeaves::changes`] described (once the batch committed).
    pub(crate) fn apply(&mut self, sequence: Sequence, leaves: Vec<Digest>) {
        let floor = sequence.saturating_sub(self.window);
        self.batches = self.batches.split_off(&floor.saturating_add(1));
        if !leaves.is_empty() {
            self.batches.insert(sequence, leaves);
        }
    }

    /// A hash of the window, for the checkpoint digest: fixed-width fields in sequence
    /// order, so equal windows hash equally on every replica.
    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"palisade/execution/reply-leaves");
        h.update(&self.window.to_le_bytes());
        h.update(&(self.batches.len() as u64).to_le_bytes());
        for (sequence, leaves) in &self.batches {
            h.update(&sequence.to_le_bytes());
            h.update(&(leaves.len() as u64).to_le_bytes());
            for leaf in leaves {
                h.update(&leaf.0);
            }
        }
        *h.finalize().as_bytes()
    }

    /// The window as it travels in a state transfer.
    pub(crate) fn to_records(&self) -> Vec<BatchLeaves> {
        self.batches
            .iter()
            .map(|(sequence, leaves)| BatchLeaves {
                sequence: *sequence,
                leaves: leaves.iter().map(|d| d.0).collect(),
            })
            .collect()
    }

    /// Rebuilds the window at `last_applied` from stored or transferred records,
    /// refusing anything this replica could not have produced itself: sequences out of
    /// order or outside `(last_applied - window, last_applied]`, and batches with no
    /// leaves or more than a batch can have.
    pub(crate) fn from_records(
        records: &[BatchLeaves],
        last_applied: Sequence,
        window: u64,
    ) -> Result<ReplyLeaves, ExecError> {
        let bad = |m: &str| ExecError::BadCheckpoint(format!("reply leaves: {m}"));
        let mut out = ReplyLeaves::new(window);
        let floor = last_applied.saturating_sub(out.window);
        for r in records {
            if r.sequence <= floor || r.sequence > last_applied {
                return Err(bad("sequence outside the window"));
            }
            if out
                .batches
                .last_key_value()
                .is_some_and(|(s, _)| *s >= r.sequence)
            {
                return Err(bad("sequences not strictly ascending"));
            }
            if r.leaves.is_empty() || r.leaves.len() > MAX_BATCH_REPLIES {
                return Err(bad("batch with no leaves or too many"));
            }
            out.batches
                .insert(r.sequence, r.leaves.iter().map(|l| Digest(*l)).collect());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(seed: u8, n: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| Digest([seed.wrapping_add(i as u8); 32]))
            .collect()
    }

    #[test]
    fn the_window_keeps_the_last_batches_with_replies() {
        let mut r = ReplyLeaves::new(4);
        for s in 1..=10u64 {
            // Odd sequences produced replies, even ones did not.
            let l = if s % 2 == 1 {
                leaves(s as u8, 2)
            } else {
                Vec::new()
            };
            let changes = r.changes(s, &l);
            if s % 2 == 1 {
                assert_eq!(
                    changes.get(&s),
                    Some(&Some(vec![[s as u8; 32], [s as u8 + 1; 32]]))
                );
            }
            r.apply(s, l);
        }
        // (6, 10]: 7 and 9.
        assert_eq!(r.get(5), None);
        assert_eq!(r.get(7), Some(leaves(7, 2).as_slice()));
        assert_eq!(r.get(9), Some(leaves(9, 2).as_slice()));
        assert_eq!(r.get(10), None);
        assert_eq!(r.to_records().len(), 2);
        // Executing 11 drops 7 (at the floor 11 - 4) from the store and the map.
        let changes = r.changes(11, &[]);
        assert_eq!(changes, BTreeMap::from([(7, None)]));
        r.apply(11, Vec::new());
        assert_eq!(r.get(7), None);
    }

    #[test]
    fn records_round_trip_and_hash_equally() {
        let mut r = ReplyLeaves::new(8);
        for s in 1..=12u64 {
            r.apply(s, leaves(s as u8, (s % 3) as usize));
        }
        let back = ReplyLeaves::from_records(&r.to_records(), 12, 8).expect("valid");
        assert_eq!(back, r);
        assert_eq!(back.hash(), r.hash());
        let mut other = r.clone();
        other.apply(13, leaves(1, 1));
        assert_ne!(other.hash(), r.hash());
    }

    #[test]
    fn records_this_replica_could_not_have_produced_are_refused() {
        let batch = |sequence, n| BatchLeaves {
            sequence,
            leaves: vec![[1; 32]; n],
        };
        let window = 4;
        // Below the window, above the last applied, disorder, empty, too many.
        for records in [
            vec![batch(6, 1)],
            vec![batch(11, 1)],
            vec![batch(9, 1), batch(8, 1)],
            vec![batch(8, 1), batch(8, 1)],
            vec![batch(8, 0)],
            vec![batch(8, MAX_BATCH_REPLIES + 1)],
        ] {
            assert!(
                ReplyLeaves::from_records(&records, 10, window).is_err(),
                "{records:?}"
            );
        }
        assert!(ReplyLeaves::from_records(&[batch(7, 1), batch(10, 3)], 10, window).is_ok());
    }
}
