//! SVE attribution targets (issue C): `sve-table1`, `sve-table2`, `sve-fig7`,
//! `sve-fig1`. They share one cache, as in a real run: the clean models and
//! top-k lists of Table 1 are reused by Table 2 and Figure 1.

use serde_json::Value;

use crate::{json, markdown, quick};

/// A table of a report's JSON by title prefix.
fn table<'a>(report: &'a Value, title: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["title"].as_str().is_some_and(|s| s.starts_with(title)))
        .unwrap_or_else(|| panic!("no table titled {title:?}"))
}

/// A cell's number (`int` or `num`), `None` for text ("n/a").
fn num(cell: &Value) -> Option<f64> {
    match cell["value"]["kind"].as_str()? {
        "int" | "num" => cell["value"]["value"].as_f64(),
        _ => None,
    }
}

fn text(cell: &Value) -> &str {
    cell["value"]["text"].as_str().unwrap_or("")
}

/// Column index of `name` in a table's header.
fn col(t: &Value, name: &str) -> usize {
    t["header"]
        .as_array()
        .expect("header")
        .iter()
        .position(|h| h.as_str() == Some(name))
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn rows(t: &Value) -> &Vec<Value> {
    t["rows"].as_array().expect("rows")
}

#[test]
fn sve_attribution_targets_run_quick() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["sve-table1", "sve-table2", "sve-fig7", "sve-fig1"] {
        quick(name, dir.path());
        let md = markdown(name, dir.path());
        assert!(md.contains("PAE") || md.contains("RPS"), "{name}: {md}");
        assert!(md.contains("stand-in"), "{name} names its CPU stand-ins");
    }

    // Table 1: exemplar counts shrink as r grows and grow with k; PAE and RPS ran.
    let t1 = json("sve-table1", dir.path());
    let grid = table(&t1, "Issue grid");
    let mut seen = std::collections::BTreeMap::<(String, String), Vec<Vec<f64>>>::new();
    for row in rows(grid) {
        let r = row.as_array().unwrap();
        let Some(counts) = r[3..].iter().map(num).collect::<Option<Vec<f64>>>() else {
            continue; // a method not yet available
        };
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{row}");
        let k = num(&r[2]).unwrap();
        assert!(
            counts[0] <= k * 500.0,
            "r = 1: at most k·n_test distinct points: {row}"
        );
        seen.entry((text(&r[0]).into(), text(&r[1]).into()))
            .or_default()
            .push(counts);
    }
    assert!(seen.keys().any(|(_, m)| m == "PAE") && seen.keys().any(|(_, m)| m == "RPS"));
    for (key, by_k) in &seen {
        for w in by_k.windows(2) {
            assert!(
                w[0].iter().zip(&w[1]).all(|(a, b)| a <= b),
                "{key:?}: counts must grow with k: {by_k:?}"
            );
        }
    }

    // Table 2: RPS's top-1 lands on a flipped point far more often than
    // chance (1%) and than PAE, which ignores labels.
    let t2 = json("sve-table2", dir.path());
    let top1 = table(&t2, "Share of test points");
    let (pae, rps) = (col(top1, "PAE"), col(top1, "RPS"));
    for row in rows(top1) {
        let r = row.as_array().unwrap();
        let (p, q) = (num(&r[pae]).unwrap(), num(&r[rps]).unwrap());
        assert!(
            (0.0..=100.0).contains(&p) && (0.0..=100.0).contains(&q),
            "{row}"
        );
        assert!(q > 5.0 && q > p, "RPS should pick poisoned points: {row}");
    }
    let models = table(&t2, "Models");
    for row in rows(models) {
        let r = row.as_array().unwrap();
        let flipped = num(&r[2]).unwrap();
        let n = num(&r[1]).unwrap();
        assert_eq!(
            flipped,
            (0.01 * n).round(),
            "1% of the labels flipped: {row}"
        );
    }

    // Figure 7: rates are percentages; RPS filters by class (100% identical
    // class); Emb beats the random baseline on the subclass test.
    let f7 = json("sve-fig7", dir.path());
    let id = table(&f7, "Share of test points");
    let mut by_method = std::collections::BTreeMap::new();
    for row in rows(id) {
        let r = row.as_array().unwrap();
        if let (Some(s), Some(c)) = (num(&r[2]), num(&r[3])) {
            assert!(
                (0.0..=100.0).contains(&s) && (0.0..=100.0).contains(&c),
                "{row}"
            );
            by_method.insert(text(&r[1]).to_string(), (s, c));
        }
    }
    assert_eq!(by_method["RPS"].1, 100.0);
    assert!(
        by_method["Emb"].0 > by_method["Random"].0 + 10.0,
        "{by_method:?}"
    );
    assert!(by_method["Emb"].1 > by_method["Random"].1, "{by_method:?}");

    // Figure 1: nested threshold shares; the top 1% holds at least 1% of the mass.
    let f1 = json("sve-fig1", dir.path());
    let sp = table(&f1, "Sparsity");
    let mut measured = 0;
    for row in rows(sp) {
        let r = row.as_array().unwrap();
        let Some(v) = r[3..7].iter().map(num).collect::<Option<Vec<f64>>>() else {
            continue; // the paper's rows
        };
        assert!(
            v[0] <= 100.0 && v[0] >= v[1] && v[1] >= v[2] && v[2] >= 0.0,
            "{row}"
        );
        assert!((1.0 - 1e-9..=100.0).contains(&v[3]), "{row}");
        measured += 1;
    }
    assert!(measured >= 2, "RPS on MNIST and Optdigits at least");
}
