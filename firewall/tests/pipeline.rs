//! Two rows of two filters (h = 1) between four agreement replicas and three execution
//! replicas, one of them faulty and one bottom filter faulty: what reaches the agreement
//! side is exactly one certified reply per request from each top filter, every one
//! verifying, and nothing the faulty parties made up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;

use palisade_crypto::verify_certified_reply;
use palisade_firewall::{Filter, FilterInput, FilterOutput};
use palisade_wire::envelope::Envelope;
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::firewall::{FirewallMessage, ReplyEntry, ThresholdSignature};
use support::*;

/// Messages in flight, by destination.
enum Hop {
    /// To top filter `column`, from the bottom filter `from`.
    Top {
        column: u32,
        from: u32,
        envelope: Envelope,
    },
    /// To bottom filter `column`, from above (`FromAbove`) top filter `from`.
    Bottom {
        column: u32,
        from: u32,
        envelope: Envelope,
    },
    /// To bottom filter `column`, from execution replica `from`.
    BottomFromReplica {
        column: u32,
        from: u32,
        envelope: Envelope,
    },
    /// To execution replica `replica`.
    Replica { replica: u32, envelope: Envelope },
    /// To the agreement side, from top filter `from`.
    Agreement { from: u32, envelope: Envelope },
}

/// Fans a filter's outputs out to its neighbours.
fn route(row: u32, column: u32, out: Vec<FilterOutput>, queue: &mut Vec<Hop>) {
    for o in out {
        match (row, o) {
            (0, FilterOutput::ToAbove { envelope, .. }) => queue.push(Hop::Agreement {
                from: column,
                envelope,
            }),
            (0, FilterOutput::ToBelow { envelope, .. }) => {
                for c in 0..ROWS {
                    queue.push(Hop::Bottom {
                        column: c,
                        from: column,
                        envelope: envelope.clone(),
                    });
                }
            }
            (_, FilterOutput::ToAbove { envelope, .. }) => {
                for c in 0..ROWS {
                    queue.push(Hop::Top {
                        column: c,
                        from: column,
                        envelope: envelope.clone(),
                    });
                }
            }
            (_, FilterOutput::ToBelow { envelope, .. }) => {
                for r in 0..REPLICAS {
                    queue.push(Hop::Replica {
                        replica: r,
                        envelope: envelope.clone(),
                    });
                }
            }
        }
    }
}

/// An execution replica: answers each new order with its share and its bodies to every
/// bottom filter. Replica 2 is faulty: it leaks a secret in its bodies and signs them.
fn execute(
    cluster: &Cluster,
    replica: u32,
    envelope: Envelope,
    queue: &mut Vec<Hop>,
    seen: &mut BTreeSet<(u32, u64)>,
) {
    let Envelope::Execution(ExecutionMessage::Order { batch, .. }) = envelope else {
        return;
    };
    if !seen.insert((replica, batch.sequence)) {
        return;
    }
    let mut es = entries(&batch);
    if replica == 2 {
        for e in &mut es {
            e.body = b"SECRET".to_vec();
        }
    }
    let mut messages = vec![reply_share(cluster, replica, batch.sequence, &es)];
    messages.extend(es.iter().map(|e| reply_body(replica, batch.sequence, e)));
    for column in 0..ROWS {
        for m in &messages {
            queue.push(Hop::BottomFromReplica {
                column,
                from: replica,
                envelope: Envelope::Firewall(m.clone()),
            });
        }
    }
}

#[test]
fn only_certified_replies_to_ordered_requests_reach_the_top() {
    let cluster = cluster();
    let mut tops: Vec<Filter> = (0..ROWS)
        .map(|c| {
            let mut conf = config(0, &cluster);
            conf.column = c;
            Filter::new(conf)
        })
        .collect();
    let mut bottoms: Vec<Filter> = (0..ROWS)
        .map(|c| {
            let mut conf = config(ROWS - 1, &cluster);
            conf.column = c;
            Filter::new(conf)
        })
        .collect();

    let batches: Vec<_> = (1..=3)
        .map(|s| batch(s, &[(0, 2 * s), (1, 2 * s + 1)]))
        .collect();
    let mut queue = Vec::new();
    let mut seen = BTreeSet::new();
    let mut arrived = Vec::new();
    for b in &batches {
        for agreement in 0..4 {
            for (column, top) in tops.iter_mut().enumerate() {
                route(
                    0,
                    column as u32,
                    top.step(order_from(agreement, b)),
                    &mut queue,
                );
            }
        }
    }
    // The faulty bottom filter (column 1) also makes up replies of its own.
    let forged = {
        let mut r = certified(&cluster, 1, &entries(&batches[0]))[0].clone();
        r.entry = ReplyEntry {
            body: b"SECRET".to_vec(),
            ..r.entry
        };
        r
    };
    let unsigned = {
        let mut r = certified(&cluster, 2, &entries(&batches[1]))[1].clone();
        r.signature = ThresholdSignature(vec![7; 96]);
        r
    };
    for r in [forged, unsigned] {
        for column in 0..ROWS {
            queue.push(Hop::Top {
                column,
                from: 1,
                envelope: Envelope::Firewall(FirewallMessage::CertifiedReply(r.clone())),
            });
        }
    }

    while !queue.is_empty() {
        for hop in std::mem::take(&mut queue) {
            match hop {
                Hop::Top {
                    column,
                    from,
                    envelope,
                } => {
                    let out = tops[column as usize].step(FilterInput::FromBelow { from, envelope });
                    route(0, column, out, &mut queue);
                }
                Hop::Bottom {
                    column,
                    from,
                    envelope,
                } => {
                    let out =
                        bottoms[column as usize].step(FilterInput::FromAbove { from, envelope });
                    route(1, column, out, &mut queue);
                }
                Hop::BottomFromReplica {
                    column,
                    from,
                    envelope,
                } => {
                    let out =
                        bottoms[column as usize].step(FilterInput::FromBelow { from, envelope });
                    route(1, column, out, &mut queue);
                }
                Hop::Replica { replica, envelope } => {
                    execute(&cluster, replica, envelope, &mut queue, &mut seen)
                }
                Hop::Agreement { from, envelope } => arrived.push((from, envelope)),
            }
        }
    }

    // Each top filter forwarded each of the six replies exactly once; all verify and
    // carry the honest bodies.
    let mut per_top = vec![BTreeSet::new(); ROWS as usize];
    for (from, envelope) in &arrived {
        let Envelope::Firewall(FirewallMessage::CertifiedReply(r)) = envelope else {
            panic!("something else crossed the top row: {envelope:?}");
        };
        verify_certified_reply(cluster.verifier.as_ref(), r).unwrap();
        assert_eq!(
            r.entry,
            entry(r.sequence, r.entry.client, r.entry.request_id)
        );
        assert!(per_top[*from as usize].insert((r.sequence, r.entry.client, r.entry.request_id)));
    }
    for set in &per_top {
        assert_eq!(set.len(), 6);
    }
    assert_eq!(arrived.len(), 12);
    for top in &tops {
        assert_eq!(top.stats().replies_forwarded, 6);
        assert!(top.stats().total_dropped() > 0);
    }
    for b in &bottoms {
        assert_eq!(b.stats().roots_certified, 3);
    }
}
