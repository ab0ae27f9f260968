//! K-FAC factors against direct computation on a small MLP.

use nalgebra::DMatrix;
use wellspring_core::Dataset;
use wellspring_grad::{GradEngine, KfacLabels, KfacParams, LayerSelection, Rows};
use wellspring_models::{Model, ModelConfig};

use crate::{cpu, small_mlp, synthetic, tiny_cnn};

fn outer_mean(rows: &[Vec<f64>]) -> DMatrix<f64> {
    let d = rows[0].len();
    let mut m = DMatrix::<f64>::zeros(d, d);
    for r in rows {
        let v = nalgebra::DVector::from_column_slice(r);
        m += &v * v.transpose();
    }
    m / rows.len() as f64
}

fn close(a: &DMatrix<f64>, b: &DMatrix<f64>, what: &str) {
    let e = (a - b).abs().max() / b.abs().max().max(1e-12);
    assert!(e < 1e-5, "{what}: max relative error {e}");
}

/// Inputs `[x; 1]` of both layers of a 6-5-3 MLP, computed on the host, and
/// each layer's δ from the reference path's bias gradients.
fn direct(model: &Model, data: &Dataset) -> [(DMatrix<f64>, DMatrix<f64>); 2] {
    let th: Vec<f64> = model.params_flat().into_iter().map(f64::from).collect();
    let (w0, b0) = (&th[0..30], &th[30..35]);
    let engine = GradEngine::params().build(model, &cpu()).unwrap();
    let n = data.len();
    let g = engine.per_sample_reference_matrix(data, 0..n).unwrap();
    let p = engine.dim();
    let (mut a0, mut a1, mut d0, mut d1) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let x: Vec<f64> = data
            .features()
            .dense_row(i)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let h: Vec<f64> = (0..5)
            .map(|k| (b0[k] + (0..6).map(|j| x[j] * w0[j * 5 + k]).sum::<f64>()).max(0.0))
            .collect();
        a0.push([x, vec![1.0]].concat());
        a1.push([h, vec![1.0]].concat());
        d0.push(
            g[i * p + 30..i * p + 35]
                .iter()
                .map(|&v| v as f64)
                .collect(),
        );
        d1.push(
            g[i * p + 35 + 15..i * p + 35 + 18]
                .iter()
                .map(|&v| v as f64)
                .collect(),
        );
    }
    [
        (outer_mean(&a0), outer_mean(&d0)),
        (outer_mean(&a1), outer_mean(&d1)),
    ]
}

#[test]
fn kfac_factors_match_direct_computation() {
    let model = small_mlp(6, &[5], 3, 1);
    let data = synthetic(20, &[6], 3, 1);
    let kfac = KfacParams::new()
        .labels(KfacLabels::TrueLabel)
        .batch_size(7)
        .fit(&model, &data, Rows::All, &cpu())
        .unwrap();
    assert_eq!(kfac.factors.len(), 2);
    assert!(kfac.skipped.is_empty());
    let want = direct(&model, &data);
    for (f, (a, s)) in kfac.factors.iter().zip(&want) {
        close(&f.a, a, &format!("A of {}", f.path));
        close(&f.s, s, &format!("S of {}", f.path));
        let rec = &f.a_vectors * DMatrix::from_diagonal(&f.a_values) * f.a_vectors.transpose();
        close(&rec, &f.a, "eigendecomposition of A");
        let rec = &f.s_vectors * DMatrix::from_diagonal(&f.s_values) * f.s_vectors.transpose();
        close(&rec, &f.s, "eigendecomposition of S");
    }

    // Sampled labels: the same A, S from the relabelled data, reproducible.
    let sampled = KfacParams::new()
        .labels(KfacLabels::Sampled { seed: 3 })
        .fit(&model, &data, Rows::All, &cpu())
        .unwrap();
    let labels = sampled.sampled.clone().unwrap();
    let again = KfacParams::new()
        .labels(KfacLabels::Sampled { seed: 3 })
        .fit(&model, &data, Rows::All, &cpu())
        .unwrap();
    assert_eq!(again.sampled.as_ref(), Some(&labels));
    assert_ne!(
        labels.as_slice(),
        data.labels().unwrap(),
        "draws differ from the true labels somewhere"
    );
    let relabelled = data.with_labels(labels, 3).unwrap();
    let want = direct(&model, &relabelled);
    for (f, (a, s)) in sampled.factors.iter().zip(&want) {
        close(&f.a, a, "sampled A");
        close(&f.s, s, "sampled S");
    }
}

#[test]
fn eigenbasis_projector_rotates_per_example_gradients() {
    let model = small_mlp(6, &[5], 3, 2);
    let data = synthetic(9, &[6], 3, 2);
    let kfac = KfacParams::new()
        .fit(&model, &data, Rows::All, &cpu())
        .unwrap();
    let engine = GradEngine::params()
        .selection(LayerSelection::All)
        .build(&model, &cpu())
        .unwrap();
    assert_eq!(engine.layout(), kfac.layout());
    let proj = kfac.eigenbasis_projector().unwrap();
    let rotated = engine.projected_matrix(&data, 0..9, &proj).unwrap();
    let g = engine.per_sample_matrix(&data, 0..9).unwrap();
    let p = engine.dim();
    assert_eq!(kfac.eigenvalues().len(), p);
    for i in 0..9 {
        let mut want = Vec::new();
        for (f, slot) in kfac.factors.iter().zip(engine.layout().slots()) {
            let (ia, is) = (f.a.nrows(), f.s.nrows());
            let m = DMatrix::from_row_slice(
                ia,
                is,
                &g[i * p + slot.offset..i * p + slot.offset + ia * is],
            )
            .map(f64::from);
            let r = f.a_vectors.transpose() * m * &f.s_vectors;
            for row in 0..ia {
                for col in 0..is {
                    want.push(r[(row, col)] as f32);
                }
            }
        }
        let e = crate::rel_err(&rotated[i * p..(i + 1) * p], &want);
        assert!(e < 1e-4, "row {i}: {e}");
    }
}

#[test]
fn conv_factors_have_kfc_shapes_and_batch_norm_is_skipped() {
    let kfac = KfacParams::new()
        .fit(
            tiny_cnn(8, 3),
            &synthetic(5, &[1, 8, 8], 4, 3),
            Rows::All,
            &cpu(),
        )
        .unwrap();
    let conv = &kfac.factors[0];
    assert_eq!(conv.path, "body.0");
    assert_eq!(conv.a.nrows(), 9 + 1);
    assert_eq!(conv.s.nrows(), 2);
    for f in &kfac.factors {
        assert!(
            f.a_values.min() > -1e-9 && f.s_values.min() > -1e-12,
            "{} factors are PSD",
            f.path
        );
        assert!((&f.a - f.a.transpose()).abs().max() < 1e-12);
    }
    let resnet = Model::new(
        ModelConfig::ResNet9 {
            in_channels: 3,
            n_out: 3,
            width: 1,
        },
        4,
        &cpu(),
    )
    .unwrap();
    let kfac = KfacParams::new()
        .fit(&resnet, &synthetic(3, &[3, 8, 8], 3, 4), Rows::All, &cpu())
        .unwrap();
    assert!(
        kfac.skipped.iter().any(|p| p == "body.1"),
        "{:?}",
        kfac.skipped
    );
    assert_eq!(kfac.factors.last().unwrap().path, "head");
}
