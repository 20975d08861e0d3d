//! Checkpoints, the stable checkpoint and the watermarks (TOCS §4.3).

use palisade_wire::agreement::{AgreementMessage, Checkpoint, Digest, Sequence, Signed};

use super::Replica;
use crate::error::Reject;
use crate::io::Output;

impl Replica {
    // ----- checkpoints and watermarks (TOCS §4.3) -----

    pub(super) fn on_execution_checkpoint(
        &mut self,
        sequence: Sequence,
        state_digest: Digest,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        if !sequence.is_multiple_of(self.config.checkpoint_interval) || sequence <= self.log.low() {
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
        self.add_checkpoint(checkpoint, out)
    }

    pub(super) fn on_checkpoint(
        &mut self,
        checkpoint: Signed<Checkpoint>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = &checkpoint.message;
        if !m.sequence.is_multiple_of(self.config.checkpoint_interval) {
            return Err(Reject::Rule("checkpoint at a non-checkpoint sequence"));
        }
        if m.sequence <= self.log.low() {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        checkpoint.verify_with(&self.config.replica_keys)?;
        if m.sequence > self.log.high() {
            // Beyond the window: this replica may have fallen behind.
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
