//! One PBFT replica as a pure state machine: [`Replica::step`] takes an [`Input`] and
//! returns the [`Output`]s it causes, and does nothing else.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_wire::agreement::{
    AgreementMessage, Batch, BatchEntry, Digest, PrePrepare, ReplicaId, Request, Sequence, Signed,
    View,
};
use palisade_wire::fs::Timestamp;

use crate::batcher::{BatchDecision, Batcher};
use crate::checkpoint::CheckpointTracker;
use crate::client_table::{AdmitError, ClientTable};
use crate::config::{Config, ConfigError};
use crate::error::Reject;
use crate::io::{Input, Output, TimerKind};
use crate::log::Log;
use crate::stats::Stats;

mod checkpoints;
mod named_requests;
mod normal_case;
mod quiet_role;
mod view_changes;
use crate::view_change::ViewChanges;

/// Whether the replica is working in its view or waiting for that view's new-view
/// message (TOCS §4.4: during a view change only checkpoint, view-change and new-view
/// messages are processed; votes for the coming view are kept for later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Normal,
    ViewChange,
}

/// The primary's pacing of batches by execution (see `Config::max_batches_unanswered`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pacing {
    /// No requests held for pacing.
    Idle,
    /// Requests are held; the pacing timer is armed.
    Armed,
    /// The pacing timer fired: the next batch goes out without waiting for progress.
    Expired,
}

/// Most pre-prepares held for a view not yet entered (see `hold_early`).
const MAX_EARLY: usize = 64;
/// Most pre-prepares held while this replica fetches a batch it could not rebuild from
/// the requests it holds (see `replica/named_requests.rs`).
const MAX_AWAITING: usize = 64;

/// Most log slots retransmitted in answer to one status message.
const MAX_RETRANSMIT: u64 = 32;

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
    /// The highest stable execution checkpoint fed in: every sequence up to it was
    /// committed and executed, so it is never assigned again, whatever this replica
    /// remembers (it may have restarted with the whole cluster).
    execution_floor: Sequence,
    /// Restarted on used state ([`Replica::await_execution`]): no proposal until an
    /// execution checkpoint at or above this sequence came, and is stable here.
    awaiting_execution: Option<Sequence>,
    /// The first such execution checkpoint's sequence.
    resume_at: Option<Sequence>,
    /// The highest sequence number any client reported answered
    /// ([`Input::RepliedThrough`], clamped): a batching hint only.
    replied_through: Sequence,
    pacing: Pacing,
    last_delivered: Sequence,
    /// Timestamp of the last delivered non-null batch.
    delivered_timestamp: Timestamp,
    /// Highest timestamp of any pre-prepare accepted: the primary never goes below it.
    last_timestamp: Timestamp,
    vc_timer_armed: bool,
    status_timer_armed: bool,
    /// The highest view this replica sent a view-change for. In views below it the
    /// replica never votes or proposes (see `may_vote`).
    vc_floor: View,
    /// The new-view message of the current view (none in view 0 or after a rejoin),
    /// re-sent to peers that report a lower view.
    new_view_message: Option<Signed<palisade_wire::agreement::NewView>>,
    /// During a view change: the view each peer's latest status message reported.
    peer_views: std::collections::BTreeMap<ReplicaId, View>,
    /// The highest view each peer was asked about (see `ask_for_view`).
    asked_views: std::collections::BTreeMap<ReplicaId, View>,
    /// View changes since the last delivered batch (the back-off exponent).
    successive_view_changes: u32,
    /// Something was delivered during this step (restart the request timer).
    progressed: bool,
    null_digest: Digest,
    /// Pre-prepares that overtook the new-view of their view, by (view, sequence).
    early: std::collections::BTreeMap<(View, Sequence), (Signed<PrePrepare>, Batch)>,
    /// Sequences whose accepted pre-prepare came over the primary's link and awaits its
    /// signature check ([`Input::CheckDeferred`]); within the log's window.
    unchecked: std::collections::BTreeSet<Sequence>,
    /// The current view's primary sent a pre-prepare with a bad signature over its own
    /// link: the step ends by moving to the next view.
    primary_forged: bool,
    /// Pre-prepares whose batch names a request this replica does not hold (or holds
    /// with other bytes), by sequence, while their batch is fetched from the primary.
    awaiting: std::collections::BTreeMap<Sequence, (Signed<PrePrepare>, Vec<BatchEntry>)>,
    /// Votes withheld in the quiet role (`crate::quiet`).
    quiet: crate::quiet::QuietVotes,
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
            execution_floor: 0,
            awaiting_execution: None,
            resume_at: None,
            replied_through: 0,
            pacing: Pacing::Idle,
            last_delivered: 0,
            delivered_timestamp: Timestamp::default(),
            last_timestamp: Timestamp::default(),
            vc_timer_armed: false,
            status_timer_armed: false,
            successive_view_changes: 0,
            vc_floor: 0,
            new_view_message: None,
            peer_views: std::collections::BTreeMap::new(),
            asked_views: std::collections::BTreeMap::new(),
            progressed: false,
            null_digest,
            early: std::collections::BTreeMap::new(),
            unchecked: std::collections::BTreeSet::new(),
            primary_forged: false,
            awaiting: std::collections::BTreeMap::new(),
            quiet: crate::quiet::QuietVotes::default(),
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
    /// False while this replica follows a view below one it sent a view-change for
    /// (after [`Replica`] rejoined a lower view, see `view_changes::rejoin`): it then
    /// learns committed batches from commit certificates but sends no pre-prepare,
    /// prepare, commit or new-view. Its view-change for the higher view may still be
    /// counted in that view's new-view; it only stays truthful (its `P` and `Q` sets list
    /// every batch this replica prepared and pre-prepared below that view, TOCS §4.5.1)
    /// if the replica votes for nothing more in lower views.
    pub fn may_vote(&self) -> bool {
        self.view >= self.vc_floor
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
    /// Whether pre-prepares accepted over the primary's link await their signature
    /// check: the runtime then steps [`Input::CheckDeferred`] once it has sent this
    /// step's outputs (the prepares among them).
    pub fn has_deferred_checks(&self) -> bool {
        !self.unchecked.is_empty()
    }

    /// Checkpoint sequences with votes still held (collected on a stable checkpoint).
    pub fn checkpoint_votes_held(&self) -> Vec<Sequence> {
        self.checkpoints.pending_sequences()
    }

    /// Processes one input; returns its effects in the order they must happen.
    pub fn step(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        let delivered_before = self.last_delivered;
        let (source, result) = match input {
            Input::ClientRequest(request) => (Source::Client, self.on_request(request, &mut out)),
            Input::LinkRequest(request) => {
                (Source::Client, self.on_link_request(request, &mut out))
            }
            Input::RepliedThrough(sequence) => {
                self.note_replied_through(sequence);
                (Source::Client, self.propose(false, &mut out))
            }
            Input::Message { from, message } => {
                (Source::Replica, self.on_message(from, message, &mut out))
            }
            Input::Timer(kind) => (Source::Local, self.on_timer(kind, &mut out)),
            Input::Tick(now) => {
                if self.now.is_none() {
                    // The first clock reading: this replica just started, possibly
                    // restarted without a log while the others moved on. Tell them where
                    // it is, so that they send the current new-view and what it missed
                    // (status messages, Castro's thesis §5.2) instead of it waiting for
                    // traffic it may never see. Peers in the same place ignore it.
                    out.push(Output::Broadcast(AgreementMessage::Status {
                        view: self.view,
                        last_delivered: self.last_delivered,
                    }));
                }
                self.now = Some(now);
                (Source::Local, Ok(()))
            }
            Input::StableCheckpoint {
                sequence,
                state_digest,
            } => (
                Source::Local,
                self.on_execution_checkpoint(sequence, state_digest, true, &mut out),
            ),
            Input::RecordedCheckpoint {
                sequence,
                state_digest,
            } => (
                Source::Local,
                self.on_execution_checkpoint(sequence, state_digest, false, &mut out),
            ),
            Input::CheckDeferred => (Source::Local, self.check_deferred(&mut out)),
        };
        if let Err(reject) = result {
            tracing::debug!(replica = self.config.id, view = self.view, %reject, "input dropped");
            self.count(source, &reject);
        }
        if std::mem::take(&mut self.primary_forged) && self.status == Status::Normal {
            let next = self.view.saturating_add(1);
            if let Err(reject) = self.start_view_change(next, &mut out) {
                self.count(Source::Local, &reject);
            }
        }
        if self.config.max_batches_in_flight > 0 && self.last_delivered > delivered_before {
            // The in-flight window moved: what queued behind it goes out now, as one
            // batch (it has waited a whole round already; no batch delay on top).
            if let Err(reject) = self.propose(true, &mut out) {
                tracing::debug!(replica = self.config.id, %reject, "proposal after delivery failed");
                self.count(Source::Local, &reject);
            }
        }
        self.refresh_request_timer(&mut out);
        out
    }

    /// Counts and logs pending requests dropped for a bad client signature (admitted
    /// unchecked from a link, see `Input::LinkRequest`); true if there were any.
    fn count_forged(&mut self, forged: usize) -> bool {
        if forged > 0 {
            self.stats.requests_invalid += forged as u64;
            tracing::warn!(
                replica = self.config.id,
                forged,
                "pending requests with bad client signatures dropped"
            );
        }
        forged > 0
    }

    fn count_replica_reject(&mut self, reject: &Reject) {
        self.count(Source::Replica, reject);
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
            (_, Reject::Redundant(_)) => &mut s.votes_redundant,
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
        self.retry_awaiting(out);
        self.propose(false, out)
    }

    /// See [`Input::LinkRequest`]: bounds only; the signature is checked later, once.
    fn on_link_request(
        &mut self,
        request: Signed<Request>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        use palisade_wire::agreement::Bounded;
        request.message.check_bounds()?;
        if usize::try_from(request.message.client)
            .map_or(true, |c| c >= self.config.client_keys.len())
        {
            return Err(Reject::Invalid(
                palisade_wire::agreement::VerifyError::UnknownSigner(request.message.client),
            ));
        }
        self.clients.admit_from_link(request)?;
        self.stats.requests_admitted += 1;
        self.retry_awaiting(out);
        self.propose(false, out)
    }

    /// Takes in a client's report of answered batches ([`Input::RepliedThrough`]),
    /// clamped to what was proposed or delivered here: a client reporting too much
    /// releases only the batches already out, not later ones.
    fn note_replied_through(&mut self, hint: Sequence) {
        let known = self
            .next_sequence
            .saturating_sub(1)
            .max(self.last_delivered);
        self.replied_through = self.replied_through.max(hint.min(known));
    }

    /// For a replica restarted on used state (its runtime knows; our `Replica` keeps no
    /// durable log): as primary, propose nothing until an execution checkpoint at or
    /// above `at_least` (where the runtime's recorded stable checkpoint was) came in as
    /// `Input::StableCheckpoint` and is this replica's stable checkpoint. The record
    /// itself (`Input::RecordedCheckpoint`) does not count.
    ///
    /// Why: if the whole cluster stopped at once, the execution replicas may have
    /// executed batches past anything agreement remembers. Proposing before hearing
    /// from them would assign those sequence numbers again, and execution would take
    /// the new batches for ones it executed — their requests never answered. The
    /// execution replicas say where they stand with a restart checkpoint
    /// (`ExecutionReplica::start`). Waiting until it is stable *here* (2f+1 replicas
    /// signed it) means a view change this replica takes part in afterwards starts
    /// from it. Backups still admit requests, so they time out a primary that waits and
    /// move to the next view; its primary waits likewise.
    pub fn await_execution(&mut self, at_least: Sequence) {
        self.awaiting_execution = Some(at_least);
        self.resume_at = None;
    }

    /// True while [`Replica::await_execution`] holds proposals back.
    pub fn is_awaiting_execution(&self) -> bool {
        self.awaiting_execution.is_some()
    }

    /// Ends [`Replica::await_execution`] once its checkpoint is stable here.
    fn check_resumed(&mut self) {
        if self.awaiting_execution.is_none() {
            return;
        }
        if let Some(at) = self.resume_at {
            if self.log.low() >= at {
                tracing::info!(
                    replica = self.config.id,
                    sequence = at,
                    "stable checkpoint where execution resumed: proposing again"
                );
                self.awaiting_execution = None;
                self.resume_at = None;
            }
        }
    }

    /// The primary proposes as many batches as the batcher and the high watermark allow.
    fn propose(&mut self, mut timer_fired: bool, out: &mut Vec<Output>) -> Result<(), Reject> {
        self.check_resumed();
        if self.awaiting_execution.is_some() {
            return Ok(());
        }
        while self.status == Status::Normal && self.is_primary() && self.may_vote() {
            if self.next_sequence > self.log.high() || self.next_sequence == Sequence::MAX {
                // Window full: wait for the next stable checkpoint (TOCS §4.3). (The
                // end of the sequence space is only reachable through 2f+1 signatures
                // on absurd checkpoints; stop there rather than wrap.)
                return Ok(());
            }
            if self.awaiting_bodies() {
                // After a new view: until the bodies of the batches carried over are
                // here, this primary cannot tell which pending requests they hold, and
                // proposing now could order a request twice.
                return Ok(());
            }
            let (count, bytes) = self.clients.unproposed();
            if self.window_full(count, bytes) {
                // A delivery calls this again (see `step`); a fired batch timer is spent.
                if timer_fired {
                    self.batcher.disarm();
                }
                return Ok(());
            }
            if self.pacing != Pacing::Expired && self.unanswered_full(count, bytes) {
                // A request reporting progress calls this again; the timer bounds the
                // wait when none comes.
                if count > 0 && self.pacing == Pacing::Idle {
                    self.pacing = Pacing::Armed;
                    self.stats.batches_paced += 1;
                    out.push(Output::SetTimer {
                        kind: TimerKind::Pacing,
                        after: self.config.pacing_timeout,
                    });
                }
                return Ok(());
            }
            match self.batcher.decide(count, bytes, timer_fired) {
                BatchDecision::Wait => return Ok(()),
                BatchDecision::ArmTimer(after) => {
                    out.push(Output::SetTimer {
                        kind: TimerKind::Batch,
                        after,
                    });
                    return Ok(());
                }
                BatchDecision::Cut => {
                    if std::mem::replace(&mut self.pacing, Pacing::Idle) == Pacing::Armed {
                        out.push(Output::CancelTimer(TimerKind::Pacing));
                    }
                    self.propose_batch(out)?
                }
            }
            timer_fired = false;
        }
        Ok(())
    }

    /// True if `config.max_batches_in_flight` batches are proposed and not yet delivered
    /// and the queued requests do not fill a batch: they wait for a delivery.
    fn window_full(&self, count: usize, bytes: usize) -> bool {
        let limit = self.config.max_batches_in_flight;
        let in_flight = self
            .next_sequence
            .saturating_sub(1)
            .saturating_sub(self.last_delivered);
        limit > 0
            && in_flight >= limit
            && count < self.batcher.max_requests()
            && bytes < self.batcher.max_bytes()
    }

    /// True if `config.max_batches_unanswered` proposed batches are above the highest
    /// sequence number a client reported answered, and the queued requests do not fill
    /// a batch: they wait for a report (or the pacing timer).
    fn unanswered_full(&self, count: usize, bytes: usize) -> bool {
        let limit = self.config.max_batches_unanswered;
        let proposed = self.next_sequence.saturating_sub(1);
        limit > 0
            && proposed.saturating_sub(self.replied_through) >= limit
            && count < self.batcher.max_requests()
            && bytes < self.batcher.max_bytes()
    }

    /// True if an accepted batch above the last delivered one has no body here yet.
    fn awaiting_bodies(&self) -> bool {
        self.log
            .range(
                self.last_delivered.saturating_add(1),
                self.next_sequence.saturating_sub(1),
            )
            .any(|(_, s)| {
                s.accepted()
                    .is_some_and(|(_, digest)| !s.bodies.contains_key(&digest))
            })
    }

    fn propose_batch(&mut self, out: &mut Vec<Output>) -> Result<(), Reject> {
        let (requests, forged) = self.clients.take_batch(
            self.batcher.max_requests(),
            self.batcher.max_bytes(),
            &self.config.client_keys,
        );
        self.count_forged(forged);
        if requests.is_empty() {
            // Every candidate was forged: nothing to propose (an empty batch is only for
            // view changes).
            return Ok(());
        }
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
        // Only a voting primary proposes (see `propose`).
        slot.accept(pre_prepare.clone(), true);
        // Large requests go by name (TOCS §5.1, separate request transmission): every
        // backup received them from their client.
        let named_from = self.config.named_requests_from;
        let message = if batch
            .requests
            .iter()
            .any(|r| r.message.payload.len() >= named_from)
        {
            AgreementMessage::PrePrepareNamed {
                pre_prepare,
                entries: batch
                    .requests
                    .iter()
                    .map(|r| BatchEntry::of(r, named_from))
                    .collect(),
            }
        } else {
            AgreementMessage::PrePrepare {
                pre_prepare,
                batch: batch.clone(),
            }
        };
        slot.add_body(digest, batch);
        self.next_sequence = self.next_sequence.saturating_add(1);
        self.last_timestamp = timestamp;
        self.stats.batches_proposed += 1;
        out.push(Output::Broadcast(message));
        self.check_progress(sequence, out)
    }

    // ----- timers (TOCS §4.4, §5.1) -----

    fn on_timer(&mut self, kind: TimerKind, out: &mut Vec<Output>) -> Result<(), Reject> {
        match kind {
            TimerKind::Batch => {
                if self.status == Status::Normal && self.is_primary() && self.may_vote() {
                    self.propose(true, out)
                } else {
                    self.batcher.disarm();
                    Ok(())
                }
            }
            TimerKind::Pacing => {
                if self.pacing != Pacing::Armed {
                    return Ok(());
                }
                self.stats.pacing_timeouts += 1;
                if self.status == Status::Normal && self.is_primary() && self.may_vote() {
                    self.pacing = Pacing::Expired;
                    self.propose(true, out)
                } else {
                    self.pacing = Pacing::Idle;
                    Ok(())
                }
            }
            TimerKind::ViewChange => {
                self.vc_timer_armed = false;
                if self.status == Status::Normal {
                    // Requests admitted from a link were not checked: a forged one is
                    // never proposed by a correct primary, so it must not make us
                    // suspect one. Drop those and give the primary a fresh timeout.
                    let forged = self.clients.drop_forged(&self.config.client_keys);
                    if self.count_forged(forged) {
                        return Ok(());
                    }
                }
                let next = self.view.saturating_add(1);
                self.start_view_change(next, out)
            }
            TimerKind::Status => {
                self.status_timer_armed = false;
                out.push(Output::Broadcast(AgreementMessage::Status {
                    view: self.view,
                    last_delivered: self.last_delivered,
                }));
                self.speak_up(out);
                if self.status == Status::ViewChange {
                    // Peers that installed this view may have sent its new-view while we
                    // could not hear it (a partition); a status message does not tell
                    // them we still wait, so ask. Without this, a replica that missed
                    // the new-view and has nothing left to deliver waits until its
                    // timer moves it on to yet another view, alone.
                    out.push(Output::Broadcast(AgreementMessage::FetchNewView {
                        view: self.view,
                    }));
                }
                Ok(())
            }
        }
    }

    /// The request timer of a backup (TOCS §4.4): armed while some request or accepted
    /// batch waits for delivery, restarted when a batch is delivered, cancelled when
    /// nothing waits. During a view change the timer belongs to the view change.
    /// The status timer runs on every replica (primary included) while it waits or is
    /// changing views.
    fn refresh_request_timer(&mut self, out: &mut Vec<Output>) {
        let progressed = std::mem::replace(&mut self.progressed, false);
        let work_waiting = self.clients.pending_len() > 0
            || self
                .log
                .range(self.last_delivered.saturating_add(1), Sequence::MAX)
                .any(|(_, s)| s.pre_prepare.is_some() || s.committed.is_some());
        if self.status == Status::Normal {
            let waiting = !self.is_primary() && work_waiting;
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
        let want_status = work_waiting || self.status == Status::ViewChange;
        if want_status && !self.status_timer_armed {
            self.status_timer_armed = true;
            out.push(Output::SetTimer {
                kind: TimerKind::Status,
                after: self.config.status_interval,
            });
        } else if !want_status && self.status_timer_armed {
            self.status_timer_armed = false;
            out.push(Output::CancelTimer(TimerKind::Status));
        }
    }
}
