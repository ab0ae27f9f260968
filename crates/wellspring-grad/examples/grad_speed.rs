//! Speed of the gradient engine on the MNIST MLP 784-128-64-10 over 5000
//! training examples, as ratios measured in one run (the targets):
//!
//!     cargo run --release -p wellspring-grad --example grad_speed
//!
//! (a) one batched forward+backward; (b) batch-of-one reference (measured on
//! a subset and scaled); (c) per-sample gradients, all parameters,
//! materialised in blocks; (d) Kronecker projection to 512 dims; (e) dense
//! Gaussian projection of the materialised gradients to 512 dims; (f) group
//! gradients for 100 groups.

use std::hint::black_box;
use std::time::Instant;

use burn::tensor::Device;
use wellspring_core::Grouping;
use wellspring_grad::{
    DenseKind, DenseProjector, GradEngine, KroneckerProjector, Projector, Reduce,
};
use wellspring_models::{Mode, Model, ModelConfig};

fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n: usize = std::env::var("GRAD_SPEED_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = wellspring_data::DataDir::embedded().expect("datasets/ directory");
    let split = wellspring_data::mnist(&dir).expect("MNIST");
    let data = wellspring_data::sample::first_n(&split.train, n).unwrap();
    let device = Device::flex();
    let model = Model::new(ModelConfig::mnist_mlp(), 0, &device).unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let engine = GradEngine::params()
        .batch_size(n)
        .block_rows(32)
        .build(&model, &device)
        .unwrap();
    let p = engine.dim();
    println!(
        "MNIST MLP 784-128-64-10, {n} examples, p = {p}, rayon threads = {}",
        rayon::current_num_threads()
    );

    // (a) one batched forward + backward (training-style: parameter gradients).
    let ad = device.clone().autodiff();
    let tracked = model.trainable(&device);
    let x = tracked.input_batch(&data, &rows, &ad).unwrap();
    let y = tracked.target_batch(&data, &rows, &ad).unwrap();
    let ta = best(5, || {
        let z = tracked.net.forward(x.clone(), Mode::Eval).logits;
        let wellspring_models::Target::Classes(y) = &y else {
            unreachable!()
        };
        let loss = burn::tensor::activation::log_softmax(z, 1)
            .gather(1, y.clone().reshape([n, 1]))
            .sum()
            .neg();
        let g = loss.backward();
        tracked
            .net
            .head
            .weight
            .val()
            .grad(&g)
            .map(|t| t.into_data())
    });
    println!(
        "(a) batched forward+backward:            {:>9.1} ms",
        ta * 1e3
    );

    // (b) batch-of-one reference on a subset, scaled to n.
    let sub = 200.min(n);
    let tb_sub = best(1, || {
        engine
            .per_sample_reference(&data, 0..sub, |b| {
                black_box(b.values[0]);
                Ok(())
            })
            .unwrap()
    });
    let tb = tb_sub * n as f64 / sub as f64;
    println!(
        "(b) batch-of-one reference:              {:>9.1} ms  (measured on {sub}, scaled ×{:.0})",
        tb * 1e3,
        n as f64 / sub as f64
    );

    // (c) per-sample gradients, all parameters, materialised in blocks.
    let tc = best(3, || {
        let mut s = 0.0f32;
        engine
            .per_sample(&data, 0..n, |b| {
                s += b.values[b.values.len() - 1];
                Ok(())
            })
            .unwrap();
        s
    });
    let gb = (n * p * 4) as f64 / 1e9;
    println!(
        "(c) per-sample, materialised:            {:>9.1} ms  ({:.2} GB written, {:.1} GB/s)",
        tc * 1e3,
        gb,
        gb / tc
    );
    // The block buffer (block_rows × p × 4 B = 14 MB here) is reused, so the
    // writes above land in the 32 MB L3 cache, not DRAM. A consumer that
    // reads every value back (here: a checksum) shows the realistic cost.
    let mut checksum = 0.0f64;
    let tc_read = best(3, || {
        let mut s = 0.0f64;
        engine
            .per_sample(&data, 0..n, |b| {
                // Eight f32 lanes per block keep the read loop vectorised.
                let mut lanes = [0.0f32; 8];
                for c in b.values.chunks_exact(8) {
                    for (l, &v) in lanes.iter_mut().zip(c) {
                        *l += v;
                    }
                }
                let tail = b.values.chunks_exact(8).remainder().iter().sum::<f32>();
                s += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
                Ok(())
            })
            .unwrap();
        checksum = s;
        s
    });
    let summed: f64 = engine
        .weighted_sum(&data, 0..n, None)
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .sum();
    println!(
        "(c') per-sample + reading every value:   {:>9.1} ms  (checksum {checksum:.4e} vs Σ of the summed gradient {summed:.4e})",
        tc_read * 1e3
    );

    // (d) Kronecker projection to 512 dims, straight from the factors.
    let kron = KroneckerProjector::new(engine.layout(), 512, 0).unwrap();
    let td = best(5, || {
        engine
            .projected(&data, 0..n, &kron, |b| {
                black_box(b.values[0]);
                Ok(())
            })
            .unwrap()
    });
    println!(
        "(d) Kronecker projection (k = 512):      {:>9.1} ms",
        td * 1e3
    );

    // (e) dense Gaussian projection of the materialised gradients to 512 dims.
    let wide = GradEngine::params()
        .batch_size(n)
        .block_rows(512)
        .build(&model, &device)
        .unwrap();
    let dense = DenseProjector::new(DenseKind::Gaussian, p, 512, 0).unwrap();
    let mut scratch = vec![0.0f32; 512 * 512];
    let (mut t_gen, mut t_proj) = (0.0, 0.0);
    let te = {
        let t = Instant::now();
        wide.per_sample(&data, 0..n, |b| {
            let t1 = Instant::now();
            dense
                .project(b.len(), b.values, &mut scratch[..b.len() * 512])
                .unwrap();
            t_proj += t1.elapsed().as_secs_f64();
            Ok(())
        })
        .unwrap();
        t.elapsed().as_secs_f64()
    };
    // The first block also generated G (cached afterwards, 224 MB here).
    let t1 = Instant::now();
    black_box(
        DenseProjector::new(DenseKind::Gaussian, p, 512, 1)
            .unwrap()
            .with_cache_limit(0)
            .matrix()
            .len(),
    );
    t_gen += t1.elapsed().as_secs_f64();
    println!(
        "(e) dense Gaussian projection (k = 512): {:>9.1} ms  (of which projection GEMMs {:.1} ms; generating G once takes {:.1} ms)",
        te * 1e3,
        t_proj * 1e3,
        t_gen * 1e3
    );

    // Floor of (f): capture + one GEMM per layer over all n rows.
    let tsum = best(5, || engine.weighted_sum(&data, 0..n, None).unwrap());
    println!(
        "(f0) summed gradient over all {n}:       {:>9.1} ms  (capture + one GEMM per layer: the floor of (f))",
        tsum * 1e3
    );

    // (f) group gradients, 100 groups.
    let assign: Vec<usize> = (0..n).map(|i| i % 100).collect();
    let grouping = Grouping::from_assignment(&assign).unwrap();
    let tf = best(5, || {
        engine.group(&data, &grouping, Reduce::Sum, None).unwrap()
    });
    println!(
        "(f) group gradients (100 groups):        {:>9.1} ms",
        tf * 1e3
    );

    println!();
    println!("ratios (target):");
    println!("  (b)/(c) = {:>7.1}   (≥ 20)", tb / tc);
    println!("  (c) GB/s = {:>6.1}   (≥ 1)", gb / tc);
    println!("  (d)/(a) = {:>7.2}   (≤ 3)", td / ta);
    println!("  (e)/(d) = {:>7.1}   (≥ 50)", te / td);
    println!("  (c)/(f) = {:>7.1}   (≥ 10)", tc / tf);
    println!("  (f)/(a) = {:>7.2}", tf / ta);
}
