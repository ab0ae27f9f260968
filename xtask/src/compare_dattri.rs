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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use wellspring::attrib::{MethodOptions, ModelSource, ProjectionSpec, by_name};
use wellspring::core::{Dataset, Features, ScoreMatrix, Targets, npy};
use wellspring::data::sample;
use wellspring::eval::{pearson, spearman};
use wellspring::models::{Model, ModelConfig};
use wellspring::repro::RunContext;
use wellspring::repro::dattri_match::{self as dm, PeakMemory};
use wellspring::repro::recipes::{device, load_data, recipe, train_cached};
use wellspring_report::{BarChart, Cell, Report, Table, workspace_root};

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
    recipe: &'static str,
    label: &'static str,
}

const MODELS: [ModelCase; 2] = [
    ModelCase {
        key: "lr",
        recipe: "mnist5k-logreg",
        label: "LR",
    },
    ModelCase {
        key: "mlp",
        recipe: "mnist5k-mlp",
        label: "MLP",
    },
];

/// `(method, dattri setting, wellspring runs, dattri hyper-parameters)`.
type Pair = (String, String, Vec<(ProjectionSpec, MethodOptions)>, Value);

/// One wellspring configuration and what it measured.
struct WsRun {
    setting: String,
    seconds: f64,
    peak: Option<(f64, f64)>,
    load: f64,
    scores: Result<PathBuf, String>,
}

/// dattri's side of a pair.
struct DattriRun {
    spec: Value,
    outcome: Result<Value, String>,
    load: f64,
    scores: PathBuf,
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
        let rec = recipe(mc.recipe)?;
        let mut split = load_data(&ctx, rec)?;
        split.train = sample::first_n(&split.train, n_train.min(split.train.len()))?;
        split.test = sample::first_n(&split.test, n_test.min(split.test.len()))?;
        let (train, test) = (&split.train, &split.test);
        // exactly lds-mnist's model: same recipe, seed and cache key
        let config = rec.model_config(train);
        let seed = ctx.seed_for("lds-mnist.model");
        let train_config = rec.train_config(ctx.quick, seed);
        let (model, _) = train_cached(&ctx, mc.recipe, train, &config, &train_config, seed)?;
        let dir = work.join(mc.key);
        export(&dir, &model, train, test)?;
        let source = ModelSource::new(model.clone(), device()).with_train_config(train_config);
        let method_seed = ctx.seed_for("lds-mnist.method");
        let wanted = |m: &str| args.methods.is_empty() || args.methods.iter().any(|x| x == m);
        let n_params = model.n_params();
        let scale = if args.settings.iter().any(|s| s == "exact") && wanted("if-lissa") {
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
                        run_wellspring(&dir, &method, *p, o, &source, train, test)
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

const PARAGRAPH: &str = "Both libraries attribute the same exported weights on the same \
    exported data (the first 5000 MNIST training and 500 test digits; the models of \
    `lds-mnist`, trained once by wellspring and written as safetensors in PyTorch layout). \
    Time: wellspring's fit + attribute in the xtask process; dattri's attributor construction, \
    `cache` and `attribute` in a fresh Python process (imports and data loading not timed), \
    run right after on the same machine with the same thread count (OMP_NUM_THREADS, \
    MKL_NUM_THREADS and torch.set_num_threads set to the core count). Memory: VmHWM after \
    resetting it with /proc/self/clear_refs just before the clock starts, on each side; in \
    brackets the growth over the RSS at that point. Agreement: Pearson and Spearman \
    correlation between wellspring's and dattri's scores of the 5000 training points, per \
    test point. Both matrices are n_train × n_test with positive = the training point helps \
    (dattri returns this orientation and sign for every method here; the Python side \
    checks the shape). Goal (issue G): dattri / wellspring ≥ 10 for every method at equal \
    settings, ≥ 50 for the projection methods.";

const NOTES: [&str; 8] = [
    "Exact = no projection on either side (wellspring `--projection identity`; dattri TracIn \
     with `proj_type=identity`, its IF attributors, which take no projector). The curvature \
     is the Hessian of the mean training cross-entropy on both sides: for LR wellspring forms \
     its Gauss-Newton matrix, which for a linear model is that Hessian; for the MLP it uses \
     matrix-free Hessian-vector products (`curvature=hessian`, central differences of f64 \
     gradients), dattri autodiff Hessian-vector products.",
    "Damping: wellspring `damping=λ` and dattri `regularization=λ` both add λI to the \
     curvature (λ in the settings). LiSSA: wellspring iterates h ← b + h − (C_B + λ)h/s and \
     returns h/s; dattri iterates x ← v + (1 − d)x − C_B x/s and returns x/s, the same \
     recursion when d = λ/s, which is what dattri gets; depth, minibatch, repeats and s are \
     the same on both sides, the minibatches are drawn by each side's own generator. CG: the \
     same iteration count on both sides (wellspring's tolerance set to 1e-30 so it never \
     stops early; it does stop a column on non-positive curvature of the MLP Hessian), but \
     dattri starts from x₀ = v and wellspring from x₀ = 0, so truncated iterates differ. \
     Arnoldi: top rank eigenpairs of C + λI from the same number of Krylov iterations \
     (dattri Arnoldi, wellspring Lanczos; different random start vectors); dattri keeps \
     eigenvalues by magnitude and divides by their square roots, wellspring drops \
     non-positive ones.",
    "DataInf: one absolute λ for every layer on both sides (wellspring's new `damping` \
     option; its default is λ_l = 0.1 · mean ‖g_l‖² / d_l per layer). Layers are the same \
     three (LR: one) Linear layers, weight and bias together.",
    "EK-FAC: both sides fit the Kronecker factors and the corrected eigenvalues on the \
     dataset's labels (wellspring `labels=true`; its default samples labels from the model, \
     the true Fisher). Two things about dattri 0.3's EK-FAC: (1) torch's float32 `eigh` \
     fails to converge on MNIST's input covariance (constant-zero pixels give many repeated \
     zero eigenvalues), so the harness takes its two eigendecompositions in float64; (2) it \
     rotates a layer gradient as Q_S dW Q_Aᵀ with Q from `eigh` (eigenvectors in the \
     columns), i.e. by Q instead of Qᵀ, so its eigenvalue correction and inverse are taken \
     in a basis that is not the K-FAC eigenbasis. On the quick LR case the textbook formula \
     (Q_Sᵀ dW Q_A, float64, by hand) agrees with wellspring's scores to a per-test Pearson \
     of 1.000 and dattri's rotation only to 0.597, which is the agreement the EK-FAC rows \
     show: they compare timings of the same amount of work, not the same estimator.",
    "dattri runs inside `torch.no_grad()` (its torch.func transforms do not need the outer \
     autograd graph; with it, LiSSA keeps every recursion step's graph: on the quick LR case \
     39 s and 4.9 GB instead of 7 s and 0.9 GB, same scores), except EK-FAC, which calls \
     `backward()`.",
    "Sketched = the methods dattri can project (TracIn/Grad-Dot/Grad-Cos and TRAK; dattri's \
     IF attributors take no projector), at k = 512 on both sides. dattri projects with a \
     dense matrix (BasicProjector on CPU, regenerated in blocks of 100 columns); wellspring \
     with a dense Gaussian/Rademacher matrix of the same distribution, or with its per-layer \
     Kronecker sketch (its default). Two independent random projections agree only \
     approximately, so the agreement of sketched rows is bounded by how well each sketch \
     keeps the exact scores: the last column gives each side's Pearson correlation with \
     wellspring's exact scores. TRAK: M = 1 (the exported model), margin output \
     log p − log(1 − p), Q = 1 − p, no regularisation on either side (dattri's default \
     `regularization=0`; wellspring `lambda=0`).",
    "dattri loaders: the cache loader holds the whole training set in one batch (dattri's \
     Hessian-based attributors sum per-batch inverse-Hessian products, so one batch is the \
     only setting that solves the full-data system), and its attribute loop recomputes the \
     test-side transformation once per training batch, so training batches are as large as \
     memory allows (usually all 5000 points); test batches are smaller where dattri's \
     vmapped products need it (batch sizes per run in the settings).",
    "Times are from a shared 2-core development machine: other engineers' builds and tests \
     may run at the same time. The load average (1 min) at the start of each side's run is \
     in the table; a pair measured under very different load is less reliable than the \
     ratio suggests.",
];

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

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

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

/// Runs one dattri attribution in a fresh Python process, capped at `timeout`.
fn run_dattri(
    python: &Path,
    dir: &Path,
    tag: &str,
    spec: Value,
    threads: usize,
    timeout: u64,
    resume: bool,
) -> Result<DattriRun> {
    let spec_path = dir.join(format!("{tag}-dattri-spec.json"));
    let meta_path = dir.join(format!("{tag}-dattri.json"));
    let scores = dir.join(format!("{tag}-dattri.npy"));
    let status_path = dir.join(format!("{tag}-dattri-status.json"));
    if resume && let Ok(text) = std::fs::read_to_string(&status_path) {
        let v: Value = serde_json::from_str(&text)?;
        let outcome = match v["error"].as_str() {
            Some(e) => Err(e.to_string()),
            None => Ok(serde_json::from_str(&std::fs::read_to_string(&meta_path)?)?),
        };
        let load = v["load"].as_f64().unwrap_or(f64::NAN);
        return Ok(DattriRun {
            spec,
            outcome,
            load,
            scores,
        });
    }
    let _ = std::fs::remove_file(&meta_path);
    std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)?)?;
    let log = std::fs::File::create(dir.join(format!("{tag}-dattri.log")))?;
    let script = workspace_root().join("xtask/dattri/run_dattri.py");
    let n = threads.to_string();
    let load = load_avg();
    let mut child = Command::new(python)
        .arg(&script)
        .arg("run")
        .arg(&spec_path)
        .env("OMP_NUM_THREADS", &n)
        .env("MKL_NUM_THREADS", &n)
        .env("TQDM_DISABLE", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", script.display()))?;
    let clock = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if clock.elapsed() > Duration::from_secs(timeout) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let outcome = match status {
        None => Err(format!("capped: still running after {timeout} s, killed")),
        Some(s) if !s.success() => {
            let text =
                std::fs::read_to_string(dir.join(format!("{tag}-dattri.log"))).unwrap_or_default();
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!("failed ({s}): {last}"))
        }
        Some(_) => Ok(serde_json::from_str(
            &std::fs::read_to_string(&meta_path)
                .with_context(|| format!("reading {}", meta_path.display()))?,
        )?),
    };
    let status = json!({"error": outcome.as_ref().err(), "load": load});
    std::fs::write(&status_path, status.to_string())?;
    Ok(DattriRun {
        spec,
        outcome,
        load,
        scores,
    })
}

fn mib(peak: Option<(f64, f64)>) -> Cell {
    peak.map_or(Cell::text("n/a"), |(p, g)| {
        Cell::text(format!("{p:.0} (+{g:.0})"))
    })
}

/// Adds the timing row of one wellspring setting; returns dattri / wellspring.
fn row(
    t: &mut Table,
    model: &str,
    method: &str,
    w: &WsRun,
    d: &DattriRun,
    dsetting: &str,
) -> Option<f64> {
    let goal = if w.setting == "exact" { 10.0 } else { 50.0 };
    let (dcell, ratio, ratio_cell, dmem) = match (&d.outcome, &w.scores) {
        (_, Err(e)) => (
            Cell::text("—"),
            None,
            Cell::text(format!("wellspring failed: {e}")),
            Cell::text("—"),
        ),
        (Ok(m), Ok(_)) => {
            let s = m["seconds"].as_f64().unwrap_or(f64::NAN);
            let r = s / w.seconds.max(1e-9);
            let peak = m["peak_rss_mib"].as_f64();
            let start = m["start_rss_mib"].as_f64();
            let mem = match (peak, start) {
                (Some(p), Some(s0)) => Cell::text(format!("{p:.0} (+{:.0})", p - s0)),
                _ => Cell::text("n/a"),
            };
            (Cell::num(s, 2), Some(r), Cell::text(ratio_text(r)), mem)
        }
        (Err(e), Ok(_)) if e.starts_with("capped") => {
            let cap = d.spec["timeout"].as_f64();
            let r = cap.map(|c| c / w.seconds.max(1e-9));
            (
                Cell::text(format!("> cap ({e})")),
                None,
                Cell::text(r.map_or("—".into(), |r| format!("> {}", ratio_text(r)))),
                Cell::text("—"),
            )
        }
        (Err(e), Ok(_)) => (
            Cell::text(format!("dattri {e}")),
            None,
            Cell::text("—"),
            Cell::text("—"),
        ),
    };
    let verdict = ratio.map_or("—".to_string(), |r| {
        if r >= goal {
            format!("≥ {goal:.0}×: met")
        } else {
            format!("≥ {goal:.0}×: missed")
        }
    });
    t.push_row([
        Cell::text(model),
        Cell::text(method),
        Cell::text(w.setting.clone()),
        Cell::text(if dsetting == "exact" {
            "exact".to_string()
        } else {
            dsetting.to_string()
        }),
        Cell::num(w.seconds, 2),
        dcell,
        ratio_cell,
        Cell::text(verdict),
        mib(w.peak),
        dmem,
        Cell::text(format!("{:.1} / {:.1}", w.load, d.load)),
    ]);
    ratio
}

fn ratio_text(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 1.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Per-test-point Pearson and Spearman: `(mean, min)` of each, and the
/// number of test points where a correlation is undefined.
fn per_test(a: &ScoreMatrix, b: &ScoreMatrix) -> ((f64, f64), (f64, f64), usize) {
    let (mut ps, mut ss, mut undefined) = (Vec::new(), Vec::new(), 0);
    for j in 0..a.n_test() {
        let x: Vec<f64> = a.column(j).iter().map(|&v| v as f64).collect();
        let y: Vec<f64> = b.column(j).iter().map(|&v| v as f64).collect();
        match (pearson(&x, &y), spearman(&x, &y)) {
            (Some(p), Some(s)) if p.is_finite() && s.is_finite() => {
                ps.push(p);
                ss.push(s);
            }
            _ => undefined += 1,
        }
    }
    let stat = |v: &[f64]| {
        if v.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (
                v.iter().sum::<f64>() / v.len() as f64,
                v.iter().copied().fold(f64::INFINITY, f64::min),
            )
        }
    };
    (stat(&ps), stat(&ss), undefined)
}

fn agreement(
    t: &mut Table,
    model: &str,
    method: &str,
    w: &WsRun,
    d: &DattriRun,
    dir: &Path,
    notes: &mut Vec<String>,
) {
    let mut cells = vec![
        Cell::text(model),
        Cell::text(method),
        Cell::text(w.setting.clone()),
    ];
    let loaded = match (&w.scores, &d.outcome) {
        (Ok(p), Ok(_)) => ScoreMatrix::load_npy(p)
            .and_then(|a| Ok((a, ScoreMatrix::load_npy(&d.scores)?)))
            .map_err(|e| e.to_string()),
        _ => Err("no pair of score matrices".to_string()),
    };
    let Ok((a, b)) = loaded else {
        cells.extend((0..5).map(|_| Cell::text("—")));
        t.push_row(cells);
        return;
    };
    if a.shape() != b.shape() {
        notes.push(format!(
            "{model} {method} ({}): shapes differ, wellspring {:?} vs dattri {:?}",
            w.setting,
            a.shape(),
            b.shape()
        ));
    }
    let ((pm, pmin), (sm, smin), undefined) = per_test(&a, &b);
    let bad = b.as_slice().iter().filter(|v| !v.is_finite()).count();
    if bad > 0 || undefined > 0 {
        notes.push(format!(
            "{model} {method} ({}): dattri returned {bad} non-finite scores; correlation \
             undefined on {undefined} of {} test points (left out of mean/min).",
            w.setting,
            a.n_test()
        ));
    }
    cells.extend([
        Cell::num(pm, 3),
        Cell::num(pmin, 3),
        Cell::num(sm, 3),
        Cell::num(smin, 3),
    ]);
    let exact = ws_paths(dir, method, ProjectionSpec::Identity).0;
    let vs_exact = if w.setting != "exact" && exact.exists() {
        ScoreMatrix::load_npy(&exact).ok().map(|e| {
            let ws = per_test(&a, &e).0.0;
            let da = per_test(&b, &e).0.0;
            Cell::text(format!("{ws:.3} / {da:.3}"))
        })
    } else {
        None
    };
    cells.push(vs_exact.unwrap_or_else(|| Cell::text("—")));
    t.push_row(cells);
}

/// `$CARGO_TARGET_DIR`, else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(t) => std::path::absolute(PathBuf::from(&t)).unwrap_or_else(|_| t.into()),
        None => root.join("target"),
    }
}

/// Creates `target/dattri-venv` and installs `xtask/dattri/requirements.txt`
/// unless dattri and torch already import there; returns its python.
fn ensure_venv(root: &Path, python: &str) -> Result<PathBuf> {
    let venv = target_dir(root).join("dattri-venv");
    let py = venv.join("bin").join("python");
    if !py.exists() {
        eprintln!("creating {}", venv.display());
        let s = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python} -m venv"))?;
        if !s.success() {
            bail!("{python} -m venv {} failed ({s})", venv.display());
        }
    }
    if probe(&py).is_ok() {
        return Ok(py);
    }
    let req = root.join("xtask/dattri/requirements.txt");
    eprintln!("installing {} (torch pulls ~5 GB of wheels)", req.display());
    let s = Command::new(&py)
        .args(["-m", "pip", "install", "-r"])
        .arg(&req)
        .status()
        .context("running pip")?;
    if !s.success() {
        bail!(
            "`{} -m pip install -r {}` failed ({s}); the package registry must be reachable once",
            py.display(),
            req.display()
        );
    }
    probe(&py)?;
    Ok(py)
}

/// Versions of python, torch and dattri in the venv (fails if they do not import).
fn probe(py: &Path) -> Result<Value> {
    let script = workspace_root().join("xtask/dattri/run_dattri.py");
    let out = Command::new(py)
        .arg(&script)
        .arg("probe")
        .output()
        .with_context(|| format!("running {}", py.display()))?;
    if !out.status.success() {
        bail!(
            "dattri/torch do not import in {}: {}",
            py.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
