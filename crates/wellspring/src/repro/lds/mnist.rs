//! `lds-mnist`: the head-to-head benchmark against dattri (issue D): every
//! registered attribution method on dattri's MNIST-10 setting (first 5000
//! training / 500 test digits; logistic regression and the MLP
//! 784-128-64-10 with dattri's training recipes), with its LDS (Ilyas et al.
//! 2022; brittleness paper §2.1), the wall time of fit + attribute for the
//! full 5000 × 500 score matrix, and the peak resident memory, beside
//! dattri's reference numbers.

use std::time::Instant;

use wellspring_attrib::methods::trak::{EnsembleParams, train_ensemble};
use wellspring_attrib::{MethodOptions, ModelSource, methods};
use wellspring_core::Dataset;
use wellspring_data::sample;
use wellspring_eval::{Lds, LdsGroundTruth, LdsResult, ModelRetrainer, Output};
use wellspring_report::{BarChart, Cell, Report, Table};

use crate::repro::recipes::{MNIST5K_LOGREG, MNIST5K_MLP, Recipe, device, load_data, train_cached};
use crate::repro::{ReproError, RunContext, Target};

pub(in crate::repro) const TARGET: Target = Target {
    name: "lds-mnist",
    paper: "dattri benchmark (Deng et al. 2024), MNIST-10 LR / MLP; issue D head-to-head",
    description: "LDS, wall time and peak memory of every attribution method on dattri's MNIST setting (5000 x 500, LR and MLP)",
    run,
};

/// dattri 0.3 / torch 2.15 wall times on a 2-core CPU, from the issue text
/// (`(method, LR seconds, MLP seconds)`); `None` where the issue gives none.
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

/// Resident-set high-water mark of this process in MiB (Linux), after
/// resetting it with `clear_refs` so it measures from now on.
struct PeakMemory {
    start_mib: Option<f64>,
}

fn status_kib(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok()
}

impl PeakMemory {
    fn start() -> Self {
        // "5" resets the peak RSS (VmHWM) to the current RSS (Linux ≥ 4.0)
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        PeakMemory {
            start_mib: status_kib("VmRSS:").map(|k| k / 1024.0),
        }
    }
    /// `(peak MiB, peak − start MiB)`.
    fn finish(&self) -> Option<(f64, f64)> {
        let peak = status_kib("VmHWM:")? / 1024.0;
        Some((peak, peak - self.start_mib?))
    }
}

struct ModelCase {
    recipe: &'static Recipe,
    label: &'static str,
    dattri_col: usize,
}

const MODELS: [ModelCase; 2] = [
    ModelCase {
        recipe: &MNIST5K_LOGREG,
        label: "LR",
        dattri_col: 0,
    },
    ModelCase {
        recipe: &MNIST5K_MLP,
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
}

impl Settings {
    fn new(quick: bool) -> Self {
        if quick {
            Settings {
                n_train: 500,
                n_test: 40,
                m_subsets: 6,
                ensembles: &[2],
            }
        } else {
            Settings {
                n_train: 5000,
                n_test: 500,
                m_subsets: 50,
                ensembles: &[10, 50],
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
    dattri: Option<f64>,
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
    truth: LdsGroundTruth,
    truth_s: f64,
}

fn run(ctx: &RunContext) -> Result<Report, ReproError> {
    let st = Settings::new(ctx.quick);
    let models = MODELS
        .iter()
        .map(|mc| model_rows(ctx, &st, mc))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(report(ctx, &st, &models))
}

fn prepare(ctx: &RunContext, st: &Settings, mc: &ModelCase) -> Result<Prepared, ReproError> {
    let rec = mc.recipe;
    let mut split = load_data(ctx, rec)?;
    split.train = sample::first_n(&split.train, st.n_train.min(split.train.len()))?;
    split.test = sample::first_n(&split.test, st.n_test.min(split.test.len()))?;
    let config = rec.model_config(&split.train)?;
    let seed = ctx.seed_for("lds-mnist.model");
    let train_config = rec.train_config(ctx.quick, seed);
    let (model, _) = train_cached(ctx, rec.name, &split.train, &config, &train_config, seed)?;
    let retrainer = ModelRetrainer::new(
        &split.train,
        &split.test,
        config.clone(),
        train_config.clone(),
        &device(),
    )?
    .with_cache(ctx.cache.clone())
    .with_progress(ctx.progress.clone());
    let t = Instant::now();
    let truth = Lds::params()
        .m(st.m_subsets)
        .alpha(0.5)
        .seed(ctx.seed_for("lds-mnist.subsets"))
        .ground_truth(&retrainer)?;
    let truth_s = t.elapsed().as_secs_f64();
    let source = ModelSource::new(model, device()).with_train_config(train_config);
    Ok(Prepared {
        train: split.train,
        test: split.test,
        source,
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
        runs.push(MethodRun {
            label: info.name.to_string(),
            name: info.name,
            opts: MethodOptions::new().seed(seed),
            source: None,
        });
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
            });
        }
    }
    Ok((runs, ensemble_s))
}

fn model_rows(ctx: &RunContext, st: &Settings, mc: &ModelCase) -> Result<ModelRows, ReproError> {
    let p = prepare(ctx, st, mc)?;
    let mut notes = Vec::new();
    let (runs, ensemble_s) = method_runs(ctx, st, mc, &p, &mut notes)?;
    let bar = ctx
        .progress
        .bar(runs.len() as u64, format!("lds-mnist {}", mc.label));
    let mut rows = Vec::new();
    for run in &runs {
        let method = methods::by_name(run.name, &run.opts)?;
        let mem = PeakMemory::start();
        let t = Instant::now();
        let scores = method
            .fit_dyn(run.source.as_ref().unwrap_or(&p.source), &p.train)
            .and_then(|f| f.attribute(&p.test));
        let seconds = t.elapsed().as_secs_f64();
        let peak = mem.finish();
        bar.inc(1);
        let scores = match scores {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("{} {}: {e}", mc.label, run.label));
                continue;
            }
        };
        let lds = p.truth.score(&scores, Output::Margin)?;
        let dattri = DATTRI_SECONDS
            .iter()
            .find(|(n, ..)| *n == run.label)
            .and_then(|r| if mc.dattri_col == 0 { r.1 } else { r.2 });
        rows.push(Row {
            label: run.label.clone(),
            lds,
            seconds,
            peak,
            dattri,
        });
    }
    bar.finish_and_clear();
    ctx_note_times(&mut notes, mc.label, p.truth_s, &ensemble_s);
    Ok(ModelRows {
        label: mc.label,
        rows,
        notes,
    })
}

fn report(ctx: &RunContext, st: &Settings, models: &[ModelRows]) -> Report {
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
                r.dattri.map_or(Cell::text("—"), |d| Cell::num(d, 1)),
                r.dattri.map_or(Cell::text("—"), |d| {
                    Cell::text(speedup(d / r.seconds.max(1e-9)))
                }),
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
             setting. LDS: Spearman correlation, per test point, between the summed scores of a \
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
        .table(table)
        .plot("lds-mnist-lds", lds_chart(models))
        .note(
            "dattri times: dattri 0.3 with torch 2.15 on a 2-core CPU, from issue D's text \
             (median of 3 runs, or 1 run where it took over a minute); not re-measured here \
             (no network for its pretrained benchmark files).",
        )
        .note(
            "dattri's published LDS for this setting are shown only as an image in its README \
             (assets/images/benchmark-result-mnist.png) and in the paper's figures; we found \
             no text table to copy numbers from, so the column is left out rather than guessed.",
        );
    for s in models.iter().flat_map(|m| &m.notes) {
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
