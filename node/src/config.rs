//! Per-node configuration files (TOML) and the key-generation step that writes them.
//!
//! One file per node: its role and id, where it listens, its own secret keys (an ed25519
//! signing key for protocol messages, an x25519 static key for the Noise links), and
//! every node's public keys and address. Files are written mode 0600: they hold secrets.
//! Loading checks everything a node relies on — key encodings, that the secret keys
//! match this node's listed public keys, cluster sizes 3f+1, 2g+1 and (h+1)², ids `0..n`
//! in order — and names the file and the field of the first problem.
//!
//! Two replicated configurations share the format. Without `h` it is `separate`
//! (agreement → execution, ed25519-signed replies). With `h` it is the privacy firewall
//! (Yin et al., SOSP 2003, §4): (h+1)² filters in h+1 rows, the execution cluster's
//! threshold key set (`threshold_public`, every node; `threshold_share`, execution
//! replicas only) and its g+1-of-2g+1 signed replies.
//!
//! The body key that seals request and reply bodies (issue 4 §3) is written into the
//! files of gateways and execution replicas ONLY: an agreement or filter config that
//! holds one is refused, because routing nodes never holding a key that opens a body is
//! the confidentiality promise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_crypto::{BodyKey, ThresholdSigner, ThresholdVerifier};
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
    /// A filter of the privacy firewall (firewall configuration only).
    Filter,
}

/// Largest h accepted: (h+1)² filters, each row fully connected to the next.
pub const MAX_H: usize = 15;
/// Largest accepted threshold key set or share, in bytes (hex in the file is twice that).
const MAX_THRESHOLD_KEY_BYTES: usize = 64 * 1024;

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
    /// Filter faults tolerated: (h+1)² filters in h+1 rows. Absent: the `separate`
    /// configuration (no firewall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<usize>,
    /// K: execution checkpoint interval; must be the same on every node.
    pub checkpoint_interval: u64,
    /// Agreement nodes: whether the f backups of each view keep their votes to
    /// themselves while the other 2f+1 make progress (`palisade_agreement::quiet`).
    /// Absent: yes. Across hosts where the fastest 2f+1 of all 3f+1 would otherwise form
    /// each quorum, `false` may answer sooner at the price of more messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_votes: Option<bool>,
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
    /// Firewall: the execution cluster's threshold public key set, hex (every node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_public: Option<String>,
    /// Firewall: this execution replica's secret share of that key set, hex (execution
    /// replicas only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_share: Option<String>,
    /// The key that seals request and reply bodies, hex: gateways and execution replicas
    /// ONLY (refused anywhere else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_key: Option<String>,
    pub agreement: Vec<PeerEntry>,
    pub execution: Vec<PeerEntry>,
    pub client: Vec<PeerEntry>,
    /// Firewall: the (h+1)² filters, flat ids `row * (h+1) + column`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<PeerEntry>,
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
    /// `Some(h)`: the firewall configuration; `None`: `separate`.
    pub h: Option<usize>,
    pub checkpoint_interval: u64,
    /// See [`ConfigFile::quiet_votes`] (absent there: true).
    pub quiet_votes: bool,
    pub data_dir: Option<PathBuf>,
    pub nfs_listen: Option<SocketAddr>,
    pub signing_key: SigningKey,
    pub noise: NoiseKeypair,
    pub agreement: Vec<Peer>,
    pub execution: Vec<Peer>,
    pub clients: Vec<Peer>,
    /// Firewall: the filters by flat id (empty in `separate`).
    pub filters: Vec<Peer>,
    /// Firewall: the execution cluster's threshold key set (every node).
    pub threshold: Option<Arc<dyn ThresholdVerifier>>,
    /// Firewall, execution replicas: this replica's share.
    pub threshold_signer: Option<Arc<dyn ThresholdSigner>>,
    /// Gateways and execution replicas: the body sealing key (always in the firewall
    /// configuration; in `separate`, configs written before sealing have none, and then
    /// bodies travel unsealed).
    pub body_key: Option<BodyKey>,
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
        if let Some(h) = file.h {
            if h > MAX_H {
                return Err(err(path, "h", format!("{h} is more than {MAX_H}")));
            }
        }
        let filters = match file.h {
            Some(h) => peers("filter", &file.filter, Some((h + 1) * (h + 1)))?,
            None if !file.filter.is_empty() => {
                return Err(err(
                    path,
                    "filter",
                    "filters are listed but `h` is not set (filters exist only in the \
                     firewall configuration)",
                ))
            }
            None => Vec::new(),
        };
        if file.role == Role::Filter && file.h.is_none() {
            return Err(err(
                path,
                "h",
                "a filter needs `h` (the firewall configuration)",
            ));
        }
        let (threshold, threshold_signer) = threshold_keys(path, &file)?;
        let body_key = body_key(path, &file)?;
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
            Role::Filter => (&filters, "filter"),
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
            h: file.h,
            checkpoint_interval: file.checkpoint_interval,
            quiet_votes: file.quiet_votes.unwrap_or(true),
            data_dir,
            nfs_listen,
            signing_key,
            noise,
            agreement,
            execution,
            clients,
            filters,
            threshold,
            threshold_signer,
            body_key,
        })
    }

    /// This node's identity on the links.
    pub fn node_id(&self) -> NodeId {
        match self.role {
            Role::Agreement => NodeId::Agreement(self.id as u32),
            Role::Execution => NodeId::Execution(self.id as u32),
            Role::Gateway => NodeId::Client(self.id),
            Role::Filter => NodeId::Filter(self.id as u32),
        }
    }

    /// Whether this is the firewall configuration.
    pub fn is_firewall(&self) -> bool {
        self.h.is_some()
    }

    /// Filters per row (h+1); 0 without a firewall.
    pub fn filter_width(&self) -> u32 {
        self.h.map_or(0, |h| h as u32 + 1)
    }

    /// The filters of `row` (0 = top, next to agreement; h = bottom, next to execution).
    pub fn filter_row(&self, row: u32) -> Vec<NodeId> {
        let w = self.filter_width();
        (0..w).map(|c| NodeId::filter(row, c, w)).collect()
    }

    /// The top filter row (empty without a firewall).
    pub fn top_filters(&self) -> Vec<NodeId> {
        self.filter_row(0)
    }

    /// The bottom filter row (empty without a firewall).
    pub fn bottom_filters(&self) -> Vec<NodeId> {
        self.filter_row(self.filter_width().saturating_sub(1))
    }

    /// The node ids this node has links with. The link layer refuses everyone else's
    /// handshake, so this list IS the topology: in the firewall configuration an
    /// execution replica's only peers are the bottom filters and the other replicas, and
    /// an agreement node's are its peers, the top filters and the gateways (SOSP 2003 §4:
    /// every path out of the execution cluster crosses every filter row).
    pub fn link_peers(&self) -> Vec<NodeId> {
        let agreement = (0..self.agreement.len() as u32).map(NodeId::Agreement);
        let execution = (0..self.execution.len() as u32).map(NodeId::Execution);
        let clients = self.clients.iter().map(|p| NodeId::Client(p.id));
        let mut out: Vec<NodeId> = match (self.role, self.is_firewall()) {
            (Role::Agreement, false) => agreement.chain(execution).chain(clients).collect(),
            (Role::Agreement, true) => agreement.chain(self.top_filters()).chain(clients).collect(),
            (Role::Execution, false) => agreement.chain(execution).chain(clients).collect(),
            (Role::Execution, true) => execution.chain(self.bottom_filters()).collect(),
            (Role::Gateway, false) => agreement.chain(execution).collect(),
            (Role::Gateway, true) => agreement.collect(),
            (Role::Filter, _) => {
                let w = self.filter_width().max(1);
                let row = self.id as u32 / w;
                let above: Vec<NodeId> = if row == 0 {
                    agreement.collect()
                } else {
                    self.filter_row(row - 1)
                };
                let below: Vec<NodeId> = if row + 1 >= w {
                    execution.collect()
                } else {
                    self.filter_row(row + 1)
                };
                above.into_iter().chain(below).collect()
            }
        };
        let me = self.node_id();
        out.retain(|p| *p != me);
        out
    }

    fn peer(&self, id: NodeId) -> Option<&Peer> {
        let (list, i) = match id {
            NodeId::Agreement(i) => (&self.agreement, u64::from(i)),
            NodeId::Execution(i) => (&self.execution, u64::from(i)),
            NodeId::Client(i) => (&self.clients, i),
            NodeId::Filter(i) => (&self.filters, u64::from(i)),
        };
        list.get(usize::try_from(i).ok()?)
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
        for id in self.link_peers() {
            let Some(p) = self.peer(id) else { continue };
            peers.push(PeerInfo {
                id,
                addr: Some(resolve(&p.addr).await?),
                noise_public: p.noise_public,
            });
        }
        Ok(NetworkConfig::new(
            self.node_id(),
            Some(self.listen),
            self.noise.clone(),
            peers,
        ))
    }
}

/// The firewall's threshold keys of a file: the key set (every node of the firewall
/// configuration) and, for an execution replica, its share, checked against the set.
type ThresholdKeys = (
    Option<Arc<dyn ThresholdVerifier>>,
    Option<Arc<dyn ThresholdSigner>>,
);

fn threshold_keys(path: &Path, file: &ConfigFile) -> Result<ThresholdKeys, NodeError> {
    let bytes = |field: &str, text: &str| {
        hex::decode(text, MAX_THRESHOLD_KEY_BYTES)
            .ok_or_else(|| err(path, field, "expected hex digits (an even number)"))
    };
    if file.h.is_none() {
        // `separate`: replies are ed25519-signed; a threshold key here means a file of
        // the wrong configuration.
        for (field, v) in [
            ("threshold_public", &file.threshold_public),
            ("threshold_share", &file.threshold_share),
        ] {
            if v.is_some() {
                return Err(err(
                    path,
                    field,
                    "threshold keys belong to the firewall configuration, but `h` is not set",
                ));
            }
        }
        return Ok((None, None));
    }
    let public_text = file.threshold_public.as_deref().ok_or_else(|| {
        err(
            path,
            "threshold_public",
            "missing: every node of the firewall configuration needs the execution \
             cluster's threshold key set",
        )
    })?;
    let public = bytes("threshold_public", public_text)?;
    let verifier = palisade_crypto::verifier_from_bytes(&public)
        .map_err(|e| err(path, "threshold_public", e.to_string()))?;
    if verifier.threshold() != file.g || verifier.parties() != 2 * file.g + 1 {
        return Err(err(
            path,
            "threshold_public",
            format!(
                "a key set for g = {} of {} parties; expected g = {} of {}",
                verifier.threshold(),
                verifier.parties(),
                file.g,
                2 * file.g + 1
            ),
        ));
    }
    let signer =
        match (file.role, &file.threshold_share) {
            (Role::Execution, Some(text)) => {
                let share = bytes("threshold_share", text)?;
                let index = u32::try_from(file.id).unwrap_or(u32::MAX);
                Some(
                    palisade_crypto::signer_from_bytes(&public, index, &share)
                        .map_err(|e| err(path, "threshold_share", e.to_string()))?,
                )
            }
            (Role::Execution, None) => return Err(err(
                path,
                "threshold_share",
                "missing: an execution replica of the firewall configuration signs reply shares",
            )),
            (_, Some(_)) => {
                return Err(err(
                    path,
                    "threshold_share",
                    "only execution replicas hold a threshold share",
                ))
            }
            (_, None) => None,
        };
    Ok((Some(verifier), signer))
}

/// The body key of a file: refused outright on agreement and filter nodes (they route
/// sealed bodies and must never be able to open one), required on gateways and execution
/// replicas of the firewall configuration.
fn body_key(path: &Path, file: &ConfigFile) -> Result<Option<BodyKey>, NodeError> {
    match (file.role, &file.body_key) {
        (Role::Agreement | Role::Filter, Some(_)) => Err(err(
            path,
            "body_key",
            "agreement and filter nodes must never hold the body key (they route sealed \
             bodies unread); remove it",
        )),
        (Role::Agreement | Role::Filter, None) => Ok(None),
        (Role::Gateway | Role::Execution, Some(text)) => {
            let bytes = hex::decode32(text)
                .ok_or_else(|| err(path, "body_key", "expected 64 hex digits (32 bytes)"))?;
            BodyKey::from_bytes(bytes)
                .map(Some)
                .map_err(|e| err(path, "body_key", e.to_string()))
        }
        (Role::Gateway | Role::Execution, None) if file.h.is_some() => Err(err(
            path,
            "body_key",
            "missing: gateways and execution replicas of the firewall configuration seal bodies",
        )),
        (Role::Gateway | Role::Execution, None) => Ok(None),
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
    /// One container per node, named `agreement-<i>`, `execution-<i>`, `gateway-<i>`,
    /// `filter-<i>`; every node listens on 0.0.0.0 at the base port, data in /data.
    Docker,
}

/// What `keygen` generates.
#[derive(Clone, Debug)]
pub struct KeygenOptions {
    pub f: usize,
    pub g: usize,
    /// `Some(h)`: the firewall configuration with (h+1)² filters and a threshold key set
    /// for the execution cluster; `None`: `separate`.
    pub h: Option<usize>,
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
        Role::Filter => format!("filter-{id}.toml"),
    }
}

/// A node's name: `agreement-<i>`, `execution-<i>`, `gateway-<i>` or `filter-<i>` (also its
/// container name in the docker layout).
pub fn node_name(role: Role, id: u64) -> String {
    match role {
        Role::Agreement => format!("agreement-{id}"),
        Role::Execution => format!("execution-{id}"),
        Role::Gateway => format!("gateway-{id}"),
        Role::Filter => format!("filter-{id}"),
    }
}

/// Generates fresh keys for 3f+1 agreement, 2g+1 execution, `clients` gateway and (with
/// `h`) (h+1)² filter nodes, and writes one config file per node (mode 0600). Ports are
/// given in that order. Returns the files written.
///
/// Every replicated configuration gets a body key (for gateways and execution replicas
/// only); the firewall configuration also gets a threshold key set dealt for g+1 of 2g+1
/// (`palisade_crypto::deal`, BLS through blst), whose public part every node holds and
/// whose shares only the execution replicas hold.
pub fn keygen(opts: &KeygenOptions) -> Result<Vec<PathBuf>, NodeError> {
    let n = 3 * opts.f + 1;
    let m = 2 * opts.g + 1;
    if opts.clients == 0 {
        return Err(NodeError::Other(
            "keygen: at least one client (gateway) is needed".into(),
        ));
    }
    let filters = match opts.h {
        Some(h) if h > MAX_H => {
            return Err(NodeError::Other(format!(
                "keygen: h = {h} is more than {MAX_H}"
            )))
        }
        Some(h) => (h + 1) * (h + 1),
        None => 0,
    };
    let mut rng = rand::rng();
    let threshold = match opts.h {
        Some(_) => Some(
            palisade_crypto::deal(palisade_crypto::DEFAULT_SCHEME, opts.g, m, &mut rng)
                .map_err(|e| NodeError::Other(format!("keygen: threshold keys: {e}")))?,
        ),
        None => None,
    };
    let body_key = BodyKey::generate(&mut rng)
        .map_err(|e| NodeError::Other(format!("keygen: body key: {e}")))?;
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
        (Role::Filter, filters),
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
        Layout::Docker => node_name(g.role, g.id),
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
    let (agreement, execution, client, filter) = (
        entries(Role::Agreement),
        entries(Role::Execution),
        entries(Role::Gateway),
        entries(Role::Filter),
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
            (Role::Gateway | Role::Filter, _) => None,
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
            h: opts.h,
            checkpoint_interval: opts.checkpoint_interval,
            quiet_votes: None,
            data_dir,
            nfs_listen,
            signing_key: hex::encode(g.signing.as_bytes()),
            noise_key: hex::encode(&g.noise.private),
            threshold_public: threshold.as_ref().map(|t| hex::encode(&t.public)),
            threshold_share: match (g.role, &threshold) {
                (Role::Execution, Some(t)) => usize::try_from(g.id)
                    .ok()
                    .and_then(|i| t.shares.get(i))
                    .map(|s| hex::encode(s)),
                _ => None,
            },
            // Only the two ends of the sealed channel (issue 4 §3).
            body_key: matches!(g.role, Role::Gateway | Role::Execution)
                .then(|| hex::encode(&body_key.to_bytes())),
            agreement: agreement.clone(),
            execution: execution.clone(),
            client: client.clone(),
            filter: filter.clone(),
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
