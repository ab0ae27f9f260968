//! [`LinearFurtherTrainer`]: FiMO further training (appendix D.3) of a
//! [`LinearModel`] by mini-batch SGD, in pure Rust.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use wellspring_core::{derive_seed, rng};

use super::{LinearModel, LinearRetrainer};
use crate::error::{EvalError, Result};
use crate::fimo::FurtherTrainer;
use crate::retrain::{RetrainSpec, Retrainer};

/// Checked SGD settings of [`LinearFurtherTrainer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdParams {
    lr: f64,
    batch_size: usize,
}

impl Default for SgdParams {
    /// Learning rate 0.1, batch size 32.
    fn default() -> Self {
        Self {
            lr: 0.1,
            batch_size: 32,
        }
    }
}

impl SgdParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learning rate (> 0).
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Batch size (≥ 1).
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = b;
        self
    }

    /// Errors on a non-positive learning rate or a zero batch size.
    pub fn check(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(EvalError::invalid_param(
                "lr",
                self.lr,
                "must be finite and > 0",
            ));
        }
        if self.batch_size == 0 {
            return Err(EvalError::invalid_param("batch_size", 0, "must be ≥ 1"));
        }
        Ok(())
    }
}

/// Further trains a linear model from given final parameters with SGD on the
/// same objective as [`LinearRetrainer`] (mean batch loss plus `λ/2 ‖W‖²`),
/// leaving a point out by subtracting `L(z_i)/n` from every batch loss
/// (Schioppa et al. 2023; FiMO appendix D.3). The seed fixes the batch order
/// of each epoch (`derive_seed(seed, epoch)`); nothing else is random.
#[derive(Clone, Debug)]
pub struct LinearFurtherTrainer {
    base: LinearRetrainer,
    start: LinearModel,
    sgd: SgdParams,
}

impl LinearFurtherTrainer {
    /// Further training from `start` (e.g. a model [`LinearRetrainer::fit`] returned).
    pub fn new(base: LinearRetrainer, start: LinearModel, sgd: SgdParams) -> Result<Self> {
        sgd.check()?;
        if start.n_features != base.n_features() || start.n_outputs != base.n_outputs() {
            return Err(EvalError::invalid_param(
                "start model",
                format!("{} x {}", start.n_outputs, start.n_features),
                format!(
                    "the data need {} outputs x {} features",
                    base.n_outputs(),
                    base.n_features()
                ),
            ));
        }
        Ok(Self { base, start, sgd })
    }

    /// Fits the full-data optimum first and further trains from it.
    pub fn from_full_fit(base: LinearRetrainer, sgd: SgdParams) -> Result<Self> {
        let start = base.fit(&RetrainSpec::full(base.n_train()))?;
        Self::new(base, start, sgd)
    }

    /// The starting (final) model.
    pub fn start(&self) -> &LinearModel {
        &self.start
    }

    /// Adds `scale · ∇_θ ℓ(z_i; θ)` to `grad` (θ = `[W, b]`).
    fn add_loss_grad(&self, model: &LinearModel, i: usize, scale: f64, grad: &mut [f64]) {
        let x = self.base.train_row(i);
        let z = model.logits(x);
        let (c, d) = (model.n_outputs, model.n_features);
        let residual: Vec<f64> = match self.base.train_targets() {
            None => {
                let y = self
                    .base
                    .train_labels()
                    .expect("classification task has labels")[i];
                let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                (0..c)
                    .map(|k| (z[k] - lse).exp() - if k == y { 1.0 } else { 0.0 })
                    .collect()
            }
            Some(t) => (0..c).map(|k| z[k] - t[i * c + k]).collect(),
        };
        for k in 0..c {
            let r = scale * residual[k];
            grad[c * d + k] += r;
            for (g, xj) in grad[k * d..(k + 1) * d].iter_mut().zip(x) {
                *g += r * xj;
            }
        }
    }
}

impl FurtherTrainer for LinearFurtherTrainer {
    fn n_train(&self) -> usize {
        self.base.n_train()
    }

    fn n_test(&self) -> usize {
        self.base.n_test()
    }

    fn further_train(
        &self,
        leave_out: Option<usize>,
        seed: u64,
        epochs: &[usize],
    ) -> Result<Vec<Vec<f32>>> {
        let n = self.base.n_train();
        if let Some(i) = leave_out
            && i >= n
        {
            return Err(EvalError::IndexOutOfRange {
                what: "left-out training point".into(),
                index: i,
                len: n,
            });
        }
        if epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(EvalError::invalid_param(
                "epochs",
                format!("{epochs:?}"),
                "must be strictly increasing",
            ));
        }
        let mut model = self.start.clone();
        let (c, d) = (model.n_outputs, model.n_features);
        let lambda = self.base.params().penalty();
        let mut out = Vec::with_capacity(epochs.len());
        let mut next = 0;
        let mut grad = vec![0.0; c * d + c];
        let mut order: Vec<usize> = (0..n).collect();
        let last = epochs.last().copied().unwrap_or(0);
        for epoch in 0..=last {
            if epoch > 0 {
                // a fresh permutation per epoch, independent of the others
                order.sort_unstable();
                order.shuffle(&mut rng(derive_seed(seed, epoch as u64)));
                for batch in order.chunks(self.sgd.batch_size) {
                    grad.iter_mut().for_each(|g| *g = 0.0);
                    let inv = 1.0 / batch.len() as f64;
                    for &k in batch {
                        self.add_loss_grad(&model, k, inv, &mut grad);
                    }
                    if let Some(i) = leave_out {
                        self.add_loss_grad(&model, i, -1.0 / n as f64, &mut grad);
                    }
                    for (g, w) in grad[..c * d].iter_mut().zip(&model.weights) {
                        *g += lambda * w;
                    }
                    for (w, g) in model.weights.iter_mut().zip(&grad[..c * d]) {
                        *w -= self.sgd.lr * g;
                    }
                    for (b, g) in model.bias.iter_mut().zip(&grad[c * d..]) {
                        *b -= self.sgd.lr * g;
                    }
                }
            }
            if next < epochs.len() && epochs[next] == epoch {
                out.push(self.base.evaluate(&model).loss);
                next += 1;
            }
        }
        Ok(out)
    }
}
