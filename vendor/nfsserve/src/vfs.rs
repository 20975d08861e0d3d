use std::cmp::Ordering;
use std::sync::Once;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::nfs;
use crate::nfs::*;
#[derive(Default, Debug)]
pub struct DirEntrySimple {
    pub fileid: fileid3,
    pub name: filename3,
}
#[derive(Default, Debug)]
pub struct ReadDirSimpleResult {
    pub entries: Vec<DirEntrySimple>,
    pub end: bool,
}

#[derive(Default, Debug)]
pub struct DirEntry {
    pub fileid: fileid3,
    pub name: filename3,
    pub attr: fattr3,
}
#[derive(Default, Debug)]
pub struct ReadDirResult {
    pub entries: Vec<DirEntry>,
    pub end: bool,
}

impl ReadDirSimpleResult {
    pub(crate) fn from_readdir_result(result: &ReadDirResult) -> ReadDirSimpleResult {
        let entries: Vec<DirEntrySimple> = result
            .entries
            .iter()
            .map(|e| DirEntrySimple {
                fileid: e.fileid,
                name: e.name.clone(),
            })
            .collect();
        ReadDirSimpleResult {
            entries,
            end: result.end,
        }
    }
}

static mut GENERATION_NUMBER: u64 = 0;
static GENERATION_NUMBER_INIT: Once = Once::new();

fn get_generation_number() -> u64 {
    unsafe {
        GENERATION_NUMBER_INIT.call_once(|| {
            GENERATION_NUMBER = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        });
        GENERATION_NUMBER
    }
}

/// What capabilities are supported
pub enum VFSCapabilities {
    ReadOnly,
    ReadWrite,
}

/// The basic API to implement to provide an NFS file system
///
/// Opaque FH
/// ---------
/// Files are only uniquely identified by a 64-bit file id. (basically an inode number)
/// We automatically produce internally the opaque filehandle which is comprised of
///  - A 64-bit generation number derived from the server startup time
///   (i.e. so the opaque file handle expires when the NFS server restarts)
///  - The 64-bit file id
//
/// readdir pagination
/// ------------------
/// We do not use cookie verifier. We just use the start_after.  The
/// implementation should allow startat to start at any position. That is,
/// the next query to readdir may be the last entry in the previous readdir
/// response.
//
/// There is a wierd annoying thing about readdir that limits the number
/// of bytes in the response (instead of the number of entries). The caller
/// will have to truncate the readdir response / issue more calls to readdir
/// accordingly to fill up the expected number of bytes without exceeding it.
//
/// Other requirements
/// ------------------
///  getattr needs to be fast. NFS uses that a lot
//
///  The 0 fileid is reserved and should not be used
#[async_trait]
pub trait NFSFileSystem: Sync {
    /// Returns the set of capabilities supported
    fn capabilities(&self) -> VFSCapabilities;
    /// Returns the ID the of the root directory "/"
    fn root_dir(&self) -> fileid3;
    /// Look up the id of a path in a directory
    ///
    /// i.e. given a directory dir/ containing a file a.txt
    /// this may call lookup(id_of("dir/"), "a.txt")
    /// and this should return the id of the file "dir/a.txt"
    ///
    /// This method should be fast as it is used very frequently.
    async fn lookup(&self, dirid: fileid3, filename: &filename3) -> Result<fileid3, nfsstat3>;

    /// LOOKUP with the found object's attributes (RFC 1813 §3.3.3 returns both). The
    /// default is `lookup` then `getattr`; a file system whose lookup already yields the
    /// attributes answers with one call.
    async fn lookup_attr(&self, dirid: fileid3, filename: &filename3) -> Result<(fileid3, Option<fattr3>), nfsstat3> {
        let id = self.lookup(dirid, filename).await?;
        Ok((id, self.getattr(id).await.ok()))
    }

    /// READ with the file's attributes (RFC 1813 §3.3.6 returns both). The default is
    /// `getattr` then `read`; a file system whose read already yields the attributes
    /// answers with one call.
    async fn read_attr(&self, id: fileid3, offset: u64, count: u32) -> Result<(Vec<u8>, bool, Option<fattr3>), nfsstat3> {
        let attr = self.getattr(id).await.ok();
        let (data, eof) = self.read(id, offset, count).await?;
        Ok((data, eof, attr))
    }

    /// Whether handlers should call `getattr` just to fill the optional weak cache
    /// consistency data (RFC 1813 §2.6: `pre_op_attr`, and the directory `post_op_attr`
    /// of LOOKUP, CREATE, MKDIR, SYMLINK, REMOVE, RMDIR and RENAME). Both are optional in
    /// NFSv3; a client that gets none revalidates its cache with a GETATTR when it needs
    /// to. A file system where every call is costly (one replicated, ordered operation
    /// each) answers false, and those calls are not made.
    fn wcc_attributes(&self) -> bool {
        true
    }

    /// Returns the attributes of an id.
    /// This method should be fast as it is used very frequently.
    async fn getattr(&self, id: fileid3) -> Result<fattr3, nfsstat3>;

    /// Sets the attributes of an id
    /// this should return Err(nfsstat3::NFS3ERR_ROFS) if readonly
    async fn setattr(&self, id: fileid3, setattr: sattr3) -> Result<fattr3, nfsstat3>;

    /// PALISADE PATCH (see PATCHES.md): SETATTR with its guard (RFC 1813 §3.3.2: apply
    /// only if the object's ctime is still `ctime`, else NFS3ERR_NOT_SYNC).
    /// nfsproc3_setattr calls this when the call carries a guard; the default is stock
    /// behaviour, `getattr`, compare, then `setattr`, which is two calls and not atomic (a
    /// change between them slips past the guard it exists to catch). A file system that
    /// compares and applies in one step answers with one call, atomically.
    async fn setattr_guarded(&self, id: fileid3, setattr: sattr3, ctime: nfstime3) -> Result<fattr3, nfsstat3> {
        let now = self.getattr(id).await?;
        if now.ctime.seconds != ctime.seconds || now.ctime.nseconds != ctime.nseconds {
            return Err(nfsstat3::NFS3ERR_NOT_SYNC);
        }
        self.setattr(id, setattr).await
    }

    /// Reads the contents of a file returning (bytes, EOF)
    /// Note that offset/count may go past the end of the file and that
    /// in that case, all bytes till the end of file are returned.
    /// EOF must be flagged if the end of the file is reached by the read.
    async fn read(&self, id: fileid3, offset: u64, count: u32) -> Result<(Vec<u8>, bool), nfsstat3>;

    /// Writes the contents of a file returning (bytes, EOF)
    /// Note that offset/count may go past the end of the file and that
    /// in that case, the file is extended.
    /// If not supported due to readonly file system
    /// this should return Err(nfsstat3::NFS3ERR_ROFS)
    async fn write(&self, id: fileid3, offset: u64, data: &[u8]) -> Result<fattr3, nfsstat3>;

    /// PALISADE PATCH (see PATCHES.md): whether nfsproc3_write asks `getattr` before each
    /// WRITE, for the reply's pre-operation attributes (weak cache consistency, RFC 1813
    /// §2.6). Those are optional, and a separate `getattr` is not atomic with the write
    /// anyway; a file system for which that call is costly (a queued operation that
    /// waits for the previous batch's commit) answers `false`, and the reply then carries
    /// none. The default keeps stock behaviour.
    fn write_pre_op_attr(&self) -> bool {
        true
    }

    /// PALISADE PATCH (see PATCHES.md): WRITE with the data handed over, so a file system
    /// that keeps the bytes (queues them for a batch, say) need not copy 1 MiB per call.
    /// nfsproc3_write calls this; the default calls [`NFSFileSystem::write`], so
    /// implementations that only have `write` behave exactly as before.
    async fn write_owned(&self, id: fileid3, offset: u64, data: Vec<u8>) -> Result<fattr3, nfsstat3> {
        self.write(id, offset, &data).await
    }

    /// Creates a file with the following attributes.
    /// If not supported due to readonly file system
    /// this should return Err(nfsstat3::NFS3ERR_ROFS)
    async fn create(&self, dirid: fileid3, filename: &filename3, attr: sattr3) -> Result<(fileid3, fattr3), nfsstat3>;

    /// PALISADE PATCH (see PATCHES.md): CREATE in GUARDED mode (RFC 1813 §3.3.8: fail
    /// with NFS3ERR_EXIST if the name exists). nfsproc3_create calls this; the default is
    /// stock behaviour, `lookup` then `create`, which takes two calls and is not atomic (a
    /// name created between the two is then treated as UNCHECKED: its attributes are
    /// applied, a size of 0 truncates it). A file system that checks and creates in one
    /// step answers with one call, atomically.
    async fn create_guarded(&self, dirid: fileid3, filename: &filename3, attr: sattr3) -> Result<(fileid3, fattr3), nfsstat3> {
        if self.lookup(dirid, filename).await.is_ok() {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        self.create(dirid, filename, attr).await
    }

    /// Creates a file if it does not already exist
    /// this should return Err(nfsstat3::NFS3ERR_ROFS)
    async fn create_exclusive(&self, dirid: fileid3, filename: &filename3) -> Result<fileid3, nfsstat3>;

    /// PALISADE PATCH (see PATCHES.md): MKDIR with the attributes the call carries (its
    /// `sattr3`: the mode of `mkdir -m 700`, say). nfsproc3_mkdir calls this; the default
    /// calls [`NFSFileSystem::mkdir`], which has no attributes (stock behaviour: the file
    /// system's default mode applies).
    async fn mkdir_attr(&self, dirid: fileid3, dirname: &filename3, _attr: sattr3) -> Result<(fileid3, fattr3), nfsstat3> {
        self.mkdir(dirid, dirname).await
    }

    /// PALISADE PATCH (see PATCHES.md): RMDIR (RFC 1813 §3.3.13) as its own call, so a
    /// file system can tell it from REMOVE. The RMDIR procedure calls this; the default
    /// calls [`NFSFileSystem::remove`], as stock nfsserve did for both procedures.
    async fn rmdir(&self, dirid: fileid3, dirname: &filename3) -> Result<(), nfsstat3> {
        self.remove(dirid, dirname).await
    }

    /// PALISADE PATCH (see PATCHES.md): CREATE EXCLUSIVE with the client's verifier
    /// (RFC 1813 §3.3.8: a retransmission carrying the same verifier must succeed). The
    /// handler calls this; the default calls [`NFSFileSystem::create_exclusive`], which
    /// never sees the verifier (stock behaviour).
    async fn create_exclusive_verf(&self, dirid: fileid3, filename: &filename3, _verf: createverf3) -> Result<fileid3, nfsstat3> {
        self.create_exclusive(dirid, filename).await
    }

    /// Makes a directory with the following attributes.
    /// If not supported dur to readonly file system
    /// this should return Err(nfsstat3::NFS3ERR_ROFS)
    async fn mkdir(&self, dirid: fileid3, dirname: &filename3) -> Result<(fileid3, fattr3), nfsstat3>;

    /// Removes a file.
    /// If not supported due to readonly file system
    /// this should return Err(nfsstat3::NFS3ERR_ROFS)
    async fn remove(&self, dirid: fileid3, filename: &filename3) -> Result<(), nfsstat3>;

    /// Removes a file.
    /// If not supported due to readonly file system
    /// this should return Err(nfsstat3::NFS3ERR_ROFS)
    async fn rename(
        &self,
        from_dirid: fileid3,
        from_filename: &filename3,
        to_dirid: fileid3,
        to_filename: &filename3,
    ) -> Result<(), nfsstat3>;

    /// Returns the contents of a directory with pagination.
    /// Directory listing should be deterministic.
    /// Up to max_entries may be returned, and start_after is used
    /// to determine where to start returning entries from.
    ///
    /// For instance if the directory has entry with ids [1,6,2,11,8,9]
    /// and start_after=6, readdir should returning 2,11,8,...
    //
    async fn readdir(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> Result<ReadDirResult, nfsstat3>;

    /// PALISADE PATCH (see PATCHES.md): READDIR / READDIRPLUS with the directory's own
    /// attributes (the reply's `dir_attributes`, and the cookie verifier made from its
    /// mtime). nfsproc3_readdir and nfsproc3_readdirplus call this; the default is stock
    /// behaviour, `getattr` then `readdir`; a file system whose listing already yields the
    /// directory's attributes answers with one call, and the attributes then belong to
    /// the same state as the entries.
    async fn readdir_attr(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> Result<(ReadDirResult, Option<fattr3>), nfsstat3> {
        let attr = self.getattr(dirid).await.ok();
        let result = self.readdir(dirid, start_after, max_entries).await?;
        Ok((result, attr))
    }

    /// Simple version of readdir.
    /// Only need to return filename and id
    async fn readdir_simple(&self, dirid: fileid3, count: usize) -> Result<ReadDirSimpleResult, nfsstat3> {
        Ok(ReadDirSimpleResult::from_readdir_result(&self.readdir(dirid, 0, count).await?))
    }

    /// Makes a symlink with the following attributes.
    /// If not supported due to readonly file system
    /// this should return Err(nfsstat3::NFS3ERR_ROFS)
    async fn symlink(
        &self,
        dirid: fileid3,
        linkname: &filename3,
        symlink: &nfspath3,
        attr: &sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3>;

    /// Reads a symlink
    async fn readlink(&self, id: fileid3) -> Result<nfspath3, nfsstat3>;

    /// PALISADE PATCH (see PATCHES.md): READLINK with the link's attributes (the reply's
    /// `symlink_attributes`). nfsproc3_readlink calls this; the default is stock
    /// behaviour, `getattr` (whose failure is the call's) then `readlink`; a file system
    /// whose READLINK already yields the attributes answers with one call.
    async fn readlink_attr(&self, id: fileid3) -> Result<(nfspath3, Option<fattr3>), nfsstat3> {
        let attr = self.getattr(id).await?;
        let path = self.readlink(id).await?;
        Ok((path, Some(attr)))
    }

    /// Get static file system Information
    async fn fsinfo(&self, root_fileid: fileid3) -> Result<fsinfo3, nfsstat3> {
        let dir_attr: nfs::post_op_attr = match self.getattr(root_fileid).await {
            Ok(v) => nfs::post_op_attr::attributes(v),
            Err(_) => nfs::post_op_attr::Void,
        };

        let res = fsinfo3 {
            obj_attributes: dir_attr,
            rtmax: 1024 * 1024,
            rtpref: 1024 * 124,
            rtmult: 1024 * 1024,
            wtmax: 1024 * 1024,
            wtpref: 1024 * 1024,
            wtmult: 1024 * 1024,
            dtpref: 1024 * 1024,
            maxfilesize: 128 * 1024 * 1024 * 1024,
            time_delta: nfs::nfstime3 {
                seconds: 0,
                nseconds: 1000000,
            },
            properties: nfs::FSF_SYMLINK | nfs::FSF_HOMOGENEOUS | nfs::FSF_CANSETTIME,
        };
        Ok(res)
    }

    /// PALISADE PATCH (see PATCHES.md): dynamic file system information (FSSTAT,
    /// RFC 1813 §3.3.18). The default answers the numbers nfsserve 0.11 hard-coded.
    async fn fsstat(&self, root_fileid: fileid3) -> Result<fsstat3, nfsstat3> {
        let obj_attributes: nfs::post_op_attr = match self.getattr(root_fileid).await {
            Ok(v) => nfs::post_op_attr::attributes(v),
            Err(_) => nfs::post_op_attr::Void,
        };
        Ok(fsstat3 {
            obj_attributes,
            tbytes: 1024 * 1024 * 1024 * 1024,
            fbytes: 1024 * 1024 * 1024 * 1024,
            abytes: 1024 * 1024 * 1024 * 1024,
            tfiles: 1024 * 1024 * 1024,
            ffiles: 1024 * 1024 * 1024,
            afiles: 1024 * 1024 * 1024,
            invarsec: u32::MAX,
        })
    }

    /// Converts the fileid to an opaque NFS file handle. Optional.
    fn id_to_fh(&self, id: fileid3) -> nfs_fh3 {
        let gennum = get_generation_number();
        let mut ret: Vec<u8> = Vec::new();
        ret.extend_from_slice(&gennum.to_le_bytes());
        ret.extend_from_slice(&id.to_le_bytes());
        nfs_fh3 { data: ret }
    }
    /// Converts an opaque NFS file handle to a fileid.  Optional.
    fn fh_to_id(&self, id: &nfs_fh3) -> Result<fileid3, nfsstat3> {
        if id.data.len() != 16 {
            return Err(nfsstat3::NFS3ERR_BADHANDLE);
        }
        let gen = u64::from_le_bytes(id.data[0..8].try_into().unwrap());
        let id = u64::from_le_bytes(id.data[8..16].try_into().unwrap());
        let gennum = get_generation_number();
        match gen.cmp(&gennum) {
            Ordering::Less => Err(nfsstat3::NFS3ERR_STALE),
            Ordering::Greater => Err(nfsstat3::NFS3ERR_BADHANDLE),
            Ordering::Equal => Ok(id),
        }
    }
    /// Converts a complete path to a fileid.  Optional.
    /// The default implementation walks the directory structure with lookup()
    async fn path_to_id(&self, path: &[u8]) -> Result<fileid3, nfsstat3> {
        let splits = path.split(|&r| r == b'/');
        let mut fid = self.root_dir();
        for component in splits {
            if component.is_empty() {
                continue;
            }
            fid = self.lookup(fid, &component.into()).await?;
        }
        Ok(fid)
    }

    fn serverid(&self) -> cookieverf3 {
        let gennum = get_generation_number();
        gennum.to_le_bytes()
    }
}
