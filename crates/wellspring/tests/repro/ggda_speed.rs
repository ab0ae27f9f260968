//! `ggda-speed --quick`: a row per method × grouper × group size with a
//! positive wall time, speedups relative to the per-point row (charged with
//! the grouping time, so never above the attribution-only speedup), and a
//! fidelity correlation in [-1, 1].

use serde_json::Value;

use crate::{json, markdown, quick};

/// A cell's number (`int` or `num`), `None` for text.
fn num(cell: &Value) -> Option<f64> {
    match cell["value"]["kind"].as_str()? {
        "int" | "num" => cell["value"]["value"].as_f64(),
        _ => None,
    }
}

#[test]
fn ggda_speed_runs_quick() {
    let dir = tempfile::tempdir().expect("temp dir");
    quick("ggda-speed", dir.path());
    let md = markdown("ggda-speed", dir.path());
    for m in ["TracIn", "Inf. (Fisher)", "Inf. (LiSSA)", "TRAK"] {
        assert!(md.contains(m), "no row for {m}:\n{md}");
    }
    let j = json("ggda-speed", dir.path());
    let rows = j["tables"][0]["rows"].as_array().expect("table rows");
    // 4 methods × (per point + 2 groupers × 2 sizes)
    assert_eq!(rows.len(), 4 * 5, "{md}");
    for row in rows {
        let cells = row.as_array().expect("row cells");
        let t = num(&cells[5]).unwrap_or_else(|| panic!("no wall time in {row}"));
        assert!(t > 0.0 && t.is_finite(), "{row}");
        let r = num(&cells[7]).unwrap_or_else(|| panic!("no fidelity in {row}"));
        assert!((-1.0..=1.0 + 1e-9).contains(&r), "{row}");
        let with_grouping = num(&cells[6]).unwrap_or_else(|| panic!("no speedup in {row}"));
        let attribution = num(&cells[8]).unwrap_or_else(|| panic!("no speedup in {row}"));
        assert!(
            with_grouping > 0.0 && with_grouping <= attribution + 1e-9,
            "{row}"
        );
    }
}
