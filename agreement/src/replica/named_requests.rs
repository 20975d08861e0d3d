//! Pre-prepares that name their large requests instead of carrying them (TOCS §5.1,
//! separate request transmission).
//!
//! A client sends each request to every replica (TOCS §4.1), so a backup usually holds a
//! request before the primary's pre-prepare for it arrives. The primary then sends a
//! large request as its client id, request id and signature, and the backup rebuilds the
//! batch from its pending requests. What it rebuilds must hash to the digest the
//! primary signed, so naming changes nothing about what is agreed: a backup that lacks
//! a named request, or holds other bytes under that name (a faulty client can send
//! different payloads to different replicas), keeps the pre-prepare and fetches the
//! batch from the primary; it also retries the rebuild whenever it admits a request,
//! since the client's copy may simply be late.

use palisade_wire::agreement::{
    AgreementMessage, Batch, BatchEntry, PrePrepare, ReplicaId, Sequence, Signed,
};

use super::normal_case::PrePrepareSignature;
use super::{Replica, MAX_AWAITING};
use crate::error::Reject;
use crate::io::Output;

impl Replica {
    /// `from`: the replica the authenticated link says sent it. Only the primary sends
    /// a named pre-prepare (nobody relays one), so another replica cannot make this one
    /// rebuild and hash batches before any signature is checked.
    pub(super) fn on_pre_prepare_named(
        &mut self,
        from: ReplicaId,
        pre_prepare: Signed<PrePrepare>,
        entries: Vec<BatchEntry>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = &pre_prepare.message;
        // The cheap checks of `on_pre_prepare` first, so a stale or stray message
        // costs neither a rebuild nor a fetch.
        if m.primary != self.config.primary(m.view)
            || m.primary == self.config.id
            || from != m.primary
        {
            return Err(Reject::Rule("pre-prepare not from the primary"));
        }
        if m.view < self.view {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        if let Some(batch) = self.rebuild(m, &entries)? {
            self.stats.pre_prepares_rebuilt += 1;
            // Only the primary sends a named pre-prepare, over its own link (above).
            let signature = PrePrepareSignature::Deferred;
            return self.on_pre_prepare(pre_prepare, batch, true, signature, out);
        }
        pre_prepare.verify_with(&self.config.replica_keys)?;
        let sequence = m.sequence;
        // A copy of a pre-prepare this replica accepted already (its requests may have
        // left the pending queue since): nothing to fetch.
        if let Some(slot) = self.log.get(sequence) {
            if let Some((_, digest)) = slot.accepted().filter(|(v, _)| *v == m.view) {
                return Err(if digest == m.digest {
                    Reject::Rule("duplicate pre-prepare")
                } else {
                    Reject::ConflictingPrePrepare(sequence)
                });
            }
            if slot.committed.is_some() {
                return Err(Reject::Rule("pre-prepare of a committed slot"));
            }
        }
        if self.awaiting.len() >= MAX_AWAITING && !self.awaiting.contains_key(&sequence) {
            return Err(Reject::Rule("too many pre-prepares awaiting their batch"));
        }
        self.stats.pre_prepares_fetched += 1;
        tracing::debug!(
            replica = self.config.id,
            view = m.view,
            sequence,
            "pre-prepare names a request not held here: fetching its batch"
        );
        out.push(Output::Send {
            to: m.primary,
            message: AgreementMessage::FetchBatch {
                sequence,
                digest: m.digest,
            },
        });
        self.awaiting.insert(sequence, (pre_prepare, entries));
        Ok(())
    }

    /// The batch `entries` stand for, if this replica holds every named request and
    /// the result hashes to the pre-prepare's digest; `None` otherwise.
    fn rebuild(&self, m: &PrePrepare, entries: &[BatchEntry]) -> Result<Option<Batch>, Reject> {
        let mut requests = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry {
                BatchEntry::Inline(r) => requests.push(r.clone()),
                BatchEntry::Named {
                    client,
                    request_id,
                    signature,
                } => match self.clients.named(*client, *request_id, signature) {
                    Some(r) => requests.push(r.clone()),
                    None => return Ok(None),
                },
            }
        }
        let batch = Batch {
            timestamp: m.timestamp,
            requests,
        };
        Ok((batch.digest()? == m.digest).then_some(batch))
    }

    /// After an admission: accepts every awaited pre-prepare that can now be rebuilt,
    /// and forgets those of past views or below the low watermark.
    pub(super) fn retry_awaiting(&mut self, out: &mut Vec<Output>) {
        if self.awaiting.is_empty() {
            return;
        }
        let (view, low) = (self.view, self.log.low());
        self.awaiting
            .retain(|&s, (pp, _)| s > low && pp.message.view >= view);
        let mut ready = Vec::new();
        for (&sequence, (pp, entries)) in &self.awaiting {
            let named_held = entries.iter().all(|e| match e {
                BatchEntry::Inline(_) => true,
                BatchEntry::Named {
                    client,
                    request_id,
                    signature,
                } => self
                    .clients
                    .named(*client, *request_id, signature)
                    .is_some(),
            });
            if named_held {
                if let Ok(Some(batch)) = self.rebuild(&pp.message, entries) {
                    ready.push((sequence, batch));
                }
            }
        }
        for (sequence, batch) in ready {
            if let Some((pp, _)) = self.awaiting.remove(&sequence) {
                self.stats.pre_prepares_rebuilt += 1;
                self.accept_awaited(pp, batch, out);
            }
        }
    }

    /// The fetched batch of an awaited pre-prepare (its digest already matched).
    pub(super) fn on_awaited_body(
        &mut self,
        sequence: Sequence,
        batch: Batch,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        if let Some((pp, _)) = self.awaiting.remove(&sequence) {
            self.stats.batches_fetched += 1;
            self.accept_awaited(pp, batch, out);
        }
        Ok(())
    }

    fn accept_awaited(&mut self, pp: Signed<PrePrepare>, batch: Batch, out: &mut Vec<Output>) {
        // Checked before its batch was fetched.
        let checked = PrePrepareSignature::Checked;
        if let Err(reject) = self.on_pre_prepare(pp, batch, true, checked, out) {
            tracing::debug!(replica = self.config.id, %reject, "awaited pre-prepare dropped");
            self.count_replica_reject(&reject);
        }
    }
}
