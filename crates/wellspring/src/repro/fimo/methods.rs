//! The approximate methods of FiMO §6.1 as the paper runs them (App. D.4):
//! their settings, which gradients each uses on a case (exact wherever they
//! fit), LiSSA's scale grid, and a score cache shared by `fimo-fig2` and
//! `fimo-fig3` (both compare the same scores with the same gold standard).

use std::time::Instant;

use serde::{Deserialize, Serialize};
use wellspring_attrib::{AttribError, ModelSource, ProjectionSpec};
use wellspring_core::{Dataset, ScoreMatrix};
use wellspring_models::TrainConfig;
use wellspring_report::CacheKey;

use crate::repro::method::MethodSpec;
use crate::repro::recipes::data_fingerprint;
use crate::repro::{ReproError, RunContext};

/// How a method's gradients are taken on a case (FiMO computes exact
/// gradients on its ~18k-parameter MLPs; we do wherever it fits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gradients {
    /// First-order (Grad-Dot/Cos, DataInf): exact while the `n × p` training
    /// gradients fit ([`MAX_PARAM_SPACE`]), else the method's default sketch.
    FirstOrder,
    /// Gauss-Newton influence (CG, LiSSA, Arnoldi), which forms the `p × p`
    /// curvature: exact while `p ≤` [`MAX_EXACT_CURVATURE`], else the sketch.
    Curvature,
    /// Parameter-space Hessian (LiSSA-H, matrix-free): always exact; skipped
    /// when the `n × p` training gradients do not fit.
    Exact,
    /// The method's own setting (EK-FAC: Kronecker factors of the exact
    /// gradients; TRAK: its random projection, which TRAK needs).
    Own,
}

/// One method of FiMO §6.1 with the paper's settings (App. D.4).
#[derive(Clone, Copy, Debug)]
pub(super) struct FimoMethod {
    /// Label, registry name and parameters.
    pub spec: MethodSpec,
    /// How its gradients are taken.
    pub gradients: Gradients,
    /// Whether its LiSSA scale is chosen from FiMO's grid.
    pub scale_grid: bool,
}

impl FimoMethod {
    const fn new(spec: MethodSpec, gradients: Gradients) -> Self {
        Self {
            spec,
            gradients,
            scale_grid: false,
        }
    }

    const fn lissa(spec: MethodSpec, gradients: Gradients) -> Self {
        Self {
            spec,
            gradients,
            scale_grid: true,
        }
    }
}

/// LiSSA as FiMO App. D.4 runs it (torch-influence): damping λ = 0.01, depth
/// 5000, one repeat; the scale from [`LISSA_SCALES`].
const LISSA_PARAMS: [(&str, &str); 3] = [("damping", "0.01"), ("depth", "5000"), ("repeats", "1")];
/// `--quick`: LiSSA recurses 200 steps.
const QUICK_LISSA: [(&str, &str); 1] = [("depth", "200")];
/// LiSSA-H: the same on the parameter-space Hessian.
const LISSA_H_PARAMS: [(&str, &str); 4] = [
    ("damping", "0.01"),
    ("depth", "5000"),
    ("repeats", "1"),
    ("curvature", "hessian"),
];

/// The approximate methods of FiMO §6.1 with the paper's settings (App.
/// D.4): CG and LiSSA damping λ = 0.01, LiSSA depth 5000 / repeat 1 / the
/// smallest non-diverging scale of {10, 20, 50, 100, 200, 500}; DataInf,
/// EK-FAC and TRAK with their defaults (DataInf's λ_l = 0.1 · mean ‖g_l‖² /
/// d_l is the DataInf repository's `lambda_const_param = 10`). Arnoldi is not
/// in FiMO's list; it runs with the same damping.
pub(super) const METHODS: [FimoMethod; 9] = [
    FimoMethod::new(
        MethodSpec::new("Grad-Dot", "grad-dot"),
        Gradients::FirstOrder,
    ),
    FimoMethod::new(
        MethodSpec::new("Grad-Cos", "grad-cos"),
        Gradients::FirstOrder,
    ),
    FimoMethod::new(
        MethodSpec::new("CG", "if-cg").params(&[("damping", "0.01")]),
        Gradients::Curvature,
    ),
    FimoMethod::lissa(
        MethodSpec::new("LiSSA", "if-lissa")
            .params(&LISSA_PARAMS)
            .quick_params(&QUICK_LISSA),
        Gradients::Curvature,
    ),
    FimoMethod::lissa(
        MethodSpec::new("LiSSA-H", "if-lissa")
            .params(&LISSA_H_PARAMS)
            .quick_params(&QUICK_LISSA),
        Gradients::Exact,
    ),
    FimoMethod::new(
        MethodSpec::new("Arnoldi", "if-arnoldi").params(&[("damping", "0.01")]),
        Gradients::Curvature,
    ),
    FimoMethod::new(MethodSpec::new("EK-FAC", "ekfac"), Gradients::Own),
    FimoMethod::new(MethodSpec::new("DataInf", "datainf"), Gradients::FirstOrder),
    FimoMethod::new(MethodSpec::new("TRAK-1", "trak"), Gradients::Own),
];

/// Largest `n × p` of unprojected training gradients a method may hold
/// (2²⁷ f32 entries, 512 MiB): every case but SST-2's 952 578-parameter
/// text model fits.
pub(super) const MAX_PARAM_SPACE: usize = 1 << 27;

/// Largest parameter count whose `p × p` Gauss-Newton matrix the influence
/// solvers may form (3.2 GB in f64): the Concrete, Energy and HELOC MLPs
/// (2×128 hidden, 17 793–19 842 parameters), not Adult's one-hot input layer
/// or the CNN.
const MAX_EXACT_CURVATURE: usize = 20_000;

/// The LiSSA scales of FiMO App. D.4, tried in turn: the smallest one whose
/// recursion does not diverge is used.
const LISSA_SCALES: [&str; 6] = ["10", "20", "50", "100", "200", "500"];

/// Longest a matrix-free LiSSA-H run may be projected to take per scale of
/// the grid (seconds): past it the method is skipped with the measured
/// estimate, as FiMO skipped CG on CIFAR-10 and SST-2 ("it took too long").
const LISSA_H_BUDGET_SECONDS: f64 = 3600.0;

/// LiSSA's minibatch (the solver's default, FiMO's torch-influence setting).
const LISSA_BATCH: usize = 64;

/// `Some(why)` when LiSSA-H on this case would exceed
/// [`LISSA_H_BUDGET_SECONDS`] per scale: `depth × m` minibatch Hessian-vector
/// products (one per test point per recursion step), each timed here on
/// the case's model (best of three).
fn lissa_h_over_budget(
    spec: &MethodSpec,
    source: &ModelSource,
    train: &Dataset,
    n_test: usize,
    budget_seconds: f64,
) -> Result<Option<String>, ReproError> {
    use wellspring_grad::{CrossEntropy, CurvatureParams, LinearOperator, Mse};
    let depth: usize = spec
        .params
        .iter()
        .find(|(k, _)| *k == "depth")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(5000);
    let params = match train.targets() {
        wellspring_core::Targets::Regression { .. } => CurvatureParams::new().loss(Mse),
        _ => CurvatureParams::new().loss(CrossEntropy),
    };
    let rows: Vec<usize> = (0..LISSA_BATCH.min(train.len())).collect();
    let fail = |e: wellspring_grad::GradError| {
        ReproError::Failed(format!(
            "{}: timing a Hessian-vector product: {e}",
            spec.label
        ))
    };
    let op = params
        .hessian(source.model.clone(), train, &rows[..], &source.device)
        .map_err(fail)?;
    let p = op.dim();
    let v: Vec<f64> = (0..p)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut out = vec![0.0; p];
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let clock = Instant::now();
        op.apply(&v, &mut out).map_err(fail)?;
        best = best.min(clock.elapsed().as_secs_f64());
    }
    let per_scale = best * (depth * n_test) as f64;
    Ok((per_scale > budget_seconds).then(|| {
        format!(
            "not run: one Hessian-vector product of the {p}-parameter model on a {}-point \
             minibatch took {:.0} ms here (central differences of two f64 gradients; burn has \
             no double backward), so depth {depth} × {n_test} test points would take about \
             {:.1} h per scale of the grid (budget {:.0} h); FiMO likewise skipped CG where \
             it took too long",
            rows.len(),
            best * 1e3,
            per_scale / 3600.0,
            budget_seconds / 3600.0,
        )
    }))
}

/// The projection `m` uses on a case of `n` training points and `p`
/// parameters (`Some(None)`: its own default; `None`: it cannot run). A
/// `--quick` run never forms a `p × p` curvature.
pub(super) fn projection_for(
    m: &FimoMethod,
    n: usize,
    p: usize,
    quick: bool,
) -> Option<Option<ProjectionSpec>> {
    let fits = n.saturating_mul(p) <= MAX_PARAM_SPACE;
    match m.gradients {
        Gradients::FirstOrder if fits => Some(Some(ProjectionSpec::Identity)),
        Gradients::Curvature if fits && !quick && p <= MAX_EXACT_CURVATURE => {
            Some(Some(ProjectionSpec::Identity))
        }
        Gradients::FirstOrder | Gradients::Curvature | Gradients::Own => Some(None),
        Gradients::Exact if fits => Some(Some(ProjectionSpec::Identity)),
        Gradients::Exact => None,
    }
}

/// How a row's gradients read in the report.
pub(super) fn projection_label(spec: &MethodSpec, p: Option<ProjectionSpec>) -> String {
    match p.or(spec.info().ok().and_then(|i| i.caps.default_projection)) {
        Some(ProjectionSpec::Identity) => "exact".to_string(),
        Some(p) => format!("{p} (sketch)"),
        None => "exact (Kronecker factors)".to_string(),
    }
}

/// `spec`'s scores on the case, the seconds of the fit + attribute that
/// produced them and a note (the LiSSA scale used), or why it could not run. LiSSA follows FiMO App. D.4: the
/// scales of [`LISSA_SCALES`] are tried from the smallest, the first whose
/// recursion does not diverge is used (a note says which); the time is that
/// run's.
fn compute(
    ctx: &RunContext,
    m: &FimoMethod,
    spec: &MethodSpec,
    source: &ModelSource,
    train: &Dataset,
    test: &Dataset,
) -> Result<Scored, String> {
    let opts = spec.options(ctx.seed_for(&format!("fimo.{}", spec.name)));
    let fit_attribute = |opts: &wellspring_attrib::MethodOptions| {
        spec.build(opts)
            .map_err(|e| format!("not available: {e}"))?
            .fit_dyn(source, train)
            .and_then(|fitted| fitted.attribute(test))
            .map_err(Scoring::Attrib)
    };
    if !m.scale_grid {
        let clock = Instant::now();
        return match fit_attribute(&opts) {
            Ok(s) => Ok(Scored::new(s, clock.elapsed().as_secs_f64(), None)),
            Err(Scoring::Attrib(e)) => Err(e.to_string()),
            Err(Scoring::Unavailable(why)) => Err(why),
        };
    }
    let mut diverged = Vec::new();
    for scale in LISSA_SCALES {
        let clock = Instant::now();
        match fit_attribute(&opts.clone().param("scale", scale)) {
            Ok(s) => {
                let note = format!(
                    "{}: scale {scale}, the smallest of FiMO's grid {{{}}} that did not \
                     diverge{}",
                    spec.label,
                    LISSA_SCALES.join(", "),
                    if diverged.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} diverged)", diverged.join(", "))
                    }
                );
                return Ok(Scored::new(s, clock.elapsed().as_secs_f64(), Some(note)));
            }
            Err(Scoring::Attrib(AttribError::Diverged { .. })) => diverged.push(scale),
            Err(Scoring::Attrib(e)) => return Err(e.to_string()),
            Err(Scoring::Unavailable(why)) => return Err(why),
        }
    }
    Err(format!(
        "diverged at every scale of FiMO's grid {{{}}}",
        LISSA_SCALES.join(", ")
    ))
}

/// Why a method produced no scores.
enum Scoring {
    /// The registry cannot build it.
    Unavailable(String),
    /// Fitting or attributing failed.
    Attrib(AttribError),
}

impl From<String> for Scoring {
    fn from(why: String) -> Self {
        Scoring::Unavailable(why)
    }
}

/// The methods' settings, for the reports.
pub(super) const METHOD_SETTINGS: &str = "FiMO App. D.4: CG and LiSSA damping λ = 0.01 \
    (absolute; CG at most 100 iterations, tolerance 1e-6); LiSSA and LiSSA-H depth 5000, \
    repeat 1, minibatch 64, scale = the smallest of {10, 20, 50, 100, 200, 500} that does not \
    diverge; Arnoldi (not in FiMO's list) rank 100, 200 Lanczos iterations, λ = 0.01; DataInf \
    λ_l = 0.1 · mean_i ‖g_il‖² / d_l (the DataInf repository's lambda_const_param = 10); \
    EK-FAC damping 0.1 × the mean eigenvalue (kronfluence's default); TRAK-1 with its own \
    random projection. Gradients: exact (unprojected, as FiMO) wherever they fit: the \
    first-order methods while the n × p training gradients fit in 2^27 entries, the \
    Gauss-Newton solvers (CG, LiSSA, Arnoldi), which form the p × p curvature, up to 20 000 \
    parameters; otherwise Kronecker-512 sketches, named per row.";

/// A method's scores as the cache keeps them, with their seconds and note.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Scored {
    n_train: usize,
    n_test: usize,
    /// Row-major `n_train × n_test`.
    values: Vec<f32>,
    /// Seconds of the fit + attribute that produced them (the first time).
    pub seconds: f64,
    /// The LiSSA scale used, where one was chosen.
    pub note: Option<String>,
}

impl Scored {
    fn new(s: ScoreMatrix, seconds: f64, note: Option<String>) -> Self {
        Scored {
            n_train: s.n_train(),
            n_test: s.n_test(),
            values: s.as_slice().to_vec(),
            seconds,
            note,
        }
    }

    /// The score matrix.
    pub fn scores(&self) -> Result<ScoreMatrix, ReproError> {
        ScoreMatrix::from_vec(self.n_train, self.n_test, self.values.clone())
            .map_err(|e| ReproError::Failed(format!("cached FiMO scores: {e}")))
    }
}

/// What the final model of a case was trained on and how (its cache key
/// fields).
pub(super) struct ModelKey<'a> {
    /// The recipe's name.
    pub recipe: &'static str,
    /// Training set.
    pub train: &'a Dataset,
    /// Test points.
    pub test: &'a Dataset,
    /// Training settings (seed included).
    pub train_config: &'a TrainConfig,
}

/// `spec`'s scores on the case (see [`compute`]), or why it could not run,
/// from the run's cache when an identical run produced them before
/// (`fimo-fig3` after `fimo-fig2`).
pub(super) fn score(
    ctx: &RunContext,
    m: &FimoMethod,
    spec: &MethodSpec,
    source: &ModelSource,
    model: &ModelKey<'_>,
) -> Result<Result<Scored, String>, ReproError> {
    let key = CacheKey::new("fimo-scores")
        .field("recipe", model.recipe)
        .field("train", &data_fingerprint(model.train))
        .field("test", &data_fingerprint(model.test))
        .field("train_config", model.train_config)
        .field("method", &format!("{spec:?}"))
        .field("scale_grid", &m.scale_grid)
        .field("seed", &ctx.seed_for(&format!("fimo.{}", spec.name)))
        .field("version", env!("CARGO_PKG_VERSION"));
    if m.gradients == Gradients::Exact
        && m.scale_grid
        && !ctx.quick
        && !ctx.cache.contains(&key, "json")?
    {
        // not cached: a skip for time is decided on this machine, never stored
        if let Some(why) = lissa_h_over_budget(
            spec,
            source,
            model.train,
            model.test.len(),
            LISSA_H_BUDGET_SECONDS,
        )? {
            return Ok(Err(why));
        }
    }
    ctx.cache
        .get_or_compute_json(&key, || -> Result<_, ReproError> {
            Ok(compute(ctx, m, spec, source, model.train, model.test))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellspring_core::{Features, Targets};
    use wellspring_models::{Model, ModelConfig};

    /// The LiSSA-H time check times a real product: no budget passes, a zero
    /// budget skips with the measured estimate in the reason.
    #[test]
    fn lissa_h_is_skipped_only_past_its_time_budget() {
        let device = crate::repro::recipes::device();
        let model = Model::new(ModelConfig::LogReg { d_in: 3, n_out: 2 }, 0, &device).unwrap();
        let source = ModelSource::new(model, device);
        let train = Dataset::new(
            "train",
            Features::Dense {
                values: (0..30).map(|i| (i as f32 * 0.37).sin()).collect(),
                shape: vec![3],
            },
            Targets::Classes {
                labels: (0..10).map(|i| i % 2).collect(),
                n_classes: 2,
            },
        )
        .unwrap();
        let spec = METHODS[4].spec;
        assert_eq!(spec.label, "LiSSA-H");
        let fits = lissa_h_over_budget(&spec, &source, &train, 4, f64::INFINITY).unwrap();
        assert_eq!(fits, None);
        let why = lissa_h_over_budget(&spec, &source, &train, 4, 0.0)
            .unwrap()
            .expect("a zero budget skips");
        assert!(why.contains("8-parameter model"), "{why}");
        assert!(why.contains("depth 5000 × 4 test points"), "{why}");
    }
}
