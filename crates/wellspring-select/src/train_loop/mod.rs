//! The model-backed training loop (cargo feature `burn`): trains a
//! `wellspring_models::Model` on the weighted subsets a [`Selector`] picks,
//! computing exactly what [`Selector::needs`] asks for, and times selection
//! separately from training.
//!
//! - [`train_with_selection`]: epoch-based selectors (select at the start of
//!   every `e`-th epoch, SVE Algorithm 2 / CORDS) and step-based ones
//!   (select before every `s`-th step);
//! - [`train_with_crest`]: CREST proper, driven step by step through
//!   [`crate::CrestDriver`] with the last layer's quadratic model;
//! - [`train_truncated_sgd`]: the "SGD" column of SVE Table 4 (full-data
//!   mini-batch SGD stopped after a fraction of its steps);
//! - [`relative_error`]: SVE Table 4's metric.
//!
//! Every run with `ρ·n` points per epoch takes `epochs · ⌈ρn/B⌉` optimiser
//! steps, with the learning-rate schedule measured in those reduced epochs.

mod crest;
mod head;
mod inputs;
mod sgd;

use std::time::{Duration, Instant};

use wellspring_core::{CoreError, Dataset, Subset, derive_seed, derive_seed_str, rng};
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, EpochStats, Model, ModelError, TrainConfig, Trainer, evaluate};

pub use crest::{CrestLoop, CrestStats, train_with_crest};
pub use head::HessianDiag;
pub use sgd::train_truncated_sgd;

use crate::error::SelectError;
use crate::schedule::Every;
use crate::selector::{Budget, SelectionInfo, Selector};
use crate::state::{TrainingState, ValidationState};
use inputs::{Want, compute};

/// Errors of the training loop.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// A selector or its inputs rejected something.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// Building, training or evaluating the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A core type rejected its input.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A selector needs a validation set and none was given.
    #[error("{selector} needs a validation set (pass `valid: Some(..)`)")]
    NoValidation {
        /// The selector's name.
        selector: &'static str,
    },
    /// The model or data cannot be used by the loop.
    #[error("unsupported: {reason}")]
    Unsupported {
        /// Why.
        reason: String,
    },
}

/// One selection round.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundRecord {
    /// Epoch (0-based) at whose start, or during which, the round ran.
    pub epoch: usize,
    /// Optimiser step before which it ran.
    pub step: usize,
    /// Wall time of computing the selector's inputs (forward passes, proxies).
    pub input_time: Duration,
    /// Wall time of the selection itself (`SelectionInfo::wall_time`).
    pub select_time: Duration,
    /// The selector's bookkeeping.
    pub info: SelectionInfo,
}

impl RoundRecord {
    /// Inputs plus selection: the round's whole overhead.
    pub fn total_time(&self) -> Duration {
        self.input_time + self.select_time
    }
}

/// One epoch (for step-driven runs: one block of `⌈ρn/B⌉` steps).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// The trainer's statistics (1-based epoch, steps, examples, mean loss, lr).
    pub stats: EpochStats,
    /// True if this epoch trained on the full data (warm start, CREST warm-up).
    pub full_data: bool,
    /// Selection rounds that ran during or right before this epoch.
    pub rounds: usize,
    /// Selection overhead in this epoch (inputs, selection, CREST fits and checks).
    pub selection_time: Duration,
    /// Training time of this epoch.
    pub train_time: Duration,
}

/// What [`train_with_selection`] (and the other loops) return.
#[derive(Clone, Debug)]
pub struct SelectionRun {
    /// The trained model (inference copy).
    pub model: Model,
    /// One record per epoch.
    pub history: Vec<EpochRecord>,
    /// One record per selection round.
    pub rounds: Vec<RoundRecord>,
    /// Total selection overhead: inputs + selections (+ CREST fits and checks).
    pub selection_time: Duration,
    /// Total time in optimiser steps.
    pub train_time: Duration,
    /// Wall time of the whole call, evaluation excluded.
    pub total_time: Duration,
    /// Accuracy on the test set, if one was given.
    pub test_accuracy: Option<f64>,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Points per epoch (the resolved budget).
    pub budget: usize,
    /// CREST's check statistics, for [`train_with_crest`].
    pub crest: Option<CrestStats>,
}

/// Relative error of a subset run against full-data training, in percent:
/// `100 · (acc_full − acc) / acc_full` (SVE Table 4 / CREST Table 1; e.g.
/// SVE's CIFAR-100 RandE `70.3%` vs full `74.5%` gives `5.6`).
pub fn relative_error(full_accuracy: f64, accuracy: f64) -> f64 {
    100.0 * (full_accuracy - accuracy) / full_accuracy
}

/// Per-round selection seed: `derive_seed(derive_seed_str(seed, "selection"), round)`.
fn round_seed(seed: u64, round: usize) -> u64 {
    derive_seed(derive_seed_str(seed, "selection"), round as u64)
}

/// Runs one selection with the current model: computes the selector's
/// needs, calls it and returns the subset and the round's record.
#[allow(clippy::too_many_arguments)]
fn select_round(
    model: &Model,
    train: &Dataset,
    valid: Option<&Dataset>,
    selector: &dyn Selector,
    budget: Budget,
    device: &Device,
    seed: u64,
    at: (usize, usize),
) -> Result<(Subset, RoundRecord), LoopError> {
    let (sel, input_time) =
        select_with_model(model, train, valid, selector, budget, device, seed, at)?;
    let record = RoundRecord {
        epoch: at.0,
        step: at.1,
        input_time,
        select_time: sel.info.wall_time,
        info: sel.info,
    };
    Ok((sel.subset, record))
}

/// One selection round for any attributable classifier (the zoo's `Model`
/// or a user model in an [`AnyModel`]): computes what `selector.needs()`
/// asks for — probabilities, losses and last-layer gradient proxies
/// (softmax − one-hot, ⊗ penultimate features for weight proxies) by forward
/// passes of `model` over `train`, and the validation quantities over
/// `valid` — then selects `budget` points with `seed` at `(epoch, step)`.
/// Returns the selection and the time spent computing its inputs. Weight
/// proxies need the model's penultimate features and a linear head (the
/// layer named `head`, or the last tracked layer).
#[allow(clippy::too_many_arguments)]
pub fn select_with_model(
    model: impl Into<AnyModel>,
    train: &Dataset,
    valid: Option<&Dataset>,
    selector: &dyn Selector,
    budget: Budget,
    device: &Device,
    seed: u64,
    at: (usize, usize),
) -> Result<(crate::Selection, std::time::Duration), LoopError> {
    let model: AnyModel = model.into();
    let labels = train.labels_checked()?;
    let needs = selector.needs();
    let clock = Instant::now();
    let tr = compute(&model, train, Want::train(&needs), device)?;
    let c = train.n_classes().unwrap_or(0);
    let vwant = Want::validation(&needs);
    let (vd, vo) = if vwant.any() {
        let v = valid.ok_or(LoopError::NoValidation {
            selector: selector.name(),
        })?;
        (Some(v), compute(&model, v, vwant, device)?)
    } else {
        (None, Default::default())
    };
    let input_time = clock.elapsed();
    let mut state = TrainingState::new(labels, c)?.at(at.0, at.1);
    if let Some(p) = &tr.probs {
        state = state.with_probs(p)?;
    }
    if let Some(l) = &tr.losses {
        state = state.with_losses(l)?;
    }
    if let Some(g) = &tr.proxies {
        state = state.with_proxies(g)?;
    }
    if let Some(v) = vd {
        let mut vs = ValidationState::new(v.labels_checked()?);
        if let Some(p) = &vo.probs {
            vs = vs.with_probs(p);
        }
        if let Some((f, p)) = &vo.features {
            vs = vs.with_features(f, *p);
        }
        if let Some(g) = &vo.proxies {
            vs = vs.with_proxies(g);
        }
        state = state.with_validation(vs)?;
    }
    Ok((selector.select(&state, budget, seed)?, input_time))
}

/// Trains `model` with `selector` choosing a weighted subset of `train`
/// (`budget` points) on its schedule, for `train_cfg.epochs` epochs of the
/// subset (`⌈budget/B⌉` steps each; the learning-rate schedule counts those).
///
/// Epoch schedules select at the start of every `e`-th epoch after the
/// warm start (full-data epochs) and train one [`Trainer::epoch`] on the
/// weighted subset in between (SVE Algorithm 2; CORDS' `select_every`).
/// Step schedules select before every `s`-th step and draw mini-batches from
/// the current subset, reshuffled every pass. Subset weights are rescaled
/// to mean 1 (their ratios kept) before training. `valid` feeds selectors that
/// need validation quantities (GLISTER, GradMatch-val); `test`, if given, is
/// evaluated at the end. Round `r` selects with seed
/// `derive_seed(derive_seed_str(seed, "selection"), r)`; shuffles and dropout
/// use `train_cfg.seed`. `progress` is called after every epoch.
#[allow(clippy::too_many_arguments)]
pub fn train_with_selection(
    model: Model,
    train: &Dataset,
    valid: Option<&Dataset>,
    test: Option<&Dataset>,
    selector: &dyn Selector,
    budget: Budget,
    train_cfg: &TrainConfig,
    device: &Device,
    seed: u64,
    mut progress: Option<&mut dyn FnMut(&EpochRecord)>,
) -> Result<SelectionRun, LoopError> {
    let total = Instant::now();
    model.check_dataset(train)?;
    let n = train.len();
    train.labels_checked()?;
    let k = budget.resolve(n)?;
    let schedule = selector.schedule();
    let mut trainer = Trainer::new(model, train_cfg.clone(), device)?;
    let spe = trainer.steps_for(k).max(1);
    trainer = trainer.with_steps_per_epoch(spe);
    let mut run = SelectionRun {
        model: trainer.snapshot(),
        history: Vec::new(),
        rounds: Vec::new(),
        selection_time: Duration::ZERO,
        train_time: Duration::ZERO,
        total_time: Duration::ZERO,
        test_accuracy: None,
        steps: 0,
        budget: k,
        crest: None,
    };
    let all = Subset::all(n);
    let mut current: Option<Subset> = None;
    // Step schedules: the current subset's shuffled order and position.
    let mut queue: Vec<usize> = Vec::new();
    let mut cursor = 0usize;
    let mut passes = 0u64;
    let mut warm_end_step = None;
    for epoch in 0..train_cfg.epochs {
        if schedule.in_warm_start(epoch) {
            let clock = Instant::now();
            let stats = trainer.epoch(train, &all)?;
            let rec = EpochRecord {
                stats,
                full_data: true,
                rounds: 0,
                selection_time: Duration::ZERO,
                train_time: clock.elapsed(),
            };
            run.train_time += rec.train_time;
            finish_epoch(&mut run, rec, &mut progress);
            continue;
        }
        let warm_end = *warm_end_step.get_or_insert(trainer.global_step());
        let rounds_before = run.rounds.len();
        let mut sel_time = Duration::ZERO;
        let mut select_now = |trainer: &Trainer, run: &mut SelectionRun| {
            let (subset, rec) = select_round(
                trainer.model(),
                train,
                valid,
                selector,
                budget,
                device,
                round_seed(seed, run.rounds.len()),
                (epoch, trainer.global_step()),
            )?;
            sel_time += rec.total_time();
            run.rounds.push(rec);
            Ok::<Subset, LoopError>(subset)
        };
        match schedule.every() {
            Every::Once | Every::Epochs(_) => {
                if current.is_none() || schedule.due_at_epoch(epoch) {
                    let s = select_now(&trainer, &mut run)?;
                    if trainer.global_step() == 0 && s.len() != k {
                        // A selector that ignores the budget (FullData): the
                        // schedule counts epochs of what it actually returned.
                        run.budget = s.len();
                        let steps = trainer.steps_for(s.len()).max(1);
                        trainer = trainer.with_steps_per_epoch(steps);
                    }
                    current = Some(mean_one(s, n)?);
                }
                let subset = current.as_ref().expect("selected above");
                let clock = Instant::now();
                let stats = trainer.epoch(train, subset)?;
                let train_time = clock.elapsed();
                run.train_time += train_time;
                run.selection_time += sel_time;
                let rec = EpochRecord {
                    stats,
                    full_data: false,
                    rounds: run.rounds.len() - rounds_before,
                    selection_time: sel_time,
                    train_time,
                };
                finish_epoch(&mut run, rec, &mut progress);
            }
            Every::Steps(_) => {
                let (mut loss_sum, mut seen) = (0.0f64, 0usize);
                let mut train_time = Duration::ZERO;
                for _ in 0..spe {
                    let t = trainer.global_step();
                    if current.is_none() || schedule.due_at_step(epoch, t, warm_end) {
                        let s = select_now(&trainer, &mut run)?;
                        queue = (0..s.len()).collect();
                        cursor = queue.len();
                        current = Some(mean_one(s, n)?);
                    }
                    let subset = current.as_ref().expect("selected above");
                    if cursor >= queue.len() {
                        let mut r = rng(derive_seed(
                            derive_seed_str(train_cfg.seed, "subset-batches"),
                            passes,
                        ));
                        shuffle(&mut queue, &mut r);
                        passes += 1;
                        cursor = 0;
                    }
                    let end = (cursor + train_cfg.batch_size).min(queue.len());
                    let pos = &queue[cursor..end];
                    cursor = end;
                    let idx: Vec<usize> = pos.iter().map(|&p| subset.indices()[p]).collect();
                    let w: Option<Vec<f32>> = subset
                        .weights()
                        .map(|w| pos.iter().map(|&p| w[p]).collect());
                    let clock = Instant::now();
                    let loss = trainer.step(train, &idx, w.as_deref())?;
                    train_time += clock.elapsed();
                    loss_sum += loss as f64 * idx.len() as f64;
                    seen += idx.len();
                }
                run.train_time += train_time;
                run.selection_time += sel_time;
                let rec = EpochRecord {
                    stats: EpochStats {
                        epoch: epoch + 1,
                        steps: spe,
                        examples: seen,
                        train_loss: loss_sum / seen.max(1) as f64,
                        lr: trainer.last_lr(),
                    },
                    full_data: false,
                    rounds: run.rounds.len() - rounds_before,
                    selection_time: sel_time,
                    train_time,
                };
                finish_epoch(&mut run, rec, &mut progress);
            }
        }
    }
    run.steps = trainer.global_step();
    run.model = trainer.into_model();
    run.total_time = total.elapsed();
    run.test_accuracy = test_accuracy(&run.model, test, device)?;
    Ok(run)
}

/// Rescales a weighted subset's weights to mean 1, keeping their ratios.
///
/// CRAIG's cluster sizes and GradMatch's OMP weights average about `n/k`;
/// used as they are, they would multiply the learning rate by that factor
/// (CORDS divides each batch's weighted loss by its weight sum; CREST
/// rescales to mean 1, as here).
fn mean_one(s: Subset, n: usize) -> Result<Subset, LoopError> {
    let Some(w) = s.weights() else {
        return Ok(s);
    };
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / w.len().max(1) as f64;
    if !(mean > 0.0 && mean.is_finite()) || (mean - 1.0).abs() < 1e-9 {
        return Ok(s);
    }
    let w: Vec<f32> = w.iter().map(|&v| (v as f64 / mean) as f32).collect();
    Ok(Subset::weighted(s.indices().to_vec(), w, n)?)
}

fn finish_epoch(
    run: &mut SelectionRun,
    rec: EpochRecord,
    progress: &mut Option<&mut dyn FnMut(&EpochRecord)>,
) {
    if let Some(p) = progress.as_mut() {
        p(&rec);
    }
    run.history.push(rec);
}

fn test_accuracy(
    model: &Model,
    test: Option<&Dataset>,
    device: &Device,
) -> Result<Option<f64>, LoopError> {
    match test {
        None => Ok(None),
        Some(t) => Ok(evaluate(model, t, device)?.accuracy()),
    }
}

/// Fisher–Yates shuffle with the loop's seeded generator.
pub(crate) fn shuffle(v: &mut [usize], r: &mut wellspring_core::ChaCha8Rng) {
    use rand::RngExt;
    for i in (1..v.len()).rev() {
        let j = r.random_range(0..=i);
        v.swap(i, j);
    }
}
