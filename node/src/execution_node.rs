//! The execution node: an [`ExecutionReplica`] over a durable [`RedbStore`] in the
//! node's data directory.
//!
//! The replica's steps do blocking store work (redb commits with fsync), so the replica
//! lives on its own thread, never on the async workers. A forwarding task moves
//! authenticated inbound messages to that thread through a bounded channel (a full
//! channel makes the link readers wait: TCP flow control pushes back on the senders).
//! The thread sleeps until the next message or the earliest timer, steps the replica and
//! carries out its outputs (the link layer's sends never block).
//!
//! **Routing in the firewall configuration** (SOSP 2003 §4). Orders are taken only from
//! the bottom filter row; `ToFirewall` (reply shares, bodies, stable shares) and
//! `FetchOrders` go to the bottom filters; checkpoint votes and state transfer stay among
//! the execution replicas. Nothing else leaves this node: the link layer knows no other
//! peer (`NodeConfig::link_peers`), and the driver drops, with a warning, any output that
//! would go elsewhere. In `separate`, orders come from agreement nodes, signed replies go
//! to clients and checkpoints to agreement, as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_execution::{
    ExecTimer, ExecutionReplica, FileSystem, FsConfig, RedbStore, RedundantOrders, ReplicaConfig,
    ReplicaInput, ReplicaOutput, ReplyMode,
};
use palisade_net::{Envelope, Inbound, Network, NodeId};
use palisade_wire::execution::ExecutionMessage;
use tracing::{debug, info, info_span, warn};

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::handle::{NodeHandle, Probe};
use crate::step_span::StepSpan;
use crate::timers::Timers;

/// Messages queued for the replica thread.
const THREAD_QUEUE: usize = 1024;
/// Longest the thread sleeps without looking at the stop flag.
const IDLE: Duration = Duration::from_millis(100);
/// How often, and how many times, a restarted replica re-sends its latest stable
/// certificate to agreement before any order came (see `Worker::run`).
const RESTART_RESEND: Duration = Duration::from_secs(1);
const RESTART_RESENDS: u32 = 300;
/// How often `report` logs the replica's counters.
const STATS_REPORT: Duration = Duration::from_secs(10);

/// The execution replica's settings derived from a node config.
pub fn replica_config(cfg: &NodeConfig) -> ReplicaConfig {
    let replies = match &cfg.threshold_signer {
        Some(signer) => ReplyMode::Threshold(signer.clone()),
        None => ReplyMode::Signed,
    };
    ReplicaConfig {
        id: cfg.id as u32,
        g: cfg.g,
        f: cfg.f,
        agreement_keys: cfg.agreement_keys(),
        client_keys: cfg.client_keys(),
        exec_keys: cfg.execution_keys(),
        checkpoint_interval: cfg.checkpoint_interval,
        max_ahead: 4 * cfg.checkpoint_interval,
        fetch_timeout: Duration::from_millis(200),
        body_key: cfg.body_key.clone(),
        replies,
    }
}

/// Opens the replica's file system in its data directory and starts the node.
pub async fn start(cfg: &NodeConfig) -> Result<NodeHandle, NodeError> {
    let dir = cfg.data_dir.clone().ok_or_else(|| NodeError::Config {
        file: cfg.path.clone(),
        field: "data_dir".into(),
        problem: "an execution replica needs a data directory".into(),
    })?;
    if cfg.is_firewall() && cfg.threshold_signer.is_none() {
        return Err(NodeError::Config {
            file: cfg.path.clone(),
            field: "threshold_share".into(),
            problem: "an execution replica of the firewall configuration needs its share".into(),
        });
    }
    let rcfg = replica_config(cfg);
    let key = cfg.signing_key.clone();
    let open_dir = dir.clone();
    // Opening redb reads and checks the file: blocking work.
    let replica = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
        std::fs::create_dir_all(&open_dir).map_err(|source| NodeError::Write {
            path: open_dir.clone(),
            source,
        })?;
        let store = RedbStore::open(&open_dir)?;
        let fs = FileSystem::open(store, FsConfig::default())?;
        Ok(ExecutionReplica::new(rcfg, key, fs)?)
    })
    .await
    .map_err(|e| NodeError::Other(format!("opening the store panicked: {e}")))?
    .map_err(|e| match e {
        NodeError::Execution(source) => NodeError::Other(format!(
            "cannot open the execution data directory {}: {source}",
            dir.display()
        )),
        other => other,
    })?;
    let (net, mut inbound) = Network::start(cfg.network_config().await?).await?;
    let net = Arc::new(net);
    let probe = Arc::new(Probe::default());
    Probe::put(&probe.sequence, replica.last_applied());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = sync_channel::<Inbound>(THREAD_QUEUE);
    let worker = Worker {
        me: cfg.id as u32,
        replica,
        net: net.clone(),
        agreement: (0..cfg.agreement.len() as u32)
            .map(NodeId::Agreement)
            .collect(),
        execution: (0..cfg.execution.len() as u32)
            .map(NodeId::Execution)
            .collect(),
        bottom_filters: cfg.bottom_filters(),
        timers: Timers::default(),
        probe: probe.clone(),
        span: StepSpan::new(),
        stop: stop.clone(),
        divergent: false,
        redundant: RedundantOrders::default(),
    };
    info!(node = %cfg.node_id(), addr = ?net.local_addr(), last_applied = worker.replica.last_applied(),
        data = %dir.display(), "execution node started");
    let thread = std::thread::Builder::new()
        .name(format!("palisade-exec-{}", cfg.id))
        .spawn(move || worker.run(rx))
        .map_err(|e| NodeError::Other(format!("cannot start the execution thread: {e}")))?;
    let forward_stop = stop.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = inbound.recv().await {
            if !forward(&tx, m, &forward_stop).await {
                return;
            }
        }
    });
    Ok(NodeHandle {
        id: cfg.node_id(),
        net,
        task: Some(task),
        thread: Some(thread),
        stop,
        probe,
        filter_stats: None,
    })
}

/// Hands one message to the thread, waiting (asynchronously) while its queue is full.
/// False once the thread is gone or the node stops.
pub(crate) async fn forward(tx: &SyncSender<Inbound>, mut m: Inbound, stop: &AtomicBool) -> bool {
    loop {
        match tx.try_send(m) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                m = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

struct Worker {
    me: u32,
    replica: ExecutionReplica<RedbStore>,
    net: Arc<Network>,
    agreement: Vec<NodeId>,
    execution: Vec<NodeId>,
    /// Firewall configuration: the bottom filter row, this node's only way out (empty in
    /// `separate`).
    bottom_filters: Vec<NodeId>,
    timers: Timers<ExecTimer>,
    probe: Arc<Probe>,
    /// The span of this node's log lines: node, sequence number.
    span: StepSpan<u64>,
    stop: Arc<AtomicBool>,
    divergent: bool,
    /// Drops the routine second copy of an executed order the bottom filters push (see
    /// [`RedundantOrders`]; in `separate` the core does this for agreement's pushes).
    redundant: RedundantOrders,
}

impl Worker {
    fn run(mut self, rx: Receiver<Inbound>) {
        // The restart checkpoint (`ExecutionReplica::start`): tells the cluster where
        // this replica resumes, before it handles anything.
        for o in self.replica.start() {
            self.carry_out(o);
        }
        let resumed_at = self.replica.last_applied();
        let (mut resent, mut restart_resends) = (Instant::now(), 0u32);
        let mut reported = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now.saturating_duration_since(reported) >= STATS_REPORT {
                reported = now;
                self.report();
            }
            // Restarted agreement nodes hold client requests until a stable certificate
            // reaches where execution resumed; one lost (a node that came up later than
            // the link's redial) would hold them for good. Re-sent until an order
            // arrives, at most `RESTART_RESENDS` times.
            if self.replica.last_applied() == resumed_at
                && restart_resends < RESTART_RESENDS
                && now.saturating_duration_since(resent) >= RESTART_RESEND
            {
                resent = now;
                restart_resends += 1;
                for o in self.replica.restart_resend() {
                    self.carry_out(o);
                }
            }
            for kind in self.timers.expired(now) {
                self.step(ReplicaInput::Timer(kind));
            }
            let wait = self
                .timers
                .next()
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(IDLE)
                .min(IDLE);
            match rx.recv_timeout(wait) {
                Ok(m) => self.on_inbound(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        info!(
            node = self.me,
            last_applied = self.replica.last_applied(),
            "execution node stopped"
        );
        // Dropping the replica closes the store (redb releases its file lock).
    }

    /// Logs how orders were taken (debug level): by f+1 matching pushes, or by
    /// certificate after a wait ran out (`pushed.rs` in the execution crate).
    fn report(&self) {
        let s = self.replica.stats();
        debug!(
            node = self.me,
            last_applied = self.replica.last_applied(),
            batches_executed = s.batches_executed,
            orders_agreed_by_pushers = s.orders_agreed_by_pushers,
            large_orders_certified = s.large_orders_certified,
            push_waits_expired = s.push_waits_expired,
            orders_redundant = s.orders_redundant,
            bad_certificates = s.bad_certificates,
            "execution stats"
        );
    }

    fn firewall(&self) -> bool {
        !self.bottom_filters.is_empty()
    }

    /// Who may send us orders, and their index for [`RedundantOrders`]: agreement
    /// replicas in `separate`, the bottom filters (by column) in the firewall
    /// configuration.
    fn order_sender(&self, from: NodeId) -> Option<u32> {
        match from {
            NodeId::Agreement(i) if !self.firewall() => Some(i),
            NodeId::Filter(_) => self
                .bottom_filters
                .iter()
                .position(|p| *p == from)
                .and_then(|c| u32::try_from(c).ok()),
            _ => None,
        }
    }

    fn on_inbound(&mut self, Inbound { from, envelope }: Inbound) {
        let input = match (self.order_sender(from), from, envelope) {
            // `separate`: an agreement replica's push over its own link; the core counts
            // matching pushes and tells the routine second copies itself.
            (
                Some(i),
                NodeId::Agreement(_),
                Envelope::Execution(ExecutionMessage::Order { batch, certificate }),
            ) => ReplicaInput::Pushed {
                from: i,
                batch,
                certificate,
            },
            (Some(i), _, Envelope::Execution(ExecutionMessage::Order { batch, certificate })) => {
                let last = self.replica.last_applied();
                if self.redundant.is_redundant(i, batch.sequence, last) {
                    Probe::bump(&self.probe.redundant_orders);
                    return;
                }
                ReplicaInput::Order { batch, certificate }
            }
            (Some(_), _, Envelope::Execution(ExecutionMessage::Stable(cert))) => {
                ReplicaInput::Stable(cert)
            }
            (
                Some(_),
                NodeId::Agreement(_),
                Envelope::Execution(ExecutionMessage::ResendReply {
                    client,
                    request_id,
                    sequence,
                }),
            ) => ReplicaInput::ResendReply {
                client,
                request_id,
                sequence,
            },
            // `separate`: a gateway's read-only request over its own link.
            (_, NodeId::Client(c), Envelope::ReadOnly { request, after }) if !self.firewall() => {
                ReplicaInput::ReadOnly {
                    from: c,
                    request,
                    after,
                }
            }
            (_, NodeId::Execution(j), Envelope::Execution(message)) => {
                ReplicaInput::Message { from: j, message }
            }
            (_, from, e) => {
                Probe::bump(&self.probe.refused);
                debug!(node = self.me, %from, kind = e.kind(), "message refused");
                return;
            }
        };
        self.step(input);
    }

    fn step(&mut self, input: ReplicaInput) {
        let (me, sequence) = (self.me, self.replica.last_applied());
        let span = self
            .span
            .get(sequence, || info_span!("execution", node = me, sequence));
        let _enter = span.enter();
        let outputs = self.replica.step(input);
        for o in outputs {
            self.carry_out(o);
        }
        // The replies are on their way: now the B-tree write they did not need, when one
        // is due (once per 64 logged batches, `pending.rs` in the execution crate). Yield
        // first: the replies wake tokio workers that carry them to the gateway, and on a
        // machine with fewer cores than nodes they may be queued on this core behind the
        // B-tree write. Side by side, when every batch had its own B-tree write, WRITE
        // 4 KiB p50 0.92-0.94x, seq-write unchanged (docs/PERFORMANCE.md).
        if self.replica.deferred_due() {
            std::thread::yield_now();
            self.replica.apply_deferred();
        }
        Probe::put(&self.probe.sequence, self.replica.last_applied());
        let divergent = self.replica.is_divergent();
        if divergent && !self.divergent {
            warn!(node = self.me, "this replica's state diverged from a stable checkpoint; repairing by state transfer");
        }
        self.divergent = divergent;
        if let Some(c) = self.replica.stable_checkpoint() {
            Probe::put(&self.probe.stable, c.sequence);
        }
    }

    fn carry_out(&mut self, output: ReplicaOutput) {
        match output {
            ReplicaOutput::Reply { to, reply } => {
                if self.firewall() {
                    // Never straight to a client past the firewall.
                    warn!(
                        node = self.me,
                        client = to,
                        "signed reply in the firewall configuration; not sent"
                    );
                } else {
                    self.net.send(NodeId::Client(to), &Envelope::Reply(reply));
                }
            }
            ReplicaOutput::ReadOnlyReply { to, reply } => {
                if self.firewall() {
                    warn!(
                        node = self.me,
                        client = to,
                        "read-only reply in the firewall configuration; not sent"
                    );
                } else {
                    self.net
                        .send(NodeId::Client(to), &Envelope::ReadOnlyReply(reply));
                }
            }
            ReplicaOutput::ToExecution {
                to: Some(j),
                message,
            } => {
                self.net
                    .send(NodeId::Execution(j), &Envelope::Execution(message));
            }
            ReplicaOutput::ToExecution { to: None, message } => {
                let me = NodeId::Execution(self.me);
                let to: Vec<NodeId> = self
                    .execution
                    .iter()
                    .copied()
                    .filter(|p| *p != me)
                    .collect();
                self.net.send_many(to, &Envelope::Execution(message));
            }
            ReplicaOutput::ToAgreement(message) => {
                if !self.firewall() {
                    self.net.send_many(
                        self.agreement.iter().copied(),
                        &Envelope::Execution(message),
                    );
                } else if matches!(message, ExecutionMessage::FetchOrders { .. }) {
                    // The bottom filters answer from the orders they forwarded.
                    self.net.send_many(
                        self.bottom_filters.iter().copied(),
                        &Envelope::Execution(message),
                    );
                } else {
                    warn!(
                        node = self.me,
                        "checkpoint traffic for agreement in the firewall configuration; not sent"
                    );
                }
            }
            ReplicaOutput::ToFirewall(message) => {
                if self.firewall() {
                    self.net.send_many(
                        self.bottom_filters.iter().copied(),
                        &Envelope::Firewall(message),
                    );
                } else {
                    warn!(
                        node = self.me,
                        "firewall message in the separate configuration; not sent"
                    );
                }
            }
            ReplicaOutput::SetTimer { kind, after } => self.timers.set(kind, after),
            ReplicaOutput::CancelTimer(kind) => self.timers.cancel(kind),
        }
        if self.replica.is_divergent() {
            warn!(
                node = self.me,
                "this replica's state diverged from a stable checkpoint"
            );
        }
    }
}
