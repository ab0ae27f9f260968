//! Shared fixtures: a tiny exact-linear retrainer, a breast-cancer slice, and
//! gradient-based scores for the logistic-regression retrainer.

use std::sync::OnceLock;

use wellspring_core::{Dataset, ScoreMatrix};
use wellspring_data::{DatasetName, LoadOptions, load};
use wellspring_eval::{
    LinearModel, LinearParams, LinearRetrainer, Result, RetrainSpec, Retrainer, TestOutputs,
};

/// A legitimate model whose margin is exactly linear in the training set:
/// `margin_t = bias_t + Σ_{k ∈ S} w_k s_k τ_{i_k, t}` with `s_k = −1` for a
/// relabelled point (relabelling reverses its contribution) and `+1` otherwise.
/// Two classes; correct iff the margin is positive.
pub struct ExactLinear {
    pub tau: ScoreMatrix,
    pub bias: Vec<f64>,
    pub train_labels: Vec<usize>,
    pub test_labels: Vec<usize>,
}

impl Retrainer for ExactLinear {
    fn n_train(&self) -> usize {
        self.tau.n_train()
    }
    fn n_test(&self) -> usize {
        self.tau.n_test()
    }
    fn test_labels(&self) -> Option<&[usize]> {
        Some(&self.test_labels)
    }
    fn train_labels(&self) -> Option<&[usize]> {
        Some(&self.train_labels)
    }
    fn n_classes(&self) -> Option<usize> {
        Some(2)
    }
    fn retrain(&self, spec: &RetrainSpec, _seed: u64) -> Result<TestOutputs> {
        let m = self.n_test();
        let mut margin = self.bias.clone();
        for (k, &i) in spec.subset.indices().iter().enumerate() {
            let sign = if spec.label_overrides.contains_key(&i) {
                -1.0
            } else {
                1.0
            };
            let w = spec.subset.weight(k) as f64 * sign;
            for (t, mt) in margin.iter_mut().enumerate() {
                *mt += w * self.tau.get(i, t) as f64;
            }
        }
        let correct: Vec<bool> = margin.iter().map(|&v| v > 0.0).collect();
        Ok(TestOutputs {
            margin: margin.iter().map(|&v| v as f32).collect(),
            // two classes, the margin is the logit difference: both margins agree
            class_margin: margin.iter().map(|&v| v as f32).collect(),
            loss: margin.iter().map(|&v| -v as f32).collect(),
            predicted: Some(
                (0..m)
                    .map(|t| {
                        if correct[t] {
                            self.test_labels[t]
                        } else {
                            1 - self.test_labels[t]
                        }
                    })
                    .collect(),
            ),
            runner_up: Some(self.test_labels.iter().map(|&y| 1 - y).collect()),
            correct: Some(correct),
            prediction: None,
        })
    }
}

/// The breast-cancer table (standardised), loaded once.
fn breast_cancer() -> &'static (Dataset, Dataset) {
    static DATA: OnceLock<(Dataset, Dataset)> = OnceLock::new();
    DATA.get_or_init(|| {
        let split = load(DatasetName::BreastCancer, &LoadOptions::new()).expect("embedded data");
        (split.train, split.test)
    })
}

/// The first `n_train` training and `n_test` test rows of breast cancer.
pub fn bc_slice(n_train: usize, n_test: usize) -> (Dataset, Dataset) {
    let (tr, te) = breast_cancer();
    (
        tr.select(&(0..n_train).collect::<Vec<_>>()).unwrap(),
        te.select(&(0..n_test).collect::<Vec<_>>()).unwrap(),
    )
}

/// Logistic-regression retrainer on a breast-cancer slice.
pub fn bc_retrainer(n_train: usize, n_test: usize) -> LinearRetrainer {
    let (tr, te) = bc_slice(n_train, n_test);
    LinearRetrainer::new(&tr, &te, LinearParams::new().l2(1e-2)).unwrap()
}

/// Per-example loss gradient of softmax regression w.r.t. `[W, b]`.
fn grad(model: &LinearModel, x: &[f64], y: usize) -> Vec<f64> {
    let z = model.logits(x);
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    let (c, d) = (model.n_outputs, model.n_features);
    let mut g = vec![0.0; c * d + c];
    for k in 0..c {
        let r = (z[k] - lse).exp() - if k == y { 1.0 } else { 0.0 };
        for j in 0..d {
            g[k * d + j] = r * x[j];
        }
        g[c * d + k] = r;
    }
    g
}

/// Hessian of the training objective (mean CE + λ/2 ‖W‖²) plus `damping · I`.
fn hessian(r: &LinearRetrainer, model: &LinearModel, damping: f64) -> Vec<f64> {
    let (c, d) = (model.n_outputs, model.n_features);
    let p = c * d + c;
    let n = r.n_train();
    let mut h = vec![0.0; p * p];
    for i in 0..n {
        let x = r.train_row(i);
        let z = model.logits(x);
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let pr: Vec<f64> = z.iter().map(|v| (v - lse).exp()).collect();
        // feature vector with bias: index a(k, j) = k*d + j for j < d, c*d + k for the bias
        let idx = |k: usize, j: usize| if j < d { k * d + j } else { c * d + k };
        let xv = |j: usize| if j < d { x[j] } else { 1.0 };
        for k in 0..c {
            for l in 0..c {
                let s = (if k == l { pr[k] } else { 0.0 }) - pr[k] * pr[l];
                for j in 0..=d {
                    for q in 0..=d {
                        h[idx(k, j) * p + idx(l, q)] += s * xv(j) * xv(q) / n as f64;
                    }
                }
            }
        }
    }
    let l2 = r.params().penalty();
    for a in 0..c * d {
        h[a * p + a] += l2;
    }
    for a in 0..p {
        h[a * p + a] += damping;
    }
    h
}

/// Solves `H x = b` by Gaussian elimination with partial pivoting.
fn solve(mut h: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
    let p = b.len();
    for col in 0..p {
        let piv = (col..p)
            .max_by(|&a, &c| {
                h[a * p + col]
                    .abs()
                    .partial_cmp(&h[c * p + col].abs())
                    .unwrap()
            })
            .unwrap();
        for k in 0..p {
            h.swap(col * p + k, piv * p + k);
        }
        b.swap(col, piv);
        for r in col + 1..p {
            let f = h[r * p + col] / h[col * p + col];
            for k in col..p {
                h[r * p + k] -= f * h[col * p + k];
            }
            b[r] -= f * b[col];
        }
    }
    for r in (0..p).rev() {
        let s: f64 = (r + 1..p).map(|k| h[r * p + k] * b[k]).sum();
        b[r] = (b[r] - s) / h[r * p + r];
    }
    b
}

/// Which gradient-based score to compute.
#[derive(Clone, Copy)]
pub enum Method {
    /// `g_tᵀ g_i` (Grad-Dot / TracIn at the final checkpoint).
    GradDot,
    /// `g_tᵀ H⁻¹ g_i / n` (influence function, Koh & Liang 2017, as helpfulness).
    Influence,
}

/// Scores of the full-data model of `r` (positive = helps).
pub fn scores(r: &LinearRetrainer, method: Method) -> ScoreMatrix {
    let model = r.fit(&RetrainSpec::full(r.n_train())).unwrap();
    let (n, m) = (r.n_train(), r.n_test());
    let ytr = r.train_labels().unwrap();
    let yte = r.test_labels().unwrap();
    let gtr: Vec<Vec<f64>> = (0..n)
        .map(|i| grad(&model, r.train_row(i), ytr[i]))
        .collect();
    let mut gte: Vec<Vec<f64>> = (0..m)
        .map(|t| grad(&model, r.test_row(t), yte[t]))
        .collect();
    if let Method::Influence = method {
        let h = hessian(r, &model, 1e-6);
        gte = gte.into_iter().map(|g| solve(h.clone(), g)).collect();
    }
    let scale = match method {
        Method::GradDot => 1.0,
        Method::Influence => 1.0 / n as f64,
    };
    let mut s = ScoreMatrix::zeros(n, m);
    for i in 0..n {
        for t in 0..m {
            let v: f64 = gtr[i].iter().zip(&gte[t]).map(|(a, b)| a * b).sum();
            s.set(i, t, (v * scale) as f32);
        }
    }
    s
}
