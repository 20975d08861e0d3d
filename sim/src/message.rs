//! Who talks to whom in the simulated pipeline, and what travels.

use palisade_wire::agreement::{AgreementMessage, ClientId, ReplicaId, Request, Signed};
use palisade_wire::envelope::Envelope;
use palisade_wire::execution::{BatchReply, ExecReplicaId, ExecutionMessage, Reply};
use palisade_wire::firewall::FirewallMessage;

/// A simulated party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    Client(ClientId),
    Agreement(ReplicaId),
    Execution(ExecReplicaId),
    /// A filter of the privacy firewall, by flat id `row * (h+1) + column` (as the
    /// runtime's `NodeId::Filter`); see [`crate::topology::Topology`].
    Filter(u32),
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeId::Client(c) => write!(f, "client{c}"),
            NodeId::Agreement(a) => write!(f, "agreement{a}"),
            NodeId::Execution(e) => write!(f, "execution{e}"),
            NodeId::Filter(i) => write!(f, "filter{i}"),
        }
    }
}

/// A message in flight.
#[derive(Clone, Debug)]
pub enum Msg {
    /// Client → agreement.
    Request(Signed<Request>),
    /// Client → agreement: replies accepted through this sequence number.
    RepliedThrough(u64),
    /// Agreement → agreement.
    Agreement(AgreementMessage),
    /// Agreement → execution (orders), execution → execution (checkpoints, state
    /// transfer), execution → agreement (stable checkpoints, fetches); in the firewall
    /// configuration orders and fetches pass through the filter rows.
    Execution(ExecutionMessage),
    /// Execution → client (the `separate` configuration).
    Reply(BatchReply),
    /// Client → execution (`separate`): a read-only request, unordered.
    ReadOnly {
        request: Signed<Request>,
        after: u64,
    },
    /// Execution → client (`separate`): the answer to a read-only request.
    ReadOnlyReply(Reply),
    /// Up through the privacy firewall: shares and bodies (execution → bottom row),
    /// certified replies and stable certificates (row → row → agreement), certified
    /// replies (agreement → client).
    Firewall(FirewallMessage),
    /// Bytes that decode as no message: what a compromised node can put on a link it
    /// has. The runtime's link layer drops them when they do not decode; the
    /// confidentiality invariant still looks at where they went.
    Opaque(Vec<u8>),
}

impl Msg {
    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "request",
            Msg::RepliedThrough(_) => "replied-through",
            Msg::Agreement(_) => "agreement",
            Msg::Execution(_) => "execution",
            Msg::Reply(_) => "reply",
            Msg::ReadOnly { .. } => "read-only",
            Msg::ReadOnlyReply(_) => "read-only-reply",
            Msg::Firewall(_) => "firewall",
            Msg::Opaque(_) => "opaque",
        }
    }

    /// The link-layer envelope carrying this message (`None`: opaque bytes).
    pub fn into_envelope(self) -> Option<Envelope> {
        match self {
            Msg::Request(r) => Some(Envelope::Request(r)),
            Msg::RepliedThrough(s) => Some(Envelope::RepliedThrough(s)),
            Msg::Agreement(m) => Some(Envelope::Agreement(m)),
            Msg::Execution(m) => Some(Envelope::Execution(m)),
            Msg::Reply(r) => Some(Envelope::Reply(r)),
            Msg::ReadOnly { request, after } => Some(Envelope::ReadOnly { request, after }),
            Msg::ReadOnlyReply(r) => Some(Envelope::ReadOnlyReply(r)),
            Msg::Firewall(m) => Some(Envelope::Firewall(m)),
            Msg::Opaque(_) => None,
        }
    }

    pub fn from_envelope(envelope: Envelope) -> Msg {
        match envelope {
            Envelope::Request(r) => Msg::Request(r),
            Envelope::RepliedThrough(s) => Msg::RepliedThrough(s),
            Envelope::Agreement(m) => Msg::Agreement(m),
            Envelope::Execution(m) => Msg::Execution(m),
            Envelope::Reply(r) => Msg::Reply(r),
            Envelope::ReadOnly { request, after } => Msg::ReadOnly { request, after },
            Envelope::ReadOnlyReply(r) => Msg::ReadOnlyReply(r),
            Envelope::Firewall(m) => Msg::Firewall(m),
        }
    }
}
