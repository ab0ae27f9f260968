//! `lds-mnist`: the head-to-head benchmark against dattri (issue D): every
//! registered attribution method on dattri's MNIST-10 setting (first 5000
//! training / 500 test digits; logistic regression and the MLP
//! 784-128-64-10 with dattri's training recipes), with its LDS (Ilyas et al.
//! 2022; brittleness paper §2.1), the wall time of fit + attribute for the
//! full 5000 × 500 score matrix, and the peak resident memory, beside
//! dattri's wall times. Gradient methods run twice where dattri has the
//! same estimator: with their default projection (labelled with it,
//! `grad-dot (kronecker:512)`) and exact (`grad-dot (exact)`, identity
//! projection, the hyper-parameters of [`super::dattri_match`]). The dattri
//! column comes from `results/compare-dattri.json` (`cargo xtask
//! compare-dattri`, same machine, same settings) when it exists, else from
//! issue D's reference numbers, labelled as such.

use std::collections::BTreeMap;
use std::time::Instant;

use wellspring_attrib::methods::grad_dot::DEFAULT_PROJECTION;
use wellspring_attrib::methods::trak::{DEFAULT_TRAK_PROJECTION, EnsembleParams, train_ensemble};
use wellspring_attrib::{MethodOptions, ModelSource, ProjectionSpec, by_name, methods};
use wellspring_data::sample;
use wellspring_eval::{Lds, ModelRetrainer, Output};
use wellspring_report::{BarChart, Cell, CellValue, Report, ReportRecord, Table};

use super::dattri_match::{self as dm, PeakMemory};
use super::recipes::{device, load_data, recipe, train_cached};
use super::{ReproError, RunContext, Target};

pub(super) const TARGET: Target = Target {
    name: "lds-mnist",
    paper: "dattri benchmark (Deng et al. 2024), MNIST-10 LR / MLP; issue D head-to-head",
    description: "LDS, wall time and peak memory of every attribution method on dattri's MNIST setting (5000 x 500, LR and MLP)",
    run,
};

/// dattri 0.3 / torch 2.15 wall times on a 2-core CPU with dattri's own
/// defaults, from issue D's text (`(method, LR seconds, MLP seconds)`);
/// `None` where the issue gives none. Used only when no
/// `compare-dattri.json` measured on this machine is present.
const DATTRI_SECONDS: [(&str, Option<f64>, Option<f64>); 11] = [
    ("grad-dot", Some(1.1), Some(33.0)),
    ("grad-cos", None, Some(32.0)),
    ("trak", Some(0.9), Some(17.0)),
    ("if-explicit", Some(27.0), None),
    ("if-cg", Some(17.0), Some(169.0)),
    ("if-lissa", Some(32.0), None),
    ("if-arnoldi", Some(1.3), Some(20.0)),
    ("ekfac", Some(2.3), Some(72.0)),
    ("datainf", Some(87.0), None),
    ("rps", None, Some(0.5)),
    ("tracin", None, None),
];

struct ModelCase {
    recipe: &'static str,
    label: &'static str,
    dattri_col: usize,
}

const MODELS: [ModelCase; 2] = [
    ModelCase {
        recipe: "mnist5k-logreg",
        label: "LR",
        dattri_col: 0,
    },
    ModelCase {
        recipe: "mnist5k-mlp",
        label: "MLP",
        dattri_col: 1,
    },
];

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let fail = |what: String| {
        move |e: wellspring_attrib::AttribError| ReproError::Failed {
            target: TARGET.name,
            reason: format!("{what}: {e}"),
        }
    };
    let eval_fail = |what: &'static str| {
        move |e: wellspring_eval::EvalError| ReproError::Failed {
            target: TARGET.name,
            reason: format!("{what}: {e}"),
        }
    };
    let (n_train, n_test, m_subsets) = if ctx.quick {
        (500, 40, 6)
    } else {
        (5000, 500, 50)
    };
    let ensembles: &[usize] = if ctx.quick { &[2] } else { &[10, 50] };
    let mut table = Table::new([
        "model",
        "method",
        "LDS (mean ± s.e.)",
        "fit + attribute (s)",
        "peak RSS (MiB)",
        "peak − start (MiB)",
        "dattri time (s)",
        "speedup vs dattri",
        "dattri source",
    ])
    .title(format!(
        "LDS (Spearman, {m_subsets} half-subsets, margin) and cost of a full {n_train} × {n_test} score matrix"
    ));
    let mut skipped: Vec<String> = Vec::new();
    let measured = measured_dattri(ctx, n_train, &mut skipped);
    let mut chart = BarChart::new("LDS per method").y_label("LDS");
    let mut cats: Vec<String> = Vec::new();
    let mut per_model: Vec<(String, Vec<f64>)> = Vec::new();
    for mc in &MODELS {
        let rec = recipe(mc.recipe)?;
        let mut split = load_data(ctx, rec)?;
        split.train = sample::first_n(&split.train, n_train.min(split.train.len()))?;
        split.test = sample::first_n(&split.test, n_test.min(split.test.len()))?;
        let (train, test) = (&split.train, &split.test);
        let config = rec.model_config(train);
        let seed = ctx.seed_for("lds-mnist.model");
        let train_config = rec.train_config(ctx.quick, seed);
        let (model, _) = train_cached(ctx, mc.recipe, train, &config, &train_config, seed)?;
        let retrainer =
            ModelRetrainer::new(train, test, config.clone(), train_config.clone(), &device())
                .map_err(eval_fail("retrainer"))?
                .with_cache(ctx.cache.clone())
                .with_progress(ctx.progress.clone());
        let t = Instant::now();
        let truth = Lds::params()
            .m(m_subsets)
            .alpha(0.5)
            .seed(ctx.seed_for("lds-mnist.subsets"))
            .ground_truth(&retrainer)
            .map_err(eval_fail("LDS ground truth"))?;
        let truth_s = t.elapsed().as_secs_f64();
        let source =
            ModelSource::new(model.clone(), device()).with_train_config(train_config.clone());
        let method_seed = ctx.seed_for("lds-mnist.method");
        let mut runs: Vec<Run> = Vec::new();
        for info in methods::list() {
            if info.name == "tracin-cp" {
                skipped.push(format!(
                    "{} {}: tracin-cp needs training checkpoints, which this benchmark's cached models do not keep",
                    mc.label, info.name
                ));
                continue;
            }
            let proj = default_projection(info.name, info.uses_gradients);
            runs.push(Run {
                label: dm::row_label(info.name, proj),
                opts: MethodOptions::new().seed(method_seed),
                name: info.name,
                src: None,
                setting: proj.map(|p| p.to_string()),
            });
        }
        let n_params = model.n_params();
        let scale = dm::lissa_scale(&model.clone().into(), train, &device(), method_seed)?;
        skipped.push(format!(
            "{}: exact if-lissa scale s = {scale:.4} (2 (μ + λ), μ the largest top eigenvalue of \
             the full-batch Hessian and of {} minibatch Hessians, not timed).",
            mc.label,
            dm::SCALE_BATCHES
        ));
        for m in dm::EXACT_METHODS {
            match dm::exact_options(m, n_params, Some(scale), method_seed) {
                Ok(opts) => runs.push(Run {
                    label: dm::row_label(m, Some(ProjectionSpec::Identity)),
                    opts,
                    name: m,
                    src: None,
                    setting: Some("exact".into()),
                }),
                Err(why) => skipped.push(format!("{} {m} (exact): not run: {why}.", mc.label)),
            }
        }
        let mut ensemble_s = Vec::new();
        for &m in ensembles {
            let t = Instant::now();
            let members = train_ensemble(
                &source,
                train,
                &EnsembleParams::new(m).seed(ctx.seed_for("lds-mnist.trak")),
                Some(&ctx.cache),
            )
            .map_err(fail(format!("TRAK ensemble of {m}")))?;
            ensemble_s.push((m, t.elapsed().as_secs_f64()));
            let opts = MethodOptions::new()
                .seed(ctx.seed_for("lds-mnist.method"))
                .param("models", m.to_string());
            runs.push(Run {
                label: format!("trak (M = {m})"),
                opts,
                name: "trak",
                src: Some(source.clone().with_ensemble(members)),
                setting: None,
            });
        }
        let bar = ctx
            .progress
            .bar(runs.len() as u64, format!("lds-mnist {}", mc.label));
        let mut values = Vec::new();
        for Run {
            label,
            opts,
            name,
            src,
            setting,
        } in &runs
        {
            let method = by_name(name, opts).map_err(fail(label.clone()))?;
            let mem = PeakMemory::start();
            let t = Instant::now();
            let scores = method
                .fit_dyn(src.as_ref().unwrap_or(&source), train)
                .and_then(|f| f.attribute(test));
            let secs = t.elapsed().as_secs_f64();
            let peak = mem.finish();
            bar.inc(1);
            let scores = match scores {
                Ok(s) => s,
                Err(e) => {
                    skipped.push(format!("{} {label}: {e}", mc.label));
                    continue;
                }
            };
            let lds = truth
                .score(&scores, Output::Margin)
                .map_err(eval_fail("LDS"))?;
            let [dattri, ratio, source_cell] = dattri_cells(
                measured.as_ref(),
                mc,
                name,
                setting.as_deref(),
                secs,
            );
            table.push_row([
                Cell::text(mc.label),
                Cell::text(label.clone()),
                Cell::text(format!(
                    "{:.3} ± {:.3}",
                    lds.summary.mean, lds.summary.std_err
                )),
                Cell::num(secs, 2),
                peak.map_or(Cell::text("n/a"), |p| Cell::num(p.0, 0)),
                peak.map_or(Cell::text("n/a"), |p| Cell::num(p.1, 0)),
                dattri,
                ratio,
                source_cell,
            ]);
            if !cats.contains(label) {
                cats.push(label.clone());
            }
            values.push((label.clone(), lds.summary.mean));
        }
        bar.finish_and_clear();
        per_model.push((
            mc.label.to_string(),
            cats.iter()
                .map(|c| values.iter().find(|(l, _)| l == c).map_or(0.0, |v| v.1))
                .collect(),
        ));
        ctx_note_times(&mut skipped, mc.label, truth_s, &ensemble_s);
    }
    chart = chart.categories(cats.clone());
    for (label, v) in per_model {
        let mut v = v;
        v.resize(cats.len(), 0.0);
        chart = chart.group(label, v);
    }
    let mut report = Report::new(
        TARGET.name,
        "dattri's MNIST benchmark: LDS, wall time and memory",
    );
    report = report
        .paragraph(
            "Every registered method with its default settings on dattri's MNIST-10 benchmark \
             setting, the row labelled with the gradient projection it uses by default; and, for \
             the gradient methods dattri implements the same way, an exact row (no projection) \
             with the hyper-parameters `cargo xtask compare-dattri` gives both libraries \
             (absolute damping λ = 0.01 on the Hessian of the mean training loss, CG 10 \
             iterations, LiSSA depth 200 / batch 64 / scale 2(μ_max + λ), DataInf one λ for every \
             layer). LDS: Spearman correlation, per test point, between the summed scores of a \
             random half of the training set and the margin of a model retrained on that half \
             (same recipe, cached), averaged over test points. Time: one fit + attribute of the \
             full score matrix in this process (ensemble training for TRAK-M excluded and listed \
             in the notes). Peak RSS: the process's VmHWM after resetting it with \
             /proc/self/clear_refs before the method (includes the data and models already \
             loaded); 'peak − start' is the growth during the method.",
        )
        .setting("train_points", n_train as u64)
        .setting("test_points", n_test as u64)
        .setting("lds_subsets", m_subsets as u64)
        .setting("lds_alpha", 0.5)
        .setting("trak_ensembles", format!("1, {ensembles:?}"))
        .setting("models", "mnist5k-logreg (Linear 784-10, SGD lr 0.01, batch 32, 20 epochs); mnist5k-mlp (784-128-64-10, dropout 0.1, SGD lr 0.01 momentum 0.9, batch 64, 50 epochs)")
        .setting("device", "flex (CPU), 2 rayon threads on the development machine")
        .setting("exact_damping", dm::DAMPING)
        .setting("exact_cg_iterations", dm::CG_ITERS as u64)
        .setting(
            "exact_lissa",
            format!(
                "depth {}, batch {}, repeats {}",
                dm::LISSA_DEPTH,
                dm::LISSA_BATCH,
                dm::LISSA_REPEATS
            ),
        )
        .table(table)
        .plot("lds-mnist-lds", chart)
        .note(
            "Exact rows: logistic regression uses its Gauss-Newton matrix, which is its \
             Hessian, formed (7850 × 7850); the MLP's Hessian (109 386 parameters) is applied \
             matrix-free (curvature=hessian), so the MLP has no exact if-explicit row. A \
             sketched influence row (kronecker:512, relative damping) and its exact row solve \
             different systems; their LDS and time differ for that reason too.",
        )
        .note(
            "dattri's published LDS for this setting are shown only as an image in its README \
             (assets/images/benchmark-result-mnist.png) and in the paper's figures; we found \
             no text table to copy numbers from, so the column is left out rather than guessed.",
        );
    for s in skipped {
        report = report.note(s);
    }
    if ctx.quick {
        report = report.note(format!(
            "--quick: {n_train} training / {n_test} test points, {m_subsets} LDS subsets, 2 \
             training epochs, TRAK ensembles of {ensembles:?}; numbers are not comparable with \
             dattri's."
        ));
    }
    Ok(report)
}

/// One method run of the table.
struct Run {
    label: String,
    opts: MethodOptions,
    name: &'static str,
    src: Option<ModelSource>,
    /// Projection as `compare-dattri` names its rows (`exact`, `kronecker:512`).
    setting: Option<String>,
}

/// The projection a gradient method uses by default (`None`: no projection
/// applies, as for K-FAC/EK-FAC's eigenbasis or the non-gradient methods).
fn default_projection(name: &str, uses_gradients: bool) -> Option<ProjectionSpec> {
    match name {
        "trak" => Some(DEFAULT_TRAK_PROJECTION),
        "kfac" | "ekfac" => None,
        _ if uses_gradients => Some(DEFAULT_PROJECTION),
        _ => None,
    }
}

/// dattri's side of one `compare-dattri` row: dattri's time cell and the
/// ratio measured in that run.
struct Measured {
    dattri: CellValue,
    ratio: Option<f64>,
}

/// `(model, method, wellspring setting)` → dattri's time, from
/// `<out>/compare-dattri.json` when it was written for the same mode and
/// size; `None` (with a note) otherwise.
fn measured_dattri(
    ctx: &RunContext,
    n_train: usize,
    notes: &mut Vec<String>,
) -> Option<BTreeMap<(String, String, String), Measured>> {
    let path = ctx.out_dir.join("compare-dattri.json");
    let rec = match ReportRecord::read(&path) {
        Ok(r) => r,
        Err(_) => {
            notes.push(format!(
                "No {} (run `cargo xtask compare-dattri`): the dattri column shows issue D's \
                 reference times of dattri with its own defaults, which are not like for like \
                 (different projection and solver settings, another machine).",
                path.display()
            ));
            return None;
        }
    };
    let same_mode = rec.settings.get("quick").and_then(|v| v.as_bool()) == Some(ctx.quick)
        && rec.settings.get("train_points").and_then(|v| v.as_u64()) == Some(n_train as u64);
    if !same_mode {
        notes.push(format!(
            "{} was written for another size or mode; the dattri column falls back to issue \
             D's reference times.",
            path.display()
        ));
        return None;
    }
    let text = |c: &Cell| match &c.value {
        CellValue::Text { text } => text.clone(),
        _ => String::new(),
    };
    let num = |c: &Cell| match c.value {
        CellValue::Num { value, .. } => Some(value),
        _ => None,
    };
    let mut out = BTreeMap::new();
    for row in rec.tables.first()?.rows.iter().filter(|r| r.len() > 6) {
        let ratio = num(&row[4])
            .zip(num(&row[5]))
            .map(|(w, d)| d / w.max(1e-9));
        out.insert(
            (text(&row[0]), text(&row[1]), text(&row[2])),
            Measured {
                dattri: row[5].value.clone(),
                ratio,
            },
        );
    }
    let when = rec.environment.date_utc.clone();
    notes.push(format!(
        "dattri column: measured by `cargo xtask compare-dattri` ({when}, {}) on this \
         machine with the same data, weights and settings as the wellspring row, both sides \
         in the same run; 'speedup vs dattri' is that run's ratio (its wellspring time may \
         differ from this table's by machine noise). Rows without a dattri counterpart (the \
         sketched influence rows: dattri's IF attributors take no projector) show —.",
        path.display()
    ));
    Some(out)
}

/// The dattri time, speedup and source cells of a row.
fn dattri_cells(
    measured: Option<&BTreeMap<(String, String, String), Measured>>,
    mc: &ModelCase,
    name: &str,
    setting: Option<&str>,
    secs: f64,
) -> [Cell; 3] {
    let none = || [Cell::text("—"), Cell::text("—"), Cell::text("—")];
    match measured {
        Some(map) => {
            let key = (
                mc.label.to_string(),
                name.to_string(),
                setting.unwrap_or("exact").to_string(),
            );
            // the M = 1 row of a method without projection (ekfac) is compared
            // with compare-dattri's unprojected run
            let Some(m) = map.get(&key).filter(|_| setting.is_some() || name == "ekfac") else {
                return none();
            };
            // rows whose own settings differ from compare-dattri's matched run say so
            let src = match name {
                "ekfac" => "compare-dattri (there labels=true, λ = 0.01)",
                "trak" => "compare-dattri (there lambda = 0)",
                _ => "compare-dattri",
            };
            [
                Cell {
                    value: m.dattri.clone(),
                    paper: None,
                },
                m.ratio.map_or(Cell::text("—"), |r| Cell::text(speedup(r))),
                Cell::text(src),
            ]
        }
        None => {
            if setting.is_some_and(|s| s == "exact") {
                return none();
            }
            let reference = DATTRI_SECONDS
                .iter()
                .find(|(n, ..)| *n == name)
                .and_then(|r| if mc.dattri_col == 0 { r.1 } else { r.2 });
            match reference {
                Some(d) => [
                    Cell::num(d, 1),
                    Cell::text(speedup(d / secs.max(1e-9))),
                    Cell::text("issue D reference (dattri defaults; not like for like)"),
                ],
                None => none(),
            }
        }
    }
}

fn ctx_note_times(notes: &mut Vec<String>, model: &str, truth_s: f64, ensembles: &[(usize, f64)]) {
    let ens: Vec<String> = ensembles
        .iter()
        .map(|(m, s)| format!("M = {m}: {s:.1} s"))
        .collect();
    notes.push(format!(
        "{model}: LDS ground truth (retraining, cached across runs) {truth_s:.1} s; TRAK ensemble training {}.",
        if ens.is_empty() { "none".into() } else { ens.join(", ") }
    ));
}

/// `12x`, `3.4x` or `0.44x`: enough digits to read a ratio below 10.
fn speedup(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 1.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}
