//! latency: single-operation latency of GETATTR, LOOKUP, CREATE, WRITE 4 KiB
//! (FILE_SYNC) and READ 4 KiB (verified) on one connection with nothing else
//! in flight: `samples` rounds of the five calls, each call timed on its own
//! and recorded in an HDR histogram (1 µs to 60 s, 3 significant digits).
//! Figures: p50, p90 and p99 of each operation in µs, and each operation's
//! percentile curve for the plots.
//!
//! Untimed: MKDIR of the run's directory, CREATE and the first WRITE of the
//! 64 KiB file the calls use, and removing everything afterwards.

use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use nfs3_client::nfs3_types::nfs3::nfs_fh3;

use super::io::{read_verify, remove_all, write_all};
use super::outcome::{LatencyCurve, Outcome, Unit};
use crate::client::{Client, Endpoint};
use crate::pattern;

/// The operations in the order each round issues them.
pub const OPS: [&str; 5] = ["GETATTR", "LOOKUP", "CREATE", "WRITE 4 KiB", "READ 4 KiB"];
/// The percentiles reported as figures.
pub const PERCENTILES: [(f64, &str); 3] = [(50.0, "p50"), (90.0, "p90"), (99.0, "p99")];
/// Where each curve is sampled (percent).
const CURVE: [f64; 14] = [
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

const BLOCK: usize = 4096;
const FILE_BLOCKS: usize = 16;

fn micros(t: Instant) -> u64 {
    t.elapsed().as_micros().clamp(1, u128::from(u64::MAX)) as u64
}

/// Runs the workload once.
pub async fn run(ep: &Endpoint, seed: u64, samples: usize, run_index: usize) -> Result<Outcome> {
    let mut hists = Vec::with_capacity(OPS.len());
    for _ in OPS {
        hists.push(
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .map_err(|e| anyhow!("latency histogram: {e}"))?,
        );
    }
    let content = pattern::generate(seed, 0, BLOCK * FILE_BLOCKS);
    let mut c = Client::connect(ep).await?;
    let root = c.root();
    let dir_name = format!("palisade-bench-latency-{seed:016x}-{run_index}");
    let dir = c.mkdir(&root, &dir_name).await?;
    let fh = c.create(&dir, "target").await?;
    write_all(&mut c, &fh, 0, &content, 1 << 20).await?;

    let ops0 = c.ops();
    let mut out = Outcome::default();
    let mut created: Vec<(nfs_fh3, String)> = vec![(dir.clone(), "target".to_string())];
    let start = Instant::now();
    for i in 0..samples {
        let mut times = [0u64; 5];
        let t = Instant::now();
        c.getattr(&fh).await?;
        times[0] = micros(t);

        let t = Instant::now();
        c.lookup(&dir, "target")
            .await?
            .context("latency: LOOKUP found no file")?;
        times[1] = micros(t);

        let name = format!("c{i}");
        let t = Instant::now();
        c.create(&dir, &name).await?;
        times[2] = micros(t);
        created.push((dir.clone(), name));

        let w = (i % FILE_BLOCKS) * BLOCK;
        let t = Instant::now();
        c.write(&fh, w as u64, &content[w..w + BLOCK]).await?;
        times[3] = micros(t);

        let r = (i * 7 % FILE_BLOCKS) * BLOCK;
        let t = Instant::now();
        out.verified_bytes += read_verify(
            &mut c,
            &fh,
            r as u64,
            &content[r..r + BLOCK],
            BLOCK as u32,
            "target",
        )
        .await?;
        times[4] = micros(t);

        for (h, v) in hists.iter_mut().zip(times) {
            h.saturating_record(v);
        }
        out.bytes += 2 * BLOCK as u64;
    }
    out.elapsed_s = start.elapsed().as_secs_f64();
    out.ops = c.ops() - ops0;
    out.files = samples as u64;
    for (op, h) in OPS.iter().zip(&hists) {
        for (p, label) in PERCENTILES {
            out.push(
                format!("{op} {label}"),
                Unit::Micros,
                h.value_at_percentile(p) as f64,
            );
        }
        out.latency.push(LatencyCurve {
            op: op.to_string(),
            count: h.len(),
            points: CURVE
                .iter()
                .map(|&p| (p, h.value_at_percentile(p) as f64))
                .collect(),
        });
    }
    drop(c);
    remove_all(ep, created, vec![(root, dir_name)], 8)
        .await
        .context("latency: cleanup")?;
    Ok(out)
}
