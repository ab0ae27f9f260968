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

use nalgebra::DMatrix;
use std::sync::OnceLock;

use wellspring_core::{Dataset, Grouping, ScoreMatrix};

use super::grad_dot::{DEFAULT_PROJECTION, check_projection, loss_output};
use super::grad_features::{GradFeaturizer, permute_rows, singleton_order};
use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self};
use crate::dense::gemm_abt;
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::signature::DataSignature;
use crate::solvers::ihvp::{self, CgParams, CurvatureOp, LissaParams, SketchParams, matmul};
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor, check_grouping};
use curvature::ProjectedGn;

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

pub use super::trak::GroupKernel;

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

/// The curvature operator kept for the iterative solvers (one per fitted
/// attributor, so the variants' size difference does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Curv {
    Gn(ProjectedGn),
    Explicit(DMatrix<f64>),
    /// Matrix-free parameter-space Hessian (models above the explicit limit).
    Hvp(curvature::HvpHessian),
}

/// Rademacher probes of the Hutchinson trace estimate (relative damping of
/// the matrix-free Hessian).
const TRACE_PROBES: usize = 16;

impl Curv {
    fn op(&self) -> &dyn CurvatureOp {
        match self {
            Curv::Gn(g) => g,
            Curv::Explicit(m) => m,
            Curv::Hvp(h) => h,
        }
    }
    /// The `k × k` matrix, where one is formed.
    fn matrix(&self) -> Option<&DMatrix<f64>> {
        match self {
            Curv::Gn(g) => Some(&g.full),
            Curv::Explicit(m) => Some(m),
            Curv::Hvp(_) => None,
        }
    }
    /// `tr(C)`: exact where the matrix is formed, else Hutchinson's estimate.
    fn trace(&self, seed: u64) -> Result<f64> {
        match self {
            Curv::Hvp(h) => h.trace_estimate(TRACE_PROBES, seed),
            _ => Ok(self.matrix().map_or(0.0, |m| m.trace())),
        }
    }
    /// The first error of a matrix-free product, if any.
    fn check(&self) -> Result<()> {
        match self {
            Curv::Hvp(h) => h.check(),
            _ => Ok(()),
        }
    }
}

/// `(C + λI)⁻¹` in whatever form the solver produced (one per fitted
/// attributor).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Inverse {
    Dense(DMatrix<f64>),
    Explicit(ihvp::ExplicitSolver),
    LowRank {
        vectors: DMatrix<f64>,
        inv: Vec<f64>,
    },
    Iterative(Curv),
}

impl Attributor for InfluenceParams {
    type Fitted = Influence;

    /// Checks the parameters, the training set and the model; the curvature,
    /// its inverse and the per-point training gradients are computed on first
    /// use (group scores with `group-kernel=batched` never need them).
    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<Influence> {
        self.check()?;
        let name = self.solver.method();
        if train.is_empty() {
            return Err(AttribError::mismatch(
                train.name(),
                "the training set is empty",
            ));
        }
        let (model, device) = (&source.model, &source.device);
        model.check_dataset(train)?;
        if self.curvature == CurvatureKind::Hessian
            && self.solver == IfSolver::Explicit
            && model.n_params() > curvature::MAX_HESSIAN_PARAMS
        {
            return Err(AttribError::unsupported(
                name,
                format!(
                    "the explicit Hessian of {} parameters is too large to invert (limit {}); use \
                     if-cg, if-lissa, if-arnoldi or if-sketch (matrix-free Hessian-vector products) \
                     or curvature=gn",
                    model.n_params(),
                    curvature::MAX_HESSIAN_PARAMS
                ),
            ));
        }
        let l2 = if self.projection == ProjectionSpec::Identity {
            source
                .train_config
                .as_ref()
                .map(|c| c.weight_decay)
                .unwrap_or(0.0)
        } else {
            0.0
        };
        let feat = GradFeaturizer::new(
            name,
            model,
            device,
            loss_output(train),
            self.projection,
            self.seed,
        )?;
        Ok(Influence {
            name,
            params: self.clone(),
            l2,
            feat,
            model: model.clone(),
            device: device.clone(),
            point: OnceLock::new(),
            n: train.len(),
            sig: DataSignature::of(train),
            train: train.clone(),
        })
    }
}

/// A solved curvature: `λ` and `(C + λI)⁻¹`.
#[derive(Debug)]
struct Solved {
    lambda: f64,
    inverse: Inverse,
}

/// The per-point state: projected training gradients and the solved curvature.
#[derive(Debug)]
struct PointState {
    train_feats: Vec<f32>,
    solved: Solved,
}

/// A fitted influence function.
#[derive(Debug)]
pub struct Influence {
    name: &'static str,
    params: InfluenceParams,
    l2: f64,
    feat: GradFeaturizer,
    model: wellspring_models::AnyModel,
    device: wellspring_models::burn_types::Device,
    point: OnceLock<PointState>,
    n: usize,
    sig: DataSignature,
    train: Dataset,
}

impl Influence {
    /// The absolute damping `λ` of the per-point curvature (computes it on
    /// first use).
    pub fn lambda(&self) -> Result<f64> {
        Ok(self.point()?.solved.lambda)
    }

    /// Projected gradient width `k`.
    pub fn dim(&self) -> usize {
        self.feat.dim()
    }

    fn point(&self) -> Result<&PointState> {
        if let Some(p) = self.point.get() {
            return Ok(p);
        }
        let (name, p) = (self.name, &self.params);
        let train_feats = self.feat.features(&self.train)?;
        let curv = match p.curvature {
            CurvatureKind::GaussNewton => Curv::Gn(ProjectedGn::fit(
                name,
                &self.model,
                &self.device,
                p.projection,
                p.seed,
                &self.train,
                self.l2,
            )?),
            CurvatureKind::Fisher => Curv::Gn(ProjectedGn::from_rows(
                train_feats.clone(),
                self.dim(),
                self.l2,
            )),
            CurvatureKind::Hessian if self.model.n_params() <= curvature::MAX_HESSIAN_PARAMS => {
                Curv::Explicit(curvature::explicit_hessian(
                    name,
                    &self.model,
                    &self.device,
                    &self.train,
                    self.l2,
                )?)
            }
            CurvatureKind::Hessian => Curv::Hvp(curvature::HvpHessian::new(
                name,
                &self.model,
                &self.device,
                &self.train,
                self.l2,
            )?),
        };
        let solved = self.solve(curv)?;
        Ok(self.point.get_or_init(|| PointState {
            train_feats,
            solved,
        }))
    }

    /// Damps and inverts `curv` with the configured solver.
    fn solve(&self, curv: Curv) -> Result<Solved> {
        let (name, p) = (self.name, &self.params);
        let k = curv.op().dim();
        let lambda = match p.damping {
            Damping::Absolute(v) => v,
            Damping::Relative(r) => r * curv.trace(p.seed)?.max(0.0) / k.max(1) as f64,
        };
        let inverse = match p.solver {
            IfSolver::Explicit => {
                let c = curv.matrix().ok_or_else(|| {
                    AttribError::unsupported(name, "the explicit inverse needs a formed curvature matrix")
                })?;
                Inverse::Explicit(ihvp::explicit_factor(c, lambda)?.0)
            }
            IfSolver::Arnoldi { rank, iters } => {
                let e = ihvp::lanczos_top(curv.op(), rank, iters, p.seed);
                curv.check()?;
                let e = e?;
                let max = e.values.first().copied().unwrap_or(0.0).max(0.0);
                let (mut vecs, mut inv) = (Vec::new(), Vec::new());
                let mut dropped = 0;
                for (i, &mu) in e.values.iter().enumerate() {
                    if mu > 1e-10 * max && mu + lambda > 0.0 {
                        vecs.push(e.vectors.column(i).clone_owned());
                        inv.push(1.0 / (mu + lambda));
                    } else {
                        dropped += 1;
                    }
                }
                if dropped > 0 {
                    eprintln!(
                        "warning: if-arnoldi: {dropped} of {} eigenvalues were negative or tiny and were dropped",
                        e.values.len()
                    );
                }
                if vecs.is_empty() {
                    return Err(AttribError::Solver {
                        solver: name.into(),
                        reason: "the curvature has no positive eigenvalue".into(),
                    });
                }
                Inverse::LowRank {
                    vectors: DMatrix::from_columns(&vecs),
                    inv,
                }
            }
            IfSolver::Sketch(sp) => {
                let sk = ihvp::sketch(curv.op(), lambda, sp);
                curv.check()?;
                let (s, r) = sk?;
                Inverse::Dense(matmul(&s, &r, false))
            }
            IfSolver::Cg(_) | IfSolver::Lissa(_) => Inverse::Iterative(curv),
        };
        Ok(Solved { lambda, inverse })
    }

    /// `(C + λI)⁻¹ V` for row-major `V` (`m × k`), returned row-major `m × k`.
    fn solve_rows(&self, solved: &Solved, v: &[f32], m: usize) -> Result<Vec<f32>> {
        let k = self.dim();
        let b = DMatrix::<f64>::from_fn(k, m, |i, j| v[j * k + i] as f64);
        let x = match &solved.inverse {
            Inverse::Dense(inv) => matmul(inv, &b, false),
            Inverse::Explicit(f) => f.solve(&b),
            Inverse::LowRank { vectors, inv } => {
                let mut coef = matmul(vectors, &b, true);
                for (r, &w) in inv.iter().enumerate() {
                    coef.row_mut(r).scale_mut(w);
                }
                matmul(vectors, &coef, false)
            }
            Inverse::Iterative(curv) => {
                let x = match self.params.solver {
                    IfSolver::Cg(p) => ihvp::cg(curv.op(), solved.lambda, &b, p).map(|r| r.0),
                    IfSolver::Lissa(p) => {
                        ihvp::lissa(curv.op(), solved.lambda, &b, p).map(|r| r.0)
                    }
                    _ => unreachable!("only CG and LiSSA keep the curvature"),
                };
                curv.check()?;
                x?
            }
        };
        let mut out = vec![0.0f32; m * k];
        for j in 0..m {
            for i in 0..k {
                out[j * k + i] = x[(i, j)] as f32;
            }
        }
        if let Some(p) = out.iter().position(|v| !v.is_finite()) {
            return Err(AttribError::Solver {
                solver: self.name.into(),
                reason: format!(
                    "inverse-curvature product is non-finite (vector {})",
                    p / k.max(1)
                ),
            });
        }
        Ok(out)
    }

    /// Scores of `rows` (`n_rows × k`) against the test points with `solved`.
    fn scores(
        &self,
        solved: &Solved,
        rows: &[f32],
        n_rows: usize,
        test: &Dataset,
    ) -> Result<ScoreMatrix> {
        self.sig.check(test)?;
        let k = self.dim();
        let tf = self.feat.point_features(test)?;
        let x = self.solve_rows(solved, &tf, test.len())?;
        by_test_blocks(self.name, n_rows, test.len(), |c0, cols| {
            let mut out = vec![0.0f32; cols * n_rows];
            gemm_abt(&x[c0 * k..(c0 + cols) * k], cols, k, rows, n_rows, &mut out);
            Ok(out)
        })
    }
}

impl FittedAttributor for Influence {
    fn name(&self) -> &str {
        self.name
    }

    fn n_train(&self) -> usize {
        self.n
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        self.sig.check(test)?;
        let p = self.point()?;
        self.scores(&p.solved, &p.train_feats, self.n, test)
    }

    /// `g_iᵀ (C + λI)⁻¹ g_i`.
    fn self_attribute(&self) -> Result<Vec<f32>> {
        let k = self.dim();
        let p = self.point()?;
        let out: Vec<f32> = if self.n > k && matches!(p.solved.inverse, Inverse::Iterative(_)) {
            // fewer solves: materialise (C + λI)⁻¹ from the k unit vectors
            let mut eye = vec![0.0f32; k * k];
            (0..k).for_each(|i| eye[i * k + i] = 1.0);
            let inv = self.solve_rows(&p.solved, &eye, k)?;
            let mut prod = vec![0.0f32; self.n * k];
            gemm_abt(&p.train_feats, self.n, k, &inv, k, &mut prod);
            prod.chunks(k)
                .zip(p.train_feats.chunks(k))
                .map(|(a, b)| crate::dense::dot(a, b))
                .collect()
        } else {
            let x = self.solve_rows(&p.solved, &p.train_feats, self.n)?;
            x.chunks(k)
                .zip(p.train_feats.chunks(k))
                .map(|(a, b)| crate::dense::dot(a, b))
                .collect()
        };
        check_self(self.name, &out)?;
        Ok(out)
    }

    /// GGDA group scores from batched group gradients; with
    /// `curvature=fisher, group-kernel=batched` the curvature is GGDA's
    /// batched empirical Fisher of the group gradients, so no per-point
    /// gradient is computed.
    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        check_grouping(grouping, self.n)?;
        self.sig.check(test)?;
        if let Some(order) = singleton_order(grouping) {
            let p = self.point()?;
            let rows = permute_rows(&p.train_feats, self.dim(), &order);
            return self.scores(&p.solved, &rows, grouping.n_groups(), test);
        }
        let rows = self.feat.group_features(&self.train, grouping)?;
        if self.params.group_kernel == GroupKernel::Batched {
            let curv = Curv::Gn(ProjectedGn::from_rows(rows.clone(), self.dim(), self.l2));
            let solved = self.solve(curv)?;
            return self.scores(&solved, &rows, grouping.n_groups(), test);
        }
        let p = self.point()?;
        self.scores(&p.solved, &rows, grouping.n_groups(), test)
    }
}

fn common(r: &mut OptionReader<'_>, solver: IfSolver) -> Result<Box<dyn DynAttributor>> {
    let method = solver.method();
    let curvature = match r.get::<String>("curvature")?.as_deref() {
        None | Some("gn") => CurvatureKind::GaussNewton,
        Some("hessian") => CurvatureKind::Hessian,
        Some("fisher") => CurvatureKind::Fisher,
        Some(other) => {
            return Err(AttribError::invalid_param(
                format!("{method}.curvature"),
                other,
                "expected gn, hessian or fisher",
            ));
        }
    };
    let group_kernel = match r.get::<String>("group-kernel")?.as_deref() {
        None | Some("points") => GroupKernel::Points,
        Some("batched") => GroupKernel::Batched,
        Some(other) => {
            return Err(AttribError::invalid_param(
                format!("{method}.group-kernel"),
                other,
                "expected points or batched",
            ));
        }
    };
    let damping = match (r.get::<f64>("damping")?, r.get::<f64>("damping-rel")?) {
        (Some(_), Some(_)) => {
            return Err(AttribError::invalid_param(
                format!("{method}.damping"),
                "both damping and damping-rel",
                "give one of them",
            ));
        }
        (Some(a), None) => Damping::Absolute(a),
        (None, Some(rel)) => Damping::Relative(rel),
        (None, None) => Damping::Relative(0.01),
    };
    let p = InfluenceParams::new(solver)
        .curvature(curvature)
        .damping(damping)
        .projection(r.projection().unwrap_or(DEFAULT_PROJECTION))
        .group_kernel(group_kernel)
        .seed(r.seed());
    p.check()?;
    Ok(Box::new(p))
}

fn build_explicit(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    common(r, IfSolver::Explicit)
}

fn build_cg(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let d = CgParams::default();
    let p = CgParams {
        max_iter: r.get("max-iter")?.unwrap_or(d.max_iter),
        tol: r.get("tol")?.unwrap_or(d.tol),
    };
    common(r, IfSolver::Cg(p))
}

fn build_lissa(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let d = LissaParams::default();
    let p = LissaParams {
        depth: r.get("depth")?.unwrap_or(d.depth),
        repeats: r.get("repeats")?.unwrap_or(d.repeats),
        scale: r.get("scale")?,
        batch_size: r.get("batch")?.unwrap_or(d.batch_size),
        seed: r.seed(),
    };
    common(r, IfSolver::Lissa(p))
}

fn build_arnoldi(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let rank = r.get("rank")?.unwrap_or(100);
    let iters = r.get("iters")?.unwrap_or(200);
    common(r, IfSolver::Arnoldi { rank, iters })
}

fn build_sketch(r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    let d = SketchParams::default();
    let p = SketchParams {
        dim: r.get("dim")?.unwrap_or(d.dim),
        steps: r.get("steps")?.unwrap_or(d.steps),
        batch_size: r.get("batch")?.unwrap_or(d.batch_size),
        seed: r.seed(),
    };
    common(r, IfSolver::Sketch(p))
}

const COMMON_PARAMS: [(&str, &str); 4] = [
    (
        "group-kernel",
        "points (per-point curvature, default) or batched (GGDA batched Fisher; curvature=fisher)",
    ),
    (
        "curvature",
        "gn (Gauss-Newton, default), fisher (empirical Fisher) or hessian (identity projection; matrix-free above 4096 parameters)",
    ),
    ("damping", "absolute damping λ >= 0"),
    (
        "damping-rel",
        "damping as a share of the mean eigenvalue tr(C)/k (default 0.01)",
    ),
];

const PAPER: &str = "Koh & Liang 2017; FiMO (Bae et al. 2024) eq. 8, §4";

/// Registry entry of the explicit influence function.
pub(crate) const EXPLICIT: MethodInfo = MethodInfo {
    name: "if-explicit",
    description: "influence function with the damped curvature inverted explicitly",
    paper: PAPER,
    uses_gradients: true,
    params: &COMMON_PARAMS,
    build: build_explicit,
};

/// Registry entry of the CG influence function.
pub(crate) const CG: MethodInfo = MethodInfo {
    name: "if-cg",
    description: "influence function, conjugate-gradient inverse-curvature products",
    paper: "Koh & Liang 2017; Martens 2010; FiMO §4",
    uses_gradients: true,
    params: &[
        COMMON_PARAMS[0],
        COMMON_PARAMS[1],
        COMMON_PARAMS[2],
        COMMON_PARAMS[3],
        ("max-iter", "CG iterations per vector (default 100)"),
        ("tol", "relative residual to stop at (default 1e-6)"),
    ],
    build: build_cg,
};

/// Registry entry of the LiSSA influence function.
pub(crate) const LISSA: MethodInfo = MethodInfo {
    name: "if-lissa",
    description: "influence function, LiSSA stochastic Neumann recursion with divergence detection",
    paper: "Agarwal et al. 2017; Koh & Liang 2017; FiMO §4",
    uses_gradients: true,
    params: &[
        COMMON_PARAMS[0],
        COMMON_PARAMS[1],
        COMMON_PARAMS[2],
        COMMON_PARAMS[3],
        ("depth", "recursion steps (default 200)"),
        ("repeats", "independent repeats averaged (default 1)"),
        ("scale", "scale s (default: twice the largest eigenvalue)"),
        ("batch", "minibatch of the curvature products (default 64)"),
    ],
    build: build_lissa,
};

/// Registry entry of the Arnoldi influence function.
pub(crate) const ARNOLDI: MethodInfo = MethodInfo {
    name: "if-arnoldi",
    description: "influence function on the top eigenpairs of the curvature (Lanczos/Arnoldi)",
    paper: "Schioppa et al. 2022; FiMO §4",
    uses_gradients: true,
    params: &[
        COMMON_PARAMS[0],
        COMMON_PARAMS[1],
        COMMON_PARAMS[2],
        COMMON_PARAMS[3],
        ("rank", "eigenpairs kept (default 100)"),
        ("iters", "Lanczos iterations (default 200)"),
    ],
    build: build_arnoldi,
};

/// Registry entry of the sketched influence function.
pub(crate) const SKETCH: MethodInfo = MethodInfo {
    name: "if-sketch",
    description: "influence function with a randomized sketch of the inverse curvature (two-minibatch SGD)",
    paper: "TracIn (Pruthi et al. 2020) appendix A.1, eq. 3",
    uses_gradients: true,
    params: &[
        COMMON_PARAMS[0],
        COMMON_PARAMS[1],
        COMMON_PARAMS[2],
        COMMON_PARAMS[3],
        ("dim", "sketch width d (default 256)"),
        ("steps", "SGD steps (default 300)"),
        ("batch", "minibatch of each curvature product (default 64)"),
    ],
    build: build_sketch,
};
