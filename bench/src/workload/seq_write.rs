//! seq-write: write the pattern file from offset 0 to `size` in `io_size`
//! WRITE calls with `stable = FILE_SYNC` (RFC 1813 section 3.3.7), keeping
//! `depth` calls in flight the way a kernel client's write-behind does.
//!
//! Untimed: mounting the connections, removing an old file of the same name,
//! CREATE. Timed: the WRITE calls, from the first sent to the last answered.
//! Afterwards (untimed) GETATTR must report exactly `size` bytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfs3_client::nfs3_types::nfs3::nfs_fh3;
use tokio::task::JoinSet;

use super::{mb_per_s, Content, Params, Sample};
use crate::client::{Client, Endpoint};

/// Runs seq-write once.
pub async fn run(ep: &Endpoint, p: &Params, content: &Content) -> Result<Sample> {
    let mut clients = Client::connect_many(ep, p.depth.max(1)).await?;
    let fh = {
        let c = clients.first_mut().context("no connection")?;
        let root = c.root();
        if c.lookup(&root, &p.file_name).await?.is_some() {
            c.remove(&root, &p.file_name).await?;
        }
        c.create(&root, &p.file_name).await?
    };
    let ops_before: u64 = clients.iter().map(Client::ops).sum();

    let next_chunk = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // A JoinSet aborts the other workers if one fails and we return early.
    let mut tasks = JoinSet::new();
    for mut c in clients {
        let next_chunk = Arc::clone(&next_chunk);
        let content = Arc::clone(content);
        let fh: nfs_fh3 = fh.clone();
        let (size, io) = (p.size, u64::from(p.io_size));
        tasks.spawn(async move {
            loop {
                let offset = next_chunk.fetch_add(1, Ordering::Relaxed) * io;
                if offset >= size {
                    break;
                }
                let end = (offset + io).min(size);
                // offset < end <= size == content.len(), checked by the runner.
                c.write(&fh, offset, &content[offset as usize..end as usize])
                    .await?;
            }
            anyhow::Ok(c)
        });
    }
    let mut clients = Vec::with_capacity(tasks.len());
    while let Some(r) = tasks.join_next().await {
        clients.push(r.context("seq-write worker died")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ops: u64 = clients.iter().map(Client::ops).sum::<u64>() - ops_before;

    let c = clients.first_mut().context("no connection")?;
    let attr = c.getattr(&fh).await?;
    if attr.size != p.size {
        bail!(
            "after seq-write the server reports {} bytes, expected {}",
            attr.size,
            p.size
        );
    }
    Ok(Sample {
        value: mb_per_s(p.size, elapsed),
        elapsed_s: elapsed,
        bytes: p.size,
        ops,
        ..Sample::default()
    })
}
