//! Checking the certificates that replicas forward to each other as evidence, and
//! building the ORDER certificate (TOCS §4.2–4.4).
//!
//! MACs suffice for votes consumed only by their direct receiver (TOCS §3.2
//! authenticators), which is why prepares travel unsigned over authenticated links;
//! everything checked here is a quorum of messages *forwarded* by a possibly faulty
//! replica, so each must carry its author's signature.

use std::collections::BTreeSet;

use palisade_wire::agreement::{
    Checkpoint, Commit, Digest, OrderCertificate, PbftCertificate, Sequence, Signed,
};

use crate::config::Config;
use crate::error::Reject;

/// Checks a checkpoint proof (TOCS §4.3): 2f+1 checkpoint messages from distinct
/// replicas for `sequence` with one state digest, which is returned. Sequence 0 (the
/// initial state) needs no proof. `sequence` need not be a multiple of K: after a
/// restart of the whole cluster, the stable checkpoint is where execution resumed.
pub fn verify_checkpoint_proof(
    sequence: Sequence,
    proof: &[Signed<Checkpoint>],
    config: &Config,
) -> Result<Option<Digest>, Reject> {
    if sequence == 0 {
        return Ok(None);
    }
    let digest = proof
        .first()
        .map(|c| c.message.state_digest)
        .ok_or(Reject::Rule("checkpoint proof: empty"))?;
    let mut signers = BTreeSet::new();
    for checkpoint in proof {
        let c = &checkpoint.message;
        if c.sequence != sequence || c.state_digest != digest {
            return Err(Reject::Rule("checkpoint proof: mismatched message"));
        }
        checkpoint.verify_with(&config.replica_keys)?;
        signers.insert(c.replica);
    }
    if signers.len() < config.quorum() {
        return Err(Reject::Rule("checkpoint proof: fewer than 2f+1 messages"));
    }
    Ok(Some(digest))
}

/// Builds the ORDER certificate from 2f+1 matching commits (already verified on receipt).
/// Exactly 2f+1 are kept, lowest replica ids first, so that every replica that
/// collected the same commits produces the same certificate bytes.
pub fn order_certificate(commits: &[Signed<Commit>], config: &Config) -> Option<PbftCertificate> {
    let first = commits.first()?;
    let mut chosen: Vec<Signed<Commit>> = commits.to_vec();
    chosen.sort_by_key(|c| c.message.replica);
    chosen.dedup_by_key(|c| c.message.replica);
    if chosen.len() < config.quorum() {
        return None;
    }
    chosen.truncate(config.quorum());
    Some(PbftCertificate {
        view: first.message.view,
        sequence: first.message.sequence,
        digest: first.message.digest,
        commits: chosen,
    })
}

/// Wraps a PBFT certificate in the protocol-neutral enum.
pub fn neutral(cert: PbftCertificate) -> OrderCertificate {
    OrderCertificate::Pbft(cert)
}
