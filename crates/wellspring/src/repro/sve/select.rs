//! Shared machinery of the SVE data-selection targets (`sve-table3`,
//! `sve-table4`, `sve-table5`, `sve-fig3`): the CPU stand-in dataset/model
//! pairs, the selection methods with the settings every table uses, and one
//! cached run per (pair, method, subset size, seed), so a run made for one
//! table is reused by the others and reruns resume.

use serde::{Deserialize, Serialize};
use wellspring_core::Dataset;
use wellspring_data::{DatasetName, load, sample};
use wellspring_models::{Model, ModelConfig, Optimizer, Schedule, TrainConfig};
use wellspring_report::CacheKey;
use wellspring_select::{
    Budget, Craig, CrestLoop, CrestParams, FullData, Glister, GlisterGreedy, GradMatch, ProxyKind,
    RandE, Random, SelectionRun, Selector, train_truncated_sgd, train_with_crest,
    train_with_selection,
};

use crate::repro::recipes::{
    FMNIST_CNN as FMNIST_CNN_RECIPE, MNIST_MLP as MNIST_MLP_RECIPE,
    OPTDIGITS_MLP as OPTDIGITS_MLP_RECIPE, Recipe, data_fingerprint, device,
};
use crate::repro::{ReproError, RunContext};

/// Points on which each CREST check evaluates the true loss (CPU budget).
pub(super) const CHECK_POINTS: usize = 512;

/// A CPU stand-in for one of the paper's dataset/model pairs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pair {
    /// Short name (`fmnist-cnn`).
    pub name: &'static str,
    /// The recipe whose architecture it trains.
    pub recipe: &'static Recipe,
    /// The dataset.
    pub dataset: DatasetName,
    /// Training points used (first n after carving out validation), full / quick.
    pub train_n: (Option<usize>, usize),
    /// Epochs, full / quick.
    pub epochs: (usize, usize),
    /// Batch size.
    pub batch: usize,
    /// Base learning rate (SGD, momentum 0.9, cosine to 0).
    pub lr: f64,
    /// What it stands in for.
    pub stands_in_for: &'static str,
}

/// MNIST with dattri's MLP (784-128-64-10, dropout 0.1).
pub(super) const MNIST_MLP: Pair = Pair {
    name: "mnist-mlp",
    recipe: &MNIST_MLP_RECIPE,
    dataset: DatasetName::Mnist,
    train_n: (None, 2000),
    epochs: (15, 3),
    batch: 128,
    lr: 0.1,
    stands_in_for: "CIFAR-10 / ResNet-20",
};

/// Fashion-MNIST (first 20 000 training points) with the small CNN.
pub(super) const FMNIST_CNN: Pair = Pair {
    name: "fmnist-cnn",
    recipe: &FMNIST_CNN_RECIPE,
    dataset: DatasetName::FashionMnist,
    train_n: (Some(20_000), 1000),
    epochs: (10, 2),
    batch: 64,
    lr: 0.05,
    stands_in_for: "CIFAR-100 / ResNet-18",
};

/// UCI Optdigits with a 64-128-64-10 MLP.
pub(super) const OPTDIGITS_MLP: Pair = Pair {
    name: "optdigits-mlp",
    recipe: &OPTDIGITS_MLP_RECIPE,
    dataset: DatasetName::Optdigits,
    train_n: (None, 10_000),
    epochs: (30, 4),
    batch: 64,
    lr: 0.05,
    stands_in_for: "TinyImageNet / ResNet-50",
};

/// A pair's data and settings for this run.
pub(super) struct PairData {
    pub pair: Pair,
    pub train: Dataset,
    pub valid: Dataset,
    pub test: Dataset,
    pub config: ModelConfig,
    pub epochs: usize,
    /// Epochs between selections for the epoch-based methods.
    pub select_every: usize,
    pub seeds: usize,
}

/// Loads a pair: 10% of the training file held out for validation (GLISTER
/// uses its first 1000 points; every method trains on the same remaining
/// points), then the first `train_n` training points.
pub(super) fn load_pair(
    ctx: &RunContext,
    pair: Pair,
    seeds: usize,
) -> Result<PairData, ReproError> {
    let split = load(pair.dataset, &ctx.load_options().valid_fraction(0.1))?;
    let valid = split.valid.ok_or_else(|| {
        ReproError::Failed(format!(
            "{}: the loader returned no validation split",
            pair.name
        ))
    })?;
    // GLISTER's cost grows with the validation size; 1000 points is plenty for its gains.
    let valid = if valid.len() > 1000 {
        sample::first_n(&valid, 1000)?
    } else {
        valid
    };
    let n = if ctx.quick {
        Some(pair.train_n.1)
    } else {
        pair.train_n.0
    };
    let train = match n {
        Some(n) if n < split.train.len() => sample::first_n(&split.train, n)?,
        _ => split.train,
    };
    let config = pair.recipe.model_config(&train)?;
    let epochs = if ctx.quick {
        pair.epochs.1
    } else {
        pair.epochs.0
    };
    Ok(PairData {
        pair,
        train,
        valid,
        test: split.test,
        config,
        epochs,
        select_every: (epochs / 5).max(1),
        seeds,
    })
}

impl PairData {
    /// Training settings of seed index `s`.
    pub fn train_config(&self, ctx: &RunContext, s: usize) -> TrainConfig {
        TrainConfig::params()
            .epochs(self.epochs)
            .batch_size(self.pair.batch)
            .optimizer(Optimizer::sgd_momentum(0.9))
            .lr(self.pair.lr)
            .schedule(Schedule::Cosine { min_lr: 0.0 })
            .seed(ctx.seed_for(&format!("sve-select/{}/train/{s}", self.pair.name)))
            .check()
            .expect("valid settings")
    }

    /// One line describing the settings, for reports.
    pub fn describe(&self) -> String {
        format!(
            "{}: {} train / {} validation / {} test points, {} ({}), SGD m=0.9 lr {} cosine, batch {}, {} epochs, selection every {} epochs, {} seed(s)",
            self.pair.name,
            self.train.len(),
            self.valid.len(),
            self.test.len(),
            self.config.name(),
            self.pair.stands_in_for,
            self.pair.lr,
            self.pair.batch,
            self.epochs,
            self.select_every,
            self.seeds
        )
    }
}

/// A selection method with the settings every SVE target uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(super) enum Method {
    /// All data (the relative-error reference).
    Full,
    /// One uniform subset for the whole run.
    RandomFixed,
    /// A new uniform subset every `select_every` epochs.
    Random,
    /// Full-data SGD stopped after the subset's share of steps.
    Sgd,
    /// CRAIG, bias proxies, per class, lazy greedy.
    Craig,
    /// GradMatch, last-layer proxies, per class, λ = 0.5.
    GradMatch,
    /// GLISTER, bias proxies, stochastic greedy (ε = 0.01), η = lr.
    Glister,
    /// CREST driven by its quadratic-model checks.
    Crest,
    /// RandE, P ∝ entropy, every `select_every` epochs.
    RandE,
}

impl Method {
    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Method::Full => "Full data",
            Method::RandomFixed => "Random (Fixed)",
            Method::Random => "Random (Adaptive)",
            Method::Sgd => "SGD",
            Method::Craig => "CRAIG",
            Method::GradMatch => "GradMatch",
            Method::Glister => "GLISTER",
            Method::Crest => "CREST",
            Method::RandE => "RandE",
        }
    }

    /// The settings, in words, for reports and cache keys.
    pub fn settings(self) -> &'static str {
        match self {
            Method::Full => "all points every epoch",
            Method::RandomFixed => "one uniform subset",
            Method::Random => "uniform subset every e epochs",
            Method::Sgd => {
                "full-data mini-batches, full run's cosine schedule, stopped after the subset's share of steps"
            }
            Method::Craig => {
                "per-class lazy-greedy facility location on softmax − one-hot, cluster-size weights, every e epochs"
            }
            Method::GradMatch => {
                "per-class non-negative OMP on last-layer gradients [p − y, (p − y) ⊗ φ], λ = 0.5, every e epochs"
            }
            Method::Glister => {
                "stochastic greedy (ε = 0.01) Taylor validation log-likelihood on softmax − one-hot, η = lr, every e epochs"
            }
            Method::Crest => {
                "mini-batch coresets from random subsets (|V| = max(1%, 3B) of n), quadratic last-layer model (1-probe Hutchinson) checked with τ = 0.1 on ≤ 512 sampled points of the random subsets"
            }
            Method::RandE => "P ∝ prediction entropy, without replacement, every e epochs",
        }
    }
}

/// The numbers one run leaves behind (cached as JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Outcome {
    /// Test accuracy, %.
    pub accuracy: f64,
    /// Wall time of the run, selection included, s.
    pub total_s: f64,
    /// Selection overhead, s.
    pub selection_s: f64,
    /// Time in optimiser steps, s.
    pub train_s: f64,
    /// Optimiser steps.
    pub steps: usize,
    /// Selection rounds.
    pub rounds: usize,
    /// Points per epoch.
    pub budget: usize,
    /// CREST: quadratic-model checks and failed checks.
    pub checks: Option<(usize, usize)>,
}

/// Runs (or fetches from the cache) `method` on `data` at subset `fraction`
/// with seed index `s`; model initialisation and shuffles depend only on
/// the pair and `s`, so methods are compared on the same initial model.
pub(super) fn outcome(
    ctx: &RunContext,
    data: &PairData,
    method: Method,
    fraction: f64,
    s: usize,
) -> Result<Outcome, ReproError> {
    let cfg = data.train_config(ctx, s);
    let init_seed = ctx.seed_for(&format!("sve-select/{}/model/{s}", data.pair.name));
    let select_seed = ctx.seed_for(&format!("sve-select/{}/select/{s}", data.pair.name));
    let fraction = if method == Method::Full {
        1.0
    } else {
        fraction
    };
    let key = CacheKey::new("sve-select-run")
        .field("pair", data.pair.name)
        .field("data", &data_fingerprint(&data.train))
        .field("valid", &data_fingerprint(&data.valid))
        .field("test", &data_fingerprint(&data.test))
        .field("model", &data.config)
        .field("train", &cfg)
        .field("method", &method)
        .field("method_settings", method.settings())
        .field("select_every", &data.select_every)
        .field("fraction", &fraction)
        .field("init_seed", &init_seed)
        .field("select_seed", &select_seed)
        .field("version", env!("CARGO_PKG_VERSION"));
    ctx.cache.get_or_compute_json(&key, || {
        let run = train(data, method, fraction, &cfg, init_seed, select_seed)?;
        Ok::<Outcome, ReproError>(Outcome {
            accuracy: 100.0 * run.test_accuracy.expect("a test set was given"),
            total_s: run.total_time.as_secs_f64(),
            selection_s: run.selection_time.as_secs_f64(),
            train_s: run.train_time.as_secs_f64(),
            steps: run.steps,
            rounds: run.rounds.len(),
            budget: run.budget,
            checks: run.crest.as_ref().map(|c| (c.checks, c.failed_checks)),
        })
    })
}

/// Trains `data`'s model from `init_seed` with `method` at subset `fraction`.
fn train(
    data: &PairData,
    method: Method,
    fraction: f64,
    cfg: &TrainConfig,
    init_seed: u64,
    select_seed: u64,
) -> Result<SelectionRun, ReproError> {
    let device = device();
    let model = Model::new(data.config.clone(), init_seed, &device)?;
    let e = data.select_every;
    let budget = Budget::Fraction(fraction);
    let with = |sel: &dyn Selector| -> Result<SelectionRun, ReproError> {
        Ok(train_with_selection(
            model.clone(),
            &data.train,
            Some(&data.valid),
            Some(&data.test),
            sel,
            budget,
            cfg,
            &device,
            select_seed,
            None,
        )?)
    };
    Ok(match method {
        Method::Full => with(&FullData)?,
        Method::RandomFixed => with(&Random::fixed())?,
        Method::Random => with(&Random::adaptive(e)?)?,
        Method::RandE => with(&RandE::params().every_epochs(e).check()?)?,
        Method::Craig => with(&Craig::params().every_epochs(e).check()?)?,
        Method::GradMatch => with(
            &GradMatch::params()
                .proxy(ProxyKind::BiasAndWeights)
                .every_epochs(e)
                .check()?,
        )?,
        Method::Glister => with(
            &Glister::params()
                .eta(data.pair.lr)
                .greedy(GlisterGreedy::Stochastic { epsilon: 0.01 })
                .every_epochs(e)
                .check()?,
        )?,
        Method::Sgd => train_truncated_sgd(
            model,
            &data.train,
            Some(&data.test),
            fraction,
            cfg,
            &device,
            None,
        )?,
        Method::Crest => {
            let n = data.train.len() as f64;
            let r = (3.0 * data.pair.batch as f64 / n).clamp(0.01, 1.0);
            let crest = CrestLoop::new(CrestParams::default().random_subset_fraction(r))
                .max_check_points(Some(CHECK_POINTS));
            train_with_crest(
                model,
                &data.train,
                Some(&data.test),
                &crest,
                budget,
                cfg,
                &device,
                select_seed,
                None,
            )?
        }
    })
}

/// Mean and sample standard deviation (0 for one sample).
pub(super) fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let s = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, s)
}

/// Number of seeds: 3 in a full run, 1 in quick mode.
pub(super) fn seeds(ctx: &RunContext) -> usize {
    if ctx.quick { 1 } else { 3 }
}

/// The note a quick run carries: what was cut, from the pairs' own settings.
pub(super) fn quick_note(pairs: &[Pair]) -> String {
    let each: Vec<String> = pairs
        .iter()
        .map(|p| {
            format!(
                "{}: first {} training points, {} epochs",
                p.name, p.train_n.1, p.epochs.1
            )
        })
        .collect();
    format!(
        "Quick mode ({}; one seed): a smoke test of the pipeline, too few steps for meaningful \
         accuracies.",
        each.join("; ")
    )
}

/// The note every SVE selection report carries.
pub(super) fn stand_in_note() -> &'static str {
    "CPU stand-ins: the paper trains ResNet-18/20/50 on CIFAR-10/100 and TinyImageNet for \
     hundreds of epochs on GPUs; here MNIST (dattri's MLP), Fashion-MNIST (first 20 000 \
     training points, the small CNN) and UCI Optdigits (MLP) train for 10–30 epochs on 2 CPU \
     cores (burn flex backend). Absolute accuracies are therefore not comparable; the \
     comparisons between methods at equal step budgets are."
}
