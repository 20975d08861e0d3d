//! Generated directory trees for the Andrew-style and backup workloads:
//! the shape (directories, names, sizes) is drawn from a seed, and each file's
//! contents are the verified pattern of its own derived seed.

use crate::pattern;
use crate::rng::Rng;

/// One directory: its parent (an index into `Tree::dirs`, `None` for the
/// tree's top directory) and its name.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeDir {
    pub parent: Option<usize>,
    pub name: String,
}

/// One file: the directory it is in, its name, size and pattern seed.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeFile {
    pub dir: usize,
    pub name: String,
    pub size: u64,
    pub seed: u64,
    /// A "source" file (`.c`) that the compile-like phase compiles; the others
    /// are headers (`.h`) it includes.
    pub source: bool,
}

impl TreeFile {
    /// The file's expected contents.
    pub fn contents(&self) -> Vec<u8> {
        // Sizes are bounded by the generators below (at most a few MiB).
        pattern::generate(self.seed, 0, self.size as usize)
    }
}

/// A generated tree. `dirs[0]` is the tree's top directory; every directory's
/// parent comes before it, so creating them in order always works.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub dirs: Vec<TreeDir>,
    pub files: Vec<TreeFile>,
}

impl Tree {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// A 4-ary tree of `n` directories under a top one named `top`: shallow
    /// and bushy like a source tree (50 directories are 3 levels deep).
    fn dirs(top: &str, n: usize) -> Vec<TreeDir> {
        let mut dirs = vec![TreeDir {
            parent: None,
            name: top.to_string(),
        }];
        for i in 1..=n {
            dirs.push(TreeDir {
                parent: Some((i - 1) / 4),
                name: format!("d{i}"),
            });
        }
        dirs
    }

    /// The Andrew-style source tree: `1000 × scale` files (at least 1) with
    /// sizes log-uniform in 256 B – 128 KiB (mean about 21 KB, so about 20 MB
    /// at scale 1), 70 % `.c` and 30 % `.h`, in one directory per 20 files.
    pub fn andrew(top: &str, seed: u64, scale: f64) -> Tree {
        let n_files = ((1000.0 * scale).round() as usize).max(1);
        let n_dirs = n_files / 20;
        let mut rng = Rng::new(seed);
        let files = (0..n_files)
            .map(|i| {
                let source = rng.unit() < 0.7;
                TreeFile {
                    dir: rng.below(n_dirs as u64 + 1) as usize,
                    name: format!("f{i}.{}", if source { "c" } else { "h" }),
                    size: rng.log_uniform(256, 128 << 10),
                    seed: pattern::derive_seed(seed, i as u64),
                    source,
                }
            })
            .collect();
        Tree {
            dirs: Tree::dirs(top, n_dirs),
            files,
        }
    }

    /// The backup tree: files log-uniform in 16 KiB – 4 MiB (mean about
    /// 750 KB) until `bytes` are reached (the last one cut to fit), ten files
    /// to a directory.
    pub fn backup(top: &str, seed: u64, bytes: u64) -> Tree {
        let mut rng = Rng::new(seed);
        let mut files = Vec::new();
        let mut total = 0u64;
        while total < bytes {
            let i = files.len();
            let size = rng.log_uniform(16 << 10, 4 << 20).min(bytes - total);
            total += size;
            files.push(TreeFile {
                dir: 0,
                name: format!("b{i}.dat"),
                size,
                seed: pattern::derive_seed(seed, i as u64),
                source: false,
            });
        }
        let n_dirs = files.len() / 10;
        for f in &mut files {
            f.dir = rng.below(n_dirs as u64 + 1) as usize;
        }
        Tree {
            dirs: Tree::dirs(top, n_dirs),
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn andrew_tree_has_the_issue_shape() {
        let t = Tree::andrew("top", 42, 1.0);
        assert_eq!(t.files.len(), 1000);
        assert_eq!(t.dirs.len(), 51);
        // About 20 MB (the seed fixes it; the band allows any seed).
        let mb = t.total_bytes() as f64 / 1e6;
        assert!((15.0..28.0).contains(&mb), "{mb} MB");
        let sources = t.files.iter().filter(|f| f.source).count();
        assert!((600..800).contains(&sources), "{sources}");
        for (i, d) in t.dirs.iter().enumerate().skip(1) {
            assert!(d.parent.is_some_and(|p| p < i));
        }
        assert!(t.files.iter().all(|f| f.dir < t.dirs.len()));
        // Reproducible from the seed, different for another seed.
        assert_eq!(t, Tree::andrew("top", 42, 1.0));
        assert_ne!(t, Tree::andrew("top", 43, 1.0));
        assert_eq!(Tree::andrew("top", 1, 10.0).files.len(), 10_000);
        assert_eq!(Tree::andrew("top", 1, 0.0001).files.len(), 1);
    }

    #[test]
    fn backup_tree_adds_up_exactly() {
        let t = Tree::backup("top", 3, 100_000_000);
        assert_eq!(t.total_bytes(), 100_000_000);
        assert!(t.files.len() > 50, "{}", t.files.len());
        let f = &t.files[0];
        assert_eq!(f.contents().len() as u64, f.size);
        assert_ne!(t.files[0].contents()[..64], t.files[1].contents()[..64]);
    }
}
