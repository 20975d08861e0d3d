//! Privacy-firewall messages (Yin et al., SOSP 2003, §4): what crosses the (h+1) rows of
//! filters between the agreement cluster and the execution cluster.
//!
//! Going **down** nothing new is needed: a filter forwards
//! [`crate::execution::ExecutionMessage::Order`] (an ordered batch and its ORDER
//! certificate) and answers [`crate::execution::ExecutionMessage::FetchOrders`] from the
//! orders it forwarded.
//!
//! Going **up** only two kinds of message may leave the execution cluster, and both carry
//! a combined threshold signature of the execution cluster (g+1 shares) on a value that is
//! a deterministic function of the agreed order and the state:
//!
//! - a [`CertifiedReply`]: one reply of the batch at `sequence`, its Merkle path to the
//!   batch's reply root, and the combined signature on ([`reply_root_message`]);
//! - a [`StableCertificate`]: "the execution checkpoint at `sequence` is stable", signed on
//!   [`stable_message`] — it carries no state digest, so not even a hash of file state
//!   leaves the cluster.
//!
//! Execution replicas send *shares* ([`ReplyShare`], [`StableShare`]) to the bottom row,
//! which combines g+1 of them. BLS threshold signatures are unique, whichever g+1 shares
//! made them (DESIGN §1, "deterministic replies"), and reply bodies are sealed with a
//! deterministic nonce, so a compromised replica has no bits of its own choosing in
//! anything that crosses the firewall.
//!
//! Signature bytes are opaque here (their scheme lives in `palisade-crypto`); this crate
//! only bounds their size.

use serde::{Deserialize, Serialize};

use crate::agreement::{Bounded, ClientId, Digest, Sequence, VerifyError};
use crate::execution::{ExecReplicaId, MAX_RESULT_BYTES};

/// Largest encoded signature share or combined signature (BLS on G2: 96 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 256;
/// Most replies one batch may certify (one per request of the batch).
pub const MAX_BATCH_REPLIES: usize = crate::agreement::MAX_BATCH_REQUESTS;
/// Longest Merkle path: a tree over [`MAX_BATCH_REPLIES`] leaves has depth 12.
pub const MAX_MERKLE_PATH: usize = 16;

/// A signature share of one execution replica (opaque scheme bytes).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignatureShare(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// A combined threshold signature of the execution cluster (opaque scheme bytes).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThresholdSignature(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// One reply of a batch: a leaf of the batch's reply Merkle tree. `body` is the reply
/// sealed for the gateway (deterministic AEAD, nonce from sequence, client and request
/// id), so every correct replica produces the same bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReplyEntry {
    pub client: ClientId,
    pub request_id: u64,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// Execution replica → bottom-row filters: this replica's share of the signature on
/// [`reply_root_message`]`(sequence, root)`, where `root` is the RFC 6962 Merkle root over
/// `leaves`: the leaf hashes of its replies to the batch at `sequence`, one per request
/// it executed in that batch, in batch order (a duplicate request gets none). The reply
/// bodies travel separately ([`ReplyBody`], at most one reply each), so that a batch of
/// large READ replies never makes one oversized message, and a filter keeps one copy of a
/// body however many replicas sent it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReplyShare {
    pub sequence: Sequence,
    pub replica: ExecReplicaId,
    pub leaves: Vec<Digest>,
    pub share: SignatureShare,
}

/// Execution replica → bottom-row filters: one reply of the batch at `sequence`. A filter
/// forwards it (as a [`CertifiedReply`]) only once its leaf hash is under a root that g+1
/// shares certified.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReplyBody {
    pub sequence: Sequence,
    pub replica: ExecReplicaId,
    pub entry: ReplyEntry,
}

/// Execution replica → bottom-row filters: this replica saw g+1 matching checkpoint
/// digests at `sequence` (its own among them) and signs its share of
/// [`stable_message`]`(sequence)`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StableShare {
    pub sequence: Sequence,
    pub replica: ExecReplicaId,
    pub share: SignatureShare,
}

/// One reply with the proof that the execution cluster produced it: `entry` hashes, along
/// `path`, to the root whose [`reply_root_message`] `signature` signs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CertifiedReply {
    pub sequence: Sequence,
    pub entry: ReplyEntry,
    /// Position of the leaf and the sibling hashes from the leaf up (RFC 6962 §2.1.1
    /// audit path).
    pub leaf_index: u32,
    pub leaf_count: u32,
    pub path: Vec<Digest>,
    pub signature: ThresholdSignature,
}

/// What certified replies of the batch at `sequence` claim: `signature` is the execution
/// cluster's threshold signature on `root` (a [`reply_root_message`]). Carries no reply
/// and no state, only what the replies themselves carry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vouch {
    pub sequence: Sequence,
    pub root: Digest,
    pub signature: ThresholdSignature,
}

/// The execution checkpoint at `sequence` is stable (g+1 replicas hold one digest).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StableCertificate {
    pub sequence: Sequence,
    pub signature: ThresholdSignature,
}

/// Everything that travels up through the firewall.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum FirewallMessage {
    /// Execution replica → bottom row.
    ReplyShare(ReplyShare),
    /// Execution replica → bottom row.
    ReplyBody(ReplyBody),
    /// Execution replica → bottom row.
    StableShare(StableShare),
    /// Filter → row above (top row → agreement nodes → the gateway).
    CertifiedReply(CertifiedReply),
    /// Agreement node → the gateway: *every* top filter sent this node certified replies
    /// making this claim. One of them is correct and checked it, so f+1 agreement nodes
    /// saying so make the claim true without a pairing at the gateway
    /// (`palisade_firewall::ReplyRelay`).
    Vouch(Vouch),
    /// Filter → row above (top row → agreement nodes).
    Stable(StableCertificate),
}

/// The bytes the execution cluster threshold-signs for a batch's replies.
pub fn reply_root_message(sequence: Sequence, root: &Digest) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"palisade/firewall/reply-root\0");
    m.extend_from_slice(&sequence.to_le_bytes());
    m.extend_from_slice(&root.0);
    m
}

/// The bytes the execution cluster threshold-signs when its checkpoint at `sequence` is
/// stable.
pub fn stable_message(sequence: Sequence) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(b"palisade/firewall/stable\0");
    m.extend_from_slice(&sequence.to_le_bytes());
    m
}

/// The bounds of a reply's Merkle audit path (certified or batch-signed): a position
/// inside a batch of at most [`MAX_BATCH_REPLIES`] leaves and at most
/// [`MAX_MERKLE_PATH`] sibling hashes. Whether the path fits its shape is checked when
/// the root is computed from it.
pub fn check_path_bounds(
    leaf_index: u32,
    leaf_count: u32,
    path: &[Digest],
) -> Result<(), VerifyError> {
    if path.len() > MAX_MERKLE_PATH
        || leaf_count == 0
        || leaf_index >= leaf_count
        || leaf_count as usize > MAX_BATCH_REPLIES
    {
        return Err(VerifyError::OutOfBounds("bad Merkle path bounds"));
    }
    Ok(())
}

fn check_signature_bytes(bytes: &[u8]) -> Result<(), VerifyError> {
    if bytes.len() > MAX_SIGNATURE_BYTES {
        return Err(VerifyError::OutOfBounds("signature too large"));
    }
    Ok(())
}

impl Bounded for ReplyEntry {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        if self.body.len() > MAX_RESULT_BYTES {
            return Err(VerifyError::OutOfBounds("reply body too large"));
        }
        Ok(())
    }
}

impl Bounded for FirewallMessage {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        match self {
            FirewallMessage::ReplyShare(s) => {
                check_signature_bytes(&s.share.0)?;
                if s.leaves.len() > MAX_BATCH_REPLIES {
                    return Err(VerifyError::OutOfBounds("too many replies in a share"));
                }
                Ok(())
            }
            FirewallMessage::ReplyBody(b) => b.entry.check_bounds(),
            FirewallMessage::StableShare(s) => check_signature_bytes(&s.share.0),
            FirewallMessage::Vouch(v) => check_signature_bytes(&v.signature.0),
            FirewallMessage::CertifiedReply(c) => {
                check_signature_bytes(&c.signature.0)?;
                c.entry.check_bounds()?;
                check_path_bounds(c.leaf_index, c.leaf_count, &c.path)
            }
            FirewallMessage::Stable(s) => check_signature_bytes(&s.signature.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_messages_are_domain_separated() {
        let root = Digest([7; 32]);
        assert_ne!(reply_root_message(1, &root), stable_message(1));
        assert_ne!(reply_root_message(1, &root), reply_root_message(2, &root));
    }

    #[test]
    fn oversized_parts_are_refused() {
        let c = CertifiedReply {
            sequence: 1,
            entry: ReplyEntry {
                client: 0,
                request_id: 1,
                body: vec![0; 8],
            },
            leaf_index: 0,
            leaf_count: 1,
            path: vec![],
            signature: ThresholdSignature(vec![0; 96]),
        };
        FirewallMessage::CertifiedReply(c.clone())
            .check_bounds()
            .unwrap();
        let bad = CertifiedReply {
            leaf_index: 1,
            ..c.clone()
        };
        assert!(FirewallMessage::CertifiedReply(bad).check_bounds().is_err());
        let big = CertifiedReply {
            signature: ThresholdSignature(vec![0; MAX_SIGNATURE_BYTES + 1]),
            ..c
        };
        assert!(FirewallMessage::CertifiedReply(big).check_bounds().is_err());
    }
}
