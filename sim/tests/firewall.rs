//! The privacy firewall in the simulator (issue 4, item 5): seeded runs through h+1 rows
//! of h+1 filters with lossy links, crashes, Byzantine filters and leaking execution
//! replicas. In every run the confidentiality invariant (nothing but certified replies
//! to ordered requests, verified stable certificates and fetches leaves the firewall
//! carrying what it learned from the execution cluster) and every other invariant must
//! hold, and every request must be answered. And the check can fail: one forwarding
//! filter in every row lets a leaking replica's bytes out, and it is reported.
//!
//! Seed counts keep this file to well under a minute on the 2-core development machine in
//! the test profile (a firewall seed costs 0.15–0.3 s there, as in release: the time goes
//! to ed25519 and BLS in optimized dependencies). The seeds of the former open gap
//! (crate docs) are checked by `former_gap_seeds_are_answered`.

use palisade_sim::scenario::{ExecFault, FilterFault};
use palisade_sim::{run, RunStats, Scenario, SimConfig, Violation};

/// Runs the seeds of `config`; fails with every failing seed's report; returns the
/// passing runs' statistics.
fn check(config: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<RunStats> {
    let mut failures = Vec::new();
    let mut runs = Vec::new();
    for seed in seeds.clone() {
        match run(seed, config.clone()) {
            Ok(stats) => {
                assert_eq!(
                    stats.completed + stats.requests_abandoned,
                    config.ops_per_client * config.clients as u64,
                    "seed {seed} scenario {}: not every request completed",
                    config.scenario
                );
                assert_eq!(
                    stats.agreement_lagging, 0,
                    "seed {seed} scenario {}: agreement replicas end in different views",
                    config.scenario
                );
                // Every answer crossed the firewall as a certified reply.
                assert!(stats.crossed >= stats.completed, "seed {seed}: {stats:?}");
                runs.push(stats);
            }
            Err(failure) => failures.push(failure.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.end - seeds.start,
        failures.join("\n")
    );
    runs
}

fn scenario(s: Scenario) -> SimConfig {
    SimConfig::for_scenario(s)
}

#[test]
fn firewall_with_loss_duplication_and_crashes() {
    let runs = check(&scenario(Scenario::Firewall), 0..20);
    assert!(runs.iter().all(|r| r.messages_dropped > 0 && r.crashes > 0));
    assert!(runs.iter().all(|r| r.replies_relayed >= r.completed));
    // BLS work is shared between the simulated nodes (each question computed once).
    assert!(runs.iter().all(|r| r.bls_computed < r.bls_calls));
}

/// The whole cluster, filters included, stops at once and restarts (filters empty,
/// agreement without its log): the execution replicas' restart checkpoint crosses the
/// firewall as a stable certificate, re-sent up until orders come, and every request
/// after the restart is answered.
#[test]
fn whole_cluster_stops_at_once_and_restarts_through_the_firewall() {
    let runs = check(&scenario(Scenario::ClusterRestart).with_h(1), 0..10);
    assert!(runs.iter().all(|r| r.cluster_restarts == 1));
}

/// The same stopping at any moment: every execution replica that holds the stable
/// restart state must send its share, including one that restarted after the votes
/// went out (`ExecutionReplica::restart_resend`).
#[test]
fn whole_cluster_stops_mid_batch_and_restarts_through_the_firewall() {
    let runs = check(&scenario(Scenario::ClusterCrash).with_h(1), 0..30);
    assert!(runs.iter().all(|r| r.cluster_restarts == 1));
    assert!(runs.iter().any(|r| r.cluster_stop_spread > 0));
}

#[test]
fn h_byzantine_filters_are_tolerated() {
    let runs = check(&scenario(Scenario::ByzantineFilters), 0..60);
    assert!(
        runs.iter().filter(|r| r.filter_misdeeds > 0).count() > runs.len() / 2,
        "the Byzantine filters rarely did anything"
    );
}

#[test]
fn two_byzantine_filters_with_h_2() {
    let config = scenario(Scenario::ByzantineFilters).with_h(2);
    assert_eq!(config.byzantine_filters, 2);
    check(&config, 0..8);
}

/// Every behaviour in every row, with a leaking replica beside it (h = 1): one
/// deterministic run each.
#[test]
fn every_filter_behaviour_in_every_row() {
    for fault in FilterFault::ALL {
        for id in [0, 3] {
            let mut config = scenario(Scenario::LeakingReplica);
            config.filter_faults = vec![(id, fault)];
            let runs = check(&config, 1..2);
            // Silence and delay make nothing up; the others must have misbehaved.
            if !matches!(fault, FilterFault::Silent | FilterFault::Delay(_)) {
                assert!(
                    runs.iter().all(|r| r.filter_misdeeds > 0),
                    "{fault:?} at filter {id} did nothing"
                );
            }
        }
    }
}

#[test]
fn a_leaking_replica_gets_nothing_out() {
    let runs = check(&scenario(Scenario::LeakingReplica), 0..50);
    for r in &runs {
        assert!(r.leaks_sent > 0, "{r:?}");
        // Its direct sends to agreement and clients have no link.
        assert!(r.no_link > 0, "{r:?}");
        // Its shares carrying data are caught and recorded.
        assert!(r.bad_shares > 0, "{r:?}");
        assert!(r.filter_drops > 0, "{r:?}");
    }
}

#[test]
fn a_replica_with_wrong_replies_is_never_certified() {
    let config = scenario(Scenario::WrongReplies).with_h(1);
    assert_eq!(config.exec_faults, vec![(0, ExecFault::WrongReplies)]);
    check(&config, 0..6);
}

#[test]
fn firewall_chaos() {
    let runs = check(&scenario(Scenario::FirewallChaos), 0..40);
    assert!(runs
        .iter()
        .all(|r| r.messages_dropped > 0 && r.leaks_sent > 0));
}

/// h+1 faulty filters, one in each row, forwarding everything, and a leaking replica:
/// beyond the bound, and the leak is reported.
#[test]
fn one_forwarding_filter_per_row_lets_a_leak_out_and_it_is_caught() {
    for seed in 0..4 {
        let failure = run(seed, scenario(Scenario::FirewallBreach))
            .expect_err("h+1 forwarding filters must let the leaking replica's bytes out");
        assert!(
            matches!(failure.violation, Violation::Leak(_)),
            "seed {seed}: {failure}"
        );
        assert_eq!(failure.violation.invariant(), "firewall-confidentiality");
        assert_eq!(
            failure.replay_command(),
            format!(
                "cargo run -p palisade-sim --release -- --seed {seed} --scenario firewall-breach"
            )
        );
    }
    // The same with h = 2: three rows, one forwarder in each.
    let config = scenario(Scenario::FirewallBreach).with_h(2);
    assert_eq!(config.filter_faults.len(), 3);
    let failure = run(0, config).expect_err("three forwarders in three rows leak");
    assert!(matches!(failure.violation, Violation::Leak(_)), "{failure}");
    assert!(failure
        .replay_command()
        .ends_with("--scenario firewall-breach --h 2"));
}

/// Within the bound the same forwarding filters leak nothing: h of them, all in one row
/// (the other row is whole), with the leaking replica.
#[test]
fn h_forwarding_filters_in_one_row_leak_nothing() {
    for row in 0..2u32 {
        let mut config = scenario(Scenario::FirewallBreach).with_h(1);
        config.filter_faults = vec![(row * 2 + 1, FilterFault::ForwardUncertified)];
        let runs = check(&config, 0..2);
        assert!(runs.iter().all(|r| r.filter_misdeeds > 0));
    }
    let mut config = scenario(Scenario::FirewallBreach).with_h(2);
    // Two forwarders in the middle row; top and bottom rows correct.
    config.filter_faults = vec![
        (3, FilterFault::ForwardUncertified),
        (5, FilterFault::ForwardUncertified),
    ];
    check(&config, 0..1);
}

#[test]
fn a_firewall_seed_replays_exactly() {
    let a = run(5, scenario(Scenario::FirewallChaos)).unwrap();
    let b = run(5, scenario(Scenario::FirewallChaos)).unwrap();
    assert_eq!(a, b);
    let c = run(6, scenario(Scenario::FirewallChaos)).unwrap();
    assert_ne!(a, c);
}

/// The former open gap (crate docs): a batch whose replies were never certified, or whose
/// certified replies were lost upward, and that fell out of agreement's and the filters'
/// logs before a client retransmission re-sent its order, was never answered. These
/// seeds failed on liveness until filters re-forwarded overdue orders by themselves.
#[test]
fn former_gap_seeds_are_answered() {
    for seed in [21, 334] {
        check(&scenario(Scenario::Firewall), seed..seed + 1);
    }
    for seed in [51, 174, 373] {
        check(&scenario(Scenario::FirewallChaos), seed..seed + 1);
    }
}

/// A certified reply lost above the top filter row (its copies to the f+1 relaying
/// agreement nodes lost, or come while they were down), for a request whose batch stable
/// checkpoints then collected everywhere: only the top filters' reply cache, which
/// outlives the orders, can answer the client's retransmission, when a relaying node asks
/// for it again (`filter/resend.rs`). Seeds 91 and 103 failed on liveness once the
/// simulated disk lost unsynced commits in a crash, which changed their timing; in seed
/// 26 of `firewall-chaos` a top filter answers such a request (seed 206 did until quiet
/// agreement votes changed the timing; in `firewall`, seed 98 did until the workload began
/// to draw large writes, and seed 261 until restarted replicas sent restart checkpoints;
/// none of seeds 0..2000 does now; `palisade-sim --scenario firewall-chaos` prints the
/// count per seed).
#[test]
fn a_certified_reply_lost_above_the_filters_is_sent_again() {
    for seed in [91, 98, 103] {
        check(&scenario(Scenario::Firewall), seed..seed + 1);
    }
    let asked = check(&scenario(Scenario::FirewallChaos), 26..27);
    assert!(
        asked.iter().all(|r| r.filter_replies_resent_on_request > 0),
        "{asked:?}"
    );
}

/// A correct replica that skipped batches by state transfer, beside a faulty one sending
/// bad shares: only g valid shares existed for those batches until the reply leaves of
/// recent batches became replicated state (crate docs). Seed 102 failed on liveness; since
/// a simulated crash loses unsynced commits its run took no state transfer, seed 931's
/// did; since the workload draws large writes, seed 102's did again (and 931's did not);
/// since agreement's quiet votes changed the timing, seed 1620's does, where replica 2
/// skips 8 batches and certifies 3 from its reply leaves (`palisade-sim --seed 1620
/// --scenario firewall-chaos --verbose`); 3 of seeds 0..5000 take a state transfer now, 2
/// of 0..300 did before. `palisade-sim --scenario firewall-chaos` prints the count per
/// seed.
#[test]
fn a_replica_that_skipped_batches_still_certifies_them() {
    check(&scenario(Scenario::FirewallChaos), 931..932);
    let runs = check(&scenario(Scenario::FirewallChaos), 1620..1621);
    assert!(runs.iter().all(|r| r.state_transfers > 0), "{runs:?}");
}
