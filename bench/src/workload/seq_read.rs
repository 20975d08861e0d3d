//! seq-read: read the pattern file back in `io_size` READ calls (RFC 1813
//! section 3.3.6) with `depth` in flight, and check every byte against the
//! pattern. A run fails (non-zero exit) on the first wrong byte, a missing
//! range or a size mismatch; `verified_bytes` counts what was checked and
//! must equal `size`.
//!
//! Untimed: mounting, LOOKUP and GETATTR of the file. Timed: the READ calls
//! and the comparison (a memcmp against the expected content, far cheaper
//! than the calls; it is part of what a careful client does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use tokio::task::JoinSet;

use super::{mb_per_s, Content, Params, Sample};
use crate::client::{Client, Endpoint};
use crate::pattern;

/// Reads `[offset, end)` on `c`, following short reads, and checks it.
async fn read_range(
    c: &mut Client,
    fh: &nfs3_client::nfs3_types::nfs3::nfs_fh3,
    mut offset: u64,
    end: u64,
    expected: &[u8],
) -> Result<u64> {
    let mut verified = 0u64;
    while offset < end {
        let want = u32::try_from(end - offset).context("READ size")?;
        let (data, eof) = c.read(fh, offset, want).await?;
        // `read` guarantees data.len() <= want.
        let exp = &expected[offset as usize..offset as usize + data.len()];
        if let Some(i) = pattern::first_difference(&data, exp) {
            bail!(
                "seq-read: data mismatch at file offset {} (read {:?}, expected {:?})",
                offset + i as u64,
                data.get(i),
                exp.get(i)
            );
        }
        verified += data.len() as u64;
        offset += data.len() as u64;
        if offset < end && (eof || data.is_empty()) {
            bail!("seq-read: file ends at {offset}, expected {end} bytes");
        }
    }
    Ok(verified)
}

/// Runs seq-read once.
pub async fn run(ep: &Endpoint, p: &Params, content: &Content) -> Result<Sample> {
    let mut clients = Client::connect_many(ep, p.depth.max(1)).await?;
    let fh = {
        let c = clients.first_mut().context("no connection")?;
        let root = c.root();
        let fh = c
            .lookup(&root, &p.file_name)
            .await?
            .ok_or_else(|| anyhow!("seq-read: {} does not exist", p.file_name))?;
        let attr = c.getattr(&fh).await?;
        if attr.size != p.size {
            bail!(
                "seq-read: {} has {} bytes, expected {}",
                p.file_name,
                attr.size,
                p.size
            );
        }
        fh
    };
    let ops_before: u64 = clients.iter().map(Client::ops).sum();

    let next_chunk = Arc::new(AtomicU64::new(0));
    let verified = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // A JoinSet aborts the other workers if one fails and we return early.
    let mut tasks = JoinSet::new();
    for mut c in clients {
        let next_chunk = Arc::clone(&next_chunk);
        let verified = Arc::clone(&verified);
        let content = Arc::clone(content);
        let fh = fh.clone();
        let (size, io) = (p.size, u64::from(p.io_size));
        tasks.spawn(async move {
            loop {
                let offset = next_chunk.fetch_add(1, Ordering::Relaxed) * io;
                if offset >= size {
                    break;
                }
                let end = (offset + io).min(size);
                let n = read_range(&mut c, &fh, offset, end, &content).await?;
                verified.fetch_add(n, Ordering::Relaxed);
            }
            anyhow::Ok(c)
        });
    }
    let mut clients = Vec::with_capacity(tasks.len());
    while let Some(r) = tasks.join_next().await {
        clients.push(r.context("seq-read worker died")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ops: u64 = clients.iter().map(Client::ops).sum::<u64>() - ops_before;
    let verified = verified.load(Ordering::Relaxed);
    if verified != p.size {
        bail!("seq-read verified {verified} bytes, expected {}", p.size);
    }
    Ok(Sample {
        value: mb_per_s(p.size, elapsed),
        elapsed_s: elapsed,
        bytes: p.size,
        ops,
        verified_bytes: verified,
        ..Sample::default()
    })
}
