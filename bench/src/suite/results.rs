//! The suite's results: every run's outcome, and per (case, target) the
//! median and min–max of each figure. Written as `results.json`; the report
//! and the plots are made from it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::cases::{Case, Preset};
use crate::machine::{Environment, Machine};
use crate::stats::Summary;
use crate::workload::outcome::{LatencyCurve, Outcome, Unit};

/// A target as the report describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    /// How it was reached: "spawned: palisade up --mode separate", or
    /// "external 127.0.0.1:2049 /export".
    pub description: String,
}

/// One figure of one case on one target, over the measured runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub unit: Unit,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

/// One case on one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub case: Case,
    pub target: String,
    pub figures: Vec<Figure>,
    /// The latency curves of the run whose first figure is the median one
    /// (latency workload only), for the plots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<LatencyCurve>,
    pub runs: Vec<Outcome>,
}

impl CaseResult {
    /// Summarises the measured runs of `case` on `target`.
    pub fn new(case: &Case, target: &str, runs: Vec<Outcome>) -> CaseResult {
        let mut figures: Vec<Figure> = Vec::new();
        if let Some(first) = runs.first() {
            for m in &first.metrics {
                let samples: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.metric(&m.name).map(|x| x.value))
                    .collect();
                let s = Summary::of(&samples).unwrap_or(Summary {
                    median: f64::NAN,
                    min: f64::NAN,
                    max: f64::NAN,
                });
                figures.push(Figure {
                    name: m.name.clone(),
                    unit: m.unit,
                    median: s.median,
                    min: s.min,
                    max: s.max,
                    samples,
                });
            }
        }
        // The run closest to the median of the first figure.
        let latency = figures
            .first()
            .and_then(|f| {
                runs.iter()
                    .filter_map(|r| r.metrics.first().map(|m| (r, (m.value - f.median).abs())))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
            })
            .map(|(r, _)| r.latency.clone())
            .unwrap_or_default();
        CaseResult {
            id: case.id(),
            case: case.clone(),
            target: target.to_string(),
            figures,
            latency,
            runs,
        }
    }

    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }
}

/// Everything one suite run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResults {
    pub tool: String,
    pub version: String,
    pub mode: String,
    /// The command line that produced these results.
    pub command: String,
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub date: String,
    pub commit: Option<String>,
    pub seed: u64,
    pub warmup: usize,
    pub repeat: usize,
    pub preset: Preset,
    pub machine: Machine,
    pub environment: Environment,
    pub targets: Vec<TargetInfo>,
    /// The target every ratio divides by: `unreplicated` when present.
    pub baseline: String,
    pub duration_s: f64,
    pub cases: Vec<CaseResult>,
}

impl SuiteResults {
    pub fn get(&self, case_id: &str, target: &str) -> Option<&CaseResult> {
        self.cases
            .iter()
            .find(|c| c.id == case_id && c.target == target)
    }

    /// Case ids in the order they ran, each once.
    pub fn case_ids(&self) -> Vec<(String, Case)> {
        let mut out: Vec<(String, Case)> = Vec::new();
        for c in &self.cases {
            if !out.iter().any(|(id, _)| *id == c.id) {
                out.push((c.id.clone(), c.case.clone()));
            }
        }
        out
    }

    /// Reads a `results.json` written by [`SuiteResults::write_json`].
    pub fn read_json(path: &Path) -> Result<SuiteResults> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding results as JSON")?;
        let mut f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix time, by the civil-from-days algorithm
/// (Hinnant), so the bench needs no date crate.
pub fn utc_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13");
    }

    #[test]
    fn summaries_take_medians_per_figure() {
        let run = |v: f64| {
            let mut o = Outcome::default();
            o.push("MB/s", Unit::MbPerS, v);
            o.push("ops/s", Unit::OpsPerS, v * 2.0);
            o
        };
        let case = Case::Backup { bytes: 1 };
        let r = CaseResult::new(&case, "t", vec![run(3.0), run(1.0), run(2.0)]);
        let f = r.figure("ops/s").unwrap();
        assert_eq!((f.median, f.min, f.max), (4.0, 2.0, 6.0));
        assert_eq!(f.samples, vec![6.0, 2.0, 4.0]);
        assert_eq!(r.id, "backup 0.000001 MB");
    }
}
