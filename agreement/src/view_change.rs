//! View change (TOCS §4.5): the view-change messages a replica holds, their validation,
//! and the deterministic computation of a new view's pre-prepares from them — the
//! decision procedure of TOCS §4.5.2, which the new primary runs to choose and every
//! backup re-runs to check.
//!
//! Prepares are unsigned (authenticated by their links, TOCS §3.2), so a view-change
//! cannot prove that its sender prepared anything: it reports claims, the `P` set (for
//! each sequence, the pre-prepare of the latest view it prepared in, signed by that view's
//! primary) and the `Q` set (what it pre-prepared, latest view per digest). Up to f of
//! the senders lie. The procedure therefore counts: it picks a batch only when 2f+1
//! senders report nothing that contradicts it (A1) and f+1 pre-prepared it in its view or
//! later (A2, so a correct replica vouches that it was proposed), and the null batch only
//! when 2f+1 senders report nothing prepared at that sequence (B). When 2f+1 messages
//! decide not every sequence, the new primary waits for more; with the messages of all
//! 2f+1 correct replicas every sequence is decided.
//!
//! Why a committed batch survives: committed means 2f+1 commits, so f+1 correct replicas
//! prepared it, in view `v` say, and report it in `P` (or a later view's prepare of the
//! same batch, since every later new view chose it). Any other batch at that sequence
//! either has a lower view — then A1 for it fails against those f+1 claims plus at most
//! 2f others — or a higher view, which only a faulty replica can claim, and then A2 (f+1
//! pre-prepared it in that view or later) fails, because a correct replica pre-prepares
//! in later views only what their new views chose. B fails too: those f+1 claims leave at
//! most 2f messages without one.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::agreement::{Checkpoint, Digest, ReplicaId, Sequence, Signed, View, ViewChange};
use palisade_wire::fs::Timestamp;

use palisade_wire::agreement::{verify_all, MAX_PRE_PREPARED_PER_SEQUENCE};

use crate::certificate::verify_checkpoint_proof;
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

    /// Every view-change held for `view`, one per replica, by replica id.
    pub fn for_view(&self, view: View) -> Vec<Signed<ViewChange>> {
        self.latest
            .values()
            .filter(|vc| vc.message.new_view == view)
            .cloned()
            .collect()
    }
}

/// Checks a view-change message completely: signature, checkpoint proof, and the form
/// of its `P` and `Q` sets (TOCS §4.5.1): every entry of an earlier view than the new one,
/// inside the sender's watermarks, in increasing order; every `P` entry a pre-prepare
/// signed by the primary of its view (all checked in one batch).
pub fn verify_view_change(vc: &Signed<ViewChange>, config: &Config) -> Result<(), Reject> {
    vc.verify_with(&config.replica_keys)?;
    let m = &vc.message;
    verify_checkpoint_proof(m.stable_sequence, &m.checkpoint_proof, config)?;
    let high = m.stable_sequence.saturating_add(config.window);
    let mut last = m.stable_sequence;
    for pp in &m.prepared {
        let pp = &pp.message;
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
        if pp.primary != config.primary(pp.view) {
            return Err(Reject::Rule(
                "view-change: prepared pre-prepare not from its view's primary",
            ));
        }
        last = pp.sequence;
    }
    verify_all(&m.prepared, &config.replica_keys)?;
    let mut previous: Option<(Sequence, Digest)> = None;
    let mut per_sequence = 0;
    for q in &m.pre_prepared {
        if q.view >= m.new_view {
            return Err(Reject::Rule(
                "view-change: pre-prepared in a view not below the new one",
            ));
        }
        if q.sequence <= m.stable_sequence || q.sequence > high {
            return Err(Reject::Rule("view-change: pre-prepared outside the window"));
        }
        let key = (q.sequence, q.digest);
        per_sequence = match previous {
            Some(p) if p >= key => {
                return Err(Reject::Rule("view-change: pre-prepared out of order"));
            }
            Some((sequence, _)) if sequence == q.sequence => per_sequence + 1,
            _ => 1,
        };
        if per_sequence > MAX_PRE_PREPARED_PER_SEQUENCE {
            return Err(Reject::Rule(
                "view-change: too many pre-prepared digests at one sequence",
            ));
        }
        previous = Some(key);
    }
    Ok(())
}

/// What a new view starts from, computed identically by the new primary and by every
/// backup from the same view-change messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewViewPlan {
    /// min-s: the latest stable checkpoint among the view-changes.
    pub min_s: Sequence,
    /// Its digest and proof (none for the initial state).
    pub checkpoint: Option<(Digest, Vec<Signed<Checkpoint>>)>,
    /// For each sequence in (min-s, max-s]: the digest and timestamp to re-propose, or
    /// the null batch (condition B).
    pub entries: Vec<(Sequence, Digest, Timestamp)>,
}

/// One sender's claims, indexed.
struct Claims {
    /// `P`: sequence → (view, digest).
    prepared: BTreeMap<Sequence, (View, Digest)>,
    /// `Q`: (sequence, digest) → latest view and its pre-prepare's timestamp.
    pre_prepared: BTreeMap<(Sequence, Digest), (View, Timestamp)>,
}

impl Claims {
    fn of(vc: &ViewChange) -> Claims {
        Claims {
            prepared: vc
                .prepared
                .iter()
                .map(|pp| (pp.message.sequence, (pp.message.view, pp.message.digest)))
                .collect(),
            pre_prepared: vc
                .pre_prepared
                .iter()
                .map(|q| ((q.sequence, q.digest), (q.view, q.timestamp)))
                .collect(),
        }
    }

    /// A1's test for one sender: nothing prepared at `sequence` that contradicts
    /// `(view, digest)` — no entry, an entry of a lower view, or this very one.
    fn allows(&self, sequence: Sequence, view: View, digest: Digest) -> bool {
        self.prepared
            .get(&sequence)
            .is_none_or(|(v, d)| *v < view || (*v == view && *d == digest))
    }

    /// A2's test for one sender: it pre-prepared `digest` at `sequence` in `view` or later,
    /// under `timestamp`. (A correct replica accepts a pre-prepare only with its batch's
    /// own time, which the digest binds, so f+1 matching times include a correct one.)
    fn vouches(
        &self,
        sequence: Sequence,
        view: View,
        digest: Digest,
        timestamp: Timestamp,
    ) -> bool {
        self.pre_prepared
            .get(&(sequence, digest))
            .is_some_and(|(v, t)| *v >= view && *t == timestamp)
    }
}

/// The decision procedure of TOCS §4.5.2 over the view-change messages `vcs` (distinct
/// senders, already verified). The checkpoint is the latest one with a proof among them
/// (2f+1 signed checkpoint messages prove it stable on their own). Then for each sequence
/// `n` in (min-s, max-s], max-s the highest sequence any `P` names:
///
/// - **A.** a batch `d` that some sender's `P` names in view `v` is chosen when
///   **A1** 2f+1 senders report at `n` nothing, a lower view, or `(v, d)` itself; and
///   **A2** f+1 senders' `Q` holds `d` at `n` in view `v` or later, under the
///   candidate's timestamp (so a time a faulty primary signed `d` under, which no correct
///   replica accepted, is never re-proposed).
///   (A3, "the primary has the batch", is met later: a new primary without the body
///   fetches it by digest before proposing anything, see `Replica::awaiting_bodies`.)
///   Candidates are tried highest view first, then by digest, so that the choice is
///   deterministic; when several qualify none of them committed, so any is safe.
/// - **B.** otherwise the null batch, when 2f+1 senders report nothing prepared at `n`.
///
/// `None` when some sequence is decided by neither: the new primary waits for more
/// view-change messages (see the module docs for why it then always can).
pub fn plan_new_view(
    vcs: &[Signed<ViewChange>],
    null_digest: Digest,
    f: usize,
) -> Option<NewViewPlan> {
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
    let quorum = 2 * f + 1;
    let claims: Vec<Claims> = vcs.iter().map(|vc| Claims::of(&vc.message)).collect();
    // sequence -> every (view, digest, timestamp) some sender's P names there.
    let mut candidates: BTreeMap<Sequence, BTreeSet<(View, Digest, Timestamp)>> = BTreeMap::new();
    for vc in vcs {
        for pp in &vc.message.prepared {
            let pp = &pp.message;
            if pp.sequence > min_s {
                candidates.entry(pp.sequence).or_default().insert((
                    pp.view,
                    pp.digest,
                    pp.timestamp,
                ));
            }
        }
    }
    let max_s = candidates.keys().next_back().copied().unwrap_or(min_s);
    let mut entries = Vec::new();
    for n in min_s.saturating_add(1)..=max_s {
        let chosen = candidates.get(&n).and_then(|set| {
            set.iter().rev().find(|(v, d, ts)| {
                claims.iter().filter(|c| c.allows(n, *v, *d)).count() >= quorum
                    && claims.iter().filter(|c| c.vouches(n, *v, *d, *ts)).count() > f
            })
        });
        match chosen {
            Some((_, digest, ts)) => entries.push((n, *digest, *ts)),
            None if claims
                .iter()
                .filter(|c| !c.prepared.contains_key(&n))
                .count()
                >= quorum =>
            {
                entries.push((n, null_digest, Timestamp::default()))
            }
            None => return None,
        }
    }
    Some(NewViewPlan {
        min_s,
        checkpoint,
        entries,
    })
}

/// Checks that `vcs` are at least 2f+1 valid view-changes for `view`, from distinct
/// replicas (the decision procedure counts messages, so one sender twice would count
/// twice).
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
        if !senders.insert(vc.message.replica) {
            return Err(Reject::Rule("new-view: two view-changes from one replica"));
        }
        verify_view_change(vc, config)?;
    }
    if senders.len() < config.quorum() {
        return Err(Reject::Rule("new-view: fewer than 2f+1 view-changes"));
    }
    Ok(())
}
