//! `fimo-fig2` and `fimo-fig3 --quick` (FiMO Figures 2–3 on Concrete): a row
//! per available method, cosines in [-1, 1], the paper's robust findings
//! (Grad-Dot close to the gold standard after little further training and
//! ahead of Grad-Cos; DataInf tracking Grad-Dot), and Figure 3's all-seeds
//! column equal to Figure 2's peak. `lds-mnist` is covered by `lds.rs`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{json, markdown, quick};

fn text(cell: &Value) -> &str {
    cell["value"]["text"].as_str().unwrap_or("")
}

/// The mean of a "mean ± s.e. [(epoch e)]" cell.
fn mean(cell: &Value) -> f64 {
    text(cell)
        .split(" ± ")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a mean ± s.e. cell: {cell}"))
}

/// method -> the mean of every cosine cell from column `first` on (to `end`).
fn cosines(table: &Value, first: usize, end_trim: usize) -> BTreeMap<String, Vec<f64>> {
    let rows = table["rows"].as_array().expect("rows");
    rows.iter()
        .map(|row| {
            let c = row.as_array().expect("cells");
            let vals: Vec<f64> = c[first..c.len() - end_trim].iter().map(mean).collect();
            for v in &vals {
                assert!(v.is_finite() && (-1.0..=1.0).contains(v), "{row}");
            }
            (text(&c[0]).to_string(), vals)
        })
        .collect()
}

#[test]
fn fimo_figures_run_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("fimo-fig2", dir.path());
    let md2 = markdown("fimo-fig2", dir.path());
    let j2 = json("fimo-fig2", dir.path());
    let t2 = &j2["tables"][0];
    // method, gradients, seconds, one column per epoch, peak epoch
    let fig2 = cosines(t2, 3, 1);
    let notes = j2["notes"].to_string();
    assert_eq!(
        t2["header"].as_array().map(|h| h.len()),
        Some(4 + 4),
        "{md2}"
    );
    // every row says which gradients it used; the first-order methods and
    // LiSSA-H are exact on the 17 793-parameter MLP
    for row in t2["rows"].as_array().expect("rows") {
        let (label, grads) = (text(&row[0]), text(&row[1]));
        assert!(
            grads.starts_with("exact") || grads.contains("sketch"),
            "{md2}"
        );
        if ["Grad-Dot", "Grad-Cos", "LiSSA-H", "DataInf"].contains(&label) {
            assert_eq!(grads, "exact", "{label}\n{md2}");
        }
    }
    assert!(notes.contains("smallest of FiMO's grid"), "{md2}");
    // every FiMO method the registry knows has a row or a note saying why not
    for (label, name, _) in [
        ("Grad-Dot", "grad-dot", ()),
        ("Grad-Cos", "grad-cos", ()),
        ("CG", "if-cg", ()),
        ("LiSSA", "if-lissa", ()),
        ("Arnoldi", "if-arnoldi", ()),
        ("EK-FAC", "ekfac", ()),
        ("DataInf", "datainf", ()),
        ("TRAK-1", "trak", ()),
    ] {
        assert!(
            fig2.contains_key(label) || notes.contains(&format!("{label} ({name})")),
            "{label}: neither a row nor a note\n{md2}"
        );
    }
    // LiSSA-H runs on FiMO's tabular MLP through matrix-free Hessian products
    for label in ["Grad-Dot", "Grad-Cos", "LiSSA-H"] {
        assert!(fig2.contains_key(label), "{label} missing\n{md2}");
    }
    // Grad-Dot is the first-order approximation of further training (FiMO §4.2)
    let dot = &fig2["Grad-Dot"];
    assert!(dot[0] > 0.5, "Grad-Dot epoch-1 cosine {}\n{md2}", dot[0]);
    assert!(dot[0] > fig2["Grad-Cos"][0], "{md2}");
    if let Some(di) = fig2.get("DataInf") {
        assert!((di[0] - dot[0]).abs() < 0.2, "DataInf vs Grad-Dot\n{md2}");
    }

    quick("fimo-fig3", dir.path());
    let md3 = markdown("fimo-fig3", dir.path());
    let j3 = json("fimo-fig3", dir.path());
    let t3 = &j3["tables"][0];
    let header: Vec<String> = t3["header"]
        .as_array()
        .expect("header")
        .iter()
        .map(|h| h.as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        header,
        ["method", "gradients", "r = 1", "r = 2", "r = 4"],
        "{md3}"
    );
    let fig3 = cosines(t3, 2, 0);
    assert_eq!(
        fig3.keys().collect::<Vec<_>>(),
        fig2.keys().collect::<Vec<_>>(),
        "{md3}"
    );
    // r = all seeds is one group: its best epoch is Figure 2's peak
    let off: Vec<String> = fig3
        .iter()
        .filter_map(|(method, by_r)| {
            let peak = fig2[method].iter().cloned().fold(f64::MIN, f64::max);
            let all = *by_r.last().expect("r columns");
            ((all - peak).abs() >= 1.5e-3).then(|| format!("{method}: {all} vs {peak}"))
        })
        .collect();
    assert!(off.is_empty(), "{off:?}\n{md2}\n{md3}");
}
