//! Who is on the other end of a link: node identities and their Noise static keys.

use std::fmt;
use std::net::SocketAddr;

use palisade_wire::agreement::{ClientId, ReplicaId};
use palisade_wire::execution::ExecReplicaId;

use crate::error::NetError;

/// The identity of a node, as its static key proves it. It never travels on the wire:
/// a link's identity is the peer's static key, which each node maps to a `NodeId` from
/// its config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    Agreement(ReplicaId),
    Execution(ExecReplicaId),
    Client(ClientId),
    /// A filter of the privacy firewall (Yin et al., SOSP 2003, §4), by its flat id
    /// `row * (h+1) + column` (rows 0..=h, row 0 next to agreement).
    Filter(u32),
}

impl NodeId {
    /// The flat id of the filter at `row`, `column` in rows of `width` (= h+1) filters.
    pub fn filter(row: u32, column: u32, width: u32) -> NodeId {
        NodeId::Filter(row.saturating_mul(width).saturating_add(column))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::Agreement(i) => write!(f, "agreement-{i}"),
            NodeId::Execution(i) => write!(f, "execution-{i}"),
            NodeId::Client(i) => write!(f, "client-{i}"),
            NodeId::Filter(i) => write!(f, "filter-{i}"),
        }
    }
}

/// A peer this node may talk to: its identity, where it listens (None: it never listens,
/// we only accept its connections) and its static Noise public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: NodeId,
    pub addr: Option<SocketAddr>,
    pub noise_public: [u8; 32],
}

/// An x25519 static key pair for Noise.
#[derive(Clone, PartialEq, Eq)]
pub struct NoiseKeypair {
    pub private: [u8; 32],
    pub public: [u8; 32],
}

impl fmt::Debug for NoiseKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("NoiseKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl NoiseKeypair {
    /// A fresh random key pair (snow's resolver: the OS random source).
    pub fn generate() -> Result<NoiseKeypair, NetError> {
        let kp = snow::Builder::new(crate::handshake::params()?).generate_keypair()?;
        Ok(NoiseKeypair {
            private: to_key(&kp.private)?,
            public: to_key(&kp.public)?,
        })
    }

    /// Rebuilds a key pair from its private half, deriving the public half, so that a
    /// config file cannot hold a mismatched pair.
    pub fn from_private(private: [u8; 32]) -> Result<NoiseKeypair, NetError> {
        Ok(NoiseKeypair {
            private,
            public: crate::handshake::public_of(&private)?,
        })
    }
}

pub(crate) fn to_key(bytes: &[u8]) -> Result<[u8; 32], NetError> {
    bytes
        .try_into()
        .map_err(|_| NetError::BadKey("x25519 key must be 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_ids_are_flat_and_named() {
        // h = 1: two rows of two filters.
        assert_eq!(NodeId::filter(0, 0, 2), NodeId::Filter(0));
        assert_eq!(NodeId::filter(1, 0, 2), NodeId::Filter(2));
        assert_eq!(NodeId::filter(1, 1, 2), NodeId::Filter(3));
        assert_eq!(NodeId::Filter(3).to_string(), "filter-3");
        assert_ne!(NodeId::Filter(0), NodeId::Agreement(0));
    }
}
