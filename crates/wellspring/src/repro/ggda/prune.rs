//! One dataset-pruning experiment (GGDA §5.4.2, Tables 1, 2 and 7), shared
//! by `ggda-table1` (HELOC) and `ggda-pruning` (MNIST): remove the least
//! important 25 / 50 / 75% of the training set (whole groups, sequentially)
//! by each method's DA and GGDA importances, retrain, report test accuracy
//! and the attribution runtime.

use wellspring_attrib::GrouperKind;
use wellspring_core::Grouping;
use wellspring_data::DataError;
use wellspring_eval::{DatasetPruning, ModelRetrainer, Ranking, RemovalPoint};
use wellspring_report::{BarChart, Cell, LineChart, Report, Table};

use super::common::{
    METHOD_SETTINGS, QUICK_METHODS_NOTE, Setup, Sizes, acc_cell, acc_mean, for_run, setup,
};
use crate::repro::method::MethodSpec;
use crate::repro::recipes::Recipe;
use crate::repro::{ReproError, RunContext};

/// A paper row: (method, variant, accuracies at 25/50/75 %, runtime s).
pub(super) type PaperRow = (&'static str, &'static str, [f64; 3], f64);

/// What one pruning target runs and what it compares with.
pub(super) struct PruningSpec {
    /// Target name.
    pub target: &'static str,
    /// Report title.
    pub title: &'static str,
    /// Recipe.
    pub recipe: &'static Recipe,
    /// Training points (first n; `None` = all) in full / quick mode.
    pub n_train: (Option<usize>, Option<usize>),
    /// Test points (first n) in full / quick mode.
    pub n_test: (Option<usize>, Option<usize>),
    /// Training epochs override in full / quick mode.
    pub epochs: (Option<usize>, Option<usize>),
    /// GGDA group size (Grad-K-Means) in full / quick mode.
    pub group_size: (usize, usize),
    /// Methods.
    pub methods: &'static [MethodSpec],
    /// Paper rows.
    pub paper: &'static [PaperRow],
    /// Where the paper numbers come from.
    pub paper_source: &'static str,
    /// CPU stand-in note.
    pub stand_in: &'static str,
}

/// The shares removed.
const SHARES: [f64; 3] = [0.25, 0.50, 0.75];

/// Runs a pruning experiment; when its dataset is not on disk (HELOC comes
/// only from `WELLSPRING_DATA`), returns a report that says so and shows the
/// paper's values instead of failing.
pub(super) fn pruning(ctx: &RunContext, spec: &PruningSpec) -> Result<Report, ReproError> {
    match pruning_run(ctx, spec) {
        Err(ReproError::Data(
            e @ (DataError::MissingFile { .. } | DataError::MissingDir { .. }),
        )) => Ok(pruning_skipped(spec, &e.to_string())),
        other => other,
    }
}

/// The report of a pruning target whose data is missing: the paper's table
/// and a note naming what was not found.
fn pruning_skipped(spec: &PruningSpec, reason: &str) -> Report {
    let mut table =
        Table::new(header()).title("Test accuracy (%) after pruning — skipped: dataset not found");
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
            spec.recipe.name
        ))
        .setting("recipe", spec.recipe.name)
        .setting("skipped", true)
        .table(table)
        .plot("paper", chart)
        .note(format!("skipped: {reason}"))
        .note(format!("Paper values: {}.", spec.paper_source))
        .note(spec.stand_in.to_string())
}

fn header() -> [&'static str; 8] {
    [
        "method",
        "variant",
        "25%",
        "50%",
        "75%",
        "runtime (s)",
        "paper 25/50/75%",
        "paper runtime (s)",
    ]
}

/// The sizes of this run (full or `--quick`).
struct Settings {
    sizes: Sizes,
    group_size: usize,
    models: usize,
}

impl Settings {
    fn new(spec: &PruningSpec, quick: bool) -> Self {
        let pick = |p: (Option<usize>, Option<usize>)| if quick { p.1 } else { p.0 };
        Settings {
            sizes: Sizes {
                n_train: pick(spec.n_train),
                n_test: pick(spec.n_test),
                epochs: pick(spec.epochs),
                noise: None,
            },
            group_size: if quick {
                spec.group_size.1
            } else {
                spec.group_size.0
            },
            models: if quick { 1 } else { 3 },
        }
    }
}

/// One method under one variant (DA or GGDA).
struct Row {
    method: &'static str,
    variant: &'static str,
    points: Vec<RemovalPoint>,
    seconds: f64,
}

/// Every row, plus the baselines the first pruning run measured.
struct Rows {
    rows: Vec<Row>,
    random: Option<Vec<RemovalPoint>>,
    full: Option<RemovalPoint>,
}

fn pruning_run(ctx: &RunContext, spec: &PruningSpec) -> Result<Report, ReproError> {
    let st = Settings::new(spec, ctx.quick);
    let s = setup(ctx, spec.target, spec.recipe, st.sizes)?;
    let retrainer = s.retrainer(ctx)?;
    let grouping = s.grouping(ctx, spec.target, GrouperKind::GradKMeans, st.group_size)?;
    let rows = rows(ctx, spec, &st, &s, &retrainer, &grouping)?;
    Ok(report(ctx, spec, &st, &s, &rows))
}

fn rows(
    ctx: &RunContext,
    spec: &PruningSpec,
    st: &Settings,
    s: &Setup,
    retrainer: &ModelRetrainer,
    grouping: &Grouping,
) -> Result<Rows, ReproError> {
    let t = spec.target;
    let bar = ctx
        .progress
        .bar((spec.methods.len() * 2) as u64, format!("{t} methods"));
    let mut out = Rows {
        rows: Vec::new(),
        random: None,
        full: None,
    };
    for (mi, m) in spec.methods.iter().enumerate() {
        let (fitted, fit_s) = s.fit(ctx, t, for_run(*m, ctx.quick)?)?;
        for (variant, g) in [("DA", None), ("GGDA", Some(grouping))] {
            let (imp, secs) = s.scores(fitted.as_ref(), g)?;
            let metric = DatasetPruning::params()
                .shares(SHARES.to_vec())
                .models(st.models)
                .seed(ctx.seed_for(&format!("{t}.retrain")))
                .random_baseline(mi == 0 && g.is_none());
            let ranking = match g {
                Some(grouping) => Ranking::Groups {
                    scores: &imp,
                    grouping,
                },
                None => Ranking::Points(&imp),
            };
            let rep = metric.run(ranking, retrainer)?;
            if rep.full.is_some() {
                out.full = rep.full.clone();
            }
            if !rep.random.is_empty() {
                out.random = Some(rep.random.clone());
            }
            out.rows.push(Row {
                method: m.label,
                variant,
                points: rep.points,
                seconds: fit_s + secs,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

fn report(ctx: &RunContext, spec: &PruningSpec, st: &Settings, s: &Setup, r: &Rows) -> Report {
    let t = spec.target;
    let mut table = Table::new(header()).title(format!(
        "Test accuracy (%) after pruning the least important training points ({} train, {} \
         models per removal, GGDA groups: Grad-K-Means of size {})",
        s.train.len(),
        st.models,
        st.group_size
    ));
    let mut lines = LineChart::new("Test accuracy after pruning")
        .x_label("share removed (%)")
        .y_label("test accuracy (%)");
    for row in &r.rows {
        let paper = spec
            .paper
            .iter()
            .find(|(pm, pv, ..)| *pm == row.method && *pv == row.variant);
        let mut cells = vec![Cell::text(row.method), Cell::text(row.variant)];
        cells.extend(row.points.iter().map(acc_cell));
        cells.push(Cell::num(row.seconds, 2));
        cells.push(Cell::text(paper.map_or("—".into(), |p| {
            format!("{:.1} / {:.1} / {:.1}", p.2[0], p.2[1], p.2[2])
        })));
        cells.push(paper.map_or(Cell::text("—"), |p| Cell::num(p.3, 2)));
        table.push_row(cells);
        lines = lines.series(
            format!("{} {}", row.method, row.variant),
            row.points
                .iter()
                .map(|p| (100.0 * p.share, acc_mean(p)))
                .collect::<Vec<_>>(),
        );
    }
    if let Some(random) = &r.random {
        let mut row = vec![Cell::text("random removal"), Cell::text("—")];
        row.extend(random.iter().map(acc_cell));
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
        .setting("recipe", spec.recipe.name)
        .setting("train_points", s.train.len() as u64)
        .setting("test_points", s.test.len() as u64)
        .setting("group_size", st.group_size as u64)
        .setting("grouper", GrouperKind::GradKMeans.as_str())
        .setting("models_per_removal", st.models as u64)
        .setting("epochs", s.train_config.epochs as u64)
        .setting("methods", METHOD_SETTINGS)
        .note(format!("Paper values: {}.", spec.paper_source))
        .note(spec.stand_in.to_string());
    if let Some(f) = &r.full {
        report = report.setting("full_data_accuracy", format!("{:.2}%", acc_mean(f)));
    }
    report = report.table(table).plot(format!("{t}-accuracy"), lines);
    if ctx.quick {
        report = report
            .note("--quick: fewer training points and epochs, one model per removal.")
            .note(QUICK_METHODS_NOTE);
    }
    report
}
