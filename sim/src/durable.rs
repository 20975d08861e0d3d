//! A [`MemStore`] that outlives the replica using it: the simulator's stand-in for an
//! execution replica's data directory. A crash drops the replica (and everything it held
//! in memory); the restart reopens the same store, which holds exactly the batches whose
//! commit completed durably, as a redb directory would: a commit without an fsync
//! (`ChangeSet::durable` false, a batch of reads) is lost in a crash unless a durable
//! commit followed it, since redb's commits reach the disk in order.

use std::cell::RefCell;
use std::rc::Rc;

use palisade_execution::{
    Block, BlockMeta, ChangeSet, ExecError, MemSnapshot, MemStore, StateView, Store,
};
use palisade_wire::checkpoint::{BatchLeaves, ClientRecord, InodeRecord, MetaRecord};
use palisade_wire::fs::FileId;

/// A shared handle to one simulated data directory.
#[derive(Clone, Debug, Default)]
pub struct DurableStore(Rc<RefCell<MemStore>>, Rc<RefCell<OnDisk>>);

/// What a crash leaves: the state as of the last durable commit, and the commits since
/// (made without an fsync) that a crash loses. At most a checkpoint interval of them:
/// a replica's checkpoint batches are durable.
#[derive(Debug, Default)]
struct OnDisk {
    synced: MemStore,
    unsynced: Vec<ChangeSet>,
}

fn busy() -> ExecError {
    ExecError::Storage("simulated store is busy (re-entrant use)".into())
}

impl DurableStore {
    /// An empty data directory.
    pub fn new() -> DurableStore {
        DurableStore::default()
    }

    /// A crash: the commits made without an fsync since the last durable one are gone.
    pub fn crash(&self) {
        let Ok(mut disk) = self.1.try_borrow_mut() else {
            return;
        };
        let Ok(mut live) = self.0.try_borrow_mut() else {
            return;
        };
        disk.unsynced.clear();
        *live = disk.synced.clone();
    }
}

impl StateView for DurableStore {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError> {
        self.0.try_borrow().map_err(|_| busy())?.inode(id)
    }
    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError> {
        self.0.try_borrow().map_err(|_| busy())?.entry(dir, name)
    }
    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        self.0
            .try_borrow()
            .map_err(|_| busy())?
            .children_from(dir, from, limit)
    }
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        self.0.try_borrow().map_err(|_| busy())?.block(id, index)
    }
    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        self.0
            .try_borrow()
            .map_err(|_| busy())?
            .block_metas_from(id, from, limit)
    }
}

impl Store for DurableStore {
    type Snapshot = MemSnapshot;
    fn snapshot(&self) -> Result<MemSnapshot, ExecError> {
        self.0.try_borrow().map_err(|_| busy())?.snapshot()
    }
    fn load_meta(&self) -> Result<Option<(MetaRecord, u64)>, ExecError> {
        self.0.try_borrow().map_err(|_| busy())?.load_meta()
    }
    fn inode_ids_from(&self, from: FileId, limit: usize) -> Result<Vec<FileId>, ExecError> {
        self.0
            .try_borrow()
            .map_err(|_| busy())?
            .inode_ids_from(from, limit)
    }
    fn clients_from(&self, from: u64, limit: usize) -> Result<Vec<ClientRecord>, ExecError> {
        self.0
            .try_borrow()
            .map_err(|_| busy())?
            .clients_from(from, limit)
    }
    fn replies_from(&self, from: u64, limit: usize) -> Result<Vec<BatchLeaves>, ExecError> {
        self.0
            .try_borrow()
            .map_err(|_| busy())?
            .replies_from(from, limit)
    }
    fn commit(&mut self, changes: &ChangeSet) -> Result<(), ExecError> {
        self.0
            .try_borrow_mut()
            .map_err(|_| busy())?
            .commit(changes)?;
        let mut disk = self.1.try_borrow_mut().map_err(|_| busy())?;
        if changes.durable {
            let OnDisk { synced, unsynced } = &mut *disk;
            for earlier in unsynced.drain(..) {
                synced.commit(&earlier)?;
            }
            synced.commit(changes)?;
        } else {
            disk.unsynced.push(changes.clone());
        }
        Ok(())
    }
}
