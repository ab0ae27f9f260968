//! GGDA downstream-task targets in `--quick`: `ggda-table1` (HELOC; a skip
//! report without WELLSPRING_DATA), `ggda-pruning`, `ggda-noisy`,
//! `ggda-retrain`. Accuracies are percentages, AUCs lie in [0, 1], every
//! method × grouper has its row, and TracIn ranks exactly as Grad-Dot.

use serde_json::Value;

use crate::{json, markdown, quick};

fn text(cell: &Value) -> String {
    cell["value"]["text"].as_str().unwrap_or("").to_string()
}

fn num(cell: &Value) -> Option<f64> {
    match cell["value"]["kind"].as_str()? {
        "int" | "num" => cell["value"]["value"].as_f64(),
        _ => None,
    }
}

/// The leading number of a cell ("72.4 ± 0.3", "0.612 / 1.20" or a number).
fn lead(cell: &Value) -> Option<f64> {
    num(cell).or_else(|| text(cell).split([' ', '/']).next()?.parse().ok())
}

fn rows(j: &Value, table: usize) -> Vec<Vec<Value>> {
    j["tables"][table]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("cells").clone())
        .collect()
}

fn check_pruning(name: &str, dir: &std::path::Path) {
    quick(name, dir);
    let md = markdown(name, dir);
    let j = json(name, dir);
    let r = rows(&j, 0);
    for m in ["TracIn", "Inf. (Fisher)", "Inf. (LiSSA)"] {
        for v in ["DA", "GGDA"] {
            let row = r
                .iter()
                .find(|c| text(&c[0]) == m && text(&c[1]) == v)
                .unwrap_or_else(|| panic!("{name}: no {m} {v} row\n{md}"));
            for c in &row[2..5] {
                let a = lead(c).unwrap_or_else(|| panic!("{name}: accuracy cell {c}"));
                assert!((0.0..=100.0).contains(&a), "{name} {m} {v}: {a}");
            }
        }
    }
    let random = r
        .iter()
        .find(|c| text(&c[0]) == "random removal")
        .unwrap_or_else(|| panic!("{name}: no random-removal row\n{md}"));
    assert!(random[2..5].iter().all(|c| lead(c).is_some()), "{md}");
}

#[test]
fn ggda_pruning_runs_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    check_pruning("ggda-pruning", dir.path());
    let md = markdown("ggda-pruning", dir.path());
    // the full-data model is trained, not a chance-level stand-in
    let full = md
        .lines()
        .find(|l| l.starts_with("| full_data_accuracy"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().trim_end_matches('%').parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no full_data_accuracy\n{md}"));
    assert!(full > 50.0, "full-data accuracy {full}");
}

#[test]
fn ggda_table1_runs_or_skips_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    let heloc = std::env::var_os("WELLSPRING_DATA")
        .map(|d| std::path::Path::new(&d).join("heloc").is_dir())
        .unwrap_or(false);
    if heloc {
        check_pruning("ggda-table1", dir.path());
    } else {
        quick("ggda-table1", dir.path());
        let md = markdown("ggda-table1", dir.path());
        assert!(md.contains("SKIPPED") && md.contains("heloc"), "{md}");
        // the paper's six rows are still shown
        assert_eq!(rows(&json("ggda-table1", dir.path()), 0).len(), 6);
    }
}

#[test]
fn ggda_noisy_runs_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("ggda-noisy", dir.path());
    let j = json("ggda-noisy", dir.path());
    let r = rows(&j, 0);
    let methods: Vec<String> = r.iter().map(|c| text(&c[0])).collect();
    assert_eq!(
        methods,
        ["TracIn", "Inf. (Fisher)", "Inf. (LiSSA)", "TRAK (2)"],
        "one row per method (TRAK with its ensemble)"
    );
    let field = |c: &Value, i: usize| -> f64 {
        text(c)
            .split(" / ")
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("field {i} of {c}"))
    };
    for row in &r {
        // ROC / curve / seconds per group size (1, 16, 64), then ROC / curve
        // of self-influence; the curve area lies in [p/2, 1 − p/2] for p = 0.1
        for c in &row[1..5] {
            let (roc, curve) = (field(c, 0), field(c, 1));
            assert!((0.0..=1.0).contains(&roc), "{row:?}");
            assert!((0.05 - 1e-9..=0.95 + 1e-9).contains(&curve), "{row:?}");
        }
        for c in &row[1..4] {
            let secs = field(c, 2);
            assert!(secs >= 0.0 && secs.is_finite(), "{row:?}");
        }
    }
}

#[test]
fn ggda_retrain_runs_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("ggda-retrain", dir.path());
    let j = json("ggda-retrain", dir.path());
    let methods = ["TracIn", "TRAK", "Grad-Dot", "Inf. (CG)", "Inf. (LiSSA)"];
    let groupers = ["— (DA)", "random", "kmeans", "repr-kmeans", "grad-kmeans"];
    // Figure 1 layout: one row per grouper, one column per method
    let fig1 = rows(&j, 0);
    assert_eq!(fig1.len(), groupers.len());
    for (row, g) in fig1.iter().zip(groupers) {
        assert_eq!(text(&row[0]), g);
        assert_eq!(row.len(), 2 + methods.len());
        for c in &row[2..] {
            let a = lead(c).unwrap_or_else(|| panic!("accuracy cell {c}"));
            assert!((0.0..=100.0).contains(&a), "{row:?}");
        }
    }
    // full table: every method × grouping, then the random-removal baseline
    let r = rows(&j, 1);
    assert_eq!(r.len(), methods.len() * groupers.len() + 1);
    for m in methods {
        for g in groupers {
            let row = r
                .iter()
                .find(|c| text(&c[0]) == m && text(&c[1]) == g)
                .unwrap_or_else(|| panic!("no {m} / {g} row"));
            for c in &row[3..5] {
                let a = lead(c).unwrap_or_else(|| panic!("accuracy cell {c}"));
                assert!((0.0..=100.0).contains(&a), "{row:?}");
            }
        }
    }
    // TracIn is the learning rate times Grad-Dot: same ranking, same removals
    for g in groupers {
        let acc = |m: &str| -> Vec<f64> {
            let row = r
                .iter()
                .find(|c| text(&c[0]) == m && text(&c[1]) == g)
                .expect("row");
            row[3..5].iter().map(|c| lead(c).expect("number")).collect()
        };
        assert_eq!(acc("TracIn"), acc("Grad-Dot"), "grouper {g}");
    }
    assert!(markdown("ggda-retrain", dir.path()).contains("| full_data_accuracy"));
}
