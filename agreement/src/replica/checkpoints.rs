//! Checkpoints, the stable checkpoint and the watermarks (TOCS §4.3).

use palisade_wire::agreement::{AgreementMessage, Checkpoint, Digest, Sequence, Signed};

use super::Replica;
use crate::error::Reject;
use crate::io::Output;

impl Replica {
    // ----- checkpoints and watermarks (TOCS §4.3) -----

    /// A stable execution checkpoint (g+1 execution replicas signed its state; the
    /// runtime checked that). Usually at a multiple of K; after the whole cluster
    /// restarted, at the sequence where the execution replicas resumed (their restart
    /// checkpoint, `ExecutionReplica::start`), which this replica's memory may not
    /// reach. Either way every sequence up to it was committed and executed, so this
    /// primary never proposes at or below it again (`execution_floor`), even before
    /// 2f+1 agreement replicas made it their stable checkpoint. Delivery skips to it
    /// only then (`on_stable`): a replica behind it shows `last_delivered` below it in
    /// its status messages, which is what makes peers send it the checkpoint proof.
    ///
    /// `from_execution` is false for the runtime's own record from before a restart
    /// (`Input::RecordedCheckpoint`): it moves the floor and is vouched for, but only
    /// the execution replicas can end `await_execution`.
    pub(super) fn on_execution_checkpoint(
        &mut self,
        sequence: Sequence,
        state_digest: Digest,
        from_execution: bool,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        self.execution_floor = self.execution_floor.max(sequence);
        self.next_sequence = self.next_sequence.max(sequence.saturating_add(1));
        if from_execution
            && self.resume_at.is_none()
            && self
                .awaiting_execution
                .is_some_and(|at_least| sequence >= at_least)
        {
            self.resume_at = Some(sequence);
        }
        if sequence <= self.log.low() {
            if self.awaiting_execution.is_some() {
                // Already stable here (a restart after a clean shutdown): propose.
                return self.propose(false, out);
            }
            return Err(Reject::Rule(
                "execution checkpoint not a new checkpoint sequence",
            ));
        }
        let checkpoint = self.sign(Checkpoint {
            sequence,
            state_digest,
            replica: self.config.id,
        })?;
        out.push(Output::Broadcast(AgreementMessage::Checkpoint(
            checkpoint.clone(),
        )));
        self.count_checkpoint(checkpoint, out)
    }

    pub(super) fn on_checkpoint(
        &mut self,
        checkpoint: Signed<Checkpoint>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        // Any sequence: a restart checkpoint is not at a multiple of K (see
        // `on_execution_checkpoint`). Votes are bounded by the watermarks (one per replica
        // and sequence inside them, one per replica beyond).
        let m = &checkpoint.message;
        if m.sequence <= self.log.low() {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        checkpoint.verify_with(&self.config.replica_keys)?;
        self.count_checkpoint(checkpoint, out)
    }

    /// Counts a verified checkpoint message, this replica's own included: beyond the
    /// window among each replica's latest such messages (this replica may have fallen
    /// behind, or restarted with the whole cluster and been told by execution where
    /// it stands), else with the votes inside the window.
    fn count_checkpoint(
        &mut self,
        checkpoint: Signed<Checkpoint>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        if checkpoint.message.sequence > self.log.high() {
            if let Some(stable) = self
                .checkpoints
                .add_beyond(checkpoint, self.config.quorum())
            {
                self.on_stable(stable, out)?;
            }
            return Ok(());
        }
        self.add_checkpoint(checkpoint, out)
    }

    pub(super) fn add_checkpoint(
        &mut self,
        checkpoint: Signed<Checkpoint>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        if let Some(stable) = self.checkpoints.add(checkpoint, self.config.quorum()) {
            self.on_stable(stable, out)?;
        }
        Ok(())
    }

    /// A checkpoint became stable: advance the watermarks and collect the log.
    pub(super) fn on_stable(
        &mut self,
        sequence: Sequence,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        self.log.advance_low(sequence);
        self.stats.checkpoints_stable += 1;
        if self.last_delivered < sequence {
            // This replica fell behind: the batches up to `sequence` will never be
            // delivered here. Execution catches up by state transfer to the stable
            // checkpoint, and agreement continues from there.
            self.last_delivered = sequence;
            self.clients.clear_pending();
            let (_, digest, _) = self.checkpoints.stable();
            if let Some(state_digest) = digest {
                out.push(Output::StateTransfer {
                    sequence,
                    state_digest,
                });
            }
        }
        self.next_sequence = self.next_sequence.max(sequence.saturating_add(1));
        self.try_deliver(out);
        self.propose(false, out)
    }
}
