//! Collects criterion's results (`<target>/criterion/**/new/estimates.json`)
//! into a report table, so the README can cite measured times.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ReportError, Result};
use crate::report::Report;
use crate::table::{Cell, Table};

/// One benchmark's timing, in nanoseconds per iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchEstimate {
    /// Criterion's full id (`group/function/parameter`), or the directory path.
    pub name: String,
    /// Median time.
    pub median_ns: f64,
    /// Lower end of the median's confidence interval.
    pub median_lo_ns: f64,
    /// Upper end of the median's confidence interval.
    pub median_hi_ns: f64,
    /// Mean time.
    pub mean_ns: f64,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| ReportError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ReportError::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                let est = path.join("estimates.json");
                if est.is_file() {
                    out.push(path);
                }
            } else if path.file_name().is_none_or(|n| n != "report") {
                walk(&path, out)?;
            }
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Every benchmark under a criterion output directory (e.g. `target/criterion`),
/// sorted by name. A missing directory gives an empty list.
pub fn collect_criterion(dir: &Path) -> Result<Vec<BenchEstimate>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs = Vec::new();
    walk(dir, &mut dirs)?;
    let mut out = Vec::new();
    for new in dirs {
        let est_path = new.join("estimates.json");
        let est = read_json(&est_path)?;
        let get = |stat: &str, field: &[&str]| -> Result<f64> {
            let mut v = &est[stat];
            for f in field {
                v = &v[*f];
            }
            v.as_f64().ok_or_else(|| ReportError::CacheEntry {
                path: est_path.clone(),
                reason: format!("no number at {stat}.{}", field.join(".")),
            })
        };
        let name = read_json(&new.join("benchmark.json"))
            .ok()
            .and_then(|b| b["full_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                let rel = new.parent().unwrap_or(&new);
                rel.strip_prefix(dir).unwrap_or(rel).display().to_string()
            });
        out.push(BenchEstimate {
            name,
            median_ns: get("median", &["point_estimate"])?,
            median_lo_ns: get("median", &["confidence_interval", "lower_bound"])?,
            median_hi_ns: get("median", &["confidence_interval", "upper_bound"])?,
            mean_ns: get("mean", &["point_estimate"])?,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Human time per iteration: `812 ns`, `3.41 µs`, `12.5 ms`, `1.20 s`.
pub fn format_ns(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// A `bench` report: one row per benchmark with median (and its confidence
/// interval) and mean time per iteration.
pub fn bench_report(estimates: &[BenchEstimate]) -> Report {
    let mut table = Table::new([
        "benchmark",
        "median",
        "median 95% CI",
        "mean",
        "median (ns)",
    ]);
    for b in estimates {
        table.push_row([
            Cell::text(&b.name),
            Cell::text(format_ns(b.median_ns)),
            Cell::text(format!(
                "{} – {}",
                format_ns(b.median_lo_ns),
                format_ns(b.median_hi_ns)
            )),
            Cell::text(format_ns(b.mean_ns)),
            Cell::num(b.median_ns, 0),
        ]);
    }
    let mut report = Report::new("bench", "Benchmarks")
        .paragraph("Criterion benchmarks of `cargo bench -p wellspring`, collected by `cargo xtask bench`.")
        .setting("benchmarks", estimates.len())
        .table(table);
    if estimates.is_empty() {
        report = report.note("No criterion results were found.");
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_estimates_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("group/fn/new");
        std::fs::create_dir_all(&new).unwrap();
        let est = r#"{"mean":{"point_estimate":2100.0,"confidence_interval":{"lower_bound":1.0,"upper_bound":3.0}},
                      "median":{"point_estimate":2000.0,"confidence_interval":{"lower_bound":1900.0,"upper_bound":2200.0}}}"#;
        std::fs::write(new.join("estimates.json"), est).unwrap();
        std::fs::write(new.join("benchmark.json"), r#"{"full_id":"group/fn"}"#).unwrap();
        let other = dir.path().join("solo/new");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("estimates.json"), est).unwrap();
        let got = collect_criterion(dir.path()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "group/fn");
        assert_eq!(got[1].name, "solo");
        assert_eq!(got[0].median_ns, 2000.0);
        assert_eq!(format_ns(got[0].median_ns), "2.00 µs");
        let md = bench_report(&got).to_record().unwrap().to_markdown();
        assert!(
            md.contains("| group/fn | 2.00 µs | 1.90 µs – 2.20 µs | 2.10 µs | 2000 |"),
            "{md}"
        );
        assert!(
            collect_criterion(&dir.path().join("absent"))
                .unwrap()
                .is_empty()
        );
    }
}
