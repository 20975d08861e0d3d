//! Downward through a filter (SOSP 2003 §4.1): only ORDER-certified batches, once, inside
//! the window; `FetchOrders` answered from the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use palisade_firewall::stats::reason;
use palisade_firewall::{Filter, FilterInput, FilterOutput, MAX_FETCH_ORDERS};
use palisade_wire::agreement::{OrderCertificate, Signed};
use palisade_wire::envelope::Envelope;
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::FirewallMessage;
use support::*;

fn fetch(from: u32, sequence: u64) -> FilterInput {
    FilterInput::FromBelow {
        from,
        envelope: Envelope::Execution(ExecutionMessage::FetchOrders { from: sequence }),
    }
}

#[test]
fn a_certified_order_is_forwarded_once_to_every_peer_below() {
    let cluster = cluster();
    let mut filter = top(&cluster);
    let b = batch(1, &[(0, 1), (1, 1)]);
    let out = filter.step(order_from(0, &b));
    assert_eq!(
        out,
        vec![FilterOutput::ToBelow {
            to: None,
            envelope: order_envelope(&b, certificate_by(&b, &[0, 1, 2])),
        }]
    );
    assert_eq!(filter.stats().orders_forwarded, 1);
    assert_eq!(filter.highest_forwarded(), 1);
    assert_eq!(filter.log_len(), 1);

    // The same order from every other agreement replica, within the interval: dropped.
    for from in 1..4 {
        assert!(filter.step(order_from(from, &b)).is_empty());
    }
    assert_eq!(filter.stats().dropped(reason::DUPLICATE_ORDER), 3);
    assert_eq!(filter.stats().orders_forwarded, 1);
}

#[test]
fn forged_and_truncated_certificates_are_dropped_and_counted() {
    let cluster = cluster();
    let mut filter = top(&cluster);
    let b = batch(1, &[(0, 1)]);
    let send = |filter: &mut Filter, certificate: OrderCertificate| {
        filter.step(FilterInput::FromAbove {
            from: 0,
            envelope: order_envelope(&b, certificate),
        })
    };

    // Truncated: two commits where 2f+1 = 3 are needed.
    assert!(send(&mut filter, certificate_by(&b, &[0, 1])).is_empty());
    // A duplicate signer does not count twice.
    assert!(send(&mut filter, certificate_by(&b, &[0, 1, 1])).is_empty());
    // A certificate for another batch at the same sequence.
    let other = batch(1, &[(0, 2)]);
    assert!(send(&mut filter, certificate_by(&other, &[0, 1, 2])).is_empty());
    // A commit signed by one replica but claiming another's id (forged).
    let OrderCertificate::Pbft(mut forged) = certificate_by(&b, &[0, 1, 2]);
    let mut commit = forged.commits[2].message.clone();
    commit.replica = 3;
    forged.commits[2] = Signed {
        signer: 3,
        ..forged.commits[2].clone()
    };
    forged.commits[2].message = commit;
    assert!(send(&mut filter, OrderCertificate::Pbft(forged)).is_empty());
    // A commit signed with a key that is not an agreement key.
    let OrderCertificate::Pbft(mut outsider) = certificate_by(&b, &[0, 1]);
    let stranger = Signed::sign(
        &client_key(9),
        palisade_wire::agreement::Commit {
            view: 0,
            sequence: 1,
            digest: b.batch.digest().unwrap(),
            replica: 2,
        },
    )
    .unwrap();
    outsider.commits.push(stranger);
    assert!(send(&mut filter, OrderCertificate::Pbft(outsider)).is_empty());

    assert_eq!(filter.stats().dropped(reason::BAD_CERTIFICATE), 5);
    assert_eq!(filter.log_len(), 0);
    assert_eq!(filter.stats().orders_forwarded, 0);

    // The real one still goes through afterwards.
    assert_eq!(
        orders_down(&filter.step(order_from(0, &b))),
        vec![(None, 1)]
    );
}

#[test]
fn orders_outside_the_window_and_anything_else_from_above_are_dropped() {
    let cluster = cluster();
    let mut filter = top(&cluster);
    let far = batch(MAX_AHEAD + 1, &[(0, 1)]);
    assert!(filter.step(order_from(0, &far)).is_empty());
    assert_eq!(filter.stats().dropped(reason::BEYOND_WINDOW), 1);
    let zero = batch(0, &[(0, 1)]);
    assert!(filter.step(order_from(0, &zero)).is_empty());
    assert_eq!(filter.stats().dropped(reason::OLD), 1);

    let edge = batch(MAX_AHEAD, &[(0, 1)]);
    assert_eq!(
        orders_down(&filter.step(order_from(0, &edge))),
        vec![(None, MAX_AHEAD)]
    );

    // A reply, a certified-reply-looking message or a fetch coming down: refused.
    let e = entry(1, 0, 1);
    let junk = [
        Envelope::Firewall(FirewallMessage::CertifiedReply(
            certified(&cluster, 1, std::slice::from_ref(&e))[0].clone(),
        )),
        Envelope::Execution(ExecutionMessage::FetchOrders { from: 1 }),
        Envelope::Request(request(0, 5)),
    ];
    for envelope in junk {
        assert!(filter
            .step(FilterInput::FromAbove { from: 1, envelope })
            .is_empty());
    }
    assert_eq!(filter.stats().dropped(reason::UNEXPECTED_FROM_ABOVE), 3);

    // An agreement replica id that does not exist.
    assert!(filter.step(order_from(4, &batch(2, &[]))).is_empty());
    assert_eq!(filter.stats().dropped(reason::UNKNOWN_PEER), 1);
}

#[test]
fn the_log_refuses_orders_beyond_its_byte_budget() {
    let cluster = cluster();
    let mut c = config(0, &cluster);
    c.max_log_bytes = 4096;
    let mut filter = Filter::new(c);
    let mut forwarded = 0;
    for sequence in 1..=20 {
        let b = batch(sequence, &[(0, sequence), (1, sequence)]);
        forwarded += orders_down(&filter.step(order_from(0, &b))).len();
    }
    assert!(forwarded > 0 && forwarded < 20, "forwarded {forwarded}");
    assert!(filter.log_bytes() <= 4096);
    assert_eq!(
        filter.stats().dropped(reason::LOG_FULL),
        20 - forwarded as u64
    );
}

#[test]
fn a_re_delivered_order_is_re_forwarded_at_most_once_per_interval() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    let b = batch(3, &[(0, 1)]);
    filter.step(order_from(0, &b));
    assert!(filter.step(order_from(1, &b)).is_empty());

    filter.step(FilterInput::Tick(INTERVAL));
    assert_eq!(
        orders_down(&filter.step(order_from(1, &b))),
        vec![(None, 3)]
    );
    assert!(filter.step(order_from(0, &b)).is_empty());
    assert_eq!(filter.stats().orders_reforwarded, 1);
    assert_eq!(filter.stats().dropped(reason::DUPLICATE_ORDER), 2);

    // A clock reading that goes backwards changes nothing.
    filter.step(FilterInput::Tick(Duration::ZERO));
    assert!(filter.step(order_from(0, &b)).is_empty());
}

#[test]
fn fetch_orders_is_answered_from_the_log_once_per_interval_per_asker() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    for sequence in 1..=3 {
        filter.step(order_from(0, &batch(sequence, &[(0, sequence)])));
    }
    let out = filter.step(fetch(2, 2));
    assert_eq!(orders_down(&out), vec![(Some(2), 2), (Some(2), 3)]);
    assert_eq!(out.len(), 2, "nothing goes up: the orders were held");

    // Again at once: refused; another asker is answered.
    assert!(filter.step(fetch(2, 1)).is_empty());
    assert_eq!(filter.stats().dropped(reason::FETCH_RATE_LIMITED), 1);
    assert_eq!(orders_down(&filter.step(fetch(0, 1))).len(), 3);
    filter.step(FilterInput::Tick(INTERVAL));
    assert_eq!(orders_down(&filter.step(fetch(2, 1))).len(), 3);
    assert_eq!(filter.stats().orders_served, 8);
    assert_eq!(filter.stats().fetches_answered, 3);

    // Not an execution replica of this cluster.
    assert!(filter.step(fetch(REPLICAS, 1)).is_empty());
    assert_eq!(filter.stats().dropped(reason::UNKNOWN_PEER), 1);
}

#[test]
fn one_fetch_answer_is_bounded() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    for sequence in 1..=(MAX_FETCH_ORDERS as u64 + 10) {
        filter.step(order_from(0, &batch(sequence, &[])));
    }
    let out = filter.step(fetch(0, 1));
    let sent = orders_down(&out);
    assert_eq!(sent.len(), MAX_FETCH_ORDERS);
    assert_eq!(sent[0], (Some(0), 1));
}

#[test]
fn missing_orders_are_fetched_from_above_with_the_filters_own_sequence() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    filter.step(order_from(0, &batch(1, &[(0, 1)])));
    filter.step(order_from(0, &batch(2, &[(0, 2)])));
    filter.step(order_from(0, &batch(4, &[(0, 4)])));

    // A replica asks from a sequence nobody ordered yet, far ahead: the filter asks
    // above from ITS first gap (3), not from the replica's number.
    let out = filter.step(fetch(1, 1_000_000));
    assert_eq!(
        out,
        vec![FilterOutput::ToAbove {
            to: None,
            envelope: Envelope::Execution(ExecutionMessage::FetchOrders { from: 3 }),
        }]
    );
    // Another asker within the interval: answered from the log, no second fetch up.
    let out = filter.step(fetch(2, 3));
    assert_eq!(orders_down(&out), vec![(Some(2), 4)]);
    assert_eq!(out.len(), 1);
    assert_eq!(filter.stats().fetches_sent, 1);

    // The missing order comes back from above: forwarded down once, to everyone.
    let out = filter.step(order_from(1, &batch(3, &[(0, 3)])));
    assert_eq!(orders_down(&out), vec![(None, 3)]);
}

/// A reply lost on its way up comes again without a client retransmission: an order
/// whose replies are overdue goes down again, once per interval, until they came.
#[test]
fn an_order_whose_replies_are_overdue_goes_down_again() {
    let cluster = cluster();
    let mut c = config(0, &cluster);
    c.overdue_after = Duration::from_millis(500);
    let mut filter = Filter::new(c);
    let b = batch(1, &[(0, 1), (1, 1)]);
    filter.step(FilterInput::Tick(Duration::from_millis(10)));
    assert_eq!(orders_down(&filter.step(order_from(0, &b))).len(), 1);
    let due = Duration::from_millis(510);
    assert_eq!(filter.next_wake(), Some(due));
    assert!(
        orders_down(&filter.step(FilterInput::Tick(due - Duration::from_millis(1)))).is_empty()
    );
    assert_eq!(
        orders_down(&filter.step(FilterInput::Tick(due))),
        vec![(None, 1)]
    );
    assert_eq!(filter.stats().orders_overdue, 1);
    // One reply comes: the other is still overdue, an interval later.
    let certified = certified(&cluster, 1, &entries(&b));
    filter.step(from_below(
        0,
        FirewallMessage::CertifiedReply(certified[0].clone()),
    ));
    assert_eq!(
        filter.next_wake(),
        Some(due * 2 - Duration::from_millis(10))
    );
    // Both came: nothing is overdue any more.
    filter.step(from_below(
        0,
        FirewallMessage::CertifiedReply(certified[1].clone()),
    ));
    assert_eq!(filter.next_wake(), None);
    assert!(orders_down(&filter.step(FilterInput::Tick(due * 4))).is_empty());
    assert_eq!(filter.stats().orders_overdue, 1);
}
