//! `data-summary`: an inventory of every dataset wellspring can load here
//! (rows, input shape, classes, class balance, load time), so a reader of
//! any other table knows which data were available on the machine that made it.

use std::time::Instant;

use wellspring_core::{Dataset, Features, Targets};
use wellspring_data::{DataDir, DataError, DatasetName, load_full};
use wellspring_report::{BarChart, Cell, Report, Table};

use super::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "data-summary",
    paper: "dataset inventory (no paper)",
    description: "rows, input shape, classes, class balance and load time of every dataset found",
    run,
};

/// What was learned about one dataset.
struct Found {
    name: DatasetName,
    train: Dataset,
    test: Dataset,
    valid: Option<usize>,
    load_s: f64,
}

fn shape(d: &Dataset) -> String {
    match d.features() {
        Features::Dense { shape, .. } => shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("×"),
        Features::Tokens { vocab_size, .. } => format!("tokens (vocab {vocab_size})"),
    }
}

fn outputs(d: &Dataset) -> String {
    match d.targets() {
        Targets::Classes { n_classes, .. } => format!("{n_classes} classes"),
        Targets::Regression { n_targets, .. } => format!("regression, {n_targets} target(s)"),
        Targets::NextToken { vocab_size, .. } => format!("next token ({vocab_size} ids)"),
    }
}

/// Smallest and largest class as fractions of the set.
fn balance(d: &Dataset) -> Option<(f64, f64)> {
    let counts = d.class_counts()?;
    let n = d.len().max(1) as f64;
    let min = *counts.iter().min()? as f64 / n;
    let max = *counts.iter().max()? as f64 / n;
    Some((min, max))
}

/// Every dataset considered, by what loading it did.
struct Inventory {
    names: Vec<DatasetName>,
    found: Vec<Found>,
    missing: Vec<DatasetName>,
    failed: Vec<(DatasetName, String)>,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let names: Vec<DatasetName> = DatasetName::ALL
        .iter()
        .copied()
        .filter(|n| !ctx.quick || n.is_embedded())
        .collect();
    let dir = DataDir::resolve(ctx.data_dir.as_deref())?;
    let inv = inventory(ctx, names);
    Ok(report(ctx, &dir, &inv))
}

/// Loads every dataset of `names`, sorting them into found, missing and failed.
fn inventory(ctx: &RunContext, names: Vec<DatasetName>) -> Inventory {
    let bar = ctx.progress.bar(names.len() as u64, "loading datasets");
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut failed = Vec::new();
    for &name in &names {
        bar.set_message(format!("loading {name}"));
        let clock = Instant::now();
        match load_full(name, &ctx.load_options()) {
            Ok(loaded) => found.push(Found {
                name,
                valid: loaded.split.valid.as_ref().map(Dataset::len),
                train: loaded.split.train,
                test: loaded.split.test,
                load_s: clock.elapsed().as_secs_f64(),
            }),
            Err(DataError::MissingFile { .. } | DataError::MissingDir { .. }) => missing.push(name),
            Err(e) => failed.push((name, e.to_string())),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Inventory {
        names,
        found,
        missing,
        failed,
    }
}

/// The table of the datasets found and their class balance.
fn found_table(found: &[Found]) -> Table {
    let mut table = Table::new([
        "dataset",
        "train",
        "test",
        "input shape",
        "outputs",
        "smallest class",
        "largest class",
        "load (s)",
    ])
    .title("Datasets found");
    for f in found {
        let (lo, hi) = balance(&f.train).map_or((Cell::empty(), Cell::empty()), |(lo, hi)| {
            (Cell::num(lo, 3), Cell::num(hi, 3))
        });
        table.push_row([
            Cell::text(f.name.as_str()),
            Cell::from(f.train.len()),
            Cell::from(f.test.len()),
            Cell::text(shape(&f.train)),
            Cell::text(outputs(&f.train)),
            lo,
            hi,
            Cell::num(f.load_s, 3),
        ]);
    }

    table
}

fn report(ctx: &RunContext, dir: &DataDir, inv: &Inventory) -> Report {
    let (names, found, missing, failed) = (&inv.names, &inv.found, &inv.missing, &inv.failed);
    let table = found_table(found);
    // Class fractions rather than counts, so datasets of any size share an axis.
    let small: Vec<&Found> = found
        .iter()
        .filter(|f| f.train.n_classes().is_some_and(|c| c <= 10))
        .collect();
    let n_cat = small
        .iter()
        .filter_map(|f| f.train.n_classes())
        .max()
        .unwrap_or(0);
    let mut balance_plot = BarChart::new("Class balance of the training sets")
        .x_label("class")
        .y_label("fraction of training set")
        .categories((0..n_cat).map(|c| c.to_string()));
    for f in &small {
        let counts = f.train.class_counts().unwrap_or_default();
        let n = f.train.len().max(1) as f64;
        balance_plot = balance_plot.group(
            f.name.as_str(),
            (0..n_cat).map(|c| counts.get(c).map_or(f64::NAN, |&k| k as f64 / n)),
        );
    }

    let mut report = Report::new(TARGET.name, "Dataset inventory")
        .paragraph(
            "Every dataset wellspring can load on this machine, as the loaders return it \
             (default options: seeded 80/20 split where there is no official test set, \
             tables standardised with training statistics).",
        )
        .setting("data_dir", dir.root().display().to_string())
        .setting("data_dir_origin", dir.origin().to_string())
        .setting(
            "datasets_considered",
            names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        )
        .setting("datasets_found", found.len())
        .table(table)
        .plot("class-balance", balance_plot);

    for f in found {
        let (Some(train), Some(test)) = (f.train.class_counts(), f.test.class_counts()) else {
            continue;
        };
        let names: Vec<String> = match f.train.class_names() {
            Some(names) => names.to_vec(),
            None => (0..train.len()).map(|c| c.to_string()).collect(),
        };
        let mut chart = BarChart::new(format!("{}: examples per class", f.name))
            .x_label("class")
            .y_label("examples")
            .categories(names)
            .group("train", train.iter().map(|&c| c as f64))
            .group("test", test.iter().map(|&c| c as f64));
        if let Some(v) = f.valid {
            chart = chart.x_label(format!("class (validation set: {v} examples, not shown)"));
        }
        report = report.plot(format!("counts-{}", f.name.as_str()), chart);
    }
    if ctx.quick {
        report = report
            .note("Quick mode: only the datasets embedded in the repository were considered.");
    }
    if !missing.is_empty() {
        let list: Vec<&str> = missing.iter().map(|n| n.as_str()).collect();
        report = report.note(format!(
            "Not found: {}. Point WELLSPRING_DATA at a directory holding them, or run \
             `cargo xtask fetch-data <name>`.",
            list.join(", ")
        ));
    }
    for (name, e) in failed {
        report = report.note(format!("{name} failed to load: {e}"));
    }
    report
}

#[cfg(test)]
mod tests {
    use wellspring_report::{Cache, Progress, ReportRecord};

    use super::super::{RunContext, run_target};

    #[test]
    fn quick_run_writes_markdown_json_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = RunContext {
            quick: true,
            out_dir: dir.path().join("results"),
            cache: Cache::open(dir.path().join("cache")).unwrap(),
            seed: 3,
            data_dir: None,
            progress: Progress::hidden(),
        };
        let out = run_target("data-summary", &ctx).unwrap();
        assert_eq!(
            out.written.markdown,
            dir.path().join("results/data-summary.md")
        );
        assert_eq!(
            out.written.plots[0],
            dir.path().join("results/data-summary.svg")
        );
        assert!(out.written.plots.iter().all(|p| p.is_file()));
        let rec = ReportRecord::read(&out.written.json).unwrap();
        assert_eq!(rec.settings["run.seed"], serde_json::json!(3));
        assert_eq!(rec.settings["run.quick"], serde_json::json!(true));
        let md = std::fs::read_to_string(&out.written.markdown).unwrap();
        assert!(
            md.contains("# Dataset inventory") && md.contains("## Environment"),
            "{md}"
        );
        // The embedded datasets ship with the repository, so quick mode finds them.
        let rows = &rec.tables[0].rows;
        let names: Vec<String> = rows.iter().map(|r| r[0].value.render()).collect();
        for embedded in ["mnist", "concrete", "breast-cancer"] {
            assert!(names.iter().any(|n| n == embedded), "{names:?}");
        }
        let mnist = rows
            .iter()
            .find(|r| r[0].value.render() == "mnist")
            .unwrap();
        assert_eq!(mnist[1].value.render(), "60000");
        assert_eq!(mnist[2].value.render(), "10000");
        assert_eq!(mnist[4].value.render(), "10 classes");
    }
}
