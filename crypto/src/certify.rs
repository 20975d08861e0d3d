//! Certified replies and stable certificates (Yin et al., SOSP 2003, §4.2): the helpers
//! that the bottom filter row (cutting a combined signature into per-reply certificates),
//! every filter (checking what goes up) and the gateway (accepting a reply) share.
//!
//! One combined signature covers a whole batch: it signs
//! [`reply_root_message`]`(sequence, root)` where `root` is the RFC 6962 root over the
//! batch's reply leaves, and each reply carries its audit path to that root. So the
//! expensive pairing check is paid once per batch — [`VerifiedRoots`] lets a checker
//! remember the (sequence, root, signature) triples it verified and check every further
//! reply of the batch with hashes only.

use std::collections::{BTreeSet, VecDeque};

use palisade_wire::agreement::{Bounded, Digest, Sequence};
use palisade_wire::firewall::{
    check_path_bounds, reply_root_message, stable_message, CertifiedReply, ReplyEntry,
    StableCertificate, ThresholdSignature, MAX_SIGNATURE_BYTES,
};

use crate::error::CryptoError;
use crate::merkle::{audit_paths, leaf_hash, root_from_path};
use crate::threshold::ThresholdVerifier;

/// Cut a combined signature over a batch's entries into one CertifiedReply per entry
/// (entry `i` gets leaf index `i` and its audit path). Returns nothing for more than
/// `u32::MAX` entries (a batch holds at most [`MAX_BATCH_REPLIES`]).
pub fn certify_replies(
    sequence: Sequence,
    entries: &[ReplyEntry],
    signature: &ThresholdSignature,
) -> Vec<CertifiedReply> {
    let Ok(count) = u32::try_from(entries.len()) else {
        return Vec::new();
    };
    let leaves: Vec<Digest> = entries.iter().map(leaf_hash).collect();
    audit_paths(&leaves)
        .into_iter()
        .zip(entries)
        .zip(0u32..)
        .map(|((path, entry), index)| CertifiedReply {
            sequence,
            entry: entry.clone(),
            leaf_index: index,
            leaf_count: count,
            path,
            signature: signature.clone(),
        })
        .collect()
}

/// The structural bounds of a certified reply (the same as the wire's
/// `FirewallMessage::check_bounds`, so this crate's checks stand alone).
fn check_reply_bounds(c: &CertifiedReply) -> Result<(), CryptoError> {
    if c.signature.0.len() > MAX_SIGNATURE_BYTES {
        return Err(CryptoError::OutOfBounds("signature too large"));
    }
    c.entry
        .check_bounds()
        .map_err(|_| CryptoError::OutOfBounds("reply body too large"))?;
    check_path_bounds(c.leaf_index, c.leaf_count, &c.path)
        .map_err(|_| CryptoError::OutOfBounds("bad Merkle path bounds"))
}

/// Check bounds and the Merkle path only; return the reply root the path leads to. The
/// signature is NOT checked: use this with [`VerifiedRoots`] or before
/// [`verify_certified_reply`]'s signature check.
pub fn reply_root_of(c: &CertifiedReply) -> Result<Digest, CryptoError> {
    check_reply_bounds(c)?;
    root_from_path(leaf_hash(&c.entry), c.leaf_index, c.leaf_count, &c.path)
        .ok_or(CryptoError::BadMerklePath)
}

/// Check a CertifiedReply: bounds, Merkle path to a root, and the signature on
/// [`reply_root_message`]`(sequence, root)`. Returns the root on success.
pub fn verify_certified_reply(
    v: &dyn ThresholdVerifier,
    c: &CertifiedReply,
) -> Result<Digest, CryptoError> {
    let root = reply_root_of(c)?;
    if !v.verify(&reply_root_message(c.sequence, &root), &c.signature) {
        return Err(CryptoError::BadSignature);
    }
    Ok(root)
}

/// Like [`verify_certified_reply`], but skips the signature check when `known(sequence,
/// root, signature)` says this exact triple was verified before (callers keep a bounded
/// cache, e.g. [`VerifiedRoots`]).
pub fn verify_certified_reply_with(
    v: &dyn ThresholdVerifier,
    c: &CertifiedReply,
    known: impl FnOnce(Sequence, &Digest, &ThresholdSignature) -> bool,
) -> Result<Digest, CryptoError> {
    let root = reply_root_of(c)?;
    if known(c.sequence, &root, &c.signature) {
        return Ok(root);
    }
    if !v.verify(&reply_root_message(c.sequence, &root), &c.signature) {
        return Err(CryptoError::BadSignature);
    }
    Ok(root)
}

/// Check a stable-checkpoint certificate: the signature on [`stable_message`]`(sequence)`.
pub fn verify_stable(v: &dyn ThresholdVerifier, s: &StableCertificate) -> Result<(), CryptoError> {
    if s.signature.0.len() > MAX_SIGNATURE_BYTES {
        return Err(CryptoError::OutOfBounds("signature too large"));
    }
    if !v.verify(&stable_message(s.sequence), &s.signature) {
        return Err(CryptoError::BadSignature);
    }
    Ok(())
}

/// A bounded memory of (sequence, root, signature) triples whose signature verified, so
/// the further replies of a batch are checked with hashes only. Oldest-first eviction;
/// deterministic (no hashing of its own, no clock), so it may live inside a pure core.
#[derive(Debug, Clone)]
pub struct VerifiedRoots {
    capacity: usize,
    set: BTreeSet<(Sequence, Digest, Vec<u8>)>,
    order: VecDeque<(Sequence, Digest, Vec<u8>)>,
}

impl VerifiedRoots {
    /// A cache that remembers at most `capacity` triples (at least one).
    pub fn new(capacity: usize) -> VerifiedRoots {
        VerifiedRoots {
            capacity: capacity.max(1),
            set: BTreeSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether this exact triple was recorded (and not yet evicted).
    pub fn contains(&self, sequence: Sequence, root: &Digest, sig: &ThresholdSignature) -> bool {
        self.set.contains(&(sequence, *root, sig.0.clone()))
    }

    /// Record a triple whose signature verified.
    pub fn insert(&mut self, sequence: Sequence, root: Digest, sig: &ThresholdSignature) {
        let key = (sequence, root, sig.0.clone());
        if !self.set.insert(key.clone()) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// Number of triples remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// [`verify_certified_reply`] through this cache: the signature is checked only for a
    /// triple not seen before, and remembered when it verifies.
    pub fn verify(
        &mut self,
        v: &dyn ThresholdVerifier,
        c: &CertifiedReply,
    ) -> Result<Digest, CryptoError> {
        let root = verify_certified_reply_with(v, c, |s, r, sig| self.contains(s, r, sig))?;
        self.insert(c.sequence, root, &c.signature);
        Ok(root)
    }
}
