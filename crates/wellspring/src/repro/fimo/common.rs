//! Shared machinery of `fimo-fig2` and `fimo-fig3`: the further-training
//! gold standard (FiMO §3, eq. 13; appendix D.3) on each dataset's final
//! model, and every gradient-based method's cosine similarity with it
//! (appendix D.5), through eval's `ModelFurtherTrainer` + `FimoComparison`.
//!
//! Both figures read the same further-training runs, which the eval harness
//! caches per (left-out point, seed), so running the second target after the
//! first trains nothing new.

use std::time::Instant;

use wellspring_attrib::ModelSource;
use wellspring_core::Dataset;
use wellspring_data::sample;
use wellspring_eval::{
    FimoComparison, FimoReport, FurtherTrainingParams, FurtherTrainingResult, ModelFurtherTrainer,
    run_further_training,
};
use wellspring_models::{Model, Schedule, TrainConfig};

use super::methods::{MAX_PARAM_SPACE, METHODS, ModelKey, projection_for, projection_label, score};
use crate::repro::method::MethodSpec;
use crate::repro::recipes::{
    ADULT_FIMO, CONCRETE_FIMO, ENERGY_FIMO, HELOC_FIMO, MNIST_CNN, Recipe, SST2_TEXTBAG, device,
    load_data, train_cached,
};
use crate::repro::{ReproError, RunContext};

/// One dataset + final model of FiMO's Figures 2–3 (appendix D), with the
/// sizes of our (CPU-scaled) run.
#[derive(Clone, Copy, Debug)]
pub(super) struct FimoCase {
    /// Panel name ("Concrete").
    pub label: &'static str,
    /// Recipe of the final model.
    pub recipe: &'static Recipe,
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
        recipe: &CONCRETE_FIMO,
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
        recipe: &ENERGY_FIMO,
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
        recipe: &HELOC_FIMO,
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
        recipe: &ADULT_FIMO,
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
        recipe: &SST2_TEXTBAG,
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
        recipe: &MNIST_CNN,
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
    recipe: &CONCRETE_FIMO,
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

/// One method's comparison with the gold standard on one case.
pub(super) struct MethodResult {
    /// Method label (`METHODS`).
    pub label: &'static str,
    /// Its gradients: "exact" or the sketch it used.
    pub gradients: String,
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

fn load_case(ctx: &RunContext, case: &FimoCase) -> Result<(Dataset, Dataset), ReproError> {
    let split = load_data(ctx, case.recipe)?;
    let train = match case.train_cap {
        Some(n) if n < split.train.len() => sample::first_n(&split.train, n)?,
        _ => split.train,
    };
    if split.test.is_empty() {
        return Err(ReproError::Failed(format!(
            "{}: empty test split",
            case.label
        )));
    }
    let test = sample::subsample(
        &split.test,
        case.n_test.min(split.test.len()),
        ctx.seed_for(&format!("fimo.{}.test", case.recipe.name)),
    )?;
    Ok((train, test))
}

/// The case's data and trained final model.
struct Final {
    train: Dataset,
    test: Dataset,
    model: Model,
    train_config: TrainConfig,
}

/// Trains (or loads) the case's final model: one model shared by both
/// figures (the seed names the recipe, not the target).
fn final_model(ctx: &RunContext, case: &FimoCase) -> Result<Final, ReproError> {
    let rec = case.recipe;
    let (train, test) = load_case(ctx, case)?;
    let config = rec.model_config(&train)?;
    let seed = ctx.seed_for(&format!("fimo.{}.model", rec.name));
    let mut train_config = rec.train_config(false, seed);
    if let Some(e) = case.final_epochs {
        train_config.epochs = e;
    } else if ctx.quick {
        train_config = rec.train_config(true, seed);
    }
    let tag = format!("fimo-{}", rec.name);
    let (model, _) = train_cached(ctx, &tag, &train, &config, &train_config, seed)?;
    Ok(Final {
        train,
        test,
        model,
        train_config,
    })
}

/// The further-training gold standard (FiMO appendix D.3: same algorithm, a
/// tenth of the learning rate), its learning rate and its seconds.
fn gold_standard(
    ctx: &RunContext,
    case: &FimoCase,
    f: &Final,
) -> Result<(FurtherTrainingResult, f64, f64), ReproError> {
    let mut further = f.train_config.clone();
    further.lr = f.train_config.lr / 10.0;
    further.schedule = Schedule::Constant;
    further.epochs = *case.epochs.last().expect("cases list epochs");
    let trainer = ModelFurtherTrainer::new(
        &f.train,
        &f.test,
        f.model.clone(),
        further.clone(),
        &device(),
    )?
    .with_cache(ctx.cache.clone())
    .with_progress(ctx.progress.clone());
    let mut points = sample::random_indices(
        f.train.len(),
        case.points.min(f.train.len()),
        ctx.seed_for(&format!("fimo.{}.points", case.recipe.name)),
    )?;
    points.sort_unstable();
    let params = FurtherTrainingParams::new(points)
        .n_seeds(case.seeds)
        .seed(ctx.seed_for(&format!("fimo.{}.seeds", case.recipe.name)))
        .epochs(case.epochs.to_vec())
        .include_full(false);
    let clock = Instant::now();
    let gold = run_further_training(&trainer, &params)?;
    Ok((gold, further.lr, clock.elapsed().as_secs_f64()))
}

/// Every case of this run (`--quick`: Concrete only), each compared with its
/// gold standard averaged over [`seed_group_sizes`] seeds.
pub(super) fn run_cases(ctx: &RunContext) -> Result<Vec<CaseResult>, ReproError> {
    cases(ctx)
        .iter()
        .map(|case| run_case(ctx, case, &seed_group_sizes(case.seeds)))
        .collect()
}

/// Trains (or loads) the case's final model, runs the further-training gold
/// standard and compares every available method with it.
pub(super) fn run_case(
    ctx: &RunContext,
    case: &FimoCase,
    seed_group_sizes: &[usize],
) -> Result<CaseResult, ReproError> {
    let f = final_model(ctx, case)?;
    let (gold, further_lr, further_seconds) = gold_standard(ctx, case, &f)?;
    let compare = FimoComparison::params().seed_group_sizes(seed_group_sizes.to_vec());
    let source =
        ModelSource::new(f.model.clone(), device()).with_train_config(f.train_config.clone());
    let mut out = CaseResult {
        case: *case,
        n_train: f.train.len(),
        n_test: f.test.len(),
        further_lr,
        further_seconds,
        methods: Vec::new(),
        skipped: Vec::new(),
        notes: Vec::new(),
    };
    let (n, p) = (f.train.len(), source.model.n_params());
    for m in &METHODS {
        let Some(projection) = projection_for(m, n, p, ctx.quick) else {
            // the parameter-space Hessian needs unprojected training gradients
            out.skipped.push(format!(
                "{} ({}): the parameter-space Hessian needs the unprojected n × p = {n} × {p} \
                 training gradients (limit {MAX_PARAM_SPACE} entries)",
                m.spec.label, m.spec.name,
            ));
            continue;
        };
        let spec = MethodSpec {
            quick: ctx.quick,
            ..match projection {
                Some(pr) => m.spec.projection(pr),
                None => m.spec,
            }
        };
        let key = ModelKey {
            recipe: case.recipe.name,
            train: &f.train,
            test: &f.test,
            train_config: &f.train_config,
        };
        let scored = match score(ctx, m, &spec, &source, &key)? {
            Ok(s) => s,
            Err(why) => {
                out.skipped
                    .push(format!("{} ({}): {why}", spec.label, spec.name));
                continue;
            }
        };
        out.notes.extend(scored.note.clone());
        let (scores, seconds) = (scored.scores()?, scored.seconds);
        if scores.as_slice().iter().any(|v| !v.is_finite()) {
            out.skipped
                .push(format!("{} ({}): non-finite scores", spec.label, spec.name));
            continue;
        }
        let report = compare.compare(&scores, &gold)?;
        out.methods.push(MethodResult {
            label: spec.label,
            gradients: projection_label(&spec, spec.projection),
            report,
            seconds,
        });
    }
    Ok(out)
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
