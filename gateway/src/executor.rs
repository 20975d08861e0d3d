//! The executor thread of the unreplicated gateway: group commit.
//!
//! One dedicated std thread owns the file system, so blocking disk I/O and fsync never
//! run on tokio workers. Callers queue `(FsOp, reply)` on a bounded channel; the thread
//! takes everything queued up to [`MAX_BATCH_OPS`] operations or [`MAX_BATCH_BYTES`] of
//! write data as one batch, applies it with one `apply_batch` (one durable commit), and
//! answers every operation of the batch. Under load many WRITEs share one fsync, which is
//! what lets every WRITE be answered FILE_SYNC (RFC 1813 §3.3.7) at disk-batch speed.
//!
//! Pipelined commit: if the file system defers its fsyncs (`BatchApply::sync_waiter`,
//! `RedbStore::open_deferred_sync`), the executor hands each committed batch's answers
//! to an answering thread, which sends them only once that batch's fsync has completed
//! (and answers the whole batch with an error if it failed), while the executor already
//! runs the next batch. The store makes the next batch's first disk write wait for the
//! fsync, so only in-memory work overlaps the disk.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;

use palisade_execution::SyncWaiter;
use palisade_wire::fs::{BatchContext, FsError, FsOp, FsResult};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info};

use crate::clock::BatchClock;

/// Most operations in one batch.
pub const MAX_BATCH_OPS: usize = 256;
/// Most WRITE payload bytes in one batch (a batch may exceed it by its last write).
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Operations that may wait in the queue. Bounds the memory held by waiting WRITEs
/// (at most this many times the 1 MiB write maximum); callers beyond it wait.
pub const QUEUE_CAPACITY: usize = 256;
/// Committed batches that may wait for their fsync at once. The store lets at most one
/// commit run ahead of an fsync, so this is never reached in practice; it bounds memory
/// regardless.
pub const PENDING_BATCHES: usize = 4;

/// What the executor needs of a file system: the `apply_batch` contract of
/// `palisade_execution::FileSystem` (one atomic durable commit per batch).
pub trait BatchApply {
    type Error: StdError + 'static;
    fn last_applied(&self) -> u64;
    fn apply_batch(
        &mut self,
        ctx: &BatchContext,
        ops: &[FsOp],
    ) -> Result<Vec<FsResult>, Self::Error>;
    /// A waiter for the durability of every batch applied so far, if `apply_batch`
    /// returning `Ok` does not already mean durable (deferred fsyncs).
    fn sync_waiter(&self) -> Option<SyncWaiter> {
        None
    }
}

/// A message to the executor thread.
pub enum Msg {
    Op(FsOp, oneshot::Sender<FsResult>),
    /// Finish the current batch, answer what is still queued with `Io`, and exit.
    Stop,
}

/// The executor's counters. All counts only grow.
#[derive(Debug, Default)]
pub struct ExecutorStats {
    pub batches: AtomicU64,
    pub ops: AtomicU64,
    /// Batches whose commit failed (every op of such a batch was answered with an error).
    pub storage_errors: AtomicU64,
    /// The largest batch so far, in operations.
    pub max_batch_ops: AtomicU64,
}

/// A point-in-time copy of [`ExecutorStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorStatsSnapshot {
    pub batches: u64,
    pub ops: u64,
    pub storage_errors: u64,
    pub max_batch_ops: u64,
}

impl ExecutorStats {
    pub fn snapshot(&self) -> ExecutorStatsSnapshot {
        ExecutorStatsSnapshot {
            batches: self.batches.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            storage_errors: self.storage_errors.load(Ordering::Relaxed),
            max_batch_ops: self.max_batch_ops.load(Ordering::Relaxed),
        }
    }
}

/// A committed batch whose answers wait for its fsync.
struct Pending {
    sequence: u64,
    waiter: SyncWaiter,
    answers: Vec<(oneshot::Sender<FsResult>, FsResult)>,
}

/// The answering thread: answers each batch once it is durable, in commit order.
fn answer_when_durable(pending: std_mpsc::Receiver<Pending>, stats: &ExecutorStats) {
    for batch in pending {
        match batch.waiter.wait() {
            Ok(()) => {
                for (reply, result) in batch.answers {
                    // A caller that gave up (its connection closed) is not an error here.
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                stats.storage_errors.fetch_add(1, Ordering::Relaxed);
                let status = storage_status(&e);
                error!(
                    sequence = batch.sequence,
                    ops = batch.answers.len(),
                    error = %e,
                    answer = ?status,
                    "batch fsync failed; answering errors, it may be lost"
                );
                for (reply, _) in batch.answers {
                    let _ = reply.send(Err(status));
                }
            }
        }
    }
}

/// The thread's main loop: runs until `Stop` or until every sender is gone. Returns
/// once every batch is answered.
pub fn run<F: BatchApply>(fs: &mut F, rx: &mut mpsc::Receiver<Msg>, stats: &ExecutorStats) {
    std::thread::scope(|scope| {
        let (pending_tx, pending_rx) = std_mpsc::sync_channel(PENDING_BATCHES);
        let answerer = std::thread::Builder::new()
            .name("palisade-answer".into())
            .spawn_scoped(scope, move || answer_when_durable(pending_rx, stats));
        // Without an answering thread, answers wait for the fsync on this one.
        let pending_tx = match answerer {
            Ok(_) => Some(pending_tx),
            Err(e) => {
                error!(error = %e, "no answering thread; fsyncs will not overlap execution");
                None
            }
        };
        let mut clock = BatchClock::new();
        let mut ops = Vec::with_capacity(MAX_BATCH_OPS);
        let mut replies = Vec::with_capacity(MAX_BATCH_OPS);
        loop {
            let stop = collect(rx, &mut ops, &mut replies);
            if !ops.is_empty() {
                apply(
                    fs,
                    &mut clock,
                    &ops,
                    replies.drain(..),
                    stats,
                    pending_tx.as_ref(),
                );
                ops.clear();
            }
            if stop {
                break;
            }
        }
        // Dropping the sender ends the answering thread once it has answered everything
        // (running the last fsyncs itself); the scope joins it.
        drop(pending_tx);
    });
    // Anything queued after Stop is refused, not silently dropped.
    rx.close();
    let mut refused = 0u64;
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Op(_, reply) = msg {
            let _ = reply.send(Err(FsError::Io));
            refused += 1;
        }
    }
    info!(refused, "executor stopped");
}

/// Blocks for the first message, then takes what is already queued, up to the caps.
/// Returns true if the thread should stop after this batch.
fn collect(
    rx: &mut mpsc::Receiver<Msg>,
    ops: &mut Vec<FsOp>,
    replies: &mut Vec<oneshot::Sender<FsResult>>,
) -> bool {
    let mut bytes = 0usize;
    let mut push = |op: FsOp, reply, ops: &mut Vec<FsOp>| {
        if let FsOp::Write { data, .. } = &op {
            bytes = bytes.saturating_add(data.len());
        }
        ops.push(op);
        replies.push(reply);
        bytes
    };
    match rx.blocking_recv() {
        Some(Msg::Op(op, reply)) => {
            push(op, reply, ops);
        }
        Some(Msg::Stop) | None => return true,
    }
    while ops.len() < MAX_BATCH_OPS {
        match rx.try_recv() {
            Ok(Msg::Op(op, reply)) => {
                if push(op, reply, ops) >= MAX_BATCH_BYTES {
                    break;
                }
            }
            Ok(Msg::Stop) => return true,
            // Empty: the batch is what was queued. Disconnected: the next
            // blocking_recv returns None.
            Err(_) => break,
        }
    }
    false
}

/// Applies one batch as one commit and answers every operation of it.
fn apply<F: BatchApply>(
    fs: &mut F,
    clock: &mut BatchClock,
    ops: &[FsOp],
    replies: impl Iterator<Item = oneshot::Sender<FsResult>>,
    stats: &ExecutorStats,
    answerer: Option<&std_mpsc::SyncSender<Pending>>,
) {
    let ctx = BatchContext {
        sequence: fs.last_applied().saturating_add(1),
        timestamp: clock.next_stamp(),
    };
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
    stats
        .max_batch_ops
        .fetch_max(ops.len() as u64, Ordering::Relaxed);
    match fs.apply_batch(&ctx, ops) {
        Ok(results) => {
            debug!(sequence = ctx.sequence, ops = ops.len(), "batch committed");
            if results.len() != ops.len() {
                error!(
                    expected = ops.len(),
                    got = results.len(),
                    "file system answered a batch with the wrong number of results"
                );
            }
            let mut results = results.into_iter();
            let answers: Vec<(oneshot::Sender<FsResult>, FsResult)> = replies
                .map(|reply| (reply, results.next().unwrap_or(Err(FsError::ServerFault))))
                .collect();
            let Some(waiter) = fs.sync_waiter() else {
                // Durable already: answer now.
                for (reply, result) in answers {
                    // A caller that gave up (its connection closed) is not an error here.
                    let _ = reply.send(result);
                }
                return;
            };
            let batch = Pending {
                sequence: ctx.sequence,
                waiter,
                answers,
            };
            let unsent = match answerer {
                Some(tx) => tx.send(batch).err().map(|e| e.0),
                None => Some(batch),
            };
            // No answering thread (it could not start): wait for the fsync here.
            if let Some(batch) = unsent {
                let (tx, rx) = std_mpsc::sync_channel(1);
                let _ = tx.send(batch);
                drop(tx);
                answer_when_durable(rx, stats);
            }
        }
        Err(e) => {
            stats.storage_errors.fetch_add(1, Ordering::Relaxed);
            let status = storage_status(&e);
            error!(
                sequence = ctx.sequence,
                ops = ops.len(),
                error = %e,
                answer = ?status,
                "batch failed; nothing of it was applied"
            );
            for reply in replies {
                let _ = reply.send(Err(status));
            }
        }
    }
}

/// The NFS answer to a failed commit: NOSPC if the cause is a full disk, else IO.
pub fn storage_status(error: &(dyn StdError + 'static)) -> FsError {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // ENOSPC is 28 on Linux; StorageFull is std's name for it.
            if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) {
                return FsError::NoSpc;
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("no space") || text.contains("disk full") {
            return FsError::NoSpc;
        }
        cause = e.source();
    }
    FsError::Io
}
