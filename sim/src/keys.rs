//! Deterministic keys for every simulated party (a seed replays with the same keys).

use ed25519_dalek::{SigningKey, VerifyingKey};

fn key(domain: u8, index: u64) -> SigningKey {
    let mut bytes = [domain; 32];
    bytes[..8].copy_from_slice(&index.to_le_bytes());
    SigningKey::from_bytes(&bytes)
}

pub fn agreement_key(i: u32) -> SigningKey {
    key(0xA1, u64::from(i))
}

pub fn execution_key(i: u32) -> SigningKey {
    key(0xE1, u64::from(i))
}

pub fn client_key(c: u64) -> SigningKey {
    key(0xC1, c)
}

/// Public keys of `n` agreement replicas, indexed by id.
pub fn agreement_keys(n: usize) -> Vec<VerifyingKey> {
    (0..n as u32)
        .map(|i| agreement_key(i).verifying_key())
        .collect()
}

pub fn execution_keys(n: usize) -> Vec<VerifyingKey> {
    (0..n as u32)
        .map(|i| execution_key(i).verifying_key())
        .collect()
}

pub fn client_keys(n: usize) -> Vec<VerifyingKey> {
    (0..n as u64)
        .map(|c| client_key(c).verifying_key())
        .collect()
}
