//! [`ExecutionReplica`]: the step function and its handlers (see the module overview).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_crypto::ThresholdSigner;
use palisade_wire::agreement::{
    Bounded, ClientId, Digest, OrderCertificate, OrderedBatch, Request, Sequence, Signed,
    MAX_BATCH_REQUESTS,
};
use palisade_wire::checkpoint::{BatchLeaves, ClientRecord, ReplicaSnapshot};
use palisade_wire::execution::{
    BatchReply, CheckpointCertificate, ExecCheckpoint, ExecReplicaId, ExecutionMessage, Reply,
    MAX_FETCH_HAVE,
};
use palisade_wire::firewall::ReplyEntry;
use palisade_wire::fs::{FsError, FsOp, FsResult};

use super::clients::{ExecutedTable, ReplyCache, StagedClients};
use super::firewall::{batch_messages, reply_share, stable_share, BatchKeys, FirewallCache};
use super::peer_replies::PeerReplies;
use super::pushed::{Pushed, PushedOrders};
use super::read_only::{answer, NotAnswered, ReadAsk, WaitingReads};
use super::reply_leaves::ReplyLeaves;
use super::transfer::{chunk, Transfer};
use super::votes::CheckpointVotes;
use super::{
    ExecTimer, ReplicaConfig, ReplicaInput, ReplicaOutput, ReplicaStats, ReplyMode, CLIENT_WINDOW,
    FETCH_ATTEMPTS_BEFORE_TRANSFER, FIREWALL_CACHE_BATCHES, FIREWALL_CACHE_BYTES, MAX_BACKOFF,
    PUSH_WAIT, REPLY_CACHE_BYTES, REPLY_CACHE_ENTRIES, REPLY_LEAVES_CHECKPOINTS,
};
use crate::{ExecError, FileSystem, FsSnapshot, StateDigest, StateView, Store};

/// Own checkpoint digests remembered (to compare with stable checkpoints that form late).
const OWN_DIGESTS: usize = 4;
/// Recent stable certificates remembered (a snapshot may complete after a newer one).
const RECENT_STABLE: usize = 4;

/// Answers one peer gets from one snapshot before its requests wait for the next
/// checkpoint.
const MAX_ANSWERS_PER_SNAPSHOT: u32 = 4;
/// Checkpoint states kept: the latest stable one and own newer ones (a snapshot of a
/// checkpoint that never becomes stable is useless to an asker, so the stable one
/// must outlive newer ones).
const MAX_SNAPSHOTS: usize = 4;

/// The state of the last checkpoint this replica took (or installed), kept readable so
/// that state requests are answered at once (TOCS §5.3.2).
struct KeptSnapshot<V: StateView> {
    fs: FsSnapshot<V>,
    /// The exactly-once table at that sequence.
    clients: Vec<ClientRecord>,
    /// The reply leaves at that sequence.
    replies: Vec<BatchLeaves>,
    /// Answers sent from this snapshot, per peer.
    answered: BTreeMap<ExecReplicaId, u32>,
}

/// The state of the `FetchOrders` timer.
#[derive(Debug, Default)]
struct Fetch {
    armed: bool,
    attempts: u32,
    backoff: u32,
}

/// One execution replica: a [`FileSystem`] plus the exactly-once table, the buffer of
/// early batches, checkpoint votes and state transfer. See the module overview.
pub struct ExecutionReplica<S: Store> {
    config: ReplicaConfig,
    key: SigningKey,
    fs: FileSystem<S>,
    executed: ExecutedTable,
    /// The reply leaves of recent batches (replicated state; `reply_leaves.rs`).
    reply_leaves: ReplyLeaves,
    /// `Signed` mode: recent signed replies, per client.
    replies: ReplyCache,
    /// `Signed` mode: replies asked of peers, and answers given (`peer_replies.rs`).
    peer_replies: PeerReplies,
    /// `Threshold` mode: recent batches' share and reply bodies, per sequence.
    firewall: FirewallCache,
    /// Verified batches above `last_applied`, at most `max_ahead` beyond it.
    buffered: BTreeMap<Sequence, OrderedBatch>,
    /// Orders pushed by agreement replicas, waiting for f+1 matching copies.
    pushed: PushedOrders,
    /// The `PushedOrders` timer is armed.
    push_wait_armed: bool,
    fetch: Fetch,
    votes: CheckpointVotes,
    own: BTreeMap<Sequence, Digest>,
    stable: BTreeMap<Sequence, CheckpointCertificate>,
    /// The states of this replica's latest stable checkpoint and of its own newer ones
    /// (at most [`MAX_SNAPSHOTS`]), for answering `FetchState` at once.
    snapshots: BTreeMap<Sequence, KeptSnapshot<S::Snapshot>>,
    /// Peers' pending `FetchState` (their leaf hashes), answered at the next checkpoint.
    state_requests: BTreeMap<ExecReplicaId, Vec<(u64, [u8; 32])>>,
    /// Peers served a snapshot at a sequence: they get the certificate once it forms.
    served: BTreeMap<Sequence, BTreeSet<ExecReplicaId>>,
    transfer: Option<Transfer>,
    /// A stable checkpoint disagreed with this replica's state: it executes nothing more
    /// until a state transfer repaired it.
    divergent: bool,
    /// The restart stall of [`Self::restart_resend`] was reported.
    restart_stall_reported: bool,
    /// Read-only requests waiting until this replica executed through their `after`.
    reads: WaitingReads,
    stats: ReplicaStats,
}

fn config_error(msg: &str) -> ExecError {
    ExecError::Corrupt(format!("invalid replica configuration: {msg}"))
}

/// The canonical bytes of a result; a result that cannot be encoded (never expected: the
/// largest is a 1 MiB READ) becomes `ServerFault` on every replica alike.
pub(super) fn result_bytes(result: &FsResult) -> Vec<u8> {
    palisade_wire::encode(result).unwrap_or_else(|_| {
        palisade_wire::encode(&FsResult::Err(FsError::ServerFault)).unwrap_or_default()
    })
}

/// The checkpoint digest: the file-system digest, the exactly-once table and the
/// recent batches' reply leaves.
fn combined(fs: &[u8; 32], table: &ExecutedTable, leaves: &ReplyLeaves) -> Digest {
    let mut bytes = Vec::with_capacity(96);
    bytes.extend_from_slice(fs);
    bytes.extend_from_slice(&table.hash());
    bytes.extend_from_slice(&leaves.hash());
    Digest::of(b"palisade/execution/replica-state", &bytes)
}

/// How many sequences of reply leaves a replica keeps.
fn leaves_window(config: &ReplicaConfig) -> u64 {
    config
        .checkpoint_interval
        .saturating_mul(REPLY_LEAVES_CHECKPOINTS)
}

/// The (client, request id) of each request of `batch`, in order.
fn batch_keys(batch: &OrderedBatch) -> BatchKeys {
    batch
        .batch
        .requests
        .iter()
        .map(|r| (r.message.client, r.message.request_id))
        .collect()
}

/// The result of a fresh request: `ops[i]`'s, or `Inval` if its payload did not decode
/// (`op` is `None`). A missing result (never expected) is `ServerFault` on every replica.
fn result_of(results: &[FsResult], op: Option<usize>) -> Cow<'_, FsResult> {
    match op {
        Some(i) => results.get(i).map_or(
            Cow::Owned(FsResult::Err(FsError::ServerFault)),
            Cow::Borrowed,
        ),
        None => Cow::Owned(FsResult::Err(FsError::Inval)),
    }
}

enum Slot {
    /// A new request; its result is `ops[i]`, or `Inval` if the payload did not decode.
    Fresh(ClientId, u64, Option<usize>),
    Duplicate(ClientId, u64),
}

impl<S: Store> ExecutionReplica<S> {
    /// A replica over `fs` (empty, or reopened from its data directory). Checks the
    /// configuration: 2g+1 execution keys, this replica's key among them, at least 3f+1
    /// agreement keys, K and `max_ahead` positive.
    pub fn new(
        config: ReplicaConfig,
        key: SigningKey,
        fs: FileSystem<S>,
    ) -> Result<Self, ExecError> {
        let n = config.g.saturating_mul(2).saturating_add(1);
        if config.exec_keys.len() != n {
            return Err(config_error("exec_keys must hold 2g+1 keys"));
        }
        let own_key = usize::try_from(config.id)
            .ok()
            .and_then(|i| config.exec_keys.get(i));
        if own_key != Some(&key.verifying_key()) {
            return Err(config_error(
                "id out of range or signing key not exec_keys[id]",
            ));
        }
        if config.agreement_keys.len() < config.f.saturating_mul(3).saturating_add(1) {
            return Err(config_error("fewer than 3f+1 agreement keys"));
        }
        if config.checkpoint_interval == 0 || config.max_ahead == 0 {
            return Err(config_error(
                "checkpoint_interval and max_ahead must be positive",
            ));
        }
        if let ReplyMode::Threshold(signer) = &config.replies {
            // Filters check a share against the key share of the replica it names.
            if signer.index() != config.id {
                return Err(config_error("threshold signer index is not the replica id"));
            }
        }
        // The exactly-once table is committed with every batch: reopened from its data
        // directory, a replica knows exactly what the batches it holds executed, and its
        // digest equals its peers' at the same sequence. A stored table this replica
        // could not have written is corruption (a clear error, never a guess).
        let clients = config.client_keys.len();
        let executed =
            ExecutedTable::from_records(&fs.clients(clients)?, CLIENT_WINDOW, clients)
                .map_err(|e| ExecError::Corrupt(format!("stored exactly-once table: {e}")))?;
        // The reply leaves too are committed with every batch, for the same reason.
        let window = leaves_window(&config);
        let max_batches = usize::try_from(window).unwrap_or(usize::MAX);
        let reply_leaves =
            ReplyLeaves::from_records(&fs.replies(max_batches)?, fs.last_applied(), window)
                .map_err(|e| ExecError::Corrupt(format!("stored reply leaves: {e}")))?;
        if fs.last_applied() > 0 {
            tracing::info!(
                replica = config.id,
                sequence = fs.last_applied(),
                "reopened from the data directory with its exactly-once table"
            );
        }
        let pushed = PushedOrders::new(config.f);
        Ok(ExecutionReplica {
            config,
            key,
            fs,
            executed,
            reply_leaves,
            replies: ReplyCache::new(REPLY_CACHE_ENTRIES, REPLY_CACHE_BYTES),
            peer_replies: PeerReplies::default(),
            firewall: FirewallCache::new(FIREWALL_CACHE_BATCHES, FIREWALL_CACHE_BYTES),
            buffered: BTreeMap::new(),
            pushed,
            push_wait_armed: false,
            fetch: Fetch::default(),
            votes: CheckpointVotes::default(),
            own: BTreeMap::new(),
            stable: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            state_requests: BTreeMap::new(),
            served: BTreeMap::new(),
            transfer: None,
            divergent: false,
            restart_stall_reported: false,
            reads: WaitingReads::default(),
            stats: ReplicaStats::default(),
        })
    }

    /// Handles one input; returns its effects in order.
    pub fn step(&mut self, input: ReplicaInput) -> Vec<ReplicaOutput> {
        let mut out = Vec::new();
        match input {
            ReplicaInput::Order { batch, certificate } => {
                self.on_order(batch, certificate, &mut out)
            }
            ReplicaInput::Pushed {
                from,
                batch,
                certificate,
            } => self.on_pushed(from, batch, certificate, &mut out),
            ReplicaInput::Message { from, message } => self.on_message(from, message, &mut out),
            ReplicaInput::Stable(cert) => {
                let message = ExecutionMessage::Stable(cert);
                match message.check_bounds() {
                    Err(e) => {
                        self.stats.malformed_messages += 1;
                        tracing::debug!(error = %e, "stable certificate out of bounds: dropped");
                    }
                    Ok(()) => {
                        if let ExecutionMessage::Stable(cert) = message {
                            self.on_stable(cert, &mut out);
                        }
                    }
                }
            }
            ReplicaInput::ResendReply {
                client,
                request_id,
                sequence,
            } => self.on_resend_reply(client, request_id, sequence, &mut out),
            ReplicaInput::Timer(ExecTimer::FetchOrders) => self.on_fetch_timer(&mut out),
            ReplicaInput::Timer(ExecTimer::FetchState) => self.on_state_timer(&mut out),
            ReplicaInput::Timer(ExecTimer::PushedOrders) => self.on_push_wait_expired(&mut out),
            ReplicaInput::ReadOnly {
                from,
                request,
                after,
            } => self.on_read_only(from, request, after),
        }
        self.serve_reads(&mut out);
        out
    }

    /// A read-only request over client `from`'s link (`read_only.rs`): queued until this
    /// replica has executed through `after`; [`Self::serve_reads`], at the end of every
    /// step, answers it.
    fn on_read_only(&mut self, from: ClientId, request: Signed<Request>, after: Sequence) {
        let (client, id) = (request.message.client, request.message.request_id);
        // Only straight to the gateway: through the firewall, nothing but certified
        // replies may leave the execution cluster.
        let refused = if !matches!(self.config.replies, ReplyMode::Signed) {
            Some("read-only requests are answered in Signed mode only")
        } else if client != from {
            Some("read-only request from a client other than the link's")
        } else if request.message.check_bounds().is_err() {
            Some("read-only request out of bounds")
        } else {
            None
        };
        if let Some(why) = refused {
            self.stats.reads_refused += 1;
            tracing::debug!(client, id, from, "{why}: not answered");
            return;
        }
        let ask = ReadAsk {
            client,
            request,
            after,
        };
        if let Some(old) = self.reads.push(ask) {
            self.stats.reads_dropped += 1;
            tracing::debug!(
                client = old.client,
                id = old.request.message.request_id,
                after = old.after,
                "read-only wait queue full: the oldest dropped unanswered"
            );
        }
    }

    /// Answers the waiting read-only requests this replica's state has reached — not
    /// while it knows its state wrong (divergent) or is replacing it (state transfer).
    fn serve_reads(&mut self, out: &mut Vec<ReplicaOutput>) {
        if self.divergent || self.transfer.is_some() {
            return;
        }
        for ask in self.reads.take_ready(self.last_applied()) {
            let id = ask.request.message.request_id;
            match answer(
                &self.fs,
                self.config.body_key.as_ref(),
                self.config.id,
                &ask.request.message,
            ) {
                Ok(reply) => {
                    self.stats.reads_answered += 1;
                    out.push(ReplicaOutput::ReadOnlyReply {
                        to: ask.client,
                        reply,
                    });
                }
                Err(NotAnswered::Storage(e)) => {
                    self.stats.storage_errors += 1;
                    self.stats.reads_refused += 1;
                    tracing::warn!(client = ask.client, id, error = %e, "read-only request: storage error");
                }
                Err(why) => {
                    self.stats.reads_refused += 1;
                    tracing::debug!(
                        client = ask.client,
                        id,
                        ?why,
                        "read-only request not answered"
                    );
                }
            }
        }
    }

    /// Called once when the replica starts (first start or restart from its data
    /// directory), before any input: it signs a *restart checkpoint* at its last
    /// applied sequence, whatever that is, and sends it to its peers.
    ///
    /// Why: agreement nodes keep no durable log, only their last stable checkpoint.
    /// After the whole cluster stopped at once (a power loss, `kill -9`), the execution
    /// replicas may have executed up to K−1 batches past it, and agreement would assign
    /// those sequence numbers again. g+1 matching restart checkpoints form a stable
    /// certificate at the sequence where the replicas stand (one of them is correct
    /// and executed only committed batches, so every sequence up to it was committed);
    /// agreement skips past it (`palisade_agreement::Input::StableCheckpoint`), and a
    /// restarted agreement replica proposes nothing until it has one
    /// (`palisade_agreement::Replica::await_execution`).
    /// This is TOCS §4.3's checkpoint protocol at a sequence that is not a multiple of
    /// K; TOCS §5.3's proactive recovery, which keeps agreement state on disk, is the
    /// alternative we did not take (an fsync on every agreement step).
    ///
    /// Replicas that restart at different sequences form a certificate at a sequence
    /// g+1 of them share; a replica ahead of it executed batches that fewer than g+1
    /// replicas executed — no client accepted their replies — and that agreement will
    /// now fill differently. It holds no digest at that sequence, so the certificate
    /// makes it divergent at once (`adopt_stable`): it executes and answers nothing
    /// more and installs the certified state from a peer, one or more batches back
    /// (`transfer_floor`); peers make sure it learns the certificate (`on_checkpoint`,
    /// `adopt_stable`, [`Self::restart_resend`]). Tested on one replica
    /// (`a_replica_restarted_past_the_stable_restart_checkpoint_takes_the_stable_state`)
    /// and by the `cluster-crash` simulator scenario. If no g+1 share a sequence,
    /// agreement waits (docs/ARCHITECTURE.md, "Restart after the whole cluster stopped
    /// at once").
    ///
    /// In `Threshold` mode the stable checkpoint reaches agreement as a threshold-signed
    /// stable certificate through the filters, as at every checkpoint.
    pub fn start(&mut self) -> Vec<ReplicaOutput> {
        let mut out = Vec::new();
        self.stats.restart_checkpoints += 1;
        tracing::info!(
            replica = self.config.id,
            sequence = self.last_applied(),
            "restart checkpoint: signing the state this replica resumes from"
        );
        self.take_checkpoint(&mut out);
        out
    }

    /// What a runtime re-sends while no order came since [`Self::start`]: an
    /// agreement node restarted after this replica's certificate went out would wait
    /// for it for good. The latest stable certificate to agreement (`Signed` mode), or
    /// this replica's share of it to the filters (`Threshold` mode, if it holds that
    /// state); nothing there if none is stable yet, or only the initial state (a cluster
    /// that never executed anything has nothing to tell, and filters would count every
    /// copy as stale).
    ///
    /// Peers get something too: the stable certificate, or while none is known this
    /// replica's restart checkpoint again. After a whole-cluster stop the replicas come
    /// back one by one, and votes sent while a peer was down never reach it: without
    /// this a replica that restarted late, behind or ahead of the stable checkpoint,
    /// might never learn it — never catching up, never going back from batches
    /// agreement orders anew (`adopt_stable`), and through the firewall never sending
    /// the share agreement waits for (the `cluster-crash` simulator scenario with
    /// `--h 1` found that last one).
    ///
    /// Once every replica's restart checkpoint is here and still none is stable, no g+1
    /// replicas resumed at one sequence with one state (after a whole-cluster stop, three
    /// replicas at three sequences): nothing will become stable by waiting, and agreement
    /// waits with it. That is reported once, as a warning naming where each replica
    /// stands, and counted (`restart_stalls`), so that an operator sees why the cluster
    /// answers nothing (README, "Restart after the whole cluster stopped at once" in
    /// docs/ARCHITECTURE.md). The replicas keep re-sending: the report may be wrong only
    /// about a faulty replica, whose vote can change.
    pub fn restart_resend(&mut self) -> Vec<ReplicaOutput> {
        let mut out = Vec::new();
        if self.stable.is_empty() {
            self.report_restart_stall();
            if let Some(vote) = self.votes.latest_of(self.config.id) {
                out.push(ReplicaOutput::ToExecution {
                    to: None,
                    message: ExecutionMessage::Checkpoint(vote.clone()),
                });
            }
            return out;
        }
        let Some(cert) = self.stable_checkpoint().filter(|c| c.sequence > 0).cloned() else {
            return out;
        };
        out.push(ReplicaOutput::ToExecution {
            to: None,
            message: ExecutionMessage::Stable(cert.clone()),
        });
        match &self.config.replies {
            ReplyMode::Signed => {
                out.push(ReplicaOutput::ToAgreement(ExecutionMessage::Stable(cert)))
            }
            ReplyMode::Threshold(_) if self.own.get(&cert.sequence) == Some(&cert.state_digest) => {
                self.send_stable_share(cert.sequence, &mut out);
            }
            ReplyMode::Threshold(_) => {}
        }
        out
    }

    /// See [`Self::restart_resend`]: called while no checkpoint is stable.
    fn report_restart_stall(&mut self) {
        if self.restart_stall_reported {
            return;
        }
        let standing: Option<Vec<(Sequence, Digest)>> = (0..self.n())
            .map(|i| {
                let id = ExecReplicaId::try_from(i).ok()?;
                let vote = self.votes.latest_of(id)?;
                Some((vote.message.sequence, vote.message.state_digest))
            })
            .collect();
        let Some(standing) = standing else {
            return; // some replica's restart checkpoint has not come yet
        };
        let most_alike = standing
            .iter()
            .map(|v| standing.iter().filter(|w| *w == v).count())
            .max()
            .unwrap_or(0);
        if most_alike > self.config.g {
            return; // g+1 match: a certificate forms (or formed) from these votes
        }
        self.restart_stall_reported = true;
        self.stats.restart_stalls += 1;
        let sequences: Vec<Sequence> = standing.iter().map(|(s, _)| *s).collect();
        tracing::warn!(
            replica = self.config.id,
            ?sequences,
            "restart stalled: the execution replicas resumed at these sequences and no g+1 \
             of them share one state, so no restart checkpoint can become stable and \
             agreement orders nothing (docs/ARCHITECTURE.md, \"Restart after the whole \
             cluster stopped at once\")"
        );
    }

    /// The sequence number of the last executed (or installed) batch.
    pub fn last_applied(&self) -> u64 {
        self.fs.last_applied()
    }

    /// The checkpoint digest of the current state: H(file-system digest ‖ exactly-once
    /// table). All zeros in the file-system part if storage cannot be read.
    pub fn digest(&mut self) -> StateDigest {
        let fs = self.fs.digest();
        StateDigest(combined(&fs.0, &self.executed, &self.reply_leaves).0)
    }

    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// Whether [`ExecutionReplica::apply_deferred`] has work to do now.
    pub fn deferred_due(&self) -> bool {
        self.fs.deferred_due()
    }

    /// Does the store work the last batches' commits left for later, as much as is due
    /// (their B-tree writes, once enough have gathered: `Store::apply_deferred`). The
    /// runtime calls it once it has sent a step's outputs, so that the work is off the
    /// replies' path. A failure is logged: the store reopens and replays its log at the next
    /// access.
    pub fn apply_deferred(&mut self) {
        if let Err(e) = self.fs.apply_deferred() {
            tracing::warn!(error = %e, "deferred store work failed; the store recovers at its next access");
        }
    }

    /// The file system (for inspection; its own `digest()` leaves out the exactly-once
    /// table).
    pub fn fs(&self) -> &FileSystem<S> {
        &self.fs
    }

    /// The latest stable checkpoint this replica knows of.
    pub fn stable_checkpoint(&self) -> Option<&CheckpointCertificate> {
        self.stable.values().next_back()
    }

    /// True while a stable checkpoint contradicts this replica's state (it then executes
    /// nothing until a state transfer repaired it).
    pub fn is_divergent(&self) -> bool {
        self.divergent
    }

    /// True while a state transfer is in progress.
    pub fn is_transferring(&self) -> bool {
        self.transfer.is_some()
    }

    /// Closes the replica and hands back its file system.
    pub fn into_fs(self) -> FileSystem<S> {
        self.fs
    }

    fn n(&self) -> usize {
        self.config.exec_keys.len()
    }

    fn stable_sequence(&self) -> Sequence {
        self.stable.keys().next_back().copied().unwrap_or(0)
    }

    // ---- orders (SOSP 2003 §3: verify, buffer, execute in order) ----

    fn on_order(
        &mut self,
        batch: OrderedBatch,
        certificate: OrderCertificate,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let seq = batch.sequence;
        let last = self.last_applied();
        if seq <= last {
            self.on_redelivered_order(&batch, &certificate, true, out);
            return;
        }
        // Cheap refusals first; they change nothing.
        if self.buffered.contains_key(&seq) {
            self.stats.duplicate_orders += 1;
            tracing::debug!(
                sequence = seq,
                "order already executed or buffered: ignored"
            );
            return;
        }
        if seq > last.saturating_add(self.config.max_ahead) {
            self.stats.orders_too_far_ahead += 1;
            tracing::debug!(sequence = seq, last, "order too far ahead: dropped");
            return;
        }
        if let Err(e) = certificate.verify(&batch, &self.config.agreement_keys, self.config.f) {
            self.stats.bad_certificates += 1;
            tracing::debug!(sequence = seq, error = %e, "order certificate refused");
            return;
        }
        self.buffer(batch, out);
    }

    /// Buffers a batch known to be committed at its sequence (by its certificate, or by
    /// f+1 pushers) and executes what is ready.
    fn buffer(&mut self, batch: OrderedBatch, out: &mut Vec<ReplicaOutput>) {
        let seq = batch.sequence;
        // Client signatures are not checked again here: 2f+1 commits (or f+1 pushers, one
        // of them correct and holding 2f+1) mean at least f+1 correct agreement replicas
        // accepted this batch, and a correct replica accepts a
        // request only after checking its signature or receiving those very bytes over the
        // client's own authenticated link (TOCS §4.2; `palisade_agreement::Input::LinkRequest`).
        // Checking 2g+1 more times per request was 11% of the `separate` configuration's
        // CPU (docs/PERFORMANCE.md). Bounds are still checked: they are cheap, and a batch
        // out of bounds must never reach the file system.
        if let Err(e) = batch.batch.check_bounds() {
            self.stats.malformed_batches += 1;
            tracing::debug!(sequence = seq, error = %e, "batch out of bounds refused");
            return;
        }
        self.buffered.insert(seq, batch);
        self.execute_ready(out);
    }

    /// An order agreement replica `from` pushed over its own link (`pushed.rs`: f+1
    /// matching pushes stand for the certificate).
    fn on_pushed(
        &mut self,
        from: palisade_wire::agreement::ReplicaId,
        batch: OrderedBatch,
        certificate: OrderCertificate,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let (seq, last) = (batch.sequence, self.last_applied());
        // The same cheap refusals as `on_order`, before anything is kept.
        if seq > last && self.buffered.contains_key(&seq) {
            self.stats.duplicate_orders += 1;
            return;
        }
        if seq > last.saturating_add(self.config.max_ahead) {
            self.stats.orders_too_far_ahead += 1;
            tracing::debug!(sequence = seq, last, "order too far ahead: dropped");
            return;
        }
        match self.pushed.push(from, batch, certificate, last) {
            Pushed::Redundant => self.stats.orders_redundant += 1,
            // An agreement replica asks for the replies of an executed batch again over
            // its own link, as its `ResendReply` does: no certificate needed (it may
            // hold a faulty replica's bad signature, `link_authenticated_commits`).
            Pushed::Redelivered(batch, certificate) => {
                self.on_redelivered_order(&batch, &certificate, false, out)
            }
            Pushed::Agreed(batch) => {
                self.stats.orders_agreed_by_pushers += 1;
                self.buffer(batch, out);
            }
            Pushed::Wait => self.arm_push_wait(out),
            Pushed::Verify(sequence) => {
                let (keys, f) = (&self.config.agreement_keys, self.config.f);
                match self
                    .pushed
                    .take_certified(sequence, |b, c| c.verify(b, keys, f).is_ok())
                {
                    Some(batch) => {
                        self.stats.large_orders_certified += 1;
                        self.buffer(batch, out);
                    }
                    None => {
                        self.stats.bad_certificates += 1;
                        tracing::debug!(sequence, "pushed order: certificate refused, waiting");
                        self.arm_push_wait(out);
                    }
                }
            }
            Pushed::Check(orders) => {
                for (batch, certificate) in orders {
                    self.on_order(batch, certificate, out);
                }
            }
            Pushed::Conflicting => {
                self.stats.orders_conflicting += 1;
                tracing::warn!(
                    sequence = seq,
                    from,
                    "agreement replica pushed two batches at one sequence"
                );
            }
        }
    }

    fn arm_push_wait(&mut self, out: &mut Vec<ReplicaOutput>) {
        if !self.push_wait_armed {
            self.push_wait_armed = true;
            out.push(ReplicaOutput::SetTimer {
                kind: ExecTimer::PushedOrders,
                after: PUSH_WAIT,
            });
        }
    }

    /// The wait timer fired: orders that waited at least [`PUSH_WAIT`] for f+1 matching
    /// copies are decided by their certificates; the timer stays armed while any wait.
    fn on_push_wait_expired(&mut self, out: &mut Vec<ReplicaOutput>) {
        self.push_wait_armed = false;
        let orders = self.pushed.expire(self.last_applied());
        if !orders.is_empty() {
            self.stats.push_waits_expired += 1;
        }
        for (batch, certificate) in orders {
            self.on_order(batch, certificate, out);
        }
        if self.pushed.is_waiting() {
            self.arm_push_wait(out);
        }
    }

    /// An order for a sequence already executed: agreement re-delivers it when a client
    /// retransmits a request that was delivered (its replies were lost, TOCS §4.1/§5.2).
    /// Re-sends this replica's cached replies for that batch's requests. Cheap checks
    /// first (is any reply cached at all?), then, with `check`, the certificate — an
    /// unauthenticated message never triggers work — and at most one cached reply per
    /// request of the batch, which agreement already bounds in size. Without `check`
    /// an agreement replica asked over its own link; only replies this sequence
    /// produced are re-sent, whoever asks.
    fn on_redelivered_order(
        &mut self,
        batch: &OrderedBatch,
        certificate: &OrderCertificate,
        check: bool,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let seq = batch.sequence;
        self.stats.duplicate_orders += 1;
        if matches!(self.config.replies, ReplyMode::Threshold(_)) {
            self.redeliver_to_firewall(batch, certificate, out);
            return;
        }
        let mut seen = BTreeSet::new();
        let cached: Vec<BatchReply> = batch
            .batch
            .requests
            .iter()
            .map(|r| (r.message.client, r.message.request_id))
            .filter(|key| seen.insert(*key))
            .filter_map(|(client, id)| self.replies.get(client, id))
            // Only the reply this sequence produced: a request ordered twice by a faulty
            // primary was answered at its first sequence.
            .filter(|reply| reply.message.sequence == seq)
            .take(MAX_BATCH_REQUESTS)
            .cloned()
            .collect();
        // Fewer cached replies than the batch made (by its leaves): ask peers for the
        // rest (`peer_replies.rs`). A batch with fewer requests than leaves is not the
        // one executed here (one leaf per fresh request), and gets nothing.
        let missing: Vec<(ClientId, u64)> = match self.reply_leaves.get(seq) {
            Some(leaves) if cached.len() < leaves.len() && leaves.len() <= seen.len() => {
                let have: BTreeSet<(ClientId, u64)> = cached
                    .iter()
                    .map(|r| (r.message.client, r.message.request_id))
                    .collect();
                seen.into_iter().filter(|k| !have.contains(k)).collect()
            }
            _ => Vec::new(),
        };
        if cached.is_empty() && missing.is_empty() {
            tracing::debug!(
                sequence = seq,
                "re-delivered order, no reply cached: ignored"
            );
            return;
        }
        if check {
            if let Err(e) = certificate.verify(batch, &self.config.agreement_keys, self.config.f) {
                self.stats.bad_certificates += 1;
                tracing::debug!(sequence = seq, error = %e, "re-delivered order: certificate refused");
                return;
            }
        }
        self.stats.orders_redelivered += 1;
        tracing::debug!(
            sequence = seq,
            replies = cached.len(),
            missing = missing.len(),
            "re-delivered order: re-sending cached replies"
        );
        for reply in cached {
            self.stats.replies_resent += 1;
            out.push(ReplicaOutput::Reply {
                to: reply.message.client,
                reply,
            });
        }
        if !missing.is_empty() {
            self.peer_replies.want(seq, &self.reply_leaves);
            self.stats.replies_fetched += 1;
            out.push(ReplicaOutput::ToExecution {
                to: None,
                message: ExecutionMessage::FetchReplies {
                    sequence: seq,
                    requests: missing,
                },
            });
        }
    }

    /// `Signed` mode: a peer asks for the replies it lacks of the batch at `sequence`:
    /// send each one this replica cached for that sequence (bounded per peer and
    /// sequence; see `peer_replies.rs`).
    fn on_fetch_replies(
        &mut self,
        peer: ExecReplicaId,
        sequence: Sequence,
        requests: Vec<(ClientId, u64)>,
        out: &mut Vec<ReplicaOutput>,
    ) {
        if !self
            .peer_replies
            .may_answer(peer, sequence, &self.reply_leaves)
        {
            self.stats.reply_fetches_refused += 1;
            tracing::debug!(
                peer,
                sequence,
                "reply fetch out of the window or over its bound: dropped"
            );
            return;
        }
        let mut seen = BTreeSet::new();
        for (client, request_id) in requests {
            if !seen.insert((client, request_id)) {
                continue;
            }
            let Some(reply) = self
                .replies
                .get(client, request_id)
                .filter(|r| r.message.sequence == sequence)
            else {
                continue;
            };
            self.stats.replies_served += 1;
            out.push(ReplicaOutput::ToExecution {
                to: Some(peer),
                message: ExecutionMessage::ReplyBody {
                    sequence,
                    entry: ReplyEntry {
                        client,
                        request_id,
                        body: reply.message.result.clone(),
                    },
                },
            });
        }
    }

    /// `Signed` mode: a peer's reply of the batch at `sequence`, which this replica asked
    /// for. Taken only if its leaf is among this replica's own leaves of that batch (a
    /// faulty peer cannot make it sign anything else); then signed, cached and sent to
    /// its client, exactly as if this replica had executed the batch.
    fn on_peer_reply(
        &mut self,
        peer: ExecReplicaId,
        sequence: Sequence,
        entry: ReplyEntry,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let (client, request_id) = (entry.client, entry.request_id);
        let Some(leaves) = self
            .reply_leaves
            .get(sequence)
            .filter(|_| self.peer_replies.is_wanted(sequence))
        else {
            self.stats.unsolicited_replies += 1;
            tracing::debug!(peer, sequence, "reply body not asked for: dropped");
            return;
        };
        if self
            .replies
            .get(client, request_id)
            .is_some_and(|r| r.message.sequence == sequence)
        {
            return;
        }
        let reply = Reply {
            sequence,
            client,
            request_id,
            result: entry.body,
            replica: self.config.id,
        };
        let Some(signed) = palisade_crypto::sign_reply_in_batch(&self.key, reply, leaves) else {
            self.stats.bad_peer_replies += 1;
            tracing::warn!(
                peer,
                sequence,
                client,
                request_id,
                "a peer sent a reply that is not among the batch's leaves"
            );
            return;
        };
        self.stats.replies_from_peers += 1;
        tracing::debug!(
            peer,
            sequence,
            client,
            request_id,
            "reply taken from a peer, signed and sent"
        );
        self.replies.insert(signed.clone());
        out.push(ReplicaOutput::Reply {
            to: client,
            reply: signed,
        });
    }

    /// Re-sends the cached reply of (`client`, `request_id`) to that client, if there is
    /// one (`Signed` mode). The reply is self-certifying, so whoever asked learns nothing
    /// and can make a replica send only what it already sent once. Without one, for a
    /// request this replica's exactly-once table says was executed, at a `sequence` still
    /// in the reply leaves' window, it asks its peers for the reply (see below). In the
    /// firewall configuration nothing leaves a replica but towards the bottom filters:
    /// ignored.
    fn on_resend_reply(
        &mut self,
        client: palisade_wire::agreement::ClientId,
        request_id: u64,
        sequence: Option<Sequence>,
        out: &mut Vec<ReplicaOutput>,
    ) {
        if matches!(self.config.replies, ReplyMode::Threshold(_)) {
            self.stats.malformed_messages += 1;
            return;
        }
        if let Some(reply) = self.replies.get(client, request_id) {
            self.stats.replies_resent += 1;
            tracing::debug!(client, request_id, "re-sending a cached reply on request");
            out.push(ReplicaOutput::Reply {
                to: client,
                reply: reply.clone(),
            });
            return;
        }
        // No cached reply, but the batch agreement names is still in the reply leaves'
        // window: this replica skipped it by state transfer or lost its cache in a
        // restart. Ask the peers for the body, as for a re-delivered order; it is taken
        // only if its leaf is among this replica's own leaves of that sequence
        // (`on_peer_reply`), so a wrong sequence from a faulty agreement node gets
        // nothing signed, and the bounds of `peer_replies.rs` hold.
        let executed = self.executed.contains(client, request_id);
        let Some(seq) = sequence
            .filter(|s| executed && self.reply_leaves.get(*s).is_some_and(|l| !l.is_empty()))
        else {
            tracing::debug!(client, request_id, "no cached reply to re-send");
            return;
        };
        self.peer_replies.want(seq, &self.reply_leaves);
        self.stats.replies_fetched += 1;
        tracing::debug!(
            client,
            request_id,
            sequence = seq,
            "no cached reply: asking peers for it"
        );
        out.push(ReplicaOutput::ToExecution {
            to: None,
            message: ExecutionMessage::FetchReplies {
                sequence: seq,
                requests: vec![(client, request_id)],
            },
        });
    }

    /// `Threshold` mode: re-sends the cached share and reply bodies of an executed batch
    /// (the filters that lost them, or a gateway that retransmitted, get them again),
    /// once the certificate verified. A batch no longer cached but still in the reply
    /// leaves' window (skipped by state transfer, or executed before a restart) gets a
    /// share signed over its leaves, and that share is cached in turn: with at most g
    /// faulty replicas, g+1 correct ones can then always certify it (`reply_leaves.rs`).
    /// A batch that produced no replies, or left the window, is ignored.
    fn redeliver_to_firewall(
        &mut self,
        batch: &OrderedBatch,
        certificate: &OrderCertificate,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let seq = batch.sequence;
        let keys = batch_keys(batch);
        // A cached batch of other requests at this sequence says this order is not the
        // batch executed there (which 2f+1 commits rule out with at most f faulty
        // agreement replicas): nothing is signed for it.
        let by_leaves = !self.firewall.contains(seq) && self.reply_leaves.get(seq).is_some();
        if self.firewall.get(seq, &keys).is_none() && !by_leaves {
            tracing::debug!(
                sequence = seq,
                "re-delivered order, nothing cached for the firewall: ignored"
            );
            return;
        }
        if let Err(e) = certificate.verify(batch, &self.config.agreement_keys, self.config.f) {
            self.stats.bad_certificates += 1;
            tracing::debug!(sequence = seq, error = %e, "re-delivered order: certificate refused");
            return;
        }
        self.stats.orders_redelivered += 1;
        if let Some(cached) = self.firewall.get(seq, &keys) {
            self.stats.firewall_messages_resent += cached.len() as u64;
            tracing::debug!(
                sequence = seq,
                messages = cached.len(),
                "re-delivered order: re-sending the share and reply bodies"
            );
            out.extend(cached.iter().cloned().map(ReplicaOutput::ToFirewall));
            return;
        }
        let (ReplyMode::Threshold(signer), Some(leaves)) =
            (&self.config.replies, self.reply_leaves.get(seq))
        else {
            return;
        };
        let share = reply_share(signer.as_ref(), seq, self.config.id, leaves.to_vec());
        self.stats.shares_from_leaves += 1;
        tracing::debug!(
            sequence = seq,
            leaves = leaves.len(),
            "re-delivered order of a batch known by its leaves: share signed"
        );
        out.push(ReplicaOutput::ToFirewall(share.clone()));
        self.firewall.insert(seq, keys, vec![share]);
    }

    /// Executes buffered batches while the next one is there, then updates the timers.
    fn execute_ready(&mut self, out: &mut Vec<ReplicaOutput>) {
        let mut progressed = false;
        while !self.divergent {
            let Some(next) = self.last_applied().checked_add(1) else {
                break;
            };
            let Some(batch) = self.buffered.remove(&next) else {
                break;
            };
            if let Err(e) = self.execute(&batch, out) {
                self.stats.storage_errors += 1;
                // A durable store reopens itself after a failed commit, which an open
                // snapshot (a read transaction) would hold up: let it go.
                self.snapshots.clear();
                tracing::warn!(sequence = next, error = %e, "batch not applied; will retry");
                self.buffered.insert(next, batch);
                break;
            }
            progressed = true;
            if next.is_multiple_of(self.config.checkpoint_interval) {
                self.take_checkpoint(out);
            }
        }
        if progressed {
            // The gap (if any) is a new one: start its timer afresh.
            self.fetch.attempts = 0;
            self.fetch.backoff = 0;
            if self.fetch.armed {
                self.fetch.armed = false;
                out.push(ReplicaOutput::CancelTimer(ExecTimer::FetchOrders));
            }
            let stable = self.stable_sequence();
            if self.transfer.is_some() && !self.divergent && self.last_applied() >= stable {
                // Orders got us there after all.
                self.transfer = None;
                out.push(ReplicaOutput::CancelTimer(ExecTimer::FetchState));
            }
        }
        self.update_fetch_timer(out);
    }

    /// Executes one batch (the next in order) as one atomic commit, and replies.
    fn execute(
        &mut self,
        batch: &OrderedBatch,
        out: &mut Vec<ReplicaOutput>,
    ) -> Result<(), ExecError> {
        // Phase events (`scripts/phases.py`): when this replica executed and committed.
        tracing::trace!(target: "palisade::phase", sequence = batch.sequence, "execute");
        let mut slots = Vec::with_capacity(batch.batch.requests.len());
        let mut ops: Vec<FsOp> = Vec::new();
        // Each request is checked against the table as the earlier requests of this
        // batch leave it (a duplicate within the batch, or an old id below a window that
        // a later id of its client moved, is not executed).
        let mut staged = StagedClients::default();
        for request in &batch.batch.requests {
            let (client, id) = (request.message.client, request.message.request_id);
            if staged.contains(&self.executed, client, id) {
                slots.push(Slot::Duplicate(client, id));
                continue;
            }
            staged.insert(&self.executed, client, id);
            // Sealed by the gateway for the execution cluster (issue 4 §3). A payload
            // that does not open is answered like one that does not decode; every
            // replica holds the same key, so every replica decides alike.
            let payload: Cow<'_, [u8]> = match &self.config.body_key {
                None => Cow::Borrowed(&request.message.payload),
                Some(key) => match key.open_request(client, &request.message.payload) {
                    Ok(plain) => Cow::Owned(plain),
                    Err(e) => {
                        self.stats.unsealable_requests += 1;
                        tracing::debug!(client, id, error = %e, "payload does not open: Inval");
                        slots.push(Slot::Fresh(client, id, None));
                        continue;
                    }
                },
            };
            match palisade_wire::decode::<FsOp>(&payload) {
                Ok(op) => {
                    ops.push(op);
                    slots.push(Slot::Fresh(client, id, Some(ops.len() - 1)));
                }
                Err(e) => {
                    self.stats.undecodable_requests += 1;
                    tracing::debug!(client, id, error = %e, "payload is not an FsOp: Inval");
                    slots.push(Slot::Fresh(client, id, None));
                }
            }
        }
        let (results, mut ran) = self.fs.run_batch(&batch.context(), &ops)?;
        let sequence = batch.sequence;
        // Each fresh request's reply, before the commit: the leaf hashes of the batch's
        // replies are replicated state (`reply_leaves.rs`).
        let entries: Vec<ReplyEntry> = slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Fresh(client, id, op) => Some(ReplyEntry {
                    client: *client,
                    request_id: *id,
                    body: self.reply_body(sequence, *client, *id, &result_of(&results, *op)),
                }),
                Slot::Duplicate(..) => None,
            })
            .collect();
        let signer = match &self.config.replies {
            ReplyMode::Signed => None,
            ReplyMode::Threshold(signer) => Some(Arc::clone(signer)),
        };
        let leaves: Vec<Digest> = entries.iter().map(palisade_crypto::leaf_hash).collect();
        // The table's and the leaves' changes commit atomically with the batch (durable
        // exactly-once; a reopened replica's digest equals its peers').
        ran.clients(staged.records(&self.executed));
        ran.replies(self.reply_leaves.changes(sequence, &leaves));
        // A batch of reads commits without an fsync: lost in a crash, it is fetched and
        // replayed. Not at a checkpoint's sequence, though: this replica signs the state
        // it leaves, and once g+1 signed it agreement collects the orders up to it; had
        // every replica lost it in one power failure, none could replay it and none could
        // serve it by state transfer. Durable there, a stable checkpoint always has g+1
        // replicas that hold it on disk.
        if sequence.is_multiple_of(self.config.checkpoint_interval) {
            ran.make_durable();
        }
        let unsynced = !ran.is_durable();
        self.fs.commit_batch(ran)?;
        tracing::trace!(target: "palisade::phase", sequence, synced = !unsynced, "committed");
        if unsynced {
            self.stats.batches_unsynced += 1;
        }
        self.executed.apply(staged);
        self.reply_leaves.apply(sequence, leaves.clone());
        self.stats.batches_executed += 1;
        self.stats.requests_executed += entries.len() as u64;
        for slot in slots {
            let Slot::Duplicate(client, id) = slot else {
                continue;
            };
            self.stats.duplicate_requests += 1;
            if signer.is_some() {
                // Its reply was certified with the batch that executed it; the
                // filters answer a retransmission from their cache. No entry here:
                // the table says "duplicate" on every correct replica alike.
                tracing::debug!(client, id, "duplicate request: no reply entry");
                continue;
            }
            match self.replies.get(client, id) {
                Some(reply) => {
                    self.stats.replies_resent += 1;
                    out.push(ReplicaOutput::Reply {
                        to: client,
                        reply: reply.clone(),
                    });
                }
                None => {
                    self.stats.duplicates_without_reply += 1;
                    tracing::debug!(client, id, "duplicate request, reply not cached: dropped");
                }
            }
        }
        match signer {
            Some(signer) => self.certify_batch(signer.as_ref(), batch, entries, leaves, out),
            None => {
                let id = self.config.id;
                let replies = entries
                    .into_iter()
                    .map(|e| Reply {
                        sequence,
                        client: e.client,
                        request_id: e.request_id,
                        result: e.body,
                        replica: id,
                    })
                    .collect();
                self.sign_replies(replies, &leaves, out);
            }
        }
        Ok(())
    }

    /// The reply body of one request: the canonical `FsResult`, sealed for the gateway
    /// when a body key is configured (deterministically, so every correct replica
    /// produces the same bytes; issue 4 §3).
    fn reply_body(
        &self,
        sequence: Sequence,
        client: ClientId,
        request_id: u64,
        result: &FsResult,
    ) -> Vec<u8> {
        let bytes = result_bytes(result);
        match &self.config.body_key {
            Some(key) => key.seal_reply(sequence, client, request_id, &bytes),
            None => bytes,
        }
    }

    /// `Threshold` mode: this replica's share over the batch's reply root and the reply
    /// bodies, to the bottom filter row, kept for re-delivered orders. A batch without
    /// entries sends nothing (see the module overview).
    fn certify_batch(
        &mut self,
        signer: &dyn ThresholdSigner,
        batch: &OrderedBatch,
        entries: Vec<ReplyEntry>,
        leaves: Vec<Digest>,
        out: &mut Vec<ReplicaOutput>,
    ) {
        if entries.is_empty() {
            self.stats.batches_without_replies += 1;
            return;
        }
        let count = entries.len() as u64;
        let messages = batch_messages(signer, batch.sequence, self.config.id, entries, leaves);
        self.stats.reply_shares_sent += 1;
        self.stats.replies_sent += count;
        out.extend(messages.iter().cloned().map(ReplicaOutput::ToFirewall));
        self.firewall
            .insert(batch.sequence, batch_keys(batch), messages);
    }

    /// `Signed` mode: the replies of one batch under one signature on their Merkle root,
    /// to their clients, kept for retransmissions. (Re-sent duplicates went out already,
    /// in batch order, while the batch's slots were walked.)
    fn sign_replies(
        &mut self,
        replies: Vec<Reply>,
        leaves: &[Digest],
        out: &mut Vec<ReplicaOutput>,
    ) {
        for reply in palisade_crypto::sign_batch_replies_over(&self.key, replies, leaves) {
            self.replies.insert(reply.clone());
            self.stats.replies_sent += 1;
            out.push(ReplicaOutput::Reply {
                to: reply.message.client,
                reply,
            });
        }
    }

    // ---- fetching missing orders ----

    /// True if orders are missing: a buffered batch waits for an earlier one, or a stable
    /// checkpoint is beyond our state.
    fn has_gap(&self) -> bool {
        let last = self.last_applied();
        let next = last.saturating_add(1);
        !self.divergent
            && (self.buffered.keys().next().is_some_and(|s| *s > next)
                || self.stable_sequence() > last)
    }

    fn backoff(&self, exponent: u32) -> Duration {
        self.config
            .fetch_timeout
            .saturating_mul(1u32 << exponent.min(MAX_BACKOFF))
    }

    fn update_fetch_timer(&mut self, out: &mut Vec<ReplicaOutput>) {
        let gap = self.has_gap();
        if gap && !self.fetch.armed {
            self.fetch.armed = true;
            out.push(ReplicaOutput::SetTimer {
                kind: ExecTimer::FetchOrders,
                after: self.backoff(self.fetch.backoff),
            });
        } else if !gap && self.fetch.armed {
            self.fetch = Fetch::default();
            out.push(ReplicaOutput::CancelTimer(ExecTimer::FetchOrders));
        }
    }

    fn on_fetch_timer(&mut self, out: &mut Vec<ReplicaOutput>) {
        self.fetch.armed = false;
        if !self.has_gap() {
            self.fetch = Fetch::default();
            return;
        }
        let from = self.last_applied().saturating_add(1);
        self.stats.fetch_orders_sent += 1;
        tracing::debug!(
            from,
            attempt = self.fetch.attempts,
            "gap persists: fetching orders"
        );
        out.push(ReplicaOutput::ToAgreement(ExecutionMessage::FetchOrders {
            from,
        }));
        self.fetch.attempts = self.fetch.attempts.saturating_add(1);
        self.fetch.backoff = (self.fetch.backoff + 1).min(MAX_BACKOFF);
        self.maybe_start_transfer(out);
        self.update_fetch_timer(out);
    }

    // ---- checkpoints (TOCS §4.3) ----

    fn take_checkpoint(&mut self, out: &mut Vec<ReplicaOutput>) {
        let sequence = self.last_applied();
        let fs_digest = match self.fs.try_digest() {
            Ok(d) => d,
            Err(e) => {
                self.stats.storage_errors += 1;
                tracing::error!(sequence, error = %e, "checkpoint digest failed");
                return;
            }
        };
        let digest = combined(&fs_digest.0, &self.executed, &self.reply_leaves);
        self.own.insert(sequence, digest);
        while self.own.len() > OWN_DIGESTS {
            self.own.pop_first();
        }
        let checkpoint = ExecCheckpoint {
            sequence,
            state_digest: digest,
            replica: self.config.id,
        };
        let signed = match Signed::sign(&self.key, checkpoint) {
            Ok(s) => s,
            Err(e) => {
                self.stats.sign_failures += 1;
                tracing::warn!(sequence, error = %e, "checkpoint not signed");
                return;
            }
        };
        self.stats.checkpoints_taken += 1;
        out.push(ReplicaOutput::ToExecution {
            to: None,
            message: ExecutionMessage::Checkpoint(signed.clone()),
        });
        if matches!(self.config.replies, ReplyMode::Signed) {
            // In the firewall configuration no state digest goes up (SOSP 2003 §4): a
            // digest is a function of file state.
            out.push(ReplicaOutput::ToAgreement(ExecutionMessage::Checkpoint(
                signed.clone(),
            )));
        }
        // Keep this checkpoint's state readable (TOCS §5.3.2), so a later FetchState is
        // answered at once; then serve the requests that waited for it.
        self.keep_snapshot();
        self.serve_state_requests(out);
        // Peers' votes may have made this checkpoint stable before this replica reached
        // it; then adopt_stable below is not called again, so share here.
        let stable_before = self.stable.get(&sequence).map(|c| c.state_digest);
        self.add_vote(signed, out);
        if stable_before == Some(digest) {
            self.send_stable_share(sequence, out);
        }
    }

    /// `Threshold` mode: this replica's share of `stable_message(sequence)` to the bottom
    /// filter row, which combines g+1 into the `StableCertificate` agreement collects on.
    fn send_stable_share(&mut self, sequence: Sequence, out: &mut Vec<ReplicaOutput>) {
        let ReplyMode::Threshold(signer) = &self.config.replies else {
            return;
        };
        let message = stable_share(signer.as_ref(), sequence, self.config.id);
        self.stats.stable_shares_sent += 1;
        out.push(ReplicaOutput::ToFirewall(message));
    }

    /// Adds a verified checkpoint; forms a stable certificate if g+1 now match.
    fn add_vote(&mut self, signed: Signed<ExecCheckpoint>, out: &mut Vec<ReplicaOutput>) {
        let (sequence, digest) = (signed.message.sequence, signed.message.state_digest);
        self.votes.add(signed);
        if self.is_stale(sequence) {
            return;
        }
        if let Some(cert) = self.votes.certificate(sequence, digest, self.config.g + 1) {
            self.adopt_stable(cert, true, out);
        }
    }

    /// True if a stable checkpoint at or beyond `sequence` is known (sequence 0, the
    /// initial state, is stale only once some checkpoint is stable).
    fn is_stale(&self, sequence: Sequence) -> bool {
        self.stable
            .keys()
            .next_back()
            .is_some_and(|s| sequence <= *s)
    }

    /// A peer's checkpoint vote: at a multiple of K, or at any sequence for a restart
    /// checkpoint (see [`Self::start`]). Votes are kept per sender and bounded
    /// (`votes.rs`), so a faulty peer's votes at many sequences displace only its own.
    fn on_checkpoint(&mut self, signed: Signed<ExecCheckpoint>, out: &mut Vec<ReplicaOutput>) {
        let sequence = signed.message.sequence;
        if self.is_stale(sequence) {
            self.stats.bad_checkpoints += 1;
            tracing::debug!(sequence, "checkpoint at or below the stable one: dropped");
            return;
        }
        if let Err(e) = signed.verify_with(&self.config.exec_keys) {
            self.stats.bad_checkpoints += 1;
            tracing::debug!(sequence, error = %e, "checkpoint signature refused");
            return;
        }
        if sequence > self.last_applied() {
            if let Some(cert) = self.stable.values().next_back() {
                out.push(ReplicaOutput::ToExecution {
                    to: Some(signed.message.replica),
                    message: ExecutionMessage::Stable(cert.clone()),
                });
            }
        }
        self.add_vote(signed, out);
    }

    fn on_stable(&mut self, cert: CheckpointCertificate, out: &mut Vec<ReplicaOutput>) {
        if self.is_stale(cert.sequence) {
            return;
        }
        if let Err(e) = cert.verify(&self.config.exec_keys, self.config.g) {
            self.stats.bad_checkpoints += 1;
            tracing::debug!(sequence = cert.sequence, error = %e, "stable certificate refused");
            return;
        }
        self.adopt_stable(cert, false, out);
    }

    /// A new stable checkpoint: tell agreement (if formed here; `Signed` mode) or send a
    /// stable share (if our own digest is the stable one; `Threshold` mode), hand it to peers we
    /// served that state, check our own digest, and catch up if it is beyond us.
    fn adopt_stable(
        &mut self,
        cert: CheckpointCertificate,
        formed_here: bool,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let sequence = cert.sequence;
        self.stats.stable_checkpoints += 1;
        tracing::debug!(sequence, "checkpoint stable");
        match &self.config.replies {
            ReplyMode::Signed if formed_here => {
                out.push(ReplicaOutput::ToAgreement(ExecutionMessage::Stable(
                    cert.clone(),
                )));
            }
            ReplyMode::Signed => {}
            // Only a replica that holds the certified state vouches for it.
            ReplyMode::Threshold(_) if self.own.get(&sequence) == Some(&cert.state_digest) => {
                self.send_stable_share(sequence, out);
            }
            ReplyMode::Threshold(_) => {}
        }
        let served = self.served.remove(&sequence).unwrap_or_default();
        self.served = self.served.split_off(&sequence);
        for peer in served {
            out.push(ReplicaOutput::ToExecution {
                to: Some(peer),
                message: ExecutionMessage::Stable(cert.clone()),
            });
        }
        // A peer that voted above this checkpoint and above where this replica stands
        // may have restarted ahead of the cluster and missed the votes that made it
        // (they went out while it was down): it must learn it to go back to it (the
        // divergence below). The same when such a vote arrives later
        // (`on_checkpoint`). In steady operation peers vote above a replica only while
        // it is behind them, and a certificate they hold already costs them nothing.
        let last = self.last_applied();
        for peer in self.votes.ahead_of(sequence.max(last)) {
            if peer != self.config.id {
                out.push(ReplicaOutput::ToExecution {
                    to: Some(peer),
                    message: ExecutionMessage::Stable(cert.clone()),
                });
            }
        }
        self.votes.collect(sequence);
        match self.own.get(&sequence) {
            Some(d) if *d != cert.state_digest => {
                self.stats.divergences += 1;
                self.divergent = true;
                tracing::warn!(
                    replica = self.config.id,
                    sequence,
                    "own checkpoint differs from the stable one: divergent, fetching state"
                );
            }
            // Past a stable checkpoint this replica holds no digest of: after the whole
            // cluster stopped at once, that is a restart checkpoint below where this
            // replica resumed ([`Self::start`]). Its batches past it were executed by
            // fewer than g+1 replicas and agreement, which forgot them, orders other
            // batches there: executing on would answer from a state no correct replica
            // shares (a correct replica acting as a faulty one, which together with one
            // faulty replica is g+1 wrong answers). So it takes the stable state now.
            // Without a cluster restart this needs a replica that restarted after
            // passing a checkpoint that became stable only later: a state transfer it
            // did not need, never a wrong answer.
            None if sequence < self.last_applied() => {
                self.stats.divergences += 1;
                self.divergent = true;
                tracing::warn!(
                    replica = self.config.id,
                    sequence,
                    last_applied = self.last_applied(),
                    "past a stable checkpoint without a digest of it (restarted ahead of the \
                     cluster): divergent, fetching state"
                );
            }
            _ => {}
        }
        self.stable.insert(sequence, cert);
        while self.stable.len() > RECENT_STABLE {
            self.stable.pop_first();
        }
        self.prune_snapshots();
        self.maybe_start_transfer(out);
        self.try_install(out);
        self.update_fetch_timer(out);
    }

    // ---- state transfer (TOCS §5.3.2) ----

    /// Starts a state transfer if this replica cannot reach the latest stable checkpoint
    /// by executing orders: it diverged, the checkpoint is beyond what it may buffer, or
    /// fetching orders failed repeatedly.
    fn maybe_start_transfer(&mut self, out: &mut Vec<ReplicaOutput>) {
        if self.transfer.is_some() {
            return;
        }
        let last = self.last_applied();
        let stuck = self.fetch.attempts >= FETCH_ATTEMPTS_BEFORE_TRANSFER;
        let needed = match self.stable.values().next_back() {
            Some(cert) if cert.sequence > last || self.divergent => {
                self.divergent
                    || cert.sequence > last.saturating_add(self.config.max_ahead)
                    || stuck
            }
            // No known stable checkpoint beyond us, yet orders cannot be fetched: the
            // certificate that let agreement drop them may never have reached us (lost
            // checkpoint messages, or we were down). Ask every peer for a state beyond
            // us; each answers with its latest stable snapshot and its certificate.
            _ => stuck && self.has_gap(),
        };
        if !needed {
            return;
        }
        self.transfer = Some(Transfer::default());
        self.stats.state_transfers_started += 1;
        tracing::info!(
            replica = self.config.id,
            last,
            stable = self.stable_sequence(),
            "starting state transfer"
        );
        self.send_fetch_state(out);
    }

    /// Asks for the state, with our leaves: the signers of the latest stable checkpoint
    /// for that one, or, if none is known beyond our state, every peer for any stable
    /// state beyond it.
    fn send_fetch_state(&mut self, out: &mut Vec<ReplicaOutput>) {
        let me = self.config.id;
        let last = self.last_applied();
        let (sequence, peers): (Sequence, BTreeSet<ExecReplicaId>) =
            match self.stable.values().next_back() {
                Some(cert) if cert.sequence > last || self.divergent => (
                    cert.sequence,
                    cert.signatures
                        .iter()
                        .map(|s| s.message.replica)
                        .filter(|r| *r != me)
                        .collect(),
                ),
                _ => (
                    last.saturating_add(1),
                    (0..self.n())
                        .filter_map(|r| u32::try_from(r).ok())
                        .filter(|r| *r != me)
                        .collect(),
                ),
            };
        let have: Vec<(u64, [u8; 32])> = match self.fs.leaf_hashes() {
            // A longer list is cut: the responder then also sends inodes we hold, which
            // costs bytes but not correctness.
            Ok(leaves) => leaves.into_iter().take(MAX_FETCH_HAVE).collect(),
            Err(e) => {
                self.stats.storage_errors += 1;
                tracing::warn!(error = %e, "leaf hashes unreadable: asking for the full state");
                Vec::new()
            }
        };
        let exponent = self.transfer.as_ref().map_or(0, |t| t.backoff);
        let after = self.backoff(exponent);
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        for peer in &peers {
            out.push(ReplicaOutput::ToExecution {
                to: Some(*peer),
                message: ExecutionMessage::FetchState {
                    sequence,
                    have: have.clone(),
                },
            });
        }
        transfer.asked.extend(peers);
        transfer.backoff = (transfer.backoff + 1).min(MAX_BACKOFF);
        out.push(ReplicaOutput::SetTimer {
            kind: ExecTimer::FetchState,
            after,
        });
    }

    fn on_state_timer(&mut self, out: &mut Vec<ReplicaOutput>) {
        if self.transfer.is_some() {
            self.stats.state_transfers_started += 1;
            self.send_fetch_state(out);
        }
    }

    fn on_fetch_state(
        &mut self,
        from: ExecReplicaId,
        sequence: Sequence,
        have: Vec<(u64, [u8; 32])>,
        out: &mut Vec<ReplicaOutput>,
    ) {
        self.stats.state_requests += 1;
        // Answer at once from the last checkpoint's snapshot if it is at least as new as
        // the stable checkpoint the asker wants (an older one would leave it below the
        // orders agreement still keeps), a bounded number of times per peer and
        // snapshot (a re-ask after lost chunks is normal; more is a peer making us
        // export over and over).
        // The newest snapshot at or above the asked sequence that is stable here (an
        // asker can install only a certified state); else the one at exactly the asked
        // sequence, which an asker names when it holds that checkpoint's stable
        // certificate (see `send_fetch_state`) — this replica may not know it is stable
        // (it missed the certificate) and may have moved past it, and a newer snapshot
        // that only it holds could never be certified; else the newest at or above it.
        let stable = &self.stable;
        let chosen = self
            .snapshots
            .range(sequence..)
            .rev()
            .find(|(s, _)| stable.contains_key(s))
            .or_else(|| self.snapshots.get_key_value(&sequence))
            .or_else(|| self.snapshots.range(sequence..).next_back())
            .map(|(s, _)| *s);
        let now = match chosen.and_then(|s| self.snapshots.get_mut(&s)) {
            Some(kept) => {
                let answered = kept.answered.entry(from).or_insert(0);
                if *answered < MAX_ANSWERS_PER_SNAPSHOT {
                    *answered += 1;
                    true
                } else {
                    self.stats.state_requests_deferred += 1;
                    false
                }
            }
            None => false,
        };
        if now {
            tracing::debug!(
                from,
                sequence,
                "state requested: answering from the snapshot"
            );
            self.serve_state(from, chosen, have, out);
            return;
        }
        tracing::debug!(
            from,
            sequence,
            "state requested: answering at the next checkpoint"
        );
        // One pending request per peer: a newer one replaces it.
        self.state_requests.insert(from, have);
    }

    /// Freezes the state just reached (a checkpoint, or an installed stable one) with
    /// its exactly-once table, replacing the previous snapshot. Without one (storage
    /// error), state requests wait for the next checkpoint as before.
    fn keep_snapshot(&mut self) {
        let sequence = self.last_applied();
        match self.fs.snapshot() {
            Ok(fs) => {
                self.snapshots.insert(
                    sequence,
                    KeptSnapshot {
                        fs,
                        clients: self.executed.to_records(),
                        replies: self.reply_leaves.to_records(),
                        answered: BTreeMap::new(),
                    },
                );
                self.prune_snapshots();
            }
            Err(e) => {
                self.stats.storage_errors += 1;
                tracing::warn!(sequence, error = %e, "snapshot failed: state requests wait for the next checkpoint");
            }
        }
    }

    /// Drops snapshots below the latest stable checkpoint, then the oldest beyond
    /// [`MAX_SNAPSHOTS`] (a durable store keeps the pages of each one alive).
    fn prune_snapshots(&mut self) {
        let stable = self.stable_sequence();
        self.snapshots = self.snapshots.split_off(&stable);
        while self.snapshots.len() > MAX_SNAPSHOTS {
            self.snapshots.pop_first();
        }
    }

    /// Answers every pending state request (called right after a checkpoint).
    fn serve_state_requests(&mut self, out: &mut Vec<ReplicaOutput>) {
        let requests = std::mem::take(&mut self.state_requests);
        let last = self.last_applied();
        let current = self.snapshots.contains_key(&last).then_some(last);
        for (peer, have) in requests {
            self.serve_state(peer, current, have, out);
        }
    }

    /// Exports the snapshot at `snapshot` (or, if there is none, the current state,
    /// which is then exactly the checkpoint just taken) as the difference against the asker's leaves,
    /// cut into chunks, and sends the stable certificate of that sequence if known
    /// (else once it forms).
    fn serve_state(
        &mut self,
        peer: ExecReplicaId,
        snapshot: Option<Sequence>,
        have: Vec<(u64, [u8; 32])>,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let have: BTreeMap<u64, [u8; 32]> = have.into_iter().collect();
        let kept = snapshot.and_then(|s| self.snapshots.get(&s));
        let (sequence, exported, clients, replies) = match kept {
            Some(kept) => (
                kept.fs.last_applied(),
                kept.fs.export_checkpoint(Some(&have)),
                kept.clients.clone(),
                kept.replies.clone(),
            ),
            None => (
                self.last_applied(),
                self.fs.export_checkpoint(Some(&have)),
                self.executed.to_records(),
                self.reply_leaves.to_records(),
            ),
        };
        let checkpoint = match exported {
            Ok(c) => c,
            Err(e) => {
                self.stats.storage_errors += 1;
                tracing::warn!(peer, error = %e, "state export failed");
                return;
            }
        };
        let snapshot = ReplicaSnapshot {
            checkpoint,
            clients,
            replies,
        };
        let Some(chunks) = chunk(sequence, &snapshot) else {
            self.stats.state_too_large += 1;
            tracing::warn!(peer, sequence, "state too large to transfer: refused");
            return;
        };
        self.stats.state_transfers_served += 1;
        for message in chunks {
            out.push(ReplicaOutput::ToExecution {
                to: Some(peer),
                message,
            });
        }
        if let Some(cert) = self.stable.get(&sequence) {
            out.push(ReplicaOutput::ToExecution {
                to: Some(peer),
                message: ExecutionMessage::Stable(cert.clone()),
            });
            return;
        }
        self.served.entry(sequence).or_default().insert(peer);
        while self.served.len() > RECENT_STABLE {
            self.served.pop_first();
        }
    }

    fn on_state_chunk(
        &mut self,
        from: ExecReplicaId,
        sequence: Sequence,
        index: u32,
        count: u32,
        data: Vec<u8>,
        out: &mut Vec<ReplicaOutput>,
    ) {
        let floor = self.transfer_floor();
        let Some(transfer) = self.transfer.as_mut() else {
            self.stats.unsolicited_state += 1;
            tracing::debug!(from, sequence, "state chunk without a transfer: dropped");
            return;
        };
        if !transfer.asked.contains(&from) || sequence <= floor {
            self.stats.unsolicited_state += 1;
            tracing::debug!(from, sequence, "state chunk not asked for: dropped");
            return;
        }
        match transfer.add_chunk(from, sequence, index, count, data) {
            Ok(true) => self.try_install(out),
            Ok(false) => {}
            Err(e) => {
                self.stats.bad_state += 1;
                if e == super::transfer::ChunkError::TooLarge {
                    self.stats.state_too_large += 1;
                }
                tracing::debug!(from, sequence, error = ?e, "state chunk refused");
            }
        }
    }

    /// Snapshots at or below this sequence are of no use to a state transfer: those at
    /// or below what this replica executed, unless its state is wrong (divergent). Then
    /// the newest stable state is what it needs, even below where it stands (a
    /// replica that diverged, or resumed ahead of a restart checkpoint, goes back to
    /// it rather than wait for the next checkpoint beyond it).
    fn transfer_floor(&self) -> Sequence {
        let last = self.last_applied();
        match self.stable.keys().next_back() {
            Some(newest) if self.divergent => newest.saturating_sub(1).min(last),
            _ => last,
        }
    }

    /// Installs a complete snapshot for which a stable certificate is known, after
    /// checking that it reproduces the certified digest.
    fn try_install(&mut self, out: &mut Vec<ReplicaOutput>) {
        let floor = self.transfer_floor();
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        transfer.drop_upto(floor);
        let candidates: Vec<(ExecReplicaId, Sequence)> = transfer
            .ready
            .iter()
            .filter(|(_, (s, _))| self.stable.contains_key(s))
            .map(|(p, (s, _))| (*p, *s))
            .collect();
        for (peer, sequence) in candidates {
            let Some((_, snapshot)) = self.transfer.as_mut().and_then(|t| t.ready.remove(&peer))
            else {
                continue;
            };
            let Some(cert) = self.stable.get(&sequence) else {
                continue;
            };
            let expected = cert.state_digest;
            match self.install(sequence, expected, &snapshot) {
                Ok(()) => {
                    self.stats.state_transfers_completed += 1;
                    tracing::info!(
                        replica = self.config.id,
                        sequence,
                        from = peer,
                        "state transfer installed"
                    );
                    self.transfer = None;
                    self.divergent = false;
                    // The installed state is a stable checkpoint: serve it too.
                    self.keep_snapshot();
                    self.buffered = self.buffered.split_off(&sequence.saturating_add(1));
                    self.replies.clear();
                    self.peer_replies.clear();
                    self.firewall.clear();
                    self.own.insert(sequence, expected);
                    self.fetch = Fetch::default();
                    out.push(ReplicaOutput::CancelTimer(ExecTimer::FetchState));
                    out.push(ReplicaOutput::CancelTimer(ExecTimer::FetchOrders));
                    // Continue from sequence+1 (orders above the stable checkpoint are
                    // still in agreement's delivery log).
                    out.push(ReplicaOutput::ToAgreement(ExecutionMessage::FetchOrders {
                        from: sequence.saturating_add(1),
                    }));
                    self.stats.fetch_orders_sent += 1;
                    self.execute_ready(out);
                    return;
                }
                Err(e) => {
                    self.stats.bad_state += 1;
                    if matches!(e, ExecError::Storage(_)) {
                        // As after a failed batch: let the durable store reopen.
                        self.snapshots.clear();
                    }
                    tracing::warn!(from = peer, sequence, error = %e, "transferred state refused");
                }
            }
        }
    }

    fn install(
        &mut self,
        sequence: Sequence,
        expected: Digest,
        snapshot: &ReplicaSnapshot,
    ) -> Result<(), ExecError> {
        if snapshot.checkpoint.last_applied != sequence {
            return Err(ExecError::BadCheckpoint(
                "snapshot of another sequence".into(),
            ));
        }
        let table = ExecutedTable::from_records(
            &snapshot.clients,
            CLIENT_WINDOW,
            self.config.client_keys.len(),
        )?;
        let leaves =
            ReplyLeaves::from_records(&snapshot.replies, sequence, leaves_window(&self.config))?;
        // The claimed digests must combine to the certified one before anything changes;
        // import_checkpoint then proves the file system really reaches its claimed digest.
        if combined(&snapshot.checkpoint.digest, &table, &leaves) != expected {
            return Err(ExecError::DigestMismatch);
        }
        // The records are stored in the same commit as the file system they belong to.
        self.fs.import_checkpoint_with_records(
            &snapshot.checkpoint,
            &snapshot.clients,
            &snapshot.replies,
        )?;
        self.executed = table;
        self.reply_leaves = leaves;
        Ok(())
    }

    // ---- messages from execution peers ----

    fn on_message(
        &mut self,
        from: ExecReplicaId,
        message: ExecutionMessage,
        out: &mut Vec<ReplicaOutput>,
    ) {
        if let Err(e) = message.check_bounds() {
            self.stats.malformed_messages += 1;
            tracing::debug!(from, error = %e, "message out of bounds: dropped");
            return;
        }
        let peer_ok = from != self.config.id && usize::try_from(from).is_ok_and(|f| f < self.n());
        let signed = matches!(self.config.replies, ReplyMode::Signed);
        match message {
            ExecutionMessage::Order { batch, certificate } => {
                self.on_order(batch, certificate, out)
            }
            ExecutionMessage::Checkpoint(signed) => self.on_checkpoint(signed, out),
            ExecutionMessage::Stable(cert) => self.on_stable(cert, out),
            ExecutionMessage::FetchState { sequence, have } if peer_ok => {
                self.on_fetch_state(from, sequence, have, out)
            }
            ExecutionMessage::State {
                sequence,
                index,
                count,
                data,
            } if peer_ok => self.on_state_chunk(from, sequence, index, count, data, out),
            ExecutionMessage::FetchReplies { sequence, requests } if peer_ok && signed => {
                self.on_fetch_replies(from, sequence, requests, out)
            }
            ExecutionMessage::ReplyBody { sequence, entry } if peer_ok && signed => {
                self.on_peer_reply(from, sequence, entry, out)
            }
            other => {
                self.stats.malformed_messages += 1;
                tracing::debug!(from, message = ?std::mem::discriminant(&other), "unexpected message: dropped");
            }
        }
    }
}
