//! DataInf (Kwon et al. 2024; FiMO, Bae et al. 2024, §4.3.3): a closed-form
//! inverse of the damped per-layer empirical Fisher by the Sherman–Morrison
//! average,
//!
//! ```text
//! (1/n Σ_k g_k g_kᵀ + λ_l I)⁻¹ ≈ (1/n) Σ_k (1/λ_l) (I − g_k g_kᵀ / (λ_l + ‖g_k‖²))
//! score(i, j) = Σ_l g_il ᵀ M_l g_jl,   M_l = (1/λ_l) (I − (1/n) G_lᵀ D_l G_l)
//! ```
//!
//! with `D_l = diag(1/(λ_l + ‖g_kl‖²))` and, as in the paper,
//! `λ_l = damping-scale · (1/(n d_l)) Σ_k ‖g_kl‖²` (default scale 0.1). `g` is
//! the (projected) loss gradient. Blocks `l` are the model's layers with the
//! identity projection (each layer's `d_l × d_l` matrix `M_l` is formed, so
//! layers must have at most [`MAX_BLOCK`] parameters); with a random
//! projection (default Kronecker to 512 dimensions, which sums the layers'
//! sketches) the whole projected gradient is one block.
//!
//! Sign: positive = removing the point raises the test loss (helps).

use std::sync::OnceLock;

use nalgebra::DMatrix;
use wellspring_core::{Dataset, Grouping, ScoreMatrix};
use wellspring_grad::LayerSelection;

use super::grad_dot::{DEFAULT_PROJECTION, check_projection, loss_output};
use super::grad_features::{GradFeaturizer, grad_err, permute_rows, singleton_order};
use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self};
use crate::dense::{dot, gemm_abt};
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::signature::DataSignature;
use crate::solvers::ihvp::matmul;
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor, check_grouping};

/// Largest block whose `d × d` matrix is formed.
pub const MAX_BLOCK: usize = 8192;

/// Parameters of DataInf.
#[derive(Clone, Debug, PartialEq)]
pub struct DataInfParams {
    scale: f64,
    projection: ProjectionSpec,
    seed: u64,
}

impl Default for DataInfParams {
    fn default() -> Self {
        DataInfParams {
            scale: 0.1,
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

    /// `λ_l = scale · mean ‖g_l‖² / d_l` (> 0).
    pub fn damping_scale(mut self, s: f64) -> Self {
        self.scale = s;
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
        let feat = GradFeaturizer::new(
            "datainf",
            model,
            device,
            loss_output(train),
            self.projection,
            self.seed,
        )?;
        let blocks: Vec<std::ops::Range<usize>> = if self.projection == ProjectionSpec::Identity {
            let layout = LayerSelection::All
                .resolve(model)
                .map_err(grad_err("datainf"))?;
            layout.slots().iter().map(|s| s.range()).collect()
        } else {
            vec![0..feat.dim()]
        };
        if let Some(b) = blocks.iter().find(|b| b.len() > MAX_BLOCK) {
            return Err(AttribError::unsupported(
                "datainf",
                format!(
                    "a layer block of {} parameters is larger than {MAX_BLOCK} (its d × d matrix is formed); \
                     use a projection (default kronecker:512)",
                    b.len()
                ),
            ));
        }
        Ok(DataInf {
            scale: self.scale,
            feat,
            blocks,
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
    /// `M_l` per block, f64.
    m: Vec<DMatrix<f64>>,
    /// `λ_l` per block.
    lambdas: Vec<f64>,
}

/// Fitted DataInf (state computed on first use).
#[derive(Debug)]
pub struct DataInf {
    scale: f64,
    feat: GradFeaturizer,
    blocks: Vec<std::ops::Range<usize>>,
    state: OnceLock<State>,
    n: usize,
    sig: DataSignature,
    train: Dataset,
}

impl DataInf {
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
        for b in &self.blocks {
            let d = b.len();
            let gb = DMatrix::<f64>::from_fn(d, n, |r, i| g[i * k + b.start + r] as f64); // G_lᵀ
            let norms: Vec<f64> = (0..n).map(|i| gb.column(i).norm_squared()).collect();
            let lambda = (self.scale * norms.iter().sum::<f64>() / (n as f64 * d.max(1) as f64))
                .max(f64::MIN_POSITIVE);
            let mut scaled = gb.clone();
            for (i, &nn) in norms.iter().enumerate() {
                scaled.column_mut(i).scale_mut(1.0 / (lambda + nn));
            }
            // (1/λ)(I − (1/n) G_lᵀ D G_l), with G_lᵀ = gb (d × n)
            let mut m = matmul(&scaled, &gb.transpose(), false) * (-1.0 / n as f64);
            for t in 0..d {
                m[(t, t)] += 1.0;
            }
            ms.push(m / lambda);
            lambdas.push(lambda);
        }
        Ok(self.state.get_or_init(|| State {
            train_feats: g,
            m: ms,
            lambdas,
        }))
    }

    /// `V M` for row-major `V` (`rows × k`), block by block.
    fn apply(&self, st: &State, v: &[f32], rows: usize) -> Vec<f32> {
        let k = self.feat.dim();
        let mut out = vec![0.0f32; rows * k];
        for (b, m) in self.blocks.iter().zip(&st.m) {
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

fn build(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let mut p = DataInfParams::new()
        .projection(r.projection().unwrap_or(DEFAULT_PROJECTION))
        .seed(r.seed());
    if let Some(s) = r.get::<f64>("damping-scale")? {
        p = p.damping_scale(s);
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
    params: &[(
        "damping-scale",
        "λ_l = scale · mean ‖g_l‖² / d_l (default 0.1)",
    )],
    build,
};
