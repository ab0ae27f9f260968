#![allow(clippy::needless_range_loop)] // index-heavy numeric checks read better with indices
use super::*;
use crate::fimo::FurtherTrainer;
use wellspring_core::Subset;

/// A small, deterministic, not linearly separable 3-class problem.
fn toy(n: usize, d: usize, classes: usize, seed: u64) -> Dataset {
    let mut v = Vec::with_capacity(n * d);
    let mut labels = Vec::with_capacity(n);
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5
    };
    for i in 0..n {
        let y = i % classes;
        for j in 0..d {
            v.push(next() * 2.0 + if j % classes == y { 0.6 } else { 0.0 });
        }
        labels.push(y);
    }
    Dataset::new(
        "toy",
        Features::Dense {
            values: v,
            shape: vec![d],
        },
        Targets::Classes {
            labels,
            n_classes: classes,
        },
    )
    .unwrap()
}

fn regression(n: usize, d: usize) -> Dataset {
    let ds = toy(n, d, 2, 9);
    let x = match ds.features() {
        Features::Dense { values, .. } => values.clone(),
        _ => unreachable!(),
    };
    let y: Vec<f32> = x
        .chunks(d)
        .enumerate()
        .map(|(i, r)| {
            r.iter()
                .enumerate()
                .map(|(j, v)| v * (j as f32 - 1.0))
                .sum::<f32>()
                + (i % 3) as f32 * 0.1
        })
        .collect();
    Dataset::new(
        "reg",
        ds.features().clone(),
        Targets::Regression {
            values: y,
            n_targets: 1,
        },
    )
    .unwrap()
}

#[test]
fn softmax_gradient_matches_finite_differences() {
    let ds = toy(30, 4, 3, 1);
    let r = LinearRetrainer::new(&ds, &ds, LinearParams::new().l2(0.1)).unwrap();
    let rows: Vec<(usize, usize, f64)> =
        (0..30).map(|i| (i, i % 3, 1.0 + (i % 2) as f64)).collect();
    let total: f64 = rows.iter().map(|r| r.2).sum();
    let p: Vec<f64> = (0..15)
        .map(|k| ((k * 7 % 11) as f64 - 5.0) / 10.0)
        .collect();
    let mut g = vec![0.0; 15];
    softmax_objective(&p, &mut g, &rows, &r.x_train, 4, 3, total, 0.1);
    for k in 0..15 {
        let h = 1e-6;
        let (mut a, mut b) = (p.clone(), p.clone());
        a[k] += h;
        b[k] -= h;
        let mut scratch = vec![0.0; 15];
        let fa = softmax_objective(&a, &mut scratch, &rows, &r.x_train, 4, 3, total, 0.1);
        let fb = softmax_objective(&b, &mut scratch, &rows, &r.x_train, 4, 3, total, 0.1);
        let fd = (fa - fb) / (2.0 * h);
        assert!((fd - g[k]).abs() < 1e-7, "param {k}: fd {fd} vs {}", g[k]);
    }
}

#[test]
fn fits_are_optimal_and_deterministic() {
    let ds = toy(60, 5, 3, 2);
    let r = LinearRetrainer::new(&ds, &ds, LinearParams::new().l2(1e-2)).unwrap();
    let spec = RetrainSpec::full(60);
    let m1 = r.fit(&spec).unwrap();
    let m2 = r.fit(&spec).unwrap();
    assert_eq!(m1, m2);
    assert!(m1.grad_inf_norm <= 1e-8);
    let out = r.retrain(&spec, 0).unwrap();
    assert_eq!(out, r.retrain(&spec, 99).unwrap(), "seed is unused");
    assert!(out.accuracy().unwrap() > 0.6, "{:?}", out.accuracy());
    assert!(out.loss.iter().all(|l| l.is_finite() && *l >= 0.0));
    // margin > 0 implies correct for every point
    let correct = out.correct.as_ref().unwrap();
    for (m, c) in out.margin.iter().zip(correct) {
        if *m > 0.0 {
            assert!(*c);
        }
    }
    let runner = out.runner_up.as_ref().unwrap();
    for (t, &ru) in runner.iter().enumerate() {
        assert_ne!(ru, ds.labels().unwrap()[t]);
    }
}

#[test]
fn weights_and_overrides_mean_what_they_say() {
    let ds = toy(40, 4, 2, 3);
    let r = LinearRetrainer::new(&ds, &ds, LinearParams::new()).unwrap();
    // weight 2 on point 0 = point 0 listed twice
    let mut w = vec![1.0f32; 40];
    w[0] = 2.0;
    let weighted = RetrainSpec::on(Subset::weighted((0..40).collect(), w, 40).unwrap());
    let mut idx: Vec<usize> = (0..40).collect();
    idx.push(0);
    let dup = RetrainSpec::on(Subset::new(idx, 40).unwrap());
    let (a, b) = (r.fit(&weighted).unwrap(), r.fit(&dup).unwrap());
    for (x, y) in a.params().iter().zip(b.params()) {
        assert!((x - y).abs() < 1e-6, "{x} vs {y}");
    }
    // an override = a dataset with that label changed
    let over = RetrainSpec::full(40).with_labels([(3, 0), (4, 1)]);
    let mut labels = ds.labels().unwrap().to_vec();
    labels[3] = 0;
    labels[4] = 1;
    let relabelled = ds.with_labels(labels, 2).unwrap();
    let r2 = LinearRetrainer::new(&relabelled, &ds, LinearParams::new()).unwrap();
    let (a, b) = (
        r.fit(&over).unwrap(),
        r2.fit(&RetrainSpec::full(40)).unwrap(),
    );
    for (x, y) in a.params().iter().zip(b.params()) {
        assert!((x - y).abs() < 1e-9, "{x} vs {y}");
    }
    // zero total weight is an error naming the weights
    let zero = RetrainSpec::on(Subset::weighted(vec![0, 1], vec![0.0, 0.0], 40).unwrap());
    assert!(r.fit(&zero).unwrap_err().to_string().contains("weights"));
}

#[test]
fn ridge_solves_normal_equations() {
    let ds = regression(50, 3);
    let r = LinearRetrainer::new(&ds, &ds, LinearParams::new().l2(0.05)).unwrap();
    let m = r.fit(&RetrainSpec::full(50)).unwrap();
    // gradient of (1/2n) Σ (ŷ − y)² + λ/2 ‖w‖² vanishes
    let y = r.train_targets().unwrap();
    let mut gw = vec![0.0; 3];
    let mut gb = 0.0;
    for i in 0..50 {
        let e = m.logits(r.train_row(i))[0] - y[i];
        gb += e / 50.0;
        for j in 0..3 {
            gw[j] += e * r.train_row(i)[j] / 50.0;
        }
    }
    for j in 0..3 {
        gw[j] += 0.05 * m.weights[j];
        assert!(gw[j].abs() < 1e-10, "{gw:?}");
    }
    assert!(gb.abs() < 1e-10);
    let out = r.retrain(&RetrainSpec::full(50), 0).unwrap();
    assert!(out.correct.is_none() && out.prediction.as_ref().unwrap().len() == 50);
    for (m, l) in out.margin.iter().zip(&out.loss) {
        assert_eq!(*m, -*l);
    }
}

#[test]
fn further_training_at_the_optimum_stays_put_on_full_data() {
    let ds = toy(40, 3, 2, 4);
    let base = LinearRetrainer::new(&ds, &ds, LinearParams::new().l2(0.1)).unwrap();
    let ft =
        LinearFurtherTrainer::from_full_fit(base.clone(), SgdParams::new().lr(0.05).batch_size(40))
            .unwrap();
    // full batch at a stationary point: no change
    let runs = ft.further_train(None, 1, &[0, 5]).unwrap();
    for (a, b) in runs[0].iter().zip(&runs[1]) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // leaving a point out moves the loss
    let loo = ft.further_train(Some(3), 1, &[50]).unwrap();
    assert!(
        loo[0]
            .iter()
            .zip(&runs[0])
            .any(|(a, b)| (a - b).abs() > 1e-6)
    );
    assert!(ft.further_train(Some(40), 1, &[1]).is_err());
}

#[test]
fn bad_params_and_data() {
    assert!(LinearParams::new().l2(0.0).check().is_err());
    assert!(LinearParams::new().tolerance(-1.0).check().is_err());
    assert!(LinearParams::new().max_iter(0).check().is_err());
    assert!(SgdParams::new().lr(0.0).check().is_err());
    assert!(SgdParams::new().batch_size(0).check().is_err());
    let ds = toy(10, 3, 2, 5);
    let reg = regression(10, 3);
    assert!(LinearRetrainer::new(&ds, &reg, LinearParams::new()).is_err());
    let wide = toy(10, 4, 2, 5);
    let e = LinearRetrainer::new(&ds, &wide, LinearParams::new()).unwrap_err();
    assert!(e.to_string().contains("feature width"), "{e}");
}
