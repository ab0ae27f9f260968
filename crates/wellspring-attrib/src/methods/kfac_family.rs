//! K-FAC and EK-FAC influence functions (Martens & Grosse 2015; George et
//! al. 2018; Grosse et al. 2023; FiMO, Bae et al. 2024, §4): `kfac`, `ekfac`.
//!
//! ```text
//! score(i, j) = g(z_i)ᵀ (G̃ + λI)⁻¹ g(z_j) = Σ_c ĝ_i[c] ĝ_j[c] / (Λ_c + λ)
//! ĝ = (Q_Aᵀ ⊗ Q_Sᵀ) g per layer (the K-FAC eigenbasis)
//! ```
//!
//! with `G̃ ≈ A ⊗ S` the layer-wise Kronecker-factored Gauss-Newton (true
//! Fisher: the backprop errors use labels sampled from the model, as EK-FAC
//! does), `A = Q_A diag(λ_A) Q_Aᵀ`, `S = Q_S diag(λ_S) Q_Sᵀ` from
//! `wellspring_grad::Kfac`. K-FAC uses `Λ_c = λ_A[a] λ_S[s]`; EK-FAC replaces
//! them by the corrected eigenvalues `Λ_c = (1/n) Σ_i ĝ_i[c]²` of the same
//! sampled-label gradients (George et al. 2018, eq. 12), so on a one-layer
//! model the two differ only in `Λ`. The rotation is applied to the layer
//! factors `(a_i, δ_i)` directly (no `p × p` matrix, no per-example gradient
//! vector before projection). Damping `λ = damping-rel · mean(Λ)` (default
//! 0.1, kronfluence's heuristic) or an absolute `damping`. `labels=true`
//! takes the factors and corrections from the dataset's labels instead (the
//! empirical Fisher, as dattri's EK-FAC does).
//!
//! Sign: removing a helpful `z_i` raises the test loss: positive = helps.
//! Only Linear and Conv2d layers are factored; other layers (BatchNorm,
//! EmbeddingBag) are left out of `g`, and the report says so. The rotated
//! training gradients (`n × p`, f32) are computed on first use; group scores
//! rotate batched group gradients (GGDA) and never need them.

use std::sync::OnceLock;

use wellspring_core::{Dataset, Grouping, ScoreMatrix, Targets};
use wellspring_grad::{
    GradEngine, Kfac, KfacLabels, KfacParams, KroneckerProjector, LayerSelection, Projector, Reduce,
};
use wellspring_models::AnyModel;
use wellspring_models::burn_types::Device;

use super::gradient::{loss_output, grad_err, permute_rows, singleton_order};
use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self};
use crate::dense::gemm_abt;
use crate::error::{AttribError, Result};
use crate::signature::DataSignature;
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor, check_grouping};

/// Damping of the eigenvalues.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KfacDamping {
    /// `λ = r · mean(Λ)`.
    Relative(f64),
    /// `λ` itself.
    Absolute(f64),
}

/// Parameters of K-FAC / EK-FAC influence.
#[derive(Clone, Debug, PartialEq)]
pub struct KfacInfluenceParams {
    corrected: bool,
    damping: KfacDamping,
    seed: u64,
    layers: Option<Vec<String>>,
    true_labels: bool,
}

impl KfacInfluenceParams {
    /// K-FAC (`corrected = false`) or EK-FAC, relative damping 0.1, seed 0.
    pub fn new(corrected: bool) -> Self {
        KfacInfluenceParams {
            corrected,
            damping: KfacDamping::Relative(0.1),
            seed: 0,
            layers: None,
            true_labels: false,
        }
    }

    /// Factor only these layers (paths, or prefixes such as `trunk.blocks`;
    /// default: every Linear and Conv2d layer). Influence is then taken over
    /// their parameters only, as Grosse et al. 2023 restrict EK-FAC to a
    /// language model's MLP layers.
    pub fn layers<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.layers = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The damping.
    pub fn damping(mut self, d: KfacDamping) -> Self {
        self.damping = d;
        self
    }

    /// Fit the factors (and EK-FAC's corrections) on the dataset's labels
    /// (empirical Fisher) instead of labels sampled from the model.
    pub fn true_labels(mut self, on: bool) -> Self {
        self.true_labels = on;
        self
    }

    /// Seed of the sampled labels.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn name(&self) -> &'static str {
        if self.corrected { "ekfac" } else { "kfac" }
    }

    /// Checks that the damping is finite and ≥ 0.
    pub fn check(&self) -> Result<()> {
        let (key, v) = match self.damping {
            KfacDamping::Relative(v) => ("damping-rel", v),
            KfacDamping::Absolute(v) => ("damping", v),
        };
        if !v.is_finite() || v < 0.0 {
            return Err(AttribError::invalid_param(
                format!("{}.{key}", self.name()),
                v,
                "must be finite and >= 0",
            ));
        }
        Ok(())
    }
}

impl Attributor for KfacInfluenceParams {
    type Fitted = KfacInfluence;

    /// Fits the K-FAC factors and eigenbases (and, for EK-FAC, the corrected
    /// eigenvalues: one more projected pass over `train`).
    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<KfacInfluence> {
        self.check()?;
        let name = self.name();
        if train.is_empty() {
            return Err(AttribError::mismatch(
                train.name(),
                "the training set is empty",
            ));
        }
        let (model, device) = (&source.model, &source.device);
        model.check_dataset(train)?;
        let labels = match train.targets() {
            Targets::Classes { .. } if self.true_labels => KfacLabels::TrueLabel,
            Targets::Classes { .. } => KfacLabels::Sampled { seed: self.seed },
            // Regression, and next-token targets (per-token empirical Fisher factors).
            Targets::Regression { .. } | Targets::NextToken { .. } => KfacLabels::TrueLabel,
        };
        let mut kp = KfacParams::new();
        if let Some(names) = &self.layers {
            kp = kp.selection(LayerSelection::layers(names.iter().cloned()));
        }
        let kfac = kp
            .labels(labels)
            .fit(model, train, 0..train.len(), device)
            .map_err(grad_err(name))?;
        if kfac.factors.is_empty() {
            return Err(AttribError::unsupported(
                name,
                "the model has no Linear or Conv2d layer to factor",
            ));
        }
        let proj = kfac.eigenbasis_projector().map_err(grad_err(name))?;
        let selection = LayerSelection::layers(kfac.layout().paths());
        let engine = engine(name, model, device, train, &selection, 256, 64)?;
        let single = engine_single(name, model, device, train, &selection)?;
        let mut lambdas = if self.corrected {
            corrected_eigenvalues(name, &engine, &kfac, &proj, train)?
        } else {
            kfac.eigenvalues()
        };
        lambdas.iter_mut().for_each(|v| *v = v.max(0.0));
        let mean = lambdas.iter().sum::<f64>() / lambdas.len().max(1) as f64;
        let lambda = match self.damping {
            KfacDamping::Relative(r) => r * mean,
            KfacDamping::Absolute(a) => a,
        };
        let inv: Vec<f32> = lambdas
            .iter()
            .map(|&l| {
                if l + lambda > 0.0 {
                    (1.0 / (l + lambda)) as f32
                } else {
                    0.0
                }
            })
            .collect();
        Ok(KfacInfluence {
            name,
            skipped: kfac.skipped.clone(),
            engine,
            single,
            proj,
            inv,
            lambda,
            train_rot: OnceLock::new(),
            n: train.len(),
            sig: DataSignature::of(train),
            train: train.clone(),
        })
    }
}

fn engine(
    name: &str,
    model: &AnyModel,
    device: &Device,
    train: &Dataset,
    selection: &LayerSelection,
    batch: usize,
    block: usize,
) -> Result<GradEngine> {
    GradEngine::params()
        .output_arc(loss_output(train))
        .selection(selection.clone())
        .batch_size(batch)
        .block_rows(block)
        .build(model, device)
        .map_err(grad_err(name))
}

/// Batch-of-one engine for test points (a row must not depend on its batch).
fn engine_single(
    name: &str,
    model: &AnyModel,
    device: &Device,
    train: &Dataset,
    selection: &LayerSelection,
) -> Result<GradEngine> {
    engine(name, model, device, train, selection, 1, 1)
}

/// EK-FAC's `Λ_c = (1/n) Σ_i ĝ_i[c]²` over the sampled-label gradients the
/// factors were fitted with, streamed block by block.
fn corrected_eigenvalues(
    name: &str,
    engine: &GradEngine,
    kfac: &Kfac,
    proj: &KroneckerProjector,
    train: &Dataset,
) -> Result<Vec<f64>> {
    let data = match (&kfac.sampled, train.n_classes()) {
        (Some(labels), Some(c)) => train.with_labels(labels.clone(), c)?,
        _ => train.clone(),
    };
    let k = proj.output_dim();
    let mut sums = vec![0.0f64; k];
    engine
        .projected(&data, 0..data.len(), proj, |b| {
            for r in 0..b.len() {
                for (s, &v) in sums.iter_mut().zip(b.row(r)) {
                    *s += v as f64 * v as f64;
                }
            }
            Ok(())
        })
        .map_err(grad_err(name))?;
    let n = data.len().max(1) as f64;
    Ok(sums.into_iter().map(|s| s / n).collect())
}

/// Fitted K-FAC / EK-FAC influence.
#[derive(Debug)]
pub struct KfacInfluence {
    name: &'static str,
    skipped: Vec<String>,
    engine: GradEngine,
    single: GradEngine,
    proj: KroneckerProjector,
    /// `1 / (Λ_c + λ)` per rotated coordinate.
    inv: Vec<f32>,
    lambda: f64,
    train_rot: OnceLock<Vec<f32>>,
    n: usize,
    sig: DataSignature,
    train: Dataset,
}

impl KfacInfluence {
    /// The absolute damping `λ`.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// `1 / (Λ_c + λ)` per rotated coordinate, in the eigenbasis order.
    pub fn inverse_eigenvalues(&self) -> &[f32] {
        &self.inv
    }

    /// Layers left out of the factorisation (no Kronecker structure).
    pub fn skipped_layers(&self) -> &[String] {
        &self.skipped
    }

    fn dim(&self) -> usize {
        self.inv.len()
    }

    fn train_rows(&self) -> Result<&[f32]> {
        if let Some(t) = self.train_rot.get() {
            return Ok(t);
        }
        let t = self
            .engine
            .projected_matrix(&self.train, 0..self.n, &self.proj)
            .map_err(grad_err(self.name))?;
        Ok(self.train_rot.get_or_init(|| t))
    }

    fn scores(&self, rows: &[f32], n_rows: usize, test: &Dataset) -> Result<ScoreMatrix> {
        self.sig.check(test)?;
        let k = self.dim();
        let mut tf = self
            .single
            .projected_matrix(test, 0..test.len(), &self.proj)
            .map_err(grad_err(self.name))?;
        for row in tf.chunks_mut(k.max(1)) {
            row.iter_mut().zip(&self.inv).for_each(|(v, w)| *v *= w);
        }
        by_test_blocks(self.name, n_rows, test.len(), |c0, cols| {
            let mut out = vec![0.0f32; cols * n_rows];
            gemm_abt(
                &tf[c0 * k..(c0 + cols) * k],
                cols,
                k,
                rows,
                n_rows,
                &mut out,
            );
            Ok(out)
        })
    }
}

impl FittedAttributor for KfacInfluence {
    fn name(&self) -> &str {
        self.name
    }

    fn n_train(&self) -> usize {
        self.n
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        self.sig.check(test)?;
        self.scores(self.train_rows()?, self.n, test)
    }

    /// `Σ_c ĝ_i[c]² / (Λ_c + λ)`.
    fn self_attribute(&self) -> Result<Vec<f32>> {
        let k = self.dim();
        let out: Vec<f32> = self
            .train_rows()?
            .chunks(k.max(1))
            .map(|r| {
                r.iter()
                    .zip(&self.inv)
                    .map(|(v, w)| (*v as f64) * (*v as f64) * (*w as f64))
                    .sum::<f64>() as f32
            })
            .collect();
        check_self(self.name, &out)?;
        Ok(out)
    }

    /// GGDA group scores from batched group gradients, rotated into the eigenbasis.
    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        check_grouping(grouping, self.n)?;
        self.sig.check(test)?;
        let rows = match singleton_order(grouping) {
            Some(order) => permute_rows(self.train_rows()?, self.dim(), &order),
            None => self
                .engine
                .group(&self.train, grouping, Reduce::Sum, Some(&self.proj))
                .map_err(grad_err(self.name))?,
        };
        self.scores(&rows, grouping.n_groups(), test)
    }
}

fn build_with(corrected: bool, r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let name = if corrected { "ekfac" } else { "kfac" };
    if let Some(p) = r.projection() {
        return Err(AttribError::unsupported(
            name,
            format!(
                "works in the K-FAC eigenbasis (a fixed rotation), so a projection ({p}) does not apply"
            ),
        ));
    }
    let damping = match (r.get::<f64>("damping")?, r.get::<f64>("damping-rel")?) {
        (Some(_), Some(_)) => {
            return Err(AttribError::invalid_param(
                format!("{name}.damping"),
                "both damping and damping-rel",
                "give one of them",
            ));
        }
        (Some(a), None) => KfacDamping::Absolute(a),
        (None, Some(rel)) => KfacDamping::Relative(rel),
        (None, None) => KfacDamping::Relative(0.1),
    };
    let mut p = KfacInfluenceParams::new(corrected)
        .damping(damping)
        .seed(r.seed());
    if let Some(list) = r.get::<String>("layers")? {
        p = p.layers(list.split(',').map(str::trim).filter(|s| !s.is_empty()));
    }
    match r.get::<String>("labels")?.as_deref() {
        None | Some("sampled") => {}
        Some("true") => p = p.true_labels(true),
        Some(other) => {
            return Err(AttribError::invalid_param(
                format!("{name}.labels"),
                other,
                "expected sampled (true Fisher, default) or true (empirical Fisher)",
            ));
        }
    }
    p.check()?;
    Ok(Box::new(p))
}

fn build_kfac(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    build_with(false, r)
}

fn build_ekfac(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    build_with(true, r)
}

const PARAMS: &[(&str, &str)] = &[
    ("damping", "absolute damping λ >= 0"),
    (
        "layers",
        "comma-separated layer paths or prefixes to factor (default: every Linear/Conv2d layer)",
    ),
    (
        "damping-rel",
        "damping as a share of the mean eigenvalue (default 0.1)",
    ),
    (
        "labels",
        "sampled (labels drawn from the model: true Fisher, default) or true (dataset labels: empirical Fisher)",
    ),
];

/// Registry entry of K-FAC influence.
pub(crate) const KFAC: MethodInfo = MethodInfo {
    name: "kfac",
    description: "influence with the Kronecker-factored Gauss-Newton (A ⊗ S eigenvalues)",
    paper: "Martens & Grosse 2015; George et al. 2018; FiMO §4",
    uses_gradients: true,
    params: PARAMS,
    caps: super::Capabilities::NONE,
    build: build_kfac,
};

/// Registry entry of EK-FAC influence.
pub(crate) const EKFAC: MethodInfo = MethodInfo {
    name: "ekfac",
    description: "influence with K-FAC eigenbases and corrected eigenvalues (EK-FAC)",
    paper: "George et al. 2018 eq. 12; Grosse et al. 2023; FiMO §4",
    uses_gradients: true,
    params: PARAMS,
    caps: super::Capabilities::NONE,
    build: build_ekfac,
};
