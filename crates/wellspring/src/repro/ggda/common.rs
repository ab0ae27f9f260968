//! Shared machinery of the GGDA downstream-task targets (Ley et al. 2024,
//! §5.3–5.4): `ggda-table1`, `ggda-pruning`, `ggda-noisy`, `ggda-retrain`.
//! A model trained on the full (possibly label-noised) training set, the
//! attribution methods GGDA compares (TracIn, Inf. (Fisher), Inf. (LiSSA),
//! TRAK) in their per-point (DA) and group (GGDA) forms, importances summed
//! over the test points, and the retraining harness of `wellspring-eval`.

use std::time::Instant;

use wellspring_attrib::methods::trak::{EnsembleParams, train_ensemble};
use wellspring_attrib::{FittedAttributor, GrouperKind, GroupingSpec, ModelSource, ProjectionSpec};
use wellspring_core::{Dataset, Grouping};
use wellspring_data::sample;
use wellspring_eval::{ModelRetrainer, RemovalPoint};
use wellspring_group::GroupAmount;
use wellspring_models::{Model, ModelConfig, TrainConfig};
use wellspring_report::Cell;

use crate::repro::method::MethodSpec;
use crate::repro::recipes::{Recipe, device, load_data, train_cached};
use crate::repro::{ReproError, RunContext};

/// GGDA App. B.3's random-projection width of Inf. (Fisher) and TRAK on MNIST.
pub(super) const MNIST_PROJECTION: ProjectionSpec = ProjectionSpec::Rademacher { dim: 32 };
/// ... and on HELOC.
pub(super) const HELOC_PROJECTION: ProjectionSpec = ProjectionSpec::Rademacher { dim: 16 };

/// TracIn (final checkpoint; exact gradients on small models, else
/// Kronecker-512 loss gradients: GGDA does not project TracIn).
pub(super) const TRACIN: MethodSpec = MethodSpec::new("TracIn", "tracin");
/// Influence with the empirical Fisher; groups use GGDA's batched Fisher;
/// GGDA App. B.3's projection to 32 dimensions (MNIST; HELOC: [`INF_FISHER_HELOC`]).
pub(super) const INF_FISHER: MethodSpec = MethodSpec::new("Inf. (Fisher)", "if-explicit")
    .params(&[("curvature", "fisher"), ("group-kernel", "batched")])
    .projection(MNIST_PROJECTION);
/// Inf. (Fisher) with HELOC's projection to 16 dimensions.
pub(super) const INF_FISHER_HELOC: MethodSpec = INF_FISHER.projection(HELOC_PROJECTION);
/// Influence by LiSSA on the Gauss-Newton with GGDA App. B.3's values:
/// damping 0.001, repeat 20, depth 200, scale 50 (`--quick`: 2 repeats of
/// depth 50).
pub(super) const INF_LISSA: MethodSpec = MethodSpec::new("Inf. (LiSSA)", "if-lissa")
    .params(&[
        ("damping", "0.001"),
        ("repeats", "20"),
        ("depth", "200"),
        ("scale", "50"),
    ])
    .quick_params(&[("repeats", "2"), ("depth", "50")]);
/// Influence by conjugate gradient on the Gauss-Newton.
pub(super) const INF_CG: MethodSpec = MethodSpec::new("Inf. (CG)", "if-cg");
/// Gradient dot product (Kronecker-512 loss gradients).
pub(super) const GRAD_DOT: MethodSpec = MethodSpec::new("Grad-Dot", "grad-dot");
/// TRAK (M = 1 unless an ensemble is given); groups use GGDA's batched
/// Fisher; GGDA App. B.3's projection to 32 dimensions (MNIST).
pub(super) const TRAK: MethodSpec = MethodSpec::new("TRAK", "trak")
    .params(&[("group-kernel", "batched")])
    .projection(MNIST_PROJECTION);

/// The method as a run uses it: in `--quick`, a wide dense projection
/// (more than 64 dimensions, given or the method's default) becomes
/// Kronecker-512 (a dense 109k × 512 projection costs seconds per call) and
/// the `--quick` parameters apply (LiSSA: 2 repeats of depth 50).
pub(super) fn for_run(m: MethodSpec, quick: bool) -> Result<MethodSpec, ReproError> {
    if !quick {
        return Ok(m);
    }
    let projection = m.projection.or(m.info()?.caps.default_projection);
    let wide_dense = matches!(
        projection,
        Some(ProjectionSpec::Rademacher { dim } | ProjectionSpec::Gaussian { dim }) if dim > 64
    );
    Ok(MethodSpec {
        projection: if wide_dense {
            Some(ProjectionSpec::Kronecker { dim: 512 })
        } else {
            m.projection
        },
        quick: true,
        ..m
    })
}

/// Note for reports of a `--quick` run that used [`for_run`].
pub(super) const QUICK_METHODS_NOTE: &str = "--quick: LiSSA with 2 repeats of depth 50 \
    instead of 20 of depth 200, to keep the run to seconds.";

/// The methods' settings (GGDA App. B.3), for the reports.
pub(super) const METHOD_SETTINGS: &str = "GGDA App. B.3: Inf. (Fisher) and TRAK on random \
    (Rademacher) projections to 32 dimensions on MNIST, 16 on HELOC; Inf. (LiSSA) damping \
    0.001, repeat 20, depth 200, scale 50 (Gauss-Newton, minibatch 64); TracIn from the final \
    checkpoint. GGDA projects only Fisher and TRAK: TracIn, LiSSA, CG and Grad-Dot use exact \
    gradients on HELOC's logistic regression and Kronecker-512 sketches of the 109 386 \
    gradients of the MNIST MLP (exact ones would need 5000 × 109 386 floats per method).";

/// Models with at most this many parameters are attributed without projection.
pub(super) const SMALL_MODEL: usize = 2048;

/// How much of the recipe's data and training one experiment uses.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sizes {
    /// Training points (first n; `None` = all).
    pub n_train: Option<usize>,
    /// Test points (first n; `None` = all).
    pub n_test: Option<usize>,
    /// Training epochs, if not the recipe's.
    pub epochs: Option<usize>,
    /// Share of training labels to flip (label-noise experiments).
    pub noise: Option<f64>,
}

/// The trained model, data and retraining harness of one GGDA experiment.
pub(super) struct Setup {
    /// Training set (noisy labels where asked).
    pub train: Dataset,
    /// Test set (clean).
    pub test: Dataset,
    /// Model trained on `train`.
    pub model: Model,
    /// Training settings (also of every retrained model).
    pub train_config: TrainConfig,
    /// Architecture.
    pub config: ModelConfig,
    /// Flipped training points (label-noise experiments).
    pub flipped: Vec<usize>,
}

/// Loads `rec`'s data (first `n_train` / `n_test` points), optionally flips
/// `noise` of the training labels, and trains (cached) with `epochs` epochs
/// when given.
pub(super) fn setup(
    ctx: &RunContext,
    target: &'static str,
    rec: &'static Recipe,
    sizes: Sizes,
) -> Result<Setup, ReproError> {
    let mut split = load_data(ctx, rec)?;
    if let Some(n) = sizes.n_train {
        split.train = sample::first_n(&split.train, n.min(split.train.len()))?;
    }
    if let Some(n) = sizes.n_test {
        split.test = sample::first_n(&split.test, n.min(split.test.len()))?;
    }
    let mut flipped = Vec::new();
    if let Some(share) = sizes.noise {
        let (noisy, f) = wellspring_data::flip_labels(
            &split.train,
            share,
            ctx.seed_for(&format!("{target}.noise")),
        )?;
        split.train = noisy;
        flipped = f;
    }
    let config = rec.model_config(&split.train)?;
    let seed = ctx.seed_for(&format!("{target}.model"));
    let mut train_config = rec.train_config(ctx.quick, seed);
    if let Some(e) = sizes.epochs {
        train_config.epochs = e;
    }
    let (model, _) = train_cached(
        ctx,
        &format!("{target}-{}", rec.name),
        &split.train,
        &config,
        &train_config,
        seed,
    )?;
    Ok(Setup {
        train: split.train,
        test: split.test,
        model,
        train_config,
        config,
        flipped,
    })
}

impl Setup {
    /// The retraining harness (cached in the run's cache).
    pub fn retrainer(&self, ctx: &RunContext) -> Result<ModelRetrainer, ReproError> {
        ctx.retrainer(
            &self.train,
            &self.test,
            self.config.clone(),
            self.train_config.clone(),
        )
    }

    /// The attribution source.
    pub fn source(&self) -> ModelSource {
        ModelSource::new(self.model.clone(), device()).with_train_config(self.train_config.clone())
    }

    /// A seeded grouping of the training set by `kind` into groups of about
    /// `size` points.
    pub fn grouping(
        &self,
        ctx: &RunContext,
        target: &'static str,
        kind: GrouperKind,
        size: usize,
    ) -> Result<Grouping, ReproError> {
        let spec = GroupingSpec {
            kind,
            amount: GroupAmount::Size(size),
        };
        Ok(spec
            .build(
                &self.model,
                &self.train,
                &device(),
                ctx.seed_for(&format!("{target}.groups")),
            )?
            .grouping)
    }

    /// Fits `m` on the training set (exact gradients for small models such
    /// as HELOC's 48-parameter logistic regression, unless `m` names its
    /// projection, as GGDA's Fisher and TRAK do); returns the fitted method
    /// and the seconds it took.
    pub fn fit(
        &self,
        ctx: &RunContext,
        target: &str,
        m: MethodSpec,
    ) -> Result<(Box<dyn FittedAttributor>, f64), ReproError> {
        self.fit_on(ctx, target, m, &self.source())
    }

    /// [`Setup::fit`] with an ensemble of `models` members on random halves
    /// of the training set (TRAK's subsampling fraction 0.5, GGDA App. B.3)
    /// when `m` takes an ensemble and `models > 1`; the seconds include
    /// training the members.
    pub fn fit_ensemble(
        &self,
        ctx: &RunContext,
        target: &str,
        m: MethodSpec,
        models: usize,
    ) -> Result<(Box<dyn FittedAttributor>, f64), ReproError> {
        let Some(key) = m.info()?.caps.ensemble_param.filter(|_| models > 1) else {
            return self.fit(ctx, target, m);
        };
        let t = Instant::now();
        let members = train_ensemble(
            &self.source(),
            &self.train,
            &EnsembleParams::new(models).seed(ctx.seed_for(&format!("{target}.ensemble"))),
            Some(&ctx.cache),
        )?;
        let source = self.source().with_ensemble(members);
        let opts = m
            .options(ctx.seed_for(&format!("{target}.method")))
            .param(key, models.to_string());
        let fitted = m.build(&opts)?.fit_dyn(&source, &self.train)?;
        Ok((fitted, t.elapsed().as_secs_f64()))
    }

    fn fit_on(
        &self,
        ctx: &RunContext,
        target: &str,
        m: MethodSpec,
        source: &ModelSource,
    ) -> Result<(Box<dyn FittedAttributor>, f64), ReproError> {
        let mut opts = m.options(ctx.seed_for(&format!("{target}.method")));
        if m.projection.is_none() && self.model.n_params() <= SMALL_MODEL {
            opts = opts.projection(ProjectionSpec::Identity);
        }
        let t = Instant::now();
        let fitted = m.build(&opts)?.fit_dyn(source, &self.train)?;
        Ok((fitted, t.elapsed().as_secs_f64()))
    }

    /// Importance of each training point (`grouping = None`, DA) or group
    /// (GGDA) under a fitted method: its scores summed over the test points,
    /// and the seconds of the attribution.
    pub fn scores(
        &self,
        fitted: &dyn FittedAttributor,
        grouping: Option<&Grouping>,
    ) -> Result<(Vec<f64>, f64), ReproError> {
        let t = Instant::now();
        let scores = match grouping {
            Some(g) => fitted.attribute_groups(g, &self.test),
            None => fitted.attribute(&self.test),
        }?;
        let secs = t.elapsed().as_secs_f64();
        let imp = (0..scores.n_train())
            .map(|i| scores.row(i).iter().map(|&v| v as f64).sum())
            .collect();
        Ok((imp, secs))
    }
}

/// `mean ± std` test accuracy (%) of a removal point.
pub(super) fn acc_cell(p: &RemovalPoint) -> Cell {
    match &p.accuracy {
        Some(s) => Cell::text(format!("{:.1} ± {:.1}", 100.0 * s.mean, 100.0 * s.std_dev)),
        None => Cell::text("n/a"),
    }
}

/// Mean test accuracy (%) of a removal point.
pub(super) fn acc_mean(p: &RemovalPoint) -> f64 {
    p.accuracy.as_ref().map_or(f64::NAN, |s| 100.0 * s.mean)
}
