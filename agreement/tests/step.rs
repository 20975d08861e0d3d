//! Exact outputs of single steps of one replica, and what it refuses.

// Fixture helpers outside #[test] functions: a broken fixture should panic.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    batch_at, client_key, config, msg, pre_prepare, replica, replica_key, request,
    signed_pre_prepare, time,
};
use palisade_agreement::{ConfigError, Input, Output, Replica, Status, TimerKind};
use palisade_wire::agreement::{
    AgreementMessage, Batch, Checkpoint, Commit, Digest, NewView, PrePrepare, PrePrepared, Prepare,
    Request, Signed, ViewChange, MAX_REQUEST_PAYLOAD,
};
use palisade_wire::fs::Timestamp;

/// A prepare: unsigned, authenticated by the link it arrives on (`msg`'s sender).
fn prepare(replica: u32, view: u64, sequence: u64, digest: Digest) -> Prepare {
    Prepare {
        view,
        sequence,
        digest,
        replica,
    }
}

/// A checkpoint naming `replica`, signed with `signer`'s key (the same replica, unless
/// the test forges).
fn checkpoint(signer: usize, replica: u32, sequence: u64) -> Signed<Checkpoint> {
    Signed::sign(
        &replica_key(signer),
        Checkpoint {
            sequence,
            state_digest: Digest([0; 32]),
            replica,
        },
    )
    .unwrap()
}

fn commit(replica: u32, sequence: u64, digest: Digest) -> Signed<Commit> {
    Signed::sign(
        &replica_key(replica as usize),
        Commit {
            view: 0,
            sequence,
            digest,
            replica,
        },
    )
    .unwrap()
}

#[test]
fn normal_case_step_by_step_at_a_backup() {
    let mut r = replica(1, |_| {});
    let batch = batch_at(time(1_000), vec![request(0, 1, b"op")]);
    let d = batch.digest().unwrap();
    // A valid pre-prepare from the primary: exactly one broadcast prepare, and the
    // request timer starts (TOCS §4.4) because a batch now waits for delivery.
    let out = r.step(msg(0, pre_prepare(0, 0, 1, &batch)));
    assert_eq!(
        out,
        vec![
            Output::Broadcast(AgreementMessage::Prepare(prepare(1, 0, 1, d))),
            Output::SetTimer {
                kind: TimerKind::ViewChange,
                after: Duration::from_millis(500)
            },
            Output::SetTimer {
                kind: TimerKind::Status,
                after: Duration::from_millis(100)
            },
        ]
    );
    // One more prepare (from replica 2) makes 2f: prepared, exactly one commit.
    let out = r.step(msg(2, AgreementMessage::Prepare(prepare(2, 0, 1, d))));
    assert_eq!(
        out,
        vec![Output::Broadcast(AgreementMessage::Commit(commit(1, 1, d)))]
    );
    // A third prepare changes nothing.
    assert!(r
        .step(msg(3, AgreementMessage::Prepare(prepare(3, 0, 1, d))))
        .is_empty());
    // Commits from 0 and 2 complete 2f+1 with our own: deliver, then nothing waits.
    assert!(r
        .step(msg(0, AgreementMessage::Commit(commit(0, 1, d))))
        .is_empty());
    let out = r.step(msg(2, AgreementMessage::Commit(commit(2, 1, d))));
    assert_eq!(out.len(), 3);
    let Output::Deliver {
        batch: ob,
        certificate,
    } = &out[0]
    else {
        panic!("expected a delivery, got {out:?}");
    };
    assert_eq!(ob.sequence, 1);
    assert_eq!(ob.batch, batch);
    let keys: Vec<_> = (0..4).map(|i| replica_key(i).verifying_key()).collect();
    certificate.verify(ob, &keys, 1).unwrap();
    assert_eq!(
        out[1..],
        [
            Output::CancelTimer(TimerKind::ViewChange),
            Output::CancelTimer(TimerKind::Status)
        ]
    );
    assert_eq!(r.last_delivered(), 1);
    // The same request again is a replay: dropped and counted.
    assert!(r
        .step(Input::ClientRequest(request(0, 1, b"op")))
        .is_empty());
    assert_eq!(r.stats().requests_duplicate, 1);
    // A late commit of the fourth replica changes nothing.
    assert!(r
        .step(msg(3, AgreementMessage::Commit(commit(3, 1, d))))
        .is_empty());
}

/// The view-change message among `out`, if any.
fn view_change_in(out: &[Output]) -> Option<palisade_wire::agreement::ViewChange> {
    out.iter().find_map(|o| match o {
        Output::Broadcast(AgreementMessage::ViewChange(vc)) => Some(vc.message.clone()),
        _ => None,
    })
}

/// `pre_prepare` with its signature broken.
fn with_bad_signature(mut message: AgreementMessage) -> AgreementMessage {
    if let AgreementMessage::PrePrepare { pre_prepare, .. } = &mut message {
        pre_prepare.signature.0[5] ^= 0xff;
    }
    message
}

/// A backup prepares on a pre-prepare that came over the primary's own link at once and
/// checks the primary's signature after (TOCS §3.2): before it commits, and before the
/// pre-prepare enters `P` or `Q`.
#[test]
fn a_pre_prepare_over_the_primarys_link_is_prepared_at_once_and_checked_before_the_commit() {
    let mut r = replica(1, |_| {});
    let batch = batch_at(time(1_000), vec![request(0, 1, b"op")]);
    let d = batch.digest().unwrap();
    let out = r.step(msg(0, pre_prepare(0, 0, 1, &batch)));
    assert!(
        out.contains(&Output::Broadcast(AgreementMessage::Prepare(prepare(
            1, 0, 1, d
        ))))
    );
    assert!(r.has_deferred_checks());
    // The check itself sends nothing while the slot has not prepared...
    let out = r.step(Input::CheckDeferred);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Broadcast(AgreementMessage::Commit(_)))));
    assert!(!r.has_deferred_checks());
    // ...and the second prepare makes the commit.
    let out = r.step(msg(2, AgreementMessage::Prepare(prepare(2, 0, 1, d))));
    assert!(out.iter().any(
        |o| matches!(o, Output::Broadcast(AgreementMessage::Commit(c)) if c.message.digest == d)
    ));
    // A view change now reports it in `P` and in `Q`.
    let out = r.step(Input::Timer(TimerKind::ViewChange));
    let vc = view_change_in(&out).expect("a view change");
    assert_eq!(vc.prepared.len(), 1);
    assert_eq!(vc.prepared[0].message.digest, d);
    assert!(vc
        .pre_prepared
        .iter()
        .any(|q| q.digest == d && q.sequence == 1));
    assert_eq!(r.stats().pre_prepares_forged, 0);
}

/// A pre-prepare with a bad signature: relayed by another replica it is refused at once;
/// over the primary's own link it is prepared, then found out when the second prepare
/// comes (the check runs there if `Input::CheckDeferred` has not yet): no commit, no
/// `P` or `Q` entry, and the replica moves to the next view.
#[test]
fn a_forged_pre_prepare_over_the_primarys_link_is_never_committed_and_replaces_the_primary() {
    let mut r = replica(1, |_| {});
    let batch = batch_at(time(1_000), vec![request(0, 1, b"op")]);
    let d = batch.digest().unwrap();
    let forged = with_bad_signature(pre_prepare(0, 0, 1, &batch));
    assert!(r.step(msg(2, forged.clone())).is_empty());
    assert_eq!(r.stats().messages_invalid, 1);
    assert!(!r.has_deferred_checks());

    let out = r.step(msg(0, forged));
    assert!(
        out.contains(&Output::Broadcast(AgreementMessage::Prepare(prepare(
            1, 0, 1, d
        ))))
    );
    let out = r.step(msg(2, AgreementMessage::Prepare(prepare(2, 0, 1, d))));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Broadcast(AgreementMessage::Commit(_)))));
    assert_eq!(r.stats().pre_prepares_forged, 1);
    assert!(!r.has_deferred_checks());
    let vc = view_change_in(&out).expect("the replica suspects the primary at once");
    assert_eq!(vc.new_view, 1);
    assert!(vc.prepared.is_empty());
    assert!(vc.pre_prepared.is_empty());
    assert_eq!(r.status(), Status::ViewChange);
    assert_eq!(r.last_delivered(), 0);
}

/// With `link_authenticated_commits` (`separate`), a commit over its signer's own link
/// counts without its signature; relayed by another replica, or with the setting off,
/// its signature decides.
#[test]
fn a_commit_over_its_signers_link_counts_without_its_signature_where_configured() {
    let prepared = |link_authenticated: bool| {
        let mut r = replica(1, |c| c.link_authenticated_commits = link_authenticated);
        let batch = batch_at(time(1_000), vec![request(0, 1, b"op")]);
        let d = batch.digest().unwrap();
        r.step(msg(0, pre_prepare(0, 0, 1, &batch)));
        r.step(msg(2, AgreementMessage::Prepare(prepare(2, 0, 1, d))));
        (r, d)
    };
    let forged = |replica: u32, d: Digest| {
        let mut c = commit(replica, 1, d);
        c.signature.0[7] ^= 0xff;
        AgreementMessage::Commit(c)
    };
    let delivered = |out: &[Output]| out.iter().any(|o| matches!(o, Output::Deliver { .. }));

    let (mut r, d) = prepared(true);
    // Replica 3 relays replica 0's commit with a bad signature: refused.
    assert!(r.step(msg(3, forged(0, d))).is_empty());
    assert_eq!(r.stats().messages_invalid, 1);
    // Over their own links, replicas 0 and 2 complete 2f+1 with this replica's own
    // commit, bad signatures and all: the link authenticated them.
    assert!(r.step(msg(0, forged(0, d))).is_empty());
    assert!(delivered(&r.step(msg(2, forged(2, d)))));
    assert_eq!(r.last_delivered(), 1);

    let (mut r, d) = prepared(false);
    assert!(r.step(msg(0, forged(0, d))).is_empty());
    assert!(r.step(msg(2, forged(2, d))).is_empty());
    assert_eq!(r.stats().messages_invalid, 2);
    assert_eq!(r.last_delivered(), 0);
    // Good signatures still commit.
    assert!(r
        .step(msg(0, AgreementMessage::Commit(commit(0, 1, d))))
        .is_empty());
    assert!(delivered(
        &r.step(msg(2, AgreementMessage::Commit(commit(2, 1, d))))
    ));
}

/// With `quiet_votes`, replica 3 (the quiet one in view 0, f = 1) prepares and commits
/// without sending either while replicas 0, 1 and 2 make progress; when a sequence stays
/// uncommitted for a status interval, it sends what it withheld and votes openly after.
#[test]
fn a_quiet_backup_keeps_its_votes_until_progress_needs_them() {
    let mut r = replica(3, |c| c.quiet_votes = true);
    let votes = |out: &[Output]| -> Vec<AgreementMessage> {
        out.iter()
            .filter_map(|o| match o {
                Output::Broadcast(
                    m @ (AgreementMessage::Prepare(_) | AgreementMessage::Commit(_)),
                ) => Some(m.clone()),
                _ => None,
            })
            .collect()
    };
    // Sequence 1 commits among the others: replica 3 prepares and commits in silence
    // (its own commit counts here, as anyone's does where it arrives).
    let b1 = batch_at(time(1_000), vec![request(0, 1, b"a")]);
    let d1 = b1.digest().unwrap();
    assert!(votes(&r.step(msg(0, pre_prepare(0, 0, 1, &b1)))).is_empty());
    r.step(msg(1, AgreementMessage::Prepare(prepare(1, 0, 1, d1))));
    let out = r.step(msg(2, AgreementMessage::Prepare(prepare(2, 0, 1, d1))));
    assert!(votes(&out).is_empty(), "{out:?}");
    r.step(msg(0, AgreementMessage::Commit(commit(0, 1, d1))));
    let out = r.step(msg(1, AgreementMessage::Commit(commit(1, 1, d1))));
    assert!(out.iter().any(|o| matches!(o, Output::Deliver { .. })));
    assert_eq!(r.stats().votes_withheld, 2);
    // The status timer with nothing uncommitted that it withheld: still quiet.
    assert!(votes(&r.step(Input::Timer(TimerKind::Status))).is_empty());
    // Sequence 2: replica 2 is silent, so only 3's votes can complete the quorums.
    let b2 = batch_at(time(1_000), vec![request(0, 2, b"b")]);
    let d2 = b2.digest().unwrap();
    assert!(votes(&r.step(msg(0, pre_prepare(0, 0, 2, &b2)))).is_empty());
    assert!(votes(&r.step(msg(1, AgreementMessage::Prepare(prepare(1, 0, 2, d2))))).is_empty());
    assert_eq!(
        r.stats().votes_withheld,
        4,
        "prepared with its own prepare: commit withheld"
    );
    assert_eq!(
        votes(&r.step(Input::Timer(TimerKind::Status))),
        vec![
            AgreementMessage::Prepare(prepare(3, 0, 2, d2)),
            AgreementMessage::Commit(commit(3, 2, d2)),
        ]
    );
    assert_eq!(r.stats().quiet_speak_ups, 1);
    // From now on it votes at once.
    let b3 = batch_at(time(1_000), vec![request(0, 3, b"c")]);
    let d3 = b3.digest().unwrap();
    assert_eq!(
        votes(&r.step(msg(0, pre_prepare(0, 0, 3, &b3)))),
        vec![AgreementMessage::Prepare(prepare(3, 0, 3, d3))]
    );
}

/// Without `quiet_votes`, or in a view where it is one of the 2f voting backups, replica
/// 3 sends its prepare at once.
#[test]
fn only_the_quiet_role_withholds_votes() {
    let b = batch_at(time(1_000), vec![request(0, 1, b"a")]);
    let d = b.digest().unwrap();
    let mut r = replica(3, |_| {});
    let out = r.step(msg(0, pre_prepare(0, 0, 1, &b)));
    assert!(
        out.contains(&Output::Broadcast(AgreementMessage::Prepare(prepare(
            3, 0, 1, d
        ))))
    );
    // Replica 2 in view 0 is a voting backup even with quiet votes on.
    let mut r = replica(2, |c| c.quiet_votes = true);
    let out = r.step(msg(0, pre_prepare(0, 0, 1, &b)));
    assert!(
        out.contains(&Output::Broadcast(AgreementMessage::Prepare(prepare(
            2, 0, 1, d
        ))))
    );
    assert_eq!(r.stats().votes_withheld, 0);
}

#[test]
fn primary_proposes_one_pre_prepare_with_its_timestamp() {
    let mut p = replica(0, |c| c.batch_delay = Duration::ZERO);
    let req = request(2, 1, b"x");
    let out = p.step(Input::ClientRequest(req.clone()));
    let expected = batch_at(time(1_000), vec![req]);
    // The primary suspects nobody, but runs the status timer while its batch is not
    // yet delivered.
    assert_eq!(
        out,
        vec![
            Output::Broadcast(pre_prepare(0, 0, 1, &expected)),
            Output::SetTimer {
                kind: TimerKind::Status,
                after: Duration::from_millis(100)
            }
        ]
    );
    // The clock goes back: the next batch keeps the previous timestamp.
    p.step(Input::Tick(time(900)));
    let out = p.step(Input::ClientRequest(request(2, 2, b"y")));
    let [Output::Broadcast(AgreementMessage::PrePrepare { pre_prepare, batch })] = &out[..] else {
        panic!("expected one pre-prepare, got {out:?}");
    };
    assert_eq!(pre_prepare.message.sequence, 2);
    assert_eq!(batch.timestamp, time(1_000));
    assert_eq!(pre_prepare.message.timestamp, time(1_000));
    assert_eq!(p.stats().batches_proposed, 2);
}

#[test]
fn primary_with_a_full_in_flight_window_queues_requests_until_a_delivery() {
    let mut p = replica(0, |c| {
        c.batch_delay = Duration::ZERO;
        c.max_batches_in_flight = 1;
    });
    let first = request(2, 1, b"a");
    let out = p.step(Input::ClientRequest(first.clone()));
    let expected = batch_at(time(1_000), vec![first]);
    assert!(out.contains(&Output::Broadcast(pre_prepare(0, 0, 1, &expected))));
    // Sequence 1 is in flight: the next requests wait, whatever the batch delay says.
    let (second, third) = (request(2, 2, b"b"), request(2, 3, b"c"));
    for r in [&second, &third] {
        let out = p.step(Input::ClientRequest(r.clone()));
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::Broadcast(AgreementMessage::PrePrepare { .. }))),
            "proposed while the window was full: {out:?}"
        );
    }
    assert_eq!(p.stats().batches_proposed, 1);
    // Sequence 1 prepares and commits (2f+1 with the primary's own votes).
    let d = expected.digest().unwrap();
    for i in [1, 2] {
        p.step(msg(i, AgreementMessage::Prepare(prepare(i, 0, 1, d))));
    }
    let mut out = Vec::new();
    for i in [1, 2] {
        out.extend(p.step(msg(i, AgreementMessage::Commit(commit(i, 1, d)))));
    }
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Deliver { batch, .. } if batch.sequence == 1)));
    // The delivery frees the window: both queued requests go out as one batch.
    let proposals: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Broadcast(AgreementMessage::PrePrepare { pre_prepare, batch }) => {
                Some((pre_prepare.message.sequence, batch.requests.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(proposals, vec![(2, vec![second, third])]);
    assert_eq!(p.stats().batches_proposed, 2);
}

/// The batches a step proposed: (sequence, requests).
fn proposals(out: &[Output]) -> Vec<(u64, Vec<Signed<Request>>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(AgreementMessage::PrePrepare { pre_prepare, batch }) => {
                Some((pre_prepare.message.sequence, batch.requests.clone()))
            }
            _ => None,
        })
        .collect()
}

fn paced_primary() -> Replica {
    replica(0, |c| {
        c.batch_delay = Duration::ZERO;
        c.max_batches_unanswered = 1;
        c.pacing_timeout = Duration::from_millis(5);
    })
}

const PACING_TIMER: Output = Output::SetTimer {
    kind: TimerKind::Pacing,
    after: Duration::from_millis(5),
};

#[test]
fn paced_primary_holds_requests_until_a_client_reports_the_batch_answered() {
    let mut p = paced_primary();
    let first = request(2, 1, b"a");
    let out = p.step(Input::ClientRequest(first.clone()));
    assert_eq!(proposals(&out), vec![(1, vec![first])]);
    assert!(!out.contains(&PACING_TIMER));
    // Sequence 1 is proposed and no client said it was answered: requests are held,
    // with one pacing timer for all of them.
    let (second, third) = (request(2, 2, b"b"), request(1, 1, b"c"));
    let out = p.step(Input::ClientRequest(second.clone()));
    assert_eq!(proposals(&out), vec![]);
    assert!(out.contains(&PACING_TIMER), "{out:?}");
    let out = p.step(Input::ClientRequest(third.clone()));
    assert_eq!(proposals(&out), vec![]);
    assert!(!out.contains(&PACING_TIMER), "armed twice: {out:?}");
    assert_eq!(p.stats().batches_paced, 1);
    // A report of sequence 1 answered releases both as one batch, and the pacing timer
    // is cancelled; a stale report changes nothing.
    assert!(p.step(Input::RepliedThrough(0)).is_empty());
    let out = p.step(Input::RepliedThrough(1));
    assert_eq!(proposals(&out), vec![(2, vec![second, third])]);
    assert!(
        out.contains(&Output::CancelTimer(TimerKind::Pacing)),
        "{out:?}"
    );
    assert_eq!(p.stats().pacing_timeouts, 0);
    // A report beyond what was proposed counts only up to it (2): the next request
    // goes at once, the one after waits again (a lying client releases no more).
    assert!(proposals(&p.step(Input::RepliedThrough(1_000))).is_empty());
    let fourth = request(2, 3, b"d");
    assert_eq!(
        proposals(&p.step(Input::ClientRequest(fourth.clone()))),
        vec![(3, vec![fourth])]
    );
    let out = p.step(Input::ClientRequest(request(2, 4, b"e")));
    assert_eq!(proposals(&out), vec![]);
    assert!(out.contains(&PACING_TIMER), "{out:?}");
}

#[test]
fn paced_primary_proposes_held_requests_when_the_pacing_timer_fires() {
    let mut p = paced_primary();
    let first = request(2, 1, b"a");
    assert_eq!(
        proposals(&p.step(Input::ClientRequest(first.clone()))),
        vec![(1, vec![first])]
    );
    let second = request(2, 2, b"b");
    assert!(p
        .step(Input::ClientRequest(second.clone()))
        .contains(&PACING_TIMER));
    // No client reports progress: the timer releases the held request alone.
    let out = p.step(Input::Timer(TimerKind::Pacing));
    assert_eq!(proposals(&out), vec![(2, vec![second])]);
    assert_eq!(p.stats().pacing_timeouts, 1);
    // The next request waits again, on a fresh timer; a stale timer firing when
    // nothing is armed does nothing.
    let third = request(2, 3, b"c");
    let out = p.step(Input::ClientRequest(third.clone()));
    assert_eq!(proposals(&out), vec![]);
    assert!(out.contains(&PACING_TIMER));
    assert_eq!(
        proposals(&p.step(Input::Timer(TimerKind::Pacing))),
        vec![(3, vec![third])]
    );
    assert!(p.step(Input::Timer(TimerKind::Pacing)).is_empty());
    assert_eq!(p.stats().pacing_timeouts, 2);
}

#[test]
fn pacing_needs_a_positive_timeout() {
    let mut c = config(1, 0);
    c.max_batches_unanswered = 1;
    c.pacing_timeout = Duration::ZERO;
    assert!(matches!(
        Replica::new(c, replica_key(0)),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn backup_only_arms_its_request_timer_on_a_request() {
    let mut r = replica(2, |_| {});
    let out = r.step(Input::ClientRequest(request(0, 1, b"x")));
    assert_eq!(
        out,
        vec![
            Output::SetTimer {
                kind: TimerKind::ViewChange,
                after: Duration::from_millis(500)
            },
            Output::SetTimer {
                kind: TimerKind::Status,
                after: Duration::from_millis(100)
            }
        ]
    );
    assert!(r.step(Input::ClientRequest(request(0, 2, b"x"))).is_empty());
    assert_eq!(r.stats().requests_admitted, 2);
}

#[test]
fn bad_timestamps_are_refused() {
    // Beyond the 1 s skew of the backup's clock.
    let mut r = replica(1, |_| {});
    let ahead = batch_at(
        Timestamp {
            seconds: 1_001,
            nanos: 1,
        },
        vec![request(0, 1, b"a")],
    );
    assert!(r.step(msg(0, pre_prepare(0, 0, 1, &ahead))).is_empty());
    let behind = batch_at(time(998), vec![request(0, 1, b"a")]);
    assert!(r.step(msg(0, pre_prepare(0, 0, 1, &behind))).is_empty());
    assert_eq!(r.stats().pre_prepares_bad_timestamp, 2);
    // Going backwards in the order.
    let first = batch_at(time(1_000), vec![request(0, 1, b"a")]);
    assert_eq!(r.step(msg(0, pre_prepare(0, 0, 1, &first))).len(), 3);
    let earlier = batch_at(
        Timestamp {
            seconds: 999,
            nanos: 5,
        },
        vec![request(0, 2, b"b")],
    );
    assert!(r.step(msg(0, pre_prepare(0, 0, 2, &earlier))).is_empty());
    assert_eq!(r.stats().pre_prepares_bad_timestamp, 3);
    // A backup that has no clock reading yet accepts no timestamp at all.
    let mut fresh = Replica::new(config(1, 1), replica_key(1)).unwrap();
    assert!(fresh.step(msg(0, pre_prepare(0, 0, 1, &first))).is_empty());
    assert_eq!(fresh.stats().pre_prepares_bad_timestamp, 1);
}

#[test]
fn bad_requests_are_dropped_and_counted() {
    let mut r = replica(1, |_| {});
    // Signed by another client's key.
    assert!(r.step(Input::ClientRequest(forged_request(1))).is_empty());
    // Unknown client.
    let unknown = unknown_client_request();
    assert!(r.step(Input::ClientRequest(unknown)).is_empty());
    // Oversized payload.
    let huge = request(0, 1, &vec![0; MAX_REQUEST_PAYLOAD + 1]);
    assert!(r.step(Input::ClientRequest(huge)).is_empty());
    assert_eq!(r.stats().requests_invalid, 3);
    // Id 0 is never valid (ids far above the window are admitted: the window slides
    // for restarted clients, see client_table).
    assert!(r.step(Input::ClientRequest(request(0, 0, b""))).is_empty());
    assert_eq!(r.stats().requests_out_of_window, 1);
    // A retransmission of a pending request.
    assert_eq!(r.step(Input::ClientRequest(request(0, 7, b""))).len(), 2);
    assert!(r.step(Input::ClientRequest(request(0, 7, b""))).is_empty());
    assert_eq!(r.stats().requests_duplicate, 1);
    assert_eq!(r.stats().requests_admitted, 1);
    // A full queue.
    let mut small = replica(1, |c| c.max_pending_requests = 1);
    small.step(Input::ClientRequest(request(0, 1, b"")));
    assert!(small
        .step(Input::ClientRequest(request(0, 2, b"")))
        .is_empty());
    assert_eq!(small.stats().requests_queue_full, 1);
}

#[test]
fn bad_replica_messages_are_dropped_and_counted() {
    let mut r = replica(1, |_| {});
    let batch = batch_at(time(1_000), vec![request(0, 1, b"a")]);
    let d = batch.digest().unwrap();
    // Bad signature on a pre-prepare another replica relays (over the primary's own
    // link it is checked later: see the test above).
    let bad = with_bad_signature(pre_prepare(0, 0, 1, &batch));
    assert!(r.step(msg(2, bad)).is_empty());
    // A body that does not match the digest.
    let mut swapped = pre_prepare(0, 0, 1, &batch);
    if let AgreementMessage::PrePrepare { batch, .. } = &mut swapped {
        batch.requests[0] = request(0, 2, b"other");
    }
    assert!(r.step(msg(0, swapped)).is_empty());
    // A client request inside the batch with a broken client signature.
    let mut tampered_req = request(0, 1, b"a");
    tampered_req.signature.0[0] ^= 1;
    let tampered = batch_at(time(1_000), vec![tampered_req]);
    assert!(r.step(msg(0, pre_prepare(0, 0, 1, &tampered))).is_empty());
    assert_eq!(r.stats().messages_invalid, 2);
    assert_eq!(r.stats().messages_rejected, 1);
    // A pre-prepare from a backup, a batch repeating a request, an empty batch.
    assert!(r.step(msg(2, pre_prepare(2, 0, 1, &batch))).is_empty());
    let twice = batch_at(time(1_000), vec![request(0, 1, b"a"), request(0, 1, b"a")]);
    assert!(r.step(msg(0, pre_prepare(0, 0, 1, &twice))).is_empty());
    assert!(r
        .step(msg(0, pre_prepare(0, 0, 1, &batch_at(time(1_000), vec![]))))
        .is_empty());
    assert_eq!(r.stats().messages_rejected, 4);
    // Outside the watermarks (L = 8), and for another view.
    assert!(r
        .step(msg(2, AgreementMessage::Prepare(prepare(2, 0, 9, d))))
        .is_empty());
    // (An authenticated vote of a higher view is refused, but makes this replica ask its
    // sender, once, where it is: it may have missed a view change.)
    assert_eq!(
        r.step(msg(2, AgreementMessage::Prepare(prepare(2, 5, 1, d)))),
        vec![Output::Send {
            to: 2,
            message: AgreementMessage::Status {
                view: 0,
                last_delivered: 0
            }
        }]
    );
    assert!(r
        .step(msg(2, AgreementMessage::Prepare(prepare(2, 5, 2, d))))
        .is_empty());
    assert_eq!(r.stats().messages_wrong_view, 2);
    assert_eq!(r.stats().messages_outside_window, 1);
    // A prepare from the primary; a sender id beyond n.
    assert!(r
        .step(msg(0, AgreementMessage::Prepare(prepare(0, 0, 1, d))))
        .is_empty());
    assert!(r
        .step(msg(7, AgreementMessage::Prepare(prepare(2, 0, 1, d))))
        .is_empty());
    // A prepare naming another replica than the link it came over (prepares are
    // unsigned: only the link says who voted).
    assert!(r
        .step(msg(3, AgreementMessage::Prepare(prepare(2, 0, 1, d))))
        .is_empty());
    assert_eq!(r.stats().messages_rejected, 7);
    // Conflicting votes of one replica in one view.
    assert!(r
        .step(msg(2, AgreementMessage::Prepare(prepare(2, 0, 1, d))))
        .is_empty());
    assert!(r
        .step(msg(
            2,
            AgreementMessage::Prepare(prepare(2, 0, 1, Digest([9; 32])))
        ))
        .is_empty());
    assert_eq!(r.stats().votes_conflicting, 1);
    // Checkpoint at or below the low watermark (any sequence above it may be a
    // restart checkpoint, not only multiples of K).
    let cp = checkpoint(2, 2, 0);
    assert!(r.step(msg(2, AgreementMessage::Checkpoint(cp))).is_empty());
    assert_eq!(r.stats().messages_outside_window, 2);
    // A checkpoint signed by another replica than it names.
    let forged = checkpoint(3, 2, 3);
    let invalid = r.stats().messages_invalid;
    assert!(r
        .step(msg(2, AgreementMessage::Checkpoint(forged)))
        .is_empty());
    assert_eq!(r.stats().messages_invalid, invalid + 1);
    assert_eq!(r.stats().messages_rejected, 7);
    // None of it touched the log beyond the one slot the honest prepare created.
    assert_eq!(r.log_len(), 1);
}

fn view_change(
    replica: u32,
    new_view: u64,
    prepared: Vec<Signed<PrePrepare>>,
    pre_prepared: Vec<PrePrepared>,
) -> Signed<ViewChange> {
    Signed::sign(
        &replica_key(replica as usize),
        ViewChange {
            new_view,
            stable_sequence: 0,
            checkpoint_proof: vec![],
            prepared,
            pre_prepared,
            replica,
        },
    )
    .unwrap()
}

fn new_view(
    vcs: Vec<Signed<ViewChange>>,
    pre_prepares: Vec<Signed<PrePrepare>>,
) -> AgreementMessage {
    AgreementMessage::NewView(
        Signed::sign(
            &replica_key(1),
            NewView {
                view: 1,
                view_changes: vcs,
                pre_prepares,
                primary: 1,
            },
        )
        .unwrap(),
    )
}

/// The TOCS §4.5.2 decision procedure, as a backup checks a new-view: replica 2 claims it
/// prepared batch `d` at sequence 1 in view 0; whether the new view must re-propose it
/// depends on what the other senders' `P` and `Q` sets say.
#[test]
fn new_view_is_checked_against_its_view_changes() {
    let batch = batch_at(time(1_000), vec![request(0, 1, b"a")]);
    let d = batch.digest().unwrap();
    let pp0 = signed_pre_prepare(0, 0, 1, &batch);
    let q = |digest| PrePrepared {
        sequence: 1,
        digest,
        timestamp: time(1_000),
        view: 0,
    };
    // Replica 3 pre-prepared `d` too: A1 (no sender contradicts it) and A2 (f+1 = 2
    // pre-prepared it) hold, so `d` must be re-proposed.
    let vcs = vec![
        view_change(0, 1, vec![], vec![]),
        view_change(2, 1, vec![pp0.clone()], vec![q(d)]),
        view_change(3, 1, vec![], vec![q(d)]),
    ];
    let reproposal = signed_pre_prepare(1, 1, 1, &batch);
    let null = signed_pre_prepare(1, 1, 1, &Batch::null());
    let mut r = replica(2, |_| {});
    let mut rejected = 0;
    let mut refused = |r: &mut Replica, m: AgreementMessage, why: &str| {
        assert!(r.step(msg(1, m)).is_empty(), "{why}");
        rejected += 1;
        assert_eq!(r.stats().messages_rejected, rejected, "{why}");
        assert_eq!(r.view(), 0, "{why}");
    };
    refused(
        &mut r,
        new_view(vcs.clone(), vec![]),
        "the new primary leaves out the batch",
    );
    refused(
        &mut r,
        new_view(vcs.clone(), vec![null.clone()]),
        "the new primary proposes the null batch instead",
    );
    refused(
        &mut r,
        new_view(vcs[..2].to_vec(), vec![reproposal.clone()]),
        "only two view-changes",
    );
    refused(
        &mut r,
        new_view(
            vec![vcs[0].clone(), vcs[1].clone(), vcs[1].clone()],
            vec![reproposal.clone()],
        ),
        "one sender counted twice",
    );
    // Only replica 2 pre-prepared `d` (A2 fails: it may be a liar's), and only two
    // senders report nothing prepared (B fails): undecided, so no new-view is valid;
    // the new primary must wait for the fourth view-change.
    let undecided = vec![
        vcs[0].clone(),
        vcs[1].clone(),
        view_change(3, 1, vec![], vec![]),
    ];
    for pps in [vec![], vec![reproposal.clone()], vec![null.clone()]] {
        refused(
            &mut r,
            new_view(undecided.clone(), pps),
            "view-changes that decide nothing",
        );
    }
    // With the fourth (replica 1 reports nothing prepared either), B holds: the null
    // batch. (Replica 2 alone prepared `d`, so it cannot have committed.)
    let mut four = undecided.clone();
    four.insert(1, view_change(1, 1, vec![], vec![]));
    refused(
        &mut r,
        new_view(four.clone(), vec![reproposal.clone()]),
        "B holds: the null batch, not d",
    );
    // A `P` entry whose pre-prepare is not signed by its view's primary invalidates
    // its view-change.
    let mut forged = pp0.clone();
    forged.signature.0[0] ^= 1;
    let forged_vcs = vec![
        vcs[0].clone(),
        view_change(2, 1, vec![forged], vec![q(d)]),
        vcs[2].clone(),
    ];
    assert!(r
        .step(msg(1, new_view(forged_vcs, vec![reproposal.clone()])))
        .is_empty());
    assert_eq!(r.stats().messages_invalid, 1);
    assert_eq!(r.view(), 0);
    // The correct new-view: the replica enters view 1, prepares the re-proposed batch
    // and, lacking its body, asks for it.
    let out = r.step(msg(1, new_view(vcs, vec![reproposal])));
    assert_eq!(r.view(), 1);
    assert_eq!(r.status(), Status::Normal);
    assert_eq!(
        out[..2],
        [
            Output::Broadcast(AgreementMessage::Prepare(prepare(2, 1, 1, d))),
            Output::Broadcast(AgreementMessage::FetchBatch {
                sequence: 1,
                digest: d
            }),
        ]
    );
    // The body arrives; a body for another digest is refused.
    let wrong = batch_at(time(1_000), vec![request(0, 2, b"z")]);
    r.step(msg(
        3,
        AgreementMessage::BatchBody {
            sequence: 1,
            batch: wrong,
        },
    ));
    assert_eq!(r.stats().batches_fetched, 0);
    r.step(msg(3, AgreementMessage::BatchBody { sequence: 1, batch }));
    assert_eq!(r.stats().batches_fetched, 1);
}

/// The null-batch side of the decision: with the four view-changes above, a new-view
/// that proposes the null batch at sequence 1 is the valid one.
#[test]
fn new_view_chooses_the_null_batch_when_2f_plus_1_prepared_nothing() {
    let batch = batch_at(time(1_000), vec![request(0, 1, b"a")]);
    let d = batch.digest().unwrap();
    let pp0 = signed_pre_prepare(0, 0, 1, &batch);
    let q = PrePrepared {
        sequence: 1,
        digest: d,
        timestamp: time(1_000),
        view: 0,
    };
    let vcs = vec![
        view_change(0, 1, vec![], vec![]),
        view_change(1, 1, vec![], vec![]),
        view_change(2, 1, vec![pp0], vec![q]),
        view_change(3, 1, vec![], vec![]),
    ];
    let null = signed_pre_prepare(1, 1, 1, &Batch::null());
    let mut r = replica(3, |_| {});
    let out = r.step(msg(1, new_view(vcs, vec![null])));
    assert_eq!(r.view(), 1, "{out:?}");
    assert_eq!(r.stats().messages_rejected, 0);
}

/// A faulty primary of view 0 (replica 0) signed batch `d` twice: under the batch's own
/// time, which correct replicas accepted and prepared, and under a time an hour later,
/// which it claims in its view-change. The digest binds the batch's time, so the new
/// view must re-propose `d` under it: f+1 senders' `Q` vouch for that time, only the liar
/// for the other. (Re-proposed under the later time, every later proposal would look to
/// go backwards and cost another view change.)
#[test]
fn new_view_re_proposes_a_batch_under_the_time_its_body_carries() {
    let batch = batch_at(time(1_000), vec![request(0, 1, b"a")]);
    let d = batch.digest().unwrap();
    let honest = signed_pre_prepare(0, 0, 1, &batch);
    let mut later = honest.message.clone();
    later.timestamp = time(4_600);
    let lie = Signed::sign(&replica_key(0), later).unwrap();
    let q = |timestamp| PrePrepared {
        sequence: 1,
        digest: d,
        timestamp,
        view: 0,
    };
    let vcs = vec![
        view_change(0, 1, vec![lie], vec![q(time(4_600))]),
        view_change(2, 1, vec![honest.clone()], vec![q(time(1_000))]),
        view_change(3, 1, vec![honest], vec![q(time(1_000))]),
    ];
    let plan =
        palisade_agreement::view_change::plan_new_view(&vcs, Batch::null().digest().unwrap(), 1)
            .expect("A1 and A2 hold for d");
    assert_eq!(plan.entries, vec![(1, d, time(1_000))]);
    // A backup holds the new primary to it.
    let mut r = replica(2, |_| {});
    let under = |timestamp| {
        let pp = PrePrepare {
            view: 1,
            sequence: 1,
            timestamp,
            digest: d,
            primary: 1,
        };
        Signed::sign(&replica_key(1), pp).unwrap()
    };
    let wrong_time = under(time(4_600));
    assert!(r
        .step(msg(1, new_view(vcs.clone(), vec![wrong_time])))
        .is_empty());
    assert_eq!(r.stats().messages_rejected, 1);
    assert_eq!(r.view(), 0);
    let out = r.step(msg(1, new_view(vcs, vec![under(time(1_000))])));
    assert_eq!(r.view(), 1, "{out:?}");
    assert_eq!(r.stats().messages_rejected, 1);
}

#[test]
fn configuration_errors_are_reported() {
    let mut c = config(1, 0);
    c.replica_keys.pop();
    assert!(matches!(
        Replica::new(c, replica_key(0)),
        Err(ConfigError::ReplicaCount { keys: 3, n: 4 })
    ));
    assert!(matches!(
        Replica::new(config(1, 4), replica_key(0)),
        Err(ConfigError::BadId(4))
    ));
    assert!(matches!(
        Replica::new(config(1, 0), replica_key(1)),
        Err(ConfigError::Invalid(_))
    ));
    let mut c = config(1, 0);
    c.window = 2;
    assert!(matches!(
        Replica::new(c, replica_key(0)),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn status_from_a_lagging_peer_is_answered_with_certificates_and_bodies() {
    let mut c = common::Cluster::new(1);
    for id in 1..=4 {
        c.submit(request(0, id, b"s"));
    }
    c.settle();
    assert_eq!(c.replicas[0].last_delivered(), 1);
    let out = c.replicas[0].step(msg(
        3,
        AgreementMessage::Status {
            view: 0,
            last_delivered: 0,
        },
    ));
    // 2f+1 commits of the certificate, then the body, all to the peer that asked.
    assert_eq!(out.len(), 4);
    assert!(out[..3].iter().all(|o| matches!(
        o,
        Output::Send {
            to: 3,
            message: AgreementMessage::Commit(_)
        }
    )));
    assert!(matches!(
        &out[3],
        Output::Send {
            to: 3,
            message: AgreementMessage::BatchBody { sequence: 1, .. }
        }
    ));
    // A peer that is not behind gets nothing.
    assert!(c.replicas[0]
        .step(msg(
            3,
            AgreementMessage::Status {
                view: 0,
                last_delivered: 1
            }
        ))
        .is_empty());
}

/// Deterministic hostile input: structurally valid messages with extreme or random
/// fields, good and bad signatures, signed by any key (more than f of them). Nothing
/// may panic, the log stays within the watermarks, and every refusal is counted.
#[test]
fn hostile_inputs_never_panic() {
    // Two seeds by default; AGREEMENT_SEEDS=N for a longer run by hand.
    let seeds = std::env::var("AGREEMENT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2u64);
    for seed in 0..seeds {
        hostile_run(seed);
    }
}

fn hostile_run(seed: u64) {
    let mut rng = common::Schedule::new(seed, 1, 0, 0);
    let picks = [0u64, 1, 2, 3, 4, 7, 8, 9, 16, u64::MAX - 3, u64::MAX];
    let pick = |rng: &mut common::Schedule| picks[rng.next(picks.len() as u64) as usize];
    for id in 0..4u32 {
        let mut r = replica(id, |_| {});
        for step in 0..3000u64 {
            let signer = rng.next(5) as u32; // 4 is not a replica
            let key = replica_key(signer.min(3) as usize);
            let digest = Digest([rng.next(3) as u8; 32]);
            let view = pick(&mut rng);
            let sequence = pick(&mut rng);
            let message = match rng.next(10) {
                0 => AgreementMessage::Prepare(Prepare {
                    view,
                    sequence,
                    digest,
                    replica: signer,
                }),
                1 => AgreementMessage::Commit(
                    Signed::sign(
                        &key,
                        Commit {
                            view,
                            sequence,
                            digest,
                            replica: signer,
                        },
                    )
                    .unwrap(),
                ),
                2 => AgreementMessage::Checkpoint(
                    Signed::sign(
                        &key,
                        Checkpoint {
                            sequence: sequence - sequence % 4,
                            state_digest: digest,
                            replica: signer,
                        },
                    )
                    .unwrap(),
                ),
                3 => {
                    let batch = batch_at(
                        Timestamp {
                            seconds: 1_000,
                            nanos: rng.next(3) as u32,
                        },
                        vec![request(rng.next(3), 1 + rng.next(2000), b"h")],
                    );
                    pre_prepare(signer.min(3), view, sequence, &batch)
                }
                4 => AgreementMessage::ViewChange(view_change(
                    signer.min(3),
                    view,
                    vec![],
                    vec![PrePrepared {
                        sequence,
                        digest,
                        timestamp: time(1_000),
                        view: view.saturating_sub(1),
                    }],
                )),
                5 => new_view(vec![view_change(0, view, vec![], vec![])], vec![]),
                6 => AgreementMessage::FetchBatch { sequence, digest },
                7 => AgreementMessage::BatchBody {
                    sequence,
                    batch: Batch::null(),
                },
                8 => AgreementMessage::Status {
                    view,
                    last_delivered: sequence,
                },
                _ => {
                    let out = r.step(Input::StableCheckpoint {
                        sequence,
                        state_digest: digest,
                    });
                    assert!(out.len() <= 4);
                    continue;
                }
            };
            let mut message = message;
            if step % 7 == 0 {
                if let AgreementMessage::Commit(c) = &mut message {
                    c.signature.0[3] ^= 0x10;
                }
            }
            r.step(Input::Message {
                from: rng.next(5) as u32,
                message,
            });
            if step % 97 == 0 {
                r.step(Input::Timer(TimerKind::ViewChange));
                r.step(Input::Timer(TimerKind::Status));
                r.step(Input::Timer(TimerKind::Batch));
            }
            r.step(Input::ClientRequest(request(
                rng.next(4),
                pick(&mut rng),
                b"c",
            )));
            assert!(r.log_len() as u64 <= r.config().window);
        }
        let s = r.stats();
        assert!(s.messages_invalid + s.messages_rejected + s.messages_outside_window > 0);
        assert!(s.requests_out_of_window + s.requests_invalid > 0);
    }
}

/// A request of client 9, which the configuration does not know.
fn unknown_client_request() -> Signed<Request> {
    Signed::sign(
        &client_key(9),
        Request {
            client: 9,
            request_id: 1,
            payload: vec![].into(),
        },
    )
    .unwrap()
}

/// A request signed with another client's key, claiming to be client 0's.
fn forged_request(id: u64) -> Signed<Request> {
    let mut forged = Signed::sign(
        &client_key(1),
        Request {
            client: 0,
            request_id: id,
            payload: b"forged".to_vec().into(),
        },
    )
    .unwrap();
    forged.signer = 0;
    forged
}

#[test]
fn primary_checks_a_link_request_once_before_proposing_it() {
    let mut p = replica(0, |c| c.batch_delay = Duration::ZERO);
    // A request over its client's own link is admitted unchecked, then checked once,
    // when it is proposed: a good one goes out exactly as a checked request would.
    let good = request(0, 1, b"x");
    let out = p.step(Input::LinkRequest(good.clone()));
    let expected = batch_at(time(1_000), vec![good]);
    assert_eq!(out[0], Output::Broadcast(pre_prepare(0, 0, 1, &expected)));
    // A forged one is admitted, found out at proposal, dropped and counted: no batch.
    let out = p.step(Input::LinkRequest(forged_request(2)));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Broadcast(AgreementMessage::PrePrepare { .. }))),
        "proposed a forged request: {out:?}"
    );
    assert_eq!(p.stats().requests_invalid, 1);
    assert_eq!(p.stats().requests_admitted, 2);
    assert_eq!(p.stats().batches_proposed, 1);
    assert_eq!(
        p.pending_requests(),
        1,
        "only the proposed good request waits"
    );
    // Bounds and the client's identity are still checked on arrival.
    let huge = request(0, 3, &vec![0; MAX_REQUEST_PAYLOAD + 1]);
    assert!(p.step(Input::LinkRequest(huge)).is_empty());
    let unknown = unknown_client_request();
    assert!(p.step(Input::LinkRequest(unknown)).is_empty());
    assert_eq!(p.stats().requests_invalid, 3);
}

#[test]
fn a_backup_drops_forged_link_requests_instead_of_suspecting_the_primary() {
    let mut r = replica(2, |_| {});
    let out = r.step(Input::LinkRequest(forged_request(1)));
    assert!(out.contains(&Output::SetTimer {
        kind: TimerKind::ViewChange,
        after: Duration::from_millis(500)
    }));
    // The request timer fires: the forged request is found out and dropped; the primary
    // (which rightly never proposed it) is not suspected, and nothing waits any more.
    let out = r.step(Input::Timer(TimerKind::ViewChange));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Broadcast(AgreementMessage::ViewChange(_)))),
        "suspected the primary over a forged request: {out:?}"
    );
    assert_eq!(r.stats().view_changes_started, 0);
    assert_eq!(r.stats().requests_invalid, 1);
    assert_eq!(r.pending_requests(), 0);
    assert_eq!(r.status(), Status::Normal);
    // A genuine request that the primary ignores still leads to a view change.
    r.step(Input::LinkRequest(request(0, 2, b"y")));
    let out = r.step(Input::Timer(TimerKind::ViewChange));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Broadcast(AgreementMessage::ViewChange(_)))),
        "a censored genuine request must expose the primary: {out:?}"
    );
    assert_eq!(r.stats().view_changes_started, 1);
}

#[test]
fn a_backup_accepts_a_batch_of_link_requests_it_holds_without_their_signatures() {
    // The backup holds the client's request from the client's own link; the primary's
    // batch carries the identical bytes, so the backup prepares it. A batch carrying a
    // request the backup does not hold must have a valid signature on it.
    let mut r = replica(1, |_| {});
    let mut unsigned = request(0, 1, b"x");
    // The client's link vouches for these bytes, whatever the signature says.
    unsigned.signature = forged_request(1).signature;
    r.step(Input::LinkRequest(unsigned.clone()));
    let held = batch_at(time(1_000), vec![unsigned]);
    let out = r.step(msg(0, pre_prepare(0, 0, 1, &held)));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Broadcast(AgreementMessage::Prepare(_)))),
        "no prepare for a batch of held requests: {out:?}"
    );
    let not_held = batch_at(time(1_000), vec![forged_request(5)]);
    let out = r.step(msg(0, pre_prepare(0, 0, 2, &not_held)));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Broadcast(AgreementMessage::Prepare(_)))),
        "prepared a forged request it never received: {out:?}"
    );
    assert_eq!(r.stats().messages_invalid, 1);
}
