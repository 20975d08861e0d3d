//! The state digest: a Merkle tree over the inodes, maintained incrementally
//! (Castro–Liskov §5.3.1: checkpoint digests computed incrementally from a partition
//! tree, so that state transfer can fetch only the partitions that differ).
//!
//! - Leaf of inode `id`: blake3("leaf" ‖ id ‖ canonical record ‖ content root), where the
//!   content root is, for a file, a hash over its (block index, block hash) list; for a
//!   directory, a hash over its (child id, name) list in id order; for a symlink, nothing
//!   beyond the record (which holds the target).
//! - A 16-ary tree over the 64-bit id space (16 levels of nibbles); a node hashes its
//!   present children with their nibble, absent subtrees are skipped, so the tree is
//!   canonical for a set of leaves.
//! - State digest: blake3("state" ‖ root ‖ canonical meta record). The sequence number is
//!   NOT included: the same operations split into different batches give equal digests.
//!
//! Operations only mark inodes dirty; [`DigestTree::refresh`] recomputes the dirty leaves
//! and the 16 nodes above each, so a digest costs O(changed inodes), not a rescan.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::checkpoint::MetaRecord;
use palisade_wire::fs::{FileId, FileType};

use crate::store::StateView;
use crate::ExecError;

/// Levels above the leaves: 64-bit ids, 4 bits per level.
const LEVELS: u32 = 16;
/// Entries or blocks read per storage call while hashing one inode's content.
const CHUNK: usize = 1024;

/// The digest of a whole file-system state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateDigest(pub [u8; 32]);

/// The Merkle tree and its dirty set.
#[derive(Clone, Debug, Default)]
pub struct DigestTree {
    leaves: BTreeMap<FileId, [u8; 32]>,
    /// Internal nodes: (level 1..=16, prefix = id >> 4·level) → hash.
    nodes: BTreeMap<(u32, u64), [u8; 32]>,
    dirty: BTreeSet<FileId>,
}

fn prefix(id: FileId, level: u32) -> u64 {
    id.checked_shr(4 * level).unwrap_or(0)
}

/// The leaf hash of inode `id`, or `None` if it does not exist in `view`.
pub fn leaf_hash(view: &dyn StateView, id: FileId) -> Result<Option<[u8; 32]>, ExecError> {
    let Some(rec) = view.inode(id)? else {
        return Ok(None);
    };
    let mut content = blake3::Hasher::new();
    match rec.file_type {
        FileType::Regular => {
            content.update(b"file");
            let mut from = 0u64;
            loop {
                let metas = view.block_metas_from(id, from, CHUNK)?;
                for (index, meta) in &metas {
                    content.update(&index.to_le_bytes());
                    content.update(&meta.hash);
                }
                match metas.last() {
                    Some((last, _)) if metas.len() == CHUNK && *last < u64::MAX => from = last + 1,
                    _ => break,
                }
            }
        }
        FileType::Directory => {
            content.update(b"dir");
            let mut from = 1u64;
            loop {
                let page = view.children_from(id, from, CHUNK)?;
                for (child, name) in &page {
                    content.update(&child.to_le_bytes());
                    content.update(&(name.len() as u64).to_le_bytes());
                    content.update(name);
                }
                match page.last() {
                    Some((last, _)) if page.len() == CHUNK && *last < u64::MAX => from = last + 1,
                    _ => break,
                }
            }
        }
        FileType::Symlink => {
            content.update(b"symlink");
        }
    }
    let record = palisade_wire::encode(&rec)?;
    let mut leaf = blake3::Hasher::new();
    leaf.update(b"leaf");
    leaf.update(&id.to_le_bytes());
    leaf.update(&(record.len() as u64).to_le_bytes());
    leaf.update(&record);
    leaf.update(content.finalize().as_bytes());
    Ok(Some(*leaf.finalize().as_bytes()))
}

impl DigestTree {
    pub fn mark_dirty(&mut self, ids: impl IntoIterator<Item = FileId>) {
        self.dirty.extend(ids);
    }

    /// The current leaves (valid after [`DigestTree::refresh`]).
    pub fn leaves(&self) -> &BTreeMap<FileId, [u8; 32]> {
        &self.leaves
    }

    /// Recomputes the dirty leaves from `view`, then the nodes above them.
    pub fn refresh(&mut self, view: &dyn StateView) -> Result<(), ExecError> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut touched: BTreeSet<u64> = BTreeSet::new();
        for id in &dirty {
            match leaf_hash(view, *id) {
                Ok(Some(h)) => {
                    self.leaves.insert(*id, h);
                }
                Ok(None) => {
                    self.leaves.remove(id);
                }
                Err(e) => {
                    // Keep the remaining work for the next attempt.
                    self.dirty = dirty;
                    return Err(e);
                }
            }
            touched.insert(prefix(*id, 1));
        }
        for level in 1..=LEVELS {
            let mut above = BTreeSet::new();
            for p in touched {
                let lo = p << 4;
                let hi = lo | 0xf;
                let mut h = blake3::Hasher::new();
                h.update(b"node");
                h.update(&level.to_le_bytes());
                let mut any = false;
                if level == 1 {
                    for (k, v) in self.leaves.range(lo..=hi) {
                        h.update(&[(k & 0xf) as u8]);
                        h.update(v);
                        any = true;
                    }
                } else {
                    for ((_, k), v) in self.nodes.range((level - 1, lo)..=(level - 1, hi)) {
                        h.update(&[(k & 0xf) as u8]);
                        h.update(v);
                        any = true;
                    }
                }
                if any {
                    self.nodes.insert((level, p), *h.finalize().as_bytes());
                } else {
                    self.nodes.remove(&(level, p));
                }
                above.insert(p >> 4);
            }
            touched = above;
        }
        Ok(())
    }

    /// The digest of the state whose meta record is `meta` (after a refresh).
    pub fn digest(&self, meta: &MetaRecord) -> Result<StateDigest, ExecError> {
        let mut h = blake3::Hasher::new();
        h.update(b"state");
        match self.nodes.get(&(LEVELS, 0)) {
            Some(root) => h.update(root),
            None => h.update(b"empty"),
        };
        h.update(&palisade_wire::encode(meta)?);
        Ok(StateDigest(*h.finalize().as_bytes()))
    }
}
