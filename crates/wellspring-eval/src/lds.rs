//! Linear datamodeling score (Ilyas et al. 2022; Park et al. 2023, "TRAK",
//! §2 eq. 8; brittleness paper §2.1):
//!
//! ```text
//! LDS(τ, z) = ρ( { f(z; θ*(S_j)) : j ∈ [m] },  { Σ_{i∈S_j} τ_i(z) : j ∈ [m] } )
//! ```
//!
//! with `S_j` random subsets of `⌊α n⌉` training points, `ρ` the Spearman
//! rank correlation and `f` a model output (averaged over `r` models per
//! subset): TRAK's margin by default, the brittleness paper's correct-class
//! margin `z_y − max_{c≠y} z_c` or the negated loss on request ([`Output`]).
//! Because a score is positive when a point helps, the predicted output of
//! the model trained on `S_j` is the *sum* of the kept points' scores.
//!
//! Retraining is the cost; [`Lds::ground_truth`] does it once and
//! [`LdsGroundTruth::score`] scores any number of methods against it.

use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use wellspring_core::{ScoreMatrix, Subset, derive_seed_str, rng};

use crate::error::{EvalError, Result, check_shape};
use crate::metric::{EvalContext, Metric};
use crate::retrain::{Output, RetrainSpec, Retrainer, TestOutputs, model_seeds, run_checked};
use crate::stats::{Summary, spearman};

/// Checked LDS parameters (linfa-style builder); also the [`Metric`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lds {
    m: usize,
    alpha: f64,
    models_per_subset: usize,
    seed: u64,
    output: Output,
}

impl Default for Lds {
    /// `m = 50` subsets, `α = 0.5`, 1 model per subset, seed 0, margin output.
    fn default() -> Self {
        Self {
            m: 50,
            alpha: 0.5,
            models_per_subset: 1,
            seed: 0,
            output: Output::Margin,
        }
    }
}

/// Retrained outputs on the LDS subsets, reusable across methods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdsGroundTruth {
    /// Training-set size.
    pub n_train: usize,
    /// Test-set size.
    pub n_test: usize,
    /// Subset share `α` the subsets were drawn with.
    pub alpha: f64,
    /// The subsets `S_j` (sorted indices).
    pub subsets: Vec<Vec<usize>>,
    /// Model seeds (the same for every subset).
    pub seeds: Vec<u64>,
    /// `margin[j][t]`: margin of test point `t`, averaged over the models on `S_j`.
    pub margin: Vec<Vec<f64>>,
    /// `class_margin[j][t]`: correct-class margin `z_y − max_{c≠y} z_c`,
    /// averaged likewise.
    pub class_margin: Vec<Vec<f64>>,
    /// `neg_loss[j][t]`: negated test loss, averaged likewise.
    pub neg_loss: Vec<Vec<f64>>,
}

/// LDS of one score matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdsResult {
    /// Mean and standard error of the per-test Spearman correlations
    /// (undefined ones, from constant outputs or scores, skipped).
    pub summary: Summary,
    /// Per-test-point Spearman correlation.
    pub per_test: Vec<Option<f64>>,
    /// Number of subsets.
    pub m: usize,
    /// Subset share.
    pub alpha: f64,
    /// Models averaged per subset.
    pub models_per_subset: usize,
    /// Output compared.
    pub output: Output,
}

impl Lds {
    /// The defaults (see [`Default`]).
    pub fn params() -> Self {
        Self::default()
    }

    /// Number of random subsets `m` (≥ 2).
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Subset share `α ∈ (0, 1)`.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Models trained (with different seeds) and averaged per subset (≥ 1).
    pub fn models_per_subset(mut self, r: usize) -> Self {
        self.models_per_subset = r;
        self
    }

    /// Seed of the subsets and the model seeds.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Which output the scores are compared with (default: margin).
    pub fn output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Errors on `m < 2`, `α ∉ (0,1)` or `r = 0`.
    pub fn check(&self) -> Result<()> {
        if self.m < 2 {
            return Err(EvalError::invalid_param(
                "LDS number of subsets m",
                self.m,
                "need at least 2 subsets for a rank correlation",
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(EvalError::invalid_param(
                "LDS subset share alpha",
                self.alpha,
                "must lie strictly between 0 and 1",
            ));
        }
        if self.models_per_subset == 0 {
            return Err(EvalError::invalid_param(
                "LDS models per subset",
                0,
                "must be ≥ 1",
            ));
        }
        Ok(())
    }

    /// Size of each subset: `round(α n)`, checked to lie in `1..n`.
    pub fn subset_size(&self, n_train: usize) -> Result<usize> {
        self.check()?;
        let k = (self.alpha * n_train as f64).round() as usize;
        if k == 0 || k >= n_train {
            return Err(EvalError::invalid_param(
                "LDS subset share alpha",
                self.alpha,
                format!("gives subsets of {k} of {n_train} training points; need 1..{n_train}"),
            ));
        }
        Ok(k)
    }

    /// The `m` random subsets (sorted indices), from the `"lds-subsets"` stream.
    pub fn subsets(&self, n_train: usize) -> Result<Vec<Vec<usize>>> {
        let k = self.subset_size(n_train)?;
        let mut r = rng(derive_seed_str(self.seed, "lds-subsets"));
        Ok((0..self.m)
            .map(|_| {
                let mut s = sample(&mut r, n_train, k).into_vec();
                s.sort_unstable();
                s
            })
            .collect())
    }

    /// Retrains `r` models on each subset and records their mean outputs.
    pub fn ground_truth(&self, retrainer: &dyn Retrainer) -> Result<LdsGroundTruth> {
        let n = retrainer.n_train();
        let subsets = self.subsets(n)?;
        let seeds = model_seeds(
            derive_seed_str(self.seed, "lds-models"),
            self.models_per_subset,
        );
        let mut jobs = Vec::with_capacity(subsets.len() * seeds.len());
        for (j, s) in subsets.iter().enumerate() {
            let spec = RetrainSpec::on(Subset::new(s.clone(), n)?).tagged(format!("lds/{j}"));
            for &seed in &seeds {
                jobs.push((spec.clone(), seed));
            }
        }
        let outs = run_checked(retrainer, &jobs)?;
        LdsGroundTruth::from_outputs(n, retrainer.n_test(), self.alpha, subsets, seeds, &outs)
    }
}

impl LdsGroundTruth {
    /// Builds the ground truth from retrained outputs, subset-major
    /// (`outputs[j · r + s]` = subset `j`, seed `s`).
    pub fn from_outputs(
        n_train: usize,
        n_test: usize,
        alpha: f64,
        subsets: Vec<Vec<usize>>,
        seeds: Vec<u64>,
        outputs: &[TestOutputs],
    ) -> Result<Self> {
        let r = seeds.len();
        if outputs.len() != subsets.len() * r {
            return Err(EvalError::length(
                "LDS retrained outputs (subsets × seeds)",
                subsets.len() * r,
                outputs.len(),
            ));
        }
        let mean_of = |j: usize, out: Output| -> Vec<f64> {
            let mut acc = vec![0.0; n_test];
            for o in &outputs[j * r..(j + 1) * r] {
                for (a, v) in acc.iter_mut().zip(o.values(out)) {
                    *a += v / r as f64;
                }
            }
            acc
        };
        let margin = (0..subsets.len())
            .map(|j| mean_of(j, Output::Margin))
            .collect();
        let class_margin = (0..subsets.len())
            .map(|j| mean_of(j, Output::ClassMargin))
            .collect();
        let neg_loss = (0..subsets.len())
            .map(|j| mean_of(j, Output::NegLoss))
            .collect();
        Ok(Self {
            n_train,
            n_test,
            alpha,
            subsets,
            seeds,
            margin,
            class_margin,
            neg_loss,
        })
    }

    /// Predicted outputs `Σ_{i∈S_j} τ_{i,t}` (`m × n_test`).
    pub fn predicted(&self, scores: &ScoreMatrix) -> Result<Vec<Vec<f64>>> {
        check_shape("LDS", scores, self.n_train, self.n_test)?;
        Ok(self
            .subsets
            .iter()
            .map(|s| {
                let mut acc = vec![0.0f64; self.n_test];
                for &i in s {
                    for (a, &v) in acc.iter_mut().zip(scores.row(i)) {
                        *a += v as f64;
                    }
                }
                acc
            })
            .collect())
    }

    /// LDS of `scores` against this ground truth, comparing with `output`.
    pub fn score(&self, scores: &ScoreMatrix, output: Output) -> Result<LdsResult> {
        let pred = self.predicted(scores)?;
        let actual = match output {
            Output::Margin => &self.margin,
            Output::ClassMargin => &self.class_margin,
            Output::NegLoss => &self.neg_loss,
        };
        let per_test: Vec<Option<f64>> = (0..self.n_test)
            .map(|t| {
                let a: Vec<f64> = actual.iter().map(|row| row[t]).collect();
                let p: Vec<f64> = pred.iter().map(|row| row[t]).collect();
                spearman(&p, &a)
            })
            .collect();
        Ok(LdsResult {
            summary: Summary::of_defined(&per_test),
            per_test,
            m: self.subsets.len(),
            alpha: self.alpha,
            models_per_subset: self.seeds.len(),
            output,
        })
    }
}

impl Metric for Lds {
    type Output = LdsResult;

    fn name(&self) -> &str {
        "lds"
    }

    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<LdsResult> {
        self.check()?;
        let r = ctx.require_retrainer(self.name())?;
        check_shape(self.name(), scores, r.n_train(), r.n_test())?;
        self.ground_truth(r)?.score(scores, self.output)
    }
}
