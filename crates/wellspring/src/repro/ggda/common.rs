//! Shared machinery of the GGDA downstream-task targets (Ley et al. 2024,
//! §5.3–5.4): `ggda-table1`, `ggda-pruning`, `ggda-noisy`, `ggda-retrain`.
//! A model trained on the full (possibly label-noised) training set, the
//! attribution methods GGDA compares (TracIn, Inf. (Fisher), Inf. (LiSSA),
//! TRAK) in their per-point (DA) and group (GGDA) forms, importances summed
//! over the test points, and the retraining harness of `wellspring-eval`.

use std::time::Instant;

use wellspring_attrib::{
    AttribError, FittedAttributor, GroupingSpec, MethodOptions, ModelSource, ProjectionSpec,
    by_name,
};
use wellspring_core::{Dataset, Grouping};
use wellspring_data::sample;
use wellspring_eval::{ModelRetrainer, RemovalPoint};
use wellspring_models::{Model, ModelConfig, TrainConfig};
use wellspring_report::Cell;

use crate::repro::recipes::{device, load_data, recipe, train_cached};
use crate::repro::{ReproError, RunContext};

/// One attribution method as GGDA names it, with our registry settings.
#[derive(Clone, Copy, Debug)]
pub(super) struct GMethod {
    /// GGDA's name.
    pub label: &'static str,
    /// Registry name.
    pub name: &'static str,
    /// Registry parameters.
    pub params: &'static [(&'static str, &'static str)],
    /// Projection (`None`: the method's default).
    pub projection: Option<ProjectionSpec>,
}

/// TracIn (final checkpoint, Kronecker-512 loss gradients).
pub(super) const TRACIN: GMethod = GMethod {
    label: "TracIn",
    name: "tracin",
    params: &[],
    projection: None,
};
/// Influence with the empirical Fisher; groups use GGDA's batched Fisher.
pub(super) const INF_FISHER: GMethod = GMethod {
    label: "Inf. (Fisher)",
    name: "if-explicit",
    params: &[("curvature", "fisher"), ("group-kernel", "batched")],
    projection: Some(ProjectionSpec::Rademacher { dim: 512 }),
};
/// Influence by LiSSA on the Gauss-Newton (GGDA App. B.3: depth 200).
pub(super) const INF_LISSA: GMethod = GMethod {
    label: "Inf. (LiSSA)",
    name: "if-lissa",
    params: &[],
    projection: None,
};
/// Influence by conjugate gradient on the Gauss-Newton.
pub(super) const INF_CG: GMethod = GMethod {
    label: "Inf. (CG)",
    name: "if-cg",
    params: &[],
    projection: None,
};
/// Gradient dot product (Kronecker-512 loss gradients).
pub(super) const GRAD_DOT: GMethod = GMethod {
    label: "Grad-Dot",
    name: "grad-dot",
    params: &[],
    projection: None,
};
/// TRAK (M = 1); groups use GGDA's batched Fisher.
pub(super) const TRAK: GMethod = GMethod {
    label: "TRAK",
    name: "trak",
    params: &[("group-kernel", "batched")],
    projection: None,
};

/// The method as a run uses it: in `--quick`, dense projections become
/// Kronecker-512 (a dense 109k × 512 projection costs seconds per call) and
/// LiSSA recurses 50 steps instead of 200; returns the extra registry
/// parameters to pass to [`Setup::fit`].
pub(super) fn for_run(m: GMethod, quick: bool) -> (GMethod, Vec<(&'static str, String)>) {
    if !quick {
        return (m, Vec::new());
    }
    let m = match m.projection {
        Some(ProjectionSpec::Rademacher { .. } | ProjectionSpec::Gaussian { .. }) => GMethod {
            projection: Some(ProjectionSpec::Kronecker { dim: 512 }),
            ..m
        },
        // TRAK's default projection is dense Rademacher-512
        None if m.name == "trak" => GMethod {
            projection: Some(ProjectionSpec::Kronecker { dim: 512 }),
            ..m
        },
        _ => m,
    };
    let extra = if m.name == "if-lissa" {
        vec![("depth", "50".to_string())]
    } else {
        Vec::new()
    };
    (m, extra)
}

/// Note for reports of a `--quick` run that used [`for_run`].
pub(super) const QUICK_METHODS_NOTE: &str = "--quick: dense projections (TRAK, Inf. (Fisher)) \
    replaced by Kronecker-512 and LiSSA depth 50 instead of 200, to keep the run to seconds.";

/// Models with at most this many parameters are attributed without projection.
pub(super) const SMALL_MODEL: usize = 2048;

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

/// Loads `recipe_name`'s data (first `n_train` / `n_test` points), optionally
/// flips `noise` of the training labels, and trains (cached) with
/// `epochs` epochs when given.
pub(super) fn setup(
    ctx: &RunContext,
    target: &'static str,
    recipe_name: &str,
    n_train: Option<usize>,
    n_test: Option<usize>,
    epochs: Option<usize>,
    noise: Option<f64>,
) -> Result<Setup, ReproError> {
    let rec = recipe(recipe_name)?;
    let mut split = load_data(ctx, rec)?;
    if let Some(n) = n_train {
        split.train = sample::first_n(&split.train, n.min(split.train.len()))?;
    }
    if let Some(n) = n_test {
        split.test = sample::first_n(&split.test, n.min(split.test.len()))?;
    }
    let mut flipped = Vec::new();
    if let Some(share) = noise {
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
    if let Some(e) = epochs {
        train_config.epochs = e;
    }
    let (model, _) = train_cached(
        ctx,
        &format!("{target}-{recipe_name}"),
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
    pub fn retrainer(
        &self,
        ctx: &RunContext,
        target: &'static str,
    ) -> Result<ModelRetrainer, ReproError> {
        Ok(ModelRetrainer::new(
            &self.train,
            &self.test,
            self.config.clone(),
            self.train_config.clone(),
            &device(),
        )
        .map_err(|e| ReproError::Failed {
            target,
            reason: format!("retrainer: {e}"),
        })?
        .with_cache(ctx.cache.clone())
        .with_progress(ctx.progress.clone()))
    }

    /// The attribution source.
    pub fn source(&self) -> ModelSource {
        ModelSource::new(self.model.clone(), device()).with_train_config(self.train_config.clone())
    }

    /// A seeded grouping `grouper:size=S` of the training set.
    pub fn grouping(
        &self,
        ctx: &RunContext,
        target: &'static str,
        grouper: &str,
        size: usize,
    ) -> Result<Grouping, ReproError> {
        let spec: GroupingSpec = format!("{grouper}:size={size}")
            .parse()
            .map_err(attrib_err(target, "grouping"))?;
        Ok(spec
            .build(
                &self.model,
                &self.train,
                &device(),
                ctx.seed_for(&format!("{target}.groups")),
            )
            .map_err(attrib_err(target, "grouping"))?
            .grouping)
    }

    /// The registry options of `m` for this model (exact gradients for
    /// small models such as HELOC's 48-parameter logistic regression).
    pub fn options(&self, ctx: &RunContext, target: &str, m: GMethod) -> MethodOptions {
        let mut opts = MethodOptions::new().seed(ctx.seed_for(&format!("{target}.method")));
        for (k, v) in m.params {
            opts = opts.param(*k, *v);
        }
        match m.projection {
            _ if self.model.n_params() <= SMALL_MODEL => opts.projection(ProjectionSpec::Identity),
            Some(p) => opts.projection(p),
            None => opts,
        }
    }

    /// Fits `m` on the training set (with `extra` registry parameters);
    /// returns the fitted method and the seconds it took.
    pub fn fit(
        &self,
        ctx: &RunContext,
        target: &'static str,
        m: GMethod,
        extra: &[(&str, String)],
    ) -> Result<(Box<dyn FittedAttributor>, f64), ReproError> {
        let mut opts = self.options(ctx, target, m);
        for (k, v) in extra {
            opts = opts.param(*k, v.clone());
        }
        let t = Instant::now();
        let method = by_name(m.name, &opts).map_err(attrib_err(target, m.name))?;
        let fitted = method
            .fit_dyn(&self.source(), &self.train)
            .map_err(attrib_err(target, m.name))?;
        Ok((fitted, t.elapsed().as_secs_f64()))
    }

    /// Importance of each training point (`grouping = None`, DA) or group
    /// (GGDA) under a fitted method: its scores summed over the test points,
    /// and the seconds of the attribution.
    pub fn scores(
        &self,
        target: &'static str,
        fitted: &dyn FittedAttributor,
        grouping: Option<&Grouping>,
    ) -> Result<(Vec<f64>, f64), ReproError> {
        let t = Instant::now();
        let scores = match grouping {
            Some(g) => fitted.attribute_groups(g, &self.test),
            None => fitted.attribute(&self.test),
        }
        .map_err(|e| ReproError::Failed {
            target,
            reason: format!("{}: {e}", fitted.name()),
        })?;
        let secs = t.elapsed().as_secs_f64();
        let imp = (0..scores.n_train())
            .map(|i| scores.row(i).iter().map(|&v| v as f64).sum())
            .collect();
        Ok((imp, secs))
    }
}

/// Maps an attribution error to the target's failure.
pub(super) fn attrib_err(
    target: &'static str,
    what: &'static str,
) -> impl Fn(AttribError) -> ReproError {
    move |e| ReproError::Failed {
        target,
        reason: format!("{what}: {e}"),
    }
}

/// Maps an evaluation error to the target's failure.
pub(super) fn eval_err(
    target: &'static str,
    what: &'static str,
) -> impl Fn(wellspring_eval::EvalError) -> ReproError {
    move |e| ReproError::Failed {
        target,
        reason: format!("{what}: {e}"),
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

/// One dataset-pruning experiment (GGDA §5.4.2, Tables 1, 2 and 7): remove
/// the least important 25 / 50 / 75% of the training set (whole groups,
/// sequentially) by each method's DA and GGDA importances, retrain, report
/// test accuracy and the attribution runtime.
pub(super) struct PruningSpec {
    /// Target name.
    pub target: &'static str,
    /// Report title.
    pub title: &'static str,
    /// Recipe.
    pub recipe: &'static str,
    /// Training points (first n; `None` = all) in full / quick mode.
    pub n_train: (Option<usize>, Option<usize>),
    /// Test points (first n) in full / quick mode.
    pub n_test: (Option<usize>, Option<usize>),
    /// Training epochs override in full / quick mode.
    pub epochs: (Option<usize>, Option<usize>),
    /// GGDA group size (Grad-K-Means) in full / quick mode.
    pub group_size: (usize, usize),
    /// Methods.
    pub methods: &'static [GMethod],
    /// Paper rows: (method, variant, accuracies at 25/50/75 %, runtime s).
    pub paper: &'static [(&'static str, &'static str, [f64; 3], f64)],
    /// Where the paper numbers come from.
    pub paper_source: &'static str,
    /// CPU stand-in note.
    pub stand_in: &'static str,
}

/// Runs a pruning experiment; when its dataset is not on disk (HELOC comes
/// only from `WELLSPRING_DATA`), returns a report that says so and shows the
/// paper's values instead of failing.
pub(super) fn pruning(
    ctx: &RunContext,
    spec: &PruningSpec,
) -> Result<wellspring_report::Report, ReproError> {
    use wellspring_data::DataError;
    match pruning_run(ctx, spec) {
        Err(ReproError::Data(
            e @ (DataError::MissingFile { .. } | DataError::MissingDir { .. }),
        )) => Ok(pruning_skipped(spec, &e.to_string())),
        other => other,
    }
}

/// The report of a pruning target whose data is missing: the paper's table
/// and a note naming what was not found.
fn pruning_skipped(spec: &PruningSpec, reason: &str) -> wellspring_report::Report {
    use wellspring_report::{BarChart, Report, Table};
    let mut table = Table::new([
        "method",
        "variant",
        "25%",
        "50%",
        "75%",
        "runtime (s)",
        "paper 25/50/75%",
        "paper runtime (s)",
    ])
    .title("Test accuracy (%) after pruning — skipped: dataset not found");
    let mut chart = BarChart::new("Paper values (ours skipped: dataset not found)")
        .categories(["25%", "50%", "75%"])
        .y_label("test accuracy (%)");
    for (m, v, acc, rt) in spec.paper {
        let mut row = vec![Cell::text(*m), Cell::text(*v)];
        row.extend((0..4).map(|_| Cell::text("skipped")));
        row.push(Cell::text(format!(
            "{:.1} / {:.1} / {:.1}",
            acc[0], acc[1], acc[2]
        )));
        row.push(Cell::num(*rt, 2));
        table.push_row(row);
        chart = chart.group(format!("{m} {v} (paper)"), acc.to_vec());
    }
    Report::new(spec.target, spec.title)
        .paragraph(format!(
            "SKIPPED: the dataset of recipe {} is not available, so nothing was trained; the \
             paper's values are shown for reference.",
            spec.recipe
        ))
        .setting("recipe", spec.recipe)
        .setting("skipped", true)
        .table(table)
        .plot("paper", chart)
        .note(format!("skipped: {reason}"))
        .note(format!("Paper values: {}.", spec.paper_source))
        .note(spec.stand_in.to_string())
}

fn pruning_run(
    ctx: &RunContext,
    spec: &PruningSpec,
) -> Result<wellspring_report::Report, ReproError> {
    use wellspring_eval::{DatasetPruning, Ranking};
    use wellspring_report::{Report, Table};
    let t = spec.target;
    let pick = |p: (Option<usize>, Option<usize>)| if ctx.quick { p.1 } else { p.0 };
    let s = setup(
        ctx,
        t,
        spec.recipe,
        pick(spec.n_train),
        pick(spec.n_test),
        pick(spec.epochs),
        None,
    )?;
    let retrainer = s.retrainer(ctx, t)?;
    let group_size = if ctx.quick {
        spec.group_size.1
    } else {
        spec.group_size.0
    };
    let grouping = s.grouping(ctx, t, "grad-kmeans", group_size)?;
    let models = if ctx.quick { 1 } else { 3 };
    let shares = vec![0.25, 0.50, 0.75];
    let mut table = Table::new([
        "method", "variant", "25%", "50%", "75%", "runtime (s)", "paper 25/50/75%", "paper runtime (s)",
    ])
    .title(format!(
        "Test accuracy (%) after pruning the least important training points ({} train, {} models per removal, GGDA groups: Grad-K-Means of size {})",
        s.train.len(),
        models,
        group_size
    ));
    let bar = ctx
        .progress
        .bar((spec.methods.len() * 2) as u64, format!("{t} methods"));
    let mut full_acc: Option<String> = None;
    let mut random_row = None;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (mi, m) in spec.methods.iter().enumerate() {
        let (run_m, extra) = for_run(*m, ctx.quick);
        let (fitted, fit_s) = s.fit(ctx, t, run_m, &extra)?;
        for (variant, g) in [("DA", None), ("GGDA", Some(&grouping))] {
            let (imp, secs) = s.scores(t, fitted.as_ref(), g)?;
            let secs = fit_s + secs;
            let metric = DatasetPruning::params()
                .shares(shares.clone())
                .models(models)
                .seed(ctx.seed_for(&format!("{t}.retrain")))
                .random_baseline(mi == 0 && variant == "DA");
            let ranking = match g {
                Some(grouping) => Ranking::Groups {
                    scores: &imp,
                    grouping,
                },
                None => Ranking::Points(&imp),
            };
            let rep = metric
                .run(ranking, &retrainer)
                .map_err(eval_err(t, "pruning"))?;
            if let Some(f) = &rep.full {
                full_acc = Some(format!("{:.2}%", acc_mean(f)));
            }
            series.push((
                format!("{} {variant}", m.label),
                rep.points
                    .iter()
                    .map(|p| (100.0 * p.share, acc_mean(p)))
                    .collect(),
            ));
            if !rep.random.is_empty() {
                random_row = Some(rep.random.clone());
            }
            let paper = spec
                .paper
                .iter()
                .find(|(pm, pv, ..)| *pm == m.label && *pv == variant);
            let mut row = vec![Cell::text(m.label), Cell::text(variant)];
            row.extend(rep.points.iter().map(acc_cell));
            row.push(Cell::num(secs, 2));
            row.push(Cell::text(paper.map_or("—".into(), |p| {
                format!("{:.1} / {:.1} / {:.1}", p.2[0], p.2[1], p.2[2])
            })));
            row.push(paper.map_or(Cell::text("—"), |p| Cell::num(p.3, 2)));
            table.push_row(row);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if let Some(r) = random_row {
        let mut row = vec![Cell::text("random removal"), Cell::text("—")];
        row.extend(r.iter().map(acc_cell));
        row.extend([Cell::text("—"), Cell::text("—"), Cell::text("—")]);
        table.push_row(row);
    }
    let mut report = Report::new(t, spec.title)
        .paragraph(
            "Importance of a training point (DA) or group (GGDA) = its attribution scores summed \
             over the test points; the least important are removed first (whole groups, the last \
             one partly, at random), the model is retrained from scratch with the same recipe, and \
             test accuracy is reported (higher = the removed points mattered less). Runtime = fit + \
             attribution of the method.",
        )
        .setting("recipe", spec.recipe)
        .setting("train_points", s.train.len() as u64)
        .setting("test_points", s.test.len() as u64)
        .setting("group_size", group_size as u64)
        .setting("grouper", "grad-kmeans")
        .setting("models_per_removal", models as u64)
        .setting("epochs", s.train_config.epochs as u64)
        .note(format!("Paper values: {}.", spec.paper_source))
        .note(spec.stand_in.to_string());
    if let Some(f) = full_acc {
        report = report.setting("full_data_accuracy", f);
    }
    let mut lines = wellspring_report::LineChart::new("Test accuracy after pruning")
        .x_label("share removed (%)")
        .y_label("test accuracy (%)");
    for (label, pts) in series {
        lines = lines.series(label, pts);
    }
    report = report.table(table).plot(format!("{t}-accuracy"), lines);
    if ctx.quick {
        report = report
            .note("--quick: fewer training points and epochs, one model per removal.")
            .note(QUICK_METHODS_NOTE);
    }
    Ok(report)
}
