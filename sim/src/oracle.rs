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
    /// ORDER certificate), by sequence, with their digest and the epoch (whole-cluster
    /// stops before it) they were committed in.
    committed: BTreeMap<Sequence, (Digest, OrderedBatch, u64)>,
    /// Whole-cluster stops so far ([`Oracle::cluster_stopped`]).
    epoch: u64,
    /// The lowest sequence an execution replica stood at when the cluster last
    /// stopped: agreement may order anew only above it.
    restart_floor: Sequence,
    /// The requests whose results each applied sequence produced (to roll them back).
    produced: BTreeMap<Sequence, Vec<(ClientId, u64)>>,
    /// Ordered results clients accepted, with their sequence: a restart must keep them.
    acknowledged: BTreeMap<(ClientId, u64), Sequence>,
    /// Applied sequences gone back over ([`Oracle::roll_back`]).
    voided: u64,
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
            epoch: 0,
            restart_floor: 0,
            produced: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            voided: 0,
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

    /// Where an unordered read naming `sequence` stands for the real-time order of reads.
    /// Normally at `sequence`; but a replica that resumed ahead of the cluster answers
    /// from a batch the restart may void until it learns the stable restart checkpoint
    /// (its answer counted only because the replicas behind answered the same bytes),
    /// so a sequence above the last stop's lowest replica, committed only before the
    /// stop, stands for that lowest one.
    pub fn read_position(&self, sequence: Sequence) -> Sequence {
        match self.committed.get(&sequence) {
            Some((_, _, epoch)) if *epoch < self.epoch && sequence > self.restart_floor => {
                self.restart_floor
            }
            _ => sequence,
        }
    }

    /// Applied sequences the reference went back over after whole-cluster stops.
    pub fn sequences_voided(&self) -> u64 {
        self.voided
    }

    pub fn applied(&self) -> Sequence {
        self.fs.last_applied()
    }

    /// The digest committed at `sequence`, if known.
    pub fn committed_digest(&self, sequence: Sequence) -> Option<Digest> {
        self.committed.get(&sequence).map(|(d, _, _)| *d)
    }

    /// Records a committed batch. Two different batches at one sequence is the safety
    /// violation of agreement (TOCS §4.2, Theorem: no two correct replicas commit
    /// different requests at one sequence number).
    pub fn commit(&mut self, batch: &OrderedBatch, source: &str) -> Result<(), Violation> {
        let digest = batch
            .batch
            .digest()
            .map_err(|e| Violation::Internal(format!("batch digest: {e}")))?;
        if let Some((known, _, epoch)) = self.committed.get(&batch.sequence) {
            if *known == digest {
                return Ok(());
            }
            // After a whole-cluster stop agreement, which remembers nothing past its
            // recorded checkpoint, orders anew above where the execution replicas
            // resumed (`ExecutionReplica::start`): the batches there before are void.
            if *epoch == self.epoch || batch.sequence <= self.restart_floor {
                return Err(Violation::ConflictingCommit {
                    sequence: batch.sequence,
                    detail: format!("{source} committed a batch different from an earlier one"),
                });
            }
            self.roll_back(batch.sequence - 1)?;
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
            .insert(batch.sequence, (digest, batch.clone(), self.epoch));
        self.apply_ready()
    }

    /// Applies the committed order as far as it is gap-free.
    fn apply_ready(&mut self) -> Result<(), Violation> {
        loop {
            let next = self.applied() + 1;
            let Some((_, batch, _)) = self.committed.get(&next) else {
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
        let mut produced = Vec::new();
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
            produced.push(key);
        }
        self.produced.insert(batch.sequence, produced);
        while self.produced.len() > READ_HISTORY {
            self.produced.pop_first();
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

    /// The whole cluster stopped at once, its execution replicas at `lowest` or above:
    /// batches committed so far above `lowest` may be ordered differently after the
    /// restart, if no client accepted their results.
    pub fn cluster_stopped(&mut self, lowest: Sequence) {
        self.epoch += 1;
        self.restart_floor = lowest;
        self.acknowledged.retain(|_, s| *s > lowest);
    }

    /// Voids the batches of earlier epochs above `target` and goes back to the state
    /// after `target`. A result a client accepted from a voided batch is an
    /// acknowledged operation lost: a violation.
    fn roll_back(&mut self, target: Sequence) -> Result<(), Violation> {
        let epoch = self.epoch;
        self.committed
            .retain(|s, (_, _, e)| *s <= target || *e == epoch);
        if target >= self.applied() {
            return Ok(());
        }
        if let Some(((client, request_id), sequence)) =
            self.acknowledged.iter().find(|(_, s)| **s > target)
        {
            return Err(Violation::WrongResult {
                client: *client,
                request_id: *request_id,
                detail: format!(
                    "accepted a result at sequence {sequence}, which a cluster restart voided (agreement ordered anew after {target})"
                ),
            });
        }
        let checkpoint = self
            .history
            .as_ref()
            .and_then(|h| h.get(&target))
            .ok_or_else(|| {
                Violation::Internal(format!(
                    "the reference keeps no state at {target} to roll back to (applied {})",
                    self.applied()
                ))
            })?
            .export_checkpoint(None)
            .map_err(|e| Violation::Internal(format!("oracle export at {target}: {e}")))?;
        let mut fs = FileSystem::open(MemStore::new(), self.fs.config())
            .map_err(|e| Violation::Internal(format!("oracle reopen: {e}")))?;
        fs.import_checkpoint(&checkpoint)
            .map_err(|e| Violation::Internal(format!("oracle import at {target}: {e}")))?;
        self.voided += self.applied() - target;
        self.fs = fs;
        for key in self
            .produced
            .split_off(&(target + 1))
            .into_values()
            .flatten()
        {
            self.results.remove(&key);
            self.executed.remove(&key);
        }
        if let Some(history) = &mut self.history {
            history.split_off(&(target + 1));
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
        &mut self,
        client: ClientId,
        request_id: u64,
        sequence: Sequence,
        result: &[u8],
    ) -> Result<bool, Violation> {
        if sequence > self.applied() {
            return Ok(false);
        }
        match self.results.get(&(client, request_id)) {
            Some((s, bytes)) if *s == sequence && bytes.as_slice() == result => {
                self.acknowledged.insert((client, request_id), sequence);
                Ok(true)
            }
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

    /// After a whole-cluster stop with the execution replicas at 1 or above, agreement
    /// may order another batch at 2: the reference goes back to the state after 1 and
    /// forgets what the first batch at 2 did. Not at or below 1, and not over a result
    /// a client accepted.
    #[test]
    fn a_cluster_stop_voids_batches_above_the_lowest_replica_unless_acknowledged() {
        let mut oracle = Oracle::new().unwrap().with_read_history().unwrap();
        oracle.commit(&batch(1, 5, &[1]), "a").unwrap();
        oracle.commit(&batch(2, 5, &[2]), "a").unwrap();
        oracle.cluster_stopped(1);
        assert!(matches!(
            oracle.commit(&batch(1, 6, &[1]), "b"),
            Err(Violation::ConflictingCommit { sequence: 1, .. })
        ));
        oracle.commit(&batch(2, 6, &[3]), "b").unwrap();
        assert_eq!((oracle.applied(), oracle.sequences_voided()), (2, 1));
        assert_eq!(oracle.executed_at(0, 2), None);
        assert_eq!(oracle.executed_at(0, 3), Some(2));
        // Request 2 executes when ordered again, as if for the first time.
        oracle.commit(&batch(3, 6, &[2]), "b").unwrap();
        assert_eq!(oracle.executed_at(0, 2), Some(3));
        // The state is the one the new order made: creating f3 again fails (EXIST).
        let (_, f3) = oracle.results.get(&(0, 3)).cloned().unwrap();
        let mut fresh = Oracle::new().unwrap();
        fresh.commit(&batch(1, 5, &[1]), "x").unwrap();
        fresh.commit(&batch(2, 6, &[3]), "x").unwrap();
        assert_eq!(fresh.results.get(&(0, 3)).map(|r| r.1.clone()), Some(f3));

        // A result accepted from a batch a later order replaces: an acknowledged loss.
        let mut oracle = Oracle::new().unwrap().with_read_history().unwrap();
        oracle.commit(&batch(1, 5, &[1]), "a").unwrap();
        oracle.commit(&batch(2, 5, &[2]), "a").unwrap();
        let (_, bytes) = oracle.results.get(&(0, 2)).cloned().unwrap();
        assert_eq!(oracle.check_accepted(0, 2, 2, &bytes), Ok(true));
        oracle.cluster_stopped(1);
        assert!(matches!(
            oracle.commit(&batch(2, 6, &[3]), "b"),
            Err(Violation::WrongResult { request_id: 2, .. })
        ));
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
