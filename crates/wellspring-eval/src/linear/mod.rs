//! [`LinearRetrainer`]: a real, cheap, deterministic [`Retrainer`] —
//! L2-regularised multinomial logistic (softmax) regression for class labels,
//! ridge regression for real targets — fitted in pure Rust on dense features.
//!
//! Objective (weights `w_k` from the subset, `S = Σ w_k`):
//!
//! ```text
//! J(W, b) = (1/S) Σ_k w_k ℓ(W x_k + b, y_k) + (λ/2) ‖W‖²_F
//! ```
//!
//! with `ℓ` the cross-entropy (classification) or `½‖·‖²` (regression); the
//! bias is not penalised. `J` is strictly convex in `W`, so the minimiser, and
//! hence leave-one-out, is well defined; softmax regression is solved by
//! L-BFGS to `‖∇J‖_∞ ≤ tol`, ridge in closed form by Cholesky. The seed passed
//! to [`Retrainer::retrain`] is ignored: the fit is deterministic.

mod further;

pub use further::{LinearFurtherTrainer, SgdParams};

use serde::{Deserialize, Serialize};
use wellspring_core::lbfgs::{self, LbfgsParams, LineSearch};
use wellspring_core::linalg::dot64;
use wellspring_core::{Dataset, Features, Targets};

use crate::error::{EvalError, Result};
use crate::retrain::{RetrainSpec, Retrainer, TestOutputs};

/// Checked hyper-parameters of [`LinearRetrainer`] (linfa-style builder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearParams {
    l2: f64,
    tolerance: f64,
    max_iter: usize,
    history: usize,
    standardize: bool,
}

impl Default for LinearParams {
    /// λ = 1e-2, tolerance 1e-8 on `‖∇J‖_∞`, at most 5000 L-BFGS iterations,
    /// history 10, features standardised with full-training-set statistics.
    fn default() -> Self {
        Self {
            l2: 1e-2,
            tolerance: 1e-8,
            max_iter: 5000,
            history: 10,
            standardize: true,
        }
    }
}

impl LinearParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// L2 penalty λ on the weights (> 0 keeps the problem strictly convex).
    pub fn l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }

    /// Stop when `‖∇J‖_∞ ≤ tolerance` (> 0).
    pub fn tolerance(mut self, tol: f64) -> Self {
        self.tolerance = tol;
        self
    }

    /// Maximum L-BFGS iterations (≥ 1); not reaching the tolerance is an error.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// L-BFGS memory (≥ 1).
    pub fn history(mut self, m: usize) -> Self {
        self.history = m;
        self
    }

    /// Standardise features with mean/std of the *full* training set (fixed
    /// across retrainings, so subsets see the same inputs).
    pub fn standardize(mut self, on: bool) -> Self {
        self.standardize = on;
        self
    }

    /// The L2 penalty λ.
    pub fn penalty(&self) -> f64 {
        self.l2
    }

    /// Errors on a value outside its range.
    pub fn check(&self) -> Result<()> {
        if !(self.l2.is_finite() && self.l2 > 0.0) {
            return Err(EvalError::invalid_param(
                "l2",
                self.l2,
                "must be finite and > 0 (strict convexity)",
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(EvalError::invalid_param(
                "tolerance",
                self.tolerance,
                "must be finite and > 0",
            ));
        }
        if self.max_iter == 0 {
            return Err(EvalError::invalid_param("max_iter", 0, "must be ≥ 1"));
        }
        if self.history == 0 {
            return Err(EvalError::invalid_param("history", 0, "must be ≥ 1"));
        }
        Ok(())
    }
}

/// Which task the data define.
#[derive(Clone, Debug, PartialEq)]
enum Task {
    Classes {
        train: Vec<usize>,
        test: Vec<usize>,
        n_classes: usize,
    },
    Regression {
        train: Vec<f64>,
        test: Vec<f64>,
        n_targets: usize,
    },
}

/// A fitted linear model: `z = W x + b` on (standardised) features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    /// Weights, row-major `n_outputs × n_features`.
    pub weights: Vec<f64>,
    /// Biases, one per output.
    pub bias: Vec<f64>,
    /// Input width.
    pub n_features: usize,
    /// Classes or regression targets.
    pub n_outputs: usize,
    /// Solver iterations (0 for the closed-form ridge solution).
    pub iterations: usize,
    /// `‖∇J‖_∞` at the returned parameters.
    pub grad_inf_norm: f64,
}

impl LinearModel {
    /// Outputs `z = W x + b` for one (already standardised) input row.
    pub fn logits(&self, x: &[f64]) -> Vec<f64> {
        let d = self.n_features;
        (0..self.n_outputs)
            .map(|c| self.bias[c] + dot64(&self.weights[c * d..(c + 1) * d], x))
            .collect()
    }

    /// Parameters flattened as `[W (row-major), b]`.
    pub fn params(&self) -> Vec<f64> {
        let mut p = self.weights.clone();
        p.extend_from_slice(&self.bias);
        p
    }
}

/// A real [`Retrainer`]: softmax or ridge regression on a dense [`Dataset`].
#[derive(Clone, Debug)]
pub struct LinearRetrainer {
    params: LinearParams,
    d: usize,
    x_train: Vec<f64>,
    x_test: Vec<f64>,
    n_train: usize,
    n_test: usize,
    task: Task,
}

impl LinearRetrainer {
    /// Builds the retrainer from a training and a test set with dense features
    /// and the same task (class labels with the same `n_classes`, or the same
    /// number of regression targets).
    pub fn new(train: &Dataset, test: &Dataset, params: LinearParams) -> Result<Self> {
        params.check()?;
        let (xtr, d) = dense_f64(train)?;
        let (xte, d_test) = dense_f64(test)?;
        if d != d_test {
            return Err(EvalError::length(
                format!("feature width of test set {}", test.name()),
                d,
                d_test,
            ));
        }
        if test.is_empty() {
            return Err(EvalError::EmptyTestSet {
                what: "LinearRetrainer".into(),
            });
        }
        let task = match (train.targets(), test.targets()) {
            (
                Targets::Classes {
                    labels: a,
                    n_classes: ca,
                },
                Targets::Classes {
                    labels: b,
                    n_classes: cb,
                },
            ) => {
                if ca != cb {
                    return Err(EvalError::invalid_param(
                        format!("n_classes of test set {}", test.name()),
                        cb,
                        format!("the training set has {ca} classes"),
                    ));
                }
                Task::Classes {
                    train: a.clone(),
                    test: b.clone(),
                    n_classes: *ca,
                }
            }
            (
                Targets::Regression {
                    values: a,
                    n_targets: ta,
                },
                Targets::Regression {
                    values: b,
                    n_targets: tb,
                },
            ) => {
                if ta != tb {
                    return Err(EvalError::length(
                        format!("regression targets of test set {}", test.name()),
                        *ta,
                        *tb,
                    ));
                }
                Task::Regression {
                    train: a.iter().map(|&v| v as f64).collect(),
                    test: b.iter().map(|&v| v as f64).collect(),
                    n_targets: *ta,
                }
            }
            _ => {
                return Err(EvalError::invalid_param(
                    format!("targets of {} and {}", train.name(), test.name()),
                    "one classification, one regression",
                    "both sets must define the same task",
                ));
            }
        };
        let (mut x_train, mut x_test) = (xtr, xte);
        if params.standardize {
            let n = train.len();
            for j in 0..d {
                let m = (0..n).map(|i| x_train[i * d + j]).sum::<f64>() / n as f64;
                let var = (0..n)
                    .map(|i| (x_train[i * d + j] - m).powi(2))
                    .sum::<f64>()
                    / n as f64;
                let s = if var > 1e-24 { var.sqrt() } else { 1.0 };
                for x in [&mut x_train, &mut x_test] {
                    for row in x.chunks_mut(d) {
                        row[j] = (row[j] - m) / s;
                    }
                }
            }
        }
        Ok(Self {
            params,
            d,
            n_train: train.len(),
            n_test: test.len(),
            x_train,
            x_test,
            task,
        })
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &LinearParams {
        &self.params
    }

    /// Input width.
    pub fn n_features(&self) -> usize {
        self.d
    }

    /// Standardised training row `i`.
    pub fn train_row(&self, i: usize) -> &[f64] {
        &self.x_train[i * self.d..(i + 1) * self.d]
    }

    /// Standardised test row `j`.
    pub fn test_row(&self, j: usize) -> &[f64] {
        &self.x_test[j * self.d..(j + 1) * self.d]
    }

    /// Fits the model on `spec` (weights and label overrides honoured).
    pub fn fit(&self, spec: &RetrainSpec) -> Result<LinearModel> {
        spec.check(self.n_train, self.n_classes())?;
        let rows = self.rows_of(spec)?;
        match &self.task {
            Task::Classes { n_classes, .. } => self.fit_softmax(&rows, *n_classes),
            Task::Regression {
                train, n_targets, ..
            } => Ok(self.fit_ridge(&rows, train, *n_targets)),
        }
    }

    /// Test outputs of a fitted model.
    pub fn evaluate(&self, model: &LinearModel) -> TestOutputs {
        let logits: Vec<Vec<f64>> = (0..self.n_test)
            .map(|j| model.logits(self.test_row(j)))
            .collect();
        outputs_from_logits(&logits, &self.task)
    }

    /// `(point, label, weight)` of every selected row, labels after overrides.
    fn rows_of(&self, spec: &RetrainSpec) -> Result<Vec<(usize, usize, f64)>> {
        let labels = self.train_labels();
        let rows: Vec<(usize, usize, f64)> = spec
            .subset
            .indices()
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let y = match labels {
                    Some(l) => *spec.label_overrides.get(&i).unwrap_or(&l[i]),
                    None => 0,
                };
                (i, y, spec.subset.weight(k) as f64)
            })
            .collect();
        let total: f64 = rows.iter().map(|r| r.2).sum();
        if total <= 0.0 {
            return Err(EvalError::invalid_param(
                "subset weights",
                total,
                "sum to zero: nothing to train on",
            ));
        }
        Ok(rows)
    }

    fn fit_softmax(&self, rows: &[(usize, usize, f64)], c: usize) -> Result<LinearModel> {
        let d = self.d;
        let total: f64 = rows.iter().map(|r| r.2).sum();
        let lambda = self.params.l2;
        let f = |p: &[f64], g: &mut [f64]| -> f64 {
            softmax_objective(p, g, rows, &self.x_train, d, c, total, lambda)
        };
        let mut p = vec![0.0; c * d + c];
        let solver = LbfgsParams {
            tol: self.params.tolerance,
            max_iter: self.params.max_iter,
            history: self.params.history,
            line_search: LineSearch::ArmijoOrApproxWolfe,
        };
        let info = lbfgs::minimize(&mut p, &solver, f);
        if !info.converged {
            return Err(EvalError::NotConverged {
                what: format!(
                    "L-BFGS on softmax regression ({} rows, {d} features, {c} classes, λ = {lambda})",
                    rows.len()
                ),
                iterations: info.iterations,
                detail: format!(
                    "‖∇J‖_∞ = {:.3e} > tolerance {:.1e}",
                    info.grad_inf_norm, self.params.tolerance
                ),
            });
        }
        let bias = p.split_off(c * d);
        Ok(LinearModel {
            weights: p,
            bias,
            n_features: d,
            n_outputs: c,
            iterations: info.iterations,
            grad_inf_norm: info.grad_inf_norm,
        })
    }

    fn fit_ridge(&self, rows: &[(usize, usize, f64)], y: &[f64], t: usize) -> LinearModel {
        let d = self.d;
        let total: f64 = rows.iter().map(|r| r.2).sum();
        let mut xm = vec![0.0; d];
        let mut ym = vec![0.0; t];
        for &(i, _, w) in rows {
            for (m, v) in xm.iter_mut().zip(self.train_row(i)) {
                *m += w * v / total;
            }
            for (m, v) in ym.iter_mut().zip(&y[i * t..(i + 1) * t]) {
                *m += w * v / total;
            }
        }
        // A = Xcᵀ diag(w) Xc / S + λI, B = Xcᵀ diag(w) Yc / S
        let mut a = vec![0.0; d * d];
        let mut b = vec![0.0; d * t];
        let mut xc = vec![0.0; d];
        for &(i, _, w) in rows {
            for (k, v) in xc.iter_mut().enumerate() {
                *v = self.train_row(i)[k] - xm[k];
            }
            let ww = w / total;
            for r in 0..d {
                let s = ww * xc[r];
                for q in 0..d {
                    a[r * d + q] += s * xc[q];
                }
                for q in 0..t {
                    b[r * t + q] += s * (y[i * t + q] - ym[q]);
                }
            }
        }
        for r in 0..d {
            a[r * d + r] += self.params.l2;
        }
        let wt = cholesky_solve(&mut a, &b, d, t); // d × t
        let mut weights = vec![0.0; t * d];
        for r in 0..d {
            for q in 0..t {
                weights[q * d + r] = wt[r * t + q];
            }
        }
        let bias: Vec<f64> = (0..t)
            .map(|q| ym[q] - dot64(&weights[q * d..(q + 1) * d], &xm))
            .collect();
        LinearModel {
            weights,
            bias,
            n_features: d,
            n_outputs: t,
            iterations: 0,
            grad_inf_norm: 0.0,
        }
    }

    pub(crate) fn train_targets(&self) -> Option<&[f64]> {
        match &self.task {
            Task::Regression { train, .. } => Some(train),
            Task::Classes { .. } => None,
        }
    }

    pub(crate) fn n_outputs(&self) -> usize {
        match &self.task {
            Task::Classes { n_classes, .. } => *n_classes,
            Task::Regression { n_targets, .. } => *n_targets,
        }
    }
}

impl Retrainer for LinearRetrainer {
    fn n_train(&self) -> usize {
        self.n_train
    }

    fn n_test(&self) -> usize {
        self.n_test
    }

    fn test_labels(&self) -> Option<&[usize]> {
        match &self.task {
            Task::Classes { test, .. } => Some(test),
            Task::Regression { .. } => None,
        }
    }

    fn train_labels(&self) -> Option<&[usize]> {
        match &self.task {
            Task::Classes { train, .. } => Some(train),
            Task::Regression { .. } => None,
        }
    }

    fn n_classes(&self) -> Option<usize> {
        match &self.task {
            Task::Classes { n_classes, .. } => Some(*n_classes),
            Task::Regression { .. } => None,
        }
    }

    /// Fits to tolerance and evaluates; `seed` is unused (the fit is deterministic).
    fn retrain(&self, spec: &RetrainSpec, _seed: u64) -> Result<TestOutputs> {
        let model = self.fit(spec)?;
        Ok(self.evaluate(&model))
    }
}

/// Mean weighted cross-entropy plus `λ/2 ‖W‖²`, with its gradient in `g`.
#[allow(clippy::too_many_arguments)]
fn softmax_objective(
    p: &[f64],
    g: &mut [f64],
    rows: &[(usize, usize, f64)],
    x: &[f64],
    d: usize,
    c: usize,
    total: f64,
    lambda: f64,
) -> f64 {
    g.iter_mut().for_each(|v| *v = 0.0);
    let (w, b) = p.split_at(c * d);
    let (gw, gb) = g.split_at_mut(c * d);
    let mut z = vec![0.0; c];
    let mut value = 0.0;
    for &(i, y, wt) in rows {
        if wt == 0.0 {
            continue;
        }
        let xi = &x[i * d..(i + 1) * d];
        for k in 0..c {
            z[k] = b[k] + dot64(&w[k * d..(k + 1) * d], xi);
        }
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let ww = wt / total;
        value += ww * (lse - z[y]);
        for k in 0..c {
            let r = ww * ((z[k] - lse).exp() - if k == y { 1.0 } else { 0.0 });
            gb[k] += r;
            for (gj, xj) in gw[k * d..(k + 1) * d].iter_mut().zip(xi) {
                *gj += r * xj;
            }
        }
    }
    let mut reg = 0.0;
    for (gj, wj) in gw.iter_mut().zip(w) {
        *gj += lambda * wj;
        reg += wj * wj;
    }
    value + 0.5 * lambda * reg
}

/// Margins, losses, correctness and runner-up classes from per-test outputs.
fn outputs_from_logits(logits: &[Vec<f64>], task: &Task) -> TestOutputs {
    match task {
        Task::Classes { test, .. } => {
            let n = logits.len();
            let (mut margin, mut loss) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let mut class_margin = Vec::with_capacity(n);
            let (mut correct, mut predicted, mut runner) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for (z, &y) in logits.iter().zip(test) {
                let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                let others: Vec<f64> = (0..z.len()).filter(|&k| k != y).map(|k| z[k]).collect();
                let mo = others.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse_other = mo + others.iter().map(|v| (v - mo).exp()).sum::<f64>().ln();
                margin.push((z[y] - lse_other) as f32);
                loss.push((lse - z[y]) as f32);
                let arg = argmax(z, None);
                predicted.push(arg);
                correct.push(arg == y);
                let second = argmax(z, Some(y));
                class_margin.push((z[y] - z[second]) as f32);
                runner.push(second);
            }
            TestOutputs {
                margin,
                class_margin,
                loss,
                correct: Some(correct),
                predicted: Some(predicted),
                runner_up: Some(runner),
                prediction: None,
            }
        }
        Task::Regression {
            test, n_targets, ..
        } => {
            let t = *n_targets;
            let mut loss = Vec::with_capacity(logits.len());
            let mut pred = Vec::with_capacity(logits.len() * t);
            for (j, z) in logits.iter().enumerate() {
                let l: f64 = z
                    .iter()
                    .zip(&test[j * t..(j + 1) * t])
                    .map(|(a, b)| 0.5 * (a - b) * (a - b))
                    .sum();
                loss.push(l as f32);
                pred.extend(z.iter().map(|&v| v as f32));
            }
            TestOutputs {
                margin: loss.iter().map(|l| -l).collect(),
                class_margin: loss.iter().map(|l| -l).collect(),
                loss,
                correct: None,
                predicted: None,
                runner_up: None,
                prediction: Some(pred),
            }
        }
    }
}

/// Arg-max (first maximum), skipping class `skip`.
fn argmax(z: &[f64], skip: Option<usize>) -> usize {
    let mut best = usize::MAX;
    for (k, &v) in z.iter().enumerate() {
        if Some(k) == skip {
            continue;
        }
        if best == usize::MAX || v > z[best] {
            best = k;
        }
    }
    best
}

/// Solves `A X = B` for symmetric positive definite `A` (`d × d`, overwritten
/// by its Cholesky factor) and `B` (`d × t`); returns `X` (`d × t`).
fn cholesky_solve(a: &mut [f64], b: &[f64], d: usize, t: usize) -> Vec<f64> {
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        // λ > 0 makes A positive definite; the max guards against round-off only
        let l = s.max(f64::MIN_POSITIVE).sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    let mut x = b.to_vec();
    for q in 0..t {
        for i in 0..d {
            let mut s = x[i * t + q];
            for k in 0..i {
                s -= a[i * d + k] * x[k * t + q];
            }
            x[i * t + q] = s / a[i * d + i];
        }
        for i in (0..d).rev() {
            let mut s = x[i * t + q];
            for k in i + 1..d {
                s -= a[k * d + i] * x[k * t + q];
            }
            x[i * t + q] = s / a[i * d + i];
        }
    }
    x
}

fn dense_f64(ds: &Dataset) -> Result<(Vec<f64>, usize)> {
    match ds.features() {
        Features::Dense { values, shape } => Ok((
            values.iter().map(|&v| v as f64).collect(),
            shape.iter().product(),
        )),
        Features::Tokens { .. } => Err(EvalError::invalid_param(
            format!("features of {}", ds.name()),
            "token ids",
            "LinearRetrainer needs dense features",
        )),
    }
}

#[cfg(test)]
mod tests;
