//! A batch's view of the state: the committed store plus the batch's own changes.
//!
//! Operations of a batch read through the overlay (so each sees the effects of the ones
//! before it) and write only into its [`ChangeSet`]. Committing the change set is the
//! batch's single atomic step; dropping it undoes the batch, which is how a storage
//! failure leaves nothing half-applied.

use palisade_wire::checkpoint::InodeRecord;
use palisade_wire::fs::FileId;

use crate::store::{Block, BlockMeta, ChangeSet, StateView};
use crate::ExecError;

/// The committed state seen through one batch's pending changes.
pub struct Overlay<'a> {
    base: &'a dyn StateView,
    pub changes: ChangeSet,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a dyn StateView, changes: ChangeSet) -> Overlay<'a> {
        Overlay { base, changes }
    }

    pub fn put_inode(&mut self, id: FileId, record: InodeRecord) {
        self.changes.inodes.insert(id, Some(record));
    }

    pub fn delete_inode(&mut self, id: FileId) {
        self.changes.inodes.insert(id, None);
    }

    /// Adds the entry `name → child` to `dir`, in both indexes.
    pub fn put_entry(&mut self, dir: FileId, name: &[u8], child: FileId) {
        self.changes
            .entries
            .insert((dir, name.to_vec()), Some(child));
        self.changes
            .children
            .insert((dir, child), Some(name.to_vec()));
    }

    /// Removes the entry `name → child` from `dir`, in both indexes.
    pub fn delete_entry(&mut self, dir: FileId, name: &[u8], child: FileId) {
        self.changes.entries.insert((dir, name.to_vec()), None);
        self.changes.children.insert((dir, child), None);
    }

    pub fn put_block(&mut self, id: FileId, index: u64, block: Block) {
        self.changes.blocks.insert((id, index), Some(block));
    }

    pub fn delete_block(&mut self, id: FileId, index: u64) {
        self.changes.blocks.insert((id, index), None);
    }
}

/// Merges a store's ordered range with the pending changes in the same range: pending
/// values win, pending deletions hide stored keys. `fetch(from, limit)` reads the store;
/// `pending` holds the pending changes with key ≥ `from`, ascending. Reads the store in
/// chunks, so a range mostly deleted by the batch is still answered exactly.
fn merge_from<V: Clone>(
    from: u64,
    limit: usize,
    pending: &[(u64, Option<V>)],
    mut fetch: impl FnMut(u64, usize) -> Result<Vec<(u64, V)>, ExecError>,
) -> Result<Vec<(u64, V)>, ExecError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let chunk_limit = limit.max(16);
    let mut cursor = from;
    let mut p = 0;
    loop {
        let chunk = fetch(cursor, chunk_limit)?;
        let exhausted = chunk.len() < chunk_limit;
        let upper = match chunk.last() {
            Some((k, _)) if !exhausted => *k,
            _ => u64::MAX,
        };
        let mut s = 0;
        loop {
            let next_pending = pending.get(p).filter(|(k, _)| *k <= upper);
            let next_stored = chunk.get(s);
            match (next_stored, next_pending) {
                (None, None) => break,
                (Some((sk, sv)), pk) if pk.is_none_or(|(pk, _)| sk < pk) => {
                    out.push((*sk, sv.clone()));
                    s += 1;
                }
                (st, Some((pk, pv))) => {
                    if st.is_some_and(|(sk, _)| sk == pk) {
                        s += 1;
                    }
                    if let Some(v) = pv {
                        out.push((*pk, v.clone()));
                    }
                    p += 1;
                }
                (Some(_), None) => break, // unreachable: covered by the first arm
            }
            if out.len() >= limit {
                return Ok(out);
            }
        }
        if exhausted || upper == u64::MAX {
            return Ok(out);
        }
        cursor = upper + 1;
    }
}

impl StateView for Overlay<'_> {
    fn inode(&self, id: FileId) -> Result<Option<InodeRecord>, ExecError> {
        match self.changes.inodes.get(&id) {
            Some(v) => Ok(v.clone()),
            None => self.base.inode(id),
        }
    }

    fn entry(&self, dir: FileId, name: &[u8]) -> Result<Option<FileId>, ExecError> {
        match self.changes.entries.get(&(dir, name.to_vec())) {
            Some(v) => Ok(*v),
            None => self.base.entry(dir, name),
        }
    }

    fn children_from(
        &self,
        dir: FileId,
        from: FileId,
        limit: usize,
    ) -> Result<Vec<(FileId, Vec<u8>)>, ExecError> {
        let pending: Vec<(u64, Option<Vec<u8>>)> = self
            .changes
            .children
            .range((dir, from)..=(dir, FileId::MAX))
            .map(|((_, c), n)| (*c, n.clone()))
            .collect();
        merge_from(from, limit, &pending, |f, l| {
            self.base.children_from(dir, f, l)
        })
    }

    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
        match self.changes.blocks.get(&(id, index)) {
            Some(v) => Ok(v.clone()),
            None => self.base.block(id, index),
        }
    }

    fn block_metas_from(
        &self,
        id: FileId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, BlockMeta)>, ExecError> {
        let pending: Vec<(u64, Option<BlockMeta>)> = self
            .changes
            .blocks
            .range((id, from)..=(id, u64::MAX))
            .map(|((_, i), b)| (*i, b.as_ref().map(Block::meta)))
            .collect();
        merge_from(from, limit, &pending, |f, l| {
            self.base.block_metas_from(id, f, l)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pending_of(map: &BTreeMap<u64, Option<u32>>) -> Vec<(u64, Option<u32>)> {
        map.iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn fetch_from(
        stored: &BTreeMap<u64, u32>,
    ) -> impl FnMut(u64, usize) -> Result<Vec<(u64, u32)>, ExecError> + '_ {
        move |f, l| Ok(stored.range(f..).take(l).map(|(k, v)| (*k, *v)).collect())
    }

    fn reference(
        stored: &BTreeMap<u64, u32>,
        pending: &BTreeMap<u64, Option<u32>>,
        from: u64,
        limit: usize,
    ) -> Vec<(u64, u32)> {
        let mut all = stored.clone();
        for (k, v) in pending {
            match v {
                Some(v) => {
                    all.insert(*k, *v);
                }
                None => {
                    all.remove(k);
                }
            }
        }
        all.range(from..)
            .take(limit)
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    #[test]
    fn merge_matches_a_materialised_map() {
        // Deterministic pseudo-random cases (xorshift), including long deleted runs.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300 {
            let mut stored = BTreeMap::new();
            let mut pending = BTreeMap::new();
            for _ in 0..(next() % 200) {
                stored.insert(next() % 300, (next() % 1000) as u32);
            }
            for _ in 0..(next() % 200) {
                let k = next() % 300;
                let v = if next() % 3 == 0 {
                    Some((next() % 1000) as u32)
                } else {
                    None
                };
                pending.insert(k, v);
            }
            let from = next() % 310;
            let limit = (next() % 40) as usize;
            let p: Vec<_> = pending_of(&pending)
                .into_iter()
                .filter(|(k, _)| *k >= from)
                .collect();
            let got = merge_from(from, limit, &p, fetch_from(&stored)).unwrap();
            assert_eq!(got, reference(&stored, &pending, from, limit));
        }
    }
}
