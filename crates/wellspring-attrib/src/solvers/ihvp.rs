//! Inverse-Hessian-vector products for the influence-function family
//! (FiMO, Bae et al. 2024, §4; Koh & Liang 2017): every solver takes a
//! symmetric positive semi-definite curvature operator `C` (any
//! [`LinearOperator`] of the gradient crate: the projected Gauss-Newton or
//! Hessian of `methods::influence`, a matrix, a matrix-free Hessian), a
//! damping `λ ≥ 0` and a block of right-hand sides `B` (`k × m`, one column
//! per vector), and returns `X ≈ (C + λI)⁻¹ B` with an info value (faer's
//! shape: params in, value plus info out).
//!
//! - [`explicit_factor`] / [`explicit_inverse`]: blocked Cholesky of
//!   `C + λI` ([`super::cholesky`]); an indefinite `C` (the
//!   Hessian of a non-convex model) falls back to an eigendecomposition with
//!   negative eigenvalues clipped to 0 and a warning, so no score is NaN.
//! - [`cg`]: conjugate gradient per column (Martens 2010), stopped at a
//!   relative residual or an iteration cap; a direction of non-positive
//!   curvature stops that column with a warning.
//! - [`lissa`]: the stochastic Neumann recursion of Agarwal et al. (2017) as
//!   used by Koh & Liang: `h ← b + h − (C_B + λ) h / s` over minibatches `B`,
//!   averaged over repeats, with divergence detection.
//! - [`lanczos_top`]: the top eigenpairs of `C` by Lanczos with full
//!   re-orthogonalisation (Arnoldi for a symmetric operator; Schioppa et al.
//!   2022).
//! - [`sketch`]: the randomized inverse-Hessian sketch `S ≈ (C + λ)⁻¹ Rᵀ`
//!   by SGD with two independent minibatches (TracIn appendix A.1, eq. 3).

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use wellspring_core::rng;

use super::cholesky::BlockedCholesky;
use wellspring_grad::{GradError, LinearOperator};

use crate::error::{AttribError, Result};

pub use wellspring_grad::matmul;

/// A failed product of `op`, as the error of `solver`.
fn op_err(solver: &str) -> impl Fn(GradError) -> AttribError + '_ {
    move |e| AttribError::Solver {
        solver: solver.into(),
        reason: format!("curvature product failed: {e}"),
    }
}

fn solver_err(solver: &str, reason: impl Into<String>) -> AttribError {
    AttribError::Solver {
        solver: solver.into(),
        reason: reason.into(),
    }
}

fn check_damping(solver: &str, lambda: f64) -> Result<()> {
    if !lambda.is_finite() || lambda < 0.0 {
        return Err(AttribError::invalid_param(
            format!("{solver}.damping"),
            lambda,
            "must be finite and >= 0",
        ));
    }
    Ok(())
}

/// What [`explicit_inverse`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplicitInfo {
    /// Whether the Cholesky factorisation succeeded (else: eigendecomposition).
    pub cholesky: bool,
    /// Eigenvalues below 0 that were clipped to 0 (eigendecomposition path).
    pub clipped: usize,
    /// Directions dropped because `eigenvalue + λ` was 0.
    pub dropped: usize,
}

/// `(C + λI)⁻¹` of an explicit `C`, ready to apply: a Cholesky factor, or
/// the clipped eigendecomposition's dense inverse.
#[derive(Clone, Debug)]
pub enum ExplicitSolver {
    /// `C + λI = L Lᵀ`.
    Cholesky(BlockedCholesky),
    /// The dense (pseudo-)inverse from the eigendecomposition.
    Dense(DMatrix<f64>),
}

impl ExplicitSolver {
    /// `(C + λI)⁻¹ B`.
    pub fn solve(&self, b: &DMatrix<f64>) -> DMatrix<f64> {
        match self {
            ExplicitSolver::Cholesky(f) => f.solve(b),
            ExplicitSolver::Dense(inv) => matmul(inv, b, false),
        }
    }
}

/// `(C + λI)⁻¹` of an explicit symmetric `C` as a dense matrix (see
/// [`explicit_factor`]; prefer applying the factor to the vectors at hand).
pub fn explicit_inverse(c: &DMatrix<f64>, lambda: f64) -> Result<(DMatrix<f64>, ExplicitInfo)> {
    let (s, info) = explicit_factor(c, lambda)?;
    let inv = match s {
        ExplicitSolver::Dense(m) => m,
        ExplicitSolver::Cholesky(f) => f.solve(&DMatrix::identity(c.nrows(), c.nrows())),
    };
    Ok((inv, info))
}

/// `(C + λI)⁻¹` of an explicit symmetric `C`. Blocked Cholesky first; if
/// `C + λI` is not positive definite, the symmetric eigendecomposition with
/// negative eigenvalues clipped to 0 (and directions with `μ + λ = 0`
/// dropped, a pseudo-inverse), with a warning on stderr.
pub fn explicit_factor(c: &DMatrix<f64>, lambda: f64) -> Result<(ExplicitSolver, ExplicitInfo)> {
    check_damping("if-explicit", lambda)?;
    let k = c.nrows();
    let mut a = c.clone();
    for d in 0..k {
        a[(d, d)] += lambda;
    }
    if let Some(ch) = BlockedCholesky::new(a) {
        return Ok((
            ExplicitSolver::Cholesky(ch),
            ExplicitInfo {
                cholesky: true,
                clipped: 0,
                dropped: 0,
            },
        ));
    }
    let sym = (c + c.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let max = eig.eigenvalues.iter().fold(0.0f64, |m, &v| m.max(v.abs()));
    let tiny = 1e-12 * max.max(f64::MIN_POSITIVE);
    let (mut clipped, mut dropped) = (0, 0);
    let mut inv = DVector::<f64>::zeros(k);
    for (i, &mu) in eig.eigenvalues.iter().enumerate() {
        let mu = if mu < 0.0 {
            clipped += 1;
            0.0
        } else {
            mu
        };
        let den = mu + lambda;
        if den > tiny {
            inv[i] = 1.0 / den;
        } else {
            dropped += 1;
        }
    }
    eprintln!(
        "warning: influence: curvature + {lambda}·I is not positive definite; \
         {clipped} negative eigenvalues clipped to 0, {dropped} null directions dropped"
    );
    let v = &eig.eigenvectors;
    let inv_m = v * DMatrix::from_diagonal(&inv) * v.transpose();
    Ok((
        ExplicitSolver::Dense(inv_m),
        ExplicitInfo {
            cholesky: false,
            clipped,
            dropped,
        },
    ))
}

/// Conjugate-gradient settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CgParams {
    /// Iteration cap per column.
    pub max_iter: usize,
    /// Stop a column at `‖r‖ ≤ tol ‖b‖`.
    pub tol: f64,
}

impl Default for CgParams {
    fn default() -> Self {
        CgParams {
            max_iter: 100,
            tol: 1e-6,
        }
    }
}

/// What [`cg`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct CgInfo {
    /// Largest iteration count over the columns.
    pub iterations: usize,
    /// Largest final relative residual `‖r‖ / ‖b‖`.
    pub residual: f64,
    /// Whether every column reached the tolerance.
    pub converged: bool,
    /// Columns stopped at a direction of non-positive curvature.
    pub indefinite: usize,
}

/// `X ≈ (C + λI)⁻¹ B` by conjugate gradient, each column independently but
/// with the operator applied to the whole active block at once.
pub fn cg(
    op: &dyn LinearOperator,
    lambda: f64,
    b: &DMatrix<f64>,
    p: CgParams,
) -> Result<(DMatrix<f64>, CgInfo)> {
    check_damping("if-cg", lambda)?;
    if p.max_iter == 0 || p.tol.is_nan() || p.tol <= 0.0 {
        return Err(AttribError::invalid_param(
            "if-cg.max-iter/tol",
            format!("{}/{}", p.max_iter, p.tol),
            "need max-iter >= 1 and tol > 0",
        ));
    }
    let (k, m) = b.shape();
    let mut x = DMatrix::<f64>::zeros(k, m);
    let mut r = b.clone();
    let mut dir = b.clone();
    let bnorm: Vec<f64> = (0..m).map(|j| b.column(j).norm()).collect();
    let mut rs: Vec<f64> = (0..m).map(|j| r.column(j).norm_squared()).collect();
    let mut active: Vec<bool> = (0..m).map(|j| bnorm[j] > 0.0).collect();
    let mut iters = vec![0usize; m];
    let mut indefinite = 0;
    for _ in 0..p.max_iter {
        let cols: Vec<usize> = (0..m).filter(|&j| active[j]).collect();
        if cols.is_empty() {
            break;
        }
        let mut pb = DMatrix::<f64>::zeros(k, cols.len());
        for (t, &j) in cols.iter().enumerate() {
            pb.set_column(t, &dir.column(j));
        }
        let mut ap = op.apply_block(&pb).map_err(op_err("if-cg"))?;
        ap += &pb * lambda;
        for (t, &j) in cols.iter().enumerate() {
            let pap = pb.column(t).dot(&ap.column(t));
            if !pap.is_finite() || pap <= 0.0 {
                indefinite += 1;
                active[j] = false;
                continue;
            }
            let alpha = rs[j] / pap;
            x.column_mut(j).axpy(alpha, &pb.column(t), 1.0);
            r.column_mut(j).axpy(-alpha, &ap.column(t), 1.0);
            let rs_new = r.column(j).norm_squared();
            iters[j] += 1;
            if rs_new.sqrt() <= p.tol * bnorm[j] {
                active[j] = false;
            } else {
                let beta = rs_new / rs[j];
                let rj = r.column(j).clone_owned();
                let mut dj = dir.column_mut(j);
                dj *= beta;
                dj += rj;
            }
            rs[j] = rs_new;
        }
    }
    if indefinite > 0 {
        eprintln!(
            "warning: if-cg: {indefinite} columns met non-positive curvature and stopped early"
        );
    }
    let residual = (0..m)
        .filter(|&j| bnorm[j] > 0.0)
        .map(|j| rs[j].sqrt() / bnorm[j])
        .fold(0.0f64, f64::max);
    if x.iter().any(|v| !v.is_finite()) {
        return Err(solver_err("if-cg", "the iterate became non-finite"));
    }
    Ok((
        x,
        CgInfo {
            iterations: iters.into_iter().max().unwrap_or(0),
            residual,
            converged: residual <= p.tol,
            indefinite,
        },
    ))
}

/// LiSSA settings (GGDA appendix B.3 uses depth 200, repeat 20; the scale is
/// chosen from the curvature's largest eigenvalue unless given).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LissaParams {
    /// Recursion steps per repeat.
    pub depth: usize,
    /// Independent repeats averaged.
    pub repeats: usize,
    /// Scale `s`; the recursion contracts when `s` exceeds the largest
    /// eigenvalue of `C_B + λ`. `None`: twice the power-iteration estimate.
    pub scale: Option<f64>,
    /// Minibatch size of the curvature products.
    pub batch_size: usize,
    /// Seed of the minibatch draws.
    pub seed: u64,
}

impl Default for LissaParams {
    fn default() -> Self {
        LissaParams {
            depth: 200,
            repeats: 1,
            scale: None,
            batch_size: 64,
            seed: 0,
        }
    }
}

/// What [`lissa`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct LissaInfo {
    /// The scale used.
    pub scale: f64,
    /// Total recursion steps.
    pub steps: usize,
    /// Relative change of the estimate over the last step of the last repeat.
    pub last_change: f64,
}

/// Largest eigenvalue of `C` by power iteration (`iters` products).
pub fn top_eigenvalue(op: &dyn LinearOperator, iters: usize, seed: u64) -> Result<f64> {
    let k = op.dim();
    let mut r = rng(seed);
    let mut v = DMatrix::<f64>::from_fn(k, 1, |_, _| StandardNormal.sample(&mut r));
    let mut est = 0.0;
    for _ in 0..iters.max(1) {
        let n = v.norm();
        if !n.is_finite() || n <= 0.0 {
            return Ok(0.0);
        }
        v /= n;
        let w = op.apply_block(&v).map_err(op_err("power iteration"))?;
        est = v.dot(&w);
        v = w;
    }
    Ok(est.max(0.0))
}

/// `X ≈ (C + λI)⁻¹ B` by LiSSA: `h_0 = b`, `h_t = b + h_{t−1} − (C_{B_t} + λ) h_{t−1} / s`
/// with a fresh minibatch `B_t` each step; the estimate is `h_T / s`,
/// averaged over repeats. Errors (naming the step and the scale) when the
/// iterate becomes non-finite or its norm exceeds `10⁶ ‖B‖ · s / max(λ, ε)`:
/// the recursion has diverged because `s` is below the curvature's scale.
pub fn lissa(
    op: &dyn LinearOperator,
    lambda: f64,
    b: &DMatrix<f64>,
    p: LissaParams,
) -> Result<(DMatrix<f64>, LissaInfo)> {
    check_damping("if-lissa", lambda)?;
    if p.depth == 0 || p.repeats == 0 || p.batch_size == 0 {
        return Err(AttribError::invalid_param(
            "if-lissa.depth/repeats/batch",
            format!("{}/{}/{}", p.depth, p.repeats, p.batch_size),
            "must all be at least 1",
        ));
    }
    let scale = match p.scale {
        Some(s) if s.is_finite() && s > 0.0 => s,
        Some(s) => {
            return Err(AttribError::invalid_param(
                "if-lissa.scale",
                s,
                "must be finite and > 0",
            ));
        }
        None => (2.0 * (top_eigenvalue(op, 30, p.seed)? + lambda)).max(f64::MIN_POSITIVE),
    };
    let bnorm = b.norm();
    let bound = 1e6 * bnorm.max(f64::MIN_POSITIVE) * scale / lambda.max(1e-12 * scale);
    let n = op.n();
    let mut order: Vec<usize> = (0..n).collect();
    let mut r = rng(p.seed);
    let mut sum = DMatrix::<f64>::zeros(b.nrows(), b.ncols());
    let mut last_change = 0.0;
    let mut cursor = n;
    for rep in 0..p.repeats {
        let mut h = b.clone();
        for t in 0..p.depth {
            let bs = p.batch_size.min(n);
            if cursor + bs > n {
                order.shuffle(&mut r);
                cursor = 0;
            }
            let batch = &order[cursor..cursor + bs];
            cursor += bs;
            let mut ch = op.apply_batch(batch, &h).map_err(op_err("if-lissa"))?;
            ch += &h * lambda;
            let next = b + &h - ch / scale;
            let hn = next.norm();
            if !hn.is_finite() || hn > bound {
                return Err(AttribError::Diverged {
                    solver: "if-lissa".into(),
                    step: t,
                    repeat: rep,
                    norm: hn,
                    bound,
                    scale,
                });
            }
            last_change = (&next - &h).norm() / hn.max(f64::MIN_POSITIVE);
            h = next;
        }
        sum += h;
    }
    Ok((
        sum / (scale * p.repeats as f64),
        LissaInfo {
            scale,
            steps: p.depth * p.repeats,
            last_change,
        },
    ))
}

/// Top eigenpairs of `C` from [`lanczos_top`].
#[derive(Clone, Debug)]
pub struct EigenPairs {
    /// Eigenvalues, descending.
    pub values: Vec<f64>,
    /// Eigenvectors as columns (`k × r`).
    pub vectors: DMatrix<f64>,
    /// Lanczos iterations run.
    pub iterations: usize,
}

/// The `r` largest eigenpairs of the symmetric `C` by `iters` Lanczos steps
/// with full re-orthogonalisation, started from a seeded Gaussian vector.
pub fn lanczos_top(
    op: &dyn LinearOperator,
    r: usize,
    iters: usize,
    seed: u64,
) -> Result<EigenPairs> {
    let k = op.dim();
    let iters = iters.max(r).min(k);
    if r == 0 || k == 0 {
        return Err(AttribError::invalid_param(
            "if-arnoldi.rank",
            r,
            "must be at least 1",
        ));
    }
    let mut g = rng(seed);
    let mut q = DMatrix::<f64>::zeros(k, iters);
    let mut v = DVector::<f64>::from_fn(k, |_, _| StandardNormal.sample(&mut g));
    v /= v.norm();
    let (mut alpha, mut beta) = (Vec::with_capacity(iters), Vec::with_capacity(iters));
    let mut used = 0;
    for j in 0..iters {
        q.set_column(j, &v);
        used = j + 1;
        let w = op
            .apply_block(&DMatrix::from_column_slice(k, 1, v.as_slice()))
            .map_err(op_err("if-arnoldi"))?;
        let mut w = DVector::from_column_slice(w.as_slice());
        let a = v.dot(&w);
        alpha.push(a);
        // full re-orthogonalisation (twice is enough)
        for _ in 0..2 {
            let qj = q.columns(0, j + 1);
            let coef = qj.transpose() * &w;
            w -= qj * coef;
        }
        let bnorm = w.norm();
        // breakdown (an invariant subspace) relative to the operator's scale
        // seen so far, not to this step's Rayleigh quotient: in a null space
        // `a` is itself rounding noise and the residual would never count as
        // zero, letting noise vectors into the basis
        let scale = alpha
            .iter()
            .chain(&beta)
            .fold(0.0f64, |m, x| m.max(x.abs()));
        if j + 1 == iters || bnorm <= 1e-10 * scale.max(1e-300) {
            break;
        }
        beta.push(bnorm);
        v = w / bnorm;
    }
    let mut t = DMatrix::<f64>::zeros(used, used);
    for i in 0..used {
        t[(i, i)] = alpha[i];
        if i + 1 < used {
            t[(i, i + 1)] = beta[i];
            t[(i + 1, i)] = beta[i];
        }
    }
    let eig = SymmetricEigen::new(t);
    let mut idx: Vec<usize> = (0..used).collect();
    idx.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    idx.truncate(r.min(used));
    let basis = q.columns(0, used);
    let mut vectors = DMatrix::<f64>::zeros(k, idx.len());
    for (c, &i) in idx.iter().enumerate() {
        let y = basis * eig.eigenvectors.column(i);
        vectors.set_column(c, &y);
    }
    Ok(EigenPairs {
        values: idx.iter().map(|&i| eig.eigenvalues[i]).collect(),
        vectors,
        iterations: used,
    })
}

/// Randomized-sketch settings (TracIn appendix A.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SketchParams {
    /// Sketch width `d` (rows of the Gaussian `R`, `N(0, 1/d)` entries).
    pub dim: usize,
    /// SGD steps.
    pub steps: usize,
    /// Minibatch size of each of the two curvature products.
    pub batch_size: usize,
    /// Seed of `R` and of the minibatches.
    pub seed: u64,
}

impl Default for SketchParams {
    fn default() -> Self {
        SketchParams {
            dim: 256,
            steps: 300,
            batch_size: 64,
            seed: 0,
        }
    }
}

/// The sketch `S ≈ (C + λ)⁻¹ Rᵀ` (`k × d`) and `R` (`d × k`): `S R g` is an
/// unbiased estimate of `(C + λ)⁻¹ g` once `S` has converged
/// (`E[RᵀR] = I`). `S` minimises `‖(C + λ) S − Rᵀ‖²_F` by SGD with eq. 3's
/// two independent minibatches, `∇ ≈ 2 (C_{B₁} + λ)((C_{B₂} + λ) S − Rᵀ)`,
/// step `1 / (2 L²)` with `L` the power-iteration estimate of `λ_max + λ`,
/// started at `S₀ = Rᵀ / L`.
pub fn sketch(
    op: &dyn LinearOperator,
    lambda: f64,
    p: SketchParams,
) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
    check_damping("if-sketch", lambda)?;
    if p.dim == 0 || p.steps == 0 || p.batch_size == 0 {
        return Err(AttribError::invalid_param(
            "if-sketch.dim/steps/batch",
            format!("{}/{}/{}", p.dim, p.steps, p.batch_size),
            "must all be at least 1",
        ));
    }
    let k = op.dim();
    let mut g = rng(p.seed);
    let sd = 1.0 / (p.dim as f64).sqrt();
    let rmat = DMatrix::<f64>::from_fn(p.dim, k, |_, _| {
        let z: f64 = StandardNormal.sample(&mut g);
        z * sd
    });
    let rt = rmat.transpose();
    let l = (top_eigenvalue(op, 30, p.seed)? + lambda).max(f64::MIN_POSITIVE);
    let eta = 1.0 / (2.0 * l * l);
    let mut s = &rt / l;
    let n = op.n();
    let bs = p.batch_size.min(n);
    for _ in 0..p.steps {
        let b1: Vec<usize> = (0..bs).map(|_| g.random_range(0..n)).collect();
        let b2: Vec<usize> = (0..bs).map(|_| g.random_range(0..n)).collect();
        let mut inner = op.apply_batch(&b2, &s).map_err(op_err("if-sketch"))?;
        inner += &s * lambda;
        inner -= &rt;
        let mut grad = op.apply_batch(&b1, &inner).map_err(op_err("if-sketch"))?;
        grad += &inner * lambda;
        s -= grad * (2.0 * eta);
        if s.iter().any(|v| !v.is_finite()) {
            return Err(solver_err("if-sketch", "the sketch became non-finite"));
        }
    }
    Ok((s, rmat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(k: usize, seed: u64) -> DMatrix<f64> {
        let mut r = rng(seed);
        let a = DMatrix::<f64>::from_fn(k, k + 3, |_, _| StandardNormal.sample(&mut r));
        &a * a.transpose() / k as f64
    }

    #[test]
    fn solvers_agree_with_the_explicit_inverse() {
        let c = spd(12, 1);
        let lambda = 0.1;
        let b = DMatrix::<f64>::from_fn(12, 3, |i, j| (i as f64 - j as f64 * 2.0).sin());
        let (inv, info) = explicit_inverse(&c, lambda).unwrap();
        assert!(info.cholesky);
        let exact = &inv * &b;
        let (x, ci) = cg(&c, lambda, &b, CgParams::default()).unwrap();
        assert!(ci.converged, "{ci:?}");
        assert!((&x - &exact).norm() < 1e-6 * exact.norm());
        let (x, _) = lissa(
            &c,
            lambda,
            &b,
            LissaParams {
                depth: 3000,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            (&x - &exact).norm() < 1e-3 * exact.norm(),
            "{}",
            (&x - &exact).norm()
        );
        let e = lanczos_top(&c, 12, 12, 0).unwrap();
        let mut approx = DMatrix::<f64>::zeros(12, 3);
        for (i, &mu) in e.values.iter().enumerate() {
            let u = e.vectors.column(i);
            approx += u * (u.transpose() * &b) / (mu + lambda);
        }
        assert!((&approx - &exact).norm() < 1e-6 * exact.norm());
        let (s, r) = sketch(
            &c,
            lambda,
            SketchParams {
                dim: 12,
                steps: 4000,
                ..Default::default()
            },
        )
        .unwrap();
        let target = &inv * r.transpose();
        assert!(
            (&s - &target).norm() < 0.05 * target.norm(),
            "{}",
            (&s - &target).norm() / target.norm()
        );
    }

    #[test]
    fn indefinite_curvature_is_clipped_and_lissa_divergence_is_reported() {
        let mut c = spd(6, 2);
        c[(0, 0)] -= 100.0;
        let (inv, info) = explicit_inverse(&c, 0.01).unwrap();
        assert!(!info.cholesky && info.clipped >= 1);
        assert!(inv.iter().all(|v| v.is_finite()));
        let b = DMatrix::<f64>::from_element(6, 1, 1.0);
        let e = lissa(
            &spd(6, 3),
            0.0,
            &b,
            LissaParams {
                scale: Some(1e-3),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&e, AttribError::Diverged { solver, .. } if solver == "if-lissa"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("diverged") && e.contains("scale"), "{e}");
        assert!(explicit_inverse(&c, -1.0).is_err());
    }
}
