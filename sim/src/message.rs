//! Who talks to whom in the simulated pipeline, and what travels.

use palisade_wire::agreement::{AgreementMessage, ClientId, ReplicaId, Request, Signed};
use palisade_wire::execution::{ExecReplicaId, ExecutionMessage, Reply};

/// A simulated party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    Client(ClientId),
    Agreement(ReplicaId),
    Execution(ExecReplicaId),
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeId::Client(c) => write!(f, "client{c}"),
            NodeId::Agreement(a) => write!(f, "agreement{a}"),
            NodeId::Execution(e) => write!(f, "execution{e}"),
        }
    }
}

/// A message in flight.
#[derive(Clone, Debug)]
pub enum Msg {
    /// Client → agreement.
    Request(Signed<Request>),
    /// Agreement → agreement.
    Agreement(AgreementMessage),
    /// Agreement → execution (orders), execution → execution (checkpoints, state
    /// transfer), execution → agreement (stable checkpoints, fetches).
    Execution(ExecutionMessage),
    /// Execution → client.
    Reply(Signed<Reply>),
}

impl Msg {
    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "request",
            Msg::Agreement(_) => "agreement",
            Msg::Execution(_) => "execution",
            Msg::Reply(_) => "reply",
        }
    }
}
