//! Orders pushed by agreement replicas over their own links (`ReplicaInput::Pushed`):
//! f+1 matching pushes stand for the certificate; anything less falls back to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replica_support;

use palisade_execution::replica::PUSH_WAIT;
use palisade_execution::{ExecTimer, ReplicaInput, ReplicaOutput};
use palisade_wire::agreement::{OrderCertificate, OrderedBatch, Signed};
use palisade_wire::fs::{CreateHow, FsOp, SetAttr, ROOT_ID};
use replica_support::*;

fn create(id: u64, name: &str) -> Signed<palisade_wire::agreement::Request> {
    request(
        0,
        id,
        &FsOp::Create {
            dir: ROOT_ID,
            name: name.as_bytes().to_vec(),
            how: CreateHow::Guarded(SetAttr::default()),
        },
    )
}

fn push(from: u32, batch: &OrderedBatch, certificate: OrderCertificate) -> ReplicaInput {
    ReplicaInput::Pushed {
        from,
        batch: batch.clone(),
        certificate,
    }
}

/// A certificate that proves nothing: no commits at all.
fn worthless(batch: &OrderedBatch) -> OrderCertificate {
    certificate_by(batch, &[])
}

fn wait() -> Vec<ReplicaOutput> {
    vec![ReplicaOutput::SetTimer {
        kind: ExecTimer::PushedOrders,
        after: PUSH_WAIT,
    }]
}

/// (sequence, request id) of each reply of one step.
fn answered(out: &[ReplicaOutput]) -> Vec<(u64, u64)> {
    replies(out)
        .iter()
        .map(|r| (r.message.sequence, r.message.request_id))
        .collect()
}

/// Replica 0 after sequence 1, pushed by agreement replicas 0 and 1: it knows both
/// pushers.
fn warmed_up() -> palisade_execution::ExecutionReplica<palisade_execution::MemStore> {
    let mut r = replica(0);
    let b = batch(1, vec![create(1, "a")]);
    // Nobody else is known to push yet: the first copy is checked at once.
    assert_eq!(
        answered(&r.step(push(0, &b, certificate(&b)))),
        vec![(1, 1)]
    );
    // The second pusher's copy of an executed order is the routine one: dropped unchecked.
    assert_eq!(r.step(push(1, &b, worthless(&b))), vec![]);
    assert_eq!(r.stats().orders_redundant, 1);
    r
}

#[test]
fn f_plus_one_matching_pushes_take_an_order_without_its_certificate() {
    let mut r = warmed_up();
    let b = batch(2, vec![create(2, "b")]);
    // One push, and pusher 1 is expected: wait for it.
    assert_eq!(r.step(push(0, &b, worthless(&b))), wait());
    // The same push again adds nothing.
    assert_eq!(r.step(push(0, &b, worthless(&b))), vec![]);
    // f+1 = 2 matching pushes: executed, though neither certificate holds a commit.
    assert_eq!(answered(&r.step(push(1, &b, worthless(&b)))), vec![(2, 2)]);
    assert_eq!(r.last_applied(), 2);
    let s = r.stats();
    assert_eq!((s.orders_agreed_by_pushers, s.bad_certificates), (1, 0));
    // The wait timer fires late: nothing is pending.
    assert_eq!(r.step(ReplicaInput::Timer(ExecTimer::PushedOrders)), vec![]);
    assert_eq!(r.stats().push_waits_expired, 0);
}

#[test]
fn pushes_that_disagree_are_checked_by_their_certificates() {
    let mut r = warmed_up();
    let forged = batch(2, vec![create(2, "forged")]);
    let real = batch(2, vec![create(2, "real")]);
    // A lying pusher comes first, with a certificate for nothing.
    assert_eq!(r.step(push(0, &forged, worthless(&forged))), wait());
    // The other pusher disagrees: no batch can reach f+1 pushes any more, so both are
    // checked now, and only the certified one runs.
    assert_eq!(
        answered(&r.step(push(1, &real, certificate(&real)))),
        vec![(2, 2)]
    );
    let s = r.stats();
    assert_eq!((s.bad_certificates, s.orders_agreed_by_pushers), (1, 0));
    // One pusher cannot push two batches at one sequence.
    let third = batch(3, vec![create(3, "c")]);
    let other = batch(3, vec![create(3, "d")]);
    // (The wait timer armed for sequence 2 is still armed: no new one.)
    assert_eq!(r.step(push(1, &third, worthless(&third))), vec![]);
    assert_eq!(r.step(push(1, &other, certificate(&other))), vec![]);
    assert_eq!(r.stats().orders_conflicting, 1);
    assert_eq!(r.last_applied(), 2);
}

#[test]
fn a_silent_pusher_costs_one_wait_then_is_not_waited_for() {
    let mut r = warmed_up();
    let b2 = batch(2, vec![create(2, "b")]);
    // Only pusher 1 pushes: wait at least one full period (the timer's first firing
    // may come at once after the push), then the certificate decides.
    assert_eq!(r.step(push(1, &b2, certificate(&b2))), wait());
    assert_eq!(r.step(ReplicaInput::Timer(ExecTimer::PushedOrders)), wait());
    assert_eq!(
        answered(&r.step(ReplicaInput::Timer(ExecTimer::PushedOrders))),
        vec![(2, 2)]
    );
    assert_eq!(r.stats().push_waits_expired, 1);
    // Pusher 0 missed that wait: the next lone push is checked at once.
    let b3 = batch(3, vec![create(3, "c")]);
    assert_eq!(
        answered(&r.step(push(1, &b3, certificate(&b3)))),
        vec![(3, 3)]
    );
    // A lone push with a worthless certificate is never taken.
    let b4 = batch(4, vec![create(4, "d")]);
    assert_eq!(r.step(push(1, &b4, worthless(&b4))), vec![]);
    assert_eq!(r.stats().bad_certificates, 1);
    // Pusher 0 pushes again (its copy of 3 is the routine one): it is waited for again.
    assert_eq!(r.step(push(0, &b3, worthless(&b3))), vec![]);
    assert_eq!(r.step(push(1, &b4, worthless(&b4))), wait());
    assert_eq!(
        answered(&r.step(push(0, &b4, worthless(&b4)))),
        vec![(4, 4)]
    );
}

#[test]
fn a_pusher_sending_an_executed_order_again_gets_the_replies_again() {
    let mut r = warmed_up();
    let b = batch(1, vec![create(1, "a")]);
    // Pusher 1 sent sequence 1 before: this is a re-delivery (a client retransmitted).
    // Its link authenticates the ask, as for `ResendReply`: the cached replies go out
    // whatever the certificate (agreement's may hold a faulty replica's bad commit).
    assert_eq!(answered(&r.step(push(1, &b, worthless(&b)))), vec![(1, 1)]);
    assert_eq!(r.stats().orders_redelivered, 1);
    // An order whose sender no link vouches for needs its certificate.
    let unvouched = ReplicaInput::Order {
        batch: b.clone(),
        certificate: worthless(&b),
    };
    assert_eq!(r.step(unvouched), vec![]);
    assert_eq!(r.stats().bad_certificates, 1);
    // A forged batch at an executed sequence names a request it did not run: no reply
    // goes out (at most the peers are asked for one, and they answer only with replies
    // whose leaves the batch made, as for `ResendReply`).
    let forged = batch(1, vec![create(7, "x")]);
    assert_eq!(
        answered(&r.step(push(0, &forged, worthless(&forged)))),
        vec![]
    );
}

#[test]
fn a_large_batch_is_checked_at_its_first_copy_and_still_taken_on_matching_copies() {
    let mut r = warmed_up();
    // Payloads that are no `FsOp` are answered `Inval`; only their size matters here.
    let big = |id: u64| request_raw(0, id, vec![7; palisade_wire::agreement::LARGE_BATCH_BYTES]);
    let b2 = batch(2, vec![big(2)]);
    // Its certificate holds: taken at once, no waiting for pusher 1.
    assert_eq!(
        answered(&r.step(push(0, &b2, certificate(&b2)))),
        vec![(2, 2)]
    );
    // Its certificate does not hold (a faulty replica's commit in it): it waits for
    // matching copies, as a small batch does.
    let b3 = batch(3, vec![big(3)]);
    assert_eq!(r.step(push(0, &b3, worthless(&b3))), wait());
    assert_eq!(r.stats().bad_certificates, 1);
    assert_eq!(
        answered(&r.step(push(1, &b3, worthless(&b3)))),
        vec![(3, 3)]
    );
    assert_eq!(r.stats().orders_agreed_by_pushers, 1);
}
