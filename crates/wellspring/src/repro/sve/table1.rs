//! `sve-table1`: the exemplar effect (SVE, Mahmood, Yin & Khanna 2025,
//! §4.1, eq. 4, Table 1): how many training points are in the top-`k` of at
//! least `r` test points, for PAE, Emb, TracIn, RPS and IF.

use wellspring_report::{BarChart, Cell, Report, Table};

use super::exemplars::{
    METHODS, Resolved, clean, datasets, exemplars, method_settings, resolve, stand_in_note,
};
use crate::repro::recipes::Recipe;
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "sve-table1",
    paper: "Mahmood, Yin & Khanna 2025 (SVE), Table 1",
    description: "exemplar counts |S_ex^{r,k}| (training points in the top-k of ≥ r test points) for PAE, Emb, TracIn, RPS, IF",
    run,
};

/// Largest `k` any table needs.
const K_MAX: usize = 10;

/// The issue's grid.
const GRID_K: [usize; 3] = [1, 5, 10];
const GRID_R: [usize; 3] = [1, 5, 10];

/// One paper cell: (k, r as share of test points per class, count).
type PaperCell = (usize, f64, usize);

/// Paper Table 1: (dataset, its cells).
const PAPER: [(&str, [PaperCell; 4]); 3] = [
    (
        "MNIST",
        [(1, 1.0, 3), (1, 0.9, 7), (3, 1.0, 11), (3, 0.9, 24)],
    ),
    (
        "CIFAR-10",
        [(1, 1.0, 0), (1, 0.9, 4), (3, 1.0, 4), (3, 0.9, 10)],
    ),
    (
        "CIFAR-100",
        [(1, 1.0, 78), (1, 0.9, 88), (3, 1.0, 220), (3, 0.9, 249)],
    ),
];

/// One dataset's model and every method's top-`K_MAX` lists (`None`:
/// the method is unavailable).
struct Row {
    recipe: &'static Recipe,
    paper_name: &'static str,
    n_train: usize,
    n_test: usize,
    per_class: usize,
    accuracy: f64,
    lists: Vec<Option<Vec<Vec<u32>>>>,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let seed = ctx.seed_for("sve-table1.methods");
    let resolved: Vec<Resolved> = METHODS.iter().map(|m| resolve(*m, seed)).collect();
    let mut rows = Vec::new();
    for (recipe, paper_name) in datasets(ctx) {
        let t = clean(ctx, recipe)?;
        let mut lists = Vec::new();
        for res in &resolved {
            lists.push(match res {
                Resolved::Ready { .. } => Some(t.top_k(ctx, res, K_MAX)?),
                Resolved::Unavailable(_) => None,
            });
        }
        rows.push(Row {
            recipe,
            paper_name,
            n_train: t.train.len(),
            n_test: t.test.len(),
            per_class: t.per_class(),
            accuracy: t.accuracy,
            lists,
        });
    }
    Ok(report(ctx, &resolved, &rows))
}

fn report(ctx: &RunContext, resolved: &[Resolved], rows: &[Row]) -> Report {
    let (paper_table, chart) = paper_layout(rows);
    let mut grid = Table::new(
        ["dataset", "method", "k"]
            .into_iter()
            .map(String::from)
            .chain(GRID_R.iter().map(|r| format!("r = {r}"))),
    )
    .title("Issue grid: # training points in the top-k of at least r test points");
    let mut models = Table::new([
        "dataset",
        "n train",
        "n test",
        "test points per class",
        "test accuracy (%)",
    ])
    .title("Models behind the table");
    for row in rows {
        let name = row.recipe.name;
        models.push_row([
            Cell::text(name),
            Cell::from(row.n_train),
            Cell::from(row.n_test),
            Cell::from(row.per_class),
            Cell::num(row.accuracy, 2),
        ]);
        for (m, l) in METHODS.iter().zip(&row.lists) {
            for k in GRID_K {
                let mut cells = vec![Cell::text(name), Cell::text(m.label), Cell::from(k)];
                for r in GRID_R {
                    cells.push(match l {
                        Some(l) => Cell::from(exemplars(l, k, r, row.n_train).len()),
                        None => Cell::text("n/a"),
                    });
                }
                grid.push_row(cells);
            }
        }
    }
    let mut report = Report::new(TARGET.name, "SVE Table 1: the exemplar effect")
        .paragraph(
            "S_ex^{r,k} = {x_i : count(x_i, D_test, I, k) ≥ r} (SVE eq. 4): the training points \
             that are among the k highest-scored training points of at least r test points. \
             Without an exemplar effect few points repeat for small k; under the support vector \
             effect a handful of hard training points head the lists of whole classes.",
        )
        .setting("k_max", K_MAX as u64)
        .setting("device", "flex (CPU)")
        .table(paper_table)
        .table(grid)
        .table(models)
        .plot("exemplars", chart);
    report = method_settings(report, resolved);
    report.note(stand_in_note(ctx.quick)).note(
        "The paper does not name the attribution method behind Table 1 beyond \"last layer \
             gradient-based\"; its numbers sit in their own column. TracIn and IF use the \
             last layer's gradients; RPS is a last-layer method by construction; PAE and Emb \
             are the paper's similarity methods.",
    )
}

/// The paper's setting (r = test points per class and 0.9 of that, beside
/// the paper's counts) and its k = 1 bars.
fn paper_layout(rows: &[Row]) -> (Table, BarChart) {
    let mut header = vec![
        "dataset (stand-in for)".to_string(),
        "k".into(),
        "r".into(),
        "paper (last-layer method)".into(),
    ];
    header.extend(METHODS.iter().map(|m| m.label.to_string()));
    let mut table = Table::new(header)
        .title("Paper's setting: # exemplars with r = test points per class and 0.9 of that");
    let mut chart = BarChart::new(
        "# exemplars, k = 1, r = test points per class (lower = less exemplar effect)",
    )
    .x_label("method")
    .y_label("# exemplars")
    .categories(METHODS.iter().map(|m| m.label));
    for row in rows {
        let name = row.recipe.name;
        let paper = PAPER
            .iter()
            .find(|p| p.0 == row.paper_name)
            .expect("every dataset maps to a paper row");
        let mut bars = Vec::new();
        for &(k, share, paper_count) in &paper.1 {
            let r = ((row.per_class as f64) * share).round().max(1.0) as usize;
            let mut cells = vec![
                Cell::text(format!("{name} ({})", row.paper_name)),
                Cell::from(k),
                Cell::from(r),
                Cell::from(paper_count),
            ];
            for l in &row.lists {
                let count = l.as_ref().map(|l| exemplars(l, k, r, row.n_train).len());
                if k == 1 && share == 1.0 {
                    bars.push(count.map_or(f64::NAN, |c| c as f64));
                }
                cells.push(count.map_or(Cell::text("n/a"), Cell::from));
            }
            table.push_row(cells);
        }
        chart = chart.group(name, bars);
    }
    (table, chart)
}
