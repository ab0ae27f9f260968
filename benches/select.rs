//! Selection time per round of every strategy at MNIST scale (n = 60 000,
//! 10% budget), with inputs from a real trained MLP (dattri's 784-128-64-10,
//! one epoch): probabilities, `softmax − one-hot` proxies (d = 10) and
//! last-layer proxies `[p − y, (p − y) ⊗ φ]` (d = 10 · 65 = 650); GLISTER
//! validates on 1000 MNIST test points. Beside them: the forward pass that
//! produces the inputs, and a training epoch of the same model (full data and
//! a 10% subset), so overheads can be read as fractions of an epoch.
//!
//!     cargo bench -p wellspring --bench select
//!
//! Reference per-round times of the Python implementations are cited in
//! `crates/wellspring-select/README.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wellspring_core::{Dataset, Subset};
use wellspring_data::{DatasetName, LoadOptions, load, sample};
use wellspring_models::burn_types::Device;
use wellspring_models::{
    Model, ModelConfig, Optimizer, Schedule, TrainConfig, Trainer, features, predict_logits, train,
};
use wellspring_select::{
    Budget, Craig, Crest, EntropyWeighting, Glister, GlisterGreedy, GradMatch, GradMatchMode,
    GradProxies, ProxyKind, RandE, Random, Selector, TrainingState, ValidationState,
};

const C: usize = 10;

struct Setup {
    train: Dataset,
    model: Model,
    cfg: TrainConfig,
    labels: Vec<usize>,
    probs: Vec<f32>,
    bias: GradProxies,
    full: GradProxies,
    vlabels: Vec<usize>,
    vprobs: Vec<f32>,
    vphi: Vec<f32>,
    p: usize,
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    logits
        .chunks_exact(C)
        .flat_map(|r| {
            let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let e: Vec<f32> = r.iter().map(|&v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

fn setup(device: &Device) -> Setup {
    let split = load(DatasetName::Mnist, &LoadOptions::new())
        .expect("MNIST (datasets/ or WELLSPRING_DATA)");
    let cfg = TrainConfig::params()
        .epochs(1)
        .batch_size(128)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.1)
        .schedule(Schedule::Cosine { min_lr: 0.0 })
        .check()
        .expect("valid config");
    let model = Model::new(ModelConfig::mnist_mlp(), 0, device).expect("valid model");
    let model = train(model, &split.train, None, &cfg, device, None)
        .expect("training")
        .model;
    let labels = split.train.labels().expect("classes").to_vec();
    let probs = softmax(&predict_logits(&model, &split.train, device).expect("forward"));
    let phi = features(&model, &split.train, device).expect("features");
    let p = model.feature_dim();
    let bias = GradProxies::last_layer(&probs, &labels, C, None).expect("proxies");
    let full = GradProxies::last_layer(&probs, &labels, C, Some((&phi, p))).expect("proxies");
    let valid = sample::first_n(&split.test, 1000).expect("1000 test points");
    let vlabels = valid.labels().expect("classes").to_vec();
    let vprobs = softmax(&predict_logits(&model, &valid, device).expect("forward"));
    let vphi = features(&model, &valid, device).expect("features");
    Setup {
        train: split.train,
        model,
        cfg,
        labels,
        probs,
        bias,
        full,
        vlabels,
        vprobs,
        vphi,
        p,
    }
}

fn state<'a>(s: &'a Setup, g: &'a GradProxies, val: ValidationState<'a>) -> TrainingState<'a> {
    TrainingState::new(&s.labels, C)
        .and_then(|t| t.with_probs(&s.probs))
        .and_then(|t| t.with_proxies(g))
        .and_then(|t| t.with_validation(val))
        .expect("valid state")
}

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    let s = setup(&device);
    let n = s.labels.len();
    let val = ValidationState::new(&s.vlabels)
        .with_probs(&s.vprobs)
        .with_features(&s.vphi, s.p);
    let st_b = state(&s, &s.bias, val);
    let st_w = state(&s, &s.full, val);
    let w = ProxyKind::BiasAndWeights;

    let mut g = c.benchmark_group(format!("select_round_n{n}_10pct"));
    g.sample_size(10).warm_up_time(Duration::from_millis(500));
    let cases: Vec<(&str, Box<dyn Selector>, &TrainingState<'_>)> = vec![
        ("random", Box::new(Random::fixed()), &st_b),
        ("rande", Box::new(RandE::params().check().unwrap()), &st_b),
        (
            "rande_softmax",
            Box::new(
                RandE::params()
                    .weighting(EntropyWeighting::Softmax)
                    .check()
                    .unwrap(),
            ),
            &st_b,
        ),
        (
            "craig_d10",
            Box::new(Craig::params().check().unwrap()),
            &st_b,
        ),
        (
            "craig_d650",
            Box::new(Craig::params().proxy(w).check().unwrap()),
            &st_w,
        ),
        (
            "gradmatch_d10",
            Box::new(GradMatch::params().check().unwrap()),
            &st_b,
        ),
        (
            "gradmatch_d650",
            Box::new(GradMatch::params().proxy(w).check().unwrap()),
            &st_w,
        ),
        (
            "gradmatch_pb_d650_b32",
            Box::new(
                GradMatch::params()
                    .proxy(w)
                    .mode(GradMatchMode::PerBatch { batch_size: 32 })
                    .check()
                    .unwrap(),
            ),
            &st_w,
        ),
        (
            "glister_naive_d10",
            Box::new(Glister::params().check().unwrap()),
            &st_b,
        ),
        (
            "glister_stochastic_d10",
            Box::new(
                Glister::params()
                    .greedy(GlisterGreedy::Stochastic { epsilon: 0.01 })
                    .check()
                    .unwrap(),
            ),
            &st_b,
        ),
        (
            "glister_stochastic_d650",
            Box::new(
                Glister::params()
                    .proxy(w)
                    .greedy(GlisterGreedy::Stochastic { epsilon: 0.01 })
                    .check()
                    .unwrap(),
            ),
            &st_w,
        ),
        (
            "crest_round_b128",
            Box::new(Crest::params().check().unwrap()),
            &st_b,
        ),
    ];
    for (name, sel, st) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(sel.select(st, Budget::Fraction(0.1), 0).expect("selection")))
        });
    }
    g.finish();

    // What a round's inputs cost, and an epoch of the same model.
    let mut g = c.benchmark_group(format!("mlp_n{n}"));
    g.sample_size(10).warm_up_time(Duration::from_millis(500));
    g.bench_function("forward_probs", |b| {
        b.iter(|| black_box(predict_logits(&s.model, &s.train, &device).expect("forward")))
    });
    g.bench_function("forward_features", |b| {
        b.iter(|| black_box(features(&s.model, &s.train, &device).expect("forward")))
    });
    let mut trainer = Trainer::new(s.model.clone(), s.cfg.clone(), &device).expect("trainer");
    let all = Subset::all(n);
    g.bench_function("epoch_full", |b| {
        b.iter(|| black_box(trainer.epoch(&s.train, &all).expect("epoch")))
    });
    let tenth = Random::fixed()
        .select(&st_b, Budget::Fraction(0.1), 1)
        .expect("subset")
        .subset;
    g.bench_function("epoch_10pct", |b| {
        b.iter(|| black_box(trainer.epoch(&s.train, &tenth).expect("epoch")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
