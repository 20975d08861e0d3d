//! Sealed bodies (issue 4 §3; DESIGN §1 "deterministic replies"): request bodies are
//! sealed by the gateway for the execution cluster, reply bodies by execution replicas for
//! the gateway, so agreement nodes and filters carry them without reading them.
//!
//! AEAD: AES-256-GCM-SIV (RFC 8452). It is nonce-misuse resistant: sealing the same
//! (nonce, header, plaintext) twice gives the same bytes and reveals only that equality,
//! and distinct plaintexts under one nonce stay confidential up to equality. That is
//! exactly what deterministic reply sealing needs: every correct replica must produce the
//! same ciphertext for a reply (so g+1 of them sign the same leaf), and a replica cannot
//! choose a nonce to leak bits through.
//!
//! Two subkeys are derived from the [`BodyKey`] with `blake3::derive_key` (one for
//! requests, one for replies), plus a third key for reply nonces, so a request can never
//! be replayed as a reply or the other way round.
//!
//! The cipher is AWS-LC's (`aws-lc-rs`), whose AES-GCM-SIV is assembly with AES-NI and
//! carry-less multiply: it seals a 1 MiB body 2.8× as fast as the RustCrypto
//! `aes-gcm-siv` crate that sealed bodies before (`cargo bench -p palisade-crypto --bench
//! threshold -- seal/`), and every 1 MiB WRITE is sealed once and opened by each of the
//! 2g+1 replicas. Both implement RFC 8452, so the bytes are the same (`tests/seal.rs`
//! checks them against each other).
//!
//! - Request: `nonce (12, random) ‖ ciphertext ‖ tag (16)`, AAD = domain ‖ client id.
//! - Reply: `ciphertext ‖ tag (16)`; the nonce is the first 12 bytes of a BLAKE3 keyed
//!   hash of (sequence, client, request id), which the gateway knows from the certified
//!   reply; AAD = domain ‖ sequence ‖ client ‖ request id.

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM_SIV};
use palisade_wire::agreement::{ClientId, Sequence};
use zeroize::Zeroize;

use crate::error::CryptoError;

const NONCE: usize = 12;
const TAG: usize = 16;

const REQUEST_KEY_CONTEXT: &str = "palisade 2025 body key: request sealing (AES-256-GCM-SIV)";
const REPLY_KEY_CONTEXT: &str = "palisade 2025 body key: reply sealing (AES-256-GCM-SIV)";
const REPLY_NONCE_CONTEXT: &str = "palisade 2025 body key: reply nonce derivation";

const REQUEST_AAD: &[u8] = b"palisade/seal/request\0";
const REPLY_AAD: &[u8] = b"palisade/seal/reply\0";
/// A read-only reply's label (nonce input and associated data): an unordered read of the
/// state after sequence s must never share a nonce with the ordered reply of the batch
/// at s, which may hold other bytes for the same request id.
const READ_REPLY_AAD: &[u8] = b"palisade/seal/read-only-reply\0";

/// The key shared by gateways and execution replicas for sealed bodies: 32 secret bytes.
/// `Debug` prints no key material; the bytes are zeroed on drop. Clones share the
/// ciphers' key schedules.
#[derive(Clone)]
pub struct BodyKey {
    bytes: [u8; 32],
    request: Arc<LessSafeKey>,
    reply: Arc<LessSafeKey>,
    reply_nonce_key: [u8; 32],
}

impl std::fmt::Debug for BodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyKey(..)")
    }
}

impl Drop for BodyKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
        self.reply_nonce_key.zeroize();
    }
}

fn cipher(context: &str, key: &[u8; 32]) -> Result<Arc<LessSafeKey>, CryptoError> {
    let mut sub = blake3::derive_key(context, key);
    // Refused only for a key length other than the algorithm's (32), or when AWS-LC
    // cannot set up its context.
    let unbound = UnboundKey::new(&AES_256_GCM_SIV, &sub);
    sub.zeroize();
    unbound
        .map(|k| Arc::new(LessSafeKey::new(k)))
        .map_err(|_| CryptoError::MalformedKey("AES-256-GCM-SIV refused the body subkey"))
}

impl BodyKey {
    /// The key with these bytes (as stored, hex-encoded, in configs).
    pub fn from_bytes(b: [u8; 32]) -> Result<BodyKey, CryptoError> {
        Ok(BodyKey {
            request: cipher(REQUEST_KEY_CONTEXT, &b)?,
            reply: cipher(REPLY_KEY_CONTEXT, &b)?,
            reply_nonce_key: blake3::derive_key(REPLY_NONCE_CONTEXT, &b),
            bytes: b,
        })
    }

    /// A fresh key from a cryptographically secure RNG (rand 0.9, e.g. `rand::rng()`).
    pub fn generate(rng: &mut impl rand::CryptoRng) -> Result<BodyKey, CryptoError> {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        let key = BodyKey::from_bytes(b);
        b.zeroize();
        key
    }

    /// The key's 32 bytes (for writing a config).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// Gateway: seal an FsOp encoding for the execution cluster. Random nonce (requests
    /// need no determinism), the client id bound as associated data (the request id is
    /// assigned after sealing; the client's signature binds the sealed payload to it).
    pub fn seal_request(
        &self,
        client: ClientId,
        plaintext: &[u8],
        rng: &mut impl rand::CryptoRng,
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(NONCE + plaintext.len() + TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let aad = request_aad(client);
        match self.request.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            &mut out[NONCE..],
        ) {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                out
            }
            // Only for a plaintext over RFC 8452's 2^36-byte P_MAX, far beyond any wire
            // bound; an empty result never opens.
            Err(_) => Vec::new(),
        }
    }

    /// Execution replica: open a request sealed by [`BodyKey::seal_request`].
    pub fn open_request(&self, client: ClientId, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE + TAG {
            return Err(CryptoError::SealedTooShort(sealed.len()));
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce
            .try_into()
            .map_err(|_| CryptoError::SealedTooShort(sealed.len()))?;
        open(&self.request, nonce, &request_aad(client), rest)
    }

    /// Execution replica: deterministic (nonce derived from sequence, client, request id)
    /// so every correct replica produces identical bytes.
    pub fn seal_reply(
        &self,
        sequence: Sequence,
        client: ClientId,
        request_id: u64,
        plaintext: &[u8],
    ) -> Vec<u8> {
        self.seal_labelled(REPLY_AAD, sequence, client, request_id, plaintext)
    }

    /// Gateway: open a reply sealed by [`BodyKey::seal_reply`] for exactly this header.
    pub fn open_reply(
        &self,
        sequence: Sequence,
        client: ClientId,
        request_id: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.open_labelled(REPLY_AAD, sequence, client, request_id, sealed)
    }

    /// Execution replica: the answer to a read-only request. Sealed apart from the
    /// sequence it was read at, under a label of its own: replicas that read the same
    /// answer from different states must send the same bytes (the client compares them),
    /// and an answer never shares a nonce with an ordered reply. Two different answers to
    /// one request (from different states) do share a nonce; AES-GCM-SIV is
    /// nonce-misuse-resistant, so that reveals only whether the two are equal (RFC 8452
    /// §1) — to the gateway, the only party that receives them.
    pub fn seal_read_reply(&self, client: ClientId, request_id: u64, plaintext: &[u8]) -> Vec<u8> {
        self.seal_labelled(READ_REPLY_AAD, 0, client, request_id, plaintext)
    }

    /// Gateway: open what [`BodyKey::seal_read_reply`] sealed for this request.
    pub fn open_read_reply(
        &self,
        client: ClientId,
        request_id: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.open_labelled(READ_REPLY_AAD, 0, client, request_id, sealed)
    }

    fn seal_labelled(
        &self,
        label: &[u8],
        sequence: Sequence,
        client: ClientId,
        request_id: u64,
        plaintext: &[u8],
    ) -> Vec<u8> {
        let nonce = self.reply_nonce(label, sequence, client, request_id);
        let aad = reply_aad(label, sequence, client, request_id);
        let mut out = Vec::with_capacity(plaintext.len() + TAG);
        out.extend_from_slice(plaintext);
        match self.reply.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            &mut out,
        ) {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                out
            }
            // Only for a plaintext over RFC 8452's P_MAX (2^36 bytes); never opens.
            Err(_) => Vec::new(),
        }
    }

    fn open_labelled(
        &self,
        label: &[u8],
        sequence: Sequence,
        client: ClientId,
        request_id: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < TAG {
            return Err(CryptoError::SealedTooShort(sealed.len()));
        }
        let nonce = self.reply_nonce(label, sequence, client, request_id);
        open(
            &self.reply,
            nonce,
            &reply_aad(label, sequence, client, request_id),
            sealed,
        )
    }

    /// The ordered replies' nonces hash (sequence, client, request id) alone, as they
    /// always have; other labels are hashed in first, so no two kinds share a nonce.
    fn reply_nonce(
        &self,
        label: &[u8],
        sequence: Sequence,
        client: ClientId,
        request_id: u64,
    ) -> [u8; NONCE] {
        let mut h = blake3::Hasher::new_keyed(&self.reply_nonce_key);
        if label != REPLY_AAD {
            h.update(label);
        }
        h.update(&sequence.to_le_bytes());
        h.update(&client.to_le_bytes());
        h.update(&request_id.to_le_bytes());
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&h.finalize().as_bytes()[..NONCE]);
        nonce
    }
}

fn request_aad(client: ClientId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(REQUEST_AAD.len() + 8);
    aad.extend_from_slice(REQUEST_AAD);
    aad.extend_from_slice(&client.to_le_bytes());
    aad
}

fn reply_aad(label: &[u8], sequence: Sequence, client: ClientId, request_id: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + 24);
    aad.extend_from_slice(label);
    aad.extend_from_slice(&sequence.to_le_bytes());
    aad.extend_from_slice(&client.to_le_bytes());
    aad.extend_from_slice(&request_id.to_le_bytes());
    aad
}

/// Open `ciphertext ‖ tag` (at least TAG bytes, checked by the callers).
fn open(
    cipher: &LessSafeKey,
    nonce: [u8; NONCE],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let plaintext = sealed
        .len()
        .checked_sub(TAG)
        .ok_or(CryptoError::SealedTooShort(sealed.len()))?;
    let mut out = sealed.to_vec();
    cipher
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out,
        )
        .map_err(|_| CryptoError::OpenFailed)?;
    out.truncate(plaintext);
    Ok(out)
}
