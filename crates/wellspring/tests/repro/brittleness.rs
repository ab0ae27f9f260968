//! Brittleness targets in `--quick`: one row per method, support AUCs (with
//! standard errors) and found shares in range, the paper's candidate pools
//! (same class for ESVM / l2 only), every per-test support in [0, N_max],
//! "not found" or "excluded" (as many as the excluded count), the linear
//! scan never probing more sizes than it has, LDS values in [-1, 1], and the
//! paper's rows present.

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

/// A support cell: a count in [1, max_k] (a searched point never has
/// support 0), "not found", or "excluded".
fn check_support(cell: &Value, max_k: f64, md: &str) {
    match num(cell) {
        Some(k) => assert!(
            (1.0..=max_k).contains(&k),
            "support {k} ∉ [1, {max_k}]\n{md}"
        ),
        None => assert!(
            ["not found", "excluded"].contains(&text(cell).as_str()),
            "{md}"
        ),
    }
}

/// `"mean ± s.e."` → (mean, s.e.).
fn mean_se(cell: &Value) -> (f64, f64) {
    let t = text(cell);
    let (a, b) = t
        .split_once(" ± ")
        .unwrap_or_else(|| panic!("mean ± s.e.: {t}"));
    (a.parse().expect("mean"), b.parse().expect("s.e."))
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
        // the paper filters the similarity methods to the test class only
        let similarity = ["ESVM", "l2"].iter().any(|p| text(&row[0]).starts_with(p));
        let pool = if similarity {
            "same class"
        } else {
            "all points"
        };
        assert_eq!(text(&row[1]), pool, "{md}");
        for i in [2, 5] {
            let auc = num(&row[i]).expect("AUC");
            assert!((0.0..=1.0).contains(&auc), "{md}");
            let se = num(&row[i + 1]).expect("s.e.");
            assert!((0.0..=0.5).contains(&se), "{md}");
        }
        for i in [4, 7] {
            let found = num(&row[i]).expect("found %");
            assert!((0.0..=100.0).contains(&found), "{md}");
        }
        assert!(num(&row[9]).expect("seconds") >= 0.0, "{md}");
    }
    // per-test supports: one row per test point, one column per method; the
    // "excluded" cells are the points the full-data models misclassify, the
    // same for every method
    for t in &tables[1..3] {
        let r = rows(t);
        assert_eq!(r.len(), n_test, "{md}");
        for (m, method) in main.iter().enumerate() {
            let excluded = r
                .iter()
                .filter(|row| text(&row[2 + m]) == "excluded")
                .count();
            assert_eq!(excluded as f64, num(&method[8]).expect("excluded"), "{md}");
        }
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
    assert!(md.contains("correct-class margin"), "{md}");
    for row in &ours {
        assert!((-1.0..=1.0).contains(&lds_of(row)), "{md}");
        assert!((-1.0..=1.0).contains(&mean_se(&row[3]).0), "{md}");
        let (auc, se) = mean_se(&row[4]);
        assert!(
            (0.0..=1.0).contains(&auc) && (0.0..=0.5).contains(&se),
            "{md}"
        );
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
        // AUC and its standard error per architecture
        assert_eq!(
            row.len(),
            1 + 2 * setting(&j, "architectures") as usize,
            "{md}"
        );
        for pair in row[1..].chunks(2) {
            let auc = num(&pair[0]).expect("AUC");
            assert!((0.0..=1.0).contains(&auc), "{md}");
            let se = num(&pair[1]).expect("s.e.");
            assert!((0.0..=0.5).contains(&se), "{md}");
        }
    }
    assert_eq!(rows(&j["tables"][1]).len(), 5, "paper Table 2 rows\n{md}");
}
