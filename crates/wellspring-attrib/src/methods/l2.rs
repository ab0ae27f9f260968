//! `ℓ2` distance in a feature space with the same-class sign (the brittleness
//! paper, "Data Brittleness Estimation with Self-Supervised Features", §3:
//! "Distance function" and "Sign Estimation"; its code's `l2knn` with
//! `label_conditioning`).
//!
//! The paper ranks, for a test point `z_t = (x, y)`, the training points of
//! class `y` by increasing Euclidean distance of their features, and assigns
//! "all training samples with label y a positive influence, and negative
//! otherwise". As a full score matrix:
//!
//! ```text
//! score(i, j) = s_ij / (1 + ‖f_i − f_j‖₂ / σ),   s_ij = +1 if y_i = c_j else −1
//! ```
//!
//! with `c_j` the test point's label (or its predicted class) and `σ` the
//! root-mean-square distance of the training features to their mean, so the
//! magnitude is scale-free, in `(0, 1]`, and decreasing in the distance: the
//! same-class order is the paper's nearest-neighbour order, every same-class
//! point outranks every other point, and nearer other-class points are more
//! harmful. Without the sign (`signed = false`) every score is positive.
//! Self-influence is `1` for every point.

use wellspring_core::{Dataset, Grouping, ScoreMatrix};

use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self, groups_by_test_blocks, par_columns};
use crate::dense::l2_dist;
use crate::error::{AttribError, Result};
use crate::features::{ClassSource, Extractor, FeatureSpace, classes_of};
use crate::signature::DataSignature;
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor};

/// Parameters of the signed `ℓ2` baseline.
#[derive(Clone, Debug)]
pub struct L2Params {
    space: FeatureSpace,
    class_source: ClassSource,
    signed: bool,
}

impl Default for L2Params {
    /// Penultimate features, test labels, signed.
    fn default() -> Self {
        Self {
            space: FeatureSpace::Penultimate,
            class_source: ClassSource::Label,
            signed: true,
        }
    }
}

impl L2Params {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The feature space (the paper's best: a self-supervised encoder).
    pub fn features(mut self, space: FeatureSpace) -> Self {
        self.space = space;
        self
    }

    /// Whose class decides the sign: the test label or the prediction.
    pub fn class_source(mut self, c: ClassSource) -> Self {
        self.class_source = c;
        self
    }

    /// Apply the same-class sign (default) or score by proximity only.
    pub fn signed(mut self, on: bool) -> Self {
        self.signed = on;
        self
    }

    /// Nothing can be out of range.
    pub fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// Fitted signed `ℓ2` attributor.
#[derive(Clone, Debug)]
pub struct L2Distance {
    p: L2Params,
    feats: Vec<f32>,
    labels: Vec<usize>,
    scale: f64,
    extractor: Extractor,
    sig: DataSignature,
}

/// Root-mean-square distance of the rows to their mean (1 if that is 0).
pub(crate) fn feature_scale(f: &[f32], d: usize) -> f64 {
    let n = f.len() / d;
    let mut mean = vec![0.0f64; d];
    for row in f.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / n as f64;
        }
    }
    let ms: f64 = f
        .chunks_exact(d)
        .map(|row| row.iter().zip(&mean).map(|(&v, m)| (v as f64 - m).powi(2)).sum::<f64>())
        .sum::<f64>()
        / n as f64;
    if ms > 0.0 { ms.sqrt() } else { 1.0 }
}

impl Attributor for L2Params {
    type Fitted = L2Distance;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<L2Distance> {
        self.check()?;
        let labels = train
            .labels()
            .ok_or_else(|| {
                AttribError::unsupported("l2", format!("dataset {} has no class labels", train.name()))
            })?
            .to_vec();
        let (extractor, feats) = Extractor::fit(&self.space, source, train)?;
        Ok(L2Distance {
            p: self.clone(),
            scale: feature_scale(&feats, extractor.dim()),
            feats,
            labels,
            extractor,
            sig: DataSignature::of(train),
        })
    }
}

impl L2Distance {
    fn prepare(&self, test: &Dataset) -> Result<(Vec<f32>, Vec<usize>)> {
        self.sig.check(test)?;
        let f = self.extractor.test(test)?;
        let c = classes_of(
            self.p.class_source,
            self.extractor.model(),
            self.extractor.device(),
            test,
            "l2",
        )?;
        Ok((f, c))
    }

    fn block(&self, tf: &[f32], classes: &[usize], col0: usize, cols: usize) -> Vec<f32> {
        let (d, n) = (self.extractor.dim(), self.labels.len());
        par_columns(n, cols, |j, out| {
            let qj = &tf[(col0 + j) * d..(col0 + j + 1) * d];
            let cj = classes[col0 + j];
            for (i, o) in out.iter_mut().enumerate() {
                let m = 1.0 / (1.0 + l2_dist(&self.feats[i * d..(i + 1) * d], qj) / self.scale);
                let s = if !self.p.signed || self.labels[i] == cj { 1.0 } else { -1.0 };
                *o = (s * m) as f32;
            }
        })
    }
}

impl FittedAttributor for L2Distance {
    fn name(&self) -> &str {
        "l2"
    }

    fn n_train(&self) -> usize {
        self.labels.len()
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, c) = self.prepare(test)?;
        by_test_blocks("l2", self.n_train(), test.len(), |c0, k| Ok(self.block(&tf, &c, c0, k)))
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        let out = vec![1.0f32; self.n_train()];
        check_self("l2", &out)?;
        Ok(out)
    }

    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, c) = self.prepare(test)?;
        groups_by_test_blocks("l2", grouping, self.n_train(), test.len(), |c0, k| {
            Ok(self.block(&tf, &c, c0, k))
        })
    }
}

fn build(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = L2Params::new();
    if let Some(s) = r.get::<FeatureSpace>("features")? {
        p = p.features(s);
    }
    if let Some(c) = r.get::<ClassSource>("class")? {
        p = p.class_source(c);
    }
    if let Some(s) = r.get::<bool>("signed")? {
        p = p.signed(s);
    }
    Ok(Box::new(p))
}

/// Registry entry.
pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "l2",
    description: "feature-space l2 proximity, + for the test point's class, - otherwise",
    paper: "Data brittleness with self-supervised features, §3 (l2 + sign estimation)",
    uses_gradients: false,
    params: &[
        ("features", "penultimate (default) or inputs"),
        ("class", "label (default) or predicted: the test class for the sign"),
        ("signed", "true (default) or false"),
    ],
    caps: super::Capabilities::NONE,
    build,
};
