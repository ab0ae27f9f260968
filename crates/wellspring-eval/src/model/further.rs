//! [`ModelFurtherTrainer`]: FiMO further training of a burn model.

use rand::RngExt;
use wellspring_core::{Dataset, derive_seed, rng};
use wellspring_models::burn_types::Device;
use wellspring_models::{Model, TrainConfig, Trainer, evaluate};
use wellspring_report::{Cache, CacheKey, Progress};

use super::runner::{RunSettings, run_cached};
use super::{
    DEFAULT_PARALLELISM, HARNESS_FORMAT, check_fits, check_task, data_fingerprint, model_err,
    model_fingerprint,
};
use crate::error::{EvalError, Result};
use crate::fimo::FurtherTrainer;

/// Further training from a final model with the real trainer (FiMO §3,
/// appendix D.3; Bae et al., further-training gold standard).
///
/// A run starts from the given model and trains with the optimizer, learning
/// rate, weight decay, loss and batch size of `config` (FiMO: the original
/// recipe with a 10× smaller learning rate). Epoch `e` visits the training
/// set in the order of `ChaCha8Rng(derive_seed(seed, e))`, so runs with the
/// same seed see the same batches. Leaving out `z_i` appends it to every batch
/// with weight `−1/n` next to the batch's `1/B` weights
/// ([`Trainer::step_sum`]; Schioppa et al. 2023), which over an epoch of
/// `⌈n/B⌉` batches approximately cancels its one regular appearance. The
/// evaluation after each requested epoch is the per-test-point test loss
/// (0 = the start model). With a cache, each (left-out point, seed, epochs)
/// run is stored under a key of the start model's parameters, the data, the
/// config and the crate version; a killed run resumes.
///
/// Dropout masks come from the trainer's stream and differ between the full
/// run and a leave-out run once the extra row is drawn; the FiMO models
/// ([`wellspring_models::ModelConfig::FimoMlp`], LogReg) have no dropout.
#[derive(Clone)]
pub struct ModelFurtherTrainer {
    train: Dataset,
    test: Dataset,
    start: Model,
    config: TrainConfig,
    device: Device,
    cache: Option<Cache>,
    parallelism: usize,
    progress: Progress,
    key_base: CacheKey,
}

impl std::fmt::Debug for ModelFurtherTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFurtherTrainer")
            .field("train", &(self.train.name(), self.train.len()))
            .field("test", &(self.test.name(), self.test.len()))
            .field("model", &self.start.config)
            .field("config", &self.config)
            .field("cache", &self.cache)
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

impl ModelFurtherTrainer {
    /// Further training of `start` on `train`, evaluated on `test`. `config`
    /// supplies optimizer, learning rate (and schedule over `config.epochs`),
    /// weight decay, loss, batch size and `drop_last`; its `seed` and
    /// `shuffle` are ignored (every run's seed fixes its order). Errors if the
    /// config is invalid, the model does not fit the data, a set is empty, or
    /// the loss does not suit the targets.
    pub fn new(
        train: &Dataset,
        test: &Dataset,
        start: Model,
        config: TrainConfig,
        device: &Device,
    ) -> Result<Self> {
        config
            .check()
            .map_err(model_err("ModelFurtherTrainer config"))?;
        check_task("ModelFurtherTrainer", train, test, config.loss)?;
        check_fits(&start.config, &[train, test])?;
        if config.drop_last && train.len() < config.batch_size {
            return Err(EvalError::invalid_param(
                "TrainConfig.batch_size",
                config.batch_size,
                format!(
                    "with drop_last, larger than the {} training points: no batch would run",
                    train.len()
                ),
            ));
        }
        let start = start.valid();
        let mut cfg = config.clone();
        cfg.seed = 0;
        let key_base = CacheKey::new("further-training")
            .field("format", &HARNESS_FORMAT)
            .field("version", env!("CARGO_PKG_VERSION"))
            .field("train", &data_fingerprint(train))
            .field("test", &data_fingerprint(test))
            .field("start", &model_fingerprint(&start))
            .field("config", &cfg)
            .field("device", &format!("{device:?}"));
        Ok(Self {
            train: train.clone(),
            test: test.clone(),
            start,
            config,
            device: device.clone(),
            cache: None,
            parallelism: DEFAULT_PARALLELISM,
            progress: Progress::new(),
            key_base,
        })
    }

    /// Caches every run's test losses in `cache`.
    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Runs up to `p` further trainings at once (≥ 1).
    pub fn with_parallelism(mut self, p: usize) -> Result<Self> {
        if p == 0 {
            return Err(EvalError::invalid_param(
                "parallelism",
                0,
                "must be ≥ 1 run at a time",
            ));
        }
        self.parallelism = p;
        Ok(self)
    }

    /// Where progress bars go.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The start (final) model.
    pub fn start(&self) -> &Model {
        &self.start
    }

    fn key(&self, leave_out: Option<usize>, seed: u64, epochs: &[usize]) -> CacheKey {
        self.key_base
            .clone()
            .field("leave_out", &leave_out)
            .field("seed", &seed)
            .field("epochs", epochs)
    }

    fn check_run(&self, leave_out: Option<usize>, epochs: &[usize]) -> Result<()> {
        let n = self.train.len();
        if let Some(i) = leave_out
            && i >= n
        {
            return Err(EvalError::IndexOutOfRange {
                what: "left-out training point".into(),
                index: i,
                len: n,
            });
        }
        if epochs.is_empty() || epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(EvalError::invalid_param(
                "epochs",
                format!("{epochs:?}"),
                "must be non-empty and strictly increasing",
            ));
        }
        Ok(())
    }

    fn test_loss(&self, model: &Model) -> Result<Vec<f32>> {
        Ok(evaluate(model, &self.test, &self.device)
            .map_err(model_err(format!("evaluating on {}", self.test.name())))?
            .loss)
    }

    fn run(&self, leave_out: Option<usize>, seed: u64, epochs: &[usize]) -> Result<Vec<Vec<f32>>> {
        let context = || format!("further training, leave out {leave_out:?}, seed {seed}");
        let n = self.train.len();
        let b = self.config.batch_size;
        let mut cfg = self.config.clone();
        cfg.seed = seed;
        let mut trainer =
            Trainer::new(self.start.clone(), cfg, &self.device).map_err(model_err(context()))?;
        let steps = trainer.steps_for(n);
        trainer = trainer.with_steps_per_epoch(steps);
        let last = *epochs.last().expect("checked non-empty");
        let mut out = Vec::with_capacity(epochs.len());
        let mut next = 0;
        let mut order: Vec<usize> = (0..n).collect();
        let mut batch = Vec::with_capacity(b + 1);
        let mut weights = Vec::with_capacity(b + 1);
        for epoch in 0..=last {
            if epoch > 0 {
                // a fresh permutation per epoch that depends only on (seed, epoch)
                order.iter_mut().enumerate().for_each(|(k, v)| *v = k);
                let mut r = rng(derive_seed(seed, epoch as u64));
                for k in (1..n).rev() {
                    order.swap(k, r.random_range(0..=k));
                }
                for chunk in order.chunks(b).take(steps) {
                    batch.clear();
                    batch.extend_from_slice(chunk);
                    weights.clear();
                    weights.resize(chunk.len(), 1.0 / chunk.len() as f32);
                    if let Some(i) = leave_out {
                        batch.push(i);
                        weights.push(-1.0 / n as f32);
                    }
                    trainer
                        .step_sum(&self.train, &batch, &weights)
                        .map_err(model_err(context()))?;
                }
            }
            if next < epochs.len() && epochs[next] == epoch {
                out.push(self.test_loss(&trainer.snapshot())?);
                next += 1;
            }
        }
        Ok(out)
    }
}

impl FurtherTrainer for ModelFurtherTrainer {
    fn n_train(&self) -> usize {
        self.train.len()
    }

    fn n_test(&self) -> usize {
        self.test.len()
    }

    fn further_train(
        &self,
        leave_out: Option<usize>,
        seed: u64,
        epochs: &[usize],
    ) -> Result<Vec<Vec<f32>>> {
        self.check_run(leave_out, epochs)?;
        match &self.cache {
            Some(c) => c.get_or_compute_json(&self.key(leave_out, seed, epochs), || {
                self.run(leave_out, seed, epochs)
            }),
            None => self.run(leave_out, seed, epochs),
        }
    }

    /// Runs `parallelism` at a time, skipping cached runs, with a progress bar.
    fn further_train_many(
        &self,
        jobs: &[(Option<usize>, u64)],
        epochs: &[usize],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        for &(l, _) in jobs {
            self.check_run(l, epochs)?;
        }
        let keys: Vec<CacheKey> = jobs.iter().map(|&(l, s)| self.key(l, s, epochs)).collect();
        let label = format!("further training {}", self.start.config.name());
        let settings = RunSettings {
            cache: self.cache.as_ref(),
            parallelism: self.parallelism,
            progress: &self.progress,
            label: &label,
        };
        run_cached(&keys, &settings, |k| self.run(jobs[k].0, jobs[k].1, epochs))
    }
}
