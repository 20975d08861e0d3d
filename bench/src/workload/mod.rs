//! The workloads: each runs once against an endpoint. `seq_write`,
//! `seq_read` and `small_files` return a [`Sample`] for `compare` (repetition
//! in `runner`); the suite's workloads (`andrew`, `churn`, `rw`, `backup`,
//! `latency`) return an [`outcome::Outcome`] of named figures.

use std::sync::Arc;

use serde::Serialize;

pub mod andrew;
pub mod backup;
pub mod churn;
pub mod io;
pub mod latency;
pub mod outcome;
pub mod rw;
pub mod seq_read;
pub mod seq_write;
pub mod small_files;
pub mod tree;

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    SeqWrite,
    SeqRead,
    SmallFiles,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::SeqWrite, Workload::SeqRead, Workload::SmallFiles];

    pub fn name(self) -> &'static str {
        match self {
            Workload::SeqWrite => "seq-write",
            Workload::SeqRead => "seq-read",
            Workload::SmallFiles => "small-files",
        }
    }

    /// Unit of the headline figure.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::SeqWrite | Workload::SeqRead => "MB/s",
            Workload::SmallFiles => "ops/s",
        }
    }
}

/// Parameters shared by all workloads.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Sequential file size in bytes.
    pub size: u64,
    /// Bytes per READ/WRITE call.
    pub io_size: u32,
    /// Calls in flight at once for seq-write and seq-read.
    pub depth: usize,
    /// Concurrent connections for small-files.
    pub clients: usize,
    /// Files per client for small-files.
    pub files: usize,
    /// Bytes written to each small file.
    pub small_file_size: u32,
    /// Seed of the data pattern.
    pub seed: u64,
    /// Name of the sequential file in the export's root directory.
    pub file_name: String,
}

/// The whole sequential file's expected contents, generated once per process
/// and shared by seq-write (what to send) and seq-read (what to expect), so
/// neither times pattern generation.
pub type Content = Arc<Vec<u8>>;

/// One measured (or warm-up) run of one workload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// The headline figure: MB/s (10^6 bytes per second) or ops/s.
    pub value: f64,
    /// Wall-clock seconds of the timed part.
    pub elapsed_s: f64,
    /// Payload bytes moved by READ/WRITE calls.
    pub bytes: u64,
    /// NFS calls issued in the timed part.
    pub ops: u64,
    /// Files created and removed (small-files).
    pub files: u64,
    /// Bytes read back and found equal to the pattern (seq-read).
    pub verified_bytes: u64,
    /// CPU seconds the server process used over the whole run (its untimed setup
    /// included), when its process id is known ([`crate::cpu`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
}

impl Sample {
    /// Files per second (small-files' second figure).
    pub fn files_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.files as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / 1e6 / secs
    } else {
        0.0
    }
}
