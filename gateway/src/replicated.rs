//! `ReplicatedFileService`: the gateway's [`FileService`] over the BFT client core
//! ([`palisade_client::Client`]) — each file-system operation becomes a signed request
//! multicast to every agreement replica, and its result is the one g+1 execution
//! replicas agree on (Yin et al., SOSP 2003, §3; Castro–Liskov TOCS §4.1).
//!
//! Two configurations (DESIGN §1):
//! - `separate`: execution replicas answer with ed25519-signed replies
//!   (`Envelope::Reply` from execution nodes) and the core waits for g+1 matching ones
//!   ([`Acceptance::Matching`]); an operation that only reads goes to the execution
//!   replicas unordered first and completes on all 2g+1 equal answers
//!   (`palisade_client::read_only`, TOCS §5.1.3), else it is ordered;
//! - firewall: replies come up through the filter rows and an agreement node as
//!   `Envelope::Firewall(CertifiedReply)`, each certified by the execution cluster's
//!   combined threshold signature ([`Acceptance::Certified`]); one such reply completes a
//!   request.
//!
//! With a [`BodyKey`] (issue 4 §3), every operation is sealed for the execution cluster
//! before it becomes a request (agreement nodes and filters see only ciphertext), and
//! every agreed result is opened before it is decoded. Sealing and opening happen in the
//! caller's task, not in the driver, so that they run in parallel across NFS calls.
//!
//! One driver task owns the client core: it submits operations, feeds replies and the
//! retransmission timer, and carries out the core's sends over the authenticated links.
//! When the core's window of requests in flight is full (`Busy`), operations wait in a
//! bounded queue and go out as earlier ones complete; beyond that, callers wait on the
//! bounded command channel (back-pressure up to the NFS front end).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use palisade_client::{
    Acceptance, Client, ClientConfig, ClientInput, ClientOutput, ClientStats, ClientTimer,
};
use palisade_crypto::BodyKey;
use palisade_net::{Envelope, Inbound, Network, NodeId};
use palisade_wire::agreement::ClientId;
use palisade_wire::firewall::FirewallMessage;
use palisade_wire::fs::{FsError, FsOp, FsResult};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info_span, warn};

use crate::file_service::FileService;

/// Operations waiting for a free slot in the client's window.
const MAX_WAITING: usize = 4096;
/// Capacity of the command channel from callers to the driver.
const COMMANDS: usize = 1024;

/// Counters of a [`ReplicatedFileService`].
#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    completed: AtomicU64,
    busy: AtomicU64,
    refused: AtomicU64,
    undecodable_results: AtomicU64,
    unsealable_results: AtomicU64,
    unexpected_messages: AtomicU64,
    /// The client core's own counters (what it refused, by reason), copied after each
    /// step that received something.
    client: Mutex<ClientStats>,
}

/// A copy of the service's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplicatedStats {
    /// Operations handed to the client core (accepted into its window).
    pub submitted: u64,
    /// Operations answered with a result g+1 execution replicas agreed on.
    pub completed: u64,
    /// Times the window was full and an operation had to wait.
    pub busy: u64,
    /// Operations the core refused outright (too large to send); answered `Io`.
    pub refused: u64,
    /// Agreed results that did not decode as an `FsResult`; answered `Io`.
    pub undecodable_results: u64,
    /// Agreed results that did not open with the body key; answered `Io`.
    pub unsealable_results: u64,
    /// Link messages that are neither signed replies from execution nodes nor certified
    /// replies from agreement nodes; dropped. (Replies of the kind the configured
    /// acceptance does not use reach the core, which counts them.)
    pub unexpected_messages: u64,
}

/// A result the client core accepted, before it is opened and decoded.
struct Agreed {
    request_id: u64,
    sequence: u64,
    result: Vec<u8>,
    /// Answered by all 2g+1 execution replicas without ordering (sealed under the
    /// read-only label).
    read_only: bool,
}

/// An operation for the driver: its payload, whether it only reads, where to answer.
struct Call {
    payload: Vec<u8>,
    read_only: bool,
    reply: oneshot::Sender<Agreed>,
}

enum Command {
    Call(Call),
}

/// The replicated file service of one gateway (one BFT client id).
pub struct ReplicatedFileService {
    id: ClientId,
    body_key: Option<BodyKey>,
    tx: mpsc::Sender<Command>,
    closed: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
    net: Arc<Network>,
    counters: Arc<Counters>,
}

impl ReplicatedFileService {
    /// Starts the driver. `net` is this gateway's network (its node id is the client id)
    /// and `inbound` its receiving end; `agreement` are the agreement replicas' ids.
    /// `body_key`: seal operations for the execution cluster and open its results (it
    /// must then hold the same key); `None` sends and accepts plaintext.
    pub fn start(
        config: ClientConfig,
        key: SigningKey,
        net: Arc<Network>,
        inbound: mpsc::Receiver<Inbound>,
        agreement: Vec<NodeId>,
        body_key: Option<BodyKey>,
    ) -> ReplicatedFileService {
        let id = config.id;
        let (tx, rx) = mpsc::channel(COMMANDS);
        let counters = Arc::new(Counters::default());
        let execution = (0..config.exec_keys.len())
            .filter_map(|i| u32::try_from(i).ok())
            .map(NodeId::Execution)
            .collect();
        let driver = Driver {
            id: config.id,
            client: Client::new(config, key),
            net: net.clone(),
            agreement,
            execution,
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            retransmit_at: None,
            vouch_at: None,
            read_at: None,
            epoch: Instant::now(),
            counters: counters.clone(),
            span: info_span!("gateway", node = id),
        };
        let task = tokio::spawn(driver.run(rx, inbound));
        ReplicatedFileService {
            id,
            body_key,
            tx,
            closed: AtomicBool::new(false),
            task: Mutex::new(Some(task)),
            net,
            counters,
        }
    }

    /// The client core's counters: replies counted, and refused by reason (bad
    /// signatures or certificates, unknown requests, wrong kind, ...).
    pub fn client_stats(&self) -> ClientStats {
        match self.counters.client.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn stats(&self) -> ReplicatedStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReplicatedStats {
            submitted: l(&c.submitted),
            completed: l(&c.completed),
            busy: l(&c.busy),
            refused: l(&c.refused),
            undecodable_results: l(&c.undecodable_results),
            unsealable_results: l(&c.unsealable_results),
            unexpected_messages: l(&c.unexpected_messages),
        }
    }

    /// The gateway's links (for their counters).
    pub fn network(&self) -> &Arc<Network> {
        &self.net
    }

    /// Stops the driver and closes the links; operations still waiting are answered `Io`.
    /// Idempotent.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let task = match self.task.lock() {
            Ok(mut t) => t.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
        self.net.close().await;
    }
}

#[async_trait]
impl FileService for ReplicatedFileService {
    async fn call(&self, op: FsOp) -> FsResult {
        if self.closed.load(Ordering::SeqCst) {
            return Err(FsError::Io);
        }
        let payload = self.payload(&op)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let call = Call {
            payload,
            read_only: op.is_read_only(),
            reply: reply_tx,
        };
        if self.tx.send(Command::Call(call)).await.is_err() {
            return Err(FsError::Io);
        }
        // A dropped sender: the driver stopped, or the core refused the operation.
        let agreed = reply_rx.await.map_err(|_| FsError::Io)?;
        self.answer(agreed)
    }

    /// Every GETATTR is a request to the replicas here (unordered in `separate`, but
    /// still a round trip to all of them): not worth making for optional
    /// cache-consistency attributes.
    fn cheap_getattr(&self) -> bool {
        false
    }
}

impl ReplicatedFileService {
    /// The request payload of `op`: its canonical encoding, sealed for the execution
    /// cluster when a body key is set (random nonce; the client id is bound to it).
    fn payload(&self, op: &FsOp) -> Result<Vec<u8>, FsError> {
        let bytes = palisade_wire::encode(op).map_err(|e| {
            warn!(error = %e, "operation does not encode; answering IO");
            FsError::Io
        })?;
        Ok(match &self.body_key {
            Some(key) => key.seal_request(self.id, &bytes, &mut rand::rng()),
            None => bytes,
        })
    }

    /// The answer to an operation from its agreed result: opened with the body key (the
    /// execution cluster sealed it for this client and this request, and an ordered one
    /// for its sequence too), then decoded. Either failing is `Io`, counted.
    fn answer(&self, agreed: Agreed) -> FsResult {
        let Agreed {
            request_id,
            sequence,
            result,
            read_only,
        } = agreed;
        let opened = self.body_key.as_ref().map(|key| match read_only {
            true => key.open_read_reply(self.id, request_id, &result),
            false => key.open_reply(sequence, self.id, request_id, &result),
        });
        let plain = match opened {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                self.counters
                    .unsealable_results
                    .fetch_add(1, Ordering::Relaxed);
                warn!(client = self.id, request_id, sequence, error = %e, "agreed result does not open");
                return Err(FsError::Io);
            }
            None => result,
        };
        palisade_wire::decode::<FsResult>(&plain).unwrap_or_else(|e| {
            self.counters
                .undecodable_results
                .fetch_add(1, Ordering::Relaxed);
            warn!(client = self.id, request_id, sequence, error = %e, "agreed result does not decode");
            Err(FsError::Io)
        })
    }
}

struct Driver {
    id: u64,
    client: Client,
    net: Arc<Network>,
    agreement: Vec<NodeId>,
    /// The execution replicas (`separate`: read-only requests go straight to them).
    execution: Vec<NodeId>,
    pending: HashMap<u64, oneshot::Sender<Agreed>>,
    waiting: VecDeque<Call>,
    retransmit_at: Option<Instant>,
    /// When the client core's vouch timer fires, if armed.
    vouch_at: Option<Instant>,
    /// When the client core's read-only timer fires, if armed.
    read_at: Option<Instant>,
    epoch: Instant,
    counters: Arc<Counters>,
    /// The span of the client core's log lines, made once: a span costs a formatted
    /// string, and one per step was measurable (`palisade_node`'s `StepSpan`).
    span: tracing::Span,
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inbound: mpsc::Receiver<Inbound>,
    ) {
        loop {
            let room = self.waiting.len() < MAX_WAITING;
            tokio::select! {
                c = commands.recv(), if room => match c {
                    Some(Command::Call(call)) => {
                        self.waiting.push_back(call);
                        self.submit_waiting();
                    }
                    None => return,
                },
                m = inbound.recv() => match m {
                    Some(m) => self.on_inbound(m),
                    None => return,
                },
                _ = crate::replicated::sleep_until(self.retransmit_at) => {
                    self.retransmit_at = None;
                    self.step(ClientInput::Timer(ClientTimer::Retransmit));
                }
                _ = crate::replicated::sleep_until(self.vouch_at) => {
                    self.vouch_at = None;
                    self.step(ClientInput::Timer(ClientTimer::Vouch));
                }
                _ = crate::replicated::sleep_until(self.read_at) => {
                    self.read_at = None;
                    self.step(ClientInput::Timer(ClientTimer::ReadOnly));
                }
            }
        }
    }

    /// Submits waiting operations until the window is full.
    fn submit_waiting(&mut self) {
        while let Some(call) = self.waiting.pop_front() {
            let payload = call.payload.clone();
            let outputs = self.client_step(match call.read_only {
                true => ClientInput::SubmitRead { payload },
                false => ClientInput::Submit { payload },
            });
            let mut accepted = None;
            let mut busy = false;
            let mut refused = false;
            let mut rest = Vec::new();
            for o in outputs {
                match o {
                    ClientOutput::Accepted { request_id } => accepted = Some(request_id),
                    ClientOutput::Busy => busy = true,
                    ClientOutput::Refused { reason } => {
                        warn!(
                            client = self.id,
                            reason, "operation refused by the client core"
                        );
                        refused = true;
                    }
                    other => rest.push(other),
                }
            }
            if let Some(id) = accepted {
                // Phase events (`scripts/phases.py`): where one operation's time goes.
                tracing::trace!(target: "palisade::phase", request_id = id, "submitted");
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                self.pending.insert(id, call.reply);
            } else if refused {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                // Dropping the sender answers the caller `Io`.
                drop(call);
            } else if busy {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                self.waiting.push_front(call);
            }
            for o in rest {
                self.carry_out(o);
            }
            if busy {
                return;
            }
        }
    }

    fn on_inbound(&mut self, Inbound { from, envelope }: Inbound) {
        let input = match (from, envelope) {
            // The Noise link names its peer: the core counts a reply from the replica it
            // names without checking its signature.
            (NodeId::Execution(from), Envelope::Reply(reply)) => {
                ClientInput::LinkReply { from, reply }
            }
            // An answer to a read-only request: unsigned, so only over its replica's link.
            (NodeId::Execution(from), Envelope::ReadOnlyReply(reply)) => {
                ClientInput::ReadOnlyReply { from, reply }
            }
            // Firewall configuration: certified replies leave the top filter row to the
            // agreement nodes, which pass them on; the signature, not the sender, is
            // what the core checks.
            (NodeId::Agreement(_), Envelope::Firewall(FirewallMessage::CertifiedReply(c))) => {
                ClientInput::Certified(c)
            }
            // ...and vouch for the claims every top filter sent them; here the sender
            // counts (f+1 distinct agreement nodes), and the link names it.
            (NodeId::Agreement(i), Envelope::Firewall(FirewallMessage::Vouch(vouch))) => {
                ClientInput::Vouch { from: i, vouch }
            }
            (from, e) => {
                self.counters
                    .unexpected_messages
                    .fetch_add(1, Ordering::Relaxed);
                debug!(client = self.id, %from, kind = e.kind(), "unexpected message dropped");
                return;
            }
        };
        self.step(input);
        if !self.waiting.is_empty() {
            self.submit_waiting();
        }
    }

    fn publish_client_stats(&self) {
        let stats = self.client.stats().clone();
        match self.counters.client.lock() {
            Ok(mut s) => *s = stats,
            Err(p) => *p.into_inner() = stats,
        }
    }

    fn client_step(&mut self, input: ClientInput) -> Vec<ClientOutput> {
        let now = self.epoch.elapsed();
        let _enter = self.span.enter();
        self.client.step(input, now)
    }

    fn step(&mut self, input: ClientInput) {
        let outputs = self.client_step(input);
        // Before any caller is answered, so that its answer never runs ahead of the
        // counters it can read.
        self.publish_client_stats();
        for o in outputs {
            self.carry_out(o);
        }
    }

    fn carry_out(&mut self, output: ClientOutput) {
        match output {
            ClientOutput::SendRequest { to: None, request } => {
                self.net
                    .send_many(self.agreement.iter().copied(), &Envelope::Request(request));
            }
            ClientOutput::SendRequest {
                to: Some(r),
                request,
            } => {
                self.net
                    .send(NodeId::Agreement(r), &Envelope::Request(request));
            }
            ClientOutput::RepliedThrough(sequence) => {
                self.net.send_many(
                    self.agreement.iter().copied(),
                    &Envelope::RepliedThrough(sequence),
                );
            }
            ClientOutput::SendReadOnly { request, after } => {
                self.net.send_many(
                    self.execution.iter().copied(),
                    &Envelope::ReadOnly { request, after },
                );
            }
            ClientOutput::Complete {
                request_id,
                sequence,
                result,
            } => self.complete(request_id, sequence, result, false),
            ClientOutput::CompleteReadOnly {
                request_id,
                sequence,
                result,
            } => self.complete(request_id, sequence, result, true),
            ClientOutput::SetTimer { kind, after } => {
                let at = Some(Instant::now() + after);
                match kind {
                    ClientTimer::Retransmit => self.retransmit_at = at,
                    ClientTimer::Vouch => self.vouch_at = at,
                    ClientTimer::ReadOnly => self.read_at = at,
                }
            }
            ClientOutput::CancelTimer(ClientTimer::Retransmit) => self.retransmit_at = None,
            ClientOutput::CancelTimer(ClientTimer::Vouch) => self.vouch_at = None,
            ClientOutput::CancelTimer(ClientTimer::ReadOnly) => self.read_at = None,
            // Answered where the submission is made.
            ClientOutput::Accepted { .. } | ClientOutput::Busy | ClientOutput::Refused { .. } => {}
        }
    }

    fn complete(&mut self, request_id: u64, sequence: u64, result: Vec<u8>, read_only: bool) {
        self.counters.completed.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(target: "palisade::phase", request_id, sequence, read_only, "agreed");
        if let Some(reply) = self.pending.remove(&request_id) {
            // Opened and decoded in the caller's task (`answer`).
            let _ = reply.send(Agreed {
                request_id,
                sequence,
                result,
                read_only,
            });
        }
    }
}

/// How long a read-only request waits for all 2g+1 execution replicas' equal answers
/// before it is ordered (`palisade_client::read_only`). Answers normally come within a
/// millisecond; a replica still executing the write a read must see takes a few more.
pub const READ_ONLY_WAIT: Duration = Duration::from_millis(20);

/// How long a certified reply waits for f+1 agreement nodes to vouch for its claim before
/// the gateway checks the signature itself (`palisade_client::vouches`). The vouches
/// normally follow the reply within a millisecond.
pub const VOUCH_WAIT: Duration = Duration::from_millis(4);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// Default settings of a gateway's client core in the `separate` configuration (g+1
/// matching signed replies): a window of 256 requests, retransmission after 1 s (the
/// client backs off from there). The firewall configuration sets `acceptance` to
/// [`Acceptance::Certified`] with the execution cluster's threshold public key.
pub fn default_client_config(
    id: u64,
    g: usize,
    exec_keys: Vec<ed25519_dalek::VerifyingKey>,
    agreement_replicas: usize,
) -> ClientConfig {
    ClientConfig {
        id,
        g,
        exec_keys,
        agreement_replicas,
        window: 256,
        replay_window: palisade_client::REPLAY_WINDOW,
        retransmit_after: Duration::from_secs(1),
        // Microseconds since the epoch at start: ids keep increasing across restarts.
        first_request_id: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2)),
        acceptance: Acceptance::Matching,
        vouch_wait: VOUCH_WAIT,
        read_only_wait: READ_ONLY_WAIT,
    }
}
