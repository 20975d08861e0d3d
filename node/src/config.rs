//! Per-node configuration files (TOML) and the key-generation step that writes them.
//!
//! One file per node: its role and id, where it listens, its own secret keys (an ed25519
//! signing key for protocol messages, an x25519 static key for the Noise links), and
//! every node's public keys and address. Files are written mode 0600: they hold secrets.
//! Loading checks everything a node relies on — key encodings, that the secret keys
//! match this node's listed public keys, cluster sizes 3f+1 and 2g+1, ids `0..n` in
//! order — and names the file and the field of the first problem.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_net::{NetworkConfig, NodeId, NoiseKeypair, PeerInfo};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::hex;

/// What a node does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A PBFT agreement replica.
    Agreement,
    /// An execution replica (holds the file system).
    Execution,
    /// A gateway: the BFT client, serving NFS.
    Gateway,
}

/// A peer as written in the file.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub id: u64,
    /// `host:port` the peer listens on (a name is resolved when the node starts).
    pub addr: String,
    /// ed25519 public key, hex.
    pub signing_public: String,
    /// x25519 Noise static public key, hex.
    pub noise_public: String,
}

/// The file as written.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub role: Role,
    pub id: u64,
    /// Where this node accepts links (`ip:port`).
    pub listen: String,
    pub f: usize,
    pub g: usize,
    /// K: execution checkpoint interval; must be the same on every node.
    pub checkpoint_interval: u64,
    /// Data directory (execution: the file system; agreement: its resume point). A
    /// relative path is relative to the config file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Gateways: where NFS + MOUNT are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs_listen: Option<String>,
    /// This node's ed25519 secret key (seed), hex.
    pub signing_key: String,
    /// This node's x25519 Noise static private key, hex.
    pub noise_key: String,
    pub agreement: Vec<PeerEntry>,
    pub execution: Vec<PeerEntry>,
    pub client: Vec<PeerEntry>,
}

/// A checked peer.
#[derive(Clone, Debug)]
pub struct Peer {
    pub id: u64,
    pub addr: String,
    pub signing: VerifyingKey,
    pub noise_public: [u8; 32],
}

/// A loaded and checked node configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub path: PathBuf,
    pub role: Role,
    pub id: u64,
    pub listen: SocketAddr,
    pub f: usize,
    pub g: usize,
    pub checkpoint_interval: u64,
    pub data_dir: Option<PathBuf>,
    pub nfs_listen: Option<SocketAddr>,
    pub signing_key: SigningKey,
    pub noise: NoiseKeypair,
    pub agreement: Vec<Peer>,
    pub execution: Vec<Peer>,
    pub clients: Vec<Peer>,
}

fn err(path: &Path, field: &str, problem: impl Into<String>) -> NodeError {
    NodeError::Config {
        file: path.to_path_buf(),
        field: field.to_string(),
        problem: problem.into(),
    }
}

impl NodeConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<NodeConfig, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|e| err(path, "(file)", e.to_string()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| err(path, "(syntax)", e.to_string()))?;
        Self::from_file(path, file)
    }

    /// Checks a parsed file (`path` names it in errors and anchors relative paths).
    pub fn from_file(path: &Path, file: ConfigFile) -> Result<NodeConfig, NodeError> {
        let key32 = |field: &str, text: &str| {
            hex::decode32(text).ok_or_else(|| err(path, field, "expected 64 hex digits (32 bytes)"))
        };
        let peers = |field: &str, entries: &[PeerEntry], expected: Option<usize>| {
            if let Some(n) = expected {
                if entries.len() != n {
                    return Err(err(
                        path,
                        field,
                        format!("{} entries, expected {n}", entries.len()),
                    ));
                }
            }
            let mut out = Vec::with_capacity(entries.len());
            for (i, e) in entries.iter().enumerate() {
                let f = format!("{field}[{i}]");
                if e.id != i as u64 {
                    return Err(err(
                        path,
                        &format!("{f}.id"),
                        format!("is {}, expected {i} (ids are 0..n in order)", e.id),
                    ));
                }
                let signing = VerifyingKey::from_bytes(&key32(
                    &format!("{f}.signing_public"),
                    &e.signing_public,
                )?)
                .map_err(|_| {
                    err(
                        path,
                        &format!("{f}.signing_public"),
                        "not a valid ed25519 public key",
                    )
                })?;
                out.push(Peer {
                    id: e.id,
                    addr: e.addr.clone(),
                    signing,
                    noise_public: key32(&format!("{f}.noise_public"), &e.noise_public)?,
                });
            }
            Ok(out)
        };
        if file.f == 0 && file.g == 0 {
            return Err(err(
                path,
                "f",
                "f and g are both 0: nothing is tolerated (use f, g >= 1)",
            ));
        }
        if file.checkpoint_interval == 0 {
            return Err(err(path, "checkpoint_interval", "must be positive"));
        }
        let agreement = peers("agreement", &file.agreement, Some(3 * file.f + 1))?;
        let execution = peers("execution", &file.execution, Some(2 * file.g + 1))?;
        let clients = peers("client", &file.client, None)?;
        if clients.is_empty() {
            return Err(err(path, "client", "no clients (gateways) listed"));
        }
        let listen: SocketAddr = file
            .listen
            .parse()
            .map_err(|_| err(path, "listen", format!("{:?} is not ip:port", file.listen)))?;
        let nfs_listen = match &file.nfs_listen {
            Some(a) => Some(
                a.parse()
                    .map_err(|_| err(path, "nfs_listen", format!("{a:?} is not ip:port")))?,
            ),
            None => None,
        };
        let signing_key = SigningKey::from_bytes(&key32("signing_key", &file.signing_key)?);
        let noise = NoiseKeypair::from_private(key32("noise_key", &file.noise_key)?)
            .map_err(|e| err(path, "noise_key", e.to_string()))?;
        let (list, name) = match file.role {
            Role::Agreement => (&agreement, "agreement"),
            Role::Execution => (&execution, "execution"),
            Role::Gateway => (&clients, "client"),
        };
        let me = list
            .get(usize::try_from(file.id).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                err(
                    path,
                    "id",
                    format!("{} is not listed in [[{name}]]", file.id),
                )
            })?;
        if me.signing != signing_key.verifying_key() {
            return Err(err(
                path,
                "signing_key",
                format!("does not match {name}[{}].signing_public", file.id),
            ));
        }
        if me.noise_public != noise.public {
            return Err(err(
                path,
                "noise_key",
                format!("does not match {name}[{}].noise_public", file.id),
            ));
        }
        if file.role == Role::Gateway && nfs_listen.is_none() {
            return Err(err(
                path,
                "nfs_listen",
                "a gateway needs an NFS listen address",
            ));
        }
        let data_dir = file.data_dir.as_ref().map(|d| {
            let d = PathBuf::from(d);
            if d.is_relative() {
                path.parent().unwrap_or(Path::new(".")).join(d)
            } else {
                d
            }
        });
        if file.role == Role::Execution && data_dir.is_none() {
            return Err(err(
                path,
                "data_dir",
                "an execution replica needs a data directory",
            ));
        }
        Ok(NodeConfig {
            path: path.to_path_buf(),
            role: file.role,
            id: file.id,
            listen,
            f: file.f,
            g: file.g,
            checkpoint_interval: file.checkpoint_interval,
            data_dir,
            nfs_listen,
            signing_key,
            noise,
            agreement,
            execution,
            clients,
        })
    }

    /// This node's identity on the links.
    pub fn node_id(&self) -> NodeId {
        match self.role {
            Role::Agreement => NodeId::Agreement(self.id as u32),
            Role::Execution => NodeId::Execution(self.id as u32),
            Role::Gateway => NodeId::Client(self.id),
        }
    }

    pub fn agreement_keys(&self) -> Vec<VerifyingKey> {
        self.agreement.iter().map(|p| p.signing).collect()
    }
    pub fn execution_keys(&self) -> Vec<VerifyingKey> {
        self.execution.iter().map(|p| p.signing).collect()
    }
    pub fn client_keys(&self) -> Vec<VerifyingKey> {
        self.clients.iter().map(|p| p.signing).collect()
    }

    /// The link configuration: every node as a peer, addresses resolved (a name that does
    /// not resolve yet, e.g. a container not started, is retried for up to 30 s).
    pub async fn network_config(&self) -> Result<NetworkConfig, NodeError> {
        let mut peers = Vec::new();
        type IdOf = fn(u64) -> NodeId;
        let groups: [(&[Peer], IdOf); 3] = [
            (&self.agreement, |i| NodeId::Agreement(i as u32)),
            (&self.execution, |i| NodeId::Execution(i as u32)),
            (&self.clients, NodeId::Client),
        ];
        for (list, id_of) in groups {
            for p in list {
                let id = id_of(p.id);
                if id == self.node_id() {
                    continue;
                }
                peers.push(PeerInfo {
                    id,
                    addr: Some(resolve(&p.addr).await?),
                    noise_public: p.noise_public,
                });
            }
        }
        Ok(NetworkConfig::new(
            self.node_id(),
            Some(self.listen),
            self.noise.clone(),
            peers,
        ))
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr, NodeError> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    let mut last = String::new();
    for _ in 0..60 {
        match tokio::net::lookup_host(addr).await {
            Ok(mut it) => {
                if let Some(a) = it.find(|a| a.is_ipv4()) {
                    return Ok(a);
                }
                last = "no IPv4 address".into();
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(NodeError::Resolve {
        addr: addr.to_string(),
        problem: last,
    })
}

/// How `keygen` lays out addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Everything on 127.0.0.1, one port per node from the base port.
    Loopback,
    /// One container per node, named `agreement-<i>`, `execution-<i>`, `gateway-<i>`;
    /// every node listens on 0.0.0.0 at the base port, data in /data.
    Docker,
}

/// What `keygen` generates.
#[derive(Clone, Debug)]
pub struct KeygenOptions {
    pub f: usize,
    pub g: usize,
    pub clients: usize,
    pub out: PathBuf,
    pub base_port: u16,
    /// First NFS port of the gateways (gateway i serves on `nfs_port + i`).
    pub nfs_port: u16,
    pub layout: Layout,
    pub checkpoint_interval: u64,
}

/// The name of node `role`/`id`'s config file inside the keygen output directory.
pub fn file_name(role: Role, id: u64) -> String {
    match role {
        Role::Agreement => format!("agreement-{id}.toml"),
        Role::Execution => format!("execution-{id}.toml"),
        Role::Gateway => format!("gateway-{id}.toml"),
    }
}

/// Generates fresh keys for 3f+1 agreement, 2g+1 execution and `clients` gateway nodes
/// and writes one config file per node (mode 0600). Returns the files written.
pub fn keygen(opts: &KeygenOptions) -> Result<Vec<PathBuf>, NodeError> {
    let n = 3 * opts.f + 1;
    let m = 2 * opts.g + 1;
    if opts.clients == 0 {
        return Err(NodeError::Other(
            "keygen: at least one client (gateway) is needed".into(),
        ));
    }
    struct Gen {
        role: Role,
        id: u64,
        signing: SigningKey,
        noise: NoiseKeypair,
        port: u16,
    }
    let mut nodes = Vec::new();
    let mut port = opts.base_port;
    for (role, count) in [
        (Role::Agreement, n),
        (Role::Execution, m),
        (Role::Gateway, opts.clients),
    ] {
        for id in 0..count as u64 {
            let seed = NoiseKeypair::generate()?.private;
            nodes.push(Gen {
                role,
                id,
                signing: SigningKey::from_bytes(&seed),
                noise: NoiseKeypair::generate()?,
                port: if opts.layout == Layout::Docker {
                    opts.base_port
                } else {
                    port
                },
            });
            port = port
                .checked_add(1)
                .ok_or_else(|| NodeError::Other("keygen: port range overflows".into()))?;
        }
    }
    let host = |g: &Gen| match opts.layout {
        Layout::Loopback => "127.0.0.1".to_string(),
        Layout::Docker => match g.role {
            Role::Agreement => format!("agreement-{}", g.id),
            Role::Execution => format!("execution-{}", g.id),
            Role::Gateway => format!("gateway-{}", g.id),
        },
    };
    let entries = |role: Role| -> Vec<PeerEntry> {
        nodes
            .iter()
            .filter(|g| g.role == role)
            .map(|g| PeerEntry {
                id: g.id,
                addr: format!("{}:{}", host(g), g.port),
                signing_public: hex::encode(g.signing.verifying_key().as_bytes()),
                noise_public: hex::encode(&g.noise.public),
            })
            .collect()
    };
    let (agreement, execution, client) = (
        entries(Role::Agreement),
        entries(Role::Execution),
        entries(Role::Gateway),
    );
    std::fs::create_dir_all(&opts.out).map_err(|source| NodeError::Write {
        path: opts.out.clone(),
        source,
    })?;
    let mut written = Vec::new();
    for g in &nodes {
        let docker = opts.layout == Layout::Docker;
        let listen_ip = if docker { "0.0.0.0" } else { "127.0.0.1" };
        let data_dir = match (g.role, docker) {
            (Role::Gateway, _) => None,
            (_, true) => Some("/data".to_string()),
            (Role::Agreement, false) => Some(format!("../agreement-{}", g.id)),
            (Role::Execution, false) => Some(format!("../exec-{}", g.id)),
        };
        let nfs_listen = (g.role == Role::Gateway).then(|| {
            if docker {
                format!("0.0.0.0:{}", opts.nfs_port)
            } else {
                format!("127.0.0.1:{}", u64::from(opts.nfs_port) + g.id)
            }
        });
        let file = ConfigFile {
            role: g.role,
            id: g.id,
            listen: format!("{listen_ip}:{}", g.port),
            f: opts.f,
            g: opts.g,
            checkpoint_interval: opts.checkpoint_interval,
            data_dir,
            nfs_listen,
            signing_key: hex::encode(g.signing.as_bytes()),
            noise_key: hex::encode(&g.noise.private),
            agreement: agreement.clone(),
            execution: execution.clone(),
            client: client.clone(),
        };
        let text = toml::to_string(&file).map_err(|e| NodeError::Other(format!("keygen: {e}")))?;
        let path = opts.out.join(file_name(g.role, g.id));
        write_secret(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `text` to a new file readable by its owner only (it holds secret keys).
fn write_secret(path: &Path, text: &str) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let werr = |source| NodeError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(werr)?;
    // An existing file keeps its mode on open: tighten it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(werr)?;
    f.write_all(text.as_bytes()).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    Ok(())
}
