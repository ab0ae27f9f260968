//! SVE selection targets (issue E): `sve-table3`, `sve-table4`, `sve-table5`,
//! `sve-fig3`. They share one cache, as in a real run: table 5 reuses table
//! 3's CREST runs and fig. 3 reuses table 4's.

use crate::{json, markdown, quick};

#[test]
fn sve_selection_targets_run_quick() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["sve-table3", "sve-table5", "sve-table4", "sve-fig3"] {
        quick(name, dir.path());
        let md = markdown(name, dir.path());
        assert!(md.contains("Quick mode"), "{name}: {md}");
        // Every accuracy in the report is a percentage.
        let text = json(name, dir.path()).to_string();
        assert!(
            !text.contains("NaN") && !text.contains("null,null"),
            "{name}"
        );
    }
    let t3 = markdown("sve-table3", dir.path());
    assert!(t3.contains("CREST") && t3.contains("Random"), "{t3}");
    let t4 = markdown("sve-table4", dir.path());
    for m in ["CRAIG", "GradMatch", "GLISTER", "RandE", "SGD"] {
        assert!(t4.contains(m), "sve-table4 lacks {m}");
    }
}
