//! [`RedundantOrders`]: tells which ORDER messages are the second copy of an order already
//! executed, pushed by another of the senders that push every order: agreement replicas
//! 0..=f in `separate` (see `agreement_node`: so that one correct sender suffices), the
//! bottom filter row through the firewall.
//!
//! Why they are dropped unchecked: the execution core takes an order for an executed
//! sequence as a *re-delivery* — agreement re-sends an order when a client retransmits a
//! request whose replies were lost (TOCS §4.1, §5.2) — and answers it by verifying the
//! certificate again (2f+1 signatures) and re-sending its cached replies. For the routine
//! second copy that is pure waste: measured on the small-files workload it was ~5% of
//! all CPU in certificate checks, and it doubled the replies the gateway receives.
//! Orders pushed by agreement replicas go through [`super::pushed`], which uses this; the
//! execution node uses it for the orders the bottom filters push.
//!
//! The rule keeps real re-deliveries: sender `i` pushes each order once; a second order
//! for the same sequence *from the same sender* is a re-delivery and goes to the core, as
//! does any order we have no record of. An order for an executed sequence from a sender
//! that has not sent it before, while another one has, is the routine redundant copy and
//! is dropped. Bounded: at most [`MAX_TRACKED`] sequences are remembered (the oldest are
//! forgotten, which only means their copies count as re-deliveries).

use std::collections::BTreeMap;

use palisade_wire::agreement::{ReplicaId, Sequence};

/// Most sequences whose senders are remembered.
pub const MAX_TRACKED: usize = 4096;

/// The agreement replicas seen sending each recent sequence's order.
#[derive(Debug, Default)]
pub struct RedundantOrders {
    /// Sequence → bit i set when replica i sent its order.
    senders: BTreeMap<Sequence, u64>,
}

impl RedundantOrders {
    /// Records that replica `from` sent the order for `sequence`, and says whether that
    /// copy is redundant (drop it) given that the node has executed up to
    /// `last_applied`.
    pub fn is_redundant(
        &mut self,
        from: ReplicaId,
        sequence: Sequence,
        last_applied: Sequence,
    ) -> bool {
        let Some(bit) = 1u64.checked_shl(from) else {
            // More than 64 agreement replicas: not tracked, the core decides.
            return false;
        };
        let seen = self.senders.entry(sequence).or_insert(0);
        let before = *seen;
        *seen |= bit;
        if self.senders.len() > MAX_TRACKED {
            self.senders.pop_first();
        }
        sequence <= last_applied && before != 0 && before & bit == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_sender_of_an_executed_order_is_redundant_a_resend_is_not() {
        let mut r = RedundantOrders::default();
        // Replica 0's copy of 5 arrives first, before 5 is executed.
        assert!(!r.is_redundant(0, 5, 4));
        // Replica 1's copy after 5 was executed: the routine second push.
        assert!(r.is_redundant(1, 5, 5));
        // Replica 0 sends 5 again (a client retransmitted): a re-delivery.
        assert!(!r.is_redundant(0, 5, 9));
        // ... and so is replica 1's second copy.
        assert!(!r.is_redundant(1, 5, 9));
        // A second copy of an order not yet executed is for the core (it buffers one).
        assert!(!r.is_redundant(0, 7, 5));
        assert!(!r.is_redundant(1, 7, 5));
        // No record at all (e.g. after a restart): for the core.
        assert!(!r.is_redundant(1, 6, 9));
    }

    #[test]
    fn memory_is_bounded_and_huge_ids_are_not_tracked() {
        let mut r = RedundantOrders::default();
        for s in 0..(MAX_TRACKED as u64 * 2) {
            r.is_redundant(0, s, 0);
        }
        assert_eq!(r.senders.len(), MAX_TRACKED);
        // The oldest were forgotten: a copy of one of them goes to the core.
        assert!(!r.is_redundant(1, 0, u64::MAX));
        assert!(!r.is_redundant(64, 1, u64::MAX));
        assert!(!r.is_redundant(200, 1, u64::MAX));
    }
}
