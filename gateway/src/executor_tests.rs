//! Tests of the executor loop (group commit, ordering, storage errors, stop) against a
//! fake file system that records its batches.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use palisade_wire::fs::{BatchContext, FsError, FsOp, FsReply, FsResult};
use tokio::sync::{mpsc, oneshot};

use crate::executor::{self, storage_status, BatchApply, ExecutorStats, Msg};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FakeError(String);

#[derive(Default)]
struct Log {
    batches: Vec<(BatchContext, Vec<FsOp>)>,
}

struct Fake {
    last: u64,
    log: Arc<Mutex<Log>>,
    /// The first batch announces itself on `.0`, then waits for a message on `.1`
    /// (lets a test queue ops behind a batch that is being applied).
    gate: Option<(std_mpsc::Sender<()>, std_mpsc::Receiver<()>)>,
    /// The next batch fails with this message.
    fail: Arc<Mutex<Option<String>>>,
}

impl BatchApply for Fake {
    type Error = FakeError;
    fn last_applied(&self) -> u64 {
        self.last
    }
    fn apply_batch(
        &mut self,
        ctx: &BatchContext,
        ops: &[FsOp],
    ) -> Result<Vec<FsResult>, FakeError> {
        if let Some((entered, gate)) = self.gate.take() {
            let _ = entered.send(());
            let _ = gate.recv();
        }
        if let Some(msg) = self.fail.lock().unwrap().take() {
            return Err(FakeError(msg));
        }
        assert_eq!(ctx.sequence, self.last + 1);
        self.last = ctx.sequence;
        self.log.lock().unwrap().batches.push((*ctx, ops.to_vec()));
        Ok(ops
            .iter()
            .map(|op| match op {
                FsOp::GetAttr { id } => Ok(FsReply::ReadLink {
                    target: format!("{}:{id}", ctx.sequence).into_bytes(),
                }),
                _ => Ok(FsReply::Done),
            })
            .collect())
    }
}

struct Harness {
    tx: mpsc::Sender<Msg>,
    log: Arc<Mutex<Log>>,
    fail: Arc<Mutex<Option<String>>>,
    stats: Arc<ExecutorStats>,
    gate: Option<std_mpsc::Sender<()>>,
    entered: Option<std_mpsc::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Harness {
    fn new(gated: bool) -> Self {
        let (tx, mut rx) = mpsc::channel(executor::QUEUE_CAPACITY);
        let log = Arc::new(Mutex::new(Log::default()));
        let fail = Arc::new(Mutex::new(None));
        let stats = Arc::new(ExecutorStats::default());
        let (gate_tx, gate_rx) = std_mpsc::channel();
        let (entered_tx, entered_rx) = std_mpsc::channel();
        let mut fake = Fake {
            last: 41,
            log: log.clone(),
            gate: gated.then_some((entered_tx, gate_rx)),
            fail: fail.clone(),
        };
        let thread_stats = stats.clone();
        let thread = std::thread::spawn(move || executor::run(&mut fake, &mut rx, &thread_stats));
        Self {
            tx,
            log,
            fail,
            stats,
            gate: gated.then_some(gate_tx),
            entered: gated.then_some(entered_rx),
            thread: Some(thread),
        }
    }

    async fn send(&self, op: FsOp) -> oneshot::Receiver<FsResult> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.tx.send(Msg::Op(op, reply_tx)).await.unwrap();
        reply_rx
    }

    /// Waits until `n` messages sit in the queue (the executor is blocked in the gate).
    async fn wait_queued(&self, n: usize) {
        while self.tx.max_capacity() - self.tx.capacity() < n {
            tokio::task::yield_now().await;
        }
    }

    /// Waits until the executor is inside the gated first batch.
    async fn wait_entered(&mut self) {
        let entered = self.entered.take().unwrap();
        tokio::task::spawn_blocking(move || entered.recv().unwrap())
            .await
            .unwrap();
    }

    fn open_gate(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.send(()).unwrap();
        }
    }

    async fn stop(mut self) {
        self.tx.send(Msg::Stop).await.unwrap();
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}

fn target(r: FsResult) -> String {
    match r.unwrap() {
        FsReply::ReadLink { target } => String::from_utf8(target).unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn batches_follow_last_applied_and_answer_each_op() {
    let h = Harness::new(false);
    for id in 1..=3u64 {
        let reply = h.send(FsOp::GetAttr { id }).await.await.unwrap();
        assert_eq!(target(reply), format!("{}:{id}", 41 + id));
    }
    let log = h.log.lock().unwrap().batches.clone();
    assert_eq!(log.len(), 3);
    assert!(log.windows(2).all(|w| w[0].0.timestamp < w[1].0.timestamp));
    drop(log);
    h.stop().await;
}

#[tokio::test]
async fn queued_ops_share_one_commit() {
    let mut h = Harness::new(true);
    let first = h.send(FsOp::GetAttr { id: 100 }).await;
    // The executor holds op 100 in the gate; queue ten more behind it.
    h.wait_entered().await;
    let mut rest = Vec::new();
    for id in 0..10u64 {
        rest.push(h.send(FsOp::GetAttr { id }).await);
    }
    h.wait_queued(10).await;
    h.open_gate();
    assert_eq!(target(first.await.unwrap()), "42:100");
    for (id, reply) in rest.into_iter().enumerate() {
        assert_eq!(target(reply.await.unwrap()), format!("43:{id}"));
    }
    let stats = h.stats.snapshot();
    assert_eq!((stats.batches, stats.ops, stats.max_batch_ops), (2, 11, 10));
    h.stop().await;
}

#[tokio::test]
async fn write_bytes_cap_a_batch() {
    let mut h = Harness::new(true);
    let first = h.send(FsOp::GetAttr { id: 1 }).await;
    h.wait_entered().await;
    let big = executor::MAX_BATCH_BYTES / 2;
    let mut writes = Vec::new();
    for i in 0..3u64 {
        writes.push(
            h.send(FsOp::Write {
                id: 2,
                offset: i,
                data: vec![0u8; big],
            })
            .await,
        );
    }
    h.wait_queued(3).await;
    h.open_gate();
    first.await.unwrap().unwrap();
    for w in writes {
        assert_eq!(w.await.unwrap(), Ok(FsReply::Done));
    }
    let sizes: Vec<usize> = h
        .log
        .lock()
        .unwrap()
        .batches
        .iter()
        .map(|(_, ops)| ops.len())
        .collect();
    // Two half-cap writes fill a batch; the third starts the next one.
    assert_eq!(sizes, vec![1, 2, 1]);
    h.stop().await;
}

#[tokio::test]
async fn a_failed_commit_answers_every_op_and_service_continues() {
    let mut h = Harness::new(true);
    let first = h.send(FsOp::GetAttr { id: 1 }).await;
    h.wait_entered().await;
    let a = h.send(FsOp::GetAttr { id: 2 }).await;
    let b = h.send(FsOp::GetAttr { id: 3 }).await;
    h.wait_queued(2).await;
    *h.fail.lock().unwrap() = Some("disk on fire".into());
    h.open_gate();
    // The first batch (op 1) hit the failure.
    assert_eq!(first.await.unwrap(), Err(FsError::Io));
    assert_eq!(target(a.await.unwrap()), "42:2");
    assert_eq!(target(b.await.unwrap()), "42:3");
    *h.fail.lock().unwrap() = Some("No space left on device (os error 28)".into());
    let c = h.send(FsOp::GetAttr { id: 4 }).await;
    assert_eq!(c.await.unwrap(), Err(FsError::NoSpc));
    let d = h.send(FsOp::GetAttr { id: 5 }).await;
    assert_eq!(target(d.await.unwrap()), "43:5");
    assert_eq!(h.stats.snapshot().storage_errors, 2);
    h.stop().await;
}

#[tokio::test]
async fn stop_finishes_queued_work_and_refuses_later_ops() {
    let mut h = Harness::new(true);
    let first = h.send(FsOp::GetAttr { id: 1 }).await;
    h.wait_entered().await;
    let before = h.send(FsOp::GetAttr { id: 2 }).await;
    h.tx.send(Msg::Stop).await.unwrap();
    let after = h.send(FsOp::GetAttr { id: 3 }).await;
    h.wait_queued(3).await;
    h.open_gate();
    assert_eq!(target(first.await.unwrap()), "42:1");
    assert_eq!(target(before.await.unwrap()), "43:2");
    assert_eq!(after.await.unwrap(), Err(FsError::Io));
    let thread = h.thread.take().unwrap();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
}

#[test]
fn storage_status_recognises_a_full_disk() {
    let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
    assert_eq!(storage_status(&full), FsError::NoSpc);
    let enospc = std::io::Error::from_raw_os_error(28);
    assert_eq!(storage_status(&enospc), FsError::NoSpc);
    #[derive(Debug, thiserror::Error)]
    #[error("commit failed")]
    struct Wrapper(#[source] std::io::Error);
    assert_eq!(
        storage_status(&Wrapper(std::io::Error::from_raw_os_error(28))),
        FsError::NoSpc
    );
    assert_eq!(
        storage_status(&Wrapper(std::io::Error::other("checksum mismatch"))),
        FsError::Io
    );
}
