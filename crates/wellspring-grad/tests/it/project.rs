//! Projections: unbiasedness, the Kronecker identity, block-size independence.

use wellspring_core::Dataset;
use wellspring_grad::{
    DenseKind, DenseProjector, GradEngine, KronLayerKind, KroneckerProjector, LayerSelection,
    ProjectionSpec, Projector,
};
use wellspring_models::{Model, ModelConfig};

use crate::{cpu, rel_err, small_mlp, synthetic, tiny_cnn, tokens};

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

#[test]
fn projected_inner_products_are_unbiased() {
    let model = small_mlp(9, &[7], 3, 1);
    let data = synthetic(2, &[9], 3, 1);
    let engine = GradEngine::params().build(&model, &cpu()).unwrap();
    let g = engine.per_sample_matrix(&data, 0..2).unwrap();
    let p = engine.dim();
    let (a, b) = (&g[..p], &g[p..]);
    let truth = dot(a, b);
    let (na, nb) = (dot(a, a), dot(b, b));
    let k = 16;
    let s = 400;
    for kind in ["gaussian", "rademacher", "kronecker"] {
        let mut est = Vec::with_capacity(s);
        let mut norms = Vec::with_capacity(s);
        for seed in 0..s as u64 {
            let spec = match kind {
                "gaussian" => ProjectionSpec::Gaussian { dim: k, seed },
                "rademacher" => ProjectionSpec::Rademacher { dim: k, seed },
                _ => ProjectionSpec::Kronecker { dim: k, seed },
            };
            let proj = spec.build(engine.layout()).unwrap();
            let mut out = vec![0.0f32; 2 * k];
            proj.project(2, &g, &mut out).unwrap();
            est.push(dot(&out[..k], &out[k..]));
            norms.push(dot(&out[..k], &out[..k]));
        }
        let mean = est.iter().sum::<f64>() / s as f64;
        let var = est.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (s - 1) as f64;
        // Gaussian: Var⟨Pa, Pb⟩ = (‖a‖²‖b‖² + (a·b)²)/k, Rademacher no more;
        // the Kronecker product of two small projections has a larger
        // variance, so its tolerance uses the sample variance.
        let theory = (na * nb + truth * truth) / k as f64;
        if kind != "kronecker" {
            assert!(
                var < 1.5 * theory,
                "{kind}: variance {var} vs theory {theory}"
            );
        }
        let tol = 4.0 * (var.max(theory) / s as f64).sqrt();
        assert!(
            (mean - truth).abs() < tol,
            "{kind}: mean {mean} vs truth {truth} (tol {tol})"
        );
        let nmean = norms.iter().sum::<f64>() / s as f64;
        let nvar = norms.iter().map(|e| (e - nmean).powi(2)).sum::<f64>() / (s - 1) as f64;
        let ntol = 4.0 * (nvar.max(2.0 * na * na / k as f64) / s as f64).sqrt();
        assert!((nmean - na).abs() < ntol, "{kind}: E‖Pa‖² {nmean} vs {na}");
    }
}

#[test]
fn kronecker_of_a_rank_one_gradient_equals_the_dense_kronecker_matrix() {
    let model = small_mlp(9, &[7], 3, 2);
    let data = synthetic(3, &[9], 3, 2);
    let engine = GradEngine::params()
        .selection(LayerSelection::Head)
        .build(&model, &cpu())
        .unwrap();
    let g = engine.per_sample_matrix(&data, 0..3).unwrap();
    let p = engine.dim();
    let kron = KroneckerProjector::new(engine.layout(), 16, 5).unwrap();
    let layer = &kron.layers()[0];
    let KronLayerKind::Linear { d_in, d_out, bias } = layer.kind else {
        panic!("head is linear")
    };
    assert!(bias);
    let (ka, kd, in_w) = (layer.k_a, layer.k_d, d_in + 1);
    assert_eq!(ka * kd, 16);
    // K = G_a ⊗ G_δ acting on vec([a; 1] δᵀ) in the canonical layout.
    let mut dense = vec![0.0f32; 16 * p];
    for r in 0..ka {
        for s in 0..kd {
            for j in 0..in_w {
                for c in 0..d_out {
                    dense[(r * kd + s) * p + j * d_out + c] =
                        layer.ga[r * in_w + j] * layer.gd[s * d_out + c];
                }
            }
        }
    }
    let fast = engine.projected_matrix(&data, 0..3, &kron).unwrap();
    let mut mat = vec![0.0f32; 3 * 16];
    kron.project(3, &g, &mut mat).unwrap();
    for i in 0..3 {
        let want: Vec<f32> = (0..16)
            .map(|q| dot(&dense[q * p..(q + 1) * p], &g[i * p..(i + 1) * p]) as f32)
            .collect();
        assert!(
            rel_err(&fast[i * 16..(i + 1) * 16], &want) < 1e-5,
            "fast path, row {i}"
        );
        assert!(
            rel_err(&mat[i * 16..(i + 1) * 16], &want) < 1e-5,
            "materialised, row {i}"
        );
    }
}

fn fast_equals_materialised(model: &Model, data: &Dataset, k: usize, what: &str) {
    let engine = GradEngine::params()
        .batch_size(3)
        .build(model, &cpu())
        .unwrap();
    let n = data.len();
    let kron = KroneckerProjector::new(engine.layout(), k, 9).unwrap();
    let fast = engine.projected_matrix(data, 0..n, &kron).unwrap();
    let g = engine.per_sample_matrix(data, 0..n).unwrap();
    let mut mat = vec![0.0f32; n * k];
    kron.project(n, &g, &mut mat).unwrap();
    let e = rel_err(&fast, &mat);
    assert!(
        e < 1e-4,
        "{what}: fast Kronecker vs materialised, relative error {e}"
    );
}

#[test]
fn kronecker_fast_path_equals_materialised_projection_for_every_layer_type() {
    fast_equals_materialised(
        &tiny_cnn(8, 3),
        &synthetic(5, &[1, 8, 8], 4, 3),
        16,
        "CNN (conv + linear)",
    );
    let text = Model::new(
        ModelConfig::TextBag {
            vocab: 20,
            dim: 4,
            hidden: 5,
            n_out: 2,
        },
        4,
        &cpu(),
    )
    .unwrap();
    fast_equals_materialised(&text, &tokens(5, 20), 8, "TextBag (embedding)");
    let resnet = Model::new(
        ModelConfig::ResNet9 {
            in_channels: 3,
            n_out: 3,
            width: 1,
        },
        5,
        &cpu(),
    )
    .unwrap();
    fast_equals_materialised(
        &resnet,
        &synthetic(4, &[3, 8, 8], 3, 4),
        16,
        "ResNet-9 (batch norm)",
    );
}

#[test]
fn projections_do_not_depend_on_block_size_or_cache() {
    let model = small_mlp(40, &[30], 5, 6);
    let data = synthetic(13, &[40], 5, 5);
    let layout = GradEngine::params()
        .build(&model, &cpu())
        .unwrap()
        .layout()
        .clone();
    assert!(
        layout.dim() > 2 * wellspring_grad::CHUNK_ROWS,
        "several generated chunks"
    );
    let engine = GradEngine::params()
        .batch_size(13)
        .build(&model, &cpu())
        .unwrap();
    let g = engine.per_sample_matrix(&data, 0..13).unwrap();
    let p = layout.dim();
    for spec in [
        ProjectionSpec::Gaussian { dim: 24, seed: 1 },
        ProjectionSpec::Rademacher { dim: 24, seed: 1 },
        ProjectionSpec::Kronecker { dim: 24, seed: 1 },
    ] {
        let proj = spec.build(&layout).unwrap();
        assert_eq!(proj.spec(), spec);
        // The projector on the same rows, in blocks of 13, 1 and 3 rows.
        let mut whole = vec![0.0f32; 13 * 24];
        proj.project(13, &g, &mut whole).unwrap();
        for block in [1usize, 3] {
            let mut parts = Vec::new();
            for r0 in (0..13).step_by(block) {
                let r = block.min(13 - r0);
                let mut out = vec![0.0f32; r * 24];
                proj.project(r, &g[r0 * p..(r0 + r) * p], &mut out).unwrap();
                parts.extend(out);
            }
            assert_eq!(parts, whole, "{spec:?}: blocks of {block} rows");
        }
        // Through the engine: the block size of the stream changes nothing;
        // another forward batch size changes only rounding.
        let mut outs = Vec::new();
        for (batch, block) in [(13, 13), (13, 1), (13, 3), (4, 3)] {
            let e = GradEngine::params()
                .batch_size(batch)
                .block_rows(block)
                .build(&model, &cpu())
                .unwrap();
            outs.push(e.projected_matrix(&data, 0..13, proj.as_ref()).unwrap());
        }
        assert_eq!(outs[0], outs[1], "{spec:?}: stream blocks of 1 row");
        assert_eq!(outs[0], outs[2], "{spec:?}: stream blocks of 3 rows");
        assert!(
            rel_err(&outs[3], &outs[0]) < 1e-5,
            "{spec:?}: forward batches of 4"
        );
    }
    // The cache only saves work.
    let g = crate::values(3 * p, 77);
    let cached = DenseProjector::new(DenseKind::Gaussian, p, 24, 2).unwrap();
    let uncached = DenseProjector::new(DenseKind::Gaussian, p, 24, 2)
        .unwrap()
        .with_cache_limit(0);
    let (mut a, mut b) = (vec![0.0; 3 * 24], vec![0.0; 3 * 24]);
    cached.project(3, &g, &mut a).unwrap();
    cached.project(3, &g, &mut a).unwrap();
    uncached.project(3, &g, &mut b).unwrap();
    assert_eq!(a, b);
    // And it is the explicit matrix G.
    let m = cached.matrix();
    let want: Vec<f32> = (0..3)
        .flat_map(|i| (0..24).map(move |r| (i, r)))
        .map(|(i, r)| dot(&m[r * p..(r + 1) * p], &g[i * p..(i + 1) * p]) as f32)
        .collect();
    assert!(rel_err(&a, &want) < 1e-5);
    // Different seeds, different matrices.
    let other = DenseProjector::new(DenseKind::Gaussian, p, 24, 3).unwrap();
    other.project(3, &g, &mut b).unwrap();
    assert_ne!(a, b);
}
