//! The curvature of the influence-function family in the projected gradient
//! space `g ↦ P g` (FiMO eq. 10 without its second term; Martens 2010).
//!
//! Gauss-Newton: `C = (1/n) Σ_i J̃_iᵀ H_i J̃_i` with `J̃_i = P ∂z_i/∂θ` the
//! projected logit Jacobian (`c × k`, one projected-gradient pass per logit)
//! and `H_i = ∂²ℓ_i/∂z_i²` the loss's logit Hessian. Each `H_i` is
//! eigendecomposed (`c × c`) and `J̃_iᵀ H_i J̃_i = Σ_r u_r u_rᵀ` with
//! `u_r = √μ_r J̃_iᵀ v_r`; rows with `μ_r ≤ 10⁻⁸` are dropped (for a
//! confident softmax most of the `c` rows vanish), so `C = UᵀU / n` with
//! `U` a few rows per example. With the identity projection this is the
//! exact Gauss-Newton matrix, which for logistic regression is the Hessian.
//!
//! Hessian: the explicit parameter-space Hessian of the mean training loss
//! from the grad crate's Hessian-vector products (central differences of f64
//! gradients), one product per parameter: identity projection and small
//! models only. It may be indefinite on a non-convex model; the solvers clip
//! or stop on negative curvature.

use nalgebra::DMatrix;
use rayon::prelude::*;
use wellspring_core::{Dataset, Targets};
use wellspring_grad::{CrossEntropy, CurvatureParams, Logit, Mse, explicit_matrix};
use wellspring_models::AnyModel;
use wellspring_models::burn_types::Device;

use super::super::gradient::{GradFeaturizer, grad_err};
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::solvers::ihvp::matmul;
use wellspring_grad::{GradError, LinearOperator};

/// Largest parameter count of the explicit Hessian variant (`p` Hessian-vector
/// products and a `p × p` matrix).
pub const MAX_HESSIAN_PARAMS: usize = 4096;

/// Eigenvalues of a per-example logit Hessian at or below this are dropped.
const ROW_EPS: f64 = 1e-8;

/// Projected Gauss-Newton curvature: the rows `U` (row-major `rows × k`),
/// where example `i` owns rows `offsets[i]..offsets[i + 1]`, and the full
/// `C = UᵀU / n + l2 I` in f64.
#[derive(Debug)]
pub struct ProjectedGn {
    u: Vec<f32>,
    offsets: Vec<usize>,
    k: usize,
    l2: f64,
    /// The full matrix `C`.
    pub full: DMatrix<f64>,
    /// Whether `C` was formed block by block ([`block_gram`]).
    block_sparse: bool,
}

impl ProjectedGn {
    /// Builds `U` and `C` for `train` from `c` projected logit-gradient passes.
    pub(crate) fn fit(
        method: &'static str,
        model: &AnyModel,
        device: &Device,
        projection: ProjectionSpec,
        seed: u64,
        train: &Dataset,
        l2: f64,
    ) -> Result<Self> {
        if matches!(train.targets(), Targets::NextToken { .. }) {
            return Err(AttribError::unsupported(
                method,
                format!(
                    "{} has next-token targets; the projected Gauss-Newton needs [n × classes] \
                     logits (use curvature=hessian, ekfac, datainf or trak for a language model)",
                    train.name()
                ),
            ));
        }
        let n = train.len();
        let logits = wellspring_models::predict_logits(model, train, device)?;
        let c = logits.len() / n.max(1);
        let mut jac: Vec<Vec<f32>> = Vec::with_capacity(c);
        let mut k = 0;
        for j in 0..c {
            let feat = GradFeaturizer::new(
                method,
                model,
                device,
                std::sync::Arc::new(Logit(j)),
                projection,
                seed,
            )?;
            k = feat.dim();
            jac.push(feat.features(train)?);
        }
        let hs = logit_hessians(method, train, &logits, c)?;
        let rows: Vec<Vec<f32>> = (0..n)
            .into_par_iter()
            .map(|i| -> Result<Vec<f32>> {
                let hm = DMatrix::from_row_slice(c, c, &hs[i]);
                let eig = nalgebra::SymmetricEigen::new((&hm + hm.transpose()) * 0.5);
                let mut out = Vec::new();
                for (r, &mu) in eig.eigenvalues.iter().enumerate() {
                    if mu <= ROW_EPS {
                        continue;
                    }
                    let s = mu.sqrt();
                    let mut row = vec![0.0f64; k];
                    for (cls, jc) in jac.iter().enumerate() {
                        let w = s * eig.eigenvectors[(cls, r)];
                        if w == 0.0 {
                            continue;
                        }
                        for (o, &g) in row.iter_mut().zip(&jc[i * k..(i + 1) * k]) {
                            *o += w * g as f64;
                        }
                    }
                    out.extend(row.into_iter().map(|v| v as f32));
                }
                Ok(out)
            })
            .collect::<Result<_>>()?;
        let block = block_gram(&jac, &hs, k, l2);
        drop(jac);
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut u = Vec::new();
        for r in rows {
            u.extend_from_slice(&r);
            offsets.push(u.len() / k.max(1));
        }
        let block_sparse = block.is_some();
        let full = block.unwrap_or_else(|| gram(&u, k, n as f64, l2));
        Ok(ProjectedGn {
            u,
            offsets,
            k,
            l2,
            full,
            block_sparse,
        })
    }

    /// The Gram operator `C = UᵀU / rows + l2 I` of given rows, one row per
    /// example: the empirical Fisher of projected loss gradients, or GGDA's
    /// batched empirical Fisher when the rows are group gradients.
    pub(crate) fn from_rows(u: Vec<f32>, k: usize, l2: f64) -> Self {
        let n = u.len() / k.max(1);
        let full = gram(&u, k, n.max(1) as f64, l2);
        ProjectedGn {
            u,
            offsets: (0..=n).collect(),
            k,
            l2,
            full,
            block_sparse: false,
        }
    }

    /// Whether `C` was formed block by block (class Jacobians on disjoint
    /// parameters, as in logistic regression) instead of from `UᵀU`.
    pub fn is_block_sparse(&self) -> bool {
        self.block_sparse
    }

    /// Rows of `U` in total (about `n` times the effective rank per example).
    pub fn rows(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }
}

/// Each training point's logit Hessian `H_i = ∂²ℓ_i/∂z_i²` (`c × c`,
/// row-major) of the loss [`loss_output`] picks for `train`, at the row-major
/// `n × c` logits; a non-finite one is an error naming the point.
pub(crate) fn logit_hessians(
    method: &'static str,
    train: &Dataset,
    logits: &[f32],
    c: usize,
) -> Result<Vec<Vec<f64>>> {
    let loss = super::super::gradient::loss_output(train);
    let hs = (0..train.len())
        .into_par_iter()
        .map(|i| -> Result<Vec<f64>> {
            let z: Vec<f64> = logits[i * c..(i + 1) * c]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let mut h = vec![0.0f64; c * c];
            let target = match train.targets() {
                Targets::Classes { labels, .. } => wellspring_grad::HostTarget::Class(labels[i]),
                Targets::Regression { values, n_targets } => {
                    wellspring_grad::HostTarget::Values(&values[i * n_targets..(i + 1) * n_targets])
                }
                Targets::NextToken { .. } => {
                    return Err(AttribError::unsupported(
                        method,
                        "logit Hessians need [n × classes] logits, not next-token targets",
                    ));
                }
            };
            loss.logit_hessian(&z, target, &mut h)
                .map_err(grad_err(method))?;
            Ok(h)
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(i) = hs.iter().position(|h| h.iter().any(|v| !v.is_finite())) {
        return Err(AttribError::Solver {
            solver: method.into(),
            reason: format!(
                "the logit Hessian of training point {i} of {} is not finite",
                train.name()
            ),
        });
    }
    Ok(hs)
}

/// `C = (1/n) Σ_i J_iᵀ H_i J_i + l2 I` from the per-class Jacobians `jac`
/// (row-major `n × k` each) and logit Hessians `hs`, when the Jacobians of
/// different classes touch disjoint parameters (a model whose only trained
/// layer is the linear head on its inputs: logistic regression). `C` is then
/// block-sparse: block `(a, b)` on the supports `S_a × S_b` is
/// `(1/n) J_a[S_a]ᵀ diag(H_{·ab}) J_b[S_b]`, `c(c+1)/2` GEMMs of width
/// `|S_a|`, about `c` times fewer flops than [`gram`] over the `~c n` rows of
/// `U` (MNIST LR: 55 GEMMs of 785² × 5000 instead of one of 7850² × 45 000).
/// `None` when two classes share a parameter.
fn block_gram(jac: &[Vec<f32>], hs: &[Vec<f64>], k: usize, l2: f64) -> Option<DMatrix<f64>> {
    let c = jac.len();
    let n = hs.len();
    if c < 2 || k == 0 || n == 0 {
        return None;
    }
    let mut owner = vec![usize::MAX; k];
    let mut supports: Vec<Vec<usize>> = vec![Vec::new(); c];
    for (cls, jc) in jac.iter().enumerate() {
        let mut seen = vec![false; k];
        for row in jc.chunks(k) {
            for (t, &v) in row.iter().enumerate() {
                seen[t] |= v != 0.0;
            }
        }
        for (t, _) in seen.iter().enumerate().filter(|(_, s)| **s) {
            if owner[t] != usize::MAX {
                return None;
            }
            owner[t] = cls;
            supports[cls].push(t);
        }
    }
    // G_a = J_a[:, S_a], row-major n × |S_a|
    let gathered: Vec<Vec<f32>> = (0..c)
        .into_par_iter()
        .map(|a| {
            let s = &supports[a];
            let mut g = Vec::with_capacity(n * s.len());
            for row in jac[a].chunks(k) {
                g.extend(s.iter().map(|&t| row[t]));
            }
            g
        })
        .collect();
    let mut full = DMatrix::<f64>::zeros(k, k);
    for a in 0..c {
        for b in a..c {
            let (ma, mb) = (supports[a].len(), supports[b].len());
            if ma == 0 || mb == 0 {
                continue;
            }
            let mut gb = gathered[b].clone();
            for (i, row) in gb.chunks_mut(mb).enumerate() {
                let w = (hs[i][a * c + b] / n as f64) as f32;
                row.iter_mut().for_each(|v| *v *= w);
            }
            let mut out = vec![0.0f32; ma * mb];
            // SAFETY: A = G_aᵀ (ma × n): A[q, i] = ga[i ma + q]; B = gb (n × mb)
            // row-major; C (ma × mb) row-major; all within their buffers.
            unsafe {
                matrixmultiply::sgemm(
                    ma,
                    n,
                    mb,
                    1.0,
                    gathered[a].as_ptr(),
                    1,
                    ma as isize,
                    gb.as_ptr(),
                    mb as isize,
                    1,
                    0.0,
                    out.as_mut_ptr(),
                    mb as isize,
                    1,
                );
            }
            for (q, &ta) in supports[a].iter().enumerate() {
                for (r, &tb) in supports[b].iter().enumerate() {
                    let v = out[q * mb + r] as f64;
                    full[(ta, tb)] = v;
                    full[(tb, ta)] = v;
                }
            }
        }
    }
    for d in 0..k {
        full[(d, d)] += l2;
    }
    Some(full)
}

/// `UᵀU / n + l2 I` for row-major `U` (`rows × k`), accumulated by an f32
/// GEMM and returned in f64.
fn gram(u: &[f32], k: usize, n: f64, l2: f64) -> DMatrix<f64> {
    let rows = u.len() / k.max(1);
    let mut out = vec![0.0f32; k * k];
    if rows > 0 && k > 0 {
        // SAFETY: A = Uᵀ (k × rows): A[i, t] = u[t k + i]; B = U (rows × k):
        // B[t, j] = u[t k + j]; C (k × k) row-major; all within the slices.
        unsafe {
            matrixmultiply::sgemm(
                k,
                rows,
                k,
                1.0,
                u.as_ptr(),
                1,
                k as isize,
                u.as_ptr(),
                k as isize,
                1,
                0.0,
                out.as_mut_ptr(),
                k as isize,
                1,
            );
        }
    }
    let mut m = DMatrix::<f64>::from_fn(k, k, |i, j| out[i * k + j] as f64 / n);
    m = (&m + m.transpose()) * 0.5;
    for d in 0..k {
        m[(d, d)] += l2;
    }
    m
}

impl LinearOperator for ProjectedGn {
    fn dim(&self) -> usize {
        self.k
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> std::result::Result<(), GradError> {
        LinearOperator::apply(&self.full, v, out)
    }
    fn apply_block(&self, x: &DMatrix<f64>) -> std::result::Result<DMatrix<f64>, GradError> {
        self.full.apply_block(x)
    }
    fn n(&self) -> usize {
        self.offsets.len() - 1
    }
    fn name(&self) -> String {
        format!("projected Gauss-Newton ({} × {})", self.k, self.k)
    }
    /// `(1/|B|) Σ_{i∈B} U_iᵀ U_i X + l2 X`.
    fn apply_batch(
        &self,
        batch: &[usize],
        x: &DMatrix<f64>,
    ) -> std::result::Result<DMatrix<f64>, GradError> {
        if x.nrows() != self.k {
            return Err(GradError::shape(
                "block given to the projected Gauss-Newton",
                format!("{} rows", self.k),
                x.nrows(),
            ));
        }
        let k = self.k;
        let idx: Vec<usize> = batch
            .iter()
            .flat_map(|&i| self.offsets[i]..self.offsets[i + 1])
            .collect();
        // Uᵀ of the batch rows, column-major: each row of U is copied
        // sequentially into one column.
        let mut ubt = DMatrix::<f64>::zeros(k, idx.len());
        for (c, &r) in idx.iter().enumerate() {
            for (o, &v) in ubt
                .column_mut(c)
                .iter_mut()
                .zip(&self.u[r * k..(r + 1) * k])
            {
                *o = v as f64;
            }
        }
        let y = matmul(&ubt, x, true);
        let mut out = matmul(&ubt, &y, false) / batch.len().max(1) as f64;
        out += x * self.l2;
        Ok(out)
    }
}

/// The explicit Hessian of the mean training loss (plus `l2 I`) in the
/// parameter space, for the identity projection on models with at most
/// [`MAX_HESSIAN_PARAMS`] parameters.
pub(crate) fn explicit_hessian(
    method: &str,
    model: &AnyModel,
    device: &Device,
    train: &Dataset,
    l2: f64,
) -> Result<DMatrix<f64>> {
    let params = match train.targets() {
        Targets::Classes { .. } | Targets::NextToken { .. } => {
            CurvatureParams::new().loss(CrossEntropy)
        }
        Targets::Regression { .. } => CurvatureParams::new().loss(Mse),
    }
    .l2(l2);
    let op = params
        .hessian(model, train, 0..train.len(), device)
        .map_err(grad_err(method))?;
    let p = wellspring_grad::LinearOperator::dim(&op);
    if p > MAX_HESSIAN_PARAMS {
        return Err(AttribError::unsupported(
            method,
            format!(
                "the explicit Hessian has {p} × {p} entries (limit {MAX_HESSIAN_PARAMS} parameters); \
                 use curvature=gn, which works with any projection"
            ),
        ));
    }
    explicit_matrix(&op, true).map_err(grad_err(method))
}

/// The matrix-free Hessian of the mean training loss (plus `l2 I`) in the
/// parameter space, for models above [`MAX_HESSIAN_PARAMS`] (FiMO's LiSSA-H,
/// §4.3.2): each product `H_B v` is a central difference of f64 gradients
/// over the rows `B` (all training points, or LiSSA's minibatch), so no
/// `p × p` matrix is formed. Only the solvers that need products alone (CG,
/// LiSSA, Arnoldi, sketch) use it; a failed product is an error naming the
/// method.
pub(crate) struct HvpHessian {
    method: &'static str,
    params: CurvatureParams,
    model: AnyModel,
    device: Device,
    train: Dataset,
    p: usize,
}

impl std::fmt::Debug for HvpHessian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HvpHessian")
            .field("method", &self.method)
            .field("params", &self.p)
            .field("train", &self.train.name())
            .finish()
    }
}

impl HvpHessian {
    /// Checks that the products can be taken on `train` (one context build).
    pub(crate) fn new(
        method: &'static str,
        model: &AnyModel,
        device: &Device,
        train: &Dataset,
        l2: f64,
    ) -> Result<Self> {
        let params = match train.targets() {
            Targets::Classes { .. } | Targets::NextToken { .. } => {
                CurvatureParams::new().loss(CrossEntropy)
            }
            Targets::Regression { .. } => CurvatureParams::new().loss(Mse),
        }
        .l2(l2);
        let op = params
            .hessian(model, train, 0..train.len(), device)
            .map_err(grad_err(method))?;
        let p = wellspring_grad::LinearOperator::dim(&op);
        Ok(HvpHessian {
            method,
            params,
            model: model.clone(),
            device: device.clone(),
            train: train.clone(),
            p,
        })
    }

    /// Hutchinson's estimate `(1/s) Σ_t r_tᵀ H r_t` of `tr(H)` from `probes`
    /// seeded Rademacher vectors (for the relative damping).
    pub(crate) fn trace_estimate(&self, probes: usize, seed: u64) -> Result<f64> {
        use rand::RngExt;
        let mut r = wellspring_core::rng(seed);
        let x = DMatrix::<f64>::from_fn(self.p, probes.max(1), |_, _| {
            if r.random::<bool>() { 1.0 } else { -1.0 }
        });
        let hx = self.apply_block(&x).map_err(grad_err(self.method))?;
        Ok(x.component_mul(&hx).sum() / probes.max(1) as f64)
    }

    /// `H_B X` over the rows `rows`, column by column; an error of the
    /// gradient engine names the method and the Hessian-vector product.
    fn products(
        &self,
        rows: &[usize],
        x: &DMatrix<f64>,
    ) -> std::result::Result<DMatrix<f64>, GradError> {
        let failed = |e: GradError| {
            GradError::unsupported(
                format!("Hessian-vector product of {}", self.method),
                e.to_string(),
            )
        };
        let op = self
            .params
            .hessian(&self.model, &self.train, rows, &self.device)
            .map_err(failed)?;
        op.apply_block(x).map_err(failed)
    }
}

impl LinearOperator for HvpHessian {
    fn dim(&self) -> usize {
        self.p
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> std::result::Result<(), GradError> {
        let x = self.apply_block(&DMatrix::from_column_slice(v.len(), 1, v))?;
        out.copy_from_slice(x.as_slice());
        Ok(())
    }
    fn apply_block(&self, x: &DMatrix<f64>) -> std::result::Result<DMatrix<f64>, GradError> {
        let all: Vec<usize> = (0..self.train.len()).collect();
        self.products(&all, x)
    }
    fn n(&self) -> usize {
        self.train.len()
    }
    fn apply_batch(
        &self,
        batch: &[usize],
        x: &DMatrix<f64>,
    ) -> std::result::Result<DMatrix<f64>, GradError> {
        self.products(batch, x)
    }
    fn name(&self) -> String {
        format!("matrix-free Hessian ({} parameters)", self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellspring_models::ModelConfig;

    /// Optdigits (64 features, 10 classes) and a seeded logistic regression
    /// (650 parameters: small enough for the explicit Hessian).
    fn case() -> (AnyModel, Dataset, Device) {
        let dir = wellspring_data::DataDir::embedded().unwrap();
        let t = wellspring_data::optdigits(&dir, false).unwrap();
        let train = t.train.select(&(0..120).collect::<Vec<_>>()).unwrap();
        let device = Device::flex();
        let model = wellspring_models::Model::new(ModelConfig::LogReg { d_in: 64, n_out: 10 }, 3, &device)
            .unwrap();
        (model.into(), train, device)
    }

    #[test]
    fn matrix_free_products_equal_the_explicit_hessian() {
        let (model, train, device) = case();
        let l2 = 1e-3;
        let h = explicit_hessian("test", &model, &device, &train, l2).unwrap();
        let op = HvpHessian::new("test", &model, &device, &train, l2).unwrap();
        assert_eq!(LinearOperator::dim(&op), h.nrows());
        let x = DMatrix::<f64>::from_fn(h.nrows(), 3, |i, j| ((i * 7 + j * 13) % 11) as f64 - 5.0);
        let want = &h * &x;
        let got = op.apply_block(&x).unwrap();
        let rel = (&got - &want).norm() / want.norm();
        assert!(rel < 1e-5, "full-data products off by {rel:e}");
        // a minibatch product is the Hessian of the mean loss over those rows
        let rows = [3usize, 17, 40, 41, 99];
        let sub = train.select(&rows).unwrap();
        let hb = explicit_hessian("test", &model, &device, &sub, l2).unwrap();
        let got = op.apply_batch(&rows, &x).unwrap();
        let want = &hb * &x;
        let rel = (&got - &want).norm() / want.norm();
        assert!(rel < 1e-5, "minibatch products off by {rel:e}");
        // Hutchinson's trace is unbiased; 16 probes land near the exact trace
        let tr = op.trace_estimate(16, 0).unwrap();
        let exact = h.trace();
        assert!(
            (tr - exact).abs() < 0.25 * exact,
            "trace {tr} vs {exact}"
        );
    }

    #[test]
    fn block_sparse_gauss_newton_of_logistic_regression_is_its_hessian() {
        // identity projection on logistic regression: the class Jacobians touch
        // disjoint weights, so C is formed block by block; it must equal the
        // explicit Hessian (GN = Hessian for a linear model) and the row Gram
        let (model, train, device) = case();
        let gn = ProjectedGn::fit("test", &model, &device, ProjectionSpec::Identity, 0, &train, 1e-3)
            .unwrap();
        let h = explicit_hessian("test", &model, &device, &train, 1e-3).unwrap();
        let rel = (&gn.full - &h).norm() / h.norm();
        assert!(rel < 1e-4, "GN vs Hessian off by {rel:e}");
        assert!(gn.is_block_sparse(), "logistic regression should take the block-sparse path");
        let rows = gram(&gn.u, gn.k, train.len() as f64, 1e-3);
        let rel = (&gn.full - &rows).norm() / rows.norm();
        assert!(rel < 1e-5, "block-sparse vs row Gram off by {rel:e}");
        // overlapping supports (a shared parameter) fall back to the row Gram
        let jac = vec![vec![1.0f32, 0.0, 2.0], vec![0.0f32, 1.0, 1.0]];
        assert!(block_gram(&jac, &[vec![1.0, 0.0, 0.0, 1.0]], 3, 0.0).is_none());
    }

    #[test]
    fn a_failed_product_is_reported_not_hidden() {
        let (model, train, device) = case();
        let op = HvpHessian::new("if-cg", &model, &device, &train, 0.0).unwrap();
        // a row outside the training set makes the gradient engine fail
        let x = DMatrix::<f64>::from_element(LinearOperator::dim(&op), 1, 1.0);
        let e = op.apply_batch(&[train.len() + 5], &x).unwrap_err().to_string();
        assert!(e.contains("if-cg") && e.contains("Hessian-vector"), "{e}");
    }
}
