//! Registry entries of the influence functions and their option parsing.

use super::{CurvatureKind, Damping, IfSolver, InfluenceParams};
use crate::error::{AttribError, Result};
use crate::methods::gradient::{DEFAULT_PROJECTION, GroupKernel};
use crate::methods::{MethodInfo, OptionReader};
use crate::solvers::ihvp::{CgParams, LissaParams, SketchParams};
use crate::traits::DynAttributor;

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

/// Registry entry of the explicit influence function.
pub(crate) const EXPLICIT: MethodInfo = MethodInfo {
    name: "if-explicit",
    description: "influence function with the damped curvature inverted explicitly",
    paper: "Koh & Liang 2017; FiMO (Bae et al. 2024) eq. 8, §4",
    uses_gradients: true,
    params: &COMMON_PARAMS,
    caps: crate::methods::Capabilities::projected(DEFAULT_PROJECTION),
    build: build_explicit,
};

/// Registry entry of the CG influence function.
pub(crate) const CG: MethodInfo = MethodInfo {
    name: "if-cg",
    description: "influence function, conjugate-gradient inverse-curvature products",
    paper: "Koh & Liang 2017; Martens 2010; FiMO §4",
    params: &[
        COMMON_PARAMS[0],
        COMMON_PARAMS[1],
        COMMON_PARAMS[2],
        COMMON_PARAMS[3],
        ("max-iter", "CG iterations per vector (default 100)"),
        ("tol", "relative residual to stop at (default 1e-6)"),
    ],
    build: build_cg,    ..EXPLICIT
};

/// Registry entry of the LiSSA influence function.
pub(crate) const LISSA: MethodInfo = MethodInfo {
    name: "if-lissa",
    description: "influence function, LiSSA stochastic Neumann recursion with divergence detection",
    paper: "Agarwal et al. 2017; Koh & Liang 2017; FiMO §4",
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
    build: build_lissa,    ..EXPLICIT
};

/// Registry entry of the Arnoldi influence function.
pub(crate) const ARNOLDI: MethodInfo = MethodInfo {
    name: "if-arnoldi",
    description: "influence function on the top eigenpairs of the curvature (Lanczos/Arnoldi)",
    paper: "Schioppa et al. 2022; FiMO §4",
    params: &[
        COMMON_PARAMS[0],
        COMMON_PARAMS[1],
        COMMON_PARAMS[2],
        COMMON_PARAMS[3],
        ("rank", "eigenpairs kept (default 100)"),
        ("iters", "Lanczos iterations (default 200)"),
    ],
    build: build_arnoldi,    ..EXPLICIT
};

/// Registry entry of the sketched influence function.
pub(crate) const SKETCH: MethodInfo = MethodInfo {
    name: "if-sketch",
    description: "influence function with a randomized sketch of the inverse curvature (two-minibatch SGD)",
    paper: "TracIn (Pruthi et al. 2020) appendix A.1, eq. 3",
    params: &[
        COMMON_PARAMS[0],
        COMMON_PARAMS[1],
        COMMON_PARAMS[2],
        COMMON_PARAMS[3],
        ("dim", "sketch width d (default 256)"),
        ("steps", "SGD steps (default 300)"),
        ("batch", "minibatch of each curvature product (default 64)"),
    ],
    build: build_sketch,    ..EXPLICIT
};
