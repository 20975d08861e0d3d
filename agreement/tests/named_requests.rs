//! Pre-prepares that name large requests (TOCS §5.1, separate request transmission):
//! the exact outputs of the primary that names them and of backups that rebuild,
//! fetch, or find other bytes under a name.

// Fixture helpers outside #[test] functions: a broken fixture should panic.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{batch_at, msg, replica, request, signed_pre_prepare, time};
use palisade_agreement::{Input, Output, Replica, TimerKind};
use palisade_wire::agreement::{AgreementMessage, Batch, BatchEntry, Prepare, Request, Signed};

/// Requests of this many payload bytes or more go by name in these tests.
const NAMED_FROM: usize = 64;

fn named_replica(id: u32) -> Replica {
    replica(id, |c| {
        c.batch_delay = Duration::ZERO;
        c.named_requests_from = NAMED_FROM;
    })
}

/// The primary's pre-prepare of `batch` as it travels: large requests by name.
fn named_pre_prepare(batch: &Batch) -> AgreementMessage {
    let pre_prepare = signed_pre_prepare(0, 0, 1, batch);
    AgreementMessage::PrePrepareNamed {
        pre_prepare,
        entries: batch
            .requests
            .iter()
            .map(|r| BatchEntry::of(r, NAMED_FROM))
            .collect(),
    }
}

/// What a backup does once it accepts the pre-prepare of `batch` at sequence 1: it
/// prepares, and starts its request timers unless a waiting request started them.
fn accepted(backup: u32, batch: &Batch, timers_running: bool) -> Vec<Output> {
    let prepare = Prepare {
        view: 0,
        sequence: 1,
        digest: batch.digest().unwrap(),
        replica: backup,
    };
    let mut out = vec![Output::Broadcast(AgreementMessage::Prepare(prepare))];
    if !timers_running {
        out.push(Output::SetTimer {
            kind: TimerKind::ViewChange,
            after: Duration::from_millis(500),
        });
        out.push(Output::SetTimer {
            kind: TimerKind::Status,
            after: Duration::from_millis(100),
        });
    }
    out
}

fn large(id: u64) -> Signed<Request> {
    request(1, id, &[7; NAMED_FROM])
}

fn fetch(batch: &Batch) -> Vec<Output> {
    vec![Output::Send {
        to: 0,
        message: AgreementMessage::FetchBatch {
            sequence: 1,
            digest: batch.digest().unwrap(),
        },
    }]
}

#[test]
fn primary_names_large_requests_and_sends_small_ones_inline() {
    let mut p = replica(0, |c| {
        c.named_requests_from = NAMED_FROM;
        c.max_batch_requests = 2;
    });
    let small = request(2, 1, b"x");
    let big = large(1);
    p.step(Input::ClientRequest(small.clone()));
    let out = p.step(Input::ClientRequest(big.clone()));
    let batch = batch_at(time(1_000), vec![small.clone(), big.clone()]);
    let [Output::Broadcast(AgreementMessage::PrePrepareNamed {
        pre_prepare,
        entries,
    })] = &out[..]
    else {
        panic!("expected one named pre-prepare, got {out:?}");
    };
    assert_eq!(pre_prepare.message.digest, batch.digest().unwrap());
    assert_eq!(
        entries,
        &vec![
            BatchEntry::Inline(small),
            BatchEntry::Named {
                client: 1,
                request_id: 1,
                signature: big.signature,
            },
        ]
    );
    // The primary itself keeps the whole batch, to answer fetches.
    let fetched = p.step(msg(
        2,
        AgreementMessage::FetchBatch {
            sequence: 1,
            digest: batch.digest().unwrap(),
        },
    ));
    assert_eq!(
        fetched,
        vec![Output::Send {
            to: 2,
            message: AgreementMessage::BatchBody { sequence: 1, batch },
        }]
    );
}

#[test]
fn backup_holding_the_named_requests_rebuilds_the_batch_and_prepares() {
    let mut b = named_replica(1);
    let (small, big) = (request(2, 1, b"x"), large(1));
    // The client's copy (over its link) comes first, as it usually does.
    b.step(Input::LinkRequest(big.clone()));
    let batch = batch_at(time(1_000), vec![small, big]);
    assert_eq!(
        b.step(msg(0, named_pre_prepare(&batch))),
        accepted(1, &batch, true)
    );
    assert_eq!(b.stats().pre_prepares_rebuilt, 1);
    assert_eq!(b.stats().pre_prepares_fetched, 0);
}

#[test]
fn backup_lacking_a_named_request_fetches_the_batch_from_the_primary() {
    let mut b = named_replica(1);
    let batch = batch_at(time(1_000), vec![large(1)]);
    assert_eq!(b.step(msg(0, named_pre_prepare(&batch))), fetch(&batch));
    assert_eq!(b.stats().pre_prepares_fetched, 1);
    let body = AgreementMessage::BatchBody {
        sequence: 1,
        batch: batch.clone(),
    };
    assert_eq!(b.step(msg(0, body.clone())), accepted(1, &batch, false));
    // A second copy of the body finds the pre-prepare accepted: nothing more.
    assert!(b.step(msg(0, body)).is_empty());
    // Nor does a second copy of the pre-prepare make it fetch again.
    assert!(b.step(msg(0, named_pre_prepare(&batch))).is_empty());
    assert_eq!(b.stats().pre_prepares_fetched, 1);
}

#[test]
fn a_named_pre_prepare_only_counts_from_the_primary_itself() {
    // Replica 2 hands on the primary's named pre-prepare: refused before any rebuild,
    // signature check or fetch.
    let mut b = named_replica(1);
    let batch = batch_at(time(1_000), vec![large(1)]);
    assert!(b.step(msg(2, named_pre_prepare(&batch))).is_empty());
    assert_eq!(b.stats().messages_rejected, 1);
    assert_eq!(b.stats().pre_prepares_fetched, 0);
}

#[test]
fn late_client_copy_completes_an_awaited_pre_prepare() {
    let mut b = named_replica(1);
    let big = large(1);
    let batch = batch_at(time(1_000), vec![big.clone()]);
    assert_eq!(b.step(msg(0, named_pre_prepare(&batch))), fetch(&batch));
    // The client's own copy overtakes the fetched body.
    assert_eq!(b.step(Input::LinkRequest(big)), accepted(1, &batch, false));
    assert_eq!(b.stats().pre_prepares_rebuilt, 1);
    // The fetched body arrives after all: the slot has it already.
    assert!(b
        .step(msg(0, AgreementMessage::BatchBody { sequence: 1, batch }))
        .is_empty());
}

#[test]
fn other_bytes_under_a_named_requests_signature_are_not_agreed_on() {
    // A faulty client sends this backup a payload other than the one it signed (over
    // its own link, so admitted unchecked), and the primary the signed one.
    let mut b = named_replica(1);
    let signed = large(1);
    let mut forged = signed.clone();
    forged.message.payload = vec![9; NAMED_FROM].into();
    b.step(Input::LinkRequest(forged));
    let batch = batch_at(time(1_000), vec![signed]);
    // The rebuilt batch does not hash to the primary's digest: fetch it.
    assert_eq!(b.step(msg(0, named_pre_prepare(&batch))), fetch(&batch));
    // The primary's batch carries the request whose signature checks: accepted.
    assert_eq!(
        b.step(msg(
            0,
            AgreementMessage::BatchBody {
                sequence: 1,
                batch: batch.clone()
            }
        )),
        accepted(1, &batch, true)
    );
    // A body under the right digest but with a request the client never signed is
    // refused whatever the name says.
    let mut c = named_replica(2);
    let mut unsigned = large(1);
    unsigned.message.payload = vec![5; NAMED_FROM].into();
    let bad = batch_at(time(1_000), vec![unsigned]);
    assert_eq!(c.step(msg(0, named_pre_prepare(&bad))), fetch(&bad));
    assert!(c
        .step(msg(
            0,
            AgreementMessage::BatchBody {
                sequence: 1,
                batch: bad
            }
        ))
        .is_empty());
    assert_eq!(c.stats().messages_invalid, 1);
}
