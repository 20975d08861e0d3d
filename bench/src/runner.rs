//! Runs the chosen workloads against one target: warm-up runs (discarded),
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

/// Runs `plan` on `target`.
pub async fn run_target(target: &Target, plan: &Plan, content: &Content) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    let mut file_written = false;
    for &w in &plan.workloads {
        if w == Workload::SeqRead && !file_written {
            // seq-read needs the pattern file of this process's seed.
            eprintln!(
                "[bench] {}: writing the file seq-read will read (untimed)",
                target.name
            );
            seq_write::run(&target.endpoint, &plan.params, content).await?;
        }
        let total = plan.warmup + plan.repeat;
        let mut samples = Vec::with_capacity(plan.repeat);
        for i in 0..total {
            let s = run_once(w, target, &plan.params, content, i)
                .await
                .with_context(|| format!("{} on {}", w.name(), target.name))?;
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
                samples.push(s);
            }
        }
        if w == Workload::SeqWrite {
            file_written = true;
        }
        out.push(Measured {
            workload: w,
            target: target.name.clone(),
            samples,
        });
    }
    if plan
        .workloads
        .iter()
        .any(|w| matches!(w, Workload::SeqWrite | Workload::SeqRead))
    {
        cleanup(target, &plan.params).await;
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
