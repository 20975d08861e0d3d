//! The reference execution: the committed order applied to one `FileSystem<MemStore>`
//! with the same exactly-once rule as the execution replicas, so that every result a
//! client accepts can be compared with the one it must be.

use std::collections::{BTreeMap, BTreeSet};

use palisade_crypto::BodyKey;
use palisade_execution::{FileSystem, FsConfig, FsSnapshot, MemSnapshot, MemStore};
use palisade_wire::agreement::{ClientId, Digest, OrderedBatch, Sequence};
use palisade_wire::fs::{FsError, FsOp, FsResult};

use crate::invariants::Violation;

/// Most committed-but-unapplied batches held (the order is applied as soon as it is
/// gap-free, so this only grows if a sequence is never committed anywhere).
const MAX_AHEAD: usize = 100_000;

/// States kept for checking unordered reads: the reference is rarely more than a few
/// batches ahead of the replicas that answered one.
const READ_HISTORY: usize = 256;

pub struct Oracle {
    fs: FileSystem<MemStore>,
    /// Batches known committed (delivered by a correct replica, or carrying a valid
    /// ORDER certificate), by sequence, with their digest.
    committed: BTreeMap<Sequence, (Digest, OrderedBatch)>,
    /// (client, request id) → (sequence, result bytes), for every executed request.
    results: BTreeMap<(ClientId, u64), (Sequence, Vec<u8>)>,
    executed: BTreeSet<(ClientId, u64)>,
    /// The firewall configuration: payloads are sealed for the execution cluster.
    body_key: Option<BodyKey>,
    /// With unordered reads: the state after each of the last [`READ_HISTORY`]
    /// sequences, to check a read answered at any of them.
    history: Option<BTreeMap<Sequence, FsSnapshot<MemSnapshot>>>,
}

/// Canonical result of a payload that does not decode (what replicas answer).
pub fn undecodable_result() -> Vec<u8> {
    let r: FsResult = Err(FsError::Inval);
    palisade_wire::encode(&r).unwrap_or_default()
}

impl Oracle {
    pub fn new() -> Result<Oracle, palisade_execution::ExecError> {
        Ok(Oracle {
            fs: FileSystem::open(MemStore::new(), FsConfig::default())?,
            committed: BTreeMap::new(),
            results: BTreeMap::new(),
            executed: BTreeSet::new(),
            body_key: None,
            history: None,
        })
    }

    /// Clients read without ordering (`palisade_client::read_only`): keep the recent
    /// states, starting with the initial one, so such reads can be checked.
    pub fn with_read_history(mut self) -> Result<Oracle, Violation> {
        let mut history = BTreeMap::new();
        let initial = self
            .fs
            .snapshot()
            .map_err(|e| Violation::Internal(format!("oracle snapshot: {e}")))?;
        history.insert(self.applied(), initial);
        self.history = Some(history);
        Ok(self)
    }

    /// Request payloads are sealed with `key` (the firewall configuration): the
    /// reference opens them as the execution replicas do; one that does not open
    /// answers Inval, like one that does not decode.
    pub fn with_body_key(mut self, key: BodyKey) -> Oracle {
        self.body_key = Some(key);
        self
    }

    pub fn applied(&self) -> Sequence {
        self.fs.last_applied()
    }

    /// The digest committed at `sequence`, if known.
    pub fn committed_digest(&self, sequence: Sequence) -> Option<Digest> {
        self.committed.get(&sequence).map(|(d, _)| *d)
    }

    /// Records a committed batch. Two different batches at one sequence is the safety
    /// violation of agreement (TOCS §4.2, Theorem: no two correct replicas commit
    /// different requests at one sequence number).
    pub fn commit(&mut self, batch: &OrderedBatch, source: &str) -> Result<(), Violation> {
        let digest = batch
            .batch
            .digest()
            .map_err(|e| Violation::Internal(format!("batch digest: {e}")))?;
        if let Some((known, _)) = self.committed.get(&batch.sequence) {
            if *known != digest {
                return Err(Violation::ConflictingCommit {
                    sequence: batch.sequence,
                    detail: format!("{source} committed a batch different from an earlier one"),
                });
            }
            return Ok(());
        }
        if batch.sequence <= self.applied() {
            return Ok(());
        }
        if self.committed.len() >= MAX_AHEAD {
            return Err(Violation::Internal(
                "oracle: too many unapplied batches".into(),
            ));
        }
        self.committed
            .insert(batch.sequence, (digest, batch.clone()));
        self.apply_ready()
    }

    /// Applies the committed order as far as it is gap-free.
    fn apply_ready(&mut self) -> Result<(), Violation> {
        loop {
            let next = self.applied() + 1;
            let Some((_, batch)) = self.committed.get(&next) else {
                return Ok(());
            };
            let batch = batch.clone();
            self.apply(&batch)?;
        }
    }

    fn apply(&mut self, batch: &OrderedBatch) -> Result<(), Violation> {
        // Exactly-once (Castro–Liskov §4.1 via the replicas' table): a (client, request
        // id) ordered twice executes once; undecodable payloads answer Inval and change
        // nothing.
        let mut ops = Vec::new();
        let mut slots = Vec::new();
        for request in &batch.batch.requests {
            let key = (request.message.client, request.message.request_id);
            if !self.executed.insert(key) {
                continue;
            }
            let opened = match &self.body_key {
                Some(k) => k
                    .open_request(request.message.client, &request.message.payload)
                    .ok(),
                None => Some(request.message.payload.to_vec()),
            };
            let op = opened.and_then(|p| palisade_wire::decode::<FsOp>(&p).ok());
            match op {
                Some(op) => {
                    slots.push((key, Some(ops.len())));
                    ops.push(op);
                }
                None => slots.push((key, None)),
            }
        }
        let results = self
            .fs
            .apply_batch(&batch.context(), &ops)
            .map_err(|e| Violation::Internal(format!("oracle apply at {}: {e}", batch.sequence)))?;
        for (key, index) in slots {
            let bytes = match index.and_then(|i| results.get(i)) {
                Some(r) => palisade_wire::encode(r)
                    .map_err(|e| Violation::Internal(format!("encode result: {e}")))?,
                None => undecodable_result(),
            };
            self.results.insert(key, (batch.sequence, bytes));
        }
        if let Some(history) = &mut self.history {
            let snapshot = self
                .fs
                .snapshot()
                .map_err(|e| Violation::Internal(format!("oracle snapshot: {e}")))?;
            history.insert(batch.sequence, snapshot);
            while history.len() > READ_HISTORY {
                history.pop_first();
            }
        }
        Ok(())
    }

    /// Checks the unordered answer a client accepted to read-only `op`: it must be what
    /// `op` gives on the committed state after `sequence`, the highest sequence any
    /// answer named (TOCS §5.1.3; `palisade_client::read_only` places the read right
    /// after the highest sequence a correct replica read at — here the highest named,
    /// since the simulator's faulty replicas alter bytes, never sequences).
    /// `Ok(false)`: not checkable yet.
    pub fn check_read(
        &self,
        client: ClientId,
        request_id: u64,
        sequence: Sequence,
        op: &FsOp,
        result: &[u8],
    ) -> Result<bool, Violation> {
        if sequence > self.applied() {
            return Ok(false);
        }
        let wrong = |detail: String| Violation::WrongResult {
            client,
            request_id,
            detail,
        };
        let Some(state) = self.history.as_ref().and_then(|h| h.get(&sequence)) else {
            return Err(Violation::Internal(format!(
                "an unordered read at sequence {sequence} is older than the reference keeps (applied {})",
                self.applied()
            )));
        };
        let expected = state
            .read_only(op, self.fs.config())
            .map_err(|e| Violation::Internal(format!("oracle read at {sequence}: {e}")))?
            .ok_or_else(|| {
                wrong(format!(
                    "accepted an unordered answer to {op:?}, which is not read-only"
                ))
            })?;
        let bytes = palisade_wire::encode(&expected)
            .map_err(|e| Violation::Internal(format!("encode result: {e}")))?;
        if bytes != result {
            return Err(wrong(format!(
                "accepted an unordered read at sequence {sequence} whose bytes differ from the committed state's"
            )));
        }
        Ok(true)
    }

    /// The sequence at which the committed order executed a request, if it did.
    pub fn executed_at(&self, client: ClientId, request_id: u64) -> Option<Sequence> {
        self.results.get(&(client, request_id)).map(|(s, _)| *s)
    }

    /// Checks a result a client accepted, if the oracle got that far. `Ok(false)`: not
    /// checkable yet (the batch at `sequence` is not applied here yet).
    pub fn check_accepted(
        &self,
        client: ClientId,
        request_id: u64,
        sequence: Sequence,
        result: &[u8],
    ) -> Result<bool, Violation> {
        if sequence > self.applied() {
            return Ok(false);
        }
        match self.results.get(&(client, request_id)) {
            Some((s, bytes)) if *s == sequence && bytes.as_slice() == result => Ok(true),
            Some((s, _)) => Err(Violation::WrongResult {
                client,
                request_id,
                detail: format!(
                    "accepted a result for sequence {sequence}; the committed order executed it at {s} with different bytes or at another sequence"
                ),
            }),
            None => Err(Violation::WrongResult {
                client,
                request_id,
                detail: format!(
                    "accepted a result at sequence {sequence}, but the committed order never executed this request"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::agreement::{Batch, Request, Signed};
    use palisade_wire::fs::{CreateHow, SetAttr, Timestamp, ROOT_ID};

    fn batch(sequence: Sequence, seconds: u32, ids: &[u64]) -> OrderedBatch {
        let requests = ids
            .iter()
            .map(|id| {
                let op = FsOp::Create {
                    dir: ROOT_ID,
                    name: format!("f{id}").into_bytes(),
                    how: CreateHow::Guarded(SetAttr::default()),
                };
                Signed::sign(
                    &crate::keys::client_key(0),
                    Request {
                        client: 0,
                        request_id: *id,
                        payload: palisade_wire::encode(&op).unwrap().into(),
                    },
                )
                .unwrap()
            })
            .collect();
        OrderedBatch {
            sequence,
            batch: Batch {
                timestamp: Timestamp { seconds, nanos: 0 },
                requests,
            },
        }
    }

    #[test]
    fn accepted_results_are_compared_with_the_committed_order() {
        let mut oracle = Oracle::new().unwrap();
        // Out of order: nothing applies until sequence 1 arrives.
        oracle.commit(&batch(2, 5, &[2, 1]), "test").unwrap();
        assert_eq!(oracle.applied(), 0);
        assert_eq!(oracle.check_accepted(0, 1, 1, b"x"), Ok(false));
        oracle.commit(&batch(1, 5, &[1]), "test").unwrap();
        assert_eq!(oracle.applied(), 2);
        let (seq, right) = oracle.results.get(&(0, 1)).cloned().unwrap();
        assert_eq!(seq, 1);
        assert_eq!(oracle.check_accepted(0, 1, 1, &right), Ok(true));
        // Wrong bytes, wrong sequence, never executed: all violations.
        assert!(matches!(
            oracle.check_accepted(0, 1, 1, b"wrong"),
            Err(Violation::WrongResult { .. })
        ));
        assert!(matches!(
            oracle.check_accepted(0, 1, 2, &right),
            Err(Violation::WrongResult { .. })
        ));
        assert!(matches!(
            oracle.check_accepted(0, 99, 2, &right),
            Err(Violation::WrongResult { .. })
        ));
        // Request 1 ordered again at 2 executed once: sequence 2 ran only request 2.
        assert_eq!(oracle.results.get(&(0, 2)).map(|r| r.0), Some(2));
        assert_eq!(oracle.results.get(&(0, 1)).map(|r| r.0), Some(1));
    }

    #[test]
    fn a_second_batch_at_one_sequence_is_a_safety_violation() {
        let mut oracle = Oracle::new().unwrap();
        oracle.commit(&batch(1, 5, &[1]), "a").unwrap();
        oracle.commit(&batch(1, 5, &[1]), "b").unwrap();
        assert!(matches!(
            oracle.commit(&batch(1, 6, &[1]), "c"),
            Err(Violation::ConflictingCommit { sequence: 1, .. })
        ));
    }
}
