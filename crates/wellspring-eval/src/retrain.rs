//! The retraining seam: [`Retrainer`] trains a model on a [`RetrainSpec`] with
//! a seed and reports per-test-point [`TestOutputs`].
//!
//! Every counterfactual metric (LDS, leave-one-out, brittleness, retraining
//! score, pruning) is written against this trait only. This crate ships one
//! real implementation, [`crate::LinearRetrainer`] (L2-regularised softmax /
//! ridge regression fitted to a tight tolerance in pure Rust); the burn-backed
//! harness implements the same trait, caching models by content hash.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use wellspring_core::Subset;

use crate::error::{EvalError, Result};

/// What to train on: which training points (optionally weighted), which of
/// them get a different label, and a free-form tag for reports and caches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrainSpec {
    /// Training points used (indices into the full training set), with
    /// optional per-sample weights.
    pub subset: Subset,
    /// Label overrides, `point → new class` (data mislabel support,
    /// label-noise experiments). Points not in `subset` are ignored.
    pub label_overrides: BTreeMap<usize, usize>,
    /// Free-form tag ("lds/17", "remove-top/0.05"); not part of what is trained.
    pub tag: Option<String>,
}

impl RetrainSpec {
    /// Train on every point of a set of `n`, labels unchanged.
    pub fn full(n: usize) -> Self {
        Self::on(Subset::all(n))
    }

    /// Train on `subset`, labels unchanged.
    pub fn on(subset: Subset) -> Self {
        Self {
            subset,
            label_overrides: BTreeMap::new(),
            tag: None,
        }
    }

    /// Train on every point of `0..n` except `removed` (unweighted). Errors if
    /// an index is out of range or nothing would be left.
    pub fn without(n: usize, removed: &[usize]) -> Result<Self> {
        crate::error::check_indices("removed training points", removed, n)?;
        let mut drop = vec![false; n];
        removed.iter().for_each(|&i| drop[i] = true);
        let keep: Vec<usize> = (0..n).filter(|&i| !drop[i]).collect();
        if keep.is_empty() {
            return Err(EvalError::invalid_param(
                "removed training points",
                format!("all {n}"),
                "removing every training point leaves nothing to train on",
            ));
        }
        Ok(Self::on(Subset::new(keep, n)?))
    }

    /// Adds label overrides (`point → new class`).
    pub fn with_labels(mut self, overrides: impl IntoIterator<Item = (usize, usize)>) -> Self {
        self.label_overrides.extend(overrides);
        self
    }

    /// Sets the tag.
    pub fn tagged(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Checks indices against `n_train` and override classes against
    /// `n_classes` (`None` = regression, where overrides are an error).
    pub fn check(&self, n_train: usize, n_classes: Option<usize>) -> Result<()> {
        self.subset.check(n_train)?;
        for (&i, &c) in &self.label_overrides {
            if i >= n_train {
                return Err(EvalError::IndexOutOfRange {
                    what: "label override point".into(),
                    index: i,
                    len: n_train,
                });
            }
            match n_classes {
                None => {
                    return Err(EvalError::NeedsClassification {
                        what: format!("label override for training point {i}"),
                    });
                }
                Some(k) if c >= k => {
                    return Err(EvalError::invalid_param(
                        format!("label override for training point {i}"),
                        c,
                        format!("out of range for {k} classes"),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A stable 64-bit fingerprint of what is trained (indices, weights,
    /// overrides; not the tag): FNV-1a over the little-endian encoding. Equal
    /// specs give equal fingerprints on every platform, so it can key caches
    /// and derive seeds.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        h.write_u64(self.subset.len() as u64);
        for &i in self.subset.indices() {
            h.write_u64(i as u64);
        }
        match self.subset.weights() {
            None => h.write_u64(0),
            Some(w) => {
                h.write_u64(1);
                for &v in w {
                    h.write_u64(v.to_bits() as u64);
                }
            }
        }
        h.write_u64(self.label_overrides.len() as u64);
        for (&i, &c) in &self.label_overrides {
            h.write_u64(i as u64);
            h.write_u64(c as u64);
        }
        h.finish()
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write_u64(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Per-test-point outputs of one trained model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestOutputs {
    /// Classification: the margin `z_y − log Σ_{c≠y} exp z_c` (TRAK's output
    /// function, Park et al. 2023, eq. 12; = `z_y − z_other` for two classes).
    /// Regression: `−loss`, so that in both cases larger is better.
    pub margin: Vec<f32>,
    /// Classification: the correct-class margin `z_y − max_{c≠y} z_c` (correct
    /// logit minus the highest incorrect one; datamodels, Ilyas et al. 2022;
    /// the brittleness paper's output function, §2). Regression: `−loss`.
    pub class_margin: Vec<f32>,
    /// Per-test-point training loss: cross-entropy, or `½ Σ_t (ŷ_t − y_t)²`.
    pub loss: Vec<f32>,
    /// Classification: whether the arg-max class is the label.
    pub correct: Option<Vec<bool>>,
    /// Classification: the arg-max class (first maximum on ties).
    pub predicted: Option<Vec<usize>>,
    /// Classification: the highest-scoring *incorrect* class (the target of
    /// data mislabel support, brittleness paper §2.1).
    pub runner_up: Option<Vec<usize>>,
    /// Regression: predictions, row-major `n_test × n_targets`.
    pub prediction: Option<Vec<f32>>,
}

impl TestOutputs {
    /// Number of test points.
    pub fn len(&self) -> usize {
        self.margin.len()
    }

    /// True if there are no test points.
    pub fn is_empty(&self) -> bool {
        self.margin.is_empty()
    }

    /// Fraction of test points classified correctly (`None` for regression).
    pub fn accuracy(&self) -> Option<f64> {
        self.correct
            .as_ref()
            .map(|c| c.iter().filter(|&&b| b).count() as f64 / c.len().max(1) as f64)
    }

    /// Mean test loss.
    pub fn mean_loss(&self) -> f64 {
        crate::stats::mean(&crate::stats::to_f64(&self.loss))
    }

    /// The values of `output` per test point (margin, or negated loss).
    pub fn values(&self, output: Output) -> Vec<f64> {
        match output {
            Output::Margin => crate::stats::to_f64(&self.margin),
            Output::ClassMargin => crate::stats::to_f64(&self.class_margin),
            Output::NegLoss => self.loss.iter().map(|&l| -(l as f64)).collect(),
        }
    }

    /// Checks lengths against `n_test`.
    pub fn check(&self, n_test: usize) -> Result<()> {
        let lens = [
            ("margin", Some(self.margin.len())),
            ("class_margin", Some(self.class_margin.len())),
            ("loss", Some(self.loss.len())),
            ("correct", self.correct.as_ref().map(Vec::len)),
            ("predicted", self.predicted.as_ref().map(Vec::len)),
            ("runner_up", self.runner_up.as_ref().map(Vec::len)),
        ];
        for (what, len) in lens {
            if let Some(l) = len
                && l != n_test
            {
                return Err(EvalError::length(format!("test outputs {what}"), n_test, l));
            }
        }
        Ok(())
    }
}

/// Which per-test model output a counterfactual metric compares scores with.
/// Both are "larger is better", matching the sign of [`wellspring_core::ScoreMatrix`]
/// (positive score = helps = removing the point lowers the output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// The margin `z_y − log Σ_{c≠y} e^{z_c}` (TRAK's output function; the
    /// LDS default).
    #[default]
    Margin,
    /// The correct-class margin `z_y − max_{c≠y} z_c` (datamodels; the
    /// brittleness paper, §2); `−loss` for regression.
    ClassMargin,
    /// The negated test loss (FiMO uses the loss; negated so larger is better).
    NegLoss,
}

/// Trains a model on a training-set specification with a seed and reports
/// per-test-point outputs. The seam between the metrics and whatever trains
/// models (the pure-Rust [`crate::LinearRetrainer`], the burn harness).
///
/// Implementations must be deterministic: same spec and seed, same outputs.
pub trait Retrainer: Sync {
    /// Number of points in the full training set (indices in specs refer to it).
    fn n_train(&self) -> usize;

    /// Number of test points outputs are reported for.
    fn n_test(&self) -> usize;

    /// Test labels (`None` for regression).
    fn test_labels(&self) -> Option<&[usize]>;

    /// Training labels before overrides (`None` for regression).
    fn train_labels(&self) -> Option<&[usize]>;

    /// Number of classes (`None` for regression).
    fn n_classes(&self) -> Option<usize>;

    /// Trains on `spec` with `seed` and evaluates on the test set.
    fn retrain(&self, spec: &RetrainSpec, seed: u64) -> Result<TestOutputs>;

    /// Trains many models; the default runs [`Retrainer::retrain`] in parallel
    /// with rayon and returns outputs in job order. Model-backed
    /// implementations override it to cache by content hash and resume.
    fn retrain_many(&self, jobs: &[(RetrainSpec, u64)]) -> Result<Vec<TestOutputs>> {
        jobs.par_iter()
            .map(|(spec, seed)| self.retrain(spec, *seed))
            .collect()
    }
}

/// Runs `jobs` and checks every output's length against the retrainer.
pub(crate) fn run_checked(
    retrainer: &dyn Retrainer,
    jobs: &[(RetrainSpec, u64)],
) -> Result<Vec<TestOutputs>> {
    for (spec, _) in jobs {
        spec.check(retrainer.n_train(), retrainer.n_classes())?;
    }
    let outs = retrainer.retrain_many(jobs)?;
    if outs.len() != jobs.len() {
        return Err(EvalError::length(
            "retrain_many results",
            jobs.len(),
            outs.len(),
        ));
    }
    for o in &outs {
        o.check(retrainer.n_test())?;
    }
    Ok(outs)
}

/// The per-model seeds of an `r`-model average: `derive_seed(seed, s)` for
/// `s in 0..r`. Using the same seeds for every spec (common random numbers)
/// makes differences between specs less noisy.
pub fn model_seeds(seed: u64, r: usize) -> Vec<u64> {
    (0..r as u64)
        .map(|s| wellspring_core::derive_seed(seed, s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_helpers() {
        let s = RetrainSpec::without(5, &[1, 3]).unwrap();
        assert_eq!(s.subset.indices(), &[0, 2, 4]);
        assert!(RetrainSpec::without(2, &[0, 1]).is_err());
        assert!(
            RetrainSpec::without(2, &[5])
                .unwrap_err()
                .to_string()
                .contains("index 5")
        );
        assert_eq!(RetrainSpec::without(3, &[]).unwrap(), RetrainSpec::full(3));
        let a = RetrainSpec::full(4).with_labels([(1, 2)]);
        let b = RetrainSpec::full(4).with_labels([(1, 2)]).tagged("x");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), RetrainSpec::full(4).fingerprint());
        assert!(a.check(4, Some(3)).is_ok());
        assert!(
            a.check(4, Some(2))
                .unwrap_err()
                .to_string()
                .contains("2 classes")
        );
        assert!(a.check(4, None).is_err());
    }
}
