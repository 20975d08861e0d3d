//! Three execution replicas (g = 1) fed the same certified batches: identical replies
//! and digests, stable checkpoints, a lying replica, a wiped replica that catches up by
//! state transfer, a restarted replica that repairs its exactly-once table, and a lagging
//! replica that catches up by fetching orders from a `DeliveryLog`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replica_support;

use palisade_execution::{
    ExecTimer, ExecutionReplica, FileSystem, FsConfig, MemStore, ReplicaInput,
};
use palisade_wire::agreement::{Digest, Signed};
use palisade_wire::checkpoint::ReplicaSnapshot;
use palisade_wire::execution::{ExecCheckpoint, ExecutionMessage};
use palisade_wire::fs::{FsOp, FsReply};
use replica_support::*;

/// Every replica in `rs` sent exactly one reply to each request of batches `ks`, and they
/// all match (everything but the sender).
fn assert_same_replies(c: &Cluster, rs: &[usize], ks: std::ops::RangeInclusive<u64>) {
    for k in ks {
        for client in 0..2u64 {
            for id in [2 * k - 1, 2 * k] {
                let first = c.reply_of(rs[0], client, id).message.clone();
                assert_eq!(first.sequence, k);
                for r in rs {
                    let all = &c.replies[*r][&(client, id)];
                    // A re-delivered order (here: a fetched order that overlaps a
                    // buffered one) re-sends the same signed reply, never another one.
                    assert!(
                        all.iter().all(|a| *a == all[0]),
                        "replica {r} sent different replies"
                    );
                    palisade_crypto::verify_batch_reply(&exec_key(*r).verifying_key(), &all[0])
                        .unwrap();
                    assert!(
                        all[0].message.matches(&first),
                        "replica {r}, ({client}, {id})"
                    );
                }
            }
        }
    }
}

fn assert_same_digests(c: &mut Cluster) {
    let d: Vec<_> = c.replicas.iter_mut().map(|r| r.digest()).collect();
    assert_eq!(d[0], d[1]);
    assert_eq!(d[0], d[2]);
    let last: Vec<_> = c.replicas.iter().map(|r| r.last_applied()).collect();
    assert_eq!(last, vec![last[0]; 3]);
}

fn stables(c: &Cluster, r: usize) -> Vec<u64> {
    c.to_agreement[r]
        .iter()
        .filter_map(|m| match m {
            ExecutionMessage::Stable(cert) => Some(cert.sequence),
            _ => None,
        })
        .collect()
}

#[test]
fn replicas_fed_the_same_batches_agree_on_every_reply_and_digest() {
    let mut c = Cluster::new();
    for k in 1..=12 {
        c.order(workload(k));
    }
    assert_same_replies(&c, &[0, 1, 2], 1..=12);
    assert_same_digests(&mut c);
    // The write of batch 12 landed in file 2 on every replica.
    match palisade_wire::decode::<palisade_wire::fs::FsResult>(&c.reply_of(0, 0, 24).message.result)
        .unwrap()
    {
        Ok(FsReply::Write { count, attr }) => assert_eq!((count, attr.size), (100, 1300)),
        other => panic!("{other:?}"),
    }
    for r in 0..3 {
        assert_eq!(stables(&c, r), vec![4, 8, 12], "replica {r}");
        assert!(!c.replicas[r].is_divergent());
        assert_eq!(c.replicas[r].stats().divergences, 0);
    }
    // Agreement's delivery log was collected up to the stable checkpoint.
    assert!(c.log.is_empty());
    assert_eq!(c.log.collected(), 12);
}

#[test]
fn a_replica_lying_about_its_digest_makes_no_stable_checkpoint() {
    let mut c = Cluster::new();
    // Replica 2 signs a wrong digest for every checkpoint it sends.
    c.tamper = Some(Box::new(|from, m| {
        if let (2, ExecutionMessage::Checkpoint(signed)) = (from, &*m) {
            let lie = ExecCheckpoint {
                state_digest: Digest([0xee; 32]),
                ..signed.message.clone()
            };
            *m = ExecutionMessage::Checkpoint(Signed::sign(&exec_key(2), lie).unwrap());
        }
    }));
    // Replica 1's checkpoints are held back: replica 0 sees only its own and the lie.
    c.hold_from = Some(1);
    for k in 1..=4 {
        c.order(workload(k));
    }
    assert!(stables(&c, 0).is_empty(), "own + lie must not be stable");
    assert!(c.replicas[0].stable_checkpoint().is_none());
    c.release_held();
    assert_eq!(stables(&c, 0), vec![4]);
    let cert = c.replicas[0].stable_checkpoint().unwrap().clone();
    assert_eq!(cert.state_digest.0, c.replicas[0].digest().0);
    assert!(cert.signatures.iter().all(|s| s.message.replica != 2));
    // The liar's own state is fine; it is not divergent, and the certificate it formed
    // from the others' checkpoints has the true digest.
    let theirs = c.replicas[2].stable_checkpoint().unwrap();
    assert_eq!(
        (theirs.sequence, theirs.state_digest),
        (4, cert.state_digest)
    );
    assert_same_digests(&mut c);
}

#[test]
fn a_replica_that_skipped_batches_by_state_transfer_answers_them_with_its_peers_bodies() {
    let mut c = Cluster::with_replica_2_transferred_at_16(replica, workload);
    // A client retransmits a request of 14; agreement re-delivers the order. Replica 2
    // asks its peers for the replies, checks them against its own leaves of 14, and
    // signs them: now g+1 replicas answer even if one of its peers were faulty.
    c.redeliver(14);
    let s = c.replicas[2].stats().clone();
    assert_eq!((s.replies_fetched, s.replies_from_peers), (1, 4), "{s:?}");
    assert_eq!((s.unsolicited_replies, s.bad_peer_replies), (0, 0), "{s:?}");
    assert_same_replies(&c, &[0, 1, 2], 14..=14);
    // The peers answered once each (each sent all four), and nothing more: a second
    // re-delivery finds replica 2's own cache.
    assert_eq!(c.replicas[0].stats().replies_served, 4);
    c.redeliver(14);
    assert_eq!(c.replicas[2].stats().replies_fetched, 1);
    assert_eq!(c.replicas[2].stats().replies_resent, 4);
    // 8 has left the window of leaves (16 - 2K): nothing to ask for.
    c.redeliver(8);
    assert_eq!(c.replicas[2].stats().replies_fetched, 1);
}

#[test]
fn a_reply_asked_for_after_its_order_was_collected_comes_from_peers_bodies() {
    let mut c = Cluster::with_replica_2_transferred_at_16(replica, workload);
    // Batch 14 (clients 0 and 1, ids 27 and 28) left agreement's delivery log; client 0
    // retransmits request 27, and agreement asks the replicas for its reply, naming the
    // sequence it delivered it at. Replicas 0 and 1 re-send theirs; replica 2, which
    // knows 14 only by its leaves, asks its peers and signs the one that matches.
    c.ask_for_reply(0, 27, Some(14));
    let s = c.replicas[2].stats().clone();
    assert_eq!((s.replies_fetched, s.replies_from_peers), (1, 1), "{s:?}");
    assert_eq!((s.unsolicited_replies, s.bad_peer_replies), (0, 0), "{s:?}");
    assert_eq!(c.replicas[0].stats().replies_resent, 1);
    let theirs = c.reply_of(0, 0, 27).message.clone();
    let ours = &c.replies[2][&(0, 27)];
    assert_eq!(ours.len(), 1);
    palisade_crypto::verify_batch_reply(&exec_key(2).verifying_key(), &ours[0]).unwrap();
    assert!(ours[0].message.matches(&theirs) && ours[0].message.sequence == 14);

    // A faulty agreement node names the wrong sequence: the peers hold no reply to
    // (1, 28) at 13, so nothing comes back and nothing is signed.
    c.ask_for_reply(1, 28, Some(13));
    assert_eq!(c.replicas[2].stats().replies_from_peers, 1);
    assert!(!c.replies[2].contains_key(&(1, 28)));
    // Without a sequence, or one outside the leaves' window, nothing is asked.
    let fetched = c.replicas[2].stats().replies_fetched;
    c.ask_for_reply(1, 28, None);
    c.ask_for_reply(1, 28, Some(8));
    assert_eq!(c.replicas[2].stats().replies_fetched, fetched);
    // With the right one, it is answered like the first.
    c.ask_for_reply(1, 28, Some(14));
    assert_eq!(c.replicas[2].stats().replies_from_peers, 2);
    assert!(c.replies[2][&(1, 28)][0]
        .message
        .matches(&c.reply_of(1, 1, 28).message));
}

#[test]
fn a_peer_cannot_make_a_replica_sign_a_reply_that_is_not_among_its_leaves() {
    let mut c = Cluster::with_replica_2_transferred_at_16(replica, workload);
    // Replica 0 is faulty: the bodies it serves are altered. Replica 1's are true.
    c.tamper = Some(Box::new(|from, m| {
        if let (0, ExecutionMessage::ReplyBody { entry, .. }) = (from, m) {
            entry.body.push(0);
        }
    }));
    c.redeliver(14);
    let s = c.replicas[2].stats().clone();
    assert_eq!((s.bad_peer_replies, s.replies_from_peers), (4, 4), "{s:?}");
    assert_same_replies(&c, &[1, 2], 14..=14);
    // Bodies nobody asked for are dropped unsigned.
    let before = c.replies[2].len();
    let out = c.replicas[2].step(ReplicaInput::Message {
        from: 1,
        message: ExecutionMessage::ReplyBody {
            sequence: 15,
            entry: palisade_wire::firewall::ReplyEntry {
                client: 0,
                request_id: 29,
                body: vec![1, 2, 3],
            },
        },
    });
    assert!(out.is_empty());
    assert_eq!(c.replicas[2].stats().unsolicited_replies, 1);
    assert_eq!(c.replies[2].len(), before);
}

#[test]
fn a_wiped_replica_catches_up_by_state_transfer_then_executes_identically() {
    let mut c = Cluster::new();
    for k in 1..=12 {
        c.order(workload(k));
    }
    // Replica 2 loses its data directory.
    c.replicas[2] = replica(2);
    c.replies[2].clear();
    // Batches 13..16: replica 2 drops them (too far ahead of 0), then forms the stable
    // checkpoint at 16 from its peers' checkpoints and asks them for the state, which
    // they answer at once from their snapshots at 16 (no further checkpoint needed).
    for k in 13..=16 {
        c.order(workload(k));
    }
    assert!(c.replicas[2].stats().orders_too_far_ahead >= 4);
    let s = c.replicas[2].stats().clone();
    assert_eq!(s.state_transfers_completed, 1, "{s:?}");
    assert_eq!(s.bad_state, 0);
    assert!(c.replicas[0].stats().state_transfers_served >= 1);
    assert!(!c.replicas[2].is_transferring());
    assert_eq!(c.replicas[2].last_applied(), 16);
    for k in 17..=22 {
        c.order(workload(k));
    }
    assert_eq!(c.replicas[2].last_applied(), 22);
    assert_same_replies(&c, &[0, 1, 2], 17..=20);
    // Replies of 21 and 22 (executed after the transfer) match the peers'.
    assert_same_replies(&c, &[0, 1, 2], 21..=22);
    for k in 23..=28 {
        c.order(workload(k));
    }
    assert_same_replies(&c, &[0, 1, 2], 23..=28);
    assert_same_digests(&mut c);
    assert_eq!(stables(&c, 2).last(), Some(&28));
    // Exactly-once travelled with the state: a request executed before the wipe is not
    // executed again by replica 2.
    let before = c.replicas[2].stats().requests_executed;
    c.order(workload(3));
    assert_eq!(c.replicas[2].stats().requests_executed, before);
    assert_same_digests(&mut c);
}

#[test]
fn a_lost_state_request_is_sent_again_when_its_timer_fires() {
    let mut c = Cluster::new();
    for k in 1..=12 {
        c.order(workload(k));
    }
    c.replicas[2] = replica(2);
    c.drop_from = Some(2);
    for _ in 13..=16 {
        c.order(vec![]);
    }
    c.drop_from = None;
    assert!(c.replicas[2].is_transferring());
    assert_eq!(c.timers[2].get(&ExecTimer::FetchState), Some(&TIMEOUT));
    // Nobody got the request: the checkpoint at 20 brings nothing.
    for _ in 17..=20 {
        c.order(vec![]);
    }
    assert_eq!(c.replicas[2].last_applied(), 0);
    assert_eq!(c.replicas[0].stats().state_transfers_served, 0);
    // The re-sent request is answered at once from the peers' snapshots at 20 (newer
    // than the stable 16 asked for, with its certificate): no more traffic needed.
    c.fire(2, ExecTimer::FetchState);
    assert_eq!(c.replicas[2].stats().state_transfers_completed, 1);
    assert_eq!(c.replicas[2].last_applied(), 20);
    assert!(!c.timers[2].contains_key(&ExecTimer::FetchState));
    assert_same_digests(&mut c);
}

#[test]
fn a_state_that_does_not_match_the_certified_digest_is_not_installed() {
    let mut c = Cluster::new();
    for k in 1..=12 {
        c.order(workload(k));
    }
    // Replica 0 serves a snapshot whose exactly-once table forgets request (0, 1): were
    // it installed, replica 2 would execute that request again if it were re-ordered.
    c.tamper = Some(Box::new(|from, m| {
        if let (0, ExecutionMessage::State { data, .. }) = (from, m) {
            let mut snap: ReplicaSnapshot = postcard::from_bytes(data).unwrap();
            snap.clients[0].executed.retain(|id| *id != 1);
            *data = postcard::to_stdvec(&snap).unwrap();
        }
    }));
    c.replicas[2] = replica(2);
    for _ in 13..=20 {
        c.order(vec![]);
    }
    let s = c.replicas[2].stats().clone();
    assert_eq!((s.bad_state, s.state_transfers_completed), (1, 1), "{s:?}");
    assert_same_digests(&mut c);
}

#[test]
fn a_state_larger_than_one_message_travels_in_chunks() {
    let mut c = Cluster::new();
    c.order(workload(1));
    // Three 1 MiB writes into file 2 (distinct bytes, so blocks differ): > 3 MiB state.
    for k in 0..3u64 {
        let data: Vec<u8> = (0..1024 * 1024).map(|i| (i as u64 * 7 + k) as u8).collect();
        let write = FsOp::Write {
            id: 2,
            offset: k << 20,
            data,
        };
        c.order(vec![request(0, 100 + k, &write)]);
    }
    c.replicas[2] = replica(2);
    for _ in 0..12 {
        c.order(vec![]);
    }
    assert_eq!(c.replicas[2].stats().state_transfers_completed, 1);
    assert!(
        c.state_chunks[2] >= 2 * 4,
        "two peers, at least 4 chunks each: {}",
        c.state_chunks[2]
    );
    assert_same_digests(&mut c);
    assert_eq!(c.replicas[2].fs().meta(), c.replicas[0].fs().meta());
}

#[test]
fn a_restarted_replica_keeps_its_exactly_once_table_and_digest() {
    let mut c = Cluster::new();
    for k in 1..=6 {
        c.order(workload(k));
    }
    let before = c.replicas[1].digest();
    // Replica 1 restarts from its store: the table was committed with every batch.
    let fs = std::mem::replace(&mut c.replicas[1], replica(1)).into_fs();
    let fs = FileSystem::open(fs.into_store(), FsConfig::default()).unwrap();
    c.replicas[1] = ExecutionReplica::<MemStore>::new(config(1), exec_key(1), fs).unwrap();
    assert_eq!(c.replicas[1].last_applied(), 6);
    assert_eq!(
        c.replicas[1].digest(),
        before,
        "same digest right after the restart"
    );
    assert_same_digests(&mut c);
    // Its next checkpoints agree with the others': no divergence, no state transfer.
    for k in 7..=13 {
        c.order(workload(k));
    }
    assert_eq!(c.replicas[1].stats().divergences, 0);
    assert_eq!(c.replicas[1].stats().state_transfers_started, 0);
    assert_eq!(stables(&c, 1), vec![4, 8, 12]);
    assert_same_digests(&mut c);
    assert_same_replies(&c, &[0, 1, 2], 7..=13);
    // A replay of batch 2's requests: executed by nobody, the restarted replica included.
    let before: Vec<_> = c
        .replicas
        .iter()
        .map(|r| r.stats().requests_executed)
        .collect();
    c.order(workload(2));
    let after: Vec<_> = c
        .replicas
        .iter()
        .map(|r| r.stats().requests_executed)
        .collect();
    assert_eq!(before, after);
    assert_same_digests(&mut c);
}

#[test]
fn a_lagging_replica_catches_up_by_fetching_orders_from_the_delivery_log() {
    let mut c = Cluster::new();
    for k in 1..=4 {
        c.order(workload(k));
    }
    // Replica 2 misses batches 5 and 6 (still above the stable checkpoint at 4, so the
    // delivery log keeps them).
    c.online[2] = false;
    for k in 5..=6 {
        c.order(workload(k));
    }
    c.online[2] = true;
    c.order(workload(7));
    assert_eq!(c.replicas[2].last_applied(), 4);
    assert!(c.timers[2].contains_key(&ExecTimer::FetchOrders));
    c.fire(2, ExecTimer::FetchOrders);
    assert_eq!(c.replicas[2].last_applied(), 7);
    assert!(c.to_agreement[2].contains(&ExecutionMessage::FetchOrders { from: 5 }));
    assert!(!c.timers[2].contains_key(&ExecTimer::FetchOrders));
    assert_same_replies(&c, &[0, 1, 2], 1..=7);
    c.order(workload(8));
    assert_same_digests(&mut c);
    assert_eq!(stables(&c, 2), vec![4, 8]);
    assert_eq!(c.replicas[2].stats().state_transfers_started, 0);
}

#[test]
fn orders_that_cannot_be_fetched_any_more_lead_to_a_state_transfer() {
    let mut c = Cluster::new();
    for k in 1..=2 {
        c.order(workload(k));
    }
    // Replica 2 misses 3..6; the stable checkpoint at 4 lets the log drop 3 and 4.
    c.online[2] = false;
    for k in 3..=6 {
        c.order(workload(k));
    }
    c.online[2] = true;
    for k in 7..=8 {
        c.order(workload(k));
    }
    assert_eq!(c.replicas[2].last_applied(), 2);
    assert_eq!(
        c.replicas[2].stable_checkpoint().map(|s| s.sequence),
        Some(8)
    );
    assert!(
        !c.replicas[2].is_transferring(),
        "8 is within reach: orders first"
    );
    for attempt in 1..=2 {
        c.fire(2, ExecTimer::FetchOrders);
        assert_eq!(c.replicas[2].stats().fetch_orders_sent, attempt);
        assert!(!c.replicas[2].is_transferring());
    }
    // The third unanswered round starts a state transfer, which the peers answer at
    // once from their snapshots at 8; replica 2 then fetches orders from 9.
    c.fire(2, ExecTimer::FetchOrders);
    assert_eq!(c.replicas[2].stats().state_transfers_completed, 1);
    assert_eq!(c.replicas[2].last_applied(), 8);
    assert!(c.to_agreement[2].contains(&ExecutionMessage::FetchOrders { from: 9 }));
    for k in 9..=12 {
        c.order(workload(k));
    }
    assert_same_replies(&c, &[0, 1, 2], 1..=2);
    c.order(workload(13));
    assert_same_replies(&c, &[0, 1, 2], 13..=13);
    assert_same_digests(&mut c);
}

#[test]
fn a_replica_that_missed_every_stable_checkpoint_asks_all_peers_for_state() {
    let mut c = Cluster::new();
    for k in 1..=2 {
        c.order(workload(k));
    }
    // Replica 2 is down for 3..8: it misses the checkpoints at 4 and 8, so it knows of
    // no stable checkpoint, while the delivery log drops everything up to 8.
    c.online[2] = false;
    for k in 3..=8 {
        c.order(workload(k));
    }
    c.online[2] = true;
    c.order(workload(9));
    assert_eq!(c.replicas[2].last_applied(), 2);
    assert!(c.replicas[2].stable_checkpoint().is_none());
    // Fetching 3.. brings only 9 again; after the third round it asks every peer for a
    // state beyond 2. They answer at once from their snapshots at 8, with its
    // certificate; replica 2 installs it and fetches 9.
    for _ in 1..=3 {
        c.fire(2, ExecTimer::FetchOrders);
    }
    let s = c.replicas[2].stats().clone();
    assert_eq!(s.state_transfers_completed, 1, "{s:?}");
    assert_eq!(
        c.replicas[2].stable_checkpoint().map(|s| s.sequence),
        Some(8)
    );
    assert_eq!(c.replicas[2].last_applied(), 9);
    assert_same_replies(&c, &[0, 1, 2], 9..=9);
    c.order(workload(10));
    assert_same_replies(&c, &[0, 1, 2], 10..=10);
    assert_same_digests(&mut c);
}
