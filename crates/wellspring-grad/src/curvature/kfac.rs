//! Per-layer K-FAC factors (Martens & Grosse 2015; KFC for convolutions,
//! Grosse & Martens 2016) and their eigendecompositions, the input of EK-FAC
//! (George et al. 2018; Grosse et al. 2023).
//!
//! Linear layer: `A = (1/N) Σ_i ā_i ā_iᵀ` with `ā = [a; 1]`, `S = (1/N) Σ_i δ_i δ_iᵀ`,
//! so the layer's Gauss-Newton block in the canonical layout
//! (`vec` of the `[d_in + 1, d_out]` matrix, row-major) is `≈ A ⊗ S`.
//! Conv layer: `A = (1/N) Σ_i Σ_t p̄_it p̄_itᵀ` over patches (plus the bias's 1),
//! `S = (1/(N T)) Σ_i Σ_t δ_it δ_itᵀ` over the `T` output positions (KFC's
//! `Ω` and `Γ`); the block of the augmented `[W | b]` matrix is `≈ S ⊗ A`.
//!
//! `δ_i` is the gradient of example `i`'s loss w.r.t. the layer output, with
//! the label either the true one ([`KfacLabels::TrueLabel`], the empirical
//! Fisher's factors) or drawn from the model's predictive distribution
//! ([`KfacLabels::Sampled`], the true Fisher's, what EK-FAC uses; the default).

use burn::tensor::Device;
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use wellspring_core::{Dataset, Targets, rng};
use wellspring_models::{AnyModel, Logits, ParamLayerKind};

use crate::caps::LayerCap;
use crate::capture::host_f64;
use crate::engine::{GradEngine, Rows};
use crate::error::{GradError, Result};
use crate::gemm::{View, dgemm};
use crate::layout::{GradLayout, LayerSelection};
use crate::output::{CrossEntropy, Mse};
use crate::project::KroneckerProjector;

/// Running sums of one layer's factors: `Σ a aᵀ`, `Σ δ δᵀ`, input width,
/// output width, positions summed over examples (real tokens for sequences).
type FactorSums = (Vec<f64>, Vec<f64>, usize, usize, f64);

/// Which label the backprop error `δ` of the K-FAC `S` factor uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KfacLabels {
    /// The dataset's labels (empirical Fisher factors; also the only choice
    /// for regression).
    TrueLabel,
    /// One label per example drawn from `softmax(z_i)` with
    /// `ChaCha8(seed)` (true Fisher factors, as in EK-FAC).
    Sampled {
        /// Seed of the draws.
        seed: u64,
    },
}

/// Settings of a K-FAC fit (checked builder).
#[derive(Clone, Debug)]
pub struct KfacParams {
    selection: LayerSelection,
    labels: KfacLabels,
    batch_size: usize,
}

impl Default for KfacParams {
    fn default() -> Self {
        KfacParams {
            selection: LayerSelection::All,
            labels: KfacLabels::Sampled { seed: 0 },
            batch_size: 512,
        }
    }
}

/// One layer's factors and eigendecompositions (`A = Q_A diag(λ_A) Q_Aᵀ`).
#[derive(Clone, Debug)]
pub struct KfacFactors {
    /// Layer path.
    pub path: String,
    /// Linear or Conv2d.
    pub kind: ParamLayerKind,
    /// Input-side factor (`(d_in + 1)²` or `(c_in·kh·kw + 1)²`; no `+1` without bias).
    pub a: DMatrix<f64>,
    /// Output-side factor (`d_out²` or `c_out²`).
    pub s: DMatrix<f64>,
    /// Eigenvalues of `A`, ascending as nalgebra returns them.
    pub a_values: DVector<f64>,
    /// Eigenvectors of `A` (columns).
    pub a_vectors: DMatrix<f64>,
    /// Eigenvalues of `S`.
    pub s_values: DVector<f64>,
    /// Eigenvectors of `S` (columns).
    pub s_vectors: DMatrix<f64>,
}

/// K-FAC factors of the selected Linear and Conv2d layers.
#[derive(Clone, Debug)]
pub struct Kfac {
    /// Factors, in layout order.
    pub factors: Vec<KfacFactors>,
    /// Selected layers without a Kronecker structure (BatchNorm, EmbeddingBag), left out.
    pub skipped: Vec<String>,
    /// Labels used for `δ`.
    pub labels: KfacLabels,
    /// Examples averaged.
    pub n: usize,
    /// Sampled labels, one per averaged row, when `labels` is `Sampled`.
    pub sampled: Option<Vec<usize>>,
    layout: GradLayout,
}

impl KfacParams {
    /// Defaults: all layers, sampled labels with seed 0, batches of 512.
    pub fn new() -> Self {
        Self::default()
    }

    /// Layers to factor (BatchNorm/EmbeddingBag layers in it are skipped).
    pub fn selection(mut self, s: LayerSelection) -> Self {
        self.selection = s;
        self
    }

    /// Label choice for `δ`.
    pub fn labels(mut self, labels: KfacLabels) -> Self {
        self.labels = labels;
        self
    }

    /// Examples per forward/backward.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Accumulates the factors over `rows` of `data` and eigendecomposes them.
    ///
    /// Sequence layers (a Linear applied per token) use per-token factors:
    /// `A = (1/N) Σ_i Σ_t ā_it ā_itᵀ` and `S = (1/T_total) Σ_i Σ_t δ_it δ_itᵀ`
    /// over real (unpadded) tokens, as KFC does over convolution positions.
    pub fn fit<'r>(
        &self,
        model: impl Into<AnyModel>,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
        device: &Device,
    ) -> Result<Kfac> {
        let model: AnyModel = model.into();
        if self.batch_size == 0 {
            return Err(GradError::param(
                "KfacParams.batch_size",
                0,
                "must be at least 1",
            ));
        }
        model.check_dataset(data)?;
        let idx = rows.into().resolve(data.len(), data.name())?;
        if idx.is_empty() {
            return Err(wellspring_core::CoreError::Empty {
                what: format!("rows of {}", data.name()),
            }
            .into());
        }
        let full = self.selection.resolve(&model)?;
        let mut keep = Vec::new();
        let mut skipped = Vec::new();
        for s in full.slots() {
            match s.desc.kind {
                ParamLayerKind::Linear | ParamLayerKind::Conv2d => keep.push(s.desc.path.clone()),
                _ => skipped.push(s.desc.path.clone()),
            }
        }
        if keep.is_empty() {
            return Err(GradError::unsupported(
                "K-FAC",
                format!(
                    "no Linear or Conv2d layer among the selected {:?}",
                    full.paths()
                ),
            ));
        }
        let regression = matches!(data.targets(), Targets::Regression { .. });
        let next_token = matches!(data.targets(), Targets::NextToken { .. });
        let (target_data, sampled) = match (self.labels, regression) {
            (KfacLabels::TrueLabel, _) => (None, None),
            (KfacLabels::Sampled { .. }, _) if next_token => {
                return Err(GradError::unsupported(
                    "K-FAC with sampled labels",
                    format!(
                        "{} has next-token targets; use KfacLabels::TrueLabel (the empirical Fisher's factors)",
                        data.name()
                    ),
                ));
            }
            (KfacLabels::Sampled { .. }, true) => {
                return Err(GradError::unsupported(
                    "K-FAC with sampled labels",
                    format!(
                        "{} has regression targets; use KfacLabels::TrueLabel",
                        data.name()
                    ),
                ));
            }
            (KfacLabels::Sampled { seed }, false) => {
                let labels = sample_labels(&model, data, &idx, seed, self.batch_size, device)?;
                let mut all = data
                    .labels()
                    .expect("classification data has labels")
                    .to_vec();
                for (&i, &y) in idx.iter().zip(&labels) {
                    all[i] = y;
                }
                let c = data.n_classes().expect("classification data has classes");
                (Some(data.with_labels(all, c)?), Some(labels))
            }
        };
        let data = target_data.as_ref().unwrap_or(data);
        let params = GradEngine::params()
            .selection(LayerSelection::Layers(keep))
            .batch_size(self.batch_size);
        let engine = if regression {
            params.output(Mse)
        } else {
            params.output(CrossEntropy)
        }
        .build(model.clone(), device)?;
        let layout = engine.layout().clone();
        let mut acc: Vec<FactorSums> = Vec::new();
        engine.for_each_batch(data, &idx, |_, _, cap| {
            let mask = cap.token_mask.as_ref();
            for (l, layer) in cap.layers.iter().enumerate() {
                let (a, s, positions) = layer_factors(layer, mask)?;
                let (ia, is) = (layer.in_width(), layer.out_width());
                if acc.len() <= l {
                    acc.push((vec![0.0; ia * ia], vec![0.0; is * is], ia, is, 0.0));
                }
                for (x, y) in acc[l].0.iter_mut().zip(a) {
                    *x += y;
                }
                for (x, y) in acc[l].1.iter_mut().zip(s) {
                    *x += y;
                }
                acc[l].4 += positions;
            }
            Ok(())
        })?;
        let n = idx.len() as f64;
        let mut factors = Vec::new();
        for (slot, (a, s, ia, is, positions)) in layout.slots().iter().zip(acc) {
            let a = DMatrix::from_row_slice(ia, ia, &a) / n;
            let s = DMatrix::from_row_slice(is, is, &s) / positions.max(1.0);
            let ea = SymmetricEigen::new(a.clone());
            let es = SymmetricEigen::new(s.clone());
            factors.push(KfacFactors {
                path: slot.desc.path.clone(),
                kind: slot.desc.kind,
                a,
                s,
                a_values: ea.eigenvalues,
                a_vectors: ea.eigenvectors,
                s_values: es.eigenvalues,
                s_vectors: es.eigenvectors,
            });
        }
        Ok(Kfac {
            factors,
            skipped,
            labels: self.labels,
            n: idx.len(),
            sampled,
            layout,
        })
    }
}

/// Unnormalised `Σ ā āᵀ`, `Σ δ δᵀ` (row-major) of one batch, and the number
/// of positions summed over its examples (examples for flat linear layers,
/// real tokens for sequence layers, `examples × positions` for convolutions).
/// `mask` is the batch's `(T, rows × T)` token mask: padded positions of a
/// sequence layer with `t = T` are left out.
fn layer_factors(
    layer: &LayerCap,
    mask: Option<&(usize, Vec<f32>)>,
) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    match layer {
        LayerCap::Linear(c) => {
            let all = c.delta.len() / c.d_out;
            let keep: Vec<usize> = match mask {
                Some((t, m)) if c.t > 1 && *t == c.t && m.len() == all => {
                    (0..all).filter(|&r| m[r] != 0.0).collect()
                }
                _ => (0..all).collect(),
            };
            let m = keep.len();
            let ia = c.d_in + c.bias as usize;
            let mut a = vec![1.0f64; m * ia];
            for (r, &src) in keep.iter().enumerate() {
                for j in 0..c.d_in {
                    a[r * ia + j] = c.a[src * c.d_in + j] as f64;
                }
            }
            let mut d = Vec::with_capacity(m * c.d_out);
            for &src in &keep {
                d.extend(
                    c.delta[src * c.d_out..(src + 1) * c.d_out]
                        .iter()
                        .map(|&v| v as f64),
                );
            }
            let mut fa = vec![0.0; ia * ia];
            dgemm(
                1.0,
                View::rm(&a, m, ia, ia).t(),
                View::rm(&a, m, ia, ia),
                0.0,
                &mut fa,
                ia,
            );
            let mut fs = vec![0.0; c.d_out * c.d_out];
            dgemm(
                1.0,
                View::rm(&d, m, c.d_out, c.d_out).t(),
                View::rm(&d, m, c.d_out, c.d_out),
                0.0,
                &mut fs,
                c.d_out,
            );
            Ok((fa, fs, m as f64))
        }
        LayerCap::Conv(c) => {
            let g = c.geom;
            let (k, l) = (g.k(), g.l());
            let ia = k + c.bias as usize;
            let m = c.delta.len() / (g.c_out * l);
            let mut fa = vec![0.0; ia * ia];
            let mut fs = vec![0.0; g.c_out * g.c_out];
            let mut p32 = vec![0.0f32; k * l];
            let mut p = vec![1.0f64; ia * l];
            for i in 0..m {
                g.im2col(&c.x[i * g.in_len()..(i + 1) * g.in_len()], &mut p32);
                for (dst, &src) in p.iter_mut().zip(&p32) {
                    *dst = src as f64;
                }
                dgemm(
                    1.0,
                    View::rm(&p, ia, l, l),
                    View::rm(&p, ia, l, l).t(),
                    1.0,
                    &mut fa,
                    ia,
                );
                let d: Vec<f64> = c.delta[i * g.c_out * l..(i + 1) * g.c_out * l]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                dgemm(
                    1.0,
                    View::rm(&d, g.c_out, l, l),
                    View::rm(&d, g.c_out, l, l).t(),
                    1.0,
                    &mut fs,
                    g.c_out,
                );
            }
            Ok((fa, fs, (m * l) as f64))
        }
        LayerCap::Bn(_) | LayerCap::Emb(_) | LayerCap::Tok(_) | LayerCap::Ln(_) => {
            Err(GradError::unsupported(
                "K-FAC",
                "only Linear and Conv2d layers have Kronecker-factored curvature",
            ))
        }
    }
}

fn sample_labels(
    model: &AnyModel,
    data: &Dataset,
    idx: &[usize],
    seed: u64,
    bs: usize,
    device: &Device,
) -> Result<Vec<usize>> {
    let plain = device.clone().without_autodiff();
    let m = model.valid().fork(&plain);
    let mut r = rng(seed);
    let mut out = Vec::with_capacity(idx.len());
    for batch in idx.chunks(bs) {
        let x = m.input_batch(data, batch, &plain)?;
        let z = match m.forward(&x)?.logits {
            Logits::Flat(z) => z,
            Logits::Seq(_) => {
                return Err(GradError::unsupported(
                    "K-FAC with sampled labels",
                    "the model gives per-token logits; use KfacLabels::TrueLabel",
                ));
            }
        };
        let c = z.dims()[1];
        let z = host_f64(z);
        for row in z.chunks_exact(c) {
            let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - mx).exp()).collect();
            let total: f64 = e.iter().sum();
            let u: f64 = r.random::<f64>() * total;
            let mut cum = 0.0;
            let mut pick = c - 1;
            for (j, v) in e.iter().enumerate() {
                cum += v;
                if u < cum {
                    pick = j;
                    break;
                }
            }
            out.push(pick);
        }
    }
    Ok(out)
}

impl Kfac {
    /// The layers factored (an engine with this layout feeds
    /// [`Kfac::eigenbasis_projector`]).
    pub fn layout(&self) -> &GradLayout {
        &self.layout
    }

    /// The projector onto the K-FAC eigenbases, `g ↦ (Q_Aᵀ ⊗ Q_Sᵀ) g` per layer,
    /// layers concatenated: applied with [`GradEngine::projected`] it gives
    /// per-example gradients in EK-FAC's rotated coordinates without forming
    /// them. Entry `(i, j)` of a layer's block (row-major, `i` over `A`'s
    /// eigenvectors) has K-FAC eigenvalue `λ_A[i] λ_S[j]`
    /// ([`Kfac::eigenvalues`]).
    pub fn eigenbasis_projector(&self) -> Result<KroneckerProjector> {
        let factors = self
            .factors
            .iter()
            .map(|f| {
                let qa = f.a_vectors.transpose();
                let qs = f.s_vectors.transpose();
                (
                    row_major_f32(&qa),
                    qa.nrows(),
                    row_major_f32(&qs),
                    qs.nrows(),
                )
            })
            .collect();
        KroneckerProjector::from_factors(&self.layout, factors, true, "K-FAC eigenbasis")
    }

    /// `λ_A[i] λ_S[j]` for every rotated coordinate, in the order of
    /// [`Kfac::eigenbasis_projector`]'s output.
    pub fn eigenvalues(&self) -> Vec<f64> {
        let mut out = Vec::new();
        for f in &self.factors {
            for &la in f.a_values.iter() {
                for &ls in f.s_values.iter() {
                    out.push(la * ls);
                }
            }
        }
        out
    }
}

fn row_major_f32(m: &DMatrix<f64>) -> Vec<f32> {
    let mut v = Vec::with_capacity(m.len());
    for r in 0..m.nrows() {
        for c in 0..m.ncols() {
            v.push(m[(r, c)] as f32);
        }
    }
    v
}
