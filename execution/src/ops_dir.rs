//! Directory operations: LOOKUP, CREATE, MKDIR, SYMLINK, REMOVE, RMDIR, RENAME, READDIR
//! (RFC 1813 §3.3.3, §3.3.8–14, §3.3.16–17).
//!
//! A directory's entries are kept in two ordered indexes: (dir, name) → child for LOOKUP
//! and (dir, child id) → name for READDIR, whose cookies are file ids. A page therefore
//! starts with a range read right after the cookie, never a scan of the directory, and an
//! id that vanished between pages still tells where to continue.

use palisade_wire::checkpoint::InodeRecord;
use palisade_wire::fs::{
    CreateHow, DirEntry, FileId, FileType, FsError, FsReply, SetAttr, MAX_PATH_BYTES, ROOT_ID,
};

use crate::exec::{attr_of, new_record, Exec, OpResult, READDIR_MAX_ENTRIES};
use crate::names::{check_existing, check_new, is_dot};
use crate::ops_attr::apply_plain;
use crate::store::StateView;
use crate::ExecError;

const DEFAULT_FILE_MODE: u32 = 0o644;
const DEFAULT_DIR_MODE: u32 = 0o755;
const DEFAULT_SYMLINK_MODE: u32 = 0o777;

impl Exec<'_> {
    /// LOOKUP (§3.3.3). "." is the directory itself, ".." its parent (the root's is the root).
    pub fn lookup(&mut self, dir: FileId, name: &[u8]) -> OpResult<FsReply> {
        let drec = self.dir(dir)?;
        check_existing(name)?;
        let id = match name {
            b"." => dir,
            b".." => drec.parent,
            _ => self.ov.entry(dir, name)?.ok_or(FsError::NoEnt)?,
        };
        let rec = self.linked(id)?;
        Ok(FsReply::Lookup {
            id,
            attr: attr_of(id, &rec),
        })
    }

    /// Checks that a new inode may be created as `name` in `dir`.
    fn check_create(&self, dir: FileId, name: &[u8]) -> OpResult<Option<FileId>> {
        self.dir(dir)?;
        check_new(name)?;
        Ok(self.ov.entry(dir, name)?)
    }

    /// Allocates the next id (never reused) and links `rec` as `name` in `dir`.
    fn link_new(&mut self, dir: FileId, name: &[u8], rec: InodeRecord) -> OpResult<FileId> {
        let meta = self.ov.changes.meta;
        if meta.inode_count >= self.config.max_files {
            return Err(FsError::NoSpc.into());
        }
        let id = meta.next_id;
        let next = id
            .checked_add(1)
            .ok_or_else(|| ExecError::Corrupt("file ids exhausted".into()))?;
        let is_dir = rec.file_type == FileType::Directory;
        self.ov.changes.meta.next_id = next;
        self.ov.changes.meta.inode_count += 1;
        self.ov.put_inode(id, rec);
        self.ov.put_entry(dir, name, id);
        self.touch_dir(dir)?;
        self.update(dir, |r| {
            r.size = r.size.saturating_add(1);
            if is_dir {
                r.subdirs = r.subdirs.saturating_add(1);
            }
        })?;
        Ok(id)
    }

    /// Unlinks `name` (→ `child`, record `rec`) from `dir` and deletes the inode and its
    /// data. The caller has checked that a directory is empty.
    fn unlink(
        &mut self,
        dir: FileId,
        name: &[u8],
        child: FileId,
        rec: &InodeRecord,
    ) -> OpResult<()> {
        self.ov.delete_entry(dir, name, child);
        if rec.file_type == FileType::Regular {
            let freed = self.delete_blocks_from(child, 0)?;
            self.ov.changes.meta.used_bytes = self.ov.changes.meta.used_bytes.saturating_sub(freed);
        }
        self.ov.delete_inode(child);
        self.ov.changes.meta.inode_count = self.ov.changes.meta.inode_count.saturating_sub(1);
        let is_dir = rec.file_type == FileType::Directory;
        self.touch_dir(dir)?;
        self.update(dir, |r| {
            r.size = r.size.saturating_sub(1);
            if is_dir {
                r.subdirs = r.subdirs.saturating_sub(1);
            }
        })
    }

    fn created(&self, id: FileId) -> OpResult<FsReply> {
        let rec = self.linked(id)?;
        Ok(FsReply::Created {
            id,
            attr: attr_of(id, &rec),
        })
    }

    /// A new regular file's record with `attr` applied (size included: a new file of size
    /// n is a hole of n bytes).
    fn new_file(&self, dir: FileId, attr: &SetAttr) -> OpResult<InodeRecord> {
        if attr.size.is_some_and(|s| s > self.config.max_file_size) {
            return Err(FsError::FBig.into());
        }
        let mut rec = new_record(FileType::Regular, DEFAULT_FILE_MODE, dir, self.now);
        apply_plain(&mut rec, attr, self.now);
        rec.size = attr.size.unwrap_or(0);
        Ok(rec)
    }

    /// CREATE (§3.3.8). UNCHECKED on an existing regular file applies the attributes
    /// (size 0 truncates); on an existing directory or symlink it answers `Exist` (as
    /// Linux nfsd does). GUARDED fails with `Exist` on any existing name. EXCLUSIVE stores
    /// the verifier; a retransmission with the same verifier finds the file it created and
    /// succeeds with the same id, anything else existing → `Exist`.
    pub fn create(&mut self, dir: FileId, name: &[u8], how: &CreateHow) -> OpResult<FsReply> {
        let existing = self.check_create(dir, name)?;
        match (how, existing) {
            (CreateHow::Unchecked(attr), Some(id)) => {
                let rec = self.linked(id)?;
                if rec.file_type != FileType::Regular {
                    return Err(FsError::Exist.into());
                }
                self.apply_setattr(id, rec, attr)?;
                self.created(id)
            }
            (CreateHow::Guarded(_), Some(_)) => Err(FsError::Exist.into()),
            (CreateHow::Exclusive(verf), Some(id)) => {
                let rec = self.linked(id)?;
                if rec.file_type == FileType::Regular && rec.verifier == Some(*verf) {
                    self.created(id)
                } else {
                    Err(FsError::Exist.into())
                }
            }
            (CreateHow::Unchecked(attr) | CreateHow::Guarded(attr), None) => {
                let rec = self.new_file(dir, attr)?;
                let id = self.link_new(dir, name, rec)?;
                self.created(id)
            }
            (CreateHow::Exclusive(verf), None) => {
                let mut rec = new_record(FileType::Regular, DEFAULT_FILE_MODE, dir, self.now);
                rec.verifier = Some(*verf);
                let id = self.link_new(dir, name, rec)?;
                self.created(id)
            }
        }
    }

    /// MKDIR (§3.3.9).
    pub fn mkdir(&mut self, dir: FileId, name: &[u8], attr: &SetAttr) -> OpResult<FsReply> {
        if self.check_create(dir, name)?.is_some() {
            return Err(FsError::Exist.into());
        }
        let mut rec = new_record(FileType::Directory, DEFAULT_DIR_MODE, dir, self.now);
        apply_plain(&mut rec, attr, self.now);
        let id = self.link_new(dir, name, rec)?;
        self.created(id)
    }

    /// SYMLINK (§3.3.10). The target is stored verbatim; over `MAX_PATH_BYTES` →
    /// `NameTooLong`; empty or containing NUL → `Inval` (no POSIX path holds either).
    pub fn symlink(
        &mut self,
        dir: FileId,
        name: &[u8],
        target: &[u8],
        attr: &SetAttr,
    ) -> OpResult<FsReply> {
        let existing = self.check_create(dir, name)?;
        if target.len() > MAX_PATH_BYTES {
            return Err(FsError::NameTooLong.into());
        }
        if target.is_empty() || target.contains(&0) {
            return Err(FsError::Inval.into());
        }
        if existing.is_some() {
            return Err(FsError::Exist.into());
        }
        let mut rec = new_record(FileType::Symlink, DEFAULT_SYMLINK_MODE, dir, self.now);
        apply_plain(&mut rec, attr, self.now);
        rec.target = target.to_vec();
        rec.size = target.len() as u64;
        let id = self.link_new(dir, name, rec)?;
        self.created(id)
    }

    /// REMOVE (§3.3.12): non-directories only.
    pub fn remove(&mut self, dir: FileId, name: &[u8]) -> OpResult<FsReply> {
        self.dir(dir)?;
        if is_dot(name) {
            return Err(FsError::Inval.into());
        }
        check_existing(name)?;
        let child = self.ov.entry(dir, name)?.ok_or(FsError::NoEnt)?;
        let rec = self.linked(child)?;
        if rec.file_type == FileType::Directory {
            return Err(FsError::IsDir.into());
        }
        self.unlink(dir, name, child, &rec)?;
        Ok(FsReply::Done)
    }

    /// RMDIR (§3.3.13): empty directories only. "." → `Inval`, ".." → `NotEmpty` (it is
    /// never empty: it holds `dir`).
    pub fn rmdir(&mut self, dir: FileId, name: &[u8]) -> OpResult<FsReply> {
        self.dir(dir)?;
        match name {
            b"." => return Err(FsError::Inval.into()),
            b".." => return Err(FsError::NotEmpty.into()),
            _ => {}
        }
        check_existing(name)?;
        let child = self.ov.entry(dir, name)?.ok_or(FsError::NoEnt)?;
        let rec = self.linked(child)?;
        if rec.file_type != FileType::Directory {
            return Err(FsError::NotDir.into());
        }
        if rec.size > 0 {
            return Err(FsError::NotEmpty.into());
        }
        self.unlink(dir, name, child, &rec)?;
        Ok(FsReply::Done)
    }

    /// True if `id` is `ancestor` or lies below it (walks ".." up to the root). A path
    /// longer than the number of inodes means the parent links form a cycle: corrupt
    /// state, reported instead of looping forever.
    fn is_within(&self, id: FileId, ancestor: FileId) -> OpResult<bool> {
        let mut cur = id;
        for _ in 0..=self.ov.changes.meta.inode_count {
            if cur == ancestor {
                return Ok(true);
            }
            if cur == ROOT_ID {
                return Ok(false);
            }
            cur = self.linked(cur)?.parent;
        }
        Err(ExecError::Corrupt(format!("parent links of {id} form a cycle")).into())
    }

    /// RENAME (§3.3.14). Replaces an existing target of a compatible type: file onto
    /// file; directory onto an EMPTY directory (non-empty → `NotEmpty`, which RFC 1813
    /// allows besides `Exist`); directory onto non-directory → `NotDir`; non-directory
    /// onto directory → `IsDir`. A directory may not move into its own subtree (`Inval`).
    /// Renaming an entry onto itself is a successful no-op. The moved inode gets a new
    /// ctime; both directories new mtime and ctime.
    pub fn rename(
        &mut self,
        from_dir: FileId,
        from_name: &[u8],
        to_dir: FileId,
        to_name: &[u8],
    ) -> OpResult<FsReply> {
        self.dir(from_dir)?;
        self.dir(to_dir)?;
        if is_dot(from_name) || is_dot(to_name) {
            return Err(FsError::Inval.into());
        }
        check_existing(from_name)?;
        check_new(to_name)?;
        let src = self.ov.entry(from_dir, from_name)?.ok_or(FsError::NoEnt)?;
        if from_dir == to_dir && from_name == to_name {
            return Ok(FsReply::Done);
        }
        let srec = self.linked(src)?;
        let src_is_dir = srec.file_type == FileType::Directory;
        if src_is_dir && self.is_within(to_dir, src)? {
            return Err(FsError::Inval.into());
        }
        if let Some(dst) = self.ov.entry(to_dir, to_name)? {
            if dst == src {
                return Ok(FsReply::Done);
            }
            let drec = self.linked(dst)?;
            match (src_is_dir, drec.file_type == FileType::Directory) {
                (true, false) => return Err(FsError::NotDir.into()),
                (false, true) => return Err(FsError::IsDir.into()),
                (true, true) if drec.size > 0 => return Err(FsError::NotEmpty.into()),
                _ => {}
            }
            self.unlink(to_dir, to_name, dst, &drec)?;
        }
        let now = self.now;
        self.ov.delete_entry(from_dir, from_name, src);
        self.ov.put_entry(to_dir, to_name, src);
        self.update(src, |r| {
            r.parent = to_dir;
            r.ctime = now;
        })?;
        self.update(from_dir, |r| {
            r.size = r.size.saturating_sub(1);
            if src_is_dir {
                r.subdirs = r.subdirs.saturating_sub(1);
            }
        })?;
        self.update(to_dir, |r| {
            r.size = r.size.saturating_add(1);
            if src_is_dir {
                r.subdirs = r.subdirs.saturating_add(1);
            }
        })?;
        self.touch_dir(from_dir)?;
        self.touch_dir(to_dir)?;
        Ok(FsReply::Done)
    }

    /// READDIR / READDIRPLUS (§3.3.16–17): entries with id > `after`, ascending id, at
    /// most `max_entries` (capped at [`READDIR_MAX_ENTRIES`]); `end` when none remain.
    pub fn readdir(&mut self, dir: FileId, after: FileId, max_entries: u32) -> OpResult<FsReply> {
        let drec = self.dir(dir)?;
        let dir_attr = attr_of(dir, &drec);
        // At least one entry, so that a client paging with a tiny count always progresses.
        let limit = max_entries.clamp(1, READDIR_MAX_ENTRIES) as usize;
        let Some(from) = after.checked_add(1) else {
            return Ok(FsReply::ReadDir {
                entries: Vec::new(),
                end: true,
                dir: dir_attr,
            });
        };
        let mut page = self.ov.children_from(dir, from, limit + 1)?;
        let end = page.len() <= limit;
        page.truncate(limit);
        let mut entries = Vec::with_capacity(page.len());
        for (id, name) in page {
            let rec = self.linked(id)?;
            entries.push(DirEntry {
                id,
                name,
                attr: attr_of(id, &rec),
            });
        }
        Ok(FsReply::ReadDir {
            entries,
            end,
            dir: dir_attr,
        })
    }
}
