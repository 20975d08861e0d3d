//! Targets: where the workloads run. Either an external endpoint
//! (`--target HOST:PORT`) or a server this process starts as a child on a free
//! loopback port (`--spawn KIND`), waits for, and kills when done, on error
//! and on Ctrl-C alike (the [`SpawnedServer`] guard kills it on drop).
//!
//! Every spawned kind runs as its own process so that all of them pay the
//! same process, loopback and scheduling costs: the comparison is fair.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::client::{Client, Endpoint};

/// The kinds of server `--spawn` can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpawnKind {
    /// The in-memory nfsserve demo port (`palisade-bench serve-memfs`).
    Memfs,
    /// `palisade up --mode unreplicated`.
    Unreplicated,
    /// `palisade up --mode separate` (gateway, 4 agreement and 3 execution nodes).
    Separate,
    /// `palisade up --mode firewall` (separate plus (h+1)² filters between
    /// agreement and execution).
    Firewall,
}

impl SpawnKind {
    pub fn name(self) -> &'static str {
        match self {
            SpawnKind::Memfs => "memfs",
            SpawnKind::Unreplicated => "unreplicated",
            SpawnKind::Separate => "separate",
            SpawnKind::Firewall => "firewall",
        }
    }

    /// What the report says this target is.
    pub fn description(self) -> String {
        match self {
            SpawnKind::Memfs => {
                "spawned: nfsserve's in-memory demo (`palisade-bench serve-memfs`)".to_string()
            }
            k => format!(
                "spawned: `palisade up --mode {}` on loopback, fresh data dir",
                k.name()
            ),
        }
    }
}

/// An endpoint someone else runs: `[NAME=]HOST:PORT[:EXPORT][,mount=PORT][,pid=PID]`.
#[derive(Debug, Clone, PartialEq)]
pub struct External {
    /// The report's name for it (default `HOST:PORT`).
    pub name: Option<String>,
    pub host: String,
    pub port: u16,
    /// Its own export path (default: `--export`).
    pub export: Option<String>,
    /// MOUNT's port when it is not the NFS port (nfs-ganesha).
    pub mount_port: Option<u16>,
    /// The server's process on this machine, whose CPU time is then reported
    /// ([`crate::cpu`]).
    pub pid: Option<u32>,
}

impl External {
    pub fn plain(host: String, port: u16) -> External {
        External {
            name: None,
            host,
            port,
            export: None,
            mount_port: None,
            pid: None,
        }
    }
}

/// What to run against, before it is started.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    External(External),
    Spawn(SpawnKind),
}

impl TargetSpec {
    pub fn name(&self) -> String {
        match self {
            TargetSpec::External(e) => e
                .name
                .clone()
                .unwrap_or_else(|| format!("{}:{}", e.host, e.port)),
            TargetSpec::Spawn(k) => k.name().to_string(),
        }
    }

    /// What the report says this target is.
    pub fn description(&self, export: &str) -> String {
        match self {
            TargetSpec::External(e) => format!(
                "external: {}:{} export {}{}",
                e.host,
                e.port,
                e.export.as_deref().unwrap_or(export),
                e.mount_port
                    .map(|p| format!(", MOUNT on port {p}"))
                    .unwrap_or_default()
            ),
            TargetSpec::Spawn(k) => k.description(),
        }
    }
}

/// Parses `[NAME=]HOST:PORT[:EXPORT][,mount=PORT][,pid=PID]`, e.g.
/// `ganesha=127.0.0.1:20490:/tmp/export,mount=20491` or `[::1]:2049`.
pub fn parse_named_target(s: &str) -> Result<External, String> {
    let (name, rest) = match s.split_once('=') {
        Some((n, r)) if !n.contains(':') && !n.contains(',') => {
            let n = n.trim();
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "bad target name {n:?} in {s:?} (letters, digits, - _ .)"
                ));
            }
            (Some(n.to_string()), r)
        }
        _ => (None, s),
    };
    let (addr, options) = match rest.split_once(',') {
        Some((a, o)) => (a, Some(o)),
        None => (rest, None),
    };
    let mut mount_port = None;
    let mut pid = None;
    if let Some(o) = options {
        for opt in o.split(',') {
            match opt.split_once('=') {
                Some(("mount", p)) => {
                    mount_port = Some(p.parse().map_err(|_| format!("bad mount port in {s:?}"))?)
                }
                Some(("pid", p)) => pid = Some(p.parse().map_err(|_| format!("bad pid in {s:?}"))?),
                _ => return Err(format!("unknown target option {opt:?} in {s:?}")),
            }
        }
    }
    // The export, when given, starts at the first ":/".
    let (hp, export) = match addr.find(":/") {
        Some(i) => (&addr[..i], Some(addr[i + 1..].to_string())),
        None => (addr, None),
    };
    let (host, port) = parse_host_port(hp)?;
    Ok(External {
        name,
        host,
        port,
        export,
        mount_port,
        pid,
    })
}

/// Parses `HOST:PORT` (IPv6 as `[::1]:PORT`).
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("expected HOST:PORT, got {s:?}"))?;
    let port: u16 = port.parse().map_err(|_| format!("bad port in {s:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("empty host in {s:?}"));
    }
    Ok((host.to_string(), port))
}

/// Options the spawner needs.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// Explicit path of the `palisade` binary.
    pub palisade_bin: Option<PathBuf>,
    /// How long a spawned server may take to answer.
    pub ready_timeout: Duration,
}

/// A target that is ready to take workloads.
pub struct Target {
    pub name: String,
    pub endpoint: Endpoint,
    /// The server's process, when known: its CPU time is measured around each run.
    pub pid: Option<u32>,
    /// Kept alive for as long as the target; dropping it kills the server.
    _server: Option<SpawnedServer>,
}

impl Target {
    /// The CPU time the server has used so far, if its process is known and readable (a
    /// server that is not ours, or that died, reports nothing, and says why).
    pub fn server_cpu(&self) -> Option<Duration> {
        self.read_server("the CPU time", crate::cpu::process_cpu)
    }

    /// The most memory the server has held so far (`VmHWM`), if its process is known and
    /// readable; as [`Target::server_cpu`], a failure says why and reports nothing.
    pub fn server_peak_memory(&self) -> Option<u64> {
        self.read_server("the peak memory", crate::memory::peak_resident_bytes)
    }

    /// `read` of the server's process, if known; a failure is told on stderr.
    fn read_server<T>(&self, what: &str, read: fn(u32) -> std::io::Result<T>) -> Option<T> {
        let pid = self.pid?;
        read(pid)
            .map_err(|e| {
                eprintln!(
                    "[bench] {}: cannot read {what} of process {pid}: {e}",
                    self.name
                )
            })
            .ok()
    }

    /// Starts (if needed) and connects to `spec`.
    pub async fn start(spec: &TargetSpec, export: &str, opts: &SpawnOptions) -> Result<Target> {
        match spec {
            TargetSpec::External(e) => {
                let mut endpoint =
                    Endpoint::resolve(&e.host, e.port, e.export.as_deref().unwrap_or(export))
                        .await?;
                endpoint.mount_port = e.mount_port;
                Ok(Target {
                    name: spec.name(),
                    endpoint,
                    pid: e.pid,
                    _server: None,
                })
            }
            TargetSpec::Spawn(kind) => {
                let mut server = SpawnedServer::start(*kind, opts)?;
                let endpoint = Endpoint {
                    addr: server.addr,
                    export: export.to_string(),
                    mount_port: None,
                };
                server.wait_ready(&endpoint, opts.ready_timeout).await?;
                Ok(Target {
                    name: spec.name(),
                    endpoint,
                    pid: Some(server.child.id()),
                    _server: Some(server),
                })
            }
        }
    }
}

/// A free loopback port: bind port 0, read the port, release it. Another
/// process could take it before the child binds; the readiness check then
/// fails with the child's log, and the user reruns.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Finds the `palisade` binary: the explicit path, else next to this
/// executable, else on PATH.
pub fn find_palisade(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("--palisade-bin {} does not exist", p.display());
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let candidate = dir.join("palisade");
            if candidate.is_file() {
                return Ok(candidate);
            }
            // Test binaries live in target/<profile>/deps; the binary is one up.
            if let Some(up) = dir.parent() {
                let candidate = up.join("palisade");
                if dir.ends_with("deps") && candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("palisade");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "cannot find the `palisade` binary: give --palisade-bin, put it next to \
         palisade-bench, or on PATH (build it with `cargo build --release -p palisade`)"
    )
}

/// True when `e` is a MOUNT reply that denied the export (as opposed to a
/// server that is not listening yet).
fn mount_denied(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<nfs3_client::ConnectError>(),
            Some(nfs3_client::ConnectError::Mount(
                nfs3_client::MountError::Denied(_)
            ))
        )
    })
}

/// A server running as a child process in its own process group.
pub struct SpawnedServer {
    kind: SpawnKind,
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    /// Holds the log and the server's data directory; removed on drop,
    /// after the child is dead.
    _dir: tempfile::TempDir,
}

impl SpawnedServer {
    fn start(kind: SpawnKind, opts: &SpawnOptions) -> Result<SpawnedServer> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("palisade-bench-{}-", kind.name()))
            .tempdir()
            .context("creating a temp dir for the server")?;
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listen = addr.to_string();
        let mut cmd = match kind {
            SpawnKind::Memfs => {
                let exe = std::env::current_exe().context("locating palisade-bench")?;
                let mut c = Command::new(exe);
                c.args(["serve-memfs", "--listen", &listen]);
                c
            }
            SpawnKind::Unreplicated | SpawnKind::Separate | SpawnKind::Firewall => {
                let bin = find_palisade(opts.palisade_bin.as_deref())?;
                let data = dir.path().join("data");
                std::fs::create_dir(&data).context("creating the server's data dir")?;
                let mut c = Command::new(bin);
                c.arg("up")
                    .args(["--mode", kind.name()])
                    .arg("--data")
                    .arg(&data)
                    .args(["--listen", &listen]);
                c
            }
        };
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).context("creating the server log")?;
        let log_err = log.try_clone().context("cloning the server log handle")?;
        {
            use std::os::unix::process::CommandExt;
            // Own process group: a terminal's Ctrl-C reaches only us, and we
            // can kill the server together with any children it starts.
            cmd.process_group(0);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        eprintln!("[bench] starting {} on {listen}: {cmd:?}", kind.name());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} server", kind.name()))?;
        Ok(SpawnedServer {
            kind,
            child,
            addr,
            log_path,
            _dir: dir,
        })
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
            let _ = f.read_to_string(&mut text);
        }
        if text.trim().is_empty() {
            "(server log is empty)".to_string()
        } else {
            text
        }
    }

    /// Waits until the server mounts and answers NULL, or fails early if it
    /// exits first.
    async fn wait_ready(&mut self, ep: &Endpoint, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_err = anyhow!("no attempt made");
        while Instant::now() < deadline {
            if let Some(status) = self.exited()? {
                bail!(
                    "{} server exited with {status} before answering; its log:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            let attempt = tokio::time::timeout(Duration::from_secs(2), async {
                let mut c = Client::connect(ep).await?;
                c.null().await
            })
            .await;
            match attempt {
                Ok(Ok(())) => {
                    eprintln!("[bench] {} is answering on {}", self.kind.name(), ep.addr);
                    return Ok(());
                }
                Ok(Err(e)) => {
                    // The server is up and refused the export: retrying
                    // cannot help, so say so now rather than at the timeout.
                    if mount_denied(&e) {
                        bail!(
                            "{} server refused to mount {:?}: {e:#}; its log:\n{}",
                            self.kind.name(),
                            ep.export,
                            self.log_tail()
                        );
                    }
                    last_err = e;
                }
                Err(_) => last_err = anyhow!("mount attempt timed out"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "{} server did not answer within {:?} (last error: {last_err:#}); its log:\n{}",
            self.kind.name(),
            timeout,
            self.log_tail()
        )
    }

    fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child.try_wait().context("checking the server process")
    }

    /// Sends `sig` to the server's whole process group.
    fn signal_group(&self, sig: libc::c_int) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group we
        // created for this child (process_group(0) made its pgid its pid).
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        // SIGTERM first so the server can flush and exit cleanly, then
        // SIGKILL after a grace period.
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    self.signal_group(libc::SIGKILL);
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        // Any grandchildren left in the group.
        self.signal_group(libc::SIGKILL);
        eprintln!("[bench] stopped {} server", self.kind.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parsing() {
        assert_eq!(
            parse_host_port("127.0.0.1:11111").unwrap(),
            ("127.0.0.1".to_string(), 11111)
        );
        assert_eq!(
            parse_host_port("[::1]:2049").unwrap(),
            ("::1".to_string(), 2049)
        );
        assert!(parse_host_port("nohost").is_err());
        assert!(parse_host_port("h:99999").is_err());
        assert!(parse_host_port(":1").is_err());
    }

    #[test]
    fn named_targets() {
        assert_eq!(
            parse_named_target("127.0.0.1:11111").unwrap(),
            External::plain("127.0.0.1".into(), 11111)
        );
        let g = parse_named_target("ganesha=127.0.0.1:20490:/tmp/x y,mount=20491").unwrap();
        assert_eq!(g.name.as_deref(), Some("ganesha"));
        assert_eq!((g.host.as_str(), g.port), ("127.0.0.1", 20490));
        assert_eq!(g.export.as_deref(), Some("/tmp/x y"));
        assert_eq!(g.mount_port, Some(20491));
        assert_eq!(g.pid, None);
        let p = parse_named_target("sep=127.0.0.1:12001,pid=4242,mount=12002").unwrap();
        assert_eq!((p.pid, p.mount_port), (Some(4242), Some(12002)));
        let v6 = parse_named_target("k=[::1]:2049:/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 2049));
        assert_eq!(v6.export.as_deref(), Some("/"));
        assert_eq!(TargetSpec::External(v6).name(), "k");
        for bad in [
            "=h:1",
            "a b=h:1",
            "h",
            "n=h:x",
            "h:1,mount=x",
            "h:1,pid=-1",
            "h:1,speed=3",
        ] {
            assert!(parse_named_target(bad).is_err(), "{bad}");
        }
    }
}
