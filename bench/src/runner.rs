//! Runs the chosen workloads against the targets: warm-up runs (discarded),
//! then measured runs, with progress on stderr.

use anyhow::{Context, Result};

use crate::client::Client;
use crate::target::Target;
use crate::workload::{seq_read, seq_write, small_files, Content, Params, Sample, Workload};

/// What to run and how often.
#[derive(Debug, Clone)]
pub struct Plan {
    /// In the fixed order seq-write, seq-read, small-files.
    pub workloads: Vec<Workload>,
    pub warmup: usize,
    pub repeat: usize,
    pub params: Params,
}

/// The measured runs of one workload on one target.
#[derive(Debug, Clone)]
pub struct Measured {
    pub workload: Workload,
    pub target: String,
    pub samples: Vec<Sample>,
}

async fn run_once(
    w: Workload,
    t: &Target,
    p: &Params,
    content: &Content,
    index: usize,
) -> Result<Sample> {
    match w {
        Workload::SeqWrite => seq_write::run(&t.endpoint, p, content).await,
        Workload::SeqRead => seq_read::run(&t.endpoint, p, content).await,
        Workload::SmallFiles => small_files::run(&t.endpoint, p, index).await,
    }
}

/// Runs `plan` on every target, in interleaved rounds: for each workload,
/// run `i` goes to every target back to back, starting with a different
/// target each round. A slow drift of the shared machine's load (a
/// neighbour's build starting) then hits every target alike instead of
/// whichever happened to run last, and no target always runs first.
/// Servers that are not being measured sit idle (no CPU).
pub async fn run_interleaved(
    targets: &[Target],
    plan: &Plan,
    content: &Content,
) -> Result<Vec<Measured>> {
    let n = targets.len();
    let mut out = Vec::new();
    let mut file_written = vec![false; n];
    for &w in &plan.workloads {
        if w == Workload::SeqRead {
            for (t, written) in targets.iter().zip(file_written.iter()) {
                if !written {
                    // seq-read needs the pattern file of this process's seed.
                    eprintln!(
                        "[bench] {}: writing the file seq-read will read (untimed)",
                        t.name
                    );
                    seq_write::run(&t.endpoint, &plan.params, content)
                        .await
                        .with_context(|| format!("preparing seq-read on {}", t.name))?;
                }
            }
        }
        let total = plan.warmup + plan.repeat;
        let mut samples: Vec<Vec<Sample>> = vec![Vec::with_capacity(plan.repeat); n];
        for i in 0..total {
            for k in 0..n {
                let ti = (i + k) % n;
                let target = &targets[ti];
                // i * n + ti keeps small-files directory names distinct even if
                // two targets are the same server under different names.
                let cpu_before = target.server_cpu();
                let mut s = run_once(w, target, &plan.params, content, i * n + ti)
                    .await
                    .with_context(|| format!("{} on {}", w.name(), target.name))?;
                s.server_cpu_s = cpu_before
                    .zip(target.server_cpu())
                    .map(|(before, after)| after.saturating_sub(before).as_secs_f64());
                let label = if i < plan.warmup {
                    format!("warm-up {}/{}", i + 1, plan.warmup)
                } else {
                    format!("run {}/{}", i + 1 - plan.warmup, plan.repeat)
                };
                eprintln!(
                    "[bench] {} {} {label}: {:.1} {} ({} ops in {:.3} s)",
                    target.name,
                    w.name(),
                    s.value,
                    w.unit(),
                    s.ops,
                    s.elapsed_s
                );
                if i >= plan.warmup {
                    samples[ti].push(s);
                }
            }
        }
        if w == Workload::SeqWrite {
            file_written.iter_mut().for_each(|f| *f = true);
        }
        for (t, s) in targets.iter().zip(samples) {
            out.push(Measured {
                workload: w,
                target: t.name.clone(),
                samples: s,
            });
        }
    }
    if plan
        .workloads
        .iter()
        .any(|w| matches!(w, Workload::SeqWrite | Workload::SeqRead))
    {
        for t in targets {
            cleanup(t, &plan.params).await;
        }
    }
    Ok(out)
}

/// Removes the sequential file so a benchmark leaves no large file behind on
/// someone's server. Best effort: a failure is reported, not fatal.
async fn cleanup(target: &Target, p: &Params) {
    let res = async {
        let mut c = Client::connect(&target.endpoint).await?;
        let root = c.root();
        if c.lookup(&root, &p.file_name).await?.is_some() {
            c.remove(&root, &p.file_name).await?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = res {
        eprintln!(
            "[bench] warning: could not remove {} on {}: {e:#}",
            p.file_name, target.name
        );
    }
}
