//! Agreement-cluster messages (PBFT: Castro & Liskov, OSDI 1999 / TOCS 2002) and the
//! protocol-neutral output of agreement: an [`OrderedBatch`] and its [`OrderCertificate`].
//!
//! Every message that a replica or a client signs travels in a [`Signed`] envelope: the
//! signer's id and an ed25519 signature over a domain tag followed by the BLAKE3 digest of
//! the canonical bytes ([`crate::encode`]) of the message (see `signing_bytes`: large
//! payloads are hashed once, with a fast hash; a [`Request`] is signed over its client,
//! id and payload digest, [`Signable::signing_digest`]). The domain tag matters: messages of
//! different kinds may have identical fields, and without the tag a signature on one
//! could be replayed as the other.
//!
//! Verification is in two layers, both run before a message touches protocol state:
//! - here, [`Signed::verify`]: signature against the signer's key, and
//!   [`Bounded::check_bounds`]: structural limits (sizes, counts) that need no config;
//! - in `palisade-agreement`, the semantic checks that need the configuration (quorum
//!   sizes, watermarks, views).
//!
//! **Where MACs suffice and where signatures are needed.** PBFT's normal case (TOCS
//! §3.2, §4.2) only needs MAC authenticators: a vote consumed by the replicas it was
//! sent to needs only to convince them. Every link here is a Noise session (`palisade-net`)
//! whose per-message AEAD tag is exactly such a MAC, and the runtime hands each message to
//! the core with the link's authenticated sender. So a [`Prepare`] travels unsigned: it is
//! never forwarded, and its receiver checks that it names the link's sender. Signatures
//! are needed wherever a message is *forwarded as evidence* to someone who did not receive
//! it first-hand: the pre-prepare and the commits (2f+1 commits are the
//! [`OrderCertificate`] that execution replicas and filters verify without trusting the
//! node that delivered it, and a pre-prepare vouches for its batch inside view-change
//! messages), checkpoints (their proofs travel in view changes and state transfer),
//! view-change and new-view messages, and client requests (the primary forwards them in
//! its batches). Without signed prepares a view change cannot carry prepared
//! certificates; it carries the `P` and `Q` sets of TOCS §4.5 instead, and the new view
//! is chosen by that section's decision procedure (`palisade-agreement`, `view_change`).

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::fs::Timestamp;
pub use crate::payload::Payload;
use crate::signature::SignatureBatch;

/// Index of an agreement replica, `0..n`.
pub type ReplicaId = u32;
/// A BFT client (a gateway). Keys are registered per client id.
pub type ClientId = u64;
/// A PBFT view number; the primary of view `v` is replica `v mod n` (TOCS §4.1).
pub type View = u64;
/// A sequence number in the total order (1, 2, 3, ...).
pub type Sequence = u64;

/// Largest opaque request payload: a sealed FS operation carrying a 1 MiB NFS WRITE,
/// plus sealing and header overhead.
pub const MAX_REQUEST_PAYLOAD: usize = 1024 * 1024 + 16 * 1024;
/// Most requests one batch may carry, whatever the configuration says.
pub const MAX_BATCH_REQUESTS: usize = 4096;
/// Most replicas a cluster may have (bounds every vote set in a message).
pub const MAX_REPLICAS: usize = 256;
/// Most log entries a view-change or new-view message may carry (the watermark window L).
pub const MAX_WINDOW: usize = 4096;

/// A 32-byte BLAKE3 digest.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Digest of `bytes` under a domain tag, so that digests of different kinds of
    /// object can never be confused.
    pub fn of(domain: &[u8], bytes: &[u8]) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(&(domain.len() as u64).to_le_bytes());
        h.update(domain);
        h.update(bytes);
        Digest(*h.finalize().as_bytes())
    }

    /// [`Digest::of`] the canonical encoding of `value`, hashed as it is encoded
    /// ([`crate::codec::hash_encoding`]).
    pub fn of_encoding<T: Serialize>(domain: &[u8], value: &T) -> Result<Digest, crate::WireError> {
        let mut h = blake3::Hasher::new();
        h.update(&(domain.len() as u64).to_le_bytes());
        h.update(domain);
        crate::codec::hash_encoding(&mut h, value)?;
        Ok(Digest(*h.finalize().as_bytes()))
    }
}

/// An ed25519 signature (64 bytes).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature(#[serde(with = "serde_bytes")] pub [u8; 64]);

/// Why a message was refused before it touched any state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("bad signature from signer {0}")]
    BadSignature(u64),
    #[error("signer {envelope} of the envelope differs from {inner} named in the message")]
    SignerMismatch { envelope: u64, inner: u64 },
    #[error("unknown signer {0}")]
    UnknownSigner(u64),
    #[error("message out of bounds: {0}")]
    OutOfBounds(&'static str),
    #[error("encoding failed: {0}")]
    Encoding(String),
    #[error("certificate invalid: {0}")]
    Certificate(&'static str),
}

/// A message that can be signed: its domain tag and the id its signer must have.
pub trait Signable: Serialize {
    /// Domain-separation tag prepended to the canonical bytes before signing.
    const DOMAIN: &'static [u8];
    /// The id of the party that must sign this message (replica or client id).
    fn signer(&self) -> u64;

    /// The BLAKE3 digest that the signature covers, after the domain tag
    /// (`signing_bytes`): by default that of the canonical encoding.
    fn signing_digest(&self) -> Result<[u8; 32], VerifyError>
    where
        Self: Sized,
    {
        let mut hasher = blake3::Hasher::new();
        crate::codec::hash_encoding(&mut hasher, self)
            .map_err(|e| VerifyError::Encoding(e.to_string()))?;
        Ok(*hasher.finalize().as_bytes())
    }
}

/// Structural limits of a message, checked before anything else looks at it.
pub trait Bounded {
    fn check_bounds(&self) -> Result<(), VerifyError>;
}

/// A message with its signer and signature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Signed<T> {
    pub signer: u64,
    pub message: T,
    pub signature: Signature,
}

/// What ed25519 signs for `message`: `DOMAIN ‖ 0x00 ‖ BLAKE3(canonical bytes)`.
///
/// Signing a 32-byte digest instead of the whole canonical encoding matters for large
/// messages: ed25519 hashes what it signs with SHA-512 twice per signature (RFC 8032
/// §5.1.6) and once per verification (§5.1.7), and a 1 MiB WRITE request is verified by
/// every agreement and execution replica. BLAKE3 hashes it once, several times faster
/// than SHA-512; ed25519 then works on 32 + |DOMAIN| + 1 bytes. The domain tag still
/// comes first, in the clear, so messages of different kinds (a prepare and a commit
/// with identical fields) can never share signing bytes; BLAKE3's collision resistance
/// carries the binding of the signature to the message.
fn signing_bytes<T: Signable>(message: &T) -> Result<Vec<u8>, VerifyError> {
    let digest = message.signing_digest()?;
    let mut bytes = Vec::with_capacity(T::DOMAIN.len() + 1 + blake3::OUT_LEN);
    bytes.extend_from_slice(T::DOMAIN);
    bytes.push(0);
    bytes.extend_from_slice(&digest);
    Ok(bytes)
}

impl<T: Signable + Bounded> Signed<T> {
    /// Signs `message` with `key`; the envelope's signer is `message.signer()`.
    pub fn sign(key: &SigningKey, message: T) -> Result<Signed<T>, VerifyError> {
        let bytes = signing_bytes(&message)?;
        let signature = Signature(crate::signature::sign(key, &bytes));
        Ok(Signed {
            signer: message.signer(),
            message,
            signature,
        })
    }

    /// Checks bounds, that the envelope's signer is the one the message names, and the
    /// signature against `key` (the caller looks `key` up by `self.signer`), under the
    /// ZIP 215 rules that batch checks share ([`crate::signature`]).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), VerifyError> {
        let bytes = self.signing_bytes_checked()?;
        if crate::signature::verify_one(key, &bytes, &self.signature.0) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature(self.signer))
        }
    }

    /// [`Signed::verify`] with the key looked up in `keys` by signer index.
    pub fn verify_with(&self, keys: &[VerifyingKey]) -> Result<(), VerifyError> {
        self.verify(signer_key(self.signer, keys)?)
    }

    /// Everything [`Signed::verify_with`] checks except the signature itself, which is
    /// queued in `batch` for one check with others.
    pub fn queue_with(
        &self,
        keys: &[VerifyingKey],
        batch: &mut SignatureBatch,
    ) -> Result<(), VerifyError> {
        let key = signer_key(self.signer, keys)?;
        let bytes = self.signing_bytes_checked()?;
        batch.push(key, &bytes, &self.signature.0);
        Ok(())
    }

    /// Bounds, the envelope's signer against the message's, and the bytes signed.
    fn signing_bytes_checked(&self) -> Result<Vec<u8>, VerifyError> {
        self.message.check_bounds()?;
        let inner = self.message.signer();
        if inner != self.signer {
            return Err(VerifyError::SignerMismatch {
                envelope: self.signer,
                inner,
            });
        }
        signing_bytes(&self.message)
    }
}

fn signer_key(signer: u64, keys: &[VerifyingKey]) -> Result<&VerifyingKey, VerifyError> {
    usize::try_from(signer)
        .ok()
        .and_then(|i| keys.get(i))
        .ok_or(VerifyError::UnknownSigner(signer))
}

/// Checks every signature of `signed` against `keys` in one batch (the other checks of
/// [`Signed::verify_with`] one by one first); the error names the first culprit.
pub fn verify_all<'a, T: Signable + Bounded + 'a>(
    signed: impl IntoIterator<Item = &'a Signed<T>>,
    keys: &[VerifyingKey],
) -> Result<(), VerifyError> {
    let mut batch = SignatureBatch::new();
    let mut signers = Vec::new();
    for s in signed {
        s.queue_with(keys, &mut batch)?;
        signers.push(s.signer);
    }
    match batch.failures().first() {
        None => Ok(()),
        Some(&i) => Err(VerifyError::BadSignature(signers[i])),
    }
}

/// A client's request (TOCS §4.1: `<REQUEST, o, t, c>`). The payload is opaque to
/// agreement: a sealed FS operation that only the execution cluster can open.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub client: ClientId,
    /// Per-client request id; plays the role of PBFT's client timestamp `t` (exactly-once
    /// semantics), but a client may have many ids in flight at once.
    pub request_id: u64,
    /// Shared, not copied, when a replica clones a request into a batch, a rebuilt
    /// named pre-prepare or its delivery log (each was a megabyte for a 1 MiB WRITE);
    /// its digest is computed once per node ([`Payload`]).
    pub payload: Payload,
}

impl Signable for Request {
    const DOMAIN: &'static [u8] = b"palisade/agreement/request";
    fn signer(&self) -> u64 {
        self.client
    }

    /// The canonical encoding of `(client, request id, BLAKE3(payload))`: it binds the
    /// payload as the whole encoding would (BLAKE3 is collision resistant), and the
    /// payload's digest is the one [`Batch::digest`] reuses, so a node hashes a payload
    /// once however many times it checks the request.
    fn signing_digest(&self) -> Result<[u8; 32], VerifyError>
    where
        Self: Sized,
    {
        Digest::of_encoding(
            b"palisade/agreement/request",
            &(self.client, self.request_id, self.payload.digest()),
        )
        .map(|d| d.0)
        .map_err(|e| VerifyError::Encoding(e.to_string()))
    }
}

impl Bounded for Request {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        if self.payload.len() > MAX_REQUEST_PAYLOAD {
            return Err(VerifyError::OutOfBounds("request payload too large"));
        }
        Ok(())
    }
}

/// What a sequence number is bound to: the requests, in order, and the timestamp the
/// primary fixed for them (the batch's non-deterministic input, DESIGN §1). A batch with
/// no requests is PBFT's null request (TOCS §4.4), used to fill gaps after a view change.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub timestamp: Timestamp,
    pub requests: Vec<Signed<Request>>,
}

impl Batch {
    /// The null batch (no requests, zero timestamp).
    pub fn null() -> Batch {
        Batch::default()
    }

    pub fn is_null(&self) -> bool {
        self.requests.is_empty()
    }

    /// The digest that pre-prepares, prepares and commits name. It covers the
    /// timestamp, so a primary cannot change the time of an agreed batch, and each
    /// request by its signer, its signature and its signing digest
    /// ([`Signable::signing_digest`]), which binds the request's fields and payload. Two
    /// batches with equal digests are therefore equal, as they were when this hashed the
    /// whole encoding, but the payloads are hashed through their cached digests
    /// ([`Payload`]): at most once per node, shared with the signature checks.
    pub fn digest(&self) -> Result<Digest, VerifyError> {
        let requests = self
            .requests
            .iter()
            .map(|r| Ok((r.signer, r.signature, r.message.signing_digest()?)))
            .collect::<Result<Vec<_>, VerifyError>>()?;
        Digest::of_encoding(b"palisade/agreement/batch", &(self.timestamp, requests))
            .map_err(|e| VerifyError::Encoding(e.to_string()))
    }

    /// Bounds, and every client signature against `client_keys` (indexed by client id),
    /// in one batch check.
    pub fn verify(&self, client_keys: &[VerifyingKey]) -> Result<(), VerifyError> {
        self.check_bounds()?;
        verify_all(&self.requests, client_keys)
    }
}

impl Bounded for Batch {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        if self.requests.len() > MAX_BATCH_REQUESTS {
            return Err(VerifyError::OutOfBounds("too many requests in batch"));
        }
        self.requests
            .iter()
            .try_for_each(|r| r.message.check_bounds())
    }
}

/// One request of a pre-prepare as it travels (TOCS §5.1, separate request
/// transmission): a large request goes by name, because its client sent it to every
/// replica already (`Client` sends each request to all of them, TOCS §4.1), and a
/// backup that holds it need not receive its payload — up to 1 MiB of WRITE data —
/// again from the primary.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum BatchEntry {
    /// The request itself.
    Inline(Signed<Request>),
    /// A request by client, request id and the client's signature on it. The receiver
    /// rebuilds the batch from what it holds and checks the result against the
    /// pre-prepare's digest; a request it lacks, or holds with other bytes, it fetches.
    Named {
        client: ClientId,
        request_id: u64,
        signature: Signature,
    },
}

impl BatchEntry {
    /// `request` by name when its payload has at least `named_from` bytes.
    pub fn of(request: &Signed<Request>, named_from: usize) -> BatchEntry {
        if request.message.payload.len() >= named_from {
            BatchEntry::Named {
                client: request.message.client,
                request_id: request.message.request_id,
                signature: request.signature,
            }
        } else {
            BatchEntry::Inline(request.clone())
        }
    }
}

impl Bounded for [BatchEntry] {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        if self.len() > MAX_BATCH_REQUESTS {
            return Err(VerifyError::OutOfBounds("too many requests in batch"));
        }
        self.iter().try_for_each(|e| match e {
            BatchEntry::Inline(r) => r.message.check_bounds(),
            BatchEntry::Named { .. } => Ok(()),
        })
    }
}

/// The primary's proposal (TOCS §4.2: `<PRE-PREPARE, v, n, d>`). It names the batch by
/// digest; the batch body travels beside it in [`AgreementMessage::PrePrepare`] so that
/// view-change proofs stay small.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PrePrepare {
    pub view: View,
    pub sequence: Sequence,
    /// The batch's timestamp, repeated here so that it is visible in proofs; it must
    /// equal the timestamp inside the batch that `digest` names.
    pub timestamp: Timestamp,
    pub digest: Digest,
    pub primary: ReplicaId,
}

impl Signable for PrePrepare {
    const DOMAIN: &'static [u8] = b"palisade/agreement/pre-prepare";
    fn signer(&self) -> u64 {
        u64::from(self.primary)
    }
}

impl Bounded for PrePrepare {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        Ok(())
    }
}

/// A vote: `<PREPARE, v, n, d, i>` (TOCS §4.2). Unsigned: it is authenticated by its
/// link (TOCS §3.2 MACs; see the module docs) and never forwarded, so its receiver checks
/// that `replica` is the link's sender.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Prepare {
    pub view: View,
    pub sequence: Sequence,
    pub digest: Digest,
    pub replica: ReplicaId,
}

/// A vote: `<COMMIT, v, n, d, i>` (TOCS §4.2). 2f+1 of these form the ORDER certificate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub view: View,
    pub sequence: Sequence,
    pub digest: Digest,
    pub replica: ReplicaId,
}

impl Signable for Commit {
    const DOMAIN: &'static [u8] = b"palisade/agreement/commit";
    fn signer(&self) -> u64 {
        u64::from(self.replica)
    }
}

impl Bounded for Commit {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        Ok(())
    }
}

/// `<CHECKPOINT, n, d, i>` (TOCS §4.3): replica `i` vouches that the state after
/// executing every batch up to `sequence` has digest `state_digest`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub sequence: Sequence,
    pub state_digest: Digest,
    pub replica: ReplicaId,
}

impl Signable for Checkpoint {
    const DOMAIN: &'static [u8] = b"palisade/agreement/checkpoint";
    fn signer(&self) -> u64 {
        u64::from(self.replica)
    }
}

impl Bounded for Checkpoint {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        Ok(())
    }
}

/// Most `Q` entries a view-change may carry per sequence number (TOCS §4.5.1 bounds the
/// `Q` set too): a correct replica pre-prepares one digest per view, so four covers four
/// views with different proposals at one sequence before it is collected.
pub const MAX_PRE_PREPARED_PER_SEQUENCE: usize = 4;

/// One entry of a view-change's `Q` set (TOCS §4.5.1): this replica pre-prepared (accepted
/// the pre-prepare of, or as primary proposed) the batch `digest` at `sequence`, most
/// recently in `view`, with the timestamp the pre-prepare carried. An unproven claim: the
/// new-view decision procedure counts f+1 of them, so that at least one comes from a
/// correct replica.
///
/// Why the timestamp: the digest binds the batch's own timestamp, and a correct replica
/// accepts a pre-prepare only if its timestamp is the batch's, so for correct replicas a
/// digest has one timestamp. A faulty primary can still sign the same digest under another
/// time, and a faulty replica can claim that one in `P`; counting f+1 matching timestamps
/// here keeps the new view from re-proposing the batch under it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PrePrepared {
    pub sequence: Sequence,
    pub digest: Digest,
    pub timestamp: Timestamp,
    pub view: View,
}

/// `<VIEW-CHANGE, v+1, n, C, P, Q, i>` (TOCS §4.5.1): the last stable checkpoint `n`
/// with its proof `C` (2f+1 checkpoint messages; empty for the initial state at 0), the
/// `P` set — for every sequence above `n` that prepared here, the pre-prepare of the
/// latest view in which it did (signed by that view's primary, so no replica can name a
/// batch that primary never proposed) — and the `Q` set of what this replica
/// pre-prepared. Prepares are unsigned, so `P` carries no prepared certificates: the new
/// primary decides from the claims of enough replicas (TOCS §4.5.2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ViewChange {
    pub new_view: View,
    pub stable_sequence: Sequence,
    pub checkpoint_proof: Vec<Signed<Checkpoint>>,
    /// `P`, in increasing sequence order, at most one per sequence.
    pub prepared: Vec<Signed<PrePrepare>>,
    /// `Q`, in increasing (sequence, digest) order, at most
    /// [`MAX_PRE_PREPARED_PER_SEQUENCE`] per sequence.
    pub pre_prepared: Vec<PrePrepared>,
    pub replica: ReplicaId,
}

impl Signable for ViewChange {
    const DOMAIN: &'static [u8] = b"palisade/agreement/view-change";
    fn signer(&self) -> u64 {
        u64::from(self.replica)
    }
}

impl Bounded for ViewChange {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        if self.checkpoint_proof.len() > MAX_REPLICAS {
            return Err(VerifyError::OutOfBounds("too many checkpoint messages"));
        }
        if self.prepared.len() > MAX_WINDOW {
            return Err(VerifyError::OutOfBounds("too many prepared entries"));
        }
        if self.pre_prepared.len() > MAX_WINDOW * MAX_PRE_PREPARED_PER_SEQUENCE {
            return Err(VerifyError::OutOfBounds("too many pre-prepared entries"));
        }
        Ok(())
    }
}

/// `<NEW-VIEW, v+1, V, O>` (TOCS §4.5.2): the view-change messages (2f+1 or more, one per
/// replica) from which the new primary could decide every sequence, and the pre-prepares
/// it derived from them (recomputed and compared by every backup).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NewView {
    pub view: View,
    pub view_changes: Vec<Signed<ViewChange>>,
    pub pre_prepares: Vec<Signed<PrePrepare>>,
    pub primary: ReplicaId,
}

impl Signable for NewView {
    const DOMAIN: &'static [u8] = b"palisade/agreement/new-view";
    fn signer(&self) -> u64 {
        u64::from(self.primary)
    }
}

impl Bounded for NewView {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        if self.view_changes.len() > MAX_REPLICAS {
            return Err(VerifyError::OutOfBounds("too many view changes"));
        }
        if self.pre_prepares.len() > MAX_WINDOW {
            return Err(VerifyError::OutOfBounds("too many pre-prepares"));
        }
        self.view_changes
            .iter()
            .try_for_each(|vc| vc.message.check_bounds())
    }
}

/// Everything one agreement replica sends another.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AgreementMessage {
    /// A signed pre-prepare and the batch it names.
    PrePrepare {
        pre_prepare: Signed<PrePrepare>,
        batch: Batch,
    },
    /// Unsigned; authenticated by its link (see the module docs).
    Prepare(Prepare),
    Commit(Signed<Commit>),
    Checkpoint(Signed<Checkpoint>),
    ViewChange(Signed<ViewChange>),
    NewView(Signed<NewView>),
    /// Ask peers for the body of a batch known only by digest (after a new view).
    FetchBatch {
        sequence: Sequence,
        digest: Digest,
    },
    /// A batch body; needs no signature, it is checked against a digest the receiver
    /// already trusts.
    BatchBody {
        sequence: Sequence,
        batch: Batch,
    },
    /// "I have delivered up to `last_delivered` in `view`": sent while a replica waits,
    /// so that peers retransmit what it lost (the status messages of Castro's PBFT
    /// implementation, thesis §5.2). Unsigned: it only triggers retransmission of
    /// messages that carry their own signatures.
    Status {
        view: View,
        last_delivered: Sequence,
    },
    /// "Send me the new-view message of `view`": from a replica still waiting for it to
    /// a peer whose status reports that view (a status message does not say whether its
    /// sender installed its view or is still changing to it). Unsigned: the answer
    /// carries its own proof (2f+1 or more signed view-changes).
    FetchNewView {
        view: View,
    },
    /// A signed pre-prepare whose batch travels as entries, large requests by name
    /// ([`BatchEntry`]); the batch it rebuilds must hash to the pre-prepare's digest.
    PrePrepareNamed {
        pre_prepare: Signed<PrePrepare>,
        entries: Vec<BatchEntry>,
    },
}

impl Bounded for AgreementMessage {
    fn check_bounds(&self) -> Result<(), VerifyError> {
        match self {
            AgreementMessage::PrePrepare { batch, .. } => batch.check_bounds(),
            AgreementMessage::BatchBody { batch, .. } => batch.check_bounds(),
            AgreementMessage::PrePrepareNamed { entries, .. } => entries.check_bounds(),
            AgreementMessage::ViewChange(vc) => vc.message.check_bounds(),
            AgreementMessage::NewView(nv) => nv.message.check_bounds(),
            AgreementMessage::Prepare(_)
            | AgreementMessage::Commit(_)
            | AgreementMessage::Checkpoint(_)
            | AgreementMessage::FetchBatch { .. }
            | AgreementMessage::Status { .. }
            | AgreementMessage::FetchNewView { .. } => Ok(()),
        }
    }
}

/// Request payload bytes from which an ordered batch counts as large: one agreement
/// replica pushes it to the execution replicas instead of f+1
/// (`palisade_agreement::pushers`), and they check its certificate at its first copy.
pub const LARGE_BATCH_BYTES: usize = 64 * 1024;

/// The protocol-neutral output of agreement: a batch at its place in the total order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OrderedBatch {
    pub sequence: Sequence,
    pub batch: Batch,
}

impl OrderedBatch {
    /// The execution context the batch fixes (sequence and agreed time).
    pub fn context(&self) -> crate::fs::BatchContext {
        crate::fs::BatchContext {
            sequence: self.sequence,
            timestamp: self.batch.timestamp,
        }
    }

    /// The request payload bytes the batch carries (against [`LARGE_BATCH_BYTES`]).
    pub fn payload_bytes(&self) -> usize {
        self.batch
            .requests
            .iter()
            .map(|r| r.message.payload.len())
            .fold(0, usize::saturating_add)
    }
}

/// PBFT's ORDER certificate: 2f+1 commits from distinct replicas for one
/// (view, sequence, digest) (TOCS §4.2, "committed-local").
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PbftCertificate {
    pub view: View,
    pub sequence: Sequence,
    pub digest: Digest,
    pub commits: Vec<Signed<Commit>>,
}

/// Proof that a batch was ordered at a sequence number. An enum so that FaB Paxos can
/// add its own variant (a quorum of accepts) behind the same seam.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum OrderCertificate {
    Pbft(PbftCertificate),
}

impl OrderCertificate {
    pub fn sequence(&self) -> Sequence {
        match self {
            OrderCertificate::Pbft(c) => c.sequence,
        }
    }

    /// Verifies, without trusting whoever handed it over, that `batch` was ordered at
    /// `batch.sequence`: the batch's digest matches, and at least 2f+1 distinct replicas
    /// (keys indexed by replica id) signed a commit for this view, sequence and digest.
    /// Signatures, not MACs, are what make this checkable by a third party (execution
    /// replicas and filters share no keys with agreement replicas).
    pub fn verify(
        &self,
        batch: &OrderedBatch,
        replica_keys: &[VerifyingKey],
        f: usize,
    ) -> Result<(), VerifyError> {
        let OrderCertificate::Pbft(cert) = self;
        if cert.sequence != batch.sequence {
            return Err(VerifyError::Certificate("sequence differs from batch"));
        }
        if batch.batch.digest()? != cert.digest {
            return Err(VerifyError::Certificate("digest differs from batch"));
        }
        if cert.commits.len() > MAX_REPLICAS {
            return Err(VerifyError::OutOfBounds("too many commits"));
        }
        let quorum = 2 * f + 1;
        if replica_keys.len() < quorum {
            return Err(VerifyError::Certificate("fewer keys than a quorum"));
        }
        let mut signers = std::collections::BTreeSet::new();
        for commit in &cert.commits {
            let c = &commit.message;
            if c.view != cert.view || c.sequence != cert.sequence || c.digest != cert.digest {
                return Err(VerifyError::Certificate("commit for another slot"));
            }
            signers.insert(c.replica);
        }
        if signers.len() < quorum {
            return Err(VerifyError::Certificate("fewer than 2f+1 distinct commits"));
        }
        // The signatures last, in one batch: only a certificate that could count is
        // worth the curve arithmetic.
        verify_all(&cert.commits, replica_keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    /// A message with exactly a commit's fields under another domain tag, standing for
    /// any other signed kind: only the tag tells the two apart.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    struct NotACommit {
        view: View,
        sequence: Sequence,
        digest: Digest,
        replica: ReplicaId,
    }

    impl Signable for NotACommit {
        const DOMAIN: &'static [u8] = b"palisade/agreement/test-not-a-commit";
        fn signer(&self) -> u64 {
            u64::from(self.replica)
        }
    }

    impl Bounded for NotACommit {
        fn check_bounds(&self) -> Result<(), VerifyError> {
            Ok(())
        }
    }

    #[test]
    fn signatures_verify_and_are_domain_separated() {
        let other = NotACommit {
            view: 1,
            sequence: 2,
            digest: Digest([3; 32]),
            replica: 0,
        };
        let signed = Signed::sign(&key(0), other.clone()).unwrap();
        signed.verify(&key(0).verifying_key()).unwrap();
        assert_eq!(
            signed.verify(&key(1).verifying_key()),
            Err(VerifyError::BadSignature(0))
        );
        // The same fields as a commit, with the other message's signature: refused.
        let forged = Signed {
            signer: 0,
            message: Commit {
                view: 1,
                sequence: 2,
                digest: Digest([3; 32]),
                replica: 0,
            },
            signature: signed.signature,
        };
        assert_eq!(
            crate::encode(&forged.message).unwrap(),
            crate::encode(&other).unwrap(),
            "the test needs identical encodings"
        );
        assert!(forged.verify(&key(0).verifying_key()).is_err());
        // Envelope names another signer than the message.
        let mut mismatched = signed.clone();
        mismatched.signer = 1;
        assert!(matches!(
            mismatched.verify_with(&[key(0).verifying_key(), key(1).verifying_key()]),
            Err(VerifyError::SignerMismatch { .. })
        ));
        assert_eq!(
            Signed::sign(
                &key(5),
                NotACommit {
                    replica: 5,
                    ..other
                }
            )
            .unwrap()
            .verify_with(&[key(0).verifying_key()]),
            Err(VerifyError::UnknownSigner(5))
        );
    }

    #[test]
    fn signatures_cover_every_byte_of_a_large_payload() {
        // The signature is over a digest of the canonical bytes: flipping any one byte
        // of a 1 MiB payload, or changing its length, must still break it.
        let mut payload = vec![7u8; 1024 * 1024];
        payload[512 * 1024] = 1;
        let request = Request {
            client: 0,
            request_id: 1,
            payload: payload.into(),
        };
        let signed = Signed::sign(&key(0), request).unwrap();
        let vk = key(0).verifying_key();
        signed.verify(&vk).unwrap();
        for at in [0, 512 * 1024, 1024 * 1024 - 1] {
            let mut tampered = signed.clone();
            let mut bytes = tampered.message.payload.to_vec();
            bytes[at] ^= 0x80;
            tampered.message.payload = bytes.into();
            assert_eq!(tampered.verify(&vk), Err(VerifyError::BadSignature(0)));
        }
        let mut shorter = signed.clone();
        shorter.message.payload = signed
            .message
            .payload
            .bytes()
            .slice(..1024 * 1024 - 1)
            .into();
        assert_eq!(shorter.verify(&vk), Err(VerifyError::BadSignature(0)));
        let mut other_id = signed;
        other_id.message.request_id = 2;
        assert_eq!(other_id.verify(&vk), Err(VerifyError::BadSignature(0)));
    }

    #[test]
    fn a_batch_digest_covers_every_request_field_signature_and_payload_byte() {
        let request = |id: u64, payload: Vec<u8>| {
            Signed::sign(
                &key(0),
                Request {
                    client: 0,
                    request_id: id,
                    payload: payload.into(),
                },
            )
            .unwrap()
        };
        let batch = |requests| Batch {
            timestamp: Timestamp {
                seconds: 1,
                nanos: 2,
            },
            requests,
        };
        let big = vec![3u8; 64 * 1024];
        let base = batch(vec![request(1, big.clone()), request(2, vec![4])]);
        let digest = base.digest().unwrap();
        // The same batch built again (fresh payloads, empty caches): the same digest.
        assert_eq!(
            batch(vec![request(1, big.clone()), request(2, vec![4])])
                .digest()
                .unwrap(),
            digest
        );
        // One payload byte, after the original's digest was cached.
        let mut flipped = big.clone();
        flipped[40_000] ^= 1;
        let mut changed = base.clone();
        changed.requests[0].message.payload = flipped.into();
        assert_ne!(changed.digest().unwrap(), digest);
        // Another request id (same payload object, so the same cached payload digest).
        let mut changed = base.clone();
        changed.requests[1].message.request_id = 3;
        assert_ne!(changed.digest().unwrap(), digest);
        // Another signature or signer.
        let mut changed = base.clone();
        changed.requests[1].signature.0[0] ^= 1;
        assert_ne!(changed.digest().unwrap(), digest);
        let mut changed = base.clone();
        changed.requests[1].signer = 1;
        assert_ne!(changed.digest().unwrap(), digest);
        // The order of the requests, and the timestamp.
        let mut changed = base.clone();
        changed.requests.swap(0, 1);
        assert_ne!(changed.digest().unwrap(), digest);
        let mut changed = base.clone();
        changed.timestamp.nanos = 3;
        assert_ne!(changed.digest().unwrap(), digest);
    }

    #[test]
    fn messages_round_trip_canonically() {
        let request = Signed::sign(
            &key(9),
            Request {
                client: 0,
                request_id: 1,
                payload: vec![1, 2, 3].into(),
            },
        )
        .unwrap();
        let msg = AgreementMessage::BatchBody {
            sequence: 4,
            batch: Batch {
                timestamp: Timestamp {
                    seconds: 5,
                    nanos: 6,
                },
                requests: vec![request],
            },
        };
        let bytes = crate::encode(&msg).unwrap();
        let back: AgreementMessage = crate::decode(&bytes).unwrap();
        assert_eq!(back, msg);
        assert_eq!(crate::encode(&back).unwrap(), bytes);
    }

    #[test]
    fn a_payload_encodes_as_its_length_and_its_bytes() {
        // The canonical form `Bytes` must keep: what a `Vec<u8>` under `serde_bytes`
        // encoded to (varint length, then the bytes), so digests and signatures of
        // requests do not depend on the payload's in-memory type.
        let request = Request {
            client: 300,
            request_id: 2,
            payload: vec![9, 8, 7].into(),
        };
        assert_eq!(
            crate::encode(&request).unwrap(),
            vec![0xac, 0x02, 2, 3, 9, 8, 7]
        );
    }

    #[test]
    fn oversized_payload_is_refused() {
        let request = Signed::sign(
            &key(9),
            Request {
                client: 0,
                request_id: 1,
                payload: vec![0; MAX_REQUEST_PAYLOAD + 1].into(),
            },
        )
        .unwrap();
        assert_eq!(
            request.verify(&key(9).verifying_key()),
            Err(VerifyError::OutOfBounds("request payload too large"))
        );
    }

    #[test]
    fn certificate_needs_quorum_of_distinct_valid_commits() {
        let keys: Vec<SigningKey> = (0..4).map(key).collect();
        let public: Vec<VerifyingKey> = keys.iter().map(|k| k.verifying_key()).collect();
        let batch = OrderedBatch {
            sequence: 7,
            batch: Batch::null(),
        };
        let digest = batch.batch.digest().unwrap();
        let commit = |i: u32| {
            Signed::sign(
                &keys[i as usize],
                Commit {
                    view: 0,
                    sequence: 7,
                    digest,
                    replica: i,
                },
            )
            .unwrap()
        };
        let cert = |commits| {
            OrderCertificate::Pbft(PbftCertificate {
                view: 0,
                sequence: 7,
                digest,
                commits,
            })
        };
        cert(vec![commit(0), commit(1), commit(2)])
            .verify(&batch, &public, 1)
            .unwrap();
        // Only two distinct signers: a duplicate does not count twice.
        assert!(cert(vec![commit(0), commit(1), commit(1)])
            .verify(&batch, &public, 1)
            .is_err());
        // Another batch at the same sequence: refused.
        let other = OrderedBatch {
            sequence: 7,
            batch: Batch {
                timestamp: Timestamp {
                    seconds: 1,
                    nanos: 0,
                },
                requests: vec![],
            },
        };
        assert!(cert(vec![commit(0), commit(1), commit(2)])
            .verify(&other, &public, 1)
            .is_err());
    }
}
