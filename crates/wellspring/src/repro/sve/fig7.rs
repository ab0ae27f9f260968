//! `sve-fig7`: identical class and identical subclass tests (Hanawa et al.
//! 2021; SVE, Mahmood, Yin & Khanna 2025, §5.1.3, Figure 7): the share of
//! test points whose top-1 training point has the same class (subclass), on a
//! binary superclass relabelling with the original classes as subclasses
//! (the paper's CIFAR-10B idea).

use wellspring_data::{SuperclassMap, relabel};
use wellspring_report::{BarChart, Cell, Report, Table};

use super::exemplars::{METHODS, Resolved, method_settings, resolve, split_for, train_on};
use crate::repro::method::MethodSpec;
use crate::repro::recipes::{FMNIST_MLP, MNIST_MLP, Recipe};
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "sve-fig7",
    paper: "Mahmood, Yin & Khanna 2025 (SVE), Figure 7",
    description: "identical class / identical subclass tests of PAE, Emb, TracIn, RPS, IF on binary superclass relabellings",
    run,
};

/// The seeded random baseline, for the chance level.
const RANDOM: MethodSpec = MethodSpec::new("Random", "random");

/// (recipe, superclass map name, map).
fn settings(quick: bool) -> Vec<(&'static Recipe, &'static str, SuperclassMap)> {
    let mut v = vec![(
        &MNIST_MLP,
        "digit < 5 (binary; subclasses = the 10 digits)",
        SuperclassMap::mnist_digit_lt5(),
    )];
    if !quick {
        v.push((
            &FMNIST_MLP,
            "footwear (binary; subclasses = the 10 Fashion-MNIST classes)",
            SuperclassMap::fashion_footwear(),
        ));
    }
    v
}

/// One binary relabelling: its model and every method's (identical
/// subclass, identical class) rates (`None`: unavailable).
struct Row {
    recipe: &'static Recipe,
    map_name: &'static str,
    n_train: usize,
    n_test: usize,
    accuracy: f64,
    rates: Vec<Option<(f64, f64)>>,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let seed = ctx.seed_for("sve-fig7.methods");
    let all: Vec<MethodSpec> = METHODS.iter().copied().chain([RANDOM]).collect();
    let resolved: Vec<Resolved> = all.iter().map(|m| resolve(*m, seed)).collect();
    let mut rows = Vec::new();
    for (recipe, map_name, map) in settings(ctx.quick) {
        let (train, test) = split_for(ctx, recipe)?;
        let (train, test) = (relabel(&train, &map)?, relabel(&test, &map)?);
        let tag = format!(
            "{}/{}",
            recipe.name,
            map_name.split(' ').next().unwrap_or("super")
        );
        let t = train_on(ctx, recipe, &tag, train, test)?;
        let tr = t.train.labels_checked()?;
        let te = t.test.labels_checked()?;
        let tr_sub = &t
            .train
            .subclasses()
            .expect("relabel sets subclasses")
            .labels;
        let te_sub = &t.test.subclasses().expect("relabel sets subclasses").labels;
        let mut rates = Vec::new();
        for res in &resolved {
            rates.push(match res {
                Resolved::Ready { .. } => {
                    let lists = t.top_k(ctx, res, 1)?;
                    Some(identical_rates(&lists, tr, te, tr_sub, te_sub))
                }
                Resolved::Unavailable(_) => None,
            });
        }
        rows.push(Row {
            recipe,
            map_name,
            n_train: t.train.len(),
            n_test: t.test.len(),
            accuracy: t.accuracy,
            rates,
        });
    }
    Ok(report(&all, &resolved, &rows))
}

fn report(all: &[MethodSpec], resolved: &[Resolved], rows: &[Row]) -> Report {
    let mut table = Table::new([
        "dataset (superclasses)",
        "method",
        "identical subclass (%)",
        "identical class (%)",
    ])
    .title("Share of test points whose top-1 training point has the test point's subclass / class (higher is better)");
    let mut models = Table::new([
        "dataset",
        "superclasses",
        "n train",
        "n test",
        "test accuracy (%)",
    ])
    .title("Binary models behind the figure");
    let labels: Vec<&str> = all.iter().map(|m| m.label).collect();
    let mut sub_chart = BarChart::new("Identical subclass test (higher is better)")
        .x_label("method")
        .y_label("identical subclass (%)")
        .categories(labels.clone());
    let mut class_chart = BarChart::new("Identical class test (higher is better)")
        .x_label("method")
        .y_label("identical class (%)")
        .categories(labels);
    for row in rows {
        let name = row.recipe.name;
        models.push_row([
            Cell::text(name),
            Cell::text(row.map_name),
            Cell::from(row.n_train),
            Cell::from(row.n_test),
            Cell::num(row.accuracy, 2),
        ]);
        let (mut subs, mut classes) = (Vec::new(), Vec::new());
        for (m, rate) in all.iter().zip(&row.rates) {
            let (sub, class) = match rate {
                Some((s, c)) => {
                    subs.push(100.0 * s);
                    classes.push(100.0 * c);
                    (Cell::num(100.0 * s, 1), Cell::num(100.0 * c, 1))
                }
                None => {
                    subs.push(f64::NAN);
                    classes.push(f64::NAN);
                    (Cell::text("n/a"), Cell::text("n/a"))
                }
            };
            table.push_row([
                Cell::text(format!("{name} ({})", row.map_name)),
                Cell::text(m.label),
                sub,
                class,
            ]);
        }
        sub_chart = sub_chart.group(name, subs);
        class_chart = class_chart.group(name, classes);
    }
    let mut report = Report::new(
        TARGET.name,
        "SVE Figure 7: identical class and identical subclass tests",
    )
    .paragraph(
        "Identical class test: the top-1 training point of a test point has the test point's \
             (super)class; identical subclass test: it also has the test point's original class, \
             which the binary model never saw (Hanawa et al. 2021). The paper builds CIFAR-10B \
             (vehicle vs not, CIFAR-10 classes as subclasses); we relabel MNIST as digit < 5 \
             and Fashion-MNIST as footwear vs not, keeping the original classes as subclasses \
             (wellspring_data::SuperclassMap::{mnist_digit_lt5, fashion_footwear}). Test \
             points are compared with their true labels.",
    )
    .setting("device", "flex (CPU)")
    .table(table)
    .table(models)
    .plot("identical-subclass", sub_chart)
    .plot("identical-class", class_chart);
    report = method_settings(report, &resolved[..METHODS.len()]);
    report
        .note(
            "The paper reports Figure 7 as bars only (no numbers in the text). Its findings: \
             similarity methods (PAE, Emb) are competitive with or better than the \
             sensitivity methods and clearly better than IF on the subclass test; RPS scores \
             100% on the class test because it filters by class.",
        )
        .note(
            "CPU stand-ins: MNIST and Fashion-MNIST MLPs (784-128-64-2) for the paper's \
             CIFAR-10B ResNet. Quick mode: MNIST only, first 5000 training and 500 test points, \
             2 epochs.",
        )
}

/// (identical subclass rate, identical class rate) of top-1 lists.
fn identical_rates(
    lists: &[Vec<u32>],
    train: &[usize],
    test: &[usize],
    train_sub: &[usize],
    test_sub: &[usize],
) -> (f64, f64) {
    let (mut s, mut c) = (0usize, 0usize);
    for (j, l) in lists.iter().enumerate() {
        let i = l[0] as usize;
        c += (train[i] == test[j]) as usize;
        s += (train_sub[i] == test_sub[j]) as usize;
    }
    let m = lists.len().max(1) as f64;
    (s as f64 / m, c as f64 / m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_rates_count_top1_matches() {
        let lists = vec![vec![0u32], vec![1], vec![2]];
        let (s, c) = identical_rates(&lists, &[0, 1, 1], &[0, 0, 1], &[5, 3, 4], &[5, 4, 4]);
        assert!((c - 2.0 / 3.0).abs() < 1e-12);
        assert!((s - 2.0 / 3.0).abs() < 1e-12);
    }
}
