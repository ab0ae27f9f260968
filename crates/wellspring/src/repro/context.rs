//! [`RunContext`]: what a target's run function may use.

use std::path::PathBuf;

use wellspring_core::derive_seed_str;
use wellspring_data::LoadOptions;
use wellspring_report::{Cache, Progress, workspace_root};

use super::ReproError;

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

    /// A retraining harness on `train` / `test` that caches its runs in this
    /// run's cache and reports progress (every target's retrainings go
    /// through one of these).
    pub(crate) fn retrainer(
        &self,
        train: &wellspring_core::Dataset,
        test: &wellspring_core::Dataset,
        config: wellspring_models::ModelConfig,
        train_config: wellspring_models::TrainConfig,
    ) -> Result<wellspring_eval::ModelRetrainer, ReproError> {
        Ok(wellspring_eval::ModelRetrainer::new(
            train,
            test,
            config,
            train_config,
            &super::recipes::device(),
        )?
        .with_cache(self.cache.clone())
        .with_progress(self.progress.clone()))
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
