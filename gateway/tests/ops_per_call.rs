//! How many file-system operations one NFS call costs, through the real NFS front end
//! (patched nfsserve + `PalisadeNfs`) and a real client.
//!
//! Through a replicated service every operation is one ordered request, so the front end
//! must send only the operation itself and leave out the GETATTRs that nfsserve makes
//! just for the optional weak cache consistency attributes (RFC 1813 §2.6); through the
//! local service those GETATTRs are cheap and the replies carry full wcc data.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod nfs_checks;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nfs3_client::nfs3_types::nfs3::{
    diropargs3, nfs_fh3, nfsstat3, stable_how, LOOKUP3args, Nfs3Option, Nfs3Result, READ3args,
    READLINK3args, WRITE3args, WRITE3resok,
};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs_checks::{mode, Endpoint, Nfs};
use palisade_execution::{FileSystem, FsConfig, MemStore};
use palisade_gateway::{FileService, GatewayError, LocalFileService, NfsServer};
use palisade_wire::fs::{FsOp, FsResult};

/// The local service, recording the kind of every operation it is asked, and claiming
/// whatever `cheap` says about GETATTR.
struct Recording {
    inner: LocalFileService,
    cheap: bool,
    seen: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl FileService for Recording {
    async fn call(&self, op: FsOp) -> FsResult {
        let name = format!("{op:?}");
        let kind = name
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_string();
        self.seen.lock().unwrap().push(kind);
        self.inner.call(op).await
    }
    fn cheap_getattr(&self) -> bool {
        self.cheap
    }
}

async fn serve(cheap: bool) -> (NfsServer, Nfs, Arc<Mutex<Vec<String>>>) {
    let inner = LocalFileService::start(|| {
        FileSystem::open(MemStore::new(), FsConfig::default()).map_err(|e| GatewayError::OpenData {
            dir: PathBuf::from("<memory>"),
            source: Box::new(e),
        })
    })
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = Recording {
        inner,
        cheap,
        seen: seen.clone(),
    };
    let server = NfsServer::bind(service, "127.0.0.1:0".parse().unwrap(), "ops-per-call")
        .await
        .unwrap();
    let nfs = Nfs::connect(&Endpoint::from_addr(server.local_addr())).await;
    seen.lock().unwrap().clear(); // whatever MOUNT asked
    (server, nfs, seen)
}

/// The operations recorded since the last call, emptied.
fn take(seen: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *seen.lock().unwrap())
}

/// A FILE_SYNC WRITE of b"hello" at offset 0; the whole reply.
async fn write_hello(nfs: &mut Nfs, file: &nfs_fh3) -> WRITE3resok {
    let args = WRITE3args {
        file: file.clone(),
        offset: 0,
        count: 5,
        stable: stable_how::FILE_SYNC,
        data: Opaque::borrowed(b"hello"),
    };
    let Nfs3Result::Ok(wrote) = nfs.conn().write(&args).await.unwrap() else {
        panic!("write failed")
    };
    wrote
}

#[tokio::test]
async fn a_costly_service_gets_one_operation_per_call() {
    let (server, mut nfs, seen) = serve(false).await;
    let root = nfs.root.clone();

    let dir = nfs.mkdir(&root, b"d").await.unwrap();
    assert_eq!(take(&seen), ["Mkdir"]);
    let file = nfs
        .create(
            &dir,
            b"f",
            nfs3_client::nfs3_types::nfs3::createhow3::UNCHECKED(mode(0o644)),
        )
        .await
        .unwrap();
    assert_eq!(take(&seen), ["Create"]);

    let wrote = write_hello(&mut nfs, &file).await;
    assert_eq!(take(&seen), ["Write"]);

    // GUARDED: the existence check is part of the one Create (PATCHES.md §8), so an
    // existing name is refused without a LOOKUP first, and its file is left alone.
    let guarded = || nfs3_client::nfs3_types::nfs3::createhow3::GUARDED(mode(0o644));
    nfs.create(&dir, b"g", guarded()).await.unwrap();
    assert_eq!(take(&seen), ["Create"]);
    assert_eq!(
        nfs.create(&dir, b"f", guarded()).await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    assert_eq!(take(&seen), ["Create"]);
    assert_eq!(nfs.getattr(&file).await.unwrap().size, 5);
    nfs.remove(&dir, b"g").await.unwrap();
    take(&seen);
    // wcc: no pre-operation attributes, but the post-operation ones from the WRITE itself.
    assert!(matches!(wrote.file_wcc.before, Nfs3Option::None));
    let Nfs3Option::Some(after) = wrote.file_wcc.after else {
        panic!("WRITE reply without post-operation attributes")
    };
    assert_eq!(after.size, 5);

    let args = LOOKUP3args {
        what: diropargs3 {
            dir: dir.clone(),
            name: b"f".to_vec().into(),
        },
    };
    let Nfs3Result::Ok(found) = nfs.conn().lookup(&args).await.unwrap() else {
        panic!("lookup failed")
    };
    assert_eq!(take(&seen), ["Lookup"]);
    // The object's attributes come with the one LOOKUP operation.
    let Nfs3Option::Some(attr) = found.obj_attributes else {
        panic!("LOOKUP reply without the object's attributes")
    };
    assert_eq!(attr.size, 5);
    assert!(matches!(found.dir_attributes, Nfs3Option::None));

    // READDIRPLUS and READDIR: the directory's attributes (and the cookie verifier nfsserve
    // makes from its mtime) come with the one ReadDir operation (PATCHES.md §9).
    let (entries, eof, verf) = nfs
        .readdirplus(&dir, 0, Default::default(), 4096, 16 * 1024)
        .await
        .unwrap();
    assert_eq!(take(&seen), ["ReadDir"]);
    assert!(eof && entries.iter().any(|e| e.name == b"f"));
    assert_ne!(
        verf,
        Default::default(),
        "no directory attributes came back"
    );
    let (entries, eof, plain_verf) = nfs
        .readdir(&dir, 0, Default::default(), 4096)
        .await
        .unwrap();
    assert_eq!(take(&seen), ["ReadDir"]);
    assert!(eof && entries.iter().any(|(_, name, _)| name == b"f"));
    assert_eq!(plain_verf, verf);

    // READLINK: the link's attributes come with its target (PATCHES.md §13).
    let link = nfs.symlink(&dir, b"l", b"f").await.unwrap();
    take(&seen);
    let args = READLINK3args {
        symlink: link.clone(),
    };
    let Nfs3Result::Ok(read_link) = nfs.conn().readlink(&args).await.unwrap() else {
        panic!("readlink failed")
    };
    assert_eq!(take(&seen), ["ReadLink"]);
    assert_eq!(read_link.data.0.as_ref(), b"f");
    assert!(matches!(read_link.symlink_attributes, Nfs3Option::Some(a) if a.size == 1));
    nfs.remove(&dir, b"l").await.unwrap();
    take(&seen);

    let args = READ3args {
        file: file.clone(),
        offset: 0,
        count: 100,
    };
    let Nfs3Result::Ok(read) = nfs.conn().read(&args).await.unwrap() else {
        panic!("read failed")
    };
    assert_eq!(take(&seen), ["Read"]);
    assert_eq!(read.data.as_ref(), b"hello");
    assert!(read.eof);
    assert!(matches!(read.file_attributes, Nfs3Option::Some(a) if a.size == 5));

    nfs.setattr(&file, mode(0o600)).await.unwrap();
    assert_eq!(take(&seen), ["SetAttr"]);
    nfs.rename(&dir, b"f", &dir, b"g").await.unwrap();
    assert_eq!(take(&seen), ["Rename"]);
    nfs.remove(&dir, b"g").await.unwrap();
    assert_eq!(take(&seen), ["Remove"]);
    // A guarded SETATTR is one SetAttr that compares the ctime itself (RFC 1813 §3.3.2,
    // PATCHES.md §10); a stale guard is NOT_SYNC and changes nothing.
    let then = nfs.getattr(&dir).await.unwrap().ctime;
    take(&seen);
    nfs.setattr_guarded(&dir, mode(0o700), then).await.unwrap();
    assert_eq!(take(&seen), ["SetAttr"]);
    assert_eq!(
        nfs.setattr_guarded(&dir, mode(0o755), then).await,
        Err(nfsstat3::NFS3ERR_NOT_SYNC)
    );
    assert_eq!(take(&seen), ["SetAttr"]);
    assert_eq!(nfs.getattr(&dir).await.unwrap().mode & 0o7777, 0o700);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_cheap_service_gets_full_cache_consistency_data() {
    let (server, mut nfs, seen) = serve(true).await;
    let root = nfs.root.clone();
    let file = nfs.new_file(&root, b"f").await;
    take(&seen);

    let wrote = write_hello(&mut nfs, &file).await;
    // WRITE never asks for pre-operation attributes (PATCHES.md §7: in the local service
    // that GETATTR would wait for the previous batch's fsync).
    assert_eq!(take(&seen), ["Write"]);
    assert!(matches!(wrote.file_wcc.before, Nfs3Option::None));
    assert!(matches!(wrote.file_wcc.after, Nfs3Option::Some(a) if a.size == 5));

    // Other operations carry full wcc data from a cheap service.
    nfs.rename(&root, b"f", &root, b"g").await.unwrap();
    assert_eq!(
        take(&seen),
        ["GetAttr", "GetAttr", "Rename", "GetAttr", "GetAttr"]
    );
    nfs.remove(&root, b"g").await.unwrap();
    assert_eq!(take(&seen), ["GetAttr", "Remove", "GetAttr"]);
    server.stop().await.unwrap();
}
