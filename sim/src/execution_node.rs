//! A simulated execution node: the real [`ExecutionReplica`] over a [`DurableStore`]
//! (a `MemStore` that survives crashes), with an optional Byzantine wrapper.
//!
//! Its links are those of its configuration ([`ExecLinks`]): in the `separate` one it
//! takes orders from agreement nodes and sends replies to clients and checkpoints and
//! fetches to agreement; in the firewall one it takes orders from the bottom filter row
//! only, and everything it sends up — shares, bodies, stable shares, fetches — goes to
//! every bottom-row filter (the runtime routes "agreement" there too). Checkpoint votes
//! and state transfer stay among execution replicas.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_crypto::{leaf_hash, root, sign_batch_replies, ThresholdSigner};
use palisade_execution::replica::{
    ExecutionReplica, ReplicaConfig, ReplicaInput, ReplicaOutput, ReplyMode,
};
use palisade_execution::{FileSystem, FsConfig};
use palisade_wire::agreement::{Digest, Signed};
use palisade_wire::execution::{BatchReply, ExecCheckpoint, ExecReplicaId, ExecutionMessage};
use palisade_wire::firewall::{reply_root_message, FirewallMessage, ReplyShare};

use crate::agreement_node::NodeError;
use crate::durable::DurableStore;
use crate::effect::{Effect, SimTimer};
use crate::leak::Leaker;
use crate::message::{Msg, NodeId};
use crate::scenario::ExecFault;

/// Where an execution node's messages go.
#[derive(Clone, Debug)]
pub enum ExecLinks {
    /// The `separate` configuration: orders from, and checkpoints and fetches to, every
    /// agreement node; replies straight to clients.
    Separate { n_agreement: u32 },
    /// The firewall configuration: the bottom filter row is the only way up.
    Firewall { bottom: Vec<NodeId> },
}

pub struct ExecutionNode {
    pub id: ExecReplicaId,
    pub replica: ExecutionReplica<DurableStore>,
    pub fault: Option<ExecFault>,
    /// The data directory (kept across a crash unless wiped).
    store: DurableStore,
    config: ReplicaConfig,
    key: SigningKey,
    links: ExecLinks,
    n_execution: u32,
    last_reported: u64,
    /// Restarted and not yet caught up with its peers: counts against g (see
    /// `Simulation::may_crash`).
    pub recovering: bool,
    /// A leaking replica's memory and count of leaks.
    pub leaker: Option<Leaker>,
    /// Since its last restart: the sequence it resumed at, and how many times it
    /// re-sent its stable certificate to agreement while no order came.
    resumed_at: Option<u64>,
    restart_resends: u32,
}

/// As the node runtime (`node::execution_node`): a restarted replica re-sends its
/// latest stable certificate to agreement this often, at most `RESTART_RESENDS` times,
/// until it executes an order. A restarted agreement node holds client requests until
/// it has one, and the first may have been sent while that node was still down.
const RESTART_RESEND: Duration = Duration::from_secs(1);
const RESTART_RESENDS: u32 = 300;

/// What a restarted replica finds in its data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFate {
    /// The machine lost power: commits made without an fsync are gone.
    PowerLoss,
    /// The process was killed: the operating system kept every commit.
    Kept,
    /// The data directory was lost: the replica starts empty and catches up by state
    /// transfer.
    Wiped,
}

impl ExecutionNode {
    pub fn new(
        config: ReplicaConfig,
        key: SigningKey,
        links: ExecLinks,
        fault: Option<ExecFault>,
    ) -> Result<ExecutionNode, NodeError> {
        let store = DurableStore::new();
        let fs = FileSystem::open(store.clone(), FsConfig::default())?;
        let replica = ExecutionReplica::new(config.clone(), key.clone(), fs)?;
        Ok(ExecutionNode {
            id: config.id,
            n_execution: config.exec_keys.len() as u32,
            replica,
            leaker: (fault == Some(ExecFault::Leaking)).then(Leaker::default),
            fault,
            store,
            config,
            key,
            links,
            last_reported: 0,
            recovering: false,
            resumed_at: None,
            restart_resends: 0,
        })
    }

    /// A crash and restart: everything in memory is lost; what the store keeps
    /// depends on how the replica went down.
    pub fn restart(&mut self, how: StoreFate) -> Result<(), NodeError> {
        match how {
            StoreFate::Wiped => self.store = DurableStore::new(),
            StoreFate::PowerLoss => self.store.crash(),
            StoreFate::Kept => {}
        }
        let fs = FileSystem::open(self.store.clone(), FsConfig::default())?;
        self.replica = ExecutionReplica::new(self.config.clone(), self.key.clone(), fs)?;
        self.last_reported = self.replica.last_applied();
        self.recovering = true;
        Ok(())
    }

    pub fn is_correct(&self) -> bool {
        self.fault.is_none()
    }

    fn orders_from(&self, from: NodeId) -> bool {
        match (&self.links, from) {
            (ExecLinks::Separate { .. }, NodeId::Agreement(_)) => true,
            (ExecLinks::Firewall { bottom }, NodeId::Filter(_)) => bottom.contains(&from),
            _ => false,
        }
    }

    pub fn on_message(&mut self, from: NodeId, msg: Msg) -> Vec<Effect> {
        let input = match (from, msg) {
            (_, Msg::Execution(ExecutionMessage::Order { batch, certificate }))
                if self.orders_from(from) =>
            {
                if let Some(leaker) = &mut self.leaker {
                    leaker.observe_order(&batch, self.config.body_key.as_ref());
                }
                // As the runtime does: in `separate` an agreement replica's push over its
                // own link counts towards f+1 matching pushes.
                match from {
                    NodeId::Agreement(from) => ReplicaInput::Pushed {
                        from,
                        batch,
                        certificate,
                    },
                    _ => ReplicaInput::Order { batch, certificate },
                }
            }
            (_, Msg::Execution(ExecutionMessage::Stable(cert))) if self.orders_from(from) => {
                ReplicaInput::Stable(cert)
            }
            (
                NodeId::Agreement(_),
                Msg::Execution(ExecutionMessage::ResendReply {
                    client,
                    request_id,
                    sequence,
                }),
            ) if self.orders_from(from) => ReplicaInput::ResendReply {
                client,
                request_id,
                sequence,
            },
            (NodeId::Execution(peer), Msg::Execution(message)) => ReplicaInput::Message {
                from: peer,
                message,
            },
            // As the runtime does: a gateway's read-only request over its own link.
            (NodeId::Client(c), Msg::ReadOnly { request, after }) => ReplicaInput::ReadOnly {
                from: c,
                request,
                after,
            },
            _ => return Vec::new(),
        };
        self.step(input)
    }

    pub fn on_timer(&mut self, timer: &SimTimer) -> Vec<Effect> {
        match timer {
            SimTimer::Execution(kind) => self.step(ReplicaInput::Timer(*kind)),
            SimTimer::RestartResend => self.on_restart_resend(),
            _ => Vec::new(),
        }
    }

    /// Every node "agreement" means for this replica.
    fn up(&self) -> Vec<NodeId> {
        match &self.links {
            ExecLinks::Separate { n_agreement } => {
                (0..*n_agreement).map(NodeId::Agreement).collect()
            }
            ExecLinks::Firewall { bottom } => bottom.clone(),
        }
    }

    /// After a restart: the replica's restart checkpoint (`ExecutionReplica::start`),
    /// as the node runtime sends it. Not at the first start, where it would tell
    /// agreement nothing it does not know (the runtime sends it there too, and
    /// agreement ignores it).
    pub fn start(&mut self) -> Vec<Effect> {
        let outputs = self.replica.start();
        let mut effects = self.effects_of(outputs);
        self.resumed_at = Some(self.replica.last_applied());
        self.restart_resends = 0;
        effects.push(Effect::SetTimer {
            timer: SimTimer::RestartResend,
            after: RESTART_RESEND,
        });
        effects
    }

    fn on_restart_resend(&mut self) -> Vec<Effect> {
        let waiting = self.resumed_at == Some(self.replica.last_applied());
        if !waiting || self.restart_resends >= RESTART_RESENDS {
            self.resumed_at = None;
            return Vec::new();
        }
        self.restart_resends += 1;
        let outputs = self.replica.restart_resend();
        let mut effects = self.effects_of(outputs);
        effects.push(Effect::SetTimer {
            timer: SimTimer::RestartResend,
            after: RESTART_RESEND,
        });
        effects
    }

    fn step(&mut self, input: ReplicaInput) -> Vec<Effect> {
        let outputs = self.replica.step(input);
        self.effects_of(outputs)
    }

    fn effects_of(&mut self, outputs: Vec<ReplicaOutput>) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut firewall = Vec::new();
        for output in outputs {
            match output {
                ReplicaOutput::Reply { to, reply } => {
                    if let Some(reply) = self.tamper_reply(reply) {
                        effects.push(Effect::Send {
                            to: NodeId::Client(to),
                            msg: Msg::Reply(reply),
                        });
                    }
                }
                ReplicaOutput::ReadOnlyReply { to, mut reply } => {
                    if self.fault == Some(ExecFault::WrongReplies) {
                        reply.result.push(0xEE);
                    }
                    effects.push(Effect::Send {
                        to: NodeId::Client(to),
                        msg: Msg::ReadOnlyReply(reply),
                    });
                }
                ReplicaOutput::ToExecution { to, message } => {
                    let message = self.tamper(message);
                    let targets: Vec<u32> = match to {
                        Some(t) => vec![t],
                        None => (0..self.n_execution).filter(|e| *e != self.id).collect(),
                    };
                    for t in targets {
                        effects.push(Effect::Send {
                            to: NodeId::Execution(t),
                            msg: Msg::Execution(message.clone()),
                        });
                    }
                }
                ReplicaOutput::ToAgreement(message) => {
                    let message = self.tamper(message);
                    for to in self.up() {
                        effects.push(Effect::Send {
                            to,
                            msg: Msg::Execution(message.clone()),
                        });
                    }
                }
                ReplicaOutput::ToFirewall(message) => firewall.push(message),
                ReplicaOutput::SetTimer { kind, after } => effects.push(Effect::SetTimer {
                    timer: SimTimer::Execution(kind),
                    after,
                }),
                ReplicaOutput::CancelTimer(kind) => {
                    effects.push(Effect::CancelTimer(SimTimer::Execution(kind)));
                }
            }
        }
        let applied = self.replica.last_applied();
        let digest = (applied != self.last_reported).then(|| Digest(self.replica.digest().0));
        if let (Some(d), Some(leaker)) = (&digest, &mut self.leaker) {
            leaker.observe_digest(d);
        }
        self.send_up(firewall, &mut effects);
        if let Some(digest) = digest {
            self.last_reported = applied;
            effects.push(Effect::Executed {
                sequence: applied,
                digest,
            });
        }
        effects
    }

    /// This step's messages toward the firewall, through the Byzantine wrappers.
    fn send_up(&mut self, firewall: Vec<FirewallMessage>, effects: &mut Vec<Effect>) {
        let firewall = if self.fault == Some(ExecFault::WrongReplies) {
            self.wrong_bodies(firewall)
        } else {
            firewall
        };
        let up = self.up();
        let sends: Vec<(NodeId, Msg)> = match &mut self.leaker {
            Some(leaker) => leaker.leak(self.id, firewall, &up),
            None => firewall
                .into_iter()
                .flat_map(|m| up.iter().map(move |to| (*to, Msg::Firewall(m.clone()))))
                .collect(),
        };
        effects.extend(sends.into_iter().map(|(to, msg)| Effect::Send { to, msg }));
    }

    /// Through the firewall, a replica with wrong replies sends wrong bodies under a
    /// share it signs honestly over their Merkle root: a different root from the correct
    /// replicas', which g+1 shares never certify.
    fn wrong_bodies(&self, firewall: Vec<FirewallMessage>) -> Vec<FirewallMessage> {
        let ReplyMode::Threshold(signer) = &self.config.replies else {
            return firewall;
        };
        let mut out: Vec<FirewallMessage> = firewall
            .into_iter()
            .map(|m| match m {
                FirewallMessage::ReplyBody(mut b) => {
                    b.entry.body.push(0xEE);
                    FirewallMessage::ReplyBody(b)
                }
                other => other,
            })
            .collect();
        let shares: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m, FirewallMessage::ReplyShare(_)))
            .map(|(i, _)| i)
            .collect();
        for i in shares {
            let Some(FirewallMessage::ReplyShare(s)) = out.get(i) else {
                continue;
            };
            let sequence = s.sequence;
            let leaves: Vec<Digest> = out
                .iter()
                .filter_map(|m| match m {
                    FirewallMessage::ReplyBody(b) if b.sequence == sequence => {
                        Some(leaf_hash(&b.entry))
                    }
                    _ => None,
                })
                .collect();
            let resigned = resign(signer, sequence, self.id, leaves);
            if let Some(slot) = out.get_mut(i) {
                *slot = resigned;
            }
        }
        out
    }

    /// A replica sending wrong replies: a different result, properly signed (as a batch
    /// of one reply, whose root differs from the true batch's).
    fn tamper_reply(&self, reply: BatchReply) -> Option<BatchReply> {
        if self.fault != Some(ExecFault::WrongReplies) {
            return Some(reply);
        }
        let mut message = reply.message;
        message.result.push(0xEE);
        sign_batch_replies(&self.key, vec![message]).pop()
    }

    /// A replica lying about its checkpoint digest.
    fn tamper(&self, message: ExecutionMessage) -> ExecutionMessage {
        match (self.fault, message) {
            (Some(ExecFault::LyingCheckpoints), ExecutionMessage::Checkpoint(c)) => {
                let lie = ExecCheckpoint {
                    state_digest: Digest::of(
                        b"palisade/sim/lie",
                        &c.message.sequence.to_le_bytes(),
                    ),
                    ..c.message.clone()
                };
                match Signed::sign(&self.key, lie) {
                    Ok(signed) => ExecutionMessage::Checkpoint(signed),
                    Err(_) => ExecutionMessage::Checkpoint(c),
                }
            }
            (_, message) => message,
        }
    }
}

fn resign(
    signer: &Arc<dyn ThresholdSigner>,
    sequence: u64,
    replica: ExecReplicaId,
    leaves: Vec<Digest>,
) -> FirewallMessage {
    let share = signer.sign_share(&reply_root_message(sequence, &root(&leaves)));
    FirewallMessage::ReplyShare(ReplyShare {
        sequence,
        replica,
        leaves,
        share,
    })
}
