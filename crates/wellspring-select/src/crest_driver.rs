//! CREST's step-by-step state machine (Yang, Kang & Mirzasoleiman 2023, Alg. 1):
//! select mini-batch coresets, fit a quadratic model of the loss around the
//! selection point, check it every few steps and reselect once
//! `|L − L̂| > τ·L`. The loop supplies the model numbers (losses, gradient,
//! Hutchinson Hessian diagonal); this module keeps the books.

use rand::RngExt;
use wellspring_core::{Subset, derive_seed, derive_seed_str, rng};

use crate::crest::{CrestParams, CrestRound, coresets_from_sets, draw_random_sets};
use crate::error::{Result, SelectError, check_finite_matrix};
use crate::state::{GradProxies, check_labels};

/// What the training loop must do next (returned by [`CrestDriver::next_action`]).
#[derive(Clone, Debug, PartialEq)]
pub enum CrestAction {
    /// Warm-up before the first selection: train this step on ordinary
    /// full-data mini-batches.
    TrainFull,
    /// Compute gradient proxies for these training points (one row each, in
    /// this order) and pass them to [`CrestDriver::select`].
    Select {
        /// Concatenated random subsets.
        candidates: Vec<usize>,
    },
    /// Fit the quadratic model at the current parameters on this weighted
    /// coreset (loss `L₀`, gradient `g`, Hessian diagonal `h`, e.g. with
    /// [`QuadraticModel`] and [`hutchinson_diagonal`]), reset the parameter
    /// displacement `δ` to 0, and report `‖h‖` to [`CrestDriver::set_quadratic`].
    FitQuadratic {
        /// The selected coresets, weighted.
        coreset: Subset,
    },
    /// Evaluate the true loss `L` on these points and the model's prediction
    /// `L̂ = L₀ + gᵀδ + ½ δᵀ diag(h) δ`, then call [`CrestDriver::check`].
    Check {
        /// The round's random subsets, concatenated.
        points: Vec<usize>,
    },
    /// Train this step on [`CrestDriver::next_batch`].
    Train,
}

/// Outcome of one quadratic-model check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckOutcome {
    /// Step of the check.
    pub step: usize,
    /// `|L − L̂|`.
    pub difference: f64,
    /// `τ · L`.
    pub threshold: f64,
    /// True if the model is off and a new selection happens at this step.
    pub reselect: bool,
}

/// A weighted mini-batch to train on.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Training indices.
    pub indices: Vec<usize>,
    /// Their weights (mean 1 over the round).
    pub weights: Vec<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Training,
    AwaitSelect,
    AwaitQuadratic,
    AwaitCheck,
}

/// CREST driven step by step by a training loop. Per optimiser step `t`:
/// call [`CrestDriver::next_action`]`(t)` and serve actions until it returns
/// [`CrestAction::Train`] or [`CrestAction::TrainFull`], then train one step.
#[derive(Clone, Debug)]
pub struct CrestDriver {
    params: CrestParams,
    labels: Vec<usize>,
    n_classes: usize,
    steps_per_epoch: usize,
    seed: u64,
    phase: Phase,
    step: usize,
    reset_step: usize,
    check_interval: usize,
    n_minibatches: usize,
    init_curvature: Option<f64>,
    last_check: Option<usize>,
    last_selection: Option<usize>,
    pending_sets: Vec<Vec<usize>>,
    round: Option<CrestRound>,
    queue: Vec<(usize, f32)>,
    cursor: usize,
    passes: u64,
    selections: usize,
    checks: Vec<CheckOutcome>,
}

impl CrestDriver {
    /// A driver over `labels` (classes `0..n_classes`), with `steps_per_epoch`
    /// optimiser steps per epoch of the (reduced) training budget.
    pub fn new(
        params: CrestParams,
        labels: &[usize],
        n_classes: usize,
        steps_per_epoch: usize,
        seed: u64,
    ) -> Result<Self> {
        let params = params.check()?.params;
        if n_classes < 2 {
            return Err(SelectError::invalid_param(
                "n_classes",
                n_classes,
                "need at least 2 classes",
            ));
        }
        check_labels("training labels", labels, n_classes)?;
        if labels.is_empty() {
            return Err(SelectError::ZeroBudget);
        }
        if steps_per_epoch == 0 {
            return Err(SelectError::invalid_param(
                "steps_per_epoch",
                0,
                "must be at least 1",
            ));
        }
        Ok(Self {
            reset_step: params.first_selection_step.unwrap_or(steps_per_epoch),
            check_interval: params.check_interval,
            n_minibatches: params.n_minibatches,
            params,
            labels: labels.to_vec(),
            n_classes,
            steps_per_epoch,
            seed,
            phase: Phase::Training,
            step: 0,
            init_curvature: None,
            last_check: None,
            last_selection: None,
            pending_sets: Vec::new(),
            round: None,
            queue: Vec::new(),
            cursor: 0,
            passes: 0,
            selections: 0,
            checks: Vec::new(),
        })
    }

    fn out_of_order(&self, call: &'static str) -> SelectError {
        let reason = match self.phase {
            Phase::Training => "the driver waits for next_action",
            Phase::AwaitSelect => "the driver waits for select",
            Phase::AwaitQuadratic => "the driver waits for set_quadratic",
            Phase::AwaitCheck => "the driver waits for check",
        };
        SelectError::OutOfOrder {
            machine: "CREST",
            call,
            reason: reason.into(),
        }
    }

    /// What to do before optimiser step `step` (steps never decrease).
    pub fn next_action(&mut self, step: usize) -> Result<CrestAction> {
        if step < self.step {
            return Err(SelectError::OutOfOrder {
                machine: "CREST",
                call: "next_action",
                reason: format!("step {step} comes after step {}", self.step),
            });
        }
        self.step = step;
        match self.phase {
            Phase::AwaitSelect => {
                return Ok(CrestAction::Select {
                    candidates: self.pending_sets.iter().flatten().copied().collect(),
                });
            }
            Phase::AwaitQuadratic => {
                let n = self.labels.len();
                let round = self
                    .round
                    .as_ref()
                    .expect("a round is installed before its fit");
                return Ok(CrestAction::FitQuadratic {
                    coreset: round.subset(n)?,
                });
            }
            Phase::AwaitCheck => {
                let round = self.round.as_ref().expect("checks follow a selection");
                return Ok(CrestAction::Check {
                    points: round.random_points(),
                });
            }
            Phase::Training => {}
        }
        if self.round.is_none() && step < self.reset_step {
            return Ok(CrestAction::TrainFull);
        }
        if (step == self.reset_step || self.round.is_none()) && self.last_selection != Some(step) {
            let mut r = rng(derive_seed(
                derive_seed_str(self.seed, "crest-random-sets"),
                self.selections as u64,
            ));
            self.pending_sets = draw_random_sets(
                &self.labels,
                self.n_classes,
                self.params.random_subset_fraction,
                self.n_minibatches,
                &mut r,
            );
            self.reset_step = step;
            self.phase = Phase::AwaitSelect;
            return Ok(CrestAction::Select {
                candidates: self.pending_sets.iter().flatten().copied().collect(),
            });
        }
        if step > self.reset_step
            && (step - self.reset_step).is_multiple_of(self.check_interval)
            && self.last_check != Some(step)
        {
            self.phase = Phase::AwaitCheck;
            let round = self.round.as_ref().expect("checks follow a selection");
            return Ok(CrestAction::Check {
                points: round.random_points(),
            });
        }
        Ok(CrestAction::Train)
    }

    /// Selects the mini-batch coresets from the pending random subsets, given
    /// `proxies` with one row per candidate of [`CrestAction::Select`], in order.
    pub fn select(&mut self, proxies: &GradProxies) -> Result<&CrestRound> {
        if self.phase != Phase::AwaitSelect {
            return Err(self.out_of_order("select"));
        }
        let sets = std::mem::take(&mut self.pending_sets);
        let sizes = vec![self.params.batch_size; sets.len()];
        let round = match coresets_from_sets(
            &self.params,
            &self.labels,
            self.n_classes,
            sets.clone(),
            &sizes,
            proxies,
        ) {
            Ok(r) => r,
            Err(e) => {
                self.pending_sets = sets;
                return Err(e);
            }
        };
        self.queue = round
            .coresets
            .iter()
            .flatten()
            .copied()
            .zip(round.weights.iter().flatten().copied())
            .collect();
        self.cursor = 0;
        self.passes = 0;
        self.selections += 1;
        self.last_selection = Some(self.step);
        self.round = Some(round);
        self.phase = Phase::AwaitQuadratic;
        Ok(self.round.as_ref().expect("just installed"))
    }

    /// Records the fitted model's curvature `‖h‖` and adapts the intervals:
    /// the first fit sets the reference `‖H₀‖`; later ones set the check
    /// interval to `⌈interval_mul · ‖H₀‖ / ‖h‖⌉` and the coresets per
    /// selection to `min(⌈interval · batch_num_mul⌉, steps_per_epoch)` (CREST §4.2).
    pub fn set_quadratic(&mut self, curvature_norm: f64) -> Result<()> {
        if self.phase != Phase::AwaitQuadratic {
            return Err(self.out_of_order("set_quadratic"));
        }
        if !(curvature_norm.is_finite() && curvature_norm >= 0.0) {
            return Err(SelectError::invalid_param(
                "curvature_norm",
                curvature_norm,
                "must be finite and >= 0",
            ));
        }
        match self.init_curvature {
            None => self.init_curvature = Some(curvature_norm),
            Some(h0) => {
                let ratio = if curvature_norm > 0.0 {
                    h0 / curvature_norm * self.params.interval_mul
                } else {
                    self.steps_per_epoch as f64
                };
                self.check_interval = (ratio.ceil() as usize).clamp(1, self.steps_per_epoch.max(1));
                self.n_minibatches = ((self.check_interval as f64 * self.params.batch_num_mul)
                    .ceil() as usize)
                    .clamp(1, self.steps_per_epoch);
            }
        }
        self.phase = Phase::Training;
        Ok(())
    }

    /// Reports the true loss `L` and the model's `L̂` at the current step; if
    /// `|L − L̂| > τ·L` a new selection happens at this step.
    pub fn check(&mut self, true_loss: f64, predicted_loss: f64) -> Result<CheckOutcome> {
        if self.phase != Phase::AwaitCheck {
            return Err(self.out_of_order("check"));
        }
        if !(true_loss.is_finite() && predicted_loss.is_finite()) {
            return Err(SelectError::invalid_param(
                "check losses",
                format!("L = {true_loss}, L_hat = {predicted_loss}"),
                "must be finite",
            ));
        }
        let difference = (true_loss - predicted_loss).abs();
        let threshold = self.params.tau * true_loss;
        let reselect = difference > threshold;
        if reselect {
            self.reset_step = self.step;
        }
        self.last_check = Some(self.step);
        self.phase = Phase::Training;
        let out = CheckOutcome {
            step: self.step,
            difference,
            threshold,
            reselect,
        };
        self.checks.push(out);
        Ok(out)
    }

    /// The next weighted mini-batch of the current round (passes over the
    /// union of its coresets, reshuffled each pass unless `shuffle(false)`).
    pub fn next_batch(&mut self) -> Result<Batch> {
        if self.phase != Phase::Training || self.round.is_none() {
            return Err(self.out_of_order("next_batch"));
        }
        if self.queue.is_empty() {
            return Err(SelectError::OutOfOrder {
                machine: "CREST",
                call: "next_batch",
                reason: "the current round selected no points".into(),
            });
        }
        if self.cursor >= self.queue.len() {
            self.cursor = 0;
            self.passes += 1;
        }
        if self.cursor == 0 && self.params.shuffle {
            let seed = derive_seed(
                derive_seed_str(self.seed, "crest-batches"),
                (self.selections as u64) << 32 | self.passes,
            );
            let mut r = rng(seed);
            for i in (1..self.queue.len()).rev() {
                let j = r.random_range(0..=i);
                self.queue.swap(i, j);
            }
        }
        let end = (self.cursor + self.params.batch_size).min(self.queue.len());
        let (indices, weights) = self.queue[self.cursor..end].iter().copied().unzip();
        self.cursor = end;
        Ok(Batch { indices, weights })
    }

    /// The current round, if any.
    pub fn round(&self) -> Option<&CrestRound> {
        self.round.as_ref()
    }

    /// Steps between checks now.
    pub fn check_interval(&self) -> usize {
        self.check_interval
    }

    /// Coresets drawn at the next selection.
    pub fn n_minibatches(&self) -> usize {
        self.n_minibatches
    }

    /// Selections made so far.
    pub fn selections(&self) -> usize {
        self.selections
    }

    /// Every check so far.
    pub fn checks(&self) -> &[CheckOutcome] {
        &self.checks
    }
}

/// CREST's local model of the loss around the selection point `w₀`:
/// `L̂(w₀ + δ) = L₀ + gᵀδ + ½ δᵀ diag(h) δ` (CREST eq. 6, with AdaHessian's
/// Hutchinson diagonal).
#[derive(Clone, Debug, PartialEq)]
pub struct QuadraticModel {
    loss0: f64,
    grad: Vec<f32>,
    hess_diag: Vec<f32>,
}

impl QuadraticModel {
    /// A checked model: `grad` and `hess_diag` of equal length, all finite.
    pub fn new(loss0: f64, grad: Vec<f32>, hess_diag: Vec<f32>) -> Result<Self> {
        if grad.len() != hess_diag.len() {
            return Err(SelectError::shape(
                "Hessian diagonal",
                format!("{} values (as the gradient)", grad.len()),
                hess_diag.len(),
            ));
        }
        if !loss0.is_finite() {
            return Err(SelectError::invalid_param("loss0", loss0, "must be finite"));
        }
        check_finite_matrix("gradient", &grad, 1)?;
        check_finite_matrix("Hessian diagonal", &hess_diag, 1)?;
        Ok(Self {
            loss0,
            grad,
            hess_diag,
        })
    }

    /// `L̂(w₀ + δ)` for a displacement `δ` of the parameters.
    pub fn predict(&self, delta: &[f32]) -> Result<f64> {
        if delta.len() != self.grad.len() {
            return Err(SelectError::shape(
                "parameter displacement",
                format!("{} values", self.grad.len()),
                delta.len(),
            ));
        }
        let mut lin = 0.0f64;
        let mut quad = 0.0f64;
        for ((&g, &h), &d) in self.grad.iter().zip(&self.hess_diag).zip(delta) {
            lin += g as f64 * d as f64;
            quad += h as f64 * d as f64 * d as f64;
        }
        Ok(self.loss0 + lin + 0.5 * quad)
    }

    /// `‖h‖₂`, CREST's curvature measure for the check interval.
    pub fn curvature_norm(&self) -> f64 {
        self.hess_diag
            .iter()
            .map(|&h| h as f64 * h as f64)
            .sum::<f64>()
            .sqrt()
    }

    /// `L₀`.
    pub fn loss0(&self) -> f64 {
        self.loss0
    }
}

/// A Rademacher probe (entries ±1) of length `dim`.
pub fn rademacher(dim: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..dim)
        .map(|_| if r.random::<bool>() { 1.0 } else { -1.0 })
        .collect()
}

/// Hutchinson's diagonal estimate `diag(H) ≈ mean_k z_k ⊙ (H z_k)` from
/// Rademacher probes `z_k` and the loop's Hessian–vector products `H z_k`
/// (Bekas, Kokiopoulou & Saad 2007; AdaHessian, Yao et al. 2021).
pub fn hutchinson_diagonal(probes: &[(&[f32], &[f32])]) -> Result<Vec<f32>> {
    let Some((z0, _)) = probes.first() else {
        return Err(SelectError::invalid_param(
            "probes",
            0,
            "need at least one probe",
        ));
    };
    let dim = z0.len();
    let mut acc = vec![0.0f64; dim];
    for (k, (z, hz)) in probes.iter().enumerate() {
        if z.len() != dim || hz.len() != dim {
            return Err(SelectError::shape(
                format!("Hutchinson probe {k}"),
                format!("z and Hz of length {dim}"),
                format!("{} and {}", z.len(), hz.len()),
            ));
        }
        for ((a, &zi), &hi) in acc.iter_mut().zip(*z).zip(*hz) {
            *a += zi as f64 * hi as f64;
        }
    }
    let m = probes.len() as f64;
    Ok(acc.into_iter().map(|a| (a / m) as f32).collect())
}
