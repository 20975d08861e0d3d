//! [`Pending`]: logged batches that the B-tree does not hold yet.
//!
//! A batch that goes through the write-ahead log is durable once its record is synced
//! (`wal.rs`); writing it into the B-tree is bookkeeping that only bounds the log's
//! replay. Done once per batch it was the largest single cost of a small WRITE: a redb
//! commit of one 4 KiB write rewrites the same dozen pages (the meta record, the file's
//! inode, its block, the client's exactly-once record, the reply leaves, and the
//! B-tree paths above them), 19% of all CPU of the `separate` cluster, three replicas'
//! worth, under one-at-a-time 4 KiB writes (`perf record`, 2026-11-28). So the store
//! keeps the change sets of consecutive logged batches merged here — a later batch's
//! value for a key replaces an earlier one's, as writing them in order would — and
//! writes them into the B-tree as one commit once [`Pending::MAX_BATCHES`] batches or
//! [`Pending::MAX_BYTES`] of blocks have gathered (or whenever something needs the
//! B-tree itself: a snapshot, a durable commit). Reads look here first.
//!
//! Crash safety is the log's: every batch here has a synced record, and opening replays
//! the chain of records past the B-tree's last applied sequence, however many.

use std::collections::BTreeMap;
use std::ops::Bound;

use palisade_wire::checkpoint::{ClientRecord, InodeRecord};
use palisade_wire::fs::FileId;

use crate::store::{Block, BlockMeta, ChangeSet};
use crate::ExecError;

/// Changes of logged batches, merged in order, not yet in the B-tree.
#[derive(Default)]
pub(crate) struct Pending {
    changes: Option<ChangeSet>,
    batches: usize,
    /// Bytes of block data held (the bulk of what a change set holds).
    bytes: usize,
}

impl Pending {
    /// Most batches held before they are written into the B-tree. Each costs a log
    /// record at replay; a replay of this many small records is a few milliseconds.
    pub(crate) const MAX_BATCHES: usize = 64;
    /// Most bytes of block data held (per replica; a 4 KiB write holds its whole 64 KiB
    /// block, so this is 64 writes to distinct blocks).
    pub(crate) const MAX_BYTES: usize = 4 << 20;

    /// Adds the changes of the batch after the last one held.
    pub(crate) fn push(&mut self, later: ChangeSet) {
        self.batches += 1;
        let Some(held) = &mut self.changes else {
            self.bytes = block_bytes(later.blocks.values());
            self.changes = Some(later);
            return;
        };
        for (key, block) in later.blocks {
            self.bytes += block.as_ref().map_or(0, |b| b.data.len());
            if let Some(Some(old)) = held.blocks.insert(key, block) {
                self.bytes -= old.data.len();
            }
        }
        held.meta = later.meta;
        held.last_applied = later.last_applied;
        held.durable |= later.durable;
        held.inodes.extend(later.inodes);
        held.entries.extend(later.entries);
        held.children.extend(later.children);
        held.clients.extend(later.clients);
        held.replies.extend(later.replies);
    }

    /// Whether the held batches should now be written into the B-tree.
    pub(crate) fn is_full(&self) -> bool {
        self.batches >= Self::MAX_BATCHES || self.bytes >= Self::MAX_BYTES
    }

    /// How many batches are held.
    pub(crate) fn batches(&self) -> usize {
        self.batches
    }

    /// Takes everything held, as one change set to write.
    pub(crate) fn take(&mut self) -> Option<ChangeSet> {
        self.batches = 0;
        self.bytes = 0;
        self.changes.take()
    }

    /// `Some(value)` if a held batch set `id` (`Some(None)`: removed it); `None`: ask
    /// the B-tree. The other point reads answer the same way.
    pub(crate) fn inode(&self, id: FileId) -> Option<Option<InodeRecord>> {
        self.changes.as_ref()?.inodes.get(&id).cloned()
    }

    pub(crate) fn entry(&self, dir: FileId, name: &[u8]) -> Option<Option<FileId>> {
        self.changes
            .as_ref()?
            .entries
            .get(&(dir, name.to_vec()))
            .copied()
    }

    pub(crate) fn block(&self, id: FileId, index: u64) -> Option<Option<Block>> {
        self.changes.as_ref()?.blocks.get(&(id, index)).cloned()
    }

    pub(crate) fn client(&self, client: u64) -> Option<Option<ClientRecord>> {
        self.changes.as_ref()?.clients.get(&client).cloned()
    }

    /// The first `limit` children of `dir` from `from`, of the B-tree's (`stored`, asked
    /// for as many as it may take) overlaid with the held changes.
    pub(crate) fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
        stored: impl FnOnce(usize) -> Result<Vec<(FileId, Vec<u8>)>, ExecError>,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        let Some(held) = &self.changes else {
            return stored(limit);
        };
        let changed = held.children.range((dir, from)..=(dir, FileId::MAX));
        overlay(
            changed.map(|((_, child), name)| (*child, name.clone())),
            limit,
            stored,
        )
    }

    /// The hashes and lengths of `id`'s blocks from `from`, as [`Pending::children_from`].
    pub(crate) fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
        stored: impl FnOnce(usize) -> Result<Vec<(u64, BlockMeta)>, ExecError>,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        let Some(held) = &self.changes else {
            return stored(limit);
        };
        let changed = held
            .blocks
            .range((Bound::Included((id, from)), Bound::Included((id, u64::MAX))));
        overlay(
            changed.map(|((_, index), block)| (*index, block.as_ref().map(Block::meta))),
            limit,
            stored,
        )
    }
}

fn block_bytes<'a>(blocks: impl Iterator<Item = &'a Option<Block>>) -> usize {
    blocks.map(|b| b.as_ref().map_or(0, |b| b.data.len())).sum()
}

/// The first `limit` entries, in key order, of the stored range with `changed` (the
/// held changes in the same range; `None` removes) laid over it.
///
/// Why asking the store for `limit + changed` is enough: an entry of the result that
/// comes from the store is preceded there only by entries that are in the result too or
/// that a held change replaced or removed, so its rank in the store is below that sum.
fn overlay<K: Ord + Copy, V>(
    changed: impl Iterator<Item = (K, Option<V>)>,
    limit: usize,
    stored: impl FnOnce(usize) -> Result<Vec<(K, V)>, ExecError>,
) -> Result<Vec<(K, V)>, ExecError> {
    let changed: Vec<(K, Option<V>)> = changed.collect();
    let mut merged: BTreeMap<K, V> = stored(limit.saturating_add(changed.len()))?
        .into_iter()
        .collect();
    for (key, value) in changed {
        match value {
            Some(v) => merged.insert(key, v),
            None => merged.remove(&key),
        };
    }
    Ok(merged.into_iter().take(limit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_children() -> Vec<(FileId, Vec<u8>)> {
        (1..=6).map(|i| (i * 10, vec![b'a' + i as u8])).collect()
    }

    fn from_store(
        all: Vec<(FileId, Vec<u8>)>,
        from: FileId,
    ) -> impl FnOnce(usize) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        move |n| {
            Ok(all
                .into_iter()
                .filter(|(k, _)| *k >= from)
                .take(n)
                .collect())
        }
    }

    #[test]
    fn a_page_of_children_is_the_store_with_held_changes_laid_over() {
        let mut pending = Pending::default();
        let mut a = ChangeSet::default();
        // Remove 10 and 20, add 15, rename 30; in another directory, add 11.
        a.children.insert((7, 10), None);
        a.children.insert((7, 20), None);
        a.children.insert((7, 15), Some(b"new".to_vec()));
        a.children.insert((8, 11), Some(b"other".to_vec()));
        pending.push(a);
        let mut b = ChangeSet::default();
        b.children.insert((7, 30), Some(b"renamed".to_vec()));
        b.children.insert((7, 15), None);
        b.children.insert((7, 16), Some(b"later".to_vec()));
        pending.push(b);
        let page = pending
            .children_from(7, 0, 3, from_store(stored_children(), 0))
            .unwrap();
        assert_eq!(
            page,
            vec![
                (16, b"later".to_vec()),
                (30, b"renamed".to_vec()),
                (40, vec![b'a' + 4]),
            ]
        );
        let page = pending
            .children_from(7, 41, 10, from_store(stored_children(), 41))
            .unwrap();
        assert_eq!(page, vec![(50, vec![b'a' + 5]), (60, vec![b'a' + 6])]);
    }

    #[test]
    fn later_batches_replace_earlier_values_and_the_byte_count_follows() {
        let mut pending = Pending::default();
        for (sequence, len) in [(1u64, 100usize), (2, 300)] {
            let mut c = ChangeSet {
                last_applied: sequence,
                ..ChangeSet::default()
            };
            c.blocks
                .insert((5, 0), Some(Block::new(vec![sequence as u8; len])));
            pending.push(c);
        }
        assert_eq!(pending.batches(), 2);
        assert_eq!(pending.bytes, 300);
        assert_eq!(pending.block(5, 0).unwrap().unwrap().data, vec![2u8; 300]);
        assert_eq!(pending.block(5, 1), None);
        let mut c = ChangeSet {
            last_applied: 3,
            ..ChangeSet::default()
        };
        c.blocks.insert((5, 0), None);
        pending.push(c);
        assert_eq!(pending.bytes, 0);
        assert_eq!(pending.block(5, 0), Some(None));
        let metas = pending
            .block_metas_from(5, 0, 4, |_| {
                Ok(vec![
                    (0, Block::new(vec![1]).meta()),
                    (1, Block::new(vec![2]).meta()),
                ])
            })
            .unwrap();
        assert_eq!(metas, vec![(1, Block::new(vec![2]).meta())]);
        let all = pending.take().unwrap();
        assert_eq!(all.last_applied, 3);
        assert_eq!(pending.batches(), 0);
        assert!(pending.take().is_none());
    }

    #[test]
    fn it_is_full_at_the_batch_or_byte_bound() {
        let mut pending = Pending::default();
        for _ in 0..Pending::MAX_BATCHES - 1 {
            pending.push(ChangeSet::default());
        }
        assert!(!pending.is_full());
        pending.push(ChangeSet::default());
        assert!(pending.is_full());
        pending.take();
        let mut c = ChangeSet::default();
        for i in 0..(Pending::MAX_BYTES / (64 << 10)) as u64 {
            c.blocks.insert((1, i), Some(Block::new(vec![0; 64 << 10])));
        }
        pending.push(c);
        assert!(pending.is_full());
    }
}
