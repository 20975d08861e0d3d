//! Whole-cluster behaviour on the deterministic FIFO harness (tests/common).

mod common;

use std::time::Duration;

use common::{request, time, Cluster};
use palisade_agreement::{Input, Status, TimerKind};
use palisade_wire::agreement::{AgreementMessage, Batch, Signed};

#[test]
fn normal_case_commits_in_order_on_all_replicas() {
    let mut c = Cluster::new(1);
    for id in 1..=6 {
        for client in 0..2 {
            c.submit(request(client, id, &[client as u8, id as u8]));
        }
    }
    c.settle();
    c.check_invariants();
    for i in 0..4 {
        assert_eq!(c.delivered[i].len(), 3, "12 requests in batches of 4");
        let mut got = c.delivered_requests(i);
        assert_eq!(got.len(), 12);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 12, "every request exactly once");
        assert_eq!(c.replicas[i].pending_requests(), 0);
        assert_eq!(c.replicas[i].stats().batches_delivered, 3);
    }
    assert_eq!(
        c.delivered[0], c.delivered[3],
        "identical batches and certificates"
    );
    // The primary fixed the timestamp from its clock.
    assert_eq!(c.delivered[1][0].0.batch.timestamp, time(1_000));
    // A replica's own vote counts towards its quorums: per batch each replica needs 2
    // of the 3 others' commits, a backup 1 of the 2 other backups' prepares and the
    // primary 2 of the 3 backups' prepares. The last vote of each kind came after the
    // quorum and was dropped unverified: 4 commits + 4 prepares per batch, 3 batches.
    let redundant: u64 = c.replicas.iter().map(|r| r.stats().votes_redundant).sum();
    assert_eq!(redundant, 24);
    assert!(c.replicas.iter().all(|r| r.stats().messages_invalid == 0));
    // Nothing left waiting: no backup keeps a view-change timer armed.
    for i in 1..4 {
        assert!(!c.timers[i].contains_key(&TimerKind::ViewChange));
    }
}

#[test]
fn partial_batch_waits_for_the_batch_timer() {
    let mut c = Cluster::new(1);
    c.submit(request(0, 1, b"x"));
    c.run();
    assert!(c.delivered.iter().all(|d| d.is_empty()));
    assert_eq!(
        c.timers[0].get(&TimerKind::Batch),
        Some(&Duration::from_millis(2))
    );
    c.fire_all(TimerKind::Batch);
    c.run();
    c.check_invariants();
    assert!(c.delivered.iter().all(|d| d.len() == 1));
}

#[test]
fn checkpoints_advance_watermarks_and_collect_the_log() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    for id in 1..=20 {
        c.submit(request(0, id, b"w"));
    }
    c.settle();
    // Without stable checkpoints the primary stops at the high watermark L = 8.
    for i in 0..4 {
        assert_eq!(c.replicas[i].last_delivered(), 8);
        assert_eq!(c.replicas[i].high_watermark(), 8);
    }
    for _ in 0..10 {
        c.report_checkpoints();
        c.settle();
    }
    c.check_invariants();
    for i in 0..4 {
        let r = &c.replicas[i];
        assert_eq!(r.last_delivered(), 20);
        assert_eq!(r.low_watermark(), 20, "checkpoint at 20 is stable");
        assert_eq!(r.high_watermark(), 28);
        assert_eq!(r.log_len(), 0, "log collected below the stable checkpoint");
        assert!(r.checkpoint_votes_held().is_empty());
        assert_eq!(r.stats().checkpoints_stable, 5);
    }
}

#[test]
fn checkpoint_with_diverging_digest_does_not_become_stable_alone() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    for id in 1..=4 {
        c.submit(request(0, id, b"w"));
    }
    c.settle();
    let good = palisade_wire::agreement::Digest([1; 32]);
    let bad = palisade_wire::agreement::Digest([2; 32]);
    c.execution_checkpoint(0..2, 4, good);
    c.execution_checkpoint([2], 4, bad);
    c.run();
    assert!(
        c.replicas.iter().all(|r| r.low_watermark() == 0),
        "2 of 3 is not 2f+1"
    );
    c.execution_checkpoint([3], 4, good);
    c.run();
    assert!(c.replicas.iter().all(|r| r.low_watermark() == 4));
}

#[test]
fn silent_primary_is_replaced_and_requests_commit() {
    let mut c = Cluster::new(1);
    c.silent.insert(0);
    for id in 1..=5 {
        c.submit(request(1, id, b"op"));
    }
    c.settle();
    assert!(c.delivered.iter().all(|d| d.is_empty()));
    // Every backup waits for its requests with the base timeout.
    for i in 1..4 {
        assert_eq!(
            c.timers[i].get(&TimerKind::ViewChange),
            Some(&Duration::from_millis(500))
        );
    }
    assert_eq!(c.fire_all(TimerKind::ViewChange), 3);
    c.settle();
    c.check_invariants();
    for i in 1..4 {
        assert_eq!(c.replicas[i].view(), 1);
        assert_eq!(c.replicas[i].status(), Status::Normal);
        assert_eq!(c.delivered_requests(i).len(), 5);
        assert_eq!(c.replicas[i].stats().new_views_installed, 1);
    }
    assert!(c.replicas[1].is_primary());
}

#[test]
fn view_change_keeps_batches_committed_at_only_some_replicas() {
    let mut c = Cluster::new(1);
    for id in 1..=4 {
        c.submit(request(0, id, b"a"));
    }
    c.settle();
    assert!(c.delivered.iter().all(|d| d.len() == 1));
    // Sequence 2 commits at replicas 0 and 1 only: commits to 2 and 3 are lost.
    c.filter = Some(Box::new(|_, to, m| {
        !(to >= 2 && matches!(m, AgreementMessage::Commit(_)))
    }));
    for id in 5..=8 {
        c.submit(request(0, id, b"b"));
    }
    c.settle();
    assert_eq!(c.delivered[1].len(), 2);
    assert_eq!(c.delivered[2].len(), 1);
    c.filter = None;
    // The primary (which also committed 2) now goes silent.
    c.silent.insert(0);
    c.fire_all(TimerKind::ViewChange);
    c.settle();
    c.check_invariants();
    for i in 1..4 {
        assert_eq!(c.replicas[i].view(), 1);
        assert_eq!(c.delivered[i].len(), 2, "replica {i}");
        assert_eq!(c.delivered[i][1].0, c.delivered[1][1].0);
    }
    // Replica 1 committed sequence 2 in view 0; replicas 2, 3 in view 1, same batch.
    let view_of = |i: usize| match &c.delivered[i][1].1 {
        palisade_agreement::OrderCertificate::Pbft(p) => p.view,
    };
    assert_eq!((view_of(1), view_of(2)), (0, 1));
    // New requests still commit in view 1.
    c.submit(request(2, 1, b"c"));
    c.settle();
    c.check_invariants();
    assert!((1..4).all(|i| c.delivered[i].len() == 3));
}

#[test]
fn failed_new_view_backs_off_and_the_next_view_takes_over() {
    let mut c = Cluster::new(1);
    c.silent.insert(0);
    // The primary of view 1 never gets its new-view out.
    c.filter = Some(Box::new(|from, _, m| {
        !(from == 1 && matches!(m, AgreementMessage::NewView(_)))
    }));
    c.submit(request(0, 1, b"x"));
    c.settle();
    c.fire_all(TimerKind::ViewChange);
    c.settle();
    assert_eq!(c.replicas[2].view(), 1);
    assert_eq!(c.replicas[2].status(), Status::ViewChange);
    assert_eq!(
        c.timers[2].get(&TimerKind::ViewChange),
        Some(&Duration::from_millis(1000))
    );
    c.filter = None;
    c.fire_all(TimerKind::ViewChange);
    c.settle();
    c.check_invariants();
    for i in 1..4 {
        assert_eq!(c.replicas[i].view(), 2, "replica {i}");
        assert_eq!(c.delivered_requests(i), vec![(0, 1)]);
    }
    // The timeouts asked for doubled with each successive view change: 500 (request
    // timer), 1000 (view 1), 2000 (view 2).
    let vc: Vec<Duration> = c.timer_log[3]
        .iter()
        .filter(|(k, _)| *k == TimerKind::ViewChange)
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(
        &vc[..3],
        &[
            Duration::from_millis(500),
            Duration::from_millis(1000),
            Duration::from_millis(2000)
        ]
    );
    // After progress the back-off resets to the base timeout.
    c.submit(request(0, 2, b"y"));
    c.run();
    assert_eq!(
        c.timers[3].get(&TimerKind::ViewChange),
        Some(&Duration::from_millis(500))
    );
}

/// The primary (replica 0) is Byzantine: it sends one batch to replicas 1 and 2 and
/// another at the same sequence to replica 3, and votes commit for both.
#[test]
fn equivocating_primary_never_gets_two_batches_committed() {
    for split in [vec![1u32, 2], vec![1]] {
        let mut c = Cluster::new(1);
        c.silent.insert(0);
        let a = request(0, 1, b"A");
        let b = request(1, 1, b"B");
        c.submit(a.clone());
        c.submit(b.clone());
        let key = common::replica_key(0);
        let make = |r: Signed<palisade_wire::agreement::Request>| {
            let batch = Batch {
                timestamp: time(1_000),
                requests: vec![r],
            };
            (common::signed_pre_prepare(0, 0, 1, &batch), batch)
        };
        let (pa, ba) = make(a);
        let (pb, bb) = make(b);
        let commit = |digest| {
            AgreementMessage::Commit(
                Signed::sign(
                    &key,
                    palisade_wire::agreement::Commit {
                        view: 0,
                        sequence: 1,
                        digest,
                        replica: 0,
                    },
                )
                .unwrap(),
            )
        };
        for to in 1..4u32 {
            let (pp, batch) = if split.contains(&to) {
                (pa.clone(), ba.clone())
            } else {
                (pb.clone(), bb.clone())
            };
            let digest = pp.message.digest;
            c.input(
                to,
                Input::Message {
                    from: 0,
                    message: AgreementMessage::PrePrepare {
                        pre_prepare: pp,
                        batch,
                    },
                },
            );
            c.input(
                to,
                Input::Message {
                    from: 0,
                    message: commit(digest),
                },
            );
            // The second pre-prepare for the same slot is refused and counted.
            let (other_pp, other_batch) = if split.contains(&to) {
                (pb.clone(), bb.clone())
            } else {
                (pa.clone(), ba.clone())
            };
            if to == 1 {
                c.input(
                    to,
                    Input::Message {
                        from: 0,
                        message: AgreementMessage::PrePrepare {
                            pre_prepare: other_pp,
                            batch: other_batch,
                        },
                    },
                );
                assert_eq!(c.replicas[1].stats().pre_prepares_conflicting, 1);
            }
        }
        c.settle();
        c.check_invariants();
        // Exactly the side holding 2f prepares for its batch committed it in view 0.
        let (winner, losers) = if split.len() == 2 {
            (&ba, vec![3])
        } else {
            (&bb, vec![1])
        };
        let committed_first: Vec<usize> = (1..4).filter(|i| !c.delivered[*i].is_empty()).collect();
        assert_eq!(committed_first.len(), 2, "split {split:?}");
        for i in &committed_first {
            assert_eq!(&c.delivered[*i][0].0.batch, winner);
        }
        assert!(losers.iter().all(|i| c.delivered[*i].is_empty()));
        // Whatever committed, the backups then replace the primary and finish the rest.
        c.fire_all(TimerKind::ViewChange);
        c.settle();
        c.check_invariants();
        for i in 1..4 {
            assert_eq!(
                &c.delivered[i][0].0.batch, winner,
                "sequence 1 kept across the view change"
            );
            let mut got = c.delivered_requests(i);
            got.sort();
            assert_eq!(got, vec![(0, 1), (1, 1)], "split {split:?} replica {i}");
        }
    }
}

#[test]
fn missing_body_after_view_change_is_fetched() {
    let mut c = Cluster::new(1);
    // Replica 3 never sees the pre-prepare, and no commit reaches anyone: sequence 1
    // prepares at 0, 1, 2 only.
    c.filter = Some(Box::new(|_, to, m| match m {
        AgreementMessage::PrePrepare { .. } => to != 3,
        AgreementMessage::Commit(_) => false,
        _ => true,
    }));
    for id in 1..=4 {
        c.submit(request(0, id, b"q"));
    }
    c.settle();
    assert!(c.delivered.iter().all(|d| d.is_empty()));
    c.filter = None;
    c.silent.insert(0);
    c.fire_all(TimerKind::ViewChange);
    c.settle();
    c.check_invariants();
    for i in 1..4 {
        assert_eq!(c.delivered_requests(i).len(), 4, "replica {i}");
    }
    // Replica 3 had the requests from the client but not the batch: it fetched it.
    assert_eq!(c.replicas[3].stats().batches_fetched, 1);
}

#[test]
fn tampered_messages_are_dropped_and_counted() {
    let mut c = Cluster::new(1);
    // Corrupt every commit's signature in flight.
    c.filter = Some(Box::new(|_, _, m| {
        if let AgreementMessage::Commit(commit) = m {
            commit.signature.0[0] ^= 1;
        }
        true
    }));
    c.submit(request(0, 1, b"t"));
    c.fire_all(TimerKind::Batch);
    c.run();
    for i in 0..4 {
        assert!(c.delivered[i].is_empty());
    }
    let invalid: u64 = c.replicas.iter().map(|r| r.stats().messages_invalid).sum();
    assert_eq!(invalid, 12, "commits from 4 replicas to 3 others each");
    assert!(c.replicas.iter().all(|r| r.stats().batches_delivered == 0));
}

/// Prepares are unsigned: only the link says who voted. A prepare relabelled in flight
/// as another replica's vote is refused, so no slot prepares and nothing commits.
#[test]
fn a_prepare_counts_only_for_the_replica_whose_link_it_came_over() {
    let mut c = Cluster::new(1);
    c.filter = Some(Box::new(|_, _, m| {
        if let AgreementMessage::Prepare(p) = m {
            p.replica = (p.replica + 1) % 4;
        }
        true
    }));
    c.submit(request(0, 1, b"t"));
    c.fire_all(TimerKind::Batch);
    c.run();
    let rejected: u64 = c.replicas.iter().map(|r| r.stats().messages_rejected).sum();
    assert_eq!(rejected, 9, "prepares from 3 backups to 3 others each");
    assert!(c.replicas.iter().all(|r| r.stats().batches_delivered == 0));
    // The same run with honest links commits.
    let mut c = Cluster::new(1);
    c.submit(request(0, 1, b"t"));
    c.fire_all(TimerKind::Batch);
    c.run();
    assert!(c.replicas.iter().all(|r| r.stats().batches_delivered == 1));
}

#[test]
fn lagging_replica_catches_up_from_a_stable_checkpoint_beyond_its_window() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    c.silent.insert(3);
    for id in 1..=20 {
        c.submit(request(0, id, b"w"));
    }
    for _ in 0..6 {
        c.report_checkpoints();
        c.settle();
    }
    assert_eq!(c.replicas[0].low_watermark(), 20);
    // Replica 3 comes back far behind: its window is (0, 8].
    c.silent.remove(&3);
    for id in 21..=28 {
        c.submit(request(0, id, b"v"));
    }
    for _ in 0..6 {
        c.report_checkpoints();
        c.settle();
    }
    let r3 = &c.replicas[3];
    assert!(r3.stats().messages_outside_window > 0);
    assert_eq!(
        r3.low_watermark(),
        28,
        "checkpoints beyond its window made it jump"
    );
    assert_eq!(r3.last_delivered(), 28);
    assert_eq!(r3.pending_requests(), 0);
    // It was told to fetch state, with the digest the others vouched for.
    let expected = c.history_digest(0, 28);
    assert_eq!(c.transfers[3].last(), Some(&(28, expected)));
    assert!(c.delivered[3].is_empty());
    // From here on it takes part like everyone else.
    for id in 29..=32 {
        c.submit(request(1, id, b"u"));
    }
    c.settle();
    c.check_invariants();
    assert_eq!(c.delivered[3].len(), 4);
    assert_eq!(c.delivered[3][0].0.sequence, 29);
    assert_eq!(c.delivered[3][..], c.delivered[0][28..]);
}

/// TOCS §4.5.2: a replica whose own timer has not fired joins a view change that f+1
/// others started, so one slow timer cannot stall the cluster.
#[test]
fn f_plus_one_view_changes_pull_a_replica_along() {
    let mut c = Cluster::new(1);
    c.silent.insert(0);
    c.submit(request(0, 1, b"x"));
    c.settle();
    // Only replicas 2 and 3 time out; replica 1 (the next primary) has not.
    for i in [2u32, 3] {
        c.timers[i as usize].remove(&TimerKind::ViewChange);
        c.input(i, Input::Timer(TimerKind::ViewChange));
    }
    c.settle();
    c.check_invariants();
    for i in 1..4 {
        assert_eq!(c.replicas[i].view(), 1);
        assert_eq!(c.delivered_requests(i), vec![(0, 1)]);
    }
    assert_eq!(c.replicas[1].stats().view_changes_started, 1);
}

#[test]
fn commit_quorum_alone_commits_a_slot_whose_pre_prepare_was_missed() {
    let mut c = Cluster::new(1);
    c.filter = Some(Box::new(|_, to, m| {
        to != 3
            || !matches!(
                m,
                AgreementMessage::PrePrepare { .. } | AgreementMessage::Prepare(_)
            )
    }));
    for id in 1..=4 {
        c.submit(request(0, id, b"m"));
    }
    c.settle();
    c.check_invariants();
    assert_eq!(c.delivered[3].len(), 1);
    assert_eq!(c.delivered[3], c.delivered[0]);
    assert_eq!(c.replicas[3].stats().batches_fetched, 1);
}

/// Seeds to run: 24 by default; `AGREEMENT_SEEDS=5000` for a long soak by hand.
fn seeds() -> u64 {
    std::env::var("AGREEMENT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

/// Fixed seeds: messages reordered within a window of 6 and duplicated 10% of the time;
/// the primary goes silent half-way. One order, every request delivered on the correct
/// replicas. A failing seed replays exactly.
#[test]
fn seeded_reordering_and_duplication_keep_one_order() {
    for seed in 0..seeds() {
        let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 2);
        c.schedule = Some(common::Schedule::new(seed, 6, 100, 0));
        for id in 1..=6 {
            c.submit(request(id % 3, id, b"p1"));
        }
        c.settle();
        c.report_checkpoints();
        c.settle();
        c.check_invariants();
        c.silent.insert(0);
        for id in 7..=12 {
            c.submit(request(id % 3, id, b"p2"));
        }
        c.settle();
        for _ in 0..4 {
            if (1..4).all(|i| c.replicas[i].pending_requests() == 0) {
                break;
            }
            c.fire_all(TimerKind::ViewChange);
            c.settle();
            c.report_checkpoints();
            c.settle();
        }
        c.check_invariants();
        for i in 1..4 {
            let mut got = c.delivered_requests(i);
            got.sort();
            // Exactly once: no correct primary proposes a request twice.
            if got.len() != 12 {
                for r in &c.replicas {
                    eprintln!(
                        "{r:?} pending={} stats={:?} timers={:?}",
                        r.pending_requests(),
                        r.stats(),
                        c.timers[r.id() as usize]
                    );
                }
            }
            assert_eq!(got.len(), 12, "seed {seed} replica {i}: {got:?}");
        }
    }
}

/// Fixed seeds with 5% of messages lost as well: liveness needs retransmission, which
/// this core leaves to the runtime, but safety must hold whatever is lost.
#[test]
fn seeded_loss_never_breaks_safety() {
    for seed in 0..seeds() {
        let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 2);
        c.schedule = Some(common::Schedule::new(seed, 8, 50, 50));
        for round in 0..3u64 {
            for id in 1..=6 {
                c.submit(request(id % 3, round * 6 + id, b"l"));
            }
            c.settle();
            c.fire_all(TimerKind::ViewChange);
            c.settle();
            c.report_checkpoints();
            c.settle();
            c.check_invariants();
        }
    }
}

/// Fixed seeds: 5% loss and reordering while requests flow, then the network heals.
/// With timers firing (view changes re-propose what was prepared, fetches bodies) and
/// checkpoints (lagging replicas jump by state transfer), every request is ordered and
/// all replicas end at the same sequence.
#[test]
fn seeded_loss_then_heal_orders_every_request() {
    for seed in 0..seeds() {
        let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 2);
        c.schedule = Some(common::Schedule::new(seed, 8, 50, 50));
        for id in 1..=12 {
            c.submit(request(id % 3, id, b"h"));
        }
        c.settle();
        if let Some(s) = c.schedule.as_mut() {
            s.drop_per_mille = 0;
        }
        for _ in 0..12 {
            // Status timers are the shorter ones: lost messages are retransmitted
            // first, and only what that cannot fix costs a view change.
            c.fire_all(TimerKind::Status);
            c.settle();
            if (0..4).all(|i| c.replicas[i].pending_requests() == 0) {
                break;
            }
            c.fire_all(TimerKind::ViewChange);
            c.settle();
            c.report_checkpoints();
            c.settle();
        }
        c.check_invariants();
        // Every request ordered, and none twice: whoever delivered a sequence delivered
        // the same batch (check_invariants), so count over the longest history.
        let longest = (0..4).max_by_key(|i| c.delivered[*i].len()).unwrap_or(0);
        let mut all = c.delivered_requests(longest);
        all.sort();
        let state: Vec<_> = c
            .replicas
            .iter()
            .map(|r| {
                (
                    r.view(),
                    r.status(),
                    r.last_delivered(),
                    r.pending_requests(),
                )
            })
            .collect();
        assert_eq!(all.len(), 12, "seed {seed}: {state:?}");
        let last = c.replicas[0].last_delivered();
        assert!(
            c.replicas.iter().all(|r| r.last_delivered() == last),
            "seed {seed}: {state:?}"
        );
    }
}

/// A view change after a stable checkpoint: view-change messages carry the checkpoint
/// proof, the new view starts above it, and a batch committed at only some replicas
/// just above it is kept.
#[test]
fn view_change_after_a_stable_checkpoint_starts_above_it() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    for id in 1..=8 {
        c.submit(request(0, id, b"k"));
    }
    c.settle();
    c.report_checkpoints();
    c.settle();
    assert!(c
        .replicas
        .iter()
        .all(|r| r.low_watermark() == 8 && r.log_len() == 0));
    // Sequence 9 commits at the primary and replica 1 only (commits to 2, 3 are lost).
    c.filter = Some(Box::new(|_, to, m| {
        !(to >= 2 && matches!(m, AgreementMessage::Commit(_)))
    }));
    c.submit(request(0, 9, b"k"));
    c.settle();
    assert_eq!(c.replicas[1].last_delivered(), 9);
    assert_eq!(c.replicas[2].last_delivered(), 8);
    c.filter = None;
    c.silent.insert(0);
    for id in 10..=11 {
        c.submit(request(1, id, b"k"));
    }
    c.settle();
    c.fire_all(TimerKind::ViewChange);
    c.settle();
    c.check_invariants();
    for i in 1..4 {
        let r = &c.replicas[i];
        assert_eq!(r.view(), 1);
        assert_eq!(r.low_watermark(), 8);
        assert_eq!(r.last_delivered(), 11, "replica {i}");
        assert_eq!(c.delivered_requests(i).len(), 11);
        assert_eq!(c.delivered[i][8].0, c.delivered[1][8].0, "sequence 9 kept");
    }
}

/// A cluster restarted as a whole remembers nothing above its last stable checkpoint
/// (here: nothing), while execution resumed further on, at sequence 6 — not a multiple
/// of K = 4 (its restart checkpoint). Fed that stable execution checkpoint, the
/// replicas make it their stable checkpoint, skip to it (a state transfer, which the
/// execution replicas need not do) and order new requests from 7 on: sequences 1..=6
/// are never assigned again.
#[test]
fn a_restart_checkpoint_off_the_interval_moves_the_order_past_it() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    assert_eq!(c.replicas[0].config().checkpoint_interval, 4);
    let digest = palisade_wire::agreement::Digest([6; 32]);
    c.execution_checkpoint(0..4, 6, digest);
    // The runtime admits requests only once the checkpoint is stable (it clears
    // pending requests: `agreement_node`'s `awaiting_execution`).
    c.run();
    assert!(c.replicas.iter().all(|r| r.low_watermark() == 6));
    for id in 1..=3 {
        c.submit(request(0, id, b"w"));
    }
    c.settle();
    c.check_invariants();
    for i in 0..4 {
        let r = &c.replicas[i];
        assert_eq!(r.low_watermark(), 6, "replica {i}");
        assert_eq!(r.last_delivered(), 9, "replica {i}");
        assert_eq!(c.transfers[i], vec![(6, digest)], "replica {i}");
        let sequences: Vec<u64> = c.delivered[i].iter().map(|d| d.0.sequence).collect();
        assert_eq!(sequences, vec![7, 8, 9], "replica {i}");
    }
}

/// The primary alone learned of the execution checkpoint: it never proposes at or
/// below it, even before 2f+1 replicas made it stable.
#[test]
fn a_primary_fed_an_execution_checkpoint_never_proposes_below_it() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    c.execution_checkpoint([0], 3, palisade_wire::agreement::Digest([3; 32]));
    c.submit(request(0, 1, b"w"));
    c.settle();
    assert_eq!(c.replicas[0].stats().batches_proposed, 1);
    // Every replica committed 4 but waits for 1..=3, which nobody will ever propose,
    // until 2f+1 of them make the checkpoint at 3 stable.
    assert!(c.delivered.iter().all(|d| d.is_empty()));
    c.execution_checkpoint(1..4, 3, palisade_wire::agreement::Digest([3; 32]));
    c.settle();
    c.check_invariants();
    assert_delivered(&c, &[4]);
}

/// Replicas restarted on used state (`Replica::await_execution(4)`: their runtime
/// recorded a stable checkpoint at 4) admit requests but, as primary, propose nothing
/// until an execution checkpoint at or above 4 is their stable checkpoint: one below
/// does not do, one at 5 (a restart checkpoint) does, and ordering resumes at 6.
#[test]
fn a_replica_awaiting_execution_proposes_only_after_its_checkpoint_is_stable() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    for r in c.replicas.iter_mut() {
        r.await_execution(4);
    }
    c.submit(request(0, 1, b"w"));
    c.settle();
    assert_eq!(c.replicas[0].stats().batches_proposed, 0);
    assert_eq!(c.replicas[0].pending_requests(), 1);
    let feed = |c: &mut Cluster, sequence: u64| {
        c.execution_checkpoint(
            0..4,
            sequence,
            palisade_wire::agreement::Digest([sequence as u8; 32]),
        );
        c.settle();
    };
    feed(&mut c, 2);
    assert_eq!(c.replicas[0].stats().batches_proposed, 0);
    assert!(c.replicas[0].is_awaiting_execution());
    feed(&mut c, 5);
    assert!(c.replicas.iter().all(|r| !r.is_awaiting_execution()));
    // Skipping to a stable checkpoint beyond what was delivered forgets pending
    // requests (they may be in the skipped batches): the client retransmits.
    c.submit(request(0, 1, b"w"));
    c.settle();
    c.check_invariants();
    assert_delivered(&c, &[6]);
}

/// The runtime's own record of the last stable checkpoint (`Input::RecordedCheckpoint`)
/// becomes stable among the replicas, but a restarted primary still waits: the
/// execution replicas may be past it. Only their restart checkpoint (at 5 here) lets
/// ordering resume, after it; taking the record for it assigned 5 again.
#[test]
fn the_recorded_checkpoint_alone_does_not_end_the_wait_for_execution() {
    let mut c = Cluster::with(1, |cfg| cfg.max_batch_requests = 1);
    let recorded = palisade_wire::agreement::Digest([4; 32]);
    for r in c.replicas.iter_mut() {
        r.await_execution(4);
    }
    for i in 0..4 {
        c.input(
            i,
            Input::RecordedCheckpoint {
                sequence: 4,
                state_digest: recorded,
            },
        );
    }
    c.submit(request(0, 1, b"w"));
    c.settle();
    assert!(c.replicas.iter().all(|r| r.low_watermark() == 4));
    assert!(c.replicas.iter().all(|r| r.is_awaiting_execution()));
    assert_eq!(c.replicas[0].stats().batches_proposed, 0);
    c.execution_checkpoint(0..4, 5, palisade_wire::agreement::Digest([5; 32]));
    c.settle();
    assert!(c.replicas.iter().all(|r| !r.is_awaiting_execution()));
    c.submit(request(0, 1, b"w"));
    c.settle();
    c.check_invariants();
    assert_delivered(&c, &[6]);
}

/// Every replica delivered exactly the batches at `sequences`, in order.
fn assert_delivered(c: &Cluster, sequences: &[u64]) {
    for (i, delivered) in c.delivered.iter().enumerate() {
        let got: Vec<u64> = delivered.iter().map(|d| d.0.sequence).collect();
        assert_eq!(got, sequences, "replica {i}");
    }
}
