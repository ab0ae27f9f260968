//! Curvature: one matrix-free [`LinearOperator`] trait, implemented by the
//! Hessian of the training loss ([`HessianOperator`]), the Gauss-Newton
//! matrix ([`GaussNewtonOperator`]), the empirical Fisher
//! ([`EmpiricalFisher`]) and [`Damped`]; explicit matrices for small models;
//! K-FAC factors ([`Kfac`]).
//!
//! Every inverse-Hessian solver takes `&dyn LinearOperator`.

mod fisher;
mod hessian;
mod kfac;

use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::DMatrix;

pub use fisher::EmpiricalFisher;
pub use hessian::{
    CurvatureParams, GaussNewtonOperator, HessianOperator, LossContext, explicit_gauss_newton,
};
pub use kfac::{Kfac, KfacFactors, KfacLabels, KfacParams};

use crate::error::{GradError, Result, check_finite64};

/// A symmetric linear map `R^p → R^p` given by its action (Hessian-, Gauss-
/// Newton- or Fisher-vector products): the one operator trait every
/// inverse-Hessian solver takes (CG, LiSSA, Lanczos/Arnoldi, the sketch;
/// `wellspring-attrib`'s influence functions). Products are fallible: an
/// operator backed by the gradient engine reports its errors instead of
/// returning NaN.
pub trait LinearOperator: Send + Sync {
    /// `p`.
    fn dim(&self) -> usize;

    /// `out = A v`. Errors on vectors of the wrong length or non-finite input.
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()>;

    /// `A X` for a block of vectors (`p × m`, one per column). The default
    /// applies [`LinearOperator::apply`] column by column.
    fn apply_block(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>> {
        let p = self.dim();
        if x.nrows() != p {
            return Err(GradError::shape(
                format!("block given to {}", self.name()),
                format!("{p} rows"),
                x.nrows(),
            ));
        }
        let mut out = DMatrix::<f64>::zeros(p, x.ncols());
        let mut col = vec![0.0; p];
        for j in 0..x.ncols() {
            let v: Vec<f64> = x.column(j).iter().copied().collect();
            self.apply(&v, &mut col)?;
            out.column_mut(j).copy_from_slice(&col);
        }
        Ok(out)
    }

    /// Training points the operator averages over (1 for an operator
    /// without per-example structure).
    fn n(&self) -> usize {
        1
    }

    /// `A_B X`: the operator of the mean over the training points `batch`
    /// only (LiSSA's and the sketch's minibatches). The default ignores the
    /// batch and returns [`LinearOperator::apply_block`].
    fn apply_batch(&self, batch: &[usize], x: &DMatrix<f64>) -> Result<DMatrix<f64>> {
        let _ = batch;
        self.apply_block(x)
    }

    /// Short description for logs and reports.
    fn name(&self) -> String;

    /// How many times [`LinearOperator::apply`] has run.
    fn applications(&self) -> usize {
        0
    }
}

/// A dense symmetric matrix is an operator; its block products go through
/// [`matmul`], so a column's product does not depend on the others.
impl LinearOperator for DMatrix<f64> {
    fn dim(&self) -> usize {
        self.nrows()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply("matrix", self.dim(), v, out)?;
        let r = matmul(self, &DMatrix::from_column_slice(v.len(), 1, v), false);
        out.copy_from_slice(r.as_slice());
        Ok(())
    }
    fn apply_block(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>> {
        if x.nrows() != self.ncols() {
            return Err(GradError::shape(
                "block given to a matrix operator",
                format!("{} rows", self.ncols()),
                x.nrows(),
            ));
        }
        Ok(matmul(self, x, false))
    }
    fn name(&self) -> String {
        format!("explicit {}×{} matrix", self.nrows(), self.ncols())
    }
}

/// `op(A) B` for column-major `A` (`Aᵀ` when `transpose_a`) through
/// `matrixmultiply`'s packed kernel, which computes every entry the same
/// way whatever the number of columns of `B`: a test vector's result does
/// not depend on which other vectors share its block (chunked attribution
/// is bit-identical to one shot; nalgebra's small-matrix path is not).
///
/// # Panics
/// If the inner dimensions differ (a caller bug; operators check shapes).
pub fn matmul(a: &DMatrix<f64>, b: &DMatrix<f64>, transpose_a: bool) -> DMatrix<f64> {
    let (ar, ac) = a.shape();
    let (m, k, rsa, csa) = if transpose_a {
        (ac, ar, ar as isize, 1)
    } else {
        (ar, ac, 1, ar as isize)
    };
    assert_eq!(k, b.nrows(), "matmul: inner dimensions differ");
    let n = b.ncols();
    let mut out = DMatrix::<f64>::zeros(m, n);
    if m == 0 || n == 0 || k == 0 {
        return out;
    }
    // SAFETY: strides address column-major A (ar × ac), B (k × n) and
    // C (m × n), all within their buffers.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            1,
            k as isize,
            0.0,
            out.as_mut_ptr(),
            1,
            m as isize,
        );
    }
    out
}

/// Checks the vectors of an `apply` call.
pub(crate) fn check_apply(name: &str, p: usize, v: &[f64], out: &[f64]) -> Result<()> {
    if v.len() != p {
        return Err(GradError::shape(
            format!("vector given to {name}"),
            format!("length {p}"),
            v.len(),
        ));
    }
    if out.len() != p {
        return Err(GradError::shape(
            format!("output buffer of {name}"),
            format!("length {p}"),
            out.len(),
        ));
    }
    check_finite64(&format!("vector given to {name}"), v)
}

/// Counts applications (shared by the operators here).
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicUsize);

impl Counter {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// `A + λ I` (the damping of influence functions; FiMO eq. 4's `λ/2 ‖Δθ‖²`).
pub struct Damped<'a> {
    inner: &'a dyn LinearOperator,
    lambda: f64,
}

impl<'a> Damped<'a> {
    /// `inner + lambda · I`; `lambda` must be finite.
    pub fn new(inner: &'a dyn LinearOperator, lambda: f64) -> Result<Self> {
        if !lambda.is_finite() {
            return Err(GradError::param("damping λ", lambda, "must be finite"));
        }
        Ok(Damped { inner, lambda })
    }
}

impl LinearOperator for Damped<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.inner.apply(v, out)?;
        for (o, x) in out.iter_mut().zip(v) {
            *o += self.lambda * x;
        }
        Ok(())
    }
    fn name(&self) -> String {
        format!("{} + {}·I", self.inner.name(), self.lambda)
    }
    fn applications(&self) -> usize {
        self.inner.applications()
    }
}

/// The explicit `p × p` matrix of an operator, column by column (`p`
/// applications: small models only), optionally symmetrised as `(A + Aᵀ)/2`.
pub fn explicit_matrix(op: &dyn LinearOperator, symmetrize: bool) -> Result<DMatrix<f64>> {
    let p = op.dim();
    let mut m = DMatrix::<f64>::zeros(p, p);
    let mut e = vec![0.0; p];
    let mut col = vec![0.0; p];
    for j in 0..p {
        e[j] = 1.0;
        op.apply(&e, &mut col)?;
        e[j] = 0.0;
        m.column_mut(j).copy_from_slice(&col);
    }
    if symmetrize {
        let t = m.transpose();
        m = (m + t) * 0.5;
    }
    Ok(m)
}

/// A dense matrix as an operator (for tests and tiny problems).
pub struct MatrixOperator {
    m: DMatrix<f64>,
    count: Counter,
}

impl MatrixOperator {
    /// Wraps a square matrix; errors if it is not square.
    pub fn new(m: DMatrix<f64>) -> Result<Self> {
        if m.nrows() != m.ncols() {
            return Err(GradError::shape(
                "operator matrix",
                "a square matrix",
                format!("{}×{}", m.nrows(), m.ncols()),
            ));
        }
        Ok(MatrixOperator {
            m,
            count: Counter::default(),
        })
    }
}

impl LinearOperator for MatrixOperator {
    fn dim(&self) -> usize {
        self.m.nrows()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply("matrix operator", self.dim(), v, out)?;
        self.count.bump();
        let r = &self.m * nalgebra::DVector::from_column_slice(v);
        out.copy_from_slice(r.as_slice());
        Ok(())
    }
    fn name(&self) -> String {
        format!("explicit {}×{} matrix", self.m.nrows(), self.m.ncols())
    }
    fn applications(&self) -> usize {
        self.count.get()
    }
}
