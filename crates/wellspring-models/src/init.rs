//! Building a [`Net`] from a [`ModelConfig`], with every parameter drawn from a
//! `ChaCha8Rng` seeded by the caller.
//!
//! burn's own initialisers draw from the device RNG, which is global: two
//! models built on parallel threads would interleave draws and training would
//! stop being reproducible. Here each model owns its stream.
//!
//! Initial values follow PyTorch's defaults:
//! - `Linear(d_in, d_out)` and `Conv2d`: weight and bias `U(-b, b)` with
//!   `b = 1/sqrt(fan_in)` (`kaiming_uniform_(a = sqrt(5))`), `fan_in = d_in` or
//!   `c_in · kh · kw`;
//! - `BatchNorm2d`: γ = 1, β = 0, running mean 0, running variance 1;
//! - `EmbeddingBag`: `N(0, 1)`.
//!
//! Draws happen layer by layer in forward order, weight before bias, each in
//! burn's row-major memory layout.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use wellspring_core::ChaCha8Rng;

use crate::config::ModelConfig;
use crate::layers::{
    BatchNorm2d, Buffer, DropoutLayer, EmbeddingBag, Flatten, GlobalMaxPool, Layer, Residual,
};
use crate::net::Net;

/// Hidden width of FiMO's tabular MLP (Appendix D.2).
pub(crate) const FIMO_HIDDEN: usize = 128;

struct Init<'a> {
    rng: ChaCha8Rng,
    device: &'a Device,
}

impl Init<'_> {
    fn uniform<const D: usize>(&mut self, shape: [usize; D], bound: f32) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| (2.0 * self.rng.random::<f32>() - 1.0) * bound)
            .collect();
        Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), self.device))
    }

    fn normal<const D: usize>(&mut self, shape: [usize; D]) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            // Box–Muller: two uniforms in (0, 1] give two standard normals.
            let u1 = 1.0 - self.rng.random::<f64>();
            let u2 = self.rng.random::<f64>();
            let r = (-2.0 * u1.ln()).sqrt();
            let t = 2.0 * std::f64::consts::PI * u2;
            v.push((r * t.cos()) as f32);
            if v.len() < n {
                v.push((r * t.sin()) as f32);
            }
        }
        Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), self.device))
    }

    fn constant(&self, c: usize, value: f32) -> Tensor<1> {
        Tensor::from_data(TensorData::new(vec![value; c], [c]), self.device)
    }

    fn linear(&mut self, d_in: usize, d_out: usize) -> Linear {
        let b = 1.0 / (d_in as f32).sqrt();
        let weight = self.uniform([d_in, d_out], b);
        let bias = Some(self.uniform([d_out], b));
        Linear { weight, bias }
    }

    fn conv3x3(&mut self, c_in: usize, c_out: usize, bias: bool) -> Conv2d {
        let b = 1.0 / ((c_in * 9) as f32).sqrt();
        let weight = self.uniform([c_out, c_in, 3, 3], b);
        let bias = bias.then(|| self.uniform([c_out], b));
        Conv2d {
            weight,
            bias,
            stride: [1, 1],
            kernel_size: [3, 3],
            dilation: [1, 1],
            groups: 1,
            padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
        }
    }

    fn batch_norm(&mut self, c: usize) -> BatchNorm2d {
        BatchNorm2d {
            weight: Param::from_tensor(self.constant(c, 1.0)),
            bias: Param::from_tensor(self.constant(c, 0.0)),
            running_mean: Buffer::new(self.constant(c, 0.0)),
            running_var: Buffer::new(self.constant(c, 1.0)),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// `conv3x3 (no bias) - BatchNorm - ReLU`, the ResNet-9 unit.
    fn conv_bn(&mut self, c_in: usize, c_out: usize, out: &mut Vec<Layer>) {
        out.push(Layer::Conv2d(self.conv3x3(c_in, c_out, false)));
        out.push(Layer::BatchNorm2d(self.batch_norm(c_out)));
        out.push(Layer::Relu(Relu::new()));
    }
}

fn max_pool2() -> Layer {
    Layer::MaxPool2d(MaxPool2d {
        stride: [2, 2],
        kernel_size: [2, 2],
        padding: PaddingConfig2d::Valid,
        dilation: [1, 1],
        ceil_mode: false,
    })
}

/// Builds the network `config` describes, drawing parameters from `ChaCha8Rng(seed)`.
/// The config must already be validated.
pub(crate) fn build_net(config: &ModelConfig, seed: u64, device: &Device) -> Net {
    let mut init = Init {
        rng: wellspring_core::rng(seed),
        device,
    };
    let mut body = Vec::new();
    let head = match config {
        ModelConfig::LogReg { d_in, n_out } => init.linear(*d_in, *n_out),
        ModelConfig::Mlp {
            d_in,
            hidden,
            n_out,
            dropout,
        } => {
            let mut prev = *d_in;
            for &h in hidden {
                body.push(Layer::Linear(init.linear(prev, h)));
                body.push(Layer::Relu(Relu::new()));
                if *dropout > 0.0 {
                    body.push(Layer::Dropout(DropoutLayer { prob: *dropout }));
                }
                prev = h;
            }
            init.linear(prev, *n_out)
        }
        ModelConfig::FimoMlp { d_in, n_out } => {
            body.push(Layer::Linear(init.linear(*d_in, FIMO_HIDDEN)));
            body.push(Layer::Relu(Relu::new()));
            body.push(Layer::Linear(init.linear(FIMO_HIDDEN, FIMO_HIDDEN)));
            body.push(Layer::Relu(Relu::new()));
            init.linear(FIMO_HIDDEN, *n_out)
        }
        ModelConfig::Cnn {
            in_channels,
            side,
            channels,
            fc,
            n_out,
        } => {
            let mut prev = *in_channels;
            let mut s = *side;
            for &c in channels {
                body.push(Layer::Conv2d(init.conv3x3(prev, c, true)));
                body.push(Layer::Relu(Relu::new()));
                body.push(max_pool2());
                prev = c;
                s /= 2;
            }
            body.push(Layer::Flatten(Flatten));
            body.push(Layer::Linear(init.linear(prev * s * s, *fc)));
            body.push(Layer::Relu(Relu::new()));
            init.linear(*fc, *n_out)
        }
        ModelConfig::ResNet9 {
            in_channels,
            n_out,
            width,
        } => {
            let w = *width;
            init.conv_bn(*in_channels, w, &mut body);
            init.conv_bn(w, 2 * w, &mut body);
            body.push(max_pool2());
            let mut inner = Vec::new();
            init.conv_bn(2 * w, 2 * w, &mut inner);
            init.conv_bn(2 * w, 2 * w, &mut inner);
            body.push(Layer::Residual(Residual { inner }));
            init.conv_bn(2 * w, 4 * w, &mut body);
            body.push(max_pool2());
            init.conv_bn(4 * w, 8 * w, &mut body);
            body.push(max_pool2());
            let mut inner = Vec::new();
            init.conv_bn(8 * w, 8 * w, &mut inner);
            init.conv_bn(8 * w, 8 * w, &mut inner);
            body.push(Layer::Residual(Residual { inner }));
            body.push(Layer::GlobalMaxPool(GlobalMaxPool));
            init.linear(8 * w, *n_out)
        }
        ModelConfig::TextBag {
            vocab,
            dim,
            hidden,
            n_out,
        } => {
            body.push(Layer::EmbeddingBag(EmbeddingBag {
                weight: init.normal([*vocab, *dim]),
            }));
            body.push(Layer::Linear(init.linear(*dim, *hidden)));
            body.push(Layer::Relu(Relu::new()));
            init.linear(*hidden, *n_out)
        }
    };
    Net { body, head }
}

/// `module` with every tracked layer's parameters redrawn from
/// `ChaCha8Rng(seed)` with PyTorch's defaults (the rules above, plus burn's
/// `Embedding` `N(0, 1)` and `LayerNorm` γ = 1, β = 0), layer by layer in
/// declaration order, weight before bias. Parameters outside tracked layers
/// keep their values. Gives any [`crate::Attributable`] module a seeded,
/// thread-independent initialisation (burn's initialisers draw from the
/// global device RNG).
pub fn reinit_seeded<M: burn::module::Module>(module: M, seed: u64) -> M {
    use crate::layers::ParamLayerKind as K;
    let table = crate::track::ParamTable::of(&module);
    let mut init = Init {
        rng: wellspring_core::rng(seed),
        device: &Device::default(),
    };
    let mut values: std::collections::HashMap<burn::module::ParamId, Vec<f32>> =
        std::collections::HashMap::new();
    let flat = |p: Param<Tensor<1>>| -> Vec<f32> {
        p.val()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 data")
    };
    for layer in &table.layers {
        let d = &layer.desc;
        let (wn, bn) = (d.weight_len(), d.bias_len());
        let (w, b): (Vec<f32>, Vec<f32>) = match d.kind {
            K::Linear | K::Conv2d => {
                let fan_in = match d.kind {
                    K::Linear => d.weight_shape[0],
                    _ => d.weight_shape[1..].iter().product(),
                };
                let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
                (
                    flat(init.uniform([wn], bound)),
                    flat(init.uniform([bn], bound)),
                )
            }
            K::Embedding | K::EmbeddingBag => (flat(init.normal([wn])), Vec::new()),
            K::LayerNorm | K::BatchNorm2d => (vec![1.0; wn], vec![0.0; bn]),
        };
        values.insert(layer.ids[0], w);
        if let Some(&id) = layer.ids.get(1) {
            values.insert(id, b);
        }
    }
    crate::track::params::map_params(module, &mut |id, old| {
        values.get(&id).map(|v| {
            Tensor::<1>::from_data(
                TensorData::new(v.clone(), [v.len()]),
                (&old.device(), old.dtype()),
            )
        })
    })
}
