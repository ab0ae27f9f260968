//! The gradient engine on dattri's MNIST MLP (784-128-64-10, p = 109 386)
//! over the first 5000 MNIST training images (issue #4's six cases):
//! (a) one batched forward + backward; (b) the batch-of-one reference, on
//! the first 100 examples (multiply by 50 for 5000); (c) per-example
//! gradients, all parameters, materialised in blocks of 32 rows; (d) the
//! Kronecker projection to k = 512; (e) the dense Gaussian projection to
//! k = 512 of one materialised block of 500 rows (multiply by 10; G is
//! generated once, outside the timing); (f) group gradients, 100 groups.
//!
//!     cargo xtask bench grad
//!
//! `cargo run -p wellspring-grad --example grad_speed` prints the same cases
//! as ratios in one run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wellspring_core::{Dataset, Grouping};
use wellspring_data::{DatasetName, LoadOptions, load, sample};
use wellspring_grad::{
    CrossEntropy, DenseKind, DenseProjector, GradEngine, KroneckerProjector, OutputFn, Projector,
    Reduce,
};
use wellspring_models::burn_types::Device;
use wellspring_models::{Mode, Model, ModelConfig};

const N: usize = 5000;
const K: usize = 512;

fn data() -> Dataset {
    let split = load(DatasetName::Mnist, &LoadOptions::new())
        .expect("MNIST (datasets/ or WELLSPRING_DATA)");
    sample::first_n(&split.train, N).expect("5000 training points")
}

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    let data = data();
    let model = Model::new(ModelConfig::mnist_mlp(), 0, &device).expect("valid config");
    let engine = GradEngine::params()
        .batch_size(N)
        .block_rows(32)
        .build(&model, &device)
        .expect("engine");
    let p = engine.dim();
    let rows: Vec<usize> = (0..N).collect();
    let mut g = c.benchmark_group("grad_mnist_mlp_5000");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let ad = device.clone().autodiff();
    let tracked = model.trainable(&device);
    let x = tracked.input_batch(&data, &rows, &ad).expect("inputs");
    let y = tracked.target_batch(&data, &rows, &ad).expect("targets");
    g.bench_function("a_batched_forward_backward", |b| {
        b.iter(|| {
            let z = tracked.net.forward(x.clone(), Mode::Eval).logits;
            let loss = CrossEntropy.forward(z, &y).expect("loss").sum();
            let grads = loss.backward();
            tracked
                .net
                .head
                .weight
                .val()
                .grad(&grads)
                .map(|t| t.into_data())
        })
    });

    g.bench_function("b_batch_of_one_reference_first_100", |b| {
        b.iter(|| {
            engine
                .per_sample_reference(&data, 0..100, |blk| {
                    black_box(blk.values[0]);
                    Ok(())
                })
                .expect("reference")
        })
    });

    g.bench_function("c_per_sample_materialised_blocks_32", |b| {
        b.iter(|| {
            let mut s = 0.0f32;
            engine
                .per_sample(&data, 0..N, |blk| {
                    s += blk.values[blk.values.len() - 1];
                    Ok(())
                })
                .expect("per-sample");
            s
        })
    });

    let kron = KroneckerProjector::new(engine.layout(), K, 0).expect("projector");
    g.bench_function("d_kronecker_projection_k512", |b| {
        b.iter(|| {
            engine
                .projected_matrix(&data, 0..N, &kron)
                .expect("projection")
        })
    });

    let dense = DenseProjector::new(DenseKind::Gaussian, p, K, 0).expect("projector");
    let block = GradEngine::params()
        .batch_size(500)
        .block_rows(500)
        .build(&model, &device)
        .expect("engine")
        .per_sample_matrix(&data, 0..500)
        .expect("gradients");
    let mut out = vec![0.0f32; 500 * K];
    // Generates and caches G, so the timing is the projection GEMM alone.
    dense.project(500, &block, &mut out).expect("projection");
    g.bench_function("e_dense_gaussian_projection_k512_500_rows", |b| {
        b.iter(|| dense.project(500, &block, &mut out).expect("projection"))
    });

    let assign: Vec<usize> = (0..N).map(|i| i % 100).collect();
    let grouping = Grouping::from_assignment(&assign).expect("grouping");
    g.bench_function("f_group_gradients_100_groups", |b| {
        b.iter(|| {
            engine
                .group(&data, &grouping, Reduce::Sum, None)
                .expect("groups")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
