//! Removal-based metrics of GGDA (Ley et al., "Generalized group data
//! attribution", §5.3–5.4):
//!
//! - [`RetrainingScore`] (§5.4.1): remove the top 1/5/10/20% *most* important
//!   training points, retrain, report test accuracy (lower = the method found
//!   points that matter);
//! - [`DatasetPruning`] (§5.4.2): remove the 25/50/75% *least* important,
//!   retrain, report test accuracy (higher = better).
//!
//! Importance is one number per training point — or per group, in which case
//! whole groups are removed in order until the count is reached and the last
//! group contributes random (seeded) members on overlap (§5.4.1). A score
//! matrix becomes importances through an explicit [`Aggregation`] over the
//! test columns.

use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use wellspring_core::{Grouping, ScoreMatrix, derive_seed_str, rng};

use crate::error::{EvalError, Result, check_shape};
use crate::metric::{Aggregation, EvalContext, Metric, aggregate};
use crate::retrain::{RetrainSpec, Retrainer, model_seeds, run_checked};
use crate::stats::Summary;

/// Importance of each training point, or of each group of a [`Grouping`].
#[derive(Clone, Copy, Debug)]
pub enum Ranking<'a> {
    /// One importance per training point.
    Points(&'a [f64]),
    /// One importance per group.
    Groups {
        /// Importance of group `g`.
        scores: &'a [f64],
        /// The groups.
        grouping: &'a Grouping,
    },
}

/// Which points a removal takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Which {
    /// Highest importance first (retraining score).
    MostImportant,
    /// Lowest importance first (dataset pruning).
    LeastImportant,
    /// Uniformly at random (the baseline).
    Random,
}

impl Ranking<'_> {
    /// Number of training points covered.
    pub fn n_points(&self) -> usize {
        match self {
            Ranking::Points(s) => s.len(),
            Ranking::Groups { grouping, .. } => grouping.n_points(),
        }
    }

    fn check(&self) -> Result<()> {
        let scores = match self {
            Ranking::Points(s) => s,
            Ranking::Groups { scores, grouping } => {
                if scores.len() != grouping.n_groups() {
                    return Err(EvalError::length(
                        "group importances (one per group)",
                        grouping.n_groups(),
                        scores.len(),
                    ));
                }
                scores
            }
        };
        if let Some(p) = scores.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::invalid_param(
                format!("importance {p}"),
                scores[p],
                "must be finite",
            ));
        }
        Ok(())
    }
}

/// Ranks indices by `v`, descending or ascending, ties to the lower index.
fn order(v: &[f64], descending: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| {
        let o = v[a].partial_cmp(&v[b]).expect("finite, checked");
        (if descending { o.reverse() } else { o }).then(a.cmp(&b))
    });
    idx
}

/// The `k` training points a removal takes (sorted ascending). Groups are
/// taken whole in order; the group that would overshoot `k` contributes a
/// seeded random subset of the members still needed (GGDA §5.4.1).
pub fn removal_set(ranking: Ranking<'_>, k: usize, which: Which, seed: u64) -> Result<Vec<usize>> {
    ranking.check()?;
    let n = ranking.n_points();
    if k > n {
        return Err(EvalError::invalid_param(
            "removal count",
            k,
            format!("exceeds the {n} training points"),
        ));
    }
    let mut r = rng(derive_seed_str(seed, "removal"));
    let mut out = match (which, ranking) {
        (Which::Random, _) => sample(&mut r, n, k).into_vec(),
        (_, Ranking::Points(s)) => order(s, which == Which::MostImportant)[..k].to_vec(),
        (_, Ranking::Groups { scores, grouping }) => {
            let mut out = Vec::with_capacity(k);
            for g in order(scores, which == Which::MostImportant) {
                let members = &grouping.groups()[g];
                let need = k - out.len();
                if need == 0 {
                    break;
                }
                if members.len() <= need {
                    out.extend_from_slice(members);
                } else {
                    out.extend(
                        sample(&mut r, members.len(), need)
                            .into_iter()
                            .map(|p| members[p]),
                    );
                }
            }
            out
        }
    };
    out.sort_unstable();
    Ok(out)
}

/// Shared settings of [`RetrainingScore`] and [`DatasetPruning`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemovalParams {
    shares: Vec<f64>,
    which: Which,
    models: usize,
    seed: u64,
    aggregation: Aggregation,
    random_baseline: bool,
    full_baseline: bool,
}

/// Test performance after one removal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemovalPoint {
    /// Share of training points removed.
    pub share: f64,
    /// Number removed, `round(share · n)`.
    pub n_removed: usize,
    /// Test accuracy over the models (classification).
    pub accuracy: Option<Summary>,
    /// Mean test loss over the models.
    pub loss: Summary,
    /// Accuracy of each model.
    pub per_model_accuracy: Vec<f64>,
    /// Mean test loss of each model.
    pub per_model_loss: Vec<f64>,
}

/// Result of a removal metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemovalReport {
    /// Which points were removed.
    pub which: Which,
    /// How scores became importances.
    pub aggregation: Aggregation,
    /// Models per removal.
    pub models: usize,
    /// Whether whole groups were removed.
    pub grouped: bool,
    /// No removal (if requested).
    pub full: Option<RemovalPoint>,
    /// One entry per share.
    pub points: Vec<RemovalPoint>,
    /// Random removal of the same counts (if requested).
    pub random: Vec<RemovalPoint>,
}

impl RemovalParams {
    fn new(shares: Vec<f64>, which: Which) -> Self {
        Self {
            shares,
            which,
            models: 1,
            seed: 0,
            aggregation: Aggregation::Sum,
            random_baseline: false,
            full_baseline: true,
        }
    }

    /// Errors on no shares, a share outside `[0, 1)` or 0 models.
    pub fn check(&self) -> Result<()> {
        if self.shares.is_empty() {
            return Err(EvalError::invalid_param(
                "removal shares",
                "[]",
                "need at least one",
            ));
        }
        if let Some(&s) = self.shares.iter().find(|s| !(**s >= 0.0 && **s < 1.0)) {
            return Err(EvalError::invalid_param(
                "removal share",
                s,
                "must lie in [0, 1) (something must be left to train on)",
            ));
        }
        if self.models == 0 {
            return Err(EvalError::invalid_param(
                "models per removal",
                0,
                "must be ≥ 1",
            ));
        }
        Ok(())
    }

    /// Removes, retrains `models` seeds per share, and reports test accuracy/loss.
    pub fn run(&self, ranking: Ranking<'_>, retrainer: &dyn Retrainer) -> Result<RemovalReport> {
        self.check()?;
        ranking.check()?;
        let n = retrainer.n_train();
        if ranking.n_points() != n {
            return Err(EvalError::length(
                "importances (training points covered)",
                n,
                ranking.n_points(),
            ));
        }
        if retrainer.n_test() == 0 {
            return Err(EvalError::EmptyTestSet {
                what: "removal metric".into(),
            });
        }
        let counts: Vec<usize> = self
            .shares
            .iter()
            .map(|s| (s * n as f64).round() as usize)
            .collect();
        if let Some((&s, &k)) = self.shares.iter().zip(&counts).find(|(_, k)| **k >= n) {
            return Err(EvalError::invalid_param(
                "removal share",
                s,
                format!("removes {k} of {n} training points, leaving nothing"),
            ));
        }
        let seeds = model_seeds(derive_seed_str(self.seed, "removal-models"), self.models);
        let mut specs: Vec<(f64, usize, RetrainSpec)> = Vec::new();
        if self.full_baseline {
            specs.push((0.0, 0, RetrainSpec::full(n).tagged("removal/full")));
        }
        for (&s, &k) in self.shares.iter().zip(&counts) {
            let set = removal_set(ranking, k, self.which, self.seed)?;
            specs.push((
                s,
                k,
                RetrainSpec::without(n, &set)?.tagged(format!("removal/{s}")),
            ));
        }
        if self.random_baseline {
            for (&s, &k) in self.shares.iter().zip(&counts) {
                let set = removal_set(ranking, k, Which::Random, self.seed)?;
                specs.push((
                    s,
                    k,
                    RetrainSpec::without(n, &set)?.tagged(format!("random/{s}")),
                ));
            }
        }
        let jobs: Vec<(RetrainSpec, u64)> = specs
            .iter()
            .flat_map(|(_, _, sp)| seeds.iter().map(move |&seed| (sp.clone(), seed)))
            .collect();
        let outs = run_checked(retrainer, &jobs)?;
        let r = seeds.len();
        let mut points: Vec<RemovalPoint> = specs
            .iter()
            .enumerate()
            .map(|(q, (share, k, _))| {
                let chunk = &outs[q * r..(q + 1) * r];
                let acc: Option<Vec<f64>> = chunk.iter().map(|o| o.accuracy()).collect();
                let loss: Vec<f64> = chunk.iter().map(|o| o.mean_loss()).collect();
                RemovalPoint {
                    share: *share,
                    n_removed: *k,
                    accuracy: acc.as_deref().map(Summary::of),
                    loss: Summary::of(&loss),
                    per_model_accuracy: acc.unwrap_or_default(),
                    per_model_loss: loss,
                }
            })
            .collect();
        let full = self.full_baseline.then(|| points.remove(0));
        let random = if self.random_baseline {
            points.split_off(self.shares.len())
        } else {
            Vec::new()
        };
        Ok(RemovalReport {
            which: self.which,
            aggregation: self.aggregation,
            models: self.models,
            grouped: matches!(ranking, Ranking::Groups { .. }),
            full,
            points,
            random,
        })
    }

    fn evaluate_scores(
        &self,
        name: &str,
        scores: &ScoreMatrix,
        ctx: &EvalContext<'_>,
    ) -> Result<RemovalReport> {
        let r = ctx.require_retrainer(name)?;
        let imp = aggregate(scores, self.aggregation);
        match ctx.grouping {
            Some(g) if ctx.is_group_scores(scores) => {
                check_shape(name, scores, g.n_groups(), r.n_test())?;
                self.run(
                    Ranking::Groups {
                        scores: &imp,
                        grouping: g,
                    },
                    r,
                )
            }
            _ => {
                check_shape(name, scores, r.n_train(), r.n_test())?;
                self.run(Ranking::Points(&imp), r)
            }
        }
    }
}

macro_rules! removal_metric {
    ($(#[$doc:meta])* $name:ident, $metric:literal, $shares:expr, $which:expr, $default_doc:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $name(RemovalParams);

        impl Default for $name {
            #[doc = $default_doc]
            fn default() -> Self {
                Self(RemovalParams::new($shares, $which))
            }
        }

        impl $name {
            /// The defaults.
            pub fn params() -> Self {
                Self::default()
            }

            /// Shares of the training set removed (each in `[0, 1)`).
            pub fn shares(mut self, shares: Vec<f64>) -> Self {
                self.0.shares = shares;
                self
            }

            /// Models (seeds) retrained per removal (GGDA: 10).
            pub fn models(mut self, r: usize) -> Self {
                self.0.models = r;
                self
            }

            /// Seed of the model seeds and of random choices.
            pub fn seed(mut self, seed: u64) -> Self {
                self.0.seed = seed;
                self
            }

            /// How score columns are combined into importances.
            pub fn aggregation(mut self, a: Aggregation) -> Self {
                self.0.aggregation = a;
                self
            }

            /// Also remove the same counts at random (a baseline).
            pub fn random_baseline(mut self, on: bool) -> Self {
                self.0.random_baseline = on;
                self
            }

            /// Also train on the full data (default on).
            pub fn full_baseline(mut self, on: bool) -> Self {
                self.0.full_baseline = on;
                self
            }

            /// Errors on a bad share or 0 models.
            pub fn check(&self) -> Result<()> {
                self.0.check()
            }

            /// Runs on explicit importances (points or groups).
            pub fn run(&self, ranking: Ranking<'_>, retrainer: &dyn Retrainer) -> Result<RemovalReport> {
                self.0.run(ranking, retrainer)
            }
        }

        impl Metric for $name {
            type Output = RemovalReport;

            fn name(&self) -> &str {
                $metric
            }

            fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<RemovalReport> {
                self.0.evaluate_scores(self.name(), scores, ctx)
            }
        }
    };
}

removal_metric!(
    /// GGDA retraining score (§5.4.1): test accuracy after removing the most
    /// important points (or groups); lower is better.
    RetrainingScore,
    "retraining-score",
    vec![0.01, 0.05, 0.10, 0.20],
    Which::MostImportant,
    "Shares 1, 5, 10, 20 %, most important first, 1 model, seed 0, sum aggregation."
);

removal_metric!(
    /// GGDA dataset pruning (§5.4.2): test accuracy after removing the least
    /// important points (or groups); higher is better.
    DatasetPruning,
    "dataset-pruning",
    vec![0.25, 0.50, 0.75],
    Which::LeastImportant,
    "Shares 25, 50, 75 %, least important first, 1 model, seed 0, sum aggregation."
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn groups_taken_whole_then_partially() {
        let g = Grouping::new(vec![vec![0, 1, 2], vec![3, 4], vec![5]], 6).unwrap();
        let s = [1.0, 3.0, 2.0];
        let set = removal_set(
            Ranking::Groups {
                scores: &s,
                grouping: &g,
            },
            4,
            Which::MostImportant,
            0,
        )
        .unwrap();
        // group 1 (3, 4) and group 2 (5) whole, then one random member of group 0
        assert_eq!(set.len(), 4);
        assert!(set.contains(&3) && set.contains(&4) && set.contains(&5));
        assert_eq!(set.iter().filter(|&&i| i <= 2).count(), 1);
        let least = removal_set(
            Ranking::Groups {
                scores: &s,
                grouping: &g,
            },
            3,
            Which::LeastImportant,
            0,
        )
        .unwrap();
        assert_eq!(least, vec![0, 1, 2]);
        assert!(removal_set(Ranking::Points(&[1.0, 2.0]), 3, Which::MostImportant, 0).is_err());
        assert!(
            removal_set(
                Ranking::Points(&[f64::NAN, 2.0]),
                1,
                Which::MostImportant,
                0
            )
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn singleton_groups_equal_points(
            v in proptest::collection::vec(-20i32..20, 1..60),
            frac in 0.0f64..1.0,
            most in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let s: Vec<f64> = v.iter().map(|&x| x as f64).collect();
            let k = ((s.len() as f64) * frac) as usize;
            let which = if most { Which::MostImportant } else { Which::LeastImportant };
            let g = Grouping::singletons(s.len());
            let a = removal_set(Ranking::Points(&s), k, which, seed).unwrap();
            let b = removal_set(Ranking::Groups { scores: &s, grouping: &g }, k, which, seed).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.len(), k);
            // every removed point is at least as important as every kept one
            let kept: Vec<usize> = (0..s.len()).filter(|i| !a.contains(i)).collect();
            for &i in &a {
                for &j in &kept {
                    let ok = if most { s[i] >= s[j] } else { s[i] <= s[j] };
                    prop_assert!(ok, "removed {} kept {}", i, j);
                }
            }
        }

        #[test]
        fn group_removal_has_exact_count(
            assign in proptest::collection::vec(0usize..5, 1..50),
            frac in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let g = Grouping::from_assignment(&assign).unwrap();
            let s: Vec<f64> = (0..g.n_groups()).map(|x| (x * 7 % 5) as f64).collect();
            let k = ((assign.len() as f64) * frac) as usize;
            let set = removal_set(Ranking::Groups { scores: &s, grouping: &g }, k, Which::MostImportant, seed).unwrap();
            prop_assert_eq!(set.len(), k);
            let mut d = set.clone();
            d.dedup();
            prop_assert_eq!(d.len(), k);
        }
    }
}
