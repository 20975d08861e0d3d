//! [`Simulation`]: one seeded run of the whole pipeline in one thread — clients,
//! 3f+1 agreement nodes, (in the firewall configuration) (h+1)² filters, 2g+1 execution
//! replicas — over simulated time (a queue of message deliveries, timer firings and fault
//! events), with the invariants checked after every step (the confidentiality invariant
//! on every message sent, [`crate::confidentiality`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use palisade_agreement::Config;
use palisade_client::{Acceptance, ClientConfig};
use palisade_execution::replica::{ReplicaConfig, ReplyMode};
use palisade_wire::agreement::{ClientId, OrderCertificate, OrderedBatch, ReplicaId, Sequence};

use crate::agreement_node::{AgreementNode, FirewallSide};
use crate::byzantine::subset;
use crate::client_node::{ClientNode, Sealing};
use crate::confidentiality::Confidentiality;
use crate::crypto_memo::{FirewallKeys, SealRng};
use crate::effect::{Effect, SimTimer};
use crate::execution_node::{ExecLinks, ExecutionNode, StoreFate};
use crate::filter_node::FilterNode;
use crate::firewall_setup::{build_filters, filter_assignment, CLIENT_VOUCH_WAIT};
use crate::invariants::{DigestBook, Violation};
use crate::keys;
use crate::message::{Msg, NodeId};
use crate::network::Network;
use crate::oracle::Oracle;
use crate::rng::SimRng;
use crate::scenario::{AgreementFault, Scenario, SimConfig};
use crate::topology::Topology;

/// Payload size from which correct primaries name requests in pre-prepares. The
/// workload's requests are tens of bytes (WRITEs of 1–64 bytes, names), so this splits
/// them: most batches mix named and inline requests.
const NAMED_REQUESTS_FROM: usize = 48;

/// Something scheduled at a simulated time.
#[derive(Debug)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Msg,
        /// Carries what its sender learned from the execution cluster
        /// ([`crate::confidentiality`]).
        tainted: bool,
    },
    Timer {
        node: NodeId,
        timer: SimTimer,
        generation: u64,
    },
    Crash(NodeId),
    Restart(NodeId),
    /// The whole cluster stops at once (`SimConfig::cluster_restart`), as soon as it is
    /// between batches; `attempts` counts the 1 ms postponements so far.
    StopCluster {
        attempts: u32,
    },
    PartitionStart(BTreeSet<NodeId>),
    PartitionEnd,
    /// End of the fault phase.
    Heal,
}

/// What a passing run did (for the report line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub events: u64,
    pub sim_time: Duration,
    pub completed: u64,
    pub committed: Sequence,
    /// Highest view any correct agreement replica reached.
    pub max_view: u64,
    /// Prepares and commits correct agreement replicas withheld in their quiet role, and
    /// the times one spoke up because a sequence stayed uncommitted without it
    /// (`palisade_agreement::quiet`; counted since each replica's last restart).
    pub votes_withheld: u64,
    pub quiet_speak_ups: u64,
    pub state_transfers: u64,
    pub messages_dropped: u64,
    pub replies_conflicting: u64,
    pub crashes: u64,
    /// Correct agreement replicas that ended the run outside the highest view or in a
    /// view change (they lag; PBFT lets them rejoin at the next view change or status).
    pub agreement_lagging: u64,
    /// Pre-prepares that named large requests, as correct backups took them: rebuilt
    /// from the requests they held, or fetched from the primary (TOCS §5.1).
    pub pre_prepares_rebuilt: u64,
    pub pre_prepares_fetched: u64,
    /// Pre-prepares correct backups found forged after preparing (the primary's link
    /// carried a bad signature).
    pub pre_prepares_forged: u64,
    /// `ResendReply` rounds agreement nodes sent for retransmitted requests whose orders
    /// had left their delivery logs (`separate`).
    pub replies_asked: u64,
    /// `separate`: reads completed unordered, by 2g+1 equal answers (each checked
    /// against the reference state at its sequence).
    pub reads_unordered: u64,
    /// `separate`: orders correct execution replicas took on f+1 matching pushes
    /// (without a certificate check), large ones they took at their one pusher's copy by
    /// certificate, pushed orders whose certificate did not hold, and waits for
    /// matching pushes that ran out.
    pub orders_agreed_by_pushers: u64,
    pub large_orders_certified: u64,
    pub exec_bad_certificates: u64,
    pub push_waits_expired: u64,
    /// Gateway restarts, and the in-flight requests they abandoned (never checked).
    pub client_restarts: u64,
    pub requests_abandoned: u64,
    /// Whole-cluster stops, and the sequence the execution replicas stood at when the
    /// last one came (`cluster-restart`).
    pub cluster_restarts: u64,
    pub cluster_restart_at: Sequence,
    /// At the last stop, how far apart the execution replicas stood (highest minus
    /// lowest sequence executed; `cluster-crash` stops at any moment).
    pub cluster_stop_spread: Sequence,
    /// Correct execution replicas that reported a restart no checkpoint can make stable
    /// (`ExecutionReplica::restart_resend`: no g+1 resumed at one state).
    pub restart_stalls: u64,
    /// Sequences the reference went back over because agreement ordered other batches
    /// there after a whole-cluster stop.
    pub sequences_voided: u64,
    /// Firewall configuration: inputs the filters dropped (all reasons), bad shares they
    /// recorded, certified replies agreement nodes relayed, firewall messages agreement
    /// nodes refused, messages sent where no link exists, leaking messages sent,
    /// Byzantine filters' made-up or misdirected messages, harmless forgeries that
    /// crossed the boundary, messages that crossed it conforming, and the BLS operations
    /// computed (after memoization) out of those asked for.
    pub filter_drops: u64,
    pub bad_shares: u64,
    pub replies_relayed: u64,
    /// Cached certified replies top filters re-sent to an agreement node that asked
    /// again for a collected batch's reply.
    pub filter_replies_resent_on_request: u64,
    pub firewall_refused: u64,
    pub no_link: u64,
    pub leaks_sent: u64,
    pub filter_misdeeds: u64,
    pub harmless_forgeries: u64,
    pub crossed: u64,
    pub bls_computed: u64,
    pub bls_calls: u64,
}

/// A failed run: everything needed to replay it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub scenario: Scenario,
    pub violation: Violation,
    pub at: Duration,
    pub events: u64,
    /// The run's h (named in the replay command when it is not the scenario's default).
    pub h: Option<usize>,
}

impl Failure {
    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let h = match self.h {
            Some(h) if self.h != SimConfig::for_scenario(self.scenario).h => {
                format!(" --h {h}")
            }
            _ => String::new(),
        };
        format!(
            "cargo run -p palisade-sim --release -- --seed {} --scenario {}{h}",
            self.seed, self.scenario
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FAILED seed {} scenario {} invariant {} at {:?} (event {}): {}\n  replay: {}",
            self.seed,
            self.scenario,
            self.violation.invariant(),
            self.at,
            self.events,
            self.violation,
            self.replay_command()
        )
    }
}

pub struct Simulation {
    seed: u64,
    config: SimConfig,
    rng: SimRng,
    now: Duration,
    queue: BTreeMap<(Duration, u64), Event>,
    next_event: u64,
    timers: BTreeMap<NodeId, Vec<(SimTimer, u64)>>,
    next_generation: u64,
    clients: Vec<ClientNode>,
    agreement: Vec<AgreementNode>,
    execution: Vec<ExecutionNode>,
    filters: Vec<FilterNode>,
    topology: Topology,
    /// The firewall configuration's keys and confidentiality checker.
    firewall_keys: Option<FirewallKeys>,
    confidentiality: Option<Confidentiality>,
    crashed: BTreeSet<NodeId>,
    /// Of those, the ones stopped with the whole cluster: their processes were killed,
    /// their stores keep every commit.
    killed: BTreeSet<NodeId>,
    network: Network,
    oracle: Oracle,
    digests: DigestBook,
    /// A restarted execution replica counts against g until it executed (or installed)
    /// this sequence: the highest any other replica had applied when it restarted.
    exec_catch_up: BTreeMap<u32, Sequence>,
    /// Accepted results not yet checkable: (client, request id, sequence, result).
    pending_checks: Vec<(ClientId, u64, Sequence, Vec<u8>)>,
    /// Accepted unordered reads not yet checkable.
    pending_reads: Vec<PendingRead>,
    /// The highest sequence of any result a client accepted so far.
    max_completed: Sequence,
    /// The highest sequence of an ordered result any client accepted (a cluster stop
    /// never voids it: the reference would call that a lost acknowledged result).
    max_ordered: Sequence,
    /// For each read-only request sent, `max_completed` when it was sent: its answer must
    /// be read at or after it (linearizability's real-time order, across clients).
    read_floor: BTreeMap<(ClientId, u64), Sequence>,
    healed_at: Option<Duration>,
    finish_at: Option<Duration>,
    stats: RunStats,
}

/// An unordered read a client accepted (`Effect::CompletedRead`), until the reference
/// has applied its sequence.
struct PendingRead {
    client: ClientId,
    request_id: u64,
    sequence: Sequence,
    result: Vec<u8>,
    op: palisade_wire::fs::FsOp,
}

/// How long a simulated gateway's read-only request waits for all 2g+1 answers before
/// it is ordered (the runtime's `READ_ONLY_WAIT`).
const CLIENT_READ_ONLY_WAIT: Duration = Duration::from_millis(20);

fn internal(e: impl std::fmt::Display) -> Violation {
    Violation::Internal(e.to_string())
}

impl Simulation {
    /// Builds the world of `config` for `seed`: nodes, keys, Byzantine assignments and
    /// the fault schedule.
    pub fn new(seed: u64, mut config: SimConfig) -> Result<Simulation, Violation> {
        let mut rng = SimRng::new(seed);
        let n = config.n_agreement();
        let m = config.n_execution();
        let agreement_keys = keys::agreement_keys(n);
        let exec_keys = keys::execution_keys(m);
        let client_keys = keys::client_keys(config.clients);
        if config.agreement_faults.is_empty() {
            config.agreement_faults = byzantine_assignment(&config, &mut rng);
        }
        let topology = config.topology();
        // Firewall only (the `separate` configuration's seeds replay as before).
        let firewall_keys = match topology.h {
            Some(_) => {
                if config.filter_faults.is_empty() {
                    config.filter_faults = filter_assignment(&config, &topology, &mut rng);
                }
                Some(FirewallKeys::from_seed(seed, config.g).map_err(internal)?)
            }
            None => None,
        };
        let k = config.checkpoint_interval;

        let mut agreement = Vec::with_capacity(n);
        for i in 0..n as ReplicaId {
            let mut c = Config::new(config.f, i, agreement_keys.clone(), client_keys.clone());
            c.max_batch_requests = 8;
            c.batch_delay = Duration::from_millis(2);
            // Paced by execution as the real nodes are (see `replica_config` in
            // palisade-node), so the simulator checks that path under faults too.
            c.max_batches_unanswered = 1;
            c.pacing_timeout = Duration::from_millis(20);
            c.checkpoint_interval = k;
            c.window = 4 * k;
            c.view_change_timeout = Duration::from_millis(150);
            c.status_interval = Duration::from_millis(40);
            // As the runtime: only `separate`'s execution replicas do without certificates.
            c.link_authenticated_commits = firewall_keys.is_none();
            c.quiet_votes = true;
            let fault = config
                .agreement_faults
                .iter()
                .find(|(r, _)| *r == i)
                .map(|(_, f)| f.clone());
            // Correct primaries name the larger of the workload's requests in their
            // pre-prepares, so that rebuilding and fetching named batches run under
            // every fault. A faulty replica's wrappers rewrite whole batches: it sends
            // them inline.
            c.named_requests_from = if fault.is_some() {
                usize::MAX
            } else {
                NAMED_REQUESTS_FROM
            };
            let mut node = AgreementNode::new(
                c,
                keys::agreement_key(i),
                exec_keys.clone(),
                config.g,
                fault,
            )
            .map_err(internal)?;
            if let Some(fk) = &firewall_keys {
                node = node.with_firewall(FirewallSide::new(
                    topology.top_row(),
                    fk.verifier(),
                    config.clients,
                    i as usize <= config.f,
                ));
            }
            agreement.push(node);
        }
        let mut execution = Vec::with_capacity(m);
        for e in 0..m as u32 {
            let c = ReplicaConfig {
                id: e,
                g: config.g,
                f: config.f,
                agreement_keys: agreement_keys.clone(),
                client_keys: client_keys.clone(),
                exec_keys: exec_keys.clone(),
                checkpoint_interval: k,
                max_ahead: 4 * k,
                fetch_timeout: Duration::from_millis(60),
                body_key: firewall_keys.as_ref().map(|fk| fk.body_key.clone()),
                replies: match &firewall_keys {
                    Some(fk) => match fk.signers.get(e as usize) {
                        Some(signer) => ReplyMode::Threshold(signer.clone()),
                        None => return Err(internal("no threshold signer for a replica")),
                    },
                    None => ReplyMode::Signed,
                },
            };
            let fault = config
                .exec_faults
                .iter()
                .find(|(r, _)| *r == e)
                .map(|(_, f)| *f);
            let links = if topology.firewall() {
                ExecLinks::Firewall {
                    bottom: topology.bottom(),
                }
            } else {
                ExecLinks::Separate {
                    n_agreement: n as u32,
                }
            };
            execution.push(
                ExecutionNode::new(c, keys::execution_key(e), links, fault).map_err(internal)?,
            );
        }
        let filters = match &firewall_keys {
            Some(fk) => build_filters(&config, &topology, fk).map_err(Violation::Internal)?,
            None => Vec::new(),
        };
        let clients = (0..config.clients as ClientId)
            .map(|id| {
                let c = ClientConfig {
                    id,
                    g: config.g,
                    exec_keys: exec_keys.clone(),
                    agreement_replicas: n,
                    window: config.client_window,
                    replay_window: palisade_client::REPLAY_WINDOW,
                    retransmit_after: config.client_retransmit,
                    first_request_id: 1,
                    vouch_wait: CLIENT_VOUCH_WAIT,
                    read_only_wait: CLIENT_READ_ONLY_WAIT,
                    acceptance: match &firewall_keys {
                        Some(fk) => Acceptance::Certified(fk.verifier()),
                        None => Acceptance::Matching,
                    },
                };
                let node = ClientNode::new(
                    c,
                    keys::client_key(id),
                    config.ops_per_client,
                    config.think_time,
                );
                match &firewall_keys {
                    Some(fk) => node.with_sealing(Sealing {
                        key: fk.body_key.clone(),
                        rng: SealRng::new(seed, id),
                    }),
                    None => node,
                }
            })
            .collect();
        let mut oracle = Oracle::new().map_err(internal)?;
        match &firewall_keys {
            Some(fk) => oracle = oracle.with_body_key(fk.body_key.clone()),
            // `separate`: gateways read without ordering; check those reads too.
            None => oracle = oracle.with_read_history()?,
        }
        if config.cluster_stop_anywhere && firewall_keys.is_some() {
            // The states to go back to when a restart voids batches.
            oracle = oracle.with_read_history()?;
        }
        let confidentiality = firewall_keys
            .as_ref()
            .map(|fk| Confidentiality::new(topology, fk.verifier()));
        let mut sim = Simulation {
            seed,
            network: Network::new(&config),
            oracle,
            config,
            rng,
            now: Duration::ZERO,
            queue: BTreeMap::new(),
            next_event: 0,
            timers: BTreeMap::new(),
            next_generation: 0,
            clients,
            agreement,
            execution,
            filters,
            topology,
            firewall_keys,
            confidentiality,
            crashed: BTreeSet::new(),
            killed: BTreeSet::new(),
            digests: DigestBook::default(),
            exec_catch_up: BTreeMap::new(),
            pending_checks: Vec::new(),
            pending_reads: Vec::new(),
            max_completed: 0,
            max_ordered: 0,
            read_floor: BTreeMap::new(),
            healed_at: None,
            finish_at: None,
            stats: RunStats::default(),
        };
        sim.schedule_faults();
        for c in 0..sim.clients.len() {
            let start = Duration::from_micros(sim.rng.below(5_000));
            let effects = sim.clients[c].start(start);
            let id = sim.clients[c].id;
            sim.apply(NodeId::Client(id), effects)?;
        }
        Ok(sim)
    }

    fn push(&mut self, after: Duration, event: Event) {
        let at = self.now.saturating_add(after);
        self.queue.insert((at, self.next_event), event);
        self.next_event += 1;
    }

    fn schedule_faults(&mut self) {
        let phase = self.config.fault_phase.as_micros() as u64;
        let ms = |x: u64| Duration::from_micros(x);
        if self.config.partitions {
            let nodes: Vec<NodeId> = (0..self.agreement.len() as u32)
                .map(NodeId::Agreement)
                .chain((0..self.execution.len() as u32).map(NodeId::Execution))
                .chain(self.topology.filters())
                .collect();
            let mut t = self.rng.between(20_000, 100_000);
            while t < phase {
                let bits = self.rng.next_u64();
                let ids: Vec<u32> = (0..nodes.len() as u32).collect();
                let side: BTreeSet<NodeId> = subset(&ids, bits)
                    .into_iter()
                    .map(|i| nodes[i as usize])
                    .collect();
                let length = self.rng.between(50_000, 250_000);
                self.push(ms(t), Event::PartitionStart(side));
                self.push(ms((t + length).min(phase)), Event::PartitionEnd);
                t += length + self.rng.between(30_000, 150_000);
            }
        }
        if self.config.crashes {
            // At most f agreement, g execution and h filter nodes down at once (crash
            // faults count against the same bounds as Byzantine ones).
            let kinds = if self.topology.firewall() { 3 } else { 2 };
            for kind in 0..kinds {
                let count = match kind {
                    0 => self.agreement.len(),
                    1 => self.execution.len(),
                    _ => self.filters.len(),
                };
                let mut t = self.rng.between(20_000, 150_000);
                while t < phase {
                    let i = self.rng.below(count as u64) as u32;
                    let node = match kind {
                        0 => NodeId::Agreement(i),
                        1 => NodeId::Execution(i),
                        _ => NodeId::Filter(i),
                    };
                    let down = self.rng.between(50_000, 300_000);
                    let back = (t + down).min(phase);
                    self.push(ms(t), Event::Crash(node));
                    self.push(ms(back), Event::Restart(node));
                    t = back + self.rng.between(30_000, 150_000);
                }
            }
        }
        if self.config.cluster_restart {
            // Before the fault phase ends (at most 200 postponements, then down 30–90 ms).
            let t = self.rng.between(100_000, 300_000);
            self.push(ms(t), Event::StopCluster { attempts: 0 });
        }
        if self.config.client_crashes {
            // Gateways too (after the schedule above, so other seeds replay unchanged).
            let mut t = self.rng.between(20_000, 150_000);
            while t < phase {
                let i = self.rng.below(self.clients.len() as u64) as ClientId;
                let back = (t + self.rng.between(20_000, 200_000)).min(phase);
                self.push(ms(t), Event::Crash(NodeId::Client(i)));
                self.push(ms(back), Event::Restart(NodeId::Client(i)));
                t = back + self.rng.between(30_000, 150_000);
            }
        }
        self.push(self.config.fault_phase, Event::Heal);
    }

    /// Runs to the end; `Ok` if no invariant broke.
    pub fn run(&mut self) -> Result<RunStats, Failure> {
        match self.run_inner() {
            Ok(()) => Ok(self.finish_stats()),
            Err(violation) => Err(Failure {
                seed: self.seed,
                scenario: self.config.scenario,
                violation,
                at: self.now,
                events: self.stats.events,
                h: self.config.h,
            }),
        }
    }

    fn run_inner(&mut self) -> Result<(), Violation> {
        while let Some(((at, _), event)) = self.queue.pop_first() {
            self.now = at;
            self.stats.events += 1;
            if self.stats.events > self.config.max_events {
                return Err(Violation::Liveness(format!(
                    "event budget of {} exhausted",
                    self.config.max_events
                )));
            }
            self.handle(event)?;
            self.check_step()?;
            if let Some(finish) = self.finish_at {
                if self.now >= finish {
                    break;
                }
            }
        }
        self.final_checks()
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Deliver {
                from,
                to,
                msg,
                tainted,
            } => {
                if self.crashed.contains(&to) {
                    return Ok(());
                }
                if tainted {
                    if let Some(c) = &mut self.confidentiality {
                        c.on_deliver(to);
                    }
                }
                let now = self.now;
                let effects = match to {
                    NodeId::Client(c) => match self.clients.get_mut(c as usize) {
                        Some(node) => node.on_message(from, msg, now, &mut self.rng),
                        None => Vec::new(),
                    },
                    NodeId::Agreement(a) => match self.agreement.get_mut(a as usize) {
                        Some(node) => node.on_message(from, msg, now),
                        None => Vec::new(),
                    },
                    NodeId::Execution(e) => match self.execution.get_mut(e as usize) {
                        Some(node) => node.on_message(from, msg),
                        None => Vec::new(),
                    },
                    NodeId::Filter(i) => match self.filters.get_mut(i as usize) {
                        Some(node) => node.on_message(from, msg, now, &mut self.rng),
                        None => Vec::new(),
                    },
                };
                self.apply(to, effects)
            }
            Event::Timer {
                node,
                timer,
                generation,
            } => {
                let armed = self.timers.get_mut(&node).and_then(|list| {
                    let pos = list
                        .iter()
                        .position(|(t, g)| *t == timer && *g == generation)?;
                    Some(list.remove(pos))
                });
                if armed.is_none() || self.crashed.contains(&node) {
                    return Ok(());
                }
                let now = self.now;
                let effects = match node {
                    NodeId::Client(c) => match self.clients.get_mut(c as usize) {
                        Some(n) => n.on_timer(&timer, now, &mut self.rng),
                        None => Vec::new(),
                    },
                    NodeId::Agreement(a) => match self.agreement.get_mut(a as usize) {
                        Some(n) => n.on_timer(&timer, now),
                        None => Vec::new(),
                    },
                    NodeId::Execution(e) => match self.execution.get_mut(e as usize) {
                        Some(n) => n.on_timer(&timer),
                        None => Vec::new(),
                    },
                    NodeId::Filter(i) => match self.filters.get_mut(i as usize) {
                        Some(n) => n.on_timer(now, &mut self.rng),
                        None => Vec::new(),
                    },
                };
                self.apply(node, effects)
            }
            Event::Crash(node) => {
                if !self.may_crash(node) {
                    return Ok(());
                }
                if self.config.trace {
                    eprintln!("{:?} crash {node}", self.now);
                }
                self.take_down(node);
                Ok(())
            }
            Event::Restart(node) => self.restart(node),
            Event::StopCluster { attempts } => {
                self.stop_cluster(attempts);
                Ok(())
            }
            Event::PartitionStart(side) => {
                if self.healed_at.is_none() {
                    self.network.partition(side);
                }
                Ok(())
            }
            Event::PartitionEnd => {
                self.network.end_partition();
                Ok(())
            }
            Event::Heal => {
                self.network.heal();
                self.healed_at = Some(self.now);
                let down: Vec<NodeId> = self.crashed.iter().copied().collect();
                for node in down {
                    self.restart(node)?;
                }
                Ok(())
            }
        }
    }

    /// The fault budget: a node down, or restarted and not yet caught up, counts
    /// against f (agreement) or g (execution), so a crash is skipped while another node
    /// of its kind is down or recovering (beyond the bound no protocol promises anything).
    fn may_crash(&mut self, node: NodeId) -> bool {
        match node {
            NodeId::Agreement(_) => {
                let down = self
                    .crashed
                    .iter()
                    .filter(|n| matches!(n, NodeId::Agreement(_)))
                    .count();
                let recovering = self
                    .agreement
                    .iter_mut()
                    .filter_map(|a| a.recovering().then_some(()))
                    .count();
                down + recovering + self.config.agreement_faults.len() < self.config.f
            }
            NodeId::Execution(_) => {
                let down = self
                    .crashed
                    .iter()
                    .filter(|n| matches!(n, NodeId::Execution(_)))
                    .count();
                let recovering = self.execution.iter().filter(|e| e.recovering).count();
                down + recovering + self.config.exec_faults.len() < self.config.g
            }
            NodeId::Filter(_) => {
                let down = self
                    .crashed
                    .iter()
                    .filter(|n| matches!(n, NodeId::Filter(_)))
                    .count();
                down + self.config.filter_faults.len() < self.config.h.unwrap_or(0)
            }
            NodeId::Client(c) => {
                // Not one that finished: its run is over (and nothing would restart it
                // before the heal anyway).
                self.config.client_crashes
                    && self.clients.get(c as usize).is_some_and(|n| !n.done())
            }
        }
    }

    /// A node goes down: its timers are gone; a gateway abandons its in-flight requests.
    fn take_down(&mut self, node: NodeId) {
        self.crashed.insert(node);
        self.timers.remove(&node);
        self.stats.crashes += 1;
        if let NodeId::Client(c) = node {
            if let Some(client) = self.clients.get_mut(c as usize) {
                client.crash();
            }
        }
    }

    /// The lowest and the highest sequence an execution replica executed through.
    fn applied_range(&self) -> (Sequence, Sequence) {
        let applied = self.execution.iter().map(|e| e.replica.last_applied());
        (
            applied.clone().min().unwrap_or(0),
            applied.max().unwrap_or(0),
        )
    }

    /// Stops every agreement node, filter, execution replica and gateway at once, if every
    /// execution replica executed exactly what agreement delivered (else tries again
    /// 1 ms later, at most 200 times). With `cluster_stop_anywhere` the other way
    /// round: it waits (in steps of 50 µs, at most 4,000) for a moment when the
    /// execution replicas stand at different sequences (after 2,000, one when some
    /// delivered batch is executed nowhere yet will do), the cases a stop between
    /// batches never shows. A batch delivered but executed nowhere, or by fewer than g+1, is then
    /// ordered anew after the restart (agreement remembers nothing): the reference and
    /// the digest book accept another batch above the lowest replica's sequence, as long
    /// as no client accepted a result of the one it replaces.
    fn stop_cluster(&mut self, attempts: u32) {
        let delivered = self
            .agreement
            .iter()
            .map(|a| a.replica.last_delivered())
            .max()
            .unwrap_or(0);
        let between_batches = self
            .execution
            .iter()
            .all(|e| e.replica.last_applied() == delivered);
        let (lowest, highest) = self.applied_range();
        let apart = lowest != highest;
        let (wanted, retry, max_attempts) = if self.config.cluster_stop_anywhere {
            // Replicas at different sequences first; failing that, a delivered batch
            // that no replica executed yet.
            let wanted = apart || (attempts >= 2_000 && !between_batches);
            (wanted, Duration::from_micros(50), 4_000)
        } else {
            (between_batches, Duration::from_millis(1), 200)
        };
        if !self.crashed.is_empty() || (!wanted && attempts < max_attempts) {
            if attempts < max_attempts {
                self.push(
                    retry,
                    Event::StopCluster {
                        attempts: attempts + 1,
                    },
                );
            }
            return;
        }
        let nodes: Vec<NodeId> = (0..self.agreement.len() as u32)
            .map(NodeId::Agreement)
            .chain((0..self.filters.len() as u32).map(NodeId::Filter))
            .chain((0..self.execution.len() as u32).map(NodeId::Execution))
            .chain(self.clients.iter().map(|c| NodeId::Client(c.id)))
            .collect();
        if self.config.trace {
            eprintln!("{:?} cluster stopped at sequence {delivered}", self.now);
        }
        let down = Duration::from_micros(self.rng.between(30_000, 90_000));
        for node in nodes {
            self.take_down(node);
            self.killed.insert(node);
            // Nodes come back in any order (as containers or hosts do), execution
            // replicas possibly well after agreement nodes and gateways.
            let jitter = Duration::from_micros(self.rng.between(0, 20_000));
            self.push(down + jitter, Event::Restart(node));
        }
        self.stats.cluster_restarts += 1;
        self.stats.cluster_stop_spread = highest - lowest;
        // An unordered read may have named a sequence above `lowest` that the restart
        // voids (a replica ahead answered it; the others, behind, answered the same
        // bytes, which is why it was accepted): later reads need not be beyond it.
        self.max_completed = self.max_ordered.max(self.max_completed.min(lowest));
        self.oracle.cluster_stopped(lowest);
        self.digests.cluster_stopped(lowest);
        self.stats.cluster_restart_at = delivered;
    }

    fn restart(&mut self, node: NodeId) -> Result<(), Violation> {
        if !self.crashed.remove(&node) {
            return Ok(());
        }
        let killed = self.killed.remove(&node);
        match node {
            NodeId::Agreement(a) => {
                let committed = self.oracle.applied();
                let now = self.now;
                let effects = match self.agreement.get_mut(a as usize) {
                    Some(n) => {
                        n.restart(committed).map_err(internal)?;
                        n.start(now)
                    }
                    None => Vec::new(),
                };
                self.apply(node, effects)?;
            }
            NodeId::Execution(e) => {
                let fate = if self.config.wipe_on_restart {
                    StoreFate::Wiped
                } else if killed {
                    StoreFate::Kept
                } else {
                    StoreFate::PowerLoss
                };
                let target = self
                    .execution
                    .iter()
                    .filter(|n| n.id != e)
                    .map(|n| n.replica.last_applied())
                    .max()
                    .unwrap_or(0);
                self.exec_catch_up.insert(e, target);
                let effects = match self.execution.get_mut(e as usize) {
                    Some(n) => {
                        n.restart(fate).map_err(internal)?;
                        n.start()
                    }
                    None => Vec::new(),
                };
                self.apply(node, effects)?;
            }
            NodeId::Client(c) => {
                let effects = match self.clients.get_mut(c as usize) {
                    Some(n) => n.restart(Duration::ZERO),
                    None => Vec::new(),
                };
                self.apply(node, effects)?;
            }
            NodeId::Filter(i) => {
                if let Some(n) = self.filters.get_mut(i as usize) {
                    n.restart();
                }
            }
        }
        Ok(())
    }

    /// Carries out a node's effects and feeds the observations to the checkers.
    fn apply(&mut self, node: NodeId, effects: Vec<Effect>) -> Result<(), Violation> {
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => {
                    if let (NodeId::Client(c), Msg::ReadOnly { request, .. }) = (node, &msg) {
                        self.read_floor
                            .entry((c, request.message.request_id))
                            .or_insert(self.max_completed);
                    }
                    self.send(node, to, msg, Duration::ZERO)?
                }
                Effect::SendLater { to, msg, after } => self.send(node, to, msg, after)?,
                Effect::SetTimer { timer, after } => {
                    let generation = self.next_generation;
                    self.next_generation += 1;
                    let list = self.timers.entry(node).or_default();
                    list.retain(|(t, _)| *t != timer);
                    list.push((timer.clone(), generation));
                    self.push(
                        after,
                        Event::Timer {
                            node,
                            timer,
                            generation,
                        },
                    );
                }
                Effect::CancelTimer(timer) => {
                    if let Some(list) = self.timers.get_mut(&node) {
                        list.retain(|(t, _)| *t != timer);
                    }
                }
                Effect::Delivered { batch, certificate } => {
                    self.observe_delivery(node, &batch, &certificate)?;
                }
                Effect::Completed {
                    request_id,
                    sequence,
                    result,
                } => {
                    if let NodeId::Client(c) = node {
                        self.stats.completed += 1;
                        self.max_completed = self.max_completed.max(sequence);
                        self.max_ordered = self.max_ordered.max(sequence);
                        // A read-only request that was ordered after all.
                        self.read_floor.remove(&(c, request_id));
                        self.pending_checks.push((c, request_id, sequence, result));
                    }
                }
                Effect::CompletedRead {
                    request_id,
                    sequence,
                    result,
                    op,
                } => {
                    if let NodeId::Client(client) = node {
                        let floor = self.read_floor.remove(&(client, request_id)).unwrap_or(0);
                        if sequence < floor {
                            return Err(Violation::WrongResult {
                                client,
                                request_id,
                                detail: format!(
                                    "accepted an unordered read at sequence {sequence}, older than a result accepted at {floor} before the read was sent"
                                ),
                            });
                        }
                        self.max_completed =
                            self.max_completed.max(self.oracle.read_position(sequence));
                        self.stats.completed += 1;
                        self.stats.reads_unordered += 1;
                        self.pending_reads.push(PendingRead {
                            client,
                            request_id,
                            sequence,
                            result,
                            op,
                        });
                    }
                }
                Effect::Executed { sequence, digest } => {
                    if let NodeId::Execution(e) = node {
                        self.observe_execution(e, sequence, digest)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `node` is a correct (not Byzantine) node.
    fn is_correct(&self, node: NodeId) -> bool {
        match node {
            NodeId::Client(_) => true,
            NodeId::Agreement(a) => self
                .agreement
                .get(a as usize)
                .is_some_and(AgreementNode::is_correct),
            NodeId::Execution(e) => self
                .execution
                .get(e as usize)
                .is_some_and(ExecutionNode::is_correct),
            NodeId::Filter(i) => self
                .filters
                .get(i as usize)
                .is_some_and(FilterNode::is_correct),
        }
    }

    /// One message through the network, `extra` later than its delay; in the firewall
    /// configuration checked first by the confidentiality invariant.
    fn send(
        &mut self,
        from: NodeId,
        to: NodeId,
        msg: Msg,
        extra: Duration,
    ) -> Result<(), Violation> {
        let mut tainted = false;
        if self.topology.firewall() && self.topology.linked(from, to) {
            let correct = self.is_correct(from);
            if let Some(c) = &mut self.confidentiality {
                tainted = c.on_send(from, to, &msg, correct)?;
            }
        }
        let planned = self.network.plan(&mut self.rng, from, to);
        if self.config.trace {
            eprintln!(
                "{:?} {from} -> {to} {}: {} copies",
                self.now,
                trace_detail(&msg),
                planned.len()
            );
        }
        for delay in planned {
            self.push(
                delay.saturating_add(extra),
                Event::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                    tainted,
                },
            );
        }
        Ok(())
    }

    /// Agreement safety: every batch a correct replica delivered, and every batch a
    /// faulty one delivered with a certificate that verifies, goes into the committed
    /// order; two different ones at one sequence is a violation.
    fn observe_delivery(
        &mut self,
        node: NodeId,
        batch: &OrderedBatch,
        certificate: &OrderCertificate,
    ) -> Result<(), Violation> {
        let NodeId::Agreement(a) = node else {
            return Ok(());
        };
        let correct = self
            .agreement
            .get(a as usize)
            .is_some_and(AgreementNode::is_correct);
        if !correct {
            let keys = keys::agreement_keys(self.agreement.len());
            if certificate.verify(batch, &keys, self.config.f).is_err() {
                return Ok(());
            }
        }
        self.oracle.commit(batch, &format!("agreement{a}"))?;
        if let Some(c) = &mut self.confidentiality {
            c.observe_order(batch);
        }
        Ok(())
    }

    /// Execution agreement: correct replicas have one digest per sequence.
    fn observe_execution(
        &mut self,
        e: u32,
        sequence: Sequence,
        digest: palisade_wire::agreement::Digest,
    ) -> Result<(), Violation> {
        let Some(node) = self.execution.get_mut(e as usize) else {
            return Ok(());
        };
        if !node.is_correct() {
            return Ok(());
        }
        // No exemption for a restarted replica: its store holds the exactly-once table
        // too, so its digest at every sequence must equal its peers'. It stops counting
        // against g (the fault budget) once it caught up with where the others were
        // when it restarted — not at its first execution: a wiped replica re-executing
        // sequence 1 has not recovered, and crashing a second one then would leave
        // fewer than g+1 replicas with the latest stable state.
        if node.recovering && sequence >= self.exec_catch_up.get(&e).copied().unwrap_or(0) {
            node.recovering = false;
            self.exec_catch_up.remove(&e);
        }
        self.digests.record(e, sequence, digest)
    }

    fn all_done(&self) -> bool {
        self.clients.iter().all(ClientNode::done)
    }

    /// The checks after every step: accepted results that became checkable, and the
    /// liveness bound once healed.
    fn check_step(&mut self) -> Result<(), Violation> {
        if !self.pending_checks.is_empty() {
            let mut still = Vec::new();
            for (client, request_id, sequence, result) in std::mem::take(&mut self.pending_checks) {
                if !self
                    .oracle
                    .check_accepted(client, request_id, sequence, &result)?
                {
                    still.push((client, request_id, sequence, result));
                }
            }
            self.pending_checks = still;
        }
        if !self.pending_reads.is_empty() {
            let mut still = Vec::new();
            for read in std::mem::take(&mut self.pending_reads) {
                let checked = self.oracle.check_read(
                    read.client,
                    read.request_id,
                    read.sequence,
                    &read.op,
                    &read.result,
                )?;
                if !checked {
                    still.push(read);
                }
            }
            self.pending_reads = still;
        }
        if self.finish_at.is_none() && self.all_done() {
            self.finish_at = Some(self.now.saturating_add(self.config.settle));
        }
        if let Some(healed) = self.healed_at {
            if !self.all_done() && self.now > healed.saturating_add(self.config.liveness_bound) {
                let waiting: Vec<String> = self
                    .clients
                    .iter()
                    .filter(|c| !c.done())
                    .map(|c| {
                        let at: Vec<String> = c
                            .outstanding
                            .iter()
                            .map(|r| match self.oracle.executed_at(c.id, *r) {
                                Some(s) => format!("{r} at sequence {s}"),
                                None => format!("{r} never executed"),
                            })
                            .collect();
                        format!(
                            "client {} ({} unsent, outstanding {:?}: {})",
                            c.id,
                            c.to_submit,
                            c.outstanding,
                            at.join(", ")
                        )
                    })
                    .collect();
                return Err(Violation::Liveness(format!(
                    "not answered within {:?} after the network healed: {}\n{}",
                    self.config.liveness_bound,
                    waiting.join("; "),
                    self.describe()
                )));
            }
        }
        Ok(())
    }

    /// The state of every node, for a failure report.
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        for a in &self.agreement {
            let r = &a.replica;
            lines.push(format!(
                "  agreement{} {}: view {} {:?}, delivered {}, low {}, pending {}, log {:?}, stats {:?}",
                a.id,
                if a.is_correct() { "correct" } else { "faulty" },
                r.view(),
                r.status(),
                r.last_delivered(),
                r.low_watermark(),
                r.pending_requests(),
                a.log.range(),
                r.stats()
            ));
        }
        for e in &self.execution {
            lines.push(format!(
                "  execution{} {}{}: applied {}, stats {:?}",
                e.id,
                if e.is_correct() { "correct" } else { "faulty" },
                if e.recovering { " (recovering)" } else { "" },
                e.replica.last_applied(),
                e.replica.stats()
            ));
        }
        for f in &self.filters {
            lines.push(format!("  {}", f.describe()));
        }
        for a in &self.agreement {
            if let Some(fw) = &a.firewall {
                lines.push(format!(
                    "  agreement{} firewall: relayed {}, refused {}",
                    a.id, fw.replies_relayed, fw.refused
                ));
            }
        }
        for c in &self.clients {
            lines.push(format!("  client{}: {:?}", c.id, c.client.stats()));
        }
        lines.push(format!("  crashed: {:?}", self.crashed));
        lines.join("\n")
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        if !self.all_done() {
            return Err(Violation::Liveness(
                "the run went quiet with requests unanswered".into(),
            ));
        }
        if let Some(read) = self.pending_reads.first() {
            return Err(Violation::WrongResult {
                client: read.client,
                request_id: read.request_id,
                detail: format!(
                    "an unordered read accepted at sequence {}, which no observed commit reached (committed order ends at {})",
                    read.sequence,
                    self.oracle.applied()
                ),
            });
        }
        if let Some((client, request_id, sequence, _)) = self.pending_checks.first() {
            return Err(Violation::WrongResult {
                client: *client,
                request_id: *request_id,
                detail: format!(
                    "accepted at sequence {sequence}, which no observed commit reached (committed order ends at {})",
                    self.oracle.applied()
                ),
            });
        }
        Ok(())
    }

    fn finish_stats(&self) -> RunStats {
        let mut stats = self.stats.clone();
        stats.sim_time = self.now;
        stats.committed = self.oracle.applied();
        stats.sequences_voided = self.oracle.sequences_voided();
        stats.max_view = self
            .agreement
            .iter()
            .filter(|a| a.is_correct())
            .map(|a| a.replica.view())
            .max()
            .unwrap_or(0);
        for a in self.agreement.iter().filter(|a| a.is_correct()) {
            stats.votes_withheld += a.replica.stats().votes_withheld;
            stats.quiet_speak_ups += a.replica.stats().quiet_speak_ups;
        }
        stats.state_transfers = self
            .execution
            .iter()
            .map(|e| e.replica.stats().state_transfers_completed)
            .sum();
        stats.messages_dropped = self.network.dropped;
        for e in self.execution.iter().filter(|e| e.is_correct()) {
            let s = e.replica.stats();
            stats.orders_agreed_by_pushers += s.orders_agreed_by_pushers;
            stats.restart_stalls += s.restart_stalls;
            stats.large_orders_certified += s.large_orders_certified;
            stats.exec_bad_certificates += s.bad_certificates;
            stats.push_waits_expired += s.push_waits_expired;
        }
        stats.agreement_lagging = self
            .agreement
            .iter()
            .filter(|a| a.is_correct())
            .filter(|a| {
                a.replica.view() != stats.max_view
                    || a.replica.status() != palisade_agreement::Status::Normal
            })
            .count() as u64;
        for a in self.agreement.iter().filter(|a| a.is_correct()) {
            stats.pre_prepares_rebuilt += a.replica.stats().pre_prepares_rebuilt;
            stats.pre_prepares_fetched += a.replica.stats().pre_prepares_fetched;
            stats.pre_prepares_forged += a.replica.stats().pre_prepares_forged;
            stats.replies_asked += a.replies_asked;
        }
        stats.client_restarts = self.clients.iter().map(|c| c.incarnation).sum();
        stats.requests_abandoned = self.clients.iter().map(|c| c.abandoned).sum();
        stats.replies_conflicting = self
            .clients
            .iter()
            .map(|c| c.client.stats().replies_conflicting)
            .sum();
        stats.filter_drops = self
            .filters
            .iter()
            .map(|f| f.filter.stats().total_dropped())
            .sum();
        stats.filter_replies_resent_on_request = self
            .filters
            .iter()
            .map(|f| f.filter.stats().replies_resent_on_request)
            .sum();
        stats.bad_shares = self
            .filters
            .iter()
            .map(|f| f.filter.stats().bad_shares.values().sum::<u64>())
            .sum();
        for a in &self.agreement {
            if let Some(fw) = &a.firewall {
                stats.replies_relayed += fw.replies_relayed;
                stats.firewall_refused += fw.refused;
            }
        }
        stats.no_link = self.network.no_link;
        stats.leaks_sent = self
            .execution
            .iter()
            .filter_map(|e| e.leaker.as_ref())
            .map(|l| l.sent)
            .sum();
        stats.filter_misdeeds = self.filters.iter().map(FilterNode::misdeeds).sum();
        if let Some(c) = &self.confidentiality {
            stats.harmless_forgeries = c.stats.harmless_forgeries;
            stats.crossed = c.stats.crossed;
        }
        if let Some(fk) = &self.firewall_keys {
            let counters = fk.verifier.counters();
            stats.bls_calls = counters.calls;
            stats.bls_computed = counters.computed;
        }
        stats
    }
}

/// The seed's choice of Byzantine agreement replicas for the scenario.
fn byzantine_assignment(config: &SimConfig, rng: &mut SimRng) -> Vec<(ReplicaId, AgreementFault)> {
    let n = config.n_agreement() as ReplicaId;
    let backups: Vec<ReplicaId> = (1..n).collect();
    match config.scenario {
        Scenario::ByzantinePrimary => vec![(
            0,
            AgreementFault::Equivocate {
                group_b: subset(&backups, rng.next_u64()),
                learn_from_peers: false,
            },
        )],
        Scenario::CensoringPrimary => vec![(
            0,
            AgreementFault::Censor {
                client: rng.below(config.clients as u64),
            },
        )],
        Scenario::BadTimestamp => vec![(
            0,
            AgreementFault::BadTimestamp {
                ahead: Duration::from_secs(3600),
            },
        )],
        Scenario::ConflictingBackup => {
            let faulty = 1 + rng.below(u64::from(n - 1)) as ReplicaId;
            let others: Vec<ReplicaId> = (0..n).filter(|r| *r != faulty).collect();
            vec![(
                faulty,
                AgreementFault::ConflictingVotes {
                    group_b: subset(&others, rng.next_u64()),
                },
            )]
        }
        Scenario::ForgingPusher => vec![(1, AgreementFault::ForgeOrders)],
        // A third of the seeds forge towards every backup (all of them move on at
        // once), the rest towards a proper subset (the others may still commit).
        Scenario::ForgingPrimary => {
            let group_b = match rng.below(3) {
                0 => backups.iter().copied().collect(),
                _ => subset(&backups, rng.next_u64()),
            };
            vec![(0, AgreementFault::ForgePrePrepares { group_b })]
        }
        Scenario::Colluding => {
            // f+1 = 2 colluders (the primary and replica 1) show one correct replica a
            // different batch than the other: both can commit.
            let victim = 2 + rng.below(u64::from(n - 2)) as ReplicaId;
            let fault = AgreementFault::Equivocate {
                group_b: BTreeSet::from([victim]),
                learn_from_peers: true,
            };
            vec![(0, fault.clone()), (1, fault)]
        }
        _ => Vec::new(),
    }
}

/// What a trace line says about a message (`SimConfig::trace`).
fn trace_detail(msg: &Msg) -> String {
    use palisade_wire::execution::ExecutionMessage as E;
    use palisade_wire::firewall::FirewallMessage as F;
    match msg {
        Msg::Request(r) => format!("request {}/{}", r.message.client, r.message.request_id),
        Msg::RepliedThrough(s) => format!("replied through {s}"),
        Msg::Execution(E::Order { batch, .. }) => {
            let ids: Vec<String> = batch
                .batch
                .requests
                .iter()
                .map(|r| format!("{}/{}", r.message.client, r.message.request_id))
                .collect();
            format!("order {} [{}]", batch.sequence, ids.join(" "))
        }
        Msg::Execution(E::FetchOrders { from }) => format!("fetch-orders {from}"),
        Msg::Execution(_) => "other".into(),
        Msg::Firewall(F::CertifiedReply(c)) => format!(
            "certified-reply {} {}/{}",
            c.sequence, c.entry.client, c.entry.request_id
        ),
        Msg::Firewall(F::Vouch(v)) => format!("vouch {}", v.sequence),
        Msg::Firewall(F::ReplyShare(c)) => format!("reply-share {} r{}", c.sequence, c.replica),
        Msg::Firewall(F::ReplyBody(c)) => format!(
            "reply-body {} {}/{}",
            c.sequence, c.entry.client, c.entry.request_id
        ),
        Msg::Firewall(F::Stable(c)) => format!("stable {}", c.sequence),
        Msg::Firewall(F::StableShare(c)) => format!("stable-share {}", c.sequence),
        Msg::Reply(r) => format!("reply {}/{}", r.message.client, r.message.request_id),
        Msg::ReadOnly { request, after } => format!(
            "read-only {}/{} after {after}",
            request.message.client, request.message.request_id
        ),
        Msg::ReadOnlyReply(r) => format!(
            "read-only-reply {}/{} at {}",
            r.client, r.request_id, r.sequence
        ),
        Msg::Agreement(_) => "pbft".into(),
        Msg::Opaque(b) => format!("{} bytes", b.len()),
    }
}

/// Runs one seed of `config`.
pub fn run(seed: u64, config: SimConfig) -> Result<RunStats, Failure> {
    match Simulation::new(seed, config.clone()) {
        Ok(mut sim) => sim.run(),
        Err(violation) => Err(Failure {
            seed,
            scenario: config.scenario,
            violation,
            at: Duration::ZERO,
            events: 0,
            h: config.h,
        }),
    }
}
