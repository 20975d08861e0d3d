//! A simulated gateway: the BFT [`Client`] core plus a [`Workload`] that keeps its window
//! full until it submitted its share of operations.
//!
//! A gateway can crash and restart ([`ClientNode::crash`], [`ClientNode::restart`]): the
//! requests it had in flight are abandoned (never checked for completion; agreement may
//! still order them, and the oracle then applies them like any other), and the new
//! incarnation numbers its requests from a larger base, as the runtime does with a
//! clock-derived `first_request_id`, so that agreement's and execution's exactly-once
//! tables take them for new requests.
//!
//! In the firewall configuration ([`Sealing`]) the gateway seals every operation for the
//! execution cluster before it submits it, accepts one certified reply (relayed by an
//! agreement node, or — from a compromised top filter — straight from the top row) and
//! opens the sealed result; the checker sees the plaintext.

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_client::{Client, ClientConfig, ClientInput, ClientOutput};
use palisade_crypto::BodyKey;
use palisade_wire::agreement::ClientId;
use palisade_wire::firewall::FirewallMessage;

use crate::crypto_memo::SealRng;

use crate::effect::{Effect, SimTimer};
use crate::message::{Msg, NodeId};
use crate::rng::SimRng;
use crate::workload::Workload;

pub struct ClientNode {
    pub id: ClientId,
    pub client: Client,
    workload: Workload,
    n_agreement: u32,
    n_execution: u32,
    /// Operations still to submit.
    pub to_submit: u64,
    /// Request ids accepted and not yet complete.
    pub outstanding: BTreeSet<u64>,
    submit_armed: bool,
    /// Longest think time between a completion and the next submission.
    think: Duration,
    config: ClientConfig,
    key: ed25519_dalek::SigningKey,
    /// Restarts so far (the id base grows with each).
    pub incarnation: u64,
    /// Requests abandoned by crashes (counted, not checked).
    pub abandoned: u64,
    sealing: Option<Sealing>,
    /// Accepted results whose sealed body did not open (the checker reports them).
    pub unsealable: u64,
}

/// A gateway's body key and the nonce source for sealing requests.
#[derive(Debug, Clone)]
pub struct Sealing {
    pub key: BodyKey,
    pub rng: SealRng,
}

/// Request ids one incarnation may use before the next one's base: a restarted client
/// starts at `incarnation * ID_SPAN + 1`, far above anything the previous one used (the
/// runtime uses microseconds since the epoch to the same effect).
pub const ID_SPAN: u64 = 1 << 40;

impl ClientNode {
    pub fn new(
        config: ClientConfig,
        key: ed25519_dalek::SigningKey,
        ops: u64,
        think: Duration,
    ) -> ClientNode {
        ClientNode {
            id: config.id,
            n_agreement: config.agreement_replicas as u32,
            n_execution: config.exec_keys.len() as u32,
            client: Client::new(config.clone(), key.clone()),
            workload: Workload::new(),
            to_submit: ops,
            outstanding: BTreeSet::new(),
            submit_armed: false,
            think,
            config,
            key,
            incarnation: 0,
            abandoned: 0,
            sealing: None,
            unsealable: 0,
        }
    }

    /// The firewall configuration: payloads sealed, results opened.
    pub fn with_sealing(mut self, sealing: Sealing) -> ClientNode {
        self.sealing = Some(sealing);
        self
    }

    /// The gateway process dies: its in-flight requests are abandoned. (Its timers are
    /// discarded by the simulation.) Operations not yet submitted remain for the next
    /// incarnation.
    pub fn crash(&mut self) {
        self.abandoned += self.outstanding.len() as u64;
        for id in std::mem::take(&mut self.outstanding) {
            self.workload.forget(id);
        }
        self.submit_armed = false;
    }

    /// A new incarnation: a fresh client core whose ids start above every id used
    /// before. Returns the effects that start its submissions.
    pub fn restart(&mut self, after: Duration) -> Vec<Effect> {
        self.incarnation = self.incarnation.saturating_add(1);
        let mut config = self.config.clone();
        config.first_request_id = self.incarnation.saturating_mul(ID_SPAN).saturating_add(1);
        self.client = Client::new(config, self.key.clone());
        self.start(after)
    }

    /// True once every operation was submitted and completed.
    pub fn done(&self) -> bool {
        self.to_submit == 0 && self.outstanding.is_empty()
    }

    /// The first submission timer (the simulation staggers client starts).
    pub fn start(&mut self, after: Duration) -> Vec<Effect> {
        self.submit_armed = true;
        vec![Effect::SetTimer {
            timer: SimTimer::Submit,
            after,
        }]
    }

    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: Msg,
        now: Duration,
        rng: &mut SimRng,
    ) -> Vec<Effect> {
        match msg {
            Msg::Reply(reply) => {
                // As the runtime does: a reply over an execution replica's own link counts
                // on the link's authentication.
                let input = match from {
                    NodeId::Execution(from) => ClientInput::LinkReply { from, reply },
                    _ => ClientInput::Reply(reply),
                };
                let outputs = self.client.step(input, now);
                self.apply(outputs, rng)
            }
            Msg::ReadOnlyReply(reply) => {
                // Unsigned: it counts only over the link of the replica it names.
                let NodeId::Execution(from) = from else {
                    return Vec::new();
                };
                let outputs = self
                    .client
                    .step(ClientInput::ReadOnlyReply { from, reply }, now);
                self.apply(outputs, rng)
            }
            Msg::Firewall(FirewallMessage::CertifiedReply(c)) => {
                let outputs = self.client.step(ClientInput::Certified(c), now);
                self.apply(outputs, rng)
            }
            Msg::Firewall(FirewallMessage::Vouch(vouch)) => {
                let NodeId::Agreement(from) = from else {
                    return Vec::new();
                };
                let outputs = self.client.step(ClientInput::Vouch { from, vouch }, now);
                self.apply(outputs, rng)
            }
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, timer: &SimTimer, now: Duration, rng: &mut SimRng) -> Vec<Effect> {
        match timer {
            SimTimer::Client(kind) => {
                let outputs = self.client.step(ClientInput::Timer(*kind), now);
                self.apply(outputs, rng)
            }
            SimTimer::Submit => {
                self.submit_armed = false;
                self.submit(now, rng)
            }
            _ => Vec::new(),
        }
    }

    /// Submits operations while the window has room.
    fn submit(&mut self, now: Duration, rng: &mut SimRng) -> Vec<Effect> {
        let mut effects = Vec::new();
        while self.to_submit > 0 {
            let op = self.workload.next_op(rng);
            let payload = match palisade_wire::encode(&op) {
                Ok(p) => match &mut self.sealing {
                    Some(s) => s.key.seal_request(self.id, &p, &mut s.rng),
                    None => p,
                },
                Err(_) => break,
            };
            // As the gateway does: what only reads may be answered unordered.
            let input = match op.is_read_only() {
                true => ClientInput::SubmitRead { payload },
                false => ClientInput::Submit { payload },
            };
            let outputs = self.client.step(input, now);
            let mut accepted = None;
            let mut busy = false;
            for o in &outputs {
                match o {
                    ClientOutput::Accepted { request_id } => accepted = Some(*request_id),
                    ClientOutput::Busy | ClientOutput::Refused { .. } => busy = true,
                    _ => {}
                }
            }
            if let Some(id) = accepted {
                self.to_submit -= 1;
                self.outstanding.insert(id);
                self.workload.sent(id, op);
            }
            effects.extend(self.apply(outputs, rng));
            if busy || accepted.is_none() {
                break;
            }
        }
        effects
    }

    /// An accepted result as the checker sees it: opened when bodies are sealed (under
    /// the read-only label for an unordered read). One that does not open is left
    /// sealed: the checker compares it with the plaintext the reference produces and
    /// reports it.
    fn opened(
        &mut self,
        read_only: bool,
        sequence: u64,
        request_id: u64,
        result: Vec<u8>,
    ) -> Vec<u8> {
        let Some(s) = &self.sealing else {
            return result;
        };
        let plain = match read_only {
            true => s.key.open_read_reply(self.id, request_id, &result),
            false => s.key.open_reply(sequence, self.id, request_id, &result),
        };
        plain.unwrap_or_else(|_| {
            self.unsealable += 1;
            result
        })
    }

    /// After a completion: the next submission after a think time, if any remain.
    fn arm_submit(&mut self, rng: &mut SimRng, effects: &mut Vec<Effect>) {
        if self.to_submit > 0 && !self.submit_armed {
            self.submit_armed = true;
            let think = rng.below(self.think.as_micros() as u64 + 1);
            effects.push(Effect::SetTimer {
                timer: SimTimer::Submit,
                after: Duration::from_micros(think),
            });
        }
    }

    fn apply(&mut self, outputs: Vec<ClientOutput>, rng: &mut SimRng) -> Vec<Effect> {
        let mut effects = Vec::new();
        for output in outputs {
            match output {
                ClientOutput::SendRequest { to, request } => {
                    let targets: Vec<u32> = match to {
                        Some(r) => vec![r],
                        None => (0..self.n_agreement).collect(),
                    };
                    for r in targets {
                        effects.push(Effect::Send {
                            to: NodeId::Agreement(r),
                            msg: Msg::Request(request.clone()),
                        });
                    }
                }
                ClientOutput::SendReadOnly { request, after } => {
                    for e in 0..self.n_execution {
                        effects.push(Effect::Send {
                            to: NodeId::Execution(e),
                            msg: Msg::ReadOnly {
                                request: request.clone(),
                                after,
                            },
                        });
                    }
                }
                ClientOutput::CompleteReadOnly {
                    request_id,
                    sequence,
                    result,
                } => {
                    self.outstanding.remove(&request_id);
                    let result = self.opened(true, sequence, request_id, result);
                    if let Some(op) = self.workload.op(request_id).cloned() {
                        effects.push(Effect::CompletedRead {
                            request_id,
                            sequence,
                            result: result.clone(),
                            op,
                        });
                    }
                    self.workload.completed(request_id, &result);
                    self.arm_submit(rng, &mut effects);
                }
                ClientOutput::RepliedThrough(sequence) => {
                    for r in 0..self.n_agreement {
                        effects.push(Effect::Send {
                            to: NodeId::Agreement(r),
                            msg: Msg::RepliedThrough(sequence),
                        });
                    }
                }
                ClientOutput::Complete {
                    request_id,
                    sequence,
                    result,
                } => {
                    self.outstanding.remove(&request_id);
                    let result = self.opened(false, sequence, request_id, result);
                    self.workload.completed(request_id, &result);
                    effects.push(Effect::Completed {
                        request_id,
                        sequence,
                        result,
                    });
                    self.arm_submit(rng, &mut effects);
                }
                ClientOutput::SetTimer { kind, after } => effects.push(Effect::SetTimer {
                    timer: SimTimer::Client(kind),
                    after,
                }),
                ClientOutput::CancelTimer(kind) => {
                    effects.push(Effect::CancelTimer(SimTimer::Client(kind)));
                }
                ClientOutput::Accepted { .. }
                | ClientOutput::Busy
                | ClientOutput::Refused { .. } => {}
            }
        }
        effects
    }
}
