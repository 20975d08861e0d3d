//! Byzantine agreement behaviours as wrappers around an honest core's messages. The
//! faulty node runs the real `Replica`; these functions rewrite what it sends (and note
//! what it receives), re-signing with the node's own key, as a compromised node could.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use palisade_wire::agreement::{
    AgreementMessage, Batch, Commit, Digest, PrePrepare, PrePrepared, Prepare, ReplicaId, Signed,
    ViewChange,
};
use palisade_wire::fs::Timestamp;

use crate::scenario::AgreementFault;

/// The other batch an equivocator shows group B: the same requests with the timestamp
/// moved by one nanosecond, so its digest differs (the digest covers the timestamp) while
/// backups still accept its time. Both colluders derive it the same way.
pub fn alternate(batch: &Batch) -> Batch {
    let mut other = batch.clone();
    let t = &mut other.timestamp;
    t.nanos = if t.nanos >= 999_999_999 {
        t.nanos - 1
    } else {
        t.nanos + 1
    };
    other
}

/// Per-node memory of a Byzantine behaviour.
#[derive(Debug, Default)]
pub struct ByzantineState {
    /// Digest of a batch → (its alternate, the alternate's digest).
    alternates: BTreeMap<Digest, (Batch, Digest)>,
}

/// Most alternates remembered (bounded like everything else).
const MAX_ALTERNATES: usize = 4096;

impl ByzantineState {
    fn learn(&mut self, batch: &Batch) -> Option<(Batch, Digest)> {
        let digest = batch.digest().ok()?;
        if let Some(known) = self.alternates.get(&digest) {
            return Some(known.clone());
        }
        let alt = alternate(batch);
        let alt_digest = alt.digest().ok()?;
        if self.alternates.len() >= MAX_ALTERNATES {
            self.alternates.pop_first();
        }
        self.alternates.insert(digest, (alt.clone(), alt_digest));
        Some((alt, alt_digest))
    }

    /// Notes an incoming message (a colluding backup learns the primary's batches).
    pub fn observe(&mut self, fault: &AgreementFault, message: &AgreementMessage) {
        if let (
            AgreementFault::Equivocate {
                learn_from_peers: true,
                ..
            },
            AgreementMessage::PrePrepare { batch, .. },
        ) = (fault, message)
        {
            self.learn(batch);
        }
    }

    /// Rewrites one outgoing message to replica `to` (of `n` replicas); `None` drops it.
    pub fn rewrite(
        &mut self,
        fault: &AgreementFault,
        key: &SigningKey,
        n: usize,
        to: ReplicaId,
        message: AgreementMessage,
    ) -> Option<AgreementMessage> {
        // View-change messages carry unproven claims (TOCS §4.5.1: prepares are
        // unsigned, so `P` and `Q` are the sender's word); every faulty replica lies in
        // them, the way its fault suggests.
        if let AgreementMessage::ViewChange(vc) = message {
            let lie = match fault {
                AgreementFault::Equivocate { .. } => claim_other_batches(key, n, vc.message),
                _ => claim_nothing(vc.message),
            };
            return Signed::sign(key, lie)
                .ok()
                .map(AgreementMessage::ViewChange);
        }
        match fault {
            AgreementFault::Equivocate { group_b, .. } => {
                if let AgreementMessage::PrePrepare { batch, .. } = &message {
                    // Learn even when sending to group A, so later votes can be turned.
                    self.learn(batch);
                }
                if !group_b.contains(&to) {
                    return Some(message);
                }
                self.equivocate(key, message)
            }
            AgreementFault::ConflictingVotes { group_b } if group_b.contains(&to) => {
                bogus_vote(key, message)
            }
            // Its commits carry bad signatures: over its own link a correct replica in
            // `separate` counts them anyway, and its certificates then do not verify.
            AgreementFault::ForgePrePrepares { group_b } if group_b.contains(&to) => {
                match message {
                    AgreementMessage::PrePrepare {
                        mut pre_prepare,
                        batch,
                    } => {
                        pre_prepare.signature.0[0] ^= 0xff;
                        Some(AgreementMessage::PrePrepare { pre_prepare, batch })
                    }
                    AgreementMessage::PrePrepareNamed {
                        mut pre_prepare,
                        entries,
                    } => {
                        pre_prepare.signature.0[0] ^= 0xff;
                        Some(AgreementMessage::PrePrepareNamed {
                            pre_prepare,
                            entries,
                        })
                    }
                    other => Some(other),
                }
            }
            AgreementFault::ForgeOrders => match message {
                AgreementMessage::Commit(mut c) => {
                    c.signature.0[0] ^= 0xff;
                    Some(AgreementMessage::Commit(c))
                }
                other => Some(other),
            },
            _ => Some(message),
        }
    }

    fn equivocate(
        &mut self,
        key: &SigningKey,
        message: AgreementMessage,
    ) -> Option<AgreementMessage> {
        match message {
            AgreementMessage::PrePrepare { pre_prepare, batch } => {
                let (alt, alt_digest) = self.learn(&batch)?;
                let pp = PrePrepare {
                    timestamp: alt.timestamp,
                    digest: alt_digest,
                    ..pre_prepare.message
                };
                let pre_prepare = Signed::sign(key, pp).ok()?;
                Some(AgreementMessage::PrePrepare {
                    pre_prepare,
                    batch: alt,
                })
            }
            AgreementMessage::Prepare(p) => match self.alternates.get(&p.digest) {
                Some((_, d)) => Some(AgreementMessage::Prepare(Prepare { digest: *d, ..p })),
                None => Some(AgreementMessage::Prepare(p)),
            },
            AgreementMessage::Commit(c) => match self.alternates.get(&c.message.digest) {
                Some((_, d)) => {
                    let vote = Commit {
                        digest: *d,
                        ..c.message
                    };
                    Signed::sign(key, vote).ok().map(AgreementMessage::Commit)
                }
                None => Some(AgreementMessage::Commit(c)),
            },
            other => Some(other),
        }
    }
}

/// A view-change that claims this replica prepared and pre-prepared nothing: the
/// omission a faulty replica can always make (TOCS §4.5.2's A1 and B count on 2f+1
/// senders, so f omissions cannot make a committed batch look unprepared).
fn claim_nothing(vc: ViewChange) -> ViewChange {
    ViewChange {
        prepared: Vec::new(),
        pre_prepared: Vec::new(),
        ..vc
    }
}

/// A view-change from the primary being replaced that lies with the signing key of its
/// own view (the latest view below the new one, so higher than anything correct replicas
/// prepared), in one of two ways by sequence:
///
/// - at even sequences it reports, it claims it prepared a batch no one else saw, backed
///   by a pre-prepare it signs itself: a valid signature on a lie. A1 alone would accept
///   it (nobody reports a higher view); A2 must refuse it, since no correct replica
///   pre-prepared it;
/// - at odd sequences where it proposed a real batch, it claims that very batch under a
///   timestamp an hour later, re-signed. The digest still names the true batch, so only
///   A2's timestamp match keeps the new view from re-proposing it under a time its body
///   does not carry (which would make every later proposal look to go backwards).
///
/// Other faulty replicas omit instead.
fn claim_other_batches(key: &SigningKey, n: usize, vc: ViewChange) -> ViewChange {
    let me = vc.replica;
    let Some(view) = vc.new_view.checked_sub(1) else {
        return claim_nothing(vc);
    };
    if n == 0 || view % n as u64 != u64::from(me) {
        return claim_nothing(vc);
    }
    let sequences: BTreeSet<u64> = vc
        .prepared
        .iter()
        .map(|pp| pp.message.sequence)
        .chain(vc.pre_prepared.iter().map(|q| q.sequence))
        .collect();
    let bogus = |seq: u64| Digest::of(b"palisade/sim/claimed", &seq.to_le_bytes());
    let timestamp = vc
        .prepared
        .first()
        .map(|pp| pp.message.timestamp)
        .unwrap_or_default();
    // Its own real proposals, by sequence: the ones it can re-sign with another time.
    let own: BTreeMap<u64, PrePrepare> = vc
        .pre_prepared
        .iter()
        .filter(|q| q.view == view && q.sequence % 2 == 1)
        .map(|q| {
            let pp = PrePrepare {
                view,
                sequence: q.sequence,
                timestamp: q.timestamp,
                digest: q.digest,
                primary: me,
            };
            (q.sequence, pp)
        })
        .collect();
    let claims: Vec<PrePrepare> = sequences
        .iter()
        .map(|&sequence| match own.get(&sequence) {
            Some(real) => PrePrepare {
                timestamp: Timestamp {
                    seconds: real.timestamp.seconds.saturating_add(3_600),
                    ..real.timestamp
                },
                ..real.clone()
            },
            None => PrePrepare {
                view,
                sequence,
                timestamp,
                digest: bogus(sequence),
                primary: me,
            },
        })
        .collect();
    let pre_prepared = claims
        .iter()
        .map(|pp| PrePrepared {
            sequence: pp.sequence,
            digest: pp.digest,
            timestamp: pp.timestamp,
            view,
        })
        .collect();
    let prepared = claims
        .into_iter()
        .filter_map(|pp| Signed::sign(key, pp).ok())
        .collect();
    ViewChange {
        prepared,
        pre_prepared,
        ..vc
    }
}

/// A prepare or commit for a digest no batch has.
fn bogus_vote(key: &SigningKey, message: AgreementMessage) -> Option<AgreementMessage> {
    let bogus = |seq: u64| Digest::of(b"palisade/sim/bogus", &seq.to_le_bytes());
    match message {
        AgreementMessage::Prepare(p) => Some(AgreementMessage::Prepare(Prepare {
            digest: bogus(p.sequence),
            ..p
        })),
        AgreementMessage::Commit(c) => {
            let vote = Commit {
                digest: bogus(c.message.sequence),
                ..c.message
            };
            Signed::sign(key, vote).ok().map(AgreementMessage::Commit)
        }
        other => Some(other),
    }
}

/// A nonempty proper subset of `candidates` chosen by `pick` bits (for group B).
pub fn subset(candidates: &[ReplicaId], bits: u64) -> BTreeSet<ReplicaId> {
    let n = candidates.len().min(63);
    let full = (1u64 << n) - 1;
    let mut mask = bits % full.max(1);
    if mask == 0 {
        mask = 1;
    }
    candidates
        .iter()
        .take(n)
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, r)| *r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::fs::Timestamp;

    #[test]
    fn alternate_batches_differ_in_digest_only_by_time() {
        let b = Batch {
            timestamp: Timestamp {
                seconds: 5,
                nanos: 999_999_999,
            },
            requests: vec![],
        };
        let a = alternate(&b);
        assert_eq!(a.timestamp.seconds, 5);
        assert_ne!(a.digest().unwrap(), b.digest().unwrap());
    }

    #[test]
    fn subsets_are_nonempty_and_proper() {
        for bits in 0..20 {
            let s = subset(&[1, 2, 3], bits);
            assert!(!s.is_empty() && s.len() < 3, "{s:?}");
        }
    }
}
