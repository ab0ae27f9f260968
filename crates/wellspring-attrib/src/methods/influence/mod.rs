//! Influence functions (Koh & Liang 2017; FiMO, Bae et al. 2024, eq. 8 and
//! §4): `if-explicit`, `if-cg`, `if-lissa`, `if-arnoldi` and `if-sketch`,
//! one method with five inverse-curvature solvers.
//!
//! ```text
//! score(i, j) = g(z_i)ᵀ (C + λI)⁻¹ g(z_j),   g = P ∇_θ ℓ(z; θ)
//! ```
//!
//! Removing `z_i` changes the test loss by `+(1/n) g_jᵀ H⁻¹ g_i` to first order (the
//! negative of Koh & Liang's up-weighting influence), so positive = helps.
//!
//! `C` is the curvature of the mean training loss in the projected gradient
//! space (see [`curvature`]): the Gauss-Newton matrix (`curvature=gn`, the
//! default; PSD, exact Hessian for logistic regression with the identity
//! projection), the empirical Fisher `(1/n) Σ g_i g_iᵀ` (`curvature=fisher`,
//! GGDA's "Inf. (Fisher)") or the parameter-space Hessian
//! (`curvature=hessian`, identity projection: formed explicitly up to
//! [`curvature::MAX_HESSIAN_PARAMS`] parameters, above that applied through
//! matrix-free Hessian-vector products, FiMO's LiSSA-H, for every solver but
//! `if-explicit`; indefinite on non-convex models, where negative curvature
//! is clipped with a warning so no score is NaN). The curvature, its inverse
//! and the training gradients are computed on first use, not in `fit`. The default
//! projection is Kronecker-structured to 512 dimensions per layer (TracIn
//! App. F), computed from the per-layer factors; `identity` gives the
//! unprojected influence function. The damping `λ` is `damping-rel · tr(C)/k`
//! (default `damping-rel = 0.01`) unless an absolute `damping` is given; the
//! training weight decay (from the source's train config) is added to `C`
//! with the identity projection.
//!
//! Solvers (`crate::solvers::ihvp`): `if-explicit` factors `C + λI` once (blocked
//! Cholesky, or clipped eigendecomposition); `if-cg` runs conjugate
//! gradient per test vector (Martens 2010); `if-lissa` the stochastic Neumann
//! recursion on minibatch Gauss-Newton products (Agarwal et al. 2017; GGDA
//! App. B.3 settings: depth 200, batch 64; the scale defaults to twice the
//! largest eigenvalue, and divergence is an error); `if-arnoldi` keeps the
//! top `rank` eigenpairs of `C` from Lanczos iterations (Schioppa et al. 2022),
//! dropping non-positive ones with a warning; `if-sketch` solves
//! `min_S ‖(C + λ)S − Rᵀ‖²` by SGD with two minibatches (TracIn appendix A.1,
//! eq. 3) and uses `S R` as the inverse.
//!
//! Group scores (GGDA, Ley et al. 2024, §4) use batched group gradients
//! `P Σ_{i∈g} ∇ℓ_i`: `score(g, j) = g_gᵀ (C + λI)⁻¹ g_j`; singleton groups give
//! the per-point scores exactly. With `curvature=fisher, group-kernel=batched`
//! `C` is GGDA's batched empirical Fisher of the group gradients, so group
//! scores need no per-point gradient at all (GGDA's speedup).

pub mod curvature;
mod factored_gn;
mod fitted;
mod registry;

pub use fitted::Influence;
pub(crate) use registry::{ARNOLDI, CG, EXPLICIT, LISSA, SKETCH};

use super::gradient::{DEFAULT_PROJECTION, check_projection};
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::solvers::ihvp::{CgParams, LissaParams, SketchParams};

/// The inverse-curvature solver.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IfSolver {
    /// Explicit inverse (Cholesky / clipped eigendecomposition).
    Explicit,
    /// Conjugate gradient.
    Cg(CgParams),
    /// LiSSA.
    Lissa(LissaParams),
    /// Top-`rank` eigenpairs from `iters` Lanczos steps.
    Arnoldi {
        /// Eigenpairs kept.
        rank: usize,
        /// Lanczos iterations.
        iters: usize,
    },
    /// Randomized sketch (TracIn App. A.1).
    Sketch(SketchParams),
}

impl IfSolver {
    fn method(&self) -> &'static str {
        match self {
            IfSolver::Explicit => "if-explicit",
            IfSolver::Cg(_) => "if-cg",
            IfSolver::Lissa(_) => "if-lissa",
            IfSolver::Arnoldi { .. } => "if-arnoldi",
            IfSolver::Sketch(_) => "if-sketch",
        }
    }
}

/// Which curvature `C` is inverted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurvatureKind {
    /// Gauss-Newton in the projected space (default).
    GaussNewton,
    /// Parameter-space Hessian (identity projection): explicit on small
    /// models, Hessian-vector products above [`curvature::MAX_HESSIAN_PARAMS`].
    Hessian,
    /// Empirical Fisher `(1/n) Σ g_i g_iᵀ` of the projected loss gradients
    /// (GGDA's "Inf. (Fisher)"; Barshan et al. 2020).
    Fisher,
}

pub use super::gradient::GroupKernel;

/// The damping `λ`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Damping {
    /// `λ = r · tr(C) / k`.
    Relative(f64),
    /// `λ` itself.
    Absolute(f64),
}

/// Parameters of the influence-function family (checked builder).
#[derive(Clone, Debug, PartialEq)]
pub struct InfluenceParams {
    solver: IfSolver,
    curvature: CurvatureKind,
    damping: Damping,
    projection: ProjectionSpec,
    seed: u64,
    group_kernel: GroupKernel,
}

impl InfluenceParams {
    /// `solver` with the defaults: Gauss-Newton, relative damping 0.01,
    /// Kronecker-512 projection, seed 0.
    pub fn new(solver: IfSolver) -> Self {
        InfluenceParams {
            solver,
            curvature: CurvatureKind::GaussNewton,
            damping: Damping::Relative(0.01),
            projection: DEFAULT_PROJECTION,
            seed: 0,
            group_kernel: GroupKernel::Points,
        }
    }

    /// The curvature of group scores: [`GroupKernel::Points`] (the per-point
    /// curvature, default) or [`GroupKernel::Batched`] (GGDA's batched
    /// empirical Fisher of the group gradients; needs `curvature=fisher`).
    pub fn group_kernel(mut self, g: GroupKernel) -> Self {
        self.group_kernel = g;
        self
    }

    /// The curvature.
    pub fn curvature(mut self, c: CurvatureKind) -> Self {
        self.curvature = c;
        self
    }

    /// The damping.
    pub fn damping(mut self, d: Damping) -> Self {
        self.damping = d;
        self
    }

    /// The gradient projection.
    pub fn projection(mut self, p: ProjectionSpec) -> Self {
        self.projection = p;
        self
    }

    /// Seed of the projection and of the stochastic solvers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks damping ≥ 0, the projection, and the Hessian variant's needs.
    pub fn check(&self) -> Result<()> {
        let m = self.solver.method();
        check_projection(m, self.projection)?;
        let (key, v) = match self.damping {
            Damping::Relative(v) => ("damping-rel", v),
            Damping::Absolute(v) => ("damping", v),
        };
        if !v.is_finite() || v < 0.0 {
            return Err(AttribError::invalid_param(
                format!("{m}.{key}"),
                v,
                "must be finite and >= 0",
            ));
        }
        if self.group_kernel == GroupKernel::Batched && self.curvature != CurvatureKind::Fisher {
            return Err(AttribError::invalid_param(
                format!("{m}.group-kernel"),
                "batched",
                "GGDA's batched curvature is the batched empirical Fisher: use it with curvature=fisher",
            ));
        }
        if self.curvature == CurvatureKind::Hessian && self.projection != ProjectionSpec::Identity {
            return Err(AttribError::invalid_param(
                format!("{m}.curvature"),
                "hessian",
                format!(
                    "the explicit Hessian is taken in parameter space and needs projection=identity \
                     (got {}); use curvature=gn with a projection",
                    self.projection
                ),
            ));
        }
        Ok(())
    }
}
