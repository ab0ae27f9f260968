//! Per-sample gradients: fast path vs batch-of-one reference vs finite differences.

use burn::tensor::FloatDType;
use wellspring_core::Dataset;
use wellspring_grad::{
    CorrectProb, CrossEntropy, CurvatureParams, GradEngine, LayerSelection, Logit, Mse, OutputFn,
    TrakMargin,
};
use wellspring_models::{Model, ModelConfig};

use crate::{cpu, mnist, regression, rel_err, small_mlp, synthetic, tiny_cnn, tokens, values};

fn compare(model: &Model, data: &Dataset, output: impl OutputFn + Clone + 'static, what: &str) {
    let engine = GradEngine::params()
        .output(output)
        .batch_size(5)
        .block_rows(3)
        .build(model, &cpu())
        .unwrap();
    let n = data.len();
    let fast = engine.per_sample_matrix(data, 0..n).unwrap();
    let reference = engine.per_sample_reference_matrix(data, 0..n).unwrap();
    let p = engine.dim();
    assert_eq!(p, model.n_params(), "{what}: all layers selected");
    assert_eq!(fast.len(), n * p);
    for i in 0..n {
        let (f, r) = (&fast[i * p..(i + 1) * p], &reference[i * p..(i + 1) * p]);
        let e = rel_err(f, r);
        assert!(e < 1e-3, "{what}: row {i} relative error {e}");
    }
}

#[test]
fn fast_path_equals_reference_on_every_architecture() {
    let dev = cpu();
    let data = mnist(12);
    compare(
        &Model::new(ModelConfig::mnist_logreg(), 1, &dev).unwrap(),
        &data,
        CrossEntropy,
        "LogReg",
    );
    // Dropout 0.1 in the config: gradients are taken in eval mode.
    compare(
        &Model::new(ModelConfig::mnist_mlp(), 2, &dev).unwrap(),
        &data,
        CrossEntropy,
        "MLP",
    );
    compare(
        &tiny_cnn(8, 3),
        &synthetic(7, &[1, 8, 8], 4, 1),
        CrossEntropy,
        "CNN",
    );
    let resnet = Model::new(
        ModelConfig::ResNet9 {
            in_channels: 3,
            n_out: 3,
            width: 1,
        },
        4,
        &dev,
    )
    .unwrap();
    compare(
        &resnet,
        &synthetic(4, &[3, 8, 8], 3, 2),
        CrossEntropy,
        "ResNet-9",
    );
    let text = Model::new(
        ModelConfig::TextBag {
            vocab: 20,
            dim: 4,
            hidden: 5,
            n_out: 2,
        },
        5,
        &dev,
    )
    .unwrap();
    compare(&text, &tokens(7, 20), CrossEntropy, "TextBag");
    let fimo = Model::new(ModelConfig::FimoMlp { d_in: 5, n_out: 1 }, 6, &dev).unwrap();
    compare(&fimo, &regression(8, 5, 1), Mse, "FiMO MLP (MSE)");
}

#[test]
fn every_output_function_matches_the_reference() {
    let model = small_mlp(12, &[6], 4, 7);
    let data = synthetic(9, &[12], 4, 3);
    compare(&model, &data, TrakMargin, "TRAK margin");
    compare(&model, &data, CorrectProb, "correct-class probability");
    compare(&model, &data, Logit(2), "logit 2");
}

/// Directional derivatives of one example's output by central differences of
/// the f64 model, against `g · v` from the fast path on the same f64 model.
fn check_fd(model: &Model, data: &Dataset, what: &str) {
    let dev = cpu();
    let m64 = model.to_dtype(FloatDType::F64);
    let engine = GradEngine::params().build(&m64, &dev).unwrap();
    let p = engine.dim();
    for i in [0usize, 3] {
        let g = engine.per_sample_matrix(data, [i].as_slice()).unwrap();
        let ctx = CurvatureParams::new()
            .loss(CrossEntropy)
            .context(&m64, data, [i].as_slice(), &dev)
            .unwrap();
        let theta = ctx.theta().to_vec();
        for salt in 0..3 {
            let v: Vec<f64> = values(p, 100 + salt).into_iter().map(f64::from).collect();
            let h = 1e-5;
            let plus: Vec<f64> = theta.iter().zip(&v).map(|(t, x)| t + h * x).collect();
            let minus: Vec<f64> = theta.iter().zip(&v).map(|(t, x)| t - h * x).collect();
            let fd = (ctx.value(&plus).unwrap() - ctx.value(&minus).unwrap()) / (2.0 * h);
            let gv: f64 = g.iter().zip(&v).map(|(a, b)| *a as f64 * b).sum();
            let e = (fd - gv).abs() / fd.abs().max(1e-8);
            assert!(
                e < 1e-3,
                "{what}: example {i}, direction {salt}: fd {fd} vs g·v {gv} (rel {e})"
            );
        }
    }
}

#[test]
fn fast_path_matches_f64_finite_differences() {
    check_fd(
        &small_mlp(6, &[5, 4], 3, 8),
        &synthetic(5, &[6], 3, 4),
        "MLP",
    );
    check_fd(&tiny_cnn(8, 9), &synthetic(5, &[1, 8, 8], 4, 5), "CNN");
}

#[test]
fn selections_are_slices_of_the_full_gradient() {
    let model = small_mlp(10, &[6, 5], 3, 10);
    let data = synthetic(6, &[10], 3, 6);
    let dev = cpu();
    let all = GradEngine::params().build(&model, &dev).unwrap();
    let full = all.per_sample_matrix(&data, 0..6).unwrap();
    let p = all.dim();
    for sel in [
        LayerSelection::Head,
        LayerSelection::layers(["body.2"]),
        LayerSelection::layers(["body.0", "head"]),
    ] {
        let e = GradEngine::params()
            .selection(sel.clone())
            .build(&model, &dev)
            .unwrap();
        let part = e.per_sample_matrix(&data, 0..6).unwrap();
        let q = e.dim();
        for i in 0..6 {
            let mut want = Vec::new();
            for slot in e.layout().slots() {
                let r = slot.desc.range();
                want.extend_from_slice(&full[i * p + r.start..i * p + r.end]);
            }
            assert_eq!(
                &part[i * q..(i + 1) * q],
                want.as_slice(),
                "{sel:?} row {i}"
            );
        }
    }
    let head = GradEngine::params()
        .selection(LayerSelection::Head)
        .build(&model, &dev)
        .unwrap();
    assert_eq!(head.dim(), 5 * 3 + 3);
}

#[test]
fn blocks_cover_the_requested_rows_in_order_with_outputs() {
    let model = small_mlp(8, &[4], 3, 11);
    let data = synthetic(10, &[8], 3, 7);
    let engine = GradEngine::params()
        .batch_size(4)
        .block_rows(3)
        .build(&model, &cpu())
        .unwrap();
    let rows = vec![9, 0, 0, 4, 5, 6, 7, 1];
    let mut seen = Vec::new();
    let mut starts = Vec::new();
    let mut outs = Vec::new();
    engine
        .per_sample(&data, &rows, |b| {
            assert!(b.len() <= 3);
            assert_eq!(b.values.len(), b.len() * b.dim);
            starts.push(b.start);
            seen.extend_from_slice(b.rows);
            outs.extend_from_slice(b.outputs);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, rows);
    assert_eq!(starts, vec![0, 3, 4, 7]);
    let want = engine.outputs(&data, &rows).unwrap();
    assert!(rel_err(&outs, &want) < 1e-6);
    // Repeated rows give identical gradients.
    let g = engine.per_sample_matrix(&data, &rows).unwrap();
    let p = engine.dim();
    assert_eq!(&g[p..2 * p], &g[2 * p..3 * p]);
}

/// Position-weighted checksums of one block, so a stale row left over in a
/// reused buffer, a skipped layer or a shifted row all change the result.
fn block_sums(values: &[f32], dim: usize) -> Vec<[f64; 2]> {
    values
        .chunks_exact(dim)
        .map(|row| {
            let mut s = [0.0f64; 2];
            for (j, &v) in row.iter().enumerate() {
                s[0] += v as f64;
                s[1] += v as f64 * ((j % 97) as f64 + 1.0);
            }
            s
        })
        .collect()
}

#[test]
fn streamed_blocks_are_fully_written_and_match_the_reference() {
    // The MNIST MLP as in the speed example (real images: many exact-zero
    // inputs take the outer product's zero-fill branch), with block and batch
    // sizes that do not divide each other so the block buffer is reused
    // across blocks and batches with partial blocks.
    let model = Model::new(ModelConfig::mnist_mlp(), 0, &cpu()).unwrap();
    let data = mnist(30);
    let engine = GradEngine::params()
        .batch_size(11)
        .block_rows(4)
        .build(&model, &cpu())
        .unwrap();
    let p = engine.dim();
    let (mut fast, mut reference) = (Vec::new(), Vec::new());
    let mut rows_seen = 0;
    engine
        .per_sample(&data, 0..30, |b| {
            assert_eq!(b.values.len(), b.len() * p, "block holds exactly its rows");
            rows_seen += b.len();
            fast.extend(block_sums(b.values, p));
            Ok(())
        })
        .unwrap();
    engine
        .per_sample_reference(&data, 0..30, |b| {
            reference.extend(block_sums(b.values, p));
            Ok(())
        })
        .unwrap();
    assert_eq!(rows_seen, 30);
    assert_eq!(fast.len(), reference.len());
    for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
        for k in 0..2 {
            let tol = 1e-4 * r[k].abs().max(1.0);
            assert!(
                (f[k] - r[k]).abs() < tol,
                "row {i} checksum {k}: fast {} vs reference {}",
                f[k],
                r[k]
            );
        }
    }
    // Distinct examples give distinct rows (no block repeats a stale one).
    for w in fast.windows(2) {
        assert_ne!(w[0], w[1]);
    }
}
