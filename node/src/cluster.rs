//! [`LocalCluster`]: a whole replicated configuration in one process on loopback, each
//! node with its own links and config file, exactly as `palisade node` would run them one
//! per process ([`ClusterMode`]):
//!
//! - `Firewall` (the default of `palisade up`): a gateway, 3f+1 agreement nodes, (h+1)²
//!   filters in h+1 rows and 2g+1 execution nodes, f = g = h = 1 — 12 nodes;
//! - `Separate`: a gateway, 3f+1 agreement and 2g+1 execution nodes (f = g = 1) — 8.
//!
//! Keys and configs are generated into `<data>/keys` on first start and reused after (a
//! data directory made for one mode is refused by the other, with a clear error);
//! execution replicas keep their file systems in `<data>/exec-<i>`, agreement nodes their
//! resume point in `<data>/agreement-<i>`. Filters keep no durable state.
//!
//! **Restart.** The agreement core keeps no durable log, so a cluster restarted as a
//! whole must resume after the execution replicas' state, at a stable checkpoint.
//! [`LocalCluster::shutdown`] therefore first *quiesces*: it waits for the execution
//! replicas to agree on their last sequence and, if that is not a checkpoint boundary,
//! sends no-op requests (GETATTR of the root, each its own batch) until it is one and the
//! checkpoint is stable at every agreement node, which records it (through the firewall:
//! the threshold-signed stable certificate that the filters pass up). On restart the
//! agreement nodes vouch for that checkpoint and resume after it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use palisade_gateway::FileService;
use palisade_wire::fs::{FsOp, ROOT_ID};
use tracing::{info, warn};

use crate::config::{file_name, keygen, KeygenOptions, Layout, NodeConfig, Role};
use crate::error::NodeError;
use crate::gateway_node::GatewayNode;
use crate::handle::{NodeHandle, Probe};

/// K of the local cluster.
pub const LOCAL_CHECKPOINT_INTERVAL: u64 = 64;
/// Most link ports a local cluster uses (the firewall configuration's 12 nodes).
const MAX_NODES: u16 = 12;

/// Which replicated configuration a local cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClusterMode {
    /// Agreement → privacy firewall (2 rows of 2 filters) → execution, threshold-signed
    /// replies and sealed bodies: f = g = h = 1.
    #[default]
    Firewall,
    /// Agreement → execution, no firewall: f = g = 1.
    Separate,
}

impl ClusterMode {
    /// The `h` keygen is given.
    fn h(self) -> Option<usize> {
        match self {
            ClusterMode::Firewall => Some(1),
            ClusterMode::Separate => None,
        }
    }

    /// Link ports (nodes) of the local cluster.
    pub fn nodes(self) -> u16 {
        match self {
            ClusterMode::Firewall => 4 + 4 + 3 + 1,
            ClusterMode::Separate => 4 + 3 + 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClusterMode::Firewall => "firewall",
            ClusterMode::Separate => "separate",
        }
    }
}

/// Where and how a local cluster runs.
#[derive(Clone, Debug)]
pub struct LocalClusterOptions {
    pub mode: ClusterMode,
    pub data: PathBuf,
    /// NFS + MOUNT listen address of the gateway.
    pub nfs_listen: SocketAddr,
    /// First of the consecutive link ports (8 separate, 12 firewall), used when keys are
    /// generated; `None` finds a free block. Ignored when `<data>/keys` exists (its
    /// configs fix the ports).
    pub base_port: Option<u16>,
    pub export_name: Option<String>,
}

/// A running local cluster.
pub struct LocalCluster {
    mode: ClusterMode,
    keys: PathBuf,
    agreement: Vec<Option<NodeHandle>>,
    filters: Vec<Option<NodeHandle>>,
    execution: Vec<Option<NodeHandle>>,
    gateway: Option<GatewayNode>,
    checkpoint_interval: u64,
}

static NEXT_BLOCK: AtomicU16 = AtomicU16::new(0);

/// Where link port blocks are probed: below Linux's ephemeral range (32768–60999 by
/// default), so that no outgoing connection — of this cluster or another one on the
/// machine — is given a probed port between the probe and the node's bind (seen when two
/// clusters started together and the block reached into the ephemeral range).
const PORT_BLOCKS: std::ops::Range<u32> = 20_000..32_000;

/// A block of `nodes` consecutive free loopback ports (probed by binding them).
fn free_port_block(nodes: u16) -> Result<u16, NodeError> {
    let span = PORT_BLOCKS.end - PORT_BLOCKS.start - u32::from(MAX_NODES);
    let start = (std::process::id() % 500) * 40;
    for _ in 0..400 {
        let block = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) % 1000;
        let offset = (start + u32::from(block) * u32::from(MAX_NODES)) % span;
        let base = u16::try_from(PORT_BLOCKS.start + offset)
            .map_err(|_| NodeError::Other("port block out of range".into()))?;
        let all_free =
            (0..nodes).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    Err(NodeError::Other(
        "no block of free loopback ports found".into(),
    ))
}

impl LocalCluster {
    /// Generates keys if `<data>/keys` is absent, then starts every node.
    pub async fn start(opts: &LocalClusterOptions) -> Result<LocalCluster, NodeError> {
        let keys = opts.data.join("keys");
        if !keys.join(file_name(Role::Gateway, 0)).exists() {
            let base_port = match opts.base_port {
                Some(p) => p,
                None => free_port_block(opts.mode.nodes())?,
            };
            keygen(&KeygenOptions {
                f: 1,
                g: 1,
                h: opts.mode.h(),
                clients: 1,
                out: keys.clone(),
                base_port,
                nfs_port: opts.nfs_listen.port(),
                layout: Layout::Loopback,
                checkpoint_interval: LOCAL_CHECKPOINT_INTERVAL,
            })?;
            info!(keys = %keys.display(), base_port, mode = opts.mode.name(),
                "generated keys and node configs");
        }
        let load = |role, id| NodeConfig::load(&keys.join(file_name(role, id)));
        let gateway_cfg = load(Role::Gateway, 0)?;
        let found = if gateway_cfg.is_firewall() {
            ClusterMode::Firewall
        } else {
            ClusterMode::Separate
        };
        if found != opts.mode {
            return Err(NodeError::Other(format!(
                "the data directory {} holds a `{}` cluster (its keys are in {}); run it \
                 with `--mode {}`, or use another data directory for `{}`",
                opts.data.display(),
                found.name(),
                keys.display(),
                found.name(),
                opts.mode.name()
            )));
        }
        let mut cluster = LocalCluster {
            mode: opts.mode,
            keys: keys.clone(),
            agreement: Vec::new(),
            filters: Vec::new(),
            execution: Vec::new(),
            gateway: None,
            checkpoint_interval: gateway_cfg.checkpoint_interval,
        };
        for i in 0..gateway_cfg.execution.len() as u64 {
            let h = crate::execution_node::start(&load(Role::Execution, i)?).await?;
            cluster.execution.push(Some(h));
        }
        for i in 0..gateway_cfg.filters.len() as u64 {
            let h = crate::filter_node::start(&load(Role::Filter, i)?).await?;
            cluster.filters.push(Some(h));
        }
        for i in 0..gateway_cfg.agreement.len() as u64 {
            let h = crate::agreement_node::start(&load(Role::Agreement, i)?).await?;
            cluster.agreement.push(Some(h));
        }
        let gw = GatewayNode::start(
            &gateway_cfg,
            Some(opts.nfs_listen),
            opts.export_name.as_deref(),
        )
        .await?;
        cluster.gateway = Some(gw);
        Ok(cluster)
    }

    /// Where NFS is served.
    pub fn nfs_addr(&self) -> Option<SocketAddr> {
        self.gateway.as_ref().and_then(|g| g.nfs_addr())
    }

    pub fn gateway(&self) -> Option<&GatewayNode> {
        self.gateway.as_ref()
    }

    pub fn keys_dir(&self) -> &Path {
        &self.keys
    }

    pub fn mode(&self) -> ClusterMode {
        self.mode
    }

    pub fn agreement(&self, i: usize) -> Option<&NodeHandle> {
        self.agreement.get(i).and_then(|h| h.as_ref())
    }

    pub fn execution(&self, i: usize) -> Option<&NodeHandle> {
        self.execution.get(i).and_then(|h| h.as_ref())
    }

    /// Filter `i` (flat id `row * (h+1) + column`); None in `separate`.
    pub fn filter(&self, i: usize) -> Option<&NodeHandle> {
        self.filters.get(i).and_then(|h| h.as_ref())
    }

    /// Number of filters (0 in `separate`).
    pub fn filters(&self) -> usize {
        self.filters.len()
    }

    /// The highest view any live agreement node is in.
    pub fn view(&self) -> u64 {
        self.agreement
            .iter()
            .flatten()
            .map(|h| Probe::get(&h.probe().view))
            .max()
            .unwrap_or(0)
    }

    /// The primary of the current view (PBFT: view mod n, TOCS §4.1).
    pub fn primary(&self) -> usize {
        (self.view() % self.agreement.len().max(1) as u64) as usize
    }

    /// Stops agreement node `i` (a crash: its links close, its state is gone).
    pub async fn kill_agreement(&mut self, i: usize) {
        if let Some(h) = self.agreement.get_mut(i).and_then(Option::take) {
            h.stop().await;
        }
    }

    /// Stops execution node `i`.
    pub async fn kill_execution(&mut self, i: usize) {
        if let Some(h) = self.execution.get_mut(i).and_then(Option::take) {
            h.stop().await;
        }
    }

    /// Stops filter `i`.
    pub async fn kill_filter(&mut self, i: usize) {
        if let Some(h) = self.filters.get_mut(i).and_then(Option::take) {
            h.stop().await;
        }
    }

    /// Restarts the gateway alone (the replicas keep running), on the same NFS address.
    /// Its client core starts from a clock-derived request id, so the replicas take its
    /// new requests for new ones, not replays of the previous incarnation's.
    pub async fn restart_gateway(&mut self) -> Result<(), NodeError> {
        let addr = self.nfs_addr();
        if let Some(gw) = self.gateway.take() {
            gw.shutdown().await;
        }
        let cfg = NodeConfig::load(&self.keys.join(file_name(Role::Gateway, 0)))?;
        self.gateway = Some(GatewayNode::start(&cfg, addr, None).await?);
        Ok(())
    }

    /// Waits until the execution replicas rest at a stable checkpoint that every live
    /// agreement node recorded (see the module doc), driving no-op requests to reach the
    /// next checkpoint boundary. False if that did not happen within `timeout`.
    pub async fn quiesce(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Some(gw) = &self.gateway else {
            return false;
        };
        while Instant::now() < deadline {
            let seqs: Vec<u64> = self
                .execution
                .iter()
                .flatten()
                .map(|h| Probe::get(&h.probe().sequence))
                .collect();
            let Some(&s) = seqs.first() else { return false };
            if seqs.iter().all(|x| *x == s) {
                if s % self.checkpoint_interval == 0 {
                    let recorded = self
                        .agreement
                        .iter()
                        .flatten()
                        .all(|h| Probe::get(&h.probe().stable) >= s);
                    if recorded {
                        return true;
                    }
                } else {
                    // Bounded: a cluster that cannot answer must not hold up a shutdown.
                    let left = deadline.saturating_duration_since(Instant::now());
                    let call = gw.service().call(FsOp::GetAttr { id: ROOT_ID });
                    let _ = tokio::time::timeout(left, call).await;
                    continue;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Stops every node at once, without quiescing: the data directories are left as a
    /// power loss or `kill -9` of `palisade up` leaves them (give or take the batch each
    /// execution replica was committing, which completes) — the execution replicas
    /// usually past the last stable checkpoint, which is all agreement remembers.
    pub async fn kill(mut self) {
        if let Some(gw) = self.gateway.take() {
            gw.shutdown().await;
        }
        let nodes = self
            .agreement
            .iter_mut()
            .chain(self.filters.iter_mut())
            .chain(self.execution.iter_mut())
            .filter_map(Option::take);
        for node in nodes {
            node.stop().await;
        }
        info!(keys = %self.keys.display(), "cluster killed (no quiesce)");
    }

    /// Quiesces (so that a restart resumes), then stops every node.
    pub async fn shutdown(mut self) {
        if let Some(gw) = &self.gateway {
            // No new NFS calls from here on; what is in flight completes or times out.
            let _ = gw;
        }
        if !self.quiesce(Duration::from_secs(20)).await {
            warn!("cluster did not reach a stable checkpoint before shutdown; a restart on this data directory may not resume");
        }
        if let Some(gw) = self.gateway.take() {
            gw.shutdown().await;
        }
        for h in self.agreement.iter_mut().filter_map(Option::take) {
            h.stop().await;
        }
        for h in self.filters.iter_mut().filter_map(Option::take) {
            h.stop().await;
        }
        for h in self.execution.iter_mut().filter_map(Option::take) {
            h.stop().await;
        }
        info!(keys = %self.keys.display(), "cluster stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_blocks_stay_below_the_ephemeral_range() {
        for _ in 0..50 {
            let base = u32::from(free_port_block(MAX_NODES).expect("a free block"));
            assert!(PORT_BLOCKS.contains(&base), "{base}");
            assert!(base + u32::from(MAX_NODES) <= PORT_BLOCKS.end, "{base}");
        }
    }
}
