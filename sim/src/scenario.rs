//! Named scenarios: which faults a run injects, and the knobs of the simulated world.

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_wire::agreement::ReplicaId;
use palisade_wire::execution::ExecReplicaId;

/// What a Byzantine agreement replica does (each a wrapper around the honest core's
/// inputs or outputs; see [`crate::byzantine`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgreementFault {
    /// As primary, sends a different batch to the replicas in `group_b` than to the
    /// others, and votes for that other batch towards them (TOCS §4.2 equivocation).
    /// With `learn_from_peers`, it also learns batches from incoming pre-prepares, so that
    /// it can collude with an equivocating primary as a backup.
    Equivocate {
        group_b: BTreeSet<ReplicaId>,
        learn_from_peers: bool,
    },
    /// Drops every request of this client (a censoring primary, TOCS §4.4: the backups'
    /// request timers expose it).
    Censor { client: u64 },
    /// Its clock runs this far ahead, so as primary it stamps batches outside the
    /// backups' skew (DESIGN §1: the primary fixes the timestamp, backups check it).
    BadTimestamp { ahead: Duration },
    /// Sends prepares and commits for a bogus digest to the replicas in `group_b`.
    ConflictingVotes { group_b: BTreeSet<ReplicaId> },
    /// As one of the replicas 0..=f that push orders, pushes every execution replica a
    /// batch it did not deliver (the delivered one with its time moved), under the real
    /// certificate: f+1 matching pushes must never be faked by one replica. And signs
    /// its commits badly, so that the certificates correct replicas deliver, counting
    /// them over its link, may not verify (`link_authenticated_commits`).
    ForgeOrders,
    /// As primary, sends the replicas in `group_b` pre-prepares whose signature does not
    /// hold, over its own link: they prepare (the link vouches for the batch), find the
    /// signature bad before they would commit, and move to the next view
    /// (`Replica::pre_prepare_signature_holds`).
    ForgePrePrepares { group_b: BTreeSet<ReplicaId> },
}

/// What a Byzantine execution replica does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecFault {
    /// Every reply carries a wrong (but correctly signed) result. Through the firewall:
    /// wrong reply bodies under a share it signs over their (wrong) Merkle root.
    WrongReplies,
    /// Every checkpoint it signs names a made-up state digest.
    LyingCheckpoints,
    /// Tries to get file state out through the firewall ([`crate::leak`]): extra
    /// messages carrying secret bytes (plaintext of the requests it executes and its
    /// state digest), a share whose bytes are the secret, bodies for requests never made,
    /// raw bytes, floods of many messages per step, and direct sends to agreement nodes
    /// and clients (which the deployment has no link for). It executes honestly
    /// otherwise.
    Leaking,
}

/// What a Byzantine filter does ([`crate::filter_fault`]): each a wrapper around the
/// honest [`palisade_firewall::Filter`] core's inputs or outputs, as a compromised
/// filter node could.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterFault {
    /// Drops everything: sends nothing at all.
    Silent,
    /// Holds every message it sends this much longer.
    Delay(Duration),
    /// Sends every message two or three times.
    Duplicate,
    /// Besides its honest outputs: for every request of an order it sees, a certified
    /// reply with a garbage body and signature up; stable certificates with bad
    /// signatures up; and orders whose batch no longer matches its certificate down.
    Forge,
    /// Flips a byte in every certified reply it sends up and every order it sends down.
    Tamper,
    /// Forwards everything it receives from below — shares, bodies, raw bytes — to
    /// every peer above as it came ("as if certified"), besides its honest outputs.
    ForwardUncertified,
    /// Replays old certified replies and stable certificates, up (and, in the top row,
    /// straight to the client a reply names).
    Replay,
}

impl FilterFault {
    /// Every behaviour, for the seed to choose from.
    pub const ALL: [FilterFault; 7] = [
        FilterFault::Silent,
        FilterFault::Delay(Duration::from_millis(40)),
        FilterFault::Duplicate,
        FilterFault::Forge,
        FilterFault::Tamper,
        FilterFault::ForwardUncertified,
        FilterFault::Replay,
    ];
}

/// K in the firewall configuration (see [`SimConfig::with_h`]).
pub const FIREWALL_CHECKPOINT_INTERVAL: u64 = 8;

/// The scenarios the binary and the tests know by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Normal,
    Lossy,
    /// Like `Lossy`, and replies are lost too.
    LossyReplies,
    Partitions,
    Crashes,
    StoreLoss,
    /// Every agreement node, execution replica and gateway stops at once (`kill -9` of
    /// `palisade up`: stores keep every commit) while the cluster is between batches,
    /// and all restart: agreement remembers only its last stable checkpoint (as the
    /// runtime does in its data directory), execution resumes where it was.
    ClusterRestart,
    /// As `ClusterRestart`, stopping at any moment: execution replicas at different
    /// sequences, batches delivered and executed by fewer than g+1 of them, which
    /// agreement then orders anew.
    ClusterCrash,
    /// Loss, duplication, partitions, and crashes with store loss, all at once.
    Chaos,
    ByzantinePrimary,
    CensoringPrimary,
    BadTimestamp,
    ConflictingBackup,
    /// An agreement replica that pushes orders (replica 1) pushes forged batches to the
    /// execution replicas.
    ForgingPusher,
    /// The primary signs the pre-prepares it sends a seeded subset of the backups badly.
    ForgingPrimary,
    WrongReplies,
    LyingCheckpoint,
    /// f+1 colluding agreement replicas: beyond what PBFT tolerates. The checker is
    /// expected to report a violation (it proves the checker can fail).
    Colluding,
    /// Through the privacy firewall (h+1 rows of h+1 filters, threshold-signed replies,
    /// sealed bodies): loss, duplication, reordering and crash-restarts of agreement,
    /// filter and execution nodes.
    Firewall,
    /// Through the firewall, with h Byzantine filters (the seed picks where and how).
    ByzantineFilters,
    /// Through the firewall, with g leaking execution replicas.
    LeakingReplica,
    /// Through the firewall: loss, duplication, partitions, crashes, one Byzantine filter
    /// and one leaking replica at once.
    FirewallChaos,
    /// h+1 faulty filters, one in each row, forwarding everything, and a leaking
    /// replica: beyond what the firewall tolerates. The confidentiality invariant is
    /// expected to report a leak (it proves the check can fail).
    FirewallBreach,
}

impl Scenario {
    pub const ALL: [Scenario; 23] = [
        Scenario::Normal,
        Scenario::Lossy,
        Scenario::LossyReplies,
        Scenario::Partitions,
        Scenario::Crashes,
        Scenario::StoreLoss,
        Scenario::ClusterRestart,
        Scenario::ClusterCrash,
        Scenario::Chaos,
        Scenario::ByzantinePrimary,
        Scenario::CensoringPrimary,
        Scenario::BadTimestamp,
        Scenario::ConflictingBackup,
        Scenario::ForgingPusher,
        Scenario::ForgingPrimary,
        Scenario::WrongReplies,
        Scenario::LyingCheckpoint,
        Scenario::Colluding,
        Scenario::Firewall,
        Scenario::ByzantineFilters,
        Scenario::LeakingReplica,
        Scenario::FirewallChaos,
        Scenario::FirewallBreach,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal",
            Scenario::Lossy => "lossy",
            Scenario::LossyReplies => "lossy-replies",
            Scenario::Partitions => "partitions",
            Scenario::Crashes => "crashes",
            Scenario::StoreLoss => "store-loss",
            Scenario::ClusterRestart => "cluster-restart",
            Scenario::ClusterCrash => "cluster-crash",
            Scenario::Chaos => "chaos",
            Scenario::ByzantinePrimary => "byzantine-primary",
            Scenario::CensoringPrimary => "censoring-primary",
            Scenario::BadTimestamp => "bad-timestamp",
            Scenario::ConflictingBackup => "conflicting-backup",
            Scenario::ForgingPusher => "forging-pusher",
            Scenario::ForgingPrimary => "forging-primary",
            Scenario::WrongReplies => "wrong-replies",
            Scenario::LyingCheckpoint => "lying-checkpoint",
            Scenario::Colluding => "colluding",
            Scenario::Firewall => "firewall",
            Scenario::ByzantineFilters => "byzantine-filters",
            Scenario::LeakingReplica => "leaking-replica",
            Scenario::FirewallChaos => "firewall-chaos",
            Scenario::FirewallBreach => "firewall-breach",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scenarios that break a fault bound on purpose and must fail (left out of
    /// `all`).
    pub fn breaks_bounds(self) -> bool {
        matches!(self, Scenario::Colluding | Scenario::FirewallBreach)
    }

    /// The scenarios that run through the privacy firewall by default.
    pub fn uses_firewall(self) -> bool {
        matches!(
            self,
            Scenario::Firewall
                | Scenario::ByzantineFilters
                | Scenario::LeakingReplica
                | Scenario::FirewallChaos
                | Scenario::FirewallBreach
        )
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The knobs of one run. [`SimConfig::for_scenario`] gives each scenario its defaults;
/// the per-seed random choices (which node, when, which group) are made from the seed.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub scenario: Scenario,
    /// Agreement faults tolerated (3f+1 replicas).
    pub f: usize,
    /// Execution faults tolerated (2g+1 replicas).
    pub g: usize,
    /// Filter faults tolerated: `Some(h)` runs the firewall configuration with h+1 rows
    /// of h+1 filters between agreement and execution (threshold-signed replies, sealed
    /// bodies, certified replies relayed by agreement nodes); `None` is the `separate`
    /// configuration (signed replies straight to the client), unchanged.
    pub h: Option<usize>,
    pub clients: usize,
    /// Operations each client submits in the run.
    pub ops_per_client: u64,
    /// Requests each client keeps in flight.
    pub client_window: usize,
    /// A client waits uniformly up to this long after a completion before it submits
    /// again (spreads the workload over the fault phase).
    pub think_time: Duration,
    /// One-way message delay: `min_delay + uniform(0..=jitter)` (jitter reorders).
    pub min_delay: Duration,
    pub jitter: Duration,
    /// During the fault phase: chance (per mille) that a message is lost / duplicated.
    pub loss_per_mille: u64,
    pub duplicate_per_mille: u64,
    /// Whether replies (execution → client) may be lost or cut off by a partition too.
    /// Off by default: the agreement core drops a retransmitted request that it already
    /// ordered (as a duplicate) and nothing asks execution to re-send its cached reply,
    /// so a client whose replies were all lost waits forever. The `lossy-replies`
    /// scenario turns it on and exposes that gap (see the simulator's report).
    pub lose_replies: bool,
    /// Random partitions during the fault phase.
    pub partitions: bool,
    /// Crash-and-restart episodes during the fault phase (filters too, in the firewall
    /// configuration: a filter restarts with no state at all).
    pub crashes: bool,
    /// Execution restarts lose their store (state transfer).
    pub wipe_on_restart: bool,
    /// The whole cluster (agreement, execution, gateways) stops once, at a moment when
    /// every execution replica has executed everything agreement delivered, and
    /// restarts: processes killed, stores intact.
    pub cluster_restart: bool,
    /// With `cluster_restart`: stop at any moment, not only between batches.
    pub cluster_stop_anywhere: bool,
    /// Gateways (clients) crash and restart too: their in-flight requests are
    /// abandoned, and the new incarnation numbers requests from a larger base.
    pub client_crashes: bool,
    /// Length of the fault phase; afterwards the network is reliable and every crashed
    /// node is restarted ("the network heals").
    pub fault_phase: Duration,
    /// Once healed, every submitted request must complete within this much simulated
    /// time (the liveness invariant).
    pub liveness_bound: Duration,
    /// Simulated time to keep running after the last request completed (checkpoints,
    /// state transfer and stragglers get to finish, and get checked).
    pub settle: Duration,
    /// K, shared by agreement and execution.
    pub checkpoint_interval: u64,
    /// A client retransmits a request unanswered this long (doubling per retry).
    pub client_retransmit: Duration,
    /// Fixed Byzantine behaviours (the seed picks the details where there are any).
    pub agreement_faults: Vec<(ReplicaId, AgreementFault)>,
    pub exec_faults: Vec<(ExecReplicaId, ExecFault)>,
    /// Byzantine filters by flat id (`row * (h+1) + column`). Empty in a scenario that
    /// has some: the seed picks them ([`SimConfig::byzantine_filters`]).
    pub filter_faults: Vec<(u32, FilterFault)>,
    /// How many Byzantine filters the seed picks (positions and behaviours) when
    /// `filter_faults` is empty.
    pub byzantine_filters: usize,
    /// Hard cap on processed events (a runaway run is reported, not looped forever).
    pub max_events: u64,
    /// Print every send (with its fate) and crash to stderr, for replaying a failure.
    pub trace: bool,
}

impl SimConfig {
    /// The defaults of `scenario`; Byzantine groups are filled in from the seed by the
    /// simulation.
    pub fn for_scenario(scenario: Scenario) -> SimConfig {
        let mut c = SimConfig {
            scenario,
            f: 1,
            g: 1,
            h: None,
            clients: 2,
            ops_per_client: 20,
            client_window: 2,
            think_time: Duration::from_millis(30),
            min_delay: Duration::from_micros(500),
            jitter: Duration::from_millis(2),
            loss_per_mille: 0,
            duplicate_per_mille: 0,
            lose_replies: false,
            partitions: false,
            crashes: false,
            wipe_on_restart: false,
            cluster_restart: false,
            cluster_stop_anywhere: false,
            client_crashes: false,
            fault_phase: Duration::from_millis(600),
            liveness_bound: Duration::from_secs(30),
            settle: Duration::from_millis(300),
            checkpoint_interval: 4,
            client_retransmit: Duration::from_millis(250),
            agreement_faults: Vec::new(),
            exec_faults: Vec::new(),
            filter_faults: Vec::new(),
            byzantine_filters: 0,
            max_events: 2_000_000,
            trace: false,
        };
        match scenario {
            Scenario::Normal => {}
            Scenario::Lossy | Scenario::LossyReplies => {
                c.loss_per_mille = 80;
                c.duplicate_per_mille = 50;
                c.jitter = Duration::from_millis(15);
                c.lose_replies = scenario == Scenario::LossyReplies;
            }
            Scenario::Partitions => c.partitions = true,
            // Longer workloads, so that traffic continues after restarts: a restarted
            // replica repairs itself only at later checkpoints.
            Scenario::Crashes => {
                c.crashes = true;
                c.ops_per_client = 40;
            }
            Scenario::StoreLoss => {
                c.crashes = true;
                c.wipe_on_restart = true;
                c.ops_per_client = 40;
            }
            Scenario::ClusterRestart => {
                c.cluster_restart = true;
                c.ops_per_client = 40;
            }
            Scenario::ClusterCrash => {
                c.cluster_restart = true;
                c.cluster_stop_anywhere = true;
                c.ops_per_client = 40;
            }
            Scenario::Chaos => {
                c.loss_per_mille = 30;
                c.duplicate_per_mille = 30;
                c.jitter = Duration::from_millis(8);
                c.partitions = true;
                c.crashes = true;
                c.wipe_on_restart = true;
                c.ops_per_client = 40;
            }
            Scenario::ByzantinePrimary
            | Scenario::CensoringPrimary
            | Scenario::BadTimestamp
            | Scenario::ConflictingBackup
            | Scenario::ForgingPusher
            | Scenario::ForgingPrimary
            | Scenario::Colluding => {}
            Scenario::WrongReplies => c.exec_faults = vec![(0, ExecFault::WrongReplies)],
            Scenario::LyingCheckpoint => {
                c.exec_faults = vec![(2, ExecFault::LyingCheckpoints)];
            }
            Scenario::Firewall => {
                c.loss_per_mille = 40;
                c.duplicate_per_mille = 40;
                c.jitter = Duration::from_millis(8);
                c.crashes = true;
            }
            Scenario::ByzantineFilters => c.byzantine_filters = 1,
            Scenario::LeakingReplica => c.exec_faults = vec![(0, ExecFault::Leaking)],
            Scenario::FirewallChaos => {
                c.loss_per_mille = 30;
                c.duplicate_per_mille = 30;
                c.jitter = Duration::from_millis(8);
                c.partitions = true;
                c.crashes = true;
                c.byzantine_filters = 1;
                c.exec_faults = vec![(1, ExecFault::Leaking)];
            }
            Scenario::FirewallBreach => c.exec_faults = vec![(0, ExecFault::Leaking)],
        }
        if scenario.uses_firewall() {
            c = c.with_h(1);
        }
        c
    }

    /// The firewall configuration with `h` (h+1 rows of h+1 filters). A scenario's
    /// seed-picked Byzantine filters grow with h (h of them in `byzantine-filters`); the
    /// breach scenario puts one forwarding filter in every row.
    ///
    /// K becomes [`FIREWALL_CHECKPOINT_INTERVAL`]: filters and agreement nodes keep an
    /// order until the stable checkpoint after the next one, and a lost share or reply
    /// must be recovered before then (by the filters' overdue re-forwarding or a client
    /// retransmission; crate docs). With K = 4 checkpoints came every ~100 ms of
    /// simulated time, faster than a client's retransmissions (250 ms, doubling), and
    /// about 3% of `firewall` seeds lost a reply for good before filters re-forwarded
    /// overdue orders.
    pub fn with_h(mut self, h: usize) -> SimConfig {
        self.h = Some(h);
        self.checkpoint_interval = self.checkpoint_interval.max(FIREWALL_CHECKPOINT_INTERVAL);
        let side = h as u32 + 1;
        match self.scenario {
            Scenario::ByzantineFilters => self.byzantine_filters = h,
            Scenario::FirewallBreach => {
                self.filter_faults = (0..side)
                    .map(|row| (row * side + row % side, FilterFault::ForwardUncertified))
                    .collect();
            }
            _ => {}
        }
        self
    }

    pub fn n_agreement(&self) -> usize {
        3 * self.f + 1
    }

    pub fn n_execution(&self) -> usize {
        2 * self.g + 1
    }

    /// The deployment's shape.
    pub fn topology(&self) -> crate::topology::Topology {
        crate::topology::Topology {
            h: self.h,
            n_agreement: self.n_agreement(),
            n_execution: self.n_execution(),
        }
    }
}
