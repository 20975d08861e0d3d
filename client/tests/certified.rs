//! The client in the firewall configuration (`Acceptance::Certified`, SOSP 2003 §4): one
//! reply certified by the execution cluster's combined threshold signature completes a
//! request; the replies of one batch cost one signature check; everything forged,
//! tampered, misdirected or of the wrong kind is dropped and counted.

// Test fixtures: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_client::{Acceptance, Client, ClientConfig, ClientInput, ClientOutput, ClientTimer};
use palisade_crypto::{certify_replies, DealtKeys, SchemeKind, ThresholdVerifier};
use palisade_wire::execution::Reply;
use palisade_wire::firewall::{
    reply_root_message, CertifiedReply, ReplyEntry, ThresholdSignature, Vouch,
};

mod support;
use support::{exec_key, CLIENT};

const SEQUENCE: u64 = 17;
const VOUCH_WAIT: Duration = Duration::from_millis(4);

/// `reply` as replica `signer` sends it: a batch of one, under `signer`'s key.
fn signed_reply(signer: u32, reply: Reply) -> palisade_wire::execution::BatchReply {
    palisade_crypto::sign_batch_replies(&exec_key(signer), vec![reply]).remove(0)
}

fn keys(seed: u8) -> DealtKeys {
    palisade_crypto::deal_from_seed(SchemeKind::Blst, 1, 3, [seed; 32]).unwrap()
}

fn verifier(seed: u8) -> Arc<dyn ThresholdVerifier> {
    palisade_crypto::verifier_from_bytes(&keys(seed).public).unwrap()
}

fn client(acceptance: Acceptance) -> Client {
    client_waiting(acceptance, Duration::ZERO)
}

/// A client whose certified replies wait `vouch_wait` for vouches.
fn client_waiting(acceptance: Acceptance, vouch_wait: Duration) -> Client {
    let config = ClientConfig {
        acceptance,
        vouch_wait,
        ..support::config()
    };
    Client::new(config, SigningKey::from_bytes(&[7; 32]))
}

fn entry(client: u64, request_id: u64, body: &[u8]) -> ReplyEntry {
    ReplyEntry {
        client,
        request_id,
        body: body.to_vec(),
    }
}

/// The combined signature of replicas 0 and 2 (of key set `seed`) on the batch's root.
fn sign_batch(seed: u8, sequence: u64, entries: &[ReplyEntry]) -> ThresholdSignature {
    let k = keys(seed);
    let message = reply_root_message(sequence, &palisade_crypto::reply_root(entries));
    let shares: Vec<_> = [0u32, 2]
        .iter()
        .map(|i| {
            let signer =
                palisade_crypto::signer_from_bytes(&k.public, *i, &k.shares[*i as usize]).unwrap();
            (*i, signer.sign_share(&message))
        })
        .collect();
    let v = verifier(seed);
    let sig = v.combine(&shares).unwrap();
    assert!(v.verify(&message, &sig));
    sig
}

/// Certified replies of one batch: requests 1 and 2 of this client, one of client 9, 3.
fn batch() -> Vec<CertifiedReply> {
    let entries = vec![
        entry(CLIENT, 1, b"one"),
        entry(9, 1, b"other client"),
        entry(CLIENT, 2, b"two"),
        entry(CLIENT, 3, b"three"),
    ];
    let sig = sign_batch(1, SEQUENCE, &entries);
    certify_replies(SEQUENCE, &entries, &sig)
}

fn submit(c: &mut Client, n: u64) {
    for i in 0..n {
        c.step(
            ClientInput::Submit {
                payload: vec![i as u8],
            },
            Duration::ZERO,
        );
    }
}

fn complete(out: &[ClientOutput]) -> Option<(u64, u64, Vec<u8>)> {
    out.iter().find_map(|o| match o {
        ClientOutput::Complete {
            request_id,
            sequence,
            result,
        } => Some((*request_id, *sequence, result.clone())),
        _ => None,
    })
}

fn certified(c: &mut Client, reply: CertifiedReply) -> Vec<ClientOutput> {
    c.step(ClientInput::Certified(reply), Duration::from_millis(1))
}

#[test]
fn one_certified_reply_completes_and_a_batch_costs_one_check() {
    let mut c = client(Acceptance::Certified(verifier(1)));
    submit(&mut c, 3);
    let certs = batch();
    let out = certified(&mut c, certs[0].clone());
    assert_eq!(complete(&out), Some((1, SEQUENCE, b"one".to_vec())));
    assert_eq!(c.stats().certificates_cached, 0);
    // The next reply of the same batch: same (sequence, root, signature), no pairing.
    let out = certified(&mut c, certs[2].clone());
    assert_eq!(complete(&out), Some((2, SEQUENCE, b"two".to_vec())));
    assert_eq!(c.stats().certificates_cached, 1);
    assert_eq!(c.stats().completed, 2);
    assert_eq!(c.outstanding(), vec![3]);
    // Another client's reply, and a reply for a request already complete: counted.
    assert!(complete(&certified(&mut c, certs[1].clone())).is_none());
    assert_eq!(c.stats().replies_wrong_client, 1);
    assert!(complete(&certified(&mut c, certs[0].clone())).is_none());
    assert_eq!(c.stats().replies_unknown_request, 1);
    assert_eq!(c.stats().bad_certificates, 0);
}

#[test]
fn forged_and_tampered_certificates_are_dropped_and_counted() {
    let mut c = client(Acceptance::Certified(verifier(1)));
    submit(&mut c, 3);
    let certs = batch();
    // Verify (and cache) the batch's signature through request 1 first, so that the
    // tampered copies below cannot ride on the cache.
    assert!(complete(&certified(&mut c, certs[0].clone())).is_some());
    let good = certs[3].clone();
    let mut tampered = Vec::new();
    // A body changed: its path leads to another root, which nobody signed.
    let mut t = good.clone();
    t.entry.body = b"THREE".to_vec();
    tampered.push(t);
    // Another leaf position, a missing sibling, a wrong count.
    let mut t = good.clone();
    t.leaf_index = 2;
    tampered.push(t);
    let mut t = good.clone();
    t.path.pop();
    tampered.push(t);
    let mut t = good.clone();
    t.leaf_count = 5;
    tampered.push(t);
    // Out of bounds: the index beyond the count.
    let mut t = good.clone();
    t.leaf_index = 9;
    tampered.push(t);
    // The signature of another sequence, or of another key set, or garbage bytes.
    let mut t = good.clone();
    t.sequence = SEQUENCE + 1;
    tampered.push(t);
    let entries: Vec<ReplyEntry> = batch().iter().map(|c| c.entry.clone()).collect();
    let mut t = good.clone();
    t.signature = sign_batch(2, SEQUENCE, &entries);
    tampered.push(t);
    let mut t = good.clone();
    t.signature.0[5] ^= 1;
    tampered.push(t);
    let mut t = good.clone();
    t.signature = ThresholdSignature(vec![0; 10]);
    tampered.push(t);
    // A request id changed (the entry then hashes to another leaf).
    let mut t = good.clone();
    t.entry.request_id = 2;
    tampered.push(t);
    let n = tampered.len() as u64;
    for t in tampered {
        let out = certified(&mut c, t.clone());
        assert!(complete(&out).is_none(), "accepted {t:?}");
    }
    // Every copy named an outstanding request (3, or 2 for the changed id), so each
    // reached the certificate check and failed there.
    assert_eq!(c.stats().bad_certificates, n);
    assert_eq!(c.outstanding(), vec![2, 3]);
    // The genuine reply still completes.
    assert_eq!(
        complete(&certified(&mut c, good)),
        Some((3, SEQUENCE, b"three".to_vec()))
    );
}

#[test]
fn replies_of_the_wrong_kind_are_dropped_and_counted() {
    // A matching client ignores certified replies...
    let mut m = client(Acceptance::Matching);
    submit(&mut m, 1);
    assert!(complete(&certified(&mut m, batch()[0].clone())).is_none());
    assert_eq!(m.stats().replies_wrong_mode, 1);
    // ...and a certified client ignores signed ones, however many match.
    let mut c = client(Acceptance::Certified(verifier(1)));
    submit(&mut c, 1);
    for replica in 0..3 {
        let reply = signed_reply(
            replica,
            Reply {
                sequence: 9,
                client: CLIENT,
                request_id: 1,
                result: b"r".to_vec(),
                replica,
            },
        );
        let out = c.step(ClientInput::Reply(reply), Duration::from_millis(1));
        assert!(complete(&out).is_none());
    }
    assert_eq!(c.stats().replies_wrong_mode, 3);
    assert_eq!(c.outstanding(), vec![1]);
    // A single-reply batch (empty path) completes.
    let entries = vec![entry(CLIENT, 1, b"solo")];
    let sig = sign_batch(1, 3, &entries);
    let cert = certify_replies(3, &entries, &sig).remove(0);
    assert!(cert.path.is_empty());
    assert_eq!(
        complete(&certified(&mut c, cert)),
        Some((1, 3, b"solo".to_vec()))
    );
}

fn vouch(c: &mut Client, from: u32, reply: &CertifiedReply) -> Vec<ClientOutput> {
    let vouch = Vouch {
        sequence: reply.sequence,
        root: palisade_crypto::reply_root_of(reply).unwrap(),
        signature: reply.signature.clone(),
    };
    c.step(ClientInput::Vouch { from, vouch }, Duration::from_millis(1))
}

fn vouch_timer(c: &mut Client) -> Vec<ClientOutput> {
    c.step(
        ClientInput::Timer(ClientTimer::Vouch),
        Duration::from_millis(1) + VOUCH_WAIT,
    )
}

fn waiting_client() -> Client {
    let mut c = client_waiting(Acceptance::Certified(verifier(1)), VOUCH_WAIT);
    submit(&mut c, 3);
    c
}

#[test]
fn f_plus_one_agreement_nodes_vouching_complete_a_request_without_a_pairing() {
    let mut c = waiting_client();
    let certs = batch();
    // A reply whose claim nobody vouched for yet waits, with a timer.
    let out = certified(&mut c, certs[0].clone());
    assert!(complete(&out).is_none());
    assert!(out.contains(&ClientOutput::SetTimer {
        kind: ClientTimer::Vouch,
        after: VOUCH_WAIT,
    }));
    // One agreement node's word is not enough (f = 1), nor the same node twice.
    assert!(complete(&vouch(&mut c, 0, &certs[0])).is_none());
    assert!(complete(&vouch(&mut c, 0, &certs[0])).is_none());
    // A second node: f+1 vouch, the claim is true and the reply completes.
    let out = vouch(&mut c, 1, &certs[0]);
    assert_eq!(complete(&out), Some((1, SEQUENCE, b"one".to_vec())));
    assert_eq!(c.stats().claims_vouched, 1);
    // The batch's next reply makes the same claim: accepted on arrival.
    let out = certified(&mut c, certs[2].clone());
    assert_eq!(complete(&out), Some((2, SEQUENCE, b"two".to_vec())));
    assert_eq!(c.stats().certificates_checked, 0, "no pairing at all");
    // The timer finds nothing left to check.
    assert!(complete(&vouch_timer(&mut c)).is_none());
    assert_eq!(c.stats().certificates_checked, 0);
}

#[test]
fn vouches_may_come_before_the_reply() {
    let mut c = waiting_client();
    let certs = batch();
    assert!(vouch(&mut c, 2, &certs[3]).is_empty());
    assert!(vouch(&mut c, 3, &certs[3]).is_empty());
    let out = certified(&mut c, certs[3].clone());
    assert_eq!(complete(&out), Some((3, SEQUENCE, b"three".to_vec())));
    assert_eq!(c.stats().certificates_checked, 0);
}

#[test]
fn a_reply_nobody_vouches_for_is_checked_when_the_wait_is_over() {
    let mut c = waiting_client();
    let certs = batch();
    assert!(complete(&certified(&mut c, certs[2].clone())).is_none());
    assert!(complete(&vouch(&mut c, 1, &certs[2])).is_none());
    let out = vouch_timer(&mut c);
    assert_eq!(complete(&out), Some((2, SEQUENCE, b"two".to_vec())));
    assert_eq!(c.stats().certificates_checked, 1);
    assert_eq!(c.stats().claims_vouched, 0);
}

#[test]
fn a_forgery_one_faulty_node_vouches_for_is_refused_when_checked() {
    let mut c = waiting_client();
    let mut forged = batch()[0].clone();
    // Signed by another key set: a valid-looking signature that is not the cluster's.
    forged.signature = sign_batch(2, SEQUENCE, &[entry(CLIENT, 1, b"one")]);
    assert!(complete(&certified(&mut c, forged.clone())).is_none());
    assert!(complete(&vouch(&mut c, 3, &forged)).is_none());
    // It does not block the true reply, which f+1 nodes vouch for.
    let good = batch()[0].clone();
    assert!(complete(&certified(&mut c, good.clone())).is_none());
    assert!(complete(&vouch(&mut c, 0, &good)).is_none());
    assert!(complete(&vouch(&mut c, 1, &good)).is_some());
    // A forgery for a request still open waits, then fails its check.
    let mut forged3 = batch()[3].clone();
    forged3.signature = forged.signature.clone();
    assert!(complete(&certified(&mut c, forged3.clone())).is_none());
    assert!(complete(&vouch(&mut c, 3, &forged3)).is_none());
    assert!(complete(&vouch_timer(&mut c)).is_none());
    assert_eq!(c.stats().bad_certificates, 1);
    assert_eq!(c.outstanding(), vec![2, 3]);
}
