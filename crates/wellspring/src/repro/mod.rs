//! Reproduce targets: each regenerates one table or figure of a paper and
//! writes `results/<target>.md`, `.json` and at least one `.svg`
//! (`cargo xtask reproduce <target> [--quick]`).
//!
//! A target is a plain function `fn(&RunContext) -> Result<Report, ReproError>`
//! registered in [`registry`]. It loads data through [`RunContext::load_options`],
//! caches expensive steps (trained models, gradients) in [`RunContext::cache`]
//! keyed by everything that produced them, shows progress through
//! [`RunContext::progress`], and returns a [`Report`]; [`run_target`] times it,
//! stamps the run settings and writes the files.
//!
//! The targets live by paper family, each family folder with the machinery
//! its targets share:
//!
//! | folder | paper | shared |
//! |---|---|---|
//! | `sve/` | Mahmood, Yin & Khanna 2025 (SVE) | `exemplars` (attribution), `select` (data selection) |
//! | `ggda/` | Ley et al. 2024 (GGDA) | `common` (model, methods, harness), `prune` |
//! | `brittleness/` | data-brittleness paper | `common` (model, methods, support search) |
//! | `fimo/` | Bae et al. (FiMO) | `common` (gold standard, method comparison) |
//! | `lds/` | dattri benchmark | — |
//!
//! plus `data_summary` and `baselines` at the top. Across families,
//! [`recipes`] holds the dataset + model + training settings as `const`s
//! (trained models are cached and shared by every target that names the same
//! recipe), `method` the one method-spec type every method list uses, and
//! [`ReproError`] converts every library error with `#[from]`.

use std::time::{Duration, Instant, SystemTime};

use wellspring_report::{Report, WrittenReport};

mod context;
mod error;
mod method;
mod scores;

pub use context::{RunContext, default_results_dir};
pub use error::ReproError;

/// What a target's run function returns.
pub type RunFn = fn(&RunContext) -> Result<Report, ReproError>;

/// One reproduce target: a table or figure of a paper (or an inventory such
/// as `data-summary`).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Name used on the command line and for the output files (`data-summary`).
    pub name: &'static str,
    /// The paper, table or issue it reproduces ("Park et al. 2023 (TRAK), Table 1").
    pub paper: &'static str,
    /// One line saying what it computes.
    pub description: &'static str,
    /// Computes the report.
    pub run: RunFn,
}

/// Lists the targets' `TARGET`s (by module path), in one place.
macro_rules! targets {
    ($($family:ident $(:: $module:ident)?),* $(,)?) => {
        static TARGETS: &[Target] = &[$($family $(:: $module)? ::TARGET),*];
    };
}

mod baselines;
mod brittleness;
mod data_summary;
pub mod dattri_match;
mod fimo;
mod ggda;
mod lds;
pub mod recipes;
mod sve;

// One entry per target, in the order `--list` shows them.
targets![
    data_summary,
    baselines,
    sve::table3,
    sve::table4,
    sve::table5,
    sve::table1,
    sve::table2,
    sve::fig7,
    sve::fig1,
    sve::fig2,
    sve::fig3,
    ggda::speed,
    lds::mnist,
    lds::transformer,
    ggda::table1,
    ggda::pruning,
    ggda::noisy,
    ggda::retrain,
    brittleness::support,
    brittleness::lds,
    brittleness::transfer,
    fimo::fig2,
    fimo::fig3,
];

/// Every registered target, in display order.
///
/// Adding a target takes one file and two lines:
/// 1. write `crates/wellspring/src/repro/<family>/<name>.rs` (a new paper
///    gets its own folder with a `mod.rs`) with a
///    `pub(in crate::repro) const TARGET: Target = Target { name: "<name>", paper, description, run }`
///    and `fn run(ctx: &RunContext) -> Result<Report, ReproError>` split
///    into the run's settings (full or `--quick`), its rows (the numbers,
///    computed once) and the report built from them (see `ggda/noisy.rs`:
///    `Settings::new(ctx.quick)`, `rows(..)`, `report(..)`; tables with paper
///    values, at least one plot, notes);
/// 2. add `pub(super) mod <name>;` to the family's `mod.rs` and
///    `<family>::<name>` to the `targets![...]` list above.
///
/// Honour `ctx.quick` (a CPU-minutes version of the experiment), derive every
/// seed from `ctx.seed` with [`RunContext::seed_for`], name models through
/// the `const` recipes of [`recipes`] and methods through `MethodSpec`
/// consts, let library errors convert with `?`, and wrap expensive steps in
/// `ctx.cache.get_or_compute_json` / `get_or_create_file` so reruns resume.
pub fn registry() -> &'static [Target] {
    TARGETS
}

/// The target called `name`, if registered.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// What [`run_target`] produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The target's name.
    pub target: &'static str,
    /// Files written.
    pub written: WrittenReport,
    /// Wall time of the run function (the report's `wall_time_s`).
    pub wall_time: Duration,
}

/// Runs `target`: times it, adds the run settings (`run.quick`, `run.seed`,
/// `run.paper`), and writes the report into `ctx.out_dir`.
pub fn run(target: &'static Target, ctx: &RunContext) -> Result<RunOutput, ReproError> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let report = (target.run)(ctx).map_err(|e| ReproError::Target {
        target: target.name,
        error: Box::new(e),
    })?;
    let wall_time = clock.elapsed();
    if report.target() != target.name {
        return Err(ReproError::ReportName {
            target: target.name,
            got: report.target().to_string(),
        });
    }
    let report = report
        .setting("run.quick", ctx.quick)
        .setting("run.seed", ctx.seed)
        .setting("run.paper", target.paper)
        .started(started)
        .wall_time(wall_time);
    let written = report.write(&ctx.out_dir)?;
    Ok(RunOutput {
        target: target.name,
        written,
        wall_time,
    })
}

/// Runs the target called `name` (see [`run`]).
pub fn run_target(name: &str, ctx: &RunContext) -> Result<RunOutput, ReproError> {
    let target = find(name).ok_or_else(|| ReproError::UnknownTarget {
        name: name.to_string(),
        known: TARGETS.iter().map(|t| t.name).collect(),
    })?;
    run(target, ctx)
}

/// Runs every registered target in order, continuing after failures.
pub fn run_all(ctx: &RunContext) -> Vec<(&'static str, Result<RunOutput, ReproError>)> {
    TARGETS.iter().map(|t| (t.name, run(t, ctx))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellspring_report::{Cache, Progress};

    /// A quick, quiet context with its output and cache under `dir`.
    pub(super) fn ctx(dir: &std::path::Path) -> RunContext {
        RunContext {
            quick: true,
            out_dir: dir.join("results"),
            cache: Cache::open(dir.join("cache")).unwrap(),
            seed: 0,
            data_dir: None,
            progress: Progress::hidden(),
        }
    }

    #[test]
    fn registry_names_are_unique_and_file_safe() {
        let mut names: Vec<&str> = registry().iter().map(|t| t.name).collect();
        assert!(names.contains(&"data-summary"));
        for n in &names {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
        }
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(
            registry()
                .iter()
                .all(|t| !t.paper.is_empty() && !t.description.is_empty())
        );
    }

    #[test]
    fn unknown_target_lists_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let e = run_target("nope", &ctx(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"nope\"") && e.contains("data-summary"), "{e}");
    }

    #[test]
    fn misnamed_report_is_rejected() {
        static BAD: Target = Target {
            name: "bad-target",
            paper: "none",
            description: "returns a report with the wrong name",
            run: |_| Ok(Report::new("other", "t")),
        };
        let dir = tempfile::tempdir().unwrap();
        let e = run(&BAD, &ctx(dir.path())).unwrap_err().to_string();
        assert!(e.contains("bad-target") && e.contains("\"other\""), "{e}");
    }

    #[test]
    fn seeds_derive_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path());
        assert_ne!(c.seed_for("a"), c.seed_for("b"));
        assert_eq!(c.seed_for("a"), c.clone().seed(0).seed_for("a"));
        assert_ne!(c.seed_for("a"), c.clone().seed(1).seed_for("a"));
    }
}
