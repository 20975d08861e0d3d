//! `palisade-bench suite`: the whole matrix on every target, interleaved
//! round by round, then `report.md`, `results.json` and SVG plots in `--out`
//! (Palisade issue 5). `check-report` checks such a directory's form.
//!
//! Layout: `cases` (the matrix per mode), `results` (summaries, JSON),
//! `markdown` (the report), `plots` (SVG), `check` (well-formedness),
//! `progress` (indicatif or plain lines).

pub mod cases;
pub mod check;
pub mod markdown;
pub mod plots;
pub mod progress;
pub mod results;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::{CheckArgs, SuiteArgs};
use crate::client::Endpoint;
use crate::machine::{Environment, Load, Machine};
use crate::pattern;
use crate::target::{SpawnOptions, Target, TargetSpec};
use crate::workload::outcome::{Outcome, Unit};
use crate::workload::{andrew, backup, churn, latency, rw};
use cases::{Case, Group, Mode, Preset};
use progress::Progress;
use results::{CaseResult, SuiteResults, TargetInfo};

/// Bounds that keep a typo from exhausting memory or running for days.
const MAX_SCALE: f64 = 100.0;
const MAX_CLIENTS: usize = 1024;
const MAX_DEPTH: usize = 256;
const MAX_BACKUP: u64 = 8 << 30;

fn preset(a: &SuiteArgs) -> Result<(Mode, Preset)> {
    let mode = if a.quick {
        Mode::Quick
    } else if a.full {
        Mode::Full
    } else {
        Mode::Medium
    };
    let mut p = Preset::of(mode);
    if !a.scale.is_empty() {
        if a.scale.iter().any(|s| !(*s > 0.0 && *s <= MAX_SCALE)) {
            bail!("--scale must be above 0 and at most {MAX_SCALE}");
        }
        p.andrew_scales = a.scale.clone();
    }
    if !a.clients.is_empty() {
        if a.clients.iter().any(|c| *c == 0 || *c > MAX_CLIENTS) {
            bail!("--clients must be between 1 and {MAX_CLIENTS}");
        }
        p.churn_clients = a.clients.clone();
    }
    if !a.depths.is_empty() {
        if a.depths.iter().any(|d| *d == 0 || *d > MAX_DEPTH) {
            bail!("--depths must be between 1 and {MAX_DEPTH}");
        }
        p.rw_depths = a.depths.clone();
    }
    if let Some(b) = a.backup_size {
        if b == 0 || b > MAX_BACKUP {
            bail!("--backup-size must be between 1 byte and {MAX_BACKUP} bytes");
        }
        p.backup_bytes = b;
    }
    if let Some(r) = a.repeat {
        if r == 0 {
            bail!("--repeat must be at least 1");
        }
        p.repeat = r;
    }
    if let Some(w) = a.warmup {
        p.warmup = w;
    }
    Ok((mode, p))
}

/// The command line, quoted where a shell would need it.
fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 {
                // The path the binary was run by is machine-specific; keep its name.
                std::path::Path::new(&a)
                    .file_name()
                    .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
            } else {
                a
            };
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn git_commit() -> Option<String> {
    // `-dirty` when the work tree differs from HEAD: the binaries may then hold
    // code no commit has.
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// The latency case's figure of the server's CPU time per NFS call (the run's untimed
/// setup included), when the server's process is known ([`crate::cpu`]): on a shared
/// two-core machine a replicated call's latency follows what it costs in CPU.
pub const SERVER_CPU: &str = "server CPU per call";

async fn run_case(
    case: &Case,
    ep: &Endpoint,
    seed: u64,
    run_index: usize,
    rw_content: &Arc<Vec<u8>>,
) -> Result<Outcome> {
    match case {
        Case::Andrew { scale } => andrew::run(ep, seed, *scale, run_index).await,
        Case::Churn {
            clients,
            files_per_client,
        } => churn::run(ep, seed, *clients, *files_per_client, run_index).await,
        Case::Rw {
            kind,
            io_size,
            depth,
            ops,
        } => rw::run(ep, *kind, *io_size, *depth, *ops, rw_content, seed).await,
        Case::Backup { bytes } => backup::run(ep, seed, *bytes, run_index).await,
        Case::Latency { samples } => latency::run(ep, seed, *samples, run_index).await,
    }
}

fn headline(o: &Outcome) -> String {
    o.metrics
        .iter()
        .find(|m| m.name == "total")
        .or_else(|| o.metrics.first())
        .map_or("(no figure)".to_string(), |m| {
            format!("{} {} {}", m.name, markdown::num(m.value), m.unit.label())
        })
}

/// Runs the suite.
pub async fn run(a: SuiteArgs) -> Result<()> {
    let started = Instant::now();
    let commit = git_commit();
    let (mode, preset) = preset(&a)?;
    let groups = if a.only.is_empty() {
        Group::ALL.to_vec()
    } else {
        a.only.clone()
    };
    let cases = preset.cases(&groups);
    let seed = a.seed.unwrap_or_else(crate::random_seed);
    let mut specs: Vec<TargetSpec> = a.spawn.iter().map(|k| TargetSpec::Spawn(*k)).collect();
    specs.extend(a.targets.iter().cloned().map(TargetSpec::External));
    if specs.is_empty() {
        bail!("nothing to measure: give --spawn KIND[,KIND...] and/or --target [NAME=]HOST:PORT");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    eprintln!(
        "[suite] {} mode, seed {seed:#x}, {} cases × {} targets × {} runs (+{} warm-up)",
        mode.name(),
        cases.len(),
        specs.len(),
        preset.repeat,
        preset.warmup
    );

    let start_load = Load::now();
    if start_load.busy() {
        eprintln!(
            "[suite] warning: load average {:.1} on {} CPUs: other work is running, \
             figures will be noisy and low",
            start_load.loadavg_1m.unwrap_or(0.0),
            start_load.cpus
        );
    }
    let opts = SpawnOptions {
        palisade_bin: a.palisade_bin.clone(),
        ready_timeout: Duration::from_secs(a.ready_timeout),
    };
    let mut targets: Vec<Target> = Vec::with_capacity(specs.len());
    let mut infos = Vec::with_capacity(specs.len());
    for spec in &specs {
        let t = Target::start(spec, &a.export, &opts).await?;
        if targets.iter().any(|o| o.name == t.name) {
            bail!("target {} is listed twice", t.name);
        }
        infos.push(TargetInfo {
            name: t.name.clone(),
            description: spec.description(&a.export),
        });
        targets.push(t);
    }
    let baseline = targets
        .iter()
        .find(|t| t.name == "unreplicated")
        .or(targets.first())
        .map(|t| t.name.clone())
        .unwrap_or_default();

    let rw_content = Arc::new(if cases.iter().any(|c| c.group() == Group::Rw) {
        let size = usize::try_from(preset.rw_file).context("rw file size")?;
        pattern::generate(pattern::derive_seed(seed, u64::MAX), 0, size)
    } else {
        Vec::new()
    });
    let last_rw = cases.iter().rposition(|c| c.group() == Group::Rw);
    let rounds = preset.warmup + preset.repeat;
    let n = targets.len();
    let progress = Progress::new((cases.len() * rounds * n) as u64, a.quick);
    let mut results = Vec::with_capacity(cases.len() * n);
    let mut run_index = 0usize;
    let mut rw_prepared = false;
    for (ci, case) in cases.iter().enumerate() {
        let id = case.id();
        if case.group() == Group::Rw && !rw_prepared {
            for t in &targets {
                progress.start(&format!("{}: writing the rw file (untimed)", t.name));
                rw::prepare(&t.endpoint, &rw_content)
                    .await
                    .with_context(|| format!("preparing the rw file on {}", t.name))?;
            }
            rw_prepared = true;
        }
        let case_seed = pattern::derive_seed(seed, ci as u64);
        let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::with_capacity(preset.repeat); n];
        for round in 0..rounds {
            for k in 0..n {
                let ti = (round + k) % n;
                let t = &targets[ti];
                let label = if round < preset.warmup {
                    format!("warm-up {}/{}", round + 1, preset.warmup)
                } else {
                    format!("run {}/{}", round + 1 - preset.warmup, preset.repeat)
                };
                progress.start(&format!("{id} on {} ({label})", t.name));
                run_index += 1;
                // Only the latency case reports it (one call at a time: CPU per call).
                let latency_case = matches!(case, Case::Latency { .. });
                let cpu_before = latency_case.then(|| t.server_cpu()).flatten();
                let mut o = run_case(case, &t.endpoint, case_seed, run_index, &rw_content)
                    .await
                    .with_context(|| format!("{id} on {}", t.name))?;
                if let (Some(before), Some(after)) =
                    (cpu_before, latency_case.then(|| t.server_cpu()).flatten())
                {
                    if o.ops > 0 {
                        let cpu = after.saturating_sub(before).as_secs_f64();
                        o.push(SERVER_CPU, Unit::Micros, cpu * 1e6 / o.ops as f64);
                    }
                }
                progress.line(&format!("{} {id} {label}: {}", t.name, headline(&o)));
                progress.inc();
                if round >= preset.warmup {
                    outcomes[ti].push(o);
                }
            }
        }
        for (t, runs) in targets.iter().zip(outcomes) {
            results.push(CaseResult::new(case, &t.name, runs));
        }
        if Some(ci) == last_rw {
            for t in &targets {
                if let Err(e) = rw::cleanup(&t.endpoint).await {
                    progress.line(&format!(
                        "warning: could not remove {} on {}: {e:#}",
                        rw::FILE_NAME,
                        t.name
                    ));
                }
            }
        }
    }
    progress.finish();
    drop(targets);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let r = SuiteResults {
        tool: "palisade-bench".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        mode: mode.name().to_string(),
        command: command_line(),
        date: format!("{} UTC", results::utc_date(now)),
        commit,
        seed,
        warmup: preset.warmup,
        repeat: preset.repeat,
        preset,
        machine: Machine::describe(),
        environment: Environment {
            start: start_load,
            end: Load::now(),
        },
        targets: infos,
        baseline,
        duration_s: started.elapsed().as_secs_f64(),
        cases: results,
    };
    r.write_json(&a.out.join("results.json"))?;
    let plots = write_report(&r, &a.out)?;
    eprintln!(
        "[suite] wrote {} ({plots} plots) in {:.0} s",
        a.out.join("report.md").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Draws the plots and writes `report.md` into `dir`; returns the number of plots.
fn write_report(r: &SuiteResults, dir: &std::path::Path) -> Result<usize> {
    let plots = plots::draw_all(r, dir)?;
    let md = markdown::render(r, &plots);
    std::fs::write(dir.join("report.md"), &md)
        .with_context(|| format!("writing {}", dir.join("report.md").display()))?;
    Ok(plots.len())
}

/// `render DIR`: the report and plots again from `DIR/results.json` (after a
/// change to the report's form, without measuring again).
pub fn render(a: &CheckArgs) -> Result<()> {
    let r = SuiteResults::read_json(&a.dir.join("results.json"))?;
    let plots = write_report(&r, &a.dir)?;
    eprintln!(
        "[suite] wrote {} ({plots} plots) from results.json",
        a.dir.join("report.md").display()
    );
    Ok(())
}

/// `check-report DIR`.
pub fn check_report(a: &CheckArgs) -> Result<()> {
    let c = check::check(&a.dir);
    if c.problems.is_empty() {
        println!(
            "{}: well-formed report: {} tables, {} plots, {} targets",
            a.dir.display(),
            c.tables,
            c.plots,
            c.targets
        );
        Ok(())
    } else {
        for p in &c.problems {
            eprintln!("{}: {p}", a.dir.display());
        }
        bail!("{} problem(s) in {}", c.problems.len(), a.dir.display())
    }
}
