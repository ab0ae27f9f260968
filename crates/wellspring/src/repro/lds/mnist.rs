//! `lds-mnist`: the head-to-head benchmark against dattri (issue D): every
//! registered attribution method on dattri's MNIST-10 setting (first 5000
//! training / 500 test digits; logistic regression and the MLP
//! 784-128-64-10 with dattri's training recipes), with its LDS (Ilyas et al.
//! 2022; brittleness paper §2.1), the wall time of fit + attribute for the
//! full 5000 × 500 score matrix, and the peak resident memory, beside
//! dattri's wall times. Gradient methods run twice where dattri has the
//! same estimator: with their default projection (labelled with it,
//! `grad-dot (kronecker:512)`) and exact (`grad-dot (exact)`, identity
//! projection, the hyper-parameters of [`crate::repro::dattri_match`]). The
//! dattri column comes from `compare-dattri.json` in the output folder
//! (`cargo xtask compare-dattri`, same machine, same settings) when it
//! exists, else from issue D's reference numbers, labelled as such.

use std::collections::BTreeMap;
use std::time::Instant;

use wellspring_attrib::methods::trak::{EnsembleParams, train_ensemble};
use wellspring_attrib::{MethodOptions, ModelSource, ProjectionSpec, methods};
use wellspring_core::Dataset;
use wellspring_eval::{Lds, LdsGroundTruth, LdsResult, Output};
use wellspring_eval::{data_fingerprint, model_fingerprint};
use wellspring_report::{BarChart, CacheKey, Cell, CellValue, Report, ReportRecord, Table};

use crate::repro::dattri_match as dm;
use crate::repro::recipes::device;
use crate::repro::scores::{Scored, attribute_cached};
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
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
    which: dm::MnistModel,
    label: &'static str,
    dattri_col: usize,
}

const MODELS: [ModelCase; 2] = [
    ModelCase {
        which: dm::MnistModel::LogReg,
        label: "LR",
        dattri_col: 0,
    },
    ModelCase {
        which: dm::MnistModel::Mlp,
        label: "MLP",
        dattri_col: 1,
    },
];

/// The sizes of one run: full or `--quick`.
struct Settings {
    n_train: usize,
    n_test: usize,
    m_subsets: usize,
    /// TRAK ensemble sizes beyond the single model.
    ensembles: &'static [usize],
    /// Run the exact influence rows whose Hessian is applied matrix-free
    /// (the MLP's if-cg and if-lissa): seconds at the quick size, but 10 or
    /// more minutes each at 5000 × 500 on two cores (`compare-dattri`
    /// measures them), so the full run leaves them to that tool.
    matrix_free_exact: bool,
}

impl Settings {
    fn new(quick: bool) -> Self {
        if quick {
            Settings {
                n_train: 500,
                n_test: 40,
                m_subsets: 6,
                ensembles: &[2],
                matrix_free_exact: true,
            }
        } else {
            Settings {
                n_train: 5000,
                n_test: 500,
                m_subsets: 50,
                ensembles: &[10, 50],
                matrix_free_exact: false,
            }
        }
    }
}

/// One method run: its label, registry name, options and (for an
/// ensemble) its own source.
struct MethodRun {
    label: String,
    name: &'static str,
    opts: MethodOptions,
    source: Option<ModelSource>,
    /// What identifies `source`'s ensemble in the score cache.
    ensemble: Option<(usize, u64)>,
    /// Projection as `compare-dattri` names its rows (`exact`,
    /// `kronecker:512`); `None` where no projection applies.
    setting: Option<String>,
}

/// Seconds each TRAK ensemble size took to train.
type EnsembleSeconds = Vec<(usize, f64)>;

/// One successful method run.
struct Row {
    label: String,
    lds: LdsResult,
    seconds: f64,
    /// `(peak MiB, peak − start MiB)`.
    peak: Option<(f64, f64)>,
    /// dattri's time, the speedup and where they come from.
    dattri: [Cell; 3],
}

/// Everything one model produced.
struct ModelRows {
    label: &'static str,
    rows: Vec<Row>,
    /// Methods skipped and timings, as notes.
    notes: Vec<String>,
}

/// The model's data, retraining ground truth and attribution source.
struct Prepared {
    train: Dataset,
    test: Dataset,
    source: ModelSource,
    /// What identifies the model and the data in the score cache.
    key: CacheKey,
    truth: LdsGroundTruth,
    truth_s: f64,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let st = Settings::new(ctx.quick);
    let mut dattri_notes = Vec::new();
    let measured = measured_dattri(ctx, st.n_train, &mut dattri_notes);
    let models = MODELS
        .iter()
        .map(|mc| model_rows(ctx, &st, mc, measured.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(report(ctx, &st, &models, &dattri_notes))
}

fn prepare(ctx: &RunContext, st: &Settings, mc: &ModelCase) -> Result<Prepared, ReproError> {
    let case = dm::mnist_case(ctx, mc.which, st.n_train, st.n_test)?;
    let rec = mc.which.recipe();
    let config = rec.model_config(&case.train)?;
    let train_config = rec.train_config(ctx.quick, ctx.seed_for("lds-mnist.model"));
    let retrainer = ctx.retrainer(&case.train, &case.test, config, train_config)?;
    let t = Instant::now();
    let truth = Lds::params()
        .m(st.m_subsets)
        .alpha(0.5)
        .seed(ctx.seed_for("lds-mnist.subsets"))
        .ground_truth(&retrainer)?;
    let truth_s = t.elapsed().as_secs_f64();
    let key = CacheKey::new("lds-mnist-scores")
        .field("model", &model_fingerprint(&case.model))
        .field("train", &data_fingerprint(&case.train))
        .field("test", &data_fingerprint(&case.test));
    Ok(Prepared {
        key,
        train: case.train,
        test: case.test,
        source: case.source,
        truth,
        truth_s,
    })
}

/// Every registered method with its defaults (those that need training
/// checkpoints skipped: the cached models keep none), then every ensemble
/// method over each ensemble size; with the seconds each ensemble took.
fn method_runs(
    ctx: &RunContext,
    st: &Settings,
    mc: &ModelCase,
    p: &Prepared,
    notes: &mut Vec<String>,
) -> Result<(Vec<MethodRun>, EnsembleSeconds), ReproError> {
    let seed = ctx.seed_for("lds-mnist.method");
    let mut runs = Vec::new();
    for info in methods::list() {
        if info.caps.needs_checkpoints {
            notes.push(format!(
                "{} {}: {} needs training checkpoints, which this benchmark's cached models do not keep",
                mc.label, info.name, info.name
            ));
            continue;
        }
        let proj = info.caps.default_projection;
        runs.push(MethodRun {
            label: dm::row_label(info.name, proj),
            name: info.name,
            opts: MethodOptions::new().seed(seed),
            source: None,
            ensemble: None,
            setting: proj.map(|p| p.to_string()),
        });
    }
    let model: wellspring_models::AnyModel = p.source.model.clone();
    let matrix_free = model.n_params() > dm::MAX_FORMED_PARAMS;
    let skip = |m: &str| matrix_free && !st.matrix_free_exact && m.starts_with("if-");
    let scale = if skip("if-lissa") {
        None
    } else {
        let scale = dm::lissa_scale(&model, &p.train, &device(), seed)?;
        notes.push(format!(
            "{}: exact if-lissa scale s = {scale:.4} (2 (μ + λ), μ the largest top eigenvalue of \
             the full-batch Hessian and of {} minibatch Hessians, not timed).",
            mc.label,
            dm::SCALE_BATCHES
        ));
        Some(scale)
    };
    for m in dm::EXACT_METHODS {
        if skip(m) {
            notes.push(format!(
                "{} {m} (exact): not run in the full setting: its {}-parameter Hessian is applied \
                 matrix-free, 10 or more minutes per method at this size on two cores; `cargo \
                 xtask compare-dattri` times it against dattri (the quick setting runs it).",
                mc.label,
                model.n_params()
            ));
            continue;
        }
        match dm::exact_options(m, model.n_params(), scale, seed) {
            Ok(opts) => runs.push(MethodRun {
                label: dm::row_label(m, Some(ProjectionSpec::Identity)),
                name: m,
                opts,
                source: None,
                ensemble: None,
                setting: Some("exact".into()),
            }),
            Err(why) => notes.push(format!("{} {m} (exact): not run: {why}.", mc.label)),
        }
    }
    let mut ensemble_s = Vec::new();
    for &m in st.ensembles {
        let t = Instant::now();
        let members = train_ensemble(
            &p.source,
            &p.train,
            &EnsembleParams::new(m).seed(ctx.seed_for("lds-mnist.trak")),
            Some(&ctx.cache),
        )?;
        ensemble_s.push((m, t.elapsed().as_secs_f64()));
        let ensemble_seed = ctx.seed_for("lds-mnist.trak");
        let src = p.source.clone().with_ensemble(members);
        for info in methods::list() {
            let Some(key) = info.caps.ensemble_param else {
                continue;
            };
            runs.push(MethodRun {
                label: format!("{} (M = {m})", info.name),
                name: info.name,
                opts: MethodOptions::new().seed(seed).param(key, m.to_string()),
                source: Some(src.clone()),
                ensemble: Some((m, ensemble_seed)),
                setting: None,
            });
        }
    }
    Ok((runs, ensemble_s))
}

fn model_rows(
    ctx: &RunContext,
    st: &Settings,
    mc: &ModelCase,
    measured: Option<&MeasuredDattri>,
) -> Result<ModelRows, ReproError> {
    let p = prepare(ctx, st, mc)?;
    let mut notes = Vec::new();
    let (runs, ensemble_s) = method_runs(ctx, st, mc, &p, &mut notes)?;
    let bar = ctx
        .progress
        .bar(runs.len() as u64, format!("lds-mnist {}", mc.label));
    let mut rows = Vec::new();
    let mut n_cached = 0;
    for run in &runs {
        let key = p.key.clone().field("ensemble", &run.ensemble);
        let scored = attribute_cached(
            ctx,
            key,
            run.name,
            &run.opts,
            run.source.as_ref().unwrap_or(&p.source),
            &p.train,
            &p.test,
        )?;
        bar.inc(1);
        let Scored {
            scores,
            cost,
            cached,
        } = match scored {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("{} {}: {e}", mc.label, run.label));
                continue;
            }
        };
        n_cached += usize::from(cached);
        let (seconds, peak) = (cost.seconds, cost.peak);
        let lds = p.truth.score(&scores, Output::Margin)?;
        let dattri = dattri_cells(measured, mc, run.name, run.setting.as_deref(), seconds);
        rows.push(Row {
            label: run.label.clone(),
            lds,
            seconds,
            peak,
            dattri,
        });
    }
    bar.finish_and_clear();
    if n_cached > 0 {
        notes.push(format!(
            "{}: {n_cached} of {} score matrices read from the cache of an identical earlier run; \
             their time and memory are that run's.",
            mc.label,
            runs.len()
        ));
    }
    ctx_note_times(&mut notes, mc.label, p.truth_s, &ensemble_s);
    Ok(ModelRows {
        label: mc.label,
        rows,
        notes,
    })
}

fn report(
    ctx: &RunContext,
    st: &Settings,
    models: &[ModelRows],
    dattri_notes: &[String],
) -> Report {
    let (n_train, n_test, m_subsets, ensembles) =
        (st.n_train, st.n_test, st.m_subsets, st.ensembles);
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
    for mr in models {
        for r in &mr.rows {
            table.push_row([
                Cell::text(mr.label),
                Cell::text(r.label.clone()),
                Cell::text(format!(
                    "{:.3} ± {:.3}",
                    r.lds.summary.mean, r.lds.summary.std_err
                )),
                Cell::num(r.seconds, 2),
                r.peak.map_or(Cell::text("n/a"), |p| Cell::num(p.0, 0)),
                r.peak.map_or(Cell::text("n/a"), |p| Cell::num(p.1, 0)),
                r.dattri[0].clone(),
                r.dattri[1].clone(),
                r.dattri[2].clone(),
            ]);
        }
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
        .plot("lds-mnist-lds", lds_chart(models))
        .note(
            "Exact rows: logistic regression uses its Gauss-Newton matrix, which is its \
             Hessian: formed (7850 × 7850) for if-explicit and if-cg, applied matrix-free \
             from rank-1 factors for if-lissa; the MLP's Hessian (109 386 parameters) is applied \
             matrix-free (curvature=hessian), so the MLP has no exact if-explicit row. A \
             sketched influence row (kronecker:512, relative damping) and its exact row solve \
             different systems; their LDS and time differ for that reason too.",
        )
        .note(
            "dattri's published LDS for this setting are shown only as an image in its README \
             (assets/images/benchmark-result-mnist.png) and in the paper's figures; we found \
             no text table to copy numbers from, so the column is left out rather than guessed.",
        );
    for s in dattri_notes
        .iter()
        .chain(models.iter().flat_map(|m| &m.notes))
    {
        report = report.note(s.clone());
    }
    if ctx.quick {
        report = report.note(format!(
            "--quick: {n_train} training / {n_test} test points, {m_subsets} LDS subsets, 2 \
             training epochs, TRAK ensembles of {ensembles:?}; numbers are not comparable with \
             dattri's."
        ));
    }
    report
}

/// LDS per method, one group per model; the methods in first-seen order
/// (a model without a method's row shows 0).
fn lds_chart(models: &[ModelRows]) -> BarChart {
    let mut cats: Vec<String> = Vec::new();
    let mut per_model: Vec<(String, Vec<f64>)> = Vec::new();
    for mr in models {
        for r in &mr.rows {
            if !cats.contains(&r.label) {
                cats.push(r.label.clone());
            }
        }
        per_model.push((
            mr.label.to_string(),
            cats.iter()
                .map(|c| {
                    mr.rows
                        .iter()
                        .find(|r| r.label == *c)
                        .map_or(0.0, |r| r.lds.summary.mean)
                })
                .collect(),
        ));
    }
    let mut chart = BarChart::new("LDS per method")
        .y_label("LDS")
        .categories(cats.clone());
    for (label, mut v) in per_model {
        v.resize(cats.len(), 0.0);
        chart = chart.group(label, v);
    }
    chart
}

/// dattri's side of one `compare-dattri` row: dattri's time cell and the
/// ratio measured in that run.
struct Measured {
    dattri: CellValue,
    ratio: Option<f64>,
}

/// `(model, method, wellspring setting)` → dattri's side of that row.
type MeasuredDattri = BTreeMap<(String, String, String), Measured>;

/// `(model, method, wellspring setting)` → dattri's time, from
/// `<out>/compare-dattri.json` when it was written for the same mode and
/// size; `None` (with a note) otherwise.
fn measured_dattri(
    ctx: &RunContext,
    n_train: usize,
    notes: &mut Vec<String>,
) -> Option<MeasuredDattri> {
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
        let ratio = num(&row[4]).zip(num(&row[5])).map(|(w, d)| d / w.max(1e-9));
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
    measured: Option<&MeasuredDattri>,
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
            let Some(m) = map
                .get(&key)
                .filter(|_| setting.is_some() || name == "ekfac")
            else {
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
