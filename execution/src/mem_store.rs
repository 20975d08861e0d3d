//! An in-memory [`Store`]: ordered maps, for fast tests and the deterministic simulator.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use palisade_wire::checkpoint::{BatchLeaves, ClientRecord, InodeRecord, MetaRecord};
use palisade_wire::fs::FileId;

use crate::store::{Block, BlockMeta, ChangeSet, StateView, Store};
use crate::ExecError;

/// An in-memory store. Commits are atomic trivially (applied between batches, in one
/// call). A fault injector lets tests and the simulator make the next commits fail, as a
/// full disk would.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    meta: Option<(MetaRecord, u64)>,
    inodes: BTreeMap<FileId, InodeRecord>,
    entries: BTreeMap<(FileId, Vec<u8>), FileId>,
    children: BTreeMap<(FileId, FileId), Vec<u8>>,
    blocks: BTreeMap<(FileId, u64), Block>,
    clients: BTreeMap<u64, ClientRecord>,
    replies: BTreeMap<u64, Vec<[u8; 32]>>,
    failures: Arc<AtomicU32>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// A handle that makes the next N commits fail with [`ExecError::Storage`] (store N in
    /// it). Shared, so it stays usable after the store moved into a `FileSystem`.
    pub fn fault_injector(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.failures)
    }
}

/// A frozen copy of a [`MemStore`] (an O(state) clone: fine for tests and the
/// simulator, whose states are small).
#[derive(Debug)]
pub struct MemSnapshot(MemStore);

impl StateView for MemSnapshot {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError> {
        self.0.inode(id)
    }
    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError> {
        self.0.entry(dir, name)
    }
    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        self.0.children_from(dir, from, limit)
    }
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        self.0.block(id, index)
    }
    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        self.0.block_metas_from(id, from, limit)
    }
}

fn apply<K: Ord + Clone, V: Clone>(map: &mut BTreeMap<K, V>, changes: &BTreeMap<K, Option<V>>) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                map.insert(k.clone(), v.clone());
            }
            None => {
                map.remove(k);
            }
        }
    }
}

impl StateView for MemStore {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError> {
        Ok(self.inodes.get(&id).cloned())
    }

    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError> {
        Ok(self.entries.get(&(dir, name.to_vec())).copied())
    }

    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        Ok(self
            .children
            .range((dir, from)..=(dir, FileId::MAX))
            .take(limit)
            .map(|((_, c), n)| (*c, n.clone()))
            .collect())
    }

    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        Ok(self.blocks.get(&(id, index)).cloned())
    }

    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        Ok(self
            .blocks
            .range((id, from)..=(id, u64::MAX))
            .take(limit)
            .map(|((_, i), b)| (*i, b.meta()))
            .collect())
    }
}

impl Store for MemStore {
    type Snapshot = MemSnapshot;

    fn snapshot(&self) -> Result<MemSnapshot, ExecError> {
        Ok(MemSnapshot(MemStore {
            // A snapshot never commits: it gets its own (idle) fault injector.
            failures: Arc::default(),
            ..self.clone()
        }))
    }

    fn load_meta(&self) -> Result<Option<(MetaRecord, u64)>, ExecError> {
        Ok(self.meta)
    }

    fn inode_ids_from(&self, from: FileId, limit: usize) -> Result<Vec<FileId>, ExecError> {
        Ok(self
            .inodes
            .range(from..)
            .take(limit)
            .map(|(k, _)| *k)
            .collect())
    }

    fn clients_from(&self, from: u64, limit: usize) -> Result<Vec<ClientRecord>, ExecError> {
        Ok(self
            .clients
            .range(from..)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn replies_from(&self, from: u64, limit: usize) -> Result<Vec<BatchLeaves>, ExecError> {
        Ok(self
            .replies
            .range(from..)
            .take(limit)
            .map(|(sequence, leaves)| BatchLeaves {
                sequence: *sequence,
                leaves: leaves.clone(),
            })
            .collect())
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), ExecError> {
        let pending = self.failures.load(Ordering::SeqCst);
        if pending > 0 {
            self.failures.store(pending - 1, Ordering::SeqCst);
            return Err(ExecError::Storage("injected commit failure".into()));
        }
        self.meta = Some((changes.meta, changes.last_applied));
        apply(&mut self.inodes, &changes.inodes);
        apply(&mut self.entries, &changes.entries);
        apply(&mut self.children, &changes.children);
        apply(&mut self.blocks, &changes.blocks);
        apply(&mut self.clients, &changes.clients);
        apply(&mut self.replies, &changes.replies);
        Ok(())
    }
}
