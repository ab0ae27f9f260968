//! The further-training gold standard of the final-model-only (FiMO) setting
//! (Bae et al., "Training data attribution via approximate unrolling / further
//! training", §3 and appendix D; file `fimo-further-training-gold-standard.txt`).
//!
//! From the final parameters `θ^f`, further train for a few epochs on the full
//! set `D` and on each leave-one-out set `D_{-i}` (implemented, following
//! Schioppa et al. 2023, by subtracting `L(z_i; θ)/n` from every batch loss),
//! with `r` seeds `ξ_s` controlling the batch order. With `g` = test loss:
//!
//! - eq. 13 (mean subtraction, the paper's main choice):
//!   `a_i = (1/r) Σ_s [ g(z, θ^f + Δθ(D_{-i}, ξ_s)) − (1/l) Σ_{i'∈L} g(z, θ^f + Δθ(D_{-i'}, ξ_s)) ]`
//! - eq. 17 (full-data subtraction):
//!   `a_i = (1/r) Σ_s [ g(z, θ^f + Δθ(D_{-i}, ξ_s)) − g(z, θ^f + Δθ(D, ξ_s)) ]`
//!
//! `a_i > 0` means leaving `z_i` out raises the test loss: `z_i` helps, the
//! sign of [`ScoreMatrix`]. A method is compared with the gold standard by the
//! cosine similarity of the two score vectors over the evaluated training
//! subset `L` (appendix D.5), per test point, then averaged (Figure 2), and by
//! the maximum over epochs as a function of the number of seeds averaged
//! (Figure 3).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use wellspring_core::ScoreMatrix;

use crate::error::{EvalError, Result, check_indices};
use crate::metric::{EvalContext, Metric};
use crate::retrain::model_seeds;
use crate::stats::{Summary, cosine};

/// Further training from a final model (the FiMO gold standard's building
/// block). The burn harness implements it with the real trainer; this crate
/// implements it for [`crate::LinearRetrainer`] models ([`crate::LinearFurtherTrainer`]).
pub trait FurtherTrainer: Sync {
    /// Number of training points.
    fn n_train(&self) -> usize;

    /// Number of test points evaluated.
    fn n_test(&self) -> usize;

    /// Further-trains from the final parameters on `D` (`leave_out = None`) or
    /// on `D_{-i}` (`Some(i)`: subtract `L(z_i)/n` from every batch loss, FiMO
    /// appendix D.3), with `seed` fixing the batch order, and returns the
    /// per-test-point evaluation (test loss) after each epoch in `epochs`
    /// (increasing; 0 = before any further training).
    fn further_train(
        &self,
        leave_out: Option<usize>,
        seed: u64,
        epochs: &[usize],
    ) -> Result<Vec<Vec<f32>>>;

    /// Runs many further trainings `(leave_out, seed)` with the same `epochs`
    /// and returns their evaluations in job order. The default runs
    /// [`FurtherTrainer::further_train`] in parallel with rayon; the burn
    /// harness overrides it to cache, resume and show progress.
    fn further_train_many(
        &self,
        jobs: &[(Option<usize>, u64)],
        epochs: &[usize],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        jobs.par_iter()
            .map(|&(leave, seed)| self.further_train(leave, seed, epochs))
            .collect()
    }
}

/// Which adjustment removes the effect of further training alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Adjustment {
    /// Subtract the mean over the evaluated subset `L` of the leave-out runs
    /// (FiMO eq. 13; the paper's main results).
    #[default]
    MeanSubtraction,
    /// Subtract the run on the full data `D` with the same seed (FiMO eq. 17,
    /// eq. 3 with the expectation replaced by a mean over seeds).
    FullData,
}

/// Checked settings of [`run_further_training`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FurtherTrainingParams {
    points: Vec<usize>,
    n_seeds: usize,
    seed: u64,
    epochs: Vec<usize>,
    include_full: bool,
}

impl FurtherTrainingParams {
    /// Leave out each of `points` (the subset `L`, FiMO uses `l = 100` on
    /// tables), 10 seeds, base seed 0, epochs `[1]`, full-data runs included.
    pub fn new(points: Vec<usize>) -> Self {
        Self {
            points,
            n_seeds: 10,
            seed: 0,
            epochs: vec![1],
            include_full: true,
        }
    }

    /// Number of seeds `r` (batch orders) averaged (FiMO: 100).
    pub fn n_seeds(mut self, r: usize) -> Self {
        self.n_seeds = r;
        self
    }

    /// Base seed; seed `s` of the average is `derive_seed(seed, s)`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Epochs (or steps) after which the evaluation is recorded, increasing.
    pub fn epochs(mut self, epochs: Vec<usize>) -> Self {
        self.epochs = epochs;
        self
    }

    /// Also run on the full data (needed for [`Adjustment::FullData`]).
    pub fn include_full(mut self, on: bool) -> Self {
        self.include_full = on;
        self
    }

    /// Errors on empty/duplicate points, out-of-range points, 0 seeds, or
    /// epochs that are empty or not strictly increasing.
    pub fn check(&self, n_train: usize) -> Result<()> {
        if self.points.is_empty() {
            return Err(EvalError::invalid_param(
                "further-training points",
                "[]",
                "need at least one training point to leave out",
            ));
        }
        check_indices("further-training points", &self.points, n_train)?;
        let mut sorted = self.points.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(EvalError::invalid_param(
                "further-training points",
                w[0],
                "occurs more than once",
            ));
        }
        if self.n_seeds == 0 {
            return Err(EvalError::invalid_param("n_seeds", 0, "must be ≥ 1"));
        }
        if self.epochs.is_empty() || self.epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(EvalError::invalid_param(
                "epochs",
                format!("{:?}", self.epochs),
                "must be non-empty and strictly increasing",
            ));
        }
        Ok(())
    }
}

/// Test losses from further training, indexed by epoch, seed, left-out point
/// and test point; what [`FurtherTrainer`] runs fill and the gold standard reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FurtherTrainingResult {
    /// Left-out training points `L`, in order.
    pub points: Vec<usize>,
    /// Number of test points.
    pub n_test: usize,
    /// Recorded epochs.
    pub epochs: Vec<usize>,
    /// Seed of each run.
    pub seeds: Vec<u64>,
    /// `loo[((e·S + s)·l + k)·m + t]`: test loss `t` after epoch `e`, seed `s`,
    /// leaving out `points[k]`.
    pub loo: Vec<f32>,
    /// `full[(e·S + s)·m + t]`: the same on the full data, if run.
    pub full: Option<Vec<f32>>,
}

impl FurtherTrainingResult {
    /// An all-zero result to fill with [`Self::set_loo`] / [`Self::set_full`].
    pub fn zeros(
        points: Vec<usize>,
        n_test: usize,
        epochs: Vec<usize>,
        seeds: Vec<u64>,
        with_full: bool,
    ) -> Self {
        let (e, s, l) = (epochs.len(), seeds.len(), points.len());
        Self {
            loo: vec![0.0; e * s * l * n_test],
            full: with_full.then(|| vec![0.0; e * s * n_test]),
            points,
            n_test,
            epochs,
            seeds,
        }
    }

    fn loo_offset(&self, e: usize, s: usize, k: usize) -> usize {
        ((e * self.seeds.len() + s) * self.points.len() + k) * self.n_test
    }

    /// Test losses after epoch index `e`, seed index `s`, leaving out `points[k]`.
    pub fn loo(&self, e: usize, s: usize, k: usize) -> &[f32] {
        let o = self.loo_offset(e, s, k);
        &self.loo[o..o + self.n_test]
    }

    /// Stores one leave-out run's test losses.
    pub fn set_loo(&mut self, e: usize, s: usize, k: usize, losses: &[f32]) -> Result<()> {
        if losses.len() != self.n_test {
            return Err(EvalError::length(
                "further-training losses",
                self.n_test,
                losses.len(),
            ));
        }
        let o = self.loo_offset(e, s, k);
        self.loo[o..o + self.n_test].copy_from_slice(losses);
        Ok(())
    }

    /// Test losses of the full-data run after epoch index `e`, seed index `s`.
    pub fn full(&self, e: usize, s: usize) -> Option<&[f32]> {
        let o = (e * self.seeds.len() + s) * self.n_test;
        self.full.as_ref().map(|f| &f[o..o + self.n_test])
    }

    /// Stores one full-data run's test losses (allocating the table if needed).
    pub fn set_full(&mut self, e: usize, s: usize, losses: &[f32]) -> Result<()> {
        if losses.len() != self.n_test {
            return Err(EvalError::length(
                "further-training losses",
                self.n_test,
                losses.len(),
            ));
        }
        let size = self.epochs.len() * self.seeds.len() * self.n_test;
        let o = (e * self.seeds.len() + s) * self.n_test;
        let f = self.full.get_or_insert_with(|| vec![0.0; size]);
        f[o..o + self.n_test].copy_from_slice(losses);
        Ok(())
    }

    /// Gold attribution scores `a` (`l × m`, row `k` = `points[k]`) after
    /// epoch index `e`, averaged over the seed indices `seeds` (FiMO eq. 13 or 17).
    pub fn gold(&self, e: usize, seeds: &[usize], adjustment: Adjustment) -> Result<ScoreMatrix> {
        if e >= self.epochs.len() {
            return Err(EvalError::IndexOutOfRange {
                what: "further-training epoch index".into(),
                index: e,
                len: self.epochs.len(),
            });
        }
        if seeds.is_empty() {
            return Err(EvalError::invalid_param(
                "seed indices",
                "[]",
                "need at least one seed",
            ));
        }
        check_indices("further-training seed indices", seeds, self.seeds.len())?;
        if adjustment == Adjustment::FullData && self.full.is_none() {
            return Err(EvalError::invalid_param(
                "adjustment",
                "FullData",
                "the further-training result has no full-data runs (include_full = false)",
            ));
        }
        let (l, m) = (self.points.len(), self.n_test);
        let mut out = vec![0.0f64; l * m];
        let mut base = vec![0.0f64; m];
        for &s in seeds {
            match adjustment {
                Adjustment::MeanSubtraction => {
                    base.iter_mut().for_each(|v| *v = 0.0);
                    for k in 0..l {
                        for (b, &v) in base.iter_mut().zip(self.loo(e, s, k)) {
                            *b += v as f64 / l as f64;
                        }
                    }
                }
                Adjustment::FullData => {
                    let f = self.full(e, s).expect("checked above");
                    for (b, &v) in base.iter_mut().zip(f) {
                        *b = v as f64;
                    }
                }
            }
            for k in 0..l {
                for (t, &v) in self.loo(e, s, k).iter().enumerate() {
                    out[k * m + t] += (v as f64 - base[t]) / seeds.len() as f64;
                }
            }
        }
        Ok(ScoreMatrix::from_vec(
            l,
            m,
            out.into_iter().map(|v| v as f32).collect(),
        )?)
    }
}

/// Runs every further training (each left-out point and, optionally, the full
/// data, for every seed) through [`FurtherTrainer::further_train_many`] and
/// collects the test losses.
pub fn run_further_training(
    trainer: &dyn FurtherTrainer,
    params: &FurtherTrainingParams,
) -> Result<FurtherTrainingResult> {
    params.check(trainer.n_train())?;
    if trainer.n_test() == 0 {
        return Err(EvalError::EmptyTestSet {
            what: "further training".into(),
        });
    }
    let seeds = model_seeds(params.seed, params.n_seeds);
    let l = params.points.len();
    // job (s, k): k < l leaves out points[k]; k == l is the full-data run
    let n_k = if params.include_full { l + 1 } else { l };
    let jobs: Vec<(usize, usize)> = (0..seeds.len())
        .flat_map(|s| (0..n_k).map(move |k| (s, k)))
        .collect();
    let calls: Vec<(Option<usize>, u64)> = jobs
        .iter()
        .map(|&(s, k)| ((k < l).then(|| params.points[k]), seeds[s]))
        .collect();
    let runs = trainer.further_train_many(&calls, &params.epochs)?;
    if runs.len() != jobs.len() {
        return Err(EvalError::length(
            "further_train_many results",
            jobs.len(),
            runs.len(),
        ));
    }
    let mut out = FurtherTrainingResult::zeros(
        params.points.clone(),
        trainer.n_test(),
        params.epochs.clone(),
        seeds,
        params.include_full,
    );
    for (&(s, k), run) in jobs.iter().zip(&runs) {
        if run.len() != params.epochs.len() {
            return Err(EvalError::length(
                "further-training evaluations (one per epoch)",
                params.epochs.len(),
                run.len(),
            ));
        }
        for (e, losses) in run.iter().enumerate() {
            if k < l {
                out.set_loo(e, s, k, losses)?;
            } else {
                out.set_full(e, s, losses)?;
            }
        }
    }
    Ok(out)
}

/// Compares a method's scores with the further-training gold standard by
/// cosine similarity (FiMO §6, Figures 2–3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FimoComparison {
    adjustment: Adjustment,
    seed_group_sizes: Vec<usize>,
}

impl Default for FimoComparison {
    /// Mean subtraction (eq. 13); seed-group sizes 1, 2, 5, 10, 20, 50, 100
    /// (those not above the number of seeds are used).
    fn default() -> Self {
        Self {
            adjustment: Adjustment::MeanSubtraction,
            seed_group_sizes: vec![1, 2, 5, 10, 20, 50, 100],
        }
    }
}

/// Cosine similarity to the gold standard after one epoch count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochCosine {
    /// Epochs of further training.
    pub epoch: usize,
    /// Mean, standard error over test points (undefined cosines skipped).
    pub summary: Summary,
    /// Per-test-point cosine (`None` if a vector is zero).
    pub per_test: Vec<Option<f64>>,
}

/// Maximum over epochs of the mean cosine with `r` seeds averaged (Figure 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedsCosine {
    /// Seeds averaged per gold vector.
    pub r: usize,
    /// Disjoint groups of `r` seeds (`⌊S / r⌋`).
    pub n_groups: usize,
    /// Epoch at which the mean cosine is largest.
    pub best_epoch: usize,
    /// Mean and standard error over test points × groups at that epoch.
    pub summary: Summary,
}

/// Result of [`FimoComparison`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FimoReport {
    /// Adjustment used.
    pub adjustment: Adjustment,
    /// Cosine vs epochs with all seeds averaged (Figure 2).
    pub by_epoch: Vec<EpochCosine>,
    /// Maximum cosine vs number of seeds averaged (Figure 3).
    pub by_seeds: Vec<SeedsCosine>,
}

impl FimoComparison {
    /// The defaults.
    pub fn params() -> Self {
        Self::default()
    }

    /// Adjustment for the effect of further training alone.
    pub fn adjustment(mut self, a: Adjustment) -> Self {
        self.adjustment = a;
        self
    }

    /// Seed-group sizes `r` for the Figure 3 curve (each ≥ 1).
    pub fn seed_group_sizes(mut self, sizes: Vec<usize>) -> Self {
        self.seed_group_sizes = sizes;
        self
    }

    /// Errors on a seed-group size of 0.
    pub fn check(&self) -> Result<()> {
        if self.seed_group_sizes.contains(&0) {
            return Err(EvalError::invalid_param(
                "seed group size",
                0,
                "must be ≥ 1",
            ));
        }
        Ok(())
    }

    /// Compares `scores` (`n_train × n_test`; rows `points` are used) with the
    /// gold standard in `gold`.
    pub fn compare(
        &self,
        scores: &ScoreMatrix,
        gold: &FurtherTrainingResult,
    ) -> Result<FimoReport> {
        self.check()?;
        if scores.n_test() != gold.n_test {
            return Err(EvalError::ScoreShape {
                metric: "FiMO comparison".into(),
                expected_train: scores.n_train(),
                expected_test: gold.n_test,
                got_train: scores.n_train(),
                got_test: scores.n_test(),
            });
        }
        check_indices("further-training points", &gold.points, scores.n_train())?;
        let m = gold.n_test;
        // method scores restricted to L, test-major
        let method: Vec<Vec<f64>> = (0..m)
            .map(|t| {
                gold.points
                    .iter()
                    .map(|&i| scores.get(i, t) as f64)
                    .collect()
            })
            .collect();
        let cosines = |e: usize, seeds: &[usize]| -> Result<Vec<Option<f64>>> {
            let g = gold.gold(e, seeds, self.adjustment)?;
            Ok((0..m)
                .map(|t| cosine(&column_f64(&g, t), &method[t]))
                .collect())
        };
        let all: Vec<usize> = (0..gold.seeds.len()).collect();
        let mut by_epoch = Vec::with_capacity(gold.epochs.len());
        for (e, &epoch) in gold.epochs.iter().enumerate() {
            let per_test = cosines(e, &all)?;
            by_epoch.push(EpochCosine {
                epoch,
                summary: Summary::of_defined(&per_test),
                per_test,
            });
        }
        let mut by_seeds = Vec::new();
        for &r in &self.seed_group_sizes {
            let n_groups = gold.seeds.len() / r;
            if n_groups == 0 {
                continue;
            }
            let mut best: Option<(usize, Summary)> = None;
            for (e, &epoch) in gold.epochs.iter().enumerate() {
                let mut vals = Vec::with_capacity(n_groups * m);
                for grp in 0..n_groups {
                    let seeds: Vec<usize> = (grp * r..(grp + 1) * r).collect();
                    vals.extend(cosines(e, &seeds)?);
                }
                let s = Summary::of_defined(&vals);
                if best.as_ref().is_none_or(|(_, b)| s.mean > b.mean) {
                    best = Some((epoch, s));
                }
            }
            let (best_epoch, summary) = best.expect("at least one epoch");
            by_seeds.push(SeedsCosine {
                r,
                n_groups,
                best_epoch,
                summary,
            });
        }
        Ok(FimoReport {
            adjustment: self.adjustment,
            by_epoch,
            by_seeds,
        })
    }
}

fn column_f64(m: &ScoreMatrix, t: usize) -> Vec<f64> {
    m.column(t).iter().map(|&v| v as f64).collect()
}

impl Metric for FimoComparison {
    type Output = FimoReport;

    fn name(&self) -> &str {
        "fimo-cosine"
    }

    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<FimoReport> {
        let gold = ctx
            .further_training
            .ok_or_else(|| EvalError::MissingContext {
                metric: self.name().into(),
                what: "a further-training result (EvalContext::with_further_training)".into(),
            })?;
        self.compare(scores, gold)
    }
}
