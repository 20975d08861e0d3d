//! `report.md`: the machine, the targets, and one section per workload with
//! a table of medians (min–max) per target and the ratio of each target to
//! the baseline (the unreplicated gateway), with the plots beside them.

use std::fmt::Write as _;

use super::cases::{size_label, Case, Group};
use super::plots::Plot;
use super::results::SuiteResults;
use crate::workload::{andrew, latency};

/// A number with a sensible number of digits for a table.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        "–".to_string()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One table row: the left cells, then which figure of which case.
struct Row {
    left: Vec<String>,
    case_id: String,
    figure: String,
}

fn table(r: &SuiteResults, left_headers: &[&str], rows: &[Row]) -> String {
    let names: Vec<&str> = r.targets.iter().map(|t| t.name.as_str()).collect();
    let others: Vec<&str> = names.iter().copied().filter(|n| *n != r.baseline).collect();
    let mut out = String::new();
    let mut header: Vec<String> = left_headers.iter().map(|s| s.to_string()).collect();
    header.push("unit".to_string());
    header.extend(names.iter().map(|n| n.to_string()));
    header.extend(others.iter().map(|n| format!("{n} / {}", r.baseline)));
    let align: Vec<&str> = (0..header.len())
        .map(|i| {
            if i <= left_headers.len() {
                "---"
            } else {
                "---:"
            }
        })
        .collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in rows {
        let mut cells = row.left.clone();
        let fig = |t: &str| {
            r.get(&row.case_id, t)
                .and_then(|c| c.figure(&row.figure))
                .cloned()
        };
        let unit = names
            .iter()
            .find_map(|t| fig(t))
            .map_or("–".to_string(), |f| {
                let arrow = if f.unit.higher_is_better() {
                    "↑"
                } else {
                    "↓"
                };
                format!("{} {arrow}", f.unit.label())
            });
        cells.push(unit);
        for t in &names {
            cells.push(match fig(t) {
                Some(f) if f.samples.len() > 1 => {
                    format!("{} ({}–{})", num(f.median), num(f.min), num(f.max))
                }
                Some(f) => num(f.median),
                None => "–".to_string(),
            });
        }
        let base = fig(&r.baseline).map(|f| f.median);
        for t in &others {
            cells.push(match (fig(t), base) {
                (Some(f), Some(b)) if b > 0.0 && f.median.is_finite() => {
                    let q = f.median / b;
                    if q < 0.1 {
                        format!("{q:.3}×")
                    } else {
                        format!("{q:.2}×")
                    }
                }
                _ => "–".to_string(),
            });
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn images(out: &mut String, plots: &[Plot], group: Group) {
    for p in plots.iter().filter(|p| p.group == group) {
        let _ = writeln!(out, "\n![{}]({})", p.title, p.file);
    }
}

/// The whole report.
pub fn render(r: &SuiteResults, plots: &[Plot]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Palisade benchmark report\n");
    let _ = writeln!(
        out,
        "{} mode, {} on {}{}. Reproduce with:\n\n```sh\n{}\n```\n",
        r.mode,
        r.date,
        r.machine.cpu_model,
        r.commit
            .as_ref()
            .map(|c| format!(", commit {c}"))
            .unwrap_or_default(),
        r.command
    );
    let _ = writeln!(
        out,
        "Every case ran {} measured time(s) per target (after {} warm-up), in interleaved \
         rounds (each round runs every target back to back, starting with a different one), \
         so a drift in the machine's load hits all targets alike. Cells are medians with \
         min–max; `X / {b}` divides X's median by {b}'s; ↑ marks figures where higher is better, ↓ where lower is. For throughputs (MB/s, ops/s) a ratio \
         below 1 means slower than {b}; for times and latencies (s, µs) a ratio above 1 does. \
         Seed {:#x}; the whole suite took {:.0} s.{}\n",
        r.repeat,
        r.warmup,
        r.seed,
        r.duration_s,
        if r.mode == "quick" {
            " Quick mode is a smoke test: its figures are not measurements worth quoting."
        } else {
            ""
        },
        b = r.baseline,
    );

    let m = &r.machine;
    let load = |l: Option<f64>| l.map_or("?".to_string(), |v| format!("{v:.1}"));
    let _ = writeln!(out, "## Machine\n\n| | |\n|---|---|");
    let _ = writeln!(out, "| CPU | {} |", m.cpu_model);
    let _ = writeln!(out, "| CPUs | {} |", m.cpus);
    let _ = writeln!(
        out,
        "| memory | {} |",
        m.memory_gib
            .map_or("unknown".to_string(), |g| format!("{g:.1} GiB"))
    );
    let _ = writeln!(out, "| kernel | {} |", m.kernel);
    let _ = writeln!(out, "| OS | {} |", m.os);
    let _ = writeln!(
        out,
        "| virtual machine | {} |",
        if m.virtual_machine { "yes" } else { "no" }
    );
    let _ = writeln!(
        out,
        "| load average (1 min) | {} at start, {} at end |\n",
        load(r.environment.start.loadavg_1m),
        load(r.environment.end.loadavg_1m)
    );

    let _ = writeln!(out, "## Targets\n\n| target | what |\n|---|---|");
    for t in &r.targets {
        let _ = writeln!(out, "| {} | {} |", t.name, t.description);
    }
    out.push('\n');

    let ids = r.case_ids();
    let of = |g: Group| ids.iter().filter(move |(_, c)| c.group() == g);

    if of(Group::Andrew).next().is_some() {
        let _ = writeln!(
            out,
            "## Andrew-style phases\n\nOne connection: mkdir the tree, copy the generated \
             source tree in (64 KiB FILE_SYNC writes), stat every file, read every byte \
             (verified), compile-like phase (every `.c` and two headers read in 4 KiB calls, an \
             object file written in 4 KiB calls). Scale 1 is about 1,000 files and 20 MB.\n"
        );
        let mut rows = Vec::new();
        for (id, c) in of(Group::Andrew) {
            if let Case::Andrew { scale } = c {
                for ph in andrew::PHASES.iter().chain(["total"].iter()) {
                    rows.push(Row {
                        left: vec![format!("×{scale}"), ph.to_string()],
                        case_id: id.clone(),
                        figure: ph.to_string(),
                    });
                }
            }
        }
        out.push_str(&table(r, &["scale", "phase"], &rows));
        images(&mut out, plots, Group::Andrew);
        out.push('\n');
    }

    if of(Group::Churn).next().is_some() {
        let _ = writeln!(
            out,
            "## Small-file churn\n\nEach client in its own directory: CREATE, WRITE 4 KiB, \
             GETATTR, RENAME, REMOVE per file; NFS calls per second over all clients.\n"
        );
        let rows: Vec<Row> = of(Group::Churn)
            .filter_map(|(id, c)| match c {
                Case::Churn {
                    clients,
                    files_per_client,
                } => Some(Row {
                    left: vec![clients.to_string(), files_per_client.to_string()],
                    case_id: id.clone(),
                    figure: "ops/s".to_string(),
                }),
                _ => None,
            })
            .collect();
        out.push_str(&table(r, &["clients", "files/client"], &rows));
        images(&mut out, plots, Group::Churn);
        out.push('\n');
    }

    if of(Group::Rw).next().is_some() {
        let _ = writeln!(
            out,
            "## Sequential and random I/O\n\nOne pattern file; writes are FILE_SYNC, every \
             read is verified. \"in flight\" is the number of connections, one call each.\n"
        );
        let rows: Vec<Row> = of(Group::Rw)
            .filter_map(|(id, c)| match c {
                Case::Rw {
                    kind,
                    io_size,
                    depth,
                    ops,
                } => Some(Row {
                    left: vec![
                        kind.name().to_string(),
                        size_label(u64::from(*io_size)),
                        depth.to_string(),
                        ops.to_string(),
                    ],
                    case_id: id.clone(),
                    figure: "MB/s".to_string(),
                }),
                _ => None,
            })
            .collect();
        out.push_str(&table(
            r,
            &["workload", "call size", "in flight", "calls"],
            &rows,
        ));
        images(&mut out, plots, Group::Rw);
        out.push('\n');
    }

    if of(Group::Backup).next().is_some() {
        let _ = writeln!(
            out,
            "## Backup\n\nThe BAR-B workload: a generated tree copied in over 4 connections \
             (1 MiB FILE_SYNC writes), then read back and verified.\n"
        );
        let mut rows = Vec::new();
        for (id, c) in of(Group::Backup) {
            if let Case::Backup { bytes } = c {
                for f in ["copy", "verify", "total", "copy MB/s"] {
                    rows.push(Row {
                        left: vec![format!("{} MB", *bytes as f64 / 1e6), f.to_string()],
                        case_id: id.clone(),
                        figure: f.to_string(),
                    });
                }
            }
        }
        out.push_str(&table(r, &["size", "figure"], &rows));
        out.push('\n');
    }

    if let Some((id, c)) = of(Group::Latency).next() {
        let samples = match c {
            Case::Latency { samples } => *samples,
            _ => 0,
        };
        let _ = writeln!(
            out,
            "## Single-operation latency\n\nOne connection, one call at a time, {samples} \
             calls of each operation per run.\n"
        );
        let mut rows = Vec::new();
        for op in latency::OPS {
            for (_, p) in latency::PERCENTILES {
                rows.push(Row {
                    left: vec![op.to_string(), p.to_string()],
                    case_id: id.clone(),
                    figure: format!("{op} {p}"),
                });
            }
        }
        // Every operation of a run together (spawned targets, or `pid=` on --target).
        rows.push(Row {
            left: vec!["all".to_string(), super::SERVER_CPU.to_string()],
            case_id: id.clone(),
            figure: super::SERVER_CPU.to_string(),
        });
        out.push_str(&table(r, &["operation", "percentile"], &rows));
        images(&mut out, plots, Group::Latency);
        out.push('\n');
    }
    out
}
