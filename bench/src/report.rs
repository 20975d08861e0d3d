//! Results: the Markdown table on stdout and the `--json` file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::machine::{Environment, Load};
use crate::runner::{Measured, Plan};
use crate::stats::Summary;
use crate::workload::{Params, Sample, Workload};

/// One figure's samples and their summary.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub unit: String,
    pub samples: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Figure {
    fn new(unit: &str, samples: Vec<f64>) -> Figure {
        let s = Summary::of(&samples).unwrap_or(Summary {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        });
        Figure {
            unit: unit.to_string(),
            samples,
            median: s.median,
            min: s.min,
            max: s.max,
        }
    }
}

/// One workload on one target, as written to JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ResultEntry {
    pub workload: String,
    pub target: String,
    /// The headline figure (MB/s or ops/s), flattened: unit, samples,
    /// median, min, max.
    #[serde(flatten)]
    pub figure: Figure,
    /// small-files only: files created and removed per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_per_s: Option<Figure>,
    /// The server's CPU per unit of work ([`cpu_per_unit`]), when every run measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<Figure>,
    /// The raw counts of every measured run.
    pub runs: Vec<Sample>,
}

impl ResultEntry {
    pub fn from_measured(m: &Measured) -> ResultEntry {
        let values = m.samples.iter().map(|s| s.value).collect();
        let files_per_s = (m.workload == Workload::SmallFiles).then(|| {
            Figure::new(
                "files/s",
                m.samples.iter().map(Sample::files_per_s).collect(),
            )
        });
        let server_cpu = m
            .samples
            .iter()
            .map(|s| cpu_per_unit(m.workload, s))
            .collect::<Option<Vec<f64>>>()
            .filter(|v| !v.is_empty())
            .map(|v| Figure::new(server_cpu_unit(m.workload), v));
        ResultEntry {
            workload: m.workload.name().to_string(),
            target: m.target.clone(),
            figure: Figure::new(m.workload.unit(), values),
            files_per_s,
            server_cpu,
            runs: m.samples.clone(),
        }
    }
}

/// The server's CPU for one run's work: milliseconds per MB for the sequential
/// workloads, microseconds per NFS call for small-files. Lower is better.
pub fn cpu_per_unit(w: Workload, s: &Sample) -> Option<f64> {
    let cpu = s.server_cpu_s?;
    match w {
        Workload::SeqWrite | Workload::SeqRead => {
            (s.bytes > 0).then(|| cpu * 1e3 / (s.bytes as f64 / 1e6))
        }
        Workload::SmallFiles => (s.ops > 0).then(|| cpu * 1e6 / s.ops as f64),
    }
}

fn server_cpu_unit(w: Workload) -> &'static str {
    match w {
        Workload::SeqWrite | Workload::SeqRead => "ms CPU/MB ↓",
        Workload::SmallFiles => "µs CPU/op ↓",
    }
}

/// A server's peak resident memory over all runs (`VmHWM`, [`crate::memory`]).
#[derive(Debug, Clone, Serialize)]
pub struct PeakMemory {
    pub target: String,
    pub bytes: u64,
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub targets: Vec<String>,
    pub warmup: usize,
    pub repeat: usize,
    pub params: Params,
    /// Machine load at the start and end of the measurements.
    pub environment: Environment,
    pub results: Vec<ResultEntry>,
    /// Each target whose process is known: the most memory it held, measured after the
    /// last run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_peak_memory: Vec<PeakMemory>,
}

impl Report {
    pub fn new(
        plan: &Plan,
        targets: Vec<String>,
        environment: Environment,
        measured: &[Measured],
    ) -> Report {
        Report {
            tool: "palisade-bench",
            version: env!("CARGO_PKG_VERSION"),
            targets,
            warmup: plan.warmup,
            repeat: plan.repeat,
            params: plan.params.clone(),
            environment,
            results: measured.iter().map(ResultEntry::from_measured).collect(),
            server_peak_memory: Vec::new(),
        }
    }

    /// The servers' peak memory, printed under the table.
    pub fn with_peak_memory(mut self, peaks: Vec<PeakMemory>) -> Report {
        self.server_peak_memory = peaks;
        self
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding results as JSON")?;
        let mut f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The Markdown table: one row per (figure, target), with the ratio of
    /// each target's median to the first target's median for that figure.
    /// Throughputs: a ratio below 1 means slower; the server-CPU rows (unit
    /// marked ↓): a ratio below 1 means cheaper.
    pub fn markdown(&self) -> String {
        let first = self.targets.first().cloned().unwrap_or_default();
        let mut rows: Vec<(String, &str, &Figure)> = Vec::new();
        for r in &self.results {
            rows.push((r.workload.clone(), &r.target, &r.figure));
            if let Some(f) = &r.files_per_s {
                rows.push((format!("{} (files)", r.workload), &r.target, f));
            }
            if let Some(f) = &r.server_cpu {
                rows.push((format!("{} (server CPU)", r.workload), &r.target, f));
            }
        }
        // Group by figure name, in the order figures first appear.
        let mut names: Vec<String> = Vec::new();
        for (n, _, _) in &rows {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let p = &self.params;
        let mut out = format!(
            "size {} B, io-size {} B, depth {}, clients {}, files/client {}, \
             warm-up {}, runs {}, seed {:#x}; medians, MB = 10^6 bytes\n\n",
            p.size, p.io_size, p.depth, p.clients, p.files, self.warmup, self.repeat, p.seed
        );
        let load = |l: &Load| l.loadavg_1m.map_or("?".to_string(), |v| format!("{v:.1}"));
        out.push_str(&format!(
            "load average {} at start, {} at end, on {} CPUs\n\n",
            load(&self.environment.start),
            load(&self.environment.end),
            self.environment.start.cpus
        ));
        out.push_str(&format!(
            "| workload | target | median | min–max | vs {first} |\n|---|---|---:|---:|---:|\n"
        ));
        for name in &names {
            let base = rows
                .iter()
                .find(|(n, t, _)| n == name && *t == first)
                .map(|(_, _, f)| f.median);
            for (n, t, f) in rows.iter().filter(|(n, _, _)| n == name) {
                let ratio = match base {
                    Some(b) if b > 0.0 => format!("{:.2}×", f.median / b),
                    _ => "–".to_string(),
                };
                out.push_str(&format!(
                    "| {n} | {t} | {:.1} {} | {:.1}–{:.1} | {ratio} |\n",
                    f.median, f.unit, f.min, f.max
                ));
            }
        }
        if !self.server_peak_memory.is_empty() {
            let peaks: Vec<String> = self
                .server_peak_memory
                .iter()
                .map(|p| format!("{} {:.1} MB", p.target, p.bytes as f64 / 1e6))
                .collect();
            out.push_str(&format!(
                "\nserver peak resident memory (VmHWM, after the last run): {}\n",
                peaks.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(w: Workload, target: &str, values: &[f64]) -> Measured {
        Measured {
            workload: w,
            target: target.to_string(),
            samples: values
                .iter()
                .map(|v| Sample {
                    value: *v,
                    elapsed_s: 1.0,
                    files: 10,
                    ..Sample::default()
                })
                .collect(),
        }
    }

    #[test]
    fn table_has_ratios_to_the_first_target() {
        let plan = Plan {
            workloads: Workload::ALL.to_vec(),
            warmup: 0,
            repeat: 3,
            params: Params {
                size: 1,
                io_size: 1,
                depth: 1,
                clients: 1,
                files: 1,
                small_file_size: 1,
                seed: 1,
                file_name: "f".into(),
            },
        };
        let m = vec![
            measured(Workload::SeqWrite, "memfs", &[100.0, 200.0, 300.0]),
            measured(Workload::SeqWrite, "unreplicated", &[50.0, 100.0, 150.0]),
            measured(Workload::SmallFiles, "memfs", &[40.0]),
            measured(Workload::SmallFiles, "unreplicated", &[10.0]),
        ];
        let env = Environment {
            start: Load {
                cpus: 2,
                loadavg_1m: Some(0.5),
            },
            end: Load {
                cpus: 2,
                loadavg_1m: None,
            },
        };
        let r = Report::new(&plan, vec!["memfs".into(), "unreplicated".into()], env, &m);
        let t = r.markdown();
        assert!(
            t.contains("| seq-write | memfs | 200.0 MB/s | 100.0–300.0 | 1.00× |"),
            "{t}"
        );
        assert!(
            t.contains("| seq-write | unreplicated | 100.0 MB/s | 50.0–150.0 | 0.50× |"),
            "{t}"
        );
        assert!(
            t.contains("| small-files | unreplicated | 10.0 ops/s | 10.0–10.0 | 0.25× |"),
            "{t}"
        );
        assert!(
            t.contains("| small-files (files) | memfs | 10.0 files/s |"),
            "{t}"
        );
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(json["results"][0]["median"], 200.0);
        assert_eq!(json["results"][0]["samples"].as_array().unwrap().len(), 3);
        assert!(json["results"][0].get("files_per_s").is_none());
        assert_eq!(json["results"][2]["files_per_s"]["median"], 10.0);
        // No process ids, no CPU rows and no memory line.
        assert!(!t.contains("server CPU"), "{t}");
        assert!(json["results"][0].get("server_cpu").is_none());
        assert!(!t.contains("peak resident memory"), "{t}");
        assert!(json.get("server_peak_memory").is_none());

        // With a known process: one line under the table, and the bytes in the JSON.
        let r = r.with_peak_memory(vec![PeakMemory {
            target: "unreplicated".into(),
            bytes: 468_772 * 1024,
        }]);
        let t = r.markdown();
        assert!(
            t.ends_with(
                "\nserver peak resident memory (VmHWM, after the last run): unreplicated 480.0 MB\n"
            ),
            "{t}"
        );
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["server_peak_memory"][0]["bytes"],
            serde_json::json!(468_772u64 * 1024)
        );
        assert_eq!(json["server_peak_memory"][0]["target"], "unreplicated");
    }

    #[test]
    fn server_cpu_is_per_mb_for_sequential_runs_and_per_call_for_small_files() {
        let run = |cpu: Option<f64>, bytes: u64, ops: u64| Sample {
            value: 1.0,
            elapsed_s: 1.0,
            bytes,
            ops,
            server_cpu_s: cpu,
            ..Sample::default()
        };
        // 0.5 s of CPU for 100 MB: 5 ms per MB; for 2,000 calls: 250 µs per call.
        let seq = run(Some(0.5), 100_000_000, 100);
        assert_eq!(cpu_per_unit(Workload::SeqWrite, &seq), Some(5.0));
        assert_eq!(cpu_per_unit(Workload::SeqRead, &seq), Some(5.0));
        let small = run(Some(0.5), 4_000_000, 2_000);
        assert_eq!(cpu_per_unit(Workload::SmallFiles, &small), Some(250.0));
        assert_eq!(cpu_per_unit(Workload::SmallFiles, &run(None, 1, 1)), None);
        assert_eq!(
            cpu_per_unit(Workload::SeqWrite, &run(Some(0.5), 0, 10)),
            None
        );

        // A figure only when every run measured it.
        let m = Measured {
            workload: Workload::SeqWrite,
            target: "sep".into(),
            samples: vec![
                run(Some(0.5), 100_000_000, 1),
                run(Some(1.0), 100_000_000, 1),
            ],
        };
        let e = ResultEntry::from_measured(&m);
        let cpu = e.server_cpu.expect("both runs measured");
        assert_eq!(cpu.samples, vec![5.0, 10.0]);
        assert_eq!(cpu.unit, "ms CPU/MB ↓");
        let partial = Measured {
            samples: vec![run(Some(0.5), 100_000_000, 1), run(None, 100_000_000, 1)],
            ..m
        };
        assert!(ResultEntry::from_measured(&partial).server_cpu.is_none());
    }
}
