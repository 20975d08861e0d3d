//! One batch's execution: applies `FsOp`s, in order, to an [`Overlay`].
//!
//! Every operation first checks everything that can make it fail and only then changes
//! the overlay, so a failed operation (an `FsError` reply) changes nothing. Every time it
//! writes is the batch's agreed timestamp; new ids come from the meta record's counter.

use palisade_wire::checkpoint::InodeRecord;
use palisade_wire::fs::{
    Attr, BatchContext, FileId, FileType, FsError, FsInfo, FsOp, FsReply, FsResult, Timestamp,
};

use crate::overlay::Overlay;
use crate::store::StateView;
use crate::{ExecError, FsConfig};

/// Largest READ / WRITE transfer (FSINFO rtmax/wtmax), 1 MiB.
pub const IO_MAX: u32 = 1 << 20;
/// Most entries one READDIR answers, whatever the client asks.
pub const READDIR_MAX_ENTRIES: u32 = 4096;

/// Why an operation stopped: an NFS error for the client, or a failure of the replica
/// (storage, corruption) that aborts the whole batch.
pub enum OpError {
    Fs(FsError),
    Exec(ExecError),
}

impl From<FsError> for OpError {
    fn from(e: FsError) -> Self {
        OpError::Fs(e)
    }
}

impl From<ExecError> for OpError {
    fn from(e: ExecError) -> Self {
        OpError::Exec(e)
    }
}

pub type OpResult<T> = Result<T, OpError>;

/// The executor of one batch.
pub struct Exec<'a> {
    pub ov: Overlay<'a>,
    pub now: Timestamp,
    pub config: FsConfig,
}

impl<'a> Exec<'a> {
    pub fn new(ov: Overlay<'a>, ctx: &BatchContext, config: FsConfig) -> Exec<'a> {
        Exec {
            ov,
            now: ctx.timestamp,
            config,
        }
    }

    /// Applies one operation. `Err` only for a replica failure (the batch is abandoned).
    pub fn apply(&mut self, op: &FsOp) -> Result<FsResult, ExecError> {
        let r = match op {
            FsOp::GetAttr { id } => self.getattr(*id),
            FsOp::SetAttr {
                id,
                attr,
                guard_ctime,
            } => self.setattr(*id, attr, *guard_ctime),
            FsOp::Lookup { dir, name } => self.lookup(*dir, name),
            FsOp::Access { id, mask } => self.access(*id, *mask),
            FsOp::Read { id, offset, count } => self.read(*id, *offset, *count),
            FsOp::Write { id, offset, data } => self.write(*id, *offset, data),
            FsOp::Create { dir, name, how } => self.create(*dir, name, how),
            FsOp::Mkdir { dir, name, attr } => self.mkdir(*dir, name, attr),
            FsOp::Symlink {
                dir,
                name,
                target,
                attr,
            } => self.symlink(*dir, name, target, attr),
            FsOp::ReadLink { id } => self.readlink(*id),
            FsOp::Remove { dir, name } => self.remove(*dir, name),
            FsOp::Rmdir { dir, name } => self.rmdir(*dir, name),
            FsOp::Rename {
                from_dir,
                from_name,
                to_dir,
                to_name,
            } => self.rename(*from_dir, from_name, *to_dir, to_name),
            FsOp::ReadDir {
                dir,
                after,
                max_entries,
            } => self.readdir(*dir, *after, *max_entries),
            FsOp::FsStat { id } => self.fsstat(*id),
            FsOp::FsInfo { id } => self.fsinfo(*id),
        };
        match r {
            Ok(reply) => Ok(Ok(reply)),
            Err(OpError::Fs(e)) => Ok(Err(e)),
            Err(OpError::Exec(e)) => Err(e),
        }
    }

    // ---- helpers ----

    /// The inode `id`; an unknown id is a stale handle (RFC 1813 §2.6, NFS3ERR_STALE).
    pub fn inode(&self, id: FileId) -> OpResult<InodeRecord> {
        self.ov.inode(id)?.ok_or(OpError::Fs(FsError::Stale))
    }

    /// The directory `id`: `Stale` if unknown, `NotDir` if not a directory.
    pub fn dir(&self, id: FileId) -> OpResult<InodeRecord> {
        let rec = self.inode(id)?;
        if rec.file_type != FileType::Directory {
            return Err(FsError::NotDir.into());
        }
        Ok(rec)
    }

    /// An inode that an entry points at; missing means the store is inconsistent.
    pub fn linked(&self, id: FileId) -> OpResult<InodeRecord> {
        self.ov
            .inode(id)?
            .ok_or_else(|| ExecError::Corrupt(format!("entry points at missing inode {id}")).into())
    }

    /// Reads, changes and writes back one inode record.
    pub fn update(&mut self, id: FileId, f: impl FnOnce(&mut InodeRecord)) -> OpResult<()> {
        let mut rec = self.linked(id)?;
        f(&mut rec);
        self.ov.put_inode(id, rec);
        Ok(())
    }

    /// A directory's contents changed: mtime and ctime are the batch time.
    pub fn touch_dir(&mut self, dir: FileId) -> OpResult<()> {
        let now = self.now;
        self.update(dir, |r| {
            r.mtime = now;
            r.ctime = now;
        })
    }

    pub fn getattr(&mut self, id: FileId) -> OpResult<FsReply> {
        let rec = self.inode(id)?;
        Ok(FsReply::Attr(attr_of(id, &rec)))
    }

    pub fn readlink(&mut self, id: FileId) -> OpResult<FsReply> {
        let rec = self.inode(id)?;
        if rec.file_type != FileType::Symlink {
            return Err(FsError::Inval.into());
        }
        let attr = attr_of(id, &rec);
        Ok(FsReply::ReadLink {
            target: rec.target,
            attr,
        })
    }

    pub fn fsinfo(&mut self, id: FileId) -> OpResult<FsReply> {
        self.inode(id)?;
        Ok(FsReply::FsInfo(FsInfo {
            read_max: IO_MAX,
            read_pref: IO_MAX,
            write_max: IO_MAX,
            write_pref: IO_MAX,
            dir_pref: 64 * 1024,
            max_file_size: self.config.max_file_size,
            time_delta_nanos: 1,
        }))
    }
}

/// The NFS attributes (`fattr3`) of an inode. Directories: nlink = 2 + subdirectories
/// (".", its entry in the parent, and each child's ".."); others 1 (there is no LINK).
pub fn attr_of(id: FileId, rec: &InodeRecord) -> Attr {
    let nlink = match rec.file_type {
        FileType::Directory => u32::try_from(rec.subdirs.saturating_add(2)).unwrap_or(u32::MAX),
        _ => 1,
    };
    Attr {
        file_type: rec.file_type,
        mode: rec.mode,
        nlink,
        uid: rec.uid,
        gid: rec.gid,
        size: rec.size,
        used: rec.used,
        fileid: id,
        atime: rec.atime,
        mtime: rec.mtime,
        ctime: rec.ctime,
    }
}

/// A fresh inode of `file_type` created at `now` in `parent`.
pub fn new_record(file_type: FileType, mode: u32, parent: FileId, now: Timestamp) -> InodeRecord {
    InodeRecord {
        file_type,
        mode,
        uid: 0,
        gid: 0,
        size: 0,
        used: 0,
        atime: now,
        mtime: now,
        ctime: now,
        parent,
        subdirs: 0,
        target: Vec::new(),
        verifier: None,
    }
}
