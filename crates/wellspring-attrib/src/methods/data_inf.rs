//! DataInf (Kwon et al. 2024; FiMO, Bae et al. 2024, §4.3.3): a closed-form
//! inverse of the damped per-layer empirical Fisher by the Sherman–Morrison
//! average,
//!
//! ```text
//! (1/n Σ_k g_k g_kᵀ + λ_l I)⁻¹ ≈ (1/n) Σ_k (1/λ_l) (I − g_k g_kᵀ / (λ_l + ‖g_k‖²))
//! score(i, j) = Σ_l g_il ᵀ M_l g_jl,   M_l = (1/λ_l) (I − (1/n) G_lᵀ D_l G_l)
//! ```
//!
//! with `D_l = diag(1/(λ_l + ‖g_kl‖²))` and, as in the paper (Kwon et al.
//! 2024, §3),
//! `λ_l = damping-scale · (1/(n d_l)) Σ_k ‖g_kl‖²` (default scale 0.1) with
//! `d_l` the layer's number of parameters, whatever the projection (a
//! sketch keeps `‖g‖²` in expectation, not the width), or one absolute `λ`
//! for every layer (`damping`, dattri's `regularization`). `g` is
//! the (projected) loss gradient. Blocks `l` are the model's layers: with the
//! identity projection the layers' parameters (each layer's `d_l × d_l`
//! matrix `M_l` is formed when `d_l ≤ n` and `d_l ≤` [`MAX_BLOCK`];
//! otherwise `M_l v = (1/λ_l)(v − (1/n) G_lᵀ D_l (G_l v))` is applied through
//! the `n`-wide kernel `G_l v`, never forming a `d_l × d_l` matrix); with `kronecker:k` (the default, `k` = 512) each layer's own
//! `k`-dimensional Kronecker sketch `G_a ⊗ G_δ` (the same factors as the
//! other gradient methods' `kronecker:k`, which sum these blocks; here they
//! are concatenated so that `λ_l` and `M_l` stay per layer, as in the
//! paper). Models with a layer that has no Kronecker structure (BatchNorm)
//! and the dense projections use the whole projected gradient as one block.
//!
//! Sign: positive = removing the point raises the test loss (helps).

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use nalgebra::DMatrix;
use wellspring_core::{Dataset, Grouping, ScoreMatrix};
use wellspring_grad::{GradLayout, KronLayerKind, KroneckerProjector, LayerSelection, Projector};

use super::gradient::{DEFAULT_PROJECTION, check_projection, loss_output, GradFeaturizer, grad_err, permute_rows, singleton_order};
use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self};
use crate::dense::{dot, gemm_abt};
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::signature::DataSignature;
use crate::solvers::ihvp::matmul;
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor, check_grouping};

/// A projector shared by the blocks (the per-layer Kronecker sketch), if any.
type SharedProjector = Option<Arc<dyn Projector>>;

/// Largest block whose `d × d` matrix is formed (larger blocks, and blocks
/// wider than the training set, go through the `n`-wide kernels).
pub const MAX_BLOCK: usize = 8192;

/// Parameters of DataInf.
#[derive(Clone, Debug, PartialEq)]
pub struct DataInfParams {
    scale: f64,
    absolute: Option<f64>,
    projection: ProjectionSpec,
    seed: u64,
}

impl Default for DataInfParams {
    fn default() -> Self {
        DataInfParams {
            scale: 0.1,
            absolute: None,
            projection: DEFAULT_PROJECTION,
            seed: 0,
        }
    }
}

impl DataInfParams {
    /// Defaults: damping scale 0.1, Kronecker-512 projection, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// `λ_l = scale · mean ‖g_l‖² / d_l`, `d_l` the layer's parameter count (> 0).
    pub fn damping_scale(mut self, s: f64) -> Self {
        self.scale = s;
        self
    }

    /// One absolute `λ` (> 0) for every layer instead of the relative rule
    /// (dattri's `regularization`).
    pub fn damping(mut self, lambda: f64) -> Self {
        self.absolute = Some(lambda);
        self
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

    /// Checks the damping scale (finite, > 0) and the projection.
    pub fn check(&self) -> Result<()> {
        if !self.scale.is_finite() || self.scale <= 0.0 {
            return Err(AttribError::invalid_param(
                "datainf.damping-scale",
                self.scale,
                "must be finite and > 0",
            ));
        }
        if let Some(l) = self.absolute
            && (!l.is_finite() || l <= 0.0)
        {
            return Err(AttribError::invalid_param(
                "datainf.damping",
                l,
                "must be finite and > 0",
            ));
        }
        check_projection("datainf", self.projection)
    }
}

impl Attributor for DataInfParams {
    type Fitted = DataInf;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<DataInf> {
        self.check()?;
        if train.is_empty() {
            return Err(AttribError::mismatch(
                train.name(),
                "the training set is empty",
            ));
        }
        let (model, device) = (&source.model, &source.device);
        model.check_dataset(train)?;
        let layout = LayerSelection::All
            .resolve(model)
            .map_err(grad_err("datainf"))?;
        let per_layer = match self.projection {
            ProjectionSpec::Kronecker { dim } => per_layer_kronecker(&layout, dim, self.seed)?,
            _ => None,
        };
        let layer_sizes: Vec<usize> = layout.slots().iter().map(|s| s.desc.len).collect();
        let (shared, blocks, sizes): (SharedProjector, Vec<Range<usize>>, Vec<usize>) =
            match per_layer {
                Some((proj, blocks)) => (Some(Arc::new(proj)), blocks, layer_sizes),
                None if self.projection == ProjectionSpec::Identity => (
                    None,
                    layout.slots().iter().map(|s| s.range()).collect(),
                    layer_sizes,
                ),
                // a dense sketch mixes the layers: one block of all parameters
                None => (None, Vec::new(), vec![layout.dim()]),
            };
        let feat = GradFeaturizer::with_projector(
            "datainf",
            model,
            device,
            loss_output(train),
            self.projection,
            self.seed,
            shared,
        )?;
        let blocks: Vec<Range<usize>> = if blocks.is_empty() {
            std::iter::once(0..feat.dim()).collect()
        } else {
            blocks
        };
        debug_assert_eq!(blocks.len(), sizes.len());
        if blocks.last().map(|b| b.end) != Some(feat.dim()) {
            return Err(AttribError::unsupported(
                "datainf",
                format!(
                    "layer blocks end at {:?} but the features have {} columns",
                    blocks.last().map(|b| b.end),
                    feat.dim()
                ),
            ));
        }
        Ok(DataInf {
            scale: self.scale,
            absolute: self.absolute,
            feat,
            blocks,
            sizes,
            state: OnceLock::new(),
            n: train.len(),
            sig: DataSignature::of(train),
            train: train.clone(),
        })
    }
}

/// The training gradients and the per-block matrices `M_l`.
#[derive(Debug)]
struct State {
    train_feats: Vec<f32>,
    /// `M_l` per block, f64 (`None`: applied through the kernel).
    m: Vec<Option<DMatrix<f64>>>,
    /// `1 / (n (λ_l + ‖g_kl‖²))` per block and training point.
    weights: Vec<Vec<f32>>,
    /// `λ_l` per block.
    lambdas: Vec<f64>,
}

/// Fitted DataInf (state computed on first use).
#[derive(Debug)]
pub struct DataInf {
    scale: f64,
    absolute: Option<f64>,
    feat: GradFeaturizer,
    blocks: Vec<Range<usize>>,
    /// Parameters `d_l` of each block's layer (all parameters for one block).
    sizes: Vec<usize>,
    state: OnceLock<State>,
    n: usize,
    sig: DataSignature,
    train: Dataset,
}

impl DataInf {
    /// The blocks `l`: column ranges of the (projected) gradient.
    pub fn blocks(&self) -> &[Range<usize>] {
        &self.blocks
    }

    /// `λ_l` per block (computes the state on first use).
    pub fn lambdas(&self) -> Result<Vec<f64>> {
        Ok(self.state()?.lambdas.clone())
    }

    fn state(&self) -> Result<&State> {
        if let Some(s) = self.state.get() {
            return Ok(s);
        }
        let g = self.feat.features(&self.train)?;
        let (n, k) = (self.n, self.feat.dim());
        let mut ms = Vec::with_capacity(self.blocks.len());
        let mut lambdas = Vec::with_capacity(self.blocks.len());
        let mut weights = Vec::with_capacity(self.blocks.len());
        for (b, &d_l) in self.blocks.iter().zip(&self.sizes) {
            let d = b.len();
            let norms: Vec<f64> = (0..n)
                .map(|i| {
                    g[i * k + b.start..i * k + b.end]
                        .iter()
                        .map(|&v| v as f64 * v as f64)
                        .sum()
                })
                .collect();
            let lambda = self
                .absolute
                .unwrap_or_else(|| {
                    self.scale * norms.iter().sum::<f64>() / (n as f64 * d_l.max(1) as f64)
                })
                .max(f64::MIN_POSITIVE);
            weights.push(
                norms
                    .iter()
                    .map(|&nn| (1.0 / (n as f64 * (lambda + nn))) as f32)
                    .collect(),
            );
            lambdas.push(lambda);
            if d > n || d > MAX_BLOCK {
                ms.push(None);
                continue;
            }
            let gb = DMatrix::<f64>::from_fn(d, n, |r, i| g[i * k + b.start + r] as f64); // G_lᵀ
            let mut scaled = gb.clone();
            for (i, &nn) in norms.iter().enumerate() {
                scaled.column_mut(i).scale_mut(1.0 / (lambda + nn));
            }
            // (1/λ)(I − (1/n) G_lᵀ D G_l), with G_lᵀ = gb (d × n)
            let mut m = matmul(&scaled, &gb.transpose(), false) * (-1.0 / n as f64);
            for t in 0..d {
                m[(t, t)] += 1.0;
            }
            ms.push(Some(m / lambda));
        }
        Ok(self.state.get_or_init(|| State {
            train_feats: g,
            m: ms,
            weights,
            lambdas,
        }))
    }

    /// `V M` for row-major `V` (`rows × k`), block by block.
    fn apply(&self, st: &State, v: &[f32], rows: usize) -> Vec<f32> {
        let k = self.feat.dim();
        let mut out = vec![0.0f32; rows * k];
        for (((b, m), w), &lambda) in self
            .blocks
            .iter()
            .zip(&st.m)
            .zip(&st.weights)
            .zip(&st.lambdas)
        {
            let Some(m) = m else {
                kernel_apply(&st.train_feats, self.n, k, b, w, lambda, v, rows, &mut out);
                continue;
            };
            let vb = DMatrix::<f64>::from_fn(b.len(), rows, |r, i| v[i * k + b.start + r] as f64);
            let x = matmul(m, &vb, false); // M symmetric: (V M)ᵀ = M Vᵀ
            for i in 0..rows {
                for r in 0..b.len() {
                    out[i * k + b.start + r] = x[(r, i)] as f32;
                }
            }
        }
        out
    }

    fn scores(
        &self,
        st: &State,
        rows: &[f32],
        n_rows: usize,
        test: &Dataset,
    ) -> Result<ScoreMatrix> {
        self.sig.check(test)?;
        let k = self.feat.dim();
        let tf = self.feat.point_features(test)?;
        let x = self.apply(st, &tf, test.len());
        by_test_blocks("datainf", n_rows, test.len(), |c0, cols| {
            let mut out = vec![0.0f32; cols * n_rows];
            gemm_abt(&x[c0 * k..(c0 + cols) * k], cols, k, rows, n_rows, &mut out);
            Ok(out)
        })
    }
}

impl FittedAttributor for DataInf {
    fn name(&self) -> &str {
        "datainf"
    }

    fn n_train(&self) -> usize {
        self.n
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        self.sig.check(test)?;
        let st = self.state()?;
        self.scores(st, &st.train_feats, self.n, test)
    }

    /// `Σ_l g_il ᵀ M_l g_il`.
    fn self_attribute(&self) -> Result<Vec<f32>> {
        let st = self.state()?;
        let k = self.feat.dim();
        let x = self.apply(st, &st.train_feats, self.n);
        let out: Vec<f32> = x
            .chunks(k.max(1))
            .zip(st.train_feats.chunks(k.max(1)))
            .map(|(a, b)| dot(a, b))
            .collect();
        check_self("datainf", &out)?;
        Ok(out)
    }

    /// GGDA group scores from batched group gradients.
    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        check_grouping(grouping, self.n)?;
        self.sig.check(test)?;
        let st = self.state()?;
        let rows = match singleton_order(grouping) {
            Some(order) => permute_rows(&st.train_feats, self.feat.dim(), &order),
            None => self.feat.group_features(&self.train, grouping)?,
        };
        self.scores(st, &rows, grouping.n_groups(), test)
    }
}

/// Block `b` of `out` = `(1/λ)(V_b − (V_b G_bᵀ) diag(w) G_b)` for row-major
/// `V` (`rows × k`) and training features `G` (`n × k`), by strided GEMMs:
/// `O(rows · n · d)`, no `d × d` matrix (each output row depends only on its
/// input row, so chunked attribution is unchanged).
#[allow(clippy::too_many_arguments)]
fn kernel_apply(
    g: &[f32],
    n: usize,
    k: usize,
    b: &Range<usize>,
    w: &[f32],
    lambda: f64,
    v: &[f32],
    rows: usize,
    out: &mut [f32],
) {
    let d = b.len();
    if rows == 0 || d == 0 {
        return;
    }
    let k_i = k as isize;
    let mut t = vec![0.0f32; rows * n];
    // SAFETY: every pointer/stride pair addresses only elements inside its
    // slice: V and G rows of length k starting at b.start with b.end ≤ k, and
    // the dense rows × n buffer t.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            d,
            n,
            1.0,
            v.as_ptr().add(b.start),
            k_i,
            1,
            g.as_ptr().add(b.start),
            1,
            k_i,
            0.0,
            t.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    for row in t.chunks_mut(n) {
        row.iter_mut().zip(w).for_each(|(x, wi)| *x *= wi);
    }
    for i in 0..rows {
        out[i * k + b.start..i * k + b.end].copy_from_slice(&v[i * k + b.start..i * k + b.end]);
    }
    // SAFETY: as above; out has the same row layout as V.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            n,
            d,
            -1.0,
            t.as_ptr(),
            n as isize,
            1,
            g.as_ptr().add(b.start),
            k_i,
            1,
            1.0,
            out.as_mut_ptr().add(b.start),
            k_i,
            1,
        );
    }
    let inv = (1.0 / lambda) as f32;
    for i in 0..rows {
        out[i * k + b.start..i * k + b.end]
            .iter_mut()
            .for_each(|x| *x *= inv);
    }
}

/// `kronecker:k` with each layer's sketch in its own `k`-wide output block
/// (the factors of [`KroneckerProjector::new`], concatenated instead of
/// summed), and those blocks; `None` if a layer has no Kronecker structure.
fn per_layer_kronecker(
    layout: &GradLayout,
    dim: usize,
    seed: u64,
) -> Result<Option<(KroneckerProjector, Vec<Range<usize>>)>> {
    let bad = |e: wellspring_grad::GradError| {
        AttribError::invalid_param(
            "datainf.projection",
            ProjectionSpec::Kronecker { dim },
            e.to_string(),
        )
    };
    let summed = KroneckerProjector::new(layout, dim, seed).map_err(bad)?;
    if summed
        .layers()
        .iter()
        .any(|l| matches!(l.kind, KronLayerKind::Dense { .. }))
    {
        return Ok(None);
    }
    let factors = summed
        .layers()
        .iter()
        .map(|l| (l.ga.clone(), l.k_a, l.gd.clone(), l.k_d))
        .collect();
    let proj = KroneckerProjector::from_factors(
        layout,
        factors,
        true,
        format!("kronecker:{dim} per layer"),
    )
    .map_err(bad)?;
    let blocks = proj
        .layers()
        .iter()
        .map(|l| l.out_offset..l.out_offset + l.k_a * l.k_d)
        .collect();
    Ok(Some((proj, blocks)))
}

fn build(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = DataInfParams::new()
        .projection(r.projection().unwrap_or(DEFAULT_PROJECTION))
        .seed(r.seed());
    match (r.get::<f64>("damping-scale")?, r.get::<f64>("damping")?) {
        (Some(_), Some(_)) => {
            return Err(AttribError::invalid_param(
                "datainf.damping",
                "both damping and damping-scale",
                "give one of them",
            ));
        }
        (Some(s), None) => p = p.damping_scale(s),
        (None, Some(l)) => p = p.damping(l),
        (None, None) => {}
    }
    p.check()?;
    Ok(Box::new(p))
}

/// Registry entry.
pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "datainf",
    description: "DataInf: per-layer Sherman-Morrison inverse of the damped empirical Fisher",
    paper: "Kwon et al. 2024; FiMO §4.3.3",
    uses_gradients: true,
    params: &[
        (
            "damping-scale",
            "λ_l = scale · mean ‖g_l‖² / d_l, d_l the layer's parameter count (default 0.1); kronecker:k sketches each layer separately",
        ),
        (
            "damping",
            "one absolute λ > 0 for every layer (dattri's regularization) instead of damping-scale",
        ),
    ],
    caps: super::Capabilities::projected(DEFAULT_PROJECTION),
    build,
};
