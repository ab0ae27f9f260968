//! Same seed, same machine, same thread count: bit-identical training.

use wellspring_core::Subset;
use wellspring_models::{Model, ModelConfig, Optimizer, TrainConfig, evaluate, train};

use crate::{cpu, mnist};

fn run(model_seed: u64, train_seed: u64) -> (Vec<f32>, Vec<f32>) {
    let data = mnist("train", 600);
    let test = mnist("t10k", 200);
    let device = cpu();
    let model = Model::new(ModelConfig::mnist_mlp(), model_seed, &device).unwrap();
    let cfg = TrainConfig::params()
        .epochs(2)
        .batch_size(32)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.05)
        .seed(train_seed)
        .check()
        .unwrap();
    // A weighted subset exercises the weighted path too.
    let idx: Vec<usize> = (0..500).collect();
    let w: Vec<f32> = (0..500).map(|i| 0.5 + (i % 3) as f32 * 0.5).collect();
    let subset = Subset::weighted(idx, w, data.len()).unwrap();
    let out = train(model, &data, Some(&subset), &cfg, &device, None).unwrap();
    let eval = evaluate(&out.model, &test, &device).unwrap();
    (out.model.params_flat(), eval.loss)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn same_seed_gives_bit_identical_weights_and_metrics() {
    let (w1, l1) = run(7, 11);
    let (w2, l2) = run(7, 11);
    assert_eq!(bits(&w1), bits(&w2));
    assert_eq!(bits(&l1), bits(&l2));
    // Training moved the weights away from the initialisation.
    let init = Model::new(ModelConfig::mnist_mlp(), 7, &cpu())
        .unwrap()
        .params_flat();
    assert_ne!(bits(&init), bits(&w1));
}

#[test]
fn different_seeds_give_different_weights() {
    let (w1, _) = run(7, 11);
    let (w_init, _) = run(8, 11);
    let (w_order, _) = run(7, 12);
    assert_ne!(bits(&w1), bits(&w_init), "model seed must matter");
    assert_ne!(
        bits(&w1),
        bits(&w_order),
        "shuffle/dropout seed must matter"
    );
}
