//! `palisade-sim`: runs the deterministic simulator for one seed or a range of seeds.
//!
//! ```text
//! cargo run -p palisade-sim --release -- --seed 1234 --scenario byzantine-primary
//! cargo run -p palisade-sim --release -- --seeds 0..200 --scenario all
//! cargo run -p palisade-sim --release -- --seeds 0..50 --scenario byzantine-filters --h 2
//! ```

use std::io::Write as _;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use palisade_sim::{Failure, Scenario, SimConfig, Simulation};

#[derive(Parser, Debug)]
#[command(about = "Deterministic whole-pipeline simulator of Palisade")]
struct Args {
    /// One seed to run.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A range of seeds, `A..B` (B excluded).
    #[arg(long)]
    seeds: Option<String>,
    /// A scenario name, or `all` (every scenario except `colluding` and
    /// `firewall-breach`, which break a fault bound on purpose and must fail).
    #[arg(long, default_value = "normal")]
    scenario: String,
    /// Run through the privacy firewall with h+1 rows of h+1 filters (the firewall
    /// scenarios default to 1; any other scenario runs through the firewall with it).
    #[arg(long)]
    h: Option<usize>,
    /// Operations per client (overrides the scenario's default; larger = a longer soak).
    #[arg(long)]
    ops: Option<u64>,
    /// Number of clients (overrides the default).
    #[arg(long)]
    clients: Option<usize>,
    /// Requests each client keeps in flight (overrides the default).
    #[arg(long)]
    window: Option<usize>,
    /// Milliseconds of simulated time to keep running after the last request completed
    /// (overrides the default).
    #[arg(long)]
    settle_ms: Option<u64>,
    /// Print the state of every node at the end of each passing run.
    #[arg(long)]
    verbose: bool,
    /// Print every message sent (and how many copies the network delivers) and every
    /// crash to stderr.
    #[arg(long)]
    trace: bool,
}

fn parse_range(s: &str) -> anyhow::Result<std::ops::Range<u64>> {
    let (a, b) = s.split_once("..").context("--seeds wants A..B")?;
    Ok(a.trim().parse()?..b.trim().parse()?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match run_all(&args) {
        // `palisade-sim ... | head` closed the pipe: not an error of the simulation.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn run_all(args: &Args) -> anyhow::Result<()> {
    let seeds = match (&args.seed, &args.seeds) {
        (Some(s), _) => *s..s.saturating_add(1),
        (None, Some(r)) => parse_range(r)?,
        (None, None) => 0..1,
    };
    let scenarios: Vec<Scenario> = if args.scenario == "all" {
        Scenario::ALL
            .into_iter()
            .filter(|s| !s.breaks_bounds())
            .collect()
    } else {
        match Scenario::from_name(&args.scenario) {
            Some(s) => vec![s],
            None => {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                bail!(
                    "unknown scenario {:?}; known: {}",
                    args.scenario,
                    names.join(", ")
                );
            }
        }
    };
    let mut failures = 0u64;
    let mut runs = 0u64;
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for scenario in scenarios {
        for seed in seeds.clone() {
            let mut config = SimConfig::for_scenario(scenario);
            if let Some(ops) = args.ops {
                config.ops_per_client = ops;
            }
            if let Some(c) = args.clients {
                config.clients = c;
            }
            if let Some(w) = args.window {
                config.client_window = w;
            }
            if let Some(ms) = args.settle_ms {
                config.settle = std::time::Duration::from_millis(ms);
            }
            if let Some(h) = args.h {
                config = config.with_h(h);
            }
            config.trace = args.trace;
            runs += 1;
            let t = Instant::now();
            let (result, state) = match Simulation::new(seed, config.clone()) {
                Ok(mut sim) => {
                    let result = sim.run();
                    (result, sim.describe())
                }
                Err(violation) => (
                    Err(Failure {
                        seed,
                        scenario,
                        violation,
                        at: std::time::Duration::ZERO,
                        events: 0,
                        h: config.h,
                    }),
                    String::new(),
                ),
            };
            if args.verbose && result.is_ok() {
                writeln!(out, "{state}")?;
            }
            match result {
                Ok(stats) => {
                    let firewall = match config.h {
                        Some(h) => format!(
                            " | firewall h={h}: {} crossed, {} relayed, {} resent on request, {} filter drops, {} bad shares, {} leaks sent, {} filter misdeeds, {} harmless forgeries, {} no-link, BLS {}/{}",
                            stats.crossed,
                            stats.replies_relayed,
                            stats.filter_replies_resent_on_request,
                            stats.filter_drops,
                            stats.bad_shares,
                            stats.leaks_sent,
                            stats.filter_misdeeds,
                            stats.harmless_forgeries,
                            stats.no_link,
                            stats.bls_computed,
                            stats.bls_calls
                        ),
                        None => String::new(),
                    };
                    let restarts = match stats.cluster_restarts {
                        0 => String::new(),
                        n => format!(
                            ", {n} cluster restart(s), the last at sequence {} (replicas {} apart, {} sequences voided, {} stall reports)",
                            stats.cluster_restart_at,
                            stats.cluster_stop_spread,
                            stats.sequences_voided,
                            stats.restart_stalls
                        ),
                    };
                    writeln!(
                        out,
                        "ok seed {seed} scenario {scenario}: {} requests ({} reads unordered), {} batches, view {} ({} lagging), {}/{} named pre-prepares rebuilt/fetched, {}/{}/{}/{} orders by f+1 pushes/large by certificate/waits expired/bad certificates, {}/{} votes withheld/quiet speak-ups, {} state transfers, {} dropped{restarts}, {:?} simulated, {} events, {:.2?} wall{firewall}",
                        stats.completed,
                        stats.reads_unordered,
                        stats.committed,
                        stats.max_view,
                        stats.agreement_lagging,
                        stats.pre_prepares_rebuilt,
                        stats.pre_prepares_fetched,
                        stats.orders_agreed_by_pushers,
                        stats.large_orders_certified,
                        stats.push_waits_expired,
                        stats.exec_bad_certificates,
                        stats.votes_withheld,
                        stats.quiet_speak_ups,
                        stats.state_transfers,
                        stats.messages_dropped,
                        stats.sim_time,
                        stats.events,
                        t.elapsed()
                    )?
                }
                Err(failure) => {
                    failures += 1;
                    writeln!(out, "{failure}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "{runs} runs, {failures} failed, {:.2?}",
        started.elapsed()
    )?;
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
