//! Quick per-round selection timings at MNIST scale (n = 60 000, 10% budget).
//! Ignored by default (no timing assertions in tests); run with
//! `cargo test -p wellspring-select --test it -- --ignored --nocapture timing`.
//! The criterion bench comes with the model-backed loop.

use std::time::Instant;

use wellspring_core::Features;
use wellspring_data::{DatasetName, LoadOptions, load};
use wellspring_select::{
    Budget, Craig, Crest, EntropyWeighting, Glister, GlisterGreedy, GradMatch, GradMatchMode,
    GradProxies, ProxyKind, RandE, Random, Selector, TrainingState, ValidationState,
};

use crate::common::{C, SoftmaxReg};

#[test]
#[ignore = "timing at n = 60000; run explicitly"]
fn timing_selection_rounds_at_mnist_scale() {
    let t0 = Instant::now();
    let split = load(DatasetName::Mnist, &LoadOptions::new()).expect("embedded MNIST");
    let dense = |f: &Features| match f {
        Features::Dense { values, .. } => values.clone(),
        Features::Tokens { .. } => panic!("MNIST is dense"),
    };
    let x = dense(split.train.features());
    let y = split.train.labels().unwrap().to_vec();
    let xt = dense(split.test.features());
    let yt = split.test.labels().unwrap().to_vec();
    let d = 784;
    let n = y.len();
    // A real model: softmax regression, one epoch of SGD.
    let mut model = SoftmaxReg::zeros(d);
    let all: Vec<usize> = (0..n).collect();
    model.train(&x, &y, &all, &vec![1.0; n], 0.1, 1, 0);
    let probs = model.probs(&x);
    let (xv, yv) = (&xt[..1000 * d], &yt[..1000]);
    let vprobs = model.probs(xv);
    eprintln!(
        "setup {:.1}s, model test accuracy {:.3}",
        t0.elapsed().as_secs_f64(),
        model.accuracy(&xt, &yt)
    );
    // Penultimate stand-in: a fixed 9-dimensional projection of the pixels,
    // so the weight proxies have C · (1 + 9) = 100 columns.
    let p = 9;
    let proj: Vec<f32> = (0..d * p)
        .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 0.2)
        .collect();
    let proj = &proj;
    let project = |rows: &[f32]| -> Vec<f32> {
        rows.chunks_exact(d)
            .flat_map(|r| (0..p).map(move |j| (0..d).map(|t| r[t] * proj[t * p + j]).sum::<f32>()))
            .collect()
    };
    let phi = project(&x);
    let vphi = project(xv);
    let bias = GradProxies::last_layer(&probs, &y, C, None).unwrap();
    let full = GradProxies::last_layer(&probs, &y, C, Some((&phi, p))).unwrap();
    let val = ValidationState::new(yv)
        .with_probs(&vprobs)
        .with_features(&vphi, p);
    let st_b = TrainingState::new(&y, C)
        .unwrap()
        .with_probs(&probs)
        .unwrap()
        .with_proxies(&bias)
        .unwrap()
        .with_validation(val)
        .unwrap();
    let st_w = TrainingState::new(&y, C)
        .unwrap()
        .with_probs(&probs)
        .unwrap()
        .with_proxies(&full)
        .unwrap()
        .with_validation(val)
        .unwrap();
    let w = ProxyKind::BiasAndWeights;
    // Phase timings of one CRAIG class problem.
    for (label, g) in [("d=10", &bias), ("d=100", &full)] {
        let idx: Vec<usize> = (0..n).filter(|&i| y[i] == 1).collect();
        let sub = g.gather(&idx).unwrap();
        let t = Instant::now();
        let sim = wellspring_select::DenseSimilarity::from_points(
            sub.values(),
            sub.dim(),
            wellspring_select::Metric::Euclidean,
        )
        .unwrap();
        let t_sim = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let sol = wellspring_select::facility::maximize(
            &sim,
            idx.len() / 10,
            wellspring_select::Greedy::Lazy,
        );
        eprintln!(
            "CRAIG class 1 {label}: n_c {} similarity {t_sim:.3}s greedy {:.3}s ({} evaluations)",
            idx.len(),
            t.elapsed().as_secs_f64(),
            sol.evaluations
        );
    }
    let runs: Vec<(&str, Box<dyn Selector>, &TrainingState<'_>)> = vec![
        ("Random", Box::new(Random::fixed()), &st_b),
        ("RandE", Box::new(RandE::params().check().unwrap()), &st_b),
        (
            "RandE (softmax)",
            Box::new(
                RandE::params()
                    .weighting(EntropyWeighting::Softmax)
                    .check()
                    .unwrap(),
            ),
            &st_b,
        ),
        (
            "CRAIG d=10",
            Box::new(Craig::params().check().unwrap()),
            &st_b,
        ),
        (
            "CRAIG d=100",
            Box::new(Craig::params().proxy(w).check().unwrap()),
            &st_w,
        ),
        (
            "GradMatch d=10",
            Box::new(GradMatch::params().check().unwrap()),
            &st_b,
        ),
        (
            "GradMatch d=100",
            Box::new(GradMatch::params().proxy(w).check().unwrap()),
            &st_w,
        ),
        (
            "GradMatch-PB d=100 (B=32)",
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
            "GLISTER naive d=10 (m=1000)",
            Box::new(Glister::params().check().unwrap()),
            &st_b,
        ),
        (
            "GLISTER stochastic d=10",
            Box::new(
                Glister::params()
                    .greedy(GlisterGreedy::Stochastic { epsilon: 0.01 })
                    .check()
                    .unwrap(),
            ),
            &st_b,
        ),
        (
            "GLISTER stochastic d=100",
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
            "CREST round d=10 (47 x 128 of 600)",
            Box::new(Crest::params().check().unwrap()),
            &st_b,
        ),
    ];
    eprintln!(
        "| strategy | selection time per round (s) | selected | filled at random | evaluations |"
    );
    eprintln!("|---|---|---|---|---|");
    for (label, s, st) in runs {
        let sel = s.select(st, Budget::Fraction(0.1), 1).unwrap();
        eprintln!(
            "| {label} | {:.3} | {} | {} | {} |",
            sel.info.wall_time.as_secs_f64(),
            sel.info.selected,
            sel.info.filled_at_random,
            sel.info.evaluations
        );
        assert_eq!(sel.info.selected, 6000);
    }
}
