//! [`Net`] and its forward pass, with a [`ForwardHook`] at every parameter layer.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngExt;
use wellspring_core::ChaCha8Rng;

use crate::layers::{BatchNorm2d, EmbeddingBag, Layer, ParamLayerRef};

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
}

/// What a parameter layer received, as passed to [`ForwardHook::param_layer`]
/// (flat or image activations, or tokens for an [`EmbeddingBag`]).
pub type LayerInput = Input;

/// An activation between layers.
#[derive(Clone, Debug)]
pub enum Act {
    /// `[batch, d]`.
    Flat(Tensor<2>),
    /// `[batch, c, h, w]`.
    Image(Tensor<4>),
}

impl Act {
    /// The activation as a layer input.
    pub fn into_input(self) -> Input {
        match self {
            Act::Flat(t) => Input::Flat(t),
            Act::Image(t) => Input::Image(t),
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        match self {
            Act::Flat(t) => t.dims()[0],
            Act::Image(t) => t.dims()[0],
        }
    }

    /// The flat tensor; panics on an image activation (a bug in the layer list).
    pub fn flat(self) -> Tensor<2> {
        match self {
            Act::Flat(t) => t,
            Act::Image(t) => panic!("expected a flat activation, got an image {:?}", t.dims()),
        }
    }

    /// The image tensor; panics on a flat activation (a bug in the layer list).
    pub fn image(self) -> Tensor<4> {
        match self {
            Act::Image(t) => t,
            Act::Flat(t) => panic!("expected an image activation, got a flat {:?}", t.dims()),
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
    /// Called once for every layer that owns parameters (Linear, Conv2d,
    /// BatchNorm2d, EmbeddingBag, and the head), in forward order, with the
    /// layer's path (`body.0`, `body.7.inner.3`, `head`), the layer, its input
    /// and its output. Returns the output the forward pass continues with.
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
    /// Forward pass; see [`Net::forward_hooked`].
    pub fn forward(&self, x: Input, mode: Mode) -> Output {
        self.forward_hooked(x, mode, &mut NoHook)
    }

    /// Forward pass calling `hook` at every parameter layer.
    ///
    /// # Panics
    /// If the input kind does not suit the first layer (e.g. flat input to a
    /// CNN; [`crate::Model::input_batch`] builds the right kind, with checked
    /// errors), or if `hook` returns an activation of a different kind
    /// (flat vs image) than the layer produced.
    pub fn forward_hooked(&self, x: Input, mut mode: Mode, hook: &mut dyn ForwardHook) -> Output {
        let act = run_layers(&self.body, "body", x, &mut mode, hook);
        let features = match act {
            Act::Flat(t) => t,
            Act::Image(t) => {
                let [b, c, h, w] = t.dims();
                t.reshape([b, c * h * w])
            }
        };
        let input = Input::Flat(features.clone());
        let logits = self.head.forward(features.clone());
        let logits = hook
            .param_layer(
                "head",
                ParamLayerRef::Linear(&self.head),
                &input,
                Act::Flat(logits),
            )
            .flat();
        Output { features, logits }
    }
}

fn run_layers(
    layers: &[Layer],
    prefix: &str,
    x: Input,
    mode: &mut Mode,
    hook: &mut dyn ForwardHook,
) -> Act {
    let mut x = x;
    for (i, layer) in layers.iter().enumerate() {
        let path = format!("{prefix}.{i}");
        let out = match layer {
            Layer::Linear(l) => {
                let y = match &x {
                    Input::Flat(t) => l.forward(t.clone()),
                    _ => panic!("{path}: Linear needs a flat input (add a Flatten layer)"),
                };
                hook.param_layer(&path, ParamLayerRef::Linear(l), &x, Act::Flat(y))
            }
            Layer::Conv2d(c) => {
                let y = match &x {
                    Input::Image(t) => c.forward(t.clone()),
                    _ => panic!("{path}: Conv2d needs an image input [b, c, h, w]"),
                };
                hook.param_layer(&path, ParamLayerRef::Conv2d(c), &x, Act::Image(y))
            }
            Layer::BatchNorm2d(b) => {
                let y = match &x {
                    Input::Image(t) => batch_norm(b, t.clone(), mode),
                    _ => panic!("{path}: BatchNorm2d needs an image input"),
                };
                hook.param_layer(&path, ParamLayerRef::BatchNorm2d(b), &x, Act::Image(y))
            }
            Layer::EmbeddingBag(e) => {
                let y = match &x {
                    Input::Tokens { ids, mask } => embedding_bag(e, ids.clone(), mask.clone()),
                    _ => panic!("{path}: EmbeddingBag needs token input"),
                };
                hook.param_layer(&path, ParamLayerRef::EmbeddingBag(e), &x, Act::Flat(y))
            }
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
                Input::Tokens { .. } => panic!("{path}: Flatten cannot take tokens"),
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
                let inner = run_layers(&r.inner, &format!("{path}.inner"), x, mode, hook);
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
        Input::Tokens { .. } => panic!("{path}: token input must go through an EmbeddingBag"),
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

fn embedding_bag(e: &EmbeddingBag, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
    let [b, len] = ids.dims();
    let weight = e.weight.val();
    let dim = weight.dims()[1];
    let flat = ids.reshape([b * len]);
    let emb = weight.select(0, flat).reshape([b, len, dim]);
    let counts = mask.clone().sum_dim(1).clamp_min(1.0); // [b, 1]
    let summed = (emb * mask.unsqueeze_dim::<3>(2))
        .sum_dim(1)
        .reshape([b, dim]);
    summed / counts
}
