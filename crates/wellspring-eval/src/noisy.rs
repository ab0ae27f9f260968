//! Noisy-label detection (GGDA §5.3/5.4.3, following Ghorbani & Zou 2019 and
//! Jia et al. 2021): after flipping a share of training labels and training
//! on the corrupted set, inspect training points (or whole groups) in the
//! order of their scores and trace the fraction of flipped labels found
//! against the fraction of training data checked.
//!
//! The order is explicit ([`Order`]): self-influence (TracIn-style
//! `τ(z_i, z_i)`) flags mislabelled points by *high* scores — check
//! [`Order::Descending`]; helpfulness to a clean validation set flags them by
//! *low* scores — GGDA checks the lowest-scored groups first,
//! [`Order::Ascending`].
//!
//! Points (or groups) with equal scores form one block checked "at once": the
//! curve is linear across a block, which is the expectation over random
//! orders within it, so constant scores give exactly chance level.
//!
//! Two areas are reported:
//! - `auc`: the area under (fraction of clean points checked, fraction of
//!   flipped points found) — the ROC AUC of the ranking: 1 for a perfect
//!   ranking, 0.5 in expectation for a random one, in `[0, 1]`;
//! - `curve_auc`: the paper's area under (fraction checked, fraction found),
//!   which equals `p/2 + (1 − p)·auc` for a noise share `p` (1 − p/2 at best).

use serde::{Deserialize, Serialize};
use wellspring_core::{Grouping, ScoreMatrix};

use crate::error::{EvalError, Result, check_indices};
use crate::metric::{Aggregation, EvalContext, Metric, aggregate};
use crate::stats::trapezoid;

/// Inspection order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Lowest score first (GGDA: least helpful groups).
    Ascending,
    /// Highest score first (self-influence).
    Descending,
}

/// Noisy-label detection with an explicit order; also the [`Metric`] (the
/// score matrix is aggregated over its columns — pass self-influence as a
/// one-column matrix).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoisyLabelDetection {
    order: Order,
    aggregation: Aggregation,
}

/// Detection curve and its areas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionResult {
    /// Order used.
    pub order: Order,
    /// Number of flipped labels.
    pub n_flipped: usize,
    /// Training points.
    pub n_train: usize,
    /// `n_flipped / n_train`.
    pub noise_share: f64,
    /// Fraction of training points checked at each block boundary (from 0 to 1).
    pub checked: Vec<f64>,
    /// Fraction of flipped labels found at the same boundaries.
    pub found: Vec<f64>,
    /// ROC AUC of the ranking (1 = perfect, 0.5 = chance).
    pub auc: f64,
    /// Area under `found` vs `checked` (GGDA's plot).
    pub curve_auc: f64,
}

impl NoisyLabelDetection {
    /// Detection in `order`, aggregating score columns by sum.
    pub fn new(order: Order) -> Self {
        Self {
            order,
            aggregation: Aggregation::Sum,
        }
    }

    /// How a multi-column score matrix becomes one score per point or group.
    pub fn aggregation(mut self, a: Aggregation) -> Self {
        self.aggregation = a;
        self
    }

    /// Detection from one score per training point.
    pub fn evaluate_points(&self, scores: &[f64], flipped: &[usize]) -> Result<DetectionResult> {
        let blocks: Vec<(f64, usize, usize)> = {
            let n = scores.len();
            let is_flipped = flipped_mask(flipped, n)?;
            (0..n)
                .map(|i| (scores[i], 1, is_flipped[i] as usize))
                .collect()
        };
        self.curve(blocks, flipped.len(), scores.len())
    }

    /// Detection from one score per group: groups are checked whole.
    pub fn evaluate_groups(
        &self,
        group_scores: &[f64],
        grouping: &Grouping,
        flipped: &[usize],
    ) -> Result<DetectionResult> {
        if group_scores.len() != grouping.n_groups() {
            return Err(EvalError::length(
                "group scores (one per group)",
                grouping.n_groups(),
                group_scores.len(),
            ));
        }
        let n = grouping.n_points();
        let is_flipped = flipped_mask(flipped, n)?;
        let blocks = grouping
            .groups()
            .iter()
            .zip(group_scores)
            .map(|(members, &s)| {
                (
                    s,
                    members.len(),
                    members.iter().filter(|&&i| is_flipped[i]).count(),
                )
            })
            .collect();
        self.curve(blocks, flipped.len(), n)
    }

    /// Blocks `(score, size, flipped)` → curve and areas.
    fn curve(
        &self,
        mut blocks: Vec<(f64, usize, usize)>,
        n_flipped: usize,
        n: usize,
    ) -> Result<DetectionResult> {
        if let Some(b) = blocks.iter().position(|b| !b.0.is_finite()) {
            return Err(EvalError::invalid_param(
                format!("noisy-label score {b}"),
                blocks[b].0,
                "must be finite",
            ));
        }
        if n_flipped == 0 || n_flipped >= n {
            return Err(EvalError::NoiseShare {
                share: n_flipped as f64 / n.max(1) as f64,
                flipped: n_flipped,
                n,
            });
        }
        // stable sort keeps equal scores together regardless of direction
        blocks.sort_by(|a, b| {
            let o = a.0.partial_cmp(&b.0).expect("finite");
            match self.order {
                Order::Ascending => o,
                Order::Descending => o.reverse(),
            }
        });
        let n_clean = n - n_flipped;
        let (mut checked, mut found, mut fpr) = (vec![0.0], vec![0.0], vec![0.0]);
        let (mut c, mut f) = (0usize, 0usize);
        let mut k = 0;
        while k < blocks.len() {
            let s = blocks[k].0;
            while k < blocks.len() && blocks[k].0 == s {
                c += blocks[k].1;
                f += blocks[k].2;
                k += 1;
            }
            checked.push(c as f64 / n as f64);
            found.push(f as f64 / n_flipped as f64);
            fpr.push((c - f) as f64 / n_clean as f64);
        }
        Ok(DetectionResult {
            order: self.order,
            n_flipped,
            n_train: n,
            noise_share: n_flipped as f64 / n as f64,
            auc: trapezoid(&fpr, &found).clamp(0.0, 1.0),
            curve_auc: trapezoid(&checked, &found).clamp(0.0, 1.0),
            checked,
            found,
        })
    }
}

fn flipped_mask(flipped: &[usize], n: usize) -> Result<Vec<bool>> {
    check_indices("flipped indices", flipped, n)?;
    let mut mask = vec![false; n];
    for &i in flipped {
        if mask[i] {
            return Err(EvalError::invalid_param(
                "flipped indices",
                i,
                "occurs more than once",
            ));
        }
        mask[i] = true;
    }
    Ok(mask)
}

impl Metric for NoisyLabelDetection {
    type Output = DetectionResult;

    fn name(&self) -> &str {
        "noisy-label-auc"
    }

    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<DetectionResult> {
        let flipped = ctx.flipped.ok_or_else(|| EvalError::MissingContext {
            metric: self.name().into(),
            what: "flipped indices (EvalContext::with_flipped)".into(),
        })?;
        if scores.n_test() == 0 {
            return Err(EvalError::EmptyTestSet {
                what: self.name().into(),
            });
        }
        let s = aggregate(scores, self.aggregation);
        match ctx.grouping {
            Some(g) if ctx.is_group_scores(scores) => self.evaluate_groups(&s, g, flipped),
            _ => {
                if let Some(r) = ctx.retrainer
                    && r.n_train() != scores.n_train()
                {
                    return Err(EvalError::ScoreShape {
                        metric: self.name().into(),
                        expected_train: r.n_train(),
                        expected_test: scores.n_test(),
                        got_train: scores.n_train(),
                        got_test: scores.n_test(),
                    });
                }
                self.evaluate_points(&s, flipped)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::RngExt;

    #[test]
    fn perfect_worst_and_constant() {
        let flipped = [0, 3];
        let scores = [9.0, 1.0, 2.0, 8.0, 0.0];
        let d = NoisyLabelDetection::new(Order::Descending);
        let r = d.evaluate_points(&scores, &flipped).unwrap();
        assert!((r.auc - 1.0).abs() < 1e-12);
        assert!((r.curve_auc - (1.0 - 0.4 / 2.0)).abs() < 1e-12);
        let r = NoisyLabelDetection::new(Order::Ascending)
            .evaluate_points(&scores, &flipped)
            .unwrap();
        assert!(r.auc.abs() < 1e-12);
        let r = d.evaluate_points(&[1.0; 5], &flipped).unwrap();
        assert!((r.auc - 0.5).abs() < 1e-12 && (r.curve_auc - 0.5).abs() < 1e-12);
        assert!(matches!(
            d.evaluate_points(&scores, &[]),
            Err(EvalError::NoiseShare { .. })
        ));
        assert!(matches!(
            d.evaluate_points(&scores, &[0, 1, 2, 3, 4]),
            Err(EvalError::NoiseShare { .. })
        ));
        assert!(d.evaluate_points(&scores, &[7]).is_err());
    }

    proptest! {
        #[test]
        fn auc_in_range_and_identity(
            v in proptest::collection::vec((-10i32..10, any::<bool>()), 2..80),
            desc in any::<bool>(),
        ) {
            let scores: Vec<f64> = v.iter().map(|p| p.0 as f64).collect();
            let flipped: Vec<usize> = (0..v.len()).filter(|&i| v[i].1).collect();
            prop_assume!(!flipped.is_empty() && flipped.len() < v.len());
            let order = if desc { Order::Descending } else { Order::Ascending };
            let r = NoisyLabelDetection::new(order).evaluate_points(&scores, &flipped).unwrap();
            prop_assert!((0.0..=1.0).contains(&r.auc));
            prop_assert!((0.0..=1.0).contains(&r.curve_auc));
            let p = r.noise_share;
            prop_assert!((r.curve_auc - (p / 2.0 + (1.0 - p) * r.auc)).abs() < 1e-9);
            // singleton groups = points
            let g = Grouping::singletons(v.len());
            let rg = NoisyLabelDetection::new(order).evaluate_groups(&scores, &g, &flipped).unwrap();
            prop_assert!((rg.auc - r.auc).abs() < 1e-12);
        }

        #[test]
        fn perfect_ranking_scores_one(n in 3usize..80, k in 1usize..10, seed in any::<u64>()) {
            prop_assume!(k < n);
            let flipped: Vec<usize> = (0..k).map(|i| (i * 7 + seed as usize % 5) % n).collect();
            let mut f = flipped.clone();
            f.sort_unstable();
            f.dedup();
            let scores: Vec<f64> = (0..n).map(|i| if f.contains(&i) { 10.0 + i as f64 } else { i as f64 / n as f64 }).collect();
            let r = NoisyLabelDetection::new(Order::Descending).evaluate_points(&scores, &f).unwrap();
            prop_assert!((r.auc - 1.0).abs() < 1e-12);
        }

        #[test]
        fn random_ranking_is_chance_on_average(seed in any::<u64>()) {
            let n = 400;
            let mut rng = wellspring_core::rng(seed);
            let flipped: Vec<usize> = (0..n).filter(|i| i % 5 == 0).collect();
            let mut total = 0.0;
            let reps = 20;
            for _ in 0..reps {
                let s: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
                total += NoisyLabelDetection::new(Order::Descending).evaluate_points(&s, &flipped).unwrap().auc;
            }
            // standard error of one AUC here is about 0.032; of the mean about 0.007
            prop_assert!((total / reps as f64 - 0.5).abs() < 0.05);
        }
    }
}
