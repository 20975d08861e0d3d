//! A thin wrapper over one `nfs3_client` connection: the NFSv3 calls the
//! workloads make, each turned into a clear error on a non-OK status, and a
//! count of every NFS call issued (the small-files workload reports ops/s).
//!
//! `nfs3_client` 0.9 has one call in flight per connection (`&mut self`), so
//! a workload that wants N calls in flight opens N connections. Against
//! nfsserve that is equivalent to N pipelined calls on one connection, since
//! nfsserve runs every RPC in its own task anyway.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context, Result};
use nfs3_client::nfs3_types::nfs3::{
    createhow3, diropargs3, fattr3, filename3, nfs_fh3, nfsstat3, sattr3, set_size3, stable_how,
    CREATE3args, GETATTR3args, LOOKUP3args, MKDIR3args, Nfs3Result, READ3args, REMOVE3args,
    RENAME3args, RMDIR3args, WRITE3args,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};
use tokio::net::TcpStream;

/// Where the NFS server is: address (MOUNT and NFS on the same port, as
/// nfsserve serves them) and the export path to mount.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub export: String,
    /// MOUNT's port when it differs from NFS's (nfs-ganesha serves MOUNT on
    /// its own port); `None` means the NFS port, as nfsserve serves both.
    pub mount_port: Option<u16>,
}

impl Endpoint {
    /// Resolves `host` (name or address) once, so every connection of a run
    /// goes to the same address.
    pub async fn resolve(host: &str, port: u16, export: &str) -> Result<Endpoint> {
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {host}:{port}"))?
            .next()
            .ok_or_else(|| anyhow!("{host}:{port} resolves to no address"))?;
        Ok(Endpoint {
            addr,
            export: export.to_string(),
            mount_port: None,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.addr, self.export)
    }
}

/// AUTH_UNIX (RFC 5531 appendix A) with this process's uid and gid, as a kernel
/// client sends: servers such as nfs-ganesha refuse AUTH_NONE for data
/// operations (AUTH_TOOWEAK), and nfsserve accepts either.
fn credential() -> opaque_auth<'static> {
    // SAFETY: getuid(2) and getgid(2) cannot fail and touch no memory of ours.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    opaque_auth::auth_unix(&auth_unix {
        stamp: 0,
        machinename: Opaque::borrowed(b"palisade-bench"),
        uid,
        gid,
        gids: vec![gid],
    })
}

/// Turns a non-OK `nfsstat3` into an error naming the call.
fn check_status<T, E>(what: &str, res: Nfs3Result<T, E>) -> Result<T> {
    match res {
        Nfs3Result::Ok(v) => Ok(v),
        Nfs3Result::Err((code, _)) => Err(anyhow!("{what}: server answered {code:?}")),
    }
}

/// One mounted NFSv3 connection.
pub struct Client {
    conn: Nfs3Connection<TokioIo<TcpStream>>,
    ops: u64,
}

impl Client {
    /// Mounts `ep.export` with MOUNT and opens the NFS connection. Ports are
    /// given directly (no portmapper), from an unprivileged local port.
    pub async fn connect(ep: &Endpoint) -> Result<Client> {
        let conn = Nfs3ConnectionBuilder::new(TokioConnector, ep.addr.ip().to_string(), &ep.export)
            .connect_from_privileged_port(false)
            .credential(credential())
            .mount_port(ep.mount_port.unwrap_or(ep.addr.port()))
            .nfs3_port(ep.addr.port())
            .mount()
            .await
            .with_context(|| format!("mounting {ep}"))?;
        Ok(Client { conn, ops: 0 })
    }

    /// Opens `n` connections to `ep`, one after another (untimed setup).
    pub async fn connect_many(ep: &Endpoint, n: usize) -> Result<Vec<Client>> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(Client::connect(ep).await?);
        }
        Ok(clients)
    }

    /// The export's root file handle.
    pub fn root(&self) -> nfs_fh3 {
        self.conn.root_nfs_fh3()
    }

    /// NFS calls issued on this connection so far (MOUNT not counted).
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// NFSPROC3_NULL: the cheapest liveness check (RFC 1813 section 3.3.0).
    pub async fn null(&mut self) -> Result<()> {
        self.ops += 1;
        self.conn.null().await.context("NULL")
    }

    /// LOOKUP (RFC 1813 section 3.3.3); `None` when the name does not exist.
    pub async fn lookup(&mut self, dir: &nfs_fh3, name: &str) -> Result<Option<nfs_fh3>> {
        self.ops += 1;
        let res = self
            .conn
            .lookup(&LOOKUP3args {
                what: dirop(dir, name),
            })
            .await
            .with_context(|| format!("LOOKUP {name}"))?;
        match res {
            Nfs3Result::Ok(ok) => Ok(Some(ok.object)),
            Nfs3Result::Err((nfsstat3::NFS3ERR_NOENT, _)) => Ok(None),
            Nfs3Result::Err((code, _)) => bail!("LOOKUP {name}: server answered {code:?}"),
        }
    }

    /// CREATE in GUARDED mode (RFC 1813 section 3.3.8): fails if the name
    /// exists, so a benchmark never silently reuses a stale file. When the
    /// server omits the new handle (allowed by the RFC) we LOOKUP it.
    pub async fn create(&mut self, dir: &nfs_fh3, name: &str) -> Result<nfs_fh3> {
        self.ops += 1;
        let attrs = sattr3 {
            size: set_size3::Some(0),
            ..sattr3::default()
        };
        let res = self
            .conn
            .create(&CREATE3args {
                where_: dirop(dir, name),
                how: createhow3::GUARDED(attrs),
            })
            .await
            .with_context(|| format!("CREATE {name}"))?;
        let ok = check_status(&format!("CREATE {name}"), res)?;
        match ok.obj {
            nfs3_client::nfs3_types::nfs3::Nfs3Option::Some(fh) => Ok(fh),
            nfs3_client::nfs3_types::nfs3::Nfs3Option::None => self
                .lookup(dir, name)
                .await?
                .ok_or_else(|| anyhow!("CREATE {name} succeeded but LOOKUP finds nothing")),
        }
    }

    /// MKDIR (RFC 1813 section 3.3.9).
    pub async fn mkdir(&mut self, dir: &nfs_fh3, name: &str) -> Result<nfs_fh3> {
        self.ops += 1;
        let res = self
            .conn
            .mkdir(&MKDIR3args {
                where_: dirop(dir, name),
                attributes: sattr3::default(),
            })
            .await
            .with_context(|| format!("MKDIR {name}"))?;
        let ok = check_status(&format!("MKDIR {name}"), res)?;
        match ok.obj {
            nfs3_client::nfs3_types::nfs3::Nfs3Option::Some(fh) => Ok(fh),
            nfs3_client::nfs3_types::nfs3::Nfs3Option::None => self
                .lookup(dir, name)
                .await?
                .ok_or_else(|| anyhow!("MKDIR {name} succeeded but LOOKUP finds nothing")),
        }
    }

    /// WRITE with `stable = FILE_SYNC` (RFC 1813 section 3.3.7): the reply
    /// must say all bytes were written and committed at least as FILE_SYNC,
    /// otherwise the server did less than we time it for.
    pub async fn write(&mut self, fh: &nfs_fh3, offset: u64, data: &[u8]) -> Result<()> {
        self.ops += 1;
        let count = u32::try_from(data.len()).context("WRITE larger than 4 GiB")?;
        let res = self
            .conn
            .write(&WRITE3args {
                file: fh.clone(),
                offset,
                count,
                stable: stable_how::FILE_SYNC,
                data: Opaque::borrowed(data),
            })
            .await
            .with_context(|| format!("WRITE at {offset}"))?;
        let ok = check_status(&format!("WRITE at {offset}"), res)?;
        if ok.count != count {
            bail!(
                "WRITE at {offset}: server wrote {} of {count} bytes",
                ok.count
            );
        }
        if ok.committed != stable_how::FILE_SYNC {
            bail!(
                "WRITE at {offset}: asked FILE_SYNC, server committed only {}",
                ok.committed
            );
        }
        Ok(())
    }

    /// READ (RFC 1813 section 3.3.6). Returns the data and the EOF flag; a
    /// reply longer than asked, or whose count disagrees with its data, is
    /// an error.
    pub async fn read(&mut self, fh: &nfs_fh3, offset: u64, count: u32) -> Result<(Vec<u8>, bool)> {
        self.ops += 1;
        let res = self
            .conn
            .read(&READ3args {
                file: fh.clone(),
                offset,
                count,
            })
            .await
            .with_context(|| format!("READ at {offset}"))?;
        let ok = check_status(&format!("READ at {offset}"), res)?;
        let data = ok.data.into_owned();
        if data.len() > count as usize || ok.count as usize != data.len() {
            bail!(
                "READ at {offset}: asked {count} bytes, reply says {} and carries {}",
                ok.count,
                data.len()
            );
        }
        Ok((data, ok.eof))
    }

    /// GETATTR (RFC 1813 section 3.3.1).
    pub async fn getattr(&mut self, fh: &nfs_fh3) -> Result<fattr3> {
        self.ops += 1;
        let res = self
            .conn
            .getattr(&GETATTR3args { object: fh.clone() })
            .await
            .context("GETATTR")?;
        Ok(check_status("GETATTR", res)?.obj_attributes)
    }

    /// REMOVE (RFC 1813 section 3.3.12).
    pub async fn remove(&mut self, dir: &nfs_fh3, name: &str) -> Result<()> {
        self.ops += 1;
        let res = self
            .conn
            .remove(&REMOVE3args {
                object: dirop(dir, name),
            })
            .await
            .with_context(|| format!("REMOVE {name}"))?;
        check_status(&format!("REMOVE {name}"), res).map(|_| ())
    }

    /// RENAME within or across directories (RFC 1813 section 3.3.14).
    pub async fn rename(
        &mut self,
        from_dir: &nfs_fh3,
        from: &str,
        to_dir: &nfs_fh3,
        to: &str,
    ) -> Result<()> {
        self.ops += 1;
        let res = self
            .conn
            .rename(&RENAME3args {
                from: dirop(from_dir, from),
                to: dirop(to_dir, to),
            })
            .await
            .with_context(|| format!("RENAME {from} -> {to}"))?;
        check_status(&format!("RENAME {from} -> {to}"), res).map(|_| ())
    }

    /// RMDIR (RFC 1813 section 3.3.13).
    pub async fn rmdir(&mut self, dir: &nfs_fh3, name: &str) -> Result<()> {
        self.ops += 1;
        let res = self
            .conn
            .rmdir(&RMDIR3args {
                object: dirop(dir, name),
            })
            .await
            .with_context(|| format!("RMDIR {name}"))?;
        check_status(&format!("RMDIR {name}"), res).map(|_| ())
    }
}

fn dirop<'a>(dir: &nfs_fh3, name: &'a str) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: filename3(Opaque::borrowed(name.as_bytes())),
    }
}
