//! Who may talk to whom: the simulated deployment's links.
//!
//! Without a firewall (`h = None`, the `separate` configuration) every node reaches every
//! other, as today. With one, the links are those of the deployment the threat model
//! needs (DESIGN §2; the docker-compose networks `order`, `middle`, `exec`, `state`):
//! clients and agreement nodes; agreement nodes among themselves and with the top filter
//! row (the top row also shares the gateway's network, so a compromised top filter can
//! reach a client); each filter row with the next; the bottom row with the execution
//! replicas; execution replicas among themselves. Execution replicas have no other path
//! out: a message on any other link is dropped by the network and counted
//! ([`crate::network::Network::no_link`]).

use crate::message::NodeId;

/// The shape of the simulated deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Filters tolerated; `Some(h)` means h+1 rows of h+1 filters.
    pub h: Option<usize>,
    pub n_agreement: usize,
    pub n_execution: usize,
}

impl Topology {
    /// Filters per row and rows (h+1), 0 without a firewall.
    pub fn side(&self) -> u32 {
        self.h.map_or(0, |h| h as u32 + 1)
    }

    pub fn firewall(&self) -> bool {
        self.h.is_some()
    }

    pub fn n_filters(&self) -> usize {
        (self.side() as usize) * (self.side() as usize)
    }

    /// (row, column) of a flat filter id.
    pub fn position(&self, id: u32) -> (u32, u32) {
        let side = self.side().max(1);
        (id / side, id % side)
    }

    pub fn filter_id(&self, row: u32, column: u32) -> u32 {
        row * self.side() + column
    }

    pub fn row_of(&self, node: NodeId) -> Option<u32> {
        match node {
            NodeId::Filter(id) if (id as usize) < self.n_filters() => Some(self.position(id).0),
            _ => None,
        }
    }

    pub fn bottom_row(&self) -> u32 {
        self.side().saturating_sub(1)
    }

    /// The filters of one row.
    pub fn row(&self, row: u32) -> Vec<NodeId> {
        (0..self.side())
            .map(|c| NodeId::Filter(self.filter_id(row, c)))
            .collect()
    }

    pub fn top_row(&self) -> Vec<NodeId> {
        self.row(0)
    }

    pub fn bottom(&self) -> Vec<NodeId> {
        self.row(self.bottom_row())
    }

    pub fn filters(&self) -> Vec<NodeId> {
        (0..self.n_filters() as u32).map(NodeId::Filter).collect()
    }

    /// The node a filter calls peer `index` above it: an agreement replica (top row) or
    /// a filter of the row above.
    pub fn above(&self, row: u32, index: u32) -> NodeId {
        if row == 0 {
            NodeId::Agreement(index)
        } else {
            NodeId::Filter(self.filter_id(row - 1, index))
        }
    }

    /// The node a filter calls peer `index` below it: a filter of the row below, or an
    /// execution replica (bottom row).
    pub fn below(&self, row: u32, index: u32) -> NodeId {
        if row >= self.bottom_row() {
            NodeId::Execution(index)
        } else {
            NodeId::Filter(self.filter_id(row + 1, index))
        }
    }

    /// Every peer above a filter of `row`.
    pub fn all_above(&self, row: u32) -> Vec<NodeId> {
        if row == 0 {
            (0..self.n_agreement as u32)
                .map(NodeId::Agreement)
                .collect()
        } else {
            self.row(row - 1)
        }
    }

    /// Every peer below a filter of `row`.
    pub fn all_below(&self, row: u32) -> Vec<NodeId> {
        if row >= self.bottom_row() {
            (0..self.n_execution as u32)
                .map(NodeId::Execution)
                .collect()
        } else {
            self.row(row + 1)
        }
    }

    /// How a filter of `row` sees `peer`: `Some((true, i))` = peer `i` above, `Some((false,
    /// i))` = peer `i` below, `None` = not a neighbour.
    pub fn neighbour(&self, row: u32, peer: NodeId) -> Option<(bool, u32)> {
        match peer {
            NodeId::Agreement(a) if row == 0 && (a as usize) < self.n_agreement => Some((true, a)),
            NodeId::Execution(e) if row == self.bottom_row() && (e as usize) < self.n_execution => {
                Some((false, e))
            }
            NodeId::Filter(_) => {
                let r = self.row_of(peer)?;
                let (_, c) = self.position(match peer {
                    NodeId::Filter(id) => id,
                    _ => return None,
                });
                if r + 1 == row {
                    Some((true, c))
                } else if r == row + 1 {
                    Some((false, c))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Whether the deployment has a link between `a` and `b` (either direction).
    pub fn linked(&self, a: NodeId, b: NodeId) -> bool {
        if !self.firewall() {
            return true;
        }
        self.directed(a, b) || self.directed(b, a)
    }

    fn directed(&self, a: NodeId, b: NodeId) -> bool {
        match (a, b) {
            (NodeId::Client(_), NodeId::Agreement(_))
            | (NodeId::Agreement(_), NodeId::Agreement(_))
            | (NodeId::Execution(_), NodeId::Execution(_)) => true,
            (NodeId::Filter(_), NodeId::Agreement(_)) | (NodeId::Filter(_), NodeId::Client(_)) => {
                self.row_of(a) == Some(0)
            }
            (NodeId::Filter(_), NodeId::Execution(_)) => self.row_of(a) == Some(self.bottom_row()),
            (NodeId::Filter(_), NodeId::Filter(_)) => match (self.row_of(a), self.row_of(b)) {
                (Some(ra), Some(rb)) => ra + 1 == rb,
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `from` → `to` goes up, out of the execution cluster's side: execution →
    /// filter, filter → the row above or agreement or a client, agreement → client.
    pub fn upward(&self, from: NodeId, to: NodeId) -> bool {
        match (from, to) {
            (NodeId::Execution(_), NodeId::Filter(_)) => true,
            (NodeId::Filter(_), NodeId::Agreement(_) | NodeId::Client(_)) => true,
            (NodeId::Filter(_), NodeId::Filter(_)) => match (self.row_of(from), self.row_of(to)) {
                (Some(rf), Some(rt)) => rt + 1 == rf,
                _ => false,
            },
            (NodeId::Agreement(_), NodeId::Client(_)) => true,
            _ => false,
        }
    }

    /// Whether `from` → `to` leaves the firewall: top row → agreement or client, and
    /// agreement → client (where the confidentiality invariant is checked).
    pub fn crosses_boundary(&self, from: NodeId, to: NodeId) -> bool {
        matches!(
            (from, to),
            (NodeId::Filter(_), NodeId::Agreement(_) | NodeId::Client(_))
                | (NodeId::Agreement(_), NodeId::Client(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(h: usize) -> Topology {
        Topology {
            h: Some(h),
            n_agreement: 4,
            n_execution: 3,
        }
    }

    #[test]
    fn rows_and_neighbours() {
        let t = topo(2);
        assert_eq!(t.n_filters(), 9);
        assert_eq!(t.position(5), (1, 2));
        assert_eq!(
            t.top_row(),
            vec![NodeId::Filter(0), NodeId::Filter(1), NodeId::Filter(2)]
        );
        assert_eq!(
            t.bottom(),
            vec![NodeId::Filter(6), NodeId::Filter(7), NodeId::Filter(8)]
        );
        assert_eq!(t.neighbour(1, NodeId::Filter(2)), Some((true, 2)));
        assert_eq!(t.neighbour(1, NodeId::Filter(7)), Some((false, 1)));
        assert_eq!(t.neighbour(1, NodeId::Filter(4)), None);
        assert_eq!(t.neighbour(0, NodeId::Agreement(3)), Some((true, 3)));
        assert_eq!(t.neighbour(1, NodeId::Agreement(3)), None);
        assert_eq!(t.neighbour(2, NodeId::Execution(2)), Some((false, 2)));
        assert_eq!(t.neighbour(0, NodeId::Execution(2)), None);
        assert_eq!(t.above(1, 2), NodeId::Filter(2));
        assert_eq!(t.below(2, 1), NodeId::Execution(1));
    }

    #[test]
    fn execution_replicas_reach_only_the_bottom_row_and_each_other() {
        let t = topo(1);
        let e = NodeId::Execution(0);
        assert!(t.linked(e, NodeId::Execution(2)));
        assert!(t.linked(e, NodeId::Filter(2)));
        assert!(t.linked(e, NodeId::Filter(3)));
        assert!(!t.linked(e, NodeId::Filter(0)));
        assert!(!t.linked(e, NodeId::Agreement(0)));
        assert!(!t.linked(e, NodeId::Client(0)));
        assert!(!t.linked(NodeId::Filter(2), NodeId::Agreement(0)));
        assert!(t.linked(NodeId::Filter(0), NodeId::Client(1)));
        assert!(!t.linked(NodeId::Filter(0), NodeId::Filter(1)));
        assert!(t.linked(NodeId::Agreement(1), NodeId::Filter(1)));
        assert!(t.upward(NodeId::Filter(3), NodeId::Filter(0)));
        assert!(!t.upward(NodeId::Filter(0), NodeId::Filter(3)));
        let separate = Topology { h: None, ..t };
        assert!(separate.linked(e, NodeId::Agreement(0)));
    }
}
