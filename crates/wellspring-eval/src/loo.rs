//! Leave-one-out correlation (Koh & Liang 2017, Fig. 2; brittleness paper §2.1
//! "leave-one-out influences"): on a small set of training points, retrain
//! without each and correlate the actual effect with the scores.
//!
//! Effects use the sign of [`ScoreMatrix`] (positive = the point helps):
//! margin effect `f(z; θ*(D)) − f(z; θ*(D_{-i}))`, loss effect
//! `L(z; θ*(D_{-i})) − L(z; θ*(D))`, each averaged over `r` models.

use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use wellspring_core::{ScoreMatrix, derive_seed_str, rng};

use crate::error::{EvalError, Result, check_indices, check_shape};
use crate::metric::{EvalContext, Metric};
use crate::retrain::{Output, RetrainSpec, Retrainer, model_seeds, run_checked};
use crate::stats::{Summary, pearson, spearman};

/// Which training points to leave out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LooPoints {
    /// These points.
    Given(Vec<usize>),
    /// `count` points drawn uniformly without replacement (seeded).
    Random(usize),
}

/// Checked leave-one-out correlation parameters; also the [`Metric`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LooCorrelation {
    points: LooPoints,
    models: usize,
    seed: u64,
}

impl Default for LooCorrelation {
    /// 20 random points, 1 model per training set, seed 0.
    fn default() -> Self {
        Self {
            points: LooPoints::Random(20),
            models: 1,
            seed: 0,
        }
    }
}

/// Actual leave-one-out effects, reusable across methods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LooGroundTruth {
    /// Training-set size.
    pub n_train: usize,
    /// Test-set size.
    pub n_test: usize,
    /// Points left out, in order.
    pub points: Vec<usize>,
    /// `margin[k][t]`: margin effect of leaving out `points[k]` on test `t`.
    pub margin: Vec<Vec<f64>>,
    /// `loss[k][t]`: loss effect likewise.
    pub loss: Vec<Vec<f64>>,
}

/// Pearson and Spearman agreement between scores and actual effects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrelationReport {
    /// Per-test Pearson correlations over the left-out points, summarised.
    pub pearson: Summary,
    /// Per-test Spearman correlations, summarised.
    pub spearman: Summary,
    /// Per-test Pearson.
    pub per_test_pearson: Vec<Option<f64>>,
    /// Per-test Spearman.
    pub per_test_spearman: Vec<Option<f64>>,
    /// Pearson over all `(point, test)` pairs pooled.
    pub pooled_pearson: Option<f64>,
    /// Spearman over all pairs pooled.
    pub pooled_spearman: Option<f64>,
}

/// Result of [`LooCorrelation`]: agreement with margin and with loss effects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LooResult {
    /// Points left out.
    pub points: Vec<usize>,
    /// Against the margin effect.
    pub margin: CorrelationReport,
    /// Against the loss effect.
    pub loss: CorrelationReport,
}

impl LooCorrelation {
    /// The defaults.
    pub fn params() -> Self {
        Self::default()
    }

    /// Leave out exactly these points.
    pub fn points(mut self, points: Vec<usize>) -> Self {
        self.points = LooPoints::Given(points);
        self
    }

    /// Leave out `count` random points.
    pub fn random_points(mut self, count: usize) -> Self {
        self.points = LooPoints::Random(count);
        self
    }

    /// Models per training set (≥ 1).
    pub fn models(mut self, r: usize) -> Self {
        self.models = r;
        self
    }

    /// Seed of the point draw and the model seeds.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The points to leave out, checked against `n_train` (≥ 2, in range, distinct).
    pub fn resolve_points(&self, n_train: usize) -> Result<Vec<usize>> {
        if self.models == 0 {
            return Err(EvalError::invalid_param("LOO models", 0, "must be ≥ 1"));
        }
        let pts = match &self.points {
            LooPoints::Given(p) => p.clone(),
            LooPoints::Random(c) => {
                if *c > n_train {
                    return Err(EvalError::invalid_param(
                        "LOO point count",
                        c,
                        format!("exceeds the {n_train} training points"),
                    ));
                }
                let mut r = rng(derive_seed_str(self.seed, "loo-points"));
                let mut p = sample(&mut r, n_train, *c).into_vec();
                p.sort_unstable();
                p
            }
        };
        if pts.len() < 2 {
            return Err(EvalError::invalid_param(
                "LOO points",
                pts.len(),
                "need at least 2 points for a correlation",
            ));
        }
        check_indices("LOO points", &pts, n_train)?;
        let mut s = pts.clone();
        s.sort_unstable();
        if let Some(w) = s.windows(2).find(|w| w[0] == w[1]) {
            return Err(EvalError::invalid_param(
                "LOO points",
                w[0],
                "occurs more than once",
            ));
        }
        if n_train < 2 {
            return Err(EvalError::invalid_param(
                "training set size",
                n_train,
                "leave-one-out needs at least 2 points",
            ));
        }
        Ok(pts)
    }

    /// Retrains on the full data and without each point.
    pub fn ground_truth(&self, retrainer: &dyn Retrainer) -> Result<LooGroundTruth> {
        let n = retrainer.n_train();
        let m = retrainer.n_test();
        if m == 0 {
            return Err(EvalError::EmptyTestSet {
                what: "leave-one-out correlation".into(),
            });
        }
        let points = self.resolve_points(n)?;
        let seeds = model_seeds(derive_seed_str(self.seed, "loo-models"), self.models);
        let mut specs = vec![RetrainSpec::full(n).tagged("loo/full")];
        for &i in &points {
            specs.push(RetrainSpec::without(n, &[i])?.tagged(format!("loo/{i}")));
        }
        let jobs: Vec<(RetrainSpec, u64)> = specs
            .iter()
            .flat_map(|s| seeds.iter().map(move |&seed| (s.clone(), seed)))
            .collect();
        let outs = run_checked(retrainer, &jobs)?;
        let r = seeds.len();
        let mean_of = |spec: usize, out: Output| -> Vec<f64> {
            let mut acc = vec![0.0; m];
            for o in &outs[spec * r..(spec + 1) * r] {
                for (a, v) in acc.iter_mut().zip(o.values(out)) {
                    *a += v / r as f64;
                }
            }
            acc
        };
        let (full_margin, full_negloss) = (mean_of(0, Output::Margin), mean_of(0, Output::NegLoss));
        let mut margin = Vec::with_capacity(points.len());
        let mut loss = Vec::with_capacity(points.len());
        for k in 0..points.len() {
            let (mk, lk) = (
                mean_of(k + 1, Output::Margin),
                mean_of(k + 1, Output::NegLoss),
            );
            margin.push((0..m).map(|t| full_margin[t] - mk[t]).collect());
            // neg-loss difference = L(D_{-i}) − L(D)
            loss.push((0..m).map(|t| full_negloss[t] - lk[t]).collect());
        }
        Ok(LooGroundTruth {
            n_train: n,
            n_test: m,
            points,
            margin,
            loss,
        })
    }
}

impl LooGroundTruth {
    /// Correlates `scores` with the recorded effects.
    pub fn score(&self, scores: &ScoreMatrix) -> Result<LooResult> {
        check_shape(
            "leave-one-out correlation",
            scores,
            self.n_train,
            self.n_test,
        )?;
        Ok(LooResult {
            points: self.points.clone(),
            margin: self.report(scores, &self.margin),
            loss: self.report(scores, &self.loss),
        })
    }

    fn report(&self, scores: &ScoreMatrix, effects: &[Vec<f64>]) -> CorrelationReport {
        let mut per_p = Vec::with_capacity(self.n_test);
        let mut per_s = Vec::with_capacity(self.n_test);
        let (mut all_x, mut all_y) = (Vec::new(), Vec::new());
        for t in 0..self.n_test {
            let x: Vec<f64> = self
                .points
                .iter()
                .map(|&i| scores.get(i, t) as f64)
                .collect();
            let y: Vec<f64> = effects.iter().map(|e| e[t]).collect();
            per_p.push(pearson(&x, &y));
            per_s.push(spearman(&x, &y));
            all_x.extend(x);
            all_y.extend(y);
        }
        CorrelationReport {
            pearson: Summary::of_defined(&per_p),
            spearman: Summary::of_defined(&per_s),
            per_test_pearson: per_p,
            per_test_spearman: per_s,
            pooled_pearson: pearson(&all_x, &all_y),
            pooled_spearman: spearman(&all_x, &all_y),
        }
    }
}

impl Metric for LooCorrelation {
    type Output = LooResult;

    fn name(&self) -> &str {
        "loo-correlation"
    }

    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<LooResult> {
        let r = ctx.require_retrainer(self.name())?;
        check_shape(self.name(), scores, r.n_train(), r.n_test())?;
        self.ground_truth(r)?.score(scores)
    }
}
