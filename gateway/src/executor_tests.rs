//! Tests of the executor loop (group commit, ordering, storage errors, stop) against a
//! fake file system that records its batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use palisade_execution::{DeferredSync, SyncHandle, SyncWaiter};
use palisade_wire::fs::{BatchContext, FileType, FsError, FsOp, FsReply, FsResult};
use redb::StorageBackend;
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
    /// Deferred fsyncs: each batch asks for one, as a redb commit would.
    deferred: Option<(DeferredSync, SyncHandle)>,
}

/// A disk whose fsync announces itself on `entered`, then waits for the test's word on
/// `gate` (a closed gate lets it through), and fails while `fail` is set.
#[derive(Debug)]
struct SlowDisk {
    entered: Mutex<std_mpsc::Sender<()>>,
    gate: Mutex<std_mpsc::Receiver<()>>,
    fail: Arc<AtomicBool>,
}

impl StorageBackend for SlowDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(0)
    }
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn set_len(&self, _: u64) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        let _ = self.entered.lock().unwrap().send(());
        let _ = self.gate.lock().unwrap().recv();
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), std::io::Error> {
        Ok(())
    }
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
        if let Some((disk, _)) = &self.deferred {
            // As a redb commit: the fsync is asked for, not run (refused once one failed).
            disk.sync_data().map_err(|e| FakeError(e.to_string()))?;
        }
        assert_eq!(ctx.sequence, self.last + 1);
        self.last = ctx.sequence;
        self.log.lock().unwrap().batches.push((*ctx, ops.to_vec()));
        Ok(ops
            .iter()
            .map(|op| match op {
                FsOp::GetAttr { id } => Ok(FsReply::ReadLink {
                    target: format!("{}:{id}", ctx.sequence).into_bytes(),
                    // The answer rides as a link target; the attributes are filler.
                    attr: crate::nfs_tests::attr(*id, FileType::Symlink),
                }),
                _ => Ok(FsReply::Done),
            })
            .collect())
    }
    fn sync_waiter(&self) -> Option<SyncWaiter> {
        self.deferred.as_ref().map(|(_, handle)| handle.waiter())
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
    /// With a slow disk: fsyncs announce themselves here ...
    sync_entered: Option<std_mpsc::Receiver<()>>,
    /// ... and each message here lets one through.
    sync_gate: Option<std_mpsc::Sender<()>>,
    sync_fail: Arc<AtomicBool>,
}

impl Harness {
    fn new(gated: bool) -> Self {
        Self::build(gated, false)
    }

    /// With deferred fsyncs on a [`SlowDisk`].
    fn with_slow_disk(gated: bool) -> Self {
        Self::build(gated, true)
    }

    fn build(gated: bool, slow_disk: bool) -> Self {
        let (tx, mut rx) = mpsc::channel(executor::QUEUE_CAPACITY);
        let log = Arc::new(Mutex::new(Log::default()));
        let fail = Arc::new(Mutex::new(None));
        let stats = Arc::new(ExecutorStats::default());
        let (gate_tx, gate_rx) = std_mpsc::channel();
        let (entered_tx, entered_rx) = std_mpsc::channel();
        let (sync_entered_tx, sync_entered_rx) = std_mpsc::channel();
        let (sync_gate_tx, sync_gate_rx) = std_mpsc::channel();
        let sync_fail = Arc::new(AtomicBool::new(false));
        let disk = SlowDisk {
            entered: Mutex::new(sync_entered_tx),
            gate: Mutex::new(sync_gate_rx),
            fail: sync_fail.clone(),
        };
        let mut fake = Fake {
            last: 41,
            log: log.clone(),
            gate: gated.then_some((entered_tx, gate_rx)),
            fail: fail.clone(),
            deferred: slow_disk.then(|| DeferredSync::new(disk)),
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
            sync_entered: Some(sync_entered_rx),
            sync_gate: Some(sync_gate_tx),
            sync_fail,
        }
    }

    /// Waits until an fsync is running (and held at the gate).
    async fn wait_sync_entered(&mut self) {
        let entered = self.sync_entered.take().unwrap();
        let entered = tokio::task::spawn_blocking(move || {
            entered.recv().unwrap();
            entered
        })
        .await
        .unwrap();
        self.sync_entered = Some(entered);
    }

    /// Lets every fsync through from now on.
    fn open_sync_gate(&mut self) {
        self.sync_gate.take();
    }

    /// Waits until the file system has applied `n` batches.
    async fn wait_applied(&self, n: usize) {
        while self.log.lock().unwrap().batches.len() < n {
            tokio::task::yield_now().await;
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
        FsReply::ReadLink { target, .. } => String::from_utf8(target).unwrap(),
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

#[tokio::test]
async fn pipelined_answers_wait_for_the_fsync_while_the_next_batch_runs() {
    let mut h = Harness::with_slow_disk(false);
    let mut first = h.send(FsOp::GetAttr { id: 1 }).await;
    // Batch 42 is committed and its fsync is running, held at the gate.
    h.wait_sync_entered().await;
    let mut second = h.send(FsOp::GetAttr { id: 2 }).await;
    // The executor applies batch 43 while 42's fsync is still held ...
    h.wait_applied(2).await;
    // ... and answers neither: 42 is not durable yet, 43 not either.
    assert!(matches!(
        first.try_recv(),
        Err(oneshot::error::TryRecvError::Empty)
    ));
    assert!(matches!(
        second.try_recv(),
        Err(oneshot::error::TryRecvError::Empty)
    ));
    h.open_sync_gate();
    assert_eq!(target(first.await.unwrap()), "42:1");
    assert_eq!(target(second.await.unwrap()), "43:2");
    assert_eq!(h.stats.snapshot().storage_errors, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_failed_fsync_answers_errors_for_the_whole_batch() {
    let mut h = Harness::with_slow_disk(true);
    let first = h.send(FsOp::GetAttr { id: 1 }).await;
    h.wait_entered().await;
    // Two ops queue behind the first batch and form the second one.
    let a = h.send(FsOp::GetAttr { id: 2 }).await;
    let b = h.send(FsOp::GetAttr { id: 3 }).await;
    h.wait_queued(2).await;
    h.sync_fail.store(true, Ordering::SeqCst);
    h.open_sync_gate();
    h.open_gate();
    // Every fsync fails with ENOSPC: both batches are answered NOSPC, every op of them,
    // whether the second was applied before the failure (and waited for its fsync) or
    // after (its commit refused).
    assert_eq!(first.await.unwrap(), Err(FsError::NoSpc));
    assert_eq!(a.await.unwrap(), Err(FsError::NoSpc));
    assert_eq!(b.await.unwrap(), Err(FsError::NoSpc));
    assert_eq!(h.stats.snapshot().storage_errors, 2);
    h.stop().await;
}
