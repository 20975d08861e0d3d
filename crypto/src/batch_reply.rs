//! Replies signed once per batch by one execution replica's own ed25519 key (the
//! `separate` configuration; [`palisade_wire::execution::BatchReply`]).
//!
//! The firewall configuration certifies a batch's replies with one threshold signature
//! over the RFC 6962 root of their leaves ([`crate::certify`]). Without a firewall every
//! replica answers the client itself and the client waits for g+1 matching replies
//! (Castro–Liskov TOCS §4.1); signing each reply cost every replica one signature per
//! request and the client g+1 checks per request. Here each replica signs the same kind
//! of root once per batch, and the client checks one signature per replica and batch
//! (remembering the roots it checked) plus a few hashes per reply.

use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_wire::agreement::{Bounded, Digest, Signature};
use palisade_wire::execution::{batch_reply_message, BatchReply, Reply};

use crate::error::CryptoError;
use crate::merkle::{audit_paths, leaf_hash_of, root, root_from_path};

fn leaf(reply: &Reply) -> Digest {
    leaf_hash_of(reply.client, reply.request_id, &reply.result)
}

/// Signs `replies` — one replica's replies to one batch, in batch order, all with the
/// same `sequence` — with one signature over their Merkle root, and gives each its
/// audit path. Empty for no replies, or for more than `u32::MAX` (a batch holds at
/// most `MAX_BATCH_REPLIES`).
pub fn sign_batch_replies(key: &SigningKey, replies: Vec<Reply>) -> Vec<BatchReply> {
    let leaves: Vec<Digest> = replies.iter().map(leaf).collect();
    sign_batch_replies_over(key, replies, &leaves)
}

/// [`sign_batch_replies`] for a caller that already hashed the replies' leaves (in
/// order, one per reply; anything else signs nothing).
pub fn sign_batch_replies_over(
    key: &SigningKey,
    replies: Vec<Reply>,
    leaves: &[Digest],
) -> Vec<BatchReply> {
    let (Some(first), Ok(count)) = (replies.first(), u32::try_from(replies.len())) else {
        return Vec::new();
    };
    if leaves.len() != replies.len() {
        return Vec::new();
    }
    let sequence = first.sequence;
    let signature = Signature(palisade_wire::signature::sign(
        key,
        &batch_reply_message(sequence, &root(leaves)),
    ));
    audit_paths(leaves)
        .into_iter()
        .zip(replies)
        .zip(0u32..)
        .map(|((path, message), leaf_index)| BatchReply {
            message,
            leaf_index,
            leaf_count: count,
            path,
            signature,
        })
        .collect()
}

/// One reply of a batch whose leaves (in batch order) the replica knows without the
/// other replies' bodies: signed over the root of `leaves`, with its audit path, exactly
/// as [`sign_batch_replies`] would have given it. `None` if the reply's leaf is not
/// among `leaves`.
pub fn sign_reply_in_batch(
    key: &SigningKey,
    reply: Reply,
    leaves: &[Digest],
) -> Option<BatchReply> {
    let index = leaves.iter().position(|l| *l == leaf(&reply))?;
    let (leaf_index, leaf_count) = (
        u32::try_from(index).ok()?,
        u32::try_from(leaves.len()).ok()?,
    );
    let signature = Signature(palisade_wire::signature::sign(
        key,
        &batch_reply_message(reply.sequence, &root(leaves)),
    ));
    Some(BatchReply {
        path: crate::merkle::audit_path(leaves, index),
        message: reply,
        leaf_index,
        leaf_count,
        signature,
    })
}

/// Checks bounds and the Merkle path only; returns the root the path leads to. The
/// signature is NOT checked: callers that remember verified roots check it only for a
/// root they have not seen ([`verify_batch_reply`] checks both).
pub fn batch_reply_root(reply: &BatchReply) -> Result<Digest, CryptoError> {
    reply
        .check_bounds()
        .map_err(|_| CryptoError::OutOfBounds("batch reply bounds"))?;
    root_from_path(
        leaf(&reply.message),
        reply.leaf_index,
        reply.leaf_count,
        &reply.path,
    )
    .ok_or(CryptoError::BadMerklePath)
}

/// Checks a batch reply against its sender's key: bounds, Merkle path, and the
/// signature on the root (under ZIP 215, as every signature check here:
/// `palisade_wire::signature`). Returns the root.
pub fn verify_batch_reply(key: &VerifyingKey, reply: &BatchReply) -> Result<Digest, CryptoError> {
    let root = batch_reply_root(reply)?;
    let message = batch_reply_message(reply.message.sequence, &root);
    if !palisade_wire::signature::verify_one(key, &message, &reply.signature.0) {
        return Err(CryptoError::BadSignature);
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn replies(n: u64) -> Vec<Reply> {
        (0..n)
            .map(|i| Reply {
                sequence: 7,
                client: i % 2,
                request_id: 100 + i,
                result: vec![i as u8; i as usize],
                replica: 1,
            })
            .collect()
    }

    #[test]
    fn every_reply_of_a_batch_verifies_under_one_signature() {
        for n in [1, 2, 3, 5, 8, 13] {
            let signed = sign_batch_replies(&key(1), replies(n));
            assert_eq!(signed.len(), n as usize);
            let roots: Vec<Digest> = signed
                .iter()
                .map(|r| verify_batch_reply(&key(1).verifying_key(), r).unwrap())
                .collect();
            assert!(roots.windows(2).all(|w| w[0] == w[1]), "n = {n}");
            assert!(signed.windows(2).all(|w| w[0].signature == w[1].signature));
        }
        assert!(sign_batch_replies(&key(1), Vec::new()).is_empty());
    }

    #[test]
    fn a_reply_signed_from_the_leaves_alone_equals_the_batch_signed_whole() {
        for n in [1, 2, 5, 13] {
            let all = replies(n);
            let leaves: Vec<Digest> = all.iter().map(leaf).collect();
            let whole = sign_batch_replies(&key(1), all.clone());
            for (reply, expected) in all.into_iter().zip(whole) {
                let alone = sign_reply_in_batch(&key(1), reply, &leaves).unwrap();
                assert_eq!(alone, expected, "n = {n}");
            }
        }
        // A reply whose leaf is not among the leaves is not signed.
        let leaves: Vec<Digest> = replies(3).iter().map(leaf).collect();
        let mut other = replies(3).remove(1);
        other.result.push(0);
        assert!(sign_reply_in_batch(&key(1), other, &leaves).is_none());
        // Leaves that do not match the replies one for one sign nothing.
        assert!(sign_batch_replies_over(&key(1), replies(3), &leaves[..2]).is_empty());
    }

    #[test]
    fn tampered_replies_paths_and_keys_are_refused() {
        let signed = sign_batch_replies(&key(1), replies(5));
        let pk = key(1).verifying_key();
        let mut r = signed[2].clone();
        r.message.result.push(0);
        assert_eq!(verify_batch_reply(&pk, &r), Err(CryptoError::BadSignature));
        let mut r = signed[2].clone();
        r.message.sequence = 8;
        assert_eq!(verify_batch_reply(&pk, &r), Err(CryptoError::BadSignature));
        let mut r = signed[2].clone();
        r.leaf_index = 3;
        assert!(verify_batch_reply(&pk, &r).is_err());
        let mut r = signed[2].clone();
        r.path.pop();
        assert_eq!(verify_batch_reply(&pk, &r), Err(CryptoError::BadMerklePath));
        let mut r = signed[2].clone();
        r.leaf_count = 0;
        assert!(matches!(
            verify_batch_reply(&pk, &r),
            Err(CryptoError::OutOfBounds(_))
        ));
        // Another replica's key does not verify it.
        assert_eq!(
            verify_batch_reply(&key(2).verifying_key(), &signed[2]),
            Err(CryptoError::BadSignature)
        );
    }
}
