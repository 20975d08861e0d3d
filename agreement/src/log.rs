//! The message log between the low and high watermarks (TOCS §4.2–4.3): per sequence
//! number, the accepted pre-prepare, the votes, the `P` and `Q` entries a view change
//! reports (TOCS §4.5.1), and the body.

use std::collections::BTreeMap;

use palisade_wire::agreement::{
    Batch, Commit, Digest, PrePrepare, Prepare, ReplicaId, Sequence, Signed, View,
    MAX_PRE_PREPARED_PER_SEQUENCE,
};
use palisade_wire::fs::Timestamp;

/// Batch bodies kept per slot: one per view at most, and an equivocating primary can add
/// at most one per view per replica, so a small cap suffices.
const MAX_BODIES_PER_SLOT: usize = 4;

/// One sequence number's state.
#[derive(Debug, Default)]
pub struct Slot {
    /// The pre-prepare accepted in the current view.
    pub pre_prepare: Option<Signed<PrePrepare>>,
    /// Its signature is not checked yet: it came over the primary's own link
    /// ([`Slot::accept_unchecked`]; `Replica::pre_prepare_signature_holds`).
    pub signature_unchecked: bool,
    /// Its `Q` entry waits for that check.
    vouch_when_checked: bool,
    /// Its signature failed: never prepared or vouched for here.
    pub forged: bool,
    /// Bodies known for this sequence, by digest (from pre-prepares of any view, or
    /// fetched).
    pub bodies: BTreeMap<Digest, Batch>,
    /// At most one prepare and one commit per replica; a newer view replaces an older
    /// one, a conflicting vote in the same view is refused. Prepares are unsigned (their
    /// links authenticated them); commits are signed, since they are forwarded.
    pub prepares: BTreeMap<ReplicaId, Prepare>,
    pub commits: BTreeMap<ReplicaId, Signed<Commit>>,
    /// A second commit of the same view with another digest, at most one per replica:
    /// its sender is proven faulty, but its signature is still valid evidence. A correct
    /// replica that a faulty primary showed a different batch receives the primary's
    /// conflicting commit first; without keeping the one that others' certificate holds
    /// (retransmitted by status answers), it could never assemble 2f+1 matching commits
    /// and would suspect the view forever (TOCS §4.2: the certificate is 2f+1 commits for
    /// one digest, from any replicas).
    pub equivocal_commits: BTreeMap<ReplicaId, Signed<Commit>>,
    /// `P` (TOCS §4.5.1): the pre-prepare of the highest view in which this slot
    /// prepared here (pre-prepare and 2f matching prepares); it goes into view-change
    /// messages.
    pub prepared: Option<Signed<PrePrepare>>,
    /// `Q` (TOCS §4.5.1): each digest pre-prepared here at this sequence, with the latest
    /// view it was pre-prepared in and that pre-prepare's timestamp; at most
    /// [`MAX_PRE_PREPARED_PER_SEQUENCE`], the lowest views evicted first (never the digest
    /// of `prepared`).
    pub pre_prepared: BTreeMap<Digest, (View, Timestamp)>,
    /// This replica sent its commit in `commit_sent_view`.
    pub commit_sent_view: Option<View>,
    /// A fetch for the committed or re-proposed body was already multicast.
    pub fetch_sent: bool,
    /// The ORDER certificate, once committed-local.
    pub committed: Option<palisade_wire::agreement::PbftCertificate>,
}

impl Slot {
    pub fn add_body(&mut self, digest: Digest, batch: Batch) {
        if self.bodies.len() >= MAX_BODIES_PER_SLOT && !self.bodies.contains_key(&digest) {
            // Keep the bodies the slot may still need: the accepted and committed ones.
            let keep: Vec<Digest> = self
                .pre_prepare
                .iter()
                .map(|p| p.message.digest)
                .chain(self.committed.iter().map(|c| c.digest))
                .collect();
            self.bodies.retain(|d, _| keep.contains(d));
            if self.bodies.len() >= MAX_BODIES_PER_SLOT {
                return;
            }
        }
        self.bodies.insert(digest, batch);
    }

    /// Accepts `pre_prepare` for the current view (as backup, as primary, or from a
    /// new-view message) and, if `vouch`, records it in `Q`.
    ///
    /// Why not always: a `Q` entry is this replica's word that the batch was proposed in
    /// that view consistently with the view's new-view message (A2 of TOCS §4.5.2 leans
    /// on it). A replica that rejoined a view without voting (`Replica::may_vote`) may
    /// never have received that view's new-view, so a faulty primary could show it a
    /// pre-prepare that contradicts it; such a replica takes pre-prepares but does not
    /// vouch for them. (It sends no prepare either, so no prepared certificate counts on
    /// it.)
    pub fn accept(&mut self, pre_prepare: Signed<PrePrepare>, vouch: bool) {
        self.pre_prepare = Some(pre_prepare);
        self.signature_unchecked = false;
        self.vouch_when_checked = false;
        self.forged = false;
        if vouch {
            self.vouch_accepted();
        }
    }

    /// [`Slot::accept`] of a pre-prepare whose signature is checked later (it came over
    /// the primary's own link): the `Q` entry waits for [`Slot::vouch_checked`], since
    /// `Q` entries are evidence for others.
    pub fn accept_unchecked(&mut self, pre_prepare: Signed<PrePrepare>, vouch: bool) {
        self.pre_prepare = Some(pre_prepare);
        self.signature_unchecked = true;
        self.vouch_when_checked = vouch;
        self.forged = false;
    }

    /// The accepted pre-prepare's signature holds: what [`Slot::accept`] would have
    /// recorded is recorded now.
    pub fn vouch_checked(&mut self) {
        self.signature_unchecked = false;
        if std::mem::take(&mut self.vouch_when_checked) {
            self.vouch_accepted();
        }
    }

    /// Records the accepted pre-prepare in `Q`.
    fn vouch_accepted(&mut self) {
        let Some(m) = self.pre_prepare.as_ref().map(|p| &p.message) else {
            return;
        };
        let (digest, view, timestamp) = (m.digest, m.view, m.timestamp);
        let latest = self.pre_prepared.entry(digest).or_insert((view, timestamp));
        if view >= latest.0 {
            *latest = (view, timestamp);
        }
        while self.pre_prepared.len() > MAX_PRE_PREPARED_PER_SEQUENCE {
            let keep = self.prepared.as_ref().map(|p| p.message.digest);
            let oldest = self
                .pre_prepared
                .iter()
                .filter(|(d, _)| Some(**d) != keep && **d != digest)
                .min_by_key(|(_, (v, _))| *v)
                .map(|(d, _)| *d);
            match oldest {
                Some(d) => {
                    self.pre_prepared.remove(&d);
                }
                None => break,
            }
        }
    }

    /// The pre-prepare's view, sequence and digest, if one was accepted.
    pub fn accepted(&self) -> Option<(View, Digest)> {
        self.pre_prepare
            .as_ref()
            .map(|p| (p.message.view, p.message.digest))
    }

    /// Prepares matching the accepted pre-prepare, from backups of its view.
    pub fn matching_prepares(&self, primary: ReplicaId) -> usize {
        let Some((view, digest)) = self.accepted() else {
            return 0;
        };
        self.prepares
            .values()
            .filter(|p| p.view == view && p.digest == digest && p.replica != primary)
            .count()
    }

    /// Drops the accepted pre-prepare (and what waits on its signature check).
    pub fn forget_pre_prepare(&mut self) {
        self.pre_prepare = None;
        self.signature_unchecked = false;
        self.vouch_when_checked = false;
        self.forged = false;
    }

    /// A new view begins: the current-view state goes; `P`, `Q`, bodies and commits
    /// (evidence in any view) stay.
    pub fn enter_view(&mut self, view: View) {
        self.forget_pre_prepare();
        self.prepares.retain(|_, p| p.view >= view);
    }
}

/// The log: slots for sequence numbers in (low, low + window].
#[derive(Debug)]
pub struct Log {
    low: Sequence,
    window: u64,
    slots: BTreeMap<Sequence, Slot>,
}

impl Log {
    pub fn new(window: u64) -> Log {
        Log {
            low: 0,
            window,
            slots: BTreeMap::new(),
        }
    }

    /// The low watermark h: the sequence of the last stable checkpoint.
    pub fn low(&self) -> Sequence {
        self.low
    }

    /// The high watermark H = h + L.
    pub fn high(&self) -> Sequence {
        self.low.saturating_add(self.window)
    }

    pub fn in_window(&self, sequence: Sequence) -> bool {
        sequence > self.low && sequence <= self.high()
    }

    pub fn get(&self, sequence: Sequence) -> Option<&Slot> {
        self.slots.get(&sequence)
    }

    /// The slot for `sequence`, created on first use; `None` outside the watermarks, so
    /// no peer can make the log grow beyond L slots.
    pub fn slot_mut(&mut self, sequence: Sequence) -> Option<&mut Slot> {
        if !self.in_window(sequence) {
            return None;
        }
        Some(self.slots.entry(sequence).or_default())
    }

    pub fn slots(&self) -> impl Iterator<Item = (&Sequence, &Slot)> {
        self.slots.iter()
    }

    /// Slots with sequence numbers in `from..=to`, in order; empty (never a panic)
    /// when `from > to`.
    pub fn range(
        &self,
        from: Sequence,
        to: Sequence,
    ) -> impl DoubleEndedIterator<Item = (&Sequence, &Slot)> {
        self.slots
            .range(from..=to.max(from))
            .filter(move |(n, _)| **n <= to)
    }

    pub fn slots_mut(&mut self) -> impl Iterator<Item = (&Sequence, &mut Slot)> {
        self.slots.iter_mut()
    }

    /// A checkpoint at `sequence` became stable: move the low watermark and discard
    /// every slot at or below it (TOCS §4.3 garbage collection).
    pub fn advance_low(&mut self, sequence: Sequence) {
        if sequence <= self.low {
            return;
        }
        self.low = sequence;
        self.slots = self.slots.split_off(&sequence.saturating_add(1));
    }

    /// Number of slots held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::agreement::Signature;

    /// A pre-prepare whose timestamp tells its view, to see which one `Q` keeps.
    fn pp(view: View, tag: u8) -> Signed<PrePrepare> {
        Signed {
            signer: 0,
            message: PrePrepare {
                view,
                sequence: 1,
                timestamp: Timestamp {
                    seconds: view as u32,
                    nanos: 0,
                },
                digest: Digest([tag; 32]),
                primary: 0,
            },
            signature: Signature([0; 64]),
        }
    }

    #[test]
    fn q_holds_the_latest_view_per_digest_within_its_bound_and_only_vouched_ones() {
        let mut slot = Slot::default();
        // Not vouched for (a replica following a view without voting): accepted, not in Q.
        slot.accept(pp(0, 1), false);
        assert_eq!(slot.accepted(), Some((0, Digest([1; 32]))));
        assert!(slot.pre_prepared.is_empty());
        slot.accept(pp(1, 1), true);
        slot.accept(pp(0, 1), true);
        assert_eq!(
            slot.pre_prepared.get(&Digest([1; 32])),
            Some(&(
                1,
                Timestamp {
                    seconds: 1,
                    nanos: 0
                }
            )),
            "latest view kept, with its pre-prepare's timestamp"
        );
        // Digest 1 prepared in view 1; four more digests in later views: the bound evicts
        // the lowest views first, but never the prepared digest or the one just accepted.
        slot.prepared = Some(pp(1, 1));
        for (view, tag) in [(2, 2), (3, 3), (4, 4), (5, 5)] {
            slot.accept(pp(view, tag), true);
        }
        assert_eq!(slot.pre_prepared.len(), MAX_PRE_PREPARED_PER_SEQUENCE);
        assert_eq!(
            slot.pre_prepared.keys().map(|d| d.0[0]).collect::<Vec<_>>(),
            vec![1, 3, 4, 5]
        );
    }
}
