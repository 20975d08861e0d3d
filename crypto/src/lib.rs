//! Palisade's privacy-firewall cryptography (Yin et al., SOSP 2003, §4; issue 4).
//!
//! - [`threshold`]: the [`ThresholdSigner`] / [`ThresholdVerifier`] seam, key dealing and
//!   key bytes. Execution replicas sign *shares*; the bottom filter row combines g+1 into
//!   one signature that everyone above checks against one public key.
//! - [`merkle`]: RFC 6962 Merkle tree hash (BLAKE3) over a batch's replies, audit paths
//!   and their check, so one signature certifies a whole batch.
//! - [`certify`]: certified replies and stable certificates — cut, check, cache.
//! - [`batch_reply`]: the same batch Merkle tree under one replica's own ed25519
//!   signature (the `separate` configuration's replies).
//! - [`seal`]: sealed request and reply bodies (AES-256-GCM-SIV).
//!
//! # Choices
//!
//! - **Threshold BLS**. A BLS threshold signature is unique whichever g+1 shares made
//!   it, which is what makes the bytes that leave the firewall a function of the agreed
//!   order and the state alone (DESIGN §1). Three schemes sit behind one trait, all on
//!   BLS12-381 and `blst` (the audited, constant-time, assembly-optimised library):
//!   - [`SchemeKind::BlsMinSig`] ([`DEFAULT_SCHEME`]): min-sig — signatures in G1 (48
//!     bytes), keys in G2 — Shamir shares and Lagrange combination written here over
//!     `blstrs`. Signing, combining and checking a combined signature (the firewall's
//!     critical path, three checks per reply) are all several times faster than with
//!     `blsttc`; the bench compares them side by side.
//!   - [`SchemeKind::Blst`]: `blsttc` (signatures in G2), which keeps
//!     `threshold_crypto`'s API on top of `blst`; still fully supported, and key sets
//!     dealt with it keep working (key bytes carry their scheme).
//!   - [`SchemeKind::ThresholdCrypto`]: `threshold_crypto` 0.4 itself (pairing 0.16,
//!     rand 0.7, unmaintained) behind the `threshold-crypto` cargo feature, for
//!     comparison.
//! - **Merkle tree per RFC 6962 with BLAKE3**: one signature per batch (the amortisation
//!   DESIGN §5 asks for), a short audit path per reply, and no second-preimage confusion
//!   between leaves and nodes (0x00 / 0x01 prefixes). BLAKE3 is the project's hash. The
//!   signed root also binds the leaf count, so a certified reply has exactly one valid
//!   form (see [`merkle`]).
//! - **AES-256-GCM-SIV** (RFC 8452) for sealed bodies: misuse-resistant, so deterministic
//!   reply sealing (a nonce derived from the header) is safe; hardware AES and CLMUL are
//!   used where the CPU has them.
//! - Randomness only enters through explicit arguments (`deal`, `BodyKey::generate`,
//!   `seal_request`), so pure cores that call this crate stay deterministic.
//!
//! Nothing here panics on hostile input: malformed keys, shares, signatures, paths and
//! sealed bodies are [`CryptoError`]s or `false`.

pub mod batch_reply;
pub mod certify;
pub mod error;
pub mod merkle;
pub mod seal;
pub mod threshold;

mod blst_scheme;
mod minsig_scheme;
#[cfg(feature = "threshold-crypto")]
mod tc_scheme;

pub use batch_reply::{
    batch_reply_root, sign_batch_replies, sign_batch_replies_over, sign_reply_in_batch,
    verify_batch_reply,
};
pub use certify::{
    certify_replies, reply_root_of, verify_certified_reply, verify_certified_reply_with,
    verify_stable, VerifiedRoots,
};
pub use error::CryptoError;
pub use merkle::{
    audit_path, audit_paths, bind_count, leaf_hash, leaf_hash_of, node_hash, reply_root, root,
    root_from_path, tree_hash, EMPTY_TREE_HASH,
};
pub use minsig_scheme::DST as BLS_MIN_SIG_DST;
pub use seal::BodyKey;
pub use threshold::{
    deal, deal_from_seed, scheme_of, signer_from_bytes, verifier_from_bytes, DealtKeys, SchemeKind,
    ThresholdSigner, ThresholdVerifier, DEFAULT_SCHEME, MAX_PARTIES,
};
