//! `brittleness`: data removal and mislabel support CDFs and AUC
//! (brittleness paper §2.1, §3, §4.2, Figures 2–3, App. A.2/A.6) for ESVM and
//! l2 on supervised and on SimCLR features, TRAK, Grad-Cos and IF, on a small
//! MNIST MLP (CPU stand-in for CIFAR-10 ResNet-9), plus a linear scan at fixed
//! sizes on a few test points for comparison with the bisection.

use wellspring_eval::{BrittlenessResult, SupportCdf, TestSupport};
use wellspring_report::{Cell, LineChart, Report, Table};

use super::common::{
    Method, Scored, Setup, Sizes, pool_label, scan_sizes, score_all, setup, sizes, support,
    support_scan,
};
use crate::repro::{ReproError, RunContext, Target};
use wellspring_eval::ModelRetrainer;

pub(in crate::repro) const TARGET: Target = Target {
    name: "brittleness",
    paper: "Data brittleness paper (SSL features), Figures 2-3 and Table 2 (ResNet-9 row)",
    description: "removal and mislabel support CDFs / AUC by bisection for ESVM, l2 (supervised and SimCLR features), TRAK, Grad-Cos, IF",
    run,
};

/// Step points of a support CDF for plotting, from 0 to `N_max`.
fn steps(c: &SupportCdf) -> Vec<(f64, f64)> {
    let mut v = vec![(0.0, 0.0)];
    v.extend(c.steps.iter().map(|&(k, f)| (k as f64, f)));
    v.push((c.max_k as f64, c.found_fraction));
    v
}

/// A support size, "not found" beyond `N_max`, or "excluded" when the
/// full-data models already misclassify the point.
fn support_cell(p: &TestSupport) -> Cell {
    match (p.excluded, p.support) {
        (true, _) => Cell::text("excluded"),
        (false, Some(k)) => Cell::from(k),
        (false, None) => Cell::text("not found"),
    }
}

/// Per-test-point supports: one row per test point, one column per method.
fn per_test_table(title: String, labels: &[String], results: &[BrittlenessResult]) -> Table {
    let mut header = vec!["test point".to_string(), "label".to_string()];
    header.extend(labels.iter().cloned());
    let mut table = Table::new(header).title(title);
    let Some(first) = results.first() else {
        return table;
    };
    for (i, p) in first.per_test.iter().enumerate() {
        let mut row = vec![Cell::from(p.test), Cell::from(p.label)];
        row.extend(results.iter().map(|r| support_cell(&r.per_test[i])));
        table.push_row(row);
    }
    table
}

/// Removal and mislabel supports of every method.
struct Rows {
    scored: Vec<Scored>,
    removal: Vec<BrittlenessResult>,
    mislabel: Vec<BrittlenessResult>,
    scan: Table,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let sz = sizes(ctx);
    let s = setup(ctx, &sz)?;
    let rows = rows(ctx, &s, &sz)?;
    Ok(report(ctx, &s, &sz, rows))
}

fn rows(ctx: &RunContext, s: &Setup, sz: &Sizes) -> Result<Rows, ReproError> {
    let retrainer = s.retrainer(ctx)?;
    let scored = score_all(ctx, s, sz)?;
    let (mut removal, mut mislabel) = (Vec::new(), Vec::new());
    let bar = ctx.progress.bar(scored.len() as u64, "brittleness methods");
    for m in &scored {
        removal.push(support(ctx, m, &retrainer, sz, false)?);
        mislabel.push(support(ctx, m, &retrainer, sz, true)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let scan = scan_table(ctx, &scored, &removal, &retrainer, sz)?;
    Ok(Rows {
        scored,
        removal,
        mislabel,
        scan,
    })
}

fn report(ctx: &RunContext, s: &Setup, sz: &Sizes, r: Rows) -> Report {
    let mut table = Table::new([
        "method",
        "candidates",
        "removal AUC",
        "± s.e.",
        "removal found (%)",
        "mislabel AUC",
        "± s.e.",
        "mislabel found (%)",
        "excluded",
        "attribution (s)",
    ])
    .title(format!(
        "Support by bisection (budget {}, N_max {}, {} models per check) over {} class-balanced test points; \
         AUC ± s.e. over the test points the full-data models classify correctly (the rest excluded)",
        sz.budget,
        sz.max_k,
        sz.models,
        s.test.len()
    ));
    let mut removal = LineChart::new("Data removal support CDF")
        .x_label("training points removed")
        .y_label("fraction of test points flipped");
    let mut mislabel = LineChart::new("Data mislabel support CDF")
        .x_label("training points relabelled")
        .y_label("fraction of test points flipped");
    let labels: Vec<String> = r.scored.iter().map(|m| m.label.clone()).collect();
    for ((m, rem), mis) in r.scored.iter().zip(&r.removal).zip(&r.mislabel) {
        table.push_row([
            Cell::text(m.label.clone()),
            Cell::text(pool_label(m.method.pool())),
            Cell::num(rem.cdf.auc, 3),
            Cell::num(rem.cdf.auc_std_err, 3),
            Cell::num(100.0 * rem.cdf.found_fraction, 1),
            Cell::num(mis.cdf.auc, 3),
            Cell::num(mis.cdf.auc_std_err, 3),
            Cell::num(100.0 * mis.cdf.found_fraction, 1),
            Cell::from(rem.excluded),
            Cell::num(m.seconds, 2),
        ]);
        removal = removal.series(m.label.clone(), steps(&rem.cdf));
        mislabel = mislabel.series(m.label.clone(), steps(&mis.cdf));
    }
    let mut report = Report::new(TARGET.name, "Data brittleness: removal and mislabel support")
        .paragraph(
            "For each test point, training points are ranked by the method's scores and the \
             smallest number whose removal (or relabelling to the test point's most frequent \
             runner-up class; points already of that class are skipped) flips the prediction of \
             freshly retrained models is searched by bisection. Candidates: as in the paper, the \
             similarity methods (ESVM, l2) rank only the test point's class (§3 'Sign \
             Estimation', App. A.4), Grad-Cos ranks every point (App. A.5.1: 'we do not filter \
             images to be of the same class'), and so do TRAK and IF with their signed scores. \
             Test points that the full-data models already misclassify are excluded (the paper \
             selects correctly classified points; counting them as support 0 would give every \
             method full credit for them). CDF: fraction of the remaining test points flipped \
             within k points; AUC: normalised area under it (larger = smaller supports found = \
             better attribution), ± its standard error over those test points.",
        )
        .setting("train_points", s.train.len() as u64)
        .setting("test_points", s.test.len() as u64)
        .setting("epochs", s.train_config.epochs as u64)
        .setting("batch_size", s.train_config.batch_size as u64)
        .setting("lr", s.train_config.lr)
        .setting("model_test_accuracy", s.test_accuracy)
        .setting("bisection_budget", sz.budget as u64)
        .setting("max_support", sz.max_k as u64)
        .setting("models_per_check", sz.models as u64)
        .setting("trak_models", sz.trak_models as u64)
        .setting("simclr_epochs", sz.ssl_epochs as u64)
        .setting("if_cg_iterations", sz.cg_iters as u64)
        .setting("scan_points", sz.scan_points as u64)
        .table(table)
        .table(per_test_table(
            "Data removal support per test point (bisection)".into(),
            &labels,
            &r.removal,
        ))
        .table(per_test_table(
            "Data mislabel support per test point (bisection)".into(),
            &labels,
            &r.mislabel,
        ))
        .table(r.scan)
        .plot("brittleness-removal", removal)
        .plot("brittleness-mislabel", mislabel)
        .note(
            "Paper (CIFAR-10, ResNet-9, 100 test points, budget 7, 5 models, N_max 1280): removal \
             AUC 0.313 for ESVM on MoCo features (1 model) and 0.355 for TRAK (100 models) (Table 2, \
             ResNet-9 row); up to 1280 removed points ESVM-MoCo flips 55% of test points, TRAK(20) \
             28%, Datamodels(10K) 31%; mislabelling < 30 points flips 47% (ESVM-MoCo) vs 20% \
             (TRAK(100)) (§4.2, Figure 3). Figures 2 and 8: self-supervised features beat supervised \
             ones, and ESVM beats l2.",
        )
        .note(format!(
            "CPU stand-in: the first {} MNIST training digits and dattri's MLP 784-128-64-10 ({} \
             epochs) instead of CIFAR-10 ResNet-9; {} class-balanced test points (among those the attributed model classifies \
             correctly, as the paper does on ImageNet), {} model(s) per check and N_max {} instead of 100, 5 and 1280; SimCLR (NT-Xent, two augmentations) \
             encoder of the same MLP body trained {} epoch(s) on the same digits instead of MoCo \
             ResNet-18 for 800 epochs.",
            s.train.len(),
            s.train_config.epochs,
            s.test.len(),
            sz.models,
            sz.max_k,
            sz.ssl_epochs
        ));
    if ctx.quick {
        report = report.note("--quick: tiny sizes, numbers are a smoke test only.");
    }
    report
}

/// Bisection vs linear scan at fixed doubling sizes on the first
/// `sz.scan_points` test points, for the SimCLR-ESVM and TRAK rankings.
fn scan_table(
    ctx: &RunContext,
    methods: &[Scored],
    bisection: &[BrittlenessResult],
    retrainer: &ModelRetrainer,
    sz: &Sizes,
) -> Result<Table, ReproError> {
    let mut table = Table::new([
        "method",
        "test point",
        "bisection support",
        "bisection checks",
        "linear-scan support",
        "linear-scan checks",
    ])
    .title(format!(
        "Removal support: bisection vs linear scan at sizes {:?}",
        scan_sizes(sz.max_k)
    ));
    for (m, b) in methods.iter().zip(bisection) {
        if !matches!(m.method, Method::EsvmSsl | Method::Trak) {
            continue;
        }
        let scan = support_scan(ctx, m, retrainer, sz)?;
        for p in &scan.per_test {
            let Some(bp) = b.per_test.iter().find(|q| q.test == p.test) else {
                continue;
            };
            table.push_row([
                Cell::text(m.label.clone()),
                Cell::from(p.test),
                support_cell(bp),
                Cell::from(bp.trace.len()),
                support_cell(p),
                Cell::from(p.trace.len()),
            ]);
        }
    }
    Ok(table)
}
