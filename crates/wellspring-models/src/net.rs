//! [`Net`] and its forward pass, with a [`ForwardHook`] at every parameter layer.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngExt;
use wellspring_core::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::layers::{BatchNorm2d, Layer, ParamLayerRef};
use crate::track::{Attributable, ModelOutput, ParamTable, Tracker};

/// The network: `features = body(x)`, `logits = head(features)`.
#[derive(Module, Debug)]
pub struct Net {
    /// Layers up to the penultimate features.
    pub body: Vec<Layer>,
    /// Final linear layer (logits or regression outputs).
    pub head: Linear,
}

/// A batch of inputs, built from a [`wellspring_core::Dataset`] by
/// [`crate::Model::input_batch`].
// Tensors are fixed-size handles; the token variant holds two of them.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Input {
    /// Flat features `[batch, d]`.
    Flat(Tensor<2>),
    /// Images `[batch, channels, height, width]`.
    Image(Tensor<4>),
    /// Token ids `[batch, len]` padded with 0, and a mask `[batch, len]` that is
    /// 1 for real tokens and 0 for padding.
    Tokens {
        /// Padded token ids.
        ids: Tensor<2, Int>,
        /// 1 = token, 0 = padding.
        mask: Tensor<2>,
    },
    /// A sequence of vectors `[batch, positions, d]` (what a tracked layer
    /// applied per position receives).
    Seq(Tensor<3>),
    /// Token ids `[batch, positions]` (what a tracked embedding receives).
    Ids(Tensor<2, Int>),
}

impl Input {
    /// Batch size.
    pub fn batch(&self) -> usize {
        match self {
            Input::Flat(t) => t.dims()[0],
            Input::Image(t) => t.dims()[0],
            Input::Tokens { ids, .. } | Input::Ids(ids) => ids.dims()[0],
            Input::Seq(t) => t.dims()[0],
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Input::Flat(_) => "flat features [batch, d]",
            Input::Image(_) => "images [batch, c, h, w]",
            Input::Tokens { .. } => "token ids with a mask",
            Input::Seq(_) => "a sequence [batch, positions, d]",
            Input::Ids(_) => "token ids",
        }
    }

    fn wrong(&self, model: &str, want: &str) -> ModelError {
        ModelError::Params {
            reason: format!("{model} takes {want}, got {}", self.kind()),
        }
    }

    /// The flat features `[batch, d]`, or an error naming `model`.
    pub fn flat_tensor(&self, model: &str) -> Result<Tensor<2>> {
        match self {
            Input::Flat(t) => Ok(t.clone()),
            _ => Err(self.wrong(model, "flat features [batch, d]")),
        }
    }

    /// The images `[batch, c, h, w]`, or an error naming `model`.
    pub fn image_tensor(&self, model: &str) -> Result<Tensor<4>> {
        match self {
            Input::Image(t) => Ok(t.clone()),
            _ => Err(self.wrong(model, "images [batch, c, h, w]")),
        }
    }

    /// The padded token ids and their mask, or an error naming `model`.
    pub fn token_tensors(&self, model: &str) -> Result<(Tensor<2, Int>, Tensor<2>)> {
        match self {
            Input::Tokens { ids, mask } => Ok((ids.clone(), mask.clone())),
            _ => Err(self.wrong(model, "token ids with a mask")),
        }
    }
}

/// What a parameter layer received, as passed to [`ForwardHook::param_layer`]
/// (flat or image activations, or tokens for an [`crate::EmbeddingBag`]).
pub type LayerInput = Input;

/// An activation between layers (and a parameter layer's output as handed
/// to a [`ForwardHook`]).
#[derive(Clone, Debug)]
pub enum Act {
    /// `[batch, d]`.
    Flat(Tensor<2>),
    /// `[batch, c, h, w]`.
    Image(Tensor<4>),
    /// `[batch, positions, d]`.
    Seq(Tensor<3>),
}

impl Act {
    /// The activation as a layer input.
    pub fn into_input(self) -> Input {
        match self {
            Act::Flat(t) => Input::Flat(t),
            Act::Image(t) => Input::Image(t),
            Act::Seq(t) => Input::Seq(t),
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        match self {
            Act::Flat(t) => t.dims()[0],
            Act::Image(t) => t.dims()[0],
            Act::Seq(t) => t.dims()[0],
        }
    }

    fn dims(&self) -> Vec<usize> {
        match self {
            Act::Flat(t) => t.dims().to_vec(),
            Act::Image(t) => t.dims().to_vec(),
            Act::Seq(t) => t.dims().to_vec(),
        }
    }

    /// The flat tensor; panics on another kind (a hook that changed the kind:
    /// a bug in the hook).
    pub fn flat(self) -> Tensor<2> {
        match self {
            Act::Flat(t) => t,
            other => panic!("expected a flat activation, got {:?}", other.dims()),
        }
    }

    /// The image tensor; panics on another kind (a bug in the layer list or hook).
    pub fn image(self) -> Tensor<4> {
        match self {
            Act::Image(t) => t,
            other => panic!("expected an image activation, got {:?}", other.dims()),
        }
    }

    /// The sequence tensor; panics on another kind (a bug in the hook).
    pub fn seq(self) -> Tensor<3> {
        match self {
            Act::Seq(t) => t,
            other => panic!("expected a sequence activation, got {:?}", other.dims()),
        }
    }
}

/// Forward mode.
#[derive(Debug)]
pub enum Mode<'a> {
    /// Training: dropout on, with masks drawn from this generator; BatchNorm uses
    /// batch statistics and updates its running statistics.
    Train(&'a mut ChaCha8Rng),
    /// Evaluation: dropout off, BatchNorm uses running statistics. Independent of
    /// whether the device has autodiff, so gradients can be taken in eval mode.
    Eval,
}

/// Result of a forward pass.
#[derive(Clone, Debug)]
pub struct Output {
    /// Penultimate features `[batch, feature_dim]` (the head's input).
    pub features: Tensor<2>,
    /// Head outputs `[batch, n_out]`.
    pub logits: Tensor<2>,
}

/// Observer/editor of the forward pass at each parameter layer.
pub trait ForwardHook {
    /// Called once for every tracked layer that owns parameters (Linear,
    /// Conv2d, BatchNorm2d, EmbeddingBag, Embedding, LayerNorm, and the zoo's
    /// head), in forward order, with the layer's path (`body.0`,
    /// `body.7.inner.3`, `head`), the layer, its input and its output, by
    /// way of a probing [`Tracker`]. Returns the output the forward pass
    /// continues with (same kind and shape).
    ///
    /// The gradient engine records `input` (each example's `a`) and adds a
    /// zero-valued `require_grad` probe to `output`, whose gradient is each
    /// example's backpropagated error `δ`.
    fn param_layer(
        &mut self,
        path: &str,
        layer: ParamLayerRef<'_>,
        input: &LayerInput,
        output: Act,
    ) -> Act;
}

/// The hook that changes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

impl ForwardHook for NoHook {
    fn param_layer(&mut self, _: &str, _: ParamLayerRef<'_>, _: &LayerInput, output: Act) -> Act {
        output
    }
}

impl Net {
    /// Forward pass; see [`Net::forward_with`].
    pub fn forward(&self, x: Input, mode: Mode) -> Output {
        self.forward_with(x, mode, &mut Tracker::passive())
    }

    /// Forward pass calling `hook` at every parameter layer (a probing
    /// [`Tracker`] over this net's [`ParamTable`] names).
    pub fn forward_hooked(&self, x: Input, mode: Mode, hook: &mut dyn ForwardHook) -> Output {
        let names = ParamTable::of(self).names();
        self.forward_with(x, mode, &mut Tracker::probing(hook, &names))
    }

    /// Forward pass with every parameter layer routed through `tracker`.
    ///
    /// # Panics
    /// If the input kind does not suit the first layer (e.g. flat input to a
    /// CNN; [`crate::Model::input_batch`] builds the right kind, with checked
    /// errors), or if a hook returns an activation of a different kind
    /// (flat vs image) than the layer produced.
    pub fn forward_with(&self, x: Input, mut mode: Mode, tracker: &mut Tracker<'_>) -> Output {
        let act = run_layers(&self.body, "body", x, &mut mode, tracker);
        let features = match act {
            Act::Flat(t) => t,
            Act::Image(t) => {
                let [b, c, h, w] = t.dims();
                t.reshape([b, c * h * w])
            }
            Act::Seq(t) => {
                let [b, p, d] = t.dims();
                t.reshape([b, p * d])
            }
        };
        let logits = tracker.linear(&self.head, features.clone());
        Output { features, logits }
    }
}

impl Attributable for Net {
    fn forward_tracked(&self, input: &Input, tracker: &mut Tracker<'_>) -> Result<ModelOutput> {
        let out = self.forward_with(input.clone(), Mode::Eval, tracker);
        Ok(ModelOutput::flat(out.logits).with_features(out.features))
    }
}

fn run_layers(
    layers: &[Layer],
    prefix: &str,
    x: Input,
    mode: &mut Mode,
    tracker: &mut Tracker<'_>,
) -> Act {
    let mut x = x;
    for (i, layer) in layers.iter().enumerate() {
        let path = format!("{prefix}.{i}");
        let out = match layer {
            Layer::Linear(l) => match x {
                Input::Flat(t) => Act::Flat(tracker.linear(l, t)),
                _ => panic!("{path}: Linear needs a flat input (add a Flatten layer)"),
            },
            Layer::Conv2d(c) => match x {
                Input::Image(t) => Act::Image(tracker.conv2d(c, t)),
                _ => panic!("{path}: Conv2d needs an image input [b, c, h, w]"),
            },
            Layer::BatchNorm2d(b) => match x {
                Input::Image(t) => {
                    let y = batch_norm(b, t.clone(), mode);
                    Act::Image(tracker.batch_norm2d(b, t, y))
                }
                _ => panic!("{path}: BatchNorm2d needs an image input"),
            },
            Layer::EmbeddingBag(e) => match x {
                Input::Tokens { ids, mask } => Act::Flat(tracker.embedding_bag(e, ids, mask)),
                _ => panic!("{path}: EmbeddingBag needs token input"),
            },
            Layer::Relu(_) => map_act(
                x,
                &path,
                burn::tensor::activation::relu,
                burn::tensor::activation::relu,
            ),
            Layer::MaxPool2d(p) => Act::Image(match x {
                Input::Image(t) => p.forward(t),
                _ => panic!("{path}: MaxPool2d needs an image input"),
            }),
            Layer::GlobalMaxPool(_) => Act::Flat(match x {
                Input::Image(t) => {
                    let [b, c, h, w] = t.dims();
                    t.reshape([b, c, h * w]).max_dim(2).reshape([b, c])
                }
                _ => panic!("{path}: GlobalMaxPool needs an image input"),
            }),
            Layer::Flatten(_) => Act::Flat(match x {
                Input::Image(t) => {
                    let [b, c, h, w] = t.dims();
                    t.reshape([b, c * h * w])
                }
                Input::Flat(t) => t,
                Input::Seq(t) => {
                    let [b, p, d] = t.dims();
                    t.reshape([b, p * d])
                }
                Input::Tokens { .. } | Input::Ids(_) => {
                    panic!("{path}: Flatten cannot take tokens")
                }
            }),
            Layer::Dropout(d) => match mode {
                Mode::Eval => act_of(x, &path),
                Mode::Train(rng) => {
                    if d.prob == 0.0 {
                        act_of(x, &path)
                    } else {
                        dropout(x, d.prob, rng, &path)
                    }
                }
            },
            Layer::Residual(r) => {
                let skip = act_of(x.clone(), &path);
                let inner = run_layers(&r.inner, &format!("{path}.inner"), x, mode, tracker);
                match (skip, inner) {
                    (Act::Flat(a), Act::Flat(b)) => Act::Flat(a + b),
                    (Act::Image(a), Act::Image(b)) => Act::Image(a + b),
                    _ => panic!("{path}: residual branch changed the activation kind"),
                }
            }
        };
        x = out.into_input();
    }
    act_of(x, prefix)
}

fn act_of(x: Input, path: &str) -> Act {
    match x {
        Input::Flat(t) => Act::Flat(t),
        Input::Image(t) => Act::Image(t),
        Input::Seq(t) => Act::Seq(t),
        Input::Tokens { .. } | Input::Ids(_) => {
            panic!("{path}: token input must go through an EmbeddingBag")
        }
    }
}

fn map_act(
    x: Input,
    path: &str,
    f2: impl FnOnce(Tensor<2>) -> Tensor<2>,
    f4: impl FnOnce(Tensor<4>) -> Tensor<4>,
) -> Act {
    match act_of(x, path) {
        Act::Flat(t) => Act::Flat(f2(t)),
        Act::Image(t) => Act::Image(f4(t)),
        Act::Seq(t) => {
            let [b, p, d] = t.dims();
            Act::Seq(f2(t.reshape([b * p, d])).reshape([b, p, d]))
        }
    }
}

/// Inverted dropout with a host-drawn Bernoulli mask (keep prob `1 - p`).
fn dropout(x: Input, p: f64, rng: &mut ChaCha8Rng, path: &str) -> Act {
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let mut draw = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                if rng.random::<f64>() < keep {
                    scale
                } else {
                    0.0
                }
            })
            .collect()
    };
    match act_of(x, path) {
        Act::Flat(t) => {
            let dims = t.dims();
            let m = Tensor::<2>::from_data(
                TensorData::new(draw(dims[0] * dims[1]), dims),
                (&t.device(), t.dtype()),
            );
            Act::Flat(t * m)
        }
        Act::Image(t) => {
            let dims = t.dims();
            let m = Tensor::<4>::from_data(
                TensorData::new(draw(dims.iter().product()), dims),
                (&t.device(), t.dtype()),
            );
            Act::Image(t * m)
        }
        Act::Seq(t) => {
            let dims = t.dims();
            let m = Tensor::<3>::from_data(
                TensorData::new(draw(dims.iter().product()), dims),
                (&t.device(), t.dtype()),
            );
            Act::Seq(t * m)
        }
    }
}

fn batch_norm(b: &BatchNorm2d, x: Tensor<4>, mode: &Mode) -> Tensor<4> {
    let device = x.device();
    match mode {
        Mode::Eval => burn::tensor::module::batch_norm(
            x,
            b.weight.val(),
            b.bias.val(),
            b.running_mean.get().to_device(&device),
            b.running_var.get().to_device(&device),
            b.epsilon,
        ),
        Mode::Train(_) => {
            let [n, _, h, w] = x.dims();
            let count = (n * h * w) as f64;
            let out =
                burn::tensor::module::batch_norm_train(x, b.weight.val(), b.bias.val(), b.epsilon);
            // PyTorch updates the running variance with the unbiased estimate.
            let unbiased = if count > 1.0 {
                count / (count - 1.0)
            } else {
                1.0
            };
            let m = b.momentum;
            let mean = out.mean.detach().without_autodiff();
            let var = out.variance.detach().without_autodiff();
            let rm = b.running_mean.get().to_device(&mean.device());
            let rv = b.running_var.get().to_device(&var.device());
            b.running_mean
                .set(rm.mul_scalar(1.0 - m).add(mean.mul_scalar(m)));
            b.running_var
                .set(rv.mul_scalar(1.0 - m).add(var.mul_scalar(m * unbiased)));
            out.output
        }
    }
}
