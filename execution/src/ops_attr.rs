//! SETATTR, ACCESS, FSSTAT (RFC 1813 §3.3.2, §3.3.4, §3.3.18).

use palisade_wire::checkpoint::InodeRecord;
use palisade_wire::fs::{
    FileId, FileType, FsError, FsReply, FsStat, SetAttr, SetTime, Timestamp, ACCESS3_DELETE,
    ACCESS3_EXECUTE, ACCESS3_EXTEND, ACCESS3_LOOKUP, ACCESS3_MODIFY, ACCESS3_READ,
};

use crate::exec::{attr_of, Exec, OpResult};

/// Resolves a `set_atime`/`set_mtime` against the batch time ("server time" is the agreed
/// batch timestamp, so every replica writes the same value).
fn resolve(t: SetTime, now: Timestamp) -> Option<Timestamp> {
    match t {
        SetTime::DontChange => None,
        SetTime::ServerTime => Some(now),
        SetTime::ClientTime(t) => Some(t),
    }
}

/// True if `attr` asks to change anything.
pub fn is_empty(attr: &SetAttr) -> bool {
    attr.mode.is_none()
        && attr.uid.is_none()
        && attr.gid.is_none()
        && attr.size.is_none()
        && attr.atime == SetTime::DontChange
        && attr.mtime == SetTime::DontChange
}

/// Applies the non-size fields of `attr` to `rec` (mode masked to the 12 permission bits).
pub fn apply_plain(rec: &mut InodeRecord, attr: &SetAttr, now: Timestamp) {
    if let Some(m) = attr.mode {
        rec.mode = m & 0o7777;
    }
    if let Some(u) = attr.uid {
        rec.uid = u;
    }
    if let Some(g) = attr.gid {
        rec.gid = g;
    }
    if let Some(t) = resolve(attr.atime, now) {
        rec.atime = t;
    }
    if let Some(t) = resolve(attr.mtime, now) {
        rec.mtime = t;
    }
}

impl Exec<'_> {
    pub fn setattr(
        &mut self,
        id: FileId,
        attr: &SetAttr,
        guard_ctime: Option<Timestamp>,
    ) -> OpResult<FsReply> {
        let rec = self.inode(id)?;
        // §3.3.2: the guard compares the object's ctime before anything is changed.
        if guard_ctime.is_some_and(|g| g != rec.ctime) {
            return Err(FsError::NotSync.into());
        }
        self.apply_setattr(id, rec, attr)?;
        let rec = self.inode(id)?;
        Ok(FsReply::Attr(attr_of(id, &rec)))
    }

    /// SETATTR's body, shared with CREATE UNCHECKED on an existing file. Checks first,
    /// then changes; ctime becomes the batch time when anything was asked.
    pub fn apply_setattr(&mut self, id: FileId, rec: InodeRecord, attr: &SetAttr) -> OpResult<()> {
        if let Some(size) = attr.size {
            match rec.file_type {
                FileType::Directory => return Err(FsError::IsDir.into()),
                FileType::Symlink => return Err(FsError::Inval.into()),
                FileType::Regular => {}
            }
            if size > self.config.max_file_size {
                return Err(FsError::FBig.into());
            }
        }
        if is_empty(attr) {
            return Ok(());
        }
        let now = self.now;
        if let Some(size) = attr.size {
            if size != rec.size {
                self.resize(id, size)?;
                // POSIX truncate: a size change updates mtime (unless set explicitly below).
                self.update(id, |r| r.mtime = now)?;
            }
        }
        self.update(id, |r| {
            apply_plain(r, attr, now);
            r.ctime = now;
        })?;
        Ok(())
    }

    /// ACCESS (§3.3.4). No credentials reach the file system (nfsserve drops AUTH_UNIX
    /// before our methods), so a right is granted if ANY of the owner, group or other
    /// bits allow it; the client's own permission check against its cached attributes
    /// still applies. Files: read ← r, modify/extend ← w, execute ← x. Directories:
    /// read ← r, lookup ← x, modify/extend/delete ← w. Symlinks behave like files.
    pub fn access(&mut self, id: FileId, mask: u32) -> OpResult<FsReply> {
        let rec = self.inode(id)?;
        let r = rec.mode & 0o444 != 0;
        let w = rec.mode & 0o222 != 0;
        let x = rec.mode & 0o111 != 0;
        let mut allowed = 0;
        if r {
            allowed |= ACCESS3_READ;
        }
        match rec.file_type {
            FileType::Directory => {
                if x {
                    allowed |= ACCESS3_LOOKUP;
                }
                if w {
                    allowed |= ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
                }
            }
            FileType::Regular | FileType::Symlink => {
                if w {
                    allowed |= ACCESS3_MODIFY | ACCESS3_EXTEND;
                }
                if x {
                    allowed |= ACCESS3_EXECUTE;
                }
            }
        }
        Ok(FsReply::Access {
            granted: allowed & mask,
            attr: attr_of(id, &rec),
        })
    }

    /// FSSTAT (§3.3.18): the true numbers of the current state.
    pub fn fsstat(&mut self, id: FileId) -> OpResult<FsReply> {
        self.inode(id)?;
        let meta = self.ov.changes.meta;
        let free = self.config.capacity_bytes.saturating_sub(meta.used_bytes);
        let free_files = self.config.max_files.saturating_sub(meta.inode_count);
        Ok(FsReply::FsStat(FsStat {
            total_bytes: self.config.capacity_bytes,
            free_bytes: free,
            avail_bytes: free,
            total_files: self.config.max_files,
            free_files,
            avail_files: free_files,
        }))
    }
}
