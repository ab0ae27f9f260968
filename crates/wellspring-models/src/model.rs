//! [`Model`]: a [`ModelConfig`] plus its [`Net`], with the flat-parameter view
//! the gradient engine works in.

use std::any::Any;

use burn::module::{Module, ParamId};
use burn::tensor::{DType, Device, FloatDType, Gradients, Tensor};
use wellspring_core::Dataset;

use crate::batch::Target;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::ParamLayerDesc;
use crate::net::{Input, Net};
use crate::track::params;
use crate::track::{AnyModel, Attributable, DynAttributable, ModelOutput, ParamTable, Tracker};

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
        Model {
            config: self.config.clone(),
            net: crate::track::cast_module(self.net.clone(), dtype),
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
    /// place in the flat vector: the net's [`ParamTable`], the same table the
    /// gradient engine reads for any [`crate::Attributable`] model.
    pub fn param_layers(&self) -> Vec<ParamLayerDesc> {
        ParamTable::of(&self.net).descs()
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
        crate::track::params_flat_of(self)
    }

    /// Overwrites every trainable parameter from a vector in the order of
    /// [`Model::params_flat`]. Parameter ids, dtype, device and gradient
    /// tracking are kept. Errors on a wrong length or a non-finite value.
    pub fn set_params_flat(&mut self, values: &[f32]) -> Result<()> {
        let mut setter = crate::track::flat_setter(self, values)?;
        self.net = params::map_params(self.net.clone(), &mut setter);
        Ok(())
    }
}

impl DynAttributable for Model {
    fn model_name(&self) -> String {
        self.config.name().to_string()
    }
    fn forward_tracked(&self, input: &Input, tracker: &mut Tracker<'_>) -> Result<ModelOutput> {
        Attributable::forward_tracked(&self.net, input, tracker)
    }
    fn input_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Input> {
        Model::input_batch(self, data, idx, device)
    }
    fn target_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Target> {
        Model::target_batch(self, data, idx, device)
    }
    fn check_dataset(&self, data: &Dataset) -> Result<()> {
        Model::check_dataset(self, data)
    }
    fn param_table(&self) -> ParamTable {
        ParamTable::of(&self.net)
    }
    fn for_each_param(&self, f: &mut dyn FnMut(ParamId, Tensor<1>)) {
        params::for_each_param(&self.net, f)
    }
    fn for_each_grad(&self, grads: &Gradients, f: &mut dyn FnMut(ParamId, Option<Tensor<1>>)) {
        params::for_each_grad(&self.net, grads, f)
    }
    fn map_params(&self, f: &mut dyn FnMut(ParamId, Tensor<1>) -> Option<Tensor<1>>) -> AnyModel {
        AnyModel::from(Model {
            config: self.config.clone(),
            net: params::map_params(self.net.clone(), f),
        })
    }
    fn fork(&self, device: &Device) -> AnyModel {
        AnyModel::from(self.to_device(device))
    }
    fn valid(&self) -> AnyModel {
        AnyModel::from(Model::valid(self))
    }
    fn trainable(&self, device: &Device) -> AnyModel {
        AnyModel::from(Model::trainable(self, device))
    }
    fn cast(&self, dtype: FloatDType) -> AnyModel {
        AnyModel::from(self.to_dtype(dtype))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
