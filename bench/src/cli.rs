//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::suite::cases::Group;
use crate::target::{parse_named_target, External, SpawnKind};

/// Drives an NFSv3 endpoint through fixed workloads and reports medians.
///
/// Progress goes to stderr; the results table goes to stdout.
#[derive(Debug, Parser)]
#[command(name = "palisade-bench", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Sequential WRITE (FILE_SYNC) of one file, MB/s.
    SeqWrite(BenchArgs),
    /// Sequential READ of the pattern file with byte-for-byte verification, MB/s.
    SeqRead(BenchArgs),
    /// create + write + getattr + remove of small files, ops/s and files/s.
    SmallFiles(BenchArgs),
    /// All three workloads.
    All(BenchArgs),
    /// All workloads on every target in one run; Markdown table with ratios
    /// to the first target (e.g. --spawn memfs,unreplicated).
    Compare(BenchArgs),
    /// The whole matrix (Andrew phases, churn, seq/rand I/O, backup, latency)
    /// on every target; writes DIR/report.md, DIR/results.json and SVG plots.
    Suite(SuiteArgs),
    /// Checks that a suite's output directory holds a well-formed report
    /// (its form, not its figures); exit 1 with the problems otherwise.
    CheckReport(CheckArgs),
    /// Writes DIR/report.md and the plots again from DIR/results.json.
    Render(CheckArgs),
    /// Serve the in-memory baseline file system (used by --spawn memfs).
    #[command(hide = true)]
    ServeMemfs(ServeArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// NFS server host, used when neither --target nor --spawn is given.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// NFS and MOUNT port (the same port, as nfsserve serves both).
    #[arg(long, default_value_t = 11111)]
    pub port: u16,
    /// Export path to mount.
    #[arg(long, default_value = "/")]
    pub export: String,
    /// External endpoint `[NAME=]HOST:PORT[:EXPORT][,mount=PORT][,pid=PID]`; may be
    /// repeated. With `pid=`, the server process's CPU time per MB or per call is
    /// reported too (spawned servers always report it).
    #[arg(long = "target", value_name = "TARGET", value_parser = parse_named_target)]
    pub targets: Vec<External>,
    /// Start a server as a child process on a free loopback port; may be a
    /// comma-separated list. All targets (these first, then the --target
    /// ones) are measured in interleaved rounds; the first is the baseline
    /// of the ratio column.
    #[arg(long = "spawn", value_name = "KIND", value_delimiter = ',')]
    pub spawn: Vec<SpawnKind>,
    /// Path of the `palisade` binary for --spawn unreplicated (default: next
    /// to this executable, then PATH).
    #[arg(long, value_name = "PATH")]
    pub palisade_bin: Option<PathBuf>,
    /// Sequential file size (e.g. 256MiB, 4MiB, 1GiB, 65536) [default: 256MiB; --quick: 4MiB].
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    /// Bytes per READ/WRITE call.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub io_size: u64,
    /// READ/WRITE calls in flight at once (1 = strictly one at a time).
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Concurrent connections for small-files.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Files per client for small-files [default: 1000; --quick: 20].
    #[arg(long)]
    pub files: Option<usize>,
    /// Bytes written to each small file.
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    pub small_file_size: u64,
    /// Unmeasured runs before the measured ones, per workload and target
    /// [default: 1; --quick: 0].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Measured runs per workload and target [default: 3; --quick: 1].
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Smoke-test presets for CI: --size 4MiB --files 20 --warmup 0
    /// --repeat 1, unless those are given explicitly. Its figures are not
    /// measurements worth reporting.
    #[arg(long)]
    pub quick: bool,
    /// Seed of the data pattern (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write all results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seconds a spawned server may take to start answering.
    #[arg(long, default_value_t = 30)]
    pub ready_timeout: u64,
}

impl BenchArgs {
    pub fn size(&self) -> u64 {
        self.size
            .unwrap_or(if self.quick { 4 << 20 } else { 256 << 20 })
    }
    pub fn files(&self) -> usize {
        self.files.unwrap_or(if self.quick { 20 } else { 1000 })
    }
    pub fn warmup(&self) -> usize {
        self.warmup.unwrap_or(if self.quick { 0 } else { 1 })
    }
    pub fn repeat(&self) -> usize {
        self.repeat.unwrap_or(if self.quick { 1 } else { 3 })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:11111.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// Most bytes of file data held in memory; past it WRITE answers NOSPC.
    #[arg(long, default_value = "8GiB", value_parser = parse_size)]
    pub max_bytes: u64,
    /// Test hook: flip the byte at this file offset in every READ reply.
    #[arg(long, hide = true)]
    pub corrupt_read_at: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Start these as child processes on free loopback ports (comma-separated):
    /// memfs, unreplicated, separate, firewall.
    #[arg(long = "spawn", value_name = "KIND", value_delimiter = ',')]
    pub spawn: Vec<SpawnKind>,
    /// An external endpoint `[NAME=]HOST:PORT[:EXPORT][,mount=PORT][,pid=PID]` (with
    /// `pid`, the latency table gives the server's CPU per call), e.g.
    /// `ganesha=127.0.0.1:20490:/srv/export,mount=20491`; may be repeated.
    #[arg(long = "target", value_name = "TARGET", value_parser = parse_named_target)]
    pub targets: Vec<External>,
    /// Export path for spawned targets and external ones that name none.
    #[arg(long, default_value = "/")]
    pub export: String,
    /// Directory for report.md, results.json and the plots (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// CI smoke test: tiny sizes, one run, no progress bar (well under two
    /// minutes for three spawned targets). Not a measurement.
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// The report for people: Andrew ×1 and ×10, 100 MB backup, 4 depths,
    /// 1 warm-up and 5 runs. Takes a long time on slow configurations.
    #[arg(long)]
    pub full: bool,
    /// Only these workload families (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "GROUP")]
    pub only: Vec<Group>,
    /// Andrew scales (comma-separated; 1 = about 1,000 files / 20 MB, 10 the
    /// larger variant) instead of the mode's.
    #[arg(long, value_delimiter = ',')]
    pub scale: Vec<f64>,
    /// Churn concurrency levels (comma-separated) instead of the mode's.
    #[arg(long, value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Calls in flight for seq/rand I/O (comma-separated) instead of the mode's.
    #[arg(long, value_delimiter = ',')]
    pub depths: Vec<usize>,
    /// Bytes of the 100 MB backup instead of the mode's.
    #[arg(long, value_parser = parse_size)]
    pub backup_size: Option<u64>,
    /// Measured runs per case and target instead of the mode's.
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Unmeasured runs before them instead of the mode's.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Seed of every generated shape and pattern (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Path of the `palisade` binary for spawned Palisade targets.
    #[arg(long, value_name = "PATH")]
    pub palisade_bin: Option<PathBuf>,
    /// Seconds a spawned server may take to start answering.
    #[arg(long, default_value_t = 60)]
    pub ready_timeout: u64,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The suite's --out directory.
    pub dir: PathBuf,
}

/// Parses a byte count with an optional binary (KiB, MiB, GiB) or decimal
/// (K, M, G / KB, MB, GB) suffix.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad size {s:?}: expected e.g. 4096, 4KiB, 256MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => return Err(format!("bad size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_presets_yield_to_explicit_values() {
        let parse = |args: &[&str]| match Cli::parse_from(args).cmd {
            Cmd::Compare(a) => a,
            other => panic!("unexpected {other:?}"),
        };
        let a = parse(&["palisade-bench", "compare"]);
        assert_eq!(
            (a.size(), a.files(), a.warmup(), a.repeat()),
            (256 << 20, 1000, 1, 3)
        );
        let a = parse(&["palisade-bench", "compare", "--quick"]);
        assert_eq!(
            (a.size(), a.files(), a.warmup(), a.repeat()),
            (4 << 20, 20, 0, 1)
        );
        let a = parse(&[
            "palisade-bench",
            "compare",
            "--quick",
            "--size",
            "1MiB",
            "--repeat",
            "2",
        ]);
        assert_eq!(
            (a.size(), a.files(), a.warmup(), a.repeat()),
            (1 << 20, 20, 0, 2)
        );
        let a = parse(&["palisade-bench", "compare", "--spawn", "memfs,unreplicated"]);
        assert_eq!(a.spawn.len(), 2);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2M"), Ok(2_000_000));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }
}
