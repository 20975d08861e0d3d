//! Checkpoint export and import, for state transfer (Castro–Liskov §5.3.2): a replica
//! that fell behind asks for the inodes whose Merkle leaf differs from its own, applies
//! them atomically, and keeps the result only if it reproduces the certified digest.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::checkpoint::{
    BatchLeaves, BlockImage, Checkpoint, ClientRecord, EntryImage, InodeContent, InodeImage,
    InodeRecord,
};
use palisade_wire::fs::{FileId, FileType, MAX_NAME_BYTES, MAX_PATH_BYTES, ROOT_ID};

use crate::fs::FileSystem;
use crate::overlay::Overlay;
use crate::store::{Block, ChangeSet, StateView, Store, BLOCK_SIZE};
use crate::ExecError;

/// Items read per storage call while reading or clearing one inode's content.
const CHUNK: usize = 1024;

fn bad(msg: impl Into<String>) -> ExecError {
    ExecError::BadCheckpoint(msg.into())
}

/// Reads the content (blocks or entries) of inode `id` from `view`.
fn read_content(
    view: &dyn StateView,
    id: FileId,
    rec: &InodeRecord,
) -> Result<InodeContent, ExecError> {
    match rec.file_type {
        FileType::Symlink => Ok(InodeContent::Symlink),
        FileType::Directory => {
            let mut entries = Vec::new();
            let mut from = 1;
            loop {
                let page = view.children_from(id, from, CHUNK)?;
                let next = page.last().map(|(c, _)| c.saturating_add(1));
                let full = page.len() == CHUNK;
                entries.extend(page.into_iter().map(|(id, name)| EntryImage { name, id }));
                match next {
                    Some(n) if full && n > from => from = n,
                    _ => return Ok(InodeContent::Dir(entries)),
                }
            }
        }
        FileType::Regular => {
            let mut blocks = Vec::new();
            let mut from = 0;
            loop {
                let metas = view.block_metas_from(id, from, CHUNK)?;
                for (index, _) in &metas {
                    let block = view
                        .block(id, *index)?
                        .ok_or_else(|| ExecError::Corrupt(format!("block {id}/{index} missing")))?;
                    blocks.push(BlockImage {
                        index: *index,
                        data: block.data,
                    });
                }
                match metas.last() {
                    Some((last, _)) if metas.len() == CHUNK && *last < u64::MAX => from = last + 1,
                    _ => return Ok(InodeContent::File(blocks)),
                }
            }
        }
    }
}

/// Deletes the content of inode `id` (its entries or blocks) in `ov`.
fn clear_content(ov: &mut Overlay<'_>, id: FileId) -> Result<(), ExecError> {
    loop {
        let page = ov.children_from(id, 1, CHUNK)?;
        if page.is_empty() {
            break;
        }
        for (child, name) in page {
            ov.delete_entry(id, &name, child);
        }
    }
    loop {
        let metas = ov.block_metas_from(id, 0, CHUNK)?;
        if metas.is_empty() {
            break;
        }
        for (index, _) in metas {
            ov.delete_block(id, index);
        }
    }
    Ok(())
}

/// Fills `head` (last applied, digest and meta of the state `view` shows) with the live
/// ids (`leaves`' keys) and the images of the inodes whose leaf differs from `have` (all
/// of them if `have` is `None`). Shared by the live file system and its snapshots.
pub(crate) fn export(
    view: &dyn StateView,
    leaves: &BTreeMap<FileId, [u8; 32]>,
    have: Option<&BTreeMap<FileId, [u8; 32]>>,
    mut head: Checkpoint,
) -> Result<Checkpoint, ExecError> {
    head.live_ids = leaves.keys().copied().collect();
    let wanted: Vec<FileId> = leaves
        .iter()
        .filter(|(id, leaf)| have.is_none_or(|h| h.get(*id) != Some(*leaf)))
        .map(|(id, _)| *id)
        .collect();
    head.inodes = Vec::with_capacity(wanted.len());
    for id in wanted {
        let record = view
            .inode(id)?
            .ok_or_else(|| ExecError::Corrupt(format!("inode {id} missing")))?;
        let content = read_content(view, id, &record)?;
        head.inodes.push(InodeImage {
            id,
            record,
            content,
        });
    }
    Ok(head)
}

impl<S: Store> FileSystem<S> {
    /// Exports the whole state (`have == None`) or only the inodes whose leaf differs
    /// from `have` (a receiver's [`FileSystem::leaf_hashes`]), with the list of all live
    /// ids, the meta record, the digest and `last_applied`.
    pub fn export_checkpoint(
        &mut self,
        have: Option<&BTreeMap<FileId, [u8; 32]>>,
    ) -> Result<Checkpoint, ExecError> {
        let digest = self.try_digest()?;
        export(
            &self.store,
            self.tree.leaves(),
            have,
            Checkpoint {
                last_applied: self.last_applied,
                digest: digest.0,
                meta: self.meta,
                live_ids: Vec::new(),
                inodes: Vec::new(),
            },
        )
    }

    /// Checks the shape and bounds of a checkpoint before anything is applied.
    fn validate(&self, cp: &Checkpoint) -> Result<(), ExecError> {
        let cfg = self.config;
        if cp.live_ids.len() as u64 > cfg.max_files {
            return Err(bad("more live inodes than max_files"));
        }
        if cp.live_ids.len() as u64 != cp.meta.inode_count {
            return Err(bad("inode count disagrees with live ids"));
        }
        if !cp.live_ids.windows(2).all(|w| w[0] < w[1]) {
            return Err(bad("live ids not strictly ascending"));
        }
        if cp.live_ids.binary_search(&ROOT_ID).is_err() {
            return Err(bad("root missing"));
        }
        if cp.live_ids.last().is_some_and(|l| *l >= cp.meta.next_id) {
            return Err(bad("live id beyond next id"));
        }
        if cp.meta.used_bytes > cfg.capacity_bytes {
            return Err(bad("used bytes exceed capacity"));
        }
        if !cp.inodes.windows(2).all(|w| w[0].id < w[1].id) {
            return Err(bad("inode images not strictly ascending"));
        }
        let max_blocks = cfg.max_file_size.div_ceil(BLOCK_SIZE);
        for img in &cp.inodes {
            if cp.live_ids.binary_search(&img.id).is_err() {
                return Err(bad(format!("inode {} not live", img.id)));
            }
            let rec = &img.record;
            match (&img.content, rec.file_type) {
                (InodeContent::File(blocks), FileType::Regular) => {
                    if rec.size > cfg.max_file_size {
                        return Err(bad("file too large"));
                    }
                    if !blocks.windows(2).all(|w| w[0].index < w[1].index) {
                        return Err(bad("blocks not strictly ascending"));
                    }
                    for b in blocks {
                        let end = b
                            .index
                            .saturating_mul(BLOCK_SIZE)
                            .saturating_add(b.data.len() as u64);
                        if b.index >= max_blocks
                            || b.data.len() as u64 > BLOCK_SIZE
                            || end > rec.size
                        {
                            return Err(bad("block out of bounds"));
                        }
                    }
                }
                (InodeContent::Dir(entries), FileType::Directory) => {
                    if entries.len() > cp.live_ids.len() {
                        return Err(bad("more entries than inodes"));
                    }
                    if !entries.windows(2).all(|w| w[0].id < w[1].id) {
                        return Err(bad("entries not strictly ascending"));
                    }
                    for e in entries {
                        if e.name.is_empty()
                            || e.name.len() > MAX_NAME_BYTES
                            || e.name.iter().any(|&c| c == 0 || c == b'/')
                            || e.name == b"."
                            || e.name == b".."
                            || cp.live_ids.binary_search(&e.id).is_err()
                        {
                            return Err(bad("bad directory entry"));
                        }
                    }
                }
                (InodeContent::Symlink, FileType::Symlink) => {
                    if rec.target.len() > MAX_PATH_BYTES {
                        return Err(bad("symlink target too long"));
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "inode {} content does not match its type",
                        img.id
                    )))
                }
            }
        }
        Ok(())
    }

    /// Applies a checkpoint atomically: replaces the inodes it carries, deletes every
    /// inode not in its live list, takes its meta record and `last_applied`, and commits
    /// only if the resulting digest equals the checkpoint's (else `DigestMismatch`, and
    /// nothing changed). The caller must check `cp.digest` against a certified
    /// checkpoint digest: this only proves the state matches what the sender claimed.
    pub fn import_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), ExecError> {
        self.import(cp, None)
    }

    /// [`FileSystem::import_checkpoint`] that also replaces the stored exactly-once
    /// table with `clients`, and the stored reply leaves with `replies`, in the same
    /// atomic commit (an execution replica's state transfer: both are part of its
    /// certified state). The caller validates them and checks them against the
    /// certified digest.
    pub fn import_checkpoint_with_records(
        &mut self,
        cp: &Checkpoint,
        clients: &[ClientRecord],
        replies: &[BatchLeaves],
    ) -> Result<(), ExecError> {
        self.import(cp, Some((clients, replies)))
    }

    fn import(
        &mut self,
        cp: &Checkpoint,
        records: Option<(&[ClientRecord], &[BatchLeaves])>,
    ) -> Result<(), ExecError> {
        self.validate(cp)?;
        let existing = self.all_ids()?;
        let base = ChangeSet {
            meta: cp.meta,
            last_applied: cp.last_applied,
            durable: true,
            ..ChangeSet::default()
        };
        let mut ov = Overlay::new(&self.store, base);
        let mut touched: BTreeSet<FileId> = BTreeSet::new();
        for id in &existing {
            if cp.live_ids.binary_search(id).is_err() {
                clear_content(&mut ov, *id)?;
                ov.delete_inode(*id);
                touched.insert(*id);
            }
        }
        for img in &cp.inodes {
            clear_content(&mut ov, img.id)?;
            ov.put_inode(img.id, img.record.clone());
            match &img.content {
                InodeContent::File(blocks) => {
                    for b in blocks {
                        ov.put_block(img.id, b.index, Block::new(b.data.clone()));
                    }
                }
                InodeContent::Dir(entries) => {
                    for e in entries {
                        ov.put_entry(img.id, &e.name, e.id);
                    }
                }
                InodeContent::Symlink => {}
            }
            touched.insert(img.id);
        }
        // Every live id must now exist (sent, or already held).
        for id in &cp.live_ids {
            if !touched.contains(id) && existing.binary_search(id).is_err() {
                return Err(bad(format!("live inode {id} neither sent nor held")));
            }
        }
        // Verify before committing, on a copy of the tree, reading through the overlay.
        let mut tree = self.tree.clone();
        tree.refresh(&self.store)?;
        tree.mark_dirty(touched.iter().copied());
        tree.refresh(&ov)?;
        let digest = tree.digest(&cp.meta)?;
        if digest.0 != cp.digest {
            tracing::warn!("checkpoint refused: digest mismatch");
            return Err(ExecError::DigestMismatch);
        }
        let mut changes = ov.changes;
        if let Some((clients, replies)) = records {
            // Replace the whole tables: drop stored records the new ones lack.
            for old in self.clients(usize::MAX)? {
                changes.clients.insert(old.client, None);
            }
            for r in clients {
                changes.clients.insert(r.client, Some(r.clone()));
            }
            for old in self.replies(usize::MAX)? {
                changes.replies.insert(old.sequence, None);
            }
            for b in replies {
                changes.replies.insert(b.sequence, Some(b.leaves.clone()));
            }
        }
        if let Err(e) = self.store.commit(&changes) {
            tracing::warn!(error = %e, "checkpoint commit failed");
            return Err(e);
        }
        self.tree = tree;
        self.meta = cp.meta;
        self.last_applied = cp.last_applied;
        Ok(())
    }
}
