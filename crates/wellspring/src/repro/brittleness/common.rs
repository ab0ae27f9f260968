//! Shared setup of the data-brittleness targets (brittleness paper: §2.1,
//! §3, §4.4, App. A.2/A.6, Tables 1–2): `brittleness`, `brittleness-lds`,
//! `brittleness-transfer`. A small MNIST model (CPU stand-in for CIFAR-10
//! ResNet-9), class-balanced test points, the paper's methods (ESVM and l2 on
//! supervised penultimate features and on SimCLR features, TRAK, Grad-Cos,
//! IF), and data removal / mislabel support by bisection with retrained
//! models (`wellspring_eval::Brittleness`).

use std::time::Instant;

use wellspring_attrib::methods::esvm::EsvmParams;
use wellspring_attrib::methods::l2::L2Params;
use wellspring_attrib::methods::trak::{EnsembleParams, train_ensemble};
use wellspring_attrib::{Attributor, FeatureSpace, FittedAttributor, ModelSource};
use wellspring_core::{Dataset, ScoreMatrix};
use wellspring_data::sample;
use wellspring_eval::{Brittleness, BrittlenessResult, CandidatePool, ModelRetrainer};
use wellspring_models::{Model, ModelConfig, SimClr, TrainConfig, evaluate};

use crate::repro::method::MethodSpec;
use crate::repro::recipes::{MNIST5K_MLP, device, load_data, train_cached};
use crate::repro::{ReproError, RunContext};

/// Seed and cache namespace shared by the three brittleness targets: they
/// attribute the same model with the same methods and search the same
/// supports, so whichever runs second reuses the first one's retrained
/// models from the cache.
const SHARED: &str = "brittleness";

/// Sizes of one brittleness experiment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    /// Training points.
    pub n_train: usize,
    /// Test points per class.
    pub per_class: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Bisection budget.
    pub budget: usize,
    /// Largest support searched.
    pub max_k: usize,
    /// Models per oracle check.
    pub models: usize,
    /// TRAK ensemble size.
    pub trak_models: usize,
    /// SimCLR epochs.
    pub ssl_epochs: usize,
    /// CG iterations of the influence function.
    pub cg_iters: usize,
    /// Test points of the linear-scan comparison.
    pub scan_points: usize,
}

/// Quick or full sizes (full: scaled down from the paper's 100 test points,
/// budget 7, 5 models, N_max 1280, to fit a 2-core CPU). `max_k` stays below
/// the ~100 same-class training points each digit has among the first 1000,
/// so the removal search is not clamped by the candidate pool.
pub(super) fn sizes(ctx: &RunContext) -> Sizes {
    if ctx.quick {
        Sizes {
            n_train: 400,
            per_class: 1,
            epochs: 4,
            budget: 3,
            max_k: 32,
            models: 1,
            trak_models: 2,
            ssl_epochs: 1,
            cg_iters: 20,
            scan_points: 2,
        }
    } else {
        Sizes {
            n_train: 1000,
            per_class: 3,
            epochs: 8,
            budget: 7,
            max_k: 80,
            models: 3,
            trak_models: 10,
            ssl_epochs: 10,
            cg_iters: 100,
            scan_points: 4,
        }
    }
}

/// The data, model and retraining harness.
pub(super) struct Setup {
    /// Training set.
    pub train: Dataset,
    /// Class-balanced test points.
    pub test: Dataset,
    /// Accuracy of the attributed model on the whole test split.
    pub test_accuracy: f64,
    /// The attributed model.
    pub model: Model,
    /// Its architecture.
    pub config: ModelConfig,
    /// Its training settings (also of every retrained model).
    pub train_config: TrainConfig,
}

/// `per_class` test points of each class that `ok` accepts, in test-set
/// order (the paper's ImageNet protocol: points the model gets right, so a
/// support of 0 does not inflate the CDF).
fn balanced(test: &Dataset, per_class: usize, ok: &[bool]) -> Result<Dataset, ReproError> {
    let labels = test.labels_checked()?;
    let c = test.n_classes().unwrap_or(0);
    let mut taken = vec![0usize; c];
    let mut idx = Vec::new();
    for (i, &y) in labels.iter().enumerate() {
        if ok.get(i).copied().unwrap_or(false) && taken[y] < per_class {
            taken[y] += 1;
            idx.push(i);
        }
    }
    Ok(test.select(&idx)?)
}

/// Trains (cached) the MNIST MLP (dattri's 784-128-64-10, recipe
/// `mnist5k-mlp`) on the first `n_train` digits for `epochs` epochs; the
/// three targets share it.
pub(super) fn setup(ctx: &RunContext, s: &Sizes) -> Result<Setup, ReproError> {
    let rec = &MNIST5K_MLP;
    let mut split = load_data(ctx, rec)?;
    split.train = sample::first_n(&split.train, s.n_train.min(split.train.len()))?;
    let config = rec.model_config(&split.train)?;
    let seed = ctx.seed_for(&format!("{SHARED}.model"));
    let mut train_config = rec.train_config(ctx.quick, seed);
    train_config.epochs = s.epochs;
    // small batches: a few hundred SGD steps on the small training subset
    train_config.batch_size = 32;
    train_config.lr = 0.05;
    let (model, _) = train_cached(
        ctx,
        &format!("{SHARED}-{}", rec.name),
        &split.train,
        &config,
        &train_config,
        seed,
    )?;
    let eval = evaluate(&model, &split.test, &device())?;
    let correct = eval.correct().unwrap_or(&[]).to_vec();
    let test = balanced(&split.test, s.per_class, &correct)?;
    Ok(Setup {
        train: split.train,
        test,
        test_accuracy: eval.accuracy().unwrap_or(f64::NAN),
        model,
        config,
        train_config,
    })
}

impl Setup {
    /// The retraining harness of the support checks (cached).
    pub fn retrainer(&self, ctx: &RunContext) -> Result<ModelRetrainer, ReproError> {
        ctx.retrainer(
            &self.train,
            &self.test,
            self.config.clone(),
            self.train_config.clone(),
        )
    }
}

/// The paper's methods, in the tables' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Method {
    /// ESVM on the attributed model's penultimate features.
    EsvmSupervised,
    /// ℓ2 distance of the penultimate features.
    L2Supervised,
    /// ESVM on SimCLR features (the paper's baseline).
    EsvmSsl,
    /// ℓ2 distance of SimCLR features.
    L2Ssl,
    /// TRAK over an ensemble of models.
    Trak,
    /// Cosine of loss gradients.
    GradCos,
    /// Influence function by conjugate gradient.
    If,
}

impl Method {
    /// The support search's candidate pool for this method. The paper
    /// restricts its similarity methods (ESVM, l2) to the test point's class
    /// (§3 "Sign Estimation", App. A.4) and explicitly does not restrict
    /// Grad-Cos (App. A.5.1); TRAK and IF rank every point by their own
    /// signed scores, as in the TRAK / datamodels evaluations.
    pub fn pool(self) -> CandidatePool {
        match self {
            Method::EsvmSupervised | Method::L2Supervised | Method::EsvmSsl | Method::L2Ssl => {
                CandidatePool::SameClass
            }
            Method::Trak | Method::GradCos | Method::If => CandidatePool::All,
        }
    }
}

/// How a pool reads in a report.
pub(super) fn pool_label(p: CandidatePool) -> &'static str {
    match p {
        CandidatePool::SameClass => "same class",
        CandidatePool::All => "all points",
    }
}

/// `mean ± s.e.` of a support AUC over its evaluated test points.
pub(super) fn auc_cell(r: &BrittlenessResult) -> wellspring_report::Cell {
    wellspring_report::Cell::text(format!("{:.3} ± {:.3}", r.cdf.auc, r.cdf.auc_std_err))
}

/// Grad-Cos (Kronecker-512 loss gradients).
const GRAD_COS: MethodSpec = MethodSpec::new("Grad-Cos", "grad-cos");
/// IF: conjugate gradient on the damped Gauss-Newton (explicit inversion is
/// only for tiny models).
const IF_CG: MethodSpec = MethodSpec::new("IF (if-cg)", "if-cg");
/// TRAK, ensembled over `Sizes::trak_models` models.
const TRAK: MethodSpec = MethodSpec::new("TRAK", "trak");

/// One method's scores and the seconds they took.
pub(super) struct Scored {
    /// Row label.
    pub label: String,
    /// Which method.
    pub method: Method,
    /// Models the scores come from (TRAK's ensemble; 1 otherwise).
    pub models: usize,
    /// `n_train × n_test`.
    pub scores: ScoreMatrix,
    /// Seconds of fit + attribute (plus SimCLR / ensemble training where used).
    pub seconds: f64,
}

/// `scores` as a row, timed from `t` plus `extra` seconds.
fn scored(
    label: impl Into<String>,
    method: Method,
    models: usize,
    (t, extra): (Instant, f64),
    scores: Result<ScoreMatrix, impl Into<ReproError>>,
) -> Result<Scored, ReproError> {
    let scores = scores.map_err(Into::into)?;
    Ok(Scored {
        label: label.into(),
        method,
        models,
        scores,
        seconds: t.elapsed().as_secs_f64() + extra,
    })
}

/// The paper's methods on `s`: ESVM and l2 on the supervised penultimate
/// features and on SimCLR features, TRAK (M models), Grad-Cos and IF.
pub(super) fn score_all(
    ctx: &RunContext,
    s: &Setup,
    sz: &Sizes,
) -> Result<Vec<Scored>, ReproError> {
    let source =
        ModelSource::new(s.model.clone(), device()).with_train_config(s.train_config.clone());
    let mut out = feature_methods(ctx, s, sz, &source)?;
    out.extend(gradient_methods(ctx, s, sz, &source)?);
    Ok(out)
}

/// ESVM and l2 on the supervised penultimate features, then on SimCLR
/// features (the paper's main claim: self-supervised beat supervised).
fn feature_methods(
    ctx: &RunContext,
    s: &Setup,
    sz: &Sizes,
    source: &ModelSource,
) -> Result<Vec<Scored>, ReproError> {
    let mut out = Vec::new();
    let t = Instant::now();
    out.push(scored(
        "ESVM (supervised features)",
        Method::EsvmSupervised,
        1,
        (t, 0.0),
        EsvmParams::new()
            .fit(source, &s.train)
            .and_then(|f| f.attribute(&s.test)),
    )?);
    let t = Instant::now();
    out.push(scored(
        "l2 (supervised features)",
        Method::L2Supervised,
        1,
        (t, 0.0),
        L2Params::new()
            .fit(source, &s.train)
            .and_then(|f| f.attribute(&s.test)),
    )?);
    let t = Instant::now();
    let ssl = SimClr::params(s.config.clone())
        .epochs(sz.ssl_epochs)
        .seed(ctx.seed_for(&format!("{SHARED}.simclr")))
        .fit(&s.train, &device())?;
    let ssl_s = t.elapsed().as_secs_f64();
    let space = FeatureSpace::Encoder(Box::new(ssl.encoder.clone()));
    let t = Instant::now();
    out.push(scored(
        "ESVM (SimCLR features)",
        Method::EsvmSsl,
        1,
        (t, ssl_s),
        EsvmParams::new()
            .features(space.clone())
            .fit(source, &s.train)
            .and_then(|f| f.attribute(&s.test)),
    )?);
    let t = Instant::now();
    out.push(scored(
        "l2 (SimCLR features)",
        Method::L2Ssl,
        1,
        (t, ssl_s),
        L2Params::new()
            .features(space)
            .fit(source, &s.train)
            .and_then(|f| f.attribute(&s.test)),
    )?);
    Ok(out)
}

/// TRAK with an ensemble, Grad-Cos and IF, through the registry.
fn gradient_methods(
    ctx: &RunContext,
    s: &Setup,
    sz: &Sizes,
    source: &ModelSource,
) -> Result<Vec<Scored>, ReproError> {
    let seed = ctx.seed_for(&format!("{SHARED}.method"));
    let run = |m: &MethodSpec, src: &ModelSource, opts| {
        m.build(&opts)?
            .fit_dyn(src, &s.train)
            .and_then(|f| f.attribute(&s.test))
            .map_err(ReproError::from)
    };
    let mut out = Vec::new();
    let t = Instant::now();
    let members = train_ensemble(
        source,
        &s.train,
        &EnsembleParams::new(sz.trak_models).seed(ctx.seed_for(&format!("{SHARED}.trak"))),
        Some(&ctx.cache),
    )?;
    let trak_src = source.clone().with_ensemble(members);
    let models_key = TRAK
        .info()?
        .caps
        .ensemble_param
        .ok_or_else(|| ReproError::Failed(format!("{} takes no ensemble", TRAK.name)))?;
    let opts = TRAK
        .options(seed)
        .param(models_key, sz.trak_models.to_string());
    out.push(scored(
        format!("TRAK ({})", sz.trak_models),
        Method::Trak,
        sz.trak_models,
        (t, 0.0),
        run(&TRAK, &trak_src, opts),
    )?);
    let t = Instant::now();
    out.push(scored(
        GRAD_COS.label,
        Method::GradCos,
        1,
        (t, 0.0),
        run(&GRAD_COS, source, GRAD_COS.options(seed)),
    )?);
    let t = Instant::now();
    let opts = IF_CG
        .options(seed)
        .param("max-iter", sz.cg_iters.to_string());
    out.push(scored(
        IF_CG.label,
        Method::If,
        1,
        (t, 0.0),
        run(&IF_CG, source, opts),
    )?);
    Ok(out)
}

/// Removal or mislabel support of every test point for `m`'s scores, over
/// `m`'s candidate pool ([`Method::pool`]).
pub(super) fn support(
    ctx: &RunContext,
    m: &Scored,
    retrainer: &ModelRetrainer,
    sz: &Sizes,
    mislabel: bool,
) -> Result<BrittlenessResult, ReproError> {
    let b = if mislabel {
        Brittleness::mislabel()
    } else {
        Brittleness::removal()
    };
    b.pool(m.method.pool())
        .bisection(sz.budget)
        .max_k(sz.max_k)
        .n_models(sz.models)
        .seed(ctx.seed_for(&format!("{SHARED}.support")))
        .run(&m.scores, retrainer)
        .map_err(ReproError::from)
}

/// Fixed sizes of the linear-scan comparison (Ilyas et al. 2022 probe a few
/// discrete sizes): `max_k/2^j`, doubling up to `max_k`, at most 7 of them.
pub(super) fn scan_sizes(max_k: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..7)
        .rev()
        .map(|j| max_k >> j)
        .filter(|&k| k >= 1)
        .collect();
    v.dedup();
    v
}

/// Removal support of the first `sz.scan_points` test points by a linear
/// scan over [`scan_sizes`] (the same retrainer and seed as the bisection,
/// so shared probes come from the cache).
pub(super) fn support_scan(
    ctx: &RunContext,
    m: &Scored,
    retrainer: &ModelRetrainer,
    sz: &Sizes,
) -> Result<BrittlenessResult, ReproError> {
    let points: Vec<usize> = (0..sz.scan_points.min(m.scores.n_test())).collect();
    Brittleness::removal()
        .pool(m.method.pool())
        .linear_scan(scan_sizes(sz.max_k))
        .max_k(sz.max_k)
        .n_models(sz.models)
        .test_points(points)
        .seed(ctx.seed_for(&format!("{SHARED}.support")))
        .run(&m.scores, retrainer)
        .map_err(ReproError::from)
}

/// Keeps, per test column, the `frac` share of scores largest in magnitude
/// (at least one) and zeroes the rest (brittleness paper §5.1, the LDS
/// variant of its baseline).
pub(super) fn sparsify_top(scores: &ScoreMatrix, frac: f64) -> ScoreMatrix {
    let (n, m) = scores.shape();
    let keep = ((n as f64 * frac).ceil() as usize).clamp(1, n.max(1));
    let mut out = ScoreMatrix::zeros(n, m);
    for j in 0..m {
        let abs: Vec<f32> = scores.column(j).iter().map(|v| v.abs()).collect();
        for i in wellspring_core::top_k_of(&abs, keep) {
            out.set(i, j, scores.get(i, j));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{scan_sizes, sparsify_top};
    use wellspring_core::ScoreMatrix;

    #[test]
    fn sparsify_keeps_largest_magnitudes_per_column() {
        // 4 train x 2 test, train-major
        let s = ScoreMatrix::from_vec(4, 2, vec![1.0, -4.0, -3.0, 1.0, 0.5, 2.0, 2.0, 0.1])
            .expect("shape");
        let t = sparsify_top(&s, 0.5);
        assert_eq!(t.column(0), vec![0.0, -3.0, 0.0, 2.0]);
        assert_eq!(t.column(1), vec![-4.0, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn scan_sizes_double_up_to_max() {
        assert_eq!(scan_sizes(640), vec![10, 20, 40, 80, 160, 320, 640]);
        assert_eq!(scan_sizes(4), vec![1, 2, 4]);
        let s = scan_sizes(1280);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && *s.last().unwrap() == 1280);
    }
}
