//! Exact-output tests of read-only requests at one execution replica (TOCS §5.1.3,
//! `replica/read_only.rs`): answered from the current state without ordering, once the
//! replica executed through the client's `after`; never what may change state, never for
//! another client's link, never past the firewall.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replica_support;

use palisade_execution::{ReplicaConfig, ReplicaInput, ReplicaOutput};
use palisade_wire::agreement::{Request, Signed};
use palisade_wire::execution::Reply;
use palisade_wire::fs::{FsOp, FsReply, FsResult, ROOT_ID};
use replica_support::*;

fn read_only(from: u64, request: Signed<Request>, after: u64) -> ReplicaInput {
    ReplicaInput::ReadOnly {
        from,
        request,
        after,
    }
}

fn read_replies(out: &[ReplicaOutput]) -> Vec<(u64, Reply)> {
    out.iter()
        .filter_map(|o| match o {
            ReplicaOutput::ReadOnlyReply { to, reply } => Some((*to, reply.clone())),
            _ => None,
        })
        .collect()
}

/// The result GETATTR of the root gets when ordered at `sequence` on replica `r`.
fn ordered_getattr(
    r: &mut palisade_execution::ExecutionReplica<palisade_execution::MemStore>,
    sequence: u64,
    id: u64,
) -> Vec<u8> {
    let out = r.step(order(
        sequence,
        vec![request(1, id, &FsOp::GetAttr { id: ROOT_ID })],
    ));
    replies(&out).remove(0).message.result
}

#[test]
fn answers_at_once_from_the_state_it_has_and_changes_nothing() {
    let mut r = replica(2);
    r.step(order(1, workload(1)));
    let digest = r.digest();
    let getattr = request(1, 50, &FsOp::GetAttr { id: ROOT_ID });
    let out = r.step(read_only(1, getattr, 1));
    let answer = read_replies(&out);
    assert_eq!(answer.len(), 1, "{out:?}");
    let (to, reply) = &answer[0];
    assert_eq!(*to, 1);
    assert_eq!(
        (
            reply.sequence,
            reply.client,
            reply.request_id,
            reply.replica
        ),
        (1, 1, 50, 2)
    );
    assert_eq!(r.last_applied(), 1, "nothing was ordered");
    assert_eq!(r.digest(), digest, "nothing changed");
    assert_eq!(r.stats().reads_answered, 1);
    // The same bytes an ordered GETATTR gets from the same state (the next batch, which
    // changes nothing before it).
    assert_eq!(reply.result, ordered_getattr(&mut r, 2, 51));
    let FsResult::Ok(FsReply::Attr(attr)) = palisade_wire::decode(&reply.result).unwrap() else {
        panic!("a GETATTR answer");
    };
    assert_eq!(attr.fileid, ROOT_ID);
}

#[test]
fn waits_until_it_executed_through_after() {
    let mut r = replica(0);
    let lookup = request(
        0,
        60,
        &FsOp::Lookup {
            dir: ROOT_ID,
            name: b"f2".to_vec(),
        },
    );
    // The client was told of batch 2: a replica at 0 must not answer from before it.
    assert!(read_replies(&r.step(read_only(0, lookup, 2))).is_empty());
    assert!(read_replies(&r.step(order(1, workload(1)))).is_empty());
    let out = r.step(order(2, workload(2)));
    let answer = read_replies(&out);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].1.sequence, 2);
    let result: FsResult = palisade_wire::decode(&answer[0].1.result).unwrap();
    assert!(
        matches!(result, FsResult::Ok(FsReply::Lookup { .. })),
        "f2, created by batch 2, is found: {result:?}"
    );
}

#[test]
fn refuses_what_may_change_state_or_comes_over_another_clients_link() {
    let mut r = replica(1);
    r.step(order(1, workload(1)));
    let remove = request(
        0,
        70,
        &FsOp::Remove {
            dir: ROOT_ID,
            name: b"f1".to_vec(),
        },
    );
    assert!(read_replies(&r.step(read_only(0, remove, 0))).is_empty());
    let getattr = request(0, 71, &FsOp::GetAttr { id: ROOT_ID });
    assert!(read_replies(&r.step(read_only(1, getattr, 0))).is_empty());
    let garbage = request_raw(0, 72, vec![0xff; 9]);
    assert!(read_replies(&r.step(read_only(0, garbage, 0))).is_empty());
    assert_eq!(r.stats().reads_refused, 3);
    assert_eq!(r.stats().reads_answered, 0);
    assert_eq!(r.last_applied(), 1);
}

#[test]
fn never_answers_past_the_firewall() {
    let mut r = threshold_replica(0);
    let getattr = sealed_request(0, 80, &FsOp::GetAttr { id: ROOT_ID });
    let out = r.step(read_only(0, getattr, 0));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(r.stats().reads_refused, 1);
}

#[test]
fn sealed_answers_open_under_the_read_only_label_only() {
    let mut r = replica_with(ReplicaConfig {
        body_key: Some(body_key()),
        ..config(0)
    });
    r.step(order(1, sealed_workload(1)));
    let getattr = sealed_request(1, 90, &FsOp::GetAttr { id: ROOT_ID });
    let out = r.step(read_only(1, getattr, 1));
    let (_, reply) = read_replies(&out).remove(0);
    let plain = body_key().open_read_reply(1, 90, &reply.result).unwrap();
    assert!(matches!(
        palisade_wire::decode::<FsResult>(&plain).unwrap(),
        FsResult::Ok(FsReply::Attr(_))
    ));
    assert!(body_key().open_reply(1, 1, 90, &reply.result).is_err());
}
