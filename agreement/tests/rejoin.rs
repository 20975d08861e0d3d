//! A backup that an equivocating primary showed a different batch (the simulator's
//! `--seed 1 --scenario byzantine-primary` run): it must learn the batch the others
//! committed from their commit certificates (TOCS §4.2), and, if it already suspected
//! the primary alone, rejoin the view the others still run instead of staying in a
//! view change forever (TOCS §4.5.2 needs f+1 to start one).

// Test support: the equivocation filter below is a helper, not a #[test] function.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{replica_key, request, Cluster};
use palisade_agreement::{Status, TimerKind};
use palisade_wire::agreement::{AgreementMessage, Batch, Commit, PrePrepare, Signed};

/// The equivocation of the simulator's Byzantine primary, as a network filter: replica 1
/// gets, for sequence 1, a batch whose timestamp differs by 1 ns (another digest, a
/// timestamp it accepts) and the primary's commit for that other digest. Everyone else
/// sees the real batch. Returns the filter's record of every prepare or commit replica
/// 1 sent, with its view.
fn equivocate_to_replica_1(c: &mut Cluster) -> Rc<RefCell<Vec<(u64, &'static str)>>> {
    let key = replica_key(0);
    let alternates: Rc<RefCell<Vec<(palisade_wire::agreement::Digest, Batch)>>> = Rc::default();
    let votes: Rc<RefCell<Vec<(u64, &'static str)>>> = Rc::default();
    let record = votes.clone();
    c.filter = Some(Box::new(move |from, to, m| {
        if from == 1 {
            match m {
                AgreementMessage::Prepare(p) => record.borrow_mut().push((p.view, "prepare")),
                AgreementMessage::Commit(c) => record.borrow_mut().push((c.message.view, "commit")),
                _ => {}
            }
        }
        if from != 0 || to != 1 {
            return true;
        }
        match m {
            AgreementMessage::PrePrepare { pre_prepare, batch }
                if pre_prepare.message.sequence == 1 && pre_prepare.message.view == 0 =>
            {
                let mut alt = batch.clone();
                alt.timestamp.nanos += 1;
                let digest = alt.digest().unwrap();
                alternates
                    .borrow_mut()
                    .push((pre_prepare.message.digest, alt.clone()));
                *pre_prepare = Signed::sign(
                    &key,
                    PrePrepare {
                        timestamp: alt.timestamp,
                        digest,
                        ..pre_prepare.message.clone()
                    },
                )
                .unwrap();
                *batch = alt;
            }
            AgreementMessage::Commit(commit)
                if commit.message.replica == 0 && commit.message.sequence == 1 =>
            {
                let alts = alternates.borrow();
                if let Some((_, alt)) = alts.iter().find(|(d, _)| *d == commit.message.digest) {
                    *commit = Signed::sign(
                        &key,
                        Commit {
                            digest: alt.digest().unwrap(),
                            ..commit.message.clone()
                        },
                    )
                    .unwrap();
                }
            }
            _ => {}
        }
        true
    }));
    votes
}

#[test]
fn backup_shown_another_batch_learns_the_committed_one_from_retransmitted_commits() {
    let mut c = Cluster::new(1);
    equivocate_to_replica_1(&mut c);
    for id in 1..=4 {
        c.submit(request(0, id, b"w"));
    }
    c.settle();
    // 0, 2 and 3 committed the real batch; replica 1 holds commits of 2 and 3 for it and
    // the primary's conflicting one: no quorum yet.
    for i in [0, 2, 3] {
        assert_eq!(c.delivered[i].len(), 1, "replica {i}");
    }
    assert!(c.delivered[1].is_empty());
    // Its status message makes the others retransmit their certificates, which hold the
    // primary's commit for the real digest: evidence despite the conflict.
    assert_eq!(c.fire_all(TimerKind::Status), 1);
    c.settle();
    c.check_invariants();
    assert_eq!(c.delivered[1], c.delivered[0]);
    assert!(c.replicas[1].stats().votes_conflicting >= 1);
    assert_eq!(c.replicas[1].stats().batches_fetched, 1);
}

#[test]
fn backup_alone_in_a_view_change_rejoins_the_view_the_others_commit_in() {
    let mut c = Cluster::new(1);
    let votes = equivocate_to_replica_1(&mut c);
    for id in 1..=4 {
        c.submit(request(0, id, b"w"));
    }
    c.settle();
    assert!(c.delivered[1].is_empty());
    // Replica 1 alone suspects the primary: a view change nobody supports.
    c.timers[1].remove(&TimerKind::ViewChange);
    c.input(1, palisade_agreement::Input::Timer(TimerKind::ViewChange));
    c.settle();
    assert_eq!(c.replicas[1].view(), 1);
    assert_eq!(c.replicas[1].status(), Status::ViewChange);
    for i in [0, 2, 3] {
        assert_eq!(c.replicas[i].view(), 0, "replica {i} stays in view 0");
    }
    // The retransmitted certificate of view 0 shows 2f+1 replicas still commit there.
    votes.borrow_mut().clear();
    c.fire_all(TimerKind::Status);
    c.settle();
    c.check_invariants();
    assert_eq!(c.replicas[1].view(), 0);
    assert_eq!(c.replicas[1].status(), Status::Normal);
    assert_eq!(c.replicas[1].stats().views_rejoined, 1);
    assert!(!c.replicas[1].may_vote());
    assert_eq!(c.delivered[1], c.delivered[0]);
    // It keeps up with view 0 from the others' commits alone and never votes there: its
    // view-change for view 1 stays truthful.
    for id in 5..=8 {
        c.submit(request(1, id - 4, b"v"));
    }
    c.settle();
    c.check_invariants();
    assert_eq!(c.delivered[1], c.delivered[0]);
    assert_eq!(c.delivered[1].len(), 2);
    assert!(
        votes.borrow().iter().all(|(view, _)| *view >= 1),
        "voted in view 0 after its view-change: {:?}",
        votes.borrow()
    );
    // When the others do suspect the primary, view 1 forms (replica 1 is its primary and
    // counts its stored view-change) and everything is delivered everywhere.
    c.silent.insert(0);
    c.submit(request(2, 1, b"after"));
    c.settle();
    for i in [2u32, 3] {
        c.timers[i as usize].remove(&TimerKind::ViewChange);
        c.input(i, palisade_agreement::Input::Timer(TimerKind::ViewChange));
    }
    c.settle();
    c.check_invariants();
    for i in 1..4 {
        assert_eq!(c.replicas[i].view(), 1, "replica {i}");
        assert_eq!(c.replicas[i].status(), Status::Normal);
        assert!(c.delivered_requests(i).contains(&(2, 1)), "replica {i}");
    }
    assert!(c.replicas[1].may_vote());
}

#[test]
fn idle_backup_alone_in_a_view_change_rejoins_from_status_answers() {
    let mut c = Cluster::new(1);
    for id in 1..=4 {
        c.submit(request(0, id, b"w"));
    }
    c.settle();
    // Everything is delivered; replica 1 alone suspects the primary. With nothing left
    // to commit, no commit certificate will ever show it the others' view.
    c.input(1, palisade_agreement::Input::Timer(TimerKind::ViewChange));
    c.settle();
    assert_eq!(c.replicas[1].status(), Status::ViewChange);
    assert_eq!(c.replicas[1].view(), 1);
    // Its status (view 1) makes the others answer with theirs (view 0): 2f peers in
    // view 0 and no support for view 1, so it rejoins view 0 without voting there.
    assert_eq!(c.fire_all(TimerKind::Status), 1);
    c.settle();
    assert_eq!(c.replicas[1].view(), 0);
    assert_eq!(c.replicas[1].status(), Status::Normal);
    assert_eq!(c.replicas[1].stats().views_rejoined, 1);
    assert!(!c.replicas[1].may_vote());
    for i in [0, 2, 3] {
        assert_eq!(c.replicas[i].view(), 0);
    }
    // And it keeps delivering what the others commit.
    c.submit(request(1, 1, b"more"));
    c.settle();
    c.check_invariants();
    assert_eq!(c.delivered_requests(1), c.delivered_requests(0));
    assert_eq!(c.delivered[1].len(), 2);
}

#[test]
fn replica_restarted_in_view_0_asks_for_and_installs_the_current_new_view() {
    let mut c = Cluster::new(1);
    c.silent.insert(0);
    c.submit(request(0, 1, b"x"));
    c.settle();
    c.fire_all(TimerKind::ViewChange);
    c.settle();
    for i in 1..4 {
        assert_eq!(c.replicas[i].view(), 1);
    }
    // Replica 0 restarts without a log (a fresh core in view 0) and gets work.
    c.replicas[0] = palisade_agreement::Replica::new(common::config(1, 0), replica_key(0)).unwrap();
    c.timers[0].clear();
    c.silent.remove(&0);
    c.input(0, palisade_agreement::Input::Tick(common::time(1_000)));
    // The first vote of view 1 it sees makes it ask that peer (a status message saying
    // view 0), which answers with view 1's new-view; it checks and installs it. No
    // timer fires.
    c.submit(request(1, 1, b"y"));
    c.settle();
    assert_eq!(c.replicas[0].view(), 1);
    assert_eq!(c.replicas[0].stats().new_views_installed, 1);
    assert_eq!(c.replicas[0].status(), Status::Normal);
    assert!(c.replicas[0].may_vote());
    c.submit(request(2, 1, b"z"));
    c.settle();
    for i in 1..4 {
        assert!(c.delivered_requests(i).contains(&(2, 1)), "replica {i}");
    }
    assert!(c.delivered_requests(0).contains(&(2, 1)));
}

#[test]
fn replica_restarted_into_an_idle_cluster_catches_up_from_its_first_clock_reading() {
    let mut c = Cluster::new(1);
    c.silent.insert(0);
    c.submit(request(0, 1, b"x"));
    c.settle();
    c.fire_all(TimerKind::ViewChange);
    c.settle();
    c.submit(request(1, 1, b"y"));
    c.settle();
    assert_eq!(c.delivered[1].len(), 2);
    // Replica 0 restarts without a log; nothing else happens in the cluster.
    c.replicas[0] = palisade_agreement::Replica::new(common::config(1, 0), replica_key(0)).unwrap();
    c.timers[0].clear();
    c.silent.remove(&0);
    c.input(0, palisade_agreement::Input::Tick(common::time(1_000)));
    c.settle();
    // Its announcement brought it view 1's new-view and the committed batches.
    assert_eq!(c.replicas[0].view(), 1);
    assert_eq!(c.replicas[0].status(), Status::Normal);
    assert_eq!(c.delivered_requests(0), c.delivered_requests(1));
    c.check_invariants();
}
