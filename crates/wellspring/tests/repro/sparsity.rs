//! `sve-fig2` (issue #4): the share of non-zero last-layer per-example
//! gradient entries during training, every dataset × model × optimiser.

use serde_json::Value;

use crate::{json, markdown, quick};

const OPTIMISERS: [&str; 4] = ["Adam (%)", "RMSProp (%)", "AdaGrad (%)", "SGD (%)"];

#[test]
fn sve_fig2_runs_quick_with_percentages_in_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    quick("sve-fig2", dir.path());
    let md = markdown("sve-fig2", dir.path());
    assert!(md.contains("stand-in"), "names its CPU stand-ins: {md}");
    let report = json("sve-fig2", dir.path());
    let tables = report["tables"].as_array().expect("tables");
    let t = tables
        .iter()
        .find(|t| {
            t["title"]
                .as_str()
                .is_some_and(|s| s.starts_with("Last-layer per-example gradient entries"))
        })
        .expect("the step table");
    let header: Vec<&str> = t["header"]
        .as_array()
        .expect("header")
        .iter()
        .map(|h| h.as_str().expect("header text"))
        .collect();
    let cols: Vec<usize> = OPTIMISERS
        .iter()
        .map(|o| {
            header
                .iter()
                .position(|h| h == o)
                .unwrap_or_else(|| panic!("no column {o} in {header:?}"))
        })
        .collect();
    let mut cells = std::collections::BTreeSet::new();
    for row in t["rows"].as_array().expect("rows") {
        let r = row.as_array().expect("row cells");
        let dataset = r[0]["value"]["text"].as_str().unwrap_or("").to_string();
        if dataset.starts_with("paper") {
            continue;
        }
        let model = r[1]["value"]["text"].as_str().unwrap_or("").to_string();
        for &c in &cols {
            let v: &Value = &r[c]["value"]["value"];
            let v = v
                .as_f64()
                .unwrap_or_else(|| panic!("{dataset} {model} column {c}: not a number: {r:?}"));
            assert!(
                (0.0..=100.0).contains(&v),
                "{dataset} {model} {}: {v} is not a percentage",
                header[c]
            );
        }
        cells.insert((dataset, model));
    }
    // MNIST and Optdigits are embedded; Fashion-MNIST only with WELLSPRING_DATA.
    for d in ["MNIST", "Optdigits"] {
        for m in ["LR", "MLP", "CNN"] {
            assert!(
                cells.contains(&(d.to_string(), m.to_string())),
                "no row for {d} {m}: {cells:?}"
            );
        }
    }
}
