//! [`Pushers`]: which agreement replicas push a delivered order to the execution
//! replicas in the `separate` configuration.
//!
//! Replicas 0..=f push, so that at least one correct replica does. A small batch goes
//! from all f+1 of them: an execution replica takes it once f+1 matching copies came over
//! their pushers' own links, without checking the ORDER certificate's 2f+1 signatures
//! (`palisade_execution`'s `pushed.rs`). A large batch ([`LARGE_BATCH_BYTES`] of request
//! payload or more) goes from ONE of them, chosen by its sequence number: the execution
//! replica checks a large batch's certificate at its first copy anyway, so every further
//! copy was a megabyte encrypted, copied, sent and decoded for nothing. A 1 MiB WRITE
//! crossed 10 links in `separate` (4 from the gateway to agreement, 2 × 3 pushes) and now
//! crosses 7. This is TOCS §5.1.1's digest replies turned around: one designated replica
//! sends the bulk.
//!
//! What a faulty designated pusher can do: withhold the order, or push a forgery. Either
//! way the execution replicas do not take it at that copy, and the order comes again from
//! every agreement replica, correct ones included: as `FetchOrders` answers once a later
//! order shows the gap, or re-sent from the delivery logs when the client retransmits.
//! So a faulty pusher costs its large batches a fetch timeout, never safety or progress.
//! The same holds when a correct pusher's certificate does not verify (it may hold a
//! faulty replica's commit counted over its link, `Config::link_authenticated_commits`).

pub use palisade_wire::agreement::LARGE_BATCH_BYTES;
use palisade_wire::agreement::{OrderedBatch, ReplicaId};

/// The pushers of a cluster that tolerates `f` faulty agreement replicas.
#[derive(Clone, Copy, Debug)]
pub struct Pushers {
    f: usize,
}

impl Pushers {
    pub fn new(f: usize) -> Pushers {
        Pushers { f }
    }

    /// Whether replica `me` pushes every order it delivers (replicas 0..=f).
    pub fn is_pusher(&self, me: ReplicaId) -> bool {
        usize::try_from(me).is_ok_and(|me| me <= self.f)
    }

    /// Whether replica `me` pushes `batch`: every pusher pushes a small batch; a large
    /// one is pushed by pusher `sequence mod (f+1)` alone.
    pub fn pushes(&self, me: ReplicaId, batch: &OrderedBatch) -> bool {
        if !self.is_pusher(me) {
            return false;
        }
        if batch.payload_bytes() < LARGE_BATCH_BYTES {
            return true;
        }
        let pushers = u64::try_from(self.f).unwrap_or(u64::MAX).saturating_add(1);
        batch.sequence % pushers == u64::from(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(sequence: u64, payload: usize) -> OrderedBatch {
        crate::delivery::tests::entry(sequence, payload).0
    }

    #[test]
    fn every_pusher_pushes_a_small_batch_and_no_one_else_does() {
        let p = Pushers::new(1);
        let b = batch(7, LARGE_BATCH_BYTES - 1);
        let pushing: Vec<ReplicaId> = (0..4).filter(|me| p.pushes(*me, &b)).collect();
        assert_eq!(pushing, vec![0, 1]);
    }

    #[test]
    fn one_pusher_by_sequence_pushes_a_large_batch() {
        let p = Pushers::new(2);
        for sequence in 1..=9u64 {
            let b = batch(sequence, LARGE_BATCH_BYTES);
            let pushing: Vec<ReplicaId> = (0..7).filter(|me| p.pushes(*me, &b)).collect();
            assert_eq!(
                pushing,
                vec![(sequence % 3) as ReplicaId],
                "sequence {sequence}"
            );
        }
    }
}
