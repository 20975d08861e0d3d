//! Errors of the link layer.

use std::net::SocketAddr;

/// Why a connection (or the network) failed. Connection errors close that connection
/// only; they are counted and logged by [`crate::Network`].
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("peer's static key is not a configured peer")]
    UnknownPeer,
    #[error("frame of {0} bytes is malformed")]
    MalformedFrame(usize),
    #[error("message of {0} bytes exceeds the limit")]
    Oversized(usize),
    #[error("message does not decode: {0}")]
    Decode(#[from] palisade_wire::WireError),
    #[error("handshake timed out")]
    HandshakeTimeout,
    #[error("bad key: {0}")]
    BadKey(&'static str),
}
