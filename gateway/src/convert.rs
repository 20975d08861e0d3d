//! Conversions between Palisade's wire types (`palisade_wire::fs`) and nfsserve's XDR
//! types (RFC 1813 §2.5 `fattr3`, §2.6 `sattr3`, §2.6 `nfsstat3`).

use nfsserve::nfs::{
    fattr3, ftype3, nfsstat3, nfstime3, sattr3, set_atime, set_gid3, set_mode3, set_mtime,
    set_size3, set_uid3, specdata3,
};
use palisade_wire::fs::{Attr, FileType, FsError, SetAttr, SetTime, Timestamp};

/// `FsError` → `nfsstat3`: one NFS status per error, with the same meaning
/// (RFC 1813 §2.6).
pub fn nfsstat(error: FsError) -> nfsstat3 {
    match error {
        FsError::Perm => nfsstat3::NFS3ERR_PERM,
        FsError::NoEnt => nfsstat3::NFS3ERR_NOENT,
        FsError::Io => nfsstat3::NFS3ERR_IO,
        FsError::Access => nfsstat3::NFS3ERR_ACCES,
        FsError::Exist => nfsstat3::NFS3ERR_EXIST,
        FsError::XDev => nfsstat3::NFS3ERR_XDEV,
        FsError::NotDir => nfsstat3::NFS3ERR_NOTDIR,
        FsError::IsDir => nfsstat3::NFS3ERR_ISDIR,
        FsError::Inval => nfsstat3::NFS3ERR_INVAL,
        FsError::FBig => nfsstat3::NFS3ERR_FBIG,
        FsError::NoSpc => nfsstat3::NFS3ERR_NOSPC,
        FsError::Rofs => nfsstat3::NFS3ERR_ROFS,
        FsError::NameTooLong => nfsstat3::NFS3ERR_NAMETOOLONG,
        FsError::NotEmpty => nfsstat3::NFS3ERR_NOTEMPTY,
        FsError::Stale => nfsstat3::NFS3ERR_STALE,
        FsError::BadHandle => nfsstat3::NFS3ERR_BADHANDLE,
        FsError::NotSync => nfsstat3::NFS3ERR_NOT_SYNC,
        FsError::NotSupp => nfsstat3::NFS3ERR_NOTSUPP,
        FsError::ServerFault => nfsstat3::NFS3ERR_SERVERFAULT,
    }
}

/// `nfsstat3` → `FsError`, the inverse of [`nfsstat`]. `None` for `NFS3_OK` and for the
/// statuses no file-system operation produces (NXIO, NODEV, MLINK, DQUOT, REMOTE,
/// BAD_COOKIE, TOOSMALL, BADTYPE, JUKEBOX).
pub fn fs_error(status: nfsstat3) -> Option<FsError> {
    Some(match status {
        nfsstat3::NFS3ERR_PERM => FsError::Perm,
        nfsstat3::NFS3ERR_NOENT => FsError::NoEnt,
        nfsstat3::NFS3ERR_IO => FsError::Io,
        nfsstat3::NFS3ERR_ACCES => FsError::Access,
        nfsstat3::NFS3ERR_EXIST => FsError::Exist,
        nfsstat3::NFS3ERR_XDEV => FsError::XDev,
        nfsstat3::NFS3ERR_NOTDIR => FsError::NotDir,
        nfsstat3::NFS3ERR_ISDIR => FsError::IsDir,
        nfsstat3::NFS3ERR_INVAL => FsError::Inval,
        nfsstat3::NFS3ERR_FBIG => FsError::FBig,
        nfsstat3::NFS3ERR_NOSPC => FsError::NoSpc,
        nfsstat3::NFS3ERR_ROFS => FsError::Rofs,
        nfsstat3::NFS3ERR_NAMETOOLONG => FsError::NameTooLong,
        nfsstat3::NFS3ERR_NOTEMPTY => FsError::NotEmpty,
        nfsstat3::NFS3ERR_STALE => FsError::Stale,
        nfsstat3::NFS3ERR_BADHANDLE => FsError::BadHandle,
        nfsstat3::NFS3ERR_NOT_SYNC => FsError::NotSync,
        nfsstat3::NFS3ERR_NOTSUPP => FsError::NotSupp,
        nfsstat3::NFS3ERR_SERVERFAULT => FsError::ServerFault,
        _ => return None,
    })
}

pub fn nfstime(t: Timestamp) -> nfstime3 {
    nfstime3 {
        seconds: t.seconds,
        nseconds: t.nanos,
    }
}

pub fn timestamp(t: nfstime3) -> Timestamp {
    Timestamp {
        seconds: t.seconds,
        nanos: t.nseconds,
    }
}

/// `Attr` → `fattr3`. `fsid` is the export id, so that every replica reports the same
/// file system (RFC 1813 §2.5: fsid identifies the file system on the server).
pub fn fattr(attr: &Attr, fsid: u64) -> fattr3 {
    fattr3 {
        ftype: match attr.file_type {
            FileType::Regular => ftype3::NF3REG,
            FileType::Directory => ftype3::NF3DIR,
            FileType::Symlink => ftype3::NF3LNK,
        },
        mode: attr.mode,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        size: attr.size,
        used: attr.used,
        rdev: specdata3::default(),
        fsid,
        fileid: attr.fileid,
        atime: nfstime(attr.atime),
        mtime: nfstime(attr.mtime),
        ctime: nfstime(attr.ctime),
    }
}

/// `sattr3` → `SetAttr` (RFC 1813 §2.6 `sattr3`, `time_how`).
pub fn set_attr(s: &sattr3) -> SetAttr {
    SetAttr {
        mode: match s.mode {
            set_mode3::mode(m) => Some(m),
            set_mode3::Void => None,
        },
        uid: match s.uid {
            set_uid3::uid(u) => Some(u),
            set_uid3::Void => None,
        },
        gid: match s.gid {
            set_gid3::gid(g) => Some(g),
            set_gid3::Void => None,
        },
        size: match s.size {
            set_size3::size(n) => Some(n),
            set_size3::Void => None,
        },
        atime: match s.atime {
            set_atime::DONT_CHANGE => SetTime::DontChange,
            set_atime::SET_TO_SERVER_TIME => SetTime::ServerTime,
            set_atime::SET_TO_CLIENT_TIME(t) => SetTime::ClientTime(timestamp(t)),
        },
        mtime: match s.mtime {
            set_mtime::DONT_CHANGE => SetTime::DontChange,
            set_mtime::SET_TO_SERVER_TIME => SetTime::ServerTime,
            set_mtime::SET_TO_CLIENT_TIME(t) => SetTime::ClientTime(timestamp(t)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [FsError; 19] = [
        FsError::Perm,
        FsError::NoEnt,
        FsError::Io,
        FsError::Access,
        FsError::Exist,
        FsError::XDev,
        FsError::NotDir,
        FsError::IsDir,
        FsError::Inval,
        FsError::FBig,
        FsError::NoSpc,
        FsError::Rofs,
        FsError::NameTooLong,
        FsError::NotEmpty,
        FsError::Stale,
        FsError::BadHandle,
        FsError::NotSync,
        FsError::NotSupp,
        FsError::ServerFault,
    ];

    #[test]
    fn errors_map_to_their_rfc_1813_codes_and_back() {
        let codes: Vec<u32> = ALL.iter().map(|e| nfsstat(*e) as u32).collect();
        assert_eq!(
            codes,
            vec![
                1, 2, 5, 13, 17, 18, 20, 21, 22, 27, 28, 30, 63, 66, 70, 10001, 10002, 10004, 10006
            ]
        );
        for e in ALL {
            assert_eq!(fs_error(nfsstat(e)), Some(e));
        }
        assert_eq!(fs_error(nfsstat3::NFS3_OK), None);
        assert_eq!(fs_error(nfsstat3::NFS3ERR_JUKEBOX), None);
    }

    #[test]
    fn sattr_maps_every_field() {
        let s = sattr3 {
            mode: set_mode3::mode(0o640),
            uid: set_uid3::uid(7),
            gid: set_gid3::Void,
            size: set_size3::size(99),
            atime: set_atime::SET_TO_SERVER_TIME,
            mtime: set_mtime::SET_TO_CLIENT_TIME(nfstime3 {
                seconds: 5,
                nseconds: 6,
            }),
        };
        assert_eq!(
            set_attr(&s),
            SetAttr {
                mode: Some(0o640),
                uid: Some(7),
                gid: None,
                size: Some(99),
                atime: SetTime::ServerTime,
                mtime: SetTime::ClientTime(Timestamp {
                    seconds: 5,
                    nanos: 6
                }),
            }
        );
        assert_eq!(set_attr(&sattr3::default()), SetAttr::default());
    }

    #[test]
    fn attr_maps_type_and_times() {
        let attr = Attr {
            file_type: FileType::Symlink,
            mode: 0o777,
            nlink: 1,
            uid: 1,
            gid: 2,
            size: 3,
            used: 4,
            fileid: 42,
            atime: Timestamp {
                seconds: 1,
                nanos: 2,
            },
            mtime: Timestamp {
                seconds: 3,
                nanos: 4,
            },
            ctime: Timestamp {
                seconds: 5,
                nanos: 6,
            },
        };
        let f = fattr(&attr, 0xabc);
        assert!(matches!(f.ftype, ftype3::NF3LNK));
        assert_eq!(
            (f.mode, f.nlink, f.uid, f.gid, f.size, f.used, f.fileid, f.fsid),
            (0o777, 1, 1, 2, 3, 4, 42, 0xabc)
        );
        assert_eq!((f.mtime.seconds, f.mtime.nseconds), (3, 4));
        assert_eq!((f.ctime.seconds, f.ctime.nseconds), (5, 6));
    }
}
