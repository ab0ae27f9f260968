//! Trainer semantics: accuracy sanity, weighted steps, schedules, checkpoints,
//! regression and text models.

use wellspring_core::{Dataset, Features, Subset, Targets};
use wellspring_models::{
    Loss, Model, ModelConfig, Optimizer, Schedule, TrainConfig, Trainer, evaluate, predict_logits,
    train,
};

use crate::{cpu, mnist};

#[test]
fn mlp_reaches_85_percent_on_a_2000_example_mnist_subset() {
    let device = cpu();
    let data = mnist("train", 2000);
    let test = mnist("t10k", 1000);
    let model = Model::new(ModelConfig::mnist_mlp(), 0, &device).unwrap();
    let cfg = TrainConfig::params()
        .epochs(5)
        .batch_size(32)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.05)
        .check()
        .unwrap();
    let mut seen = Vec::new();
    let mut cb = |s: &wellspring_models::EpochStats| seen.push(s.train_loss);
    let out = train(model, &data, None, &cfg, &device, Some(&mut cb)).unwrap();
    let acc = evaluate(&out.model, &test, &device)
        .unwrap()
        .accuracy()
        .unwrap();
    assert!(acc > 0.85, "test accuracy {acc}");
    assert_eq!(seen.len(), 5);
    assert!(seen[4] < seen[0], "training loss should fall: {seen:?}");
    assert_eq!(out.history[0].steps, 63);
    assert_eq!(out.history[0].examples, 2000);
}

fn tiny_classes() -> Dataset {
    mnist("train", 64)
}

#[test]
fn weighted_step_equals_normalised_step_sum() {
    let device = cpu();
    let data = tiny_classes();
    let cfg = TrainConfig::params().lr(0.1).check().unwrap();
    let m = Model::new(ModelConfig::mnist_logreg(), 3, &device).unwrap();
    let idx = [0, 5, 9, 12];
    let w = [1.0f32, -0.5, 2.0, 0.0];
    let mut a = Trainer::new(m.clone(), cfg.clone(), &device).unwrap();
    let la = a.step(&data, &idx, Some(&w)).unwrap();
    let mut b = Trainer::new(m.clone(), cfg.clone(), &device).unwrap();
    let wn: Vec<f32> = w.iter().map(|v| v / 4.0).collect();
    let lb = b.step_sum(&data, &idx, &wn).unwrap();
    assert_eq!(la.to_bits(), lb.to_bits());
    assert_eq!(a.into_model().params_flat(), b.into_model().params_flat());

    // An all-zero weighting leaves plain SGD where it was.
    let mut z = Trainer::new(m.clone(), cfg.clone(), &device).unwrap();
    z.step_sum(&data, &idx, &[0.0; 4]).unwrap();
    assert_eq!(z.into_model().params_flat(), m.params_flat());

    // Bad weights are named.
    let mut t = Trainer::new(m.clone(), cfg.clone(), &device).unwrap();
    let e = t
        .step(&data, &idx, Some(&[1.0, 2.0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch weights") && e.contains("4"), "{e}");
    let e = t.step(&data, &[0, 64], None).unwrap_err().to_string();
    assert!(e.contains("64"), "{e}");
}

#[test]
fn weighted_sgd_step_matches_the_hand_computed_update() {
    // FiMO-style leave-out weights [1/B, 1/B, -1/n]. For LogReg the bias
    // gradient of Σ_k w_k CE_k is Σ_k w_k (softmax(z_k) - e_{y_k}).
    let device = cpu();
    let data = tiny_classes();
    let lr = 0.5;
    let cfg = TrainConfig::params().lr(lr).check().unwrap();
    let m = Model::new(ModelConfig::mnist_logreg(), 1, &device).unwrap();
    let idx = [3usize, 7, 11];
    let w = [0.5f32, 0.5, -1.0 / 64.0];
    let z = predict_logits(&m, &data.select(&idx).unwrap(), &device).unwrap();
    let labels = data.labels().unwrap();
    let before = m.params_flat();
    let b0 = &before[before.len() - 10..];
    let mut want: Vec<f64> = b0.iter().map(|&v| v as f64).collect();
    for (k, &i) in idx.iter().enumerate() {
        let row = &z[k * 10..(k + 1) * 10];
        let mx = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let s: f64 = row.iter().map(|&v| (v as f64 - mx).exp()).sum();
        for j in 0..10 {
            let p = (row[j] as f64 - mx).exp() / s;
            let g = p - if j == labels[i] { 1.0 } else { 0.0 };
            want[j] -= lr * w[k] as f64 * g;
        }
    }
    let mut t = Trainer::new(m, cfg, &device).unwrap();
    t.step_sum(&data, &idx, &w).unwrap();
    let after = t.into_model().params_flat();
    for (j, (a, e)) in after[after.len() - 10..].iter().zip(&want).enumerate() {
        assert!((*a as f64 - e).abs() < 1e-6, "bias {j}: {a} vs {e}");
    }
}

#[test]
fn schedule_and_checkpoints_follow_the_step_count() {
    let device = cpu();
    let data = tiny_classes(); // 64 rows, batch 16 -> 4 steps per epoch
    let cfg = TrainConfig::params()
        .epochs(4)
        .batch_size(16)
        .lr(0.1)
        .schedule(Schedule::Step {
            every_epochs: 2,
            gamma: 0.5,
        })
        .checkpoint_every(Some(2))
        .check()
        .unwrap();
    let m = Model::new(ModelConfig::mnist_logreg(), 0, &device).unwrap();
    let out = train(m.clone(), &data, None, &cfg, &device, None).unwrap();
    assert_eq!(out.checkpoints.len(), 2);
    assert_eq!(out.checkpoints[0].epoch, 2);
    assert_eq!(out.checkpoints[0].step, 8);
    assert!((out.checkpoints[0].lr - 0.1).abs() < 1e-12);
    assert!((out.checkpoints[1].lr - 0.05).abs() < 1e-12);
    assert_eq!(
        out.checkpoints[1].model.params_flat(),
        out.model.params_flat(),
        "the last checkpoint is the final model"
    );
    assert_ne!(
        out.checkpoints[0].model.params_flat(),
        out.model.params_flat(),
        "checkpoints are independent snapshots"
    );
    let lrs: Vec<f64> = out.history.iter().map(|h| h.lr).collect();
    assert_eq!(lrs, vec![0.1, 0.1, 0.05, 0.05]);

    // The step API: lr() is the rate of the next step.
    let cos = TrainConfig::params()
        .epochs(2)
        .batch_size(16)
        .lr(0.2)
        .schedule(Schedule::Cosine { min_lr: 0.0 })
        .check()
        .unwrap();
    let mut t = Trainer::new(m, cos, &device)
        .unwrap()
        .with_steps_per_epoch(4);
    assert!((t.lr() - 0.2).abs() < 1e-12);
    for _ in 0..4 {
        t.step(&data, &[0, 1, 2, 3], None).unwrap();
    }
    assert!(
        (t.lr() - 0.1).abs() < 1e-9,
        "halfway through cosine: {}",
        t.lr()
    );
    assert_eq!(t.global_step(), 4);
}

#[test]
fn drop_last_and_subsets() {
    let device = cpu();
    let data = tiny_classes();
    let cfg = TrainConfig::params()
        .batch_size(10)
        .drop_last(true)
        .check()
        .unwrap();
    let m = Model::new(ModelConfig::mnist_logreg(), 0, &device).unwrap();
    let mut t = Trainer::new(m.clone(), cfg.clone(), &device).unwrap();
    let s = t
        .epoch(&data, &Subset::new((0..25).collect(), 64).unwrap())
        .unwrap();
    assert_eq!((s.steps, s.examples), (2, 20));
    let e = t
        .epoch(&data, &Subset::new(vec![1, 2], 64).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no full batch"), "{e}");
    let e = t.epoch(&data, &Subset::all(65)).unwrap_err().to_string();
    assert!(e.contains("64"), "{e}");
}

fn linear_regression_data(n: usize) -> Dataset {
    // y = 2 x0 - x1 + 0.5 x2 on a deterministic grid.
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let a = ((i * 7) % 11) as f32 / 5.0 - 1.0;
        let b = ((i * 3) % 13) as f32 / 6.0 - 1.0;
        let c = ((i * 5) % 17) as f32 / 8.0 - 1.0;
        x.extend([a, b, c]);
        y.push(2.0 * a - b + 0.5 * c);
    }
    Dataset::new(
        "linear",
        Features::Dense {
            values: x,
            shape: vec![3],
        },
        Targets::Regression {
            values: y,
            n_targets: 1,
        },
    )
    .unwrap()
}

#[test]
fn fimo_mlp_fits_a_regression_task() {
    let device = cpu();
    let data = linear_regression_data(256);
    let m = Model::new(ModelConfig::FimoMlp { d_in: 3, n_out: 1 }, 0, &device).unwrap();
    let cfg = TrainConfig::params()
        .epochs(30)
        .batch_size(32)
        .lr(0.05)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .loss(Loss::Mse)
        .check()
        .unwrap();
    let out = train(m, &data, None, &cfg, &device, None).unwrap();
    let ev = evaluate(&out.model, &data, &device).unwrap();
    assert!(ev.r2().unwrap() > 0.95, "R² {:?}", ev.r2());
    assert!((ev.mse().unwrap() - ev.mean_loss).abs() < 1e-9);

    // Cross-entropy on regression targets is refused with a clear message.
    let bad = TrainConfig::params().check().unwrap();
    let m = Model::new(ModelConfig::FimoMlp { d_in: 3, n_out: 1 }, 0, &device).unwrap();
    let e = train(m, &data, None, &bad, &device, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Loss::Mse"), "{e}");
}

#[test]
fn adam_and_friends_train_logreg() {
    let device = cpu();
    let data = mnist("train", 256);
    for opt in [
        Optimizer::adam(),
        Optimizer::adamw(),
        Optimizer::AdaGrad {
            lr_decay: 0.0,
            eps: 1e-8,
        },
        Optimizer::RmsProp {
            alpha: 0.99,
            momentum: 0.0,
            eps: 1e-8,
            centered: false,
        },
        Optimizer::Sgd {
            momentum: 0.9,
            nesterov: true,
        },
    ] {
        let m = Model::new(ModelConfig::mnist_logreg(), 0, &device).unwrap();
        let before = evaluate(&m, &data, &device).unwrap().mean_loss;
        let cfg = TrainConfig::params()
            .epochs(2)
            .batch_size(32)
            .lr(if matches!(opt, Optimizer::Sgd { .. }) {
                0.05
            } else {
                0.005
            })
            .weight_decay(1e-4)
            .optimizer(opt.clone())
            .check()
            .unwrap();
        let out = train(m, &data, None, &cfg, &device, None).unwrap();
        let after = evaluate(&out.model, &data, &device).unwrap().mean_loss;
        assert!(after < 0.7 * before, "{opt:?}: loss {before} -> {after}");
    }
}

#[test]
fn divergence_is_an_error_not_a_nan_model() {
    let device = cpu();
    let data = linear_regression_data(64);
    let m = Model::new(ModelConfig::FimoMlp { d_in: 3, n_out: 1 }, 0, &device).unwrap();
    let cfg = TrainConfig::params()
        .epochs(50)
        .batch_size(8)
        .lr(1e6)
        .loss(Loss::Mse)
        .check()
        .unwrap();
    let e = train(m, &data, None, &cfg, &device, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("loss is") && e.contains("step"), "{e}");
}

#[test]
fn text_bag_learns_a_keyword_task() {
    // Label 1 iff token 2 ("good") occurs; other tokens are noise.
    let device = cpu();
    let (mut ids, mut offsets, mut labels) = (Vec::new(), vec![0], Vec::new());
    for i in 0..200usize {
        let len = 2 + i % 4;
        let pos = (0..len).map(|t| 3 + ((i * 7 + t * 5) % 6) as u32);
        ids.extend(pos);
        let good = i % 2 == 0;
        if good {
            ids.push(2);
        }
        labels.push(good as usize);
        offsets.push(ids.len());
    }
    let data = Dataset::new(
        "keywords",
        Features::Tokens {
            ids,
            offsets,
            vocab_size: 9,
        },
        Targets::Classes {
            labels,
            n_classes: 2,
        },
    )
    .unwrap();
    let cfg = ModelConfig::TextBag {
        vocab: 9,
        dim: 8,
        hidden: 8,
        n_out: 2,
    };
    let m = Model::new(cfg, 0, &device).unwrap();
    let tc = TrainConfig::params()
        .epochs(20)
        .batch_size(16)
        .optimizer(Optimizer::adam())
        .lr(0.01)
        .check()
        .unwrap();
    let out = train(m, &data, None, &tc, &device, None).unwrap();
    let acc = evaluate(&out.model, &data, &device)
        .unwrap()
        .accuracy()
        .unwrap();
    assert!(acc > 0.95, "accuracy {acc}");
}

#[test]
fn a_killed_run_resumes_from_its_last_epoch_bit_identically() {
    let device = cpu();
    let data = mnist("train", 256);
    let other = mnist("train", 300);
    let cfg = TrainConfig::params()
        .epochs(4)
        .batch_size(32)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.05)
        .schedule(Schedule::Cosine { min_lr: 0.0 })
        .seed(3)
        .checkpoint_every(Some(2))
        .check()
        .unwrap();
    // Dropout draws from the trainer's stream, momentum lives in the
    // optimizer: both must come back exactly.
    let init = Model::new(ModelConfig::mnist_mlp(), 1, &device).unwrap();
    let straight = train(init.clone(), &data, None, &cfg, &device, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A stale state of another run (other data) in the same directory is ignored.
    let r = wellspring_models::train_resumable(
        init.clone(),
        &other,
        None,
        &cfg,
        &device,
        None,
        &state,
        Some(1),
    )
    .unwrap();
    assert!(r.is_none());
    // "Killed" after 3 epochs, then rerun: only epoch 4 is trained again.
    let stopped = wellspring_models::train_resumable(
        init.clone(),
        &data,
        None,
        &cfg,
        &device,
        None,
        &state,
        Some(3),
    )
    .unwrap();
    assert!(stopped.is_none() && state.join("trainer.json").is_file());
    let mut epochs = Vec::new();
    let mut cb = |s: &wellspring_models::EpochStats| epochs.push(s.epoch);
    let resumed = wellspring_models::train_resumable(
        init,
        &data,
        None,
        &cfg,
        &device,
        Some(&mut cb),
        &state,
        None,
    )
    .unwrap()
    .expect("finishes");
    assert_eq!(epochs, vec![4], "finished epochs are not redone");
    assert!(
        resumed.model.params_flat() == straight.model.params_flat(),
        "resumed weights differ from an uninterrupted run"
    );
    assert_eq!(resumed.history, straight.history);
    assert_eq!(resumed.checkpoints.len(), 2);
    for (a, b) in resumed.checkpoints.iter().zip(&straight.checkpoints) {
        assert_eq!((a.epoch, a.step, a.lr), (b.epoch, b.step, b.lr));
        assert!(a.model.params_flat() == b.model.params_flat());
    }
    assert!(
        !state.exists(),
        "the state is removed once training completes"
    );
}
