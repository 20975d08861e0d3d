//! Byzantine filter behaviours ([`FilterFault`]) as a wrapper around the honest
//! [`palisade_firewall::Filter`] core of a [`crate::filter_node::FilterNode`]: what it
//! does with each input before the core sees it, and how it rewrites what the core sends.
//! A compromised filter has no key of the execution cluster or of agreement, so what it
//! makes up is garbage; what it can do is drop, delay, repeat, corrupt, pass on what it
//! should not, and replay.

use std::collections::VecDeque;

use palisade_wire::agreement::{OrderedBatch, Sequence};
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::{
    CertifiedReply, FirewallMessage, ReplyEntry, StableCertificate, ThresholdSignature,
};

use crate::byzantine::alternate;
use crate::effect::Effect;
use crate::message::{Msg, NodeId};
use crate::rng::SimRng;
use crate::scenario::FilterFault;
use crate::topology::Topology;

/// Most certified messages a replaying filter remembers.
const MAX_REMEMBERED: usize = 64;
/// Chance (per mille) that a replaying filter replays something on an input.
const REPLAY_PER_MILLE: u64 = 250;

/// Per-node memory of a Byzantine filter behaviour.
#[derive(Debug)]
pub struct FilterByzantine {
    fault: FilterFault,
    /// Certified replies and stable certificates it sent up (for replays).
    remembered: VecDeque<Msg>,
    /// Highest sequence of an order it forged replies for (once per sequence).
    forged_through: Sequence,
    /// Messages it made up, passed on, replayed or corrupted.
    pub misdeeds: u64,
}

impl FilterByzantine {
    pub fn new(fault: FilterFault) -> FilterByzantine {
        FilterByzantine {
            fault,
            remembered: VecDeque::new(),
            forged_through: 0,
            misdeeds: 0,
        }
    }

    pub fn is_silent(&self) -> bool {
        self.fault == FilterFault::Silent
    }

    fn send_all(&mut self, targets: Vec<NodeId>, msg: &Msg, effects: &mut Vec<Effect>) {
        for to in targets {
            self.misdeeds += 1;
            effects.push(Effect::Send {
                to,
                msg: msg.clone(),
            });
        }
    }

    /// What the filter does with an input beyond handing it to its core.
    pub fn on_input(
        &mut self,
        topology: &Topology,
        row: u32,
        from_above: bool,
        msg: &Msg,
        rng: &mut SimRng,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        match self.fault {
            FilterFault::ForwardUncertified if !from_above => {
                // Everything from below goes up as it came: shares, bodies, raw bytes.
                self.send_all(topology.all_above(row), msg, &mut effects);
            }
            FilterFault::Forge if from_above => {
                if let Msg::Execution(ExecutionMessage::Order { batch, certificate }) = msg {
                    if batch.sequence > self.forged_through {
                        self.forged_through = batch.sequence;
                        self.forge(topology, row, batch, rng, &mut effects);
                        let broken = Msg::Execution(ExecutionMessage::Order {
                            batch: OrderedBatch {
                                sequence: batch.sequence,
                                batch: alternate(&batch.batch),
                            },
                            certificate: certificate.clone(),
                        });
                        self.send_all(topology.all_below(row), &broken, &mut effects);
                    }
                }
            }
            FilterFault::Replay if !self.remembered.is_empty() && rng.chance(REPLAY_PER_MILLE) => {
                let i = rng.index(self.remembered.len());
                if let Some(old) = self.remembered.get(i).cloned() {
                    let mut targets = topology.all_above(row);
                    if let (0, Msg::Firewall(FirewallMessage::CertifiedReply(c))) = (row, &old) {
                        // The top row shares the gateway's network.
                        targets.push(NodeId::Client(c.entry.client));
                    }
                    self.send_all(targets, &old, &mut effects);
                }
            }
            _ => {}
        }
        effects
    }

    /// Garbage "certified" replies for every request of `batch`, and a garbage stable
    /// certificate, to every peer above.
    fn forge(
        &mut self,
        topology: &Topology,
        row: u32,
        batch: &OrderedBatch,
        rng: &mut SimRng,
        effects: &mut Vec<Effect>,
    ) {
        let above = topology.all_above(row);
        for r in &batch.batch.requests {
            let forged = Msg::Firewall(FirewallMessage::CertifiedReply(CertifiedReply {
                sequence: batch.sequence,
                entry: ReplyEntry {
                    client: r.message.client,
                    request_id: r.message.request_id,
                    body: rng.bytes(24),
                },
                leaf_index: 0,
                leaf_count: 1,
                path: Vec::new(),
                signature: ThresholdSignature(rng.bytes(96)),
            }));
            self.send_all(above.clone(), &forged, effects);
        }
        let stable = Msg::Firewall(FirewallMessage::Stable(StableCertificate {
            sequence: batch.sequence,
            signature: ThresholdSignature(rng.bytes(96)),
        }));
        self.send_all(above, &stable, effects);
    }

    /// Rewrites what the honest core sends.
    pub fn rewrite(&mut self, effects: Vec<Effect>, rng: &mut SimRng) -> Vec<Effect> {
        let mut out = Vec::with_capacity(effects.len());
        for effect in effects {
            let Effect::Send { to, msg } = effect else {
                out.push(effect);
                continue;
            };
            if matches!(
                msg,
                Msg::Firewall(FirewallMessage::CertifiedReply(_) | FirewallMessage::Stable(_))
            ) && self.fault == FilterFault::Replay
                && !self.remembered.contains_msg(&msg)
            {
                if self.remembered.len() >= MAX_REMEMBERED {
                    self.remembered.pop_front();
                }
                self.remembered.push_back(msg.clone());
            }
            match self.fault {
                FilterFault::Silent => {}
                FilterFault::Delay(after) => out.push(Effect::SendLater { to, msg, after }),
                FilterFault::Duplicate => {
                    let copies = if rng.chance(300) { 3 } else { 2 };
                    self.misdeeds += copies - 1;
                    for _ in 0..copies {
                        out.push(Effect::Send {
                            to,
                            msg: msg.clone(),
                        });
                    }
                }
                FilterFault::Tamper => {
                    let msg = self.tamper(msg);
                    out.push(Effect::Send { to, msg });
                }
                FilterFault::Forge | FilterFault::ForwardUncertified | FilterFault::Replay => {
                    out.push(Effect::Send { to, msg });
                }
            }
        }
        out
    }

    /// A certified reply with one bit of its body flipped; an order whose batch no
    /// longer matches its certificate.
    fn tamper(&mut self, msg: Msg) -> Msg {
        match msg {
            Msg::Firewall(FirewallMessage::CertifiedReply(mut c)) => {
                self.misdeeds += 1;
                match c.entry.body.first_mut() {
                    Some(b) => *b ^= 1,
                    None => c.entry.body.push(1),
                }
                Msg::Firewall(FirewallMessage::CertifiedReply(c))
            }
            Msg::Execution(ExecutionMessage::Order { batch, certificate }) => {
                self.misdeeds += 1;
                Msg::Execution(ExecutionMessage::Order {
                    batch: OrderedBatch {
                        sequence: batch.sequence,
                        batch: alternate(&batch.batch),
                    },
                    certificate,
                })
            }
            other => other,
        }
    }
}

/// Membership by content for the replay memory (messages are not `Eq` as a whole, but
/// the firewall ones are).
trait ContainsMsg {
    fn contains_msg(&self, msg: &Msg) -> bool;
}

impl ContainsMsg for VecDeque<Msg> {
    fn contains_msg(&self, msg: &Msg) -> bool {
        let Msg::Firewall(m) = msg else {
            return false;
        };
        self.iter().any(|x| matches!(x, Msg::Firewall(y) if y == m))
    }
}
