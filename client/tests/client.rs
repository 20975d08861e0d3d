//! Exact-output tests of single client steps.

// Test fixtures: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]

use palisade_client::{Client, ClientConfig, ClientInput, ClientOutput, ClientTimer};
use palisade_wire::agreement::MAX_REQUEST_PAYLOAD;
use palisade_wire::execution::Reply;

mod support;
use support::{client_key, exec_key, ms, signed_request, CLIENT};

/// `reply` as replica `signer` sends it: a batch of one, under `signer`'s key.
fn signed_reply(signer: u32, reply: Reply) -> palisade_wire::execution::BatchReply {
    palisade_crypto::sign_batch_replies(&exec_key(signer), vec![reply]).remove(0)
}

fn client(window: usize) -> Client {
    client_from(window, 1)
}

fn client_from(window: usize, first_request_id: u64) -> Client {
    client_with(window, 1024, first_request_id)
}

fn client_with(window: usize, replay_window: u64, first_request_id: u64) -> Client {
    let config = ClientConfig {
        window,
        replay_window,
        first_request_id,
        ..support::config()
    };
    Client::new(config, client_key())
}

/// Replica `replica`'s reply at sequence 9 to this client's request `request_id`.
fn batch_reply(
    replica: u32,
    request_id: u64,
    result: &[u8],
) -> palisade_wire::execution::BatchReply {
    signed_reply(
        replica,
        Reply {
            sequence: 9,
            client: CLIENT,
            request_id,
            result: result.to_vec(),
            replica,
        },
    )
}

fn reply(replica: u32, request_id: u64, result: &[u8]) -> ClientInput {
    ClientInput::Reply(batch_reply(replica, request_id, result))
}

fn submit(payload: &[u8]) -> ClientInput {
    ClientInput::Submit {
        payload: payload.to_vec(),
    }
}

#[test]
fn submit_signs_multicasts_and_arms_the_timer() {
    let mut c = client(4);
    let out = c.step(submit(b"op"), ms(1000));
    assert_eq!(
        out,
        vec![
            ClientOutput::Accepted { request_id: 1 },
            ClientOutput::SendRequest {
                to: None,
                request: signed_request(1, b"op"),
            },
            ClientOutput::SetTimer {
                kind: ClientTimer::Retransmit,
                after: ms(100),
            },
        ]
    );
    // The signature checks against the client's public key.
    if let ClientOutput::SendRequest { request, .. } = &out[1] {
        request.verify(&client_key().verifying_key()).unwrap();
    }
    // A second submission gets the next id; the timer stays as armed (earliest due).
    let out = c.step(submit(b"op2"), ms(1050));
    assert_eq!(
        out,
        vec![
            ClientOutput::Accepted { request_id: 2 },
            ClientOutput::SendRequest {
                to: None,
                request: signed_request(2, b"op2"),
            },
        ]
    );
    assert_eq!(c.outstanding(), vec![1, 2]);
}

#[test]
fn full_window_answers_busy_and_frees_on_completion() {
    let mut c = client(1);
    c.step(submit(b"a"), ms(0));
    assert_eq!(c.step(submit(b"b"), ms(1)), vec![ClientOutput::Busy]);
    assert_eq!(c.stats().busy, 1);
    assert_eq!(c.step(reply(0, 1, b"r"), ms(2)), vec![]);
    assert_eq!(
        c.step(reply(2, 1, b"r"), ms(3)),
        vec![
            ClientOutput::RepliedThrough(9),
            ClientOutput::Complete {
                request_id: 1,
                sequence: 9,
                result: b"r".to_vec(),
            },
            ClientOutput::CancelTimer(ClientTimer::Retransmit),
        ]
    );
    let out = c.step(submit(b"b"), ms(4));
    assert_eq!(out[0], ClientOutput::Accepted { request_id: 2 });
}

/// A request whose sends were lost holds the window although later ones complete: the
/// ids in flight never span more than the replicas' anti-replay window, so the oldest
/// stays inside it until it is answered.
#[test]
fn the_oldest_request_in_flight_holds_the_replay_window() {
    let mut c = client_with(8, 3, 1);
    for _ in 0..3 {
        c.step(submit(b"op"), ms(0));
    }
    for id in [2, 3] {
        c.step(reply(0, id, b"r"), ms(1));
        c.step(reply(1, id, b"r"), ms(1));
    }
    assert_eq!(c.outstanding(), vec![1]);
    assert_eq!(c.step(submit(b"op"), ms(2)), vec![ClientOutput::Busy]);
    c.step(reply(0, 1, b"r"), ms(3));
    let out = c.step(reply(1, 1, b"r"), ms(3));
    assert!(
        matches!(out[..], [ClientOutput::Complete { request_id: 1, .. }, ..]),
        "{out:?}"
    );
    assert_eq!(
        c.step(submit(b"op"), ms(4))[0],
        ClientOutput::Accepted { request_id: 4 }
    );
}

#[test]
fn g_plus_one_matching_replies_complete_once() {
    let mut c = client(4);
    c.step(submit(b"a"), ms(0));
    assert_eq!(c.step(reply(0, 1, b"good"), ms(1)), vec![]);
    assert_eq!(c.step(reply(1, 1, b"evil"), ms(2)), vec![]);
    let out = c.step(reply(2, 1, b"good"), ms(3));
    assert_eq!(out[0], ClientOutput::RepliedThrough(9));
    assert_eq!(
        out[1],
        ClientOutput::Complete {
            request_id: 1,
            sequence: 9,
            result: b"good".to_vec(),
        }
    );
    // Late replies for a finished request are counted, never completed again.
    assert_eq!(c.step(reply(1, 1, b"good"), ms(4)), vec![]);
    assert_eq!(c.stats().completed, 1);
    assert_eq!(c.stats().replies_counted, 3);
    assert_eq!(c.stats().replies_unknown_request, 1);
}

#[test]
fn one_replica_never_counts_twice() {
    let mut c = client(4);
    c.step(submit(b"a"), ms(0));
    assert_eq!(c.step(reply(0, 1, b"r"), ms(1)), vec![]);
    assert_eq!(c.step(reply(0, 1, b"r"), ms(2)), vec![]);
    assert_eq!(c.stats().replies_duplicate, 1);
    assert_eq!(c.outstanding(), vec![1]);
}

#[test]
fn a_replica_with_two_replies_is_faulty_and_excluded() {
    let mut c = client(4);
    c.step(submit(b"a"), ms(0));
    assert_eq!(c.step(reply(0, 1, b"x"), ms(1)), vec![]);
    assert_eq!(c.step(reply(0, 1, b"y"), ms(2)), vec![]);
    assert_eq!(c.stats().replies_conflicting, 1);
    assert_eq!(
        c.faulty_replicas().iter().copied().collect::<Vec<_>>(),
        vec![0]
    );
    // Replica 0 is out for this request: its "x" plus replica 1's "x" is not g+1.
    assert_eq!(c.step(reply(0, 1, b"x"), ms(3)), vec![]);
    assert_eq!(c.step(reply(1, 1, b"x"), ms(4)), vec![]);
    assert_eq!(c.outstanding(), vec![1]);
    let out = c.step(reply(2, 1, b"x"), ms(5));
    assert!(matches!(
        out[1],
        ClientOutput::Complete { request_id: 1, .. }
    ));
}

#[test]
fn the_first_completion_of_a_batch_reports_it_answered() {
    let mut c = client(4);
    c.step(submit(b"a"), ms(0));
    c.step(submit(b"b"), ms(0));
    c.step(reply(0, 1, b"x"), ms(1));
    let first = c.step(reply(1, 1, b"x"), ms(2));
    assert_eq!(first[0], ClientOutput::RepliedThrough(9));
    // The second request of the same batch completes without a second report.
    c.step(reply(0, 2, b"y"), ms(3));
    let second = c.step(reply(1, 2, b"y"), ms(4));
    assert!(
        matches!(second[0], ClientOutput::Complete { request_id: 2, .. }),
        "{second:?}"
    );
    assert!(!second
        .iter()
        .any(|o| matches!(o, ClientOutput::RepliedThrough(_))));
}

#[test]
fn bad_replies_are_dropped_and_counted() {
    let mut c = client(4);
    c.step(submit(b"a"), ms(0));
    // Signed by replica 1's key but claiming to be replica 0.
    let mut forged = signed_reply(
        1,
        Reply {
            sequence: 9,
            client: CLIENT,
            request_id: 1,
            result: b"r".to_vec(),
            replica: 0,
        },
    );
    assert_eq!(c.step(ClientInput::Reply(forged.clone()), ms(1)), vec![]);
    // Tampered result under a valid signer.
    forged = signed_reply(
        1,
        Reply {
            sequence: 9,
            client: CLIENT,
            request_id: 1,
            result: b"r".to_vec(),
            replica: 1,
        },
    );
    forged.message.result = b"s".to_vec();
    assert_eq!(c.step(ClientInput::Reply(forged), ms(2)), vec![]);
    // Unknown replica id.
    let unknown = signed_reply(
        3,
        Reply {
            sequence: 9,
            client: CLIENT,
            request_id: 1,
            result: b"r".to_vec(),
            replica: 3,
        },
    );
    assert_eq!(c.step(ClientInput::Reply(unknown), ms(3)), vec![]);
    // For another client, and for a request never sent.
    let other = signed_reply(
        0,
        Reply {
            sequence: 9,
            client: CLIENT + 1,
            request_id: 1,
            result: b"r".to_vec(),
            replica: 0,
        },
    );
    assert_eq!(c.step(ClientInput::Reply(other), ms(4)), vec![]);
    assert_eq!(c.step(reply(0, 77, b"r"), ms(5)), vec![]);
    let s = c.stats();
    assert_eq!(
        (
            s.replies_invalid,
            s.replies_wrong_client,
            s.replies_unknown_request,
            s.replies_counted
        ),
        (3, 1, 1, 0)
    );
    assert_eq!(c.outstanding(), vec![1]);
}

/// A reply over the link of the replica it names counts without its signature (the link
/// authenticates it); over any other replica's link it is checked as usual.
#[test]
fn a_reply_over_its_replicas_own_link_counts_without_a_signature_check() {
    let mut c = client(4);
    c.step(submit(b"a"), ms(0));
    let unsigned = |replica: u32| {
        let mut r = batch_reply(replica, 1, b"r");
        r.signature = palisade_wire::agreement::Signature([0; 64]);
        r
    };
    // Replica 2 relays a reply naming replica 0: its link does not vouch for replica 0,
    // and the signature does not hold.
    let relayed = ClientInput::LinkReply {
        from: 2,
        reply: unsigned(0),
    };
    assert_eq!(c.step(relayed, ms(1)), vec![]);
    assert_eq!(c.stats().replies_invalid, 1);
    // Replicas 0 and 1 over their own links: g+1 = 2 matching replies complete it.
    let own = |replica| ClientInput::LinkReply {
        from: replica,
        reply: unsigned(replica),
    };
    assert_eq!(c.step(own(0), ms(2)), vec![]);
    let out = c.step(own(1), ms(3));
    assert_eq!(
        out[..2],
        [
            ClientOutput::RepliedThrough(9),
            ClientOutput::Complete {
                request_id: 1,
                sequence: 9,
                result: b"r".to_vec(),
            },
        ]
    );
    let s = c.stats();
    assert_eq!(
        (
            s.replies_link_authenticated,
            s.replies_counted,
            s.replies_invalid
        ),
        (2, 2, 1)
    );
}

#[test]
fn retransmits_due_requests_with_backoff() {
    let mut c = client(4);
    c.step(submit(b"a"), ms(0));
    c.step(submit(b"b"), ms(60));
    // Fired early (a noisy runtime): nothing due, re-armed for the earliest request.
    assert_eq!(
        c.step(ClientInput::Timer(ClientTimer::Retransmit), ms(90)),
        vec![ClientOutput::SetTimer {
            kind: ClientTimer::Retransmit,
            after: ms(10),
        }]
    );
    // Request 1 is due at 100; request 2 at 160.
    assert_eq!(
        c.step(ClientInput::Timer(ClientTimer::Retransmit), ms(100)),
        vec![
            ClientOutput::SendRequest {
                to: None,
                request: signed_request(1, b"a"),
            },
            ClientOutput::SetTimer {
                kind: ClientTimer::Retransmit,
                after: ms(60),
            },
        ]
    );
    // At 160 request 2 goes again; request 1 is next due at 100 + 200 = 300.
    assert_eq!(
        c.step(ClientInput::Timer(ClientTimer::Retransmit), ms(160)),
        vec![
            ClientOutput::SendRequest {
                to: None,
                request: signed_request(2, b"b"),
            },
            ClientOutput::SetTimer {
                kind: ClientTimer::Retransmit,
                after: ms(140),
            },
        ]
    );
    assert_eq!(c.stats().retransmissions, 2);
    // Completing both cancels the timer.
    for id in [1, 2] {
        c.step(reply(0, id, b"r"), ms(170));
    }
    c.step(reply(1, 1, b"r"), ms(171));
    assert_eq!(
        c.step(reply(1, 2, b"r"), ms(172)),
        vec![
            ClientOutput::Complete {
                request_id: 2,
                sequence: 9,
                result: b"r".to_vec(),
            },
            ClientOutput::CancelTimer(ClientTimer::Retransmit),
        ]
    );
}

#[test]
fn oversized_payload_is_refused_without_using_an_id() {
    let mut c = client(4);
    assert_eq!(
        c.step(submit(&vec![0; MAX_REQUEST_PAYLOAD + 1]), ms(0)),
        vec![ClientOutput::Refused {
            reason: "payload larger than MAX_REQUEST_PAYLOAD"
        }]
    );
    assert_eq!(
        c.step(submit(b"ok"), ms(1))[0],
        ClientOutput::Accepted { request_id: 1 }
    );
}

#[test]
fn ids_start_at_the_configured_base_so_a_restart_never_reuses_them() {
    // Before a restart: ids 1, 2.
    let mut before = client(4);
    let out = before.step(submit(b"a"), ms(0));
    assert_eq!(out[0], ClientOutput::Accepted { request_id: 1 });
    // After it, from a clock-derived base (microseconds since the epoch).
    let base = 1_764_115_200_000_000;
    let mut after = client_from(4, base);
    for (i, payload) in [b"x", b"y"].into_iter().enumerate() {
        let out = after.step(submit(payload), ms(5));
        let id = base + i as u64;
        assert_eq!(out[0], ClientOutput::Accepted { request_id: id });
        assert_eq!(
            out[1],
            ClientOutput::SendRequest {
                to: None,
                request: signed_request(id, payload),
            }
        );
    }
    // A zero base still starts at 1 (id 0 is never valid at agreement).
    let mut zero = client_from(4, 0);
    assert_eq!(
        zero.step(submit(b"z"), ms(0))[0],
        ClientOutput::Accepted { request_id: 1 }
    );
    // Replies for the new ids complete them.
    after.step(reply(0, base, b"r"), ms(6));
    let out = after.step(reply(1, base, b"r"), ms(6));
    assert!(out.iter().any(|o| matches!(
        o,
        ClientOutput::Complete { request_id, .. } if *request_id == base
    )));
}
