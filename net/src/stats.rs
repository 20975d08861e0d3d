//! Link-layer counters (all monotonic).

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Counters of one [`crate::Network`], shared by its tasks.
        #[derive(Debug, Default)]
        pub struct NetStats { $(#[doc = $doc] pub $name: AtomicU64,)* }

        /// A copy of [`NetStats`] at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct NetStatsSnapshot { $(#[doc = $doc] pub $name: u64,)* }

        impl NetStats {
            pub fn snapshot(&self) -> NetStatsSnapshot {
                NetStatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    sent: "messages written to a connection",
    received: "messages received, authenticated and decoded",
    dropped_queue_full: "messages dropped because a peer's send queue was full",
    dropped_unknown_peer: "messages for a peer with no configured address",
    connects: "outgoing connections established (handshake done)",
    connect_failures: "outgoing connection or handshake attempts that failed",
    accepted: "incoming connections authenticated",
    unknown_peers: "incoming handshakes from a static key that is no configured peer",
    handshake_failures: "incoming handshakes that failed or timed out",
    malformed_frames: "frames that failed to decrypt or broke the chunk format",
    oversized: "messages announcing more than the largest legal message",
    decode_errors: "messages that decrypted but did not decode as an Envelope",
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
