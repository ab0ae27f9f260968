//! Representer Point Selection (RPS; Yeh et al. 2018; TracIn App. A.2, eq. 4).
//!
//! The last layer is refitted with an L2 penalty on the penultimate features
//! `f_i` (no bias), to convergence, on the host in `f64` with L-BFGS:
//!
//! ```text
//! Θ* = argmin_Θ (1/n) Σ_i ℓ(Θ f_i, t_i) + λ ‖Θ‖²_F
//! ```
//!
//! with `ℓ` the softmax cross-entropy and targets `t_i` the original model's
//! softmax outputs (Yeh et al.'s code and dattri's `rps_finetune_theta`), or
//! the labels. Stationarity gives the representer theorem
//! `Θ* = Σ_i α_i f_iᵀ` with
//!
//! ```text
//! α_i = −(1 / (2 λ n)) ∂ℓ(Θ* f_i, t_i)/∂(Θ* f_i) = −(softmax(Θ* f_i) − t_i) / (2 λ n)    (n × C)
//! score(i, j) = α_i[c_j] · (f_iᵀ f_j)
//! ```
//!
//! so the refitted logits decompose exactly: `Θ* f_j = Σ_i α_i (f_iᵀ f_j)`.
//! `c_j` is the test point's label (dattri's `get_rps_weight`) or its
//! predicted class (Yeh et al. explain the prediction). A positive score adds
//! to the logit of class `c_j`, i.e. helps, which is wellspring's sign.
//! Self-influence: `α_i[c_i] ‖f_i‖²` with `c_i` the training label (or prediction).

use rayon::prelude::*;
use wellspring_core::{Dataset, Grouping, ScoreMatrix, Targets};
use wellspring_models::predict_logits;

use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self, groups_by_test_blocks};
use crate::dense::{gemm_abt, softmax_rows};
use crate::error::{AttribError, Result, positive};
use crate::features::{ClassSource, Extractor, FeatureSpace, classes_of, head_weights};
use crate::signature::DataSignature;
use crate::solvers::lbfgs::{LbfgsInfo, LbfgsParams, minimize};
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor};

/// Rows per chunk of the parallel objective (fixed, so sums are deterministic).
const CHUNK: usize = 512;

/// What the refitted last layer is trained to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefitTarget {
    /// The original model's softmax outputs (Yeh et al. 2018; dattri).
    #[default]
    ModelOutputs,
    /// One-hot training labels.
    Labels,
}

impl std::str::FromStr for RefitTarget {
    type Err = AttribError;

    /// `outputs` or `labels`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "outputs" => Ok(RefitTarget::ModelOutputs),
            "labels" => Ok(RefitTarget::Labels),
            other => Err(AttribError::invalid_param("target", other, "expected outputs or labels")),
        }
    }
}

/// Parameters of RPS.
#[derive(Clone, Debug, PartialEq)]
pub struct RpsParams {
    lambda: f64,
    target: RefitTarget,
    class_source: ClassSource,
    solver: LbfgsParams,
}

impl Default for RpsParams {
    /// `λ = 0.003` (dattri's and Yeh et al.'s default), model outputs as
    /// targets, test labels, L-BFGS to `‖∇‖_∞ ≤ 1e-8` (≤ 10 000 iterations).
    fn default() -> Self {
        Self {
            lambda: 0.003,
            target: RefitTarget::ModelOutputs,
            class_source: ClassSource::Label,
            solver: LbfgsParams::default(),
        }
    }
}

impl RpsParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// L2 strength `λ` (> 0).
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }

    /// Refit targets.
    pub fn target(mut self, t: RefitTarget) -> Self {
        self.target = t;
        self
    }

    /// Which class column of `α` scores a test point.
    pub fn class_source(mut self, c: ClassSource) -> Self {
        self.class_source = c;
        self
    }

    /// Refit tolerance on `‖∇‖_∞` (> 0) and iteration cap (≥ 1).
    pub fn solver(mut self, tol: f64, max_iter: usize) -> Self {
        self.solver.tol = tol;
        self.solver.max_iter = max_iter;
        self
    }

    /// Checks `λ`, the tolerance and the iteration cap.
    pub fn check(&self) -> Result<()> {
        positive("rps.lambda", self.lambda)?;
        positive("rps.tol", self.solver.tol)?;
        if self.solver.max_iter == 0 {
            return Err(AttribError::invalid_param("rps.max_iter", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// Fitted RPS: refitted head, representer weights `α`, training features.
#[derive(Clone, Debug)]
pub struct Rps {
    p: RpsParams,
    feats: Vec<f32>,
    alpha: Vec<f64>,
    theta: Vec<f64>,
    self_classes: Vec<usize>,
    info: LbfgsInfo,
    c: usize,
    extractor: Extractor,
    sig: DataSignature,
}

/// The refit problem: features `f` (`n × d`), targets `t` (`n × C`), `λ`.
struct Refit<'a> {
    f: &'a [f64],
    t: &'a [f64],
    n: usize,
    c: usize,
    d: usize,
    lambda: f64,
}

impl Refit<'_> {
    /// Objective and gradient at `theta` (`C × d`).
    fn objective(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let Refit { f, t, n, c, d, lambda } = *self;
        let parts: Vec<(f64, Vec<f64>)> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|b| {
                let mut g = vec![0.0f64; c * d];
                let mut loss = 0.0;
                let mut z = vec![0.0f64; c];
                for i in b * CHUNK..((b + 1) * CHUNK).min(n) {
                    let fi = &f[i * d..(i + 1) * d];
                    for (k, zk) in z.iter_mut().enumerate() {
                        *zk = theta[k * d..(k + 1) * d].iter().zip(fi).map(|(a, b)| a * b).sum();
                    }
                    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                    let se: f64 = z.iter().map(|v| (v - m).exp()).sum();
                    let lse = m + se.ln();
                    let ti = &t[i * c..(i + 1) * c];
                    loss += ti.iter().zip(&z).map(|(tk, zk)| tk * (lse - zk)).sum::<f64>();
                    for k in 0..c {
                        let r = (z[k] - lse).exp() - ti[k];
                        for (gk, &fa) in g[k * d..(k + 1) * d].iter_mut().zip(fi) {
                            *gk += r * fa;
                        }
                    }
                }
                (loss, g)
            })
            .collect();
        grad.iter_mut().for_each(|v| *v = 0.0);
        let mut loss = 0.0;
        for (l, g) in parts {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        let inv = 1.0 / n as f64;
        let mut reg = 0.0;
        for (gk, &w) in grad.iter_mut().zip(theta) {
            *gk = *gk * inv + 2.0 * lambda * w;
            reg += w * w;
        }
        loss * inv + lambda * reg
    }
}

impl Attributor for RpsParams {
    type Fitted = Rps;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<Rps> {
        self.check()?;
        let labels = match train.targets() {
            Targets::Classes { labels, .. } => labels.clone(),
            Targets::Regression { .. } | Targets::NextToken { .. } => {
                return Err(AttribError::unsupported(
                    "rps",
                    format!("dataset {} has no class labels; RPS refits a softmax head", train.name()),
                ));
            }
        };
        let (extractor, feats) = Extractor::fit(&FeatureSpace::Penultimate, source, train)?;
        let model = extractor.model();
        let (theta0, _) = head_weights(model)?;
        let (n, d) = (train.len(), extractor.dim());
        let c = theta0.len() / d.max(1);
        let f64s: Vec<f64> = feats.iter().map(|&v| v as f64).collect();
        let targets = match self.target {
            RefitTarget::ModelOutputs => softmax_rows(&predict_logits(model, train, &source.device)?, c),
            RefitTarget::Labels => {
                let mut t = vec![0.0; n * c];
                labels.iter().enumerate().for_each(|(i, &y)| t[i * c + y] = 1.0);
                t
            }
        };
        let lambda = self.lambda;
        let problem = Refit {
            f: &f64s,
            t: &targets,
            n,
            c,
            d,
            lambda,
        };
        let (theta, info) = minimize(theta0, &self.solver, |th, g| problem.objective(th, g))?;
        if !info.objective.is_finite() {
            return Err(AttribError::Solver {
                solver: "rps refit".into(),
                reason: format!("objective became {} after {} iterations", info.objective, info.iterations),
            });
        }
        // α_i = −(softmax(Θ* f_i) − t_i) / (2 λ n)
        let mut alpha = vec![0.0f64; n * c];
        let scale = -1.0 / (2.0 * lambda * n as f64);
        for i in 0..n {
            let fi = &f64s[i * d..(i + 1) * d];
            let z: Vec<f64> = (0..c)
                .map(|k| theta[k * d..(k + 1) * d].iter().zip(fi).map(|(a, b)| a * b).sum())
                .collect();
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            for k in 0..c {
                alpha[i * c + k] = scale * ((z[k] - lse).exp() - targets[i * c + k]);
            }
        }
        let self_classes = match self.class_source {
            ClassSource::Label => labels,
            ClassSource::Predicted => classes_of(ClassSource::Predicted, model, &source.device, train, "rps")?,
        };
        Ok(Rps {
            p: self.clone(),
            feats,
            alpha,
            theta,
            self_classes,
            info,
            c,
            extractor,
            sig: DataSignature::of(train),
        })
    }
}

impl Rps {
    /// Representer weights `α`, row-major `n_train × C`.
    pub fn alpha(&self) -> &[f64] {
        &self.alpha
    }

    /// The refitted last layer `Θ*`, row-major `C × d` (no bias).
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    /// How the refit went (iterations, objective, `‖∇‖_∞`, converged).
    pub fn refit_info(&self) -> &LbfgsInfo {
        &self.info
    }

    /// The training set's penultimate features, row-major `n_train × d`.
    pub fn train_features(&self) -> &[f32] {
        &self.feats
    }

    fn prepare(&self, test: &Dataset) -> Result<(Vec<f32>, Vec<usize>)> {
        self.sig.check(test)?;
        let f = self.extractor.test(test)?;
        let cls = classes_of(
            self.p.class_source,
            self.extractor.model(),
            self.extractor.device(),
            test,
            "rps",
        )?;
        Ok((f, cls))
    }

    fn block(&self, tf: &[f32], cls: &[usize], col0: usize, cols: usize) -> Vec<f32> {
        let (d, n, c) = (self.extractor.dim(), self.self_classes.len(), self.c);
        let mut k = vec![0.0f32; cols * n];
        gemm_abt(&tf[col0 * d..(col0 + cols) * d], cols, d, &self.feats, n, &mut k);
        k.par_chunks_mut(n).enumerate().for_each(|(j, row)| {
            let cj = cls[col0 + j];
            for (i, v) in row.iter_mut().enumerate() {
                *v = (self.alpha[i * c + cj] * *v as f64) as f32;
            }
        });
        k
    }
}

impl FittedAttributor for Rps {
    fn name(&self) -> &str {
        "rps"
    }

    fn n_train(&self) -> usize {
        self.self_classes.len()
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, cls) = self.prepare(test)?;
        by_test_blocks("rps", self.n_train(), test.len(), |c0, k| Ok(self.block(&tf, &cls, c0, k)))
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        let d = self.extractor.dim();
        let out: Vec<f32> = (0..self.n_train())
            .map(|i| {
                let fi = &self.feats[i * d..(i + 1) * d];
                let sq: f64 = fi.iter().map(|&v| (v as f64) * (v as f64)).sum();
                (self.alpha[i * self.c + self.self_classes[i]] * sq) as f32
            })
            .collect();
        check_self("rps", &out)?;
        Ok(out)
    }

    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, cls) = self.prepare(test)?;
        groups_by_test_blocks("rps", grouping, self.n_train(), test.len(), |c0, k| {
            Ok(self.block(&tf, &cls, c0, k))
        })
    }
}

fn build(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = RpsParams::new();
    if let Some(l) = r.get::<f64>("lambda")? {
        p = p.lambda(l);
    }
    if let Some(t) = r.get::<RefitTarget>("target")? {
        p = p.target(t);
    }
    if let Some(c) = r.get::<ClassSource>("class")? {
        p = p.class_source(c);
    }
    let tol = r.get::<f64>("tol")?.unwrap_or(p.solver.tol);
    let max_iter = r.get::<usize>("max_iter")?.unwrap_or(p.solver.max_iter);
    p = p.solver(tol, max_iter);
    p.check()?;
    Ok(Box::new(p))
}

/// Registry entry.
pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "rps",
    description: "representer points: alpha_i[c_j] (f_i . f_j) from an L2-regularised head refit",
    paper: "Yeh et al. 2018; TracIn (Pruthi et al. 2020) App. A.2, eq. 4",
    uses_gradients: false,
    params: &[
        ("lambda", "L2 strength of the refit (default 0.003)"),
        ("target", "outputs (default: the model's softmax) or labels"),
        ("class", "label (default) or predicted: the alpha column of a test point"),
        ("tol", "refit tolerance on the gradient inf-norm (default 1e-8)"),
        ("max_iter", "refit iteration cap (default 10000)"),
    ],
    caps: super::Capabilities::NONE,
    build,
};
