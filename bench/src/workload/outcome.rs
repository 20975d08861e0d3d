//! What one run of one suite workload measured: named figures (each with a
//! unit that says whether higher is better), raw counts, and for the latency
//! workload the distribution of each operation's latency.

use serde::{Deserialize, Serialize};

/// The unit of a figure, which also fixes its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "MB/s")]
    MbPerS,
    #[serde(rename = "ops/s")]
    OpsPerS,
    #[serde(rename = "files/s")]
    FilesPerS,
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "µs")]
    Micros,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::MbPerS => "MB/s",
            Unit::OpsPerS => "ops/s",
            Unit::FilesPerS => "files/s",
            Unit::Seconds => "s",
            Unit::Micros => "µs",
        }
    }

    /// Throughputs: higher is better; times and latencies: lower is.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Unit::MbPerS | Unit::OpsPerS | Unit::FilesPerS)
    }
}

/// One named figure of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub unit: Unit,
    pub value: f64,
}

/// One operation's latency distribution in one run: `(percentile, µs)`
/// points from the HDR histogram, for the plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyCurve {
    pub op: String,
    pub count: u64,
    pub points: Vec<(f64, f64)>,
}

/// One measured (or warm-up) run of one suite case on one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Wall-clock seconds of the timed part.
    pub elapsed_s: f64,
    /// NFS calls issued in the timed part.
    pub ops: u64,
    /// Payload bytes moved by READ and WRITE calls in the timed part.
    pub bytes: u64,
    /// Bytes read back and found equal to what was written.
    pub verified_bytes: u64,
    /// Files created in the timed part.
    pub files: u64,
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<LatencyCurve>,
}

impl Outcome {
    pub fn push(&mut self, name: impl Into<String>, unit: Unit, value: f64) {
        self.metrics.push(Metric {
            name: name.into(),
            unit,
            value,
        });
    }

    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// `n / secs`, 0 for an empty interval.
pub fn rate(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        0.0
    }
}
