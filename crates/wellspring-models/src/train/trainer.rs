//! The step-level [`Trainer`] and the one-call [`train`].

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use wellspring_core::{ChaCha8Rng, CoreError, Dataset, Subset, derive_seed, derive_seed_str};

use super::{Loss, TrainConfig};
use crate::batch::Target;
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::net::Mode;

/// Summary of one epoch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    /// Epochs completed, counting this one (1-based).
    pub epoch: usize,
    /// Optimizer steps taken in this epoch.
    pub steps: usize,
    /// Examples seen in this epoch.
    pub examples: usize,
    /// Mean of the batch objectives, weighted by batch size.
    pub train_loss: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
}

/// A model saved during training, with where and at what rate it was taken
/// (TracInCP weighs each checkpoint by its learning rate, Pruthi et al. 2020, eq. 6).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Epochs completed when it was taken.
    pub epoch: usize,
    /// Optimizer steps taken when it was taken.
    pub step: usize,
    /// Learning rate of the last step before it.
    pub lr: f64,
    /// The model (inference copy).
    pub model: Model,
}

/// Result of [`train`].
#[derive(Clone, Debug)]
pub struct TrainOutput {
    /// The trained model (inference copy, no autodiff).
    pub model: Model,
    /// Checkpoints every `checkpoint_every` epochs (empty if unset).
    pub checkpoints: Vec<Checkpoint>,
    /// One entry per epoch.
    pub history: Vec<EpochStats>,
}

/// Step-level trainer. Data selection calls a selector between
/// [`Trainer::epoch`]s; further training with leave-out corrections calls
/// [`Trainer::step_sum`] with custom per-example weights.
///
/// Determinism: the epoch-`e` shuffle uses `ChaCha8Rng(derive_seed(seed, e))`,
/// dropout masks one stream `ChaCha8Rng(derive_seed_str(seed, "dropout"))`, and
/// parameters come from [`Model::new`]'s seed, so the same inputs give
/// bit-identical weights on the same machine and thread count.
pub struct Trainer {
    model: Model,
    cfg: TrainConfig,
    device: Device,
    optim: ModuleOptimizer,
    dropout_rng: ChaCha8Rng,
    global_step: usize,
    epochs_done: usize,
    steps_per_epoch: Option<usize>,
    last_lr: f64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.cfg)
            .field("global_step", &self.global_step)
            .field("epochs_done", &self.epochs_done)
            .field("steps_per_epoch", &self.steps_per_epoch)
            .finish()
    }
}

impl Trainer {
    /// A trainer for `model` on `device` (autodiff is enabled on it here).
    /// Errors if `cfg` is invalid.
    pub fn new(model: Model, cfg: TrainConfig, device: &Device) -> Result<Trainer> {
        cfg.check()?;
        let device = device.clone().autodiff();
        let model = model.trainable(&device);
        Ok(Trainer {
            model,
            optim: super::optim::build(&cfg),
            dropout_rng: wellspring_core::rng(derive_seed_str(cfg.seed, "dropout")),
            device,
            global_step: 0,
            epochs_done: 0,
            steps_per_epoch: None,
            last_lr: cfg.lr,
            cfg,
        })
    }

    /// Fixes the number of steps per epoch the schedule measures progress in
    /// (otherwise taken from the first [`Trainer::epoch`]'s subset, or from the
    /// dataset size at the first [`Trainer::step`]).
    pub fn with_steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps.max(1));
        self
    }

    /// Steps one epoch over `n` examples takes with this config.
    pub fn steps_for(&self, n: usize) -> usize {
        let b = self.cfg.batch_size;
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The config.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Learning rate the next step will use.
    pub fn lr(&self) -> f64 {
        let spe = self.steps_per_epoch.unwrap_or(1) as f64;
        self.cfg
            .schedule
            .lr_at(self.cfg.lr, self.global_step as f64 / spe, self.cfg.epochs)
    }

    /// Learning rate of the last step taken (the base rate before any step).
    pub fn last_lr(&self) -> f64 {
        self.last_lr
    }

    /// Optimizer steps taken so far.
    pub fn global_step(&self) -> usize {
        self.global_step
    }

    /// Epochs completed through [`Trainer::epoch`].
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The model being trained (parameters on the autodiff device).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// An independent inference copy of the current model.
    pub fn snapshot(&self) -> Model {
        self.model.valid()
    }

    /// The trained model as an inference copy.
    pub fn into_model(self) -> Model {
        self.model.valid()
    }

    /// One optimizer step on rows `batch` of `data`, minimising
    /// `Σ_k w_k L_k / |batch|` (`w_k = 1` without weights). Weights may be
    /// negative (leave-out corrections); see [`Trainer::step_sum`] for an
    /// un-normalised objective. Returns the objective's value before the step.
    pub fn step(
        &mut self,
        data: &Dataset,
        batch: &[usize],
        weights: Option<&[f32]>,
    ) -> Result<f32> {
        let n = batch.len().max(1) as f32;
        let w: Vec<f32> = match weights {
            Some(w) => {
                check_weights(w, batch.len())?;
                w.iter().map(|v| v / n).collect()
            }
            None => vec![1.0 / n; batch.len()],
        };
        self.step_sum(data, batch, &w)
    }

    /// One optimizer step minimising `Σ_k weights[k] · L(batch[k])` with no
    /// normalisation. FiMO's leave-one-out further training (Appendix D.3) is
    /// `weights = [1/B, …, 1/B, -1/n]` with the left-out example appended to the
    /// batch. BatchNorm statistics (in training mode) include every row.
    pub fn step_sum(&mut self, data: &Dataset, batch: &[usize], weights: &[f32]) -> Result<f32> {
        check_weights(weights, batch.len())?;
        self.model.check_dataset(data)?;
        if self.steps_per_epoch.is_none() {
            self.steps_per_epoch = Some(self.steps_for(data.len()).max(1));
        }
        let x = self
            .model
            .input_batch_unchecked(data, batch, &self.device)?;
        let y = self
            .model
            .target_batch_unchecked(data, batch, &self.device)?;
        let out = self
            .model
            .net
            .forward(x, Mode::Train(&mut self.dropout_rng));
        let per_ex = per_example_loss(out.logits, y, self.cfg.loss, data.name())?;
        let w = Tensor::<1>::from_data(
            TensorData::new(weights.to_vec(), [weights.len()]),
            (&self.device, per_ex.dtype()),
        );
        let objective = (per_ex * w).sum();
        let value: f32 = objective.clone().into_scalar::<f32>();
        if !value.is_finite() {
            return Err(ModelError::Training {
                reason: format!(
                    "loss is {value} at step {} (epoch {}); lower the learning rate",
                    self.global_step,
                    self.epochs_done + 1
                ),
            });
        }
        let grads = GradientsParams::from_grads(objective.backward(), &self.model.net);
        let lr = self.lr();
        self.model.net = self.optim.step(lr, self.model.net.clone(), grads);
        self.last_lr = lr;
        self.global_step += 1;
        Ok(value)
    }

    /// One pass over `subset` of `data` (`Subset::all(data.len())` for all of it)
    /// in batches of `batch_size`, shuffled with `derive_seed(seed, epoch)`; a
    /// weighted subset's weights multiply each example's loss.
    pub fn epoch(&mut self, data: &Dataset, subset: &Subset) -> Result<EpochStats> {
        subset.check(data.len())?;
        let n = subset.len();
        let steps = self.steps_for(n);
        if steps == 0 {
            return Err(ModelError::Training {
                reason: format!(
                    "subset of {n} examples of {} gives no full batch of {} with drop_last",
                    data.name(),
                    self.cfg.batch_size
                ),
            });
        }
        if self.steps_per_epoch.is_none() {
            self.steps_per_epoch = Some(steps);
        }
        let mut order: Vec<usize> = (0..n).collect();
        if self.cfg.shuffle {
            let mut rng = wellspring_core::rng(derive_seed(self.cfg.seed, self.epochs_done as u64));
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
        }
        let (mut sum, mut seen, mut taken) = (0.0f64, 0usize, 0usize);
        for chunk in order.chunks(self.cfg.batch_size).take(steps) {
            let idx: Vec<usize> = chunk.iter().map(|&p| subset.indices()[p]).collect();
            let loss = match subset.weights() {
                Some(w) => {
                    let w: Vec<f32> = chunk.iter().map(|&p| w[p]).collect();
                    self.step(data, &idx, Some(&w))?
                }
                None => self.step(data, &idx, None)?,
            };
            sum += loss as f64 * chunk.len() as f64;
            seen += chunk.len();
            taken += 1;
        }
        self.epochs_done += 1;
        Ok(EpochStats {
            epoch: self.epochs_done,
            steps: taken,
            examples: seen,
            train_loss: sum / seen as f64,
            lr: self.last_lr,
        })
    }
}

fn check_weights(w: &[f32], n: usize) -> Result<()> {
    if w.len() != n {
        return Err(CoreError::shape(
            "batch weights",
            format!("one weight per batch index ({n})"),
            format!("{} weights", w.len()),
        )
        .into());
    }
    if let Some(p) = w.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            what: "batch weights".into(),
            position: p,
            value: w[p] as f64,
        }
        .into());
    }
    Ok(())
}

/// Per-example losses `[batch]` on the logits' device.
pub(crate) fn per_example_loss(
    logits: Tensor<2>,
    target: Target,
    loss: Loss,
    dataset: &str,
) -> Result<Tensor<1>> {
    let [b, _] = logits.dims();
    match (loss, target) {
        (Loss::CrossEntropy, Target::Classes(y)) => {
            let logp = burn::tensor::activation::log_softmax(logits, 1);
            Ok(logp.gather(1, y.reshape([b, 1])).reshape([b]).neg())
        }
        (Loss::Mse, Target::Values(y)) => {
            let d = logits - y;
            Ok((d.clone() * d).mean_dim(1).reshape([b]))
        }
        (Loss::CrossEntropy, Target::Values(_)) => Err(ModelError::data(
            dataset,
            "cross-entropy loss needs class labels, dataset has regression targets (use Loss::Mse)",
        )),
        (Loss::Mse, Target::Classes(_)) => Err(ModelError::data(
            dataset,
            "MSE loss needs regression targets, dataset has class labels (use Loss::CrossEntropy)",
        )),
    }
}

/// Trains `model` on `subset` of `data` (all of it if `None`) for `cfg.epochs`
/// epochs, calling `progress` after each epoch and keeping a checkpoint every
/// `cfg.checkpoint_every` epochs.
pub fn train(
    model: Model,
    data: &Dataset,
    subset: Option<&Subset>,
    cfg: &TrainConfig,
    device: &Device,
    mut progress: Option<&mut dyn FnMut(&EpochStats)>,
) -> Result<TrainOutput> {
    model.check_dataset(data)?;
    let mut trainer = Trainer::new(model, cfg.clone(), device)?;
    let mut history = Vec::with_capacity(cfg.epochs);
    let mut checkpoints = Vec::new();
    let all = Subset::all(data.len());
    let subset = subset.unwrap_or(&all);
    for _ in 0..cfg.epochs {
        let stats = trainer.epoch(data, subset)?;
        // A finite last loss does not mean finite weights: the step after it
        // can overflow them, and a NaN model must never reach the caller.
        trainer
            .model()
            .check_finite()
            .map_err(|e| ModelError::Training {
                reason: format!("after epoch {} of {}: {e}", stats.epoch, data.name()),
            })?;
        if let Some(p) = progress.as_mut() {
            p(&stats);
        }
        if let Some(k) = cfg.checkpoint_every
            && stats.epoch % k == 0
        {
            checkpoints.push(Checkpoint {
                epoch: stats.epoch,
                step: trainer.global_step(),
                lr: trainer.last_lr(),
                model: trainer.snapshot(),
            });
        }
        history.push(stats);
    }
    Ok(TrainOutput {
        model: trainer.into_model(),
        checkpoints,
        history,
    })
}
