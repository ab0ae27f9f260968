//! The flat parameter view: layout, order, round trips, initialisation.

use wellspring_core::{Dataset, Features, Targets};
use wellspring_models::{Mode, Model, ModelConfig, ParamLayerKind};

use crate::cpu;

#[test]
fn mlp_layers_offsets_and_count() {
    let m = Model::new(ModelConfig::mnist_mlp(), 0, &cpu()).unwrap();
    let layers = m.param_layers();
    let paths: Vec<&str> = layers.iter().map(|d| d.path.as_str()).collect();
    // Linear, ReLU, Dropout per hidden width: the second Linear is body.3.
    assert_eq!(paths, vec!["body.0", "body.3", "head"]);
    assert_eq!(layers[0].weight_shape, vec![784, 128]);
    assert_eq!(
        (layers[1].offset, layers[1].len),
        (784 * 128 + 128, 128 * 64 + 64)
    );
    assert_eq!(layers[2].offset, layers[1].offset + layers[1].len);
    assert_eq!(m.n_params(), 109_386);
    assert_eq!(m.params_flat().len(), 109_386);
    assert!(
        layers
            .iter()
            .all(|d| d.kind == ParamLayerKind::Linear && d.has_bias)
    );
}

#[test]
fn resnet9_has_the_standard_parameter_count() {
    let m = Model::new(
        ModelConfig::ResNet9 {
            in_channels: 3,
            n_out: 10,
            width: 64,
        },
        0,
        &cpu(),
    )
    .unwrap();
    // Page's ResNet-9 without conv biases: 6,573,130 parameters.
    assert_eq!(m.n_params(), 6_573_130);
    let convs = m
        .param_layers()
        .iter()
        .filter(|d| d.kind == ParamLayerKind::Conv2d)
        .count();
    assert_eq!(convs, 8);
    let res = m.param_layers_matching(&["body.7"]).unwrap();
    let paths: Vec<&str> = res.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "body.7.inner.0",
            "body.7.inner.1",
            "body.7.inner.3",
            "body.7.inner.4"
        ]
    );
    assert!(
        res.iter()
            .all(|d| d.kind != ParamLayerKind::Conv2d || !d.has_bias)
    );
}

#[test]
fn matching_names_and_unknown_names() {
    let m = Model::new(ModelConfig::mnist_mlp(), 0, &cpu()).unwrap();
    let sel = m.param_layers_matching(&["head", "body.0"]).unwrap();
    assert_eq!(sel.len(), 2);
    assert_eq!(sel[0].path, "body.0", "canonical order, not request order");
    assert_eq!(sel[1].offset, m.param_layers()[2].offset);
    let e = m
        .param_layers_matching(&["body.1"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("body.1") && e.contains("body.0, body.3, head"),
        "{e}"
    );
    // "body.3" must not select a hypothetical "body.30".
    assert_eq!(m.param_layers_matching(&["body.3"]).unwrap().len(), 1);
}

#[test]
fn set_params_flat_round_trips_and_checks() {
    let mut m = Model::new(ModelConfig::mnist_cnn(), 1, &cpu()).unwrap();
    let n = m.n_params();
    let v: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) / 1000.0).collect();
    m.set_params_flat(&v).unwrap();
    assert_eq!(m.params_flat(), v);
    let e = m.set_params_flat(&v[1..]).unwrap_err().to_string();
    assert!(
        e.contains(&n.to_string()) && e.contains(&(n - 1).to_string()),
        "{e}"
    );
    let mut bad = v.clone();
    bad[5] = f32::NAN;
    let e = m.set_params_flat(&bad).unwrap_err().to_string();
    assert!(e.contains("position 5"), "{e}");
}

#[test]
fn logreg_logits_follow_the_documented_layout() {
    // LogReg(3 -> 2): flat = W[3,2] row-major (burn's [d_in, d_out]) then b[2].
    let device = cpu();
    let mut m = Model::new(ModelConfig::LogReg { d_in: 3, n_out: 2 }, 0, &device).unwrap();
    m.set_params_flat(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, -0.5])
        .unwrap();
    let data = Dataset::new(
        "x",
        Features::Dense {
            values: vec![1.0, 0.0, -1.0],
            shape: vec![3],
        },
        Targets::Classes {
            labels: vec![0],
            n_classes: 2,
        },
    )
    .unwrap();
    let x = m.input_batch(&data, &[0], &device).unwrap();
    let out = m.net.forward(x, Mode::Eval);
    let z: Vec<f32> = out.logits.into_data().try_into_vec().unwrap();
    // z_j = Σ_i x_i W[i, j] + b_j = (1 - 5 + 0.5, 2 - 6 - 0.5)
    assert_eq!(z, vec![-3.5, -4.5]);
}

#[test]
fn initialisation_is_seeded_and_within_pytorch_bounds() {
    let device = cpu();
    let a = Model::new(ModelConfig::mnist_mlp(), 5, &device).unwrap();
    let b = Model::new(ModelConfig::mnist_mlp(), 5, &device).unwrap();
    let c = Model::new(ModelConfig::mnist_mlp(), 6, &device).unwrap();
    assert_eq!(a.params_flat(), b.params_flat());
    assert_ne!(a.params_flat(), c.params_flat());
    let flat = a.params_flat();
    for d in a.param_layers() {
        let fan_in = d.weight_shape[0] as f32;
        let bound = 1.0 / fan_in.sqrt();
        let w = &flat[d.range()];
        assert!(w.iter().all(|v| v.abs() <= bound), "{}", d.path);
        // Uniform(-b, b) has standard deviation b / sqrt(3).
        let n = w.len() as f32;
        let sd = (w.iter().map(|v| v * v).sum::<f32>() / n).sqrt();
        assert!(
            (sd / (bound / 3f32.sqrt()) - 1.0).abs() < 0.15,
            "{}: sd {sd}",
            d.path
        );
    }
    let e = Model::new(
        ModelConfig::Cnn {
            in_channels: 1,
            side: 28,
            channels: vec![8, 8, 8],
            fc: 16,
            n_out: 10,
        },
        0,
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Cnn.side") && e.contains("divisible by 2^3"),
        "{e}"
    );
}

mod props {
    use proptest::prelude::*;
    use wellspring_core::{Dataset, Features, Targets};
    use wellspring_models::{Mode, Model, ModelConfig};

    use crate::cpu;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Layers tile the flat vector, and set/get is the identity.
        #[test]
        fn flat_view_tiles_and_round_trips(
            d_in in 1usize..6,
            hidden in proptest::collection::vec(1usize..5, 0..3),
            n_out in 2usize..4,
            seed in 0u64..1000,
        ) {
            let mut m = Model::new(
                ModelConfig::Mlp { d_in, hidden, n_out, dropout: 0.0 }, seed, &cpu()
            ).unwrap();
            let layers = m.param_layers();
            let mut off = 0;
            for d in &layers {
                prop_assert_eq!(d.offset, off);
                off += d.len;
            }
            prop_assert_eq!(off, m.n_params());
            let v: Vec<f32> = (0..off).map(|i| (i as f32 * 0.37 + seed as f32).sin()).collect();
            m.set_params_flat(&v).unwrap();
            prop_assert_eq!(m.params_flat(), v);
        }

        /// LogReg logits are `x W + b` with `W` read row-major as `[d_in, n_out]`.
        #[test]
        fn logreg_logits_match_the_flat_layout(
            d_in in 1usize..5,
            n_out in 2usize..4,
            vals in proptest::collection::vec(-2.0f32..2.0, 30),
        ) {
            let device = cpu();
            let mut m = Model::new(ModelConfig::LogReg { d_in, n_out }, 0, &device).unwrap();
            let p: Vec<f32> = vals[..d_in * n_out + n_out].to_vec();
            m.set_params_flat(&p).unwrap();
            let x: Vec<f32> = vals[vals.len() - d_in..].to_vec();
            let data = Dataset::new(
                "x",
                Features::Dense { values: x.clone(), shape: vec![d_in] },
                Targets::Classes { labels: vec![0], n_classes: n_out },
            ).unwrap();
            let input = m.input_batch(&data, &[0], &device).unwrap();
            let z: Vec<f32> = m.net.forward(input, Mode::Eval)
                .logits.into_data().try_into_vec().unwrap();
            for j in 0..n_out {
                let want: f32 = (0..d_in).map(|i| x[i] * p[i * n_out + j]).sum::<f32>()
                    + p[d_in * n_out + j];
                prop_assert!((z[j] - want).abs() < 1e-4, "z[{}] = {} vs {}", j, z[j], want);
            }
        }
    }
}
