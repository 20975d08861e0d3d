//! File-system operations and their replies (NFSv3 semantics, RFC 1813 §3.3).
//!
//! An [`FsOp`] is what the gateway turns one NFS call into; an [`FsResult`] is what the
//! file-system state machine answers. Both are plain data with a canonical encoding, so
//! the same operation executed by any replica on the same state yields the same bytes.
//! Nothing here carries a wall-clock time: times come from the agreed [`BatchContext`].

use serde::{Deserialize, Serialize};

/// A file id (the NFS `fileid3`). Ids are handed out from a counter that is part of the
/// replicated state, so every replica names a new file identically. 0 is never used.
pub type FileId = u64;

/// The id of the export's root directory.
pub const ROOT_ID: FileId = 1;

/// The longest name a directory entry may have, in bytes (NFS `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// The longest symlink target, in bytes (`PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// Time as NFS carries it (`nfstime3`): seconds and nanoseconds since the Unix epoch.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct Timestamp {
    pub seconds: u32,
    pub nanos: u32,
}

/// The non-deterministic inputs of one batch, fixed by whoever orders it (the unreplicated
/// gateway's executor, or the agreement primary) and identical on every replica.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchContext {
    /// Position of the batch in the total order (1, 2, 3, ...).
    pub sequence: u64,
    /// The agreed time of the batch; every time the batch writes (mtime, ctime, atime
    /// "set to server time") is this value.
    pub timestamp: Timestamp,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
}

/// File attributes (`fattr3`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub file_type: FileType,
    /// Permission bits only (the low 12 bits: setuid, setgid, sticky, rwx×3).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Bytes of storage actually used (holes excluded).
    pub used: u64,
    pub fileid: FileId,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
}

/// How SETATTR (and CREATE/MKDIR/SYMLINK) sets a time (`set_atime`, `set_mtime`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetTime {
    #[default]
    DontChange,
    /// "Server time": in Palisade, the batch's agreed timestamp.
    ServerTime,
    ClientTime(Timestamp),
}

/// The attributes a client asks to set (`sattr3`). `None` leaves a field alone.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Truncate or extend (with zeros) to this size.
    pub size: Option<u64>,
    pub atime: SetTime,
    pub mtime: SetTime,
}

/// CREATE's three modes (`createhow3`, RFC 1813 §3.3.8).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateHow {
    /// Create, or if the file exists, apply the attributes to it (size 0 truncates).
    Unchecked(SetAttr),
    /// Create; fail with `Exist` if the name exists.
    Guarded(SetAttr),
    /// Create atomically; a retransmission with the same verifier succeeds, any other
    /// existing entry fails with `Exist`.
    Exclusive([u8; 8]),
}

/// One file-system operation. Names are raw bytes, as NFS carries them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum FsOp {
    GetAttr {
        id: FileId,
    },
    /// `guard_ctime`: SETATTR's `sattrguard3` — fail with `NotSync` unless ctime matches.
    SetAttr {
        id: FileId,
        attr: SetAttr,
        guard_ctime: Option<Timestamp>,
    },
    Lookup {
        dir: FileId,
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
    },
    /// ACCESS: answers which of the `mask` bits (ACCESS3_* of RFC 1813) the file's type
    /// and mode allow. (Credentials never reach the file system through nfsserve.)
    Access {
        id: FileId,
        mask: u32,
    },
    Read {
        id: FileId,
        offset: u64,
        count: u32,
    },
    Write {
        id: FileId,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Create {
        dir: FileId,
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
        how: CreateHow,
    },
    Mkdir {
        dir: FileId,
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
        attr: SetAttr,
    },
    Symlink {
        dir: FileId,
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
        attr: SetAttr,
    },
    ReadLink {
        id: FileId,
    },
    /// Removes a non-directory.
    Remove {
        dir: FileId,
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
    },
    /// Removes an empty directory.
    Rmdir {
        dir: FileId,
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
    },
    Rename {
        from_dir: FileId,
        #[serde(with = "serde_bytes")]
        from_name: Vec<u8>,
        to_dir: FileId,
        #[serde(with = "serde_bytes")]
        to_name: Vec<u8>,
    },
    /// Lists `dir` in ascending file-id order, starting after the entry whose id is
    /// `after` (0: from the start), at most `max_entries` entries. File ids are the
    /// cookies: a listing is complete and exact across pages even while other entries
    /// come and go. `.` and `..` are not listed.
    ReadDir {
        dir: FileId,
        after: FileId,
        max_entries: u32,
    },
    FsStat {
        id: FileId,
    },
    FsInfo {
        id: FileId,
    },
}

impl FsOp {
    /// True if the operation never changes state (it still goes through the total order
    /// in replicated modes, so that reads see every earlier write).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            FsOp::GetAttr { .. }
                | FsOp::Lookup { .. }
                | FsOp::Access { .. }
                | FsOp::Read { .. }
                | FsOp::ReadLink { .. }
                | FsOp::ReadDir { .. }
                | FsOp::FsStat { .. }
                | FsOp::FsInfo { .. }
        )
    }
}

/// One directory entry of a READDIR reply.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub id: FileId,
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    pub attr: Attr,
}

/// FSSTAT's numbers (`FSSTAT3resok`), true for the current state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStat {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub avail_bytes: u64,
    pub total_files: u64,
    pub free_files: u64,
    pub avail_files: u64,
}

/// FSINFO's numbers (`FSINFO3resok`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfo {
    pub read_max: u32,
    pub read_pref: u32,
    pub write_max: u32,
    pub write_pref: u32,
    pub dir_pref: u32,
    pub max_file_size: u64,
    /// Granularity of stored times, in nanoseconds.
    pub time_delta_nanos: u32,
}

/// The successful answer to an [`FsOp`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum FsReply {
    /// GETATTR, SETATTR: the attributes after the operation.
    Attr(Attr),
    /// LOOKUP.
    Lookup {
        id: FileId,
        attr: Attr,
    },
    /// ACCESS: the granted subset of the asked mask.
    Access {
        granted: u32,
        attr: Attr,
    },
    /// READ. `eof` is true when the read reached the end of the file.
    Read {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        eof: bool,
        attr: Attr,
    },
    /// WRITE: bytes written (always all of them; every write is FILE_SYNC).
    Write {
        count: u32,
        attr: Attr,
    },
    /// CREATE, MKDIR, SYMLINK.
    Created {
        id: FileId,
        attr: Attr,
    },
    /// READLINK, with the link's attributes (the reply's `symlink_attributes`), so one
    /// operation answers the call.
    ReadLink {
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
        attr: Attr,
    },
    /// REMOVE, RMDIR, RENAME.
    Done,
    /// READDIR. `end` is true when the listing is complete; `dir` is the directory's own
    /// attributes in the state the entries were listed from (the reply's
    /// `dir_attributes`, and the cookie verifier nfsserve makes from its mtime), so one
    /// operation answers a READDIR call.
    ReadDir {
        entries: Vec<DirEntry>,
        end: bool,
        dir: Attr,
    },
    FsStat(FsStat),
    FsInfo(FsInfo),
}

/// NFS errors (`nfsstat3`) that a file-system operation can answer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FsError {
    #[error("not owner")]
    Perm,
    #[error("no such file or directory")]
    NoEnt,
    #[error("I/O error")]
    Io,
    #[error("permission denied")]
    Access,
    #[error("file exists")]
    Exist,
    #[error("cross-device link")]
    XDev,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("invalid argument")]
    Inval,
    #[error("file too large")]
    FBig,
    #[error("no space left on device")]
    NoSpc,
    #[error("read-only file system")]
    Rofs,
    #[error("file name too long")]
    NameTooLong,
    #[error("directory not empty")]
    NotEmpty,
    #[error("stale file handle")]
    Stale,
    #[error("illegal file handle")]
    BadHandle,
    #[error("update synchronization mismatch")]
    NotSync,
    #[error("operation not supported")]
    NotSupp,
    #[error("server fault")]
    ServerFault,
}

/// What every operation answers.
pub type FsResult = Result<FsReply, FsError>;

/// ACCESS3 mask bits (RFC 1813 §3.3.4): read data / read a directory.
pub const ACCESS3_READ: u32 = 0x0001;
/// Look up a name in a directory.
pub const ACCESS3_LOOKUP: u32 = 0x0002;
/// Rewrite existing file data or modify existing directory entries.
pub const ACCESS3_MODIFY: u32 = 0x0004;
/// Write new data or add directory entries.
pub const ACCESS3_EXTEND: u32 = 0x0008;
/// Delete an existing directory entry.
pub const ACCESS3_DELETE: u32 = 0x0010;
/// Execute a file (no meaning for a directory).
pub const ACCESS3_EXECUTE: u32 = 0x0020;
