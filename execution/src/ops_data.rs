//! READ, WRITE and truncation (RFC 1813 §3.3.6, §3.3.7, §3.3.2 size).
//!
//! File data lives in fixed-size blocks keyed (file id, block index). A hole is an absent
//! block, or the part of a block past its stored length: both read as zeros. Invariant:
//! no stored byte lies at or past the file size, so extending a file never exposes old
//! data. A write reads and rewrites only the blocks it covers, so its cost is
//! O(write size) however large the file is.

use palisade_wire::fs::{FileId, FileType, FsError, FsReply};

use crate::exec::{attr_of, Exec, OpResult, IO_MAX};
use crate::store::{Block, StateView, BLOCK_SIZE};

/// Block index and offset in the block of byte `pos`.
fn split(pos: u64) -> (u64, usize) {
    // pos % BLOCK_SIZE < 2^16, so the cast is exact.
    (pos / BLOCK_SIZE, (pos % BLOCK_SIZE) as usize)
}

/// How many block records one storage read returns when deleting a file's blocks.
const SCAN_CHUNK: usize = 1024;

impl Exec<'_> {
    /// The regular file `id`: directories → `IsDir`, symlinks → `Inval`.
    fn regular(&self, id: FileId) -> OpResult<palisade_wire::checkpoint::InodeRecord> {
        let rec = self.inode(id)?;
        match rec.file_type {
            FileType::Regular => Ok(rec),
            FileType::Directory => Err(FsError::IsDir.into()),
            FileType::Symlink => Err(FsError::Inval.into()),
        }
    }

    /// READ (§3.3.6). No atime update (like a `noatime` mount): reads stay free of state
    /// changes, so a read-only batch needs no durable commit.
    pub fn read(&mut self, id: FileId, offset: u64, count: u32) -> OpResult<FsReply> {
        let rec = self.regular(id)?;
        let count = u64::from(count.min(IO_MAX));
        let end = offset.saturating_add(count).min(rec.size);
        let mut data = Vec::new();
        if offset < end {
            // end - offset ≤ IO_MAX, so this fits in memory and in usize.
            data.resize((end - offset) as usize, 0);
            let mut pos = offset;
            while pos < end {
                let (index, in_block) = split(pos);
                let take = ((BLOCK_SIZE - in_block as u64).min(end - pos)) as usize;
                let dst_at = (pos - offset) as usize;
                if let Some(block) = self.ov.block(id, index)? {
                    let have = block.data.len().saturating_sub(in_block).min(take);
                    if have > 0 {
                        data[dst_at..dst_at + have]
                            .copy_from_slice(&block.data[in_block..in_block + have]);
                    }
                }
                pos += take as u64;
            }
        }
        let eof = offset.saturating_add(count) >= rec.size;
        Ok(FsReply::Read {
            data,
            eof,
            attr: attr_of(id, &rec),
        })
    }

    /// WRITE (§3.3.7), always FILE_SYNC: the batch commit makes it stable. Writes at most
    /// `IO_MAX` bytes (FSINFO wtmax) and answers how many.
    pub fn write(&mut self, id: FileId, offset: u64, data: &[u8]) -> OpResult<FsReply> {
        self.regular(id)?;
        let data = &data[..data.len().min(IO_MAX as usize)];
        let end = offset.checked_add(data.len() as u64).ok_or(FsError::FBig)?;
        if end > self.config.max_file_size {
            return Err(FsError::FBig.into());
        }
        // Plan: each covered block's new length, and the storage it adds.
        let mut growth = 0u64;
        let mut plan = Vec::new();
        let mut pos = offset;
        while pos < end {
            let (index, in_block) = split(pos);
            let take = (BLOCK_SIZE - in_block as u64).min(end - pos) as usize;
            // A write that covers a whole block replaces all of it: only the old
            // length matters (for the space accounting), so its bytes are not read.
            let (old_len, old) = if take as u64 == BLOCK_SIZE {
                (self.block_len(id, index)?, None)
            } else {
                let old = self
                    .ov
                    .block(id, index)?
                    .map(|b| b.data)
                    .unwrap_or_default();
                (old.len(), Some(old))
            };
            let new_len = old_len.max(in_block + take);
            growth += (new_len - old_len) as u64;
            plan.push((index, in_block, take, pos, old));
            pos += take as u64;
        }
        let meta = self.ov.changes.meta;
        if meta.used_bytes.saturating_add(growth) > self.config.capacity_bytes {
            return Err(FsError::NoSpc.into());
        }
        for (index, in_block, take, pos, old) in plan {
            let src_at = (pos - offset) as usize;
            let src = &data[src_at..src_at + take];
            // Built by appending, so no byte is zero-filled only to be overwritten.
            let bytes = match old {
                None => src.to_vec(),
                Some(mut bytes) if bytes.len() <= in_block => {
                    // The gap between the old end and the write is a hole: zeros.
                    bytes.reserve_exact(in_block + take - bytes.len());
                    bytes.resize(in_block, 0);
                    bytes.extend_from_slice(src);
                    bytes
                }
                Some(mut bytes) => {
                    let overlap = (bytes.len() - in_block).min(take);
                    bytes[in_block..in_block + overlap].copy_from_slice(&src[..overlap]);
                    bytes.extend_from_slice(&src[overlap..]);
                    bytes
                }
            };
            self.ov.put_block(id, index, Block::new(bytes));
        }
        self.ov.changes.meta.used_bytes = meta.used_bytes.saturating_add(growth);
        let now = self.now;
        if !data.is_empty() {
            self.update(id, |r| {
                r.size = r.size.max(end);
                r.used = r.used.saturating_add(growth);
                r.mtime = now;
                r.ctime = now;
            })?;
        }
        let rec = self.linked(id)?;
        Ok(FsReply::Write {
            count: data.len() as u32,
            attr: attr_of(id, &rec),
        })
    }

    /// The stored length of block `index` of `id` (0 for a hole), without reading its data.
    fn block_len(&self, id: FileId, index: u64) -> OpResult<usize> {
        let metas = self.ov.block_metas_from(id, index, 1)?;
        Ok(match metas.first() {
            Some((i, meta)) if *i == index => meta.len as usize,
            _ => 0,
        })
    }

    /// Sets the size of regular file `id`: shrinking deletes the blocks past the end and
    /// trims the last one; growing only moves the size (the gap is a hole, read as zeros).
    pub fn resize(&mut self, id: FileId, size: u64) -> OpResult<()> {
        let rec = self.linked(id)?;
        let mut freed = 0u64;
        if size < rec.size {
            let (last, keep) = split(size);
            let first_gone = if keep == 0 { last } else { last + 1 };
            freed += self.delete_blocks_from(id, first_gone)?;
            if keep > 0 {
                if let Some(block) = self.ov.block(id, last)? {
                    if block.data.len() > keep {
                        freed += (block.data.len() - keep) as u64;
                        let mut data = block.data;
                        data.truncate(keep);
                        self.ov.put_block(id, last, Block::new(data));
                    }
                }
            }
        }
        self.ov.changes.meta.used_bytes = self.ov.changes.meta.used_bytes.saturating_sub(freed);
        self.update(id, |r| {
            r.size = size;
            r.used = r.used.saturating_sub(freed);
        })
    }

    /// Deletes every block of `id` with index ≥ `from`; returns the bytes freed.
    pub fn delete_blocks_from(&mut self, id: FileId, from: u64) -> OpResult<u64> {
        let mut freed = 0u64;
        let mut cursor = from;
        loop {
            let metas = self.ov.block_metas_from(id, cursor, SCAN_CHUNK)?;
            let Some(&(last, _)) = metas.last() else {
                break;
            };
            for (index, meta) in &metas {
                freed += u64::from(meta.len);
                self.ov.delete_block(id, *index);
            }
            if metas.len() < SCAN_CHUNK || last == u64::MAX {
                break;
            }
            cursor = last + 1;
        }
        Ok(freed)
    }
}
