//! `baselines`: test accuracy (or R²) of every standard recipe — each model on
//! each dataset at the settings the later tables use — next to what the papers
//! report where they report one.

use wellspring_data::DataError;
use wellspring_models::{Metrics, evaluate};
use wellspring_report::{BarChart, Cell, Report, Table};

use super::recipes::{Prepared, RECIPES, describe_train, device, prepare};
use super::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "baselines",
    paper: "issue A; GGDA Tables 1/5, FiMO Appendix D, dattri benchmark settings",
    description: "test accuracy / R² of every standard model on every dataset, at the settings later tables use",
    run,
};

/// One recipe's trained model and its test (and training) performance.
struct Row {
    prepared: Prepared,
    /// R² of a regression recipe (else accuracy in %).
    regression: bool,
    metric: &'static str,
    value: f64,
    train_value: f64,
    n_params: usize,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let device = device();
    let seed = ctx.seed_for("baselines");
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for recipe in RECIPES {
        let prepared = match prepare(ctx, recipe, seed) {
            Ok(p) => p,
            Err(ReproError::Data(DataError::MissingFile { .. } | DataError::MissingDir { .. })) => {
                missing.push(recipe.name);
                continue;
            }
            Err(e) => return Err(e),
        };
        let eval = evaluate(&prepared.model, &prepared.split.test, &device)?;
        let (regression, metric, value) = match eval.metrics {
            Metrics::Classification { accuracy, .. } => (false, "accuracy (%)", 100.0 * accuracy),
            Metrics::Regression { r2, .. } => (true, "R²", r2),
        };
        let train_value = match evaluate(&prepared.model, &prepared.split.train, &device)?.metrics {
            Metrics::Classification { accuracy, .. } => 100.0 * accuracy,
            Metrics::Regression { r2, .. } => r2,
        };
        let n_params = prepared.model.n_params();
        rows.push(Row {
            prepared,
            regression,
            metric,
            value,
            train_value,
            n_params,
        });
    }
    Ok(report(ctx, seed, &rows, &missing))
}

fn report(ctx: &RunContext, seed: u64, rows: &[Row], missing: &[&str]) -> Report {
    let mut table = Table::new([
        "recipe",
        "dataset",
        "model",
        "train",
        "test",
        "params",
        "metric",
        "value",
        "on train",
        "train time (s)",
        "setting",
    ])
    .title("Test performance of the standard recipes");
    for r in rows {
        let p = &r.prepared;
        let mut value = Cell::num(r.value, if r.regression { 3 } else { 2 });
        if let Some(paper) = p.recipe.paper {
            value = value.vs_paper(Cell::num(paper.value, 1));
        }
        table.push_row([
            Cell::text(p.recipe.name),
            Cell::text(p.recipe.dataset.as_str()),
            Cell::text(p.model.config.name()),
            Cell::from(p.split.train.len()),
            Cell::from(p.split.test.len()),
            Cell::from(r.n_params),
            Cell::text(r.metric),
            value,
            Cell::num(r.train_value, if r.regression { 3 } else { 2 }),
            p.train_seconds
                .map_or(Cell::text("cached"), |s| Cell::num(s, 1)),
            Cell::text(p.recipe.origin),
        ]);
    }

    let acc: Vec<&Row> = rows.iter().filter(|r| !r.regression).collect();
    let chart = BarChart::new("Test accuracy of the classification recipes")
        .x_label("recipe")
        .y_label("test accuracy (%)")
        .categories(acc.iter().map(|r| r.prepared.recipe.name))
        .group("wellspring", acc.iter().map(|r| r.value))
        .group(
            "paper",
            acc.iter()
                .map(|r| r.prepared.recipe.paper.map_or(f64::NAN, |p| p.value)),
        );

    let mut report = Report::new(TARGET.name, "Baselines: test performance of every standard recipe")
        .paragraph(
            "Each row trains one model from a seeded initialisation on the CPU (burn flex backend) \
             with the recipe's settings and evaluates it on the test split. Later tables reuse these \
             models from the cache. Paper columns show a paper's number for the same setting where \
             one is reported.",
        )
        .setting("seed", seed)
        .setting("device", "flex (CPU)")
        .table(table)
        .plot("accuracy", chart);
    for r in rows {
        report = report.setting(
            format!("train.{}", r.prepared.recipe.name),
            describe_train(&r.prepared.train_config),
        );
    }
    if ctx.quick {
        report = report.note(
            "Quick mode: image and text recipes train on a first-n slice (5000 MNIST/Fashion-MNIST, \
             10 000 SST-2, 8000 Adult) for at most 2 epochs, tables for a tenth of the epochs; \
             accuracies are therefore below the full run's.",
        );
    }
    if !missing.is_empty() {
        report = report.note(format!(
            "Skipped (dataset not found; set WELLSPRING_DATA or run `cargo xtask fetch-data`): {}.",
            missing.join(", ")
        ));
    }
    report = report
        .note("CIFAR-10/100 are not available offline: the MNIST/Fashion-MNIST CNN recipes are the CPU stand-ins for the papers' CIFAR ResNets.")
        .note("Adult (UCI) stands in for FiMO's Folktables ACSIncome, which needs the ACS PUMS downloads.")
        .note("SST-2 uses an embedding-bag model instead of fine-tuned BERT, so its accuracy is not comparable with the paper's 92.9%.");
    report
}
