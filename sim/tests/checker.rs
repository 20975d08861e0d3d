//! The checker can fail: beyond the fault thresholds, or fed a wrong result, it reports
//! the violation (a checker that never fails proves nothing). And a seed replays exactly.

use std::collections::BTreeSet;

use palisade_sim::scenario::{AgreementFault, ExecFault};
use palisade_sim::{run, Scenario, SimConfig, Violation};

#[test]
fn f_plus_one_colluding_agreement_replicas_break_safety_and_are_caught() {
    for seed in 0..5 {
        let failure = run(seed, SimConfig::for_scenario(Scenario::Colluding))
            .expect_err("f+1 colluding replicas must produce a detected violation");
        assert!(
            matches!(failure.violation, Violation::ConflictingCommit { .. }),
            "seed {seed}: expected an agreement-safety violation, got {}",
            failure
        );
        assert_eq!(failure.violation.invariant(), "agreement-safety");
        assert_eq!(
            failure.replay_command(),
            format!("cargo run -p palisade-sim --release -- --seed {seed} --scenario colluding")
        );
    }
}

#[test]
fn one_equivocating_primary_alone_is_tolerated() {
    // The same equivocation, but by the primary only (within f): no violation.
    let mut config = SimConfig::for_scenario(Scenario::ByzantinePrimary);
    config.agreement_faults = vec![(
        0,
        AgreementFault::Equivocate {
            group_b: BTreeSet::from([3]),
            learn_from_peers: true,
        },
    )];
    run(0, config).unwrap();
}

#[test]
fn g_plus_one_matching_wrong_replies_are_caught_by_the_oracle() {
    // Two of three execution replicas (beyond g = 1) send the same wrong result: the
    // client accepts it, and the oracle must say it is wrong.
    for seed in 0..3 {
        let mut config = SimConfig::for_scenario(Scenario::WrongReplies);
        config.exec_faults = vec![(0, ExecFault::WrongReplies), (1, ExecFault::WrongReplies)];
        let failure = run(seed, config).expect_err("g+1 liars must be caught");
        assert!(
            matches!(failure.violation, Violation::WrongResult { .. }),
            "seed {seed}: {failure}"
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    for scenario in [
        Scenario::Lossy,
        Scenario::StoreLoss,
        Scenario::ByzantinePrimary,
    ] {
        let a = run(7, SimConfig::for_scenario(scenario)).unwrap();
        let b = run(7, SimConfig::for_scenario(scenario)).unwrap();
        assert_eq!(a, b, "{scenario}: a replay differs");
    }
    let a = run(1, SimConfig::for_scenario(Scenario::Lossy)).unwrap();
    let b = run(2, SimConfig::for_scenario(Scenario::Lossy)).unwrap();
    assert_ne!(a, b, "two seeds gave identical runs: the seed is not used");
}
