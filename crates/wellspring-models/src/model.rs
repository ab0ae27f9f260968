//! [`Model`]: a [`ModelConfig`] plus its [`Net`], with the flat-parameter view
//! the gradient engine works in.

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::{BatchNorm2d, EmbeddingBag, Layer, ParamLayerDesc, ParamLayerRef};
use crate::net::Net;

/// What users hold: the architecture description and the network.
///
/// `save`/`load`, `evaluate` and `train` take a `Model`; the config travels
/// with the weights so a checkpoint is self-describing.
#[derive(Clone, Debug)]
pub struct Model {
    /// The architecture.
    pub config: ModelConfig,
    /// The network.
    pub net: Net,
}

/// Mutable access to one parameter layer (internal traversal).
pub(crate) enum ParamLayerMut<'a> {
    Linear(&'a mut Linear),
    Conv2d(&'a mut Conv2d),
    BatchNorm2d(&'a mut BatchNorm2d),
    EmbeddingBag(&'a mut EmbeddingBag),
}

impl Model {
    /// Builds the network `config` describes on `device`, every parameter drawn
    /// from `ChaCha8Rng(seed)` with PyTorch's default bounds (see [`crate::init`]
    /// module docs). Errors name the invalid config field.
    pub fn new(config: ModelConfig, seed: u64, device: &Device) -> Result<Model> {
        config.validate()?;
        let net = crate::init::build_net(&config, seed, device);
        Ok(Model { config, net })
    }

    /// Number of outputs (classes or regression targets).
    pub fn n_outputs(&self) -> usize {
        self.config.n_out()
    }

    /// Width of the penultimate features.
    pub fn feature_dim(&self) -> usize {
        self.config.feature_dim()
    }

    /// Float dtype of the parameters (`F32` unless converted with [`Model::to_dtype`]).
    pub fn dtype(&self) -> DType {
        self.net.head.weight.val().dtype()
    }

    /// Device the parameters live on.
    pub fn device(&self) -> Device {
        self.net.head.weight.val().device()
    }

    /// A copy with every parameter and buffer cast to `dtype`.
    ///
    /// burn's flex CPU backend computes in `F64` (matmul, conv, pooling, batch
    /// norm, autodiff), so the gradient engine can take finite differences in
    /// double precision; batches built by [`Model::input_batch`] follow the
    /// model's dtype.
    pub fn to_dtype(&self, dtype: FloatDType) -> Model {
        struct Cast(FloatDType);
        impl ModuleMapper for Cast {
            fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let dtype = self.0;
                p.map(|t| {
                    let grad = t.is_require_grad();
                    let c = t.cast(dtype).detach();
                    if grad { c.require_grad() } else { c }
                })
            }
        }
        Model {
            config: self.config.clone(),
            net: self.net.clone().map(&mut Cast(dtype)),
        }
    }

    /// A copy on `device` (a fork). Parameters keep their gradient tracking
    /// state: a model built on a plain device and moved to an autodiff device
    /// does not require gradients (use [`Model::trainable`] for that), which is
    /// what per-example gradient probes want.
    pub fn to_device(&self, device: &Device) -> Model {
        Model {
            config: self.config.clone(),
            net: self.net.clone().fork(device),
        }
    }

    /// A copy on `device.autodiff()` whose parameters all require gradients
    /// (what [`crate::Trainer`] trains; `loss.backward()` reaches every weight).
    pub fn trainable(&self, device: &Device) -> Model {
        Model {
            config: self.config.clone(),
            net: self.net.clone().fork(&device.clone().autodiff()).train(),
        }
    }

    /// A copy for inference: parameters without autodiff or gradient tracking.
    pub fn valid(&self) -> Model {
        Model {
            config: self.config.clone(),
            net: self.net.valid(),
        }
    }

    /// Parameter layers in canonical order (forward order, head last) with their
    /// place in the flat vector.
    pub fn param_layers(&self) -> Vec<ParamLayerDesc> {
        let mut out = Vec::new();
        let mut offset = 0;
        for_each_param_layer(&self.net, &mut |path, layer| {
            let weight_shape = layer.weight_shape();
            let bias = layer.bias_len();
            let len = weight_shape.iter().product::<usize>() + bias.unwrap_or(0);
            out.push(ParamLayerDesc {
                path: path.to_string(),
                kind: layer.kind(),
                weight_shape,
                has_bias: bias.is_some(),
                offset,
                len,
            });
            offset += len;
        });
        out
    }

    /// The parameter layers whose path equals one of `names` or lies under it
    /// (`"body.7"` selects `body.7.inner.0`, ...), in canonical order; offsets are
    /// those of the full flat vector. A name matching nothing is an error that
    /// lists the available paths.
    pub fn param_layers_matching(&self, names: &[&str]) -> Result<Vec<ParamLayerDesc>> {
        let all = self.param_layers();
        let under = |path: &str, name: &str| {
            path == name
                || (path.len() > name.len()
                    && path.starts_with(name)
                    && path.as_bytes()[name.len()] == b'.')
        };
        for name in names {
            if !all.iter().any(|d| under(&d.path, name)) {
                return Err(ModelError::UnknownLayer {
                    name: name.to_string(),
                    available: all
                        .iter()
                        .map(|d| d.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(all
            .into_iter()
            .filter(|d| names.iter().any(|n| under(&d.path, n)))
            .collect())
    }

    /// Number of trainable parameters (BatchNorm running statistics excluded).
    pub fn n_params(&self) -> usize {
        self.param_layers().iter().map(|d| d.len).sum()
    }

    /// The same model with every parameter's id derived from its path
    /// (FNV-1a of e.g. `body.0.weight`) instead of burn's random draw, so
    /// state keyed by parameter id (the optimizer's) saved in one process
    /// matches the model in another. Weights are unchanged.
    pub fn with_path_param_ids(mut self) -> Result<Model> {
        use burn::store::ModuleSnapshot;
        let mut tensors = self.net.collect(None, None, true);
        for t in &mut tensors {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in t.name.bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01B3);
            }
            t.param_id = Some(h);
        }
        let r = self.net.apply(tensors, None, None, true);
        crate::checkpoint::check_apply(
            std::path::Path::new("(in memory)"),
            &r,
            self.config.name(),
            &[],
        )?;
        Ok(self)
    }

    /// Errors unless every trainable parameter is finite, naming the first
    /// non-finite value's layer and position (a diverged training run).
    pub fn check_finite(&self) -> Result<()> {
        let flat = self.params_flat();
        let Some(p) = flat.iter().position(|v| !v.is_finite()) else {
            return Ok(());
        };
        let layer = self
            .param_layers()
            .into_iter()
            .find(|l| p >= l.offset && p < l.offset + l.len);
        Err(ModelError::Params {
            reason: format!(
                "{} model has a non-finite parameter {} (layer {}, flat position {p}); \
                 training diverged (lower the learning rate)",
                self.config.name(),
                flat[p],
                layer.map_or_else(|| "?".to_string(), |l| l.path),
            ),
        })
    }

    /// All trainable parameters as one vector, in the canonical order: the layers
    /// of [`Model::param_layers`], for each its weight then its bias, each in
    /// burn's row-major memory layout. Note burn's `Linear` weight is
    /// `[d_in, d_out]` (PyTorch's `nn.Linear.weight` is the transpose); conv
    /// weights are `[c_out, c_in, kh, kw]` as in PyTorch.
    pub fn params_flat(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.n_params());
        let mut push = |t: TensorData| {
            out.extend(
                t.convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("converted tensor data holds f32"),
            )
        };
        for_each_param_layer(&self.net, &mut |_, layer| match layer {
            ParamLayerRef::Linear(l) => {
                push(l.weight.val().into_data());
                if let Some(b) = &l.bias {
                    push(b.val().into_data());
                }
            }
            ParamLayerRef::Conv2d(c) => {
                push(c.weight.val().into_data());
                if let Some(b) = &c.bias {
                    push(b.val().into_data());
                }
            }
            ParamLayerRef::BatchNorm2d(b) => {
                push(b.weight.val().into_data());
                push(b.bias.val().into_data());
            }
            ParamLayerRef::EmbeddingBag(e) => push(e.weight.val().into_data()),
        });
        out
    }

    /// Overwrites every trainable parameter from a vector in the order of
    /// [`Model::params_flat`]. Parameter ids, dtype, device and gradient
    /// tracking are kept. Errors on a wrong length or a non-finite value.
    pub fn set_params_flat(&mut self, values: &[f32]) -> Result<()> {
        let n = self.n_params();
        if values.len() != n {
            return Err(ModelError::Params {
                reason: format!(
                    "expected {n} values for {} model, got {}",
                    self.config.name(),
                    values.len()
                ),
            });
        }
        if let Some(p) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::Params {
                reason: format!("non-finite value {} at position {p}", values[p]),
            });
        }
        let mut pos = 0usize;
        let mut take = |n: usize| {
            let s = &values[pos..pos + n];
            pos += n;
            s
        };
        for_each_param_layer_mut(&mut self.net, &mut |layer| match layer {
            ParamLayerMut::Linear(l) => {
                overwrite(&mut l.weight, &mut take);
                if let Some(b) = &mut l.bias {
                    overwrite(b, &mut take);
                }
            }
            ParamLayerMut::Conv2d(c) => {
                overwrite(&mut c.weight, &mut take);
                if let Some(b) = &mut c.bias {
                    overwrite(b, &mut take);
                }
            }
            ParamLayerMut::BatchNorm2d(b) => {
                overwrite(&mut b.weight, &mut take);
                overwrite(&mut b.bias, &mut take);
            }
            ParamLayerMut::EmbeddingBag(e) => overwrite(&mut e.weight, &mut take),
        });
        Ok(())
    }
}

fn overwrite<'v, const D: usize>(
    p: &mut Param<Tensor<D>>,
    take: &mut impl FnMut(usize) -> &'v [f32],
) {
    let shape = p.shape();
    let values = take(shape.num_elements()).to_vec();
    *p = p.clone().map(|old| {
        let grad = old.is_require_grad();
        let t = Tensor::from_data(
            TensorData::new(values, shape.clone()),
            (&old.device(), old.dtype()),
        );
        if grad { t.require_grad() } else { t }
    });
}

/// Visits every parameter layer of `net` in canonical order with its path.
pub(crate) fn for_each_param_layer(net: &Net, f: &mut dyn FnMut(&str, ParamLayerRef<'_>)) {
    fn walk(layers: &[Layer], prefix: &str, f: &mut dyn FnMut(&str, ParamLayerRef<'_>)) {
        for (i, layer) in layers.iter().enumerate() {
            let path = format!("{prefix}.{i}");
            match layer {
                Layer::Linear(l) => f(&path, ParamLayerRef::Linear(l)),
                Layer::Conv2d(c) => f(&path, ParamLayerRef::Conv2d(c)),
                Layer::BatchNorm2d(b) => f(&path, ParamLayerRef::BatchNorm2d(b)),
                Layer::EmbeddingBag(e) => f(&path, ParamLayerRef::EmbeddingBag(e)),
                Layer::Residual(r) => walk(&r.inner, &format!("{path}.inner"), f),
                Layer::Relu(_)
                | Layer::MaxPool2d(_)
                | Layer::GlobalMaxPool(_)
                | Layer::Flatten(_)
                | Layer::Dropout(_) => {}
            }
        }
    }
    walk(&net.body, "body", f);
    f("head", ParamLayerRef::Linear(&net.head));
}

pub(crate) fn for_each_param_layer_mut(net: &mut Net, f: &mut dyn FnMut(ParamLayerMut<'_>)) {
    fn walk(layers: &mut [Layer], f: &mut dyn FnMut(ParamLayerMut<'_>)) {
        for layer in layers.iter_mut() {
            match layer {
                Layer::Linear(l) => f(ParamLayerMut::Linear(l)),
                Layer::Conv2d(c) => f(ParamLayerMut::Conv2d(c)),
                Layer::BatchNorm2d(b) => f(ParamLayerMut::BatchNorm2d(b)),
                Layer::EmbeddingBag(e) => f(ParamLayerMut::EmbeddingBag(e)),
                Layer::Residual(r) => walk(&mut r.inner, f),
                Layer::Relu(_)
                | Layer::MaxPool2d(_)
                | Layer::GlobalMaxPool(_)
                | Layer::Flatten(_)
                | Layer::Dropout(_) => {}
            }
        }
    }
    walk(&mut net.body, f);
    f(ParamLayerMut::Linear(&mut net.head));
}
