//! One batched forward with zero-valued `require_grad` probes on the selected
//! layers' outputs, one backward of the *sum* of per-example outputs, and the
//! captured `(a_i, δ_i)` copied to the host (the probe's gradient row `i` is
//! example `i`'s backprop error, since examples do not interact in eval mode).

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::{LayerNorm, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use wellspring_core::Dataset;
use wellspring_models::{Act, AnyModel, ForwardHook, Input, LayerInput, ParamLayerRef, Tracker};

use crate::caps::{BnCap, ConvCap, EmbCap, LayerCap, LinearCap, LnCap, TokCap};
use crate::error::{GradError, Result};
use crate::kernels::ConvGeom;
use crate::layout::{Binding, GradLayout};
use crate::output::OutputFn;

/// Everything captured for one batch.
pub(crate) struct Captured {
    /// Examples in the batch.
    pub rows: usize,
    /// One capture per layout slot, in layout order.
    pub layers: Vec<LayerCap>,
    /// Per-example output values.
    pub outputs: Vec<f32>,
    /// For token inputs, the `rows × T` mask of real (1) vs padding (0)
    /// positions, with `T`: K-FAC counts only real tokens of sequence layers.
    pub token_mask: Option<(usize, Vec<f32>)>,
}

/// Host copy of a float tensor as f32.
pub(crate) fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensor data converts to f32")
}

/// Host copy of a float tensor as f64.
pub(crate) fn host_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_into_vec_as::<f64>()
        .expect("float tensor data converts to f64")
}

enum Meta {
    Linear {
        d_in: usize,
        d_out: usize,
        bias: bool,
    },
    Tok {
        vocab: usize,
        dim: usize,
    },
    Ln {
        d: usize,
        beta: bool,
        xhat: Vec<f32>,
    },
    Conv {
        geom: ConvGeom,
        bias: bool,
    },
    Bn {
        mean: Vec<f32>,
        var: Vec<f32>,
        eps: f64,
    },
    Emb {
        vocab: usize,
        dim: usize,
    },
}

enum Probe {
    Flat(Tensor<2>),
    Image(Tensor<4>),
    Seq(Tensor<3>),
}

struct Raw {
    slot: usize,
    meta: Meta,
    input: Input,
    probe: Probe,
}

struct ProbeHook<'a> {
    layout: &'a GradLayout,
    raws: Vec<Raw>,
    error: Option<GradError>,
}

/// `x̂` of a LayerNorm: the layer with `γ = 1`, `β = 0` applied to `x`
/// (burn keeps ε private, so the normalisation is the layer's own).
fn layer_norm_xhat(layer: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
    struct Unit(ParamId);
    impl ModuleMapper for Unit {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let gamma = p.id == self.0;
            p.map(|t| {
                let t = t.detach();
                if gamma { t.ones_like() } else { t.zeros_like() }
            })
        }
    }
    layer
        .clone()
        .map(&mut Unit(layer.gamma.id))
        .forward(x.detach())
}

fn same_pad(k: usize, s: usize, d: usize, size: usize) -> usize {
    let out = size.div_ceil(s);
    let needed = ((out.max(1) - 1) * s + (k - 1) * d + 1).saturating_sub(size);
    needed / 2
}

fn conv_meta(
    path: &str,
    c: &burn::nn::conv::Conv2d,
    input: &Input,
    out_dims: [usize; 4],
) -> Result<Meta> {
    let [c_out, c_in_g, kh, kw] = c.weight.dims();
    if c.groups != 1 {
        return Err(GradError::unsupported(
            format!("per-example gradients of {path}"),
            format!(
                "grouped convolution (groups = {}) is not supported",
                c.groups
            ),
        ));
    }
    let Input::Image(x) = input else {
        return Err(GradError::unsupported(
            path.to_string(),
            "Conv2d without an image input",
        ));
    };
    let [_, c_in, h, w] = x.dims();
    debug_assert_eq!(c_in, c_in_g);
    let (pt, pl) = match &c.padding {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Explicit(top, left, _, _) => (*top, *left),
        PaddingConfig2d::Same => (
            same_pad(c.kernel_size[0], c.stride[0], c.dilation[0], h),
            same_pad(c.kernel_size[1], c.stride[1], c.dilation[1], w),
        ),
    };
    Ok(Meta::Conv {
        geom: ConvGeom {
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            sh: c.stride[0],
            sw: c.stride[1],
            dh: c.dilation[0],
            dw: c.dilation[1],
            pt,
            pl,
            ho: out_dims[2],
            wo: out_dims[3],
        },
        bias: c.bias.is_some(),
    })
}

impl ForwardHook for ProbeHook<'_> {
    fn param_layer(
        &mut self,
        path: &str,
        layer: ParamLayerRef<'_>,
        input: &LayerInput,
        output: Act,
    ) -> Act {
        let Some(slot) = self.layout.slots().iter().position(|s| s.desc.path == path) else {
            return output;
        };
        if self.raws.iter().any(|r| r.slot == slot) {
            self.error.get_or_insert(GradError::unsupported(
                format!("per-example gradients of {path}"),
                "the layer is applied more than once in one forward pass (shared weights); \
                 each tracked layer must be applied once",
            ));
            return output;
        }
        let meta = match layer {
            ParamLayerRef::Linear(l) => {
                let [d_in, d_out] = l.weight.dims();
                Ok(Meta::Linear {
                    d_in,
                    d_out,
                    bias: l.bias.is_some(),
                })
            }
            ParamLayerRef::Embedding(e) => {
                let [vocab, dim] = e.weight.dims();
                Ok(Meta::Tok { vocab, dim })
            }
            ParamLayerRef::LayerNorm(n) => {
                let [d] = n.gamma.dims();
                let x = match input {
                    Input::Flat(t) => {
                        let [b, d] = t.dims();
                        Some(t.clone().reshape([b, 1, d]))
                    }
                    Input::Seq(t) => Some(t.clone()),
                    _ => None,
                };
                match x {
                    Some(x) => Ok(Meta::Ln {
                        d,
                        beta: n.beta.is_some(),
                        xhat: host_f32(layer_norm_xhat(n, x)),
                    }),
                    None => Err(GradError::unsupported(
                        path.to_string(),
                        "LayerNorm without a flat or sequence input",
                    )),
                }
            }
            ParamLayerRef::Conv2d(c) => match &output {
                Act::Image(t) => conv_meta(path, c, input, t.dims()),
                Act::Flat(_) | Act::Seq(_) => Err(GradError::unsupported(
                    path.to_string(),
                    "Conv2d without an image output",
                )),
            },
            ParamLayerRef::BatchNorm2d(b) => Ok(Meta::Bn {
                mean: host_f32(b.running_mean.get()),
                var: host_f32(b.running_var.get()),
                eps: b.epsilon,
            }),
            ParamLayerRef::EmbeddingBag(e) => {
                let [vocab, dim] = e.weight.dims();
                Ok(Meta::Emb { vocab, dim })
            }
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                self.error.get_or_insert(e);
                return output;
            }
        };
        let (probe, out) = match output {
            Act::Flat(t) => {
                let p = Tensor::<2>::zeros(t.dims(), (&t.device(), t.dtype())).require_grad();
                (Probe::Flat(p.clone()), Act::Flat(t + p))
            }
            Act::Image(t) => {
                let p = Tensor::<4>::zeros(t.dims(), (&t.device(), t.dtype())).require_grad();
                (Probe::Image(p.clone()), Act::Image(t + p))
            }
            Act::Seq(t) => {
                let p = Tensor::<3>::zeros(t.dims(), (&t.device(), t.dtype())).require_grad();
                (Probe::Seq(p.clone()), Act::Seq(t + p))
            }
        };
        self.raws.push(Raw {
            slot,
            meta,
            input: input.clone(),
            probe,
        });
        out
    }
}

/// Runs the probed forward/backward on rows `idx` of `data` and copies the
/// factors to the host. `model` must live on an autodiff device.
pub(crate) fn capture(
    model: &AnyModel,
    binding: &Binding,
    output: &dyn OutputFn,
    data: &Dataset,
    idx: &[usize],
    device: &Device,
) -> Result<Captured> {
    let layout = &binding.layout;
    let x = model.input_batch(data, idx, device)?;
    let y = model.target_batch(data, idx, device)?;
    let token_mask = match &x {
        Input::Tokens { ids, mask } => Some((ids.dims()[1], host_f32(mask.clone()))),
        _ => None,
    };
    let mut hook = ProbeHook {
        layout,
        raws: Vec::new(),
        error: None,
    };
    let out = {
        let mut tracker = Tracker::probing(&mut hook, &binding.names);
        let out = model.forward_tracked(&x, &mut tracker)?;
        tracker.finish()?;
        out
    };
    // The probes' records now hold the only copies of the layer inputs, so
    // the host copies below can take the buffers without copying them.
    drop(x);
    if let Some(e) = hook.error {
        return Err(e);
    }
    if hook.raws.len() != layout.slots().len() {
        let missing: Vec<&str> = layout
            .slots()
            .iter()
            .enumerate()
            .filter(|(k, _)| !hook.raws.iter().any(|r| r.slot == *k))
            .map(|(_, s)| s.desc.path.as_str())
            .collect();
        return Err(GradError::unsupported(
            format!("gradient capture of the {} model", model.model_name()),
            format!(
                "the forward pass reached {} of the {} selected layers; not routed through \
                 the Tracker: {}",
                hook.raws.len(),
                layout.slots().len(),
                missing.join(", ")
            ),
        ));
    }
    let values = output.apply(out.logits, &y)?;
    let grads = values.clone().sum().backward();
    let outputs = host_f32(values);
    let rows = idx.len();
    let mut layers: Vec<Option<LayerCap>> = (0..layout.slots().len()).map(|_| None).collect();
    for raw in hook.raws {
        let delta = match &raw.probe {
            Probe::Flat(p) => p.grad(&grads).map(host_f32),
            Probe::Image(p) => p.grad(&grads).map(host_f32),
            Probe::Seq(p) => p.grad(&grads).map(host_f32),
        };
        // No gradient reached the probe: the output does not depend on the layer.
        let delta = delta.unwrap_or_else(|| {
            let n = match &raw.probe {
                Probe::Flat(p) => p.dims().iter().product(),
                Probe::Image(p) => p.dims().iter().product(),
                Probe::Seq(p) => p.dims().iter().product(),
            };
            vec![0.0; n]
        });
        let cap = match (raw.meta, raw.input) {
            (Meta::Linear { d_in, d_out, bias }, Input::Flat(a)) => LayerCap::Linear(LinearCap {
                d_in,
                d_out,
                bias,
                t: 1,
                a: host_f32(a),
                delta,
            }),
            (Meta::Linear { d_in, d_out, bias }, Input::Seq(a)) => {
                let t = a.dims()[1];
                LayerCap::Linear(LinearCap {
                    d_in,
                    d_out,
                    bias,
                    t,
                    a: host_f32(a),
                    delta,
                })
            }
            (Meta::Tok { vocab, dim }, Input::Ids(ids)) => {
                let [_, len] = ids.dims();
                LayerCap::Tok(TokCap {
                    vocab,
                    dim,
                    len,
                    ids: host_ids(ids),
                    delta,
                })
            }
            (Meta::Ln { d, beta, xhat }, _) => LayerCap::Ln(LnCap {
                d,
                t: xhat.len() / (rows * d).max(1),
                beta,
                xhat,
                delta,
            }),
            (Meta::Conv { geom, bias }, Input::Image(x)) => LayerCap::Conv(ConvCap {
                geom,
                bias,
                x: host_f32(x),
                delta,
            }),
            (Meta::Bn { mean, var, eps }, Input::Image(x)) => {
                let [_, c, h, w] = x.dims();
                let hw = h * w;
                let mut xhat = host_f32(x);
                let scale: Vec<f32> = var
                    .iter()
                    .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
                    .collect();
                for (k, chunk) in xhat.chunks_exact_mut(hw).enumerate() {
                    let ch = k % c;
                    for v in chunk {
                        *v = (*v - mean[ch]) * scale[ch];
                    }
                }
                LayerCap::Bn(BnCap { c, hw, xhat, delta })
            }
            (Meta::Emb { vocab, dim }, Input::Tokens { ids, mask }) => {
                let [_, len] = ids.dims();
                let ids = host_ids(ids);
                let mut w = host_f32(mask);
                for row in w.chunks_exact_mut(len.max(1)) {
                    let count: f32 = row.iter().sum::<f32>().max(1.0);
                    for v in row {
                        *v /= count;
                    }
                }
                LayerCap::Emb(EmbCap {
                    vocab,
                    dim,
                    len,
                    ids,
                    w,
                    delta,
                })
            }
            _ => {
                return Err(GradError::unsupported(
                    layout.slots()[raw.slot].desc.path.clone(),
                    "layer input kind does not match the layer type",
                ));
            }
        };
        layers[raw.slot] = Some(cap);
    }
    Ok(Captured {
        rows,
        layers: layers
            .into_iter()
            .map(|l| l.expect("every slot captured (count checked)"))
            .collect(),
        outputs,
        token_mask,
    })
}

fn host_ids(ids: Tensor<2, burn::tensor::Int>) -> Vec<usize> {
    ids.into_data()
        .try_into_vec_as::<i64>()
        .expect("token ids convert to i64")
        .into_iter()
        .map(|v| v.max(0) as usize)
        .collect()
}
