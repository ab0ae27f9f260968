//! [`ModelRetrainer`]: the [`Retrainer`] that trains real burn models.

use wellspring_core::{Dataset, derive_seed_str};
use wellspring_models::burn_types::Device;
use wellspring_models::{Model, ModelConfig, TrainConfig, predict_logits, train};
use wellspring_report::{Cache, CacheKey, Progress};

use super::runner::{RunSettings, run_cached};
use super::{
    DEFAULT_PARALLELISM, HARNESS_FORMAT, check_fits, check_task, data_fingerprint, model_err,
    outputs_from_logits, with_overrides,
};
use crate::error::{EvalError, Result};
use crate::retrain::{RetrainSpec, Retrainer, TestOutputs};

/// Trains a fresh burn model per [`RetrainSpec`] and seed and evaluates it on
/// the test set: the retraining harness behind LDS, leave-one-out,
/// brittleness, retraining score and pruning.
///
/// `retrain(spec, seed)` initialises [`Model::new`] with
/// `derive_seed_str(seed, "init")`, trains with [`wellspring_models::train`]
/// on the spec's subset (weights honoured, label overrides applied) with the
/// training seed `derive_seed_str(seed, "train")` (shuffles, dropout), and
/// returns the test [`TestOutputs`] computed from the logits. With a cache,
/// the outputs are stored under a SHA-256 key of the data fingerprints, the
/// spec fingerprint, both configs, the seed, the device and the crate version.
/// Same spec and seed: bit-identical outputs, whatever the parallelism.
#[derive(Clone)]
pub struct ModelRetrainer {
    train: Dataset,
    test: Dataset,
    model: ModelConfig,
    train_config: TrainConfig,
    device: Device,
    cache: Option<Cache>,
    parallelism: usize,
    progress: Progress,
    train_fp: String,
    test_fp: String,
    n_classes: Option<usize>,
}

impl std::fmt::Debug for ModelRetrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRetrainer")
            .field("train", &(self.train.name(), self.train.len()))
            .field("test", &(self.test.name(), self.test.len()))
            .field("model", &self.model)
            .field("train_config", &self.train_config)
            .field("cache", &self.cache)
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

impl ModelRetrainer {
    /// A harness training `model` with `train_config` on subsets of `train`
    /// and evaluating on `test`, on `device`. Errors if a config is invalid,
    /// the model does not fit the data, a set is empty, the two sets define
    /// different tasks, or the loss does not suit the targets. No cache, one
    /// model at a time, progress shown on a terminal.
    pub fn new(
        train: &Dataset,
        test: &Dataset,
        model: ModelConfig,
        train_config: TrainConfig,
        device: &Device,
    ) -> Result<Self> {
        train_config
            .check()
            .map_err(model_err("ModelRetrainer train config"))?;
        let n_classes = check_task("ModelRetrainer", train, test, train_config.loss)?;
        check_fits(&model, &[train, test])?;
        Ok(Self {
            train_fp: data_fingerprint(train),
            test_fp: data_fingerprint(test),
            train: train.clone(),
            test: test.clone(),
            model,
            train_config,
            device: device.clone(),
            cache: None,
            parallelism: DEFAULT_PARALLELISM,
            progress: Progress::new(),
            n_classes,
        })
    }

    /// Caches every model's test outputs in `cache` (resume, no retraining).
    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Trains up to `p` models at once in [`Retrainer::retrain_many`] (≥ 1;
    /// default [`DEFAULT_PARALLELISM`]). Each model in flight holds its own
    /// parameters, optimizer state and activations.
    pub fn with_parallelism(mut self, p: usize) -> Result<Self> {
        if p == 0 {
            return Err(EvalError::invalid_param(
                "parallelism",
                0,
                "must be ≥ 1 model at a time",
            ));
        }
        self.parallelism = p;
        Ok(self)
    }

    /// Where progress bars go (e.g. a shared handle, or `Progress::hidden()`).
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The model configuration.
    pub fn model_config(&self) -> &ModelConfig {
        &self.model
    }

    /// The training configuration (its `seed` is replaced per job).
    pub fn train_config(&self) -> &TrainConfig {
        &self.train_config
    }

    /// The training set.
    pub fn train_set(&self) -> &Dataset {
        &self.train
    }

    /// The test set.
    pub fn test_set(&self) -> &Dataset {
        &self.test
    }

    /// The device models train on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Models trained at once.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Trains the model of `spec` with `seed` (what [`Retrainer::retrain`]
    /// evaluates) and returns it; never cached.
    pub fn train_model(&self, spec: &RetrainSpec, seed: u64) -> Result<Model> {
        spec.check(self.train.len(), self.n_classes)?;
        let data = with_overrides(&self.train, spec, self.n_classes)?;
        let data = data.as_ref();
        let context = || match &spec.tag {
            Some(t) => format!("spec {t}, seed {seed}"),
            None => format!("spec {:016x}, seed {seed}", spec.fingerprint()),
        };
        let init = Model::new(
            self.model.clone(),
            derive_seed_str(seed, "init"),
            &self.device,
        )
        .map_err(model_err(context()))?;
        let mut cfg = self.train_config.clone();
        cfg.seed = derive_seed_str(seed, "train");
        let out = train(init, data, Some(&spec.subset), &cfg, &self.device, None)
            .map_err(model_err(context()))?;
        Ok(out.model)
    }

    /// Test outputs of a trained model.
    pub fn evaluate(&self, model: &Model) -> Result<TestOutputs> {
        let logits = predict_logits(model, &self.test, &self.device)
            .map_err(model_err(format!("evaluating on {}", self.test.name())))?;
        outputs_from_logits(&logits, &self.test, self.train_config.loss)
    }

    /// The cache key of one job: everything that determines its outputs.
    pub fn cache_key(&self, spec: &RetrainSpec, seed: u64) -> CacheKey {
        let mut cfg = self.train_config.clone();
        cfg.seed = 0; // replaced per job by a seed derived from `seed`
        CacheKey::new("retrain-outputs")
            .field("format", &HARNESS_FORMAT)
            .field("version", env!("CARGO_PKG_VERSION"))
            .field("train", &self.train_fp)
            .field("test", &self.test_fp)
            .field("model", &self.model)
            .field("train_config", &cfg)
            .field("spec", &format!("{:016x}", spec.fingerprint()))
            .field("spec_len", &spec.subset.len())
            .field("seed", &seed)
            .field("device", &format!("{:?}", self.device))
    }

    fn compute(&self, spec: &RetrainSpec, seed: u64) -> Result<TestOutputs> {
        let model = self.train_model(spec, seed)?;
        self.evaluate(&model)
    }
}

impl Retrainer for ModelRetrainer {
    fn n_train(&self) -> usize {
        self.train.len()
    }

    fn n_test(&self) -> usize {
        self.test.len()
    }

    fn test_labels(&self) -> Option<&[usize]> {
        self.test.labels()
    }

    fn train_labels(&self) -> Option<&[usize]> {
        self.train.labels()
    }

    fn n_classes(&self) -> Option<usize> {
        self.n_classes
    }

    fn retrain(&self, spec: &RetrainSpec, seed: u64) -> Result<TestOutputs> {
        spec.check(self.train.len(), self.n_classes)?;
        match &self.cache {
            Some(cache) => {
                cache.get_or_compute_json(&self.cache_key(spec, seed), || self.compute(spec, seed))
            }
            None => self.compute(spec, seed),
        }
    }

    /// Trains the jobs `parallelism` at a time, skipping those in the cache and
    /// running duplicates once, with a progress bar; outputs in job order.
    fn retrain_many(&self, jobs: &[(RetrainSpec, u64)]) -> Result<Vec<TestOutputs>> {
        for (spec, _) in jobs {
            spec.check(self.train.len(), self.n_classes)?;
        }
        let keys: Vec<CacheKey> = jobs.iter().map(|(s, e)| self.cache_key(s, *e)).collect();
        let label = format!("retraining {} ({})", self.model.name(), self.train.name());
        let settings = RunSettings {
            cache: self.cache.as_ref(),
            parallelism: self.parallelism,
            progress: &self.progress,
            label: &label,
        };
        run_cached(&keys, &settings, |i| self.compute(&jobs[i].0, jobs[i].1))
    }
}
