//! Training-step throughput of dattri's MNIST MLP (784-128-64-10) at batch 256
//! (forward + backward + SGD step), against a plain burn matmul with the same
//! FLOP count, so the framework overhead can be read off as a ratio.
//!
//!     cargo bench -p wellspring --bench train_step

use criterion::{Criterion, criterion_group, criterion_main};
use wellspring_core::{Dataset, Features, Targets};
use wellspring_models::burn_types::{Device, Tensor};
use wellspring_models::{Model, ModelConfig, Optimizer, TrainConfig, Trainer};

const BATCH: usize = 256;

/// MACs of one forward pass per example: 784·128 + 128·64 + 64·10.
const MACS: usize = 784 * 128 + 128 * 64 + 64 * 10;

fn data() -> Dataset {
    let n = 2048;
    let values: Vec<f32> = (0..n * 784)
        .map(|i| ((i * 31) % 255) as f32 / 255.0)
        .collect();
    Dataset::new(
        "synthetic-mnist",
        Features::Dense {
            values,
            shape: vec![784],
        },
        Targets::Classes {
            labels: (0..n).map(|i| i % 10).collect(),
            n_classes: 10,
        },
    )
    .expect("valid synthetic data")
}

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    let data = data();
    let model = Model::new(ModelConfig::mnist_mlp(), 0, &device).expect("valid config");
    let cfg = TrainConfig::params()
        .batch_size(BATCH)
        .optimizer(Optimizer::sgd_momentum(0.9))
        .lr(0.01)
        .check()
        .expect("valid config");
    let mut trainer = Trainer::new(model, cfg, &device).expect("trainer");
    let mut start = 0;
    c.bench_function("mlp_train_step_b256", |b| {
        b.iter(|| {
            let idx: Vec<usize> = (start..start + BATCH).map(|i| i % data.len()).collect();
            start = (start + BATCH) % data.len();
            trainer.step(&data, &idx, None).expect("step")
        })
    });

    // Forward + backward ≈ 3 forward passes: one [256 x 784] x [784 x n]
    // matmul with 784·n = 3·MACS has the same FLOP count (2·256·3·MACS).
    let n = (3 * MACS).div_ceil(784);
    let a = Tensor::<2>::ones([BATCH, 784], &device);
    let w = Tensor::<2>::ones([784, n], &device);
    c.bench_function("matmul_same_flops", |b| {
        b.iter(|| {
            let y = a.clone().matmul(w.clone());
            y.into_data()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
