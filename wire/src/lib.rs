//! Palisade wire types: every message that crosses a process boundary, and its one
//! canonical encoding.
//!
//! Anything that is hashed or signed anywhere in Palisade is encoded with [`encode`]
//! (postcard: a compact, deterministic serde format — the same value always yields the
//! same bytes, which is what lets replicas compare digests and combine signature shares).
//! Everything read from the network or the disk is decoded with [`decode`], which bounds
//! the input size and never panics on hostile bytes.
//!
//! Modules:
//! - [`fs`]: file-system operations and replies — the payload that the gateway sends to
//!   the execution cluster, and that execution replicas answer. Mirrors NFSv3 (RFC 1813).
//! - [`checkpoint`]: checkpoint images of the file-system state, for state transfer.
//! - [`agreement`]: agreement-cluster messages (PBFT), signed envelopes, and the
//!   ordered batch plus ORDER certificate that agreement hands to execution.
//! - [`execution`]: execution-cluster messages: replies, checkpoint certificates, state
//!   transfer.
//! - [`firewall`]: what crosses the privacy firewall upward: signature shares, certified
//!   replies with Merkle paths, stable-checkpoint certificates.
//! - [`payload`]: a request's opaque payload, with its digest computed once.
//! - [`envelope`]: the one message type on an authenticated link between nodes.
//! - [`codec`]: the canonical encoding and its errors.

pub mod agreement;
pub mod checkpoint;
pub mod codec;
pub mod envelope;
pub mod execution;
pub mod firewall;
pub mod fs;
pub mod payload;
pub mod signature;

pub use codec::{decode, encode, WireError, MAX_MESSAGE_BYTES};
