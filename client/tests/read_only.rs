//! Exact-output tests of the read-only path (`palisade_client::read_only`, TOCS §5.1.3):
//! straight to the execution replicas with `after`, complete on 2g+1 equal answers,
//! ordered on disagreement or when `read_only_wait` passes.

// Test fixtures: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use palisade_client::{Client, ClientConfig, ClientInput, ClientOutput, ClientTimer};
use palisade_wire::execution::Reply;

mod support;
use support::{client_key, exec_key, ms, signed_request, CLIENT};

const WAIT: Duration = Duration::from_millis(5);

fn client(read_only_wait: Duration) -> Client {
    let config = ClientConfig {
        read_only_wait,
        ..support::config()
    };
    Client::new(config, client_key())
}

/// What a read that leaves its read-only phase at once sends: the request to agreement,
/// and the retransmission timer.
fn now_ordered(id: u64, payload: &[u8]) -> Vec<ClientOutput> {
    vec![
        ClientOutput::SendRequest {
            to: None,
            request: signed_request(id, payload),
        },
        ClientOutput::SetTimer {
            kind: ClientTimer::Retransmit,
            after: ms(100),
        },
    ]
}

/// Submits read `payload`, which must get request id `id` and go out with `after`.
fn expect_read_after(c: &mut Client, id: u64, payload: &[u8], after: u64, now: Duration) {
    let out = c.step(read(payload), now);
    assert_eq!(
        out[1],
        ClientOutput::SendReadOnly {
            request: signed_request(id, payload),
            after,
        }
    );
}

fn read(payload: &[u8]) -> ClientInput {
    ClientInput::SubmitRead {
        payload: payload.to_vec(),
    }
}

/// Replica `replica`'s answer to request `id`, read at `sequence`, over its own link.
fn answer(replica: u32, id: u64, sequence: u64, result: &[u8]) -> ClientInput {
    ClientInput::ReadOnlyReply {
        from: replica,
        reply: Reply {
            sequence,
            client: CLIENT,
            request_id: id,
            result: result.to_vec(),
            replica,
        },
    }
}

/// An ordered reply of replica `replica`, over its link, at `sequence`.
fn ordered(replica: u32, id: u64, sequence: u64, result: &[u8]) -> ClientInput {
    ClientInput::LinkReply {
        from: replica,
        reply: palisade_crypto::sign_batch_replies(
            &exec_key(replica),
            vec![Reply {
                sequence,
                client: CLIENT,
                request_id: id,
                result: result.to_vec(),
                replica,
            }],
        )
        .remove(0),
    }
}

#[test]
fn a_read_goes_to_the_replicas_and_completes_on_all_three_equal_answers() {
    let mut c = client(WAIT);
    assert_eq!(
        c.step(read(b"getattr"), ms(10)),
        vec![
            ClientOutput::Accepted { request_id: 1 },
            ClientOutput::SendReadOnly {
                request: signed_request(1, b"getattr"),
                after: 0,
            },
            ClientOutput::SetTimer {
                kind: ClientTimer::ReadOnly,
                after: WAIT,
            },
        ]
    );
    assert_eq!(c.step(answer(0, 1, 6, b"attrs"), ms(11)), vec![]);
    assert_eq!(c.step(answer(2, 1, 6, b"attrs"), ms(11)), vec![]);
    assert_eq!(c.outstanding(), vec![1], "g+1 equal answers are not enough");
    assert_eq!(
        c.step(answer(1, 1, 6, b"attrs"), ms(12)),
        vec![
            ClientOutput::CompleteReadOnly {
                request_id: 1,
                sequence: 6,
                result: b"attrs".to_vec(),
            },
            ClientOutput::CancelTimer(ClientTimer::ReadOnly),
        ]
    );
    assert_eq!(c.stats().reads_unordered, 1);
    assert!(c.outstanding().is_empty());
    // The next read must not see a state older than the one just read.
    expect_read_after(&mut c, 2, b"lookup", 6, ms(13));
}

#[test]
fn after_is_the_highest_sequence_this_client_accepted() {
    let mut c = client(WAIT);
    c.step(
        ClientInput::Submit {
            payload: b"write".to_vec(),
        },
        ms(1),
    );
    c.step(ordered(0, 1, 41, b"ok"), ms(2));
    let out = c.step(ordered(2, 1, 41, b"ok"), ms(2));
    assert!(out.contains(&ClientOutput::Complete {
        request_id: 1,
        sequence: 41,
        result: b"ok".to_vec(),
    }));
    expect_read_after(&mut c, 2, b"read", 41, ms(3));
}

#[test]
fn equal_bytes_from_different_sequences_complete_at_the_highest() {
    let mut c = client(WAIT);
    c.step(read(b"getattr"), ms(10));
    c.step(answer(1, 1, 7, b"attrs"), ms(11));
    c.step(answer(0, 1, 6, b"attrs"), ms(11));
    assert_eq!(
        c.step(answer(2, 1, 9, b"attrs"), ms(12)),
        vec![
            ClientOutput::CompleteReadOnly {
                request_id: 1,
                sequence: 9,
                result: b"attrs".to_vec(),
            },
            ClientOutput::CancelTimer(ClientTimer::ReadOnly),
        ]
    );
    expect_read_after(&mut c, 2, b"lookup", 9, ms(13));
}

#[test]
fn different_bytes_order_the_read() {
    let mut c = client(WAIT);
    c.step(read(b"getattr"), ms(10));
    assert_eq!(c.step(answer(0, 1, 6, b"attrs"), ms(11)), vec![]);
    let mut expected = now_ordered(1, b"getattr");
    expected.push(ClientOutput::CancelTimer(ClientTimer::ReadOnly));
    assert_eq!(c.step(answer(1, 1, 7, b"attrs2"), ms(12)), expected);
    assert_eq!(c.stats().reads_disagreed, 1);
    // Late answers of the read-only phase count for nothing now...
    assert_eq!(c.step(answer(2, 1, 6, b"attrs"), ms(13)), vec![]);
    assert_eq!(c.stats().read_answers_dropped, 1);
    // ...and the ordered replies complete it as any request.
    c.step(ordered(0, 1, 8, b"attrs2"), ms(14));
    let out = c.step(ordered(1, 1, 8, b"attrs2"), ms(14));
    assert!(out.contains(&ClientOutput::Complete {
        request_id: 1,
        sequence: 8,
        result: b"attrs2".to_vec(),
    }));
}

#[test]
fn a_wrong_answer_orders_the_read_instead_of_being_outvoted() {
    let mut c = client(WAIT);
    c.step(read(b"read"), ms(10));
    c.step(answer(0, 1, 6, b"data"), ms(11));
    c.step(answer(1, 1, 6, b"data"), ms(11));
    let out = c.step(answer(2, 1, 6, b"lies"), ms(11));
    assert_eq!(
        out[0],
        ClientOutput::SendRequest {
            to: None,
            request: signed_request(1, b"read"),
        }
    );
    assert!(!out
        .iter()
        .any(|o| matches!(o, ClientOutput::CompleteReadOnly { .. })));
}

#[test]
fn a_silent_replica_orders_the_read_when_the_wait_passes() {
    let mut c = client(WAIT);
    c.step(read(b"getattr"), ms(10));
    c.step(answer(0, 1, 6, b"attrs"), ms(11));
    c.step(answer(1, 1, 6, b"attrs"), ms(11));
    assert_eq!(
        c.step(ClientInput::Timer(ClientTimer::ReadOnly), ms(15)),
        now_ordered(1, b"getattr")
    );
    assert_eq!(c.stats().reads_timed_out, 1);
    // A replica is away: reads are ordered straight away for a while...
    let out = c.step(read(b"lookup"), ms(20));
    assert_eq!(
        out[1],
        ClientOutput::SendRequest {
            to: None,
            request: signed_request(2, b"lookup"),
        }
    );
    // ...and tried unordered again once the pause is over.
    let later = ms(15) + palisade_client::read_only::READ_ONLY_PAUSE;
    expect_read_after(&mut c, 3, b"read", 0, later);
}

#[test]
fn answers_that_are_not_what_they_claim_are_dropped() {
    let mut c = client(WAIT);
    c.step(read(b"getattr"), ms(10));
    // Over replica 1's link, naming replica 0.
    let forged = ClientInput::ReadOnlyReply {
        from: 1,
        reply: Reply {
            sequence: 6,
            client: CLIENT,
            request_id: 1,
            result: b"attrs".to_vec(),
            replica: 0,
        },
    };
    assert_eq!(c.step(forged, ms(11)), vec![]);
    // Another client's, and one for no request.
    let other = ClientInput::ReadOnlyReply {
        from: 2,
        reply: Reply {
            sequence: 6,
            client: CLIENT + 1,
            request_id: 1,
            result: b"attrs".to_vec(),
            replica: 2,
        },
    };
    assert_eq!(c.step(other, ms(11)), vec![]);
    assert_eq!(c.step(answer(2, 99, 6, b"attrs"), ms(11)), vec![]);
    // A second answer from one replica counts once.
    c.step(answer(0, 1, 6, b"attrs"), ms(11));
    assert_eq!(c.step(answer(0, 1, 6, b"attrs"), ms(11)), vec![]);
    assert_eq!(c.stats().read_answers_dropped, 4);
    assert_eq!(c.outstanding(), vec![1]);
}

#[test]
fn without_a_wait_a_read_is_an_ordinary_request() {
    let mut c = client(Duration::ZERO);
    let mut expected = vec![ClientOutput::Accepted { request_id: 1 }];
    expected.extend(now_ordered(1, b"getattr"));
    assert_eq!(c.step(read(b"getattr"), ms(10)), expected);
}
