//! `lds-mnist`: the head-to-head benchmark against dattri (issue D): every
//! registered attribution method on dattri's MNIST-10 setting (first 5000
//! training / 500 test digits; logistic regression and the MLP
//! 784-128-64-10 with dattri's training recipes), with its LDS (Ilyas et al.
//! 2022; brittleness paper §2.1), the wall time of fit + attribute for the
//! full 5000 × 500 score matrix, and the peak resident memory, beside
//! dattri's reference numbers.

use std::time::Instant;

use wellspring_attrib::methods::trak::{EnsembleParams, train_ensemble};
use wellspring_attrib::{MethodOptions, ModelSource, by_name, methods};
use wellspring_data::sample;
use wellspring_eval::{Lds, ModelRetrainer, Output};
use wellspring_report::{BarChart, Cell, Report, Table};

use crate::repro::recipes::{device, load_data, recipe, train_cached};
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
    ])
    .title(format!(
        "LDS (Spearman, {m_subsets} half-subsets, margin) and cost of a full {n_train} × {n_test} score matrix"
    ));
    let mut skipped: Vec<String> = Vec::new();
    let mut chart = BarChart::new("LDS per method").y_label("LDS");
    let mut cats: Vec<String> = Vec::new();
    let mut per_model: Vec<(String, Vec<f64>)> = Vec::new();
    for mc in &MODELS {
        let rec = recipe(mc.recipe)?;
        let mut split = load_data(ctx, rec)?;
        split.train = sample::first_n(&split.train, n_train.min(split.train.len()))?;
        split.test = sample::first_n(&split.test, n_test.min(split.test.len()))?;
        let (train, test) = (&split.train, &split.test);
        let config = rec.model_config(train)?;
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
        let mut runs: Vec<(String, MethodOptions, &'static str, Option<ModelSource>)> = Vec::new();
        for info in methods::list() {
            if info.name == "tracin-cp" {
                skipped.push(format!(
                    "{} {}: tracin-cp needs training checkpoints, which this benchmark's cached models do not keep",
                    mc.label, info.name
                ));
                continue;
            }
            let opts = MethodOptions::new().seed(ctx.seed_for("lds-mnist.method"));
            runs.push((info.name.to_string(), opts, info.name, None));
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
            runs.push((
                format!("trak (M = {m})"),
                opts,
                "trak",
                Some(source.clone().with_ensemble(members)),
            ));
        }
        let bar = ctx
            .progress
            .bar(runs.len() as u64, format!("lds-mnist {}", mc.label));
        let mut values = Vec::new();
        for (label, opts, name, src) in &runs {
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
            let dattri = DATTRI_SECONDS
                .iter()
                .find(|(n, ..)| *n == *label || (label == "trak" && *n == "trak"))
                .and_then(|r| if mc.dattri_col == 0 { r.1 } else { r.2 });
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
                dattri.map_or(Cell::text("—"), |d| Cell::num(d, 1)),
                dattri.map_or(Cell::text("—"), |d| {
                    Cell::text(speedup(d / secs.max(1e-9)))
                }),
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
        .plot("lds-mnist-lds", chart)
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
