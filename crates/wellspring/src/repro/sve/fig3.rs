//! `sve-fig3`: accuracy and wall time of Random (Fixed), Random (Adaptive),
//! CRAIG, GLISTER, GradMatch and RandE at a 10% subset (SVE, Mahmood, Yin &
//! Khanna 2025, §4.3, Figure 3), Fashion-MNIST CNN standing in for
//! CIFAR-10 / ResNet-18. Shares runs with `sve-table4` through the cache.

use wellspring_report::{BarChart, Cell, Report, ScatterChart, Table};

use super::select::{FMNIST_CNN, Method, load_pair, mean_std, quick_note, seeds, stand_in_note};
use super::table4::{FRACTION, run_pair};
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "sve-fig3",
    paper: "Mahmood, Yin & Khanna 2025 (SVE), Figure 3",
    description: "accuracy and time of Random (fixed/adaptive), CRAIG, GLISTER, GradMatch, RandE at 10% (Fashion-MNIST CNN)",
    run,
};

const METHODS: [Method; 6] = [
    Method::RandomFixed,
    Method::Random,
    Method::Craig,
    Method::Glister,
    Method::GradMatch,
    Method::RandE,
];

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let n_seeds = seeds(ctx);
    let data = load_pair(ctx, FMNIST_CNN, n_seeds)?;
    let bar = ctx
        .progress
        .bar((n_seeds * (METHODS.len() + 1)) as u64, "sve-fig3 runs");
    let r = run_pair(ctx, data, &METHODS, FRACTION, &|| bar.inc(1))?;
    bar.finish_and_clear();

    let full_acc = r.full_accuracy();
    let full_time = mean_std(&r.full.iter().map(|o| o.total_s).collect::<Vec<_>>()).0;
    let mut table = Table::new([
        "method",
        "test accuracy (%)",
        "wall time (s)",
        "selection (s)",
        "train (s)",
        "time vs full data",
        "rounds",
    ])
    .title(format!(
        "10% subsets, mean ± std over seeds; full data: {full_acc:.2}% in {full_time:.1} s"
    ));
    let mut points = Vec::new();
    for m in METHODS {
        let runs = r.runs(m);
        let v = |f: fn(&super::select::Outcome) -> f64| runs.iter().map(f).collect::<Vec<_>>();
        let t = mean_std(&v(|o| o.total_s)).0;
        points.push((m, t, mean_std(&v(|o| o.accuracy)).0));
        table.push_row([
            Cell::text(m.label()),
            Cell::mean_std_of(&v(|o| o.accuracy), 2),
            Cell::mean_std_of(&v(|o| o.total_s), 1),
            Cell::num(mean_std(&v(|o| o.selection_s)).0, 2),
            Cell::num(mean_std(&v(|o| o.train_s)).0, 1),
            Cell::num(t / full_time, 2),
            Cell::from(runs.first().map_or(0, |o| o.rounds)),
        ]);
    }
    let labels = METHODS.iter().map(|m| m.label());
    let acc_chart = BarChart::new("Test accuracy at 10% (higher is better)")
        .x_label("method")
        .y_label("test accuracy (%)")
        .categories(labels.clone())
        .group("Fashion-MNIST CNN", points.iter().map(|p| p.2));
    let time_chart = BarChart::new("Wall time at 10%, selection included (lower is better)")
        .x_label("method")
        .y_label("wall time (s)")
        .categories(labels)
        .group("Fashion-MNIST CNN", points.iter().map(|p| p.1));
    let scatter = points.iter().fold(
        ScatterChart::new("Accuracy vs wall time at 10%")
            .x_label("wall time (s)")
            .y_label("test accuracy (%)"),
        |c, p| c.series(p.0.label(), [(p.1, p.2)]),
    );
    let mut report = Report::new(
        TARGET.name,
        "SVE Figure 3: accuracy and time of selection strategies",
    )
    .paragraph(
        "Every strategy trains the same initial model for E epochs of ⌈0.1n/B⌉ steps; the \
             adaptive ones reselect every e epochs (Random (Fixed) keeps its first subset). Wall \
             time includes selection and the forward passes that feed it.",
    )
    .setting("pair", r.data.describe())
    .setting("fraction", FRACTION)
    .table(table)
    .plot("accuracy-time", scatter)
    .plot("accuracy", acc_chart)
    .plot("time", time_chart)
    .note(stand_in_note())
    .note(
        "The paper gives Figure 3 only as a plot (ResNet-18, CIFAR-10), so there are no paper \
             numbers beside ours; its claims: Random (Adaptive) is on par with CRAIG, GLISTER and \
             GradMatch at a fraction of their time, Random (Fixed) trails, RandE is best.",
    );
    for m in METHODS {
        report = report.setting(format!("method.{}", m.label()), m.settings());
    }
    if ctx.quick {
        report = report.note(quick_note(&[FMNIST_CNN]));
    }
    Ok(report)
}
