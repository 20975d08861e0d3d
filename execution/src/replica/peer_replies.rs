//! Replies fetched from peers (`separate` configuration): the `Signed`-mode counterpart of
//! signing a share over the reply leaves (`reply_leaves.rs`).
//!
//! A replica that skipped a batch by state transfer, or lost its reply cache in a
//! restart, knows the batch's replies only by their leaf hashes. With one faulty replica
//! sending wrong replies, the client could then never see g+1 matching ones. So when the
//! batch's order is re-delivered (a client retransmitted), or agreement asks for one of
//! its replies after collecting the order (`ResendReply` naming the sequence), such a
//! replica asks its peers for the replies it lacks (`FetchReplies`), checks each body it
//! gets against its own leaves — which its checkpoint digest covers, so a faulty peer
//! cannot make it sign anything but the true reply — and signs and sends the reply
//! itself.
//!
//! This type is the bookkeeping: which sequences this replica asked for (bodies for any
//! other are unsolicited and dropped), and how often it answered each peer for each
//! sequence (a faulty peer cannot make it send the same bodies over and over). Both are
//! bounded by the reply leaves' window: only sequences still in it are kept.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::agreement::Sequence;
use palisade_wire::execution::ExecReplicaId;

use super::reply_leaves::ReplyLeaves;

/// Answers one peer gets for one sequence (its first request, and retries after losses).
const MAX_ANSWERS: u8 = 3;

#[derive(Debug, Default)]
pub(crate) struct PeerReplies {
    wanted: BTreeSet<Sequence>,
    answered: BTreeMap<(ExecReplicaId, Sequence), u8>,
}

impl PeerReplies {
    /// Records that this replica asked its peers for replies of `sequence`.
    pub(crate) fn want(&mut self, sequence: Sequence, leaves: &ReplyLeaves) {
        self.wanted.retain(|s| leaves.get(*s).is_some());
        if leaves.get(sequence).is_some() {
            self.wanted.insert(sequence);
        }
    }

    /// True if this replica asked for replies of `sequence`.
    pub(crate) fn is_wanted(&self, sequence: Sequence) -> bool {
        self.wanted.contains(&sequence)
    }

    /// Counts an answer to `peer` for `sequence`; false once it had its share of them,
    /// or if the sequence left the window.
    pub(crate) fn may_answer(
        &mut self,
        peer: ExecReplicaId,
        sequence: Sequence,
        leaves: &ReplyLeaves,
    ) -> bool {
        self.answered.retain(|(_, s), _| leaves.get(*s).is_some());
        if leaves.get(sequence).is_none() {
            return false;
        }
        let count = self.answered.entry((peer, sequence)).or_insert(0);
        if *count >= MAX_ANSWERS {
            return false;
        }
        *count += 1;
        true
    }

    pub(crate) fn clear(&mut self) {
        self.wanted.clear();
        self.answered.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::agreement::Digest;

    fn window() -> ReplyLeaves {
        let mut l = ReplyLeaves::new(4);
        for s in 1..=6 {
            l.apply(s, vec![Digest([s as u8; 32])]);
        }
        l // holds 3..=6
    }

    #[test]
    fn only_sequences_in_the_window_are_wanted_or_answered() {
        let mut leaves = window();
        let mut p = PeerReplies::default();
        p.want(2, &leaves);
        p.want(5, &leaves);
        assert!(!p.is_wanted(2) && p.is_wanted(5));
        assert!(!p.may_answer(1, 2, &leaves));
        for _ in 0..MAX_ANSWERS {
            assert!(p.may_answer(1, 5, &leaves));
        }
        assert!(!p.may_answer(1, 5, &leaves), "a peer's answers are bounded");
        assert!(p.may_answer(2, 5, &leaves), "per peer");
        // 5 leaves the window: forgotten on the next use.
        for s in 7..=9 {
            leaves.apply(s, Vec::new());
        }
        p.want(8, &leaves);
        assert!(!p.is_wanted(5));
        assert!(!p.may_answer(1, 5, &leaves));
        assert!(p.answered.is_empty());
    }
}
