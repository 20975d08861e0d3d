//! The confidentiality invariant of the privacy firewall (Yin et al., SOSP 2003, §4;
//! DESIGN §2: "no byte of file state reaches anyone outside the execution cluster except
//! inside correct replies").
//!
//! **What may leave the firewall.** A message that crosses the boundary — top-row filter
//! → agreement node or client, agreement node → client — *conforms* when it is
//! - a `CertifiedReply` whose Merkle path and threshold signature verify and whose
//!   (client, request id) was ordered at its sequence (the committed order the checker
//!   observed), or
//! - a `Stable` certificate whose threshold signature verifies, or
//! - a `FetchOrders` (a sequence number a filter chose).
//!
//! Anything else crossing is a [`Violation::Leak`] — with one refinement, because a
//! Byzantine filter can always make up bytes: a compromised node's non-conforming
//! message is a leak only if the node could know something of the execution cluster's
//! state. The checker tracks that as *taint* (information flow): every execution replica
//! is a source; a message is tainted when its sender is tainted and it does not conform
//! (conforming messages carry only what g+1 replicas certified); a node that receives a
//! tainted message is tainted from then on. So a compromised top filter that forges
//! garbage while the row below it is correct leaks nothing (counted as a harmless
//! forgery), but one that forwards what a compromised filter below passed up is caught.
//!
//! Correct filters get no such allowance: every upward message of a correct filter (in
//! any row) must conform, tainted or not. That checks the filter core itself. A correct
//! agreement node is a conduit: it relays certified replies to clients without checking
//! their signatures (the filter rows did, and the client does; see
//! `palisade_firewall::ReplyRelay`), so what it relays is judged like anything else that
//! crosses: a forgery it passes on is a leak only if it carries taint.

use std::collections::BTreeSet;
use std::sync::Arc;

use palisade_crypto::{verify_stable, ThresholdVerifier, VerifiedRoots};
use palisade_wire::agreement::{Bounded, ClientId, OrderedBatch, Sequence};
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::FirewallMessage;

use crate::invariants::Violation;
use crate::message::{Msg, NodeId};
use crate::topology::Topology;

/// Most (client, request id, sequence) triples remembered (far more than a run orders).
const MAX_ORDERED: usize = 1 << 20;

/// What the checker saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfidentialityStats {
    /// Messages that crossed the boundary, all conforming.
    pub crossed: u64,
    /// Non-conforming messages from untainted compromised nodes that crossed (made-up
    /// bytes: no information from the execution cluster).
    pub harmless_forgeries: u64,
    /// Tainted messages stopped inside the firewall (sent to a filter that did not pass
    /// them on).
    pub tainted_messages: u64,
}

pub struct Confidentiality {
    topology: Topology,
    verifier: Arc<dyn ThresholdVerifier>,
    roots: VerifiedRoots,
    ordered: BTreeSet<(ClientId, u64, Sequence)>,
    tainted: BTreeSet<NodeId>,
    pub stats: ConfidentialityStats,
}

impl Confidentiality {
    pub fn new(topology: Topology, verifier: Arc<dyn ThresholdVerifier>) -> Confidentiality {
        Confidentiality {
            topology,
            verifier,
            roots: VerifiedRoots::new(4096),
            ordered: BTreeSet::new(),
            tainted: BTreeSet::new(),
            stats: ConfidentialityStats::default(),
        }
    }

    /// A batch of the committed order: its requests are outstanding at its sequence.
    pub fn observe_order(&mut self, batch: &OrderedBatch) {
        for r in &batch.batch.requests {
            if self.ordered.len() >= MAX_ORDERED {
                self.ordered.pop_first();
            }
            self.ordered
                .insert((r.message.client, r.message.request_id, batch.sequence));
        }
    }

    /// Whether `node` may know something of the execution cluster's state.
    pub fn is_tainted(&self, node: NodeId) -> bool {
        matches!(node, NodeId::Execution(_)) || self.tainted.contains(&node)
    }

    pub fn tainted_nodes(&self) -> usize {
        self.tainted.len()
    }

    /// `Ok` if `msg` may leave the firewall; otherwise why not.
    pub fn conforms(&mut self, msg: &Msg) -> Result<(), &'static str> {
        match msg {
            Msg::Firewall(FirewallMessage::CertifiedReply(c)) => {
                FirewallMessage::CertifiedReply(c.clone())
                    .check_bounds()
                    .map_err(|_| "certified reply out of bounds")?;
                self.roots
                    .verify(self.verifier.as_ref(), c)
                    .map_err(|_| "certified reply that does not verify")?;
                if !self
                    .ordered
                    .contains(&(c.entry.client, c.entry.request_id, c.sequence))
                {
                    return Err("certified reply for a request not ordered at its sequence");
                }
                Ok(())
            }
            Msg::Firewall(FirewallMessage::Stable(s)) => verify_stable(self.verifier.as_ref(), s)
                .map_err(|_| "stable certificate that does not verify"),
            // A vouch repeats a claim that certified replies carry; it may go out only
            // if that claim is true.
            Msg::Firewall(FirewallMessage::Vouch(v)) => {
                if self.verifier.verify(
                    &palisade_wire::firewall::reply_root_message(v.sequence, &v.root),
                    &v.signature,
                ) {
                    Ok(())
                } else {
                    Err("vouch for a false claim")
                }
            }
            Msg::Execution(ExecutionMessage::FetchOrders { .. }) => Ok(()),
            Msg::Firewall(FirewallMessage::ReplyShare(_)) => Err("reply share"),
            Msg::Firewall(FirewallMessage::ReplyBody(_)) => Err("uncertified reply body"),
            Msg::Firewall(FirewallMessage::StableShare(_)) => Err("stable share"),
            Msg::Opaque(_) => Err("raw bytes"),
            Msg::Reply(_) => Err("signed reply"),
            Msg::ReadOnlyReply(_) => Err("read-only reply"),
            Msg::ReadOnly { .. } => Err("read-only request"),
            Msg::Execution(_) => Err("execution message"),
            Msg::Agreement(_) => Err("agreement message"),
            Msg::Request(_) => Err("request"),
            Msg::RepliedThrough(_) => Err("replied-through report"),
        }
    }

    /// Checks one message `from` → `to` when it is sent (the network may still lose
    /// it). `correct`: whether the sender is a correct node. Returns whether the message
    /// is tainted (the receiver learns something of the execution cluster's state).
    pub fn on_send(
        &mut self,
        from: NodeId,
        to: NodeId,
        msg: &Msg,
        correct: bool,
    ) -> Result<bool, Violation> {
        let source_tainted = self.is_tainted(from);
        let boundary = self.topology.crosses_boundary(from, to);
        let strict = correct && matches!(from, NodeId::Filter(_)) && self.topology.upward(from, to);
        if !(source_tainted || boundary || strict) {
            return Ok(false);
        }
        let verdict = self.conforms(msg);
        let Err(reason) = verdict else {
            if boundary {
                self.stats.crossed += 1;
            }
            return Ok(false);
        };
        if strict || (boundary && source_tainted) {
            let who = if correct {
                "a correct node"
            } else {
                "a compromised node that received uncertified output of the execution cluster"
            };
            return Err(Violation::Leak(format!(
                "{from} -> {to}: {who} sent a {} message: {reason}",
                msg.kind()
            )));
        }
        if boundary {
            self.stats.harmless_forgeries += 1;
        }
        if source_tainted && matches!(to, NodeId::Filter(_)) {
            self.stats.tainted_messages += 1;
        }
        Ok(source_tainted)
    }

    /// A tainted message arrived at `to`.
    pub fn on_deliver(&mut self, to: NodeId) {
        if !matches!(to, NodeId::Execution(_)) {
            self.tainted.insert(to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto_memo::FirewallKeys;
    use palisade_crypto::{certify_replies, leaf_hash, root};
    use palisade_wire::agreement::{Batch, Request, Signed};
    use palisade_wire::firewall::{reply_root_message, ReplyBody, ReplyEntry, ThresholdSignature};

    fn topology() -> Topology {
        Topology {
            h: Some(1),
            n_agreement: 4,
            n_execution: 3,
        }
    }

    fn ordered_batch(sequence: Sequence, ids: &[u64]) -> OrderedBatch {
        let requests = ids
            .iter()
            .map(|id| Signed {
                signer: 0,
                message: Request {
                    client: 0,
                    request_id: *id,
                    payload: Default::default(),
                },
                signature: palisade_wire::agreement::Signature([0; 64]),
            })
            .collect();
        OrderedBatch {
            sequence,
            batch: Batch {
                timestamp: Default::default(),
                requests,
            },
        }
    }

    /// A certified reply for (client 0, request 1) at sequence 3, really signed by g+1
    /// shares.
    fn certified(keys: &FirewallKeys) -> Msg {
        let entries = vec![ReplyEntry {
            client: 0,
            request_id: 1,
            body: b"sealed".to_vec(),
        }];
        let leaves: Vec<_> = entries.iter().map(leaf_hash).collect();
        let message = reply_root_message(3, &root(&leaves));
        let shares: Vec<_> = [0u32, 1]
            .iter()
            .map(|i| (*i, keys.signers[*i as usize].sign_share(&message)))
            .collect();
        let signature = keys.verifier().combine(&shares).unwrap();
        let c = certify_replies(3, &entries, &signature).remove(0);
        Msg::Firewall(FirewallMessage::CertifiedReply(c))
    }

    #[test]
    fn what_may_cross_and_what_is_a_leak() {
        let keys = FirewallKeys::from_seed(1, 1).unwrap();
        let mut c = Confidentiality::new(topology(), keys.verifier());
        let top = NodeId::Filter(0);
        let bottom = NodeId::Filter(2);
        let agreement = NodeId::Agreement(1);
        let good = certified(&keys);
        // Not ordered yet: even a valid certificate must not cross.
        assert!(matches!(
            c.on_send(top, agreement, &good, true),
            Err(Violation::Leak(_))
        ));
        c.observe_order(&ordered_batch(3, &[1, 2]));
        assert_eq!(c.on_send(top, agreement, &good, true), Ok(false));
        assert_eq!(
            c.on_send(agreement, NodeId::Client(0), &good, true),
            Ok(false)
        );
        assert_eq!(c.stats.crossed, 2);

        // A made-up reply from a compromised top filter that saw nothing uncertified:
        // harmless.
        let Msg::Firewall(FirewallMessage::CertifiedReply(mut forged)) = good.clone() else {
            unreachable!()
        };
        forged.signature = ThresholdSignature(vec![7; 96]);
        let forged = Msg::Firewall(FirewallMessage::CertifiedReply(forged));
        assert_eq!(c.on_send(top, agreement, &forged, false), Ok(false));
        assert_eq!(c.stats.harmless_forgeries, 1);
        // From a correct filter it would be a bug of the filter: a leak.
        assert!(c.on_send(top, agreement, &forged, true).is_err());
        assert!(c.on_send(bottom, top, &forged, true).is_err());
        // A correct agreement node passing that harmless forgery on to the client (it
        // does not check signatures; the client does) leaks nothing either.
        assert_eq!(
            c.on_send(agreement, NodeId::Client(0), &forged, true),
            Ok(false)
        );
        assert_eq!(c.stats.harmless_forgeries, 2);

        // An execution replica's body is tainted; the compromised bottom filter that
        // receives it becomes tainted, passes it up (tainted), and a compromised top filter
        // that receives that and sends anything uncertified out leaks.
        let body = Msg::Firewall(FirewallMessage::ReplyBody(ReplyBody {
            sequence: 3,
            replica: 0,
            entry: ReplyEntry {
                client: 0,
                request_id: 1,
                body: b"secret".to_vec(),
            },
        }));
        assert_eq!(
            c.on_send(NodeId::Execution(0), bottom, &body, true),
            Ok(true)
        );
        c.on_deliver(bottom);
        assert_eq!(c.on_send(bottom, top, &body, false), Ok(true));
        // Conforming messages carry nothing, tainted sender or not.
        assert_eq!(c.on_send(bottom, top, &good, false), Ok(false));
        c.on_deliver(top);
        assert!(matches!(
            c.on_send(top, agreement, &forged, false),
            Err(Violation::Leak(_))
        ));
        // An agreement node that received tainted bytes and relays anything uncertified
        // to a client leaks, correct or not.
        c.on_deliver(agreement);
        assert!(matches!(
            c.on_send(agreement, NodeId::Client(0), &forged, true),
            Err(Violation::Leak(_))
        ));
        assert!(c
            .on_send(top, NodeId::Client(0), &Msg::Opaque(vec![1]), false)
            .is_err());
        assert_eq!(c.on_send(top, agreement, &good, false), Ok(false));
    }
}
