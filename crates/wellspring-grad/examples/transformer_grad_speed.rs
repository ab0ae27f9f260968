//! Speed of projected per-example gradients of the zoo's SST-2 transformer
//! classifier, as ratios measured in one run (issue F's targets):
//!
//!     cargo run -p wellspring-grad --example transformer_grad_speed
//!
//! (a) one batched forward + backward of the summed loss w.r.t. every
//! parameter (what one training epoch costs), in length-sorted batches of
//! `BUCKET_ROWS` (128) sentences; (b) the batch-of-one autodiff
//! loop (measured on the first 50 sentences and scaled); (c) Kronecker-
//! projected (k = 512) per-example gradients of every parameter from one
//! probed pass per length-bucketed batch (the rank-T sums `Σ_t a_t δ_tᵀ`
//! projected per token, never materialised). Targets: (c) ≤ 3 × (a),
//! (b) ≥ 20 × (c). `TRANSFORMER_SPEED_BATCH` changes the batch size.
//!
//! Sentences: the first `N` (default 1000, `TRANSFORMER_SPEED_N`) of SST-2's
//! training split from `WELLSPRING_DATA`, tokenised with a 5000-word
//! vocabulary and cut to 32 tokens; without SST-2, synthetic sentences of the
//! same lengths (the output says which).

use std::hint::black_box;
use std::time::Instant;

use burn::tensor::Device;
use wellspring_core::{Dataset, Features, Targets};
use wellspring_grad::{CrossEntropy, GradEngine, KroneckerProjector, OutputFn};
use wellspring_models::zoo::{TransformerClassifier, TransformerConfig};
use wellspring_models::{AnyModel, Tracker};

fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// SST-2 sentences, or synthetic ones of 4..32 tokens over 5000 ids.
fn sentences(n: usize) -> (Dataset, &'static str) {
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
        let idx: Vec<usize> = (0..n.min(split.train.len())).collect();
        return (split.train.select(&idx).unwrap(), "SST-2");
    }
    let mut ids = Vec::new();
    let mut offsets = vec![0];
    for i in 0..n {
        for t in 0..(4 + (i * 7) % 29) {
            ids.push(((i * 131 + t * 17) % 5000) as u32);
        }
        offsets.push(ids.len());
    }
    let ds = Dataset::new(
        "synthetic-sentences",
        Features::Tokens {
            ids,
            offsets,
            vocab_size: 5000,
        },
        Targets::Classes {
            labels: (0..n).map(|i| i % 2).collect(),
            n_classes: 2,
        },
    )
    .unwrap();
    (ds, "synthetic (no SST-2 in WELLSPRING_DATA)")
}

fn main() {
    let n: usize = std::env::var("TRANSFORMER_SPEED_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (data, source) = sentences(n);
    let n = data.len();
    let device = Device::flex();
    let vocab = match data.features() {
        Features::Tokens { vocab_size, .. } => *vocab_size,
        Features::Dense { .. } => unreachable!("token data"),
    };
    let cfg = TransformerConfig::small(vocab, 32);
    let model = AnyModel::new(TransformerClassifier::new(&cfg, 2, 0, &device).unwrap());
    let batch: usize = std::env::var("TRANSFORMER_SPEED_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(wellspring_grad::BUCKET_ROWS);
    let engine = GradEngine::params()
        .batch_size(batch)
        .build(&model, &device)
        .unwrap();
    let tokens: usize = (0..n).map(|i| data.features().token_row(i).len()).sum();
    println!(
        "transformer classifier (d = {}, {} blocks, {} heads), {n} {source} sentences ({:.1} tokens on average), p = {}, batches of {batch}, rayon threads = {}",
        cfg.d_model,
        cfg.n_layers,
        cfg.n_heads,
        tokens as f64 / n as f64,
        engine.dim(),
        rayon::current_num_threads()
    );

    if std::env::var("TRANSFORMER_SPEED_PROFILE_C").is_ok() {
        // profiling aid: only (c), repeated
        let kron = KroneckerProjector::new(engine.layout(), 512, 0).unwrap();
        for _ in 0..20 {
            engine
                .projected(&data, 0..n, &kron, |b| {
                    black_box(b.values[0]);
                    Ok(())
                })
                .unwrap();
        }
        return;
    }

    // (a) batched forward + backward w.r.t. every parameter, same batches.
    let ad = device.clone().autodiff();
    let tracked = model.trainable(&device);
    // Same length-sorted batches as (c) buckets, so padding is equal.
    let mut rows: Vec<usize> = (0..n).collect();
    rows.sort_by_key(|&i| (data.features().token_row(i).len(), i));
    let batches: Vec<_> = rows
        .chunks(batch)
        .map(|b| {
            (
                tracked.input_batch(&data, b, &ad).unwrap(),
                tracked.target_batch(&data, b, &ad).unwrap(),
            )
        })
        .collect();
    let ta = best(3, || {
        for (x, y) in &batches {
            let out = tracked.forward_tracked(x, &mut Tracker::passive()).unwrap();
            let loss = CrossEntropy.apply(out.logits, y).unwrap().sum();
            let grads = loss.backward();
            let mut first = None;
            tracked.for_each_grad(&grads, &mut |_, g| {
                first.get_or_insert(g);
            });
            black_box(first);
        }
    });
    println!(
        "(a) batched forward+backward:             {:>9.1} ms",
        ta * 1e3
    );

    // (b) batch-of-one autodiff loop on the first 50, scaled to n.
    let sub = 50.min(n);
    let tb = best(1, || {
        engine
            .per_sample_reference(&data, 0..sub, |b| {
                black_box(b.values[0]);
                Ok(())
            })
            .unwrap()
    }) * n as f64
        / sub as f64;
    println!(
        "(b) batch-of-one autodiff loop:           {:>9.1} ms  (measured on {sub}, scaled ×{:.0})",
        tb * 1e3,
        n as f64 / sub as f64
    );

    // (c) Kronecker-projected per-example gradients, k = 512.
    let kron = KroneckerProjector::new(engine.layout(), 512, 0).unwrap();
    let tc = best(3, || {
        engine
            .projected(&data, 0..n, &kron, |b| {
                black_box(b.values[0]);
                Ok(())
            })
            .unwrap()
    });
    println!(
        "(c) projected per-example (Kronecker 512): {:>8.1} ms",
        tc * 1e3
    );
    println!();
    println!("ratios (target):");
    println!("  (c)/(a) = {:>7.2}   (≤ 3)", tc / ta);
    println!("  (b)/(c) = {:>7.1}   (≥ 20)", tb / tc);
}
