//! Settings shared by `lds-mnist`'s exact rows and `cargo xtask
//! compare-dattri`, so that both measure the same estimator with the same
//! hyper-parameters as dattri (Deng et al. 2024) is run with.
//!
//! Exact means no gradient projection (`ProjectionSpec::Identity`): the
//! curvature is the Hessian of the mean training cross-entropy, the matrix
//! dattri's influence attributors differentiate twice. For logistic
//! regression wellspring's Gauss-Newton matrix is that Hessian exactly, and
//! it is formed (7850 × 7850); for the MLP it is applied matrix-free
//! (`curvature=hessian`). Every influence-type method gets the same absolute
//! damping [`DAMPING`] on both sides (dattri's `regularization` is `λ I`
//! added to the Hessian, wellspring's `damping` is the same `λ`).

use wellspring_attrib::{MethodOptions, ModelSource, ProjectionSpec};
use wellspring_core::Dataset;
use wellspring_data::sample;
use wellspring_grad::{CrossEntropy, CurvatureParams, LinearOperator};
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, Model};

use super::recipes::{MNIST5K_LOGREG, MNIST5K_MLP, Recipe, load_data, train_cached};
use super::{ReproError, RunContext};

/// The compute device both `lds-mnist` and `compare-dattri` run on.
pub fn device() -> Device {
    super::recipes::device()
}

/// One of `lds-mnist`'s two models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MnistModel {
    /// Logistic regression 784-10 (`mnist5k-logreg`).
    LogReg,
    /// The MLP 784-128-64-10 (`mnist5k-mlp`).
    Mlp,
}

impl MnistModel {
    pub(super) fn recipe(self) -> &'static Recipe {
        match self {
            MnistModel::LogReg => &MNIST5K_LOGREG,
            MnistModel::Mlp => &MNIST5K_MLP,
        }
    }
}

/// `lds-mnist`'s trained model on its data, as both sides of the
/// head-to-head see it.
#[derive(Debug)]
pub struct MnistCase {
    /// The first `n_train` training digits.
    pub train: Dataset,
    /// The first `n_test` test digits.
    pub test: Dataset,
    /// The trained model (cached by content key).
    pub model: Model,
    /// The model with its training config, ready for the attributors.
    pub source: ModelSource,
}

/// Trains (or loads from `ctx.cache`) `lds-mnist`'s `which` model on its
/// first `n_train` training digits: the same recipe, seed and cache key as
/// the `lds-mnist` target, so `compare-dattri` attributes the very weights
/// the benchmark does.
pub fn mnist_case(
    ctx: &RunContext,
    which: MnistModel,
    n_train: usize,
    n_test: usize,
) -> Result<MnistCase, ReproError> {
    let rec = which.recipe();
    let mut split = load_data(ctx, rec)?;
    split.train = sample::first_n(&split.train, n_train.min(split.train.len()))?;
    split.test = sample::first_n(&split.test, n_test.min(split.test.len()))?;
    let config = rec.model_config(&split.train)?;
    let seed = ctx.seed_for("lds-mnist.model");
    let train_config = rec.train_config(ctx.quick, seed);
    let (model, _) = train_cached(ctx, rec.name, &split.train, &config, &train_config, seed)?;
    let source = ModelSource::new(model.clone(), device()).with_train_config(train_config);
    Ok(MnistCase {
        train: split.train,
        test: split.test,
        model,
        source,
    })
}

/// Absolute damping `λ` of every influence-type method in the matched runs
/// (dattri `regularization` / EK-FAC `damping`; LiSSA gets `λ / s`).
pub const DAMPING: f64 = 0.01;
/// CG iterations (dattri's default `max_iter`; wellspring runs all of them).
pub const CG_ITERS: usize = 10;
/// LiSSA recursion depth, minibatch and repeats (wellspring's defaults).
pub const LISSA_DEPTH: usize = 200;
/// LiSSA minibatch of the curvature products.
pub const LISSA_BATCH: usize = 64;
/// LiSSA repeats averaged.
pub const LISSA_REPEATS: usize = 1;
/// Arnoldi: eigenpairs kept (dattri's `proj_dim`) and iterations (`max_iter`).
pub const ARNOLDI_RANK: usize = 100;
/// Arnoldi / Lanczos iterations.
pub const ARNOLDI_ITERS: usize = 200;
/// Power iterations for the LiSSA scale `s = 2 (μ_max + λ)`.
pub const POWER_ITERS: usize = 30;

/// The methods with an exact (identity-projection) row in `lds-mnist`.
pub const EXACT_METHODS: [&str; 6] = [
    "grad-dot",
    "grad-cos",
    "if-explicit",
    "if-cg",
    "if-lissa",
    "datainf",
];

/// Largest model whose Gauss-Newton matrix is formed for the exact
/// influence rows (`p × p` f64; above it the Hessian is applied matrix-free
/// and `if-explicit` is not run).
pub const MAX_FORMED_PARAMS: usize = 10_000;

/// Options of `method` with no projection and the matched hyper-parameters,
/// or `Err(reason)` where the exact method cannot run on this model (the
/// explicit inverse of a 109 386-parameter Hessian). `lissa_scale` is
/// [`lissa_scale`]'s value (needed for `if-lissa` only).
pub fn exact_options(
    method: &str,
    n_params: usize,
    lissa_scale: Option<f64>,
    seed: u64,
) -> Result<MethodOptions, String> {
    let base = MethodOptions::new()
        .seed(seed)
        .projection(ProjectionSpec::Identity);
    let curvature = if n_params <= MAX_FORMED_PARAMS {
        "gn"
    } else {
        "hessian"
    };
    let damped = |o: MethodOptions| {
        o.param("curvature", curvature)
            .param("damping", DAMPING.to_string())
    };
    Ok(match method {
        "grad-dot" | "grad-cos" => base,
        "if-explicit" if n_params > MAX_FORMED_PARAMS => {
            return Err(format!(
                "the explicit inverse of the {n_params} × {n_params} Hessian ({:.0} GiB in f32) \
                 does not fit in memory on either side",
                (n_params as f64).powi(2) * 4.0 / (1u64 << 30) as f64
            ));
        }
        "if-explicit" => damped(base),
        "if-cg" => damped(base)
            .param("max-iter", CG_ITERS.to_string())
            .param("tol", "1e-30"),
        "if-lissa" => {
            let s = lissa_scale.ok_or("if-lissa needs the scale from lissa_scale()")?;
            damped(base)
                .param("depth", LISSA_DEPTH.to_string())
                .param("batch", LISSA_BATCH.to_string())
                .param("repeats", LISSA_REPEATS.to_string())
                .param("scale", s.to_string())
        }
        "if-arnoldi" => damped(base)
            .param("rank", ARNOLDI_RANK.to_string())
            .param("iters", ARNOLDI_ITERS.to_string()),
        "datainf" => base.param("damping", DAMPING.to_string()),
        // no projection applies; true labels as dattri's EK-FAC uses
        "ekfac" => MethodOptions::new()
            .seed(seed)
            .param("damping", DAMPING.to_string())
            .param("labels", "true"),
        other => return Err(format!("{other} has no exact matched setting")),
    })
}

/// The label of a method's row: `grad-dot (exact)`, `grad-dot (kronecker:512)`.
pub fn row_label(method: &str, projection: Option<ProjectionSpec>) -> String {
    match projection {
        Some(ProjectionSpec::Identity) => format!("{method} (exact)"),
        Some(p) => format!("{method} ({p})"),
        None => method.to_string(),
    }
}

/// Minibatches whose Hessians' top eigenvalue enters [`lissa_scale`].
pub const SCALE_BATCHES: usize = 8;

/// LiSSA's scale `s = 2 (μ + λ)`, with `μ` the largest magnitude of the top
/// eigenvalue of the full-batch Hessian of the mean training loss and of
/// [`SCALE_BATCHES`] Hessians of [`LISSA_BATCH`]-point minibatches (power
/// iteration, [`POWER_ITERS`] steps each, seeded). The recursion multiplies
/// by `I − (H_B + λ)/s` with a minibatch `H_B` at every step, and a
/// minibatch's curvature can be several times the full batch's, so the
/// full-batch value alone lets it diverge. Both sides get this `s`.
pub fn lissa_scale(
    model: &AnyModel,
    train: &Dataset,
    device: &Device,
    seed: u64,
) -> Result<f64, ReproError> {
    let n = train.len();
    let mut mu = top_eigenvalue(model, train, &(0..n).collect::<Vec<_>>(), device, seed)?;
    let mut state = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    for _ in 0..SCALE_BATCHES {
        // seeded minibatch: LISSA_BATCH distinct rows
        let mut rows: Vec<usize> = Vec::with_capacity(LISSA_BATCH);
        while rows.len() < LISSA_BATCH.min(n) {
            state = splitmix(state);
            let r = (state % n as u64) as usize;
            if !rows.contains(&r) {
                rows.push(r);
            }
        }
        mu = mu.max(top_eigenvalue(model, train, &rows, device, state)?);
    }
    Ok(2.0 * (mu + DAMPING))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `|μ|` of the Hessian of the mean loss over `rows` by power iteration.
fn top_eigenvalue(
    model: &AnyModel,
    train: &Dataset,
    rows: &[usize],
    device: &Device,
    seed: u64,
) -> Result<f64, ReproError> {
    let fail = |e: wellspring_grad::GradError| {
        ReproError::Failed(format!("dattri-match: power iteration on the Hessian: {e}"))
    };
    let op = CurvatureParams::new()
        .loss(CrossEntropy)
        .hessian(model.clone(), train, rows, device)
        .map_err(fail)?;
    let p = op.dim();
    // seeded start vector, uniform in [-0.5, 0.5)
    let mut v: Vec<f64> = (0..p as u64)
        .map(|i| {
            (splitmix(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11) as f64
                / (1u64 << 53) as f64
                - 0.5
        })
        .collect();
    let mut w = vec![0.0; p];
    let mut mu = 0.0f64;
    for _ in 0..POWER_ITERS {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            break;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        op.apply(&v, &mut w).map_err(fail)?;
        mu = v.iter().zip(&w).map(|(a, b)| a * b).sum();
        std::mem::swap(&mut v, &mut w);
    }
    Ok(mu.abs())
}

/// Resident-set high-water mark of this process in MiB (Linux), measured
/// from [`PeakMemory::start`] on: `clear_refs` resets VmHWM to the current RSS.
#[derive(Debug)]
pub struct PeakMemory {
    start_mib: Option<f64>,
}

fn status_kib(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok()
}

impl PeakMemory {
    /// Resets the peak (writes "5" to /proc/self/clear_refs) and notes the RSS.
    pub fn start() -> Self {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        PeakMemory {
            start_mib: status_kib("VmRSS:").map(|k| k / 1024.0),
        }
    }
    /// `(peak MiB, peak − start MiB)`, `None` off Linux.
    pub fn finish(&self) -> Option<(f64, f64)> {
        let peak = status_kib("VmHWM:")? / 1024.0;
        Some((peak, peak - self.start_mib?))
    }
}
