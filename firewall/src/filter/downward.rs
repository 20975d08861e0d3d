//! Downward (SOSP 2003 §4.1): a filter forwards an ordered batch only with a valid ORDER
//! certificate, once to every peer below, and remembers its requests as outstanding. It
//! answers `FetchOrders` from the orders it holds.

use palisade_wire::agreement::{Bounded, OrderCertificate, OrderedBatch, Sequence};
use palisade_wire::envelope::Envelope;
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::FirewallMessage;

use super::Filter;
use crate::io::FilterOutput;
use crate::log::{order_bytes, Slot};
use crate::stats::reason;

/// Most orders in one answer to `FetchOrders`.
pub const MAX_FETCH_ORDERS: usize = 64;
/// Most bytes (as the log charges them) in one answer to `FetchOrders`.
pub const MAX_FETCH_BYTES: usize = 16 * 1024 * 1024;

/// Most overdue orders forwarded down again per tick.
const MAX_REFORWARD_PER_TICK: usize = 4;

fn order_envelope(slot: &Slot) -> Envelope {
    Envelope::Execution(ExecutionMessage::Order {
        batch: slot.batch.clone(),
        certificate: slot.certificate.clone(),
    })
}

impl Filter {
    pub(super) fn on_order(
        &mut self,
        from: u32,
        batch: OrderedBatch,
        certificate: OrderCertificate,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = batch.sequence;
        if sequence <= self.collected {
            return self.refuse(reason::OLD, from, Some(sequence));
        }
        if sequence > self.collected.saturating_add(self.config.max_ahead) {
            return self.refuse(reason::BEYOND_WINDOW, from, Some(sequence));
        }
        if self.log.contains(sequence) {
            // Only our own stored, verified copy is ever re-sent, so this copy needs no
            // verification (and is not compared: with at most f faulty agreement
            // replicas no second batch can be certified at this sequence).
            return self.on_duplicate_order(from, sequence, out);
        }
        if batch.batch.check_bounds().is_err() {
            return self.refuse(reason::MALFORMED, from, Some(sequence));
        }
        let bytes = order_bytes(&batch, &certificate);
        if self.log.bytes().saturating_add(bytes) > self.config.max_log_bytes {
            return self.refuse(reason::LOG_FULL, from, Some(sequence));
        }
        if let Err(e) = certificate.verify(&batch, &self.config.agreement_keys, self.config.f) {
            tracing::debug!(sequence, error = %e, "ORDER certificate refused");
            return self.refuse(reason::BAD_CERTIFICATE, from, Some(sequence));
        }
        let slot = Slot::new(batch, certificate, self.now);
        out.push(FilterOutput::ToBelow {
            to: None,
            envelope: order_envelope(&slot),
        });
        self.log.insert(sequence, slot);
        self.highest_forwarded = self.highest_forwarded.max(sequence);
        self.stats.orders_forwarded += 1;
    }

    /// Agreement re-delivers an order when a client retransmits, and copies arrive from
    /// several peers above. At most once per `retransmit_interval` per sequence: re-send
    /// the cached certified replies if every request of the batch has one, else forward
    /// the stored order down again (execution replicas then re-send what was lost).
    fn on_duplicate_order(&mut self, from: u32, sequence: Sequence, out: &mut Vec<FilterOutput>) {
        let Some(slot) = self.log.get(sequence) else {
            return;
        };
        if !self.due(Some(slot.last_sent)) {
            return self.refuse(reason::DUPLICATE_ORDER, from, Some(sequence));
        }
        let cached = if slot.requests.is_empty() {
            None
        } else {
            self.cache.all_of(sequence, slot.requests.keys())
        };
        match cached {
            Some(replies) => {
                self.stats.replies_resent += replies.len() as u64;
                out.extend(replies.into_iter().map(|r| FilterOutput::ToAbove {
                    to: None,
                    envelope: Envelope::Firewall(FirewallMessage::CertifiedReply(r)),
                }));
            }
            None => {
                self.stats.orders_reforwarded += 1;
                out.push(FilterOutput::ToBelow {
                    to: None,
                    envelope: order_envelope(slot),
                });
            }
        }
        let now = self.now;
        if let Some(slot) = self.log.get_mut(sequence) {
            slot.last_sent = now;
        }
    }

    /// On each tick: orders whose replies are overdue go down again (a few per tick, the
    /// oldest first). The row below re-sends what it cached, or the execution replicas
    /// re-send their shares and bodies; either way a reply lost upward comes again while
    /// the order is still held, whether or not its client retransmits in time.
    pub(super) fn reforward_overdue(&mut self, out: &mut Vec<FilterOutput>) {
        let overdue = self
            .config
            .overdue_after
            .max(self.config.retransmit_interval);
        let now = self.now;
        let due: Vec<Sequence> = self
            .log
            .from(self.collected.saturating_add(1))
            .filter(|(_, slot)| {
                slot.unanswered > 0 && now >= slot.last_sent.saturating_add(overdue)
            })
            .map(|(sequence, _)| *sequence)
            .take(MAX_REFORWARD_PER_TICK)
            .collect();
        for sequence in due {
            if let Some(slot) = self.log.get_mut(sequence) {
                slot.last_sent = now;
                self.stats.orders_overdue += 1;
                out.push(FilterOutput::ToBelow {
                    to: None,
                    envelope: order_envelope(slot),
                });
            }
        }
    }

    /// `FetchOrders { from }` from peer `asker` below: answer with the logged orders from
    /// `from` on (bounded), at most once per `retransmit_interval` per asker. If the
    /// asked sequence is not held (and not collected), fetch from above — with a
    /// sequence this filter chooses (its own first gap), never the asker's number, so
    /// nothing a replica picks travels up.
    pub(super) fn on_fetch(&mut self, asker: u32, from: Sequence, out: &mut Vec<FilterOutput>) {
        if !self.due(self.fetch_answered.get(&asker).copied()) {
            return self.refuse(reason::FETCH_RATE_LIMITED, asker, Some(from));
        }
        self.fetch_answered.insert(asker, self.now);
        let mut sent = 0usize;
        let mut bytes = 0usize;
        for (_, slot) in self.log.from(from) {
            if sent == MAX_FETCH_ORDERS
                || (sent > 0 && bytes.saturating_add(slot.bytes) > MAX_FETCH_BYTES)
            {
                break;
            }
            out.push(FilterOutput::ToBelow {
                to: Some(asker),
                envelope: order_envelope(slot),
            });
            sent += 1;
            bytes = bytes.saturating_add(slot.bytes);
        }
        if sent > 0 {
            self.stats.fetches_answered += 1;
            self.stats.orders_served += sent as u64;
        }
        if from > self.collected && !self.log.contains(from) {
            self.fetch_from_above(out);
        }
    }

    /// Sends this filter's own `FetchOrders` for its first missing sequence to every
    /// peer above, at most once per `retransmit_interval`.
    fn fetch_from_above(&mut self, out: &mut Vec<FilterOutput>) {
        let want = self.log.first_missing_above(self.collected);
        if want > self.collected.saturating_add(self.config.max_ahead) || !self.due(self.fetch_sent)
        {
            return;
        }
        self.fetch_sent = Some(self.now);
        self.stats.fetches_sent += 1;
        tracing::debug!(
            row = self.config.row,
            column = self.config.column,
            from = want,
            "fetching orders from above"
        );
        out.push(FilterOutput::ToAbove {
            to: None,
            envelope: Envelope::Execution(ExecutionMessage::FetchOrders { from: want }),
        });
    }
}
