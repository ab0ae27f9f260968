//! `sve-table2`: vulnerability to label-flip poisoning (SVE, Mahmood, Yin &
//! Khanna 2025, §4.2, Table 2): flip 1% of the training labels, retrain, and
//! count how many exemplars (SVE eq. 4, `r` = test points per class) are
//! poisoned, per attribution method.

use wellspring_data::flip_labels;
use wellspring_report::{BarChart, Cell, Report, Table};

use super::exemplars::{
    METHODS, Resolved, clean, counts, datasets, exemplars, method_settings, resolve, split_for,
    stand_in_note, train_on,
};
use crate::repro::recipes::Recipe;
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "sve-table2",
    paper: "Mahmood, Yin & Khanna 2025 (SVE), Table 2",
    description: "1% label-flip poisoning: share of exemplars (top-k of ≥ r test points) that are poisoned, per method",
    run,
};

/// Share of training labels flipped.
const FLIP: f64 = 0.01;

/// Paper Table 2: (dataset, [(k, # exemplars, # poisoned, % poisoned)]).
type PaperRows = [(usize, usize, usize, f64); 3];
const PAPER: [(&str, PaperRows); 3] = [
    (
        "MNIST",
        [(1, 3, 3, 100.0), (3, 12, 12, 100.0), (10, 41, 36, 87.8)],
    ),
    (
        "CIFAR-10",
        [(1, 2, 2, 100.0), (3, 11, 11, 100.0), (10, 55, 45, 81.8)],
    ),
    (
        "CIFAR-100",
        [(1, 27, 26, 96.3), (3, 188, 178, 94.7), (10, 844, 497, 58.9)],
    ),
];

/// One dataset: the clean and the poisoned model, the flipped points and
/// every method's top-10 lists on the poisoned model (`None`: unavailable).
struct Row {
    recipe: &'static Recipe,
    paper_name: &'static str,
    n_train: usize,
    per_class: usize,
    flipped: Vec<usize>,
    clean_accuracy: f64,
    poisoned_accuracy: f64,
    lists: Vec<Option<Vec<Vec<u32>>>>,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let seed = ctx.seed_for("sve-table2.methods");
    let resolved: Vec<Resolved> = METHODS.iter().map(|m| resolve(*m, seed)).collect();
    let mut rows = Vec::new();
    for (recipe, paper_name) in datasets(ctx) {
        let clean_model = clean(ctx, recipe)?;
        let (train, test) = split_for(ctx, recipe)?;
        let (poisoned_train, flipped) = flip_labels(&train, FLIP, ctx.seed_for("sve-table2.flip"))?;
        let t = train_on(
            ctx,
            recipe,
            &format!("{}+flip1%", recipe.name),
            poisoned_train,
            test,
        )?;
        let mut lists = Vec::new();
        for res in &resolved {
            lists.push(match res {
                Resolved::Ready { .. } => Some(t.top_k(ctx, res, 10)?),
                Resolved::Unavailable(_) => None,
            });
        }
        rows.push(Row {
            recipe,
            paper_name,
            n_train: t.train.len(),
            per_class: t.per_class(),
            flipped,
            clean_accuracy: clean_model.accuracy,
            poisoned_accuracy: t.accuracy,
            lists,
        });
    }
    Ok(report(ctx, &resolved, &rows))
}

fn report(ctx: &RunContext, resolved: &[Resolved], rows: &[Row]) -> Report {
    let (table, chart) = poisoned_exemplars(rows);
    let mut top1 = Table::new(
        ["dataset".to_string()]
            .into_iter()
            .chain(METHODS.iter().map(|m| m.label.to_string())),
    )
    .title("Share of test points (%) whose top-1 training point is poisoned (1% by chance)");
    let mut models = Table::new([
        "dataset",
        "n train",
        "flipped",
        "clean test accuracy (%)",
        "poisoned test accuracy (%)",
    ])
    .title("Models: poisoning barely changes accuracy");
    for row in rows {
        models.push_row([
            Cell::text(row.recipe.name),
            Cell::from(row.n_train),
            Cell::from(row.flipped.len()),
            Cell::num(row.clean_accuracy, 2),
            Cell::num(row.poisoned_accuracy, 2),
        ]);
        let mut cells = vec![Cell::text(row.recipe.name)];
        for l in &row.lists {
            cells.push(match l {
                Some(l) => {
                    let c = counts(l, 1, row.n_train);
                    let hit: usize = row.flipped.iter().map(|&i| c[i]).sum();
                    Cell::num(100.0 * hit as f64 / l.len().max(1) as f64, 1)
                }
                None => Cell::text("n/a"),
            });
        }
        top1.push_row(cells);
    }
    let mut report = Report::new(
        TARGET.name,
        "SVE Table 2: exemplars under 1% label-flip poisoning",
    )
    .paragraph(
        "1% of the training labels are flipped to a uniformly chosen other class \
             (wellspring_data::flip_labels), the model is retrained with the same recipe and \
             seed, and the exemplar set S_ex^{r,k} (SVE eq. 4) is computed with r = test points \
             per class (the paper's r = 1000 for MNIST). Under the support vector effect the \
             flipped points are the hardest to fit and become the exemplars of whole classes.",
    )
    .setting("flip_share", FLIP)
    .setting("device", "flex (CPU)")
    .table(table)
    .table(top1)
    .table(models)
    .plot("poisoned-share", chart);
    report = method_settings(report, resolved);
    report.note(stand_in_note(ctx.quick)).note(
        "The paper's Table 2 is for \"last layer gradient-based instance attribution \
             methods\" without naming one; its numbers are in their own columns. \
             \"no exemplars\": no training point reached r.",
    )
}

/// Exemplars of the poisoned models and how many are poisoned, beside the
/// paper's, with the k = 3 shares as bars.
fn poisoned_exemplars(rows: &[Row]) -> (Table, BarChart) {
    let mut header = vec![
        "dataset (stand-in for)".to_string(),
        "k".into(),
        "r".into(),
        "paper: # ex (# poisoned)".into(),
        "paper: % poisoned".into(),
    ];
    header.extend(
        METHODS
            .iter()
            .map(|m| format!("{}: # ex (# poisoned)", m.label)),
    );
    header.extend(METHODS.iter().map(|m| format!("{}: % poisoned", m.label)));
    let mut table = Table::new(header)
        .title("Exemplars (top-k of ≥ r test points) of the model trained on 1%-flipped labels, and how many are poisoned");
    let mut chart =
        BarChart::new("% of exemplars that are poisoned (k = 3, r = test points per class)")
            .x_label("method")
            .y_label("% poisoned")
            .categories(METHODS.iter().map(|m| m.label));
    for row in rows {
        let n = row.n_train;
        let mut is_poisoned = vec![false; n];
        row.flipped.iter().for_each(|&i| is_poisoned[i] = true);
        let r = row.per_class;
        let paper = PAPER
            .iter()
            .find(|p| p.0 == row.paper_name)
            .expect("every dataset maps to a paper row");
        let mut bars = Vec::new();
        for &(k, pe, pp, pshare) in &paper.1 {
            let mut texts = Vec::new();
            let mut shares = Vec::new();
            for l in &row.lists {
                match l {
                    Some(l) => {
                        let ex = exemplars(l, k, r, n);
                        let p = ex.iter().filter(|&&i| is_poisoned[i]).count();
                        texts.push(Cell::text(format!("{} ({p})", ex.len())));
                        let share = if ex.is_empty() {
                            f64::NAN
                        } else {
                            100.0 * p as f64 / ex.len() as f64
                        };
                        shares.push(if share.is_nan() {
                            Cell::text("no exemplars")
                        } else {
                            Cell::num(share, 1)
                        });
                        if k == 3 {
                            bars.push(share);
                        }
                    }
                    None => {
                        texts.push(Cell::text("n/a"));
                        shares.push(Cell::text("n/a"));
                        if k == 3 {
                            bars.push(f64::NAN);
                        }
                    }
                }
            }
            let mut cells = vec![
                Cell::text(format!("{} ({})", row.recipe.name, row.paper_name)),
                Cell::from(k),
                Cell::from(r),
                Cell::text(format!("{pe} ({pp})")),
                Cell::num(pshare, 1),
            ];
            cells.extend(texts);
            cells.extend(shares);
            table.push_row(cells);
        }
        chart = chart.group(row.recipe.name, bars);
    }
    (table, chart)
}
