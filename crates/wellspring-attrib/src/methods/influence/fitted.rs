//! The fitted influence function: the curvature (formed or matrix-free),
//! its inverse in whatever form the solver gives, the per-point state, and
//! the scores.

use std::sync::OnceLock;

use nalgebra::DMatrix;
use wellspring_core::{Dataset, Grouping, ScoreMatrix};
use wellspring_grad::LinearOperator;

use super::curvature::{self, ProjectedGn};
use super::factored_gn::FactoredGn;
use super::{CurvatureKind, Damping, IfSolver, InfluenceParams};
use crate::blocks::{by_test_blocks, check_self};
use crate::dense::gemm_abt;
use crate::error::{AttribError, Result};
use crate::projection::ProjectionSpec;
use crate::methods::gradient::{GradFeaturizer, GroupKernel, loss_output, permute_rows, singleton_order};
use crate::signature::DataSignature;
use crate::solvers::ihvp::{self, matmul};
use crate::source::ModelSource;
use crate::traits::{Attributor, FittedAttributor, check_grouping};

/// The curvature operator kept for the iterative solvers (one per fitted
/// attributor, so the variants' size difference does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Curv {
    Gn(ProjectedGn),
    /// Exact Gauss-Newton of an all-linear model, matrix-free on rank-1
    /// factors (iterative solvers only).
    Factored(FactoredGn),
    Explicit(DMatrix<f64>),
    /// Matrix-free parameter-space Hessian (models above the explicit limit).
    Hvp(curvature::HvpHessian),
}

/// Largest exact Gauss-Newton matrix (f64 bytes) CG forms instead of using
/// the factored operator (1 GiB: about 11 600 parameters).
const FORMED_CG_BYTES: usize = 1 << 30;

/// Rademacher probes of the Hutchinson trace estimate (relative damping of
/// the matrix-free Hessian).
const TRACE_PROBES: usize = 16;

impl Curv {
    fn op(&self) -> &dyn LinearOperator {
        match self {
            Curv::Gn(g) => g,
            Curv::Factored(f) => f,
            Curv::Explicit(m) => m,
            Curv::Hvp(h) => h,
        }
    }
    /// The `k × k` matrix, where one is formed.
    fn matrix(&self) -> Option<&DMatrix<f64>> {
        match self {
            Curv::Gn(g) => Some(&g.full),
            Curv::Explicit(m) => Some(m),
            Curv::Hvp(_) | Curv::Factored(_) => None,
        }
    }
    /// `tr(C)`: exact where the matrix is formed, else Hutchinson's estimate.
    fn trace(&self, seed: u64) -> Result<f64> {
        match self {
            Curv::Hvp(h) => h.trace_estimate(TRACE_PROBES, seed),
            Curv::Factored(f) => Ok(f.trace()),
            _ => Ok(self.matrix().map_or(0.0, |m| m.trace())),
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
        // exact Gauss-Newton for LiSSA, Arnoldi and the sketch: matrix-free on
        // rank-1 factors where every layer is flat linear (never the p × p
        // matrix). CG multiplies every test gradient at every iteration, which
        // the formed matrix does faster while it fits (MNIST LR, 500 test
        // points: 17 s formed vs 21 s factored), so CG forms it up to
        // FORMED_CG_BYTES.
        let p_dim = self.model.n_params();
        let cg_formed = matches!(p.solver, IfSolver::Cg(_))
            && p_dim.saturating_mul(p_dim).saturating_mul(8) <= FORMED_CG_BYTES;
        let factored = if p.curvature == CurvatureKind::GaussNewton
            && p.projection == ProjectionSpec::Identity
            && p.solver != IfSolver::Explicit
            && !cg_formed
        {
            FactoredGn::fit(name, &self.model, &self.device, &self.train, self.l2)?
        } else {
            None
        };
        let curv = match (p.curvature, factored) {
            (_, Some(f)) => Curv::Factored(f),
            (CurvatureKind::GaussNewton, None) => Curv::Gn(ProjectedGn::fit(
                name,
                &self.model,
                &self.device,
                p.projection,
                p.seed,
                &self.train,
                self.l2,
            )?),
            (CurvatureKind::Fisher, None) => Curv::Gn(ProjectedGn::from_rows(
                train_feats.clone(),
                self.dim(),
                self.l2,
            )),
            (CurvatureKind::Hessian, None)
                if self.model.n_params() <= curvature::MAX_HESSIAN_PARAMS =>
            {
                Curv::Explicit(curvature::explicit_hessian(
                    name,
                    &self.model,
                    &self.device,
                    &self.train,
                    self.l2,
                )?)
            }
            (CurvatureKind::Hessian, None) => Curv::Hvp(curvature::HvpHessian::new(
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
                let e = ihvp::lanczos_top(curv.op(), rank, iters, p.seed)?;
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
                let (s, r) = ihvp::sketch(curv.op(), lambda, sp)?;
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
            Inverse::Iterative(curv) => match self.params.solver {
                IfSolver::Cg(p) => ihvp::cg(curv.op(), solved.lambda, &b, p)?.0,
                IfSolver::Lissa(p) => ihvp::lissa(curv.op(), solved.lambda, &b, p)?.0,
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
