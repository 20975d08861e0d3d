//! [`PushedOrders`]: orders that agreement replicas push over their own authenticated
//! links (`separate`), taken once f+1 distinct replicas pushed the same batch at one
//! sequence, without checking the ORDER certificate's 2f+1 signatures.
//!
//! Why it is safe: a correct agreement replica pushes an order only for a batch it
//! delivered, that is, one it holds 2f+1 commits for at that sequence (TOCS §4.2,
//! committed-local). f+1 distinct pushers include a correct one, so the batch is
//! committed there, which is all the certificate would prove. The Noise link names each
//! pusher: a MAC suffices for a message its receiver consumes and never forwards (TOCS
//! §3.2), and an execution replica forwards no order it took this way. The certificate
//! travels with every copy and is checked whenever copies do not agree in time, so a
//! pusher that is silent, slow or lying costs an order at most two [`super::PUSH_WAIT`]s
//! (and then is not waited for), never safety or progress.
//!
//! Why: agreement replicas 0..=f already push every order to every execution replica (so
//! that one correct replica does), so the f+1 copies cost nothing more, while the
//! certificate check was three signature checks per batch at each of the 2g+1 replicas
//! (10% of the CPU of `separate` under one-call-at-a-time latency, docs/PERFORMANCE.md).
//!
//! When neither matching copies nor a certificate decide (a faulty pusher's forgery met
//! a correct pusher's copy whose certificate holds the faulty replica's bad commit,
//! `palisade_agreement::Config::link_authenticated_commits`), the sequence is dropped
//! here and comes again from every agreement replica, correct ones included: as fetch
//! answers once a later order shows the gap, or re-sent from their delivery logs when the
//! client retransmits. f+1 of those match (the `forging-pusher` simulator scenario).
//!
//! When not to wait: a batch of [`LARGE_BATCH_BYTES`] of payload or more is checked at
//! its first copy (the certificate check costs the same ~80 µs for any batch, a copy of
//! 1 MiB WRITEs milliseconds to encrypt, send and decode), and waits for matching
//! copies only if that certificate does not hold. In `separate` such a batch comes from
//! one pusher only (`palisade_agreement::pushers`), so further copies come only from
//! fetch answers and re-deliveries, as above.
//!
//! Whom to wait for: pushers seen before (`known`) that did not let a
//! wait expire since they last pushed. A sequence that cannot reach f+1 matching copies
//! from those is checked at once.

use std::collections::BTreeMap;

use palisade_wire::agreement::{
    OrderCertificate, OrderedBatch, ReplicaId, Sequence, LARGE_BATCH_BYTES,
};

use super::redundant_orders::RedundantOrders;

/// One distinct batch pushed at a sequence, the certificate of its first copy, and who
/// pushed it (bit i: agreement replica i).
#[derive(Debug)]
struct Candidate {
    batch: OrderedBatch,
    certificate: OrderCertificate,
    pushers: u64,
}

/// What the core does with one pushed order.
#[derive(Debug)]
pub enum Pushed {
    /// The routine copy of an executed order from a second pusher: nothing.
    Redundant,
    /// A pusher sent an executed order again (a client retransmitted): the core's
    /// re-delivery path re-sends that sequence's cached replies (the link vouches for
    /// the asker, as for `ResendReply`).
    Redelivered(OrderedBatch, OrderCertificate),
    /// f+1 pushers agree on this batch at its sequence.
    Agreed(OrderedBatch),
    /// Copies that could make f+1 are still expected: arm the wait.
    Wait,
    /// No f+1 matching copies are expected: check these (every distinct batch pushed at
    /// that sequence) by their certificates.
    Check(Vec<(OrderedBatch, OrderCertificate)>),
    /// A pusher pushed a second, different batch at a sequence: dropped (no correct
    /// replica does; its first copy still counts).
    Conflicting,
    /// The first copy of a large batch: check its certificate now
    /// ([`PushedOrders::take_certified`]); until that holds, it waits for matching
    /// copies like any other (agreement's certificates may not verify, see
    /// `palisade_agreement::Config::link_authenticated_commits`).
    Verify(Sequence),
}

/// Orders pushed by agreement replicas, above the last executed sequence, not yet taken.
/// Bounded by the caller: it pushes only sequences within `max_ahead` of the last
/// executed one, and each pusher holds at most one batch per sequence here.
#[derive(Debug)]
pub struct PushedOrders {
    /// f+1.
    quorum: usize,
    /// Who pushed each recent sequence: tells the routine second copy of an executed
    /// order from a re-delivery.
    senders: RedundantOrders,
    /// Every pusher seen (bit i: agreement replica i).
    known: u64,
    /// Pushers that let a wait expire without pushing at its sequence; not waited for
    /// until they push again.
    missed: u64,
    /// Per sequence: the generation it began waiting in, and its distinct batches.
    pending: BTreeMap<Sequence, (u64, Vec<Candidate>)>,
    /// Times the wait timer fired. An order waits until the timer fired twice after its
    /// first push, so between one and two [`super::PUSH_WAIT`]s, with one timer for all.
    generation: u64,
}

impl PushedOrders {
    /// Takes an order once `f + 1` distinct agreement replicas pushed it.
    pub fn new(f: usize) -> PushedOrders {
        PushedOrders {
            quorum: f.saturating_add(1),
            senders: RedundantOrders::default(),
            known: 0,
            missed: 0,
            pending: BTreeMap::new(),
            generation: 0,
        }
    }

    /// Agreement replica `from` pushed `batch` over its own link; the replica has
    /// executed through `last_applied`.
    pub fn push(
        &mut self,
        from: ReplicaId,
        batch: OrderedBatch,
        certificate: OrderCertificate,
        last_applied: Sequence,
    ) -> Pushed {
        let sequence = batch.sequence;
        let redundant = self.senders.is_redundant(from, sequence, last_applied);
        let Some(bit) = 1u64.checked_shl(from) else {
            // More than 64 agreement replicas: no fast path, the certificate decides.
            return if sequence <= last_applied {
                Pushed::Redelivered(batch, certificate)
            } else {
                Pushed::Check(vec![(batch, certificate)])
            };
        };
        self.known |= bit;
        self.missed &= !bit;
        self.forget_through(last_applied);
        if sequence <= last_applied {
            return if redundant {
                Pushed::Redundant
            } else {
                Pushed::Redelivered(batch, certificate)
            };
        }
        let generation = self.generation;
        let (_, candidates) = self
            .pending
            .entry(sequence)
            .or_insert_with(|| (generation, Vec::new()));
        let large = candidates.is_empty() && batch.payload_bytes() >= LARGE_BATCH_BYTES;
        if let Some(own) = candidates.iter().find(|c| c.pushers & bit != 0) {
            // Pushed again before it was taken (a retransmission): nothing new, unless
            // it is another batch.
            return if own.batch == batch {
                Pushed::Wait
            } else {
                Pushed::Conflicting
            };
        }
        match candidates.iter_mut().find(|c| c.batch == batch) {
            Some(c) => c.pushers |= bit,
            None => candidates.push(Candidate {
                batch,
                certificate,
                pushers: bit,
            }),
        }
        if let Some(i) = candidates
            .iter()
            .position(|c| c.pushers.count_ones() as usize >= self.quorum)
        {
            let taken = candidates.swap_remove(i);
            self.pending.remove(&sequence);
            return Pushed::Agreed(taken.batch);
        }
        if large {
            return Pushed::Verify(sequence);
        }
        let pushed_here = candidates.iter().fold(0, |all, c| all | c.pushers);
        let most = candidates
            .iter()
            .map(|c| c.pushers.count_ones())
            .max()
            .unwrap_or(0);
        let expected = (self.known & !self.missed & !pushed_here).count_ones();
        if (most.saturating_add(expected) as usize) < self.quorum {
            return Pushed::Check(self.take(sequence));
        }
        Pushed::Wait
    }

    /// The wait timer fired: the orders that waited since before its previous firing
    /// are to be checked by their certificates, in sequence order, and pushers that
    /// pushed nothing at such a sequence are not waited for again until they push.
    pub fn expire(&mut self, last_applied: Sequence) -> Vec<(OrderedBatch, OrderCertificate)> {
        self.forget_through(last_applied);
        let cutoff = self.generation;
        self.generation = self.generation.saturating_add(1);
        let mut expired = Vec::new();
        self.pending.retain(|_, (born, candidates)| {
            if *born >= cutoff {
                return true;
            }
            let pushed_here = candidates.iter().fold(0, |all, c| all | c.pushers);
            self.missed |= self.known & !pushed_here;
            expired.extend(candidates.drain(..).map(|c| (c.batch, c.certificate)));
            false
        });
        expired
    }

    /// Takes the batch waiting at `sequence` if `holds` accepts its certificate (see
    /// [`Pushed::Verify`]); otherwise it keeps waiting.
    pub fn take_certified(
        &mut self,
        sequence: Sequence,
        holds: impl Fn(&OrderedBatch, &OrderCertificate) -> bool,
    ) -> Option<OrderedBatch> {
        let (_, candidates) = self.pending.get_mut(&sequence)?;
        let i = candidates
            .iter()
            .position(|c| holds(&c.batch, &c.certificate))?;
        let taken = candidates.swap_remove(i);
        self.pending.remove(&sequence);
        Some(taken.batch)
    }

    /// Whether any order waits (the timer must stay armed).
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    fn take(&mut self, sequence: Sequence) -> Vec<(OrderedBatch, OrderCertificate)> {
        self.pending
            .remove(&sequence)
            .map(|(_, candidates)| candidates)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.batch, c.certificate))
            .collect()
    }

    /// Drops what waits at or below `last_applied` (executed, or skipped by a state
    /// transfer).
    fn forget_through(&mut self, last_applied: Sequence) {
        if self
            .pending
            .first_key_value()
            .is_some_and(|(s, _)| *s <= last_applied)
        {
            self.pending = self.pending.split_off(&last_applied.saturating_add(1));
        }
    }
}
