//! Factored per-example gradients (TracIn App. F rank-1 trick): inner
//! products and norms equal those of the materialised gradients.

use wellspring_core::Dataset;
use wellspring_grad::{CrossEntropy, GradEngine};
use wellspring_models::Model;

use crate::{cpu, rel_err, small_mlp, synthetic, tiny_cnn, tokens};

/// `⟨g_i, h_j⟩` from materialised rows, test-major like `dot_block`.
fn materialised(engine: &GradEngine, train: &Dataset, test: &Dataset) -> (Vec<f32>, Vec<f64>) {
    let p = engine.dim();
    let g = engine.per_sample_matrix(train, 0..train.len()).unwrap();
    let h = engine.per_sample_matrix(test, 0..test.len()).unwrap();
    let (n, m) = (train.len(), test.len());
    let mut out = vec![0.0f32; m * n];
    for j in 0..m {
        for i in 0..n {
            out[j * n + i] = (0..p)
                .map(|k| g[i * p + k] as f64 * h[j * p + k] as f64)
                .sum::<f64>() as f32;
        }
    }
    let norms = (0..n)
        .map(|i| {
            g[i * p..(i + 1) * p]
                .iter()
                .map(|&x| x as f64 * x as f64)
                .sum()
        })
        .collect();
    (out, norms)
}

fn check(model: &Model, train: &Dataset, test: &Dataset, what: &str, cheaper: bool) {
    let engine = GradEngine::params()
        .output(CrossEntropy)
        .batch_size(4)
        .build(model, &cpu())
        .unwrap();
    let (want, want_norms) = materialised(&engine, train, test);
    let f = engine.factored(train, 0..train.len()).unwrap();
    let t = engine.factored(test, 0..test.len()).unwrap();
    assert_eq!((f.n(), f.dim()), (train.len(), engine.dim()), "{what}");
    assert_eq!(f.stored_per_row() < f.dim(), cheaper, "{what}: storage");
    // all test columns at once, and in two blocks
    let all = f.dot_block(&t, 0, test.len()).unwrap();
    let e = rel_err(&all, &want);
    assert!(e < 1e-5, "{what}: inner products relative error {e}");
    let k = test.len() / 2;
    let mut parts = f.dot_block(&t, 0, k).unwrap();
    parts.extend(f.dot_block(&t, k, test.len() - k).unwrap());
    assert_eq!(parts, all, "{what}: blocks");
    let norms = f.sq_norms();
    for (a, b) in norms.iter().zip(&want_norms) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1e-12),
            "{what}: norm {a} vs {b}"
        );
    }
}

#[test]
fn factored_inner_products_equal_materialised_ones() {
    let train = synthetic(11, &[6], 3, 1);
    let test = synthetic(5, &[6], 3, 2);
    check(&small_mlp(6, &[8, 5], 3, 4), &train, &test, "MLP", true);
    // convolutions stay materialised; the head is rank 1
    let (itrain, itest) = (
        synthetic(9, &[1, 8, 8], 4, 3),
        synthetic(4, &[1, 8, 8], 4, 5),
    );
    check(&tiny_cnn(8, 6), &itrain, &itest, "CNN", true);
}

#[test]
fn token_models_and_mismatched_layouts() {
    // token inputs: every layer materialised (per-batch padding changes a
    // sequence layer's rank), still exact
    let model = Model::new(
        wellspring_models::ModelConfig::TextBag {
            vocab: 20,
            dim: 4,
            hidden: 5,
            n_out: 2,
        },
        3,
        &cpu(),
    )
    .unwrap();
    let (train, test) = (tokens(9, 20), tokens(4, 20));
    check(&model, &train, &test, "text bag", false);

    let a = GradEngine::params()
        .build(small_mlp(6, &[8], 3, 1), &cpu())
        .unwrap()
        .factored(&synthetic(3, &[6], 3, 1), 0..3)
        .unwrap();
    let b = GradEngine::params()
        .build(small_mlp(6, &[7], 3, 1), &cpu())
        .unwrap()
        .factored(&synthetic(3, &[6], 3, 1), 0..3)
        .unwrap();
    let e = a.dot_block(&b, 0, 3).unwrap_err().to_string();
    assert!(e.contains("layer layout"), "{e}");
    let e = a.dot_block(&a, 2, 2).unwrap_err().to_string();
    assert!(e.contains("at most 3"), "{e}");
}
