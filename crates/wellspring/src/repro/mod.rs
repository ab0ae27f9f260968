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

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use wellspring_core::{CoreError, derive_seed_str};
use wellspring_data::{DataError, LoadOptions};
use wellspring_report::{Cache, Progress, Report, ReportError, WrittenReport, workspace_root};

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

/// Declares the target modules and lists their `TARGET`s, in one place.
macro_rules! targets {
    ($($module:ident),* $(,)?) => {
        $(mod $module;)*
        static TARGETS: &[Target] = &[$($module::TARGET),*];
    };
}

// One line per target, in the order `--list` shows them.
targets![
    data_summary,
    baselines,
    sve_table3,
    sve_table4,
    sve_table5,
    sve_table1,
    sve_table2,
    sve_fig7,
    sve_fig1,
    sve_fig2,
    sve_fig3,
    ggda_speed,
    lds_bench,
    lds_transformer,
    ggda_table1,
    ggda_pruning,
    ggda_noisy,
    ggda_retrain,
    brittleness,
    brittleness_lds,
    brittleness_transfer,
    fimo_fig2,
    fimo_fig3,
];

mod brittleness_common;
pub mod dattri_match;
mod fimo_common;
mod ggda_common;
pub mod recipes;
mod sve_exemplars;
mod sve_select;

/// Every registered target, in display order.
///
/// Adding a target takes one file and one word:
/// 1. write `crates/wellspring/src/repro/<name>.rs` with a
///    `pub(super) const TARGET: Target = Target { name: "<name>", paper, description, run }`
///    and `fn run(ctx: &RunContext) -> Result<Report, ReproError>` that builds
///    `Report::new("<name>", title)` (see `data_summary.rs` for the pattern:
///    settings, table with paper values, at least one plot, notes);
/// 2. add `<name>` (the module name, `snake_case`) to the `targets![...]` line above.
///
/// Honour `ctx.quick` (a CPU-minutes version of the experiment), derive every
/// seed from `ctx.seed` with [`RunContext::seed_for`], and wrap expensive steps
/// in `ctx.cache.get_or_compute_json` / `get_or_create_file` so reruns resume.
pub fn registry() -> &'static [Target] {
    TARGETS
}

/// The target called `name`, if registered.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Errors from running a reproduce target.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    /// No target has this name.
    #[error("unknown reproduce target {name:?}; known targets: {}", known.join(", "))]
    UnknownTarget {
        /// The name asked for.
        name: String,
        /// Every registered name.
        known: Vec<&'static str>,
    },
    /// A target returned a report named after another target (its files
    /// would land under the wrong name).
    #[error("target {target} returned a report named {got:?}; use Report::new({target:?}, ..)")]
    ReportName {
        /// The target run.
        target: &'static str,
        /// The report's name.
        got: String,
    },
    /// Writing the report, plotting or caching failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Loading data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A core type rejected its input.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Building, training, evaluating or loading a model failed.
    #[error(transparent)]
    Model(#[from] wellspring_models::ModelError),
    /// A target-specific failure, in words.
    #[error("{target}: {reason}")]
    Failed {
        /// The target.
        target: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// Everything a target's run function may use: options, output directory,
/// cache, seeds, data location and progress output.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// Run the small, CPU-minutes version of the experiment.
    pub quick: bool,
    /// Where the report files go (default `<workspace>/results`).
    pub out_dir: PathBuf,
    /// Cache for trained models, gradients, scores.
    pub cache: Cache,
    /// Base seed; targets derive their streams from it with [`RunContext::seed_for`].
    pub seed: u64,
    /// Data directory; `None` means `WELLSPRING_DATA`, else the embedded `datasets/`.
    pub data_dir: Option<PathBuf>,
    /// Progress bars for long steps.
    pub progress: Progress,
}

/// `<workspace>/results`, where reports go by default.
pub fn default_results_dir() -> PathBuf {
    workspace_root().join("results")
}

impl RunContext {
    /// Defaults: full run, `<workspace>/results`, the default cache
    /// (`$WELLSPRING_CACHE` or `target/wellspring-cache`), seed 0, data dir
    /// from the environment, progress on a terminal.
    pub fn new() -> Result<Self, ReproError> {
        let progress = Progress::new();
        // Cache warnings go above the progress bars instead of through them.
        let p = progress.clone();
        let cache = Cache::open_default()?.with_warn_hook(move |w| {
            if p.is_hidden() {
                eprintln!("warning: {w}");
            } else {
                p.println(format!("warning: {w}"));
            }
        });
        Ok(RunContext {
            quick: false,
            out_dir: default_results_dir(),
            cache,
            seed: 0,
            data_dir: None,
            progress,
        })
    }

    /// Sets quick mode.
    pub fn quick(mut self, on: bool) -> Self {
        self.quick = on;
        self
    }

    /// Sets the output directory.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = dir.into();
        self
    }

    /// Sets the base seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the data directory.
    pub fn data_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.data_dir = dir;
        self
    }

    /// Uses another cache.
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    /// Uses another progress handle (e.g. [`Progress::hidden`] in tests).
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The seed of a named stream of this run (`derive_seed_str(seed, stream)`).
    pub fn seed_for(&self, stream: &str) -> u64 {
        derive_seed_str(self.seed, stream)
    }

    /// Loader options with this run's data directory and base seed.
    pub fn load_options(&self) -> LoadOptions {
        let opts = LoadOptions::new().seed(self.seed);
        match &self.data_dir {
            Some(d) => opts.data_dir(d.clone()),
            None => opts,
        }
    }
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
    let report = (target.run)(ctx)?;
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

    fn ctx(dir: &std::path::Path) -> RunContext {
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
