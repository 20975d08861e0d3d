//! Helpers the suite workloads share: whole-file writes and verified reads
//! in fixed-size calls, building a generated tree, and removing it again
//! (untimed, over several connections so cleanup does not dominate a run).

use anyhow::{bail, Context, Result};
use nfs3_client::nfs3_types::nfs3::nfs_fh3;
use tokio::task::JoinSet;

use super::tree::Tree;
use crate::client::{Client, Endpoint};
use crate::pattern;

/// Writes `data` at `offset` in calls of at most `chunk` bytes (FILE_SYNC).
pub async fn write_all(
    c: &mut Client,
    fh: &nfs_fh3,
    offset: u64,
    data: &[u8],
    chunk: usize,
) -> Result<()> {
    for (i, part) in data.chunks(chunk.max(1)).enumerate() {
        c.write(fh, offset + (i * chunk.max(1)) as u64, part)
            .await?;
    }
    Ok(())
}

/// Reads `expected.len()` bytes from `offset` in calls of at most `chunk`
/// bytes, following short reads, and checks every byte. Returns the bytes
/// verified; `what` names the file in errors.
pub async fn read_verify(
    c: &mut Client,
    fh: &nfs_fh3,
    offset: u64,
    expected: &[u8],
    chunk: u32,
    what: &str,
) -> Result<u64> {
    let mut done = 0usize;
    while done < expected.len() {
        let want = (expected.len() - done).min(chunk.max(1) as usize) as u32;
        let at = offset + done as u64;
        let (data, eof) = c.read(fh, at, want).await?;
        // `read` guarantees data.len() <= want.
        let exp = &expected[done..done + data.len()];
        if let Some(i) = pattern::first_difference(&data, exp) {
            bail!(
                "{what}: data mismatch at offset {} (read {:?}, expected {:?})",
                at + i as u64,
                data.get(i),
                exp.get(i)
            );
        }
        done += data.len();
        if done < expected.len() && (eof || data.is_empty()) {
            bail!(
                "{what}: ends at {}, expected {} bytes",
                offset + done as u64,
                expected.len()
            );
        }
    }
    Ok(done as u64)
}

/// Creates the tree's directories in order under `parent`; returns their
/// handles (index as in `tree.dirs`).
pub async fn make_dirs(c: &mut Client, parent: &nfs_fh3, tree: &Tree) -> Result<Vec<nfs_fh3>> {
    let mut handles: Vec<nfs_fh3> = Vec::with_capacity(tree.dirs.len());
    for d in &tree.dirs {
        let p = match d.parent {
            None => parent,
            Some(i) => handles.get(i).context("tree: parent after child")?,
        };
        let fh = c.mkdir(p, &d.name).await?;
        handles.push(fh);
    }
    Ok(handles)
}

/// Removes files (directory handle, name) and then directories (parent
/// handle, name, children first) with `conns` connections for the files.
/// Untimed cleanup: a benchmark leaves nothing behind on someone's server.
pub async fn remove_all(
    ep: &Endpoint,
    files: Vec<(nfs_fh3, String)>,
    dirs_children_first: Vec<(nfs_fh3, String)>,
    conns: usize,
) -> Result<()> {
    let conns = conns.clamp(1, files.len().max(1));
    let per = files.len().div_ceil(conns).max(1);
    let mut tasks = JoinSet::new();
    for part in files.chunks(per) {
        let part = part.to_vec();
        let ep = ep.clone();
        tasks.spawn(async move {
            let mut c = Client::connect(&ep).await?;
            for (dir, name) in &part {
                c.remove(dir, name).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("cleanup worker died")??;
    }
    let mut c = Client::connect(ep).await?;
    for (parent, name) in &dirs_children_first {
        c.rmdir(parent, name).await?;
    }
    Ok(())
}

/// The (parent handle, name) pairs of a tree's directories, children first,
/// for [`remove_all`]; `root` is the parent of the tree's top directory.
pub fn dirs_children_first(
    tree: &Tree,
    root: &nfs_fh3,
    handles: &[nfs_fh3],
) -> Result<Vec<(nfs_fh3, String)>> {
    let mut out = Vec::with_capacity(tree.dirs.len());
    for d in tree.dirs.iter().rev() {
        let parent = match d.parent {
            None => root.clone(),
            Some(i) => handles.get(i).context("tree: unknown parent")?.clone(),
        };
        out.push((parent, d.name.clone()));
    }
    Ok(out)
}
