//! A simulated execution node: the real [`ExecutionReplica`] over a [`DurableStore`]
//! (a `MemStore` that survives crashes), with an optional Byzantine wrapper.

use ed25519_dalek::SigningKey;
use palisade_execution::replica::{ExecutionReplica, ReplicaConfig, ReplicaInput, ReplicaOutput};
use palisade_execution::{FileSystem, FsConfig};
use palisade_wire::agreement::{Digest, Signed};
use palisade_wire::execution::{ExecCheckpoint, ExecReplicaId, ExecutionMessage, Reply};

use crate::agreement_node::NodeError;
use crate::durable::DurableStore;
use crate::effect::{Effect, SimTimer};
use crate::message::{Msg, NodeId};
use crate::scenario::ExecFault;

pub struct ExecutionNode {
    pub id: ExecReplicaId,
    pub replica: ExecutionReplica<DurableStore>,
    pub fault: Option<ExecFault>,
    /// The data directory (kept across a crash unless wiped).
    store: DurableStore,
    config: ReplicaConfig,
    key: SigningKey,
    n_agreement: u32,
    n_execution: u32,
    last_reported: u64,
    /// Restarted from its store, which does not hold the exactly-once table, so its
    /// digest legitimately differs from its peers' until it repairs itself by state
    /// transfer (see `palisade_execution::replica`): exempt from the digest invariant
    /// until its digest agrees with the others again.
    pub recovering: bool,
}

impl ExecutionNode {
    pub fn new(
        config: ReplicaConfig,
        key: SigningKey,
        n_agreement: usize,
        fault: Option<ExecFault>,
    ) -> Result<ExecutionNode, NodeError> {
        let store = DurableStore::new();
        let fs = FileSystem::open(store.clone(), FsConfig::default())?;
        let replica = ExecutionReplica::new(config.clone(), key.clone(), fs)?;
        Ok(ExecutionNode {
            id: config.id,
            n_execution: config.exec_keys.len() as u32,
            replica,
            fault,
            store,
            config,
            key,
            n_agreement: n_agreement as u32,
            last_reported: 0,
            recovering: false,
        })
    }

    /// A crash and restart: everything in memory is lost; the store survives unless
    /// `wipe` (a lost data directory), in which case the replica starts empty and
    /// catches up by state transfer.
    pub fn restart(&mut self, wipe: bool) -> Result<(), NodeError> {
        if wipe {
            self.store = DurableStore::new();
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

    pub fn on_message(&mut self, from: NodeId, msg: Msg) -> Vec<Effect> {
        let input = match (from, msg) {
            (
                NodeId::Agreement(_),
                Msg::Execution(ExecutionMessage::Order { batch, certificate }),
            ) => ReplicaInput::Order { batch, certificate },
            (NodeId::Execution(peer), Msg::Execution(message)) => ReplicaInput::Message {
                from: peer,
                message,
            },
            _ => return Vec::new(),
        };
        self.step(input)
    }

    pub fn on_timer(&mut self, timer: &SimTimer) -> Vec<Effect> {
        match timer {
            SimTimer::Execution(kind) => self.step(ReplicaInput::Timer(*kind)),
            _ => Vec::new(),
        }
    }

    fn step(&mut self, input: ReplicaInput) -> Vec<Effect> {
        let outputs = self.replica.step(input);
        let mut effects = Vec::new();
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
                    for a in 0..self.n_agreement {
                        effects.push(Effect::Send {
                            to: NodeId::Agreement(a),
                            msg: Msg::Execution(message.clone()),
                        });
                    }
                }
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
        if applied != self.last_reported {
            self.last_reported = applied;
            let digest = Digest(self.replica.digest().0);
            effects.push(Effect::Executed {
                sequence: applied,
                digest,
            });
        }
        effects
    }

    /// A replica sending wrong replies: a different result, properly signed.
    fn tamper_reply(&self, reply: Signed<Reply>) -> Option<Signed<Reply>> {
        if self.fault != Some(ExecFault::WrongReplies) {
            return Some(reply);
        }
        let mut message = reply.message;
        message.result.push(0xEE);
        Signed::sign(&self.key, message).ok()
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
