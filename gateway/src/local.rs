//! `LocalFileService`: the unreplicated file service — one durable file system on this
//! machine, driven by one executor thread with group commit (see [`crate::executor`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use palisade_execution::{DurableFileSystem, FileSystem, FsConfig, RedbStore};
use palisade_wire::fs::{BatchContext, FsError, FsOp, FsResult};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::error::GatewayError;
use crate::executor::{self, BatchApply, ExecutorStats, ExecutorStatsSnapshot, Msg};
use crate::file_service::FileService;

/// The durable file system is what the executor applies batches to.
impl<S: palisade_execution::Store> BatchApply for FileSystem<S> {
    type Error = palisade_execution::ExecError;
    fn last_applied(&self) -> u64 {
        FileSystem::last_applied(self)
    }
    fn apply_batch(
        &mut self,
        ctx: &BatchContext,
        ops: &[FsOp],
    ) -> Result<Vec<FsResult>, Self::Error> {
        FileSystem::apply_batch(self, ctx, ops)
    }
    fn sync_waiter(&self) -> Option<palisade_execution::SyncWaiter> {
        FileSystem::sync_waiter(self)
    }
}

/// The unreplicated file service.
pub struct LocalFileService {
    tx: mpsc::Sender<Msg>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<ExecutorStats>,
}

impl LocalFileService {
    /// Opens (or creates) the durable file system in `data_dir` and starts its executor
    /// thread. A corrupt or unreadable data directory is an error here, at start-up.
    ///
    /// Blocks while the store opens; call it from a blocking context
    /// (`tokio::task::spawn_blocking`) inside a runtime.
    pub fn open(data_dir: &Path, config: FsConfig) -> Result<Self, GatewayError> {
        let dir: PathBuf = data_dir.to_path_buf();
        Self::start(move || -> Result<DurableFileSystem, GatewayError> {
            let open_error = |source: palisade_execution::ExecError| GatewayError::OpenData {
                dir: dir.clone(),
                source: Box::new(source),
            };
            // Deferred fsyncs: the executor answers a batch only once its fsync is done,
            // and runs the next batch meanwhile (see `executor`).
            let store = RedbStore::open_deferred_sync(&dir).map_err(open_error)?;
            let fs = FileSystem::open(store, config).map_err(open_error)?;
            info!(dir = %dir.display(), last_applied = fs.last_applied(), "file system open");
            Ok(fs)
        })
    }

    /// Starts the executor thread on the file system `open` returns; `open` runs on the
    /// executor thread itself (so the file system never has to cross threads).
    pub fn start<F, O>(open: O) -> Result<Self, GatewayError>
    where
        F: BatchApply,
        O: FnOnce() -> Result<F, GatewayError> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel(executor::QUEUE_CAPACITY);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let stats = Arc::new(ExecutorStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("palisade-executor".into())
            .spawn(move || match open() {
                Ok(mut fs) => {
                    let _ = ready_tx.send(Ok(()));
                    executor::run(&mut fs, &mut rx, &thread_stats);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(GatewayError::SpawnExecutor)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                tx,
                closed: AtomicBool::new(false),
                thread: Mutex::new(Some(thread)),
                stats,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            // The thread ended without a word: `open` panicked.
            Err(_) => {
                let _ = thread.join();
                Err(GatewayError::ExecutorPanicked)
            }
        }
    }

    /// The executor's counters.
    pub fn stats(&self) -> ExecutorStatsSnapshot {
        self.stats.snapshot()
    }

    /// Stops the service: operations already queued are executed (the running batch
    /// finishes and commits), later calls answer `Io`, and the file system is closed
    /// (its files released) before this returns. Idempotent.
    pub async fn shutdown(&self) -> Result<(), GatewayError> {
        self.closed.store(true, Ordering::SeqCst);
        // Err: the thread is already gone (it owns the receiver).
        let _ = self.tx.send(Msg::Stop).await;
        let thread = match self.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(thread) = thread else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(GatewayError::ExecutorPanicked),
        }
    }
}

#[async_trait]
impl FileService for LocalFileService {
    async fn call(&self, op: FsOp) -> FsResult {
        if self.closed.load(Ordering::SeqCst) {
            return Err(FsError::Io);
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        if self.tx.send(Msg::Op(op, reply_tx)).await.is_err() {
            warn!("executor thread is gone; answering IO");
            return Err(FsError::Io);
        }
        reply_rx.await.unwrap_or_else(|_| {
            warn!("executor dropped an operation; answering IO");
            Err(FsError::Io)
        })
    }
}

#[cfg(test)]
mod tests {
    use palisade_execution::MemStore;
    use palisade_wire::fs::{FsReply, SetAttr, ROOT_ID};

    use super::*;

    fn mem() -> LocalFileService {
        LocalFileService::start(|| {
            FileSystem::open(MemStore::new(), FsConfig::default()).map_err(|e| {
                GatewayError::OpenData {
                    dir: PathBuf::from("<memory>"),
                    source: Box::new(e),
                }
            })
        })
        .unwrap()
    }

    #[tokio::test]
    async fn serves_until_shutdown_then_answers_io() {
        let svc = mem();
        let made = svc
            .call(FsOp::Mkdir {
                dir: ROOT_ID,
                name: b"d".to_vec(),
                attr: SetAttr::default(),
            })
            .await;
        let Ok(FsReply::Created { id, .. }) = made else {
            panic!("{made:?}")
        };
        let found = svc
            .call(FsOp::Lookup {
                dir: ROOT_ID,
                name: b"d".to_vec(),
            })
            .await;
        assert!(matches!(found, Ok(FsReply::Lookup { id: got, .. }) if got == id));
        assert_eq!(svc.stats().ops, 2);
        svc.shutdown().await.unwrap();
        assert_eq!(
            svc.call(FsOp::GetAttr { id: ROOT_ID }).await,
            Err(FsError::Io)
        );
        // Idempotent.
        svc.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn concurrent_callers_are_all_answered() {
        let svc = Arc::new(mem());
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let svc = svc.clone();
            tasks.push(tokio::spawn(async move {
                svc.call(FsOp::Mkdir {
                    dir: ROOT_ID,
                    name: format!("d{i}").into_bytes(),
                    attr: SetAttr::default(),
                })
                .await
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(FsReply::Created { id, .. }) => assert!(ids.insert(id)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ids.len(), 64);
        svc.shutdown().await.unwrap();
    }

    #[test]
    fn open_failures_are_reported() {
        let err = LocalFileService::start(|| -> Result<FileSystem<MemStore>, _> {
            Err(GatewayError::OpenData {
                dir: PathBuf::from("/nowhere"),
                source: Box::new(std::io::Error::other("unreadable")),
            })
        });
        match err {
            Err(e @ GatewayError::OpenData { .. }) => {
                assert!(e.to_string().contains("/nowhere"), "{e}")
            }
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => panic!("must fail"),
        }
        let panicked = LocalFileService::start(|| -> Result<FileSystem<MemStore>, GatewayError> {
            panic!("open blew up")
        });
        assert!(matches!(panicked, Err(GatewayError::ExecutorPanicked)));
    }
}
