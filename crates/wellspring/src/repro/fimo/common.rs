//! Shared machinery of `fimo-fig2` and `fimo-fig3`: the further-training
//! gold standard (FiMO §3, eq. 13; appendix D.3) on each dataset's final
//! model, and every gradient-based method's cosine similarity with it
//! (appendix D.5), through eval's `ModelFurtherTrainer` + `FimoComparison`.
//!
//! Both figures read the same further-training runs, which the eval harness
//! caches per (left-out point, seed), so running the second target after the
//! first trains nothing new.

use std::time::Instant;

use wellspring_attrib::{
    AttribError, DynAttributor, MethodOptions, ModelSource, ProjectionSpec, by_name,
};
use wellspring_core::Dataset;
use wellspring_data::sample;
use wellspring_eval::{
    FimoComparison, FimoReport, FurtherTrainingParams, ModelFurtherTrainer, run_further_training,
};
use wellspring_models::Schedule;

use crate::repro::recipes::{device, load_data, recipe, train_cached};
use crate::repro::{ReproError, RunContext};

/// One dataset + final model of FiMO's Figures 2–3 (appendix D), with the
/// sizes of our (CPU-scaled) run.
#[derive(Clone, Copy, Debug)]
pub(super) struct FimoCase {
    /// Panel name ("Concrete").
    pub label: &'static str,
    /// Recipe of the final model (`recipes.rs`).
    pub recipe: &'static str,
    /// What it stands in for, if it is not the paper's own setting.
    pub stand_in: Option<&'static str>,
    /// First-n training points kept (`None`: the whole training split).
    pub train_cap: Option<usize>,
    /// Epochs of the final model's training, if not the recipe's.
    pub final_epochs: Option<usize>,
    /// Further-training epochs at which the gold standard is evaluated.
    pub epochs: &'static [usize],
    /// Left-out training points `l` (the subset `L`).
    pub points: usize,
    /// Test points `m`.
    pub n_test: usize,
    /// Seeds `r` averaged (batch orders).
    pub seeds: usize,
}

/// The paper's six panels at CPU scale (full run).
pub(super) const FULL_CASES: [FimoCase; 6] = [
    FimoCase {
        label: "Concrete",
        recipe: "concrete-fimo",
        stand_in: None,
        train_cap: None,
        final_epochs: None,
        epochs: &[1, 2, 5, 10, 20, 50],
        points: 30,
        n_test: 30,
        seeds: 10,
    },
    FimoCase {
        label: "Energy",
        recipe: "energy-fimo",
        stand_in: None,
        train_cap: None,
        final_epochs: None,
        epochs: &[1, 2, 5, 10, 20, 50],
        points: 30,
        n_test: 30,
        seeds: 10,
    },
    FimoCase {
        label: "HELOC (FICO)",
        recipe: "heloc-fimo",
        stand_in: None,
        train_cap: Some(2000),
        final_epochs: None,
        epochs: &[1, 2, 5, 10, 20],
        points: 30,
        n_test: 30,
        seeds: 10,
    },
    FimoCase {
        label: "Adult",
        recipe: "adult-fimo",
        stand_in: Some("Folktables ACSIncome"),
        train_cap: Some(2000),
        final_epochs: None,
        epochs: &[1, 2, 5, 10],
        points: 30,
        n_test: 30,
        seeds: 10,
    },
    FimoCase {
        label: "SST-2 (text bag)",
        recipe: "sst2-textbag",
        stand_in: Some("fine-tuned BERT-base on SST-2"),
        train_cap: Some(2000),
        final_epochs: Some(10),
        epochs: &[1, 2, 3],
        points: 20,
        n_test: 20,
        seeds: 6,
    },
    FimoCase {
        label: "MNIST CNN",
        recipe: "mnist-cnn",
        stand_in: Some("CIFAR-10 ResNet-9"),
        train_cap: Some(500),
        final_epochs: Some(10),
        epochs: &[1, 2, 3],
        points: 20,
        n_test: 20,
        seeds: 6,
    },
];

/// `--quick`: Concrete only, tiny sizes.
pub(super) const QUICK_CASES: [FimoCase; 1] = [FimoCase {
    label: "Concrete",
    recipe: "concrete-fimo",
    stand_in: None,
    train_cap: Some(200),
    final_epochs: Some(100),
    epochs: &[1, 2, 4, 8],
    points: 12,
    n_test: 8,
    seeds: 4,
}];

/// The cases of this run.
pub(super) fn cases(ctx: &RunContext) -> &'static [FimoCase] {
    if ctx.quick { &QUICK_CASES } else { &FULL_CASES }
}

/// (label, registry name, parameters) of one compared method.
pub(super) type MethodSpec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The approximate methods of FiMO §6.1 with the paper's settings where we
/// have them: (label, registry name, parameters).
pub(super) const METHODS: [MethodSpec; 9] = [
    ("Grad-Dot", "grad-dot", &[]),
    ("Grad-Cos", "grad-cos", &[]),
    ("CG", "if-cg", &[("damping", "0.01")]),
    ("LiSSA", "if-lissa", &[("damping", "0.01")]),
    (
        "LiSSA-H",
        "if-lissa",
        &[("damping", "0.01"), ("curvature", "hessian")],
    ),
    ("Arnoldi", "if-arnoldi", &[("damping", "0.01")]),
    ("EK-FAC", "ekfac", &[]),
    ("DataInf", "datainf", &[]),
    ("TRAK-1", "trak", &[]),
];

/// Largest `n × p` of unprojected training gradients LiSSA-H may hold
/// (2²⁷ f32 entries, 512 MiB): the tabular MLPs fit, the text and image
/// models are skipped with a note.
const MAX_PARAM_SPACE: usize = 1 << 27;

/// LiSSA scales FiMO App. D tries in turn when the default diverges.
const LISSA_SCALES: [&str; 6] = ["10", "20", "50", "100", "200", "500"];

/// One method's comparison with the gold standard on one case.
pub(super) struct MethodResult {
    /// Method label (`METHODS`).
    pub label: &'static str,
    /// Cosine vs epochs and max cosine vs seeds.
    pub report: FimoReport,
    /// Seconds of fit + attribute.
    pub seconds: f64,
}

/// Everything one case produced.
pub(super) struct CaseResult {
    /// The case.
    pub case: FimoCase,
    /// Training / test points actually used.
    pub n_train: usize,
    /// Test points.
    pub n_test: usize,
    /// Further-training learning rate (a tenth of the final model's).
    pub further_lr: f64,
    /// Seconds of further training (0 when it all came from the cache).
    pub further_seconds: f64,
    /// Methods that ran.
    pub methods: Vec<MethodResult>,
    /// Methods skipped, with the reason.
    pub skipped: Vec<String>,
    /// Settings changed from a method's defaults to make it run.
    pub notes: Vec<String>,
}

fn failed(target: &'static str, what: impl std::fmt::Display) -> ReproError {
    ReproError::Failed {
        target,
        reason: what.to_string(),
    }
}

fn load_case(
    ctx: &RunContext,
    target: &'static str,
    case: &FimoCase,
) -> Result<(Dataset, Dataset), ReproError> {
    let rec = recipe(case.recipe)?;
    let split = load_data(ctx, rec)?;
    let train = match case.train_cap {
        Some(n) if n < split.train.len() => sample::first_n(&split.train, n)?,
        _ => split.train,
    };
    if split.test.is_empty() {
        return Err(failed(target, format!("{}: empty test split", case.label)));
    }
    let test = sample::subsample(
        &split.test,
        case.n_test.min(split.test.len()),
        ctx.seed_for(&format!("fimo.{}.test", case.recipe)),
    )?;
    Ok((train, test))
}

/// Trains (or loads) the case's final model, runs the further-training gold
/// standard and compares every available method with it.
pub(super) fn run_case(
    ctx: &RunContext,
    target: &'static str,
    case: &FimoCase,
    seed_group_sizes: &[usize],
) -> Result<CaseResult, ReproError> {
    let rec = recipe(case.recipe)?;
    let (train, test) = load_case(ctx, target, case)?;
    let config = rec.model_config(&train)?;
    // one model shared by both figures: the seed names the recipe, not the target
    let seed = ctx.seed_for(&format!("fimo.{}.model", case.recipe));
    let mut train_config = rec.train_config(false, seed);
    if let Some(e) = case.final_epochs {
        train_config.epochs = e;
    } else if ctx.quick {
        train_config = rec.train_config(true, seed);
    }
    let tag = format!("fimo-{}", case.recipe);
    let (model, _) = train_cached(ctx, &tag, &train, &config, &train_config, seed)?;

    // FiMO appendix D.3: same algorithm, a tenth of the learning rate
    let mut further = train_config.clone();
    further.lr = train_config.lr / 10.0;
    further.schedule = Schedule::Constant;
    further.epochs = *case.epochs.last().expect("cases list epochs");
    let trainer =
        ModelFurtherTrainer::new(&train, &test, model.clone(), further.clone(), &device())
            .map_err(|e| failed(target, format!("{}: further trainer: {e}", case.label)))?
            .with_cache(ctx.cache.clone())
            .with_progress(ctx.progress.clone());
    let mut points = sample::random_indices(
        train.len(),
        case.points.min(train.len()),
        ctx.seed_for(&format!("fimo.{}.points", case.recipe)),
    )?;
    points.sort_unstable();
    let params = FurtherTrainingParams::new(points)
        .n_seeds(case.seeds)
        .seed(ctx.seed_for(&format!("fimo.{}.seeds", case.recipe)))
        .epochs(case.epochs.to_vec())
        .include_full(false);
    let clock = Instant::now();
    let gold = run_further_training(&trainer, &params)
        .map_err(|e| failed(target, format!("{}: further training: {e}", case.label)))?;
    let further_seconds = clock.elapsed().as_secs_f64();

    let compare = FimoComparison::params().seed_group_sizes(seed_group_sizes.to_vec());
    let source = ModelSource::new(model, device()).with_train_config(train_config.clone());
    let mut methods = Vec::new();
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let param_space = train.len() * source.model.n_params();
    for (label, name, params) in METHODS {
        let mut opts = MethodOptions::new().seed(ctx.seed_for(&format!("fimo.{name}")));
        for (k, v) in params {
            opts = opts.param(*k, *v);
        }
        if params.contains(&("curvature", "hessian")) {
            // the parameter-space Hessian needs unprojected training gradients
            if param_space > MAX_PARAM_SPACE {
                skipped.push(format!(
                    "{label} ({name}): the parameter-space Hessian needs the unprojected n × p = \
                     {} × {} training gradients (limit {MAX_PARAM_SPACE} entries)",
                    train.len(),
                    source.model.n_params()
                ));
                continue;
            }
            opts = opts.projection(ProjectionSpec::Identity);
        }
        let method = match by_name(name, &opts) {
            Ok(m) => m,
            Err(e) => {
                skipped.push(format!("{label} ({name}): not available: {e}"));
                continue;
            }
        };
        let fit_attribute =
            |m: &dyn DynAttributor| m.fit_dyn(&source, &train).and_then(|f| f.attribute(&test));
        let mut clock = Instant::now();
        let mut scores = fit_attribute(method.as_ref());
        let diverged = matches!(&scores, Err(AttribError::Diverged { .. }));
        if diverged {
            // FiMO App. D: the scale is the smallest of {10, 20, 50, 100, 200,
            // 500} for which LiSSA does not diverge (our default, twice the
            // largest full-batch eigenvalue, can be too small for minibatch
            // Hessians, whose negative directions also grow the recursion)
            let first = scores
                .as_ref()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            for scale in LISSA_SCALES {
                clock = Instant::now(); // time the run that is reported
                let retry = by_name(name, &opts.clone().param("scale", scale))
                    .and_then(|m| fit_attribute(m.as_ref()));
                if retry.is_ok() {
                    notes.push(format!(
                        "{label}: the default scale diverged ({first}); scale {scale}, the \
                         smallest of FiMO's grid {{{}}} that converged, was used",
                        LISSA_SCALES.join(", ")
                    ));
                    scores = retry;
                    break;
                }
            }
        }
        let seconds = clock.elapsed().as_secs_f64();
        let scores = match scores {
            Ok(s) => s,
            Err(e) => {
                let grid = if name == "if-lissa" {
                    format!(
                        " (also with every scale of FiMO's grid {{{}}})",
                        LISSA_SCALES.join(", ")
                    )
                } else {
                    String::new()
                };
                skipped.push(format!("{label} ({name}): {e}{grid}"));
                continue;
            }
        };
        if scores.as_slice().iter().any(|v| !v.is_finite()) {
            skipped.push(format!("{label} ({name}): non-finite scores"));
            continue;
        }
        let report = compare
            .compare(&scores, &gold)
            .map_err(|e| failed(target, format!("{}: {label} vs gold: {e}", case.label)))?;
        methods.push(MethodResult {
            label,
            report,
            seconds,
        });
    }
    Ok(CaseResult {
        case: *case,
        n_train: train.len(),
        n_test: test.len(),
        further_lr: further.lr,
        further_seconds,
        methods,
        skipped,
        notes,
    })
}

/// One line per case describing its setting (for the report's settings).
pub(super) fn describe(r: &CaseResult) -> String {
    format!(
        "n_train {}, m = {} test, l = {} left out, r = {} seeds, further epochs {:?} at lr {}{}",
        r.n_train,
        r.n_test,
        r.case.points,
        r.case.seeds,
        r.case.epochs,
        r.further_lr,
        r.case
            .stand_in
            .map(|s| format!("; CPU stand-in for {s}"))
            .unwrap_or_default()
    )
}

/// The paper's qualitative findings (§6.2; its figures give no numbers in
/// text), shown beside ours.
pub(super) const PAPER_FINDINGS: &str = "FiMO §6.2 (figures only, no numbers in the text): \
    Grad-Dot starts among the highest cosines and decays with further training; Grad-Cos \
    below Grad-Dot; DataInf behaves like Grad-Dot (cosine between the two > 0.95), slightly \
    higher; CG/LiSSA do not decay but stay lower than the first-order peak; LiSSA-H \
    consistently worse; EK-FAC similar to LiSSA; TRAK-1 poor everywhere; CIFAR-10 and SST-2 \
    much lower than tabular. Figure 3: the maximum cosine rises with the number of seeds.";

/// Seed-group sizes r for Figure 3: the divisors of `seeds` among
/// 1, 2, 3, 4, 5, 6, 8, 10, 20, 50, 100, so every group is full and all
/// seeds are used.
pub(super) fn seed_group_sizes(seeds: usize) -> Vec<usize> {
    [1, 2, 3, 4, 5, 6, 8, 10, 20, 50, 100]
        .into_iter()
        .filter(|&r| r <= seeds && seeds.is_multiple_of(r))
        .collect()
}
