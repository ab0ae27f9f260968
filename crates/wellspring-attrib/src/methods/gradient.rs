//! What every gradient method shares (Grad-Dot/Cos, TracIn(CP), the
//! influence functions, K-FAC/EK-FAC, DataInf, TRAK): the default
//! projection and its check, the per-example loss they differentiate, the
//! [`GroupKernel`](crate::methods::gradient::GroupKernel) choice of group scores, a `GradFeaturizer` that wraps one
//! model's gradient engine and projector, and `grad_err`, which lifts the
//! grad crate's errors into the attribution error.

use std::sync::Arc;

use wellspring_core::{Dataset, Grouping, Targets};
use wellspring_grad::{
    CrossEntropy, FactoredGrads, GradEngine, GradError, Mse, OutputFn, Projector, Reduce,
};
use wellspring_models::AnyModel;
use wellspring_models::burn_types::Device;

use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;

/// Default projection of the gradient methods: Kronecker-structured to 512
/// dimensions (TracIn App. F), computed straight from the per-layer factors;
/// `identity` gives the exact gradients.
pub const DEFAULT_PROJECTION: ProjectionSpec = ProjectionSpec::Kronecker { dim: 512 };

/// Checks a projection's dimension is at least 1.
pub(crate) fn check_projection(method: &str, p: ProjectionSpec) -> Result<()> {
    if p.dim() == Some(0) {
        return Err(AttribError::invalid_param(
            format!("{method}.projection"),
            p,
            "the dimension must be at least 1",
        ));
    }
    Ok(())
}

/// The per-example loss the gradient methods differentiate: cross-entropy
/// for classes (for next-token targets, the mean token cross-entropy),
/// squared error for regression.
pub(crate) fn loss_output(train: &Dataset) -> Arc<dyn OutputFn> {
    match train.targets() {
        Targets::Classes { .. } | Targets::NextToken { .. } => Arc::new(CrossEntropy),
        Targets::Regression { .. } => Arc::new(Mse),
    }
}

/// Which curvature kernel group scores use (GGDA, Ley et al. 2024, §4): TRAK's
/// `K_m` and the influence functions' Fisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKernel {
    /// GGDA's batched empirical Fisher: the kernel from the group gradients
    /// themselves, so no per-point gradient is ever computed. Its fidelity
    /// depends on the grouping (GGDA §4: gradient-aligned groups); with
    /// fewer groups than projected dimensions the kernel is rank-deficient
    /// and the damping decides the null space.
    Batched,
    /// The kernel from the per-point features (group scores then equal summed
    /// point scores up to rounding), at the cost of the per-point pass (the
    /// default).
    Points,
}

/// Gradient values buffered before a dense projection of test rows (64 MiB).
const PROJECT_BLOCK_VALUES: usize = 1 << 24;

/// Maps a gradient-engine error onto [`AttribError`], keeping data and model
/// errors as they are (they already name the input).
pub(crate) fn grad_err(method: &str) -> impl Fn(GradError) -> AttribError + '_ {
    move |e| match e {
        GradError::Core(c) => AttribError::Core(c),
        GradError::Model(m) => AttribError::Model(m),
        other => AttribError::Solver {
            solver: format!("{method} gradients"),
            reason: other.to_string(),
        },
    }
}

/// The grad crate's projection for `spec` with `seed`.
pub(crate) fn grad_spec(spec: ProjectionSpec, seed: u64) -> wellspring_grad::ProjectionSpec {
    use wellspring_grad::ProjectionSpec as G;
    match spec {
        ProjectionSpec::Identity => G::Identity,
        ProjectionSpec::Gaussian { dim } => G::Gaussian { dim, seed },
        ProjectionSpec::Rademacher { dim } => G::Rademacher { dim, seed },
        ProjectionSpec::Kronecker { dim } => G::Kronecker { dim, seed },
    }
}

/// Per-example (and per-group) projected gradients `P ∇_θ f(z)` of one model.
#[derive(Debug)]
pub(crate) struct GradFeaturizer {
    engine: GradEngine,
    /// Batch-of-one engine for test points: a test point's features must not
    /// depend on which other points share its batch (kernel blocking changes
    /// the rounding), so chunked attribution is bit-identical to one shot.
    single: GradEngine,
    proj: Arc<dyn Projector>,
    method: &'static str,
    /// Unprojected (identity): inner products come exactly from the
    /// factored gradients ([`GradFeaturizer::factored`]).
    exact: bool,
}

impl GradFeaturizer {
    /// Gradients of `output` w.r.t. every parameter of `model`, projected by
    /// `spec` seeded with `seed`.
    pub(crate) fn new(
        method: &'static str,
        model: &AnyModel,
        device: &Device,
        output: Arc<dyn OutputFn>,
        spec: ProjectionSpec,
        seed: u64,
    ) -> Result<Self> {
        Self::with_projector(method, model, device, output, spec, seed, None)
    }

    /// Like [`GradFeaturizer::new`], reusing `shared` (the projector of
    /// another featurizer with the same spec and seed, e.g. TRAK's other
    /// ensemble members) so that a dense projection's generated matrix is
    /// cached once, not once per model.
    pub(crate) fn with_projector(
        method: &'static str,
        model: &AnyModel,
        device: &Device,
        output: Arc<dyn OutputFn>,
        spec: ProjectionSpec,
        seed: u64,
        shared: Option<Arc<dyn Projector>>,
    ) -> Result<Self> {
        let engine = GradEngine::params()
            .output_arc(output.clone())
            .batch_size(256)
            .block_rows(64)
            .build(model, device)
            .map_err(grad_err(method))?;
        let single = GradEngine::params()
            .output_arc(output)
            .batch_size(1)
            .block_rows(1)
            .build(model, device)
            .map_err(grad_err(method))?;
        let proj: Arc<dyn Projector> = match shared {
            Some(p) if p.input_dim() == engine.dim() => p,
            _ => Arc::from(grad_spec(spec, seed).build(engine.layout()).map_err(|e| {
                AttribError::invalid_param(format!("{method}.projection"), spec, e.to_string())
            })?),
        };
        Ok(Self {
            engine,
            single,
            proj,
            method,
            exact: matches!(spec, ProjectionSpec::Identity),
        })
    }

    /// The projector (shareable with featurizers of same-shaped models).
    pub(crate) fn projector(&self) -> Arc<dyn Projector> {
        self.proj.clone()
    }

    /// Width of a feature row.
    pub(crate) fn dim(&self) -> usize {
        self.proj.output_dim()
    }

    /// Row-major `n × dim` projected per-example gradients of every row of `data`.
    pub(crate) fn features(&self, data: &Dataset) -> Result<Vec<f32>> {
        let f = self
            .engine
            .projected_matrix(data, 0..data.len(), self.proj.as_ref())
            .map_err(grad_err(self.method))?;
        check_rows(self.method, "point", data, &f, self.dim())?;
        Ok(f)
    }

    /// Row-major `n_groups × dim` projected group gradients `P Σ_{i∈g} ∇f_i`
    /// (GGDA, Ley et al. 2024, eq. 1), batched `A_gᵀ Δ_g` products of the
    /// grad crate, never per-example gradients.
    pub(crate) fn group_features(&self, data: &Dataset, grouping: &Grouping) -> Result<Vec<f32>> {
        let f = self
            .engine
            .group(data, grouping, Reduce::Sum, Some(self.proj.as_ref()))
            .map_err(grad_err(self.method))?;
        check_rows(self.method, "group", data, &f, self.dim())?;
        Ok(f)
    }

    /// Whether the rows are the unprojected gradients (identity projection).
    pub(crate) fn is_exact(&self) -> bool {
        self.exact
    }

    /// Unprojected per-example gradients of every row of `data` in factored
    /// form: rank-1 factors for flat linear layers (TracIn App. F), rows for
    /// the rest, so exact inner products never materialise `n × p`.
    pub(crate) fn factored(&self, data: &Dataset) -> Result<FactoredGrads> {
        let f = self
            .engine
            .factored(data, 0..data.len())
            .map_err(grad_err(self.method))?;
        check_factored(self.method, "point", data, &f)?;
        Ok(f)
    }

    /// Like [`GradFeaturizer::factored`], one point at a time (each row
    /// independent of the rest of `data`, like [`GradFeaturizer::point_features`]).
    pub(crate) fn point_factored(&self, data: &Dataset) -> Result<FactoredGrads> {
        let f = self
            .single
            .factored(data, 0..data.len())
            .map_err(grad_err(self.method))?;
        check_factored(self.method, "point", data, &f)?;
        Ok(f)
    }

    /// Like [`GradFeaturizer::features`], one point at a time, so each row is
    /// independent of the rest of `data` (for test sets, which callers chunk).
    pub(crate) fn point_features(&self, data: &Dataset) -> Result<Vec<f32>> {
        let f = self.point_features_unchecked(data)?;
        check_rows(self.method, "point", data, &f, self.dim())?;
        Ok(f)
    }

    fn point_features_unchecked(&self, data: &Dataset) -> Result<Vec<f32>> {
        if self.proj.as_kronecker().is_some() {
            // projected straight from each point's factors
            return self
                .single
                .projected_matrix(data, 0..data.len(), self.proj.as_ref())
                .map_err(grad_err(self.method));
        }
        // Materialise batch-of-one gradients, project them in blocks: a dense
        // projection reads all of its p × k matrix per call, and its output
        // per row does not depend on the block.
        let (p, k, n) = (self.single.dim(), self.dim(), data.len());
        let rows = (PROJECT_BLOCK_VALUES / p.max(1)).clamp(1, n.max(1));
        let mut out = vec![0.0f32; n * k];
        let mut buf: Vec<f32> = Vec::with_capacity(rows * p);
        let mut done = 0;
        let mut flush = |buf: &mut Vec<f32>, done: &mut usize| -> Result<()> {
            let r = buf.len() / p.max(1);
            self.proj
                .project(r, buf, &mut out[*done * k..(*done + r) * k])
                .map_err(grad_err(self.method))?;
            *done += r;
            buf.clear();
            Ok(())
        };
        let mut first_err = None;
        self.single
            .per_sample(data, 0..n, |b| {
                buf.extend_from_slice(b.values);
                if buf.len() >= rows * p {
                    flush(&mut buf, &mut done).map_err(|e| {
                        first_err = Some(e);
                        wellspring_grad::GradError::unsupported("projection", "failed")
                    })?;
                }
                Ok(())
            })
            .map_err(|e| first_err.take().unwrap_or_else(|| grad_err(self.method)(e)))?;
        if !buf.is_empty() {
            flush(&mut buf, &mut done)?;
        }
        Ok(out)
    }

    /// The output function's per-example values `f(z_i)`, one point at a
    /// time (independent of the rest of `data`, like [`GradFeaturizer::point_features`]).
    pub(crate) fn point_outputs(&self, data: &Dataset) -> Result<Vec<f32>> {
        self.single
            .outputs(data, 0..data.len())
            .map_err(grad_err(self.method))
    }

    /// The output function's per-example values `f(z_i)`, batched.
    pub(crate) fn outputs(&self, data: &Dataset) -> Result<Vec<f32>> {
        self.engine
            .outputs(data, 0..data.len())
            .map_err(grad_err(self.method))
    }
}

/// Errors if a (projected) gradient row is NaN or infinite, naming the
/// method, the dataset and the point (or group): a non-finite gradient would
/// otherwise turn into silent zero scores (a NaN fails every comparison).
pub(crate) fn check_rows(
    method: &str,
    what: &str,
    data: &Dataset,
    rows: &[f32],
    dim: usize,
) -> Result<()> {
    match rows.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(p) => Err(AttribError::Solver {
            solver: method.to_string(),
            reason: format!(
                "the loss gradient of {what} {} of {} is not finite ({} in entry {}); \
                 the model or that input is broken (NaN weights, an overflowing output)",
                p / dim.max(1),
                data.name(),
                rows[p],
                p % dim.max(1)
            ),
        }),
    }
}

/// Like [`check_rows`] for factored gradients (names the row and the layer).
pub(crate) fn check_factored(
    method: &str,
    what: &str,
    data: &Dataset,
    f: &FactoredGrads,
) -> Result<()> {
    match f.non_finite() {
        None => Ok(()),
        Some((row, layer)) => Err(AttribError::Solver {
            solver: method.to_string(),
            reason: format!(
                "the loss gradient of {what} {row} of {} is not finite (in selected layer \
                 {layer}); the model or that input is broken (NaN weights, an overflowing output)",
                data.name(),
            ),
        }),
    }
}

/// Squared row norms of a row-major `rows × dim` matrix, in f64.
pub(crate) fn row_sq_norms(m: &[f32], dim: usize) -> Vec<f64> {
    m.chunks(dim.max(1))
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum())
        .collect()
}

/// With every group a single point, the point of each group in group order:
/// group scores then come from the per-point features, which are exactly the
/// singleton group gradients (and bit-identical to per-point scores).
pub(crate) fn singleton_order(grouping: &Grouping) -> Option<Vec<usize>> {
    grouping
        .groups()
        .iter()
        .map(|g| (g.len() == 1).then(|| g[0]))
        .collect()
}

/// Rows `order` of a row-major `· × dim` matrix.
pub(crate) fn permute_rows(m: &[f32], dim: usize, order: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(order.len() * dim);
    for &i in order {
        out.extend_from_slice(&m[i * dim..(i + 1) * dim]);
    }
    out
}
