//! Bottom row: stable-checkpoint shares. An execution replica that saw g+1 matching
//! checkpoint digests at a sequence signs its share of `stable_message(sequence)`; g+1
//! shares combine into a [`StableCertificate`](palisade_wire::firewall::StableCertificate),
//! on which every filter garbage-collects (Castro–Liskov TOCS §4.3 for checkpoints; SOSP
//! 2003 §4 for the firewall). Each replica has shares pending for at most
//! [`MAX_PENDING_PER_REPLICA`] sequences: a newer one evicts its oldest (a later stable
//! checkpoint supersedes an earlier one), so a flood churns only the flooder's own slots.

use std::collections::{BTreeMap, BTreeSet};

use palisade_crypto::ThresholdVerifier;
use palisade_wire::agreement::Sequence;
use palisade_wire::firewall::{stable_message, SignatureShare};

use crate::collector::ShareVerdict;
use crate::shares::{Attempt, ShareSet};
use crate::stats::reason;

/// Most sequences one replica may have a stable share pending for.
pub const MAX_PENDING_PER_REPLICA: usize = 4;

#[derive(Clone, Debug, Default)]
struct Slot {
    /// Per replica: its share, or `None` once it failed the individual check.
    by_replica: BTreeMap<u32, Option<SignatureShare>>,
    shares: ShareSet,
}

/// Stable shares by sequence.
#[derive(Clone, Debug, Default)]
pub(crate) struct StableShares {
    slots: BTreeMap<Sequence, Slot>,
    per_replica: BTreeMap<u32, BTreeSet<Sequence>>,
}

impl StableShares {
    /// Takes `replica`'s share for `sequence`; at g+1, combines (combine first, verify
    /// the shares one by one only if the combination fails). The caller checked that
    /// `sequence` is above the last stable one and not beyond what was forwarded (unless
    /// nothing was since the filter started: a restart checkpoint, `filter/bottom.rs`).
    pub fn add(
        &mut self,
        sequence: Sequence,
        replica: u32,
        share: SignatureShare,
        verifier: &dyn ThresholdVerifier,
    ) -> ShareVerdict {
        if let Some(previous) = self
            .slots
            .get(&sequence)
            .and_then(|s| s.by_replica.get(&replica))
        {
            return ShareVerdict::Refused(match previous {
                None => reason::EXCLUDED_REPLICA,
                Some(s) if *s == share => reason::DUPLICATE_SHARE,
                Some(_) => reason::EQUIVOCATING_SHARE,
            });
        }
        let mine = self.per_replica.entry(replica).or_default();
        mine.insert(sequence);
        if mine.len() > MAX_PENDING_PER_REPLICA {
            if let Some(oldest) = mine.pop_first() {
                if let Some(slot) = self.slots.get_mut(&oldest) {
                    slot.by_replica.remove(&replica);
                    slot.shares.remove(replica);
                    if slot.by_replica.is_empty() {
                        self.slots.remove(&oldest);
                    }
                }
                if oldest == sequence {
                    // The new share is the replica's oldest: it does not displace newer ones.
                    return ShareVerdict::Refused(reason::STALE_STABLE);
                }
            }
        }
        let slot = self.slots.entry(sequence).or_default();
        slot.by_replica.insert(replica, Some(share.clone()));
        slot.shares.insert(replica, share);
        if slot.shares.len() <= verifier.threshold() {
            return ShareVerdict::Taken(Attempt::default());
        }
        let attempt = slot.shares.try_certify(verifier, &stable_message(sequence));
        for bad in &attempt.bad {
            slot.by_replica.insert(*bad, None);
        }
        ShareVerdict::Taken(attempt)
    }

    /// Drops every slot at or below `sequence` (a stable certificate covers it).
    pub fn collect_through(&mut self, sequence: Sequence) {
        self.slots = self.slots.split_off(&sequence.saturating_add(1));
        for mine in self.per_replica.values_mut() {
            *mine = mine.split_off(&sequence.saturating_add(1));
        }
        self.per_replica.retain(|_, m| !m.is_empty());
    }

    /// Sequences with shares pending.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}
