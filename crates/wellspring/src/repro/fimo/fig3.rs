//! `fimo-fig3`: FiMO Figure 3 (Bae et al., further-training gold standard,
//! §6.2): the maximum over further-training epochs of the mean cosine
//! similarity with the gold standard, as a function of the number r of seeds
//! averaged (seeds split into disjoint groups of r; mean over test points and
//! groups).

use wellspring_report::{Cell, LineChart, Report, Table};

use super::common::{CaseResult, PAPER_FINDINGS, describe, run_cases, seed_group_sizes};
use super::methods::METHOD_SETTINGS;
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "fimo-fig3",
    paper: "FiMO further-training gold standard (Bae et al.), Figure 3",
    description: "maximum cosine similarity with the further-training gold standard vs number of seeds averaged, per method and dataset",
    run,
};

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    Ok(report(ctx, run_cases(ctx)?))
}

/// The report: one table and plot per case.
fn report(ctx: &RunContext, results: Vec<CaseResult>) -> Report {
    let mut report = Report::new(
        TARGET.name,
        "FiMO Figure 3: maximum cosine similarity vs number of seeds averaged",
    )
    .paragraph(
        "The same further-training runs as fimo-fig2 (cached). For r seeds, the runs are split \
         into ⌊S/r⌋ disjoint groups of r seeds; each group gives a gold vector (eq. 13); cells are \
         the largest, over further-training epochs, of the mean ± s.e. over test points × groups \
         of the cosine with the method's scores, with the epoch where it peaks.",
    )
    .setting("methods", METHOD_SETTINGS)
    .note(PAPER_FINDINGS);
    for r in results {
        let sizes = seed_group_sizes(r.case.seeds);
        let (table, chart) = case_table(&r, &sizes);
        report = report
            .setting(format!("case.{}", r.case.label), describe(&r))
            .table(table)
            .plot(
                r.case.recipe.name.split('-').next().unwrap_or("case"),
                chart,
            );
        for s in r.skipped {
            report = report.note(format!("{}: skipped {s}", r.case.label));
        }
        for s in r.notes {
            report = report.note(format!("{}: {s}", r.case.label));
        }
    }
    report = report.note(
        "CPU scaling as in fimo-fig2: r up to 10 seeds (6 for SST-2 and MNIST) instead of 100.",
    );
    if ctx.quick {
        report = report.note("--quick: Concrete only, 4 seeds (r = 1, 2, 4), tiny sizes.");
    }
    report
}

/// One case's table (max cosine per method and r) and plot.
fn case_table(r: &CaseResult, sizes: &[usize]) -> (Table, LineChart) {
    let mut header = vec!["method".to_string(), "gradients".to_string()];
    header.extend(sizes.iter().map(|s| format!("r = {s}")));
    let mut table = Table::new(header).title(format!(
        "{}: max over epochs of the cosine with the gold standard vs seeds averaged",
        r.case.label
    ));
    let mut chart = LineChart::new(format!("{}: max cosine vs seeds", r.case.label))
        .x_label("seeds averaged r")
        .y_label("max cosine similarity")
        .markers(true);
    for m in &r.methods {
        let mut row = vec![Cell::text(m.label), Cell::text(m.gradients.clone())];
        for &s in sizes {
            row.push(
                m.report
                    .by_seeds
                    .iter()
                    .find(|b| b.r == s)
                    .map_or(Cell::text("—"), |b| {
                        Cell::text(format!(
                            "{:.3} ± {:.3} (epoch {})",
                            b.summary.mean, b.summary.std_err, b.best_epoch
                        ))
                    }),
            );
        }
        table.push_row(row);
        chart = chart.series(
            m.label,
            m.report
                .by_seeds
                .iter()
                .filter(|b| b.summary.mean.is_finite())
                .map(|b| (b.r as f64, b.summary.mean)),
        );
    }
    (table, chart)
}
