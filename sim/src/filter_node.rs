//! A simulated filter node: the pure [`Filter`] core of the privacy firewall, its links
//! named as the runtime's filter node names them (peers above and below by index), with
//! an optional Byzantine wrapper ([`crate::filter_fault`]).
//!
//! The core reads the simulated clock as a `Tick` before every input (it uses time for
//! rate limits and vouch deadlines), and once more when the wake-up it asked for is due. A filter keeps nothing durable: a restart starts it empty, and it
//! learns orders again from above (new orders, re-sent ones, or its own `FetchOrders`).

use std::time::Duration;

use palisade_firewall::{Filter, FilterConfig, FilterInput, FilterOutput};

use crate::effect::{Effect, SimTimer};
use crate::filter_fault::FilterByzantine;
use crate::message::{Msg, NodeId};
use crate::rng::SimRng;
use crate::scenario::FilterFault;
use crate::topology::Topology;

pub struct FilterNode {
    /// Flat id, `row * (h+1) + column`.
    pub id: u32,
    pub row: u32,
    pub filter: Filter,
    pub fault: Option<FilterFault>,
    config: FilterConfig,
    topology: Topology,
    byzantine: Option<FilterByzantine>,
    /// Messages from nodes that are not its neighbours (dropped, as the runtime's link
    /// check does).
    pub misrouted: u64,
    /// Restarts so far.
    pub restarts: u64,
}

impl FilterNode {
    pub fn new(
        id: u32,
        config: FilterConfig,
        topology: Topology,
        fault: Option<FilterFault>,
    ) -> FilterNode {
        FilterNode {
            id,
            row: config.row,
            filter: Filter::new(config.clone()),
            byzantine: fault.map(FilterByzantine::new),
            fault,
            config,
            topology,
            misrouted: 0,
            restarts: 0,
        }
    }

    pub fn is_correct(&self) -> bool {
        self.fault.is_none()
    }

    /// A crash and restart: a filter holds nothing durable, so it starts empty. (A
    /// Byzantine one keeps its behaviour and its memory: a compromised node may store
    /// what it likes.)
    pub fn restart(&mut self) {
        self.filter = Filter::new(self.config.clone());
        self.restarts += 1;
    }

    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: Msg,
        now: Duration,
        rng: &mut SimRng,
    ) -> Vec<Effect> {
        let Some((above, index)) = self.topology.neighbour(self.row, from) else {
            self.misrouted += 1;
            tracing::debug!(filter = self.id, %from, "message from a non-neighbour dropped");
            return Vec::new();
        };
        let mut effects = Vec::new();
        if let Some(byz) = &mut self.byzantine {
            if byz.is_silent() {
                return effects;
            }
            effects.extend(byz.on_input(&self.topology, self.row, above, &msg, rng));
        }
        // Raw bytes never decode: the runtime's link layer would drop them.
        let Some(envelope) = msg.into_envelope() else {
            return effects;
        };
        let input = if above {
            FilterInput::FromAbove {
                from: index,
                envelope,
            }
        } else {
            FilterInput::FromBelow {
                from: index,
                envelope,
            }
        };
        let mut outputs = self.filter.step(FilterInput::Tick(now));
        outputs.extend(self.filter.step(input));
        effects.extend(self.carry_out(outputs, now, rng));
        effects
    }

    /// The wake-up the core asked for (a claim held for vouchers is due).
    pub fn on_timer(&mut self, now: Duration, rng: &mut SimRng) -> Vec<Effect> {
        if self.byzantine.as_ref().is_some_and(|b| b.is_silent()) {
            return Vec::new();
        }
        let outputs = self.filter.step(FilterInput::Tick(now));
        self.carry_out(outputs, now, rng)
    }

    /// Routes the core's outputs (through the Byzantine wrapper, if any) and arms the
    /// wake-up the core needs next.
    fn carry_out(
        &mut self,
        outputs: Vec<FilterOutput>,
        now: Duration,
        rng: &mut SimRng,
    ) -> Vec<Effect> {
        let honest = self.route(outputs);
        let mut effects = match &mut self.byzantine {
            Some(byz) => byz.rewrite(honest, rng),
            None => honest,
        };
        if let Some(at) = self.filter.next_wake() {
            effects.push(Effect::SetTimer {
                timer: SimTimer::Filter,
                after: at.saturating_sub(now),
            });
        }
        effects
    }

    /// The core's outputs as sends to the neighbouring nodes.
    fn route(&self, outputs: Vec<FilterOutput>) -> Vec<Effect> {
        let mut effects = Vec::new();
        for output in outputs {
            let (targets, envelope) = match output {
                FilterOutput::ToAbove { to, envelope } => (
                    match to {
                        Some(i) => vec![self.topology.above(self.row, i)],
                        None => self.topology.all_above(self.row),
                    },
                    envelope,
                ),
                FilterOutput::ToBelow { to, envelope } => (
                    match to {
                        Some(i) => vec![self.topology.below(self.row, i)],
                        None => self.topology.all_below(self.row),
                    },
                    envelope,
                ),
            };
            let msg = Msg::from_envelope(envelope);
            for to in targets {
                effects.push(Effect::Send {
                    to,
                    msg: msg.clone(),
                });
            }
        }
        effects
    }

    /// Messages a Byzantine wrapper made up, passed on, replayed or corrupted.
    pub fn misdeeds(&self) -> u64 {
        self.byzantine.as_ref().map_or(0, |b| b.misdeeds)
    }

    /// One line for a failure report.
    pub fn describe(&self) -> String {
        let f = &self.filter;
        format!(
            "filter{} (row {}) {}: collected {}, stable {}, forwarded {}, log {}, restarts {}, misrouted {}, stats {:?}",
            self.id,
            self.row,
            match self.fault {
                Some(fault) => format!("faulty {fault:?}"),
                None => "correct".into(),
            },
            f.collected(),
            f.last_stable(),
            f.highest_forwarded(),
            f.log_len(),
            self.restarts,
            self.misrouted,
            f.stats()
        )
    }
}
