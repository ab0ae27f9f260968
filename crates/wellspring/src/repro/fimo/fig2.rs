//! `fimo-fig2`: FiMO Figure 2 (Bae et al., further-training gold standard,
//! §6.2): cosine similarity between each gradient-based method's scores and
//! the further-training gold standard (eq. 13, mean subtraction, all seeds
//! averaged) as a function of further-training epochs, per dataset.

use wellspring_report::{Cell, LineChart, Report, Table};

use super::common::{CaseResult, PAPER_FINDINGS, describe, run_cases};
use super::methods::METHOD_SETTINGS;
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "fimo-fig2",
    paper: "FiMO further-training gold standard (Bae et al.), Figure 2",
    description: "cosine similarity of Grad-Dot/Cos, CG, LiSSA(-H), Arnoldi, EK-FAC, DataInf, TRAK-1 with the further-training gold standard vs further-training epochs",
    run,
};

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    Ok(report(ctx, run_cases(ctx)?))
}

/// The report: one table and plot per case.
fn report(ctx: &RunContext, results: Vec<CaseResult>) -> Report {
    let mut report = Report::new(
        TARGET.name,
        "FiMO Figure 2: cosine similarity with further training vs epochs",
    )
    .paragraph(
        "From each final model, further train with SGD at a tenth of the original learning rate \
         on D_{-i} (subtracting L(z_i)/n in every batch) for each of l left-out points and r batch \
         orders; the gold score of z_i is the mean over seeds of its test loss minus the mean \
         over L (eq. 13). Cells: mean ± s.e. over test points of the cosine between the gold \
         vector over L and the method's scores over L, after each number of further-training \
         epochs.",
    )
    .setting("methods", METHOD_SETTINGS)
    .note(PAPER_FINDINGS);
    for r in results {
        let (table, chart) = case_table(&r);
        report = report
            .setting(format!("case.{}", r.case.label), describe(&r))
            .table(table)
            .plot(
                r.case.recipe.name.split('-').next().unwrap_or("case"),
                chart,
            )
            .note(format!(
                "{}: further training took {:.1} s (0 when cached).",
                r.case.label, r.further_seconds
            ));
        for s in r.skipped {
            report = report.note(format!("{}: skipped {s}", r.case.label));
        }
        for s in r.notes {
            report = report.note(format!("{}: {s}", r.case.label));
        }
    }
    report = report.note(
        "CPU scaling: l and m are 20–30 instead of the paper's 100, r = 6–10 seeds instead of 100, \
         further training up to 50 epochs (Concrete, Energy), 20 (HELOC), 10 (Adult) instead of 500/200/25, 3 (SST-2, MNIST) instead of 1 and 10, HELOC/Adult/SST-2 on \
         their first 2000 training points, SST-2 with an embedding-bag model (stand-in for \
         BERT-base), an MNIST CNN on 500 digits (stand-in for CIFAR-10 ResNet-9), UCI Adult \
         (stand-in for Folktables ACSIncome).",
    );
    if ctx.quick {
        report = report.note(
            "--quick: Concrete only, 200 training points trained 100 epochs, 8 test points, \
             12 left-out points, 4 seeds, further epochs 1–8; LiSSA depth 200; CG, LiSSA and \
             Arnoldi on Kronecker-512 sketches (no p × p curvature).",
        );
    }
    report
}

/// One case's table (cosine per method and epoch) and plot.
fn case_table(r: &CaseResult) -> (Table, LineChart) {
    let mut header = vec![
        "method".to_string(),
        "gradients".to_string(),
        "fit + attribute (s)".to_string(),
    ];
    header.extend(r.case.epochs.iter().map(|e| format!("epoch {e}")));
    header.push("peak epoch".to_string());
    let mut table = Table::new(header).title(format!(
        "{}: cosine with the gold standard vs further-training epochs",
        r.case.label
    ));
    let mut chart = LineChart::new(format!("{}: cosine vs further training", r.case.label))
        .x_label("further-training epochs")
        .y_label("cosine similarity")
        .markers(true);
    for m in &r.methods {
        let mut row = vec![
            Cell::text(m.label),
            Cell::text(m.gradients.clone()),
            Cell::num(m.seconds, 2),
        ];
        for ec in &m.report.by_epoch {
            row.push(Cell::text(format!(
                "{:.3} ± {:.3}",
                ec.summary.mean, ec.summary.std_err
            )));
        }
        let peak = m
            .report
            .by_epoch
            .iter()
            .filter(|e| e.summary.mean.is_finite())
            .max_by(|a, b| a.summary.mean.total_cmp(&b.summary.mean))
            .map_or(Cell::text("—"), |e| Cell::from(e.epoch));
        row.push(peak);
        table.push_row(row);
        chart = chart.series(
            m.label,
            m.report
                .by_epoch
                .iter()
                .filter(|e| e.summary.mean.is_finite())
                .map(|e| (e.epoch as f64, e.summary.mean)),
        );
    }
    (table, chart)
}
