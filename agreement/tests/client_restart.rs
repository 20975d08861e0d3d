//! A gateway that restarts continues with far larger request ids
//! (`ClientConfig::first_request_id`): the per-client window slides forward instead of
//! refusing them, and ids below the slid window are duplicates (exactly-once, TOCS §4.1).

mod common;

use common::{request, Cluster};
use palisade_agreement::Input;

#[test]
fn restarted_client_with_a_larger_base_is_ordered_and_old_ids_are_replays() {
    let mut c = Cluster::new(1);
    for id in 1..=4 {
        c.submit(request(0, id, b"before"));
    }
    c.settle();
    // The restart: two requests from a clock-derived base, far beyond the window of
    // 1024 ids above the highest ordered one.
    let base = 1_764_115_200_000_000;
    c.submit(request(0, base, b"after"));
    c.submit(request(0, base + 1, b"after"));
    c.settle();
    c.check_invariants();
    for i in 0..4 {
        assert_eq!(
            c.delivered_requests(i),
            vec![(0, 1), (0, 2), (0, 3), (0, 4), (0, base), (0, base + 1)],
            "replica {i}"
        );
    }
    // Replays: an id of the old incarnation (now below the window) and a new one.
    for replay in [2, 5, base] {
        let before = c.replicas[1].stats().requests_duplicate;
        let out = c.input(1, Input::ClientRequest(request(0, replay, b"again")));
        assert!(out.is_empty(), "id {replay} admitted again");
        assert_eq!(c.replicas[1].stats().requests_duplicate, before + 1);
    }
    c.settle();
    assert_eq!(
        c.delivered[1]
            .iter()
            .map(|(b, _)| b.batch.requests.len())
            .sum::<usize>(),
        6
    );
}
