//! The filter's order log: every ORDER it forwarded down and has not yet collected, with
//! the requests of each batch that are outstanding (SOSP 2003 §4: a filter forwards a
//! reply up only for a request it saw going down). Bounded in count by the window
//! `(collected, collected + max_ahead]` and in bytes by `max_log_bytes`.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_wire::agreement::{ClientId, OrderCertificate, OrderedBatch, Sequence};

use crate::vouch::Claims;

/// Per request: bytes charged for its signed envelope and bookkeeping (client id, request
/// id, ed25519 signature, map entries), on top of its payload.
const REQUEST_OVERHEAD: usize = 160;
/// Per commit of the ORDER certificate.
const COMMIT_OVERHEAD: usize = 192;
/// Per slot.
const SLOT_OVERHEAD: usize = 256;

/// A (client, request id): one request of a batch.
pub(crate) type RequestKey = (ClientId, u64);

/// One forwarded order.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub batch: OrderedBatch,
    pub certificate: OrderCertificate,
    /// What this slot is charged against `max_log_bytes`.
    pub bytes: usize,
    /// The distinct requests of the batch, and whether a certified reply to each was
    /// forwarded up (at most once, SOSP 2003 §4.2).
    pub requests: BTreeMap<RequestKey, bool>,
    /// How many of `requests` have no reply forwarded up yet.
    pub unanswered: usize,
    /// When the order was last forwarded down, or its replies re-sent up.
    pub last_sent: Duration,
    /// Upper rows: what the replies of this sequence claim and which claims are settled,
    /// so a batch's signature is settled once and not once per reply.
    pub claims: Claims,
}

impl Slot {
    pub fn new(batch: OrderedBatch, certificate: OrderCertificate, now: Duration) -> Slot {
        let requests: BTreeMap<RequestKey, bool> = batch
            .batch
            .requests
            .iter()
            .map(|r| ((r.message.client, r.message.request_id), false))
            .collect();
        let bytes = order_bytes(&batch, &certificate);
        let unanswered = requests.len();
        Slot {
            unanswered,
            batch,
            certificate,
            bytes,
            requests,
            last_sent: now,
            claims: Claims::default(),
        }
    }
}

/// The bytes an order is charged in the log: its payloads plus a fixed overhead per
/// request and per commit (an estimate of the in-memory size that needs no second
/// encoding of a batch of up to 4 MiB).
pub(crate) fn order_bytes(batch: &OrderedBatch, certificate: &OrderCertificate) -> usize {
    let requests: usize = batch
        .batch
        .requests
        .iter()
        .map(|r| r.message.payload.len().saturating_add(REQUEST_OVERHEAD))
        .fold(0usize, usize::saturating_add);
    let OrderCertificate::Pbft(c) = certificate;
    let commits = c.commits.len().saturating_mul(COMMIT_OVERHEAD);
    requests
        .saturating_add(commits)
        .saturating_add(SLOT_OVERHEAD)
}

/// Forwarded orders by sequence.
#[derive(Clone, Debug, Default)]
pub(crate) struct OrderLog {
    slots: BTreeMap<Sequence, Slot>,
    bytes: usize,
}

impl OrderLog {
    pub fn get(&self, sequence: Sequence) -> Option<&Slot> {
        self.slots.get(&sequence)
    }

    pub fn get_mut(&mut self, sequence: Sequence) -> Option<&mut Slot> {
        self.slots.get_mut(&sequence)
    }

    pub fn contains(&self, sequence: Sequence) -> bool {
        self.slots.contains_key(&sequence)
    }

    pub fn insert(&mut self, sequence: Sequence, slot: Slot) {
        self.bytes = self.bytes.saturating_add(slot.bytes);
        if let Some(old) = self.slots.insert(sequence, slot) {
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every slot, mutably, in sequence order.
    pub fn slots_mut(&mut self) -> impl Iterator<Item = (&Sequence, &mut Slot)> {
        self.slots.iter_mut()
    }

    /// Slots from `from` on, in sequence order.
    pub fn from(&self, from: Sequence) -> impl Iterator<Item = (&Sequence, &Slot)> {
        self.slots.range(from..)
    }

    /// The lowest sequence above `floor` that is not in the log.
    pub fn first_missing_above(&self, floor: Sequence) -> Sequence {
        let mut want = floor.saturating_add(1);
        for sequence in self.slots.range(want..).map(|(s, _)| *s) {
            if sequence != want {
                break;
            }
            want = want.saturating_add(1);
        }
        want
    }

    /// Drops every slot at or below `sequence`.
    pub fn collect_through(&mut self, sequence: Sequence) {
        let kept = self.slots.split_off(&sequence.saturating_add(1));
        let dropped = std::mem::replace(&mut self.slots, kept);
        for slot in dropped.values() {
            self.bytes = self.bytes.saturating_sub(slot.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::agreement::{Batch, Digest, PbftCertificate};

    fn slot(sequence: Sequence) -> Slot {
        let batch = OrderedBatch {
            sequence,
            batch: Batch::null(),
        };
        let certificate = OrderCertificate::Pbft(PbftCertificate {
            view: 0,
            sequence,
            digest: Digest::default(),
            commits: vec![],
        });
        Slot::new(batch, certificate, Duration::ZERO)
    }

    #[test]
    fn gaps_and_collection_keep_the_byte_count_exact() {
        let mut log = OrderLog::default();
        for s in [1, 2, 4, 5] {
            log.insert(s, slot(s));
        }
        let one = slot(1).bytes;
        assert_eq!(log.bytes(), 4 * one);
        assert_eq!(log.first_missing_above(0), 3);
        assert_eq!(log.first_missing_above(3), 6);
        assert_eq!(log.first_missing_above(7), 8);
        log.insert(4, slot(4));
        assert_eq!(log.bytes(), 4 * one);
        log.collect_through(4);
        assert_eq!(log.len(), 1);
        assert_eq!(log.bytes(), one);
        assert!(log.contains(5) && !log.contains(4));
        log.collect_through(u64::MAX);
        assert_eq!((log.len(), log.bytes()), (0, 0));
    }
}
