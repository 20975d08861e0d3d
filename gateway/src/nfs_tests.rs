//! Tests of the NFS adapter's mapping (one NFS call → one FsOp, errors → nfsstat3,
//! handles) against a scripted fake service.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nfsserve::nfs::{nfs_fh3, nfsstat3, sattr3, set_mode3};
use nfsserve::vfs::NFSFileSystem;
use palisade_wire::fs::{
    Attr, CreateHow, DirEntry, FileType, FsError, FsInfo, FsOp, FsReply, FsResult, FsStat, SetAttr,
    Timestamp,
};

use crate::file_service::FileService;
use crate::handle::HandleCodec;
use crate::nfs::PalisadeNfs;

type Script = Box<dyn Fn(&FsOp) -> FsResult + Send + Sync>;

/// Records every op and answers from a script.
struct Fake {
    seen: Arc<Mutex<Vec<FsOp>>>,
    script: Script,
}

#[async_trait]
impl FileService for Fake {
    async fn call(&self, op: FsOp) -> FsResult {
        self.seen.lock().unwrap().push(op.clone());
        (self.script)(&op)
    }
}

fn adapter(
    script: impl Fn(&FsOp) -> FsResult + Send + Sync + 'static,
) -> (PalisadeNfs<Fake>, Arc<Mutex<Vec<FsOp>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        seen: seen.clone(),
        script: Box::new(script),
    };
    (PalisadeNfs::new(fake, "test-export"), seen)
}

/// Attributes of a fresh inode, for fake replies (also used by `executor_tests`).
pub(crate) fn attr(id: u64, file_type: FileType) -> Attr {
    Attr {
        file_type,
        mode: 0o644,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 0,
        used: 0,
        fileid: id,
        atime: Timestamp::default(),
        mtime: Timestamp::default(),
        ctime: Timestamp::default(),
    }
}

fn code(s: nfsstat3) -> u32 {
    s as u32
}

#[test]
fn handles_are_stable_and_forged_ones_are_refused_and_counted() {
    let (nfs, _) = adapter(|_| Err(FsError::Io));
    let fh = nfs.id_to_fh(42);
    assert_eq!(fh.data, HandleCodec::new("test-export").encode(42));
    assert_eq!(nfs.fh_to_id(&fh).unwrap(), 42);
    let (again, _) = adapter(|_| Err(FsError::Io));
    assert_eq!(again.id_to_fh(42).data, fh.data);
    assert_eq!(again.serverid(), nfs.serverid());

    let forged = [
        nfs_fh3 { data: vec![] },
        nfs_fh3 { data: vec![7; 16] },
        nfs_fh3 {
            data: HandleCodec::new("elsewhere").encode(42),
        },
    ];
    for fh in &forged {
        assert_eq!(code(nfs.fh_to_id(fh).unwrap_err()), 10001);
    }
    assert_eq!(nfs.stats().snapshot().rejected_handles, 3);
}

#[tokio::test]
async fn each_call_is_one_op_with_mapped_arguments() {
    let (nfs, seen) = adapter(|op| match op {
        FsOp::Create { .. } | FsOp::Mkdir { .. } | FsOp::Symlink { .. } => Ok(FsReply::Created {
            id: 9,
            attr: attr(9, FileType::Regular),
        }),
        FsOp::Lookup { .. } => Ok(FsReply::Lookup {
            id: 5,
            attr: attr(5, FileType::Regular),
        }),
        FsOp::Read { .. } => Ok(FsReply::Read {
            data: b"abc".to_vec(),
            eof: true,
            attr: attr(5, FileType::Regular),
        }),
        FsOp::Rename { .. } => Ok(FsReply::Done),
        _ => Err(FsError::NotSupp),
    });
    let s = sattr3 {
        mode: set_mode3::mode(0o600),
        ..sattr3::default()
    };
    let (id, fattr) = nfs.create(1, &b"f".to_vec().into(), s).await.unwrap();
    assert_eq!(
        (id, fattr.fileid, fattr.fsid),
        (9, 9, nfs.handles().export_id())
    );
    nfs.create_exclusive(1, &b"g".to_vec().into())
        .await
        .unwrap();
    nfs.mkdir(1, &b"d".to_vec().into()).await.unwrap();
    // The patched handlers' calls: the verifier and MKDIR's attributes reach the file
    // system (PATCHES.md §11), GUARDED is one Create (§8).
    nfs.create_exclusive_verf(1, &b"x".to_vec().into(), [7; 8])
        .await
        .unwrap();
    nfs.mkdir_attr(1, &b"p".to_vec().into(), s).await.unwrap();
    nfs.create_guarded(1, &b"q".to_vec().into(), s)
        .await
        .unwrap();
    nfs.symlink(
        1,
        &b"l".to_vec().into(),
        &b"/t".to_vec().into(),
        &sattr3::default(),
    )
    .await
    .unwrap();
    assert_eq!(nfs.lookup(1, &b"f".to_vec().into()).await.unwrap(), 5);
    assert_eq!(nfs.read(5, 10, 3).await.unwrap(), (b"abc".to_vec(), true));
    nfs.rename(1, &b"f".to_vec().into(), 2, &b"h".to_vec().into())
        .await
        .unwrap();
    let mode = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            FsOp::Create {
                dir: 1,
                name: b"f".to_vec(),
                how: CreateHow::Unchecked(mode)
            },
            FsOp::Create {
                dir: 1,
                name: b"g".to_vec(),
                how: CreateHow::Guarded(SetAttr::default())
            },
            FsOp::Mkdir {
                dir: 1,
                name: b"d".to_vec(),
                attr: SetAttr::default()
            },
            FsOp::Create {
                dir: 1,
                name: b"x".to_vec(),
                how: CreateHow::Exclusive([7; 8])
            },
            FsOp::Mkdir {
                dir: 1,
                name: b"p".to_vec(),
                attr: mode
            },
            FsOp::Create {
                dir: 1,
                name: b"q".to_vec(),
                how: CreateHow::Guarded(mode)
            },
            FsOp::Symlink {
                dir: 1,
                name: b"l".to_vec(),
                target: b"/t".to_vec(),
                attr: SetAttr::default()
            },
            FsOp::Lookup {
                dir: 1,
                name: b"f".to_vec()
            },
            FsOp::Read {
                id: 5,
                offset: 10,
                count: 3
            },
            FsOp::Rename {
                from_dir: 1,
                from_name: b"f".to_vec(),
                to_dir: 2,
                to_name: b"h".to_vec()
            },
        ]
    );
}

#[tokio::test]
async fn errors_map_exactly_and_are_counted() {
    let (nfs, _) = adapter(|op| match op {
        FsOp::Lookup { .. } => Err(FsError::NoEnt),
        FsOp::GetAttr { .. } => Err(FsError::Stale),
        FsOp::Write { .. } => Err(FsError::NoSpc),
        _ => Err(FsError::NameTooLong),
    });
    assert_eq!(
        code(nfs.lookup(1, &b"x".to_vec().into()).await.unwrap_err()),
        2
    );
    assert_eq!(code(nfs.getattr(77).await.unwrap_err()), 70);
    assert_eq!(code(nfs.write(3, 0, b"x").await.unwrap_err()), 28);
    assert_eq!(
        code(nfs.mkdir(1, &vec![b'a'; 300].into()).await.unwrap_err()),
        63
    );
    let stats = nfs.stats().snapshot();
    assert_eq!((stats.fs_errors, stats.server_errors), (4, 1));
}

#[tokio::test]
async fn a_reply_of_the_wrong_kind_is_a_server_fault() {
    let (nfs, _) = adapter(|_| Ok(FsReply::Done));
    assert_eq!(code(nfs.getattr(1).await.unwrap_err()), 10006);
    assert_eq!(nfs.stats().snapshot().unexpected_replies, 1);
}

#[tokio::test]
async fn remove_and_rmdir_are_one_operation_each() {
    let (nfs, seen) = adapter(|op| match op {
        FsOp::Remove { name, .. } if name == b"dir" => Err(FsError::IsDir),
        FsOp::Rmdir { name, .. } if name == b"full" => Err(FsError::NotEmpty),
        FsOp::Remove { name, .. } if name == b"gone" => Err(FsError::NoEnt),
        _ => Ok(FsReply::Done),
    });
    nfs.remove(1, &b"file".to_vec().into()).await.unwrap();
    // REMOVE of a directory is refused (NFS3ERR_ISDIR), not turned into an RMDIR.
    assert_eq!(
        code(nfs.remove(1, &b"dir".to_vec().into()).await.unwrap_err()),
        21
    );
    nfs.rmdir(1, &b"empty".to_vec().into()).await.unwrap();
    assert_eq!(
        code(nfs.rmdir(1, &b"full".to_vec().into()).await.unwrap_err()),
        66
    );
    assert_eq!(
        code(nfs.remove(1, &b"gone".to_vec().into()).await.unwrap_err()),
        2
    );
    let kinds: Vec<&'static str> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|op| match op {
            FsOp::Remove { .. } => "remove",
            FsOp::Rmdir { .. } => "rmdir",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["remove", "remove", "rmdir", "rmdir", "remove"]);
    assert_eq!(nfs.stats().snapshot().fs_errors, 3);
}

#[tokio::test]
async fn readdir_passes_the_cookie_and_maps_entries() {
    let (nfs, seen) = adapter(|op| match op {
        FsOp::ReadDir { after, .. } => Ok(FsReply::ReadDir {
            entries: vec![DirEntry {
                id: after + 1,
                name: b"n".to_vec(),
                attr: attr(after + 1, FileType::Directory),
            }],
            end: false,
            dir: attr(1, FileType::Directory),
        }),
        _ => Err(FsError::Io),
    });
    let page = nfs.readdir(1, 40, 0).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(
        (page.entries[0].fileid, page.entries[0].name.0.clone()),
        (41, b"n".to_vec())
    );
    assert!(!page.end);
    nfs.readdir(1, 0, usize::MAX).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            FsOp::ReadDir {
                dir: 1,
                after: 40,
                max_entries: 1
            },
            FsOp::ReadDir {
                dir: 1,
                after: 0,
                max_entries: u32::MAX
            },
        ]
    );
}

#[tokio::test]
async fn fsinfo_reports_the_file_systems_limits() {
    let (nfs, _) = adapter(|op| match op {
        FsOp::FsInfo { .. } => Ok(FsReply::FsInfo(FsInfo {
            read_max: 1 << 20,
            read_pref: 1 << 16,
            write_max: 1 << 20,
            write_pref: 1 << 17,
            dir_pref: 8192,
            max_file_size: 1 << 40,
            time_delta_nanos: 1,
        })),
        FsOp::GetAttr { id } => Ok(FsReply::Attr(attr(*id, FileType::Directory))),
        _ => Err(FsError::Io),
    });
    let info = nfs.fsinfo(1).await.unwrap();
    assert_eq!(
        (
            info.rtmax,
            info.rtpref,
            info.wtmax,
            info.wtpref,
            info.dtpref
        ),
        (1 << 20, 1 << 16, 1 << 20, 1 << 17, 8192)
    );
    assert_eq!(info.maxfilesize, 1 << 40);
    assert_eq!((info.time_delta.seconds, info.time_delta.nseconds), (0, 1));
    assert_eq!(info.properties & nfsserve::nfs::FSF_LINK, 0);
}

#[tokio::test]
async fn fsstat_reports_the_file_systems_numbers() {
    let (nfs, _) = adapter(|op| match op {
        FsOp::FsStat { .. } => Ok(FsReply::FsStat(FsStat {
            total_bytes: 1000,
            free_bytes: 600,
            avail_bytes: 500,
            total_files: 50,
            free_files: 40,
            avail_files: 30,
        })),
        FsOp::GetAttr { id } => Ok(FsReply::Attr(attr(*id, FileType::Directory))),
        _ => Err(FsError::Io),
    });
    let s = nfs.fsstat(1).await.unwrap();
    assert_eq!(
        (s.tbytes, s.fbytes, s.abytes, s.tfiles, s.ffiles, s.afiles, s.invarsec),
        (1000, 600, 500, 50, 40, 30, 0)
    );
    let (failing, _) = adapter(|_| Err(FsError::Stale));
    assert_eq!(code(failing.fsstat(9).await.unwrap_err()), 70);
}
