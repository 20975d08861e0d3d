//! Bottom row, one sequence: the reply shares of the execution replicas, grouped by the
//! Merkle root they sign, until g+1 of one group combine into a signature that verifies
//! (SOSP 2003 §4.2); and the reply bodies that arrived before their root was certified.
//!
//! One share per replica: a second, different one is equivocation and is refused; a
//! replica whose share failed its individual check is excluded for this sequence (so a
//! faulty replica costs at most one fallback round per sequence).

use std::collections::BTreeMap;

use palisade_crypto::{merkle, ThresholdVerifier};
use palisade_wire::agreement::{Digest, Sequence};
use palisade_wire::firewall::{
    reply_root_message, CertifiedReply, ReplyEntry, SignatureShare, ThresholdSignature,
};

use crate::shares::{Attempt, ShareSet};
use crate::stats::reason;

/// What a replica contributed to this sequence.
#[derive(Clone, Debug)]
enum Contribution {
    Share {
        root: Digest,
        share: SignatureShare,
    },
    /// Its share failed the individual check.
    Excluded,
}

#[derive(Clone, Debug, Default)]
struct Group {
    leaves: Vec<Digest>,
    shares: ShareSet,
}

/// The certified root of a sequence: its leaves and the combined signature.
#[derive(Clone, Debug)]
struct Certified {
    leaves: Vec<Digest>,
    signature: ThresholdSignature,
}

/// A reply body waiting for its root, charged to the replica that sent it.
#[derive(Clone, Debug)]
pub(crate) struct PendingBody {
    pub entry: ReplyEntry,
    pub replica: u32,
    pub bytes: usize,
}

/// What became of a reply share.
#[derive(Debug)]
pub(crate) enum ShareVerdict {
    /// Refused, for this reason.
    Refused(&'static str),
    /// Taken into its group (and, if the group reached g+1, combined).
    Taken(Attempt),
}

/// Shares, certified root and pending bodies of one sequence.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplyCollector {
    by_replica: BTreeMap<u32, Contribution>,
    groups: BTreeMap<Digest, Group>,
    certified: Option<Certified>,
    pending: BTreeMap<Digest, PendingBody>,
}

impl ReplyCollector {
    /// Takes `replica`'s share on the root over `leaves`; when its group reaches g+1
    /// shares, combines them (combine first, verify shares only if that fails).
    pub fn add_share(
        &mut self,
        sequence: Sequence,
        replica: u32,
        leaves: Vec<Digest>,
        share: SignatureShare,
        verifier: &dyn ThresholdVerifier,
    ) -> ShareVerdict {
        if self.certified.is_some() {
            return ShareVerdict::Refused(reason::LATE_SHARE);
        }
        let root = merkle::root(&leaves);
        match self.by_replica.get(&replica) {
            Some(Contribution::Excluded) => return ShareVerdict::Refused(reason::EXCLUDED_REPLICA),
            Some(Contribution::Share { root: r, share: s }) => {
                return ShareVerdict::Refused(if *r == root && *s == share {
                    reason::DUPLICATE_SHARE
                } else {
                    reason::EQUIVOCATING_SHARE
                });
            }
            None => {}
        }
        self.by_replica.insert(
            replica,
            Contribution::Share {
                root,
                share: share.clone(),
            },
        );
        let group = self.groups.entry(root).or_insert_with(|| Group {
            leaves,
            shares: ShareSet::default(),
        });
        group.shares.insert(replica, share);
        let message = reply_root_message(sequence, &root);
        if group.shares.len() <= verifier.threshold() {
            // The first share of a root: while the others are on their way, do the half
            // of the combination's check that does not need the signature (hash to the
            // curve, one Miller loop), off the reply's critical path.
            if group.shares.len() == 1 {
                verifier.prepare(&message);
            }
            return ShareVerdict::Taken(Attempt::default());
        }
        let attempt = group.shares.try_certify(verifier, &message);
        for bad in &attempt.bad {
            self.by_replica.insert(*bad, Contribution::Excluded);
        }
        if let Some(signature) = &attempt.signature {
            let leaves = self
                .groups
                .remove(&root)
                .map(|g| g.leaves)
                .unwrap_or_default();
            self.groups.clear();
            self.certified = Some(Certified {
                leaves,
                signature: signature.clone(),
            });
        }
        ShareVerdict::Taken(attempt)
    }

    /// The certified reply for `entry` (its leaf among the certified leaves), or the
    /// reason it cannot be certified. `None` while no root is certified.
    pub fn certify(
        &self,
        sequence: Sequence,
        entry: &ReplyEntry,
    ) -> Option<Result<CertifiedReply, &'static str>> {
        let certified = self.certified.as_ref()?;
        let leaf = merkle::leaf_hash(entry);
        let Some(index) = certified.leaves.iter().position(|l| *l == leaf) else {
            return Some(Err(reason::UNCERTIFIED_BODY));
        };
        let (Ok(leaf_index), Ok(leaf_count)) =
            (u32::try_from(index), u32::try_from(certified.leaves.len()))
        else {
            return Some(Err(reason::MALFORMED));
        };
        Some(Ok(CertifiedReply {
            sequence,
            entry: entry.clone(),
            leaf_index,
            leaf_count,
            path: merkle::audit_path(&certified.leaves, index),
            signature: certified.signature.clone(),
        }))
    }

    pub fn has_pending(&self, leaf: &Digest) -> bool {
        self.pending.contains_key(leaf)
    }

    pub fn add_pending(&mut self, leaf: Digest, body: PendingBody) {
        self.pending.insert(leaf, body);
    }

    /// Takes every pending body (on certification, or when the sequence is collected).
    pub fn take_pending(&mut self) -> Vec<PendingBody> {
        std::mem::take(&mut self.pending).into_values().collect()
    }
}
