//! The bottom row (SOSP 2003 §4.2): shares from the execution replicas combine into one
//! certified root; bodies leave only as certified replies to outstanding requests, once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use palisade_crypto::{root, verify_certified_reply};
use palisade_firewall::stats::reason;
use palisade_firewall::{Filter, FilterInput};
use palisade_wire::agreement::OrderedBatch;
use palisade_wire::envelope::Envelope;
use palisade_wire::firewall::{
    reply_root_message, FirewallMessage, ReplyEntry, ReplyShare, StableShare,
};
use support::*;

/// A bottom filter that forwarded `batch` down.
fn with_order(cluster: &Cluster, b: &OrderedBatch) -> Filter {
    let mut filter = bottom(cluster);
    assert_eq!(orders_down(&filter.step(order_from(0, b))).len(), 1);
    filter
}

#[test]
fn g_plus_one_shares_and_a_body_make_exactly_one_certified_reply() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1), (1, 7)]);
    let mut filter = with_order(&cluster, &b);
    let es = entries(&b);

    // A body before any share waits (nothing goes up).
    assert!(filter
        .step(from_below(0, reply_body(0, 1, &es[0])))
        .is_empty());
    assert!(filter.pending_bytes(0) > 0);
    // One share is not enough.
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 1, &es)))
        .is_empty());
    // The second certifies the root and releases the waiting body.
    let out = filter.step(from_below(2, reply_share(&cluster, 2, 1, &es)));
    let replies = replies_up(&out);
    assert_eq!(out.len(), 1);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].entry, es[0]);
    let root_0 = verify_certified_reply(cluster.verifier.as_ref(), &replies[0]).unwrap();
    assert_eq!(root_0, root(&leaves(&es)));
    assert_eq!(filter.pending_bytes(0), 0);
    assert_eq!(filter.stats().roots_certified, 1);
    assert_eq!(filter.stats().combinations_failed, 0);

    // A body after certification goes up at once; the same body from the other
    // replicas is a duplicate.
    let out = filter.step(from_below(1, reply_body(1, 1, &es[1])));
    let replies = replies_up(&out);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].entry, es[1]);
    verify_certified_reply(cluster.verifier.as_ref(), &replies[0]).unwrap();
    for replica in 0..REPLICAS {
        for e in &es {
            assert!(filter
                .step(from_below(replica, reply_body(replica, 1, e)))
                .is_empty());
        }
    }
    assert_eq!(filter.stats().dropped(reason::DUPLICATE_REPLY), 6);
    // The third share arrives late.
    assert!(filter
        .step(from_below(1, reply_share(&cluster, 1, 1, &es)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::LATE_SHARE), 1);
    assert_eq!(filter.stats().replies_forwarded, 2);
}

#[test]
fn a_bad_share_is_detected_and_recorded_while_the_honest_ones_certify() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1)]);
    let mut filter = with_order(&cluster, &b);
    let es = entries(&b);

    // Replica 1 claims the honest leaves but signs something else (the stable message).
    let FirewallMessage::ReplyShare(honest_1) = reply_share(&cluster, 1, 1, &es) else {
        unreachable!()
    };
    let bad = ReplyShare {
        share: cluster.signers[1].sign_share(b"a covert message"),
        ..honest_1
    };
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 1, &es)))
        .is_empty());
    assert!(filter
        .step(from_below(1, FirewallMessage::ReplyShare(bad)))
        .is_empty());
    // The combination failed, the shares were checked one by one, replica 1 is recorded.
    assert_eq!(filter.stats().combinations_failed, 1);
    assert_eq!(filter.stats().bad_shares.get(&1), Some(&1));
    assert_eq!(filter.stats().bad_shares.get(&0), None);
    assert_eq!(filter.stats().dropped(reason::BAD_SHARE), 1);

    // Replica 1 cannot try again for this sequence, even with a good share.
    assert!(filter
        .step(from_below(1, reply_share(&cluster, 1, 1, &es)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::EXCLUDED_REPLICA), 1);

    // The honest replica 2 completes the root with the verified share of replica 0.
    filter.step(from_below(2, reply_share(&cluster, 2, 1, &es)));
    assert_eq!(filter.stats().roots_certified, 1);
    let out = filter.step(from_below(2, reply_body(2, 1, &es[0])));
    let replies = replies_up(&out);
    assert_eq!(replies.len(), 1);
    verify_certified_reply(cluster.verifier.as_ref(), &replies[0]).unwrap();
}

#[test]
fn a_malformed_share_is_a_bad_share_too() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1)]);
    let mut filter = with_order(&cluster, &b);
    let es = entries(&b);
    let FirewallMessage::ReplyShare(honest) = reply_share(&cluster, 2, 1, &es) else {
        unreachable!()
    };
    let mut garbage = honest.clone();
    garbage.share.0 = vec![0xFF; 96];
    filter.step(from_below(2, FirewallMessage::ReplyShare(garbage)));
    filter.step(from_below(0, reply_share(&cluster, 0, 1, &es)));
    assert_eq!(filter.stats().bad_shares.get(&2), Some(&1));
    assert_eq!(filter.stats().roots_certified, 0);
    filter.step(from_below(1, reply_share(&cluster, 1, 1, &es)));
    assert_eq!(filter.stats().roots_certified, 1);
}

#[test]
fn a_faulty_replica_alone_cannot_certify_its_own_root() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1)]);
    let mut filter = with_order(&cluster, &b);
    let honest = entries(&b);
    let leaky = vec![ReplyEntry {
        body: b"the contents of /etc/secret".to_vec(),
        ..honest[0].clone()
    }];
    filter.step(from_below(1, reply_share(&cluster, 1, 1, &leaky)));
    // Its body waits, then is dropped when the honest root is certified.
    assert!(filter
        .step(from_below(1, reply_body(1, 1, &leaky[0])))
        .is_empty());
    filter.step(from_below(0, reply_share(&cluster, 0, 1, &honest)));
    let out = filter.step(from_below(2, reply_share(&cluster, 2, 1, &honest)));
    assert!(out.is_empty(), "no honest body arrived yet");
    assert_eq!(filter.stats().dropped(reason::PENDING_UNCERTIFIED), 1);
    assert_eq!(filter.pending_bytes(1), 0);
    // Sent again after certification: not under the certified root.
    assert!(filter
        .step(from_below(1, reply_body(1, 1, &leaky[0])))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::UNCERTIFIED_BODY), 1);
    // The honest body goes up.
    let out = filter.step(from_below(0, reply_body(0, 1, &honest[0])));
    assert_eq!(replies_up(&out).len(), 1);
    assert_eq!(replies_up(&out)[0].entry, honest[0]);
}

#[test]
fn bodies_and_shares_for_requests_never_made_are_dropped() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1)]);
    let mut filter = with_order(&cluster, &b);

    // A request id that is not in the batch.
    let stray = entry(1, 0, 2);
    assert!(filter
        .step(from_below(0, reply_body(0, 1, &stray)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::NEVER_REQUESTED), 1);
    // A sequence that was never forwarded.
    assert!(filter
        .step(from_below(0, reply_body(0, 2, &entry(2, 0, 1))))
        .is_empty());
    let es = entries(&b);
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 2, &es)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::NOT_OUTSTANDING), 2);
    // More leaves than the batch has requests.
    let two = vec![es[0].clone(), stray];
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 1, &two)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::TOO_MANY_LEAVES), 1);
    assert_eq!(filter.stats().total_dropped(), 4);
}

#[test]
fn impostors_equivocation_and_unexpected_messages_are_dropped() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1)]);
    let mut filter = with_order(&cluster, &b);
    let es = entries(&b);

    // Replica 1 sends replica 0's share and body on its own link.
    assert!(filter
        .step(from_below(1, reply_share(&cluster, 0, 1, &es)))
        .is_empty());
    assert!(filter
        .step(from_below(1, reply_body(0, 1, &es[0])))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::IMPOSTOR), 2);

    // Replica 0 sends a share, the same again, then one for other leaves.
    filter.step(from_below(0, reply_share(&cluster, 0, 1, &es)));
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 1, &es)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::DUPLICATE_SHARE), 1);
    let lie = vec![ReplyEntry {
        body: b"other".to_vec(),
        ..es[0].clone()
    }];
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 1, &lie)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::EQUIVOCATING_SHARE), 1);
    assert_eq!(filter.stats().equivocations.get(&0), Some(&1));

    // A signed reply, a request, a certified reply: nothing an execution replica may
    // send up to a bottom filter.
    let junk = [
        Envelope::Request(request(0, 9)),
        Envelope::Firewall(FirewallMessage::CertifiedReply(
            certified(&cluster, 1, &es)[0].clone(),
        )),
        Envelope::Firewall(FirewallMessage::Stable(stable_certificate(&cluster, 1))),
    ];
    for envelope in junk {
        assert!(filter
            .step(FilterInput::FromBelow { from: 2, envelope })
            .is_empty());
    }
    assert_eq!(filter.stats().dropped(reason::UNEXPECTED_FROM_BELOW), 3);
    assert_eq!(filter.stats().replies_forwarded, 0);
}

#[test]
fn a_flood_from_one_replica_stays_within_its_budget_while_honest_replies_flow() {
    let cluster = cluster();
    let mut c = config(ROWS - 1, &cluster);
    c.max_pending_bytes_per_replica = 64 * 1024;
    let mut filter = Filter::new(c);
    let b = batch(1, &[(0, 1), (0, 2), (1, 1)]);
    filter.step(order_from(0, &b));
    let es = entries(&b);

    // Replica 2 floods bodies of every shape for the batch's requests before any root.
    for i in 0..200u32 {
        let mut bogus = es[(i % 3) as usize].clone();
        bogus.body = vec![i as u8; 4096 + i as usize];
        assert!(filter
            .step(from_below(2, reply_body(2, 1, &bogus)))
            .is_empty());
        assert!(filter.pending_bytes(2) <= 64 * 1024);
    }
    let full = filter.stats().dropped(reason::PENDING_FULL);
    assert!(full > 150 && full < 200, "{full} refused");

    // The honest replicas' bodies still wait within their own budgets...
    for e in &es {
        filter.step(from_below(0, reply_body(0, 1, e)));
    }
    assert!(filter.pending_bytes(0) > 0);
    // ...and go up when the honest root is certified; the flood is dropped.
    filter.step(from_below(0, reply_share(&cluster, 0, 1, &es)));
    let out = filter.step(from_below(1, reply_share(&cluster, 1, 1, &es)));
    let replies = replies_up(&out);
    assert_eq!(replies.len(), 3);
    for r in &replies {
        verify_certified_reply(cluster.verifier.as_ref(), r).unwrap();
    }
    assert_eq!(filter.pending_bytes(2), 0);
    assert_eq!(filter.pending_bytes(0), 0);
}

#[test]
fn stable_shares_combine_into_a_certificate_and_collect_the_log() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    for sequence in 1..=8 {
        filter.step(order_from(0, &batch(sequence, &[(0, sequence)])));
    }
    // Beyond what was forwarded: refused.
    assert!(filter
        .step(from_below(0, stable_share(&cluster, 0, 9)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::NOT_OUTSTANDING), 1);

    assert!(filter
        .step(from_below(0, stable_share(&cluster, 0, 4)))
        .is_empty());
    let out = filter.step(from_below(1, stable_share(&cluster, 1, 4)));
    let expected = stable_certificate(&cluster, 4);
    assert_eq!(
        up(&out),
        vec![Envelope::Firewall(FirewallMessage::Stable(expected))]
    );
    assert_eq!(filter.last_stable(), 4);
    // The first stable certificate collects nothing (the previous stable one was 0).
    assert_eq!(filter.collected(), 0);
    assert_eq!(filter.log_len(), 8);
    // A late share for it is stale.
    assert!(filter
        .step(from_below(2, stable_share(&cluster, 2, 4)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::STALE_STABLE), 1);

    // At 8, everything at or below 4 goes.
    filter.step(from_below(2, stable_share(&cluster, 2, 8)));
    let out = filter.step(from_below(0, stable_share(&cluster, 0, 8)));
    assert_eq!(up(&out).len(), 1);
    assert_eq!(filter.last_stable(), 8);
    assert_eq!(filter.collected(), 4);
    assert_eq!(filter.log_len(), 4);
    assert_eq!(filter.stats().stables_combined, 2);

    // A replay of an order at or below the collected sequence is old.
    assert!(filter.step(order_from(0, &batch(3, &[(0, 3)]))).is_empty());
    assert_eq!(filter.stats().dropped(reason::OLD), 1);
    // And replies for it are not outstanding any more.
    let es = entries(&batch(3, &[(0, 3)]));
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 3, &es)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::NOT_OUTSTANDING), 2);
}

#[test]
fn a_bad_stable_share_is_recorded_and_the_honest_ones_still_combine() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    filter.step(order_from(0, &batch(4, &[(0, 1)])));
    let bad = FirewallMessage::StableShare(StableShare {
        sequence: 4,
        replica: 0,
        share: cluster.signers[0].sign_share(&reply_root_message(4, &root(&[]))),
    });
    filter.step(from_below(0, bad));
    assert!(filter
        .step(from_below(1, stable_share(&cluster, 1, 4)))
        .is_empty());
    assert_eq!(filter.stats().bad_shares.get(&0), Some(&1));
    let out = filter.step(from_below(2, stable_share(&cluster, 2, 4)));
    assert_eq!(up(&out).len(), 1);
    assert_eq!(filter.last_stable(), 4);
}

#[test]
fn stable_shares_pending_per_replica_are_bounded() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    for sequence in 1..=40 {
        filter.step(order_from(0, &batch(sequence, &[])));
    }
    // A faulty replica sends a share for every sequence: it keeps only its newest few.
    for sequence in 1..=40 {
        filter.step(from_below(2, stable_share(&cluster, 2, sequence)));
    }
    assert_eq!(
        filter.pending_stable_sequences(),
        palisade_firewall::MAX_STABLE_SHARES_PER_REPLICA
    );
    // An honest share at 40 still combines with it.
    let out = filter.step(from_below(0, stable_share(&cluster, 0, 40)));
    assert_eq!(up(&out).len(), 1);
    assert_eq!(filter.pending_stable_sequences(), 0);
}

/// After the whole cluster restarted, a filter (empty) takes the execution replicas'
/// restart checkpoint though it forwarded nothing, and sends its certificate up again
/// when a replica re-sends its share — at most once a second, and only while nothing
/// was ordered past it (agreement waits for that certificate before it orders).
#[test]
fn a_restarted_filter_takes_the_restart_checkpoint_and_re_sends_it_up() {
    let cluster = cluster();
    let mut filter = bottom(&cluster);
    filter.step(FilterInput::Tick(Duration::from_secs(10)));
    filter.step(from_below(0, stable_share(&cluster, 0, 13)));
    let out = filter.step(from_below(1, stable_share(&cluster, 1, 13)));
    let expected = Envelope::Firewall(FirewallMessage::Stable(stable_certificate(&cluster, 13)));
    assert_eq!(up(&out), vec![expected.clone()]);
    assert_eq!(filter.last_stable(), 13);
    // A re-sent share: the certificate goes up again, once per second.
    let out = filter.step(from_below(2, stable_share(&cluster, 2, 13)));
    assert_eq!(up(&out), vec![expected.clone()]);
    let out = filter.step(from_below(0, stable_share(&cluster, 0, 13)));
    assert!(up(&out).is_empty());
    filter.step(FilterInput::Tick(Duration::from_secs(11)));
    let out = filter.step(from_below(1, stable_share(&cluster, 1, 13)));
    assert_eq!(up(&out), vec![expected]);
    assert_eq!(filter.stats().stables_resent, 2);
    // Orders flow past it: nothing is re-sent any more, and shares beyond what was
    // forwarded are refused again.
    filter.step(order_from(0, &batch(14, &[(0, 1)])));
    filter.step(FilterInput::Tick(Duration::from_secs(20)));
    let out = filter.step(from_below(2, stable_share(&cluster, 2, 13)));
    assert!(up(&out).is_empty());
    assert!(filter
        .step(from_below(0, stable_share(&cluster, 0, 15)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::NOT_OUTSTANDING), 1);
}
