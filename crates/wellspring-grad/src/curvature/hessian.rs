//! Hessian- and Gauss-Newton-vector products of the mean training loss, in
//! f64, from burn's first-order autodiff (burn 0.22 has no double backward).
//!
//! - `Hv`: central difference of full-batch gradients,
//!   `(∇L(θ + εv) − ∇L(θ − εv)) / 2ε` with `ε = step / ‖v‖₂`. In f64 the
//!   truncation error is `O(step²)` and rounding `O(1e-16 / step)`; ReLU and
//!   max-pool kinks crossed within `±εv` add a small error (the measured
//!   relative error is in the crate README).
//! - `Gv = (1/n) Σ J_iᵀ H_i J_i v` (FiMO eq. 10 without its second term):
//!   `J_i v` by a central difference of the logits, `H_i` the output
//!   function's logit Hessian, `Jᵀu` by one backward of `Σ_i ⟨u_i, z_i⟩`.

use std::sync::Arc;

use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use nalgebra::DMatrix;
use wellspring_core::{Dataset, Targets};
use wellspring_models::{AnyModel, Logits};

use super::{Counter, LinearOperator, check_apply};
use crate::capture::host_f64;
use crate::engine::Rows;
use crate::error::{GradError, Result};
use crate::layout::{Binding, GradLayout, LayerSelection};
use crate::output::{CrossEntropy, HostTarget, OutputFn};
use crate::params64::packed_param_grads;
use crate::params64::{params_f64, with_params_f64};
use crate::reference::autodiff_sum_gradient;

/// Settings shared by the curvature operators (checked builder).
#[derive(Clone, Debug)]
pub struct CurvatureParams {
    selection: LayerSelection,
    loss: Arc<dyn OutputFn>,
    l2: f64,
    step: f64,
    batch_size: usize,
}

impl Default for CurvatureParams {
    fn default() -> Self {
        CurvatureParams {
            selection: LayerSelection::All,
            loss: Arc::new(CrossEntropy),
            l2: 0.0,
            step: 1e-5,
            batch_size: 1024,
        }
    }
}

impl CurvatureParams {
    /// Defaults: all layers, cross-entropy, no L2, step 1e-5, batches of 1024.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parameters the curvature is taken over (others held fixed).
    pub fn selection(mut self, s: LayerSelection) -> Self {
        self.selection = s;
        self
    }

    /// Per-example loss `L_i` (the objective is `(1/n) Σ L_i + (l2/2)‖θ‖²`).
    pub fn loss(mut self, loss: impl OutputFn + 'static) -> Self {
        self.loss = Arc::new(loss);
        self
    }

    /// L2 coefficient (adds `l2 · v` to every product).
    pub fn l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }

    /// Finite-difference step `‖εv‖₂` (default 1e-5).
    pub fn step(mut self, step: f64) -> Self {
        self.step = step;
        self
    }

    /// Examples per forward/backward.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    fn check(&self) -> Result<()> {
        if !self.l2.is_finite() || self.l2 < 0.0 {
            return Err(GradError::param(
                "CurvatureParams.l2",
                self.l2,
                "must be finite and >= 0",
            ));
        }
        if !self.step.is_finite() || self.step <= 0.0 {
            return Err(GradError::param(
                "CurvatureParams.step",
                self.step,
                "must be finite and > 0",
            ));
        }
        if self.batch_size == 0 {
            return Err(GradError::param(
                "CurvatureParams.batch_size",
                0,
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The loss, its gradient and logits over `rows` of `data`, in f64.
    pub fn context<'a, 'r>(
        &self,
        model: impl Into<AnyModel>,
        data: &'a Dataset,
        rows: impl Into<Rows<'r>>,
        device: &Device,
    ) -> Result<LossContext<'a>> {
        self.check()?;
        let model: AnyModel = model.into();
        model.check_dataset(data)?;
        let idx = rows.into().resolve(data.len(), data.name())?;
        if idx.is_empty() {
            return Err(wellspring_core::CoreError::Empty {
                what: format!("rows of {}", data.name()),
            }
            .into());
        }
        let binding = self.selection.bind(&model)?;
        let device = device.clone().autodiff();
        let model = model.cast(FloatDType::F64).valid().trainable(&device);
        let theta0 = params_f64(&model, &binding);
        Ok(LossContext {
            model,
            binding,
            loss: self.loss.clone(),
            data,
            idx,
            l2: self.l2,
            step: self.step,
            batch_size: self.batch_size,
            theta0,
            device,
        })
    }

    /// Hessian-vector products of the mean loss (central differences in f64).
    pub fn hessian<'a, 'r>(
        &self,
        model: impl Into<AnyModel>,
        data: &'a Dataset,
        rows: impl Into<Rows<'r>>,
        device: &Device,
    ) -> Result<HessianOperator<'a>> {
        Ok(HessianOperator {
            ctx: self.context(model, data, rows, device)?,
            count: Counter::default(),
        })
    }

    /// Gauss-Newton-vector products `(1/n) Σ J_iᵀ H_i J_i v (+ l2 v)`.
    pub fn gauss_newton<'a, 'r>(
        &self,
        model: impl Into<AnyModel>,
        data: &'a Dataset,
        rows: impl Into<Rows<'r>>,
        device: &Device,
    ) -> Result<GaussNewtonOperator<'a>> {
        let ctx = self.context(model, data, rows, device)?;
        let logits = ctx.logits(&ctx.theta0)?;
        let n = ctx.idx.len();
        let c = logits.len() / n;
        let mut hout = vec![0.0; n * c * c];
        for (r, &i) in ctx.idx.iter().enumerate() {
            let t = host_target(data, i)?;
            ctx.loss.logit_hessian(
                &logits[r * c..(r + 1) * c],
                t,
                &mut hout[r * c * c..(r + 1) * c * c],
            )?;
        }
        Ok(GaussNewtonOperator {
            ctx,
            c,
            hout,
            count: Counter::default(),
        })
    }
}

fn host_target(data: &Dataset, i: usize) -> Result<HostTarget<'_>> {
    match data.targets() {
        Targets::Classes { labels, .. } => Ok(HostTarget::Class(labels[i])),
        Targets::Regression { values, n_targets } => Ok(HostTarget::Values(
            &values[i * n_targets..(i + 1) * n_targets],
        )),
        Targets::NextToken { .. } => Err(gn_seq_error()),
    }
}

fn gn_seq_error() -> GradError {
    GradError::unsupported(
        "Gauss-Newton products",
        "need [batch, classes] logits; for a language model use the Hessian, K-FAC/EK-FAC, \
         DataInf or TRAK",
    )
}

/// `[b, c]` logits of a forward pass, or the Gauss-Newton error for per-token logits.
fn flat_logits(l: Logits) -> Result<Tensor<2>> {
    match l {
        Logits::Flat(z) => Ok(z),
        Logits::Seq(_) => Err(gn_seq_error()),
    }
}

/// The mean training loss `(1/n) Σ L_i(θ) + (l2/2)‖θ‖²` over fixed rows, as a
/// function of the selected parameters, in f64.
pub struct LossContext<'a> {
    model: AnyModel,
    binding: Binding,
    loss: Arc<dyn OutputFn>,
    data: &'a Dataset,
    idx: Vec<usize>,
    l2: f64,
    step: f64,
    batch_size: usize,
    theta0: Vec<f64>,
    device: Device,
}

impl LossContext<'_> {
    /// Number of selected parameters.
    pub fn dim(&self) -> usize {
        self.binding.layout.dim()
    }

    /// The selected layers.
    pub fn layout(&self) -> &GradLayout {
        &self.binding.layout
    }

    /// The parameters the operators linearise at.
    pub fn theta(&self) -> &[f64] {
        &self.theta0
    }

    /// Number of rows in the objective.
    pub fn n(&self) -> usize {
        self.idx.len()
    }

    fn at(&self, theta: &[f64]) -> AnyModel {
        with_params_f64(&self.model, &self.binding, theta)
    }

    /// `∇L(θ)` (mean over rows, plus `l2 θ`).
    pub fn gradient(&self, theta: &[f64]) -> Result<Vec<f64>> {
        let m = self.at(theta);
        let mut g = vec![0.0; self.dim()];
        for batch in self.idx.chunks(self.batch_size) {
            let gb = autodiff_sum_gradient(
                &m,
                &self.binding,
                self.loss.as_ref(),
                self.data,
                batch,
                None,
                &self.device,
            )?;
            for (a, b) in g.iter_mut().zip(gb) {
                *a += b;
            }
        }
        let n = self.n() as f64;
        for (a, t) in g.iter_mut().zip(theta) {
            *a = *a / n + self.l2 * t;
        }
        Ok(g)
    }

    /// `L(θ)`.
    pub fn value(&self, theta: &[f64]) -> Result<f64> {
        let m = self.at(theta).valid();
        let plain = self.device.clone().without_autodiff();
        let m = m.fork(&plain);
        let mut s = 0.0;
        for batch in self.idx.chunks(self.batch_size) {
            let x = m.input_batch(self.data, batch, &plain)?;
            let y = m.target_batch(self.data, batch, &plain)?;
            let z = m.forward(&x)?.logits;
            s += host_f64(self.loss.apply(z, &y)?).iter().sum::<f64>();
        }
        let sq: f64 = theta.iter().map(|t| t * t).sum();
        Ok(s / self.n() as f64 + 0.5 * self.l2 * sq)
    }

    /// Logits `[n × c]` at `θ`, row-major, f64.
    pub fn logits(&self, theta: &[f64]) -> Result<Vec<f64>> {
        let plain = self.device.clone().without_autodiff();
        let m = self.at(theta).valid().fork(&plain);
        let mut out = Vec::new();
        for batch in self.idx.chunks(self.batch_size) {
            let x = m.input_batch(self.data, batch, &plain)?;
            out.extend(host_f64(flat_logits(m.forward(&x)?.logits)?));
        }
        Ok(out)
    }

    fn shifted(&self, v: &[f64], eps: f64) -> Vec<f64> {
        self.theta0
            .iter()
            .zip(v)
            .map(|(t, x)| t + eps * x)
            .collect()
    }

    fn eps(&self, v: &[f64]) -> Option<f64> {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        (norm > 0.0).then(|| self.step / norm)
    }
}

/// Hessian-vector products of the mean training loss by central differences
/// of f64 gradients (Pearlmutter's exact `Hv` approximated to `O(step²)`).
pub struct HessianOperator<'a> {
    ctx: LossContext<'a>,
    count: Counter,
}

impl<'a> HessianOperator<'a> {
    /// The loss this is the Hessian of.
    pub fn context(&self) -> &LossContext<'a> {
        &self.ctx
    }
}

impl LinearOperator for HessianOperator<'_> {
    fn dim(&self) -> usize {
        self.ctx.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply("Hessian operator", self.dim(), v, out)?;
        self.count.bump();
        let Some(eps) = self.ctx.eps(v) else {
            out.fill(0.0);
            return Ok(());
        };
        let gp = self.ctx.gradient(&self.ctx.shifted(v, eps))?;
        let gm = self.ctx.gradient(&self.ctx.shifted(v, -eps))?;
        for ((o, a), b) in out.iter_mut().zip(gp).zip(gm) {
            *o = (a - b) / (2.0 * eps);
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!(
            "Hessian of mean {} (+{} L2), central differences",
            self.ctx.loss.name(),
            self.ctx.l2
        )
    }

    fn applications(&self) -> usize {
        self.count.get()
    }
}

/// Gauss-Newton products `(1/n) Σ_i J_iᵀ H_i J_i v + l2 v`, `J_i = ∂z_i/∂θ`,
/// `H_i = ∂²L_i/∂z_i²` (positive semi-definite for cross-entropy and MSE).
pub struct GaussNewtonOperator<'a> {
    ctx: LossContext<'a>,
    c: usize,
    hout: Vec<f64>,
    count: Counter,
}

impl<'a> GaussNewtonOperator<'a> {
    /// The loss this linearises.
    pub fn context(&self) -> &LossContext<'a> {
        &self.ctx
    }

    /// `Jᵀ u = Σ_i J_iᵀ u_i` for `u` of shape `n × c` (one backward per batch).
    pub fn jt_u(&self, u: &[f64]) -> Result<Vec<f64>> {
        let (n, c) = (self.ctx.n(), self.c);
        crate::error::check_len("Jᵀu input", u, n * c)?;
        let mut g = vec![0.0; self.dim()];
        let mut start = 0;
        for batch in self.ctx.idx.chunks(self.ctx.batch_size) {
            let x = self
                .ctx
                .model
                .input_batch(self.ctx.data, batch, &self.ctx.device)?;
            let z = flat_logits(self.ctx.model.forward(&x)?.logits)?;
            let ut = Tensor::<2>::from_data(
                TensorData::new(
                    u[start * c..(start + batch.len()) * c].to_vec(),
                    [batch.len(), c],
                ),
                (&self.ctx.device, z.dtype()),
            );
            let grads = (z * ut).sum().backward();
            for (a, b) in g.iter_mut().zip(packed_param_grads(
                &self.ctx.model,
                &self.ctx.binding,
                &grads,
            )) {
                *a += b;
            }
            start += batch.len();
        }
        Ok(g)
    }

    /// `J v` (`n × c`) by a central difference of the logits.
    pub fn jv(&self, v: &[f64]) -> Result<Vec<f64>> {
        let Some(eps) = self.ctx.eps(v) else {
            return Ok(vec![0.0; self.ctx.n() * self.c]);
        };
        let zp = self.ctx.logits(&self.ctx.shifted(v, eps))?;
        let zm = self.ctx.logits(&self.ctx.shifted(v, -eps))?;
        Ok(zp
            .iter()
            .zip(&zm)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect())
    }
}

impl LinearOperator for GaussNewtonOperator<'_> {
    fn dim(&self) -> usize {
        self.ctx.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply("Gauss-Newton operator", self.dim(), v, out)?;
        self.count.bump();
        let (n, c) = (self.ctx.n(), self.c);
        let jv = self.jv(v)?;
        let mut u = vec![0.0; n * c];
        for r in 0..n {
            let h = &self.hout[r * c * c..(r + 1) * c * c];
            for j in 0..c {
                u[r * c + j] = (0..c).map(|k| h[j * c + k] * jv[r * c + k]).sum::<f64>() / n as f64;
            }
        }
        let g = self.jt_u(&u)?;
        for ((o, gi), x) in out.iter_mut().zip(g).zip(v) {
            *o = gi + self.ctx.l2 * x;
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!(
            "Gauss-Newton of mean {} (+{} L2)",
            self.ctx.loss.name(),
            self.ctx.l2
        )
    }

    fn applications(&self) -> usize {
        self.count.get()
    }
}

/// The explicit Gauss-Newton matrix `(1/n) Σ J_iᵀ H_i J_i + l2 I` from
/// per-example Jacobians (`c` backward passes per example, f64): an
/// independent check of [`GaussNewtonOperator`] for small models.
pub fn explicit_gauss_newton<'r>(
    params: &CurvatureParams,
    model: impl Into<AnyModel>,
    data: &Dataset,
    rows: impl Into<Rows<'r>>,
    device: &Device,
) -> Result<DMatrix<f64>> {
    let ctx = params.context(model, data, rows, device)?;
    let p = ctx.dim();
    let logits = ctx.logits(&ctx.theta0)?;
    let c = logits.len() / ctx.n();
    let mut g = DMatrix::<f64>::zeros(p, p);
    let mut h = vec![0.0; c * c];
    for (r, &i) in ctx.idx.iter().enumerate() {
        ctx.loss
            .logit_hessian(&logits[r * c..(r + 1) * c], host_target(data, i)?, &mut h)?;
        let mut jac = DMatrix::<f64>::zeros(c, p);
        for k in 0..c {
            let row = autodiff_sum_gradient(
                &ctx.model,
                &ctx.binding,
                &crate::output::Logit(k),
                data,
                &[i],
                None,
                &ctx.device,
            )?;
            jac.row_mut(k).copy_from_slice(&row);
        }
        let hm = DMatrix::from_row_slice(c, c, &h);
        g += jac.transpose() * hm * &jac;
    }
    g /= ctx.n() as f64;
    for j in 0..p {
        g[(j, j)] += ctx.l2;
    }
    Ok(g)
}
