//! One PBFT replica as a pure state machine: [`Replica::step`] takes an [`Input`] and
//! returns the [`Output`]s it causes, and does nothing else.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_wire::agreement::{
    AgreementMessage, Batch, Checkpoint, Commit, Digest, NewView, OrderedBatch, PrePrepare,
    Prepare, PreparedProof, ReplicaId, Request, Sequence, Signed, View, ViewChange,
};
use palisade_wire::fs::Timestamp;

use crate::batcher::{BatchDecision, Batcher};
use crate::certificate::{neutral, order_certificate};
use crate::checkpoint::CheckpointTracker;
use crate::client_table::{AdmitError, ClientTable};
use crate::config::{Config, ConfigError};
use crate::error::Reject;
use crate::io::{Input, Output, TimerKind};
use crate::log::Log;
use crate::stats::Stats;
use crate::view_change::{
    plan_new_view, verify_quorum, verify_view_change, NewViewPlan, ViewChanges,
};

/// Whether the replica is working in its view or waiting for that view's new-view
/// message (TOCS §4.4: during a view change only checkpoint, view-change and new-view
/// messages are processed; votes for the coming view are kept for later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Normal,
    ViewChange,
}

/// Successive view changes double the timeout up to this many times.
const MAX_BACKOFF_DOUBLINGS: u32 = 16;

/// One agreement replica.
pub struct Replica {
    config: Config,
    key: SigningKey,
    view: View,
    status: Status,
    /// The runtime's latest clock reading (from [`Input::Tick`]).
    now: Option<Timestamp>,
    log: Log,
    clients: ClientTable,
    batcher: Batcher,
    checkpoints: CheckpointTracker,
    view_changes: ViewChanges,
    /// The primary's next sequence number to assign.
    next_sequence: Sequence,
    last_delivered: Sequence,
    /// Timestamp of the last delivered non-null batch.
    delivered_timestamp: Timestamp,
    /// Highest timestamp of any pre-prepare accepted: the primary never goes below it.
    last_timestamp: Timestamp,
    vc_timer_armed: bool,
    /// View changes since the last delivered batch (the back-off exponent).
    successive_view_changes: u32,
    /// Something was delivered during this step (restart the request timer).
    progressed: bool,
    null_digest: Digest,
    stats: Stats,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.config.id)
            .field("view", &self.view)
            .field("status", &self.status)
            .field("low", &self.log.low())
            .field("last_delivered", &self.last_delivered)
            .finish_non_exhaustive()
    }
}

/// Which kind of input a refusal came from (for counting).
#[derive(Clone, Copy)]
enum Source {
    Client,
    Replica,
    Local,
}

fn nanos(t: Timestamp) -> u64 {
    u64::from(t.seconds) * 1_000_000_000 + u64::from(t.nanos)
}

impl Replica {
    /// A replica in view 0 at sequence 0. `key` must be the signing key of
    /// `config.replica_keys[config.id]`.
    pub fn new(config: Config, key: SigningKey) -> Result<Replica, ConfigError> {
        config.validate()?;
        if config.replica_keys.get(config.id as usize) != Some(&key.verifying_key()) {
            return Err(ConfigError::Invalid(
                "signing key does not match this replica's public key",
            ));
        }
        let null_digest = Batch::null()
            .digest()
            .map_err(|_| ConfigError::Invalid("cannot encode the null batch"))?;
        Ok(Replica {
            log: Log::new(config.window),
            clients: ClientTable::new(config.client_window, config.max_pending_requests),
            batcher: Batcher::new(
                config.max_batch_requests,
                config.max_batch_bytes,
                config.batch_delay,
            ),
            config,
            key,
            view: 0,
            status: Status::Normal,
            now: None,
            checkpoints: CheckpointTracker::new(),
            view_changes: ViewChanges::new(),
            next_sequence: 1,
            last_delivered: 0,
            delivered_timestamp: Timestamp::default(),
            last_timestamp: Timestamp::default(),
            vc_timer_armed: false,
            successive_view_changes: 0,
            progressed: false,
            null_digest,
            stats: Stats::default(),
        })
    }

    pub fn id(&self) -> ReplicaId {
        self.config.id
    }
    pub fn view(&self) -> View {
        self.view
    }
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn is_primary(&self) -> bool {
        self.config.primary(self.view) == self.config.id
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Low watermark h (last stable checkpoint).
    pub fn low_watermark(&self) -> Sequence {
        self.log.low()
    }
    /// High watermark H = h + L.
    pub fn high_watermark(&self) -> Sequence {
        self.log.high()
    }
    pub fn last_delivered(&self) -> Sequence {
        self.last_delivered
    }
    /// Slots held in the log (bounded by L).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
    /// Requests admitted and not yet delivered.
    pub fn pending_requests(&self) -> usize {
        self.clients.pending_len()
    }
    /// Checkpoint sequences with votes still held (collected on a stable checkpoint).
    pub fn checkpoint_votes_held(&self) -> Vec<Sequence> {
        self.checkpoints.pending_sequences()
    }

    /// Processes one input; returns its effects in the order they must happen.
    pub fn step(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        let (source, result) = match input {
            Input::ClientRequest(request) => (Source::Client, self.on_request(request, &mut out)),
            Input::Message { from, message } => {
                (Source::Replica, self.on_message(from, message, &mut out))
            }
            Input::Timer(kind) => (Source::Local, self.on_timer(kind, &mut out)),
            Input::Tick(now) => {
                self.now = Some(now);
                (Source::Local, Ok(()))
            }
            Input::StableCheckpoint {
                sequence,
                state_digest,
            } => (
                Source::Local,
                self.on_execution_checkpoint(sequence, state_digest, &mut out),
            ),
        };
        if let Err(reject) = result {
            tracing::debug!(replica = self.config.id, view = self.view, %reject, "input dropped");
            self.count(source, &reject);
        }
        self.refresh_request_timer(&mut out);
        out
    }

    fn count(&mut self, source: Source, reject: &Reject) {
        let s = &mut self.stats;
        let counter = match (source, reject) {
            (_, Reject::Admit(AdmitError::Duplicate(..))) => &mut s.requests_duplicate,
            (_, Reject::Admit(AdmitError::OutOfWindow(..))) => &mut s.requests_out_of_window,
            (_, Reject::Admit(AdmitError::QueueFull)) => &mut s.requests_queue_full,
            (Source::Client, _) => &mut s.requests_invalid,
            (_, Reject::Invalid(_)) => &mut s.messages_invalid,
            (_, Reject::OutsideWindow(_)) => &mut s.messages_outside_window,
            (_, Reject::WrongView { .. }) => &mut s.messages_wrong_view,
            (_, Reject::Timestamp(_)) => &mut s.pre_prepares_bad_timestamp,
            (_, Reject::ConflictingPrePrepare(_)) => &mut s.pre_prepares_conflicting,
            (_, Reject::ConflictingVote(_)) => &mut s.votes_conflicting,
            (_, Reject::Rule(_)) => &mut s.messages_rejected,
        };
        *counter += 1;
    }

    fn sign<T>(&self, message: T) -> Result<Signed<T>, Reject>
    where
        T: palisade_wire::agreement::Signable + palisade_wire::agreement::Bounded,
    {
        Ok(Signed::sign(&self.key, message)?)
    }

    fn timeout(&self) -> Duration {
        let doublings = self.successive_view_changes.min(MAX_BACKOFF_DOUBLINGS);
        self.config
            .view_change_timeout
            .saturating_mul(1u32 << doublings)
    }

    // ----- requests and batching (TOCS §4.1, §5.1) -----

    fn on_request(
        &mut self,
        request: Signed<Request>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        request.verify_with(&self.config.client_keys)?;
        self.clients.admit(request)?;
        self.stats.requests_admitted += 1;
        self.propose(false, out)
    }

    /// The primary proposes as many batches as the batcher and the high watermark allow.
    fn propose(&mut self, mut timer_fired: bool, out: &mut Vec<Output>) -> Result<(), Reject> {
        while self.status == Status::Normal && self.is_primary() {
            if self.next_sequence > self.log.high() {
                // Window full: wait for the next stable checkpoint (TOCS §4.3).
                return Ok(());
            }
            let (count, bytes) = self.clients.unproposed();
            match self.batcher.decide(count, bytes, timer_fired) {
                BatchDecision::Wait => return Ok(()),
                BatchDecision::ArmTimer(after) => {
                    out.push(Output::SetTimer {
                        kind: TimerKind::Batch,
                        after,
                    });
                    return Ok(());
                }
                BatchDecision::Cut => self.propose_batch(out)?,
            }
            timer_fired = false;
        }
        Ok(())
    }

    fn propose_batch(&mut self, out: &mut Vec<Output>) -> Result<(), Reject> {
        let requests = self
            .clients
            .take_batch(self.batcher.max_requests(), self.batcher.max_bytes());
        // The primary fixes the batch's timestamp (DESIGN §1): its clock, but never
        // below an earlier batch's, so time never goes backwards in the order.
        let timestamp = self.now.unwrap_or_default().max(self.last_timestamp);
        let batch = Batch {
            timestamp,
            requests,
        };
        let digest = batch.digest()?;
        let sequence = self.next_sequence;
        let pre_prepare = self.sign(PrePrepare {
            view: self.view,
            sequence,
            timestamp,
            digest,
            primary: self.config.id,
        })?;
        let slot = self
            .log
            .slot_mut(sequence)
            .ok_or(Reject::OutsideWindow(sequence))?;
        slot.pre_prepare = Some(pre_prepare.clone());
        slot.add_body(digest, batch.clone());
        self.next_sequence += 1;
        self.last_timestamp = timestamp;
        self.stats.batches_proposed += 1;
        out.push(Output::Broadcast(AgreementMessage::PrePrepare {
            pre_prepare,
            batch,
        }));
        self.check_progress(sequence, out)
    }

    // ----- normal case (TOCS §4.2) -----

    fn on_message(
        &mut self,
        from: ReplicaId,
        message: AgreementMessage,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        use palisade_wire::agreement::Bounded;
        if from as usize >= self.config.n() {
            return Err(Reject::Rule("message from an unknown replica"));
        }
        message.check_bounds()?;
        match message {
            AgreementMessage::PrePrepare { pre_prepare, batch } => {
                self.on_pre_prepare(pre_prepare, batch, out)
            }
            AgreementMessage::Prepare(p) => self.on_prepare(p, out),
            AgreementMessage::Commit(c) => self.on_commit(c, out),
            AgreementMessage::Checkpoint(c) => self.on_checkpoint(c, out),
            AgreementMessage::ViewChange(vc) => self.on_view_change(vc, out),
            AgreementMessage::NewView(nv) => self.on_new_view(nv, out),
            AgreementMessage::FetchBatch { sequence, digest } => {
                self.on_fetch(from, sequence, digest, out)
            }
            AgreementMessage::BatchBody { sequence, batch } => self.on_body(sequence, batch, out),
        }
    }

    fn on_pre_prepare(
        &mut self,
        pre_prepare: Signed<PrePrepare>,
        batch: Batch,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = pre_prepare.message.clone();
        if m.view != self.view || self.status != Status::Normal {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if m.primary != self.config.primary(m.view) || self.is_primary() {
            return Err(Reject::Rule("pre-prepare not from the primary"));
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        pre_prepare.verify_with(&self.config.replica_keys)?;
        if batch.digest()? != m.digest || batch.timestamp != m.timestamp {
            return Err(Reject::Rule("batch does not match the pre-prepare"));
        }
        if let Some((_, digest)) = self.log.get(m.sequence).and_then(|s| s.accepted()) {
            return Err(if digest == m.digest {
                Reject::Rule("duplicate pre-prepare")
            } else {
                Reject::ConflictingPrePrepare(m.sequence)
            });
        }
        if batch.is_null() {
            return Err(Reject::Rule("empty batch outside a view change"));
        }
        if batch.requests.len() > self.config.max_batch_requests {
            return Err(Reject::Rule("batch larger than configured"));
        }
        batch.verify(&self.config.client_keys)?;
        let mut seen = std::collections::BTreeSet::new();
        for r in &batch.requests {
            let key = (r.message.client, r.message.request_id);
            if !seen.insert(key) || self.clients.is_ordered(key.0, key.1) {
                return Err(Reject::Rule("batch repeats an ordered request"));
            }
        }
        self.check_timestamp(m.sequence, m.timestamp)?;
        // Accept (TOCS §4.2): log the pre-prepare and multicast a prepare.
        for r in &batch.requests {
            self.clients
                .mark_proposed(r.message.client, r.message.request_id);
        }
        self.last_timestamp = self.last_timestamp.max(m.timestamp);
        let prepare = self.sign(Prepare {
            view: m.view,
            sequence: m.sequence,
            digest: m.digest,
            replica: self.config.id,
        })?;
        let slot = self
            .log
            .slot_mut(m.sequence)
            .ok_or(Reject::OutsideWindow(m.sequence))?;
        slot.pre_prepare = Some(pre_prepare);
        slot.add_body(m.digest, batch);
        slot.prepares.insert(self.config.id, prepare.clone());
        out.push(Output::Broadcast(AgreementMessage::Prepare(prepare)));
        self.check_progress(m.sequence, out)
    }

    /// A backup accepts the primary's timestamp only if it does not go backwards with
    /// respect to the batches around it in the order, and lies within the configured
    /// skew of the backup's own clock.
    fn check_timestamp(&self, sequence: Sequence, ts: Timestamp) -> Result<(), Reject> {
        let now = self.now.ok_or(Reject::Timestamp("no clock reading yet"))?;
        let skew = u64::try_from(self.config.max_timestamp_skew.as_nanos()).unwrap_or(u64::MAX);
        if nanos(ts).abs_diff(nanos(now)) > skew {
            return Err(Reject::Timestamp("beyond the allowed skew"));
        }
        if ts < self.delivered_timestamp {
            return Err(Reject::Timestamp("earlier than a delivered batch"));
        }
        for (n, slot) in self.log.slots() {
            let Some(pp) = &slot.pre_prepare else {
                continue;
            };
            if pp.message.digest == self.null_digest {
                continue;
            }
            let other = pp.message.timestamp;
            if (*n < sequence && other > ts) || (*n > sequence && other < ts) {
                return Err(Reject::Timestamp("goes backwards"));
            }
        }
        Ok(())
    }

    fn on_prepare(
        &mut self,
        prepare: Signed<Prepare>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = prepare.message.clone();
        if m.view != self.view {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if m.replica == self.config.primary(m.view) {
            return Err(Reject::Rule("prepare from the primary"));
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        prepare.verify_with(&self.config.replica_keys)?;
        let slot = self
            .log
            .slot_mut(m.sequence)
            .ok_or(Reject::OutsideWindow(m.sequence))?;
        if let Some(old) = slot.prepares.get(&m.replica) {
            if old.message.view == m.view {
                return Err(if old.message.digest == m.digest {
                    Reject::Rule("duplicate prepare")
                } else {
                    Reject::ConflictingVote(m.replica)
                });
            }
        }
        slot.prepares.insert(m.replica, prepare);
        self.check_progress(m.sequence, out)
    }

    fn on_commit(&mut self, commit: Signed<Commit>, out: &mut Vec<Output>) -> Result<(), Reject> {
        let m = commit.message.clone();
        if m.view != self.view {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        commit.verify_with(&self.config.replica_keys)?;
        let slot = self
            .log
            .slot_mut(m.sequence)
            .ok_or(Reject::OutsideWindow(m.sequence))?;
        if let Some(old) = slot.commits.get(&m.replica) {
            if old.message.view == m.view {
                return Err(if old.message.digest == m.digest {
                    Reject::Rule("duplicate commit")
                } else {
                    Reject::ConflictingVote(m.replica)
                });
            }
        }
        slot.commits.insert(m.replica, commit);
        self.check_progress(m.sequence, out)
    }

    /// Moves a slot along: prepared (pre-prepare + 2f matching prepares) sends a commit;
    /// committed-local (prepared + 2f+1 matching commits) yields the ORDER certificate.
    fn check_progress(&mut self, sequence: Sequence, out: &mut Vec<Output>) -> Result<(), Reject> {
        if self.status != Status::Normal {
            return Ok(());
        }
        let f = self.config.f;
        let quorum = self.config.quorum();
        let me = self.config.id;
        let Some(slot) = self.log.get(sequence) else {
            return Ok(());
        };
        let Some((view, digest)) = slot.accepted() else {
            return Ok(());
        };
        let mut prepares = slot.matching_prepares(self.config.primary(view));
        if prepares.len() < 2 * f {
            return Ok(());
        }
        let need_commit = slot.commit_sent_view != Some(view);
        let commit = if need_commit {
            Some(self.sign(Commit {
                view,
                sequence,
                digest,
                replica: me,
            })?)
        } else {
            None
        };
        let Some(slot) = self.log.slot_mut(sequence) else {
            return Ok(());
        };
        if slot
            .prepared
            .as_ref()
            .is_none_or(|p| p.pre_prepare.message.view < view)
        {
            if let Some(pre_prepare) = slot.pre_prepare.clone() {
                prepares.sort_by_key(|p| p.message.replica);
                prepares.truncate(2 * f);
                slot.prepared = Some(PreparedProof {
                    pre_prepare,
                    prepares,
                });
            }
        }
        if let Some(commit) = commit {
            slot.commit_sent_view = Some(view);
            slot.commits.insert(me, commit.clone());
            out.push(Output::Broadcast(AgreementMessage::Commit(commit)));
        }
        if slot.committed.is_none() {
            let commits = slot.matching_commits();
            if commits.len() >= quorum {
                slot.committed = order_certificate(&commits, &self.config);
            }
        }
        self.try_deliver(out);
        Ok(())
    }

    /// Delivers committed batches strictly in sequence order (TOCS §4.2: execution in
    /// order). A committed batch whose body this replica lacks is fetched first.
    fn try_deliver(&mut self, out: &mut Vec<Output>) {
        loop {
            let next = self.last_delivered + 1;
            // `get`, not `slot_mut`: looking must not create a slot.
            let Some(slot) = self.log.get(next) else {
                return;
            };
            let Some(cert) = slot.committed.clone() else {
                return;
            };
            let Some(batch) = slot.bodies.get(&cert.digest).cloned() else {
                let Some(slot) = self.log.slot_mut(next) else {
                    return;
                };
                if !slot.fetch_sent {
                    slot.fetch_sent = true;
                    out.push(Output::Broadcast(AgreementMessage::FetchBatch {
                        sequence: next,
                        digest: cert.digest,
                    }));
                }
                return;
            };
            for r in &batch.requests {
                self.clients
                    .mark_ordered(r.message.client, r.message.request_id);
            }
            if !batch.is_null() {
                self.delivered_timestamp = self.delivered_timestamp.max(batch.timestamp);
            }
            self.last_delivered = next;
            self.successive_view_changes = 0;
            self.progressed = true;
            self.stats.batches_delivered += 1;
            self.stats.requests_delivered += batch.requests.len() as u64;
            out.push(Output::Deliver {
                batch: OrderedBatch {
                    sequence: next,
                    batch,
                },
                certificate: neutral(cert),
            });
        }
    }

    fn on_fetch(
        &mut self,
        from: ReplicaId,
        sequence: Sequence,
        digest: Digest,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let batch = self
            .log
            .get(sequence)
            .and_then(|s| s.bodies.get(&digest))
            .cloned()
            .ok_or(Reject::Rule("fetch for a batch this replica does not hold"))?;
        out.push(Output::Send {
            to: from,
            message: AgreementMessage::BatchBody { sequence, batch },
        });
        Ok(())
    }

    fn on_body(
        &mut self,
        sequence: Sequence,
        batch: Batch,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let digest = batch.digest()?;
        let slot = self
            .log
            .get(sequence)
            .ok_or(Reject::OutsideWindow(sequence))?;
        let accepted = slot.accepted().map(|(_, d)| d) == Some(digest);
        let committed = slot.committed.as_ref().map(|c| c.digest) == Some(digest);
        if !(accepted || committed) {
            return Err(Reject::Rule("unsolicited batch body"));
        }
        if slot.bodies.contains_key(&digest) {
            return Err(Reject::Rule("duplicate batch body"));
        }
        batch.verify(&self.config.client_keys)?;
        for r in &batch.requests {
            self.clients
                .mark_proposed(r.message.client, r.message.request_id);
        }
        if let Some(slot) = self.log.slot_mut(sequence) {
            slot.add_body(digest, batch);
        }
        self.stats.batches_fetched += 1;
        self.check_progress(sequence, out)?;
        self.try_deliver(out);
        Ok(())
    }

    // ----- checkpoints and watermarks (TOCS §4.3) -----

    fn on_execution_checkpoint(
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

    fn on_checkpoint(
        &mut self,
        checkpoint: Signed<Checkpoint>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = &checkpoint.message;
        if !m.sequence.is_multiple_of(self.config.checkpoint_interval) {
            return Err(Reject::Rule("checkpoint at a non-checkpoint sequence"));
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        checkpoint.verify_with(&self.config.replica_keys)?;
        self.add_checkpoint(checkpoint, out)
    }

    fn add_checkpoint(
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
    fn on_stable(&mut self, sequence: Sequence, out: &mut Vec<Output>) -> Result<(), Reject> {
        self.log.advance_low(sequence);
        self.stats.checkpoints_stable += 1;
        if self.last_delivered < sequence {
            // This replica fell behind; execution catches up by state transfer from
            // the stable checkpoint, and agreement continues from there.
            self.last_delivered = sequence;
        }
        self.next_sequence = self.next_sequence.max(sequence + 1);
        self.try_deliver(out);
        self.propose(false, out)
    }

    // ----- view change (TOCS §4.4–4.5) -----

    fn on_timer(&mut self, kind: TimerKind, out: &mut Vec<Output>) -> Result<(), Reject> {
        match kind {
            TimerKind::Batch => {
                if self.status == Status::Normal && self.is_primary() {
                    self.propose(true, out)
                } else {
                    self.batcher.disarm();
                    Ok(())
                }
            }
            TimerKind::ViewChange => {
                self.vc_timer_armed = false;
                let next = self.view.saturating_add(1);
                self.start_view_change(next, out)
            }
        }
    }

    /// The request timer of a backup (TOCS §4.4): armed while some request or accepted
    /// batch waits for delivery, restarted when a batch is delivered, cancelled when
    /// nothing waits. During a view change the timer belongs to the view change.
    fn refresh_request_timer(&mut self, out: &mut Vec<Output>) {
        let progressed = std::mem::replace(&mut self.progressed, false);
        if self.status != Status::Normal {
            return;
        }
        let waiting = !self.is_primary()
            && (self.clients.pending_len() > 0
                || self
                    .log
                    .slots()
                    .any(|(n, s)| *n > self.last_delivered && s.pre_prepare.is_some()));
        if waiting && (!self.vc_timer_armed || progressed) {
            self.vc_timer_armed = true;
            out.push(Output::SetTimer {
                kind: TimerKind::ViewChange,
                after: self.timeout(),
            });
        } else if !waiting && self.vc_timer_armed {
            self.vc_timer_armed = false;
            out.push(Output::CancelTimer(TimerKind::ViewChange));
        }
    }

    /// Moves to view `target` and multicasts a view-change message for it.
    fn start_view_change(&mut self, target: View, out: &mut Vec<Output>) -> Result<(), Reject> {
        if target <= self.view {
            return Ok(());
        }
        self.view = target;
        self.status = Status::ViewChange;
        self.successive_view_changes = self.successive_view_changes.saturating_add(1);
        self.stats.view_changes_started += 1;
        if self.batcher.disarm() {
            out.push(Output::CancelTimer(TimerKind::Batch));
        }
        let (stable_sequence, _, proof) = self.checkpoints.stable();
        let checkpoint_proof = proof.to_vec();
        let low = self.log.low();
        let prepared = self
            .log
            .slots()
            .filter(|(n, _)| **n > low)
            .filter_map(|(_, s)| s.prepared.clone())
            .collect();
        let vc = self.sign(ViewChange {
            new_view: target,
            stable_sequence,
            checkpoint_proof,
            prepared,
            replica: self.config.id,
        })?;
        out.push(Output::Broadcast(AgreementMessage::ViewChange(vc.clone())));
        // Our own message is valid by construction; a stale stored one is replaced.
        let _ = self.view_changes.add(vc);
        // If no valid new-view arrives in time, move on with a doubled timeout.
        self.vc_timer_armed = true;
        out.push(Output::SetTimer {
            kind: TimerKind::ViewChange,
            after: self.timeout(),
        });
        tracing::info!(
            replica = self.config.id,
            view = target,
            "view change started"
        );
        self.try_new_view(out)
    }

    fn on_view_change(
        &mut self,
        vc: Signed<ViewChange>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let new_view = vc.message.new_view;
        let relevant =
            new_view > self.view || (new_view == self.view && self.status == Status::ViewChange);
        if !relevant {
            return Err(Reject::WrongView {
                got: new_view,
                current: self.view,
            });
        }
        verify_view_change(&vc, &self.config)?;
        self.view_changes.add(vc)?;
        if let Some(target) =
            self.view_changes
                .smallest_supported_above(self.view, self.config.id, self.config.f)
        {
            return self.start_view_change(target, out);
        }
        self.try_new_view(out)
    }

    /// The primary of the view being changed to announces it once it holds 2f+1
    /// view-change messages (TOCS §4.4).
    fn try_new_view(&mut self, out: &mut Vec<Output>) -> Result<(), Reject> {
        if self.status != Status::ViewChange || !self.is_primary() {
            return Ok(());
        }
        let Some(vcs) = self
            .view_changes
            .quorum_for(self.view, self.config.quorum())
        else {
            return Ok(());
        };
        let plan = plan_new_view(&vcs, self.null_digest);
        let mut pre_prepares = Vec::with_capacity(plan.entries.len());
        for (sequence, digest, timestamp) in &plan.entries {
            pre_prepares.push(self.sign(PrePrepare {
                view: self.view,
                sequence: *sequence,
                timestamp: *timestamp,
                digest: *digest,
                primary: self.config.id,
            })?);
        }
        let new_view = self.sign(NewView {
            view: self.view,
            view_changes: vcs,
            pre_prepares: pre_prepares.clone(),
            primary: self.config.id,
        })?;
        out.push(Output::Broadcast(AgreementMessage::NewView(new_view)));
        self.install(plan, pre_prepares, out)
    }

    fn on_new_view(&mut self, nv: Signed<NewView>, out: &mut Vec<Output>) -> Result<(), Reject> {
        let m = &nv.message;
        if m.view < self.view || (m.view == self.view && self.status == Status::Normal) {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if m.primary != self.config.primary(m.view) || m.primary == self.config.id {
            return Err(Reject::Rule("new-view not from the view's primary"));
        }
        nv.verify_with(&self.config.replica_keys)?;
        verify_quorum(&m.view_changes, m.view, &self.config)?;
        // Recompute O from V and demand exactly the primary's pre-prepares (TOCS §4.4).
        let plan = plan_new_view(&m.view_changes, self.null_digest);
        if plan.entries.len() != m.pre_prepares.len() {
            return Err(Reject::Rule(
                "new-view: pre-prepares differ from the view-changes",
            ));
        }
        for ((sequence, digest, timestamp), pp) in plan.entries.iter().zip(&m.pre_prepares) {
            let expected = PrePrepare {
                view: m.view,
                sequence: *sequence,
                timestamp: *timestamp,
                digest: *digest,
                primary: m.primary,
            };
            if pp.message != expected {
                return Err(Reject::Rule(
                    "new-view: pre-prepares differ from the view-changes",
                ));
            }
            pp.verify_with(&self.config.replica_keys)?;
        }
        let pre_prepares = m.pre_prepares.clone();
        self.view = m.view;
        self.install(plan, pre_prepares, out)
    }

    /// Enters the new view: adopt the newest stable checkpoint, take the new view's
    /// pre-prepares as accepted (backups multicast prepares for them), and make the
    /// requests of lost proposals proposable again.
    fn install(
        &mut self,
        plan: NewViewPlan,
        pre_prepares: Vec<Signed<PrePrepare>>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        self.status = Status::Normal;
        self.stats.new_views_installed += 1;
        tracing::info!(
            replica = self.config.id,
            view = self.view,
            "new view installed"
        );
        if self.vc_timer_armed {
            self.vc_timer_armed = false;
            out.push(Output::CancelTimer(TimerKind::ViewChange));
        }
        if let Some((digest, proof)) = plan.checkpoint {
            if plan.min_s > self.log.low() {
                self.checkpoints.adopt(plan.min_s, digest, proof);
                self.on_stable(plan.min_s, out)?;
            }
        }
        let view = self.view;
        for (_, slot) in self.log.slots_mut() {
            slot.enter_view(view);
        }
        self.clients.reset_proposed();
        let max_s = plan.entries.last().map_or(plan.min_s, |e| e.0);
        self.next_sequence = max_s.max(self.log.low()) + 1;
        let backup = !self.is_primary();
        let mut touched = Vec::new();
        for pp in pre_prepares {
            let (sequence, digest) = (pp.message.sequence, pp.message.digest);
            let prepare = if backup {
                Some(self.sign(Prepare {
                    view,
                    sequence,
                    digest,
                    replica: self.config.id,
                })?)
            } else {
                None
            };
            let null_digest = self.null_digest;
            let Some(slot) = self.log.slot_mut(sequence) else {
                continue;
            };
            slot.pre_prepare = Some(pp);
            if digest == null_digest {
                slot.add_body(digest, Batch::null());
            }
            let body = slot.bodies.get(&digest).cloned();
            if let Some(prepare) = prepare {
                slot.prepares.insert(self.config.id, prepare.clone());
                out.push(Output::Broadcast(AgreementMessage::Prepare(prepare)));
            }
            match body {
                Some(batch) => {
                    for r in &batch.requests {
                        self.clients
                            .mark_proposed(r.message.client, r.message.request_id);
                    }
                }
                None if sequence > self.last_delivered => {
                    slot.fetch_sent = true;
                    out.push(Output::Broadcast(AgreementMessage::FetchBatch {
                        sequence,
                        digest,
                    }));
                }
                None => {}
            }
            touched.push(sequence);
        }
        for sequence in touched {
            self.check_progress(sequence, out)?;
        }
        self.propose(false, out)
    }
}
