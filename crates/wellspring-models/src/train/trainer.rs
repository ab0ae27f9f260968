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

/// Version of the files [`Trainer::save_state`] writes.
const STATE_FORMAT: u32 = 1;
/// The file that marks a complete saved state.
const STATE_FILE: &str = "trainer.json";

/// What [`Trainer::save_state`] records besides weights and optimizer state.
#[derive(serde::Serialize, serde::Deserialize)]
struct TrainerState {
    format: u32,
    epochs_done: usize,
    global_step: usize,
    steps_per_epoch: Option<usize>,
    last_lr: f64,
    /// The dropout stream's word position (a u128, as text for JSON).
    dropout_word_pos: String,
    config: TrainConfig,
    /// The caller's record ([`train_resumable`]'s run log).
    #[serde(default)]
    extra: serde_json::Value,
}

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

    /// Saves everything the next epoch depends on into `dir` (created if
    /// needed): the weights, the optimizer state, the dropout stream's
    /// position and the step counters, as files `model-e<E>.bpk`,
    /// `optim-e<E>.bpk` and, written last and atomically, `trainer.json`
    /// (`E` = epochs done), so a kill at any point leaves the previous
    /// complete state. Optimizer state is keyed by parameter id: build the
    /// trainer from [`Model::with_path_param_ids`] so [`Trainer::resume`]
    /// (a new process, new ids otherwise) finds it.
    pub fn save_state(&self, dir: &std::path::Path) -> Result<()> {
        self.save_state_with(dir, serde_json::Value::Null)
    }

    /// [`Trainer::save_state`] with a caller's record saved in the same
    /// atomic write (so it always matches the epoch of the state).
    pub(crate) fn save_state_with(
        &self,
        dir: &std::path::Path,
        extra: serde_json::Value,
    ) -> Result<()> {
        let file = |e: std::io::Error| ModelError::file(dir, e.to_string());
        std::fs::create_dir_all(dir).map_err(file)?;
        let e = self.epochs_done;
        let model = dir.join(format!("model-e{e}.bpk"));
        let optim = dir.join(format!("optim-e{e}.bpk"));
        self.model.valid().save(&model)?;
        let tmp = dir.join(format!(".optim-e{e}.tmp"));
        self.optim.to_record().save(&tmp).map_err(|err| {
            ModelError::file(&optim, format!("cannot save optimizer state: {err}"))
        })?;
        std::fs::rename(&tmp, &optim).map_err(file)?;
        let state = TrainerState {
            format: STATE_FORMAT,
            epochs_done: e,
            global_step: self.global_step,
            steps_per_epoch: self.steps_per_epoch,
            last_lr: self.last_lr,
            dropout_word_pos: self.dropout_rng.get_word_pos().to_string(),
            config: self.cfg.clone(),
            extra,
        };
        let json = serde_json::to_vec_pretty(&state)
            .map_err(|err| ModelError::file(dir, format!("cannot encode trainer state: {err}")))?;
        wellspring_core::npy::atomic_write(&dir.join(STATE_FILE), &json)?;
        // Older epochs' files are no longer referenced.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let stale = ["model-e", "optim-e"].iter().any(|p| {
                    name.strip_prefix(p)
                        .and_then(|r| r.strip_suffix(".bpk"))
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|n| n != e)
                });
                if stale {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// The trainer saved in `dir` by [`Trainer::save_state`], on `device`;
    /// `Ok(None)` when `dir` holds no complete state. Errors if the state was
    /// saved with another training configuration, or its files are damaged.
    pub fn resume(
        dir: &std::path::Path,
        cfg: &TrainConfig,
        device: &Device,
    ) -> Result<Option<Trainer>> {
        Ok(Self::resume_with(dir, cfg, device)?.map(|(t, _)| t))
    }

    /// [`Trainer::resume`], also returning the record of [`Trainer::save_state_with`].
    pub(crate) fn resume_with(
        dir: &std::path::Path,
        cfg: &TrainConfig,
        device: &Device,
    ) -> Result<Option<(Trainer, serde_json::Value)>> {
        let path = dir.join(STATE_FILE);
        let Ok(text) = std::fs::read(&path) else {
            return Ok(None);
        };
        let state: TrainerState = serde_json::from_slice(&text)
            .map_err(|e| ModelError::file(&path, format!("unreadable trainer state: {e}")))?;
        if state.format != STATE_FORMAT {
            return Err(ModelError::file(
                &path,
                format!(
                    "trainer state format {}, expected {STATE_FORMAT}",
                    state.format
                ),
            ));
        }
        if &state.config != cfg {
            return Err(ModelError::file(
                &path,
                "saved with another training configuration; delete it to start afresh",
            ));
        }
        let e = state.epochs_done;
        let model =
            Model::load(dir.join(format!("model-e{e}.bpk")), device)?.with_path_param_ids()?;
        let optim_path = dir.join(format!("optim-e{e}.bpk"));
        let record = burn::optim::OptimizerRecord::load(&optim_path).map_err(|err| {
            ModelError::file(&optim_path, format!("cannot load optimizer state: {err}"))
        })?;
        let word_pos: u128 = state.dropout_word_pos.parse().map_err(|_| {
            ModelError::file(
                &path,
                format!("bad dropout position {:?}", state.dropout_word_pos),
            )
        })?;
        let mut t = Trainer::new(model, cfg.clone(), device)?;
        t.optim = super::optim::build(cfg).load_record(record);
        t.dropout_rng.set_word_pos(word_pos);
        t.global_step = state.global_step;
        t.epochs_done = e;
        t.steps_per_epoch = state.steps_per_epoch;
        t.last_lr = state.last_lr;
        Ok(Some((t, state.extra)))
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
        (_, Target::Tokens { .. }) => Err(ModelError::data(
            dataset,
            "next-token targets need per-token logits [batch, T, vocab] (a language model)",
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

/// What [`train_resumable`] keeps beside the trainer state: which run it
/// belongs to, the epochs' statistics and the checkpoints taken so far.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunLog {
    key: String,
    history: Vec<EpochStats>,
    /// `(epoch, step, lr)` of each checkpoint, saved as `ckpt-e<epoch>.bpk`.
    checkpoints: Vec<(usize, usize, f64)>,
}

/// Content key of a run: data, subset, configuration and initial weights.
fn run_key(model: &Model, data: &Dataset, subset: &Subset, cfg: &TrainConfig) -> String {
    let mut h = wellspring_core::ContentHasher::new("train-run");
    h.field("data")
        .str(&wellspring_core::dataset_fingerprint(data));
    h.field("subset").usizes(subset.indices());
    h.field("weights").present(subset.weights().is_some());
    if let Some(w) = subset.weights() {
        h.f32s(w);
    }
    h.field("config")
        .str(&serde_json::to_string(cfg).unwrap_or_default());
    h.field("model").str(&format!("{:?}", model.config));
    h.field("init").f32s(&model.params_flat());
    h.hex()
}

/// [`train`], resumable: after every epoch the trainer's state (weights,
/// optimizer state, dropout stream, counters), the epoch statistics and any
/// checkpoint go to `state_dir`; a call that finds a complete state there
/// for the same run (data, subset, configuration and initial weights)
/// continues from it, so a killed run redoes at most the epoch it was in.
/// The result is bit-identical to [`train`]'s. `stop_after = Some(k)` stops
/// after `k` epochs of this call and returns `Ok(None)` (a long run split
/// over sessions; tests use it to simulate a kill). `state_dir` is removed
/// once training completes.
#[allow(clippy::too_many_arguments)]
pub fn train_resumable(
    model: Model,
    data: &Dataset,
    subset: Option<&Subset>,
    cfg: &TrainConfig,
    device: &Device,
    mut progress: Option<&mut dyn FnMut(&EpochStats)>,
    state_dir: &std::path::Path,
    stop_after: Option<usize>,
) -> Result<Option<TrainOutput>> {
    model.check_dataset(data)?;
    let all = Subset::all(data.len());
    let subset = subset.unwrap_or(&all);
    let key = run_key(&model, data, subset, cfg);
    let resumed = match Trainer::resume_with(state_dir, cfg, device) {
        Ok(Some((t, extra))) => serde_json::from_value::<RunLog>(extra)
            .ok()
            .filter(|l| l.key == key && l.history.len() == t.epochs_done())
            .map(|l| (t, l)),
        _ => None,
    };
    let (mut trainer, mut log) = match resumed {
        Some(x) => x,
        None => {
            // Nothing usable: start afresh (stale files of another run go).
            let _ = std::fs::remove_dir_all(state_dir);
            let t = Trainer::new(model.with_path_param_ids()?, cfg.clone(), device)?;
            let log = RunLog {
                key,
                history: Vec::new(),
                checkpoints: Vec::new(),
            };
            (t, log)
        }
    };
    let mut this_call = 0;
    while trainer.epochs_done() < cfg.epochs {
        if stop_after.is_some_and(|k| this_call >= k) {
            return Ok(None);
        }
        let stats = trainer.epoch(data, subset)?;
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
            trainer
                .snapshot()
                .save(state_dir.join(format!("ckpt-e{}.bpk", stats.epoch)))?;
            log.checkpoints
                .push((stats.epoch, trainer.global_step(), trainer.last_lr()));
        }
        log.history.push(stats);
        let extra = serde_json::to_value(&log)
            .map_err(|e| ModelError::file(state_dir, format!("cannot encode the run log: {e}")))?;
        trainer.save_state_with(state_dir, extra)?;
        this_call += 1;
    }
    let mut checkpoints = Vec::with_capacity(log.checkpoints.len());
    for &(epoch, step, lr) in &log.checkpoints {
        let model = Model::load(state_dir.join(format!("ckpt-e{epoch}.bpk")), device)?;
        checkpoints.push(Checkpoint {
            epoch,
            step,
            lr,
            model,
        });
    }
    let out = TrainOutput {
        model: trainer.into_model(),
        checkpoints,
        history: log.history,
    };
    let _ = std::fs::remove_dir_all(state_dir);
    Ok(Some(out))
}
