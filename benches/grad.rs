//! The gradient engine on dattri's MNIST MLP (784-128-64-10, p = 109 386)
//! over the first 5000 MNIST training images (issue #4's six cases):
//! (a) one batched forward + backward; (b) the batch-of-one reference, on
//! the first 100 examples (multiply by 50 for 5000); (c) per-example
//! gradients, all parameters, materialised in blocks of 32 rows; (d) the
//! Kronecker projection to k = 512; (e) the dense Gaussian projection to
//! k = 512 of one materialised block of 500 rows (multiply by 10; G is
//! generated once, outside the timing); (f) group gradients, 100 groups.
//!
//! A second group does the same for the zoo's SST-2 transformer classifier
//! (issue F) over 1000 SST-2 training sentences (`WELLSPRING_DATA`; synthetic
//! sentences of SST-2-like lengths without it): (a) batched forward + backward
//! of the summed loss w.r.t. every parameter, in length-sorted batches of 128;
//! (b) the batch-of-one autodiff loop on the first 50 sentences (multiply by
//! 20); (c) Kronecker-projected (k = 512) per-example gradients of every
//! parameter. Targets: (c) ≤ 3 × (a), 20 × (b) ≥ 20 × (c).
//!
//!     cargo xtask bench grad
//!
//! `cargo run -p wellspring-grad --example grad_speed` and
//! `--example transformer_grad_speed` print the same cases as ratios in one run.

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
use wellspring_models::zoo::{TransformerClassifier, TransformerConfig};
use wellspring_models::{AnyModel, Mode, Model, ModelConfig, Tracker};

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

/// 1000 SST-2 training sentences (5000-word vocabulary, 32 tokens at most),
/// or synthetic sentences of 4..32 tokens without SST-2.
fn sentences() -> Dataset {
    const N: usize = 1000;
    if let Ok(dir) = wellspring_data::DataDir::resolve(None)
        && let Ok((split, _)) = wellspring_data::sst2(
            &dir,
            &wellspring_data::VocabParams {
                min_count: 1,
                max_size: Some(5000),
            },
            Some(32),
        )
    {
        return sample::first_n(&split.train, N).expect("1000 sentences");
    }
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    for i in 0..N {
        for t in 0..(4 + (i * 7) % 29) {
            ids.push(((i * 131 + t * 17) % 5000) as u32);
        }
        offsets.push(ids.len());
    }
    Dataset::new(
        "synthetic-sentences",
        wellspring_core::Features::Tokens {
            ids,
            offsets,
            vocab_size: 5000,
        },
        wellspring_core::Targets::Classes {
            labels: (0..N).map(|i| i % 2).collect(),
            n_classes: 2,
        },
    )
    .expect("synthetic sentences")
}

fn bench_transformer(c: &mut Criterion) {
    let device = Device::flex();
    let data = sentences();
    let n = data.len();
    let vocab = match data.features() {
        wellspring_core::Features::Tokens { vocab_size, .. } => *vocab_size,
        wellspring_core::Features::Dense { .. } => unreachable!("token data"),
    };
    let cfg = TransformerConfig::small(vocab, 32);
    let model = AnyModel::new(TransformerClassifier::new(&cfg, 2, 0, &device).expect("config"));
    let engine = GradEngine::params()
        .batch_size(256)
        .build(&model, &device)
        .expect("engine");
    let mut g = c.benchmark_group("grad_transformer_sst2_1000");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let ad = device.clone().autodiff();
    let tracked = model.trainable(&device);
    let mut rows: Vec<usize> = (0..n).collect();
    rows.sort_by_key(|&i| (data.features().token_row(i).len(), i));
    let batches: Vec<_> = rows
        .chunks(wellspring_grad::BUCKET_ROWS)
        .map(|b| {
            (
                tracked.input_batch(&data, b, &ad).expect("inputs"),
                tracked.target_batch(&data, b, &ad).expect("targets"),
            )
        })
        .collect();
    g.bench_function("a_batched_forward_backward", |b| {
        b.iter(|| {
            for (x, y) in &batches {
                let out = tracked
                    .forward_tracked(x, &mut Tracker::passive())
                    .expect("forward");
                let loss = CrossEntropy.apply(out.logits, y).expect("loss").sum();
                let grads = loss.backward();
                let mut first = None;
                tracked.for_each_grad(&grads, &mut |_, g| {
                    first.get_or_insert(g);
                });
                black_box(first);
            }
        })
    });
    g.bench_function("b_batch_of_one_reference_first_50", |b| {
        b.iter(|| {
            engine
                .per_sample_reference(&data, 0..50, |blk| {
                    black_box(blk.values[0]);
                    Ok(())
                })
                .expect("reference")
        })
    });
    let kron = KroneckerProjector::new(engine.layout(), K, 0).expect("projector");
    g.bench_function("c_kronecker_projection_k512", |b| {
        b.iter(|| {
            engine
                .projected_matrix(&data, 0..n, &kron)
                .expect("projection")
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_transformer);
criterion_main!(benches);
