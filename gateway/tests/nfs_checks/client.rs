//! A thin test client over `nfs3_client`: one method per NFS procedure, returning the
//! NFS status on failure, so checks read like the RFC.

use std::net::SocketAddr;

use nfs3_client::nfs3_types::nfs3::{
    cookieverf3, createhow3, diropargs3, fattr3, nfs_fh3, nfsstat3, nfstime3, sattr3, set_mode3,
    set_size3, stable_how, symlinkdata3, COMMIT3args, CREATE3args, FSINFO3args, FSINFO3resok,
    FSSTAT3args, FSSTAT3resok, GETATTR3args, LOOKUP3args, MKDIR3args, Nfs3Option, Nfs3Result,
    READ3args, READDIR3args, READDIRPLUS3args, READLINK3args, REMOVE3args, RENAME3args, RMDIR3args,
    SETATTR3args, SYMLINK3args, WRITE3args,
};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};
use tokio::net::TcpStream;

/// Where an NFS export listens (NFS and MOUNT on the same port, as nfsserve does).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn from_addr(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

pub type Status = nfsstat3;

/// One mounted connection.
pub struct Nfs {
    conn: Nfs3Connection<TokioIo<TcpStream>>,
    pub root: nfs_fh3,
}

pub fn fh(bytes: Vec<u8>) -> nfs_fh3 {
    nfs_fh3 {
        data: Opaque::owned(bytes),
    }
}

fn dirop(dir: &nfs_fh3, name: &[u8]) -> diropargs3<'static> {
    diropargs3 {
        dir: dir.clone(),
        name: name.to_vec().into(),
    }
}

fn created(obj: Nfs3Option<nfs_fh3>) -> nfs_fh3 {
    match obj {
        Nfs3Option::Some(fh) => fh,
        Nfs3Option::None => panic!("server returned no file handle for a new object"),
    }
}

pub fn mode(m: u32) -> sattr3 {
    sattr3 {
        mode: set_mode3::Some(m),
        ..sattr3::default()
    }
}

pub fn size(n: u64) -> sattr3 {
    sattr3 {
        size: set_size3::Some(n),
        ..sattr3::default()
    }
}

/// One READDIRPLUS entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub fileid: u64,
    pub name: Vec<u8>,
    pub cookie: u64,
    pub attr: Option<fattr3>,
    pub handle: Option<nfs_fh3>,
}

impl Nfs {
    /// Mounts `/` (the only export nfsserve has). Its `unmount()` fails against nfsserve
    /// (shared/CLIENTS.md), so a connection is simply dropped.
    pub async fn connect(ep: &Endpoint) -> Self {
        let conn = Nfs3ConnectionBuilder::new(TokioConnector, &ep.host, "/")
            .connect_from_privileged_port(false)
            .mount_port(ep.port)
            .nfs3_port(ep.port)
            .mount()
            .await
            .expect("mount");
        let root = conn.root_nfs_fh3();
        Self { conn, root }
    }

    /// The raw connection, for checks that read parts of a reply these helpers drop.
    pub fn conn(&mut self) -> &mut Nfs3Connection<TokioIo<TcpStream>> {
        &mut self.conn
    }

    pub async fn getattr(&mut self, obj: &nfs_fh3) -> Result<fattr3, Status> {
        let args = GETATTR3args {
            object: obj.clone(),
        };
        match self.conn.getattr(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(ok.obj_attributes),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    pub async fn lookup(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<nfs_fh3, Status> {
        let args = LOOKUP3args {
            what: dirop(dir, name),
        };
        match self.conn.lookup(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(ok.object),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// Looks a path up from the root, one component at a time.
    pub async fn walk(&mut self, path: &[&[u8]]) -> Result<nfs_fh3, Status> {
        let mut at = self.root.clone();
        for name in path {
            at = self.lookup(&at, name).await?;
        }
        Ok(at)
    }

    pub async fn create(
        &mut self,
        dir: &nfs_fh3,
        name: &[u8],
        how: createhow3,
    ) -> Result<nfs_fh3, Status> {
        let args = CREATE3args {
            where_: dirop(dir, name),
            how,
        };
        match self.conn.create(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(created(ok.obj)),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// GUARDED create with mode 0644; panics on failure.
    pub async fn new_file(&mut self, dir: &nfs_fh3, name: &[u8]) -> nfs_fh3 {
        self.create(dir, name, createhow3::GUARDED(mode(0o644)))
            .await
            .unwrap_or_else(|s| panic!("create {:?}: {s:?}", String::from_utf8_lossy(name)))
    }

    pub async fn mkdir(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<nfs_fh3, Status> {
        self.mkdir_mode(dir, name, 0o755).await
    }

    /// MKDIR whose attributes ask for `mode`.
    pub async fn mkdir_mode(
        &mut self,
        dir: &nfs_fh3,
        name: &[u8],
        mode_bits: u32,
    ) -> Result<nfs_fh3, Status> {
        let args = MKDIR3args {
            where_: dirop(dir, name),
            attributes: mode(mode_bits),
        };
        match self.conn.mkdir(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(created(ok.obj)),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    pub async fn symlink(
        &mut self,
        dir: &nfs_fh3,
        name: &[u8],
        target: &[u8],
    ) -> Result<nfs_fh3, Status> {
        let args = SYMLINK3args {
            where_: dirop(dir, name),
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: target.to_vec().into(),
            },
        };
        match self.conn.symlink(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(created(ok.obj)),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    pub async fn readlink(&mut self, link: &nfs_fh3) -> Result<Vec<u8>, Status> {
        let args = READLINK3args {
            symlink: link.clone(),
        };
        match self.conn.readlink(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(ok.data.0.to_vec()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// A FILE_SYNC write; returns the count the server reports.
    pub async fn write(&mut self, file: &nfs_fh3, offset: u64, data: &[u8]) -> Result<u32, Status> {
        let (count, committed, _) = self
            .write_as(file, offset, data, stable_how::FILE_SYNC)
            .await?;
        assert_eq!(committed, stable_how::FILE_SYNC);
        Ok(count)
    }

    /// A WRITE asking for `stable`: the count, the stability level the reply gives, and
    /// the write verifier.
    async fn write_as(
        &mut self,
        file: &nfs_fh3,
        offset: u64,
        data: &[u8],
        stable: stable_how,
    ) -> Result<(u32, stable_how, [u8; 8]), Status> {
        let args = WRITE3args {
            file: file.clone(),
            offset,
            count: u32::try_from(data.len()).expect("write too large"),
            stable,
            data: Opaque::borrowed(data),
        };
        match self.conn.write(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok((ok.count, ok.committed, ok.verf.0)),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// An UNSTABLE WRITE (the Linux client's default for buffered writes): the reply's
    /// stability level and write verifier.
    pub async fn write_unstable(
        &mut self,
        file: &nfs_fh3,
        offset: u64,
        data: &[u8],
    ) -> Result<(stable_how, [u8; 8]), Status> {
        let (_, committed, verf) = self
            .write_as(file, offset, data, stable_how::UNSTABLE)
            .await?;
        Ok((committed, verf))
    }

    /// COMMIT (RFC 1813 §3.3.21) of the whole file: the write verifier.
    pub async fn commit(&mut self, file: &nfs_fh3) -> Result<[u8; 8], Status> {
        let args = COMMIT3args {
            file: file.clone(),
            offset: 0,
            count: 0,
        };
        match self.conn.commit(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(ok.verf.0),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// Writes `data` in `chunk`-byte WRITEs.
    pub async fn write_all(&mut self, file: &nfs_fh3, data: &[u8], chunk: usize) {
        for (i, part) in data.chunks(chunk).enumerate() {
            let n = self
                .write(file, (i * chunk) as u64, part)
                .await
                .expect("write");
            assert_eq!(n as usize, part.len());
        }
    }

    pub async fn read(
        &mut self,
        file: &nfs_fh3,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), Status> {
        let args = READ3args {
            file: file.clone(),
            offset,
            count,
        };
        match self.conn.read(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => {
                assert_eq!(ok.count as usize, ok.data.len());
                Ok((ok.data.to_vec(), ok.eof))
            }
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// Reads the whole file in `chunk`-byte READs until EOF.
    pub async fn read_all(&mut self, file: &nfs_fh3, chunk: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let (data, eof) = self
                .read(file, out.len() as u64, chunk)
                .await
                .expect("read");
            out.extend_from_slice(&data);
            if eof {
                return out;
            }
            assert!(!data.is_empty(), "empty READ without EOF at {}", out.len());
        }
    }

    pub async fn setattr(&mut self, obj: &nfs_fh3, attr: sattr3) -> Result<(), Status> {
        let args = SETATTR3args {
            object: obj.clone(),
            new_attributes: attr,
            guard: Nfs3Option::None,
        };
        match self.conn.setattr(&args).await.expect("rpc") {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// SETATTR guarded by the object's ctime (RFC 1813 §3.3.2 `sattrguard3`).
    pub async fn setattr_guarded(
        &mut self,
        obj: &nfs_fh3,
        attr: sattr3,
        ctime: nfstime3,
    ) -> Result<(), Status> {
        let args = SETATTR3args {
            object: obj.clone(),
            new_attributes: attr,
            guard: Nfs3Option::Some(ctime),
        };
        match self.conn.setattr(&args).await.expect("rpc") {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    pub async fn remove(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<(), Status> {
        let args = REMOVE3args {
            object: dirop(dir, name),
        };
        match self.conn.remove(&args).await.expect("rpc") {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    pub async fn rmdir(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<(), Status> {
        let args = RMDIR3args {
            object: dirop(dir, name),
        };
        match self.conn.rmdir(&args).await.expect("rpc") {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    pub async fn rename(
        &mut self,
        from: &nfs_fh3,
        from_name: &[u8],
        to: &nfs_fh3,
        to_name: &[u8],
    ) -> Result<(), Status> {
        let args = RENAME3args {
            from: dirop(from, from_name),
            to: dirop(to, to_name),
        };
        match self.conn.rename(&args).await.expect("rpc") {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// One READDIRPLUS page.
    pub async fn readdirplus(
        &mut self,
        dir: &nfs_fh3,
        cookie: u64,
        verf: cookieverf3,
        dircount: u32,
        maxcount: u32,
    ) -> Result<(Vec<Entry>, bool, cookieverf3), Status> {
        let args = READDIRPLUS3args {
            dir: dir.clone(),
            cookie,
            cookieverf: verf,
            dircount,
            maxcount,
        };
        match self.conn.readdirplus(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => {
                let entries = ok
                    .reply
                    .entries
                    .0
                    .into_iter()
                    .map(|e| Entry {
                        fileid: e.fileid,
                        name: e.name.0.to_vec(),
                        cookie: e.cookie,
                        attr: match e.name_attributes {
                            Nfs3Option::Some(a) => Some(a),
                            Nfs3Option::None => None,
                        },
                        handle: match e.name_handle {
                            Nfs3Option::Some(h) => Some(h),
                            Nfs3Option::None => None,
                        },
                    })
                    .collect();
                Ok((entries, ok.reply.eof, ok.cookieverf))
            }
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// One plain READDIR page (RFC 1813 §3.3.16): (file id, name, cookie) per entry.
    pub async fn readdir(
        &mut self,
        dir: &nfs_fh3,
        cookie: u64,
        verf: cookieverf3,
        count: u32,
    ) -> Result<(Vec<(u64, Vec<u8>, u64)>, bool, cookieverf3), Status> {
        let args = READDIR3args {
            dir: dir.clone(),
            cookie,
            cookieverf: verf,
            count,
        };
        match self.conn.readdir(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok((
                ok.reply
                    .entries
                    .0
                    .into_iter()
                    .map(|e| (e.fileid, e.name.0.to_vec(), e.cookie))
                    .collect(),
                ok.reply.eof,
                ok.cookieverf,
            )),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    /// Lists a whole directory through plain READDIR paging: the names (`.` and `..`
    /// excluded) in the order listed, and the number of pages. Panics after `max_pages`
    /// (a server that ignores the cookie would loop).
    pub async fn list_plain(
        &mut self,
        dir: &nfs_fh3,
        count: u32,
        max_pages: usize,
    ) -> (Vec<Vec<u8>>, usize) {
        let mut names = Vec::new();
        let (mut cookie, mut verf) = (0, cookieverf3::default());
        let mut pages = 0;
        loop {
            let (page, eof, v) = self
                .readdir(dir, cookie, verf, count)
                .await
                .expect("readdir");
            pages += 1;
            assert!(
                pages <= max_pages,
                "READDIR did not end within {max_pages} pages"
            );
            verf = v;
            if let Some((_, _, c)) = page.last() {
                cookie = *c;
            } else {
                assert!(eof, "empty READDIR page without EOF");
            }
            names.extend(
                page.into_iter()
                    .map(|(_, name, _)| name)
                    .filter(|n| n != b"." && n != b".."),
            );
            if eof {
                return (names, pages);
            }
        }
    }

    /// Lists a whole directory through READDIRPLUS paging; returns the entries (`.` and
    /// `..` excluded) and the number of pages it took.
    pub async fn list(
        &mut self,
        dir: &nfs_fh3,
        dircount: u32,
        maxcount: u32,
    ) -> (Vec<Entry>, usize) {
        let mut all = Vec::new();
        let mut cookie = 0;
        let mut verf = cookieverf3::default();
        let mut pages = 0;
        loop {
            let (entries, eof, v) = self
                .readdirplus(dir, cookie, verf, dircount, maxcount)
                .await
                .expect("readdirplus");
            pages += 1;
            verf = v;
            if let Some(last) = entries.last() {
                cookie = last.cookie;
            } else {
                assert!(eof, "empty READDIRPLUS page without EOF");
            }
            all.extend(
                entries
                    .into_iter()
                    .filter(|e| e.name != b"." && e.name != b".."),
            );
            if eof {
                return (all, pages);
            }
            assert!(pages < 1_000_000, "READDIRPLUS never ends");
        }
    }

    pub async fn fsstat(&mut self) -> Result<FSSTAT3resok, Status> {
        let args = FSSTAT3args {
            fsroot: self.root.clone(),
        };
        match self.conn.fsstat(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(ok),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }

    pub async fn fsinfo(&mut self) -> Result<FSINFO3resok, Status> {
        let args = FSINFO3args {
            fsroot: self.root.clone(),
        };
        match self.conn.fsinfo(&args).await.expect("rpc") {
            Nfs3Result::Ok(ok) => Ok(ok),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so content checks need no storage.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        for b in v.to_le_bytes() {
            if out.len() < len {
                out.push(b);
            }
        }
    }
    out
}
