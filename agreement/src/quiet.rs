//! [`QuietVotes`]: f backups of each view keep their prepares and commits to themselves
//! while the other 2f+1 replicas make progress, and speak up when they do not.
//!
//! Why: every quorum of PBFT is 2f+1 of the 3f+1 replicas (TOCS §4.2), so in a view
//! where the primary and 2f backups vote, the votes of the other f backups reach no
//! quorum first; they only cost the senders and the 3f receivers of each a message. On
//! one machine of two vCPUs that is 6 of the 37 messages of a write, and its latency
//! follows its CPU (docs/PERFORMANCE.md: replica 3 quiet, WRITE p50 0.95×).
//!
//! Who is quiet: the f replicas that follow the primary's 2f backups in ring order
//! (`(primary + 2f + 1 .. primary + 3f) mod n`), so the role moves with the view and
//! never falls on the primary.
//!
//! Why it is safe: a quiet replica still prepares and commits (its own votes enter its
//! log, its view-change messages carry what it prepared), it only does not send them.
//! Safety never rests on a particular replica voting: any 2f+1 form the quorums, and a
//! silent replica is one that is slow or faulty, which PBFT tolerates.
//!
//! Why it stays live: if some of the 2f+1 others are silent (crashed, slow, faulty), a
//! sequence it withheld votes for stays uncommitted, and its status timer fires
//! (`Config::status_interval`); it then sends every withheld vote of the current view
//! whose sequence is still uncommitted, and votes openly for the next
//! [`LOUD_SPAN_WINDOWS`] log windows. A crashed backup so costs the cluster one status
//! interval, not one per batch.

use std::collections::BTreeSet;

use palisade_wire::agreement::{ReplicaId, Sequence, View};

use crate::config::Config;

/// After speaking up, a quiet replica votes openly for this many log windows of
/// sequences past the votes it withheld.
pub const LOUD_SPAN_WINDOWS: u64 = 16;

/// The sequences whose votes this replica withheld, and how far it votes openly.
#[derive(Debug, Default)]
pub struct QuietVotes {
    withheld: BTreeSet<Sequence>,
    /// Votes at sequences up to this one are sent, whatever the role.
    loud_until: Sequence,
}

impl QuietVotes {
    /// Whether replica `me` withholds its vote at `sequence` in `view`: quiet votes are
    /// configured, `me` has the quiet role in `view`, and it has not spoken up for that
    /// sequence.
    pub fn withholds(&self, config: &Config, view: View, sequence: Sequence) -> bool {
        config.quiet_votes && is_quiet(config, view, config.id) && sequence > self.loud_until
    }

    /// Records that the vote at `sequence` was withheld; sequences at or below
    /// `delivered` (committed, so no vote is needed) are forgotten. Bounded: a replica
    /// votes only within its log's window above `delivered`.
    pub fn withhold(&mut self, sequence: Sequence, delivered: Sequence) {
        self.withheld.insert(sequence);
        self.withheld = self.withheld.split_off(&delivered.saturating_add(1));
    }

    /// The sequences withheld so far, forgotten here: the caller sends those still
    /// uncommitted, or needs none of them.
    pub fn take(&mut self) -> Vec<Sequence> {
        std::mem::take(&mut self.withheld).into_iter().collect()
    }

    /// The replica spoke up for sequences up to `through`: it votes openly at every
    /// sequence up to [`LOUD_SPAN_WINDOWS`] log windows past it.
    pub fn go_loud(&mut self, through: Sequence, window: u64) {
        let span = window.saturating_mul(LOUD_SPAN_WINDOWS);
        self.loud_until = self.loud_until.max(through.saturating_add(span));
    }

    /// A view ended: what was withheld in it is no longer needed (the view change
    /// carries what this replica prepared).
    pub fn forget(&mut self) {
        self.withheld.clear();
    }

    /// Whether any vote is withheld.
    pub fn is_empty(&self) -> bool {
        self.withheld.is_empty()
    }
}

/// Whether `replica` has the quiet role in `view`: its distance after the primary in
/// ring order is above 2f.
pub fn is_quiet(config: &Config, view: View, replica: ReplicaId) -> bool {
    let n = config.n() as u64;
    let primary = u64::from(config.primary(view));
    let distance = (u64::from(replica) + n - primary) % n;
    distance > 2 * config.f as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(f: usize, id: ReplicaId) -> Config {
        let mut c = Config::new(f, id, Vec::new(), Vec::new());
        c.quiet_votes = true;
        c
    }

    #[test]
    fn the_f_replicas_after_the_primarys_2f_backups_are_quiet() {
        let quiet = |f: usize, view: View| -> Vec<ReplicaId> {
            let n = 3 * f as ReplicaId + 1;
            (0..n)
                .filter(|r| is_quiet(&config(f, *r), view, *r))
                .collect()
        };
        assert_eq!(quiet(1, 0), vec![3]);
        assert_eq!(quiet(1, 1), vec![0]);
        assert_eq!(quiet(1, 6), vec![1]);
        assert_eq!(quiet(2, 0), vec![5, 6]);
        assert_eq!(quiet(2, 3), vec![1, 2]);
        assert_eq!(quiet(0, 5), Vec::<ReplicaId>::new());
    }

    #[test]
    fn a_replica_that_spoke_up_votes_openly_for_a_span() {
        let c = config(1, 3);
        let mut q = QuietVotes::default();
        assert!(q.withholds(&c, 0, 1));
        q.withhold(1, 0);
        q.withhold(2, 0);
        q.withhold(3, 1); // 1 was delivered meanwhile
        assert_eq!(q.take(), vec![2, 3]);
        assert!(q.is_empty());
        // Taking alone changes nothing: the votes were not needed.
        assert!(q.withholds(&c, 0, 4));
        q.go_loud(3, 128);
        assert!(!q.withholds(&c, 0, 3 + 16 * 128));
        assert!(q.withholds(&c, 0, 4 + 16 * 128));
        // Not quiet in a view where it is a voting backup, nor when not configured.
        assert!(!q.withholds(&c, 1, 10_000));
        assert!(!q.withholds(&Config::new(1, 3, Vec::new(), Vec::new()), 0, 10_000));
    }
}
