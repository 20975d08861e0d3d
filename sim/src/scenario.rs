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
}

/// What a Byzantine execution replica does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecFault {
    /// Every reply carries a wrong (but correctly signed) result.
    WrongReplies,
    /// Every checkpoint it signs names a made-up state digest.
    LyingCheckpoints,
}

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
    /// Loss, duplication, partitions, and crashes with store loss, all at once.
    Chaos,
    ByzantinePrimary,
    CensoringPrimary,
    BadTimestamp,
    ConflictingBackup,
    WrongReplies,
    LyingCheckpoint,
    /// f+1 colluding agreement replicas: beyond what PBFT tolerates. The checker is
    /// expected to report a violation (it proves the checker can fail).
    Colluding,
}

impl Scenario {
    pub const ALL: [Scenario; 14] = [
        Scenario::Normal,
        Scenario::Lossy,
        Scenario::LossyReplies,
        Scenario::Partitions,
        Scenario::Crashes,
        Scenario::StoreLoss,
        Scenario::Chaos,
        Scenario::ByzantinePrimary,
        Scenario::CensoringPrimary,
        Scenario::BadTimestamp,
        Scenario::ConflictingBackup,
        Scenario::WrongReplies,
        Scenario::LyingCheckpoint,
        Scenario::Colluding,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal",
            Scenario::Lossy => "lossy",
            Scenario::LossyReplies => "lossy-replies",
            Scenario::Partitions => "partitions",
            Scenario::Crashes => "crashes",
            Scenario::StoreLoss => "store-loss",
            Scenario::Chaos => "chaos",
            Scenario::ByzantinePrimary => "byzantine-primary",
            Scenario::CensoringPrimary => "censoring-primary",
            Scenario::BadTimestamp => "bad-timestamp",
            Scenario::ConflictingBackup => "conflicting-backup",
            Scenario::WrongReplies => "wrong-replies",
            Scenario::LyingCheckpoint => "lying-checkpoint",
            Scenario::Colluding => "colluding",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
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
    /// Crash-and-restart episodes during the fault phase.
    pub crashes: bool,
    /// Execution restarts lose their store (state transfer).
    pub wipe_on_restart: bool,
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
    /// Fixed Byzantine behaviours (the seed picks the details where there are any).
    pub agreement_faults: Vec<(ReplicaId, AgreementFault)>,
    pub exec_faults: Vec<(ExecReplicaId, ExecFault)>,
    /// Hard cap on processed events (a runaway run is reported, not looped forever).
    pub max_events: u64,
}

impl SimConfig {
    /// The defaults of `scenario`; Byzantine groups are filled in from the seed by the
    /// simulation.
    pub fn for_scenario(scenario: Scenario) -> SimConfig {
        let mut c = SimConfig {
            scenario,
            f: 1,
            g: 1,
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
            client_crashes: false,
            fault_phase: Duration::from_millis(600),
            liveness_bound: Duration::from_secs(30),
            settle: Duration::from_millis(300),
            checkpoint_interval: 4,
            agreement_faults: Vec::new(),
            exec_faults: Vec::new(),
            max_events: 2_000_000,
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
            | Scenario::Colluding => {}
            Scenario::WrongReplies => c.exec_faults = vec![(0, ExecFault::WrongReplies)],
            Scenario::LyingCheckpoint => {
                c.exec_faults = vec![(2, ExecFault::LyingCheckpoints)];
            }
        }
        c
    }

    pub fn n_agreement(&self) -> usize {
        3 * self.f + 1
    }

    pub fn n_execution(&self) -> usize {
        2 * self.g + 1
    }
}
