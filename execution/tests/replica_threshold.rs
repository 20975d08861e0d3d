//! The firewall configuration of the execution replica (SOSP 2003 §4; issue 4): sealed
//! request payloads, deterministically sealed reply bodies, one threshold share per
//! executed batch over the Merkle root of its replies, stable-checkpoint shares instead
//! of certificates to agreement, and re-sending of a batch's messages on a re-delivered
//! order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replica_support;

use palisade_crypto::{certify_replies, verify_certified_reply, BodyKey};
use palisade_execution::{ReplicaInput, ReplicaOutput};
use palisade_wire::agreement::{ClientId, Request, Signed};
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::{
    reply_root_message, stable_message, FirewallMessage, ReplyBody, ReplyEntry, ReplyShare,
    SignatureShare, StableShare,
};
use palisade_wire::fs::{CreateHow, FsError, FsOp, FsReply, FsResult, SetAttr, ROOT_ID};
use replica_support::*;

fn create(client: ClientId, id: u64, name: &str) -> Signed<Request> {
    sealed_request(
        client,
        id,
        &FsOp::Create {
            dir: ROOT_ID,
            name: name.as_bytes().to_vec(),
            how: CreateHow::Guarded(SetAttr::default()),
        },
    )
}

fn lookup(client: ClientId, id: u64, name: &str) -> Signed<Request> {
    sealed_request(
        client,
        id,
        &FsOp::Lookup {
            dir: ROOT_ID,
            name: name.as_bytes().to_vec(),
        },
    )
}

/// A step's firewall output split into its one share and its bodies, checking the order
/// (share first, then bodies) and that nothing else came out.
fn share_and_bodies(out: &[ReplicaOutput]) -> (ReplyShare, Vec<ReplyBody>) {
    let messages = firewall(out);
    assert!(
        replies(out).is_empty(),
        "no signed replies in threshold mode: {out:?}"
    );
    let mut it = messages.into_iter();
    let share = match it.next() {
        Some(FirewallMessage::ReplyShare(s)) => s,
        other => panic!("expected the share first, got {other:?}"),
    };
    let bodies = it
        .map(|m| match m {
            FirewallMessage::ReplyBody(b) => b,
            other => panic!("expected only bodies after the share, got {other:?}"),
        })
        .collect();
    (share, bodies)
}

fn entries(bodies: &[ReplyBody]) -> Vec<ReplyEntry> {
    bodies.iter().map(|b| b.entry.clone()).collect()
}

/// Opens a reply body with the body key and decodes its result.
fn open(key: &BodyKey, sequence: u64, entry: &ReplyEntry) -> FsResult {
    let plain = key
        .open_reply(sequence, entry.client, entry.request_id, &entry.body)
        .unwrap();
    palisade_wire::decode(&plain).unwrap()
}

#[test]
fn a_batch_gives_one_share_over_the_root_of_its_bodies() {
    let mut r = threshold_replica(0);
    let out = r.step(order(
        1,
        vec![create(0, 1, "a"), create(1, 1, "b"), lookup(0, 2, "b")],
    ));
    let (share, bodies) = share_and_bodies(&out);
    assert_eq!((share.sequence, share.replica), (1, 0));
    let keys: Vec<_> = bodies
        .iter()
        .map(|b| (b.sequence, b.replica, b.entry.client, b.entry.request_id))
        .collect();
    assert_eq!(keys, vec![(1, 0, 0, 1), (1, 0, 1, 1), (1, 0, 0, 2)]);
    // The leaves are the bodies' leaf hashes, in batch order, and the share verifies on
    // the root over them.
    let leaves: Vec<_> = bodies
        .iter()
        .map(|b| palisade_crypto::leaf_hash(&b.entry))
        .collect();
    assert_eq!(share.leaves, leaves);
    let root = palisade_crypto::reply_root(&entries(&bodies));
    let v = threshold_verifier();
    assert!(v.verify_share(0, &reply_root_message(1, &root), &share.share));
    assert!(!v.verify_share(1, &reply_root_message(1, &root), &share.share));
    assert!(!v.verify_share(0, &reply_root_message(2, &root), &share.share));
    // The bodies are sealed: they open with the body key to the right results.
    let key = body_key();
    assert!(matches!(
        open(&key, 1, &bodies[0].entry),
        Ok(FsReply::Created { id: 2, .. })
    ));
    assert!(matches!(
        open(&key, 1, &bodies[1].entry),
        Ok(FsReply::Created { id: 3, .. })
    ));
    assert!(matches!(
        open(&key, 1, &bodies[2].entry),
        Ok(FsReply::Lookup { id: 3, .. })
    ));
    assert!(
        key.open_reply(2, 0, 1, &bodies[0].entry.body).is_err(),
        "bound to its sequence"
    );
    assert!(palisade_wire::decode::<FsResult>(&bodies[0].entry.body).is_err());
    let s = r.stats();
    assert_eq!(
        (s.reply_shares_sent, s.replies_sent, s.requests_executed),
        (1, 3, 3)
    );
}

#[test]
fn shares_of_g_plus_one_replicas_combine_and_bodies_are_identical() {
    let mut c = Cluster::threshold();
    c.order(sealed_workload(1));
    c.order(sealed_workload(2));
    let v = threshold_verifier();
    for sequence in [1, 2] {
        let per_replica: Vec<(ReplyShare, Vec<ReplyBody>)> = (0..3)
            .map(|r| {
                let msgs: Vec<_> = c.to_firewall[r]
                    .iter()
                    .filter(|m| match m {
                        FirewallMessage::ReplyShare(s) => s.sequence == sequence,
                        FirewallMessage::ReplyBody(b) => b.sequence == sequence,
                        _ => false,
                    })
                    .cloned()
                    .map(ReplicaOutput::ToFirewall)
                    .collect();
                share_and_bodies(&msgs)
            })
            .collect();
        // Sealed deterministically: every replica sent the very same bytes.
        let bodies = entries(&per_replica[0].1);
        assert_eq!(bodies.len(), 4);
        for (share, b) in &per_replica {
            assert_eq!(entries(b), bodies);
            assert_eq!(share.leaves, per_replica[0].0.leaves);
        }
        let message = reply_root_message(sequence, &palisade_crypto::reply_root(&bodies));
        // Any g+1 = 2 shares combine into the one signature (BLS is unique).
        let shares: Vec<(u32, SignatureShare)> = per_replica
            .iter()
            .map(|(s, _)| (s.replica, s.share.clone()))
            .collect();
        let a = v.combine(&shares[0..2]).unwrap();
        let b = v.combine(&shares[1..3]).unwrap();
        assert_eq!(a, b);
        assert!(v.verify(&message, &a));
        // Cut into certified replies, each verifies and opens to its result.
        let results: Vec<FsResult> = certify_replies(sequence, &bodies, &a)
            .iter()
            .map(|cert| {
                verify_certified_reply(v.as_ref(), cert).unwrap();
                open(&body_key(), sequence, &cert.entry)
            })
            .collect();
        // Workload batch k: create f{k}, mkdir d{k}, write to file 2, getattr of the root.
        assert!(
            matches!(results[0], Ok(FsReply::Created { .. })),
            "{results:?}"
        );
        assert!(
            matches!(results[1], Ok(FsReply::Created { .. })),
            "{results:?}"
        );
        assert!(
            matches!(results[2], Ok(FsReply::Write { count: 100, .. })),
            "{results:?}"
        );
        assert!(matches!(results[3], Ok(FsReply::Attr(_))), "{results:?}");
    }
    assert!(c.replies.iter().all(|r| r.is_empty()));
}

#[test]
fn a_duplicate_request_adds_no_entry_and_an_all_duplicate_batch_sends_nothing() {
    let mut r = threshold_replica(0);
    let first = create(0, 1, "a");
    let (_, bodies) = share_and_bodies(&r.step(order(1, vec![first.clone()])));
    assert_eq!(bodies.len(), 1);
    // Ordered again (and twice in one batch) beside a fresh request: only the fresh one
    // gets an entry.
    let out = r.step(order(
        2,
        vec![first.clone(), create(1, 1, "b"), create(1, 1, "b")],
    ));
    let (share, bodies) = share_and_bodies(&out);
    assert_eq!(share.leaves.len(), 1);
    let keys: Vec<_> = bodies
        .iter()
        .map(|b| (b.entry.client, b.entry.request_id))
        .collect();
    assert_eq!(keys, vec![(1, 1)]);
    assert_eq!(r.stats().duplicate_requests, 2);
    // Only duplicates: nothing to certify, nothing sent.
    let out = r.step(order(3, vec![first]));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(r.stats().batches_without_replies, 1);
    assert_eq!(r.stats().reply_shares_sent, 2);
    assert_eq!(r.last_applied(), 3);
}

#[test]
fn a_sealed_request_that_does_not_open_answers_inval() {
    let mut r = threshold_replica(0);
    // Plaintext where a sealed payload is expected, a sealed payload bound to another
    // client, and garbage.
    let plain = request(0, 1, &FsOp::GetAttr { id: ROOT_ID });
    let sealed_for_1 = body_key().seal_request(
        1,
        &palisade_wire::encode(&FsOp::GetAttr { id: ROOT_ID }).unwrap(),
        &mut rand::rng(),
    );
    let wrong_client = request_raw(0, 2, sealed_for_1);
    let garbage = request_raw(0, 3, vec![0xff; 40]);
    let good = sealed_request(0, 4, &FsOp::GetAttr { id: ROOT_ID });
    let out = r.step(order(1, vec![plain, wrong_client, garbage, good]));
    let (_, bodies) = share_and_bodies(&out);
    let results: Vec<_> = bodies
        .iter()
        .map(|b| open(&body_key(), 1, &b.entry))
        .collect();
    assert_eq!(results[0], Err(FsError::Inval));
    assert_eq!(results[1], Err(FsError::Inval));
    assert_eq!(results[2], Err(FsError::Inval));
    assert!(
        matches!(results[3], Ok(FsReply::Attr(_))),
        "{:?}",
        results[3]
    );
    assert_eq!(r.stats().unsealable_requests, 3);
    assert_eq!(r.stats().undecodable_requests, 0);
}

#[test]
fn signed_mode_with_a_body_key_seals_each_signed_reply() {
    let mut config = config(0);
    config.body_key = Some(body_key());
    let mut r = replica_with(config);
    let rs = replies(&r.step(order(1, vec![create(0, 1, "a")])));
    assert_eq!(rs.len(), 1);
    palisade_crypto::verify_batch_reply(&exec_key(0).verifying_key(), &rs[0]).unwrap();
    let plain = body_key()
        .open_reply(1, 0, 1, &rs[0].message.result)
        .unwrap();
    let result: FsResult = palisade_wire::decode(&plain).unwrap();
    assert!(matches!(result, Ok(FsReply::Created { id: 2, .. })));
}

#[test]
fn a_redelivered_order_re_sends_the_cached_share_and_bodies() {
    let mut r = threshold_replica(0);
    let b1 = batch(1, vec![create(0, 1, "a"), create(1, 1, "b")]);
    let c1 = certificate(&b1);
    let first = r.step(ReplicaInput::Order {
        batch: b1.clone(),
        certificate: c1.clone(),
    });
    assert_eq!(first.len(), 3);
    r.step(order(2, vec![create(0, 2, "c")]));
    // Agreement re-delivers batch 1: the same share and bodies go out again.
    let again = r.step(ReplicaInput::Order {
        batch: b1.clone(),
        certificate: c1,
    });
    assert_eq!(again, first);
    assert_eq!(r.stats().orders_redelivered, 1);
    assert_eq!(r.stats().firewall_messages_resent, 3);
    assert_eq!(r.stats().requests_executed, 3, "nothing executed again");
    // A forged certificate triggers nothing, and is counted.
    let out = r.step(ReplicaInput::Order {
        batch: b1.clone(),
        certificate: certificate_by(&b1, &[0, 1]),
    });
    assert!(out.is_empty());
    assert_eq!(r.stats().bad_certificates, 1);
    // A certified order for sequence 1 with other requests than the batch executed there
    // re-sends nothing.
    let other = batch(1, vec![create(1, 9, "z")]);
    let out = r.step(ReplicaInput::Order {
        certificate: certificate(&other),
        batch: other,
    });
    assert!(out.is_empty());
    assert_eq!(r.stats().orders_redelivered, 1);
}

/// The one `ReplyShare` a step sent, and nothing else.
fn only_share(out: &[ReplicaOutput]) -> ReplyShare {
    match firewall(out).as_slice() {
        [FirewallMessage::ReplyShare(s)] if out.len() == 1 => s.clone(),
        other => panic!("expected exactly one reply share, got {other:?}"),
    }
}

/// What replica `r` sent to the firewall that `pick` picks, in order.
fn sent<T>(c: &Cluster, r: usize, pick: impl Fn(&FirewallMessage) -> Option<T>) -> Vec<T> {
    c.to_firewall[r].iter().filter_map(pick).collect()
}

fn shares_of(c: &Cluster, r: usize) -> Vec<ReplyShare> {
    sent(c, r, |m| match m {
        FirewallMessage::ReplyShare(s) => Some(s.clone()),
        _ => None,
    })
}

#[test]
fn a_replica_that_skipped_batches_by_state_transfer_signs_their_shares_from_the_leaves() {
    // Replica 2 never executes 13..16: it has no reply of theirs to re-send.
    let mut c = Cluster::with_replica_2_transferred_at_16(threshold_replica, sealed_workload);
    // Agreement re-delivers 14 (its replies were lost upward): replica 2 signs its share
    // over the transferred leaves, which are replica 0's leaves of 14, and sends no body.
    let executed = shares_of(&c, 0)
        .into_iter()
        .find(|s| s.sequence == 14)
        .expect("replica 0 certified 14");
    let order14 = c.delivered(14);
    let share = only_share(&c.replicas[2].step(order14.clone()));
    assert_eq!((share.sequence, share.replica), (14, 2));
    assert_eq!(share.leaves, executed.leaves);
    let root = palisade_crypto::root(&share.leaves);
    assert!(threshold_verifier().verify_share(2, &reply_root_message(14, &root), &share.share));
    assert_eq!(c.replicas[2].stats().shares_from_leaves, 1);
    // Again: the same share, from the cache this time.
    let again = only_share(&c.replicas[2].step(order14));
    assert_eq!(again, share);
    assert_eq!(c.replicas[2].stats().shares_from_leaves, 1);
    assert_eq!(c.replicas[2].stats().firewall_messages_resent, 1);
    // 8 left the window (16 - 2K): nothing to sign, nothing sent.
    let order8 = c.delivered(8);
    assert!(c.replicas[2].step(order8).is_empty());
    assert_eq!(c.replicas[2].stats().shares_from_leaves, 1);
    // The leaves are in the checkpoint digest: replica 2 agrees with its peers at 20,
    // after executing 17..20 itself.
    for k in 17..=20 {
        c.order(sealed_workload(k));
    }
    let digests: Vec<_> = c.replicas.iter_mut().map(|r| r.digest()).collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    assert_eq!(c.replicas[2].stats().divergences, 0);
}

#[test]
fn a_restarted_replica_signs_the_share_of_a_batch_it_executed_before_the_restart() {
    let mut r = threshold_replica(0);
    let b1 = batch(1, vec![create(0, 1, "a"), create(1, 1, "b")]);
    let c1 = certificate(&b1);
    let first = r.step(ReplicaInput::Order {
        batch: b1.clone(),
        certificate: c1.clone(),
    });
    let (share, _) = share_and_bodies(&first);
    r.step(order(2, vec![lookup(0, 2, "a")]));
    let digest = r.digest();
    // Restarted from its store: the message cache is gone, the leaves were committed.
    let fs = r.into_fs();
    let mut r = palisade_execution::ExecutionReplica::new(threshold_config(0), exec_key(0), fs)
        .expect("reopens");
    assert_eq!(r.digest(), digest, "the leaves reopen with the state");
    let again = r.step(ReplicaInput::Order {
        batch: b1,
        certificate: c1,
    });
    assert_eq!(
        only_share(&again),
        share,
        "the very share sent before the restart"
    );
    assert_eq!(r.stats().shares_from_leaves, 1);
}

fn stable_shares(c: &Cluster, r: usize) -> Vec<StableShare> {
    sent(c, r, |m| match m {
        FirewallMessage::StableShare(s) => Some(s.clone()),
        _ => None,
    })
}

#[test]
fn a_stable_checkpoint_gives_stable_shares_and_nothing_to_agreement() {
    let mut c = Cluster::threshold();
    for k in 1..=K {
        c.order(sealed_workload(k));
    }
    let v = threshold_verifier();
    let mut shares = Vec::new();
    for r in 0..3 {
        let s = stable_shares(&c, r);
        assert_eq!(s.len(), 1, "replica {r}: {s:?}");
        assert_eq!((s[0].sequence, s[0].replica), (K, r as u32));
        assert!(v.verify_share(r as u32, &stable_message(K), &s[0].share));
        shares.push((s[0].replica, s[0].share.clone()));
        assert_eq!(c.replicas[r].stats().stable_shares_sent, 1);
        assert_eq!(c.replicas[r].stable_checkpoint().unwrap().sequence, K);
        // No digest goes up: neither checkpoints nor certificates to agreement.
        assert!(
            c.to_agreement[r].iter().all(|m| !matches!(
                m,
                ExecutionMessage::Checkpoint(_) | ExecutionMessage::Stable(_)
            )),
            "replica {r}: {:?}",
            c.to_agreement[r]
        );
    }
    let signature = v.combine(&shares[..2]).unwrap();
    assert!(v.verify(&stable_message(K), &signature));
}

#[test]
fn a_replica_that_reaches_a_checkpoint_after_it_became_stable_still_shares() {
    let mut c = Cluster::threshold();
    // Replica 2 misses batches 1..K; the others' checkpoint votes make K stable at
    // replica 2 before it executed anything.
    for k in 1..=K {
        c.order_to(sealed_workload(k), &[0, 1]);
    }
    assert_eq!(c.replicas[2].last_applied(), 0);
    assert_eq!(c.replicas[2].stable_checkpoint().unwrap().sequence, K);
    assert!(stable_shares(&c, 2).is_empty());
    // It fetches the orders, executes them, reaches K with the stable digest: it shares.
    c.fire(2, palisade_execution::ExecTimer::FetchOrders);
    assert_eq!(c.replicas[2].last_applied(), K);
    let s = stable_shares(&c, 2);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].sequence, K);
    assert!(threshold_verifier().verify_share(2, &stable_message(K), &s[0].share));
    // And it certified the batches it executed late, identically to its peers.
    let (late, early) = (shares_of(&c, 2), shares_of(&c, 0));
    assert_eq!(late.len(), K as usize);
    for (a, b) in late.iter().zip(&early) {
        assert_eq!((a.sequence, &a.leaves), (b.sequence, &b.leaves));
    }
}

#[test]
fn a_signer_for_another_replica_is_refused() {
    let mut config = threshold_config(0);
    config.replies = palisade_execution::ReplyMode::Threshold(threshold_signer(1));
    let fs = palisade_execution::FileSystem::open(
        palisade_execution::MemStore::new(),
        palisade_execution::FsConfig::default(),
    )
    .unwrap();
    assert!(palisade_execution::ExecutionReplica::new(config, exec_key(0), fs).is_err());
}

#[test]
fn a_request_for_a_reply_sends_nothing_through_the_firewall() {
    // In the firewall configuration nothing leaves a replica but towards the bottom
    // filters: an agreement-style request for a cached reply is refused and counted.
    let mut r = threshold_replica(0);
    r.step(order(1, vec![create(0, 1, "a")]));
    let malformed = r.stats().malformed_messages;
    assert!(r
        .step(ReplicaInput::ResendReply {
            client: 0,
            request_id: 1,
            sequence: Some(1),
        })
        .is_empty());
    assert_eq!(r.stats().malformed_messages, malformed + 1);
}
