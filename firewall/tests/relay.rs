//! Upper rows (SOSP 2003 §4.2): a certified reply goes up only for an outstanding request,
//! with a valid path and signature, once; retransmissions come from the cache; stable
//! certificates collect the log, which stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use palisade_crypto::verify_certified_reply;
use palisade_firewall::stats::reason;
use palisade_firewall::{Filter, FilterInput, FilterOutput};
use palisade_wire::agreement::OrderedBatch;
use palisade_wire::envelope::Envelope;
use palisade_wire::firewall::{FirewallMessage, StableCertificate, ThresholdSignature};
use support::*;

fn with_order(cluster: &Cluster, b: &OrderedBatch) -> Filter {
    let mut filter = top(cluster);
    assert_eq!(orders_down(&filter.step(order_from(0, b))).len(), 1);
    filter
}

#[test]
fn a_certified_reply_goes_up_once_and_copies_are_dropped() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1), (0, 2), (1, 1)]);
    let mut filter = with_order(&cluster, &b);
    let certified = certified(&cluster, 1, &entries(&b));

    let out = send_reply(&mut filter, 0, &certified[1]);
    assert_eq!(
        out,
        vec![FilterOutput::ToAbove {
            to: None,
            envelope: Envelope::Firewall(FirewallMessage::CertifiedReply(certified[1].clone())),
        }]
    );
    // The copy from the other filter below: dropped.
    assert!(send_reply(&mut filter, 1, &certified[1]).is_empty());
    assert_eq!(filter.stats().dropped(reason::DUPLICATE_REPLY), 1);
    // The batch's other replies pass (their signature is already known).
    assert_eq!(
        replies_up(&send_reply(&mut filter, 1, &certified[0])).len(),
        1
    );
    assert_eq!(
        replies_up(&send_reply(&mut filter, 1, &certified[2])).len(),
        1
    );
    assert_eq!(filter.stats().replies_forwarded, 3);
}

#[test]
fn forged_paths_signatures_and_unsolicited_replies_are_dropped() {
    let cluster = cluster();
    let b = batch(2, &[(0, 1), (1, 1)]);
    let mut filter = with_order(&cluster, &b);
    let good = certified(&cluster, 2, &entries(&b));

    // A body changed under a valid signature: its path leads to another root.
    let mut tampered = good[0].clone();
    tampered.entry.body = b"leaked bits".to_vec();
    assert!(send_reply(&mut filter, 0, &tampered).is_empty());
    assert_eq!(filter.stats().dropped(reason::BAD_REPLY_SIGNATURE), 1);
    // A path of the wrong shape.
    let mut short = good[0].clone();
    short.path.clear();
    assert!(send_reply(&mut filter, 0, &short).is_empty());
    assert_eq!(filter.stats().dropped(reason::BAD_MERKLE_PATH), 1);
    // A signature that is not the cluster's (a single replica's share, or junk).
    let mut lone = good[0].clone();
    lone.signature = ThresholdSignature(cluster.signers[0].sign_share(b"anything").0);
    assert!(send_reply(&mut filter, 0, &lone).is_empty());
    let mut junk = good[0].clone();
    junk.signature = ThresholdSignature(vec![0; 96]);
    assert!(send_reply(&mut filter, 0, &junk).is_empty());
    assert_eq!(filter.stats().dropped(reason::BAD_REPLY_SIGNATURE), 3);

    // A validly certified reply to a request this filter never saw going down:
    // another sequence, and another request at this sequence.
    let other = batch(3, &[(0, 3)]);
    let unsolicited = certified(&cluster, 3, &entries(&other));
    assert!(send_reply(&mut filter, 0, &unsolicited[0]).is_empty());
    assert_eq!(filter.stats().dropped(reason::NOT_OUTSTANDING), 1);
    let stray = certified(&cluster, 2, &[entry(2, 0, 1), entry(2, 5, 5)]);
    assert!(send_reply(&mut filter, 0, &stray[1]).is_empty());
    assert_eq!(filter.stats().dropped(reason::NEVER_REQUESTED), 1);
    // An oversized signature is malformed before anything else.
    let mut huge = good[0].clone();
    huge.signature = ThresholdSignature(vec![1; 4096]);
    assert!(send_reply(&mut filter, 0, &huge).is_empty());
    assert_eq!(filter.stats().dropped(reason::MALFORMED), 1);

    assert_eq!(filter.stats().replies_forwarded, 0);
    // The real ones still pass.
    assert_eq!(replies_up(&send_reply(&mut filter, 1, &good[0])).len(), 1);
    assert_eq!(replies_up(&send_reply(&mut filter, 1, &good[1])).len(), 1);
}

#[test]
fn shares_and_bodies_are_not_taken_by_an_upper_row() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1)]);
    let mut filter = with_order(&cluster, &b);
    let es = entries(&b);
    assert!(filter
        .step(from_below(0, reply_share(&cluster, 0, 1, &es)))
        .is_empty());
    assert!(filter
        .step(from_below(0, reply_body(0, 1, &es[0])))
        .is_empty());
    assert!(filter
        .step(from_below(0, stable_share(&cluster, 0, 1)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::UNEXPECTED_FROM_BELOW), 3);
    // Only h+1 = 2 filters below.
    assert!(filter
        .step(from_below(2, reply_body(2, 1, &es[0])))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::UNKNOWN_PEER), 1);
}

#[test]
fn a_retransmission_is_served_from_the_cache() {
    let cluster = cluster();
    let b = batch(1, &[(0, 1), (1, 1)]);
    let mut filter = with_order(&cluster, &b);
    let certified = certified(&cluster, 1, &entries(&b));

    // One reply forwarded: a re-delivered order re-forwards the order down (the other
    // reply is still missing).
    send_reply(&mut filter, 0, &certified[0]);
    filter.step(FilterInput::Tick(INTERVAL));
    let out = filter.step(order_from(2, &b));
    assert_eq!(orders_down(&out), vec![(None, 1)]);
    assert!(replies_up(&out).is_empty());

    // Both forwarded: the next re-delivery re-sends both from the cache, nothing goes
    // down, and no new reply is forwarded.
    send_reply(&mut filter, 1, &certified[1]);
    filter.step(FilterInput::Tick(INTERVAL * 2));
    let out = filter.step(order_from(1, &b));
    assert!(orders_down(&out).is_empty());
    let mut resent = replies_up(&out);
    resent.sort_by_key(|r| (r.entry.client, r.entry.request_id));
    assert_eq!(resent, certified);
    assert_eq!(filter.stats().replies_resent, 2);
    assert_eq!(filter.stats().replies_forwarded, 2);
    // Again within the interval: dropped.
    assert!(filter.step(order_from(3, &b)).is_empty());
    assert_eq!(filter.stats().dropped(reason::DUPLICATE_ORDER), 1);
}

#[test]
fn stable_certificates_are_verified_forwarded_once_and_collect() {
    let cluster = cluster();
    let mut filter = top(&cluster);
    for sequence in 1..=8 {
        filter.step(order_from(0, &batch(sequence, &[(0, sequence)])));
    }
    let old = batch(2, &[(0, 2)]);
    let old_reply = certified(&cluster, 2, &entries(&old));

    let forged = StableCertificate {
        sequence: 8,
        signature: ThresholdSignature(cluster.signers[0].sign_share(b"x").0),
    };
    assert!(filter
        .step(from_below(0, FirewallMessage::Stable(forged)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::BAD_STABLE), 1);

    let four = stable_certificate(&cluster, 4);
    let out = filter.step(from_below(0, FirewallMessage::Stable(four.clone())));
    assert_eq!(
        up(&out),
        vec![Envelope::Firewall(FirewallMessage::Stable(four.clone()))]
    );
    assert!(filter
        .step(from_below(1, FirewallMessage::Stable(four)))
        .is_empty());
    assert_eq!(filter.stats().dropped(reason::STALE_STABLE), 1);
    // Late replies within the kept interval still pass.
    assert_eq!(
        replies_up(&send_reply(&mut filter, 0, &old_reply[0])).len(),
        1
    );

    let eight = stable_certificate(&cluster, 8);
    assert_eq!(
        up(&filter.step(from_below(1, FirewallMessage::Stable(eight)))).len(),
        1
    );
    assert_eq!(filter.collected(), 4);
    assert!(
        filter.cached_reply_bytes() > 0,
        "the cached reply of 2 outlives its order (filter/resend.rs)"
    );
    // Replays after collection: the order is old, its replies are not outstanding.
    assert!(filter.step(order_from(0, &old)).is_empty());
    assert_eq!(filter.stats().dropped(reason::OLD), 1);
    assert!(send_reply(&mut filter, 0, &old_reply[0]).is_empty());
    assert_eq!(filter.stats().dropped(reason::NOT_OUTSTANDING), 1);
}

/// A client retransmits after a stable checkpoint collected its batch everywhere, and its
/// certified reply was lost above this filter: agreement asks for it again
/// (`ResendReply`), and the reply cache, which outlives the orders, answers the asker.
#[test]
fn a_reply_asked_for_again_after_collection_comes_from_the_cache() {
    use palisade_firewall::MAX_RESENDS_PER_INTERVAL;
    use palisade_wire::execution::ExecutionMessage;
    let cluster = cluster();
    let mut filter = top(&cluster);
    for sequence in 1..=8 {
        filter.step(order_from(0, &batch(sequence, &[(0, sequence)])));
    }
    let old = certified(&cluster, 2, &entries(&batch(2, &[(0, 2)])));
    assert_eq!(replies_up(&send_reply(&mut filter, 0, &old[0])).len(), 1);
    for sequence in [4, 8] {
        let cert = stable_certificate(&cluster, sequence);
        filter.step(from_below(0, FirewallMessage::Stable(cert)));
    }
    assert_eq!(filter.collected(), 4);
    let ask = |client, request_id| FilterInput::FromAbove {
        from: 1,
        envelope: Envelope::Execution(ExecutionMessage::ResendReply {
            client,
            request_id,
            sequence: Some(2),
        }),
    };
    let out = filter.step(ask(0, 2));
    assert_eq!(
        out,
        vec![FilterOutput::ToAbove {
            to: Some(1),
            envelope: Envelope::Firewall(FirewallMessage::CertifiedReply(old[0].clone())),
        }]
    );
    assert_eq!(filter.stats().replies_resent_on_request, 1);
    // A request whose reply never passed here: nothing.
    assert!(filter.step(ask(0, 3)).is_empty());
    assert_eq!(filter.stats().dropped(reason::NOT_CACHED), 1);
    // At most MAX_RESENDS_PER_INTERVAL answers per asker per interval.
    for _ in 1..MAX_RESENDS_PER_INTERVAL {
        assert_eq!(filter.step(ask(0, 2)).len(), 1);
    }
    assert!(filter.step(ask(0, 2)).is_empty());
    assert_eq!(filter.stats().dropped(reason::RESEND_RATE_LIMITED), 1);
    filter.step(FilterInput::Tick(INTERVAL));
    assert_eq!(filter.step(ask(0, 2)).len(), 1);
    assert_eq!(
        filter.stats().replies_resent_on_request,
        u64::from(MAX_RESENDS_PER_INTERVAL) + 1
    );
}

#[test]
fn garbage_collection_bounds_the_log_over_a_thousand_sequences() {
    let cluster = cluster();
    let mut filter = top(&cluster);
    const K: u64 = 16;
    let mut max_log = 0;
    let mut forwarded = 0;
    for sequence in 1..=1000u64 {
        let b = batch(sequence, &[(sequence % 3, sequence)]);
        forwarded += orders_down(&filter.step(order_from((sequence % 4) as u32, &b))).len();
        if sequence % K == 0 {
            let cert = stable_certificate(&cluster, sequence);
            filter.step(from_below(0, FirewallMessage::Stable(cert)));
        }
        max_log = max_log.max(filter.log_len());
    }
    assert_eq!(forwarded, 1000);
    // One checkpoint interval kept behind the last stable one, plus the next interval.
    assert!(max_log <= 2 * K as usize, "log reached {max_log}");
    assert_eq!(filter.last_stable(), 992);
    assert_eq!(filter.collected(), 976);
    assert_eq!(filter.log_len(), 24);
    assert_eq!(filter.stats().collections, 1000 / K);
}

#[test]
fn the_reply_cache_is_bounded_by_bytes_oldest_sequence_first() {
    let cluster = cluster();
    let mut c = config(0, &cluster);
    c.reply_cache_bytes = 600;
    let mut filter = Filter::new(c);
    let mut all = Vec::new();
    for sequence in 1..=4 {
        let b = batch(sequence, &[(0, sequence)]);
        filter.step(order_from(0, &b));
        let r = certified(&cluster, sequence, &entries(&b)).remove(0);
        assert_eq!(replies_up(&send_reply(&mut filter, 0, &r)).len(), 1);
        all.push((b, r));
        assert!(filter.cached_reply_bytes() <= 600);
    }
    // The newest batch's retransmission is served from the cache; the oldest one's
    // reply was evicted, so its order goes down again instead.
    filter.step(FilterInput::Tick(INTERVAL));
    let out = filter.step(order_from(0, &all[3].0));
    assert_eq!(replies_up(&out), vec![all[3].1.clone()]);
    let out = filter.step(order_from(0, &all[0].0));
    assert_eq!(orders_down(&out), vec![(None, 1)]);
    for (_, r) in &all {
        verify_certified_reply(cluster.verifier.as_ref(), r).unwrap();
    }
}
