//! Fixtures the client's test files share: the keys, and a client configuration (g = 1,
//! four agreement replicas, `Matching`, no waits) that each file adjusts with struct
//! update syntax.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_client::{Acceptance, ClientConfig};
use palisade_wire::agreement::{Request, Signed};

pub const CLIENT: u64 = 4;

pub fn exec_key(i: u32) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 50; 32])
}

pub fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn config() -> ClientConfig {
    ClientConfig {
        id: CLIENT,
        g: 1,
        exec_keys: (0..3).map(|i| exec_key(i).verifying_key()).collect(),
        agreement_replicas: 4,
        window: 8,
        replay_window: 1024,
        retransmit_after: Duration::from_millis(100),
        first_request_id: 1,
        acceptance: Acceptance::Matching,
        vouch_wait: Duration::ZERO,
        read_only_wait: Duration::ZERO,
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Request `id` of [`CLIENT`] carrying `payload`, as the client core signs it.
pub fn signed_request(id: u64, payload: &[u8]) -> Signed<Request> {
    Signed::sign(
        &client_key(),
        Request {
            client: CLIENT,
            request_id: id,
            payload: payload.to_vec().into(),
        },
    )
    .unwrap()
}
