//! Diagnostics of the support vector effect (SVE paper, §4.1–4.2, §5.1.3):
//!
//! - [`ExemplarCount`]: the exemplar set `S_ex^{r,k} = {x_i : count(x_i, D_test, I, k) ≥ r}`
//!   (eq. 4), `count` = number of test points whose top-`k` training points
//!   include `x_i` (Table 1), and, given the poisoned indices, how many
//!   exemplars are poisoned (Table 2);
//! - [`IdenticalClass`]: the identical class / subclass tests (Hanawa et al.
//!   2021; SVE Figure 7): the fraction of test points whose top-ranked
//!   training point has the same class (subclass).

use serde::{Deserialize, Serialize};
use wellspring_core::ScoreMatrix;

use crate::error::{EvalError, Result, check_indices};
use crate::metric::{EvalContext, Metric};

/// How often each training point is among the top-`k` of a test point.
pub fn top_k_counts(scores: &ScoreMatrix, k: usize) -> Vec<usize> {
    let mut counts = vec![0usize; scores.n_train()];
    for j in 0..scores.n_test() {
        for i in scores.top_k(j, k) {
            counts[i] += 1;
        }
    }
    counts
}

/// Exemplar counting (SVE eq. 4, Tables 1–2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExemplarCount {
    k: usize,
    r: usize,
}

/// Result of [`ExemplarCount`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExemplarReport {
    /// Top-`k` considered per test point.
    pub k: usize,
    /// Minimum count `r`.
    pub r: usize,
    /// Exemplars (training indices with count ≥ r), by decreasing count.
    pub exemplars: Vec<usize>,
    /// Their counts.
    pub counts: Vec<usize>,
    /// Number of exemplars that are poisoned (if poisoned indices were given).
    pub n_poisoned: Option<usize>,
    /// `n_poisoned / |exemplars|` (if given and there are exemplars).
    pub poisoned_share: Option<f64>,
}

impl ExemplarCount {
    /// Exemplars among the top `k`, counted at least `r` times (both ≥ 1).
    pub fn new(k: usize, r: usize) -> Self {
        Self { k, r }
    }

    /// Errors on `k = 0` or `r = 0`.
    pub fn check(&self) -> Result<()> {
        if self.k == 0 {
            return Err(EvalError::invalid_param("exemplar top-k", 0, "must be ≥ 1"));
        }
        if self.r == 0 {
            return Err(EvalError::invalid_param(
                "exemplar count r",
                0,
                "must be ≥ 1",
            ));
        }
        Ok(())
    }

    /// Counts exemplars of `scores`, and poisoned ones if `poisoned` is given.
    pub fn count(
        &self,
        scores: &ScoreMatrix,
        poisoned: Option<&[usize]>,
    ) -> Result<ExemplarReport> {
        self.check()?;
        if scores.n_test() == 0 {
            return Err(EvalError::EmptyTestSet {
                what: "exemplar count".into(),
            });
        }
        let counts = top_k_counts(scores, self.k);
        let mut ex: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] >= self.r).collect();
        ex.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let n_poisoned = match poisoned {
            Some(p) => {
                check_indices("poisoned indices", p, scores.n_train())?;
                let mut mask = vec![false; scores.n_train()];
                p.iter().for_each(|&i| mask[i] = true);
                Some(ex.iter().filter(|&&i| mask[i]).count())
            }
            None => None,
        };
        Ok(ExemplarReport {
            k: self.k,
            r: self.r,
            counts: ex.iter().map(|&i| counts[i]).collect(),
            poisoned_share: n_poisoned
                .filter(|_| !ex.is_empty())
                .map(|p| p as f64 / ex.len() as f64),
            n_poisoned,
            exemplars: ex,
        })
    }
}

impl Metric for ExemplarCount {
    type Output = ExemplarReport;

    fn name(&self) -> &str {
        "exemplars"
    }

    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<ExemplarReport> {
        self.count(scores, ctx.poisoned)
    }
}

/// Identical class and identical subclass tests (Hanawa et al. 2021; SVE Fig. 7).
///
/// Compares with the test labels in the context; Hanawa et al. use the
/// model's *predicted* class of the test point — pass predictions as test
/// labels for that reading.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdenticalClass;

/// Result of [`IdenticalClass`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdenticalReport {
    /// Fraction of test points whose top-1 training point has their class.
    pub class_rate: f64,
    /// Same for subclasses (if subclass labels were given).
    pub subclass_rate: Option<f64>,
    /// Top-1 training point per test point.
    pub top1: Vec<usize>,
    /// Per test point: same class?
    pub same_class: Vec<bool>,
    /// Per test point: same subclass?
    pub same_subclass: Option<Vec<bool>>,
}

impl IdenticalClass {
    /// Runs both tests on explicit labels.
    pub fn run(
        &self,
        scores: &ScoreMatrix,
        train_labels: &[usize],
        test_labels: &[usize],
        subclasses: Option<(&[usize], &[usize])>,
    ) -> Result<IdenticalReport> {
        let (n, m) = scores.shape();
        if m == 0 {
            return Err(EvalError::EmptyTestSet {
                what: "identical class test".into(),
            });
        }
        if train_labels.len() != n {
            return Err(EvalError::length("training labels", n, train_labels.len()));
        }
        if test_labels.len() != m {
            return Err(EvalError::length("test labels", m, test_labels.len()));
        }
        if n == 0 {
            return Err(EvalError::invalid_param("training set", 0, "is empty"));
        }
        let top1: Vec<usize> = (0..m).map(|j| scores.top_k(j, 1)[0]).collect();
        let same_class: Vec<bool> = (0..m)
            .map(|j| train_labels[top1[j]] == test_labels[j])
            .collect();
        let same_subclass = match subclasses {
            Some((tr, te)) => {
                if tr.len() != n {
                    return Err(EvalError::length("training subclasses", n, tr.len()));
                }
                if te.len() != m {
                    return Err(EvalError::length("test subclasses", m, te.len()));
                }
                Some((0..m).map(|j| tr[top1[j]] == te[j]).collect::<Vec<bool>>())
            }
            None => None,
        };
        let rate = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64;
        Ok(IdenticalReport {
            class_rate: rate(&same_class),
            subclass_rate: same_subclass.as_deref().map(rate),
            top1,
            same_class,
            same_subclass,
        })
    }
}

impl Metric for IdenticalClass {
    type Output = IdenticalReport;

    fn name(&self) -> &str {
        "identical-class"
    }

    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<IdenticalReport> {
        let tr = ctx.require_train_labels(self.name())?;
        let te = ctx.require_test_labels(self.name())?;
        let sub = ctx.train_subclasses.zip(ctx.test_subclasses);
        self.run(scores, tr, te, sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemplars_and_identical_class() {
        // 4 train x 3 test; train 2 is top-1 for every test point
        let s = ScoreMatrix::from_vec(
            4,
            3,
            vec![
                0.1, 0.0, 0.5, //
                0.2, 0.9, 0.0, //
                1.0, 1.0, 1.0, //
                0.0, 0.1, 0.6,
            ],
        )
        .unwrap();
        let r = ExemplarCount::new(1, 3).count(&s, Some(&[2])).unwrap();
        assert_eq!(r.exemplars, vec![2]);
        assert_eq!(r.n_poisoned, Some(1));
        assert_eq!(r.poisoned_share, Some(1.0));
        let r = ExemplarCount::new(2, 1).count(&s, None).unwrap();
        assert_eq!(r.exemplars, vec![2, 1, 3]);
        assert_eq!(r.counts, vec![3, 2, 1]);
        assert!(ExemplarCount::new(0, 1).count(&s, None).is_err());
        let id = IdenticalClass
            .run(
                &s,
                &[0, 1, 1, 0],
                &[1, 0, 1],
                Some((&[0, 1, 2, 3], &[2, 2, 0])),
            )
            .unwrap();
        assert_eq!(id.top1, vec![2, 2, 2]);
        assert!((id.class_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((id.subclass_rate.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!(IdenticalClass.run(&s, &[0, 1], &[1, 0, 1], None).is_err());
    }
}
