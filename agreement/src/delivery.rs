//! [`DeliveryLog`]: the ordered batches an agreement node delivered, kept until a stable
//! execution checkpoint covers them, so that an execution replica that missed some can
//! fetch them again (Yin et al., SOSP 2003, §3; the role of PBFT's message log below a
//! stable checkpoint, Castro–Liskov TOCS §4.3).
//!
//! It is pure and bounded: at most `max_entries` batches and `max_bytes` of request
//! payload. When a bound is hit the lowest sequences go first; a replica that needed them
//! catches up by state transfer instead. The caller verifies what it records (its own
//! deliveries) and the [`CheckpointCertificate`] it collects on
//! ([`CheckpointCertificate::verify`]).

use std::collections::BTreeMap;

use palisade_wire::agreement::{OrderCertificate, OrderedBatch, Sequence};
use palisade_wire::execution::{CheckpointCertificate, ExecutionMessage};

/// Fixed per-batch overhead counted towards `max_bytes` (sequence, timestamp, signatures
/// of the requests and of the certificate), so that many empty batches are bounded too.
const ENTRY_OVERHEAD: usize = 1024;

/// What the log dropped or refused, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Batches recorded.
    pub recorded: u64,
    /// Batches refused because they were at or below the collected sequence.
    pub stale: u64,
    /// Batches refused because that sequence was already recorded.
    pub duplicate: u64,
    /// Batches dropped, lowest first, to stay within the bounds.
    pub evicted: u64,
    /// Batches released by stable checkpoints.
    pub collected: u64,
}

/// Delivered (batch, certificate) pairs, by sequence number.
#[derive(Debug)]
pub struct DeliveryLog {
    entries: BTreeMap<Sequence, (OrderedBatch, OrderCertificate)>,
    bytes: usize,
    /// Everything at or below this is covered by a stable checkpoint.
    collected: Sequence,
    /// The certificate of that checkpoint, when it came with one (`separate`): sent
    /// ahead of the orders to a replica that fetches from at or below it, since the
    /// orders it asks for are gone and it must catch up by state transfer.
    stable: Option<CheckpointCertificate>,
    max_entries: usize,
    max_bytes: usize,
    max_fetch: usize,
    max_fetch_bytes: usize,
    stats: DeliveryStats,
}

impl Default for DeliveryLog {
    /// 1024 batches, 512 MiB of payload; answers of at most 64 batches or 16 MiB.
    fn default() -> Self {
        DeliveryLog::new(1024, 512 * 1024 * 1024, 64, 16 * 1024 * 1024)
    }
}

fn entry_bytes(batch: &OrderedBatch) -> usize {
    batch.batch.requests.iter().fold(ENTRY_OVERHEAD, |acc, r| {
        acc.saturating_add(r.message.payload.len())
            .saturating_add(128)
    })
}

impl DeliveryLog {
    /// A log holding at most `max_entries` batches and `max_bytes` (payload plus a fixed
    /// overhead per batch and request); one [`DeliveryLog::fetch`] answers at most
    /// `max_fetch` batches and, beyond the first, at most `max_fetch_bytes`. Zero limits
    /// are raised to one.
    pub fn new(
        max_entries: usize,
        max_bytes: usize,
        max_fetch: usize,
        max_fetch_bytes: usize,
    ) -> DeliveryLog {
        DeliveryLog {
            entries: BTreeMap::new(),
            bytes: 0,
            collected: 0,
            stable: None,
            max_entries: max_entries.max(1),
            max_bytes: max_bytes.max(1),
            max_fetch: max_fetch.max(1),
            max_fetch_bytes: max_fetch_bytes.max(1),
            stats: DeliveryStats::default(),
        }
    }

    /// Records a batch this node delivered, with its ORDER certificate. Batches at or
    /// below the collected sequence, or at a sequence already recorded, are ignored
    /// (counted): agreement delivers each sequence once, so a second one is a bug or a
    /// replay.
    pub fn record(&mut self, batch: OrderedBatch, certificate: OrderCertificate) {
        let sequence = batch.sequence;
        if sequence <= self.collected {
            self.stats.stale += 1;
            tracing::debug!(sequence, "delivery log: stale batch not recorded");
            return;
        }
        if self.entries.contains_key(&sequence) {
            self.stats.duplicate += 1;
            tracing::debug!(sequence, "delivery log: sequence already recorded");
            return;
        }
        self.bytes = self.bytes.saturating_add(entry_bytes(&batch));
        self.entries.insert(sequence, (batch, certificate));
        self.stats.recorded += 1;
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some((seq, (b, _))) = self.entries.pop_first() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(entry_bytes(&b));
            self.stats.evicted += 1;
            tracing::debug!(sequence = seq, "delivery log full: oldest batch evicted");
        }
    }

    /// The recorded batches from `from` on, in sequence order, as
    /// [`ExecutionMessage::Order`] messages: at most `max_fetch` of them, and no more
    /// than `max_fetch_bytes` beyond the first. Answers a `FetchOrders { from }`.
    pub fn fetch(&self, from: Sequence) -> Vec<ExecutionMessage> {
        let mut out = Vec::new();
        if let Some(stable) = self.stable.as_ref().filter(|s| from <= s.sequence) {
            // What it asks for was collected: without the certificate, a replica that
            // was down while its peers exchanged that checkpoint would wait for those
            // orders forever (found by the simulator, chaos seed 293).
            out.push(ExecutionMessage::Stable(stable.clone()));
        }
        let mut bytes = 0usize;
        for (batch, certificate) in self.entries.range(from..).map(|(_, e)| e) {
            if out.len() >= self.max_fetch {
                break;
            }
            let size = entry_bytes(batch);
            if !out.is_empty() && bytes.saturating_add(size) > self.max_fetch_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            out.push(ExecutionMessage::Order {
                batch: batch.clone(),
                certificate: certificate.clone(),
            });
        }
        out
    }

    /// Releases every batch at or below the sequence of a stable execution checkpoint
    /// (which the caller verified): every correct execution replica that needs state up
    /// to there can now get it by state transfer.
    pub fn collect(&mut self, stable: &CheckpointCertificate) {
        if stable.sequence > self.collected {
            self.stable = Some(stable.clone());
        }
        self.collect_through(stable.sequence);
    }

    /// Releases every batch at or below `sequence`, a stable execution checkpoint the
    /// caller verified by other means: in the firewall configuration a threshold-signed
    /// `StableCertificate`, which names no state digest (SOSP 2003 §4).
    pub fn collect_through(&mut self, sequence: Sequence) {
        if sequence <= self.collected {
            return;
        }
        self.collected = sequence;
        let keep = self.entries.split_off(&sequence.saturating_add(1));
        let gone = std::mem::replace(&mut self.entries, keep);
        if sequence == Sequence::MAX {
            // split_off(MAX) kept MAX itself; nothing can be above it.
            self.entries.clear();
        }
        for (b, _) in gone.values() {
            self.bytes = self.bytes.saturating_sub(entry_bytes(b));
        }
        self.stats.collected += gone.len() as u64;
        if sequence == Sequence::MAX {
            self.bytes = 0;
        }
    }

    /// Number of batches held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The highest sequence a stable checkpoint released.
    pub fn collected(&self) -> Sequence {
        self.collected
    }

    /// The lowest and highest sequence held.
    pub fn range(&self) -> Option<(Sequence, Sequence)> {
        Some((
            *self.entries.first_key_value()?.0,
            *self.entries.last_key_value()?.0,
        ))
    }

    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use palisade_wire::agreement::{Batch, Digest, PbftCertificate, Request, Signature, Signed};

    /// A batch at `sequence` with one request of `payload` bytes (none for 0), and a
    /// certificate that names it (unsigned). Also used by `pushers`' tests.
    pub(crate) fn entry(sequence: Sequence, payload: usize) -> (OrderedBatch, OrderCertificate) {
        let requests = if payload == 0 {
            vec![]
        } else {
            vec![Signed {
                signer: 0,
                message: Request {
                    client: 0,
                    request_id: sequence,
                    payload: vec![0; payload].into(),
                },
                signature: Signature([0; 64]),
            }]
        };
        (
            OrderedBatch {
                sequence,
                batch: Batch {
                    timestamp: Default::default(),
                    requests,
                },
            },
            OrderCertificate::Pbft(PbftCertificate {
                view: 0,
                sequence,
                digest: Digest([0; 32]),
                commits: vec![],
            }),
        )
    }

    fn stable(sequence: Sequence) -> CheckpointCertificate {
        CheckpointCertificate {
            sequence,
            state_digest: Digest([1; 32]),
            signatures: vec![],
        }
    }

    fn sequences(msgs: &[ExecutionMessage]) -> Vec<Sequence> {
        msgs.iter()
            .map(|m| match m {
                ExecutionMessage::Order { batch, .. } => batch.sequence,
                other => panic!("not an order: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn fetch_answers_in_order_and_bounded() {
        let mut log = DeliveryLog::new(100, 1 << 30, 3, 1 << 30);
        for s in [3, 1, 2, 5, 4] {
            let (b, c) = entry(s, 0);
            log.record(b, c);
        }
        assert_eq!(sequences(&log.fetch(2)), vec![2, 3, 4]);
        assert_eq!(sequences(&log.fetch(5)), vec![5]);
        assert!(log.fetch(6).is_empty());
        let (b, c) = entry(3, 7);
        log.record(b, c);
        assert_eq!(log.stats().duplicate, 1);
        // The first recording of 3 stays.
        match &log.fetch(3)[0] {
            ExecutionMessage::Order { batch, .. } => assert!(batch.batch.is_null()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fetch_bytes_bound_still_returns_one() {
        let mut log = DeliveryLog::new(100, 1 << 30, 10, 1000);
        for s in 1..=3 {
            let (b, c) = entry(s, 5000);
            log.record(b, c);
        }
        assert_eq!(sequences(&log.fetch(1)), vec![1]);
    }

    #[test]
    fn collect_releases_covered_batches_and_refuses_stale_ones() {
        let mut log = DeliveryLog::default();
        for s in 1..=10 {
            let (b, c) = entry(s, 10);
            log.record(b, c);
        }
        log.collect(&stable(6));
        assert_eq!(log.range(), Some((7, 10)));
        assert_eq!(log.stats().collected, 6);
        // An older certificate changes nothing.
        log.collect(&stable(4));
        assert_eq!(log.len(), 4);
        let (b, c) = entry(5, 0);
        log.record(b, c);
        assert_eq!(log.stats().stale, 1);
        // A fetch from below what was collected gets the stable certificate first (the
        // orders it asks for are gone: it must catch up by state transfer), then the
        // orders that are left; a fetch above it gets orders only.
        let answer = log.fetch(1);
        assert_eq!(answer.first(), Some(&ExecutionMessage::Stable(stable(6))));
        assert_eq!(sequences(&answer[1..]), vec![7, 8, 9, 10]);
        assert_eq!(
            log.fetch(6).first(),
            Some(&ExecutionMessage::Stable(stable(6)))
        );
        assert_eq!(sequences(&log.fetch(7)), vec![7, 8, 9, 10]);
        log.collect(&stable(Sequence::MAX));
        assert!(log.is_empty());
    }

    #[test]
    fn collect_through_a_sequence_without_a_certificate() {
        let mut log = DeliveryLog::default();
        for s in 1..=5 {
            let (b, c) = entry(s, 10);
            log.record(b, c);
        }
        log.collect_through(3);
        assert_eq!(log.range(), Some((4, 5)));
        assert_eq!(log.collected(), 3);
        log.collect_through(2);
        assert_eq!(log.collected(), 3);
        assert_eq!(log.stats().collected, 3);
    }

    #[test]
    fn bounds_evict_lowest_first() {
        let mut log = DeliveryLog::new(3, 1 << 30, 10, 1 << 30);
        for s in 1..=5 {
            let (b, c) = entry(s, 0);
            log.record(b, c);
        }
        assert_eq!(log.range(), Some((3, 5)));
        assert_eq!(log.stats().evicted, 2);
        let mut log = DeliveryLog::new(100, 3 * (ENTRY_OVERHEAD + 128 + 100), 10, 1 << 30);
        for s in 1..=5 {
            let (b, c) = entry(s, 100);
            log.record(b, c);
        }
        assert_eq!(log.range(), Some((3, 5)));
    }
}
