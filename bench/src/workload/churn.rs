//! churn: small-file metadata churn at `clients` concurrent connections,
//! each in its own fresh directory, each doing `files` times: CREATE
//! (GUARDED), WRITE 4 KiB (FILE_SYNC), GETATTR (checked), RENAME, REMOVE —
//! five NFS calls per file (RFC 1813 sections 3.3.8, 3.3.7, 3.3.1, 3.3.14,
//! 3.3.12). The figure is NFS calls per second over all clients.
//!
//! Untimed: mounting, MKDIR and RMDIR of the per-client directories. Timed:
//! from a barrier that all clients pass together to the last one's end.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfs3_client::nfs3_types::nfs3::ftype3;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::outcome::{rate, Outcome, Unit};
use crate::client::{Client, Endpoint};
use crate::pattern;

const FILE_SIZE: usize = 4 << 10;

/// Runs churn once.
pub async fn run(
    ep: &Endpoint,
    seed: u64,
    clients: usize,
    files: usize,
    run_index: usize,
) -> Result<Outcome> {
    let n = clients.max(1);
    let data = Arc::new(pattern::generate(seed, 0, FILE_SIZE));
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut ready = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = Client::connect(ep).await?;
        let root = c.root();
        let dir_name = format!("palisade-bench-churn-{seed:016x}-{run_index}-{i}");
        let dir = c.mkdir(&root, &dir_name).await?;
        ready.push((c, root, dir_name, dir));
    }
    // A JoinSet aborts the other workers if one fails and we return early.
    let mut tasks = JoinSet::new();
    for (mut c, root, dir_name, dir) in ready {
        let barrier = Arc::clone(&barrier);
        let data = Arc::clone(&data);
        tasks.spawn(async move {
            barrier.wait().await;
            let ops0 = c.ops();
            for f in 0..files {
                let (name, renamed) = (format!("n{f}"), format!("r{f}"));
                let fh = c.create(&dir, &name).await?;
                c.write(&fh, 0, &data).await?;
                let attr = c.getattr(&fh).await?;
                if attr.type_ != ftype3::NF3REG || attr.size != data.len() as u64 {
                    bail!(
                        "churn: {dir_name}/{name} is {:?} of {} bytes after writing {}",
                        attr.type_,
                        attr.size,
                        data.len()
                    );
                }
                c.rename(&dir, &name, &dir, &renamed).await?;
                c.remove(&dir, &renamed).await?;
            }
            let ops = c.ops() - ops0;
            anyhow::Ok((c, root, dir_name, ops))
        });
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut done = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        done.push(r.context("churn worker died")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut out = Outcome {
        elapsed_s: elapsed,
        files: (n * files) as u64,
        bytes: (n * files * FILE_SIZE) as u64,
        ..Outcome::default()
    };
    for (mut c, root, dir_name, ops) in done {
        out.ops += ops;
        c.rmdir(&root, &dir_name).await?;
    }
    out.push("ops/s", Unit::OpsPerS, rate(out.ops as f64, elapsed));
    out.push("files/s", Unit::FilesPerS, rate(out.files as f64, elapsed));
    Ok(out)
}
