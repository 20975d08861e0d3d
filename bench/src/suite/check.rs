//! `check-report DIR`: is a suite's output well-formed? It checks the form,
//! never the figures: `report.md` has its title and sections, every table
//! has a header, a separator and rows of the header's width, no cell is NaN,
//! every image it links is an SVG in DIR, and `results.json` parses and
//! names the same targets, each with results. CI runs it after quick mode.

use std::path::Path;

use serde_json::Value;

/// What `check` found: the problems (empty when well-formed) and counts.
#[derive(Debug, Default)]
pub struct Checked {
    pub problems: Vec<String>,
    pub tables: usize,
    pub plots: usize,
    pub targets: usize,
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim();
    let inner = t.strip_prefix('|').unwrap_or(t);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

fn is_separator(line: &str) -> bool {
    let c = cells(line);
    !c.is_empty()
        && c.iter().all(|c| {
            let c = c.trim_matches(':');
            c.len() >= 3 && c.chars().all(|ch| ch == '-')
        })
}

/// Checks the tables of a Markdown text; returns (tables, problems).
fn check_tables(md: &str) -> (Vec<Vec<Vec<String>>>, Vec<String>) {
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].trim_start().starts_with('|') {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].trim_start().starts_with('|') {
            i += 1;
        }
        let block = &lines[start..i];
        let at = start + 1;
        if block.len() < 3 {
            problems.push(format!(
                "line {at}: a table needs a header, a separator and a row"
            ));
            continue;
        }
        if !is_separator(block[1]) {
            problems.push(format!(
                "line {}: second table line is not a separator",
                at + 1
            ));
            continue;
        }
        let width = cells(block[0]).len();
        if cells(block[1]).len() != width {
            problems.push(format!(
                "line {}: separator width differs from the header",
                at + 1
            ));
        }
        let mut rows = Vec::new();
        for (k, l) in block.iter().enumerate().skip(2) {
            let c = cells(l);
            if c.len() != width {
                problems.push(format!(
                    "line {}: {} cells, header has {width}",
                    at + k,
                    c.len()
                ));
            }
            if c.iter()
                .any(|x| x.eq_ignore_ascii_case("nan") || x.contains("NaN"))
            {
                problems.push(format!("line {}: NaN in a table", at + k));
            }
            rows.push(c);
        }
        let mut t = vec![cells(block[0])];
        t.extend(rows);
        tables.push(t);
    }
    (tables, problems)
}

/// The `![alt](file)` links of a Markdown text.
fn images(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = md;
    while let Some(i) = rest.find("![") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find("](") {
            let after = &rest[j + 2..];
            if let Some(k) = after.find(')') {
                out.push(after[..k].to_string());
                rest = &after[k..];
            }
        }
    }
    out
}

/// Checks the suite output in `dir`.
pub fn check(dir: &Path) -> Checked {
    let mut c = Checked::default();
    let md = match std::fs::read_to_string(dir.join("report.md")) {
        Ok(t) => t,
        Err(e) => {
            c.problems.push(format!("report.md: {e}"));
            return c;
        }
    };
    if !md.starts_with("# ") {
        c.problems
            .push("report.md does not start with a title".into());
    }
    for section in ["## Machine", "## Targets"] {
        if !md.lines().any(|l| l.trim() == section) {
            c.problems
                .push(format!("report.md has no {section:?} section"));
        }
    }
    let (tables, problems) = check_tables(&md);
    c.problems.extend(problems);
    c.tables = tables.len();
    // Machine and Targets, plus at least one table of figures.
    if tables.len() < 3 {
        c.problems.push(format!(
            "report.md has {} tables, expected at least 3",
            tables.len()
        ));
    }
    for img in images(&md) {
        c.plots += 1;
        if img.contains('/') || img.contains("..") || !img.ends_with(".svg") {
            c.problems.push(format!(
                "image {img:?} is not an SVG file beside the report"
            ));
            continue;
        }
        match std::fs::read_to_string(dir.join(&img)) {
            Ok(s) if s.contains("<svg") && s.trim_end().ends_with("</svg>") => {}
            Ok(_) => c
                .problems
                .push(format!("{img} is not a complete SVG document")),
            Err(e) => c.problems.push(format!("{img}: {e}")),
        }
    }
    let json: Value = match std::fs::read_to_string(dir.join("results.json"))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            c.problems.push(format!("results.json: {e}"));
            return c;
        }
    };
    let targets: Vec<&str> = json["targets"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    c.targets = targets.len();
    if targets.is_empty() {
        c.problems.push("results.json names no targets".into());
    }
    let cases = json["cases"].as_array().cloned().unwrap_or_default();
    // Figure tables (past Machine and Targets) name every target in their header.
    let figure_tables = tables.iter().skip(2).collect::<Vec<_>>();
    for t in targets {
        if !cases.iter().any(|k| k["target"] == t) {
            c.problems
                .push(format!("results.json has no results for {t}"));
        }
        if !md.contains(&format!("| {t} |")) {
            c.problems
                .push(format!("target {t} is not in the report's targets table"));
        }
        for (k, table) in figure_tables.iter().enumerate() {
            if !table[0].iter().any(|h| h == t) {
                c.problems
                    .push(format!("figure table {} has no column for {t}", k + 1));
            }
        }
    }
    for k in &cases {
        let runs = k["runs"].as_array().map_or(0, Vec::len);
        if runs == 0 {
            c.problems
                .push(format!("{} on {} has no runs", k["id"], k["target"]));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_images_are_parsed() {
        let md = "# t\n\n| a | b |\n|---|---:|\n| 1 | 2 |\n\ntext ![x](p.svg) and ![y](q.svg)\n\
                  | a | b |\n|---|---|\n| 1 |\n";
        let (tables, problems) = check_tables(md);
        assert_eq!(tables.len(), 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("1 cells, header has 2"));
        assert_eq!(images(md), vec!["p.svg", "q.svg"]);
        let (_, problems) = check_tables("| a |\n| b |\n| c |\n");
        assert!(problems[0].contains("not a separator"));
        let (_, problems) = check_tables("| a |\n|---|\n| NaN |\n");
        assert!(problems[0].contains("NaN"));
    }

    #[test]
    fn a_missing_directory_is_a_problem_not_a_panic() {
        let c = check(Path::new("/nonexistent/palisade-bench-report"));
        assert_eq!(c.problems.len(), 1);
        assert!(c.problems[0].starts_with("report.md"));
    }
}
