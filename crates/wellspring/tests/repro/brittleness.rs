//! Brittleness targets in `--quick`: one row per method, support AUCs and
//! found shares in range, every per-test support in [0, N_max] or "not
//! found", the linear scan never probing more sizes than it has, LDS values in [-1, 1], and the paper's rows present.

use serde_json::Value;

use crate::{json, markdown, quick};

fn num(cell: &Value) -> Option<f64> {
    match cell["value"]["kind"].as_str()? {
        "int" | "num" => cell["value"]["value"].as_f64(),
        _ => None,
    }
}

fn text(cell: &Value) -> String {
    cell["value"]["text"].as_str().unwrap_or("").to_string()
}

fn rows(table: &Value) -> Vec<Vec<Value>> {
    table["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("cells").clone())
        .collect()
}

fn setting(j: &Value, key: &str) -> f64 {
    j["settings"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("setting {key} in {}", j["settings"]))
}

/// Row-label prefixes every brittleness table must have, in order.
const EXPECTED_METHODS: [&str; 7] = [
    "ESVM (supervised features)",
    "l2 (supervised features)",
    "ESVM (SimCLR features)",
    "l2 (SimCLR features)",
    "TRAK (",
    "Grad-Cos",
    "IF (if-cg)",
];

fn check_method_rows(rows: &[Vec<Value>], md: &str) {
    assert_eq!(rows.len(), EXPECTED_METHODS.len(), "{md}");
    for (row, m) in rows.iter().zip(EXPECTED_METHODS) {
        assert!(
            text(&row[0]).starts_with(m),
            "{} vs {m}\n{md}",
            text(&row[0])
        );
    }
}

/// A support cell: a count in [0, max_k], or "not found".
fn check_support(cell: &Value, max_k: f64, md: &str) {
    match num(cell) {
        Some(k) => assert!((0.0..=max_k).contains(&k), "support {k} > {max_k}\n{md}"),
        None => assert_eq!(text(cell), "not found", "{md}"),
    }
}

#[test]
fn brittleness_quick_supports_and_aucs() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("brittleness", dir.path());
    let md = markdown("brittleness", dir.path());
    let j = json("brittleness", dir.path());
    let max_k = setting(&j, "max_support");
    let n_test = setting(&j, "test_points") as usize;
    let tables = j["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 4, "{md}");
    let main = rows(&tables[0]);
    check_method_rows(&main, &md);
    for row in &main {
        for i in [1, 3] {
            let auc = num(&row[i]).expect("AUC");
            assert!((0.0..=1.0).contains(&auc), "{md}");
        }
        for i in [2, 4] {
            let found = num(&row[i]).expect("found %");
            assert!((0.0..=100.0).contains(&found), "{md}");
        }
        assert!(num(&row[5]).expect("seconds") >= 0.0, "{md}");
    }
    // per-test supports: one row per test point, one column per method
    for t in &tables[1..3] {
        let r = rows(t);
        assert_eq!(r.len(), n_test, "{md}");
        for row in &r {
            assert_eq!(row.len(), 2 + main.len(), "{md}");
            for c in &row[2..] {
                check_support(c, max_k, &md);
            }
        }
    }
    // linear scan: supports in range, at most 7 checks, for ESVM-SimCLR and TRAK
    let scan = rows(&tables[3]);
    let points = setting(&j, "scan_points") as usize;
    assert_eq!(scan.len(), 2 * points.min(n_test), "{md}");
    for row in &scan {
        check_support(&row[2], max_k, &md);
        check_support(&row[4], max_k, &md);
        assert!(num(&row[5]).expect("scan checks") <= 7.0, "{md}");
        assert!(
            num(&row[3]).expect("bisection checks") <= setting(&j, "bisection_budget"),
            "{md}"
        );
    }
}

#[test]
fn brittleness_lds_quick_table1_layout() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("brittleness-lds", dir.path());
    let md = markdown("brittleness-lds", dir.path());
    assert!(
        md.contains("paper: TRAK") && md.contains("paper: Datamodels"),
        "{md}"
    );
    let j = json("brittleness-lds", dir.path());
    let all = rows(&j["tables"][0]);
    let lds_of = |row: &[Value]| -> f64 {
        text(&row[2])
            .split(" ± ")
            .next()
            .expect("mean")
            .parse()
            .expect("LDS")
    };
    let sparse: Vec<&Vec<Value>> = all
        .iter()
        .filter(|r| text(&r[0]).starts_with("sparsified"))
        .collect();
    assert_eq!(sparse.len(), 1, "{md}");
    assert!((-1.0..=1.0).contains(&lds_of(sparse[0])), "{md}");
    assert_eq!(
        all.iter()
            .filter(|r| text(&r[0]).starts_with("paper"))
            .count(),
        8,
        "{md}"
    );
    let ours: Vec<Vec<Value>> = all
        .iter()
        .filter(|r| !text(&r[0]).starts_with("paper") && !text(&r[0]).starts_with("sparsified"))
        .cloned()
        .collect();
    check_method_rows(&ours, &md);
    for row in &ours {
        assert!((-1.0..=1.0).contains(&lds_of(row)), "{md}");
        let auc = num(&row[3]).expect("AUC");
        assert!((0.0..=1.0).contains(&auc), "{md}");
        assert!(num(&row[1]).expect("models") >= 1.0, "{md}");
    }
}

#[test]
fn brittleness_transfer_quick_table2_layout() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("brittleness-transfer", dir.path());
    let md = markdown("brittleness-transfer", dir.path());
    let j = json("brittleness-transfer", dir.path());
    let r = rows(&j["tables"][0]);
    let labels: Vec<String> = r.iter().map(|row| text(&row[0])).collect();
    assert_eq!(labels.len(), 3, "{md}");
    for (label, want) in labels
        .iter()
        .zip(["ESVM (supervised", "ESVM (SimCLR", "TRAK ("])
    {
        assert!(label.starts_with(want), "{label} vs {want}\n{md}");
    }
    for row in &r {
        assert_eq!(row.len(), 1 + setting(&j, "architectures") as usize, "{md}");
        for c in &row[1..] {
            let auc = num(c).expect("AUC");
            assert!((0.0..=1.0).contains(&auc), "{md}");
        }
    }
    assert_eq!(rows(&j["tables"][1]).len(), 5, "paper Table 2 rows\n{md}");
}
