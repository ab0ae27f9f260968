//! [`SubsetRetrainer`]: the [`Retrainer`] for any attributable model, trained
//! by a user-supplied [`SubsetTrainer`] (a `|train, subset, seed|` closure).

use std::sync::Arc;

use wellspring_core::{Dataset, Targets};
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, Logits, Loss, SubsetTrainer, Target, per_example_loss_any};
use wellspring_report::{Cache, CacheKey, Progress};

use super::runner::{RunSettings, run_cached};
use super::{
    DEFAULT_PARALLELISM, HARNESS_FORMAT, data_fingerprint, model_err, outputs_from_logits,
    with_overrides,
};
use crate::error::{EvalError, Result};
use crate::retrain::{RetrainSpec, Retrainer, TestOutputs};

/// Rows per forward pass when evaluating a retrained model.
const EVAL_ROWS: usize = 256;

/// Retrains any model through a [`SubsetTrainer`] and evaluates it on the
/// test set: LDS, brittleness, retraining score, pruning and noisy-label
/// metrics for models outside the zoo (the counterpart of
/// [`super::ModelRetrainer`]).
///
/// `retrain(spec, seed)` calls `trainer.train_subset(train, &spec.subset,
/// seed)` (labels overridden first when the spec says so; subset weights are
/// the trainer's to honour) and computes the test outputs from the model's
/// logits: margins, losses and correctness for classes, the training loss for
/// regression, and for a language model's next-token test set the mean token
/// loss (margin = −loss). With a cache, outputs are stored under a key of the
/// data fingerprints, the spec, the seed and [`SubsetTrainer::describe`], so
/// give the trainer a description that changes with everything it depends on.
#[derive(Clone)]
pub struct SubsetRetrainer {
    train: Dataset,
    test: Dataset,
    trainer: Arc<dyn SubsetTrainer>,
    loss: Loss,
    device: Device,
    cache: Option<Cache>,
    parallelism: usize,
    progress: Progress,
    train_fp: String,
    test_fp: String,
    n_classes: Option<usize>,
}

impl std::fmt::Debug for SubsetRetrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubsetRetrainer")
            .field("train", &(self.train.name(), self.train.len()))
            .field("test", &(self.test.name(), self.test.len()))
            .field("trainer", &self.trainer.describe())
            .field("cache", &self.cache)
            .finish()
    }
}

impl SubsetRetrainer {
    /// A harness retraining with `trainer` on subsets of `train` and
    /// evaluating on `test` on `device`; `loss` is the regression loss
    /// reported for regression targets (ignored otherwise). Errors if a set
    /// is empty or the two sets define different tasks.
    pub fn new(
        train: &Dataset,
        test: &Dataset,
        trainer: impl SubsetTrainer + 'static,
        loss: Loss,
        device: &Device,
    ) -> Result<Self> {
        for (what, d) in [("training", train), ("test", test)] {
            if d.is_empty() {
                return Err(EvalError::EmptyTestSet {
                    what: format!("{what} set {}", d.name()),
                });
            }
        }
        let same = match (train.targets(), test.targets()) {
            (Targets::Classes { n_classes: a, .. }, Targets::Classes { n_classes: b, .. }) => {
                a == b
            }
            (
                Targets::Regression { n_targets: a, .. },
                Targets::Regression { n_targets: b, .. },
            ) => a == b,
            (Targets::NextToken { .. }, Targets::NextToken { .. }) => true,
            _ => false,
        };
        if !same {
            return Err(EvalError::invalid_param(
                format!("test set {}", test.name()),
                "its targets",
                format!(
                    "define a different task from the training set {}",
                    train.name()
                ),
            ));
        }
        Ok(Self {
            train_fp: data_fingerprint(train),
            test_fp: data_fingerprint(test),
            n_classes: train.n_classes(),
            train: train.clone(),
            test: test.clone(),
            trainer: Arc::new(trainer),
            loss,
            device: device.clone(),
            cache: None,
            parallelism: DEFAULT_PARALLELISM,
            progress: Progress::new(),
        })
    }

    /// Caches every model's test outputs in `cache` (resume, no retraining).
    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Where progress bars go.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Trains up to `p` models at once (≥ 1).
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

    /// The model of `spec` trained with `seed` (never cached).
    pub fn train_model(&self, spec: &RetrainSpec, seed: u64) -> Result<AnyModel> {
        spec.check(self.train.len(), self.n_classes)?;
        let data = with_overrides(&self.train, spec, self.n_classes)?;
        let data = data.as_ref();
        let context = match &spec.tag {
            Some(t) => format!("spec {t}, seed {seed}"),
            None => format!("spec {:016x}, seed {seed}", spec.fingerprint()),
        };
        self.trainer
            .train_subset(data, &spec.subset, seed)
            .map_err(model_err(context))
    }

    /// Test outputs of a trained model.
    pub fn evaluate(&self, model: &AnyModel) -> Result<TestOutputs> {
        let ctx = || format!("evaluating on {}", self.test.name());
        if !matches!(self.test.targets(), Targets::NextToken { .. }) {
            let logits = wellspring_models::predict_logits(model, &self.test, &self.device)
                .map_err(model_err(ctx()))?;
            return outputs_from_logits(&logits, &self.test, self.loss);
        }
        let plain = self.device.clone().without_autodiff();
        let m = model.valid().fork(&plain);
        let idx: Vec<usize> = (0..self.test.len()).collect();
        let mut loss = Vec::with_capacity(idx.len());
        for chunk in idx.chunks(EVAL_ROWS) {
            let run = || -> wellspring_models::Result<Vec<f32>> {
                let x = m.input_batch(&self.test, chunk, &plain)?;
                let y: Target = m.target_batch(&self.test, chunk, &plain)?;
                let logits: Logits = m.forward(&x)?.logits;
                let l = per_example_loss_any(logits, y, self.loss, self.test.name())?;
                Ok(l.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 losses"))
            };
            loss.extend(run().map_err(model_err(ctx()))?);
        }
        Ok(TestOutputs {
            margin: loss.iter().map(|l| -l).collect(),
            class_margin: loss.iter().map(|l| -l).collect(),
            loss,
            correct: None,
            predicted: None,
            runner_up: None,
            prediction: None,
        })
    }

    /// The cache key of one job.
    pub fn cache_key(&self, spec: &RetrainSpec, seed: u64) -> CacheKey {
        CacheKey::new("subset-retrain-outputs")
            .field("format", &HARNESS_FORMAT)
            .field("version", env!("CARGO_PKG_VERSION"))
            .field("train", &self.train_fp)
            .field("test", &self.test_fp)
            .field("trainer", &self.trainer.describe())
            .field("loss", &self.loss)
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

impl Retrainer for SubsetRetrainer {
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

    fn retrain_many(&self, jobs: &[(RetrainSpec, u64)]) -> Result<Vec<TestOutputs>> {
        for (spec, _) in jobs {
            spec.check(self.train.len(), self.n_classes)?;
        }
        let keys: Vec<CacheKey> = jobs.iter().map(|(s, e)| self.cache_key(s, *e)).collect();
        let label = format!(
            "retraining {} ({})",
            self.trainer.describe(),
            self.train.name()
        );
        let settings = RunSettings {
            cache: self.cache.as_ref(),
            parallelism: self.parallelism,
            progress: &self.progress,
            label: &label,
        };
        run_cached(&keys, &settings, |i| self.compute(&jobs[i].0, jobs[i].1))
    }
}
