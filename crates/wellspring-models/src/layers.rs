//! The layer vocabulary of [`crate::Net`]: a public enum the gradient engine can
//! `match` on, plus the few layers burn does not have in the form we need.
//!
//! Parameter layers are burn's [`Linear`] (weight `[d_in, d_out]`) and
//! [`Conv2d`] (weight `[c_out, c_in, k, k]`), and our own [`BatchNorm2d`] and
//! [`EmbeddingBag`]. Our BatchNorm keeps its running statistics in a
//! [`Buffer`], which deep-copies on `clone` (burn's `RunningState` is shared
//! between clones, so a checkpoint taken by cloning would keep changing).

use std::sync::{Arc, Mutex};

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
    Param, ParamId,
};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Embedding, LayerNorm, Linear, Relu};
use burn::tensor::{Device, Int, Tensor};

/// One layer of a [`crate::Net`] body.
///
/// Paths name layers the way PyTorch names modules: `body.3`, and inside a
/// residual block `body.3.inner.1`; the head is `head`.
#[derive(Module, Debug)]
pub enum Layer {
    /// Fully connected layer, `y = x W + b` with `W: [d_in, d_out]`.
    Linear(Linear),
    /// 2-D convolution, weight `[c_out, c_in, kh, kw]`.
    Conv2d(Conv2d),
    /// Batch normalisation over channels of an image activation.
    BatchNorm2d(BatchNorm2d),
    /// Rectified linear unit.
    Relu(Relu),
    /// Max pooling (kernel 2, stride 2 in every architecture here).
    MaxPool2d(MaxPool2d),
    /// Max over all spatial positions: `[b, c, h, w] -> [b, c]`.
    GlobalMaxPool(GlobalMaxPool),
    /// `[b, c, h, w] -> [b, c·h·w]` in row-major order.
    Flatten(Flatten),
    /// Inverted dropout with masks drawn from the caller's `ChaCha8Rng`.
    Dropout(DropoutLayer),
    /// Residual block: `out = x + inner(x)`.
    Residual(Residual),
    /// Mean of token embeddings over the (masked) sequence.
    EmbeddingBag(EmbeddingBag),
}

/// Global max pooling over the spatial dimensions.
#[derive(Module, Debug, Default)]
pub struct GlobalMaxPool;

/// Flattens an image activation into a flat one.
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// Inverted dropout: in training mode each unit is kept with probability
/// `1 - prob` and scaled by `1 / (1 - prob)`; the mask comes from the
/// [`crate::Mode::Train`] generator, never from burn's global device RNG.
#[derive(Module, Debug)]
pub struct DropoutLayer {
    /// Drop probability in `[0, 1)`.
    pub prob: f64,
}

/// Residual block, `out = x + inner(x)`.
#[derive(Module, Debug)]
pub struct Residual {
    /// The layers of the residual branch.
    pub inner: Vec<Layer>,
}

/// `EmbeddingBag(mode = "mean")`: `out_i = Σ_t mask_it · E[ids_it] / max(1, Σ_t mask_it)`.
#[derive(Module, Debug)]
pub struct EmbeddingBag {
    /// Embedding table `[vocab, dim]` (same layout as PyTorch).
    pub weight: Param<Tensor<2>>,
}

impl EmbeddingBag {
    /// `[b, T]` ids and mask → `[b, dim]` masked means.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let [b, len] = ids.dims();
        let weight = self.weight.val();
        let dim = weight.dims()[1];
        let flat = ids.reshape([b * len]);
        let emb = weight.select(0, flat).reshape([b, len, dim]);
        let counts = mask.clone().sum_dim(1).clamp_min(1.0); // [b, 1]
        let summed = (emb * mask.unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .reshape([b, dim]);
        summed / counts
    }
}

/// Batch normalisation over the channels of `[b, c, h, w]` activations
/// (Ioffe & Szegedy 2015), PyTorch semantics: training mode normalises with
/// the batch mean and biased variance and updates the running statistics with
/// `momentum` and the *unbiased* variance; eval mode uses the running statistics.
///
/// Fields are named like PyTorch's (`weight` = γ, `bias` = β), so checkpoints
/// and safetensors keys match `nn.BatchNorm2d` without renaming.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    /// Scale γ, `[c]`.
    pub weight: Param<Tensor<1>>,
    /// Shift β, `[c]`.
    pub bias: Param<Tensor<1>>,
    /// Running mean (a buffer, not a parameter).
    pub running_mean: Buffer,
    /// Running variance (a buffer, not a parameter).
    pub running_var: Buffer,
    /// Running-statistics momentum (PyTorch default 0.1).
    pub momentum: f64,
    /// Variance epsilon (PyTorch default 1e-5).
    pub epsilon: f64,
}

/// A non-trainable tensor that a forward pass may update (BatchNorm running
/// statistics). It is saved with the model, never optimised, and cloning it
/// makes an independent copy.
#[derive(Debug)]
pub struct Buffer {
    id: ParamId,
    value: Arc<Mutex<Tensor<1>>>,
}

impl Buffer {
    /// A buffer holding `value` (stored without autodiff).
    pub fn new(value: Tensor<1>) -> Self {
        Self::with_id(ParamId::new(), value)
    }

    fn with_id(id: ParamId, value: Tensor<1>) -> Self {
        Self {
            id,
            value: Arc::new(Mutex::new(value.detach().without_autodiff())),
        }
    }

    /// The current value.
    pub fn get(&self) -> Tensor<1> {
        self.value.lock().expect("buffer lock poisoned").clone()
    }

    /// Replaces the value (stored detached and without autodiff).
    pub fn set(&self, value: Tensor<1>) {
        *self.value.lock().expect("buffer lock poisoned") = value.detach().without_autodiff();
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            value: Arc::new(Mutex::new(self.get())),
        }
    }
}

impl Module for Buffer {
    fn collect_devices(&self, mut devices: Devices) -> Devices {
        let d = self.get().device();
        if !devices.contains(&d) {
            devices.push(d);
        }
        devices
    }

    fn fork(self, device: &Device) -> Self {
        self.to_device(device)
    }

    fn to_device(self, device: &Device) -> Self {
        Self::with_id(self.id, self.get().to_device(device))
    }

    fn train(self) -> Self {
        self
    }

    fn valid(&self) -> Self {
        self.clone()
    }

    fn materialize(self) -> Self {
        self
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        visitor.visit_float(&Param::initialized(self.id, self.get()));
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let mapped = mapper.map_float(Param::initialized(self.id, self.get()));
        let (id, value, _) = mapped.consume();
        Self::with_id(id, value)
    }
}

impl ModuleDisplayDefault for Buffer {
    fn content(&self, content: Content) -> Option<Content> {
        content.add_formatted(&"Buffer".to_string()).optional()
    }
}

impl ModuleDisplay for Buffer {}

/// Kinds of layers that own parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ParamLayerKind {
    /// [`Linear`]: weight `[d_in, d_out]` (burn layout; PyTorch stores the transpose), bias `[d_out]`.
    Linear,
    /// [`Conv2d`]: weight `[c_out, c_in, kh, kw]`, optional bias `[c_out]`.
    Conv2d,
    /// [`BatchNorm2d`]: weight γ `[c]`, bias β `[c]`.
    BatchNorm2d,
    /// [`EmbeddingBag`]: weight `[vocab, dim]`, no bias.
    EmbeddingBag,
    /// burn's [`Embedding`] (one vector per token): weight `[vocab, dim]`, no bias.
    Embedding,
    /// burn's [`LayerNorm`] over the last axis: weight γ `[d]`, optional bias β `[d]`.
    LayerNorm,
}

/// A borrowed parameter layer, handed to [`crate::ForwardHook::param_layer`].
#[derive(Clone, Copy, Debug)]
pub enum ParamLayerRef<'a> {
    /// A linear layer (body or head).
    Linear(&'a Linear),
    /// A convolution.
    Conv2d(&'a Conv2d),
    /// A batch-norm layer.
    BatchNorm2d(&'a BatchNorm2d),
    /// An embedding bag.
    EmbeddingBag(&'a EmbeddingBag),
    /// A token embedding.
    Embedding(&'a Embedding),
    /// A layer normalisation.
    LayerNorm(&'a LayerNorm),
}

impl ParamLayerRef<'_> {
    /// The kind of layer.
    pub fn kind(&self) -> ParamLayerKind {
        match self {
            ParamLayerRef::Linear(_) => ParamLayerKind::Linear,
            ParamLayerRef::Conv2d(_) => ParamLayerKind::Conv2d,
            ParamLayerRef::BatchNorm2d(_) => ParamLayerKind::BatchNorm2d,
            ParamLayerRef::EmbeddingBag(_) => ParamLayerKind::EmbeddingBag,
            ParamLayerRef::Embedding(_) => ParamLayerKind::Embedding,
            ParamLayerRef::LayerNorm(_) => ParamLayerKind::LayerNorm,
        }
    }

    /// Id of the layer's first parameter (weight, or γ): how a
    /// [`crate::Tracker`] recognises the layer.
    pub fn weight_id(&self) -> ParamId {
        match self {
            ParamLayerRef::Linear(l) => l.weight.id,
            ParamLayerRef::Conv2d(c) => c.weight.id,
            ParamLayerRef::BatchNorm2d(b) => b.weight.id,
            ParamLayerRef::EmbeddingBag(e) => e.weight.id,
            ParamLayerRef::Embedding(e) => e.weight.id,
            ParamLayerRef::LayerNorm(n) => n.gamma.id,
        }
    }

    /// Shape of the weight tensor, in burn's layout.
    pub fn weight_shape(&self) -> Vec<usize> {
        match self {
            ParamLayerRef::Linear(l) => l.weight.shape().as_slice().to_vec(),
            ParamLayerRef::Conv2d(c) => c.weight.shape().as_slice().to_vec(),
            ParamLayerRef::BatchNorm2d(b) => b.weight.shape().as_slice().to_vec(),
            ParamLayerRef::EmbeddingBag(e) => e.weight.shape().as_slice().to_vec(),
            ParamLayerRef::Embedding(e) => e.weight.shape().as_slice().to_vec(),
            ParamLayerRef::LayerNorm(n) => n.gamma.shape().as_slice().to_vec(),
        }
    }

    /// Length of the bias, if the layer has one.
    pub fn bias_len(&self) -> Option<usize> {
        match self {
            ParamLayerRef::Linear(l) => l.bias.as_ref().map(|b| b.shape().num_elements()),
            ParamLayerRef::Conv2d(c) => c.bias.as_ref().map(|b| b.shape().num_elements()),
            ParamLayerRef::BatchNorm2d(b) => Some(b.bias.shape().num_elements()),
            ParamLayerRef::EmbeddingBag(_) | ParamLayerRef::Embedding(_) => None,
            ParamLayerRef::LayerNorm(n) => n.beta.as_ref().map(|b| b.shape().num_elements()),
        }
    }
}

/// Description of one parameter layer and its place in the flat parameter vector
/// (see [`crate::Model::params_flat`] for the canonical order).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamLayerDesc {
    /// Path, e.g. `body.0`, `body.5.inner.1`, `head`.
    pub path: String,
    /// Layer kind.
    pub kind: ParamLayerKind,
    /// Weight shape in burn's layout (`Linear`: `[d_in, d_out]`).
    pub weight_shape: Vec<usize>,
    /// Whether a bias follows the weight in the flat vector.
    pub has_bias: bool,
    /// Offset of the weight's first element in the flat vector.
    pub offset: usize,
    /// Number of values (weight plus bias).
    pub len: usize,
}

impl ParamLayerDesc {
    /// Number of weight values.
    pub fn weight_len(&self) -> usize {
        self.weight_shape.iter().product()
    }

    /// Number of bias values (0 if none).
    pub fn bias_len(&self) -> usize {
        self.len - self.weight_len()
    }

    /// The range of this layer in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}
