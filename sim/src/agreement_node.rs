//! A simulated agreement node: the PBFT [`Replica`] plus the [`DeliveryLog`] that answers
//! execution replicas' fetches, exactly as the runtime composes them, with an optional
//! Byzantine wrapper.
//!
//! In the firewall configuration ([`FirewallSide`]) its "downstream" is the top filter
//! row instead of the execution replicas: replicas 0..=f push every delivered order to
//! every top-row filter (at least one of any f+1 is correct), every node re-sends orders
//! for a retransmitted delivered request and answers the top filters' `FetchOrders`. From
//! the top row it takes certified replies, which replicas 0..=f relay to the client they
//! name, and stable certificates, which garbage-collect its delivery log (one stable
//! interval back, as the filters do) and feed the replica's checkpoint protocol.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_agreement::{Config, DeliveryLog, Input, Output, Pushers, Replica};
use palisade_crypto::{verify_stable, ThresholdVerifier};
use palisade_firewall::{RelayDecision, ReplyRelay};
use palisade_wire::agreement::{Bounded, ClientId, Digest, OrderedBatch, ReplicaId, Sequence};
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::{CertifiedReply, FirewallMessage, StableCertificate};
use palisade_wire::fs::Timestamp;

use crate::byzantine::ByzantineState;
use crate::effect::{Effect, SimTimer};
use crate::message::{Msg, NodeId};
use crate::scenario::AgreementFault;

/// Seconds since the epoch at simulated time zero (any fixed value works).
pub const EPOCH_SECONDS: u64 = 1_700_000_000;

/// The simulated clock as the NFS-style timestamp the primary stamps batches with.
pub fn timestamp(now: Duration) -> Timestamp {
    let seconds = EPOCH_SECONDS.saturating_add(now.as_secs());
    Timestamp {
        seconds: u32::try_from(seconds).unwrap_or(u32::MAX),
        nanos: now.subsec_nanos(),
    }
}

/// Why a node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("agreement config: {0}")]
    Agreement(#[from] palisade_agreement::ConfigError),
    #[error("execution replica: {0}")]
    Execution(#[from] palisade_execution::ExecError),
}

/// When a simulated agreement node checks the pre-prepares it accepted over the
/// primary's link ([`Input::CheckDeferred`]): about a message delay after the step.
const CHECK_DEFERRED_AFTER: Duration = Duration::from_millis(1);

pub struct AgreementNode {
    pub id: ReplicaId,
    pub replica: Replica,
    pub log: DeliveryLog,
    pub fault: Option<AgreementFault>,
    config: Config,
    key: SigningKey,
    exec_keys: Vec<VerifyingKey>,
    g: usize,
    n_execution: usize,
    byzantine: ByzantineState,
    /// Highest stable execution checkpoint handed to the replica.
    last_stable: Sequence,
    /// The last fresh stable checkpoint and the digest fed with it: what the runtime
    /// records in its data directory, so it survives a restart. A restarted node
    /// awaits execution at or above it and vouches for it
    /// (`Input::RecordedCheckpoint`) until its low watermark reaches it.
    recorded: Option<(Sequence, Digest)>,
    /// Since the last restart: still vouching for `recorded`.
    vouching: bool,
    /// A `SimTimer::CheckDeferred` is pending.
    check_armed: bool,
    /// Restarted fresh and not yet delivering beyond this sequence (the committed order's
    /// end when it restarted): counts against f until it rejoined.
    pub rejoin_after: Option<Sequence>,
    /// (client, request id) → sequence of the delivered batch that holds it, for the
    /// batches still in the delivery log (see [`AgreementNode::forward_retransmission`]).
    delivered_requests: BTreeMap<(ClientId, u64), Sequence>,
    /// Orders re-sent because a client retransmitted a delivered request.
    pub orders_resent: u64,
    /// `ResendReply` rounds sent for retransmitted requests whose orders were collected.
    pub replies_asked: u64,
    /// The firewall configuration's part, if that is the configuration.
    pub firewall: Option<FirewallSide>,
}

/// An agreement node's side of the privacy firewall.
#[derive(Debug)]
pub struct FirewallSide {
    /// The top filter row: where orders go, and the only senders of certified replies,
    /// stable certificates and fetches it accepts.
    pub top_row: Vec<NodeId>,
    pub verifier: Arc<dyn ThresholdVerifier>,
    pub n_clients: usize,
    /// Whether this node pushes every delivered order and relays certified replies
    /// (replicas 0..=f do).
    pub pushes_orders: bool,
    /// Which certified replies were relayed since their client last asked (a
    /// retransmission clears them, so a relayed reply lost on the way is relayed
    /// again), once per signature, at most one signature per top filter.
    relayed: ReplyRelay,
    /// Certified replies relayed to clients.
    pub replies_relayed: u64,
    /// Firewall messages refused (bounds, unknown client, bad signature, wrong sender).
    pub refused: u64,
}

impl FirewallSide {
    pub fn new(
        top_row: Vec<NodeId>,
        verifier: Arc<dyn ThresholdVerifier>,
        n_clients: usize,
        pushes_orders: bool,
    ) -> FirewallSide {
        FirewallSide {
            relayed: ReplyRelay::new(top_row.len(), MAX_DELIVERED_INDEX),
            top_row,
            verifier,
            n_clients,
            pushes_orders,
            replies_relayed: 0,
            refused: 0,
        }
    }

    fn reset(&mut self) {
        self.relayed.clear();
    }
}

/// The state digest agreement's checkpoint protocol gets for a stable execution
/// checkpoint in the firewall configuration: agreement only needs 2f+1 replicas to name
/// the same value, and the real state digest never leaves the execution cluster.
pub fn firewall_stable_digest(sequence: Sequence) -> Digest {
    Digest::of(b"palisade/firewall/stable", &sequence.to_le_bytes())
}

/// Most (client, request id) → sequence entries kept (bounded like the delivery log).
const MAX_DELIVERED_INDEX: usize = 1 << 16;
/// Most orders re-sent for one retransmitted request.
const MAX_RESEND: usize = 8;
/// Interval of a restarted node's vouches for its recorded checkpoint (the runtime's
/// `RESUME_RETRY`).
const RESUME_VOUCH: Duration = Duration::from_millis(300);

impl AgreementNode {
    pub fn new(
        config: Config,
        key: SigningKey,
        exec_keys: Vec<VerifyingKey>,
        g: usize,
        fault: Option<AgreementFault>,
    ) -> Result<AgreementNode, NodeError> {
        let replica = Replica::new(config.clone(), key.clone())?;
        Ok(AgreementNode {
            id: config.id,
            replica,
            log: DeliveryLog::default(),
            fault,
            n_execution: exec_keys.len(),
            exec_keys,
            g,
            config,
            key,
            byzantine: ByzantineState::default(),
            last_stable: 0,
            recorded: None,
            vouching: false,
            check_armed: false,
            rejoin_after: None,
            delivered_requests: BTreeMap::new(),
            orders_resent: 0,
            replies_asked: 0,
            firewall: None,
        })
    }

    /// The firewall configuration: orders go to the top filter row.
    pub fn with_firewall(mut self, side: FirewallSide) -> AgreementNode {
        self.firewall = Some(side);
        self
    }

    /// Where delivered and re-sent orders go.
    /// Whether this node pushes every delivered order downstream and asks for replies
    /// again: replicas 0..=f, so that one correct replica does (as the runtime's
    /// `agreement_node`; in `separate` the execution replicas take an order once f+1
    /// of them pushed it).
    fn pushes_orders(&self) -> bool {
        match &self.firewall {
            Some(fw) => fw.pushes_orders,
            None => Pushers::new(self.config.f).is_pusher(self.id),
        }
    }

    /// Whether this node pushes the delivered `batch`: in `separate` a large batch goes
    /// from one pusher only ([`Pushers::pushes`], as the runtime's `agreement_node`).
    fn pushes(&self, batch: &OrderedBatch) -> bool {
        match &self.firewall {
            Some(fw) => fw.pushes_orders,
            None => Pushers::new(self.config.f).pushes(self.id, batch),
        }
    }

    fn downstream(&self) -> Vec<NodeId> {
        match &self.firewall {
            Some(fw) => fw.top_row.clone(),
            None => (0..self.n_execution as u32)
                .map(NodeId::Execution)
                .collect(),
        }
    }

    /// A crash and restart: PBFT state and the delivery log are not durable here (only
    /// the recorded stable checkpoint is), so the node starts fresh and rejoins
    /// through checkpoints and view changes.
    pub fn restart(&mut self, committed: Sequence) -> Result<(), NodeError> {
        self.rejoin_after = Some(committed);
        self.replica = Replica::new(self.config.clone(), self.key.clone())?;
        self.log = DeliveryLog::default();
        self.byzantine = ByzantineState::default();
        self.last_stable = 0;
        self.delivered_requests.clear();
        // As the node runtime after a restart on a used data directory: no proposal
        // until the execution replicas said where they stand (this node may be one of
        // a cluster restarted as a whole), at or above the recorded checkpoint.
        self.replica
            .await_execution(self.recorded.map_or(0, |(sequence, _)| sequence));
        self.vouching = self.recorded.is_some();
        self.check_armed = false;
        if let Some(fw) = &mut self.firewall {
            fw.reset();
        }
        Ok(())
    }

    /// The first clock reading after a (re)start, as the node runtime gives at once:
    /// the core then announces itself to its peers (a status message), so that one
    /// restarted into an idle cluster still learns the current view and what it missed.
    pub fn start(&mut self, now: Duration) -> Vec<Effect> {
        let mut effects = Vec::new();
        let tick = Input::Tick(self.clock(now));
        self.step(tick, now, &mut effects);
        self.vouch_for_recorded(now, &mut effects);
        effects
    }

    pub fn is_correct(&self) -> bool {
        self.fault.is_none()
    }

    /// True while a restarted replica has not delivered past where the order was when
    /// it restarted.
    pub fn recovering(&mut self) -> bool {
        if let Some(target) = self.rejoin_after {
            if self.replica.last_delivered() > target {
                self.rejoin_after = None;
            }
        }
        self.rejoin_after.is_some()
    }

    /// Feeds one input at simulated time `now`; returns its effects.
    pub fn on_message(&mut self, from: NodeId, msg: Msg, now: Duration) -> Vec<Effect> {
        let mut effects = Vec::new();
        match (from, msg) {
            (NodeId::Client(_), Msg::RepliedThrough(sequence)) => {
                self.step(Input::RepliedThrough(sequence), now, &mut effects);
            }
            (NodeId::Client(client), Msg::Request(request)) => {
                if let Some(AgreementFault::Censor { client: censored }) = &self.fault {
                    if *censored == client {
                        return effects;
                    }
                }
                let key = (request.message.client, request.message.request_id);
                let duplicates = self.replica.stats().requests_duplicate;
                // The simulated link is authenticated like the real one: a request from
                // the client it names needs no signature check on arrival.
                let input = if client == request.message.client {
                    Input::LinkRequest(request)
                } else {
                    Input::ClientRequest(request)
                };
                self.step(input, now, &mut effects);
                if self.replica.stats().requests_duplicate > duplicates {
                    if let Some(fw) = &mut self.firewall {
                        fw.relayed.forget(key.0, key.1);
                    }
                    self.forward_retransmission(key, &mut effects);
                }
            }
            (NodeId::Agreement(peer), Msg::Agreement(message)) => {
                if let Some(fault) = &self.fault {
                    self.byzantine.observe(fault, &message);
                }
                self.step(
                    Input::Message {
                        from: peer,
                        message,
                    },
                    now,
                    &mut effects,
                );
            }
            (NodeId::Execution(replica), Msg::Execution(message)) if self.firewall.is_none() => {
                self.on_execution(replica, message, now, &mut effects);
            }
            (NodeId::Filter(_), msg) if self.is_top_filter(from) => {
                self.on_top_filter(from, msg, now, &mut effects);
            }
            // Anything else is misrouted: a real node would drop it at the link layer.
            _ => {}
        }
        effects
    }

    pub fn on_timer(&mut self, timer: &SimTimer, now: Duration) -> Vec<Effect> {
        let mut effects = Vec::new();
        match timer {
            SimTimer::Agreement(kind) => self.step(Input::Timer(*kind), now, &mut effects),
            SimTimer::ResumeVouch => self.vouch_for_recorded(now, &mut effects),
            SimTimer::CheckDeferred => {
                self.check_armed = false;
                self.step(Input::CheckDeferred, now, &mut effects);
            }
            _ => {}
        }
        effects
    }

    /// After a restart, as the runtime's `vouch_for_resume_point`: vouch for the
    /// recorded checkpoint every `RESUME_VOUCH` until the low watermark reaches it.
    fn vouch_for_recorded(&mut self, now: Duration, effects: &mut Vec<Effect>) {
        let Some((sequence, state_digest)) = self.recorded.filter(|_| self.vouching) else {
            return;
        };
        if self.replica.low_watermark() >= sequence {
            self.vouching = false;
            return;
        }
        self.step(
            Input::RecordedCheckpoint {
                sequence,
                state_digest,
            },
            now,
            effects,
        );
        effects.push(Effect::SetTimer {
            timer: SimTimer::ResumeVouch,
            after: RESUME_VOUCH,
        });
    }

    /// Records a fresh stable checkpoint, as the runtime does in its data directory.
    fn record(&mut self, sequence: Sequence, state_digest: Digest) {
        if self.recorded.is_none_or(|(s, _)| sequence > s) {
            self.recorded = Some((sequence, state_digest));
        }
    }

    fn on_execution(
        &mut self,
        from: u32,
        message: ExecutionMessage,
        now: Duration,
        effects: &mut Vec<Effect>,
    ) {
        match message {
            ExecutionMessage::Stable(cert) => {
                let fresh = cert.sequence > self.last_stable;
                let awaited = self.replica.is_awaiting_execution();
                if !(fresh || awaited) || cert.verify(&self.exec_keys, self.g).is_err() {
                    return;
                }
                // A restarted core awaiting execution takes one at or below what this
                // node recorded too; only a fresh one collects.
                if fresh {
                    self.last_stable = cert.sequence;
                    self.record(cert.sequence, cert.state_digest);
                    self.log.collect(&cert);
                    self.delivered_requests.retain(|_, s| *s > cert.sequence);
                }
                self.step(
                    Input::StableCheckpoint {
                        sequence: cert.sequence,
                        state_digest: cert.state_digest,
                    },
                    now,
                    effects,
                );
            }
            ExecutionMessage::FetchOrders { from: sequence } => {
                for order in self.log.fetch(sequence) {
                    effects.push(Effect::Send {
                        to: NodeId::Execution(from),
                        msg: Msg::Execution(order),
                    });
                }
            }
            // Checkpoint votes are for execution peers; orders and state are not ours.
            _ => {}
        }
    }

    fn is_top_filter(&self, node: NodeId) -> bool {
        self.firewall
            .as_ref()
            .is_some_and(|fw| fw.top_row.contains(&node))
    }

    fn refuse(&mut self, why: &'static str, from: NodeId) {
        if let Some(fw) = &mut self.firewall {
            fw.refused += 1;
        }
        tracing::debug!(node = self.id, %from, why, "firewall message refused");
    }

    /// From a top-row filter: a certified reply to relay, a stable certificate, or a
    /// fetch of orders. Anything else is refused.
    fn on_top_filter(&mut self, from: NodeId, msg: Msg, now: Duration, effects: &mut Vec<Effect>) {
        match msg {
            Msg::Firewall(FirewallMessage::CertifiedReply(c)) => self.relay(from, c, effects),
            Msg::Firewall(FirewallMessage::Stable(s)) => self.on_stable(from, s, now, effects),
            Msg::Execution(ExecutionMessage::FetchOrders { from: sequence }) => {
                for order in self.log.fetch(sequence) {
                    effects.push(Effect::Send {
                        to: from,
                        msg: Msg::Execution(order),
                    });
                }
            }
            _ => self.refuse("unexpected message from a filter", from),
        }
    }

    /// Relays a certified reply to the client it names, once per request and signature
    /// (until the client asks again), as the real node does: bounds and a known client
    /// are checked here, the signature by the client ([`ReplyRelay`] says why), and a
    /// forging top filter cannot take a request's relay slot with garbage.
    fn relay(&mut self, from: NodeId, c: CertifiedReply, effects: &mut Vec<Effect>) {
        let Some(fw) = &mut self.firewall else {
            return;
        };
        if !fw.pushes_orders {
            // Replicas 0..=f relay (one of them is correct), as they push orders.
            return;
        }
        if c.entry.client as usize >= fw.n_clients {
            return self.refuse("certified reply for an unknown client", from);
        }
        let c = FirewallMessage::CertifiedReply(c);
        if c.check_bounds().is_err() {
            return self.refuse("certified reply out of bounds", from);
        }
        let FirewallMessage::CertifiedReply(c) = c else {
            return;
        };
        let NodeId::Filter(filter) = from else {
            return;
        };
        let (relay, vouch) = match fw.relayed.offer(filter, &c) {
            RelayDecision::Relay { vouch } => (true, vouch),
            RelayDecision::AlreadyRelayed { vouch } => (false, vouch),
            RelayDecision::TooManySignatures => {
                return self.refuse("more certified reply signatures than top filters", from)
            }
            RelayDecision::Malformed => {
                return self.refuse("certified reply with a broken audit path", from)
            }
        };
        let to = NodeId::Client(c.entry.client);
        if relay {
            fw.replies_relayed += 1;
            effects.push(Effect::Send {
                to,
                msg: Msg::Firewall(FirewallMessage::CertifiedReply(c)),
            });
        }
        if let Some(vouch) = vouch {
            effects.push(Effect::Send {
                to,
                msg: Msg::Firewall(FirewallMessage::Vouch(vouch)),
            });
        }
    }

    /// A threshold-signed stable certificate: what a verified ed25519 checkpoint
    /// certificate does in the `separate` configuration.
    fn on_stable(
        &mut self,
        from: NodeId,
        s: StableCertificate,
        now: Duration,
        effects: &mut Vec<Effect>,
    ) {
        let Some(fw) = &self.firewall else {
            return;
        };
        let awaited = self.replica.is_awaiting_execution();
        if s.sequence <= self.last_stable && !awaited {
            return;
        }
        if verify_stable(fw.verifier.as_ref(), &s).is_err() {
            return self.refuse("stable certificate that does not verify", from);
        }
        // Only a fresh one collects (a core awaiting execution takes an older one too).
        if s.sequence > self.last_stable {
            // Keep one stable interval back, as the filters do: a request whose reply
            // was lost just before its batch became stable (replies cross four hops
            // here, and checkpoints can come faster than a client retransmits) still has
            // its order, which a retransmission re-sends down so the cached certified
            // replies come up.
            let keep_from = self.last_stable;
            self.last_stable = s.sequence;
            self.record(s.sequence, firewall_stable_digest(s.sequence));
            self.log.collect_through(keep_from);
            self.delivered_requests.retain(|_, q| *q > keep_from);
        }
        self.step(
            Input::StableCheckpoint {
                sequence: s.sequence,
                state_digest: firewall_stable_digest(s.sequence),
            },
            now,
            effects,
        );
    }

    /// A client retransmitted a request this node already delivered: the core drops it as
    /// a duplicate, so without help an execution cluster that lost that batch's order
    /// (and saw no later one, so it cannot notice the gap) never executes it, and the
    /// client waits forever. The node re-sends the order of that batch and the ones after
    /// it (bounded) from its delivery log. Node-level glue around the pure core; the
    /// runtime's agreement node needs the same (found by the `partitions` scenario).
    fn forward_retransmission(&mut self, key: (ClientId, u64), effects: &mut Vec<Effect>) {
        let downstream = self.downstream();
        let orders: Vec<ExecutionMessage> = match self.delivered_requests.get(&key) {
            Some(&sequence) => self
                .log
                .fetch(sequence)
                .into_iter()
                .filter(|m| matches!(m, ExecutionMessage::Order { .. }))
                .take(MAX_RESEND)
                .collect(),
            None => Vec::new(),
        };
        if orders.is_empty() {
            // Its batch left the delivery log (a stable checkpoint collected it), or was
            // never delivered here: ask the execution replicas for their cached reply
            // instead, or through the firewall the top filters' reply caches (replicas
            // 0..=f ask, and relay what comes back).
            if self.pushes_orders() {
                self.replies_asked += 1;
                for to in &downstream {
                    effects.push(Effect::Send {
                        to: *to,
                        msg: Msg::Execution(ExecutionMessage::ResendReply {
                            client: key.0,
                            request_id: key.1,
                            sequence: self.delivered_requests.get(&key).copied(),
                        }),
                    });
                }
            }
            return;
        }
        for order in orders {
            self.orders_resent += 1;
            for to in &downstream {
                effects.push(Effect::Send {
                    to: *to,
                    msg: Msg::Execution(order.clone()),
                });
            }
        }
    }

    fn clock(&self, now: Duration) -> Timestamp {
        match &self.fault {
            Some(AgreementFault::BadTimestamp { ahead }) => timestamp(now.saturating_add(*ahead)),
            _ => timestamp(now),
        }
    }

    fn step(&mut self, input: Input, now: Duration, effects: &mut Vec<Effect>) {
        // The runtime reads its clock before each input; so does the simulator.
        let tick = self.clock(now);
        let mut outputs = self.replica.step(Input::Tick(tick));
        outputs.extend(self.replica.step(input));
        if self.replica.has_deferred_checks() && !self.check_armed {
            // The runtime checks right after the prepares left; here the check comes
            // after a delay of the order of a message's, so that the other backups'
            // prepares sometimes arrive first and the check runs inline, before the
            // commit (`Replica::pre_prepare_signature_holds`).
            self.check_armed = true;
            effects.push(Effect::SetTimer {
                timer: SimTimer::CheckDeferred,
                after: CHECK_DEFERRED_AFTER,
            });
        }
        let n = self.config.n() as ReplicaId;
        for output in outputs {
            match output {
                Output::Send { to, message } => self.send(to, message, effects),
                Output::Broadcast(message) => {
                    let me = self.id;
                    for to in (0..n).filter(|to| *to != me) {
                        self.send(to, message.clone(), effects);
                    }
                }
                Output::SetTimer { kind, after } => effects.push(Effect::SetTimer {
                    timer: SimTimer::Agreement(kind),
                    after,
                }),
                Output::CancelTimer(kind) => {
                    effects.push(Effect::CancelTimer(SimTimer::Agreement(kind)));
                }
                Output::Deliver { batch, certificate } => {
                    self.log.record(batch.clone(), certificate.clone());
                    for r in &batch.batch.requests {
                        if self.delivered_requests.len() >= MAX_DELIVERED_INDEX {
                            self.delivered_requests.pop_first();
                        }
                        self.delivered_requests
                            .insert((r.message.client, r.message.request_id), batch.sequence);
                    }
                    let downstream = if self.pushes(&batch) {
                        self.downstream()
                    } else {
                        Vec::new()
                    };
                    // A forging pusher pushes a batch it did not deliver, under the
                    // delivered batch's certificate.
                    let pushed = match (&self.fault, &self.firewall) {
                        (Some(AgreementFault::ForgeOrders), None) => OrderedBatch {
                            sequence: batch.sequence,
                            batch: crate::byzantine::alternate(&batch.batch),
                        },
                        _ => batch.clone(),
                    };
                    for to in downstream {
                        effects.push(Effect::Send {
                            to,
                            msg: Msg::Execution(ExecutionMessage::Order {
                                batch: pushed.clone(),
                                certificate: certificate.clone(),
                            }),
                        });
                    }
                    effects.push(Effect::Delivered { batch, certificate });
                }
                // Execution replicas learn of the checkpoint from their peers and fetch
                // the state themselves; the agreement node has nothing to do.
                Output::StateTransfer { .. } => {}
            }
        }
    }

    fn send(
        &mut self,
        to: ReplicaId,
        message: palisade_wire::agreement::AgreementMessage,
        effects: &mut Vec<Effect>,
    ) {
        let message = match &self.fault {
            Some(fault) => match self.byzantine.rewrite(
                fault,
                &self.key,
                self.replica.config().n(),
                to,
                message,
            ) {
                Some(m) => m,
                None => return,
            },
            None => message,
        };
        effects.push(Effect::Send {
            to: NodeId::Agreement(to),
            msg: Msg::Agreement(message),
        });
    }
}
