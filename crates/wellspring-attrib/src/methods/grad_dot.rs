//! Gradient similarity: Grad-Dot and Grad-Cos (FiMO, Bae et al. 2024, eq. 6;
//! Charpiat et al. 2019), and the fitted type [`GradSimilarity`] that TracIn
//! ([`super::tracin`]) shares.
//!
//! With `g(z) = P ∇_θ ℓ(z; θ)` the (projected) loss gradient,
//!
//! ```text
//! grad-dot(i, j) = g(z_i) · g(z_j)
//! grad-cos(i, j) = g(z_i) · g(z_j) / (‖g(z_i)‖ ‖g(z_j)‖)
//! ```
//!
//! Sign: one gradient step on `z_i` changes the test loss by
//! `−η g(z_i) · g(z_j)` to first order, so a positive score lowers the test
//! loss (helps), wellspring's convention. `ℓ` is the softmax cross-entropy
//! for classification and the squared error for regression.
//!
//! Group scores (GGDA, Ley et al. 2024, §4) use the batched group gradient
//! `g(z_g) = P Σ_{i∈g} ∇ℓ(z_i)` from `GradEngine::group`, not a sum of
//! per-point scores; for Grad-Dot the two agree up to rounding, for Grad-Cos
//! the group score is the cosine of the group gradient. Singleton groups give
//! the per-point scores.
//!
//! The default projection is Kronecker-structured to 512 dimensions (TracIn
//! App. F), computed straight from the per-layer factors; `identity` gives
//! the exact FiMO eq. 6 at `n × p` memory.

use std::sync::OnceLock;

use rayon::prelude::*;
use wellspring_core::{Dataset, Grouping, ScoreMatrix};
use wellspring_grad::FactoredGrads;
use wellspring_models::AnyModel;
use wellspring_models::burn_types::Device;

use super::gradient::{DEFAULT_PROJECTION, GradFeaturizer, check_projection, grad_err, loss_output, permute_rows, row_sq_norms, singleton_order};
use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self};
use crate::dense::gemm_abt;
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::signature::DataSignature;
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor, check_grouping};

/// A cosine with a zero (or f64-underflowing) gradient norm is taken as 0: no
/// direction to compare. Any other gradient, however small, has a direction
/// (a well-fitted point's gradient can be 1e-8 and still has cosine 1 with
/// itself).
const TINY_NORM: f64 = f64::MIN_POSITIVE;

/// Inner product or cosine of gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Similarity {
    /// `g_i · g_j` (Grad-Dot; TracIn's per-checkpoint term).
    Dot,
    /// `g_i · g_j / (‖g_i‖ ‖g_j‖)` (Grad-Cos).
    Cosine,
}

/// Parameters of Grad-Dot / Grad-Cos (FiMO eq. 6).
#[derive(Clone, Debug, PartialEq)]
pub struct GradDotParams {
    similarity: Similarity,
    projection: ProjectionSpec,
    seed: u64,
}

impl GradDotParams {
    /// Grad-Dot (`Similarity::Dot`) or Grad-Cos, Kronecker-512 projection, seed 0.
    pub fn new(similarity: Similarity) -> Self {
        Self {
            similarity,
            projection: DEFAULT_PROJECTION,
            seed: 0,
        }
    }

    /// The gradient projection.
    pub fn projection(mut self, p: ProjectionSpec) -> Self {
        self.projection = p;
        self
    }

    /// Seed of the projection.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the projection dimension (≥ 1).
    pub fn check(&self) -> Result<()> {
        check_projection(name_of(self.similarity), self.projection)
    }
}

fn name_of(s: Similarity) -> &'static str {
    match s {
        Similarity::Dot => "grad-dot",
        Similarity::Cosine => "grad-cos",
    }
}

impl Attributor for GradDotParams {
    type Fitted = GradSimilarity;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<GradSimilarity> {
        self.check()?;
        GradSimilarity::fit(
            name_of(self.similarity),
            self.similarity,
            &[(source.model.clone(), 1.0)],
            &source.device,
            self.projection,
            self.seed,
            train,
        )
    }
}

/// One model's share of a [`GradSimilarity`]: its featurizer, weight and the
/// projected training gradients (computed on first use: group scores from
/// batched group gradients never need them).
#[derive(Debug)]
struct Part {
    feat: GradFeaturizer,
    weight: f64,
    train: OnceLock<Vec<f32>>,
    /// Unprojected training gradients in factored form (identity projection).
    factored: OnceLock<FactoredGrads>,
}

impl Part {
    fn train_factored(&self, train: &Dataset) -> Result<&FactoredGrads> {
        if let Some(f) = self.factored.get() {
            return Ok(f);
        }
        let f = self.feat.factored(train)?;
        Ok(self.factored.get_or_init(|| f))
    }

    fn train_rows(&self, train: &Dataset) -> Result<&[f32]> {
        if let Some(t) = self.train.get() {
            return Ok(t);
        }
        let t = self.feat.features(train)?;
        Ok(self.train.get_or_init(|| t))
    }
}

/// Fitted gradient similarity `Σ_c w_c g_c(z_i) · g_c(z_j)` over one or more
/// models (checkpoints), optionally normalised to a cosine (one model only).
/// Grad-Dot, Grad-Cos, TracIn and TracInCP are all this type.
#[derive(Debug)]
pub struct GradSimilarity {
    name: &'static str,
    similarity: Similarity,
    parts: Vec<Part>,
    n: usize,
    sig: DataSignature,
    /// Kept for the lazy per-point features and for group gradients.
    train: Dataset,
}

impl GradSimilarity {
    /// Fits on `models` (each with its weight `w_c`), all with the same seeded
    /// projection. The per-point training gradients are projected on first
    /// use (`attribute`, `self_attribute`, singleton groups).
    pub(crate) fn fit(
        name: &'static str,
        similarity: Similarity,
        models: &[(AnyModel, f64)],
        device: &Device,
        projection: ProjectionSpec,
        seed: u64,
        train: &Dataset,
    ) -> Result<Self> {
        if models.is_empty() {
            return Err(AttribError::unsupported(name, "no model to differentiate"));
        }
        if similarity == Similarity::Cosine && models.len() != 1 {
            return Err(AttribError::unsupported(
                name,
                "a gradient cosine is defined for one model",
            ));
        }
        if train.is_empty() {
            return Err(AttribError::mismatch(
                train.name(),
                "the training set is empty",
            ));
        }
        let output = loss_output(train);
        let mut parts = Vec::with_capacity(models.len());
        for (model, weight) in models {
            model.check_dataset(train)?;
            let feat = GradFeaturizer::new(name, model, device, output.clone(), projection, seed)?;
            parts.push(Part {
                feat,
                weight: *weight,
                train: OnceLock::new(),
                factored: OnceLock::new(),
            });
        }
        Ok(Self {
            name,
            similarity,
            parts,
            n: train.len(),
            sig: DataSignature::of(train),
            train: train.clone(),
        })
    }

    /// Projected gradient width.
    pub fn dim(&self) -> usize {
        self.parts[0].feat.dim()
    }

    /// The per-model weights `w_c` (1 for Grad-Dot/Cos, learning rates for TracInCP).
    pub fn weights(&self) -> Vec<f64> {
        self.parts.iter().map(|p| p.weight).collect()
    }

    /// Scores of `rows` row vectors (per model, row-major `n_rows × dim`) for test
    /// features `test` (per model, `n_test × dim`), test-major blocks.
    fn scores(
        &self,
        rows: &[&[f32]],
        n_rows: usize,
        test: &[Vec<f32>],
        n_test: usize,
    ) -> Result<ScoreMatrix> {
        let d = self.dim();
        let norms = match self.similarity {
            Similarity::Dot => None,
            Similarity::Cosine => Some((row_sq_norms(rows[0], d), row_sq_norms(&test[0], d))),
        };
        self.blocks(n_rows, n_test, norms, |c, c0, cols, buf| {
            gemm_abt(
                &test[c][c0 * d..(c0 + cols) * d],
                cols,
                d,
                rows[c],
                n_rows,
                buf,
            );
            Ok(())
        })
    }

    /// Exact scores from factored gradients (identity projection): the same
    /// inner products without the `n × p` rows (TracIn App. F).
    fn scores_factored(
        &self,
        rows: &[&FactoredGrads],
        test: &[FactoredGrads],
    ) -> Result<ScoreMatrix> {
        let norms = match self.similarity {
            Similarity::Dot => None,
            Similarity::Cosine => Some((rows[0].sq_norms(), test[0].sq_norms())),
        };
        self.blocks(rows[0].n(), test[0].n(), norms, |c, c0, cols, buf| {
            let b = rows[c]
                .dot_block(&test[c], c0, cols)
                .map_err(grad_err(self.name))?;
            buf.copy_from_slice(&b);
            Ok(())
        })
    }

    /// Test-major blocks of `Σ_c w_c ⟨·,·⟩_c`, where `part(c, c0, cols, buf)`
    /// writes model `c`'s inner products of test points `c0..c0 + cols`
    /// into `buf`; normalised to cosines with `norms` (squared row and test
    /// norms) when given.
    fn blocks(
        &self,
        n_rows: usize,
        n_test: usize,
        norms: Option<(Vec<f64>, Vec<f64>)>,
        part: impl Fn(usize, usize, usize, &mut [f32]) -> Result<()>,
    ) -> Result<ScoreMatrix> {
        by_test_blocks(self.name, n_rows, n_test, |c0, cols| {
            let mut acc = vec![0.0f32; cols * n_rows];
            let mut buf = vec![0.0f32; cols * n_rows];
            for (c, p) in self.parts.iter().enumerate() {
                part(c, c0, cols, &mut buf)?;
                let w = p.weight as f32;
                acc.iter_mut().zip(&buf).for_each(|(a, b)| *a += w * b);
            }
            if let Some((row_norms, test_norms)) = &norms {
                acc.par_chunks_mut(n_rows.max(1))
                    .enumerate()
                    .for_each(|(j, col)| {
                        let tn = test_norms[c0 + j].sqrt();
                        for (v, rn) in col.iter_mut().zip(row_norms) {
                            let den = tn * rn.sqrt();
                            *v = if den > TINY_NORM {
                                (*v as f64 / den) as f32
                            } else {
                                0.0
                            };
                        }
                    });
            }
            Ok(acc)
        })
    }

    /// Unprojected gradients: scores come from the factored form.
    fn exact(&self) -> bool {
        self.parts.iter().all(|p| p.feat.is_exact())
    }

    fn test_features(&self, test: &Dataset) -> Result<Vec<Vec<f32>>> {
        self.sig.check(test)?;
        self.parts
            .iter()
            .map(|p| p.feat.point_features(test))
            .collect()
    }
}

impl FittedAttributor for GradSimilarity {
    fn name(&self) -> &str {
        self.name
    }

    fn n_train(&self) -> usize {
        self.n
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        if self.exact() {
            self.sig.check(test)?;
            let tf: Vec<FactoredGrads> = self
                .parts
                .iter()
                .map(|p| p.feat.point_factored(test))
                .collect::<Result<_>>()?;
            let rows: Vec<&FactoredGrads> = self
                .parts
                .iter()
                .map(|p| p.train_factored(&self.train))
                .collect::<Result<_>>()?;
            return self.scores_factored(&rows, &tf);
        }
        let tf = self.test_features(test)?;
        let rows: Vec<&[f32]> = self
            .parts
            .iter()
            .map(|p| p.train_rows(&self.train))
            .collect::<Result<_>>()?;
        self.scores(&rows, self.n, &tf, test.len())
    }

    /// `Σ_c w_c ‖g_c(z_i)‖²` (TracIn's self-influence); 1 for Grad-Cos
    /// (0 for a zero gradient).
    fn self_attribute(&self) -> Result<Vec<f32>> {
        let d = self.dim();
        let mut out = vec![0.0f64; self.n];
        for p in &self.parts {
            let norms = if self.exact() {
                p.train_factored(&self.train)?.sq_norms()
            } else {
                row_sq_norms(p.train_rows(&self.train)?, d)
            };
            for (o, s) in out.iter_mut().zip(norms) {
                *o += p.weight * s;
            }
        }
        let out: Vec<f32> = match self.similarity {
            Similarity::Dot => out.iter().map(|&v| v as f32).collect(),
            // The cosine of a gradient with itself, the diagonal of
            // `attribute` on the training set (0 only for a gradient too
            // small to have a direction, as there).
            Similarity::Cosine => out
                .iter()
                .map(|&v| if v > TINY_NORM { 1.0 } else { 0.0 })
                .collect(),
        };
        check_self(self.name, &out)?;
        Ok(out)
    }

    /// GGDA group scores from batched group gradients `P Σ_{i∈g} ∇ℓ_i`.
    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        check_grouping(grouping, self.n)?;
        let singles = singleton_order(grouping);
        if let (true, Some(order)) = (self.exact(), &singles) {
            // singleton groups are the per-point scores, bit for bit
            let per_point = self.attribute(test)?;
            let mut out = Vec::with_capacity(order.len() * test.len());
            for &i in order {
                out.extend_from_slice(per_point.row(i));
            }
            return Ok(ScoreMatrix::from_vec(order.len(), test.len(), out)?);
        }
        let tf = self.test_features(test)?;
        let d = self.dim();
        let groups: Vec<Vec<f32>> = self
            .parts
            .iter()
            .map(|p| match &singles {
                Some(order) => Ok(permute_rows(p.train_rows(&self.train)?, d, order)),
                None => p.feat.group_features(&self.train, grouping),
            })
            .collect::<Result<_>>()?;
        let rows: Vec<&[f32]> = groups.iter().map(Vec::as_slice).collect();
        self.scores(&rows, grouping.n_groups(), &tf, test.len())
    }
}

fn build_with(similarity: Similarity, r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let p = GradDotParams::new(similarity)
        .projection(r.projection().unwrap_or(DEFAULT_PROJECTION))
        .seed(r.seed());
    p.check()?;
    Ok(Box::new(p))
}

fn build_dot(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    build_with(Similarity::Dot, r)
}

fn build_cos(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    build_with(Similarity::Cosine, r)
}

/// Registry entry of Grad-Dot.
pub(crate) const DOT: MethodInfo = MethodInfo {
    name: "grad-dot",
    description: "inner product of (projected) loss gradients, g_i . g_j",
    paper: "FiMO (Bae et al. 2024) eq. 6; Charpiat et al. 2019",
    uses_gradients: true,
    params: &[],
    caps: super::Capabilities::projected(DEFAULT_PROJECTION),
    build: build_dot,
};

/// Registry entry of Grad-Cos.
pub(crate) const COSINE: MethodInfo = MethodInfo {
    name: "grad-cos",
    description: "cosine of (projected) loss gradients",
    paper: "FiMO (Bae et al. 2024) eq. 6; Charpiat et al. 2019",
    uses_gradients: true,
    params: &[],
    caps: super::Capabilities::projected(DEFAULT_PROJECTION),
    build: build_cos,
};
