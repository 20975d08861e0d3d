//! [`NodeHandle`]: a running node's task, links and probe; stopping it is what "killing
//! the node" means for in-process clusters and tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use palisade_firewall::FilterStats;
use palisade_net::{NetStatsSnapshot, Network, NodeId};
use tokio::task::JoinHandle;

/// Progress counters a node publishes for tests, status output and shutdown.
#[derive(Debug, Default)]
pub struct Probe {
    /// Agreement: current view. Execution: unused.
    pub view: AtomicU64,
    /// Agreement: last delivered sequence. Execution: last applied sequence.
    pub sequence: AtomicU64,
    /// Agreement: sequence of the last stable execution checkpoint it collected on.
    /// Execution: sequence of the last checkpoint it saw become stable.
    pub stable: AtomicU64,
    /// Messages dropped because of who sent them or what they were (counted here, logged
    /// at debug level).
    pub refused: AtomicU64,
    /// Execution: routine second copies of executed orders dropped by the runtime
    /// (`redundant_orders`). Agreement: unused.
    pub redundant_orders: AtomicU64,
    /// Filter: orders forwarded down (first copies).
    pub forwarded_down: AtomicU64,
    /// Filter: certified replies and stable certificates forwarded up. Agreement
    /// (firewall): certified replies relayed to gateways.
    pub forwarded_up: AtomicU64,
    /// Filter: inputs its core dropped, all reasons (by reason: `NodeHandle::filter_stats`).
    pub dropped: AtomicU64,
    /// Agreement: `ResendReply` rounds sent for retransmitted requests whose orders had
    /// left the delivery log (to the execution replicas, or through the firewall to the
    /// top filters).
    pub replies_asked: AtomicU64,
}

impl Probe {
    pub fn get(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }
    pub(crate) fn put(v: &AtomicU64, x: u64) {
        v.store(x, Ordering::Relaxed);
    }
    pub(crate) fn bump(v: &AtomicU64) {
        v.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running agreement or execution node.
pub struct NodeHandle {
    pub(crate) id: NodeId,
    pub(crate) net: Arc<Network>,
    pub(crate) task: Option<JoinHandle<()>>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
    pub(crate) stop: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) probe: Arc<Probe>,
    /// Filter nodes: a copy of the core's counters after its latest step.
    pub(crate) filter_stats: Option<Arc<Mutex<FilterStats>>>,
}

impl NodeHandle {
    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.net.local_addr()
    }

    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    pub fn net_stats(&self) -> NetStatsSnapshot {
        self.net.stats()
    }

    /// A filter node's counters (forwarded, dropped by reason, bad shares by replica);
    /// None for other nodes.
    pub fn filter_stats(&self) -> Option<FilterStats> {
        let s = self.filter_stats.as_ref()?;
        s.lock().ok().map(|s| s.clone())
    }

    /// Stops the node: closes its links and ends its task (an execution node's thread
    /// finishes the batch it is applying and closes its store before this returns).
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.net.close().await;
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        if let Some(th) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || th.join()).await;
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.net.shutdown();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
