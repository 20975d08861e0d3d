//! The agreement node: a PBFT [`Replica`] and a [`DeliveryLog`] on the links.
//!
//! - Ticks the replica with the wall clock (the primary stamps batches with it, backups
//!   check it: DESIGN §1), carries out its sends, broadcasts and timers.
//! - On `Deliver`, records the batch and its ORDER certificate and (replicas 0..=f, so
//!   that at least one correct node does) sends `ExecutionMessage::Order` to every
//!   execution replica (Yin et al. §3); in `separate`, a large batch from one of them
//!   only ([`Pushers`]).
//! - Answers an execution replica's `FetchOrders` from the delivery log.
//! - Verifies a `Stable` checkpoint certificate (g+1 execution signatures) before it feeds
//!   `Input::StableCheckpoint` (TOCS §4.3) and collects the delivery log; remembers the
//!   last one in its data directory, and after a restart vouches for it again, so that a
//!   cluster restarted as a whole resumes after the execution replicas' state instead of
//!   at sequence 1 (the core keeps no durable log). A node restarted on a used data
//!   directory (a `started` marker) makes its core await the execution replicas' restart
//!   checkpoint before it proposes (`Replica::await_execution`), since they may be past
//!   that recorded checkpoint.
//! - Bounds how often one peer can make it retransmit (`Status`, `FetchBatch`,
//!   `FetchOrders`): the core leaves that to the runtime.
//!
//! **Firewall configuration** (Yin et al., SOSP 2003, §4). The downstream of orders is
//! the top filter row instead of the execution replicas, and `FetchOrders` is answered
//! to top filters. From the top filters come the only two things that ever cross the
//! firewall upward: a `CertifiedReply`, relayed to its gateway once per (client,
//! request id) — by replicas 0..=f, the same f+1 that push orders, so that one correct
//! node relays. It is not verified here: every filter row has checked it, and the
//! gateway checks it before it believes it (it trusts no agreement node); a pairing
//! check per batch here was 11% of the CPU. So that a forging top filter cannot take a
//! request's relay slot with garbage, a reply is relayed once per distinct signature, up
//! to h+1 per request ([`palisade_firewall::ReplyRelay`]). And a threshold-signed
//! `StableCertificate`, verified here against the execution cluster's key set, which then
//! does what a verified ed25519 checkpoint certificate does in `separate`. It names no
//! state digest (not even a hash of file state leaves the execution cluster), so the
//! checkpoint fed to PBFT carries a digest derived from the sequence alone
//! ([`firewall_state_digest`]): agreement only needs 2f+1 replicas to name one value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use palisade_agreement::{Config, DeliveryLog, Input, Output, Pushers, Replica, TimerKind};
use palisade_crypto::ThresholdVerifier;
use palisade_firewall::{RelayDecision, ReplyRelay};
use palisade_net::{Envelope, Inbound, Network, NodeId};
use palisade_wire::agreement::{AgreementMessage, Bounded, Digest, Sequence};
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::{CertifiedReply, FirewallMessage, StableCertificate};
use palisade_wire::fs::Timestamp;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn};

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::handle::{NodeHandle, Probe};
use crate::hex;
use crate::step_span::StepSpan;
use crate::timers::{sleep_until, Timers};

/// How often the replica is told the time.
const TICK: Duration = Duration::from_millis(5);
/// Retransmission requests accepted per peer per second (token bucket).
const FETCH_RATE: f64 = 200.0;
/// Most orders re-sent for one retransmitted request.
const MAX_RESEND: usize = 8;
/// Most remembered delivered requests.
const MAX_DELIVERED: usize = 256 * 1024;
/// Interval at which a restored resume point is vouched for again until it is stable.
const RESUME_RETRY: Duration = Duration::from_millis(300);
/// The file in an agreement node's data directory that says it ran there before.
const STARTED_MARKER: &str = "started";
/// How often `report` logs the replica's counters.
const STATS_REPORT: Duration = Duration::from_secs(10);
/// Most remembered relayed certified replies (firewall configuration).
const MAX_RELAYED: usize = 256 * 1024;

/// How many agreement replicas push orders downstream and relay certified replies to
/// gateways: replicas `0..=f`, so that one of them is correct.
pub fn reply_relays(f: usize) -> u32 {
    u32::try_from(f.saturating_add(1)).unwrap_or(u32::MAX)
}

/// The checkpoint digest agreement replicas vouch for in the firewall configuration: a
/// function of the sequence alone, because the threshold-signed stable certificate names
/// no state digest (and must not: it crosses the firewall).
pub fn firewall_state_digest(sequence: Sequence) -> Digest {
    Digest::of(b"palisade/firewall/stable", &sequence.to_le_bytes())
}

/// The agreement replica's settings derived from a node config.
pub fn replica_config(cfg: &NodeConfig) -> Config {
    let mut c = Config::new(
        cfg.f,
        cfg.id as u32,
        cfg.agreement_keys(),
        cfg.client_keys(),
    );
    c.checkpoint_interval = cfg.checkpoint_interval;
    c.window = (2 * cfg.checkpoint_interval).clamp(cfg.checkpoint_interval, 4096);
    // Batching by an in-flight window instead of a delay (TOCS §5.1): a request is
    // proposed at once when no batch is in flight (low latency for one client), and
    // under load everything that arrived while a batch was being agreed goes out as the
    // next batch. Measured with a 1 ms delay and no window, 32 concurrent clients got
    // ~3 requests per batch, and the per-batch signatures (pre-prepare, 2f+1 prepares
    // and commits at every replica, the ORDER certificate at every execution replica)
    // were most of the CPU.
    c.batch_delay = Duration::ZERO;
    c.max_batches_in_flight = 1;
    // And paced by execution: while a proposed batch is unanswered (no client reported
    // its reply), requests pile up at the primary and go out as one batch when the
    // report comes, instead of queueing as many small batches in front of execution
    // and the firewall, where every batch costs signature shares, combinations and
    // checks (see `Config::max_batches_unanswered`). Measured side by side at 32
    // clients through the firewall: one unanswered batch 890 small ops/s, two 700–800,
    // none (commits only) 550; see docs/PERFORMANCE.md. The timeout only matters when
    // no client reports (the gateway reports every batch it hears from).
    // In `separate` two: the next batch is agreed on while execution commits the last
    // one, instead of after. Measured side by side with 1 MiB WRITEs at depth 4: one
    // unanswered batch 98 MB/s, two 109, three 114; 32 clients of small files: 3,760,
    // 3,700 and 3,520 ops/s (docs/PERFORMANCE.md).
    c.max_batches_unanswered = if cfg.is_firewall() { 1 } else { 2 };
    c.pacing_timeout = Duration::from_millis(20);
    // In `separate` a commit over its signer's own link counts without a signature
    // check: the execution replicas take orders on f+1 matching pushes, not on the
    // certificate (see `Config::link_authenticated_commits`). Checking them was two
    // ed25519 checks per replica and batch on every call's critical path
    // (docs/PERFORMANCE.md). Through the firewall every filter checks certificates.
    c.link_authenticated_commits = !cfg.is_firewall();
    // f backups keep their votes to themselves while the others make progress
    // (`palisade_agreement::quiet`), unless the config file says otherwise.
    c.quiet_votes = cfg.quiet_votes;
    c
}

/// Starts an agreement node from its config.
pub async fn start(cfg: &NodeConfig) -> Result<NodeHandle, NodeError> {
    let mut replica = Replica::new(replica_config(cfg), cfg.signing_key.clone())?;
    let resume_file = cfg.data_dir.as_ref().map(|d| d.join("stable-checkpoint"));
    if let Some(d) = &cfg.data_dir {
        std::fs::create_dir_all(d).map_err(|source| NodeError::Write {
            path: d.clone(),
            source,
        })?;
    }
    let resume = match &resume_file {
        Some(f) => read_resume(f)?,
        None => None,
    };
    // A node that ran before on this data directory may be one of a cluster restarted
    // as a whole: as primary it proposes nothing until the execution replicas said
    // where they stand (`Replica::await_execution`; `ExecutionReplica::start`).
    if let Some(d) = &cfg.data_dir {
        let marker = d.join(STARTED_MARKER);
        if marker.exists() {
            replica.await_execution(resume.map_or(0, |(s, _)| s));
        }
        std::fs::write(&marker, b"").map_err(|source| NodeError::Write {
            path: marker.clone(),
            source,
        })?;
    }
    let (net, inbound) = Network::start(cfg.network_config().await?).await?;
    let net = Arc::new(net);
    let probe = Arc::new(Probe::default());
    let firewall = match (cfg.is_firewall(), &cfg.threshold) {
        (false, _) => None,
        (true, Some(verifier)) => Some(verifier.clone()),
        (true, None) => {
            return Err(NodeError::Config {
                file: cfg.path.clone(),
                field: "threshold_public".into(),
                problem: "missing: the firewall configuration needs the threshold key set".into(),
            })
        }
    };
    let downstream = if firewall.is_some() {
        cfg.top_filters()
    } else {
        (0..cfg.execution.len() as u32)
            .map(NodeId::Execution)
            .collect()
    };
    let driver = Driver {
        me: cfg.id as u32,
        replica,
        log: DeliveryLog::default(),
        net: net.clone(),
        agreement: (0..cfg.agreement.len() as u32)
            .map(NodeId::Agreement)
            .collect(),
        downstream,
        firewall,
        clients: cfg.clients.len() as u64,
        relay: ReplyRelay::new(cfg.h.unwrap_or(0).saturating_add(1), MAX_RELAYED),
        exec_keys: cfg.execution_keys(),
        g: cfg.g,
        timers: Timers::default(),
        buckets: BTreeMap::new(),
        probe: probe.clone(),
        span: StepSpan::new(),
        resume_file,
        resume,
        stable: 0,
        delivered: BTreeMap::new(),
        sends_orders: (cfg.id as u32) < reply_relays(cfg.f),
    };
    info!(node = %cfg.node_id(), addr = ?net.local_addr(), "agreement node started");
    let task = tokio::spawn(driver.run(inbound));
    Ok(NodeHandle {
        id: cfg.node_id(),
        net,
        task: Some(task),
        thread: None,
        stop: Arc::new(AtomicBool::new(false)),
        probe,
        filter_stats: None,
    })
}

fn read_resume(path: &Path) -> Result<Option<(Sequence, Digest)>, NodeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(NodeError::Config {
                file: path.to_path_buf(),
                field: "(file)".into(),
                problem: e.to_string(),
            })
        }
    };
    let bad = || NodeError::Config {
        file: path.to_path_buf(),
        field: "(contents)".into(),
        problem: "expected `<sequence> <64 hex digits>`".into(),
    };
    let mut parts = text.split_whitespace();
    let seq: Sequence = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let digest = parts.next().and_then(hex::decode32).ok_or_else(bad)?;
    Ok(Some((seq, Digest(digest))))
}

fn write_resume(path: &Path, sequence: Sequence, digest: &Digest) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{sequence} {}\n", hex::encode(&digest.0)))?;
    std::fs::rename(&tmp, path)
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * FETCH_RATE;
        self.tokens = (self.tokens + refill).min(FETCH_RATE);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Driver {
    me: u32,
    replica: Replica,
    log: DeliveryLog,
    net: Arc<Network>,
    agreement: Vec<NodeId>,
    /// Where orders go and whose `FetchOrders` we answer: the execution replicas
    /// (`separate`) or the top filter row (firewall).
    downstream: Vec<NodeId>,
    /// Firewall configuration: the execution cluster's threshold key set (checks
    /// `StableCertificate`s from the top filters).
    firewall: Option<Arc<dyn ThresholdVerifier>>,
    /// Number of clients (gateways): ids `0..clients`.
    clients: u64,
    /// Firewall: the certified replies relayed to gateways, once per claim per arrival
    /// of their request, vouched for when every top filter sent the claim.
    relay: ReplyRelay,
    exec_keys: Vec<ed25519_dalek::VerifyingKey>,
    g: usize,
    timers: Timers<TimerKind>,
    buckets: BTreeMap<NodeId, Bucket>,
    probe: Arc<Probe>,
    /// The span of this node's log lines: node, view, sequence number.
    span: StepSpan<(u64, u64)>,
    resume_file: Option<PathBuf>,
    resume: Option<(Sequence, Digest)>,
    /// Highest stable execution checkpoint fed to the replica.
    stable: Sequence,
    /// Whether this node pushes every delivered batch downstream (and, in the firewall
    /// configuration, relays certified replies to gateways). Only replicas 0..=f do: at
    /// least one of any f+1 is correct, so every order reaches execution, with a
    /// fraction of the traffic (an order carries the batch's payload — up to megabytes
    /// of WRITE data — and every copy is encrypted, sent, decrypted and
    /// decoded). The others still keep the delivery log and answer `FetchOrders`, so an
    /// execution replica that misses an order (all f+1 senders slow) still gets it.
    sends_orders: bool,
    /// (client, request id) → sequence of the delivered batch that carried it, above the
    /// last stable checkpoint.
    delivered: BTreeMap<(u64, u64), Sequence>,
}

fn now_timestamp() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Timestamp {
        seconds: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
        nanos: d.subsec_nanos(),
    }
}

impl Driver {
    async fn run(mut self, mut inbound: mpsc::Receiver<Inbound>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resume_retry = tokio::time::interval(RESUME_RETRY);
        let mut report = tokio::time::interval(STATS_REPORT);
        self.step(Input::Tick(now_timestamp()));
        loop {
            tokio::select! {
                m = inbound.recv() => match m {
                    Some(m) => self.on_inbound(m),
                    None => return,
                },
                _ = sleep_until(self.timers.next()) => {
                    for kind in self.timers.expired(Instant::now()) {
                        self.step(Input::Timer(kind));
                    }
                }
                _ = tick.tick() => self.step(Input::Tick(now_timestamp())),
                _ = resume_retry.tick(), if self.resume.is_some() => self.vouch_for_resume_point(),
                _ = report.tick() => self.report(),
            }
            if self.replica.has_deferred_checks() {
                // A backup's prepare is queued for its peers; let their links send it,
                // then check the primary's signature while it travels (TOCS §3.2,
                // `Replica::pre_prepare_signature_holds`).
                tokio::task::yield_now().await;
                self.step(Input::CheckDeferred);
            }
        }
    }

    /// Logs how batching went (debug level): requests per batch is what the pacing
    /// settings in `replica_config` are for.
    fn report(&self) {
        let s = self.replica.stats();
        debug!(
            node = self.me,
            view = self.replica.view(),
            batches_proposed = s.batches_proposed,
            batches_delivered = s.batches_delivered,
            requests_delivered = s.requests_delivered,
            batches_paced = s.batches_paced,
            pacing_timeouts = s.pacing_timeouts,
            "agreement stats"
        );
    }

    /// After a restart: vouch again for the last stable execution checkpoint until the
    /// cluster has adopted it (then the replica's low watermark reaches it).
    fn vouch_for_resume_point(&mut self) {
        let Some((sequence, state_digest)) = self.resume else {
            return;
        };
        if self.replica.low_watermark() >= sequence {
            info!(
                node = self.me,
                sequence, "resumed after the stable checkpoint"
            );
            self.resume = None;
            return;
        }
        self.step(Input::RecordedCheckpoint {
            sequence,
            state_digest,
        });
    }

    fn allowed(&mut self, from: NodeId) -> bool {
        let b = self.buckets.entry(from).or_insert(Bucket {
            tokens: FETCH_RATE,
            at: Instant::now(),
        });
        b.take()
    }

    fn refuse(&self, from: NodeId, what: &str) {
        Probe::bump(&self.probe.refused);
        debug!(node = self.me, %from, what, "message refused");
    }

    fn on_inbound(&mut self, Inbound { from, envelope }: Inbound) {
        match (from, envelope) {
            (NodeId::Agreement(i), Envelope::Agreement(message)) => {
                let retransmit = matches!(
                    message,
                    AgreementMessage::Status { .. } | AgreementMessage::FetchBatch { .. }
                );
                if retransmit && !self.allowed(from) {
                    return self.refuse(from, "retransmission request over the rate limit");
                }
                self.step(Input::Message { from: i, message });
            }
            (NodeId::Client(_), Envelope::Request(request)) => {
                let key = (request.message.client, request.message.request_id);
                if let Some(&sequence) = self.delivered.get(&key) {
                    // A retransmission of a delivered request: the core drops it as a
                    // duplicate, so an execution cluster that lost that batch's order (and
                    // saw no later one, so it cannot notice the gap) would never execute
                    // it. Re-send the order and a few after it from the delivery log.
                    // (Through the firewall, the filters answer a re-sent order of an
                    // executed sequence with their cached certified replies; the gateway
                    // lost ours, so relay the next copy again.)
                    if self.allowed(from) {
                        self.relay.forget(key.0, key.1);
                        let orders: Vec<ExecutionMessage> = self
                            .log
                            .fetch(sequence)
                            .into_iter()
                            .filter(|m| matches!(m, ExecutionMessage::Order { .. }))
                            .take(MAX_RESEND)
                            .collect();
                        if orders.is_empty() {
                            self.ask_for_reply(key);
                        }
                        for m in orders {
                            self.net.send_many(
                                self.downstream.iter().copied(),
                                &Envelope::Execution(m),
                            );
                        }
                    }
                    return;
                }
                let duplicates = self.replica.stats().requests_duplicate;
                // Over its own client's authenticated (Noise) link, the link proves who
                // sent it: the core then checks the signature once, as primary, instead
                // of at every replica (see `Input::LinkRequest`).
                if from == NodeId::Client(request.message.client) {
                    self.step(Input::LinkRequest(request));
                } else {
                    self.step(Input::ClientRequest(request));
                }
                // A retransmission of a request ordered before the last stable checkpoint
                // (its batch has left the delivery log): only the execution replicas' or
                // the top filters' reply caches can answer it now; what comes back is
                // relayed again.
                if self.replica.stats().requests_duplicate > duplicates && self.allowed(from) {
                    self.relay.forget(key.0, key.1);
                    self.ask_for_reply(key);
                }
            }
            (NodeId::Client(_), Envelope::RepliedThrough(sequence)) => {
                self.step(Input::RepliedThrough(sequence));
            }
            (NodeId::Execution(_), Envelope::Execution(ExecutionMessage::Stable(cert)))
                if self.firewall.is_none() =>
            {
                // A restarted core waits for one, even at or below what we recorded.
                let awaited = self.replica.is_awaiting_execution();
                if cert.sequence <= self.stable && !awaited {
                    return;
                }
                if let Err(e) = cert.verify(&self.exec_keys, self.g) {
                    warn!(node = self.me, %from, error = %e, "bad stable checkpoint certificate");
                    return self.refuse(from, "bad stable certificate");
                }
                if awaited {
                    debug!(
                        node = self.me,
                        sequence = cert.sequence,
                        "restarted: execution replicas resume at this sequence"
                    );
                }
                if cert.sequence > self.stable {
                    self.on_stable(cert.sequence, cert.state_digest);
                } else {
                    self.step(Input::StableCheckpoint {
                        sequence: cert.sequence,
                        state_digest: cert.state_digest,
                    });
                }
            }
            (NodeId::Filter(_), Envelope::Firewall(FirewallMessage::Stable(cert)))
                if self.is_downstream(from) =>
            {
                self.on_firewall_stable(from, cert);
            }
            (NodeId::Filter(id), Envelope::Firewall(FirewallMessage::CertifiedReply(reply)))
                if self.is_downstream(from) =>
            {
                self.relay(from, id, reply);
            }
            (
                NodeId::Execution(_) | NodeId::Filter(_),
                Envelope::Execution(ExecutionMessage::FetchOrders { from: seq }),
            ) if self.is_downstream(from) => {
                if !self.allowed(from) {
                    return self.refuse(from, "FetchOrders over the rate limit");
                }
                let orders = self.log.fetch(seq);
                debug!(node = self.me, %from, from_seq = seq, answered = orders.len(), "FetchOrders");
                for m in orders {
                    self.net.send(from, &Envelope::Execution(m));
                }
            }
            // Execution replicas' individual checkpoint votes are for each other.
            (NodeId::Execution(_), Envelope::Execution(ExecutionMessage::Checkpoint(_)))
                if self.firewall.is_none() => {}
            (from, e) => self.refuse(from, e.kind()),
        }
    }

    fn is_downstream(&self, node: NodeId) -> bool {
        self.downstream.contains(&node)
    }

    /// A stable execution checkpoint at `sequence`, verified: collect the delivery log,
    /// record the resume point, and vouch for it in PBFT (TOCS §4.3).
    fn on_stable(&mut self, sequence: Sequence, state_digest: Digest) {
        if sequence <= self.stable {
            return;
        }
        self.stable = sequence;
        Probe::put(&self.probe.stable, sequence);
        self.log.collect_through(sequence);
        self.delivered.retain(|_, s| *s > sequence);
        self.relay.collect_through(sequence);
        if let Some(f) = &self.resume_file {
            if let Err(e) = write_resume(f, sequence, &state_digest) {
                warn!(node = self.me, file = %f.display(), error = %e, "cannot record the resume point");
            }
        }
        self.step(Input::StableCheckpoint {
            sequence,
            state_digest,
        });
    }

    /// A threshold-signed stable certificate from a top filter (firewall configuration).
    fn on_firewall_stable(&mut self, from: NodeId, cert: StableCertificate) {
        let Some(verifier) = self.firewall.clone() else {
            return self.refuse(from, "stable certificate without a firewall");
        };
        // A restarted core waits for one, even at or below what we recorded.
        let awaited = self.replica.is_awaiting_execution();
        if cert.sequence <= self.stable && !awaited {
            // Every top filter sends each one: the later copies are routine.
            return;
        }
        if let Err(e) = FirewallMessage::Stable(cert.clone()).check_bounds() {
            warn!(node = self.me, %from, error = %e, "malformed stable certificate");
            return self.refuse(from, "malformed stable certificate");
        }
        if !self.allowed(from) {
            return self.refuse(from, "stable certificates over the rate limit");
        }
        if let Err(e) = palisade_crypto::verify_stable(verifier.as_ref(), &cert) {
            warn!(node = self.me, %from, error = %e, "bad threshold stable certificate");
            return self.refuse(from, "bad threshold stable certificate");
        }
        if cert.sequence > self.stable {
            self.on_stable(cert.sequence, firewall_state_digest(cert.sequence));
        } else {
            self.step(Input::StableCheckpoint {
                sequence: cert.sequence,
                state_digest: firewall_state_digest(cert.sequence),
            });
        }
    }

    /// Asks for the reply to (client, request id) again, whose order can no longer be
    /// re-sent (TOCS §4.1): in `separate` every execution replica re-sends its cached
    /// reply; through the firewall the top filters answer from their reply caches
    /// (`palisade_firewall`'s `filter/resend.rs`), and this node relays what comes back.
    /// Either way its downstream: an agreement node never reaches execution replicas
    /// through the firewall.
    fn ask_for_reply(&mut self, (client, request_id): (u64, u64)) {
        if !self.sends_orders {
            return;
        }
        Probe::bump(&self.probe.replies_asked);
        let sequence = self.delivered.get(&(client, request_id)).copied();
        self.net.send_many(
            self.downstream.iter().copied(),
            &Envelope::Execution(ExecutionMessage::ResendReply {
                client,
                request_id,
                sequence,
            }),
        );
    }

    /// Relays a certified reply from a top filter to its gateway, once per (client,
    /// request id) and signature (each top filter sends every one), after checking its
    /// bounds and that the client exists; the signature is the gateway's to check (see
    /// the module doc).
    fn relay(&mut self, from: NodeId, filter: u32, reply: CertifiedReply) {
        if !self.sends_orders {
            // Replicas 0..=f relay (one of them is correct); the rest stay quiet.
            return;
        }
        let key = (reply.entry.client, reply.entry.request_id);
        if reply.entry.client >= self.clients {
            return self.refuse(from, "certified reply for an unknown client");
        }
        let message = FirewallMessage::CertifiedReply(reply);
        if let Err(e) = message.check_bounds() {
            debug!(node = self.me, %from, error = %e, "malformed certified reply");
            return self.refuse(from, "malformed certified reply");
        }
        let FirewallMessage::CertifiedReply(reply) = message else {
            return;
        };
        if self.firewall.is_none() {
            return self.refuse(from, "certified reply outside the firewall configuration");
        }
        let (relay, vouch) = match self.relay.offer(filter, &reply) {
            RelayDecision::Relay { vouch } => (true, vouch),
            RelayDecision::AlreadyRelayed { vouch } => (false, vouch),
            RelayDecision::TooManySignatures => {
                return self.refuse(from, "more certified reply signatures than top filters")
            }
            RelayDecision::Malformed => {
                return self.refuse(from, "certified reply with a broken audit path")
            }
        };
        if relay {
            Probe::bump(&self.probe.forwarded_up);
            self.net.send(
                NodeId::Client(key.0),
                &Envelope::Firewall(FirewallMessage::CertifiedReply(reply)),
            );
        }
        if let Some(vouch) = vouch {
            self.net.send(
                NodeId::Client(key.0),
                &Envelope::Firewall(FirewallMessage::Vouch(vouch)),
            );
        }
    }

    fn step(&mut self, input: Input) {
        let (me, view, sequence) = (self.me, self.replica.view(), self.replica.last_delivered());
        let span = self.span.get((view, sequence), || {
            info_span!("agreement", node = me, view, sequence)
        });
        let _enter = span.enter();
        let outputs = self.replica.step(input);
        for o in outputs {
            self.carry_out(o);
        }
        let view = self.replica.view();
        if view != Probe::get(&self.probe.view) {
            info!(
                node = self.me,
                view,
                primary = self.replica.is_primary(),
                "entered a new view"
            );
        }
        Probe::put(&self.probe.view, view);
        Probe::put(&self.probe.sequence, self.replica.last_delivered());
    }

    /// In `separate`, whether this pusher pushes this order: a large batch goes from
    /// one pusher only, by sequence ([`Pushers::pushes`]). Through the firewall every
    /// pusher still pushes every order: the top filters check each copy's certificate
    /// and forward the first, and their fallback for a withheld order is not built.
    fn pushes(&self, order: &Envelope) -> bool {
        match order {
            Envelope::Execution(ExecutionMessage::Order { batch, .. }) => {
                Pushers::new(self.replica.config().f).pushes(self.me, batch)
            }
            _ => false,
        }
    }

    fn carry_out(&mut self, output: Output) {
        match output {
            Output::Send { to, message } => {
                self.net
                    .send(NodeId::Agreement(to), &Envelope::Agreement(message));
            }
            Output::Broadcast(message) => {
                // Phase events (`scripts/phases.py`): when each replica proposed or
                // prepared a sequence.
                match &message {
                    AgreementMessage::PrePrepare { pre_prepare, .. }
                    | AgreementMessage::PrePrepareNamed { pre_prepare, .. } => tracing::trace!(
                        target: "palisade::phase",
                        node = self.me,
                        sequence = pre_prepare.message.sequence,
                        "pre-prepare sent"
                    ),
                    AgreementMessage::Commit(c) => tracing::trace!(
                        target: "palisade::phase",
                        node = self.me,
                        sequence = c.message.sequence,
                        "commit sent"
                    ),
                    _ => {}
                }
                let me = NodeId::Agreement(self.me);
                let to: Vec<NodeId> = self
                    .agreement
                    .iter()
                    .copied()
                    .filter(|p| *p != me)
                    .collect();
                self.net.send_many(to, &Envelope::Agreement(message));
            }
            Output::SetTimer { kind, after } => self.timers.set(kind, after),
            Output::CancelTimer(kind) => self.timers.cancel(kind),
            Output::Deliver { batch, certificate } => {
                debug!(
                    node = self.me,
                    sequence = batch.sequence,
                    requests = batch.batch.requests.len(),
                    "deliver"
                );
                for r in &batch.batch.requests {
                    self.delivered
                        .insert((r.message.client, r.message.request_id), batch.sequence);
                }
                if self.delivered.len() > MAX_DELIVERED {
                    // Bounded: forget the oldest (clients of those requests fall back on
                    // the execution replicas' own gap detection).
                    let cut = batch.sequence.saturating_sub(self.replica.config().window);
                    self.delivered.retain(|_, s| *s > cut);
                }
                // Sent first, then moved into the delivery log: a batch may carry
                // megabytes of WRITE data, not worth a copy.
                let sequence = batch.sequence;
                let order = Envelope::Execution(ExecutionMessage::Order { batch, certificate });
                if self.sends_orders && (self.firewall.is_some() || self.pushes(&order)) {
                    tracing::trace!(target: "palisade::phase", node = self.me, sequence, "order pushed");
                    self.net.send_many(self.downstream.iter().copied(), &order);
                }
                if let Envelope::Execution(ExecutionMessage::Order { batch, certificate }) = order {
                    self.log.record(batch, certificate);
                }
            }
            Output::StateTransfer { sequence, .. } => {
                // Execution replicas fetch state among themselves; agreement only skips.
                info!(
                    node = self.me,
                    sequence, "agreement skipped ahead to a stable checkpoint"
                );
            }
        }
    }
}

// The gateway's client keeps its ids in flight within the replicas' anti-replay windows
// (`ClientConfig::replay_window`); if either shrank below it, a request outstanding long
// enough would be dropped as a replay and never answered. Checked when this compiles.
const _: () = assert!(
    palisade_client::REPLAY_WINDOW <= palisade_agreement::DEFAULT_CLIENT_WINDOW
        && palisade_client::REPLAY_WINDOW <= palisade_execution::replica::CLIENT_WINDOW
);
