//! SVG plots (plotters, SVG backend only: no font library, the viewer
//! renders the text): throughput against concurrency (churn and each rw
//! pattern, one panel per call size), latency percentile curves (one panel
//! per operation), and the Andrew phases as stacked bars.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::cases::{size_label, Case, Group};
use super::markdown::num;
use super::results::SuiteResults;
use crate::workload::andrew;
use crate::workload::rw::RwKind;

/// One plot written into the output directory.
#[derive(Debug, Clone)]
pub struct Plot {
    pub group: Group,
    pub title: String,
    /// File name inside the output directory.
    pub file: String,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// plotters' errors carry the backend's error type; flatten them.
fn e<E: std::fmt::Display>(err: E) -> anyhow::Error {
    anyhow!("drawing a plot: {err}")
}

/// A line series per target over categorical x positions.
struct Lines {
    x_labels: Vec<String>,
    /// Per target: (name, y per x position, NaN where missing).
    series: Vec<(String, Vec<f64>)>,
}

fn draw_lines(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &Lines,
    log_y: bool,
) -> Result<()> {
    let n = lines.x_labels.len().max(1);
    let ys = lines
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0);
    let y_max = ys.clone().fold(0.0f64, f64::max).max(1e-9) * 1.15;
    // Headroom above the data for the legend: a third more (linear), five times (log).
    let y_max_linear = y_max * 1.3;
    let y_min = ys.fold(f64::INFINITY, f64::min);
    let labels = lines.x_labels.clone();
    let fmt = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(60);
    let x_range = -0.3f64..(n as f64 - 0.7);
    if log_y {
        let lo = if y_min.is_finite() { y_min / 1.5 } else { 1.0 };
        let mut chart = builder
            .build_cartesian_2d(x_range, (lo..(y_max * 5.0).max(lo * 2.0)).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(n)
            .y_labels(5)
            .x_label_formatter(&fmt)
            .y_label_formatter(&|v| num(*v))
            .light_line_style(WHITE)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(e)?;
        for (i, (name, ys)) in lines.series.iter().enumerate() {
            let pts: Vec<(f64, f64)> = ys
                .iter()
                .enumerate()
                .filter(|(_, y)| y.is_finite() && **y > 0.0)
                .map(|(x, y)| (x as f64, *y))
                .collect();
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(e)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(e)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_range, 0f64..y_max_linear)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&fmt)
            .y_label_formatter(&|v| num(*v))
            .light_line_style(WHITE)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(e)?;
        for (i, (name, ys)) in lines.series.iter().enumerate() {
            let pts: Vec<(f64, f64)> = ys
                .iter()
                .enumerate()
                .filter(|(_, y)| y.is_finite())
                .map(|(x, y)| (x as f64, *y))
                .collect();
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(e)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// True when the largest positive value is more than 20 times the smallest:
/// on a linear axis the slow targets would lie flat on zero.
fn wide(lines: &Lines) -> bool {
    let ys = lines
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    lo.is_finite() && hi / lo > 20.0
}

fn targets(r: &SuiteResults) -> Vec<String> {
    r.targets.iter().map(|t| t.name.clone()).collect()
}

fn median(r: &SuiteResults, case_id: &str, target: &str, figure: &str) -> f64 {
    r.get(case_id, target)
        .and_then(|c| c.figure(figure))
        .map_or(f64::NAN, |f| f.median)
}

fn churn(r: &SuiteResults, dir: &Path) -> Result<Option<Plot>> {
    let cases: Vec<(String, usize)> = r
        .case_ids()
        .into_iter()
        .filter_map(|(id, c)| match c {
            Case::Churn { clients, .. } => Some((id, clients)),
            _ => None,
        })
        .collect();
    if cases.is_empty() {
        return Ok(None);
    }
    let lines = Lines {
        x_labels: cases.iter().map(|(_, n)| n.to_string()).collect(),
        series: targets(r)
            .into_iter()
            .map(|t| {
                let ys = cases
                    .iter()
                    .map(|(id, _)| median(r, id, &t, "ops/s"))
                    .collect();
                (t, ys)
            })
            .collect(),
    };
    let file = "churn.svg".to_string();
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let log = wide(&lines);
    draw_lines(
        &root,
        &format!(
            "Small-file churn: NFS calls/s against concurrent clients{}",
            if log { " (log scale)" } else { "" }
        ),
        "concurrent clients",
        "ops/s",
        &lines,
        log,
    )?;
    root.present().map_err(e)?;
    Ok(Some(Plot {
        group: Group::Churn,
        title: "churn: ops/s against clients".to_string(),
        file,
    }))
}

fn rw(r: &SuiteResults, dir: &Path, kind: RwKind) -> Result<Option<Plot>> {
    let cases: Vec<(String, u32, usize)> = r
        .case_ids()
        .into_iter()
        .filter_map(|(id, c)| match c {
            Case::Rw {
                kind: k,
                io_size,
                depth,
                ..
            } if k == kind => Some((id, io_size, depth)),
            _ => None,
        })
        .collect();
    if cases.is_empty() {
        return Ok(None);
    }
    let mut sizes: Vec<u32> = cases.iter().map(|c| c.1).collect();
    sizes.dedup();
    let file = format!("rw-{}.svg", kind.name());
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (360 * sizes.len() as u32 + 40, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((1, sizes.len()));
    for (panel, size) in panels.iter().zip(&sizes) {
        let here: Vec<&(String, u32, usize)> = cases.iter().filter(|c| c.1 == *size).collect();
        let lines = Lines {
            x_labels: here.iter().map(|c| c.2.to_string()).collect(),
            series: targets(r)
                .into_iter()
                .map(|t| {
                    let ys = here.iter().map(|c| median(r, &c.0, &t, "MB/s")).collect();
                    (t, ys)
                })
                .collect(),
        };
        let log = wide(&lines);
        draw_lines(
            panel,
            &format!(
                "{} {}{}",
                kind.name(),
                size_label(u64::from(*size)),
                if log { " (log)" } else { "" }
            ),
            "calls in flight",
            "MB/s",
            &lines,
            log,
        )?;
    }
    root.present().map_err(e)?;
    Ok(Some(Plot {
        group: Group::Rw,
        title: format!("{}: MB/s against calls in flight", kind.name()),
        file,
    }))
}

fn latency(r: &SuiteResults, dir: &Path) -> Result<Option<Plot>> {
    let Some(id) = r
        .case_ids()
        .into_iter()
        .find(|(_, c)| c.group() == Group::Latency)
        .map(|(id, _)| id)
    else {
        return Ok(None);
    };
    let ts = targets(r);
    let curves: Vec<_> = ts
        .iter()
        .map(|t| r.get(&id, t).map(|c| c.latency.clone()).unwrap_or_default())
        .collect();
    let Some(ops) = curves.iter().find(|c| !c.is_empty()).cloned() else {
        return Ok(None);
    };
    let file = "latency.svg".to_string();
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (1500, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((1, ops.len()));
    for (panel, op) in panels.iter().zip(&ops) {
        // The percentiles every curve shares, below 100 (the maximum is one sample).
        let xs: Vec<f64> = op
            .points
            .iter()
            .map(|p| p.0)
            .filter(|p| [50.0, 90.0, 99.0, 99.9].contains(p))
            .collect();
        let lines = Lines {
            x_labels: xs.iter().map(|p| format!("p{p}")).collect(),
            series: ts
                .iter()
                .zip(&curves)
                .map(|(t, cs)| {
                    let c = cs.iter().find(|c| c.op == op.op);
                    let ys = xs
                        .iter()
                        .map(|x| {
                            c.and_then(|c| c.points.iter().find(|p| p.0 == *x))
                                .map_or(f64::NAN, |p| p.1)
                        })
                        .collect();
                    (t.clone(), ys)
                })
                .collect(),
        };
        draw_lines(panel, &op.op, "percentile", "µs", &lines, true)?;
    }
    root.present().map_err(e)?;
    Ok(Some(Plot {
        group: Group::Latency,
        title: "latency percentiles per operation (µs, log scale)".to_string(),
        file,
    }))
}

fn andrew_bars(r: &SuiteResults, dir: &Path) -> Result<Option<Plot>> {
    let cases: Vec<(String, f64)> = r
        .case_ids()
        .into_iter()
        .filter_map(|(id, c)| match c {
            Case::Andrew { scale } => Some((id, scale)),
            _ => None,
        })
        .collect();
    if cases.is_empty() {
        return Ok(None);
    }
    let ts = targets(r);
    let file = "andrew.svg".to_string();
    let width = (140 * ts.len() as u32 + 260).max(480);
    let path = dir.join(&file);
    let root = SVGBackend::new(&path, (width * cases.len() as u32, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((1, cases.len()));
    for (panel, (id, scale)) in panels.iter().zip(&cases) {
        let totals: Vec<f64> = ts
            .iter()
            .map(|t| {
                andrew::PHASES
                    .iter()
                    .map(|p| median(r, id, t, p))
                    .filter(|v| v.is_finite())
                    .sum()
            })
            .collect();
        let y_max = totals.iter().copied().fold(0.0, f64::max).max(1e-6) * 1.15;
        let labels = ts.clone();
        let fmt = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("Andrew-style phases, scale ×{scale} (median seconds)"),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.6f64..(ts.len() as f64 - 0.4), 0f64..y_max)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(ts.len().max(1))
            .x_label_formatter(&fmt)
            .y_label_formatter(&|v| num(*v))
            .light_line_style(WHITE)
            .y_desc("seconds")
            .draw()
            .map_err(e)?;
        for (pi, phase) in andrew::PHASES.iter().enumerate() {
            let c = color(pi);
            let bars: Vec<Rectangle<(f64, f64)>> = ts
                .iter()
                .enumerate()
                .map(|(ti, t)| {
                    let below: f64 = andrew::PHASES[..pi]
                        .iter()
                        .map(|p| median(r, id, t, p))
                        .filter(|v| v.is_finite())
                        .sum();
                    let h = median(r, id, t, phase);
                    let h = if h.is_finite() { h } else { 0.0 };
                    let x = ti as f64;
                    Rectangle::new([(x - 0.3, below), (x + 0.3, below + h)], c.filled())
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(e)?
                .label(*phase)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(Some(Plot {
        group: Group::Andrew,
        title: "Andrew phases as stacked bars".to_string(),
        file,
    }))
}

/// Draws every plot the results allow into `dir`.
pub fn draw_all(r: &SuiteResults, dir: &Path) -> Result<Vec<Plot>> {
    let mut out = Vec::new();
    out.extend(andrew_bars(r, dir)?);
    out.extend(churn(r, dir)?);
    for kind in RwKind::ALL {
        out.extend(rw(r, dir, kind)?);
    }
    out.extend(latency(r, dir)?);
    Ok(out)
}
