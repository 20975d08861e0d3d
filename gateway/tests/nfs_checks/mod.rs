//! End-to-end NFS checks, written against an endpoint (host, port) only, so that every
//! Palisade mode (unreplicated today, replicated later) runs the SAME checks:
//!
//! ```ignore
//! #[path = "../../gateway/tests/nfs_checks/mod.rs"]
//! mod nfs_checks;
//! nfs_checks::check_all(&endpoint, "run1").await;
//! ```
//!
//! Every check works inside its own directory (named by the caller), so checks can share
//! one export. Status codes are RFC 1813's.

#![allow(dead_code)]
// Test support code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod client;

use std::collections::BTreeSet;

use nfs3_client::nfs3_types::nfs3::{
    createhow3, createverf3, ftype3, nfs_fh3, nfsstat3, stable_how,
};

pub use client::{fh, mode, pattern, size, Endpoint, Nfs};

/// Runs every check below (except the restart pair) in directories prefixed `prefix`.
pub async fn check_all(ep: &Endpoint, prefix: &str) {
    check_file_lifecycle(ep, &format!("{prefix}-life")).await;
    check_symlink(ep, &format!("{prefix}-link")).await;
    check_setattr(ep, &format!("{prefix}-attr")).await;
    check_guarded_create(ep, &format!("{prefix}-guard")).await;
    check_setattr_guard(ep, &format!("{prefix}-sync")).await;
    check_bad_names(ep, &format!("{prefix}-names")).await;
    check_forged_handles(ep).await;
    check_fsstat_fsinfo(ep).await;
    check_large_directory(ep, &format!("{prefix}-big"), 5000).await;
}

async fn workdir(nfs: &mut Nfs, name: &str) -> nfs_fh3 {
    let root = nfs.root.clone();
    nfs.mkdir(&root, name.as_bytes())
        .await
        .unwrap_or_else(|s| panic!("mkdir {name}: {s:?}"))
}

/// CREATE, WRITE (with a hole), READ, RENAME, REMOVE, MKDIR, RMDIR.
pub async fn check_file_lifecycle(ep: &Endpoint, dir: &str) {
    let mut nfs = Nfs::connect(ep).await;
    let d = workdir(&mut nfs, dir).await;
    let f = nfs.new_file(&d, b"f").await;
    assert_eq!(nfs.write(&f, 0, b"hello").await, Ok(5));
    assert_eq!(nfs.write(&f, 10, b"world").await, Ok(5));
    assert_eq!(nfs.read_all(&f, 4).await, b"hello\0\0\0\0\0world");
    assert_eq!(nfs.getattr(&f).await.unwrap().size, 15);
    // Reads past EOF return what exists and flag EOF.
    assert_eq!(nfs.read(&f, 12, 100).await, Ok((b"rld".to_vec(), true)));
    assert_eq!(nfs.read(&f, 100, 10).await, Ok((vec![], true)));
    // An UNSTABLE WRITE is answered FILE_SYNC (it is durable when answered), and COMMIT
    // answers with the same write verifier, so a client has nothing to resend.
    let (level, verf) = nfs.write_unstable(&f, 0, b"h").await.unwrap();
    assert_eq!(level, stable_how::FILE_SYNC);
    assert_eq!(nfs.commit(&f).await, Ok(verf));
    assert_eq!(nfs.read(&f, 0, 5).await, Ok((b"hello".to_vec(), false)));

    let id = nfs.getattr(&f).await.unwrap().fileid;
    nfs.rename(&d, b"f", &d, b"g").await.unwrap();
    assert_eq!(nfs.lookup(&d, b"f").await, Err(nfsstat3::NFS3ERR_NOENT));
    let g = nfs.lookup(&d, b"g").await.unwrap();
    assert_eq!(nfs.getattr(&g).await.unwrap().fileid, id);
    assert_eq!(nfs.read_all(&g, 1 << 20).await, b"hello\0\0\0\0\0world");

    // Rename into a subdirectory, then remove.
    let sub = nfs.mkdir(&d, b"sub").await.unwrap();
    assert_eq!(nfs.getattr(&sub).await.unwrap().type_, ftype3::NF3DIR);
    nfs.rename(&d, b"g", &sub, b"h").await.unwrap();
    assert_eq!(nfs.lookup(&d, b"g").await, Err(nfsstat3::NFS3ERR_NOENT));
    assert_eq!(nfs.rmdir(&d, b"sub").await, Err(nfsstat3::NFS3ERR_NOTEMPTY));
    nfs.remove(&sub, b"h").await.unwrap();
    assert_eq!(nfs.lookup(&sub, b"h").await, Err(nfsstat3::NFS3ERR_NOENT));
    // The old handle of a removed file is stale (RFC 1813 §2.3.3).
    assert_eq!(nfs.getattr(&g).await.err(), Some(nfsstat3::NFS3ERR_STALE));
    assert_eq!(nfs.remove(&sub, b"h").await, Err(nfsstat3::NFS3ERR_NOENT));
    nfs.rmdir(&d, b"sub").await.unwrap();
    assert_eq!(nfs.lookup(&d, b"sub").await, Err(nfsstat3::NFS3ERR_NOENT));
    let (entries, _) = nfs.list(&d, 8192, 32768).await;
    assert!(entries.is_empty(), "left over: {entries:?}");
}

/// SYMLINK + READLINK; READLINK of a regular file is INVAL.
pub async fn check_symlink(ep: &Endpoint, dir: &str) {
    let mut nfs = Nfs::connect(ep).await;
    let d = workdir(&mut nfs, dir).await;
    let target = b"../some/where/else.txt";
    let l = nfs.symlink(&d, b"l", target).await.unwrap();
    assert_eq!(nfs.readlink(&l).await.unwrap(), target);
    assert_eq!(nfs.getattr(&l).await.unwrap().type_, ftype3::NF3LNK);
    let again = nfs.lookup(&d, b"l").await.unwrap();
    assert_eq!(nfs.readlink(&again).await.unwrap(), target);
    let f = nfs.new_file(&d, b"plain").await;
    assert_eq!(nfs.readlink(&f).await, Err(nfsstat3::NFS3ERR_INVAL));
    assert_eq!(
        nfs.symlink(&d, b"l", b"x").await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
}

/// SETATTR: mode, truncate, extend (the extension reads as zeros).
pub async fn check_setattr(ep: &Endpoint, dir: &str) {
    let mut nfs = Nfs::connect(ep).await;
    let d = workdir(&mut nfs, dir).await;
    let f = nfs.new_file(&d, b"f").await;
    let data = pattern(7, 100);
    nfs.write_all(&f, &data, 64).await;
    nfs.setattr(&f, mode(0o600)).await.unwrap();
    assert_eq!(nfs.getattr(&f).await.unwrap().mode & 0o7777, 0o600);
    nfs.setattr(&f, mode(0o4755)).await.unwrap();
    assert_eq!(nfs.getattr(&f).await.unwrap().mode & 0o7777, 0o4755);

    nfs.setattr(&f, size(10)).await.unwrap();
    assert_eq!(nfs.getattr(&f).await.unwrap().size, 10);
    assert_eq!(nfs.read_all(&f, 1000).await, data[..10]);

    nfs.setattr(&f, size(70_000)).await.unwrap();
    assert_eq!(nfs.getattr(&f).await.unwrap().size, 70_000);
    let mut expect = data[..10].to_vec();
    expect.resize(70_000, 0);
    assert_eq!(nfs.read_all(&f, 4096).await, expect);

    // Size on a directory is refused (RFC 1813 §3.3.2).
    assert_eq!(nfs.setattr(&d, size(0)).await, Err(nfsstat3::NFS3ERR_ISDIR));
}

/// SETATTR with a ctime guard: a stale ctime → NOT_SYNC and nothing changes; the
/// current ctime → applied. (Needs the patched nfsserve: stock 0.11 applied the SETATTR
/// anyway and wrote two replies.)
pub async fn check_setattr_guard(ep: &Endpoint, dir: &str) {
    let mut nfs = Nfs::connect(ep).await;
    let d = workdir(&mut nfs, dir).await;
    let f = nfs.new_file(&d, b"f").await;
    let before = nfs.getattr(&f).await.unwrap();
    let mut stale = before.ctime;
    stale.nseconds = (stale.nseconds + 1) % 1_000_000_000;
    assert_eq!(
        nfs.setattr_guarded(&f, mode(0o600), stale).await,
        Err(nfsstat3::NFS3ERR_NOT_SYNC)
    );
    assert_eq!(nfs.getattr(&f).await.unwrap().mode & 0o7777, 0o644);
    // The connection is still in step (one reply per call).
    assert_eq!(nfs.getattr(&f).await.unwrap().fileid, before.fileid);
    nfs.setattr_guarded(&f, mode(0o600), before.ctime)
        .await
        .unwrap();
    assert_eq!(nfs.getattr(&f).await.unwrap().mode & 0o7777, 0o600);
}

/// GUARDED and EXCLUSIVE create of an existing name → EXIST; UNCHECKED → the same file.
pub async fn check_guarded_create(ep: &Endpoint, dir: &str) {
    let mut nfs = Nfs::connect(ep).await;
    let d = workdir(&mut nfs, dir).await;
    let f = nfs.new_file(&d, b"f").await;
    nfs.write(&f, 0, b"keep").await.unwrap();
    assert_eq!(
        nfs.create(&d, b"f", createhow3::GUARDED(mode(0o644))).await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    assert_eq!(
        nfs.create(&d, b"f", createhow3::EXCLUSIVE(createverf3([1; 8])))
            .await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    let again = nfs
        .create(&d, b"f", createhow3::UNCHECKED(mode(0o644)))
        .await
        .unwrap();
    assert_eq!(again, f);
    assert_eq!(nfs.read_all(&again, 100).await, b"keep");
    // EXCLUSIVE of a new name creates it.
    let e = nfs
        .create(&d, b"e", createhow3::EXCLUSIVE(createverf3([2; 8])))
        .await
        .unwrap();
    assert_eq!(nfs.getattr(&e).await.unwrap().size, 0);
    // The verifier reaches the file system (PATCHES.md §11): the same EXCLUSIVE create
    // again (a retransmission whose reply was lost) succeeds with the same file; another
    // client's verifier is EXIST.
    assert_eq!(
        nfs.create(&d, b"e", createhow3::EXCLUSIVE(createverf3([2; 8])))
            .await,
        Ok(e)
    );
    assert_eq!(
        nfs.create(&d, b"e", createhow3::EXCLUSIVE(createverf3([3; 8])))
            .await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    assert_eq!(nfs.mkdir(&d, b"f").await, Err(nfsstat3::NFS3ERR_EXIST));
    // MKDIR's attributes are applied (`mkdir -m 700`), REMOVE does not remove a
    // directory, RMDIR does.
    let private = nfs.mkdir_mode(&d, b"private", 0o700).await.unwrap();
    assert_eq!(nfs.getattr(&private).await.unwrap().mode & 0o7777, 0o700);
    assert_eq!(
        nfs.remove(&d, b"private").await,
        Err(nfsstat3::NFS3ERR_ISDIR)
    );
    nfs.rmdir(&d, b"private").await.unwrap();
    assert_eq!(
        nfs.lookup(&d, b"private").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );
}

/// Names the file system must refuse, with their RFC 1813 statuses.
pub async fn check_bad_names(ep: &Endpoint, dir: &str) {
    let mut nfs = Nfs::connect(ep).await;
    let d = workdir(&mut nfs, dir).await;
    let long = vec![b'a'; 256];
    let guarded = || createhow3::GUARDED(mode(0o644));
    assert_eq!(
        nfs.create(&d, b"", guarded()).await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        nfs.create(&d, b"a/b", guarded()).await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        nfs.create(&d, b"a\0b", guarded()).await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        nfs.create(&d, &long, guarded()).await,
        Err(nfsstat3::NFS3ERR_NAMETOOLONG)
    );
    assert_eq!(
        nfs.mkdir(&d, &long).await,
        Err(nfsstat3::NFS3ERR_NAMETOOLONG)
    );
    assert_eq!(nfs.mkdir(&d, b"x/y").await, Err(nfsstat3::NFS3ERR_INVAL));
    assert_eq!(nfs.mkdir(&d, b".").await, Err(nfsstat3::NFS3ERR_EXIST));
    assert_eq!(nfs.mkdir(&d, b"..").await, Err(nfsstat3::NFS3ERR_EXIST));
    assert_eq!(
        nfs.symlink(&d, b"", b"t").await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        nfs.lookup(&d, &long).await,
        Err(nfsstat3::NFS3ERR_NAMETOOLONG)
    );
    // 255 bytes is the limit, not over it.
    nfs.new_file(&d, &long[..255]).await;
    nfs.new_file(&d, b"ok").await;
    assert_eq!(
        nfs.rename(&d, b"ok", &d, b"..").await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        nfs.rename(&d, b"ok", &d, b"a/b").await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    // A directory is not a file, a file is not a directory.
    let f = nfs.lookup(&d, b"ok").await.unwrap();
    assert_eq!(nfs.lookup(&f, b"x").await, Err(nfsstat3::NFS3ERR_NOTDIR));
    assert_eq!(nfs.read(&d, 0, 10).await, Err(nfsstat3::NFS3ERR_ISDIR));
    // Every refusal left the directory as it was.
    let (entries, _) = nfs.list(&d, 8192, 65536).await;
    let names: BTreeSet<Vec<u8>> = entries.into_iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        BTreeSet::from([long[..255].to_vec(), b"ok".to_vec()])
    );
}

/// Forged handles: malformed → BADHANDLE; well-formed for a file that never existed →
/// STALE (or BADHANDLE in a mode whose handles carry more than the file id).
pub async fn check_forged_handles(ep: &Endpoint) {
    let mut nfs = Nfs::connect(ep).await;
    for bad in [vec![], vec![0u8; 8], vec![0xAB; 16], vec![0xFF; 64]] {
        assert_eq!(
            nfs.getattr(&fh(bad.clone())).await.err(),
            Some(nfsstat3::NFS3ERR_BADHANDLE),
            "handle {bad:?}"
        );
    }
    let mut flipped = nfs.root.data.to_vec();
    flipped[2] ^= 0x10;
    assert_eq!(
        nfs.getattr(&fh(flipped)).await.err(),
        Some(nfsstat3::NFS3ERR_BADHANDLE)
    );
    // Same layout as the root handle, with a file id nobody was given.
    let mut unknown = nfs.root.data.to_vec();
    let n = unknown.len();
    unknown[n - 8..].copy_from_slice(&0x00ff_ffff_ffff_fff0u64.to_be_bytes());
    let got = nfs.getattr(&fh(unknown.clone())).await.err();
    assert!(
        matches!(
            got,
            Some(nfsstat3::NFS3ERR_STALE) | Some(nfsstat3::NFS3ERR_BADHANDLE)
        ),
        "{got:?}"
    );
    let got = nfs.read(&fh(unknown), 0, 10).await.err();
    assert!(
        matches!(
            got,
            Some(nfsstat3::NFS3ERR_STALE) | Some(nfsstat3::NFS3ERR_BADHANDLE)
        ),
        "{got:?}"
    );
    // The connection still works after hostile handles.
    assert_eq!(
        nfs.getattr(&nfs.root.clone()).await.unwrap().type_,
        ftype3::NF3DIR
    );
}

/// FSSTAT and FSINFO answer with sane numbers.
pub async fn check_fsstat_fsinfo(ep: &Endpoint) {
    let mut nfs = Nfs::connect(ep).await;
    let stat = nfs.fsstat().await.unwrap();
    assert!(stat.tbytes > 0 && stat.fbytes <= stat.tbytes && stat.abytes <= stat.tbytes);
    assert!(stat.tfiles > 0 && stat.ffiles <= stat.tfiles);
    let info = nfs.fsinfo().await.unwrap();
    assert!(
        info.rtmax >= 64 * 1024 && info.wtmax >= 64 * 1024,
        "{info:?}"
    );
    assert!(info.rtpref <= info.rtmax && info.wtpref <= info.wtmax);
    assert!(info.maxfilesize >= 1 << 30);
    assert_ne!(info.properties & 0x0002, 0, "FSF_SYMLINK");
}

/// A directory of `n` entries, created over several connections at once, listed
/// completely and exactly via READDIRPLUS paging: every name once, ids and attributes
/// matching what CREATE returned.
pub async fn check_large_directory(ep: &Endpoint, dir: &str, n: usize) {
    let mut nfs = Nfs::connect(ep).await;
    let d = workdir(&mut nfs, dir).await;
    const WORKERS: usize = 8;
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let ep = ep.clone();
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let mut nfs = Nfs::connect(&ep).await;
            let mut made = Vec::new();
            for i in (w..n).step_by(WORKERS) {
                let name = format!("entry-{i:05}").into_bytes();
                let f = nfs.new_file(&d, &name).await;
                let id = nfs.getattr(&f).await.unwrap().fileid;
                made.push((name, id));
            }
            made
        }));
    }
    let mut expected = std::collections::BTreeMap::new();
    for t in tasks {
        for (name, id) in t.await.unwrap() {
            expected.insert(name, id);
        }
    }
    assert_eq!(expected.len(), n);

    // Small pages, so the listing takes many round trips.
    let (entries, pages) = nfs.list(&d, 4096, 16 * 1024).await;
    assert!(pages > 10, "only {pages} pages");
    let mut seen = BTreeSet::new();
    for e in &entries {
        assert!(
            seen.insert(e.name.clone()),
            "duplicate {:?}",
            String::from_utf8_lossy(&e.name)
        );
        assert_eq!(expected.get(&e.name), Some(&e.fileid), "{e:?}");
        let attr = e.attr.as_ref().expect("READDIRPLUS attributes");
        assert_eq!(attr.fileid, e.fileid);
        assert_eq!(attr.type_, ftype3::NF3REG);
        let handle = e.handle.as_ref().expect("READDIRPLUS handle");
        assert_eq!(nfs.getattr(handle).await.unwrap().fileid, e.fileid);
    }
    assert_eq!(entries.len(), n, "listing is not complete");

    // Removing entries while listing: the rest is still listed exactly once.
    let (first, _, verf) = nfs
        .readdirplus(&d, 0, Default::default(), 1024, 8192)
        .await
        .unwrap();
    let cookie = first.last().unwrap().cookie;
    let listed: BTreeSet<Vec<u8>> = first.iter().map(|e| e.name.clone()).collect();
    let mut removed = BTreeSet::new();
    for name in expected.keys().step_by(3) {
        if !listed.contains(name) {
            nfs.remove(&d, name).await.unwrap();
            removed.insert(name.clone());
        }
    }
    let mut rest = Vec::new();
    let (mut c, mut v) = (cookie, verf);
    loop {
        let (page, eof, nv) = nfs.readdirplus(&d, c, v, 4096, 16 * 1024).await.unwrap();
        v = nv;
        if let Some(last) = page.last() {
            c = last.cookie;
        }
        rest.extend(page.into_iter().map(|e| e.name));
        if eof {
            break;
        }
    }
    let rest_set: BTreeSet<Vec<u8>> = rest.iter().cloned().collect();
    assert_eq!(rest_set.len(), rest.len(), "duplicates after removals");
    let want: BTreeSet<Vec<u8>> = expected
        .keys()
        .filter(|k| !listed.contains(*k) && !removed.contains(*k))
        .cloned()
        .collect();
    assert_eq!(rest_set, want);

    // Plain READDIR pages by its cookie too (PATCHES.md §9; stock nfsserve restarted
    // every page at the first entry, so this listing never ended).
    let (plain, pages) = nfs.list_plain(&d, 2048, n).await;
    assert!(pages > 10, "only {pages} READDIR pages");
    let plain_set: BTreeSet<Vec<u8>> = plain.iter().cloned().collect();
    assert_eq!(
        plain_set.len(),
        plain.len(),
        "READDIR listed an entry twice"
    );
    let remaining: BTreeSet<Vec<u8>> = expected
        .keys()
        .filter(|k| !removed.contains(*k))
        .cloned()
        .collect();
    assert_eq!(plain_set, remaining);
    // A count too small for a reply's fixed part is TOOSMALL, not an underflow.
    assert_eq!(
        nfs.readdir(&d, 0, Default::default(), 64).await.map(|_| ()),
        Err(nfsstat3::NFS3ERR_TOOSMALL)
    );
    assert_eq!(
        nfs.readdirplus(&d, 0, Default::default(), 64, 64)
            .await
            .map(|_| ()),
        Err(nfsstat3::NFS3ERR_TOOSMALL)
    );
}

/// What [`populate`] wrote, to be read back after a restart.
pub struct Manifest {
    pub files: Vec<(Vec<Vec<u8>>, nfs_fh3, Vec<u8>)>,
    pub links: Vec<(Vec<Vec<u8>>, nfs_fh3, Vec<u8>)>,
    pub dirs: Vec<(Vec<Vec<u8>>, nfs_fh3)>,
}

/// Writes a small tree (files from empty to 3 MiB, a symlink, nested directories) under
/// `/dir` and returns what it wrote, handles included.
pub async fn populate(ep: &Endpoint, dir: &str) -> Manifest {
    let mut nfs = Nfs::connect(ep).await;
    let top = workdir(&mut nfs, dir).await;
    let sub = nfs.mkdir(&top, b"nested").await.unwrap();
    let p = |names: &[&str]| -> Vec<Vec<u8>> {
        std::iter::once(dir.as_bytes().to_vec())
            .chain(names.iter().map(|n| n.as_bytes().to_vec()))
            .collect()
    };
    let mut m = Manifest {
        files: vec![],
        links: vec![],
        dirs: vec![(p(&[]), top.clone()), (p(&["nested"]), sub.clone())],
    };
    for (i, len) in [0usize, 1, 4095, 65_536 + 17, 3 * 1024 * 1024 + 5]
        .into_iter()
        .enumerate()
    {
        let name = format!("file{i}");
        let (parent, path) = if i % 2 == 0 {
            (&top, p(&[&name]))
        } else {
            (&sub, p(&["nested", &name]))
        };
        let f = nfs.new_file(parent, name.as_bytes()).await;
        let data = pattern(i as u64 + 100, len);
        nfs.write_all(&f, &data, 1 << 20).await;
        m.files.push((path, f, data));
    }
    let l = nfs.symlink(&sub, b"link", b"../file0").await.unwrap();
    m.links
        .push((p(&["nested", "link"]), l, b"../file0".to_vec()));
    m
}

/// Reads everything [`populate`] wrote back, byte for byte, through fresh lookups AND
/// through the handles issued before (they must still work after a restart).
pub async fn verify(ep: &Endpoint, m: &Manifest) {
    let mut nfs = Nfs::connect(ep).await;
    for (path, old, data) in &m.files {
        let parts: Vec<&[u8]> = path.iter().map(|c| c.as_slice()).collect();
        let now = nfs.walk(&parts).await.unwrap();
        assert_eq!(&now, old, "handle of {path:?} changed");
        assert_eq!(nfs.getattr(old).await.unwrap().size, data.len() as u64);
        let back = nfs.read_all(old, 1 << 20).await;
        assert!(back == *data, "content of {path:?} differs");
    }
    for (path, old, target) in &m.links {
        let parts: Vec<&[u8]> = path.iter().map(|c| c.as_slice()).collect();
        assert_eq!(&nfs.walk(&parts).await.unwrap(), old);
        assert_eq!(&nfs.readlink(old).await.unwrap(), target);
    }
    for (path, old) in &m.dirs {
        let parts: Vec<&[u8]> = path.iter().map(|c| c.as_slice()).collect();
        assert_eq!(&nfs.walk(&parts).await.unwrap(), old);
        assert_eq!(nfs.getattr(old).await.unwrap().type_, ftype3::NF3DIR);
    }
}
