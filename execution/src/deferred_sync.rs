//! [`DeferredSync`]: a redb storage backend whose commit fsync may run after the commit
//! returns, so a batch's answers can wait for its fsync while the next batch executes.
//!
//! Why: with one executor, a durable commit is `write pages; fsync` and nothing else runs
//! meanwhile — the next batch's execution (copying data into blocks, hashing them,
//! building redb pages) waits for the disk. Here `sync_data` only records that the
//! commit needs an fsync, the file system moves on to the next batch, and whoever needs
//! durability (the executor's answering thread, via [`SyncWaiter`]) runs the fsync.
//!
//! Why it is safe: every *write* to the file (and every resize) first waits until every
//! fsync redb asked for has completed. So the sequence of writes and fsyncs the disk
//! sees is exactly the synchronous one — redb's crash-safety argument (a commit's pages
//! and header are durable before any later write can overwrite pages the previous
//! commit still needs) is unchanged. Only in-memory work overlaps the fsync. A commit
//! is durable — and its batch may be answered — once [`SyncWaiter::wait`] returns `Ok`.
//!
//! A failed fsync poisons the backend: every later write, resize and sync fails, so the
//! next commit fails and [`crate::RedbStore`] reopens the database, which recovers the
//! last commit that reached the disk. Whatever was executed in between is answered with
//! an error, never as durable.

use std::io;
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use redb::{BackendError, StorageBackend};

use crate::ExecError;

#[derive(Debug, Default)]
struct State {
    /// fsyncs redb asked for (one per durable commit, plus any of its own).
    requested: u64,
    /// All fsyncs up to this count have completed.
    synced: u64,
    /// An fsync is running (its caller will advance `synced`).
    in_progress: bool,
    /// A failed fsync (its kind and message, so a full disk stays recognisable): nothing
    /// written since may be assumed durable, ever.
    failed: Option<(io::ErrorKind, String)>,
}

/// The fsync bookkeeping shared by a [`DeferredSync`] backend and its waiters.
#[derive(Debug, Default)]
pub struct SyncState {
    state: Mutex<State>,
    changed: Condvar,
}

impl State {
    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some((kind, msg)) => Err(io::Error::new(
                *kind,
                format!("earlier fsync failed: {msg}"),
            )),
            None => Ok(()),
        }
    }
}

impl SyncState {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once the first `target` requested fsyncs are done, running one itself if
    /// none is running (so it never waits for a thread that does not exist).
    fn sync_through(&self, target: u64, sync: &dyn Fn() -> io::Result<()>) -> io::Result<()> {
        let mut st = self.lock();
        loop {
            st.check()?;
            if st.synced >= target {
                return Ok(());
            }
            if st.in_progress {
                st = self
                    .changed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st.in_progress = true;
            // Everything requested so far was written before this point, so this one
            // fsync covers all of it.
            let covers = st.requested;
            drop(st);
            let result = sync();
            st = self.lock();
            st.in_progress = false;
            match result {
                Ok(()) => st.synced = st.synced.max(covers),
                Err(ref e) => st.failed = Some((e.kind(), e.to_string())),
            }
            self.changed.notify_all();
            result?;
        }
    }
}

/// A waiter for the durability of the commits made so far (see [`DeferredSync`]).
pub struct SyncWaiter {
    shared: Arc<Shared>,
    target: u64,
}

impl SyncWaiter {
    /// Blocks until every commit made before this waiter was taken is on disk (running
    /// the fsync if no one else is). `Err`: an fsync failed; those commits may be lost.
    pub fn wait(self) -> Result<(), ExecError> {
        let inner = &self.shared.inner;
        self.shared
            .state
            .sync_through(self.target, &|| inner.sync_data())
            .map_err(|e| ExecError::Storage(format!("fsync: {e}")))
    }
}

#[derive(Debug)]
struct Shared {
    inner: Box<dyn StorageBackend>,
    state: SyncState,
}

/// A [`StorageBackend`] that defers redb's fsyncs (see the module documentation).
#[derive(Debug)]
pub struct DeferredSync {
    shared: Arc<Shared>,
}

/// A handle that hands out [`SyncWaiter`]s for one [`DeferredSync`] backend.
#[derive(Clone, Debug)]
pub struct SyncHandle {
    shared: Arc<Shared>,
}

impl SyncHandle {
    /// A waiter for everything committed so far.
    pub fn waiter(&self) -> SyncWaiter {
        SyncWaiter {
            target: self.shared.state.lock().requested,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl DeferredSync {
    /// Wraps `inner`; the handle gives waiters for its commits.
    pub fn new(inner: impl StorageBackend) -> (DeferredSync, SyncHandle) {
        let shared = Arc::new(Shared {
            inner: Box::new(inner),
            state: SyncState::default(),
        });
        (
            DeferredSync {
                shared: Arc::clone(&shared),
            },
            SyncHandle { shared },
        )
    }

    /// Waits until every fsync requested so far is done (see the module documentation).
    fn settle(&self) -> io::Result<()> {
        let target = self.shared.state.lock().requested;
        let inner = &self.shared.inner;
        self.shared
            .state
            .sync_through(target, &|| inner.sync_data())
    }
}

impl StorageBackend for DeferredSync {
    fn len(&self) -> Result<u64, io::Error> {
        self.shared.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        // Reads see the page cache; they need no ordering against fsyncs.
        self.shared.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.settle()?;
        self.shared.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        let mut st = self.shared.state.lock();
        st.check()?;
        st.requested += 1;
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.settle()?;
        self.shared.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), io::Error> {
        // Whatever redb synced last (its shutdown bookkeeping) reaches the disk too.
        let settled = self.settle();
        let closed = self.shared.inner.close();
        settled.and(closed)
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.shared.inner.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.shared.inner.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.inner.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.inner.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.inner.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.shared.inner.query_lock_range(start, end)
    }
}
