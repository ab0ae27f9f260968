//! Every reproduce target in its `--quick` setting, end to end: the report
//! files exist and carry the numbers the target promises. One module per
//! group of targets; each test uses its own temporary results dir and cache.

use std::path::Path;

use wellspring::repro::{RunContext, RunOutput, run_target};
use wellspring_report::{Cache, Progress};

mod brittleness;
mod exemplars;
mod ggda;
mod ggda_speed;
mod lds;
mod lds_fimo;
mod selection;
mod sparsity;

/// Runs `name` with `--quick` settings into `dir` and returns what it wrote,
/// after checking that the markdown, JSON and at least one SVG exist.
pub fn quick(name: &str, dir: &Path) -> RunOutput {
    let ctx = RunContext {
        quick: true,
        out_dir: dir.join("results"),
        cache: Cache::open(dir.join("cache")).expect("cache dir"),
        seed: 0,
        data_dir: None,
        progress: Progress::hidden(),
    };
    let out = run_target(name, &ctx).unwrap_or_else(|e| panic!("{name} --quick failed: {e}"));
    let md = dir.join("results").join(format!("{name}.md"));
    let json = dir.join("results").join(format!("{name}.json"));
    assert!(md.is_file(), "{name}: no {}", md.display());
    assert!(json.is_file(), "{name}: no {}", json.display());
    let svgs = std::fs::read_dir(dir.join("results"))
        .expect("results dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(name) && n.ends_with(".svg")
        })
        .count();
    assert!(svgs >= 1, "{name}: no SVG written");
    out
}

/// The report's markdown text.
pub fn markdown(name: &str, dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results").join(format!("{name}.md"))).expect("report md")
}

/// The report's JSON.
pub fn json(name: &str, dir: &Path) -> serde_json::Value {
    let s = std::fs::read_to_string(dir.join("results").join(format!("{name}.json")))
        .expect("report json");
    serde_json::from_str(&s).expect("report json parses")
}
