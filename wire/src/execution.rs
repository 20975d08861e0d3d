//! Execution-cluster messages (Yin et al., SOSP 2003, §3): ordered batches going in,
//! replies and checkpoints coming out, and state transfer between execution replicas.
//!
//! Identities: execution replicas are numbered `0..2g+1` ([`ExecReplicaId`]); clients
//! (gateways) by [`ClientId`]. A client accepts a result once g+1 execution replicas sent
//! the same [`Reply`] (at most g are faulty, so one of them is correct), each as a
//! [`BatchReply`] under that replica's signature on its batch's reply root. A checkpoint is
//! stable once g+1 replicas signed the same state digest at one sequence number: that
//! [`CheckpointCertificate`] is what agreement garbage-collects on and what a lagging
//! replica checks transferred state against (Castro–Liskov TOCS §4.3, §5.3.2).

use std::collections::BTreeSet;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::agreement::{
    Bounded, ClientId, Digest, OrderCertificate, OrderedBatch, Sequence, Signable, Signature,
    Signed, VerifyError, MAX_REPLICAS,
};
use crate::firewall::check_path_bounds;

/// Index of an execution replica, `0..2g+1`.
pub type ExecReplicaId = u32;

/// The largest encoded result a reply may carry: a 1 MiB READ plus attributes.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024 + 16 * 1024;

/// One replica's answer to one request (TOCS §4.1: `<REPLY, v, t, c, i, r>`). `result` is
/// the canonical encoding of the [`crate::fs::FsResult`] (sealed for the gateway once the
/// firewall configuration seals bodies). Every correct replica produces identical bytes.
/// It travels in a [`BatchReply`], which proves who sent it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The sequence number of the batch that executed the request.
    pub sequence: Sequence,
    pub client: ClientId,
    pub request_id: u64,
    #[serde(with = "serde_bytes")]
    pub result: Vec<u8>,
    pub replica: ExecReplicaId,
}

impl Bounded for Reply {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        if self.result.len() > MAX_RESULT_BYTES {
            return Err(VerifyError::OutOfBounds("reply result too large"));
        }
        Ok(())
    }
}

impl Reply {
    /// Two replies agree when everything but the sender agrees.
    pub fn matches(&self, other: &Reply) -> bool {
        self.sequence == other.sequence
            && self.client == other.client
            && self.request_id == other.request_id
            && self.result == other.result
    }
}

/// Execution replica → client (the `separate` configuration): one reply of the batch at
/// `message.sequence`, signed once per batch. The replica's ed25519 signature covers
/// [`batch_reply_message`]`(sequence, root)`, where `root` is the RFC 6962 Merkle root over
/// the leaf hashes of all its replies to that batch, in batch order (the leaves of the
/// firewall's threshold-signed batches), and the reply carries its audit path to that
/// root (`palisade_crypto::batch_reply` makes and checks them). One signature per batch
/// instead of one per reply: the replicas' signing and the client's checking of
/// per-reply signatures were a fifth of the `separate` configuration's CPU at 32 clients
/// (docs/PERFORMANCE.md); a client now checks one signature per replica and batch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BatchReply {
    pub message: Reply,
    /// Position of the leaf and the sibling hashes from the leaf up (RFC 6962 §2.1.1).
    pub leaf_index: u32,
    pub leaf_count: u32,
    pub path: Vec<Digest>,
    /// `message.replica`'s signature on [`batch_reply_message`].
    pub signature: Signature,
}

impl Bounded for BatchReply {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        self.message.check_bounds()?;
        check_path_bounds(self.leaf_index, self.leaf_count, &self.path)
    }
}

/// The bytes an execution replica signs for its replies to the batch at `sequence` whose
/// Merkle root is `root` (its own key; compare the firewall's threshold-signed
/// `reply_root_message`, whose domain differs).
pub fn batch_reply_message(sequence: Sequence, root: &Digest) -> Vec<u8> {
    let mut m = Vec::with_capacity(72);
    m.extend_from_slice(b"palisade/execution/reply-root\0");
    m.extend_from_slice(&sequence.to_le_bytes());
    m.extend_from_slice(&root.0);
    m
}

/// "My state after executing `sequence` has digest `state_digest`" (TOCS §4.3).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ExecCheckpoint {
    pub sequence: Sequence,
    pub state_digest: Digest,
    pub replica: ExecReplicaId,
}

impl Signable for ExecCheckpoint {
    const DOMAIN: &'static [u8] = b"palisade/execution/checkpoint";
    fn signer(&self) -> u64 {
        u64::from(self.replica)
    }
}

impl Bounded for ExecCheckpoint {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        Ok(())
    }
}

/// g+1 matching signed checkpoints from distinct execution replicas: a stable checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CheckpointCertificate {
    pub sequence: Sequence,
    pub state_digest: Digest,
    pub signatures: Vec<Signed<ExecCheckpoint>>,
}

impl CheckpointCertificate {
    /// Verifies, without trusting the sender, that at least g+1 distinct execution
    /// replicas (keys indexed by replica id) signed this sequence and digest.
    pub fn verify(&self, exec_keys: &[VerifyingKey], g: usize) -> Result<(), VerifyError> {
        if self.signatures.len() > MAX_REPLICAS {
            return Err(VerifyError::OutOfBounds("too many checkpoint signatures"));
        }
        let mut signers = BTreeSet::new();
        for signed in &self.signatures {
            let c = &signed.message;
            if c.sequence != self.sequence || c.state_digest != self.state_digest {
                return Err(VerifyError::Certificate("checkpoint for another state"));
            }
            signed.verify_with(exec_keys)?;
            signers.insert(c.replica);
        }
        if signers.len() < g + 1 {
            return Err(VerifyError::Certificate(
                "fewer than g+1 distinct checkpoints",
            ));
        }
        Ok(())
    }
}

/// Everything that travels to, from and between execution replicas (other than replies to
/// clients, which are [`BatchReply`]s).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ExecutionMessage {
    /// Agreement → execution: a batch at its place in the order, with its proof.
    Order {
        batch: OrderedBatch,
        certificate: OrderCertificate,
    },
    /// Execution → execution and agreement: a replica's signed checkpoint digest.
    Checkpoint(Signed<ExecCheckpoint>),
    /// Execution → agreement: a stable checkpoint, so agreement can collect its log.
    Stable(CheckpointCertificate),
    /// Execution → agreement: "resend the ordered batches from `from` on" (a replica that
    /// missed some; agreement nodes keep delivered batches until a stable checkpoint).
    FetchOrders { from: Sequence },
    /// Agreement → execution (`separate` only): a client retransmitted a request that was
    /// ordered, and its batch has left the delivery log, so the order cannot be re-sent
    /// to make the replicas re-send their replies (TOCS §4.1: a replica re-sends the
    /// reply of a request it executed). Each replica sends its cached reply, if it still
    /// has one, to that client. The reply carries its own signature. `sequence` is where
    /// this agreement node delivered the request, when it still remembers: a replica
    /// that knows that batch only by its reply leaves asks its peers for the reply
    /// (`FetchReplies`) and takes it only if its leaf is among its own, so a faulty
    /// agreement node that names a wrong sequence makes it sign nothing.
    ResendReply {
        client: ClientId,
        request_id: u64,
        sequence: Option<Sequence>,
    },
    /// Execution → execution (`separate` only): "send me the replies you made to these
    /// requests of the batch at `sequence`". A replica that knows that batch only by its
    /// reply leaves (it skipped the batch by state transfer, or lost its reply cache in a
    /// restart) asks when the batch's order is re-delivered; it checks each body it gets
    /// against its own leaves, which its checkpoint digest covers, and then signs and
    /// sends the reply itself, so that g+1 correct replicas answer.
    FetchReplies {
        sequence: Sequence,
        requests: Vec<(ClientId, u64)>,
    },
    /// Execution → execution: one reply of the batch at `sequence`, answering
    /// [`ExecutionMessage::FetchReplies`].
    ReplyBody {
        sequence: Sequence,
        entry: crate::firewall::ReplyEntry,
    },
    /// Execution → execution: "send me your state at stable checkpoint `sequence`";
    /// `have` lists the leaf hashes the asker holds, so only differing inodes travel.
    /// The responder answers at its next checkpoint boundary (it keeps no old snapshots),
    /// with [`ExecutionMessage::State`] chunks of a [`crate::checkpoint::ReplicaSnapshot`].
    FetchState {
        sequence: Sequence,
        have: Vec<(u64, [u8; 32])>,
    },
    /// Execution → execution: one chunk of the (partial) state after executing
    /// `sequence`: the canonical bytes of a [`crate::checkpoint::ReplicaSnapshot`], cut into `count` chunks
    /// of at most [`STATE_CHUNK_BYTES`] so that a state larger than one message
    /// ([`crate::MAX_MESSAGE_BYTES`]) still travels. The responder exports it right after
    /// its own checkpoint at `sequence`, before that checkpoint is stable; the receiver
    /// reassembles it and replaces nothing until it holds a [`CheckpointCertificate`] for
    /// `sequence` whose digest the snapshot reproduces (TOCS §5.3.2).
    State {
        sequence: Sequence,
        /// This chunk's position, `0..count`.
        index: u32,
        count: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

/// Largest chunk of a state transfer (well below [`crate::MAX_MESSAGE_BYTES`]).
pub const STATE_CHUNK_BYTES: usize = 1024 * 1024;
/// Most chunks one state transfer may have: 1 GiB of encoded state.
pub const MAX_STATE_CHUNKS: u32 = 1024;

/// Most leaf hashes a FetchState may list (bounds what a peer makes us compare).
pub const MAX_FETCH_HAVE: usize = 1 << 16;

impl Bounded for ExecutionMessage {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        match self {
            ExecutionMessage::Order { batch, .. } => batch.batch.check_bounds(),
            ExecutionMessage::Stable(c) if c.signatures.len() > MAX_REPLICAS => {
                Err(VerifyError::OutOfBounds("too many checkpoint signatures"))
            }
            ExecutionMessage::State {
                index, count, data, ..
            } if data.len() > STATE_CHUNK_BYTES
                || *count == 0
                || *count > MAX_STATE_CHUNKS
                || index >= count =>
            {
                Err(VerifyError::OutOfBounds("bad state chunk"))
            }
            ExecutionMessage::FetchState { have, .. } if have.len() > MAX_FETCH_HAVE => {
                Err(VerifyError::OutOfBounds("too many leaf hashes"))
            }
            ExecutionMessage::FetchReplies { requests, .. }
                if requests.len() > crate::agreement::MAX_BATCH_REQUESTS =>
            {
                Err(VerifyError::OutOfBounds("too many requests asked"))
            }
            ExecutionMessage::ReplyBody { entry, .. } => entry.check_bounds(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i + 1; 32])
    }

    fn checkpoint(replica: u32, digest: u8) -> Signed<ExecCheckpoint> {
        let c = ExecCheckpoint {
            sequence: 8,
            state_digest: Digest([digest; 32]),
            replica,
        };
        Signed::sign(&key(replica as u8), c).unwrap()
    }

    #[test]
    fn certificate_needs_g_plus_one_distinct_matching_signers() {
        let keys: Vec<_> = (0..3).map(|i| key(i).verifying_key()).collect();
        let cert = |signatures| CheckpointCertificate {
            sequence: 8,
            state_digest: Digest([7; 32]),
            signatures,
        };
        cert(vec![checkpoint(0, 7), checkpoint(2, 7)])
            .verify(&keys, 1)
            .unwrap();
        assert!(cert(vec![checkpoint(0, 7), checkpoint(0, 7)])
            .verify(&keys, 1)
            .is_err());
        assert!(cert(vec![checkpoint(0, 7), checkpoint(1, 6)])
            .verify(&keys, 1)
            .is_err());
        let mut forged = checkpoint(1, 7);
        forged.signer = 2;
        forged.message.replica = 2;
        assert!(cert(vec![checkpoint(0, 7), forged])
            .verify(&keys, 1)
            .is_err());
    }

    #[test]
    fn replies_match_on_everything_but_the_sender() {
        let a = Reply {
            sequence: 1,
            client: 9,
            request_id: 4,
            result: vec![1],
            replica: 0,
        };
        let b = Reply {
            replica: 2,
            ..a.clone()
        };
        assert!(a.matches(&b));
        assert!(!a.matches(&Reply {
            result: vec![2],
            ..b
        }));
    }
}
