//! Embedding similarity ("Emb" in Mahmood, Yin & Khanna 2025, §5.1–5.1.1;
//! Hanawa et al. 2021): similarity of penultimate-layer features.
//!
//! ```text
//! dot:      score(i, j) = f_iᵀ f_j
//! cosine:   score(i, j) = f_iᵀ f_j / (‖f_i‖ ‖f_j‖)     (0 if either is 0)
//! distance: score(i, j) = −‖f_i − f_j‖₂                (the SVE code's "Emb")
//! ```
//!
//! `f` is the model's penultimate features by default, or any
//! [`FeatureSpace`]. Self-influence: `‖f_i‖²`, `1` (0 for a zero vector), `0`.

use std::str::FromStr;

use wellspring_core::{Dataset, Grouping, ScoreMatrix};

use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self, groups_by_test_blocks, par_columns};
use crate::dense::{gemm_abt, l2_dist};
use crate::error::{AttribError, Result};
use crate::features::{Extractor, FeatureSpace};
use crate::signature::DataSignature;
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor};

/// Which similarity of embeddings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Similarity {
    /// Inner product.
    Dot,
    /// Cosine similarity.
    #[default]
    Cosine,
    /// Negated Euclidean distance.
    Distance,
}

impl Similarity {
    /// Registry name of the method using this similarity.
    pub fn method_name(&self) -> &'static str {
        match self {
            Similarity::Dot => "emb-dot",
            Similarity::Cosine => "emb-cos",
            Similarity::Distance => "emb-dist",
        }
    }
}

impl FromStr for Similarity {
    type Err = AttribError;

    /// `dot`, `cosine` or `distance`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dot" => Ok(Similarity::Dot),
            "cosine" => Ok(Similarity::Cosine),
            "distance" => Ok(Similarity::Distance),
            other => Err(AttribError::invalid_param(
                "similarity",
                other,
                "expected dot, cosine or distance",
            )),
        }
    }
}

/// Parameters of embedding similarity.
#[derive(Clone, Debug, Default)]
pub struct EmbeddingParams {
    similarity: Similarity,
    space: FeatureSpace,
}

impl EmbeddingParams {
    /// Cosine similarity of penultimate features.
    pub fn new() -> Self {
        Self::default()
    }

    /// The similarity.
    pub fn similarity(mut self, s: Similarity) -> Self {
        self.similarity = s;
        self
    }

    /// The feature space.
    pub fn features(mut self, space: FeatureSpace) -> Self {
        self.space = space;
        self
    }

    /// Nothing can be out of range.
    pub fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// Fitted embedding similarity: the training features and their norms.
#[derive(Clone, Debug)]
pub struct EmbeddingSimilarity {
    similarity: Similarity,
    feats: Vec<f32>,
    norms: Vec<f32>,
    n_train: usize,
    extractor: Extractor,
    sig: DataSignature,
}

fn norms(f: &[f32], d: usize) -> Vec<f32> {
    f.chunks_exact(d)
        .map(|r| r.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt() as f32)
        .collect()
}

impl Attributor for EmbeddingParams {
    type Fitted = EmbeddingSimilarity;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<EmbeddingSimilarity> {
        self.check()?;
        let (extractor, feats) = Extractor::fit(&self.space, source, train)?;
        Ok(EmbeddingSimilarity {
            similarity: self.similarity,
            norms: norms(&feats, extractor.dim()),
            feats,
            n_train: train.len(),
            extractor,
            sig: DataSignature::of(train),
        })
    }
}

impl EmbeddingSimilarity {
    /// The training features, row-major `n_train × dim`.
    pub fn train_features(&self) -> &[f32] {
        &self.feats
    }

    fn test_features(&self, test: &Dataset) -> Result<(Vec<f32>, Vec<f32>)> {
        self.sig.check(test)?;
        let f = self.extractor.test(test)?;
        let n = norms(&f, self.extractor.dim());
        Ok((f, n))
    }

    fn block(&self, tf: &[f32], tn: &[f32], col0: usize, cols: usize) -> Vec<f32> {
        let (d, n) = (self.extractor.dim(), self.n_train);
        let q = &tf[col0 * d..(col0 + cols) * d];
        match self.similarity {
            Similarity::Dot | Similarity::Cosine => {
                let mut out = vec![0.0f32; cols * n];
                gemm_abt(q, cols, d, &self.feats, n, &mut out);
                if self.similarity == Similarity::Cosine {
                    for (j, row) in out.chunks_exact_mut(n).enumerate() {
                        let qn = tn[col0 + j];
                        for (v, &fnorm) in row.iter_mut().zip(&self.norms) {
                            let den = qn * fnorm;
                            *v = if den > 0.0 { (*v / den).clamp(-1.0, 1.0) } else { 0.0 };
                        }
                    }
                }
                out
            }
            Similarity::Distance => par_columns(n, cols, |j, out| {
                let qj = &q[j * d..(j + 1) * d];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = -(l2_dist(&self.feats[i * d..(i + 1) * d], qj) as f32);
                }
            }),
        }
    }
}

impl FittedAttributor for EmbeddingSimilarity {
    fn name(&self) -> &str {
        self.similarity.method_name()
    }

    fn n_train(&self) -> usize {
        self.n_train
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, tn) = self.test_features(test)?;
        by_test_blocks(self.name(), self.n_train, test.len(), |c0, c| {
            Ok(self.block(&tf, &tn, c0, c))
        })
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        let out: Vec<f32> = match self.similarity {
            Similarity::Dot => self.norms.iter().map(|v| v * v).collect(),
            Similarity::Cosine => self.norms.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }).collect(),
            Similarity::Distance => vec![0.0; self.n_train],
        };
        check_self(self.name(), &out)?;
        Ok(out)
    }

    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        let (tf, tn) = self.test_features(test)?;
        groups_by_test_blocks(self.name(), grouping, self.n_train, test.len(), |c0, c| {
            Ok(self.block(&tf, &tn, c0, c))
        })
    }
}

fn build_with(r: &mut OptionReader<'_>, s: Similarity) -> Result<Box<dyn DynAttributor>> {
    let space = r.get::<FeatureSpace>("features")?.unwrap_or_default();
    Ok(Box::new(EmbeddingParams::new().similarity(s).features(space)))
}

const PARAMS: &[(&str, &str)] = &[("features", "penultimate (default) or inputs")];

/// Registry entry: inner product of embeddings.
pub(crate) const DOT: MethodInfo = MethodInfo {
    name: "emb-dot",
    description: "inner product of penultimate features f_i . f_j",
    paper: "Hanawa et al. 2021; Mahmood, Yin & Khanna 2025 (SVE) §5.1",
    uses_gradients: false,
    params: PARAMS,
    caps: super::Capabilities::NONE,
    build: |r| build_with(r, Similarity::Dot),
};

/// Registry entry: cosine similarity of embeddings.
pub(crate) const COSINE: MethodInfo = MethodInfo {
    name: "emb-cos",
    description: "cosine similarity of penultimate features",
    paper: "Hanawa et al. 2021; Mahmood, Yin & Khanna 2025 (SVE) §5.1",
    uses_gradients: false,
    params: PARAMS,
    caps: super::Capabilities::NONE,
    build: |r| build_with(r, Similarity::Cosine),
};

/// Registry entry: negated Euclidean distance of embeddings.
pub(crate) const DISTANCE: MethodInfo = MethodInfo {
    name: "emb-dist",
    description: "-||f_i - f_j||_2 of penultimate features (the SVE code's Emb)",
    paper: "Mahmood, Yin & Khanna 2025 (SVE) §5.1.1",
    uses_gradients: false,
    params: PARAMS,
    caps: super::Capabilities::NONE,
    build: |r| build_with(r, Similarity::Distance),
};
