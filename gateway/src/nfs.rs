//! `PalisadeNfs`: nfsserve's `NFSFileSystem` on top of a [`FileService`].
//!
//! Each method of the trait becomes exactly one [`FsOp`] (REMOVE/RMDIR, which nfsserve
//! funnels into one method, may become two — see [`PalisadeNfs::remove`]). Errors map
//! one-to-one to `nfsstat3` ([`crate::convert::nfsstat`]).
//!
//! What nfsserve 0.11 decides before we are called (read from its `nfs_handlers.rs`):
//! - CREATE GUARDED does its own LOOKUP first and answers EXIST itself; only then calls
//!   `create`. CREATE EXCLUSIVE calls `create_exclusive` without the client's verifier.
//! - SETATTR checks the ctime guard itself with a GETATTR before calling `setattr`
//!   (which never sees the guard), so check and change are two operations, not one
//!   atomic `FsOp::SetAttr { guard_ctime }` (stock 0.11 even applied the change on a
//!   mismatch; fixed in vendor/nfsserve). MKDIR does not pass the client's attributes.
//! - ACCESS and PATHCONF never reach the file system. FSSTAT does only through the
//!   patched nfsserve in `vendor/nfsserve` (see its PATCHES.md).
//! - READDIR (not PLUS) always restarts at cookie 0; READDIRPLUS passes the cookie, which
//!   is a file id, as `start_after`.

use std::sync::Arc;

use async_trait::async_trait;
use nfsserve::nfs::{
    cookieverf3, createverf3, fattr3, fileid3, filename3, fsinfo3, fsstat3, nfs_fh3, nfspath3,
    nfsstat3, nfstime3, post_op_attr, sattr3, FSF_CANSETTIME, FSF_HOMOGENEOUS, FSF_SYMLINK,
};
use nfsserve::vfs::{DirEntry, NFSFileSystem, ReadDirResult, VFSCapabilities};
use palisade_wire::fs::{CreateHow, FsError, FsOp, FsReply, SetAttr, ROOT_ID};
use tracing::{debug, warn};

use crate::convert::{fattr, nfsstat, set_attr, timestamp};
use crate::file_service::FileService;
use crate::handle::HandleCodec;
use crate::nfs_stats::NfsStats;

/// Preferred transfer multiple reported by FSINFO (`rtmult`/`wtmult`, RFC 1813 §3.3.19).
const TRANSFER_MULTIPLE: u32 = 4096;

/// The NFSv3 file system nfsserve serves, backed by any [`FileService`].
pub struct PalisadeNfs<S: FileService> {
    service: S,
    handles: HandleCodec,
    stats: Arc<NfsStats>,
}

impl<S: FileService> PalisadeNfs<S> {
    /// Serves `service` as the export named `export_name` (which fixes the file handles'
    /// export id; see [`crate::handle`]).
    pub fn new(service: S, export_name: &str) -> Self {
        Self {
            service,
            handles: HandleCodec::new(export_name),
            stats: Arc::new(NfsStats::default()),
        }
    }

    /// The adapter's counters (shared; they keep counting).
    pub fn stats(&self) -> Arc<NfsStats> {
        self.stats.clone()
    }

    pub fn handles(&self) -> &HandleCodec {
        &self.handles
    }

    /// Sends one operation; counts and logs an error answer.
    async fn run(&self, op: FsOp) -> Result<FsReply, nfsstat3> {
        let what = op_name(&op);
        self.service
            .call(op)
            .await
            .map_err(|e| self.refused(what, e))
    }

    /// Counts and logs an error answer, and turns it into its NFS status.
    fn refused(&self, what: &'static str, e: FsError) -> nfsstat3 {
        NfsStats::bump(&self.stats.fs_errors);
        if matches!(e, FsError::Io | FsError::NoSpc | FsError::ServerFault) {
            NfsStats::bump(&self.stats.server_errors);
            warn!(op = what, error = %e, "file system failed");
        } else {
            debug!(op = what, error = %e, "file system refused");
        }
        nfsstat(e)
    }

    /// A reply of the wrong kind: never produced by a correct service.
    fn unexpected(&self, what: &'static str, reply: &FsReply) -> nfsstat3 {
        NfsStats::bump(&self.stats.unexpected_replies);
        warn!(
            op = what,
            ?reply,
            "unexpected reply kind; answering SERVERFAULT"
        );
        nfsstat3::NFS3ERR_SERVERFAULT
    }

    fn fattr(&self, attr: &palisade_wire::fs::Attr) -> fattr3 {
        fattr(attr, self.handles.export_id())
    }

    async fn set_attributes(
        &self,
        id: fileid3,
        setattr: &sattr3,
        guard_ctime: Option<palisade_wire::fs::Timestamp>,
    ) -> Result<fattr3, nfsstat3> {
        let op = FsOp::SetAttr {
            id,
            attr: set_attr(setattr),
            guard_ctime,
        };
        match self.run(op).await? {
            FsReply::Attr(attr) => Ok(self.fattr(&attr)),
            other => Err(self.unexpected("setattr", &other)),
        }
    }

    /// Runs an operation whose reply is `Done` (REMOVE, RMDIR, RENAME).
    async fn done(&self, what: &'static str, op: FsOp) -> Result<(), nfsstat3> {
        match self.run(op).await? {
            FsReply::Done => Ok(()),
            other => Err(self.unexpected(what, &other)),
        }
    }

    /// CREATE in one of its three modes (RFC 1813 §3.3.8), as one operation.
    async fn create_as(
        &self,
        dir: fileid3,
        name: &filename3,
        how: CreateHow,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        self.created(FsOp::Create {
            dir,
            name: name.0.clone(),
            how,
        })
        .await
    }

    async fn created(&self, op: FsOp) -> Result<(fileid3, fattr3), nfsstat3> {
        let what = op_name(&op);
        match self.run(op).await? {
            FsReply::Created { id, attr } => Ok((id, self.fattr(&attr))),
            other => Err(self.unexpected(what, &other)),
        }
    }
}

#[async_trait]
impl<S: FileService> NFSFileSystem for PalisadeNfs<S> {
    fn capabilities(&self) -> VFSCapabilities {
        VFSCapabilities::ReadWrite
    }

    fn root_dir(&self) -> fileid3 {
        ROOT_ID
    }

    /// No GETATTR before each WRITE: it would be one more operation through the service
    /// (in the unreplicated gateway, one that waits for the previous batch's fsync; in
    /// the replicated ones, one more ordered request), and its attributes were never
    /// atomic with the write. WRITE replies carry post-operation attributes only, which
    /// RFC 1813 allows (Linux then takes its cached attributes as the pre-op ones).
    fn write_pre_op_attr(&self) -> bool {
        false
    }

    async fn lookup(&self, dirid: fileid3, filename: &filename3) -> Result<fileid3, nfsstat3> {
        let op = FsOp::Lookup {
            dir: dirid,
            name: filename.0.clone(),
        };
        match self.run(op).await? {
            FsReply::Lookup { id, .. } => Ok(id),
            other => Err(self.unexpected("lookup", &other)),
        }
    }

    /// One LOOKUP operation answers both: the file system's LOOKUP reply carries the
    /// object's attributes (nfsserve's default would send a GETATTR after it).
    async fn lookup_attr(
        &self,
        dirid: fileid3,
        filename: &filename3,
    ) -> Result<(fileid3, Option<fattr3>), nfsstat3> {
        let op = FsOp::Lookup {
            dir: dirid,
            name: filename.0.clone(),
        };
        match self.run(op).await? {
            FsReply::Lookup { id, attr } => Ok((id, Some(self.fattr(&attr)))),
            other => Err(self.unexpected("lookup", &other)),
        }
    }

    /// One READ operation answers both (its reply carries the file's attributes).
    async fn read_attr(
        &self,
        id: fileid3,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool, Option<fattr3>), nfsstat3> {
        match self.run(FsOp::Read { id, offset, count }).await? {
            FsReply::Read { data, eof, attr } => Ok((data, eof, Some(self.fattr(&attr)))),
            other => Err(self.unexpected("read", &other)),
        }
    }

    /// The optional pre-/post-operation attributes (RFC 1813 §2.6) only where a GETATTR
    /// is cheap: through a replicated service each would be one more ordered request,
    /// and a small CREATE would cost three rounds instead of one.
    fn wcc_attributes(&self) -> bool {
        self.service.cheap_getattr()
    }

    async fn getattr(&self, id: fileid3) -> Result<fattr3, nfsstat3> {
        match self.run(FsOp::GetAttr { id }).await? {
            FsReply::Attr(attr) => Ok(self.fattr(&attr)),
            other => Err(self.unexpected("getattr", &other)),
        }
    }

    async fn setattr(&self, id: fileid3, setattr: sattr3) -> Result<fattr3, nfsstat3> {
        self.set_attributes(id, &setattr, None).await
    }

    /// A guarded SETATTR (RFC 1813 §3.3.2) as one operation: the file system compares the
    /// ctime and applies the change in the same step (`NotSync` if it moved), so the guard
    /// means what it says; nfsserve's default compared against a GETATTR made first
    /// (PATCHES.md §10).
    async fn setattr_guarded(
        &self,
        id: fileid3,
        setattr: sattr3,
        ctime: nfstime3,
    ) -> Result<fattr3, nfsstat3> {
        self.set_attributes(id, &setattr, Some(timestamp(ctime)))
            .await
    }

    async fn read(
        &self,
        id: fileid3,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), nfsstat3> {
        match self.run(FsOp::Read { id, offset, count }).await? {
            FsReply::Read { data, eof, .. } => Ok((data, eof)),
            other => Err(self.unexpected("read", &other)),
        }
    }

    async fn write(&self, id: fileid3, offset: u64, data: &[u8]) -> Result<fattr3, nfsstat3> {
        self.write_owned(id, offset, data.to_vec()).await
    }

    /// What nfsserve calls for WRITE: the decoded data moves into the `FsOp` uncopied.
    async fn write_owned(
        &self,
        id: fileid3,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<fattr3, nfsstat3> {
        // Answered FILE_SYNC by nfsserve: the service returns only once the data is
        // durable (RFC 1813 §3.3.7).
        let op = FsOp::Write { id, offset, data };
        match self.run(op).await? {
            FsReply::Write { attr, .. } => Ok(self.fattr(&attr)),
            other => Err(self.unexpected("write", &other)),
        }
    }

    /// CREATE UNCHECKED and GUARDED (RFC 1813 §3.3.8). nfsserve has already answered
    /// GUARDED with EXIST if its LOOKUP found the name; it does not tell us which mode
    /// the client asked, so this sends UNCHECKED. (A GUARDED create racing another
    /// creator of the same name between nfsserve's LOOKUP and this call thus behaves as
    /// UNCHECKED; fixing that needs the mode from nfsserve.)
    async fn create(
        &self,
        dirid: fileid3,
        filename: &filename3,
        attr: sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        self.create_as(dirid, filename, CreateHow::Unchecked(set_attr(&attr)))
            .await
    }

    /// CREATE GUARDED (RFC 1813 §3.3.8) as one operation: the file system refuses an
    /// existing name with `Exist` in the same step that creates, so the check and the
    /// create are atomic and cost one (replicated) operation. nfsserve's default made a
    /// LOOKUP first and then an UNCHECKED create, which a name created in between turned
    /// into a truncation of someone else's file (PATCHES.md §8).
    async fn create_guarded(
        &self,
        dirid: fileid3,
        filename: &filename3,
        attr: sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        self.create_as(dirid, filename, CreateHow::Guarded(set_attr(&attr)))
            .await
    }

    /// CREATE EXCLUSIVE without a verifier: only nfsserve's default path calls this (the
    /// CREATE handler calls `create_exclusive_verf`, PATCHES.md §11). GUARDED keeps the
    /// property exclusive create exists for (one creator succeeds).
    async fn create_exclusive(
        &self,
        dirid: fileid3,
        filename: &filename3,
    ) -> Result<fileid3, nfsstat3> {
        self.create_as(dirid, filename, CreateHow::Guarded(SetAttr::default()))
            .await
            .map(|(id, _)| id)
    }

    /// CREATE EXCLUSIVE (RFC 1813 §3.3.8) with the client's verifier, which the file
    /// system keeps with the file: a retransmission with the same verifier (its reply was
    /// lost) succeeds with the same file, anyone else's create of that name is EXIST.
    async fn create_exclusive_verf(
        &self,
        dirid: fileid3,
        filename: &filename3,
        verf: createverf3,
    ) -> Result<fileid3, nfsstat3> {
        self.create_as(dirid, filename, CreateHow::Exclusive(verf))
            .await
            .map(|(id, _)| id)
    }

    /// MKDIR without attributes: only nfsserve's default path calls this (the handler
    /// calls `mkdir_attr`); the file system's default mode applies.
    async fn mkdir(
        &self,
        dirid: fileid3,
        dirname: &filename3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        self.mkdir_attr(dirid, dirname, sattr3::default()).await
    }

    /// MKDIR with the call's attributes (RFC 1813 §3.3.9): `mkdir -m 700` makes a
    /// directory of mode 0700 in the same step that creates it.
    async fn mkdir_attr(
        &self,
        dirid: fileid3,
        dirname: &filename3,
        attr: sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        self.created(FsOp::Mkdir {
            dir: dirid,
            name: dirname.0.clone(),
            attr: set_attr(&attr),
        })
        .await
    }

    /// REMOVE (RFC 1813 §3.3.12): a file, symlink or other non-directory; a directory is
    /// refused (`IsDir`, as knfsd answers) — RMDIR is its own call (PATCHES.md §11).
    async fn remove(&self, dirid: fileid3, filename: &filename3) -> Result<(), nfsstat3> {
        self.done(
            "remove",
            FsOp::Remove {
                dir: dirid,
                name: filename.0.clone(),
            },
        )
        .await
    }

    /// RMDIR (RFC 1813 §3.3.13): an empty directory, as one operation.
    async fn rmdir(&self, dirid: fileid3, dirname: &filename3) -> Result<(), nfsstat3> {
        self.done(
            "rmdir",
            FsOp::Rmdir {
                dir: dirid,
                name: dirname.0.clone(),
            },
        )
        .await
    }

    async fn rename(
        &self,
        from_dirid: fileid3,
        from_filename: &filename3,
        to_dirid: fileid3,
        to_filename: &filename3,
    ) -> Result<(), nfsstat3> {
        let op = FsOp::Rename {
            from_dir: from_dirid,
            from_name: from_filename.0.clone(),
            to_dir: to_dirid,
            to_name: to_filename.0.clone(),
        };
        self.done("rename", op).await
    }

    /// READDIRPLUS paging (RFC 1813 §3.3.17): cookies are file ids, so a listing is
    /// complete and exact across pages even while entries come and go.
    async fn readdir(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> Result<ReadDirResult, nfsstat3> {
        self.readdir_attr(dirid, start_after, max_entries)
            .await
            .map(|(page, _)| page)
    }

    /// READDIR and READDIRPLUS as one operation: the file system's listing carries the
    /// directory's own attributes, which nfsserve's default fetched with a GETATTR first
    /// (one more ordered operation through a replicated service; PATCHES.md §9).
    async fn readdir_attr(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> Result<(ReadDirResult, Option<fattr3>), nfsstat3> {
        // nfsserve estimates max_entries as dircount/16; ask for at least one entry so a
        // tiny dircount still makes progress. The file system caps large values.
        let max_entries = u32::try_from(max_entries).unwrap_or(u32::MAX).max(1);
        let op = FsOp::ReadDir {
            dir: dirid,
            after: start_after,
            max_entries,
        };
        match self.run(op).await? {
            FsReply::ReadDir { entries, end, dir } => {
                let page = ReadDirResult {
                    entries: entries
                        .into_iter()
                        .map(|e| DirEntry {
                            fileid: e.id,
                            name: e.name.into(),
                            attr: self.fattr(&e.attr),
                        })
                        .collect(),
                    end,
                };
                Ok((page, Some(self.fattr(&dir))))
            }
            other => Err(self.unexpected("readdir", &other)),
        }
    }

    async fn symlink(
        &self,
        dirid: fileid3,
        linkname: &filename3,
        symlink: &nfspath3,
        attr: &sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        self.created(FsOp::Symlink {
            dir: dirid,
            name: linkname.0.clone(),
            target: symlink.0.clone(),
            attr: set_attr(attr),
        })
        .await
    }

    async fn readlink(&self, id: fileid3) -> Result<nfspath3, nfsstat3> {
        self.readlink_attr(id).await.map(|(target, _)| target)
    }

    /// READLINK as one operation: the file system's reply carries the link's attributes,
    /// which nfsserve's default fetched with a GETATTR first (PATCHES.md §13).
    async fn readlink_attr(&self, id: fileid3) -> Result<(nfspath3, Option<fattr3>), nfsstat3> {
        match self.run(FsOp::ReadLink { id }).await? {
            FsReply::ReadLink { target, attr } => Ok((target.into(), Some(self.fattr(&attr)))),
            other => Err(self.unexpected("readlink", &other)),
        }
    }

    /// FSINFO (RFC 1813 §3.3.19) from the file system's own limits.
    async fn fsinfo(&self, root_fileid: fileid3) -> Result<fsinfo3, nfsstat3> {
        let info = match self.run(FsOp::FsInfo { id: root_fileid }).await? {
            FsReply::FsInfo(info) => info,
            other => return Err(self.unexpected("fsinfo", &other)),
        };
        let obj_attributes = match self.getattr(root_fileid).await {
            Ok(attr) => post_op_attr::attributes(attr),
            Err(_) => post_op_attr::Void,
        };
        Ok(fsinfo3 {
            obj_attributes,
            rtmax: info.read_max,
            rtpref: info.read_pref,
            rtmult: TRANSFER_MULTIPLE,
            wtmax: info.write_max,
            wtpref: info.write_pref,
            wtmult: TRANSFER_MULTIPLE,
            dtpref: info.dir_pref,
            maxfilesize: info.max_file_size,
            time_delta: nfstime3 {
                seconds: info.time_delta_nanos / 1_000_000_000,
                nseconds: info.time_delta_nanos % 1_000_000_000,
            },
            // No FSF_LINK: nfsserve answers LINK with PROC_UNAVAIL.
            properties: FSF_SYMLINK | FSF_HOMOGENEOUS | FSF_CANSETTIME,
        })
    }

    /// FSSTAT (RFC 1813 §3.3.18) with the file system's true numbers (a method of the
    /// patched nfsserve in vendor/nfsserve; stock 0.11 hard-codes them).
    async fn fsstat(&self, root_fileid: fileid3) -> Result<fsstat3, nfsstat3> {
        let stat = match self.run(FsOp::FsStat { id: root_fileid }).await? {
            FsReply::FsStat(stat) => stat,
            other => return Err(self.unexpected("fsstat", &other)),
        };
        let obj_attributes = match self.getattr(root_fileid).await {
            Ok(attr) => post_op_attr::attributes(attr),
            Err(_) => post_op_attr::Void,
        };
        Ok(fsstat3 {
            obj_attributes,
            tbytes: stat.total_bytes,
            fbytes: stat.free_bytes,
            abytes: stat.avail_bytes,
            tfiles: stat.total_files,
            ffiles: stat.free_files,
            afiles: stat.avail_files,
            // The numbers change with every write: promise no stability (§3.3.18).
            invarsec: 0,
        })
    }

    fn id_to_fh(&self, id: fileid3) -> nfs_fh3 {
        nfs_fh3 {
            data: self.handles.encode(id),
        }
    }

    fn fh_to_id(&self, fh: &nfs_fh3) -> Result<fileid3, nfsstat3> {
        self.handles.decode(&fh.data).map_err(|e| {
            NfsStats::bump(&self.stats.rejected_handles);
            debug!(error = %e, "refused file handle");
            nfsstat3::NFS3ERR_BADHANDLE
        })
    }

    /// Stable across restarts and identical on every replica (see [`crate::handle`]).
    fn serverid(&self) -> cookieverf3 {
        self.handles.export_id().to_be_bytes()
    }
}

/// A short name of an operation, for logs.
fn op_name(op: &FsOp) -> &'static str {
    match op {
        FsOp::GetAttr { .. } => "getattr",
        FsOp::SetAttr { .. } => "setattr",
        FsOp::Lookup { .. } => "lookup",
        FsOp::Access { .. } => "access",
        FsOp::Read { .. } => "read",
        FsOp::Write { .. } => "write",
        FsOp::Create { .. } => "create",
        FsOp::Mkdir { .. } => "mkdir",
        FsOp::Symlink { .. } => "symlink",
        FsOp::ReadLink { .. } => "readlink",
        FsOp::Remove { .. } => "remove",
        FsOp::Rmdir { .. } => "rmdir",
        FsOp::Rename { .. } => "rename",
        FsOp::ReadDir { .. } => "readdir",
        FsOp::FsStat { .. } => "fsstat",
        FsOp::FsInfo { .. } => "fsinfo",
    }
}
