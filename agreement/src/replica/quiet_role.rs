//! The replica's side of the quiet role (`crate::quiet`): withholding a vote, and
//! sending the withheld ones when the others did not make progress without them.

use palisade_wire::agreement::{AgreementMessage, Sequence};

use super::{Replica, Status};
use crate::io::Output;

impl Replica {
    /// This replica kept its vote at `sequence` to itself (it is in its log).
    pub(super) fn withhold_vote(&mut self, sequence: Sequence) {
        self.stats.votes_withheld += 1;
        self.quiet.withhold(sequence, self.last_delivered);
    }

    /// The status timer fired, so some work has waited a status interval. If a
    /// sequence this replica withheld a vote for in the current view is still
    /// uncommitted, the other 2f+1 did not commit it alone (one of them is silent, slow
    /// or lost a message): send every such withheld prepare and commit, and vote openly
    /// from now on for a span of sequences (`crate::quiet`).
    pub(super) fn speak_up(&mut self, out: &mut Vec<Output>) {
        if self.quiet.is_empty() || self.status != Status::Normal {
            return;
        }
        let me = self.config.id;
        let view = self.view;
        let waiting: Vec<Sequence> = self
            .quiet
            .take()
            .into_iter()
            .filter(|s| {
                *s > self.last_delivered
                    && self
                        .log
                        .get(*s)
                        .is_some_and(|slot| slot.committed.is_none())
            })
            .collect();
        let Some(through) = waiting.last().copied() else {
            return;
        };
        self.quiet.go_loud(through, self.config.window);
        self.stats.quiet_speak_ups += 1;
        tracing::info!(
            replica = me,
            view,
            sequences = waiting.len(),
            "quiet replica speaking up: a sequence it withheld votes for is still uncommitted"
        );
        for sequence in waiting {
            let Some(slot) = self.log.get(sequence) else {
                continue;
            };
            if let Some(p) = slot.prepares.get(&me).filter(|p| p.view == view) {
                out.push(Output::Broadcast(AgreementMessage::Prepare(p.clone())));
            }
            if let Some(c) = slot.commits.get(&me).filter(|c| c.message.view == view) {
                out.push(Output::Broadcast(AgreementMessage::Commit(c.clone())));
            }
        }
    }
}
