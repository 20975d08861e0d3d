//! The simulated network: per-message delay (with jitter, hence reordering), loss,
//! duplication and partitions, all drawn from the run's seed. Faults apply only during
//! the fault phase; afterwards the network "heals": every message arrives, once, late
//! at most by the jitter.
//!
//! The links are those of the deployment ([`Topology`]): in the firewall configuration a
//! message between nodes with no link (an execution replica to an agreement node or a
//! client, say) never arrives, fault phase or not, and is counted in
//! [`Network::no_link`].

use std::collections::BTreeSet;
use std::time::Duration;

use crate::message::NodeId;
use crate::rng::SimRng;
use crate::scenario::SimConfig;
use crate::topology::Topology;

#[derive(Debug)]
pub struct Network {
    min_delay: Duration,
    jitter: Duration,
    loss_per_mille: u64,
    duplicate_per_mille: u64,
    lose_replies: bool,
    /// One side of the current partition (clients are always on the other side).
    partition: Option<BTreeSet<NodeId>>,
    faulty: bool,
    topology: Topology,
    pub dropped: u64,
    pub duplicated: u64,
    /// Messages sent where the deployment has no link.
    pub no_link: u64,
}

impl Network {
    pub fn new(config: &SimConfig) -> Network {
        Network {
            min_delay: config.min_delay,
            jitter: config.jitter,
            loss_per_mille: config.loss_per_mille,
            duplicate_per_mille: config.duplicate_per_mille,
            lose_replies: config.lose_replies,
            partition: None,
            faulty: true,
            topology: config.topology(),
            dropped: 0,
            duplicated: 0,
            no_link: 0,
        }
    }

    pub fn partition(&mut self, side: BTreeSet<NodeId>) {
        self.partition = Some(side);
    }

    pub fn end_partition(&mut self) {
        self.partition = None;
    }

    /// End of the fault phase: no more loss, duplication or partitions.
    pub fn heal(&mut self) {
        self.faulty = false;
        self.partition = None;
    }

    fn separated(&self, from: NodeId, to: NodeId) -> bool {
        match &self.partition {
            Some(side) => side.contains(&from) != side.contains(&to),
            None => false,
        }
    }

    fn delay(&self, rng: &mut SimRng) -> Duration {
        let jitter = rng.below(self.jitter.as_micros() as u64 + 1);
        self.min_delay + Duration::from_micros(jitter)
    }

    /// The delays after which copies of one message from `from` to `to` arrive (empty:
    /// lost).
    pub fn plan(&mut self, rng: &mut SimRng, from: NodeId, to: NodeId) -> Vec<Duration> {
        if !self.topology.linked(from, to) {
            self.no_link += 1;
            return Vec::new();
        }
        let reply = matches!(to, NodeId::Client(_));
        let may_lose = self.faulty && (self.lose_replies || !reply);
        if may_lose && (self.separated(from, to) || rng.chance(self.loss_per_mille)) {
            self.dropped += 1;
            return Vec::new();
        }
        let mut copies = vec![self.delay(rng)];
        if self.faulty && rng.chance(self.duplicate_per_mille) {
            self.duplicated += 1;
            copies.push(self.delay(rng));
        }
        copies
    }
}
