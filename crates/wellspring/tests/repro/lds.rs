//! `lds-mnist --quick`: one row per registered method (tracin-cp excepted)
//! and model plus the TRAK ensembles, LDS in [-1, 1], positive wall times,
//! and the informative methods ahead of the seeded random baseline.

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
    assert_eq!(rows.len(), 2 * (n_methods + 1), "{md}");
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
        lds.insert((model.to_string(), method.to_string()), mean);
    }
    for model in ["LR", "MLP"] {
        let random = lds[&(model.to_string(), "random".to_string())];
        for m in ["grad-dot", "if-explicit", "esvm"] {
            let v = lds[&(model.to_string(), m.to_string())];
            assert!(v > random + 0.1, "{model} {m}: LDS {v} vs random {random}");
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
