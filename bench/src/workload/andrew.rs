//! andrew: an Andrew-style phase benchmark (Howard et al., "Scale and
//! performance in a distributed file system", TOCS 1988; the workload BFS
//! reported, Castro–Liskov OSDI 1999) on one connection, as one user's build
//! would run:
//!
//! 1. `mkdir`: create the tree's directories;
//! 2. `copy`: copy the generated source tree in (CREATE, WRITE in 64 KiB
//!    FILE_SYNC calls), about 1,000 files / 20 MB at scale 1;
//! 3. `stat`: LOOKUP and GETATTR every file (size and type checked);
//! 4. `read`: read every byte in 64 KiB calls, verified against the pattern;
//! 5. `compile`: for every `.c` file, read it and the first 4 KiB of two
//!    headers in 4 KiB calls (verified), and write an object file of about
//!    three quarters its size in 4 KiB calls: many small reads and writes.
//!
//! Each phase is timed on its own; `total` is their sum. Untimed: generating
//! the contents, mounting, and removing the tree afterwards.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfs3_client::nfs3_types::nfs3::{ftype3, nfs_fh3};

use super::io::{dirs_children_first, make_dirs, read_verify, remove_all, write_all};
use super::outcome::{Outcome, Unit};
use super::tree::Tree;
use crate::client::{Client, Endpoint};
use crate::pattern;

/// The phases in order, as named in the report.
pub const PHASES: [&str; 5] = ["mkdir", "copy", "stat", "read", "compile"];

const BIG_IO: usize = 64 << 10;
const SMALL_IO: usize = 4 << 10;

/// Runs the workload once at `scale` (1 = about 1,000 files / 20 MB).
pub async fn run(ep: &Endpoint, seed: u64, scale: f64, run_index: usize) -> Result<Outcome> {
    let top = format!("palisade-bench-andrew-{seed:016x}-{run_index}");
    let tree = Tree::andrew(&top, seed, scale);
    let contents: Vec<Vec<u8>> = tree.files.iter().map(|f| f.contents()).collect();
    let headers: Vec<usize> = (0..tree.files.len())
        .filter(|&i| !tree.files[i].source)
        .collect();
    let mut c = Client::connect(ep).await?;
    let root = c.root();
    let mut out = Outcome::default();
    let mut phase_s = Vec::with_capacity(PHASES.len());
    let ops0 = c.ops();

    // 1. mkdir
    let t = Instant::now();
    let dirs = make_dirs(&mut c, &root, &tree).await?;
    phase_s.push(t.elapsed().as_secs_f64());

    // 2. copy
    let t = Instant::now();
    let mut handles = Vec::with_capacity(tree.files.len());
    for (f, data) in tree.files.iter().zip(&contents) {
        let dir = &dirs[f.dir];
        let fh = c.create(dir, &f.name).await?;
        write_all(&mut c, &fh, 0, data, BIG_IO).await?;
        out.bytes += f.size;
        handles.push(fh);
    }
    phase_s.push(t.elapsed().as_secs_f64());

    // 3. stat
    let t = Instant::now();
    for f in &tree.files {
        let fh = c
            .lookup(&dirs[f.dir], &f.name)
            .await?
            .with_context(|| format!("andrew stat: {} vanished", f.name))?;
        let attr = c.getattr(&fh).await?;
        if attr.type_ != ftype3::NF3REG || attr.size != f.size {
            bail!(
                "andrew stat: {} is {:?} of {} bytes, expected a file of {}",
                f.name,
                attr.type_,
                attr.size,
                f.size
            );
        }
    }
    phase_s.push(t.elapsed().as_secs_f64());

    // 4. read
    let t = Instant::now();
    for ((f, fh), data) in tree.files.iter().zip(&handles).zip(&contents) {
        out.verified_bytes += read_verify(&mut c, fh, 0, data, BIG_IO as u32, &f.name).await?;
        out.bytes += f.size;
    }
    phase_s.push(t.elapsed().as_secs_f64());

    // 5. compile
    let mut objects: Vec<(nfs_fh3, String)> = Vec::new();
    let t = Instant::now();
    for (i, f) in tree.files.iter().enumerate().filter(|(_, f)| f.source) {
        let fh = &handles[i];
        out.verified_bytes +=
            read_verify(&mut c, fh, 0, &contents[i], SMALL_IO as u32, &f.name).await?;
        out.bytes += f.size;
        if !headers.is_empty() {
            for k in [i * 7, i * 13 + 1] {
                let h = headers[k % headers.len()];
                let n = contents[h].len().min(SMALL_IO);
                let name = &tree.files[h].name;
                out.verified_bytes += read_verify(
                    &mut c,
                    &handles[h],
                    0,
                    &contents[h][..n],
                    SMALL_IO as u32,
                    name,
                )
                .await?;
                out.bytes += n as u64;
            }
        }
        let obj_name = format!("{}.o", f.name.trim_end_matches(".c"));
        let obj = pattern::generate(!f.seed, 0, (f.size as usize * 3 / 4) + 512);
        let dir = &dirs[f.dir];
        let ofh = c.create(dir, &obj_name).await?;
        write_all(&mut c, &ofh, 0, &obj, SMALL_IO).await?;
        out.bytes += obj.len() as u64;
        objects.push((dir.clone(), obj_name));
    }
    phase_s.push(t.elapsed().as_secs_f64());

    out.ops = c.ops() - ops0;
    out.files = (tree.files.len() + objects.len()) as u64;
    out.elapsed_s = phase_s.iter().sum();
    for (name, s) in PHASES.iter().zip(&phase_s) {
        out.push(*name, Unit::Seconds, *s);
    }
    out.push("total", Unit::Seconds, out.elapsed_s);

    let mut files: Vec<(nfs_fh3, String)> = tree
        .files
        .iter()
        .map(|f| (dirs[f.dir].clone(), f.name.clone()))
        .collect();
    files.extend(objects);
    let dirs = dirs_children_first(&tree, &root, &dirs)?;
    drop(c);
    remove_all(ep, files, dirs, 8)
        .await
        .context("andrew: removing the tree")?;
    Ok(out)
}
