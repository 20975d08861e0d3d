//! View change (TOCS §4.4–4.5; OSDI'99 §4.4 for the signature-based variant used here):
//! the view-change messages a replica holds, their validation, and the deterministic
//! computation of a new view's pre-prepares from 2f+1 of them.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::agreement::{Checkpoint, Digest, ReplicaId, Sequence, Signed, View, ViewChange};
use palisade_wire::fs::Timestamp;

use crate::certificate::{verify_checkpoint_proof, verify_prepared};
use crate::config::Config;
use crate::error::Reject;

/// The latest (highest-view) view-change message of each replica. Keeping one per
/// replica bounds memory at n messages, however many views a faulty replica invents.
#[derive(Debug, Default)]
pub struct ViewChanges {
    latest: BTreeMap<ReplicaId, Signed<ViewChange>>,
}

impl ViewChanges {
    pub fn new() -> ViewChanges {
        ViewChanges::default()
    }

    /// Stores a verified view-change unless that replica already sent one for this view
    /// or a later one.
    pub fn add(&mut self, vc: Signed<ViewChange>) -> Result<(), Reject> {
        let replica = vc.message.replica;
        if let Some(old) = self.latest.get(&replica) {
            if old.message.new_view >= vc.message.new_view {
                return Err(Reject::Rule("stale or duplicate view-change"));
            }
        }
        self.latest.insert(replica, vc);
        Ok(())
    }

    /// True if `vc` would replace what is stored for its sender (checked before the
    /// costly verification, so a replica cannot make us re-verify old messages).
    pub fn is_newer(&self, replica: ReplicaId, new_view: View) -> bool {
        self.latest
            .get(&replica)
            .is_none_or(|old| old.message.new_view < new_view)
    }

    /// TOCS §4.5.2: if f+1 replicas other than `me` want views above `current`, the
    /// smallest of those views (so that a correct replica never lags behind a view
    /// change that at least one correct replica started).
    pub fn smallest_supported_above(&self, current: View, me: ReplicaId, f: usize) -> Option<View> {
        let views: Vec<View> = self
            .latest
            .values()
            .filter(|vc| vc.message.replica != me && vc.message.new_view > current)
            .map(|vc| vc.message.new_view)
            .collect();
        if views.len() > f {
            views.into_iter().min()
        } else {
            None
        }
    }

    /// How many replicas other than `me` sent a view-change for `view` or a later view.
    pub fn support_at_or_above(&self, view: View, me: ReplicaId) -> usize {
        self.latest
            .values()
            .filter(|vc| vc.message.replica != me && vc.message.new_view >= view)
            .count()
    }

    /// The latest view-change stored from `replica`.
    pub fn latest_of(&self, replica: ReplicaId) -> Option<&Signed<ViewChange>> {
        self.latest.get(&replica)
    }

    /// The first 2f+1 view-changes (by replica id) for `view`, if there are that many.
    pub fn quorum_for(&self, view: View, quorum: usize) -> Option<Vec<Signed<ViewChange>>> {
        let vcs: Vec<Signed<ViewChange>> = self
            .latest
            .values()
            .filter(|vc| vc.message.new_view == view)
            .take(quorum)
            .cloned()
            .collect();
        (vcs.len() == quorum).then_some(vcs)
    }
}

/// Checks a view-change message completely: signature, checkpoint proof, and every
/// prepared certificate (from an earlier view, inside the sender's watermarks, at most
/// one per sequence).
pub fn verify_view_change(vc: &Signed<ViewChange>, config: &Config) -> Result<(), Reject> {
    vc.verify_with(&config.replica_keys)?;
    let m = &vc.message;
    verify_checkpoint_proof(m.stable_sequence, &m.checkpoint_proof, config)?;
    let high = m.stable_sequence.saturating_add(config.window);
    let mut last = m.stable_sequence;
    for proof in &m.prepared {
        let pp = &proof.pre_prepare.message;
        if pp.view >= m.new_view {
            return Err(Reject::Rule(
                "view-change: prepared in a view not below the new one",
            ));
        }
        if pp.sequence <= last || pp.sequence > high {
            return Err(Reject::Rule(
                "view-change: prepared sequence out of order or window",
            ));
        }
        last = pp.sequence;
        verify_prepared(proof, config)?;
    }
    Ok(())
}

/// What a new view starts from, computed identically by the new primary and by every
/// backup from the same 2f+1 view-change messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewViewPlan {
    /// min-s: the latest stable checkpoint among the view-changes.
    pub min_s: Sequence,
    /// Its digest and proof (none for the initial state).
    pub checkpoint: Option<(Digest, Vec<Signed<Checkpoint>>)>,
    /// For each sequence in (min-s, max-s]: the digest and timestamp to re-propose; the
    /// null batch where no view-change carries a prepared certificate.
    pub entries: Vec<(Sequence, Digest, Timestamp)>,
}

/// Computes the new view's O set (OSDI'99 §4.4): for each sequence between min-s and
/// max-s, the batch of the prepared certificate with the highest view, or null. Any
/// batch committed in an earlier view was prepared at f+1 correct replicas, one of which
/// is among any 2f+1 view-change senders, so it is carried over: this is what keeps
/// every committed batch across views.
pub fn plan_new_view(vcs: &[Signed<ViewChange>], null_digest: Digest) -> NewViewPlan {
    let mut min_s = 0;
    let mut checkpoint = None;
    for vc in vcs {
        let m = &vc.message;
        if m.stable_sequence > min_s {
            if let Some(first) = m.checkpoint_proof.first() {
                min_s = m.stable_sequence;
                checkpoint = Some((first.message.state_digest, m.checkpoint_proof.clone()));
            }
        }
    }
    // sequence -> (view, digest, timestamp) of the highest-view prepared certificate.
    let mut chosen: BTreeMap<Sequence, (View, Digest, Timestamp)> = BTreeMap::new();
    for vc in vcs {
        for proof in &vc.message.prepared {
            let pp = &proof.pre_prepare.message;
            if pp.sequence <= min_s {
                continue;
            }
            let candidate = (pp.view, pp.digest, pp.timestamp);
            match chosen.get(&pp.sequence) {
                // Ties (same view) cannot hold different digests for valid proofs
                // (quorum intersection); the max keeps the choice deterministic anyway.
                Some(current) if *current >= candidate => {}
                _ => {
                    chosen.insert(pp.sequence, candidate);
                }
            }
        }
    }
    let max_s = chosen.keys().next_back().copied().unwrap_or(min_s);
    let entries = (min_s.saturating_add(1)..=max_s)
        .map(|n| match chosen.get(&n) {
            Some((_, digest, ts)) => (n, *digest, *ts),
            None => (n, null_digest, Timestamp::default()),
        })
        .collect();
    NewViewPlan {
        min_s,
        checkpoint,
        entries,
    }
}

/// Checks that `vcs` are 2f+1 valid view-changes for `view` from distinct replicas.
pub fn verify_quorum(
    vcs: &[Signed<ViewChange>],
    view: View,
    config: &Config,
) -> Result<(), Reject> {
    let mut senders = BTreeSet::new();
    for vc in vcs {
        if vc.message.new_view != view {
            return Err(Reject::Rule("new-view: view-change for another view"));
        }
        verify_view_change(vc, config)?;
        senders.insert(vc.message.replica);
    }
    if senders.len() < config.quorum() {
        return Err(Reject::Rule("new-view: fewer than 2f+1 view-changes"));
    }
    Ok(())
}
