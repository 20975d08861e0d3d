//! Upper rows with a vouch wait (`vouch.rs`): a claim that every filter of the row below
//! sent goes up without a pairing; one that only part of the row sent waits, then is
//! checked; a false claim is dropped when checked and never checked twice; and what waits
//! is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use palisade_firewall::stats::reason;
use palisade_firewall::{Filter, FilterInput};
use palisade_wire::agreement::OrderedBatch;
use palisade_wire::firewall::{FirewallMessage, ThresholdSignature};
use support::*;

const WAIT: Duration = Duration::from_millis(4);

fn vouching_top(cluster: &Cluster, b: &OrderedBatch) -> Filter {
    let mut c = config(0, cluster);
    c.vouch_wait = WAIT;
    c.validate().unwrap();
    let mut filter = Filter::new(c);
    assert_eq!(orders_down(&filter.step(order_from(0, b))).len(), 1);
    filter
}

/// The filter's next wake-up if it is for a vouch deadline (the support config puts the
/// overdue-order wake-ups an hour out).
fn vouch_wake(filter: &Filter) -> Option<Duration> {
    filter
        .next_wake()
        .filter(|w| *w < Duration::from_secs(3600))
}

#[test]
fn a_claim_the_whole_row_below_sent_goes_up_without_a_pairing() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1), (0, 2), (1, 1)]);
    let mut filter = vouching_top(&cluster, &b);
    let certified = certified(&cluster, 1, &entries(&b));

    // The first copy waits for the other filter below.
    assert!(send_reply(&mut filter, 0, &certified[0]).is_empty());
    assert!(send_reply(&mut filter, 0, &certified[1]).is_empty());
    // The same copy again from the same filter: it waits already, nothing is checked.
    assert!(send_reply(&mut filter, 0, &certified[0]).is_empty());
    assert_eq!(filter.stats().claims_checked, 0);
    assert_eq!(vouch_wake(&filter), Some(WAIT));
    assert!(filter.pending_bytes(0) > 0);
    // The other filter's copy of a different reply of the batch vouches for the claim:
    // both waiting replies and this one go up, each once.
    let mut out = replies_up(&send_reply(&mut filter, 1, &certified[2]));
    out.sort_by_key(|r| (r.entry.client, r.entry.request_id));
    assert_eq!(out, certified);
    assert_eq!(filter.stats().claims_vouched, 1);
    assert_eq!(filter.stats().claims_checked, 0);
    assert_eq!(vouch_wake(&filter), None);
    assert_eq!(filter.pending_bytes(0), 0);
    // Late copies are duplicates; nothing more goes up and nothing is checked.
    assert!(send_reply(&mut filter, 1, &certified[0]).is_empty());
    assert!(send_reply(&mut filter, 0, &certified[2]).is_empty());
    assert_eq!(filter.stats().dropped(reason::DUPLICATE_REPLY), 2);
    assert_eq!(filter.stats().replies_forwarded, 3);
    assert_eq!(filter.stats().claims_checked, 0);
}

#[test]
fn a_claim_only_part_of_the_row_sent_is_checked_at_its_deadline() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1), (1, 1)]);
    let mut filter = vouching_top(&cluster, &b);
    let certified = certified(&cluster, 1, &entries(&b));

    filter.step(FilterInput::Tick(Duration::from_millis(10)));
    assert!(send_reply(&mut filter, 1, &certified[0]).is_empty());
    let deadline = Duration::from_millis(10) + WAIT;
    assert_eq!(vouch_wake(&filter), Some(deadline));
    // Before the deadline nothing happens; at it the signature is checked.
    assert!(filter
        .step(FilterInput::Tick(deadline - Duration::from_millis(1)))
        .is_empty());
    let out = replies_up(&filter.step(FilterInput::Tick(deadline)));
    assert_eq!(out, vec![certified[0].clone()]);
    assert_eq!(filter.stats().claims_checked, 1);
    assert_eq!(filter.stats().claims_vouched, 0);
    // The claim is settled: the batch's other reply passes at once, unchecked again.
    assert_eq!(
        replies_up(&send_reply(&mut filter, 1, &certified[1])).len(),
        1
    );
    assert_eq!(filter.stats().claims_checked, 1);
    assert_eq!(vouch_wake(&filter), None);
}

#[test]
fn a_false_claim_waits_is_dropped_when_checked_and_is_never_checked_twice() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1), (1, 1)]);
    let mut filter = vouching_top(&cluster, &b);
    let good = certified(&cluster, 1, &entries(&b));
    let mut forged = good[0].clone();
    forged.signature = ThresholdSignature(cluster.signers[0].sign_share(b"forged").0);

    // A faulty filter below sends a forgery first; it cannot block the true reply.
    assert!(send_reply(&mut filter, 0, &forged).is_empty());
    assert!(send_reply(&mut filter, 0, &good[0]).is_empty());
    assert_eq!(
        replies_up(&send_reply(&mut filter, 1, &good[0])),
        vec![good[0].clone()]
    );
    assert_eq!(filter.stats().claims_vouched, 1);
    // The forgery's deadline: checked once, dropped.
    assert!(filter.step(FilterInput::Tick(WAIT)).is_empty());
    assert_eq!(filter.stats().claims_checked, 1);
    assert_eq!(filter.stats().dropped(reason::BAD_REPLY_SIGNATURE), 1);
    assert_eq!(filter.pending_bytes(0), 0);
    // The same claim again, on another reply of the batch (same root, same forged
    // signature): refused at once, without a second pairing.
    let mut again = good[1].clone();
    again.signature = forged.signature.clone();
    assert!(send_reply(&mut filter, 0, &again).is_empty());
    assert_eq!(filter.stats().dropped(reason::BAD_REPLY_SIGNATURE), 2);
    assert_eq!(filter.stats().claims_checked, 1);
    assert_eq!(vouch_wake(&filter), None);
    assert_eq!(filter.stats().replies_forwarded, 1);
}

#[test]
fn replies_over_the_senders_budget_are_checked_at_once_not_held() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1)]);
    let mut c = config(0, &cluster);
    c.vouch_wait = WAIT;
    c.max_pending_bytes_per_replica = 64;
    let mut filter = Filter::new(c);
    filter.step(order_from(0, &b));
    let certified = certified(&cluster, 1, &entries(&b));
    assert_eq!(
        replies_up(&send_reply(&mut filter, 0, &certified[0])),
        vec![certified[0].clone()]
    );
    assert_eq!(filter.stats().claims_checked, 1);
    assert_eq!(filter.pending_bytes(0), 0);
    assert_eq!(vouch_wake(&filter), None);
}

#[test]
fn collection_releases_what_waits() {
    let cluster = cluster();
    let mut filter = {
        let mut c = config(0, &cluster);
        c.vouch_wait = WAIT;
        Filter::new(c)
    };
    let mut first = None;
    for sequence in 1..=8 {
        let b = batch(sequence, &[(0, sequence)]);
        filter.step(order_from(0, &b));
        if sequence == 2 {
            first = Some(certified(&cluster, 2, &entries(&b)).remove(0));
        }
    }
    assert!(send_reply(&mut filter, 0, first.as_ref().unwrap()).is_empty());
    assert!(filter.pending_bytes(0) > 0);
    for s in [4, 8] {
        let cert = stable_certificate(&cluster, s);
        filter.step(from_below(1, FirewallMessage::Stable(cert)));
    }
    assert_eq!(filter.collected(), 4);
    assert_eq!(filter.pending_bytes(0), 0);
    assert_eq!(vouch_wake(&filter), None);
}
