//! Read-only requests without ordering (Castro–Liskov TOCS §5.1.3), `Matching`
//! acceptance only: an operation that only reads goes straight to every execution
//! replica (`ClientOutput::SendReadOnly`), which answers from its current state once it
//! has executed through `after`, the highest sequence whose result this client accepted,
//! and says which sequence it read at. The client takes the result only if **all 2g+1**
//! replicas sent the same bytes (each from whatever sequence it stands at); on any
//! disagreement, or when `read_only_wait` passes first, it sends the very same signed
//! request to agreement to be ordered, and it completes as any request does. The result
//! counts as read at the highest sequence any answer names, which becomes the `after` of
//! the next read.
//!
//! Why that is linearizable. Correct replicas execute the same batches in the same
//! order, so a correct replica's answer read at s is the answer of the one state after s.
//! Let M be the correct replica whose answer names the highest sequence, s_M, among the
//! correct ones' (2g+1 answers include g+1 correct ones). All answers carry the same
//! bytes, so the result is M's: the true answer after s_M. The read takes its place in
//! the order right after s_M:
//!
//! - *Late enough.* Every operation that completed before the read began has its batch at
//!   or below s_M. Through this client: at most `after`, and every replica answers only
//!   at or beyond `after`. Through any other client (another gateway): g+1 replicas
//!   executed it before that client accepted it, so at least one correct replica had
//!   executed it before this read reached it; that replica's sequence is at most s_M —
//!   and it is among the answers because *all* 2g+1 must answer (with g+1, a faulty
//!   replica could agree with a correct one that lags).
//! - *Not too late.* s_M was executed by M before it answered, hence before the read
//!   completed; an operation that begins after the read completed is ordered after it.
//! - *Later reads.* The next read's `after` is at least the highest sequence named, so at
//!   least s_M: no later read of this client sees an older state (another client's later
//!   read meets M, which is past s_M, among its 2g+1 answers).
//!
//! A faulty replica can only make reads fall back to ordering (a wrong or missing answer,
//! or a sequence beyond what correct replicas reach, which makes later reads wait), never
//! make a wrong one accepted: 2g+1 equal answers include g+1 correct ones. A read that
//! timed out pauses the fast path for [`READ_ONLY_PAUSE`], so a replica that is away
//! costs reads one wait per pause, not one per read.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_wire::agreement::Sequence;
use palisade_wire::execution::ExecReplicaId;

/// After a read-only request timed out (a replica is down, partitioned or slow), reads
/// are ordered straight away for this long: waiting `read_only_wait` on every read while
/// a replica is away would make reads slower than ordering them.
pub const READ_ONLY_PAUSE: Duration = Duration::from_secs(1);

/// A request in its read-only phase: when it falls back to ordering, the answer so far
/// and the replicas that gave it with the sequences they read at.
#[derive(Debug)]
pub(crate) struct ReadPhase {
    pub due: Duration,
    result: Option<Vec<u8>>,
    answered: BTreeMap<ExecReplicaId, Sequence>,
}

/// What an answer did to a read-only request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadVote {
    /// Counted; more answers are needed.
    Counted,
    /// This replica had answered already.
    Duplicate,
    /// Its bytes differ from an earlier answer's: all 2g+1 can no longer agree.
    Disagrees,
    /// The last of `n` equal answers: the result, and the highest sequence they name.
    Agreed(Sequence, Vec<u8>),
}

impl ReadPhase {
    pub(crate) fn new(due: Duration) -> ReadPhase {
        ReadPhase {
            due,
            result: None,
            answered: BTreeMap::new(),
        }
    }

    /// Adds replica `from`'s answer, read at `sequence`; `n` is the number of execution
    /// replicas (2g+1).
    pub(crate) fn add(
        &mut self,
        from: ExecReplicaId,
        sequence: Sequence,
        result: Vec<u8>,
        n: usize,
    ) -> ReadVote {
        if self.answered.contains_key(&from) {
            return ReadVote::Duplicate;
        }
        match &self.result {
            Some(first) if *first != result => return ReadVote::Disagrees,
            Some(_) => {}
            None => self.result = Some(result),
        }
        self.answered.insert(from, sequence);
        if self.answered.len() < n {
            return ReadVote::Counted;
        }
        let highest = self.answered.values().copied().max().unwrap_or(0);
        ReadVote::Agreed(highest, self.result.take().unwrap_or_default())
    }

    pub(crate) fn answers(&self) -> usize {
        self.answered.len()
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
    fn other_bytes_disagree_and_other_sequences_do_not() {
        let mut p = ReadPhase::new(Duration::ZERO);
        assert_eq!(p.add(0, 7, b"a".to_vec(), 3), ReadVote::Counted);
        assert_eq!(p.add(1, 7, b"b".to_vec(), 3), ReadVote::Disagrees);
        assert_eq!(p.answers(), 1, "a disagreeing answer is not counted");
        assert_eq!(p.add(1, 9, b"a".to_vec(), 3), ReadVote::Counted);
        // The highest sequence named, whoever named it.
        assert_eq!(
            p.add(2, 8, b"a".to_vec(), 3),
            ReadVote::Agreed(9, b"a".to_vec())
        );
    }
}
