//! The suite's matrix: which cases run, at which sizes, in quick, medium and
//! full mode.

use serde::{Deserialize, Serialize};

use crate::workload::rw::RwKind;

/// How big a run: quick is a CI smoke test (its figures are not
/// measurements), medium the default, full the report for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Quick,
    Medium,
    Full,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Medium => "medium",
            Mode::Full => "full",
        }
    }
}

/// A workload family, as `--only` names it and the report groups it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Andrew,
    Churn,
    Rw,
    Backup,
    Latency,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Andrew,
        Group::Churn,
        Group::Rw,
        Group::Backup,
        Group::Latency,
    ];
}

/// One cell of the matrix: a workload with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "workload", rename_all = "lowercase")]
pub enum Case {
    Andrew {
        scale: f64,
    },
    Churn {
        clients: usize,
        files_per_client: usize,
    },
    Rw {
        kind: RwKind,
        io_size: u32,
        depth: usize,
        ops: usize,
    },
    Backup {
        bytes: u64,
    },
    Latency {
        samples: usize,
    },
}

/// `4 KiB`, `64 KiB`, `1 MiB`, or plain bytes.
pub fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

impl Case {
    pub fn group(&self) -> Group {
        match self {
            Case::Andrew { .. } => Group::Andrew,
            Case::Churn { .. } => Group::Churn,
            Case::Rw { .. } => Group::Rw,
            Case::Backup { .. } => Group::Backup,
            Case::Latency { .. } => Group::Latency,
        }
    }

    /// A short unique name: `andrew ×1`, `churn 8 clients`,
    /// `seq-write 64 KiB ×4`, `backup 100 MB`, `latency`.
    pub fn id(&self) -> String {
        match self {
            Case::Andrew { scale } => format!("andrew ×{scale}"),
            Case::Churn { clients, .. } => format!("churn {clients} clients"),
            Case::Rw {
                kind,
                io_size,
                depth,
                ..
            } => format!(
                "{} {} ×{depth}",
                kind.name(),
                size_label(u64::from(*io_size))
            ),
            Case::Backup { bytes } => format!("backup {} MB", *bytes as f64 / 1e6),
            Case::Latency { .. } => "latency".to_string(),
        }
    }
}

/// The sizes of one mode, before command-line overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub andrew_scales: Vec<f64>,
    pub churn_clients: Vec<usize>,
    /// Files per churn level, spread over its clients (at least
    /// `churn_min_files` each), so every level does similar work.
    pub churn_files: usize,
    pub churn_min_files: usize,
    pub rw_file: u64,
    pub rw_io_sizes: Vec<u32>,
    pub rw_depths: Vec<usize>,
    /// Calls per rw case, at most `rw_file` bytes' worth.
    pub rw_ops: usize,
    pub backup_bytes: u64,
    pub latency_samples: usize,
    pub warmup: usize,
    pub repeat: usize,
}

impl Preset {
    pub fn of(mode: Mode) -> Preset {
        let io = vec![4 << 10, 64 << 10, 1 << 20];
        match mode {
            Mode::Quick => Preset {
                andrew_scales: vec![0.05],
                churn_clients: vec![1, 8],
                churn_files: 24,
                churn_min_files: 3,
                rw_file: 2 << 20,
                rw_io_sizes: io,
                rw_depths: vec![1, 4],
                rw_ops: 32,
                backup_bytes: 4_000_000,
                latency_samples: 20,
                warmup: 0,
                repeat: 1,
            },
            Mode::Medium => Preset {
                andrew_scales: vec![0.2],
                churn_clients: vec![1, 8, 32, 128],
                churn_files: 512,
                churn_min_files: 4,
                rw_file: 32 << 20,
                rw_io_sizes: io,
                rw_depths: vec![1, 4, 16],
                rw_ops: 256,
                backup_bytes: 100_000_000,
                latency_samples: 200,
                warmup: 0,
                repeat: 3,
            },
            Mode::Full => Preset {
                andrew_scales: vec![1.0, 10.0],
                churn_clients: vec![1, 8, 32, 128],
                churn_files: 2048,
                churn_min_files: 16,
                rw_file: 256 << 20,
                rw_io_sizes: io,
                rw_depths: vec![1, 4, 16, 64],
                rw_ops: 2048,
                backup_bytes: 100_000_000,
                latency_samples: 1000,
                warmup: 1,
                repeat: 5,
            },
        }
    }

    /// The matrix, in the order it runs: andrew, churn, rw (by call size,
    /// then kind, then depth), backup, latency; only the `groups` given.
    pub fn cases(&self, groups: &[Group]) -> Vec<Case> {
        let mut out = Vec::new();
        for g in Group::ALL.iter().filter(|g| groups.contains(g)) {
            match g {
                Group::Andrew => out.extend(
                    self.andrew_scales
                        .iter()
                        .map(|&scale| Case::Andrew { scale }),
                ),
                Group::Churn => out.extend(self.churn_clients.iter().map(|&clients| {
                    Case::Churn {
                        clients,
                        files_per_client: (self.churn_files / clients.max(1))
                            .max(self.churn_min_files)
                            .max(1),
                    }
                })),
                Group::Rw => {
                    for &io_size in &self.rw_io_sizes {
                        let cap = (self.rw_file / u64::from(io_size.max(1))).max(1) as usize;
                        for kind in RwKind::ALL {
                            for &depth in &self.rw_depths {
                                out.push(Case::Rw {
                                    kind,
                                    io_size,
                                    depth,
                                    ops: self.rw_ops.min(cap),
                                });
                            }
                        }
                    }
                }
                Group::Backup => out.push(Case::Backup {
                    bytes: self.backup_bytes,
                }),
                Group::Latency => out.push(Case::Latency {
                    samples: self.latency_samples,
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_covers_the_issue() {
        let full = Preset::of(Mode::Full);
        let cases = full.cases(&Group::ALL);
        assert!(cases.contains(&Case::Andrew { scale: 1.0 }));
        assert!(cases.contains(&Case::Andrew { scale: 10.0 }));
        for c in [1, 8, 32, 128] {
            assert!(cases
                .iter()
                .any(|k| matches!(k, Case::Churn { clients, .. } if *clients == c)));
        }
        let rw = cases.iter().filter(|c| c.group() == Group::Rw).count();
        assert_eq!(rw, 3 * 4 * 4);
        assert!(cases.contains(&Case::Backup { bytes: 100_000_000 }));
        // Ids are unique: the report keys on them.
        let mut ids: Vec<String> = cases.iter().map(Case::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), cases.len());
        // rw cases never ask for more than the file holds.
        let quick = Preset::of(Mode::Quick);
        for c in quick.cases(&[Group::Rw]) {
            if let Case::Rw { io_size, ops, .. } = c {
                assert!(ops as u64 * u64::from(io_size) <= quick.rw_file);
            }
        }
        assert_eq!(quick.cases(&[Group::Latency]).len(), 1);
        assert_eq!(Case::Andrew { scale: 1.0 }.id(), "andrew ×1");
        assert_eq!(
            Case::Rw {
                kind: RwKind::RandRead,
                io_size: 65536,
                depth: 4,
                ops: 1
            }
            .id(),
            "rand-read 64 KiB ×4"
        );
    }
}
