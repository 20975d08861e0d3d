//! small-files: `clients` concurrent connections, each in its own fresh
//! directory, each doing for `files` files: CREATE (GUARDED), one WRITE of
//! `small_file_size` bytes (FILE_SYNC), GETATTR (checked: a regular file of
//! that size), REMOVE. Every NFS call counts as an op (RFC 1813 section 3.3:
//! CREATE, WRITE, GETATTR, REMOVE), so four per file unless a server omits
//! the handle from CREATE and we have to LOOKUP it.
//!
//! Untimed: mounting, MKDIR of the per-client directories, and their RMDIR
//! afterwards. Timed: from the moment all clients are ready (a barrier) to
//! the moment the last one finishes.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfs3_client::nfs3_types::nfs3::ftype3;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::{Params, Sample};
use crate::client::{Client, Endpoint};
use crate::pattern;

/// Runs small-files once; `run_index` keeps directory names of successive
/// runs apart.
pub async fn run(ep: &Endpoint, p: &Params, run_index: usize) -> Result<Sample> {
    let n = p.clients.max(1);
    let mut clients = Client::connect_many(ep, n).await?;
    let data = Arc::new(pattern::generate(p.seed, 0, p.small_file_size as usize));
    let barrier = Arc::new(Barrier::new(n + 1));
    // Every directory exists before any worker starts, so a failing MKDIR
    // cannot leave workers waiting at the barrier.
    let mut ready = Vec::with_capacity(n);
    for (i, mut c) in clients.drain(..).enumerate() {
        let root = c.root();
        let dir_name = format!("palisade-bench-sf-{:016x}-{run_index}-{i}", p.seed);
        let dir = c.mkdir(&root, &dir_name).await?;
        ready.push((c, root, dir_name, dir));
    }
    // A JoinSet aborts the other workers if one fails and we return early.
    let mut tasks = JoinSet::new();
    for (mut c, root, dir_name, dir) in ready {
        let barrier = Arc::clone(&barrier);
        let data = Arc::clone(&data);
        let files = p.files;
        tasks.spawn(async move {
            barrier.wait().await;
            let ops_before = c.ops();
            for f in 0..files {
                let name = format!("f{f}");
                let fh = c.create(&dir, &name).await?;
                c.write(&fh, 0, &data).await?;
                let attr = c.getattr(&fh).await?;
                if attr.type_ != ftype3::NF3REG || attr.size != data.len() as u64 {
                    bail!(
                        "small-files: {dir_name}/{name} is {:?} of {} bytes after writing {}",
                        attr.type_,
                        attr.size,
                        data.len()
                    );
                }
                c.remove(&dir, &name).await?;
            }
            let ops = c.ops() - ops_before;
            anyhow::Ok((c, root, dir_name, ops))
        });
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut done = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        done.push(r.context("small-files worker died")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut ops = 0;
    for (mut c, root, dir_name, client_ops) in done {
        ops += client_ops;
        c.rmdir(&root, &dir_name).await?;
    }
    let files = (n * p.files) as u64;
    Ok(Sample {
        value: if elapsed > 0.0 {
            ops as f64 / elapsed
        } else {
            0.0
        },
        elapsed_s: elapsed,
        bytes: files * u64::from(p.small_file_size),
        ops,
        files,
        ..Sample::default()
    })
}
