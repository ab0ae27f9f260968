//! `cargo xtask compare-dattri`: wellspring against dattri (Deng et al. 2024)
//! on the same data, the same weights and the same hyper-parameters, in one
//! run on one machine (issue G, item 1). Optional, not part of CI: it needs
//! the package registry once, to build `target/dattri-venv`.
//!
//! Steps: build (or reuse) the venv from `xtask/dattri/requirements.txt`;
//! train (or load from the cache) `lds-mnist`'s two models; export the first
//! 5000 / 500 MNIST points as `.npy` and the weights as safetensors (PyTorch
//! layout); then for each (model, method, setting) time wellspring's fit +
//! attribute in this process and dattri's `cache` + `attribute` in a fresh
//! Python process (`xtask/dattri/run_dattri.py`), and compare the two
//! `n_train × n_test` score matrices test point by test point. Writes
//! `results/compare-dattri.{md,json,svg}`; `lds-mnist` reads its dattri
//! times from that JSON.

mod python;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use wellspring::attrib::{MethodOptions, ModelSource, ProjectionSpec, by_name};
use wellspring::core::{Dataset, Features, Targets, npy};
use wellspring::data::sample;
use wellspring::models::{Model, ModelConfig};
use wellspring::repro::RunContext;
use wellspring::repro::dattri_match::{self as dm, MnistModel, PeakMemory, device};
use wellspring_report::{BarChart, Report, Table, workspace_root};

use python::{ensure_venv, probe, run_dattri, target_dir};
use report::{NOTES, PARAGRAPH, agreement, row};

/// Options of `cargo xtask compare-dattri`.
#[derive(Args)]
pub struct CompareArgs {
    /// Small case (500 training / 40 test points, lds-mnist's quick models):
    /// checks the tool in minutes; the numbers are not the benchmark.
    #[arg(long)]
    quick: bool,
    /// Models to run (`lr`, `mlp`).
    #[arg(long, value_delimiter = ',', default_value = "lr,mlp")]
    models: Vec<String>,
    /// Methods to run (default: every method both libraries have).
    #[arg(long, value_delimiter = ',')]
    methods: Vec<String>,
    /// Settings to run (`exact`, `sketched`).
    #[arg(long, value_delimiter = ',', default_value = "exact,sketched")]
    settings: Vec<String>,
    /// Wall-clock cap of one dattri run, seconds; a capped run is reported as such.
    #[arg(long, default_value_t = 3600)]
    dattri_timeout: u64,
    /// Python used to create the venv.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Reuse pairs an earlier, interrupted run of the same mode finished.
    #[arg(long)]
    resume: bool,
    /// Pairs not to run, as `MODEL:METHOD:SETTING` (`mlp:if-lissa:exact`);
    /// each is listed in the report's notes.
    #[arg(long, value_delimiter = ',', value_name = "MODEL:METHOD:SETTING")]
    skip: Vec<String>,
    /// Output directory (default: <workspace>/results).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Data directory (default: $WELLSPRING_DATA, else the repository's datasets/).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Methods with an exact (unprojected) run on both sides.
const EXACT: [&str; 8] = [
    "grad-dot",
    "grad-cos",
    "if-explicit",
    "if-cg",
    "if-lissa",
    "if-arnoldi",
    "datainf",
    "ekfac",
];
/// Methods dattri can project: wellspring's projections against dattri's
/// dense projector at the same dimension (`proj_type`).
const SKETCHED: [(&str, &str, [ProjectionSpec; 2]); 3] = [
    ("grad-dot", "normal", [GAUSS, KRON]),
    ("grad-cos", "normal", [GAUSS, KRON]),
    ("trak", "rademacher", [RADEM, KRON]),
];
const K: usize = 512;
const GAUSS: ProjectionSpec = ProjectionSpec::Gaussian { dim: K };
const RADEM: ProjectionSpec = ProjectionSpec::Rademacher { dim: K };
const KRON: ProjectionSpec = ProjectionSpec::Kronecker { dim: K };

struct ModelCase {
    key: &'static str,
    which: MnistModel,
    label: &'static str,
}

const MODELS: [ModelCase; 2] = [
    ModelCase {
        key: "lr",
        which: MnistModel::LogReg,
        label: "LR",
    },
    ModelCase {
        key: "mlp",
        which: MnistModel::Mlp,
        label: "MLP",
    },
];

/// `(method, dattri setting, wellspring runs, dattri hyper-parameters)`.
type Pair = (String, String, Vec<(ProjectionSpec, MethodOptions)>, Value);

/// One wellspring configuration and what it measured.
struct WsRun {
    /// `exact` or the projection.
    setting: String,
    seconds: f64,
    /// `(peak, peak − start)` MiB.
    peak: Option<(f64, f64)>,
    /// 1-minute load average at the start.
    load: f64,
    /// The saved score matrix, or the error.
    scores: Result<PathBuf, String>,
}

/// Entry point of `cargo xtask compare-dattri`.
pub fn run(args: CompareArgs) -> Result<()> {
    let root = workspace_root();
    let python = ensure_venv(&root, &args.python)?;
    let versions = probe(&python)?;
    eprintln!("dattri venv: {} ({versions})", python.display());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ctx = RunContext::new()?
        .quick(args.quick)
        .data_dir(args.data_dir.clone());
    let (n_train, n_test) = if args.quick { (500, 40) } else { (5000, 500) };
    let work = target_dir(&root)
        .join("compare-dattri")
        .join(if args.quick { "quick" } else { "full" });
    let mut timing = Table::new([
        "model",
        "method",
        "wellspring setting",
        "dattri setting",
        "wellspring (s)",
        "dattri (s)",
        "dattri / wellspring",
        "goal",
        "wellspring peak RSS (MiB)",
        "dattri peak RSS (MiB)",
        "load avg (ws / dattri)",
    ])
    .title(format!(
        "Wall time of fit + attribute for the full {n_train} × {n_test} score matrix, \
         and peak resident memory (peak − start in brackets), {threads} threads each"
    ));
    let mut agree = Table::new([
        "model",
        "method",
        "wellspring setting",
        "Pearson mean",
        "Pearson min",
        "Spearman mean",
        "Spearman min",
        "vs exact wellspring (Pearson mean: ws / dattri)",
    ])
    .title(
        "Agreement of the two score matrices, per test point (mean and minimum over test points)",
    );
    let mut notes: Vec<String> = Vec::new();
    let mut chart_cats: Vec<String> = Vec::new();
    let mut chart: BTreeMap<&str, Vec<(String, f64)>> = BTreeMap::new();
    let mut settings_used: BTreeMap<String, Value> = BTreeMap::new();
    for mc in MODELS
        .iter()
        .filter(|m| args.models.iter().any(|k| k == m.key))
    {
        // exactly lds-mnist's model: same recipe, seed and cache key
        let case = dm::mnist_case(&ctx, mc.which, n_train, n_test)?;
        let (train, test, model, source) = (&case.train, &case.test, &case.model, &case.source);
        let dir = work.join(mc.key);
        export(&dir, model, train, test)?;
        let method_seed = ctx.seed_for("lds-mnist.method");
        let wanted = |m: &str| args.methods.is_empty() || args.methods.iter().any(|x| x == m);
        let skipped = |m: &str, setting: &str| {
            args.skip
                .iter()
                .any(|s| *s == format!("{}:{m}:{setting}", mc.key))
        };
        let n_params = model.n_params();
        let scale = if args.settings.iter().any(|s| s == "exact")
            && wanted("if-lissa")
            && !skipped("if-lissa", "exact")
        {
            let s = dm::lissa_scale(&model.clone().into(), train, &device(), method_seed)?;
            notes.push(format!(
                "{}: LiSSA scale s = 2 (μ + λ) = {s:.4}, μ the largest top eigenvalue of the \
                 full-batch Hessian and of {} Hessians of {}-point minibatches ({} power \
                 iterations each, not timed); given to both sides.",
                mc.label,
                dm::SCALE_BATCHES,
                dm::LISSA_BATCH,
                dm::POWER_ITERS
            ));
            Some(s)
        } else {
            None
        };
        let mut pairs: Vec<Pair> = Vec::new();
        if args.settings.iter().any(|s| s == "exact") {
            for m in EXACT.iter().filter(|m| wanted(m)) {
                if skipped(m, "exact") {
                    notes.push(format!(
                        "{} {m} (exact): not run in this invocation (--skip).",
                        mc.label
                    ));
                    continue;
                }
                match dm::exact_options(m, n_params, scale, method_seed) {
                    Ok(opts) => pairs.push((
                        m.to_string(),
                        "exact".into(),
                        vec![(ProjectionSpec::Identity, opts)],
                        dattri_params(m, "identity", scale),
                    )),
                    Err(why) => notes.push(format!("{} {m} (exact): not run: {why}.", mc.label)),
                }
            }
        }
        if args.settings.iter().any(|s| s == "sketched") {
            for (m, proj_type, specs) in SKETCHED.iter().filter(|s| wanted(s.0)) {
                let mut runs = Vec::new();
                for p in specs {
                    let mut o = MethodOptions::new().seed(method_seed).projection(*p);
                    if *m == "trak" {
                        o = o.param("lambda", "0");
                    }
                    runs.push((*p, o));
                }
                pairs.push((
                    m.to_string(),
                    format!("{proj_type}:{K}"),
                    runs,
                    dattri_params(m, proj_type, None),
                ));
            }
        }
        warm_up(source, train, test, method_seed)?;
        let bar = ctx
            .progress
            .bar(pairs.len() as u64, format!("compare-dattri {}", mc.label));
        for (method, dsetting, runs, params) in pairs {
            let tag = format!("{method}-{}", dsetting.replace(':', "-"));
            let ws: Vec<WsRun> = runs
                .iter()
                .map(|(p, o)| {
                    let prior = (args.resume).then(|| load_ws(&dir, &method, *p)).flatten();
                    prior.unwrap_or_else(|| {
                        run_wellspring(&dir, &method, *p, o, source, train, test)
                    })
                })
                .collect();
            let (tb, sb) = batches(mc.key, &method, n_train, n_test);
            let spec = json!({
                "data_dir": dir, "model": model_spec(&model.config), "method": method,
                "params": params, "train_batch": tb, "test_batch": sb, "threads": threads,
                "seed": 0, "timeout": args.dattri_timeout,
                "out_scores": dir.join(format!("{tag}-dattri.npy")),
                "out_meta": dir.join(format!("{tag}-dattri.json")),
            });
            let d = run_dattri(
                &python,
                &dir,
                &tag,
                spec,
                threads,
                args.dattri_timeout,
                args.resume,
            )?;
            settings_used.insert(format!("{}.{tag}.dattri", mc.key), d.spec.clone());
            for (w, (_, o)) in ws.iter().zip(&runs) {
                settings_used.insert(
                    format!("{}.{method}.{}.wellspring", mc.key, w.setting),
                    json!({ "projection": w.setting, "params": o.params, "seed": o.seed }),
                );
                let ratio = row(&mut timing, mc.label, &method, w, &d, &dsetting);
                if let Some(r) = ratio {
                    let cat = format!("{method} ({})", w.setting);
                    if !chart_cats.contains(&cat) {
                        chart_cats.push(cat.clone());
                    }
                    chart.entry(mc.label).or_default().push((cat, r));
                }
                agreement(&mut agree, mc.label, &method, w, &d, &dir, &mut notes);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let mut plot = BarChart::new("dattri time / wellspring time (log10)")
        .y_label("log10 ratio")
        .categories(chart_cats.clone());
    for (label, vals) in &chart {
        plot = plot.group(
            *label,
            chart_cats.iter().map(|c| {
                vals.iter()
                    .find(|(k, _)| k == c)
                    .map_or(0.0, |v| v.1.max(1e-9).log10())
            }),
        );
    }
    let mut report = Report::new(
        "compare-dattri",
        "wellspring vs dattri, like for like: same data, weights and settings in one run",
    )
    .paragraph(PARAGRAPH)
    .setting("train_points", n_train as u64)
    .setting("test_points", n_test as u64)
    .setting("threads", threads as u64)
    .setting("damping", dm::DAMPING)
    .setting("cg_iterations", dm::CG_ITERS as u64)
    .setting(
        "lissa",
        format!(
            "depth {}, batch {}, repeats {}",
            dm::LISSA_DEPTH,
            dm::LISSA_BATCH,
            dm::LISSA_REPEATS
        ),
    )
    .setting(
        "arnoldi",
        format!(
            "rank {}, iterations {}",
            dm::ARNOLDI_RANK,
            dm::ARNOLDI_ITERS
        ),
    )
    .setting("sketch_dim", K as u64)
    .setting("quick", args.quick)
    .setting("dattri_timeout_s", args.dattri_timeout)
    .setting("python_versions", versions.clone())
    .setting("runs", serde_json::to_value(&settings_used)?)
    .table(timing)
    .table(agree)
    .plot("ratio", plot);
    for n in NOTES.iter().map(|s| s.to_string()).chain(notes) {
        report = report.note(n);
    }
    let out = args.out.unwrap_or_else(|| root.join("results"));
    let written = report.write(&out)?;
    println!("wrote {}", written.markdown.display());
    Ok(())
}

/// Loader batch sizes of a dattri run: `(train, test)`.
fn batches(model: &str, method: &str, n_train: usize, n_test: usize) -> (usize, usize) {
    let test = match (model, method) {
        ("lr", "datainf") => 100,
        ("mlp", "datainf") => 25,
        ("mlp", "if-cg") => 100,
        _ => n_test,
    };
    (n_train, test.min(n_test))
}

/// dattri's hyper-parameters for `method`, mapped from the shared settings.
fn dattri_params(method: &str, proj_type: &str, lissa_scale: Option<f64>) -> Value {
    let lam = dm::DAMPING;
    match method {
        "grad-dot" | "grad-cos" | "trak" => {
            json!({"proj_type": proj_type, "proj_dim": K, "proj_seed": 0, "regularization": 0.0})
        }
        "if-explicit" | "datainf" | "ekfac" => json!({"regularization": lam}),
        "if-cg" => json!({"regularization": lam, "max_iter": dm::CG_ITERS, "mode": "rev-rev"}),
        "if-lissa" => {
            let s = lissa_scale.unwrap_or(1.0);
            json!({"damping": lam / s, "scaling": s, "recursion_depth": dm::LISSA_DEPTH,
                   "batch_size": dm::LISSA_BATCH, "num_repeat": dm::LISSA_REPEATS,
                   "mode": "rev-rev"})
        }
        "if-arnoldi" => json!({"regularization": lam, "proj_dim": dm::ARNOLDI_RANK,
                               "max_iter": dm::ARNOLDI_ITERS, "seed": 0}),
        _ => json!({}),
    }
}

fn model_spec(config: &ModelConfig) -> Value {
    match config {
        ModelConfig::LogReg { d_in, n_out } => {
            json!({"d_in": d_in, "hidden": [], "n_out": n_out, "dropout": 0.0})
        }
        ModelConfig::Mlp {
            d_in,
            hidden,
            n_out,
            dropout,
        } => json!({"d_in": d_in, "hidden": hidden, "n_out": n_out, "dropout": dropout}),
        other => json!({"unsupported": other.name()}),
    }
}

/// Writes `x_*.npy` (f32, n × d), `y_*.npy` (i64) and `model.safetensors`.
fn export(dir: &Path, model: &Model, train: &Dataset, test: &Dataset) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, d) in [("train", train), ("test", test)] {
        let Features::Dense { values, .. } = d.features() else {
            bail!("{} has no dense features to export", d.name());
        };
        let Targets::Classes { labels, .. } = d.targets() else {
            bail!("{} has no class labels to export", d.name());
        };
        let w = d.features().width();
        npy::write_f32(&dir.join(format!("x_{name}.npy")), &[d.len(), w], values)?;
        let y: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        npy::write(&dir.join(format!("y_{name}.npy")), &[d.len()], &y)?;
    }
    model.export_safetensors(dir.join("model.safetensors"))?;
    Ok(())
}

/// One untimed exact Grad-Dot on a few points, so that the first timed run
/// does not pay the process's one-time start-up (thread pools, kernels);
/// `run_dattri.py` warms each dattri process up the same way.
fn warm_up(source: &ModelSource, train: &Dataset, test: &Dataset, seed: u64) -> Result<()> {
    let few = |d: &Dataset, n: usize| sample::first_n(d, n.min(d.len()));
    let opts = MethodOptions::new()
        .seed(seed)
        .projection(ProjectionSpec::Identity);
    by_name("grad-dot", &opts)?
        .fit_dyn(source, &few(train, 16)?)?
        .attribute(&few(test, 4)?)?;
    Ok(())
}

/// The 1-minute load average (NaN off Linux).
fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Where a wellspring run's scores and record go.
fn ws_paths(dir: &Path, method: &str, p: ProjectionSpec) -> (PathBuf, PathBuf) {
    let tag = format!("{method}-{}", p.to_string().replace(':', "-"));
    (
        dir.join(format!("{tag}-ws.npy")),
        dir.join(format!("{tag}-ws.json")),
    )
}

fn run_wellspring(
    dir: &Path,
    method: &str,
    p: ProjectionSpec,
    opts: &MethodOptions,
    source: &ModelSource,
    train: &Dataset,
    test: &Dataset,
) -> WsRun {
    let (npy_path, meta) = ws_paths(dir, method, p);
    let load = load_avg();
    let mem = PeakMemory::start();
    let clock = Instant::now();
    let scores = by_name(method, opts)
        .and_then(|m| m.fit_dyn(source, train))
        .and_then(|f| f.attribute(test));
    let seconds = clock.elapsed().as_secs_f64();
    let peak = mem.finish();
    let scores = scores
        .map_err(|e| e.to_string())
        .and_then(|s| s.save_npy(&npy_path).map_err(|e| e.to_string()))
        .map(|()| npy_path);
    let run = WsRun {
        setting: label_of(p),
        seconds,
        peak,
        load,
        scores,
    };
    let record = json!({"seconds": seconds, "peak": peak, "load": load,
                        "error": run.scores.as_ref().err()});
    let _ = std::fs::write(&meta, record.to_string());
    run
}

fn load_ws(dir: &Path, method: &str, p: ProjectionSpec) -> Option<WsRun> {
    let (npy_path, meta) = ws_paths(dir, method, p);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(meta).ok()?).ok()?;
    let peak = v["peak"]
        .as_array()
        .and_then(|a| Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?)));
    let scores = match v["error"].as_str() {
        Some(e) => Err(e.to_string()),
        None if npy_path.exists() => Ok(npy_path),
        None => return None,
    };
    Some(WsRun {
        setting: label_of(p),
        seconds: v["seconds"].as_f64()?,
        peak,
        load: v["load"].as_f64().unwrap_or(f64::NAN),
        scores,
    })
}

fn label_of(p: ProjectionSpec) -> String {
    match p {
        ProjectionSpec::Identity => "exact".into(),
        other => other.to_string(),
    }
}
