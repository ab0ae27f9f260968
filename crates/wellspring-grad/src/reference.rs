//! The reference path: one forward and one backward per example with plain
//! autodiff on the parameters (what `vmap`-free PyTorch code does). Slow, but
//! shares nothing with the probe machinery, so tests compare the two.

use burn::module::Param;
use burn::tensor::Gradients;
use burn::tensor::{Device, Tensor};
use wellspring_core::Dataset;
use wellspring_models::{Layer, Mode, Model, Net, ParamLayerRef};

use crate::capture::host_f64;
use crate::engine::{GradBlock, GradEngine, Rows};
use crate::error::Result;
use crate::layout::GradLayout;
use crate::output::OutputFn;

/// Visits every parameter layer of `net` in canonical order with its path
/// (the same walk as the models crate's flat-parameter order).
pub(crate) fn visit_param_layers(net: &Net, f: &mut dyn FnMut(&str, ParamLayerRef<'_>)) {
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

fn push_grad<const D: usize>(p: &Param<Tensor<D>>, grads: &Gradients, out: &mut Vec<f64>) {
    let n = p.shape().num_elements();
    match p.val().grad(grads) {
        Some(g) => out.extend(host_f64(g)),
        // Unreached parameter: its gradient is zero.
        None => out.extend(std::iter::repeat_n(0.0, n)),
    }
}

/// Gradients w.r.t. the selected layers, packed as `layout`, read from `grads`.
pub(crate) fn packed_param_grads(net: &Net, layout: &GradLayout, grads: &Gradients) -> Vec<f64> {
    let mut out = Vec::with_capacity(layout.dim());
    let mut by_path: Vec<(String, Vec<f64>)> = Vec::new();
    visit_param_layers(net, &mut |path, layer| {
        if layout.slot(path).is_none() {
            return;
        }
        let mut v = Vec::new();
        match layer {
            ParamLayerRef::Linear(l) => {
                push_grad(&l.weight, grads, &mut v);
                if let Some(b) = &l.bias {
                    push_grad(b, grads, &mut v);
                }
            }
            ParamLayerRef::Conv2d(c) => {
                push_grad(&c.weight, grads, &mut v);
                if let Some(b) = &c.bias {
                    push_grad(b, grads, &mut v);
                }
            }
            ParamLayerRef::BatchNorm2d(b) => {
                push_grad(&b.weight, grads, &mut v);
                push_grad(&b.bias, grads, &mut v);
            }
            ParamLayerRef::EmbeddingBag(e) => push_grad(&e.weight, grads, &mut v),
        }
        by_path.push((path.to_string(), v));
    });
    for slot in layout.slots() {
        let (_, v) = by_path
            .iter()
            .find(|(p, _)| *p == slot.desc.path)
            .expect("every layout slot is a parameter layer of the net");
        out.extend_from_slice(v);
    }
    out
}

/// Gradient of `Σ_r w_r f(rows[r])` w.r.t. the selected layers, by plain
/// autodiff on the parameters of `tracked` (a model whose parameters require
/// gradients, on an autodiff device), in the model's dtype, returned as f64.
pub(crate) fn autodiff_sum_gradient(
    tracked: &Model,
    layout: &GradLayout,
    output: &dyn OutputFn,
    data: &Dataset,
    idx: &[usize],
    weights: Option<&[f64]>,
    device: &Device,
) -> Result<Vec<f64>> {
    let x = tracked.input_batch(data, idx, device)?;
    let y = tracked.target_batch(data, idx, device)?;
    let logits = tracked.net.forward(x, Mode::Eval).logits;
    let values = output.forward(logits, &y)?;
    let total = match weights {
        None => values.sum(),
        Some(w) => {
            let wt = Tensor::<1>::from_data(
                burn::tensor::TensorData::new(w.to_vec(), [w.len()]),
                (device, values.dtype()),
            );
            (values * wt).sum()
        }
    };
    let grads = total.backward();
    Ok(packed_param_grads(&tracked.net, layout, &grads))
}

impl GradEngine {
    /// Reference per-example gradients: a batch-of-one loop of forward and
    /// backward with autodiff on the parameters. Same block stream as
    /// [`GradEngine::per_sample`]; for tests and as a baseline.
    pub fn per_sample_reference<'r>(
        &self,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
        mut f: impl FnMut(GradBlock<'_>) -> Result<()>,
    ) -> Result<()> {
        let idx = rows.into().resolve(data.len(), data.name())?;
        self.model().check_dataset(data)?;
        let device = self.device().clone();
        let tracked = self.model().trainable(&device);
        let p = self.dim();
        let br = self.block_rows();
        let mut buf: Vec<f32> = Vec::with_capacity(br * p);
        let mut start = 0;
        for block in idx.chunks(br) {
            buf.clear();
            for &i in block {
                let g = autodiff_sum_gradient(
                    &tracked,
                    self.layout(),
                    self.output_fn(),
                    data,
                    &[i],
                    None,
                    &device,
                )?;
                buf.extend(g.into_iter().map(|v| v as f32));
            }
            let outputs = self.outputs(data, block)?;
            f(GradBlock {
                start,
                rows: block,
                dim: p,
                values: &buf,
                outputs: &outputs,
            })?;
            start += block.len();
        }
        Ok(())
    }

    /// All reference per-example gradients as one `n × dim` matrix.
    pub fn per_sample_reference_matrix<'r>(
        &self,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.per_sample_reference(data, rows, |b| {
            out.extend_from_slice(b.values);
            Ok(())
        })?;
        Ok(out)
    }
}
