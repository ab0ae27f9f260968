//! Forward pass: hooks, probes, BatchNorm modes, dropout, f64, text.

use burn::tensor::{DType, FloatDType, Tensor, TensorData};
use wellspring_core::{Dataset, Features, Targets};
use wellspring_models::{
    Act, ForwardHook, Input, LayerInput, Mode, Model, ModelConfig, ParamLayerKind, ParamLayerRef,
};

use crate::{cpu, mnist};

#[derive(Default)]
struct Recorder {
    seen: Vec<(String, ParamLayerKind)>,
}

impl ForwardHook for Recorder {
    fn param_layer(&mut self, path: &str, l: ParamLayerRef<'_>, _: &LayerInput, out: Act) -> Act {
        self.seen.push((path.to_string(), l.kind()));
        out
    }
}

fn images(n: usize, c: usize, side: usize, classes: usize) -> Dataset {
    let d = c * side * side;
    let values: Vec<f32> = (0..n * d)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    Dataset::new(
        "imgs",
        Features::Dense {
            values,
            shape: vec![c, side, side],
        },
        Targets::Classes {
            labels: (0..n).map(|i| i % classes).collect(),
            n_classes: classes,
        },
    )
    .unwrap()
}

fn resnet(width: usize) -> ModelConfig {
    ModelConfig::ResNet9 {
        in_channels: 3,
        n_out: 10,
        width,
    }
}

#[test]
fn hook_sees_every_parameter_layer_in_canonical_order() {
    let device = cpu();
    let m = Model::new(resnet(2), 0, &device).unwrap();
    let data = images(2, 3, 32, 10);
    let x = m.input_batch(&data, &[0, 1], &device).unwrap();
    let mut rec = Recorder::default();
    let out = m.net.forward_hooked(x, Mode::Eval, &mut rec);
    assert_eq!(out.features.dims(), [2, 16]);
    assert_eq!(out.logits.dims(), [2, 10]);
    let paths: Vec<String> = rec.seen.iter().map(|(p, _)| p.clone()).collect();
    let expected: Vec<String> = m.param_layers().into_iter().map(|d| d.path).collect();
    assert_eq!(paths, expected);
    assert_eq!(paths[4], "body.7.inner.0");
    assert_eq!(rec.seen[1].1, ParamLayerKind::BatchNorm2d);
    assert_eq!(rec.seen.last().unwrap().0, "head");
}

/// The gradient engine's trick: add a zero probe to a layer's output; its
/// gradient is each example's backprop error δ. For the head under summed
/// cross-entropy δ = softmax(z) - onehot(y).
struct Probe {
    device: burn::tensor::Device,
    probe: Option<Tensor<2>>,
}

impl ForwardHook for Probe {
    fn param_layer(&mut self, path: &str, _: ParamLayerRef<'_>, _: &LayerInput, out: Act) -> Act {
        if path != "head" {
            return out;
        }
        let t = out.flat();
        let p = Tensor::<2>::zeros(t.dims(), &self.device).require_grad();
        self.probe = Some(p.clone());
        Act::Flat(t + p)
    }
}

#[test]
fn probe_gradient_is_the_backprop_error() {
    let device = cpu().autodiff();
    let m = Model::new(ModelConfig::mnist_mlp(), 0, &cpu())
        .unwrap()
        .to_device(&device);
    let data = mnist("train", 4);
    let x = m.input_batch(&data, &[0, 1, 2, 3], &device).unwrap();
    let mut hook = Probe {
        device: device.clone(),
        probe: None,
    };
    let out = m.net.forward_hooked(x, Mode::Eval, &mut hook);
    let labels = data.labels().unwrap();
    let y = Tensor::<1, burn::tensor::Int>::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [4]),
        &device,
    );
    let logp = burn::tensor::activation::log_softmax(out.logits.clone(), 1);
    let loss = logp.gather(1, y.reshape([4, 1])).sum().neg();
    let grads = loss.backward();
    let delta: Vec<f32> = hook
        .probe
        .unwrap()
        .grad(&grads)
        .expect("probe has a gradient")
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .unwrap();
    let z: Vec<f32> = out
        .logits
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .unwrap();
    for i in 0..4 {
        let row = &z[i * 10..(i + 1) * 10];
        let m = row.iter().cloned().fold(f32::MIN, f32::max);
        let s: f32 = row.iter().map(|v| (v - m).exp()).sum();
        for j in 0..10 {
            let p = (row[j] - m).exp() / s;
            let want = p - if j == labels[i] { 1.0 } else { 0.0 };
            assert!((delta[i * 10 + j] - want).abs() < 1e-5, "δ[{i},{j}]");
        }
    }
}

struct ZeroHead;
impl ForwardHook for ZeroHead {
    fn param_layer(&mut self, path: &str, _: ParamLayerRef<'_>, _: &LayerInput, out: Act) -> Act {
        match (path, out) {
            ("head", Act::Flat(t)) => Act::Flat(t.zeros_like()),
            (_, o) => o,
        }
    }
}

#[test]
fn hook_output_replaces_the_layer_output() {
    let device = cpu();
    let m = Model::new(ModelConfig::mnist_logreg(), 0, &device).unwrap();
    let data = mnist("train", 3);
    let x = m.input_batch(&data, &[0, 1, 2], &device).unwrap();
    let z: Vec<f32> = m
        .net
        .forward_hooked(x, Mode::Eval, &mut ZeroHead)
        .logits
        .into_data()
        .try_into_vec()
        .unwrap();
    assert!(z.iter().all(|&v| v == 0.0));
}

#[test]
fn batchnorm_train_updates_running_stats_and_clones_are_independent() {
    let device = cpu();
    let m = Model::new(resnet(2), 0, &device).unwrap();
    let frozen = m.clone();
    let data = images(4, 3, 32, 10);
    let idx = [0, 1, 2, 3];
    let eval = |m: &Model| -> Vec<f32> {
        let x = m.input_batch(&data, &idx, &device).unwrap();
        m.net
            .forward(x, Mode::Eval)
            .logits
            .into_data()
            .try_into_vec()
            .unwrap()
    };
    let before = eval(&m);
    assert_eq!(before, eval(&m), "eval mode is pure");
    let mut rng = wellspring_core::rng(0);
    let x = m.input_batch(&data, &idx, &device).unwrap();
    let _ = m.net.forward(x, Mode::Train(&mut rng));
    let after = eval(&m);
    assert_ne!(before, after, "training forward must update running stats");
    assert_eq!(eval(&frozen), before, "a clone taken before is unaffected");
    // Batch statistics: the mean of every BN output channel over the batch is β = 0.
    let bn = match &m.net.body[1] {
        wellspring_models::Layer::BatchNorm2d(b) => b,
        other => panic!("expected BatchNorm2d, got {other:?}"),
    };
    let rm: Vec<f32> = bn.running_mean.get().into_data().try_into_vec().unwrap();
    assert!(rm.iter().any(|&v| v != 0.0));
}

#[test]
fn dropout_masks_come_from_the_given_rng() {
    let device = cpu();
    let m = Model::new(ModelConfig::mnist_mlp(), 0, &device).unwrap();
    let data = mnist("train", 8);
    let idx: Vec<usize> = (0..8).collect();
    let run = |seed: Option<u64>| -> Vec<f32> {
        let x = m.input_batch(&data, &idx, &device).unwrap();
        let out = match seed {
            Some(s) => m.net.forward(x, Mode::Train(&mut wellspring_core::rng(s))),
            None => m.net.forward(x, Mode::Eval),
        };
        out.logits.into_data().try_into_vec().unwrap()
    };
    assert_eq!(run(Some(1)), run(Some(1)));
    assert_ne!(run(Some(1)), run(Some(2)));
    assert_ne!(run(Some(1)), run(None));
    assert_eq!(run(None), run(None));
}

#[test]
fn f64_model_matches_f32_and_differentiates_in_f64() {
    let device = cpu();
    let m32 = Model::new(ModelConfig::mnist_cnn(), 0, &device).unwrap();
    let m64 = m32.to_dtype(FloatDType::F64);
    assert_eq!(m64.dtype(), DType::F64);
    let data = mnist("train", 2);
    let z32: Vec<f64> = {
        let x = m32.input_batch(&data, &[0, 1], &device).unwrap();
        m32.net
            .forward(x, Mode::Eval)
            .logits
            .into_data()
            .convert::<f64>()
            .try_into_vec()
            .unwrap()
    };
    let x = m64.input_batch(&data, &[0, 1], &device).unwrap();
    let out = m64.net.forward(x, Mode::Eval);
    assert_eq!(out.logits.dtype(), DType::F64);
    let z64: Vec<f64> = out.logits.into_data().try_into_vec().unwrap();
    for (a, b) in z32.iter().zip(&z64) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // Gradients flow in f64 through conv, pooling and linear layers.
    let ad = device.clone().autodiff();
    let m = Model::new(resnet(1), 0, &device)
        .unwrap()
        .to_dtype(FloatDType::F64)
        .trainable(&ad);
    let imgs = images(2, 3, 32, 10);
    let x = m.input_batch(&imgs, &[0, 1], &ad).unwrap();
    let loss = m.net.forward(x, Mode::Eval).logits.sum();
    let grads = loss.backward();
    let conv = match &m.net.body[0] {
        wellspring_models::Layer::Conv2d(c) => c,
        other => panic!("expected Conv2d, got {other:?}"),
    };
    let g = conv
        .weight
        .val()
        .grad(&grads)
        .expect("conv weight has a gradient");
    assert_eq!(g.dtype(), DType::F64);
    assert_eq!(g.dims(), [1, 3, 3, 3]);
}

#[test]
fn text_bag_averages_embeddings_over_real_tokens() {
    let device = cpu();
    let cfg = ModelConfig::TextBag {
        vocab: 5,
        dim: 3,
        hidden: 4,
        n_out: 2,
    };
    let m = Model::new(cfg, 0, &device).unwrap();
    let data = Dataset::new(
        "toks",
        Features::Tokens {
            ids: vec![1, 2, 4, 3],
            offsets: vec![0, 3, 3, 4],
            vocab_size: 5,
        },
        Targets::Classes {
            labels: vec![0, 1, 0],
            n_classes: 2,
        },
    )
    .unwrap();
    let x = m.input_batch(&data, &[0, 1, 2], &device).unwrap();
    let Input::Tokens { ids, mask } = x.clone() else {
        panic!("expected tokens")
    };
    assert_eq!(ids.dims(), [3, 3]);
    let mask: Vec<f32> = mask.into_data().try_into_vec().unwrap();
    assert_eq!(mask, vec![1., 1., 1., 0., 0., 0., 1., 0., 0.]);
    struct Grab(Vec<f32>);
    impl ForwardHook for Grab {
        fn param_layer(&mut self, p: &str, _: ParamLayerRef<'_>, _: &LayerInput, o: Act) -> Act {
            if p == "body.0" {
                self.0 = o.clone().flat().into_data().try_into_vec().unwrap();
            }
            o
        }
    }
    let mut g = Grab(vec![]);
    m.net.forward_hooked(x, Mode::Eval, &mut g);
    let e = m.params_flat(); // embedding table first: [5, 3]
    let row = |t: usize| &e[t * 3..t * 3 + 3];
    for k in 0..3 {
        let mean = (row(1)[k] + row(2)[k] + row(4)[k]) / 3.0;
        assert!((g.0[k] - mean).abs() < 1e-6);
        assert_eq!(g.0[3 + k], 0.0, "an empty text embeds to zero");
        assert!((g.0[6 + k] - row(3)[k]).abs() < 1e-7);
    }
}
