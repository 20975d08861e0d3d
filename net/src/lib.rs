//! Palisade's authenticated links: TCP carrying the Noise protocol (`Noise_IK_25519_
//! AESGCM_BLAKE2s`, via `snow`) between nodes that know each other's static x25519 keys
//! from the key-generation step.
//!
//! - Both ends are authenticated: the dialer knows the listener's static key in advance
//!   (the `I` and `K` of IK), and the listener accepts a dialer only if the static key
//!   the dialer proves (Noise §7.5, the `ss` token) belongs to a configured peer.
//! - Traffic is encrypted and integrity-protected (AES-256-GCM). Every byte of every
//!   request travels several links, so the cipher is a visible share of the CPU: with
//!   ChaCha20-Poly1305 it was 12% of `separate` under small-file load; AES-GCM runs on the
//!   servers' AES-NI and CLMUL instructions (`aes` and `polyval` pick them at run time),
//!   and gave 1.04× small files and 1.18× sequential writes side by side
//!   (docs/PERFORMANCE.md).
//! - On the wire a link is a sequence of Noise messages, each framed by a 2-byte length
//!   (Noise §3: a message is at most 65535 bytes). An application message (one encoded
//!   [`Envelope`]) larger than one Noise message is split into chunks; the first chunk
//!   opens with the message's total length, which must not exceed
//!   [`palisade_wire::MAX_MESSAGE_BYTES`] ([`frame`]).
//! - Each peer has one outgoing connection, dialled on demand and redialled with
//!   exponential back-off; sends go through a bounded queue (count and bytes) and are
//!   dropped, counted, when it is full ([`network`]). Incoming connections only receive.
//! - Anything hostile — an unknown static key, a failed handshake, an oversized, garbled
//!   or undecodable frame — closes that connection with a counter and a log line; it
//!   never panics and never makes us allocate more than one legal message per connection.

pub mod error;
pub mod frame;
pub mod handshake;
pub mod network;
pub mod peer;
pub mod stats;

pub use error::NetError;
pub use network::{Inbound, Network, NetworkConfig};
pub use palisade_wire::envelope::Envelope;
pub use peer::{NodeId, NoiseKeypair, PeerInfo};
pub use stats::{NetStats, NetStatsSnapshot};
