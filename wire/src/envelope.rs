//! [`Envelope`]: the one message type that travels on an authenticated link between any
//! two Palisade nodes (gateway, agreement, filter, execution). The link layer (`palisade-net`)
//! authenticates *who* sent it; each variant still carries its own signatures, checked by
//! the receiving core before the message touches state (DESIGN §3).

use serde::{Deserialize, Serialize};

use crate::agreement::{AgreementMessage, Bounded, Request, Sequence, Signed, VerifyError};
use crate::execution::{BatchReply, ExecutionMessage, Reply};
use crate::firewall::FirewallMessage;

/// Everything on a link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// Agreement replica → agreement replica (PBFT).
    Agreement(AgreementMessage),
    /// Client (gateway) → agreement replicas: a signed request.
    Request(Signed<Request>),
    /// Client (gateway) → agreement replicas: this client has now accepted replies
    /// through this sequence number. Only a batching hint for the primary (see
    /// `Config::max_batches_unanswered` in `palisade-agreement`), so the link's
    /// authentication is all it carries: a client that lies can change how requests
    /// are batched, and nothing else.
    RepliedThrough(Sequence),
    /// To, from and between execution replicas: ordered batches, checkpoints, stable
    /// certificates, fetches, state transfer.
    Execution(ExecutionMessage),
    /// Execution replica → client (gateway): a reply under the replica's signature on
    /// its batch (the `separate` configuration).
    Reply(BatchReply),
    /// Up through the privacy firewall: shares from execution replicas to the bottom
    /// row, certified replies and stable checkpoints from row to row, to agreement nodes,
    /// and (certified replies) from agreement nodes to the gateway.
    Firewall(FirewallMessage),
    /// Client (gateway) → every execution replica (`separate` only): a request whose
    /// operation only reads, to be executed without ordering once the replica has
    /// executed through `after` (TOCS §5.1.3, the read-only optimization; see
    /// `palisade_client` for why 2g+1 matching answers make it linearizable).
    ReadOnly {
        request: Signed<Request>,
        after: Sequence,
    },
    /// Execution replica → client: its answer to a [`Envelope::ReadOnly`] request, read
    /// from its state after `reply.sequence`. Unsigned: the client consumes it itself
    /// and never forwards it, so the link's MAC is the authentication it needs (TOCS
    /// §3.2); the link names the sender.
    ReadOnlyReply(Reply),
}

impl Envelope {
    /// A short name of the variant, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Envelope::Agreement(_) => "agreement",
            Envelope::Request(_) => "request",
            Envelope::RepliedThrough(_) => "replied-through",
            Envelope::Execution(_) => "execution",
            Envelope::Reply(_) => "reply",
            Envelope::Firewall(_) => "firewall",
            Envelope::ReadOnly { .. } => "read-only",
            Envelope::ReadOnlyReply(_) => "read-only-reply",
        }
    }
}

impl Bounded for Envelope {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        match self {
            Envelope::Agreement(m) => m.check_bounds(),
            Envelope::Request(r) => r.message.check_bounds(),
            Envelope::RepliedThrough(_) => Ok(()),
            Envelope::Execution(m) => m.check_bounds(),
            Envelope::Reply(r) => r.check_bounds(),
            Envelope::Firewall(m) => m.check_bounds(),
            Envelope::ReadOnly { request, .. } => request.message.check_bounds(),
            Envelope::ReadOnlyReply(r) => r.check_bounds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let e = Envelope::Execution(ExecutionMessage::FetchOrders { from: 9 });
        let bytes = crate::encode(&e).unwrap();
        assert_eq!(crate::decode::<Envelope>(&bytes).unwrap(), e);
        assert_eq!(e.kind(), "execution");
        assert!(crate::decode::<Envelope>(&[7, 1, 2]).is_err());
    }
}
