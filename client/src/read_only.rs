//! Read-only requests without ordering (Castro–Liskov TOCS §5.1.3), `Matching`
//! acceptance only: an operation that only reads goes straight to every execution
//! replica (`ClientOutput::SendReadOnly`), which answers from its current state once it
//! has executed through `after`, the highest sequence whose result this client accepted.
//! The client takes the result only if **all 2g+1** replicas answered alike — the same
//! bytes, read from the same sequence; on any disagreement, or when `read_only_wait`
//! passes first, it sends the very same signed request to agreement to be ordered, and
//! it completes as any request does.
//!
//! Why that is linearizable. A result read at sequence s is the state every correct
//! replica has after s (they execute the same batches in the same order), so the read
//! can take its place in the order right after s, if s is late enough and not too late:
//!
//! - *Late enough.* Every operation that completed before the read began has its batch
//!   at or below s. Through this client: its sequence is at most `after` ≤ s, since a
//!   replica answers only at or beyond `after`. Through any other client (another
//!   gateway): g+1 replicas executed it before that client accepted it, so at least one
//!   correct replica had executed it before this read reached it, and that replica is
//!   among the 2g+1 that all answered s — the reason this needs all of them, not g+1 (a
//!   faulty replica could otherwise agree with a correct one that lags).
//! - *Not too late.* Everything at or below s was ordered before a correct replica
//!   executed it, hence before the read completed; an operation that begins after the
//!   read completed is ordered after s.
//!
//! A faulty replica can only make reads fall back to ordering (a wrong or missing
//! answer), never make a wrong one accepted: 2g+1 equal answers include g+1 correct ones.
//! A read that timed out pauses the fast path for [`READ_ONLY_PAUSE`], so a replica that
//! is away costs reads one wait per pause, not one per read.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_wire::agreement::Sequence;
use palisade_wire::execution::ExecReplicaId;

/// After a read-only request timed out (a replica is down, partitioned or slow), reads
/// are ordered straight away for this long: waiting `read_only_wait` on every read while
/// a replica is away would make reads slower than ordering them.
pub const READ_ONLY_PAUSE: Duration = Duration::from_secs(1);

/// A request in its read-only phase: when it falls back to ordering, and the answers so
/// far (one per replica: a second one from the same replica is ignored).
#[derive(Debug)]
pub(crate) struct ReadPhase {
    pub due: Duration,
    answers: BTreeMap<ExecReplicaId, (Sequence, Vec<u8>)>,
}

/// What an answer did to a read-only request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadVote {
    /// Counted; more answers are needed.
    Counted,
    /// This replica had answered already.
    Duplicate,
    /// It differs from an earlier answer: all 2g+1 can no longer agree.
    Disagrees,
    /// The last of `n` equal answers: the result, read at this sequence.
    Agreed(Sequence, Vec<u8>),
}

impl ReadPhase {
    pub(crate) fn new(due: Duration) -> ReadPhase {
        ReadPhase {
            due,
            answers: BTreeMap::new(),
        }
    }

    /// Adds replica `from`'s answer; `n` is the number of execution replicas (2g+1).
    pub(crate) fn add(
        &mut self,
        from: ExecReplicaId,
        sequence: Sequence,
        result: Vec<u8>,
        n: usize,
    ) -> ReadVote {
        if self.answers.contains_key(&from) {
            return ReadVote::Duplicate;
        }
        let disagrees = self
            .answers
            .values()
            .next()
            .is_some_and(|(s, r)| *s != sequence || *r != result);
        if disagrees {
            return ReadVote::Disagrees;
        }
        self.answers.insert(from, (sequence, result));
        if self.answers.len() < n {
            return ReadVote::Counted;
        }
        match self.answers.pop_first() {
            Some((_, (s, r))) => ReadVote::Agreed(s, r),
            None => ReadVote::Counted,
        }
    }

    pub(crate) fn answers(&self) -> usize {
        self.answers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_n_equal_answers_agree_and_nothing_less_does() {
        let mut p = ReadPhase::new(Duration::from_millis(5));
        assert_eq!(p.add(2, 7, b"attrs".to_vec(), 3), ReadVote::Counted);
        assert_eq!(p.add(2, 7, b"attrs".to_vec(), 3), ReadVote::Duplicate);
        assert_eq!(p.add(0, 7, b"attrs".to_vec(), 3), ReadVote::Counted);
        assert_eq!(p.answers(), 2);
        assert_eq!(
            p.add(1, 7, b"attrs".to_vec(), 3),
            ReadVote::Agreed(7, b"attrs".to_vec())
        );
    }

    #[test]
    fn another_sequence_or_other_bytes_disagree() {
        let mut p = ReadPhase::new(Duration::ZERO);
        assert_eq!(p.add(0, 7, b"a".to_vec(), 3), ReadVote::Counted);
        assert_eq!(p.add(1, 8, b"a".to_vec(), 3), ReadVote::Disagrees);
        assert_eq!(p.add(1, 7, b"b".to_vec(), 3), ReadVote::Disagrees);
        assert_eq!(p.answers(), 1, "a disagreeing answer is not counted");
    }
}
