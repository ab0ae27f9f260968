//! [`Tracker`]: what a model's forward pass routes its parameter layers
//! through, so the gradient engine can record each layer's input and attach a
//! probe to its output.

use std::collections::HashMap;

use burn::module::ParamId;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Int, Tensor};

use crate::error::ModelError;
use crate::layers::{BatchNorm2d, EmbeddingBag, ParamLayerRef};
use crate::net::{Act, ForwardHook, Input};

/// The path of every tracked layer of a model, by the id of its first
/// parameter (weight or γ). Built from [`crate::ParamTable`].
#[derive(Clone, Debug, Default)]
pub struct LayerNames {
    by_id: HashMap<ParamId, String>,
}

impl LayerNames {
    /// Names from `(first parameter id, layer path)` pairs.
    pub fn new(pairs: impl IntoIterator<Item = (ParamId, String)>) -> Self {
        Self {
            by_id: pairs.into_iter().collect(),
        }
    }

    /// The path of the layer whose first parameter has id `id`.
    pub fn path(&self, id: ParamId) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// Number of named layers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no layer is named.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

struct Probing<'a> {
    hook: &'a mut dyn ForwardHook,
    names: &'a LayerNames,
}

/// Routes a forward pass's parameter layers: `tracker.linear(&self.fc, x)`
/// instead of `self.fc.forward(x)`.
///
/// A *passive* tracker ([`Tracker::passive`], what training and inference
/// use) only calls the layer. A *probing* tracker (built by the gradient
/// engine) also hands each layer's input and output to a [`ForwardHook`],
/// which records the input `a` and adds a zero-valued probe to the output
/// whose gradient is each example's backprop error `δ`; per-example
/// gradients then follow without per-example backward passes (the rank-1
/// trick for flat inputs, `Σ_t a_t δ_tᵀ` for sequences).
///
/// | method | layer | input → output |
/// | --- | --- | --- |
/// | [`Tracker::linear`] | burn `Linear` | `[b, d_in]` → `[b, d_out]`, or `[b, …, d_in]` → `[b, …, d_out]` (positions folded into `T`) |
/// | [`Tracker::conv2d`] | burn `Conv2d` (groups = 1) | `[b, c, h, w]` → `[b, c', h', w']` |
/// | [`Tracker::embedding`] | burn `Embedding` | ids `[b, T]` → `[b, T, dim]` |
/// | [`Tracker::layer_norm`] | burn `LayerNorm` | `[b, …, d]` → same |
/// | [`Tracker::batch_norm2d`] | [`BatchNorm2d`] (eval statistics) | `[b, c, h, w]` → same |
/// | [`Tracker::embedding_bag`] | [`EmbeddingBag`] | ids + mask `[b, T]` → `[b, dim]` |
///
/// Every tracked layer must be applied at most once per forward pass
/// (weight sharing is reported as an error by the engine), and the batch
/// axis must come first with examples independent of each other (no batch
/// statistics in evaluation mode).
pub struct Tracker<'a> {
    probing: Option<Probing<'a>>,
    errors: Vec<ModelError>,
}

impl std::fmt::Debug for Tracker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("probing", &self.probing.is_some())
            .field("errors", &self.errors)
            .finish()
    }
}

impl Tracker<'static> {
    /// A tracker that only calls the layers (training, inference).
    pub fn passive() -> Self {
        Tracker {
            probing: None,
            errors: Vec::new(),
        }
    }
}

impl<'a> Tracker<'a> {
    /// A tracker that hands every named layer to `hook`.
    pub fn probing(hook: &'a mut dyn ForwardHook, names: &'a LayerNames) -> Self {
        Tracker {
            probing: Some(Probing { hook, names }),
            errors: Vec::new(),
        }
    }

    /// Whether layers are handed to a hook.
    pub fn is_probing(&self) -> bool {
        self.probing.is_some()
    }

    /// The first error recorded while routing layers (a tensor of the wrong
    /// rank), if any. Call after the forward pass.
    pub fn finish(&mut self) -> Result<(), ModelError> {
        match self.errors.drain(..).next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn hook(&mut self, layer: ParamLayerRef<'_>, input: &Input, output: Act) -> Act {
        match &mut self.probing {
            None => output,
            Some(p) => match p.names.path(layer.weight_id()) {
                Some(path) => p.hook.param_layer(path, layer, input, output),
                None => output,
            },
        }
    }

    /// `layer.forward(x)` for `x` of shape `[b, d_in]` or `[b, …, d_in]`.
    pub fn linear<const D: usize>(&mut self, layer: &Linear, x: Tensor<D>) -> Tensor<D> {
        if self.probing.is_none() {
            return layer.forward(x);
        }
        let y = layer.forward(x.clone());
        // Flat inputs keep their tensors (no reshape nodes in the graph).
        if let (Ok(x2), Ok(y2)) = (same_rank::<D, 2>(x.clone()), same_rank::<D, 2>(y.clone())) {
            let act = self.hook(
                ParamLayerRef::Linear(layer),
                &Input::Flat(x2),
                Act::Flat(y2),
            );
            return same_rank::<2, D>(act.flat()).unwrap_or(y);
        }
        if D < 2 {
            self.errors.push(ModelError::Params {
                reason: format!(
                    "a tracked Linear layer got a {D}-D input; the first axis must be the batch"
                ),
            });
            return y;
        }
        let out_dims = y.dims();
        let dims = x.dims();
        let b = dims[0];
        let t: usize = dims[1..D - 1].iter().product();
        let input = Input::Seq(x.reshape([b, t, dims[D - 1]]));
        let act = self.hook(
            ParamLayerRef::Linear(layer),
            &input,
            Act::Seq(y.reshape([b, t, out_dims[D - 1]])),
        );
        act.seq().reshape(out_dims)
    }

    /// `layer.forward(x)` for images `[b, c, h, w]`.
    pub fn conv2d(&mut self, layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        if self.probing.is_none() {
            return layer.forward(x);
        }
        let y = layer.forward(x.clone());
        self.hook(
            ParamLayerRef::Conv2d(layer),
            &Input::Image(x),
            Act::Image(y),
        )
        .image()
    }

    /// `layer.forward(ids)`: one embedding vector per token, `[b, T] → [b, T, dim]`.
    pub fn embedding(&mut self, layer: &Embedding, ids: Tensor<2, Int>) -> Tensor<3> {
        if self.probing.is_none() {
            return layer.forward(ids);
        }
        let y = layer.forward(ids.clone());
        self.hook(
            ParamLayerRef::Embedding(layer),
            &Input::Ids(ids),
            Act::Seq(y),
        )
        .seq()
    }

    /// `layer.forward(x)`: normalisation over the last axis, for `[b, d]` or `[b, …, d]`.
    pub fn layer_norm<const D: usize>(&mut self, layer: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
        if self.probing.is_none() {
            return layer.forward(x);
        }
        let y = layer.forward(x.clone());
        if D < 2 {
            self.errors.push(ModelError::Params {
                reason: format!(
                    "a tracked LayerNorm got a {D}-D input; the first axis must be the batch"
                ),
            });
            return y;
        }
        let dims = x.dims();
        let (b, d) = (dims[0], dims[D - 1]);
        if let (Ok(x2), Ok(y2)) = (same_rank::<D, 2>(x.clone()), same_rank::<D, 2>(y.clone())) {
            let act = self.hook(
                ParamLayerRef::LayerNorm(layer),
                &Input::Flat(x2),
                Act::Flat(y2),
            );
            return same_rank::<2, D>(act.flat()).unwrap_or(y);
        }
        let t: usize = dims[1..D - 1].iter().product();
        let input = Input::Seq(x.reshape([b, t, d]));
        let act = self.hook(
            ParamLayerRef::LayerNorm(layer),
            &input,
            Act::Seq(y.reshape([b, t, d])),
        );
        act.seq().reshape(dims)
    }

    /// Batch normalisation with its running statistics (evaluation mode);
    /// `y` is the layer's output computed by the caller (which knows the mode).
    pub fn batch_norm2d(&mut self, layer: &BatchNorm2d, x: Tensor<4>, y: Tensor<4>) -> Tensor<4> {
        if self.probing.is_none() {
            return y;
        }
        self.hook(
            ParamLayerRef::BatchNorm2d(layer),
            &Input::Image(x),
            Act::Image(y),
        )
        .image()
    }

    /// Mean embedding bag over the masked tokens, `[b, T] → [b, dim]`.
    pub fn embedding_bag(
        &mut self,
        layer: &EmbeddingBag,
        ids: Tensor<2, Int>,
        mask: Tensor<2>,
    ) -> Tensor<2> {
        let y = layer.forward(ids.clone(), mask.clone());
        if self.probing.is_none() {
            return y;
        }
        self.hook(
            ParamLayerRef::EmbeddingBag(layer),
            &Input::Tokens { ids, mask },
            Act::Flat(y),
        )
        .flat()
    }

    /// Hands an already computed layer output to the hook (for layers whose
    /// forward the caller runs itself, e.g. the zoo's training-mode paths).
    pub fn observe(&mut self, layer: ParamLayerRef<'_>, input: &Input, output: Act) -> Act {
        self.hook(layer, input, output)
    }
}

/// `t` as a `Tensor<E>` when `D == E` (the same type), else `Err(t)`:
/// lets the rank-generic layer methods hand flat tensors to the hook
/// without reshape nodes.
// The tensor goes back by value on a mismatch; boxing it would allocate per call.
#[allow(clippy::result_large_err)]
fn same_rank<const D: usize, const E: usize>(t: Tensor<D>) -> Result<Tensor<E>, Tensor<D>> {
    let boxed: Box<dyn std::any::Any> = Box::new(t);
    match boxed.downcast::<Tensor<E>>() {
        Ok(e) => Ok(*e),
        Err(b) => Err(*b
            .downcast::<Tensor<D>>()
            .expect("the box holds the tensor it was given")),
    }
}
