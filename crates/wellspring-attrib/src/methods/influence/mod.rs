//! Influence functions (Koh & Liang 2017; FiMO, Bae et al. 2024, eq. 8 and
//! §4): `if-explicit`, `if-cg`, `if-lissa`, `if-arnoldi` and `if-sketch`,
//! one method with five inverse-curvature solvers.
//!
//! ```text
//! score(i, j) = g(z_i)ᵀ (C + λI)⁻¹ g(z_j),   g = P ∇_θ ℓ(z; θ)
//! ```
//!
//! Removing `z_i` changes the test loss by `+(1/n) g_jᵀ H⁻¹ g_i` to first
//! order (the negative of Koh & Liang's up-weighting influence), so a positive
//! score means the point helps: wellspring's sign convention.
//!
//! `C` is the curvature of the mean training loss in the projected gradient
//! space (see [`curvature`]): the Gauss-Newton matrix (`curvature=gn`, the
//! default; PSD, exact Hessian for logistic regression with the identity
//! projection) or the explicit Hessian (`curvature=hessian`; identity
//! projection, small models; indefinite on non-convex models, where negative
//! curvature is clipped with a warning so no score is NaN). The default
//! projection is Kronecker-structured to 512 dimensions per layer (TracIn
//! App. F), computed from the per-layer factors; `identity` gives the
//! unprojected influence function. The damping `λ` is `damping-rel · tr(C)/k`
//! (default `damping-rel = 0.01`) unless an absolute `damping` is given; the
//! training weight decay (from the source's train config) is added to `C`
//! with the identity projection.
//!
//! Solvers (`crate::solvers::ihvp`): `if-explicit` inverts `C + λI` once
//! (Cholesky, or clipped eigendecomposition); `if-cg` runs conjugate
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
//! the per-point scores exactly.

pub mod curvature;

use nalgebra::DMatrix;
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
    /// Explicit Hessian (identity projection, small models).
    Hessian,
}

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
        }
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

/// The curvature operator kept for the iterative solvers.
#[derive(Debug)]
enum Curv {
    Gn(ProjectedGn),
    Explicit(DMatrix<f64>),
}

impl Curv {
    fn op(&self) -> &dyn CurvatureOp {
        match self {
            Curv::Gn(g) => g,
            Curv::Explicit(m) => m,
        }
    }
    fn matrix(&self) -> &DMatrix<f64> {
        match self {
            Curv::Gn(g) => &g.full,
            Curv::Explicit(m) => m,
        }
    }
}

/// `(C + λI)⁻¹` in whatever form the solver produced.
#[derive(Debug)]
enum Inverse {
    Dense(DMatrix<f64>),
    LowRank {
        vectors: DMatrix<f64>,
        inv: Vec<f64>,
    },
    Iterative(Curv),
}

impl Attributor for InfluenceParams {
    type Fitted = Influence;

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
        let l2 = if self.projection == ProjectionSpec::Identity {
            source
                .train_config
                .as_ref()
                .map(|c| c.weight_decay)
                .unwrap_or(0.0)
        } else {
            0.0
        };
        let curv = match self.curvature {
            CurvatureKind::GaussNewton => Curv::Gn(ProjectedGn::fit(
                name,
                model,
                device,
                self.projection,
                self.seed,
                train,
                l2,
            )?),
            CurvatureKind::Hessian => {
                Curv::Explicit(curvature::explicit_hessian(name, model, device, train, l2)?)
            }
        };
        let c = curv.matrix();
        let k = c.nrows();
        let lambda = match self.damping {
            Damping::Absolute(v) => v,
            Damping::Relative(r) => r * c.trace().max(0.0) / k.max(1) as f64,
        };
        let inverse = match self.solver {
            IfSolver::Explicit => Inverse::Dense(ihvp::explicit_inverse(c, lambda)?.0),
            IfSolver::Arnoldi { rank, iters } => {
                let e = ihvp::lanczos_top(curv.op(), rank, iters, self.seed)?;
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
            IfSolver::Sketch(p) => {
                let (s, r) = ihvp::sketch(curv.op(), lambda, p)?;
                Inverse::Dense(s * r)
            }
            IfSolver::Cg(_) | IfSolver::Lissa(_) => Inverse::Iterative(curv),
        };
        let feat = GradFeaturizer::new(
            name,
            model,
            device,
            loss_output(train),
            self.projection,
            self.seed,
        )?;
        let train_feats = feat.features(train)?;
        Ok(Influence {
            name,
            solver: self.solver,
            lambda,
            feat,
            train_feats,
            inverse,
            n: train.len(),
            sig: DataSignature::of(train),
            train: train.clone(),
        })
    }
}

/// A fitted influence function.
#[derive(Debug)]
pub struct Influence {
    name: &'static str,
    solver: IfSolver,
    lambda: f64,
    feat: GradFeaturizer,
    train_feats: Vec<f32>,
    inverse: Inverse,
    n: usize,
    sig: DataSignature,
    train: Dataset,
}

impl Influence {
    /// The absolute damping `λ` used.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// Projected gradient width `k`.
    pub fn dim(&self) -> usize {
        self.feat.dim()
    }

    /// `(C + λI)⁻¹ V` for row-major `V` (`m × k`), returned row-major `m × k`.
    fn solve_rows(&self, v: &[f32], m: usize) -> Result<Vec<f32>> {
        let k = self.dim();
        let b = DMatrix::<f64>::from_fn(k, m, |i, j| v[j * k + i] as f64);
        let x = match &self.inverse {
            Inverse::Dense(inv) => matmul(inv, &b, false),
            Inverse::LowRank { vectors, inv } => {
                let mut coef = matmul(vectors, &b, true);
                for (r, &w) in inv.iter().enumerate() {
                    coef.row_mut(r).scale_mut(w);
                }
                matmul(vectors, &coef, false)
            }
            Inverse::Iterative(curv) => match self.solver {
                IfSolver::Cg(p) => ihvp::cg(curv.op(), self.lambda, &b, p)?.0,
                IfSolver::Lissa(p) => ihvp::lissa(curv.op(), self.lambda, &b, p)?.0,
                _ => unreachable!("only CG and LiSSA keep the curvature"),
            },
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

    fn scores(&self, rows: &[f32], n_rows: usize, test: &Dataset) -> Result<ScoreMatrix> {
        self.sig.check(test)?;
        let k = self.dim();
        let tf = self.feat.point_features(test)?;
        let x = self.solve_rows(&tf, test.len())?;
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
        self.scores(&self.train_feats, self.n, test)
    }

    /// `g_iᵀ (C + λI)⁻¹ g_i`.
    fn self_attribute(&self) -> Result<Vec<f32>> {
        let k = self.dim();
        let out: Vec<f32> = if self.n > k && matches!(self.inverse, Inverse::Iterative(_)) {
            // fewer solves: materialise (C + λI)⁻¹ from the k unit vectors
            let mut eye = vec![0.0f32; k * k];
            (0..k).for_each(|i| eye[i * k + i] = 1.0);
            let inv = self.solve_rows(&eye, k)?;
            let mut prod = vec![0.0f32; self.n * k];
            gemm_abt(&self.train_feats, self.n, k, &inv, k, &mut prod);
            prod.chunks(k)
                .zip(self.train_feats.chunks(k))
                .map(|(a, b)| crate::dense::dot(a, b))
                .collect()
        } else {
            let x = self.solve_rows(&self.train_feats, self.n)?;
            x.chunks(k)
                .zip(self.train_feats.chunks(k))
                .map(|(a, b)| crate::dense::dot(a, b))
                .collect()
        };
        check_self(self.name, &out)?;
        Ok(out)
    }

    /// GGDA group scores from batched group gradients.
    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        check_grouping(grouping, self.n)?;
        let rows = match singleton_order(grouping) {
            Some(order) => permute_rows(&self.train_feats, self.dim(), &order),
            None => self.feat.group_features(&self.train, grouping)?,
        };
        self.scores(&rows, grouping.n_groups(), test)
    }
}

fn common(r: &mut OptionReader<'_>, solver: IfSolver) -> Result<Box<dyn DynAttributor>> {
    let method = solver.method();
    let curvature = match r.get::<String>("curvature")?.as_deref() {
        None | Some("gn") => CurvatureKind::GaussNewton,
        Some("hessian") => CurvatureKind::Hessian,
        Some(other) => {
            return Err(AttribError::invalid_param(
                format!("{method}.curvature"),
                other,
                "expected gn or hessian",
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

const COMMON_PARAMS: [(&str, &str); 3] = [
    (
        "curvature",
        "gn (Gauss-Newton, default) or hessian (identity projection, small models)",
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
        ("dim", "sketch width d (default 256)"),
        ("steps", "SGD steps (default 300)"),
        ("batch", "minibatch of each curvature product (default 64)"),
    ],
    build: build_sketch,
};
