//! backup: the BAR-B workload (Aiyer et al., SOSP 2005: 100 MB backed up in
//! under 4 minutes): copy a generated tree of `bytes` bytes in (MKDIR,
//! CREATE, WRITE in 1 MiB FILE_SYNC calls), then verify it (LOOKUP, GETATTR,
//! READ in 1 MiB calls, every byte compared). Four connections take files
//! from one queue, as a parallel copy tool would.
//!
//! Figures: `copy` and `verify` seconds, `total`, and the copy's MB/s.
//! Untimed: generating contents, mounting, removing the tree afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfs3_client::nfs3_types::nfs3::nfs_fh3;
use tokio::task::JoinSet;

use super::io::{dirs_children_first, make_dirs, read_verify, remove_all, write_all};
use super::outcome::{rate, Outcome, Unit};
use super::tree::Tree;
use crate::client::{Client, Endpoint};

const STREAMS: usize = 4;
const IO: usize = 1 << 20;

/// Runs `f` on every file index with `STREAMS` connections taking indexes
/// from one queue; returns the summed (bytes, verified bytes, ops).
async fn for_each_file<F, Fut>(ep: &Endpoint, n: usize, f: F) -> Result<(u64, u64, u64)>
where
    F: Fn(Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(Client, u64, u64)>> + Send,
{
    let clients = Client::connect_many(ep, STREAMS.min(n.max(1))).await?;
    let ops0: u64 = clients.iter().map(Client::ops).sum();
    let (next, f) = (Arc::new(AtomicUsize::new(0)), Arc::new(f));
    let mut tasks = JoinSet::new();
    for c in clients {
        let (next, f) = (Arc::clone(&next), Arc::clone(&f));
        tasks.spawn(async move {
            let (mut c, mut bytes, mut verified) = (c, 0, 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (c2, b, v) = f(c, i).await?;
                (c, bytes, verified) = (c2, bytes + b, verified + v);
            }
            anyhow::Ok((c, bytes, verified))
        });
    }
    let (mut bytes, mut verified, mut ops) = (0, 0, 0);
    while let Some(r) = tasks.join_next().await {
        let (c, b, v) = r.context("backup worker died")??;
        (bytes, verified, ops) = (bytes + b, verified + v, ops + c.ops());
    }
    Ok((bytes, verified, ops - ops0))
}

/// Runs the backup once.
pub async fn run(ep: &Endpoint, seed: u64, bytes: u64, run_index: usize) -> Result<Outcome> {
    let top = format!("palisade-bench-backup-{seed:016x}-{run_index}");
    let tree = Arc::new(Tree::backup(&top, seed, bytes));
    let contents: Arc<Vec<Vec<u8>>> = Arc::new(tree.files.iter().map(|f| f.contents()).collect());
    let n = tree.files.len();
    let mut c = Client::connect(ep).await?;
    let root = c.root();
    let mut out = Outcome::default();

    let t = Instant::now();
    let dirs = Arc::new(make_dirs(&mut c, &root, &tree).await?);
    let mkdir_ops = c.ops();
    let copy = {
        let (tree, contents, dirs) = (Arc::clone(&tree), Arc::clone(&contents), Arc::clone(&dirs));
        for_each_file(ep, n, move |mut c, i| {
            let (tree, contents, dirs) =
                (Arc::clone(&tree), Arc::clone(&contents), Arc::clone(&dirs));
            async move {
                let f = &tree.files[i];
                let fh = c.create(&dirs[f.dir], &f.name).await?;
                write_all(&mut c, &fh, 0, &contents[i], IO).await?;
                Ok((c, f.size, 0))
            }
        })
        .await?
    };
    let copy_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let verify = {
        let (tree, contents, dirs) = (Arc::clone(&tree), Arc::clone(&contents), Arc::clone(&dirs));
        for_each_file(ep, n, move |mut c, i| {
            let (tree, contents, dirs) =
                (Arc::clone(&tree), Arc::clone(&contents), Arc::clone(&dirs));
            async move {
                let f = &tree.files[i];
                let fh: nfs_fh3 = c
                    .lookup(&dirs[f.dir], &f.name)
                    .await?
                    .with_context(|| format!("backup verify: {} is missing", f.name))?;
                let size = c.getattr(&fh).await?.size;
                if size != f.size {
                    bail!(
                        "backup verify: {} has {size} bytes, expected {}",
                        f.name,
                        f.size
                    );
                }
                let v = read_verify(&mut c, &fh, 0, &contents[i], IO as u32, &f.name).await?;
                Ok((c, f.size, v))
            }
        })
        .await?
    };
    let verify_s = t.elapsed().as_secs_f64();
    if verify.1 != tree.total_bytes() {
        bail!(
            "backup verified {} of {} bytes",
            verify.1,
            tree.total_bytes()
        );
    }

    out.elapsed_s = copy_s + verify_s;
    out.bytes = copy.0 + verify.0;
    out.verified_bytes = verify.1;
    out.ops = mkdir_ops + copy.2 + verify.2;
    out.files = n as u64;
    out.push("copy", Unit::Seconds, copy_s);
    out.push("verify", Unit::Seconds, verify_s);
    out.push("total", Unit::Seconds, out.elapsed_s);
    out.push("copy MB/s", Unit::MbPerS, rate(copy.0 as f64 / 1e6, copy_s));

    let files = tree
        .files
        .iter()
        .map(|f| (dirs[f.dir].clone(), f.name.clone()))
        .collect();
    let dirs = dirs_children_first(&tree, &root, &dirs)?;
    drop(c);
    remove_all(ep, files, dirs, 8)
        .await
        .context("backup: removing the tree")?;
    Ok(out)
}
