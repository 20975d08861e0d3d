//! Shared helpers of the filter tests: real ed25519 agreement keys signing real PBFT
//! commits, a real threshold key set for the execution cluster (g = 1, three replicas,
//! dealt from a seed), and what an execution replica would send (shares and bodies).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_crypto::{
    deal_from_seed, leaf_hash, root, signer_from_bytes, verifier_from_bytes, SchemeKind,
    ThresholdSigner, ThresholdVerifier,
};
use palisade_firewall::{Filter, FilterConfig, FilterInput, FilterOutput};
use palisade_wire::agreement::{
    Batch, ClientId, Commit, Digest, OrderCertificate, OrderedBatch, PbftCertificate, Request,
    Sequence, Signed,
};
use palisade_wire::envelope::Envelope;
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::{
    reply_root_message, stable_message, CertifiedReply, FirewallMessage, ReplyBody, ReplyEntry,
    ReplyShare, StableCertificate, StableShare, ThresholdSignature,
};
use palisade_wire::fs::Timestamp;

pub const F: usize = 1;
pub const G: usize = 1;
/// h = 1: two rows of two filters.
pub const ROWS: u32 = 2;
pub const REPLICAS: u32 = 2 * G as u32 + 1;
pub const INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_AHEAD: u64 = 256;

pub fn agreement_key(i: usize) -> SigningKey {
    let mut seed = [0xA1; 32];
    seed[1] = i as u8;
    SigningKey::from_bytes(&seed)
}

pub fn client_key(c: ClientId) -> SigningKey {
    let mut seed = [0xC1; 32];
    seed[1] = c as u8;
    SigningKey::from_bytes(&seed)
}

pub fn agreement_public() -> Vec<VerifyingKey> {
    (0..3 * F + 1)
        .map(|i| agreement_key(i).verifying_key())
        .collect()
}

/// The execution cluster's key set: the verifier and one signer per replica.
pub struct Cluster {
    pub verifier: Arc<dyn ThresholdVerifier>,
    pub signers: Vec<Arc<dyn ThresholdSigner>>,
}

pub fn cluster() -> Cluster {
    let keys = deal_from_seed(SchemeKind::Blst, G, REPLICAS as usize, [7; 32]).unwrap();
    let verifier = verifier_from_bytes(&keys.public).unwrap();
    let signers = keys
        .shares
        .iter()
        .enumerate()
        .map(|(i, s)| signer_from_bytes(&keys.public, i as u32, s).unwrap())
        .collect();
    Cluster { verifier, signers }
}

pub fn config(row: u32, cluster: &Cluster) -> FilterConfig {
    let bottom = row + 1 == ROWS;
    FilterConfig {
        row,
        column: 0,
        rows: ROWS,
        f: F,
        agreement_keys: agreement_public(),
        g: G,
        verifier: cluster.verifier.clone(),
        below: if bottom { REPLICAS } else { ROWS },
        max_ahead: MAX_AHEAD,
        max_log_bytes: 256 << 20,
        max_pending_bytes_per_replica: 32 << 20,
        reply_cache_bytes: 64 << 20,
        retransmit_interval: INTERVAL,
        // Every claim checked at once; `vouch.rs` tests set a wait.
        vouch_wait: Duration::ZERO,
        overdue_after: Duration::from_secs(3600),
    }
}

pub fn bottom(cluster: &Cluster) -> Filter {
    let c = config(ROWS - 1, cluster);
    c.validate().unwrap();
    Filter::new(c)
}

pub fn top(cluster: &Cluster) -> Filter {
    let c = config(0, cluster);
    c.validate().unwrap();
    Filter::new(c)
}

pub fn request(client: ClientId, request_id: u64) -> Signed<Request> {
    Signed::sign(
        &client_key(client),
        Request {
            client,
            request_id,
            payload: format!("sealed op {client}/{request_id}")
                .into_bytes()
                .into(),
        },
    )
    .unwrap()
}

/// A batch at `sequence` with requests (client, id) for each of `ids`.
pub fn batch(sequence: Sequence, ids: &[(ClientId, u64)]) -> OrderedBatch {
    OrderedBatch {
        sequence,
        batch: Batch {
            timestamp: Timestamp {
                seconds: 1000 + sequence as u32,
                nanos: 0,
            },
            requests: ids.iter().map(|(c, i)| request(*c, *i)).collect(),
        },
    }
}

/// A PBFT ORDER certificate with commits signed by agreement replicas `signers`.
pub fn certificate_by(batch: &OrderedBatch, signers: &[usize]) -> OrderCertificate {
    let digest = batch.batch.digest().unwrap();
    let commits = signers
        .iter()
        .map(|i| {
            Signed::sign(
                &agreement_key(*i),
                Commit {
                    view: 0,
                    sequence: batch.sequence,
                    digest,
                    replica: *i as u32,
                },
            )
            .unwrap()
        })
        .collect();
    OrderCertificate::Pbft(PbftCertificate {
        view: 0,
        sequence: batch.sequence,
        digest,
        commits,
    })
}

pub fn order_envelope(batch: &OrderedBatch, certificate: OrderCertificate) -> Envelope {
    Envelope::Execution(ExecutionMessage::Order {
        batch: batch.clone(),
        certificate,
    })
}

/// The input "agreement replica `from` delivers `batch` with a 2f+1 certificate".
pub fn order_from(from: u32, batch: &OrderedBatch) -> FilterInput {
    FilterInput::FromAbove {
        from,
        envelope: order_envelope(batch, certificate_by(batch, &[0, 1, 2])),
    }
}

pub fn from_below(from: u32, message: FirewallMessage) -> FilterInput {
    FilterInput::FromBelow {
        from,
        envelope: Envelope::Firewall(message),
    }
}

/// The reply an (honest) execution replica computes for a request.
pub fn entry(sequence: Sequence, client: ClientId, request_id: u64) -> ReplyEntry {
    ReplyEntry {
        client,
        request_id,
        body: format!("sealed reply to {client}/{request_id} at {sequence}").into_bytes(),
    }
}

pub fn entries(batch: &OrderedBatch) -> Vec<ReplyEntry> {
    batch
        .batch
        .requests
        .iter()
        .map(|r| entry(batch.sequence, r.message.client, r.message.request_id))
        .collect()
}

pub fn leaves(entries: &[ReplyEntry]) -> Vec<Digest> {
    entries.iter().map(leaf_hash).collect()
}

/// Replica `replica`'s share on the root over `entries`.
pub fn reply_share(
    cluster: &Cluster,
    replica: u32,
    sequence: Sequence,
    entries: &[ReplyEntry],
) -> FirewallMessage {
    let leaves = leaves(entries);
    let share =
        cluster.signers[replica as usize].sign_share(&reply_root_message(sequence, &root(&leaves)));
    FirewallMessage::ReplyShare(ReplyShare {
        sequence,
        replica,
        leaves,
        share,
    })
}

pub fn reply_body(replica: u32, sequence: Sequence, entry: &ReplyEntry) -> FirewallMessage {
    FirewallMessage::ReplyBody(ReplyBody {
        sequence,
        replica,
        entry: entry.clone(),
    })
}

pub fn stable_share(cluster: &Cluster, replica: u32, sequence: Sequence) -> FirewallMessage {
    FirewallMessage::StableShare(StableShare {
        sequence,
        replica,
        share: cluster.signers[replica as usize].sign_share(&stable_message(sequence)),
    })
}

/// The combined signature of replicas `signers` on `message`.
pub fn combined(cluster: &Cluster, signers: &[u32], message: &[u8]) -> ThresholdSignature {
    let shares: Vec<_> = signers
        .iter()
        .map(|i| (*i, cluster.signers[*i as usize].sign_share(message)))
        .collect();
    cluster.verifier.combine(&shares).unwrap()
}

pub fn stable_certificate(cluster: &Cluster, sequence: Sequence) -> StableCertificate {
    StableCertificate {
        sequence,
        signature: combined(cluster, &[0, 1], &stable_message(sequence)),
    }
}

/// The certified replies of a batch, as the bottom row would build them.
pub fn certified(
    cluster: &Cluster,
    sequence: Sequence,
    entries: &[ReplyEntry],
) -> Vec<CertifiedReply> {
    let message = reply_root_message(sequence, &root(&leaves(entries)));
    let signature = combined(cluster, &[0, 2], &message);
    palisade_crypto::certify_replies(sequence, entries, &signature)
}

/// Outputs to every peer above, as their messages.
pub fn up(out: &[FilterOutput]) -> Vec<Envelope> {
    out.iter()
        .filter_map(|o| match o {
            FilterOutput::ToAbove { to: None, envelope } => Some(envelope.clone()),
            _ => None,
        })
        .collect()
}

/// Certified replies sent to every peer above.
pub fn replies_up(out: &[FilterOutput]) -> Vec<CertifiedReply> {
    up(out)
        .into_iter()
        .filter_map(|e| match e {
            Envelope::Firewall(FirewallMessage::CertifiedReply(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// Orders sent down to every peer (`None`) or one (`Some`), as (recipient, sequence).
pub fn orders_down(out: &[FilterOutput]) -> Vec<(Option<u32>, Sequence)> {
    out.iter()
        .filter_map(|o| match o {
            FilterOutput::ToBelow {
                to,
                envelope: Envelope::Execution(ExecutionMessage::Order { batch, .. }),
            } => Some((*to, batch.sequence)),
            _ => None,
        })
        .collect()
}

/// `reply` from peer `from` below, stepped into `filter`.
pub fn send_reply(filter: &mut Filter, from: u32, reply: &CertifiedReply) -> Vec<FilterOutput> {
    filter.step(from_below(
        from,
        FirewallMessage::CertifiedReply(reply.clone()),
    ))
}
