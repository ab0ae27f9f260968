//! The reference path: one forward and one backward per example with plain
//! autodiff on the parameters (what `vmap`-free PyTorch code does). Slow, but
//! shares nothing with the probe machinery, so tests compare the two.

use burn::tensor::{Device, Tensor};
use wellspring_core::Dataset;
use wellspring_models::AnyModel;

use crate::engine::{GradBlock, GradEngine, Rows};
use crate::error::Result;
use crate::layout::Binding;
use crate::output::OutputFn;
use crate::params64::packed_param_grads;

/// Gradient of `Σ_r w_r f(rows[r])` w.r.t. the selected layers, by plain
/// autodiff on the parameters of `tracked` (a model whose parameters require
/// gradients, on an autodiff device), in the model's dtype, returned as f64.
pub(crate) fn autodiff_sum_gradient(
    tracked: &AnyModel,
    binding: &Binding,
    output: &dyn OutputFn,
    data: &Dataset,
    idx: &[usize],
    weights: Option<&[f64]>,
    device: &Device,
) -> Result<Vec<f64>> {
    let x = tracked.input_batch(data, idx, device)?;
    let y = tracked.target_batch(data, idx, device)?;
    let logits = tracked.forward(&x)?.logits;
    let values = output.apply(logits, &y)?;
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
    Ok(packed_param_grads(tracked, binding, &grads))
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
        let binding = self.binding();
        let p = self.dim();
        let br = self.block_rows();
        let mut buf: Vec<f32> = Vec::with_capacity(br * p);
        let mut start = 0;
        for block in idx.chunks(br) {
            buf.clear();
            for &i in block {
                let g = autodiff_sum_gradient(
                    &tracked,
                    binding,
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
