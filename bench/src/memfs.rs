//! `memfs`: an in-memory NFSv3 file system served by nfsserve, the baseline
//! every Palisade configuration is compared with.
//!
//! This is a port of the in-memory demo of nfsserve (`examples/demo.rs` in the
//! xetdata/nfsserve repository). It exists because nfsserve 0.11 on crates.io
//! does not ship that demo, and the baseline must run as a child process of
//! `palisade-bench` exactly like the servers it is compared with (same process
//! model, same loopback TCP path), not in-process.
//!
//! Like the demo it keeps files as `Vec<u8>` and directories in memory behind
//! one mutex, with the same operations. It differs where the demo would make
//! the benchmark unfair or impossible, and says so:
//! - REMOVE/RMDIR, MKDIR, RENAME, SYMLINK and READLINK are implemented (the
//!   demo answers NOTSUPP/ROFS), because the small-files workload needs them;
//! - WRITE inside an existing file stores the data (the demo only stores
//!   writes that extend the file);
//! - directory entries live in a `BTreeMap` by name, so LOOKUP is O(log n)
//!   rather than a scan (a baseline slowed by its own data structure would
//!   flatter every other target);
//! - memory is bounded: past `max_bytes` of file data, WRITE answers NOSPC.
//!
//! `corrupt_read_at` exists only so the tests can prove that seq-read catches
//! a server returning wrong bytes: when set, the byte at that file offset is
//! flipped in every READ reply that covers it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nfsserve::nfs::{
    fattr3, fileid3, filename3, ftype3, nfspath3, nfsstat3, nfstime3, sattr3, set_atime, set_gid3,
    set_mode3, set_mtime, set_size3, set_uid3, specdata3,
};
use nfsserve::vfs::{DirEntry, NFSFileSystem, ReadDirResult, VFSCapabilities};

/// The root directory's file id (0 is reserved by nfsserve).
const ROOT: fileid3 = 1;

enum Contents {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, fileid3>),
    Symlink(Vec<u8>),
}

struct Node {
    attr: fattr3,
    parent: fileid3,
    contents: Contents,
}

struct State {
    nodes: BTreeMap<fileid3, Node>,
    next_id: fileid3,
    /// Bytes held in all files' contents.
    used_bytes: u64,
}

/// The in-memory file system.
pub struct MemFs {
    state: Mutex<State>,
    max_bytes: u64,
    corrupt_read_at: Option<u64>,
}

fn now() -> nfstime3 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    nfstime3 {
        seconds: d.as_secs() as u32,
        nseconds: d.subsec_nanos(),
    }
}

fn new_attr(ftype: ftype3, id: fileid3, mode: u32) -> fattr3 {
    let t = now();
    fattr3 {
        ftype,
        mode,
        nlink: 1,
        uid: 507,
        gid: 507,
        size: 0,
        used: 0,
        rdev: specdata3::default(),
        fsid: 0,
        fileid: id,
        atime: t,
        mtime: t,
        ctime: t,
    }
}

impl MemFs {
    /// An empty file system (just the root directory) holding at most
    /// `max_bytes` of file data.
    pub fn new(max_bytes: u64, corrupt_read_at: Option<u64>) -> MemFs {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node {
                attr: new_attr(ftype3::NF3DIR, ROOT, 0o777),
                parent: ROOT,
                contents: Contents::Dir(BTreeMap::new()),
            },
        );
        MemFs {
            state: Mutex::new(State {
                nodes,
                next_id: ROOT + 1,
                used_bytes: 0,
            }),
            max_bytes,
            corrupt_read_at,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, nfsstat3> {
        // A poisoned lock means a previous call panicked mid-update: refuse
        // service rather than serve possibly inconsistent state.
        self.state.lock().map_err(|_| nfsstat3::NFS3ERR_SERVERFAULT)
    }
}

impl State {
    fn node(&self, id: fileid3) -> Result<&Node, nfsstat3> {
        self.nodes.get(&id).ok_or(nfsstat3::NFS3ERR_STALE)
    }

    fn node_mut(&mut self, id: fileid3) -> Result<&mut Node, nfsstat3> {
        self.nodes.get_mut(&id).ok_or(nfsstat3::NFS3ERR_STALE)
    }

    fn dir(&self, id: fileid3) -> Result<&BTreeMap<Vec<u8>, fileid3>, nfsstat3> {
        match &self.node(id)?.contents {
            Contents::Dir(d) => Ok(d),
            _ => Err(nfsstat3::NFS3ERR_NOTDIR),
        }
    }

    fn dir_mut(&mut self, id: fileid3) -> Result<&mut BTreeMap<Vec<u8>, fileid3>, nfsstat3> {
        match &mut self.node_mut(id)?.contents {
            Contents::Dir(d) => Ok(d),
            _ => Err(nfsstat3::NFS3ERR_NOTDIR),
        }
    }

    fn touch(&mut self, id: fileid3) {
        if let Some(n) = self.nodes.get_mut(&id) {
            let t = now();
            n.attr.mtime = t;
            n.attr.ctime = t;
        }
    }

    /// Adds a new node named `name` in directory `dirid`.
    fn insert(
        &mut self,
        dirid: fileid3,
        name: &[u8],
        ftype: ftype3,
        mode: u32,
        contents: Contents,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        check_name(name)?;
        let id = self.next_id;
        let dir = self.dir_mut(dirid)?;
        if dir.contains_key(name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        dir.insert(name.to_vec(), id);
        self.next_id += 1;
        let mut attr = new_attr(ftype, id, mode);
        if let Contents::Symlink(target) = &contents {
            attr.size = target.len() as u64;
        }
        self.nodes.insert(
            id,
            Node {
                attr,
                parent: dirid,
                contents,
            },
        );
        self.touch(dirid);
        Ok((id, attr))
    }

    /// Resizes a file's contents, keeping `used_bytes` within `max_bytes`.
    fn resize(&mut self, id: fileid3, new_len: u64, max_bytes: u64) -> Result<(), nfsstat3> {
        let used = self.used_bytes;
        let node = self.node_mut(id)?;
        let Contents::File(bytes) = &mut node.contents else {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        };
        let old_len = bytes.len() as u64;
        if new_len > old_len && used + (new_len - old_len) > max_bytes {
            return Err(nfsstat3::NFS3ERR_NOSPC);
        }
        let new_len_usize = usize::try_from(new_len).map_err(|_| nfsstat3::NFS3ERR_FBIG)?;
        bytes.resize(new_len_usize, 0);
        node.attr.size = new_len;
        node.attr.used = new_len;
        self.used_bytes = used - old_len + new_len;
        Ok(())
    }
}

fn check_name(name: &[u8]) -> Result<(), nfsstat3> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(nfsstat3::NFS3ERR_INVAL);
    }
    if name.len() > 255 {
        return Err(nfsstat3::NFS3ERR_NAMETOOLONG);
    }
    Ok(())
}

fn apply_sattr(attr: &mut fattr3, s: &sattr3) {
    if let set_mode3::mode(m) = s.mode {
        attr.mode = m;
    }
    if let set_uid3::uid(u) = s.uid {
        attr.uid = u;
    }
    if let set_gid3::gid(g) = s.gid {
        attr.gid = g;
    }
    match s.atime {
        set_atime::DONT_CHANGE => {}
        set_atime::SET_TO_SERVER_TIME => attr.atime = now(),
        set_atime::SET_TO_CLIENT_TIME(t) => attr.atime = t,
    }
    match s.mtime {
        set_mtime::DONT_CHANGE => {}
        set_mtime::SET_TO_SERVER_TIME => attr.mtime = now(),
        set_mtime::SET_TO_CLIENT_TIME(t) => attr.mtime = t,
    }
    attr.ctime = now();
}

#[async_trait]
impl NFSFileSystem for MemFs {
    fn root_dir(&self) -> fileid3 {
        ROOT
    }

    fn capabilities(&self) -> VFSCapabilities {
        VFSCapabilities::ReadWrite
    }

    async fn lookup(&self, dirid: fileid3, filename: &filename3) -> Result<fileid3, nfsstat3> {
        let st = self.lock()?;
        let name: &[u8] = filename;
        if name == b"." {
            st.dir(dirid)?;
            return Ok(dirid);
        }
        if name == b".." {
            st.dir(dirid)?;
            return Ok(st.node(dirid)?.parent);
        }
        st.dir(dirid)?
            .get(name)
            .copied()
            .ok_or(nfsstat3::NFS3ERR_NOENT)
    }

    async fn getattr(&self, id: fileid3) -> Result<fattr3, nfsstat3> {
        Ok(self.lock()?.node(id)?.attr)
    }

    async fn setattr(&self, id: fileid3, setattr: sattr3) -> Result<fattr3, nfsstat3> {
        let mut st = self.lock()?;
        if let set_size3::size(s) = setattr.size {
            st.resize(id, s, self.max_bytes)?;
        }
        let node = st.node_mut(id)?;
        apply_sattr(&mut node.attr, &setattr);
        Ok(node.attr)
    }

    async fn read(
        &self,
        id: fileid3,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), nfsstat3> {
        let st = self.lock()?;
        let Contents::File(bytes) = &st.node(id)?.contents else {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        };
        let len = bytes.len() as u64;
        let start = offset.min(len);
        let end = offset.saturating_add(u64::from(count)).min(len);
        // start <= end <= len, and len fits in usize: it is a Vec's length.
        let mut data = bytes[start as usize..end as usize].to_vec();
        if let Some(bad) = self.corrupt_read_at {
            if (start..end).contains(&bad) {
                data[(bad - start) as usize] ^= 0xFF;
            }
        }
        Ok((data, end >= len))
    }

    async fn write(&self, id: fileid3, offset: u64, data: &[u8]) -> Result<fattr3, nfsstat3> {
        let mut st = self.lock()?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(nfsstat3::NFS3ERR_FBIG)?;
        let cur_len = match &st.node(id)?.contents {
            Contents::File(b) => b.len() as u64,
            _ => return Err(nfsstat3::NFS3ERR_ISDIR),
        };
        if end > cur_len {
            st.resize(id, end, self.max_bytes)?;
        }
        let node = st.node_mut(id)?;
        if let Contents::File(bytes) = &mut node.contents {
            // end <= bytes.len() after the resize above.
            bytes[offset as usize..end as usize].copy_from_slice(data);
        }
        let t = now();
        node.attr.mtime = t;
        node.attr.ctime = t;
        Ok(node.attr)
    }

    async fn create(
        &self,
        dirid: fileid3,
        filename: &filename3,
        attr: sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        let mut st = self.lock()?;
        let name: &[u8] = filename;
        // UNCHECKED create of an existing regular file reuses it
        // (RFC 1813 section 3.3.8); GUARDED is refused earlier by nfsserve.
        let existing = st.dir(dirid)?.get(name).copied();
        let id = match existing {
            Some(id) => {
                if !matches!(st.node(id)?.contents, Contents::File(_)) {
                    return Err(nfsstat3::NFS3ERR_EXIST);
                }
                id
            }
            None => {
                st.insert(
                    dirid,
                    name,
                    ftype3::NF3REG,
                    0o644,
                    Contents::File(Vec::new()),
                )?
                .0
            }
        };
        if let set_size3::size(s) = attr.size {
            st.resize(id, s, self.max_bytes)?;
        }
        let node = st.node_mut(id)?;
        apply_sattr(&mut node.attr, &attr);
        Ok((id, node.attr))
    }

    async fn create_exclusive(
        &self,
        dirid: fileid3,
        filename: &filename3,
    ) -> Result<fileid3, nfsstat3> {
        let mut st = self.lock()?;
        let (id, _) = st.insert(
            dirid,
            filename,
            ftype3::NF3REG,
            0o644,
            Contents::File(Vec::new()),
        )?;
        Ok(id)
    }

    async fn mkdir(
        &self,
        dirid: fileid3,
        dirname: &filename3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        let mut st = self.lock()?;
        st.insert(
            dirid,
            dirname,
            ftype3::NF3DIR,
            0o755,
            Contents::Dir(BTreeMap::new()),
        )
    }

    /// REMOVE and RMDIR both land here (nfsserve routes RMDIR to `remove`).
    async fn remove(&self, dirid: fileid3, filename: &filename3) -> Result<(), nfsstat3> {
        let mut st = self.lock()?;
        let name: &[u8] = filename;
        let id = st
            .dir(dirid)?
            .get(name)
            .copied()
            .ok_or(nfsstat3::NFS3ERR_NOENT)?;
        match &st.node(id)?.contents {
            Contents::Dir(d) if !d.is_empty() => return Err(nfsstat3::NFS3ERR_NOTEMPTY),
            Contents::File(b) => {
                let n = b.len() as u64;
                st.used_bytes = st.used_bytes.saturating_sub(n);
            }
            _ => {}
        }
        st.dir_mut(dirid)?.remove(name);
        st.nodes.remove(&id);
        st.touch(dirid);
        Ok(())
    }

    async fn rename(
        &self,
        from_dirid: fileid3,
        from_filename: &filename3,
        to_dirid: fileid3,
        to_filename: &filename3,
    ) -> Result<(), nfsstat3> {
        let mut st = self.lock()?;
        let from: &[u8] = from_filename;
        let to: &[u8] = to_filename;
        check_name(to)?;
        let id = st
            .dir(from_dirid)?
            .get(from)
            .copied()
            .ok_or(nfsstat3::NFS3ERR_NOENT)?;
        st.dir(to_dirid)?;
        // Moving a directory into its own subtree would detach it.
        let mut p = to_dirid;
        loop {
            if p == id {
                return Err(nfsstat3::NFS3ERR_INVAL);
            }
            let parent = st.node(p)?.parent;
            if parent == p {
                break;
            }
            p = parent;
        }
        if let Some(old) = st.dir(to_dirid)?.get(to).copied() {
            if old == id {
                return Ok(());
            }
            match &st.node(old)?.contents {
                Contents::Dir(d) if !d.is_empty() => return Err(nfsstat3::NFS3ERR_NOTEMPTY),
                Contents::File(b) => {
                    let n = b.len() as u64;
                    st.used_bytes = st.used_bytes.saturating_sub(n);
                }
                _ => {}
            }
            st.nodes.remove(&old);
        }
        st.dir_mut(from_dirid)?.remove(from);
        st.dir_mut(to_dirid)?.insert(to.to_vec(), id);
        st.node_mut(id)?.parent = to_dirid;
        st.touch(from_dirid);
        st.touch(to_dirid);
        Ok(())
    }

    /// Entries in name order; the cookie nfsserve hands back is the file id
    /// of the last entry returned, so we resume right after it.
    async fn readdir(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> Result<ReadDirResult, nfsstat3> {
        let st = self.lock()?;
        let dir = st.dir(dirid)?;
        let mut iter = dir.iter().peekable();
        if start_after != 0 {
            // Skip up to and including the entry with that id.
            loop {
                match iter.next() {
                    Some((_, id)) if *id == start_after => break,
                    Some(_) => {}
                    None => return Err(nfsstat3::NFS3ERR_BAD_COOKIE),
                }
            }
        }
        let mut entries = Vec::new();
        while entries.len() < max_entries {
            let Some((name, id)) = iter.next() else { break };
            entries.push(DirEntry {
                fileid: *id,
                name: name.clone().into(),
                attr: st.node(*id)?.attr,
            });
        }
        Ok(ReadDirResult {
            entries,
            end: iter.peek().is_none(),
        })
    }

    async fn symlink(
        &self,
        dirid: fileid3,
        linkname: &filename3,
        symlink: &nfspath3,
        attr: &sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        let mut st = self.lock()?;
        let target: &[u8] = symlink;
        let (id, _) = st.insert(
            dirid,
            linkname,
            ftype3::NF3LNK,
            0o777,
            Contents::Symlink(target.to_vec()),
        )?;
        let node = st.node_mut(id)?;
        apply_sattr(&mut node.attr, attr);
        Ok((id, node.attr))
    }

    async fn readlink(&self, id: fileid3) -> Result<nfspath3, nfsstat3> {
        match &self.lock()?.node(id)?.contents {
            Contents::Symlink(t) => Ok(t.clone().into()),
            _ => Err(nfsstat3::NFS3ERR_INVAL),
        }
    }
}

/// Serves `fs` over NFSv3 + MOUNT on `listen` ("ip:port") until killed.
pub async fn serve(listen: &str, fs: MemFs) -> anyhow::Result<()> {
    use anyhow::Context;
    use nfsserve::tcp::{NFSTcp, NFSTcpListener};
    let listener = NFSTcpListener::bind(listen, fs)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!("memfs: serving NFSv3 on {listen}");
    listener.handle_forever().await.context("serving NFS")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> filename3 {
        s.as_bytes().to_vec().into()
    }

    #[tokio::test]
    async fn write_inside_a_file_overwrites_and_read_returns_it() {
        let fs = MemFs::new(1 << 20, None);
        let (id, _) = fs
            .create(ROOT, &name("a"), sattr3::default())
            .await
            .unwrap();
        fs.write(id, 0, b"hello world").await.unwrap();
        fs.write(id, 6, b"WORLD").await.unwrap();
        let (data, eof) = fs.read(id, 0, 100).await.unwrap();
        assert_eq!(data, b"hello WORLD");
        assert!(eof);
        assert_eq!(fs.getattr(id).await.unwrap().size, 11);
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let fs = MemFs::new(10, None);
        let (id, _) = fs
            .create(ROOT, &name("a"), sattr3::default())
            .await
            .unwrap();
        assert!(matches!(
            fs.write(id, 5, b"123456").await,
            Err(nfsstat3::NFS3ERR_NOSPC)
        ));
        fs.write(id, 0, b"1234567890").await.unwrap();
        fs.remove(ROOT, &name("a")).await.unwrap();
        let (id, _) = fs
            .create(ROOT, &name("b"), sattr3::default())
            .await
            .unwrap();
        fs.write(id, 0, b"1234567890").await.unwrap();
    }

    #[tokio::test]
    async fn remove_refuses_non_empty_dirs_and_lookup_follows() {
        let fs = MemFs::new(1 << 20, None);
        let (d, _) = fs.mkdir(ROOT, &name("d")).await.unwrap();
        fs.create(d, &name("f"), sattr3::default()).await.unwrap();
        assert!(matches!(
            fs.remove(ROOT, &name("d")).await,
            Err(nfsstat3::NFS3ERR_NOTEMPTY)
        ));
        assert!(matches!(
            fs.mkdir(ROOT, &name("d")).await,
            Err(nfsstat3::NFS3ERR_EXIST)
        ));
        fs.remove(d, &name("f")).await.unwrap();
        assert!(matches!(
            fs.lookup(d, &name("f")).await,
            Err(nfsstat3::NFS3ERR_NOENT)
        ));
        fs.remove(ROOT, &name("d")).await.unwrap();
        assert!(matches!(fs.getattr(d).await, Err(nfsstat3::NFS3ERR_STALE)));
    }

    #[tokio::test]
    async fn readdir_pages_cover_every_entry_once() {
        let fs = MemFs::new(1 << 20, None);
        for i in 0..25 {
            fs.create(ROOT, &name(&format!("f{i:02}")), sattr3::default())
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut cookie = 0;
        loop {
            let page = fs.readdir(ROOT, cookie, 7).await.unwrap();
            seen.extend(page.entries.iter().map(|e| e.name.0.clone()));
            if page.end {
                break;
            }
            cookie = page.entries.last().unwrap().fileid;
        }
        let expected: Vec<Vec<u8>> = (0..25).map(|i| format!("f{i:02}").into_bytes()).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn rename_moves_and_replaces() {
        let fs = MemFs::new(1 << 20, None);
        let (a, _) = fs
            .create(ROOT, &name("a"), sattr3::default())
            .await
            .unwrap();
        let (d, _) = fs.mkdir(ROOT, &name("d")).await.unwrap();
        fs.rename(ROOT, &name("a"), d, &name("b")).await.unwrap();
        assert_eq!(fs.lookup(d, &name("b")).await.unwrap(), a);
        assert!(fs.lookup(ROOT, &name("a")).await.is_err());
        // A directory cannot move into itself.
        assert!(matches!(
            fs.rename(ROOT, &name("d"), d, &name("x")).await,
            Err(nfsstat3::NFS3ERR_INVAL)
        ));
    }

    #[tokio::test]
    async fn corrupt_read_flips_exactly_one_byte() {
        let fs = MemFs::new(1 << 20, Some(3));
        let (id, _) = fs
            .create(ROOT, &name("a"), sattr3::default())
            .await
            .unwrap();
        fs.write(id, 0, &[0u8; 8]).await.unwrap();
        let (data, _) = fs.read(id, 0, 8).await.unwrap();
        assert_eq!(data, [0, 0, 0, 0xFF, 0, 0, 0, 0]);
        let (data, _) = fs.read(id, 4, 4).await.unwrap();
        assert_eq!(data, [0; 4]);
    }
}
