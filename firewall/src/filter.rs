//! One filter node as a pure state machine: [`Filter::step`] takes a [`FilterInput`] and
//! returns the [`FilterOutput`]s it causes, and does nothing else (DESIGN §3).
//!
//! The work is split by direction: `downward.rs` (orders and `FetchOrders`), `bottom.rs`
//! (the bottom row's shares, bodies and stable shares from execution replicas), `relay.rs`
//! (the upper rows' certified replies and stable certificates from the row below).

mod bottom;
mod downward;
mod relay;
mod resend;

pub use resend::MAX_RESENDS_PER_INTERVAL;

pub use downward::{MAX_FETCH_BYTES, MAX_FETCH_ORDERS};

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_wire::agreement::{Bounded, Sequence};
use palisade_wire::envelope::Envelope;
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::{CertifiedReply, FirewallMessage, StableCertificate};

use crate::cache::ReplyCache;
use crate::collector::ReplyCollector;
use crate::config::FilterConfig;
use crate::io::{FilterInput, FilterOutput};
use crate::log::OrderLog;
use crate::stable::StableShares;
use crate::stats::{reason, FilterStats};

/// Least time between two re-sends of the latest stable certificate (`resend_stable`).
pub const STABLE_RESEND_INTERVAL: Duration = Duration::from_secs(1);

/// One filter.
pub struct Filter {
    config: FilterConfig,
    /// The runtime's latest clock reading (from [`FilterInput::Tick`]).
    now: Duration,
    /// Every sequence at or below this one is garbage-collected: its orders, shares and
    /// bodies are gone, and anything for it is refused as old.
    collected: Sequence,
    /// The highest sequence a verified stable certificate named.
    last_stable: Sequence,
    /// The highest sequence forwarded down.
    highest_forwarded: Sequence,
    log: OrderLog,
    /// Bottom row: shares and pending bodies per outstanding sequence.
    collectors: BTreeMap<Sequence, ReplyCollector>,
    /// Bytes held per peer below: pending bodies (bottom row) or replies waiting for a
    /// vouch (upper rows), each within `max_pending_bytes_per_replica`.
    pending_bytes: BTreeMap<u32, usize>,
    /// Bottom row: stable-checkpoint shares.
    stable_shares: StableShares,
    /// The certificate of `last_stable`, and when it was last sent up again
    /// ([`Filter::resend_stable`]).
    stable_certificate: Option<StableCertificate>,
    stable_resent: Option<Duration>,
    cache: ReplyCache,
    /// When each peer below last had its `FetchOrders` answered.
    fetch_answered: BTreeMap<u32, Duration>,
    /// When this filter last sent its own `FetchOrders` up.
    fetch_sent: Option<Duration>,
    /// Per peer above: since when, and how many, replies it asked for again were re-sent
    /// (`resend.rs`).
    resends_answered: BTreeMap<u32, (Duration, u32)>,
    stats: FilterStats,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("row", &self.config.row)
            .field("column", &self.config.column)
            .field("collected", &self.collected)
            .field("last_stable", &self.last_stable)
            .field("highest_forwarded", &self.highest_forwarded)
            .field("log_len", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl Filter {
    /// A filter that has forwarded nothing. Any configuration is accepted without a
    /// panic; call [`FilterConfig::validate`] first to refuse a wrong one.
    pub fn new(config: FilterConfig) -> Filter {
        Filter {
            cache: ReplyCache::new(config.reply_cache_bytes),
            config,
            now: Duration::ZERO,
            collected: 0,
            last_stable: 0,
            highest_forwarded: 0,
            log: OrderLog::default(),
            collectors: BTreeMap::new(),
            pending_bytes: BTreeMap::new(),
            stable_shares: StableShares::default(),
            stable_certificate: None,
            stable_resent: None,
            fetch_answered: BTreeMap::new(),
            fetch_sent: None,
            resends_answered: BTreeMap::new(),
            stats: FilterStats::default(),
        }
    }

    /// Handles one input; returns its effects, in order.
    pub fn step(&mut self, input: FilterInput) -> Vec<FilterOutput> {
        let mut out = Vec::new();
        match input {
            FilterInput::Tick(now) => {
                self.now = self.now.max(now);
                if !self.config.is_bottom() {
                    self.check_due_claims(&mut out);
                }
                self.reforward_overdue(&mut out);
            }
            FilterInput::FromAbove { from, envelope } => self.on_above(from, envelope, &mut out),
            FilterInput::FromBelow { from, envelope } => self.on_below(from, envelope, &mut out),
        }
        out
    }

    /// When this filter next needs a [`FilterInput::Tick`] to keep a promise: the
    /// earliest deadline of a claim held open for vouchers (`vouch.rs`), or of an order
    /// whose replies are overdue. A runtime that ticks at least this soon keeps replies
    /// from waiting longer than `vouch_wait`.
    pub fn next_wake(&self) -> Option<Duration> {
        let overdue = self
            .config
            .overdue_after
            .max(self.config.retransmit_interval);
        self.log
            .from(0)
            .filter_map(|(_, slot)| {
                let reforward =
                    (slot.unanswered > 0).then(|| slot.last_sent.saturating_add(overdue));
                match (slot.claims.next_deadline(), reforward) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }

    pub fn config(&self) -> &FilterConfig {
        &self.config
    }
    pub fn stats(&self) -> &FilterStats {
        &self.stats
    }
    /// Every sequence at or below this one is garbage-collected.
    pub fn collected(&self) -> Sequence {
        self.collected
    }
    /// The highest sequence of a verified stable certificate.
    pub fn last_stable(&self) -> Sequence {
        self.last_stable
    }
    /// The highest sequence forwarded down.
    pub fn highest_forwarded(&self) -> Sequence {
        self.highest_forwarded
    }
    /// Orders held in the log.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
    /// Bytes the log is charged (bounded by `max_log_bytes`).
    pub fn log_bytes(&self) -> usize {
        self.log.bytes()
    }
    /// Bytes held for peer `peer` below: bodies pending certification (bottom row), or
    /// replies waiting for their claim to be vouched for (upper rows).
    pub fn pending_bytes(&self, peer: u32) -> usize {
        self.pending_bytes.get(&peer).copied().unwrap_or(0)
    }
    /// Bytes of certified replies cached (bounded by `reply_cache_bytes`).
    pub fn cached_reply_bytes(&self) -> usize {
        self.cache.bytes()
    }
    /// Bottom row: sequences with stable shares pending.
    pub fn pending_stable_sequences(&self) -> usize {
        self.stable_shares.len()
    }

    fn on_above(&mut self, from: u32, envelope: Envelope, out: &mut Vec<FilterOutput>) {
        if from >= self.config.above() {
            return self.refuse(reason::UNKNOWN_PEER, from, None);
        }
        match envelope {
            Envelope::Execution(ExecutionMessage::Order { batch, certificate }) => {
                self.on_order(from, batch, certificate, out)
            }
            Envelope::Execution(ExecutionMessage::ResendReply {
                client, request_id, ..
            }) => self.on_resend(from, client, request_id, out),
            other => {
                tracing::debug!(kind = other.kind(), "from above");
                self.refuse(reason::UNEXPECTED_FROM_ABOVE, from, None)
            }
        }
    }

    fn on_below(&mut self, from: u32, envelope: Envelope, out: &mut Vec<FilterOutput>) {
        if from >= self.config.below {
            return self.refuse(reason::UNKNOWN_PEER, from, None);
        }
        if envelope.check_bounds().is_err() {
            return self.refuse(reason::MALFORMED, from, None);
        }
        let bottom = self.config.is_bottom();
        match envelope {
            Envelope::Execution(ExecutionMessage::FetchOrders { from: sequence }) => {
                self.on_fetch(from, sequence, out)
            }
            Envelope::Firewall(FirewallMessage::ReplyShare(s)) if bottom => {
                self.on_reply_share(from, s, out)
            }
            Envelope::Firewall(FirewallMessage::ReplyBody(b)) if bottom => {
                self.on_reply_body(from, b, out)
            }
            Envelope::Firewall(FirewallMessage::StableShare(s)) if bottom => {
                self.on_stable_share(from, s, out)
            }
            Envelope::Firewall(FirewallMessage::CertifiedReply(c)) if !bottom => {
                self.on_certified_reply(from, c, out)
            }
            Envelope::Firewall(FirewallMessage::Stable(s)) if !bottom => {
                self.on_stable_certificate(from, s, out)
            }
            other => {
                tracing::debug!(kind = other.kind(), "from below");
                self.refuse(reason::UNEXPECTED_FROM_BELOW, from, None)
            }
        }
    }

    /// Counts and logs a dropped input.
    fn refuse(&mut self, reason: &'static str, from: u32, sequence: Option<Sequence>) {
        self.stats.drop(reason);
        tracing::debug!(
            row = self.config.row,
            column = self.config.column,
            from,
            sequence,
            reason,
            "filter dropped a message"
        );
    }

    /// Whether a rate-limited action last taken at `last` may be taken again now.
    fn due(&self, last: Option<Duration>) -> bool {
        last.is_none_or(|t| self.now >= t.saturating_add(self.config.retransmit_interval))
    }

    /// Forwards a certified reply up (once per request: the caller checked that it was
    /// not forwarded yet), marks its request answered and caches it.
    fn forward_reply(&mut self, reply: CertifiedReply, out: &mut Vec<FilterOutput>) {
        let key = (reply.entry.client, reply.entry.request_id);
        if let Some(answered) = self
            .log
            .get_mut(reply.sequence)
            .and_then(|slot| slot.requests.get_mut(&key))
        {
            if !*answered {
                *answered = true;
                if let Some(slot) = self.log.get_mut(reply.sequence) {
                    slot.unanswered = slot.unanswered.saturating_sub(1);
                }
            }
        }
        self.stats.replies_forwarded += 1;
        self.cache.insert(reply.clone());
        out.push(FilterOutput::ToAbove {
            to: None,
            envelope: Envelope::Firewall(FirewallMessage::CertifiedReply(reply)),
        });
    }

    /// A verified stable certificate above the last one: forward it up once, then
    /// garbage-collect everything at or below the *previous* stable sequence (one
    /// checkpoint interval is kept so that late replies still pass).
    /// Something below sent the latest stable checkpoint again (a share or the
    /// certificate): send its certificate up again, if nothing was ordered past it and
    /// at most once per [`STABLE_RESEND_INTERVAL`]. After the whole cluster restarted,
    /// agreement orders nothing until it has that certificate (the execution replicas'
    /// restart checkpoint), and a node above that came up after it went by would
    /// otherwise wait for good; the execution replicas re-send their shares for it
    /// until orders come. Once orders flow past it, nothing is re-sent.
    fn resend_stable(&mut self, out: &mut Vec<FilterOutput>) {
        if self.highest_forwarded > self.last_stable {
            return;
        }
        let Some(certificate) = &self.stable_certificate else {
            return;
        };
        if self
            .stable_resent
            .is_some_and(|t| self.now.saturating_sub(t) < STABLE_RESEND_INTERVAL)
        {
            return;
        }
        self.stable_resent = Some(self.now);
        self.stats.stables_resent += 1;
        out.push(FilterOutput::ToAbove {
            to: None,
            envelope: Envelope::Firewall(FirewallMessage::Stable(certificate.clone())),
        });
    }

    fn adopt_stable(&mut self, certificate: StableCertificate, out: &mut Vec<FilterOutput>) {
        let sequence = certificate.sequence;
        if sequence <= self.last_stable {
            return;
        }
        self.stats.stables_forwarded += 1;
        self.stable_certificate = Some(certificate.clone());
        out.push(FilterOutput::ToAbove {
            to: None,
            envelope: Envelope::Firewall(FirewallMessage::Stable(certificate)),
        });
        let previous = std::mem::replace(&mut self.last_stable, sequence);
        self.stable_shares.collect_through(sequence);
        self.stats.collections += 1;
        if previous <= self.collected {
            return;
        }
        self.collected = previous;
        let mut held = Vec::new();
        for (_, slot) in self.log.slots_mut().take_while(|(s, _)| **s <= previous) {
            held.extend(slot.claims.take_open().into_iter().flat_map(|o| o.held));
        }
        for h in held {
            self.release_pending(h.from, h.bytes);
        }
        self.log.collect_through(previous);
        // Not the reply cache: it outlives the orders (`cache.rs`, `filter/resend.rs`).
        let kept = self.collectors.split_off(&previous.saturating_add(1));
        for mut collector in std::mem::replace(&mut self.collectors, kept).into_values() {
            for body in collector.take_pending() {
                self.release_pending(body.replica, body.bytes);
            }
        }
        tracing::debug!(
            row = self.config.row,
            column = self.config.column,
            stable = sequence,
            collected = self.collected,
            log_len = self.log.len(),
            "garbage-collected"
        );
    }

    fn release_pending(&mut self, replica: u32, bytes: usize) {
        if let Some(used) = self.pending_bytes.get_mut(&replica) {
            *used = used.saturating_sub(bytes);
            if *used == 0 {
                self.pending_bytes.remove(&replica);
            }
        }
    }
}
