//! The replies collected for one outstanding request, and when they make a result.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::execution::{ExecReplicaId, Reply};

/// What one more reply did to a request's vote set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    /// A first reply from this replica: it counts.
    Counted,
    /// The same reply again from the same replica (a retransmission): ignored.
    Duplicate,
    /// A reply that differs from what this replica said before, or any reply from a
    /// replica already caught doing that: the replica is faulty for this request.
    Conflicting,
}

/// The replies of distinct execution replicas to one request. One reply per replica is
/// held, so the set is bounded by the number of replicas (signers are checked against
/// the configured keys before a reply gets here).
#[derive(Clone, Debug, Default)]
pub struct Votes {
    replies: BTreeMap<ExecReplicaId, Reply>,
    /// Replicas that sent two different replies for this request. Their replies never
    /// count: a correct replica executes a request once and answers it the same way
    /// every time, so two answers prove a fault (SOSP 2003 §3.1, g faulty replicas).
    faulty: BTreeSet<ExecReplicaId>,
}

impl Votes {
    pub fn new() -> Votes {
        Votes::default()
    }

    /// Adds a verified reply (its `replica` field is its authenticated signer).
    pub fn add(&mut self, reply: Reply) -> Vote {
        let replica = reply.replica;
        if self.faulty.contains(&replica) {
            return Vote::Conflicting;
        }
        match self.replies.get(&replica) {
            Some(previous) if previous.matches(&reply) => Vote::Duplicate,
            Some(_) => {
                self.replies.remove(&replica);
                self.faulty.insert(replica);
                Vote::Conflicting
            }
            None => {
                self.replies.insert(replica, reply);
                Vote::Counted
            }
        }
    }

    /// A reply that at least `quorum` distinct, non-faulty replicas sent (matching in
    /// sequence, client, request id and result), if there is one. With at most g faulty
    /// replicas and quorum g+1, only the correct result can reach it; beyond that the
    /// group of the lowest replica id wins, deterministically.
    pub fn decided(&self, quorum: usize) -> Option<&Reply> {
        self.replies.values().find(|candidate| {
            self.replies
                .values()
                .filter(|r| r.matches(candidate))
                .count()
                >= quorum
        })
    }

    /// Replicas proven faulty for this request.
    pub fn faulty(&self) -> &BTreeSet<ExecReplicaId> {
        &self.faulty
    }

    /// Replies held (one per replica that is not proven faulty).
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(replica: ExecReplicaId, result: u8) -> Reply {
        Reply {
            sequence: 3,
            client: 1,
            request_id: 7,
            result: vec![result],
            replica,
        }
    }

    #[test]
    fn g_plus_one_matching_replies_decide() {
        let mut votes = Votes::new();
        assert_eq!(votes.add(reply(0, 1)), Vote::Counted);
        assert_eq!(votes.decided(2), None);
        assert_eq!(votes.add(reply(1, 9)), Vote::Counted);
        assert_eq!(votes.decided(2), None);
        assert_eq!(votes.add(reply(2, 1)), Vote::Counted);
        assert_eq!(votes.decided(2).map(|r| r.result.clone()), Some(vec![1]));
    }

    #[test]
    fn a_replica_counts_once_and_an_equivocator_never() {
        let mut votes = Votes::new();
        assert_eq!(votes.add(reply(0, 1)), Vote::Counted);
        assert_eq!(votes.add(reply(0, 1)), Vote::Duplicate);
        assert_eq!(votes.decided(2), None);
        assert_eq!(votes.add(reply(0, 2)), Vote::Conflicting);
        assert_eq!(votes.add(reply(0, 1)), Vote::Conflicting);
        assert_eq!(votes.len(), 0);
        assert_eq!(votes.faulty().iter().copied().collect::<Vec<_>>(), vec![0]);
        assert_eq!(votes.add(reply(1, 1)), Vote::Counted);
        assert_eq!(votes.decided(2), None);
        assert_eq!(votes.add(reply(2, 1)), Vote::Counted);
        assert!(votes.decided(2).is_some());
    }
}
