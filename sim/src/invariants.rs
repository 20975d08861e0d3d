//! The invariants the simulator checks after every step, and what a violation says.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::agreement::{ClientId, Digest, Sequence};
use palisade_wire::execution::ExecReplicaId;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Two different batches committed at one sequence number (agreement safety).
    #[error("agreement safety: two different batches committed at sequence {sequence}: {detail}")]
    ConflictingCommit { sequence: Sequence, detail: String },
    /// Two correct execution replicas had different states after one sequence number.
    #[error("execution divergence at sequence {sequence}: replica {a} and replica {b} have different digests")]
    Divergence {
        sequence: Sequence,
        a: ExecReplicaId,
        b: ExecReplicaId,
    },
    /// A client accepted a result that the committed order does not produce.
    #[error("wrong result accepted by client {client} for request {request_id}: {detail}")]
    WrongResult {
        client: ClientId,
        request_id: u64,
        detail: String,
    },
    /// Something other than a certified reply to an outstanding request, a verified
    /// stable certificate or a fetch left the privacy firewall carrying what it learned
    /// from the execution cluster ([`crate::confidentiality`]).
    /// The text names the link (`sender -> receiver`) and the message.
    #[error("firewall confidentiality: {0}")]
    Leak(String),
    /// After the network healed, a request was not answered within the bound.
    #[error("liveness: {0}")]
    Liveness(String),
    /// The simulator itself could not go on (a node failed to build, an encoding failed).
    #[error("simulator: {0}")]
    Internal(String),
}

impl Violation {
    /// A short name of the invariant, for the report line.
    pub fn invariant(&self) -> &'static str {
        match self {
            Violation::ConflictingCommit { .. } => "agreement-safety",
            Violation::Divergence { .. } => "execution-agreement",
            Violation::WrongResult { .. } => "accepted-result-correct",
            Violation::Leak(_) => "firewall-confidentiality",
            Violation::Liveness(_) => "liveness-after-heal",
            Violation::Internal(_) => "simulator",
        }
    }
}

/// Most per-sequence digests remembered (older ones are dropped; every correct replica
/// passes each checkpointed sequence soon after the others).
const MAX_DIGESTS: usize = 1 << 16;

/// The execution-digest invariant: the first correct replica to reach a sequence sets
/// the digest every other correct replica must have there.
#[derive(Debug, Default)]
pub struct DigestBook {
    by_sequence: BTreeMap<Sequence, (ExecReplicaId, Digest)>,
    /// Sequences recorded before the last whole-cluster stop: the first digest after it
    /// replaces theirs (agreement may have ordered other batches there since).
    before_stop: BTreeSet<Sequence>,
}

impl DigestBook {
    pub fn record(
        &mut self,
        replica: ExecReplicaId,
        sequence: Sequence,
        digest: Digest,
    ) -> Result<(), Violation> {
        if self.before_stop.remove(&sequence) {
            self.by_sequence.remove(&sequence);
        }
        match self.by_sequence.get(&sequence) {
            Some((first, known)) if *known != digest => Err(Violation::Divergence {
                sequence,
                a: *first,
                b: replica,
            }),
            Some(_) => Ok(()),
            None => {
                if self.by_sequence.len() >= MAX_DIGESTS {
                    self.by_sequence.pop_first();
                }
                self.by_sequence.insert(sequence, (replica, digest));
                Ok(())
            }
        }
    }

    /// The whole cluster stopped at once, its execution replicas at `lowest` or above:
    /// digests recorded above it are of an order agreement may replace there. Two
    /// correct replicas must still agree wherever both executed after the stop.
    pub fn cluster_stopped(&mut self, lowest: Sequence) {
        self.before_stop = self
            .by_sequence
            .range(lowest + 1..)
            .map(|(s, _)| *s)
            .collect();
    }

    /// The digest recorded at `sequence`, if any.
    pub fn get(&self, sequence: Sequence) -> Option<Digest> {
        self.by_sequence.get(&sequence).map(|(_, d)| *d)
    }

    pub fn len(&self) -> usize {
        self.by_sequence.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sequence.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergent_digests_are_reported() {
        let mut book = DigestBook::default();
        book.record(0, 5, Digest([1; 32])).unwrap();
        book.record(1, 5, Digest([1; 32])).unwrap();
        assert_eq!(
            book.record(2, 5, Digest([2; 32])),
            Err(Violation::Divergence {
                sequence: 5,
                a: 0,
                b: 2
            })
        );
    }
}
