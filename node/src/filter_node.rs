//! The filter node: a [`Filter`] of the privacy firewall (Yin et al., SOSP 2003, §4) on the
//! links.
//!
//! The core names its peers by index within the neighbouring layer; this driver maps
//! link identities to those indexes and back:
//!
//! - above: the agreement replicas (top row, index = replica id) or the filters of the
//!   row above (index = column);
//! - below: the filters of the row below (index = column) or the execution replicas
//!   (bottom row, index = replica id).
//!
//! The top row sends a certified reply (the core says "to every peer above") only to
//! agreement replicas 0..=f, the f+1 that relay replies to gateways (one of them is
//! correct; see `agreement_node`): a READ reply carries up to 1 MiB, and the other
//! replicas would only drop it. Stable certificates go to every agreement replica (each
//! collects its log with them).
//!
//! Anything from any other node is dropped here, counted and logged, before the core
//! sees it. (The link layer already refuses the handshake of a node that is not a
//! neighbour — see `NodeConfig::link_peers` — so this is the second of two fences.)
//!
//! The core's threshold-signature work (combining and verifying BLS shares, about a
//! millisecond or more each) is CPU-bound, so the filter lives on its own thread like the
//! execution replica, never on the async workers that carry every node's links in a
//! `LocalCluster`. It is told the time (`Tick`, elapsed since start) every [`TICK`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_firewall::{Filter, FilterConfig, FilterInput, FilterOutput, FilterStats};
use palisade_net::{Envelope, Inbound, Network, NodeId};
use palisade_wire::firewall::FirewallMessage;
use tracing::{debug, info, info_span};

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::handle::{NodeHandle, Probe};

/// How often the filter is told the time.
pub const TICK: Duration = Duration::from_millis(10);
/// Messages queued for the filter thread.
const THREAD_QUEUE: usize = 1024;

/// Orders accepted beyond the last collected sequence: in effect no window. A filter
/// keeps no durable state, so a restarted one (or every filter of a cluster restarted as
/// a whole, which resumes after a stable checkpoint at sequence s) starts at collected =
/// 0 and would refuse every order beyond a finite window forever: orders at s+1.. are
/// never forwarded, so the bottom row never forwards a share or a stable share, so no
/// stable certificate ever moves the window. Without a window the filter forwards the
/// first certified orders it sees, and the second stable certificate after that sets
/// its collected sequence. Its state stays bounded: by `MAX_LOG_BYTES` (every logged
/// order is charged its payload plus a fixed overhead, so empty batches count too), and
/// the pending bodies, shares and reply cache are bounded on their own. A valid ORDER
/// certificate cannot be made for a sequence agreement did not reach, and agreement's
/// own watermarks bound how far ahead that is (TOCS §4.3).
const MAX_AHEAD: u64 = u64::MAX / 4;
/// Bytes of forwarded orders kept for FetchOrders and re-delivery.
const MAX_LOG_BYTES: usize = 256 << 20;
/// Bottom row: reply bodies waiting for certification, per execution replica.
const MAX_PENDING_BYTES_PER_REPLICA: usize = 32 << 20;
/// Certified replies kept to answer retransmissions.
const REPLY_CACHE_BYTES: usize = 64 << 20;
/// At most one re-forward per sequence (and one FetchOrders answer per asker) per this.
const RETRANSMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Upper rows: how long a reply's claim waits for the whole row below before this filter
/// checks it with a pairing (`palisade_firewall` `vouch.rs`). The two copies of a claim
/// normally arrive well within a millisecond of each other; a silent filter below costs
/// each batch this much.
const VOUCH_WAIT: Duration = Duration::from_millis(4);
/// An order whose replies have not all come up this long after it went down goes down
/// again. Long against a loaded cluster's reply time (tens of milliseconds), so that a
/// slow batch is not sent twice; short against a checkpoint interval, so that a reply
/// lost upward is recovered before the order is collected.
const OVERDUE_AFTER: Duration = Duration::from_secs(1);

/// Where a filter sits and who its neighbours are, as link identities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterPlace {
    pub row: u32,
    pub column: u32,
    /// h+1: rows, and filters per row.
    pub width: u32,
    /// The peers above, by index.
    pub above: Vec<NodeId>,
    /// Where certified replies go up: the peers above, or (top row) the agreement
    /// replicas that relay them to gateways.
    pub reply_relays: Vec<NodeId>,
    /// The peers below, by index.
    pub below: Vec<NodeId>,
}

impl FilterPlace {
    /// The place of filter `id` (flat: `row * width + column`) in rows of `width`, with
    /// `agreement` replicas above the top row (of which `relays` relay replies to
    /// gateways) and `execution` replicas below the bottom.
    pub fn new(id: u32, width: u32, agreement: u32, relays: u32, execution: u32) -> FilterPlace {
        let width = width.max(1);
        let (row, column) = (id / width, id % width);
        let row_ids = |r: u32| (0..width).map(|c| NodeId::filter(r, c, width)).collect();
        let (above, reply_relays) = if row == 0 {
            (
                (0..agreement).map(NodeId::Agreement).collect(),
                (0..relays.min(agreement)).map(NodeId::Agreement).collect(),
            )
        } else {
            (row_ids(row - 1), row_ids(row - 1))
        };
        let below = if row + 1 >= width {
            (0..execution).map(NodeId::Execution).collect()
        } else {
            row_ids(row + 1)
        };
        FilterPlace {
            row,
            column,
            width,
            above,
            reply_relays,
            below,
        }
    }

    /// What the core calls `from` when it is above us.
    pub fn above_index(&self, from: NodeId) -> Option<u32> {
        self.above
            .iter()
            .position(|p| *p == from)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// What the core calls `from` when it is below us.
    pub fn below_index(&self, from: NodeId) -> Option<u32> {
        self.below
            .iter()
            .position(|p| *p == from)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The core's input for a message from `from`, or None if `from` is no neighbour.
    pub fn input(&self, from: NodeId, envelope: Envelope) -> Option<FilterInput> {
        if let Some(i) = self.above_index(from) {
            Some(FilterInput::FromAbove { from: i, envelope })
        } else {
            self.below_index(from)
                .map(|i| FilterInput::FromBelow { from: i, envelope })
        }
    }
}

/// The filter core's settings derived from a node config.
pub fn filter_config(cfg: &NodeConfig) -> Result<FilterConfig, NodeError> {
    let bad = |problem: String| NodeError::Config {
        file: cfg.path.clone(),
        field: "role".into(),
        problem,
    };
    let verifier = cfg
        .threshold
        .clone()
        .ok_or_else(|| bad("a filter needs the threshold key set".into()))?;
    let place = place_of(cfg);
    let config = FilterConfig {
        row: place.row,
        column: place.column,
        rows: place.width,
        f: cfg.f,
        agreement_keys: cfg.agreement_keys(),
        g: cfg.g,
        verifier,
        below: u32::try_from(place.below.len()).unwrap_or(u32::MAX),
        max_ahead: MAX_AHEAD,
        max_log_bytes: MAX_LOG_BYTES,
        max_pending_bytes_per_replica: MAX_PENDING_BYTES_PER_REPLICA,
        reply_cache_bytes: REPLY_CACHE_BYTES,
        retransmit_interval: RETRANSMIT_INTERVAL,
        vouch_wait: VOUCH_WAIT,
        overdue_after: OVERDUE_AFTER,
    };
    config.validate().map_err(|e| bad(e.to_string()))?;
    Ok(config)
}

fn place_of(cfg: &NodeConfig) -> FilterPlace {
    FilterPlace::new(
        cfg.id as u32,
        cfg.filter_width(),
        cfg.agreement.len() as u32,
        crate::agreement_node::reply_relays(cfg.f),
        cfg.execution.len() as u32,
    )
}

/// Starts a filter node from its config.
pub async fn start(cfg: &NodeConfig) -> Result<NodeHandle, NodeError> {
    let config = filter_config(cfg)?;
    let place = place_of(cfg);
    let (net, mut inbound) = Network::start(cfg.network_config().await?).await?;
    let net = Arc::new(net);
    let probe = Arc::new(Probe::default());
    let stats = Arc::new(Mutex::new(FilterStats::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = sync_channel::<Inbound>(THREAD_QUEUE);
    info!(node = %cfg.node_id(), row = place.row, column = place.column,
        addr = ?net.local_addr(), "filter node started");
    let span = info_span!(
        "filter",
        node = %cfg.node_id(),
        row = place.row,
        column = place.column
    );
    let worker = Worker {
        me: cfg.node_id(),
        filter: Filter::new(config),
        place,
        net: net.clone(),
        probe: probe.clone(),
        stats: stats.clone(),
        stop: stop.clone(),
        start: Instant::now(),
        span,
    };
    let thread = std::thread::Builder::new()
        .name(format!("palisade-filter-{}", cfg.id))
        .spawn(move || worker.run(rx))
        .map_err(|e| NodeError::Other(format!("cannot start the filter thread: {e}")))?;
    let forward_stop = stop.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = inbound.recv().await {
            if !crate::execution_node::forward(&tx, m, &forward_stop).await {
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
        filter_stats: Some(stats),
    })
}

struct Worker {
    me: NodeId,
    filter: Filter,
    place: FilterPlace,
    net: Arc<Network>,
    probe: Arc<Probe>,
    stats: Arc<Mutex<FilterStats>>,
    stop: Arc<AtomicBool>,
    start: Instant,
    /// The span of this filter's log lines (its fields never change; see `StepSpan`).
    span: tracing::Span,
}

impl Worker {
    fn run(mut self, rx: Receiver<Inbound>) {
        let mut next_tick = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= next_tick {
                self.step(FilterInput::Tick(now.duration_since(self.start)));
                next_tick = now + TICK;
            }
            // A claim held for vouchers is due before the next regular tick: wake for it.
            let wake = match self.filter.next_wake() {
                Some(at) => next_tick.min(self.start + at),
                None => next_tick,
            };
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(m) => {
                    // The core reads the clock fresh before each message: a claim's vouch
                    // deadline counts from when its first copy arrived.
                    self.clock();
                    self.on_inbound(m)
                }
                Err(RecvTimeoutError::Timeout) => {
                    if wake < next_tick {
                        self.step(FilterInput::Tick(self.start.elapsed()));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        info!(node = %self.me, "filter node stopped");
    }

    fn on_inbound(&mut self, Inbound { from, envelope }: Inbound) {
        let kind = envelope.kind();
        match self.place.input(from, envelope) {
            Some(input) => self.step(input),
            None => {
                Probe::bump(&self.probe.refused);
                debug!(node = %self.me, %from, kind,
                    "message from a node that is neither above nor below; dropped");
            }
        }
    }

    fn step(&mut self, input: FilterInput) {
        let _enter = self.span.clone().entered();
        let outputs = self.filter.step(input);
        for o in outputs {
            self.carry_out(o);
        }
        self.publish();
    }

    /// Tells the core the time before a message. Usually nothing is due: then there is
    /// nothing to carry out, and the message's own step publishes the counters (this
    /// runs once per message, so it skips the span and the second stats copy).
    fn clock(&mut self) {
        let outputs = self.filter.step(FilterInput::Tick(self.start.elapsed()));
        if outputs.is_empty() {
            return;
        }
        let _enter = self.span.clone().entered();
        for o in outputs {
            self.carry_out(o);
        }
    }

    /// Copies the core's counters where the handle and probes read them.
    fn publish(&self) {
        let s = self.filter.stats();
        Probe::put(&self.probe.forwarded_down, s.orders_forwarded);
        Probe::put(
            &self.probe.forwarded_up,
            s.replies_forwarded.saturating_add(s.stables_forwarded),
        );
        Probe::put(&self.probe.dropped, s.total_dropped());
        if let Ok(mut copy) = self.stats.lock() {
            copy.clone_from(s);
        }
    }

    fn carry_out(&self, output: FilterOutput) {
        let (peers, to, envelope) = match output {
            FilterOutput::ToAbove { to, envelope } => (&self.place.above, to, envelope),
            FilterOutput::ToBelow { to, envelope } => (&self.place.below, to, envelope),
        };
        match to {
            None if matches!(
                envelope,
                Envelope::Firewall(FirewallMessage::CertifiedReply(_))
            ) =>
            {
                self.net
                    .send_many(self.place.reply_relays.iter().copied(), &envelope)
            }
            None => self.net.send_many(peers.iter().copied(), &envelope),
            Some(i) => match usize::try_from(i).ok().and_then(|i| peers.get(i)) {
                Some(peer) => {
                    self.net.send(*peer, &envelope);
                }
                None => debug!(node = %self.me, index = i, "output to an unknown peer index"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_in_a_two_by_two_firewall() {
        // h = 1: filters 0, 1 on top, 2, 3 at the bottom; 4 agreement, 3 execution.
        let top = FilterPlace::new(1, 2, 4, 2, 3);
        assert_eq!((top.row, top.column), (0, 1));
        assert_eq!(top.above, (0..4).map(NodeId::Agreement).collect::<Vec<_>>());
        assert_eq!(top.below, vec![NodeId::Filter(2), NodeId::Filter(3)]);
        // f = 1: certified replies go to the two relaying agreement replicas.
        assert_eq!(
            top.reply_relays,
            vec![NodeId::Agreement(0), NodeId::Agreement(1)]
        );
        let bottom = FilterPlace::new(2, 2, 4, 2, 3);
        assert_eq!((bottom.row, bottom.column), (1, 0));
        assert_eq!(bottom.above, vec![NodeId::Filter(0), NodeId::Filter(1)]);
        assert_eq!(bottom.reply_relays, bottom.above);
        assert_eq!(
            bottom.below,
            (0..3).map(NodeId::Execution).collect::<Vec<_>>()
        );
        assert_eq!(bottom.above_index(NodeId::Filter(1)), Some(1));
        assert_eq!(bottom.below_index(NodeId::Execution(2)), Some(2));
        // Not a neighbour: an agreement node is not above a bottom filter, nor is a
        // filter of the same row, nor a client.
        for stranger in [NodeId::Agreement(0), NodeId::Filter(3), NodeId::Client(0)] {
            let e = Envelope::Execution(palisade_wire::execution::ExecutionMessage::FetchOrders {
                from: 1,
            });
            assert!(bottom.input(stranger, e).is_none(), "{stranger}");
        }
        // An execution replica is not below a top filter.
        assert_eq!(top.below_index(NodeId::Execution(0)), None);
        // Three rows (h = 2): the middle row's neighbours are filters on both sides.
        let middle = FilterPlace::new(4, 3, 4, 2, 5);
        assert_eq!((middle.row, middle.column), (1, 1));
        assert_eq!(
            middle.above,
            vec![NodeId::Filter(0), NodeId::Filter(1), NodeId::Filter(2)]
        );
        assert_eq!(
            middle.below,
            vec![NodeId::Filter(6), NodeId::Filter(7), NodeId::Filter(8)]
        );
        // One filter (h = 0) is top and bottom at once.
        let only = FilterPlace::new(0, 1, 4, 2, 3);
        assert_eq!(only.above.len(), 4);
        assert_eq!(only.below.len(), 3);
    }
}
