//! `lds-mnist --quick`: one row per registered method (tracin-cp excepted)
//! and model, labelled with its default projection, plus the TRAK ensembles
//! and the exact (identity-projection) rows of the gradient methods dattri
//! shares; LDS in [-1, 1], positive wall times, the informative methods
//! ahead of the seeded random baseline, and the dattri column labelled with
//! where it comes from.

use serde_json::Value;

use crate::{json, markdown, quick};

fn text(cell: &Value) -> &str {
    cell["value"]["text"].as_str().unwrap_or("")
}

fn num(cell: &Value) -> Option<f64> {
    match cell["value"]["kind"].as_str()? {
        "int" | "num" => cell["value"]["value"].as_f64(),
        _ => None,
    }
}

#[test]
fn lds_mnist_runs_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("lds-mnist", dir.path());
    let md = markdown("lds-mnist", dir.path());
    let j = json("lds-mnist", dir.path());
    let rows = j["tables"][0]["rows"].as_array().expect("rows");
    let n_methods = wellspring_attrib::methods::list().len() - 1; // tracin-cp skipped
    let exact = wellspring::repro::dattri_match::EXACT_METHODS;
    // the MLP has no exact if-explicit (its 109 386² Hessian is not formed)
    let n_exact = 2 * exact.len() - 1;
    assert_eq!(rows.len(), 2 * (n_methods + 1) + n_exact, "{md}");
    assert!(md.contains("MLP if-explicit (exact): not run"), "{md}");
    let mut lds = std::collections::BTreeMap::new();
    for row in rows {
        let c = row.as_array().expect("cells");
        let (model, method) = (text(&c[0]), text(&c[1]));
        let mean: f64 = text(&c[2])
            .split(" ± ")
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("LDS cell of {row}"));
        assert!((-1.0..=1.0).contains(&mean), "{row}");
        let secs = num(&c[3]).expect("seconds");
        assert!(secs >= 0.0 && secs.is_finite(), "{row}");
        // no compare-dattri.json in the temp dir: reference numbers, labelled
        let source = text(&c[8]);
        assert!(
            source == "—" || source.starts_with("issue D reference"),
            "{row}"
        );
        if method.ends_with("(exact)") {
            assert_eq!(source, "—", "{row}");
        }
        lds.insert((model.to_string(), method.to_string()), mean);
    }
    for model in ["LR", "MLP"] {
        let random = lds[&(model.to_string(), "random".to_string())];
        for m in [
            "grad-dot (kronecker:512)",
            "if-explicit (kronecker:512)",
            "esvm",
            "grad-dot (exact)",
        ] {
            let v = lds[&(model.to_string(), m.to_string())];
            assert!(v > random + 0.1, "{model} {m}: LDS {v} vs random {random}");
        }
        for m in exact {
            let label = format!("{m} (exact)");
            let present = lds.contains_key(&(model.to_string(), label.clone()));
            assert_eq!(
                present,
                !(model == "MLP" && m == "if-explicit"),
                "{label}: {md}"
            );
        }
    }
}

#[test]
fn lds_transformer_runs_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("lds-transformer", dir.path());
    let md = markdown("lds-transformer", dir.path());
    let j = json("lds-transformer", dir.path());
    let rows = j["tables"][0]["rows"].as_array().expect("LDS rows");
    let mut lds = std::collections::BTreeMap::new();
    for row in rows {
        let c = row.as_array().expect("cells");
        let mean: f64 = text(&c[1])
            .split(" ± ")
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("LDS cell of {row}"));
        assert!((-1.0..=1.0).contains(&mean), "{row}");
        assert!(num(&c[2]).is_some_and(|s| s >= 0.0), "{row}");
        lds.insert(text(&c[0]).to_string(), mean);
    }
    for m in [
        "random",
        "grad-dot",
        "tracin",
        "if-cg",
        "ekfac",
        "datainf",
        "trak (M = 2)",
    ] {
        assert!(lds.contains_key(m), "{m} missing: {md}");
    }
    assert!(
        lds["grad-dot"] > lds["random"] + 0.1,
        "grad-dot {} vs random {}",
        lds["grad-dot"],
        lds["random"]
    );
    // fact tracing: every prompt, both methods, the top 2 each
    let facts = j["tables"][1]["rows"].as_array().expect("fact rows");
    assert_eq!(facts.len(), 4 * 2 * 2, "{md}");
    for row in facts {
        let c = row.as_array().expect("cells");
        assert!(text(&c[0]).contains(" → "), "{row}");
        assert!(!text(&c[4]).is_empty(), "{row}");
    }
}
