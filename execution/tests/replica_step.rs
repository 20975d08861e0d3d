//! Single steps of one execution replica: verification, ordering, exactly-once,
//! replies, fetch timers and checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replica_support;

use std::time::Duration;

use palisade_execution::{ExecTimer, FileSystem, FsConfig, ReplicaInput, ReplicaOutput};
use palisade_wire::agreement::Signed;
use palisade_wire::execution::{ExecCheckpoint, ExecutionMessage};
use palisade_wire::fs::{CreateHow, FsError, FsOp, FsReply, SetAttr, ROOT_ID};
use replica_support::*;

fn create(
    client: u64,
    id: u64,
    name: &str,
) -> palisade_wire::agreement::Signed<palisade_wire::agreement::Request> {
    request(
        client,
        id,
        &FsOp::Create {
            dir: ROOT_ID,
            name: name.as_bytes().to_vec(),
            how: CreateHow::Guarded(SetAttr::default()),
        },
    )
}

#[test]
fn valid_order_gives_one_signed_reply_per_request_in_order() {
    let mut r = replica(0);
    let out = r.step(order(
        1,
        vec![
            create(0, 1, "a"),
            create(1, 1, "b"),
            request(
                0,
                2,
                &FsOp::Lookup {
                    dir: ROOT_ID,
                    name: b"b".to_vec(),
                },
            ),
        ],
    ));
    assert_eq!(out.len(), 3, "{out:?}");
    let rs = replies(&out);
    let keys: Vec<_> = rs
        .iter()
        .map(|r| {
            (
                r.message.client,
                r.message.request_id,
                r.message.sequence,
                r.message.replica,
            )
        })
        .collect();
    assert_eq!(keys, vec![(0, 1, 1, 0), (1, 1, 1, 0), (0, 2, 1, 0)]);
    for (o, reply) in out.iter().zip(&rs) {
        assert!(matches!(o, ReplicaOutput::Reply { to, .. } if *to == reply.message.client));
        palisade_crypto::verify_batch_reply(&exec_key(0).verifying_key(), reply).unwrap();
    }
    // One signature for the batch: every reply carries the same one, each with its path.
    assert!(rs
        .iter()
        .all(|r| r.signature == rs[0].signature && r.leaf_count == 3));
    assert!(matches!(result(&rs[0]), Ok(FsReply::Created { id: 2, .. })));
    assert!(matches!(result(&rs[1]), Ok(FsReply::Created { id: 3, .. })));
    assert!(matches!(result(&rs[2]), Ok(FsReply::Lookup { id: 3, .. })));
    assert_eq!(r.last_applied(), 1);
    assert_eq!(r.stats().requests_executed, 3);
}

#[test]
fn bad_certificates_and_signatures_are_dropped_and_counted() {
    let mut r = replica(0);
    let b = batch(1, vec![create(0, 1, "a")]);
    // Only 2 commits: fewer than 2f+1.
    let weak = certificate_by(&b, &[0, 1]);
    assert!(r
        .step(ReplicaInput::Order {
            batch: b.clone(),
            certificate: weak
        })
        .is_empty());
    // A certificate for another batch.
    let other = batch(1, vec![create(0, 1, "z")]);
    let wrong = certificate(&other);
    assert!(r
        .step(ReplicaInput::Order {
            batch: b.clone(),
            certificate: wrong
        })
        .is_empty());
    assert_eq!(r.stats().bad_certificates, 2);
    // A correctly certified batch that is out of bounds (an oversized payload). Client
    // signatures are agreement's to check (2f+1 commits vouch for them); bounds are
    // checked here too.
    let huge = Signed::sign(
        &client_key(0),
        palisade_wire::agreement::Request {
            client: 0,
            request_id: 1,
            payload: vec![0; palisade_wire::agreement::MAX_REQUEST_PAYLOAD + 1].into(),
        },
    )
    .unwrap();
    let hb = batch(1, vec![huge]);
    let hc = certificate(&hb);
    assert!(r
        .step(ReplicaInput::Order {
            batch: hb,
            certificate: hc
        })
        .is_empty());
    assert_eq!(r.stats().malformed_batches, 1);
    assert_eq!(r.last_applied(), 0);
    // The genuine batch still executes afterwards.
    let c = certificate(&b);
    assert_eq!(
        replies(&r.step(ReplicaInput::Order {
            batch: b,
            certificate: c
        }))
        .len(),
        1
    );
}

#[test]
fn out_of_order_batches_are_buffered_then_executed_in_order() {
    let mut r = replica(0);
    let out = r.step(order(3, vec![create(0, 3, "c")]));
    assert_eq!(
        out,
        vec![ReplicaOutput::SetTimer {
            kind: ExecTimer::FetchOrders,
            after: TIMEOUT
        }]
    );
    assert!(r.step(order(2, vec![create(0, 2, "b")])).is_empty());
    let out = r.step(order(1, vec![create(0, 1, "a")]));
    let seqs: Vec<_> = replies(&out)
        .iter()
        .map(|r| (r.message.sequence, r.message.request_id))
        .collect();
    assert_eq!(seqs, vec![(1, 1), (2, 2), (3, 3)]);
    assert_eq!(
        out.last(),
        Some(&ReplicaOutput::CancelTimer(ExecTimer::FetchOrders))
    );
    assert_eq!(r.last_applied(), 3);
    // Re-delivery of an executed sequence: not executed again, only its cached reply
    // re-sent (see a_redelivered_order_re_sends_the_cached_replies_of_its_batch).
    let again = replies(&r.step(order(2, vec![create(0, 2, "b")])));
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].message.sequence, again[0].message.request_id),
        (2, 2)
    );
    assert_eq!(r.stats().duplicate_orders, 1);
    assert_eq!(r.last_applied(), 3);
    // Beyond max_ahead: dropped and counted.
    assert!(r.step(order(3 + MAX_AHEAD + 1, vec![])).is_empty());
    assert_eq!(r.stats().orders_too_far_ahead, 1);
}

#[test]
fn a_persisting_gap_fetches_orders_with_back_off() {
    let mut r = replica(0);
    r.step(order(2, vec![]));
    let out = r.step(ReplicaInput::Timer(ExecTimer::FetchOrders));
    assert_eq!(
        out,
        vec![
            ReplicaOutput::ToAgreement(ExecutionMessage::FetchOrders { from: 1 }),
            ReplicaOutput::SetTimer {
                kind: ExecTimer::FetchOrders,
                after: TIMEOUT * 2
            },
        ]
    );
    let out = r.step(ReplicaInput::Timer(ExecTimer::FetchOrders));
    assert_eq!(
        out[1],
        ReplicaOutput::SetTimer {
            kind: ExecTimer::FetchOrders,
            after: TIMEOUT * 4
        }
    );
    let out = r.step(order(1, vec![]));
    assert_eq!(
        out,
        vec![ReplicaOutput::CancelTimer(ExecTimer::FetchOrders)]
    );
    assert_eq!(r.last_applied(), 2);
    // A timer that fires after the gap closed does nothing.
    assert!(r
        .step(ReplicaInput::Timer(ExecTimer::FetchOrders))
        .is_empty());
    assert_eq!(r.stats().fetch_orders_sent, 2);
}

#[test]
fn a_request_ordered_twice_is_executed_once_and_its_reply_resent() {
    let mut r = replica(0);
    let first = replies(&r.step(order(1, vec![create(0, 1, "a")])));
    assert!(matches!(result(&first[0]), Ok(FsReply::Created { .. })));
    // A faulty primary orders the same request again (and twice in one batch).
    let out = r.step(order(
        2,
        vec![create(0, 1, "a"), create(1, 1, "b"), create(1, 1, "b")],
    ));
    // Re-sent replies go out while the batch is walked, fresh ones once the batch's one
    // signature is made; the copy of "b" in the same batch is answered by that one
    // fresh reply (there is no earlier reply to re-send).
    let again = replies(&out);
    assert_eq!(again.len(), 2);
    assert_eq!(
        again[0], first[0],
        "the cached reply, unchanged (sequence 1)"
    );
    assert!(matches!(
        result(&again[1]),
        Ok(FsReply::Created { id: 3, .. })
    ));
    assert_eq!(r.stats().duplicate_requests, 2);
    assert_eq!(r.stats().duplicates_without_reply, 1);
    assert_eq!(r.stats().requests_executed, 2);
    // Had "a" been created again, it would have answered Exist and used another id.
    assert_eq!(r.fs().meta().next_id, 4);
}

#[test]
fn an_undecodable_payload_answers_inval() {
    let mut r = replica(0);
    let out = r.step(ReplicaInput::Order {
        batch: batch(1, vec![request_raw(0, 1, vec![0xff; 5])]),
        certificate: certificate(&batch(1, vec![request_raw(0, 1, vec![0xff; 5])])),
    });
    let rs = replies(&out);
    assert_eq!(rs.len(), 1);
    assert_eq!(result(&rs[0]), Err(FsError::Inval));
    assert_eq!(r.stats().undecodable_requests, 1);
}

fn checkpoint_of(out: &[ReplicaOutput]) -> Signed<ExecCheckpoint> {
    let to_exec = out.iter().find_map(|o| match o {
        ReplicaOutput::ToExecution {
            to: None,
            message: ExecutionMessage::Checkpoint(c),
        } => Some(c.clone()),
        _ => None,
    });
    let to_agreement = out.iter().find_map(|o| match o {
        ReplicaOutput::ToAgreement(ExecutionMessage::Checkpoint(c)) => Some(c.clone()),
        _ => None,
    });
    assert_eq!(to_exec, to_agreement);
    to_exec.expect("a checkpoint")
}

#[test]
fn checkpoint_every_k_and_g_plus_one_matching_make_it_stable() {
    let mut a = replica(0);
    let mut b = replica(1);
    let mut outs = (Vec::new(), Vec::new());
    for s in 1..=K {
        let reqs = vec![create(0, s, &format!("f{s}"))];
        outs.0 = a.step(order(s, reqs.clone()));
        outs.1 = b.step(order(s, reqs));
        if s < K {
            assert!(!outs
                .0
                .iter()
                .any(|o| matches!(o, ReplicaOutput::ToExecution { .. })));
        }
    }
    let ca = checkpoint_of(&outs.0);
    let cb = checkpoint_of(&outs.1);
    assert_eq!(ca.message.sequence, K);
    ca.verify(&exec_key(0).verifying_key()).unwrap();
    assert_eq!(ca.message.state_digest.0, a.digest().0);
    assert_eq!(ca.message.state_digest, cb.message.state_digest);
    // A forged checkpoint (replica 2's name, replica 1's signature) is refused.
    let mut forged = cb.clone();
    forged.signer = 2;
    forged.message.replica = 2;
    assert!(a
        .step(ReplicaInput::Message {
            from: 2,
            message: ExecutionMessage::Checkpoint(forged)
        })
        .is_empty());
    assert_eq!(a.stats().bad_checkpoints, 1);
    // g+1 = 2 matching: stable, reported to agreement.
    let out = a.step(ReplicaInput::Message {
        from: 1,
        message: ExecutionMessage::Checkpoint(cb),
    });
    let cert = match out.as_slice() {
        [ReplicaOutput::ToAgreement(ExecutionMessage::Stable(cert))] => cert.clone(),
        other => panic!("{other:?}"),
    };
    cert.verify(&exec_public(), G).unwrap();
    assert_eq!((cert.sequence, cert.signatures.len()), (K, 2));
    assert_eq!(a.stable_checkpoint(), Some(&cert));
    assert!(!a.is_divergent());
}

#[test]
fn a_wrong_configuration_is_refused() {
    let fs = || {
        palisade_execution::FileSystem::open(
            palisade_execution::MemStore::new(),
            palisade_execution::FsConfig::default(),
        )
        .unwrap()
    };
    assert!(palisade_execution::ExecutionReplica::new(config(0), exec_key(1), fs()).is_err());
    let mut c = config(0);
    c.checkpoint_interval = 0;
    assert!(palisade_execution::ExecutionReplica::new(c, exec_key(0), fs()).is_err());
    let mut c = config(3);
    c.id = 3;
    assert!(palisade_execution::ExecutionReplica::new(c, exec_key(3), fs()).is_err());
    let _ = Duration::ZERO;
}

#[test]
fn hostile_messages_from_peers_are_dropped_and_counted() {
    let mut r = replica(0);
    let msg = |from, message| ReplicaInput::Message { from, message };
    // Out of bounds: a chunk index beyond its count.
    let bad_chunk = ExecutionMessage::State {
        sequence: 4,
        index: 3,
        count: 2,
        data: vec![],
    };
    assert!(r.step(msg(1, bad_chunk)).is_empty());
    assert_eq!(r.stats().malformed_messages, 1);
    // A well-formed chunk nobody asked for.
    let chunk = ExecutionMessage::State {
        sequence: 4,
        index: 0,
        count: 1,
        data: vec![1],
    };
    assert!(r.step(msg(1, chunk.clone())).is_empty());
    assert_eq!(r.stats().unsolicited_state, 1);
    // From itself or an unknown replica; a FetchOrders meant for agreement.
    assert!(r.step(msg(0, chunk.clone())).is_empty());
    assert!(r
        .step(msg(
            9,
            ExecutionMessage::FetchState {
                sequence: 4,
                have: vec![]
            }
        ))
        .is_empty());
    assert!(r
        .step(msg(1, ExecutionMessage::FetchOrders { from: 1 }))
        .is_empty());
    assert_eq!(r.stats().malformed_messages, 4);
    assert_eq!(r.stats().state_requests, 0);
    // A stable certificate with one signature (g+1 = 2 needed).
    let one = Signed::sign(
        &exec_key(1),
        ExecCheckpoint {
            sequence: K,
            state_digest: palisade_wire::agreement::Digest([5; 32]),
            replica: 1,
        },
    )
    .unwrap();
    let cert = palisade_wire::execution::CheckpointCertificate {
        sequence: K,
        state_digest: palisade_wire::agreement::Digest([5; 32]),
        signatures: vec![one.clone(), one.clone()],
    };
    assert!(r.step(msg(1, ExecutionMessage::Stable(cert))).is_empty());
    // A checkpoint signed with another key than the replica it names (off the
    // interval is allowed: restart checkpoints).
    let mut off = one.message.clone();
    off.sequence = K + 1;
    let off = Signed::sign(&exec_key(2), off).unwrap();
    assert!(r.step(msg(1, ExecutionMessage::Checkpoint(off))).is_empty());
    assert_eq!(r.stats().bad_checkpoints, 2);
    assert!(r.stable_checkpoint().is_none());
    assert_eq!(r.last_applied(), 0);
}

#[test]
fn a_state_request_is_answered_at_the_next_checkpoint_with_the_state_there() {
    let mut r = replica(0);
    r.step(order(1, vec![create(0, 1, "a")]));
    let out = r.step(ReplicaInput::Message {
        from: 2,
        message: ExecutionMessage::FetchState {
            sequence: 0,
            have: vec![],
        },
    });
    assert!(
        out.is_empty(),
        "no old snapshots: nothing until the next checkpoint"
    );
    for s in 2..K {
        assert!(!r
            .step(order(s, vec![]))
            .iter()
            .any(|o| matches!(o, ReplicaOutput::ToExecution { .. })));
    }
    let out = r.step(order(K, vec![]));
    let chunks: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            ReplicaOutput::ToExecution {
                to: Some(2),
                message:
                    ExecutionMessage::State {
                        sequence,
                        index,
                        count,
                        data,
                    },
            } => Some((*sequence, *index, *count, data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!((chunks[0].0, chunks[0].1, chunks[0].2), (K, 0, 1));
    let snapshot: palisade_wire::checkpoint::ReplicaSnapshot =
        postcard::from_bytes(&chunks[0].3).unwrap();
    assert_eq!(snapshot.checkpoint.last_applied, K);
    assert_eq!(snapshot.checkpoint.live_ids, vec![1, 2]);
    assert_eq!(snapshot.clients.len(), 1);
    assert_eq!(snapshot.clients[0].executed, vec![1]);
    assert_eq!(r.stats().state_transfers_served, 1);
    // Answered once: the next checkpoint sends nothing to 2.
    for s in K + 1..=2 * K {
        let out = r.step(order(s, vec![]));
        assert!(!out
            .iter()
            .any(|o| matches!(o, ReplicaOutput::ToExecution { to: Some(_), .. })));
    }
}

#[test]
fn a_redelivered_order_re_sends_the_cached_replies_of_its_batch() {
    let mut r = replica(0);
    let b1 = batch(1, vec![create(0, 1, "a"), create(1, 1, "b")]);
    let c1 = certificate(&b1);
    let first = replies(&r.step(ReplicaInput::Order {
        batch: b1.clone(),
        certificate: c1.clone(),
    }));
    assert_eq!(first.len(), 2);
    r.step(order(2, vec![create(0, 2, "c")]));
    // Agreement re-delivers batch 1 (a client retransmitted a delivered request whose
    // replies were lost): both cached replies go out again, byte for byte.
    let out = r.step(ReplicaInput::Order {
        batch: b1.clone(),
        certificate: c1.clone(),
    });
    assert_eq!(
        out,
        vec![
            ReplicaOutput::Reply {
                to: 0,
                reply: first[0].clone()
            },
            ReplicaOutput::Reply {
                to: 1,
                reply: first[1].clone()
            },
        ]
    );
    assert_eq!(r.stats().orders_redelivered, 1);
    assert_eq!(r.stats().replies_resent, 2);
    assert_eq!(r.stats().requests_executed, 3, "nothing executed again");
    assert_eq!(r.last_applied(), 2);
    // A forged certificate (too few commits) triggers nothing, and is counted.
    let out = r.step(ReplicaInput::Order {
        batch: b1.clone(),
        certificate: certificate_by(&b1, &[0, 1]),
    });
    assert!(out.is_empty());
    assert_eq!(r.stats().bad_certificates, 1);
    // A certified order for sequence 1 whose requests were not answered at 1 (another
    // batch than the one executed there cannot be certified by correct agreement; here
    // simply requests with no cached reply) costs nothing and sends nothing.
    let other = batch(1, vec![create(1, 9, "z")]);
    let out = r.step(ReplicaInput::Order {
        certificate: certificate(&other),
        batch: other,
    });
    assert!(out.is_empty());
    assert_eq!(r.stats().orders_redelivered, 1);
    assert_eq!(r.stats().replies_resent, 2);
    assert_eq!(r.stats().duplicate_orders, 3);
}

#[test]
fn agreement_asking_for_a_reply_gets_the_cached_one_to_its_client() {
    let mut r = replica(0);
    let first = replies(&r.step(order(1, vec![create(0, 1, "a"), create(1, 1, "b")])));
    // The batch left agreement's delivery log; a client retransmits request 1 of
    // client 1, and agreement asks for its reply: exactly that reply, to that client.
    let out = r.step(ReplicaInput::ResendReply {
        client: 1,
        request_id: 1,
        sequence: Some(1),
    });
    assert_eq!(
        out,
        vec![ReplicaOutput::Reply {
            to: 1,
            reply: first[1].clone()
        }]
    );
    assert_eq!(r.stats().replies_resent, 1);
    // A request never executed here has no reply to re-send, and none to ask peers
    // for, whatever sequence agreement names: nothing happens.
    for sequence in [None, Some(1)] {
        assert!(r
            .step(ReplicaInput::ResendReply {
                client: 1,
                request_id: 2,
                sequence,
            })
            .is_empty());
    }
    assert_eq!(r.stats().replies_resent, 1);
    assert_eq!(r.stats().requests_executed, 2, "nothing executed again");
}

#[test]
fn a_request_id_far_above_the_window_slides_it_and_older_ids_are_duplicates() {
    use palisade_execution::replica::CLIENT_WINDOW;
    let mut r = replica(0);
    r.step(order(1, vec![create(0, 1, "a"), create(0, 3, "c")]));
    // A restarted gateway: its ids restart from a base far above the old ones. In the
    // same batch, id 2 (an old, never executed id) comes after the new one: below the
    // moved window it counts as done and is not executed.
    let base = 1_000_000;
    let out = r.step(order(2, vec![create(0, base, "new"), create(0, 2, "old")]));
    let sent = replies(&out);
    assert_eq!(sent.len(), 1, "only the new request is answered");
    assert_eq!(sent[0].message.request_id, base);
    assert!(matches!(
        result(&sent[0]),
        Ok(FsReply::Created { id: 4, .. })
    ));
    assert_eq!(r.stats().requests_executed, 3);
    assert_eq!(r.stats().duplicate_requests, 1);
    assert_eq!(r.stats().duplicates_without_reply, 1);
    // Just inside the window: a fresh id, executed. At the floor: a duplicate.
    let out = r.step(order(
        3,
        vec![
            create(0, base - CLIENT_WINDOW + 1, "inside"),
            create(0, base - CLIENT_WINDOW, "floor"),
            create(0, 3, "c"),
        ],
    ));
    // The re-sent reply goes out first (while the batch is walked), the fresh one after
    // the batch is signed.
    let sent = replies(&out);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].message.request_id, base - CLIENT_WINDOW + 1);
    assert!(matches!(
        result(&sent[1]),
        Ok(FsReply::Created { id: 5, .. })
    ));
    assert_eq!(
        (sent[0].message.sequence, sent[0].message.request_id),
        (1, 3),
        "id 3's cached reply (from sequence 1) is re-sent"
    );
    assert_eq!(r.stats().requests_executed, 4);
    assert_eq!(r.stats().duplicate_requests, 3);
    assert_eq!(r.stats().duplicates_without_reply, 2);
    assert_eq!(
        r.fs().meta().next_id,
        6,
        "'old' and 'floor' were never created"
    );
}

#[test]
fn a_replica_on_redb_restarts_with_its_exactly_once_table_and_digest() {
    use palisade_execution::{ExecutionReplica, RedbStore};
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let fs =
            FileSystem::open(RedbStore::open(dir.path()).unwrap(), FsConfig::default()).unwrap();
        ExecutionReplica::new(config(0), exec_key(0), fs).unwrap()
    };
    let mut r = open();
    for k in 1..=3 {
        r.step(order(k, workload(k)));
    }
    let digest = r.digest();
    drop(r);
    let mut r = open();
    assert_eq!(r.last_applied(), 3);
    assert_eq!(
        r.digest(),
        digest,
        "the table came back from the data directory"
    );
    // Batch 2 ordered again (a faulty primary): nothing is executed twice.
    let out = r.step(order(4, workload(2)));
    assert!(
        replies(&out).is_empty(),
        "no cached replies after a restart"
    );
    assert_eq!(r.stats().requests_executed, 0);
    assert_eq!(r.stats().duplicate_requests, 4);
    assert_eq!(r.stats().duplicates_without_reply, 4);
}

fn state_chunks_to(out: &[ReplicaOutput], peer: u32) -> Vec<(u64, Vec<u8>)> {
    out.iter()
        .filter_map(|o| match o {
            ReplicaOutput::ToExecution {
                to: Some(p),
                message: ExecutionMessage::State { sequence, data, .. },
            } if *p == peer => Some((*sequence, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_state_request_after_a_checkpoint_is_answered_at_once_from_its_snapshot() {
    let mut r = replica(0);
    r.step(order(1, vec![create(0, 1, "a")]));
    for s in 2..=K {
        r.step(order(s, vec![]));
    }
    // Later batches change the state; no further checkpoint comes.
    r.step(order(K + 1, vec![create(0, 2, "b"), create(1, 1, "c")]));
    let ask = |sequence| ReplicaInput::Message {
        from: 2,
        message: ExecutionMessage::FetchState {
            sequence,
            have: vec![],
        },
    };
    let out = r.step(ask(K));
    let chunks = state_chunks_to(&out, 2);
    assert_eq!(chunks.len(), 1, "answered at once: {out:?}");
    assert_eq!(chunks[0].0, K);
    let snapshot: palisade_wire::checkpoint::ReplicaSnapshot =
        postcard::from_bytes(&chunks[0].1).unwrap();
    // The state AT K: one file, client 0's request 1 only.
    assert_eq!(snapshot.checkpoint.last_applied, K);
    assert_eq!(snapshot.checkpoint.live_ids, vec![1, 2]);
    assert_eq!(snapshot.clients.len(), 1);
    assert_eq!(snapshot.clients[0].executed, vec![1]);
    // Not stable here yet: the certificate follows once it forms (nothing else now).
    assert!(!out.iter().any(|o| matches!(
        o,
        ReplicaOutput::ToExecution {
            message: ExecutionMessage::Stable(_),
            ..
        }
    )));
    // A request for a state beyond the snapshot waits for the next checkpoint.
    assert!(state_chunks_to(&r.step(ask(K + 1)), 2).is_empty());
    // Re-asks are answered a bounded number of times per snapshot, then deferred.
    for _ in 0..3 {
        assert_eq!(state_chunks_to(&r.step(ask(K)), 2).len(), 1);
    }
    assert!(state_chunks_to(&r.step(ask(K)), 2).is_empty());
    assert_eq!(r.stats().state_requests_deferred, 1);
    assert_eq!(r.stats().state_transfers_served, 4);
    // The deferred request is answered at the next checkpoint, with the state there.
    for s in K + 2..2 * K {
        r.step(order(s, vec![]));
    }
    let chunks = state_chunks_to(&r.step(order(2 * K, vec![])), 2);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].0, 2 * K);
}

/// A replica that missed the stable certificate of checkpoint K and moved on to 2K holds
/// snapshots of both, neither stable here. A peer that holds K's certificate asks for K:
/// it gets the state AT K, which it can install, not the newer one at 2K, which only this
/// replica holds and so could never be certified (a simulator seed deadlocked on that:
/// the asker re-asked for K until answers were deferred, forever).
#[test]
fn a_state_request_names_the_checkpoint_it_can_install_and_gets_that_snapshot() {
    let mut r = replica(0);
    r.step(order(1, vec![create(0, 1, "a")]));
    for s in 2..=2 * K {
        r.step(order(s, vec![]));
    }
    let out = r.step(ReplicaInput::Message {
        from: 2,
        message: ExecutionMessage::FetchState {
            sequence: K,
            have: vec![],
        },
    });
    let chunks = state_chunks_to(&out, 2);
    assert_eq!(chunks.len(), 1, "answered at once: {out:?}");
    assert_eq!(chunks[0].0, K, "the snapshot the asker named");
    // Asked for a sequence with no snapshot of its own, it answers with the newest.
    let out = r.step(ReplicaInput::Message {
        from: 1,
        message: ExecutionMessage::FetchState {
            sequence: K - 1,
            have: vec![],
        },
    });
    assert_eq!(state_chunks_to(&out, 1)[0].0, 2 * K);
}

/// A batch of reads commits without an fsync, except at a checkpoint's sequence: the
/// replica signs that state, and agreement collects the orders up to it once g+1 did, so
/// it must survive a crash of every replica.
#[test]
fn reads_commit_unsynced_except_at_a_checkpoint() {
    let mut r = replica(0);
    let getattr = |id| request(0, id, &FsOp::GetAttr { id: ROOT_ID });
    for s in 1..=K + 1 {
        r.step(order(s, vec![getattr(s)]));
    }
    assert_eq!(r.stats().batches_executed, K + 1);
    // 1..K-1 and K+1; not K.
    assert_eq!(r.stats().batches_unsynced, K);
    r.step(order(K + 2, vec![create(0, K + 2, "f")]));
    assert_eq!(
        r.stats().batches_unsynced,
        K,
        "a batch that changed a file syncs"
    );
}

/// After a restart of the whole cluster (`ExecutionReplica::start`): each replica signs
/// its state at the sequence it resumes from, though not a multiple of K; g+1 matching
/// make a stable certificate that goes to agreement (which then never assigns those
/// sequences again). A replica whose restart vote nobody matches stays unstable there.
/// Three replicas on redb that executed `last[i]` batches each (a create per batch)
/// and were reopened: as after the whole cluster stopped at once. The directories must
/// outlive the replicas.
fn reopened_after_executing(
    last: [u64; 3],
) -> (
    Vec<tempfile::TempDir>,
    Vec<palisade_execution::ExecutionReplica<palisade_execution::RedbStore>>,
) {
    use palisade_execution::{ExecutionReplica, RedbStore};
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let open = |i: u32| {
        let store = RedbStore::open(dirs[i as usize].path()).unwrap();
        let fs = FileSystem::open(store, FsConfig::default()).unwrap();
        ExecutionReplica::new(config(i), exec_key(i as usize), fs).unwrap()
    };
    for (i, last) in (0..3u32).zip(last) {
        let mut r = open(i);
        for s in 1..=last {
            r.step(order(s, vec![create(0, s, &format!("f{s}"))]));
        }
        assert_eq!(r.last_applied(), last);
    }
    let replicas = (0..3).map(open).collect();
    (dirs, replicas)
}

/// Starts each replica and returns the restart checkpoint it signed.
fn restart_votes(
    replicas: &mut [palisade_execution::ExecutionReplica<palisade_execution::RedbStore>],
) -> Vec<Signed<ExecCheckpoint>> {
    replicas
        .iter_mut()
        .map(|r| checkpoint_of(&r.start()))
        .collect()
}

/// Peer `from`'s checkpoint vote, as it arrives.
fn vote_from(from: u32, vote: &Signed<ExecCheckpoint>) -> ReplicaInput {
    ReplicaInput::Message {
        from,
        message: ExecutionMessage::Checkpoint(vote.clone()),
    }
}

/// What a replica with no stable checkpoint re-sends: its own restart checkpoint, to its
/// peers, and nothing else.
fn assert_resends_own_vote(out: &[ReplicaOutput], vote: &Signed<ExecCheckpoint>) {
    match out {
        [ReplicaOutput::ToExecution {
            to: None,
            message: ExecutionMessage::Checkpoint(again),
        }] => assert_eq!(again, vote),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_restarted_replica_signs_a_restart_checkpoint_where_it_resumes() {
    // Replicas 0 and 1 execute K + 2 batches, replica 2 only K + 1.
    let resumed = K + 2;
    let (_dirs, mut replicas) = reopened_after_executing([resumed, resumed, resumed - 1]);
    let votes = restart_votes(&mut replicas);
    assert_eq!(
        votes.iter().map(|v| v.message.sequence).collect::<Vec<_>>(),
        vec![resumed, resumed, resumed - 1]
    );
    assert_eq!(votes[0].message.state_digest, votes[1].message.state_digest);
    assert_eq!(replicas[0].stats().restart_checkpoints, 1);
    // Replica 2's vote alone (at another sequence) makes nothing stable at replica 0.
    let out = replicas[0].step(vote_from(2, &votes[2]));
    assert!(out.is_empty(), "{out:?}");
    assert!(replicas[0].stable_checkpoint().is_none());
    // Replica 1's matching vote: stable at K + 2, reported to agreement.
    let out = replicas[0].step(vote_from(1, &votes[1]));
    let cert = match out.as_slice() {
        [ReplicaOutput::ToAgreement(ExecutionMessage::Stable(cert))] => cert.clone(),
        other => panic!("{other:?}"),
    };
    cert.verify(&exec_public(), G).unwrap();
    assert_eq!(cert.sequence, resumed);
    assert_eq!(cert.state_digest.0, replicas[0].digest().0);
    // What the node re-sends until an order comes: that certificate, to its peers (one
    // that restarted late missed the votes) and to agreement.
    match replicas[0].restart_resend().as_slice() {
        [ReplicaOutput::ToExecution {
            to: None,
            message: ExecutionMessage::Stable(to_peers),
        }, ReplicaOutput::ToAgreement(ExecutionMessage::Stable(again))] => {
            assert_eq!(again, &cert);
            assert_eq!(to_peers, &cert);
        }
        other => panic!("{other:?}"),
    }
    // Replica 2, whose vote made nothing stable, votes again.
    assert_resends_own_vote(&replicas[2].restart_resend(), &votes[2]);
    // The replica behind it learns the certificate and fetches what it lacks (agreement
    // no longer has the order at K + 2 after the restart; state transfer follows).
    let out = replicas[2].step(ReplicaInput::Stable(cert.clone()));
    assert_eq!(replicas[2].stable_checkpoint(), Some(&cert));
    assert!(
        out.iter().any(|o| matches!(
            o,
            ReplicaOutput::SetTimer {
                kind: ExecTimer::FetchOrders,
                ..
            }
        )),
        "{out:?}"
    );
}

/// Three replicas stopped at three different sequences: no two restart checkpoints
/// match, so nothing can become stable. A replica reports that once, when every
/// replica's restart checkpoint has arrived, and keeps re-sending its own.
#[test]
fn a_restart_with_no_two_replicas_at_one_sequence_is_reported_as_stalled() {
    let (_dirs, mut replicas) = reopened_after_executing([K + 3, K + 2, K + 1]);
    let votes = restart_votes(&mut replicas);
    // Replica 1's vote alone: replica 2 may still match one of them, no report.
    let out = replicas[0].step(vote_from(1, &votes[1]));
    assert!(out.is_empty(), "{out:?}");
    assert_resends_own_vote(&replicas[0].restart_resend(), &votes[0]);
    assert_eq!(replicas[0].stats().restart_stalls, 0);
    // Every vote is in and none match: reported once, and the vote still goes out.
    let out = replicas[0].step(vote_from(2, &votes[2]));
    assert!(out.is_empty(), "{out:?}");
    assert!(replicas[0].stable_checkpoint().is_none());
    for _ in 0..3 {
        assert_resends_own_vote(&replicas[0].restart_resend(), &votes[0]);
    }
    assert_eq!(replicas[0].stats().restart_stalls, 1);
}

/// Two of three replicas at one sequence: their votes make a certificate, and nothing is
/// reported as stalled at either.
#[test]
fn a_restart_with_two_replicas_at_one_sequence_is_not_reported_as_stalled() {
    let (_dirs, mut replicas) = reopened_after_executing([K + 2, K + 1, K + 2]);
    let votes = restart_votes(&mut replicas);
    for from in [1, 2] {
        replicas[0].step(vote_from(from, &votes[from as usize]));
    }
    assert_eq!(
        replicas[0].stable_checkpoint().map(|c| c.sequence),
        Some(K + 2)
    );
    replicas[0].restart_resend();
    assert_eq!(replicas[0].stats().restart_stalls, 0);
}

/// A cluster that never executed anything: its restart checkpoints at 0 become stable,
/// but there is nothing to re-send.
#[test]
fn restart_checkpoints_of_the_initial_state_are_not_re_sent() {
    let mut a = replica(0);
    let mut b = replica(1);
    let va = checkpoint_of(&a.start());
    let vb = checkpoint_of(&b.start());
    assert_eq!((va.message.sequence, vb.message.sequence), (0, 0));
    let out = a.step(ReplicaInput::Message {
        from: 1,
        message: ExecutionMessage::Checkpoint(vb),
    });
    assert!(matches!(
        out.as_slice(),
        [ReplicaOutput::ToAgreement(ExecutionMessage::Stable(c))] if c.sequence == 0
    ));
    assert!(a.restart_resend().is_empty());
}

/// After the whole cluster stopped at once, replica 0 resumes one batch past replicas 1
/// and 2, whose restart checkpoints become stable below it. That batch was executed by
/// fewer than g+1 replicas and agreement will order another one there, so replica 0
/// must not execute on: it is divergent the moment it learns the certificate, executes
/// nothing, and takes the stable state from its peers (going back one batch).
#[test]
fn a_replica_restarted_past_the_stable_restart_checkpoint_takes_the_stable_state() {
    use std::collections::VecDeque;
    let resumed = K + 1;
    let (_dirs, mut replicas) = reopened_after_executing([resumed + 1, resumed, resumed]);
    let mut votes: Vec<Signed<ExecCheckpoint>> = replicas
        .iter_mut()
        .map(|r| checkpoint_of(&r.start()))
        .collect();
    let stable_digest = votes[1].message.state_digest;
    let out = replicas[1].step(ReplicaInput::Message {
        from: 2,
        message: ExecutionMessage::Checkpoint(votes.remove(2)),
    });
    let cert = match out.as_slice() {
        [ReplicaOutput::ToAgreement(ExecutionMessage::Stable(cert))] => cert.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(cert.sequence, resumed);

    let mut pending: VecDeque<(u32, ReplicaInput)> =
        VecDeque::from([(0, ReplicaInput::Stable(cert))]);
    assert!(!replicas[0].is_divergent());
    // Agreement orders a different batch at the sequence replica 0 executed alone.
    let other = vec![create(1, 1, "other")];
    pending.push_back((0, order(resumed + 1, other.clone())));
    pending.push_back((1, order(resumed + 1, other.clone())));
    pending.push_back((2, order(resumed + 1, other)));
    let mut executed_by_0 = Vec::new();
    let mut steps = 0;
    while let Some((to, input)) = pending.pop_front() {
        steps += 1;
        assert!(steps < 10_000, "the replicas never went quiet");
        let divergent_before = replicas[to as usize].is_divergent();
        for o in replicas[to as usize].step(input) {
            match o {
                ReplicaOutput::ToExecution { to: peer, message } => {
                    for p in (0..3u32).filter(|p| *p != to && peer.is_none_or(|q| q == *p)) {
                        pending.push_back((
                            p,
                            ReplicaInput::Message {
                                from: to,
                                message: message.clone(),
                            },
                        ));
                    }
                }
                ReplicaOutput::Reply { reply, .. } if to == 0 && divergent_before => {
                    executed_by_0.push(reply.message.sequence)
                }
                _ => {}
            }
        }
        if to == 0 && steps == 1 {
            assert!(replicas[0].is_divergent(), "divergent on the certificate");
        }
    }
    assert!(
        executed_by_0.is_empty(),
        "answered while divergent: {executed_by_0:?}"
    );
    assert!(!replicas[0].is_divergent());
    assert_eq!(replicas[0].stats().divergences, 1);
    assert!(replicas[0].last_applied() >= resumed);
    // Replica 0 now holds the certified state, then whatever the others executed.
    assert_eq!(replicas[1].last_applied(), resumed + 1);
    if replicas[0].last_applied() == resumed {
        assert_eq!(replicas[0].digest().0, stable_digest.0);
    } else {
        assert_eq!(replicas[0].digest().0, replicas[1].digest().0);
    }
}
