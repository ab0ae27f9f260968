//! [`Attributable`]: the trait any burn module implements to be attributed,
//! its object-safe form [`DynAttributable`], and [`AnyModel`], the shared
//! handle every method, metric and selector above the gradient engine takes.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::{DType, Device, FloatDType, Gradients, Tensor, TensorData};
use wellspring_core::Dataset;

use crate::batch::{Target, default_input_batch, default_target_batch};
use crate::error::{ModelError, Result};
use crate::layers::ParamLayerDesc;
use crate::net::Input;
use crate::track::params::{self, ParamInfo, ParamTable};
use crate::track::tracker::Tracker;

/// Model outputs for a batch: logits `[b, c]` (classes or regression
/// outputs), or per-token logits `[b, T, vocab]` for a language model.
#[derive(Clone, Debug)]
pub enum Logits {
    /// `[b, c]`.
    Flat(Tensor<2>),
    /// `[b, T, vocab]`: position `t` predicts token `t + 1`.
    Seq(Tensor<3>),
}

impl Logits {
    /// Batch size.
    pub fn batch(&self) -> usize {
        match self {
            Logits::Flat(t) => t.dims()[0],
            Logits::Seq(t) => t.dims()[0],
        }
    }

    /// The `[b, c]` logits, or an error naming `who` for per-token logits.
    pub fn flat(self, who: &str) -> Result<Tensor<2>> {
        match self {
            Logits::Flat(t) => Ok(t),
            Logits::Seq(t) => Err(ModelError::Params {
                reason: format!(
                    "{who} needs [batch, classes] logits; the model returns per-token logits {:?}",
                    t.dims()
                ),
            }),
        }
    }
}

/// What [`Attributable::forward_tracked`] returns: the logits and, if the
/// model has them, penultimate features `[b, d]` (used by the similarity
/// methods: embeddings, l2, ESVM, RPS).
#[derive(Clone, Debug)]
pub struct ModelOutput {
    /// Logits (or regression outputs).
    pub logits: Logits,
    /// Penultimate features, if the model exposes them.
    pub features: Option<Tensor<2>>,
}

impl ModelOutput {
    /// Outputs `[b, c]` without features.
    pub fn flat(logits: Tensor<2>) -> Self {
        Self {
            logits: Logits::Flat(logits),
            features: None,
        }
    }

    /// Per-token logits `[b, T, vocab]` without features.
    pub fn seq(logits: Tensor<3>) -> Self {
        Self {
            logits: Logits::Seq(logits),
            features: None,
        }
    }

    /// With penultimate features `[b, d]`.
    pub fn with_features(mut self, features: Tensor<2>) -> Self {
        self.features = Some(features);
        self
    }
}

impl From<Tensor<2>> for ModelOutput {
    fn from(t: Tensor<2>) -> Self {
        ModelOutput::flat(t)
    }
}

impl From<Tensor<3>> for ModelOutput {
    fn from(t: Tensor<3>) -> Self {
        ModelOutput::seq(t)
    }
}

/// A burn module that can be attributed: its forward pass routes every
/// parameter layer through a [`Tracker`].
///
/// ```ignore
/// #[derive(Module, Debug)]
/// struct MyNet { fc1: Linear, fc2: Linear }
///
/// impl Attributable for MyNet {
///     fn forward_tracked(&self, input: &Input, t: &mut Tracker<'_>) -> Result<ModelOutput> {
///         let x = input.flat_tensor("MyNet")?;
///         let h = relu(t.linear(&self.fc1, x));
///         Ok(ModelOutput::flat(t.linear(&self.fc2, h.clone())).with_features(h))
///     }
/// }
/// let model = AnyModel::new(my_net);   // what every method takes
/// ```
///
/// The forward pass must be in evaluation mode (no dropout, no batch
/// statistics): examples in a batch must not interact, which is what lets
/// one batched backward give every example's gradient. Parameters outside
/// the tracked layer kinds (a raw `Param` field, an unknown layer type) get
/// no per-example gradients: selecting them is an error that names them
/// ([`crate::ParamTable::untracked`]); select the tracked layers only to
/// hold them fixed.
pub trait Attributable: Module + Sync + 'static {
    /// The forward pass, every parameter layer through `tracker`.
    fn forward_tracked(&self, input: &Input, tracker: &mut Tracker<'_>) -> Result<ModelOutput>;

    /// Short name for reports and errors (default: the type name).
    fn model_name(&self) -> String {
        let full = std::any::type_name::<Self>();
        full.rsplit("::").next().unwrap_or(full).to_string()
    }

    /// Inputs for rows `idx` of `data`, in the model's dtype. Default:
    /// dense `[c, h, w]` examples as images, other dense examples flat,
    /// tokens padded with a mask ([`default_input_batch`]).
    fn input_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Input> {
        default_input_batch(data, idx, device, module_dtype(self))
    }

    /// Targets for rows `idx` of `data` ([`default_target_batch`]).
    fn target_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Target> {
        default_target_batch(data, idx, device, module_dtype(self))
    }

    /// Checks once that `data` suits the model (default: accepts anything;
    /// the forward pass reports shape errors).
    fn check_dataset(&self, data: &Dataset) -> Result<()> {
        let _ = data;
        Ok(())
    }
}

/// Float dtype of a module's first parameter (`F32` for a module without any).
pub fn module_dtype<M: Module>(m: &M) -> DType {
    let mut dtype = None;
    params::for_each_param(m, &mut |_, v| {
        dtype.get_or_insert(v.dtype());
    });
    dtype.unwrap_or(DType::F32)
}

/// The object-safe form of [`Attributable`] (burn's `Module` has generic
/// methods), implemented for every `Attributable` wrapped by
/// [`AnyModel::new`] and for the zoo's [`crate::Model`]. Use it through
/// [`AnyModel`].
pub trait DynAttributable: Send + Sync + Debug + 'static {
    /// See [`Attributable::model_name`].
    fn model_name(&self) -> String;
    /// See [`Attributable::forward_tracked`].
    fn forward_tracked(&self, input: &Input, tracker: &mut Tracker<'_>) -> Result<ModelOutput>;
    /// See [`Attributable::input_batch`].
    fn input_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Input>;
    /// See [`Attributable::target_batch`].
    fn target_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Target>;
    /// See [`Attributable::check_dataset`].
    fn check_dataset(&self, data: &Dataset) -> Result<()>;
    /// Tracked layers and untracked parameters.
    fn param_table(&self) -> ParamTable;
    /// Every float parameter's id and flattened value.
    fn for_each_param(&self, f: &mut dyn FnMut(ParamId, Tensor<1>));
    /// Every float parameter's id and flattened gradient in `grads`.
    fn for_each_grad(&self, grads: &Gradients, f: &mut dyn FnMut(ParamId, Option<Tensor<1>>));
    /// A copy with parameters replaced where `f` returns a value.
    fn map_params(&self, f: &mut dyn FnMut(ParamId, Tensor<1>) -> Option<Tensor<1>>) -> AnyModel;
    /// A copy on `device` (burn's `fork`: gradient tracking kept).
    fn fork(&self, device: &Device) -> AnyModel;
    /// An inference copy (no autodiff, no gradient tracking).
    fn valid(&self) -> AnyModel;
    /// A copy on `device.autodiff()` whose parameters require gradients.
    fn trainable(&self, device: &Device) -> AnyModel;
    /// A copy with every float parameter cast to `dtype`.
    fn cast(&self, dtype: FloatDType) -> AnyModel;
    /// For downcasting to the concrete type ([`AnyModel::downcast_ref`]).
    fn as_any(&self) -> &dyn Any;
}

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

/// `module` with every float parameter cast to `dtype`.
pub(crate) fn cast_module<M: Module>(module: M, dtype: FloatDType) -> M {
    module.map(&mut Cast(dtype))
}

/// An [`Attributable`] behind [`DynAttributable`] (a wrapper rather than a
/// blanket impl, so the two traits' method names never clash on a user's type).
#[derive(Debug)]
struct Wrapped<M>(M);

impl<M: Attributable> DynAttributable for Wrapped<M> {
    fn model_name(&self) -> String {
        self.0.model_name()
    }
    fn forward_tracked(&self, input: &Input, tracker: &mut Tracker<'_>) -> Result<ModelOutput> {
        self.0.forward_tracked(input, tracker)
    }
    fn input_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Input> {
        self.0.input_batch(data, idx, device)
    }
    fn target_batch(&self, data: &Dataset, idx: &[usize], device: &Device) -> Result<Target> {
        self.0.target_batch(data, idx, device)
    }
    fn check_dataset(&self, data: &Dataset) -> Result<()> {
        self.0.check_dataset(data)
    }
    fn param_table(&self) -> ParamTable {
        ParamTable::of(&self.0)
    }
    fn for_each_param(&self, f: &mut dyn FnMut(ParamId, Tensor<1>)) {
        params::for_each_param(&self.0, f)
    }
    fn for_each_grad(&self, grads: &Gradients, f: &mut dyn FnMut(ParamId, Option<Tensor<1>>)) {
        params::for_each_grad(&self.0, grads, f)
    }
    fn map_params(&self, f: &mut dyn FnMut(ParamId, Tensor<1>) -> Option<Tensor<1>>) -> AnyModel {
        AnyModel::new(params::map_params(self.0.clone(), f))
    }
    fn fork(&self, device: &Device) -> AnyModel {
        AnyModel::new(self.0.clone().fork(device))
    }
    fn valid(&self) -> AnyModel {
        AnyModel::new(self.0.valid())
    }
    fn trainable(&self, device: &Device) -> AnyModel {
        AnyModel::new(self.0.clone().fork(&device.clone().autodiff()).train())
    }
    fn cast(&self, dtype: FloatDType) -> AnyModel {
        AnyModel::new(cast_module(self.0.clone(), dtype))
    }
    fn as_any(&self) -> &dyn Any {
        &self.0
    }
}

/// A shared handle to an attributable model (the zoo's [`crate::Model`] or
/// any [`Attributable`] burn module). Cheap to clone.
#[derive(Clone, Debug)]
pub struct AnyModel(Arc<dyn DynAttributable>);

impl std::ops::Deref for AnyModel {
    type Target = dyn DynAttributable;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl From<crate::Model> for AnyModel {
    fn from(m: crate::Model) -> Self {
        AnyModel(Arc::new(m))
    }
}

impl From<&AnyModel> for AnyModel {
    fn from(m: &AnyModel) -> Self {
        m.clone()
    }
}

impl From<&crate::Model> for AnyModel {
    fn from(m: &crate::Model) -> Self {
        AnyModel(Arc::new(m.clone()))
    }
}

impl AnyModel {
    /// Wraps an attributable burn module.
    pub fn new<M: Attributable>(model: M) -> Self {
        AnyModel(Arc::new(Wrapped(model)))
    }

    /// Wraps any [`DynAttributable`].
    pub fn from_dyn(model: Arc<dyn DynAttributable>) -> Self {
        AnyModel(model)
    }

    /// The concrete model, if it is an `M`.
    pub fn downcast_ref<M: 'static>(&self) -> Option<&M> {
        self.0.as_any().downcast_ref::<M>()
    }

    /// Tracked parameter layers in canonical order, with their place in the
    /// flat parameter vector.
    pub fn param_layers(&self) -> Vec<ParamLayerDesc> {
        self.param_table().descs()
    }

    /// Parameters outside tracked layers.
    pub fn untracked_params(&self) -> Vec<ParamInfo> {
        self.param_table().untracked
    }

    /// Number of parameters in tracked layers.
    pub fn n_params(&self) -> usize {
        self.param_table().n_params()
    }

    /// Float dtype of the parameters.
    pub fn dtype(&self) -> DType {
        let mut dtype = None;
        self.for_each_param(&mut |_, v| {
            dtype.get_or_insert(v.dtype());
        });
        dtype.unwrap_or(DType::F32)
    }

    /// Device of the parameters (the default device for a model without any).
    pub fn device(&self) -> Device {
        let mut device = None;
        self.for_each_param(&mut |_, v| {
            device.get_or_insert(v.device());
        });
        device.unwrap_or_default()
    }

    /// The tracked layers' parameters as one vector in canonical order
    /// (per layer: weight then bias, burn's row-major layout).
    pub fn params_flat(&self) -> Vec<f32> {
        params_flat_of(self.0.as_ref())
    }

    /// A copy with the tracked layers' parameters set from `values` (order of
    /// [`AnyModel::params_flat`]). Errors on a wrong length or a non-finite value.
    pub fn with_params_flat(&self, values: &[f32]) -> Result<AnyModel> {
        let mut setter = flat_setter(self.0.as_ref(), values)?;
        Ok(self.map_params(&mut setter))
    }

    /// The forward pass with a passive tracker.
    pub fn forward(&self, input: &Input) -> Result<ModelOutput> {
        let mut t = Tracker::passive();
        let out = self.forward_tracked(input, &mut t)?;
        t.finish()?;
        Ok(out)
    }

    /// Errors unless `other` has the same tracked layers (paths, kinds,
    /// shapes) as this model; `what` names `other` in the message
    /// (`"checkpoint 3"`, `"ensemble model 2"`).
    pub fn check_same_architecture(&self, other: &AnyModel, what: &str) -> Result<()> {
        let (want, got) = (self.param_layers(), other.param_layers());
        let describe = |l: Option<&ParamLayerDesc>| match l {
            None => "no layer".to_string(),
            Some(l) => format!(
                "{} {:?} {:?}{}",
                l.path,
                l.kind,
                l.weight_shape,
                if l.has_bias { " + bias" } else { "" }
            ),
        };
        for i in 0..want.len().max(got.len()) {
            let (w, g) = (want.get(i), got.get(i));
            let same = match (w, g) {
                (Some(w), Some(g)) => {
                    w.path == g.path
                        && w.kind == g.kind
                        && w.weight_shape == g.weight_shape
                        && w.has_bias == g.has_bias
                }
                _ => false,
            };
            if !same {
                return Err(ModelError::Params {
                    reason: format!(
                        "{what} does not have the model's architecture: its parameter layer {i} is {}, the model's is {}",
                        describe(g),
                        describe(w)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Values of the parameters `ids` of `model`, in the order asked.
pub(crate) fn values_of(model: &dyn DynAttributable, ids: &[ParamId]) -> Vec<Option<Tensor<1>>> {
    let want: HashMap<ParamId, usize> = ids.iter().enumerate().map(|(k, &id)| (id, k)).collect();
    let mut out: Vec<Option<Tensor<1>>> = vec![None; ids.len()];
    model.for_each_param(&mut |id, v| {
        if let Some(&k) = want.get(&id) {
            out[k] = Some(v);
        }
    });
    out
}

/// The tracked layers' parameters of `model` as one f32 vector in canonical order.
pub(crate) fn params_flat_of(model: &dyn DynAttributable) -> Vec<f32> {
    let table = model.param_table();
    let ids: Vec<ParamId> = table.layers.iter().flat_map(|l| l.ids.clone()).collect();
    let mut out = Vec::with_capacity(table.n_params());
    for v in values_of(model, &ids).into_iter().flatten() {
        out.extend(
            v.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("converted tensor data holds f32"),
        );
    }
    out
}

/// A parameter map (for [`DynAttributable::map_params`]) that writes
/// `values` (canonical flat order) into the tracked layers of `model`.
/// Errors on a wrong length or a non-finite value.
pub(crate) fn flat_setter<'v>(
    model: &dyn DynAttributable,
    values: &'v [f32],
) -> Result<impl FnMut(ParamId, Tensor<1>) -> Option<Tensor<1>> + 'v> {
    let table = model.param_table();
    let n = table.n_params();
    if values.len() != n {
        return Err(ModelError::Params {
            reason: format!(
                "expected {n} values for the {} model, got {}",
                model.model_name(),
                values.len()
            ),
        });
    }
    if let Some(p) = values.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::Params {
            reason: format!("non-finite value {} at position {p}", values[p]),
        });
    }
    let mut slices = HashMap::new();
    let mut pos = 0usize;
    for l in &table.layers {
        let w = l.desc.weight_len();
        slices.insert(l.ids[0], pos..pos + w);
        if let Some(&b) = l.ids.get(1) {
            slices.insert(b, pos + w..pos + l.desc.len);
        }
        pos += l.desc.len;
    }
    Ok(move |id: ParamId, old: Tensor<1>| {
        slices.get(&id).map(|r| {
            Tensor::<1>::from_data(
                TensorData::new(values[r.clone()].to_vec(), [r.len()]),
                (&old.device(), old.dtype()),
            )
        })
    })
}
