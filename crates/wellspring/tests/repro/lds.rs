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
