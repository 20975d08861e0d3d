//! Sequential and random READ and WRITE at a given call size and number of
//! calls in flight, on one pattern file of `file_size` bytes that
//! [`prepare`] writes once per target (untimed):
//!
//! - `seq-write` / `seq-read`: the first `io_size × ops` bytes (at most the
//!   file) in order, `io_size` per call;
//! - `rand-write` / `rand-read`: `ops` calls at `io_size`-aligned offsets
//!   drawn from the seed over the whole file.
//!
//! Writes send the pattern's bytes for their offset (FILE_SYNC), so the file
//! always holds the pattern and every read is verified byte for byte. `depth`
//! connections each keep one call in flight (`nfs3_client` has no pipelining).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::io::{read_verify, write_all};
use super::outcome::{rate, Outcome, Unit};
use crate::client::{Client, Endpoint};
use crate::rng::Rng;

/// The file every case of this workload uses, in the export's root.
pub const FILE_NAME: &str = "palisade-bench-rw.dat";

/// Which access pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RwKind {
    SeqWrite,
    SeqRead,
    RandWrite,
    RandRead,
}

impl RwKind {
    pub const ALL: [RwKind; 4] = [
        RwKind::SeqWrite,
        RwKind::SeqRead,
        RwKind::RandWrite,
        RwKind::RandRead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RwKind::SeqWrite => "seq-write",
            RwKind::SeqRead => "seq-read",
            RwKind::RandWrite => "rand-write",
            RwKind::RandRead => "rand-read",
        }
    }

    fn writes(self) -> bool {
        matches!(self, RwKind::SeqWrite | RwKind::RandWrite)
    }
}

/// Writes the whole pattern file (untimed preparation): removes an old one,
/// creates it, writes `content` in 1 MiB calls, checks its size.
pub async fn prepare(ep: &Endpoint, content: &[u8]) -> Result<()> {
    let mut c = Client::connect(ep).await?;
    let root = c.root();
    if c.lookup(&root, FILE_NAME).await?.is_some() {
        c.remove(&root, FILE_NAME).await?;
    }
    let fh = c.create(&root, FILE_NAME).await?;
    write_all(&mut c, &fh, 0, content, 1 << 20).await?;
    let size = c.getattr(&fh).await?.size;
    if size != content.len() as u64 {
        bail!("{FILE_NAME}: {size} bytes after writing {}", content.len());
    }
    Ok(())
}

/// Removes the pattern file (best effort is the caller's choice).
pub async fn cleanup(ep: &Endpoint) -> Result<()> {
    let mut c = Client::connect(ep).await?;
    let root = c.root();
    if c.lookup(&root, FILE_NAME).await?.is_some() {
        c.remove(&root, FILE_NAME).await?;
    }
    Ok(())
}

/// The offsets of one run's calls.
fn offsets(kind: RwKind, file_size: u64, io: u64, ops: usize, seed: u64) -> Vec<u64> {
    match kind {
        RwKind::SeqWrite | RwKind::SeqRead => (0..ops as u64)
            .map(|i| i * io)
            .take_while(|&o| o < file_size)
            .collect(),
        RwKind::RandWrite | RwKind::RandRead => {
            let mut rng = Rng::new(seed);
            let slots = file_size.div_ceil(io);
            (0..ops).map(|_| rng.below(slots) * io).collect()
        }
    }
}

/// Runs one case once; `content` is the whole file's pattern.
pub async fn run(
    ep: &Endpoint,
    kind: RwKind,
    io_size: u32,
    depth: usize,
    ops: usize,
    content: &Arc<Vec<u8>>,
    seed: u64,
) -> Result<Outcome> {
    let file_size = content.len() as u64;
    let io = u64::from(io_size.max(1));
    let offs = Arc::new(offsets(kind, file_size, io, ops, seed));
    let mut clients = Client::connect_many(ep, depth.max(1)).await?;
    let fh = {
        let c = clients.first_mut().context("no connection")?;
        let root = c.root();
        let fh = c
            .lookup(&root, FILE_NAME)
            .await?
            .ok_or_else(|| anyhow!("{FILE_NAME} was not prepared"))?;
        let size = c.getattr(&fh).await?.size;
        if size != file_size {
            bail!("{FILE_NAME} has {size} bytes, expected {file_size}");
        }
        fh
    };
    let ops0: u64 = clients.iter().map(Client::ops).sum();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for mut c in clients {
        let (next, offs, content, fh) = (
            Arc::clone(&next),
            Arc::clone(&offs),
            Arc::clone(content),
            fh.clone(),
        );
        tasks.spawn(async move {
            let (mut bytes, mut verified) = (0u64, 0u64);
            while let Some(&off) = offs.get(next.fetch_add(1, Ordering::Relaxed)) {
                let end = (off + io).min(file_size);
                // off < file_size == content.len(), so the range is in bounds.
                let data = &content[off as usize..end as usize];
                if kind.writes() {
                    c.write(&fh, off, data).await?;
                } else {
                    verified += read_verify(&mut c, &fh, off, data, io as u32, FILE_NAME).await?;
                }
                bytes += data.len() as u64;
            }
            anyhow::Ok((c, bytes, verified))
        });
    }
    let mut out = Outcome::default();
    let mut after = 0;
    while let Some(r) = tasks.join_next().await {
        let (c, bytes, verified) = r.context("rw worker died")??;
        after += c.ops();
        out.bytes += bytes;
        out.verified_bytes += verified;
    }
    out.elapsed_s = start.elapsed().as_secs_f64();
    out.ops = after - ops0;
    if !kind.writes() && out.verified_bytes != out.bytes {
        bail!(
            "{}: verified {} of {} bytes",
            kind.name(),
            out.verified_bytes,
            out.bytes
        );
    }
    out.push(
        "MB/s",
        Unit::MbPerS,
        rate(out.bytes as f64 / 1e6, out.elapsed_s),
    );
    out.push("ops/s", Unit::OpsPerS, rate(out.ops as f64, out.elapsed_s));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_in_range_and_seeded() {
        let seq = offsets(RwKind::SeqRead, 10 << 20, 1 << 20, 64, 1);
        assert_eq!(seq.len(), 10);
        assert_eq!(seq[9], 9 << 20);
        let seq = offsets(RwKind::SeqWrite, 10 << 20, 4096, 16, 1);
        assert_eq!(seq, (0..16).map(|i| i * 4096).collect::<Vec<_>>());
        let r = offsets(RwKind::RandRead, 1 << 20, 4096, 500, 9);
        assert_eq!(r.len(), 500);
        assert!(r.iter().all(|o| o % 4096 == 0 && *o < 1 << 20));
        assert_eq!(r, offsets(RwKind::RandWrite, 1 << 20, 4096, 500, 9));
        assert_ne!(r, offsets(RwKind::RandRead, 1 << 20, 4096, 500, 10));
        // A file that is not a multiple of the call size: the last slot is short.
        let r = offsets(RwKind::RandRead, 10_000, 4096, 100, 3);
        assert!(r.iter().all(|o| *o < 10_000));
    }
}
