//! [`GradEngine`]: per-sample, projected, summed and group gradients of an
//! [`OutputFn`] w.r.t. a [`LayerSelection`], from one probed forward/backward
//! per batch (see the crate docs for which path each layer type takes).

use std::ops::Range;
use std::sync::Arc;

use burn::tensor::Device;
use rayon::prelude::*;
use wellspring_core::{CoreError, Dataset, Grouping};
use wellspring_models::AnyModel;

use crate::caps::Scratch;
use crate::capture::{Captured, capture, host_f32};
use crate::error::{GradError, Result};
use crate::layout::{Binding, GradLayout, LayerSelection};
use crate::output::{CrossEntropy, OutputFn};
use crate::project::Projector;

/// Which rows of a dataset to differentiate.
#[derive(Clone, Debug)]
pub enum Rows<'a> {
    /// Every row, in order.
    All,
    /// These rows, in this order (repeats allowed).
    Indices(&'a [usize]),
    /// A contiguous range.
    Range(Range<usize>),
}

impl<'a> From<&'a [usize]> for Rows<'a> {
    fn from(v: &'a [usize]) -> Self {
        Rows::Indices(v)
    }
}

impl<'a> From<&'a Vec<usize>> for Rows<'a> {
    fn from(v: &'a Vec<usize>) -> Self {
        Rows::Indices(v)
    }
}

impl From<Range<usize>> for Rows<'_> {
    fn from(r: Range<usize>) -> Self {
        Rows::Range(r)
    }
}

impl Rows<'_> {
    /// The row indices, checked against a dataset of `n` rows.
    pub fn resolve(&self, n: usize, what: &str) -> Result<Vec<usize>> {
        let idx: Vec<usize> = match self {
            Rows::All => (0..n).collect(),
            Rows::Indices(v) => v.to_vec(),
            Rows::Range(r) => r.clone().collect(),
        };
        if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
            return Err(CoreError::IndexOutOfRange {
                what: format!("rows of {what}"),
                index: bad,
                len: n,
            }
            .into());
        }
        Ok(idx)
    }
}

/// A block of gradient rows handed to a callback: row `r` of `values`
/// (`values[r * dim..(r + 1) * dim]`) belongs to dataset row `rows[r]`, the
/// `start + r`-th requested row.
#[derive(Clone, Copy, Debug)]
pub struct GradBlock<'a> {
    /// Position of the first row among the requested rows.
    pub start: usize,
    /// Dataset indices of the rows.
    pub rows: &'a [usize],
    /// Values per row.
    pub dim: usize,
    /// Row-major `rows.len() × dim` values.
    pub values: &'a [f32],
    /// The output function's value `f(z_i, y_i)` for each row.
    pub outputs: &'a [f32],
}

impl GradBlock<'_> {
    /// Row `r` of the block.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.dim..(r + 1) * self.dim]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the block is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// How a group's gradient combines its members' (GGDA, Ley et al. 2024, eq. 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reduce {
    /// `Σ_{i∈g} ∇f_i` (GGDA's `ℓ(z_g) = Σ_{x∈z_g} ℓ(x)`).
    #[default]
    Sum,
    /// `(1/|g|) Σ_{i∈g} ∇f_i`.
    Mean,
}

/// Sequences per length-bucketed batch (see [`GradParams::bucket_by_length`]):
/// on the SST-2 transformer, 64–128 sorted sequences per batch were fastest
/// (less padding than 256, per-op overhead still amortised).
pub const BUCKET_ROWS: usize = 128;

/// Unchecked settings of a [`GradEngine`] (linfa-style builder); finish with
/// [`GradParams::build`].
#[derive(Clone, Debug)]
pub struct GradParams {
    selection: LayerSelection,
    output: Arc<dyn OutputFn>,
    batch_size: usize,
    block_rows: usize,
    bucket: Option<bool>,
}

impl Default for GradParams {
    fn default() -> Self {
        GradParams {
            selection: LayerSelection::All,
            output: Arc::new(CrossEntropy),
            batch_size: 512,
            block_rows: 32,
            bucket: None,
        }
    }
}

impl GradParams {
    /// Parameters to differentiate (default: all).
    pub fn selection(mut self, selection: LayerSelection) -> Self {
        self.selection = selection;
        self
    }

    /// What to differentiate per example (default: [`CrossEntropy`]).
    pub fn output(mut self, output: impl OutputFn + 'static) -> Self {
        self.output = Arc::new(output);
        self
    }

    /// Same as [`GradParams::output`] for a shared or boxed function.
    pub fn output_arc(mut self, output: Arc<dyn OutputFn>) -> Self {
        self.output = output;
        self
    }

    /// Examples per batched forward/backward (default 512). Host memory for
    /// the captured factors grows with it.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Rows per block handed to a callback (default 32): a block holds
    /// `block_rows × dim` f32 values, so this bounds the memory of
    /// materialised per-sample gradients.
    pub fn block_rows(mut self, n: usize) -> Self {
        self.block_rows = n;
        self
    }

    /// Whether [`GradEngine::projected`] batches token sequences of similar
    /// length together (sorting rows by length within windows of 8 batches,
    /// batches of at most [`BUCKET_ROWS`] sequences, results still delivered
    /// in request order), which saves the padding a batch pays for its
    /// longest sequence (attention costs `T²`). Default:
    /// on for models with a per-token `Embedding` layer (transformers), off
    /// otherwise; per-example results do not depend on it beyond rounding.
    pub fn bucket_by_length(mut self, on: bool) -> Self {
        self.bucket = Some(on);
        self
    }

    /// Checks the settings and prepares `model` (the zoo's `Model` or any
    /// [`wellspring_models::Attributable`] in an [`AnyModel`]) on `device`:
    /// an autodiff copy whose parameters are not tracked; gradients come
    /// from probes on the tracked layers' outputs.
    pub fn build(self, model: impl Into<AnyModel>, device: &Device) -> Result<GradEngine> {
        let model: AnyModel = model.into();
        if self.batch_size == 0 {
            return Err(GradError::param(
                "GradParams.batch_size",
                0,
                "must be at least 1",
            ));
        }
        if self.block_rows == 0 {
            return Err(GradError::param(
                "GradParams.block_rows",
                0,
                "must be at least 1",
            ));
        }
        let binding = self.selection.bind(&model)?;
        let bucket = self.bucket.unwrap_or_else(|| {
            model
                .param_layers()
                .iter()
                .any(|d| d.kind == wellspring_models::ParamLayerKind::Embedding)
        });
        let device = device.clone().autodiff();
        let model = model.valid().fork(&device);
        Ok(GradEngine {
            model,
            binding,
            bucket,
            selection: self.selection,
            output: self.output,
            batch_size: self.batch_size,
            block_rows: self.block_rows,
            device,
        })
    }
}

/// The gradient engine for one model, layer selection and output function.
///
/// Gradients are taken in evaluation mode (dropout off, BatchNorm running
/// statistics), so examples are independent and a batch's probe gradient row
/// `i` is exactly example `i`'s backprop error.
#[derive(Clone, Debug)]
pub struct GradEngine {
    model: AnyModel,
    binding: Binding,
    bucket: bool,
    selection: LayerSelection,
    output: Arc<dyn OutputFn>,
    batch_size: usize,
    block_rows: usize,
    device: Device,
}

impl GradEngine {
    /// A builder with the defaults (all layers, cross-entropy, batch 512, blocks of 32 rows).
    pub fn params() -> GradParams {
        GradParams::default()
    }

    /// Number of parameters covered (`p`, the width of a gradient row).
    pub fn dim(&self) -> usize {
        self.binding.layout.dim()
    }

    /// The selected layers and their place in a gradient row.
    pub fn layout(&self) -> &GradLayout {
        &self.binding.layout
    }

    pub(crate) fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The selection this engine was built with.
    pub fn selection(&self) -> &LayerSelection {
        &self.selection
    }

    /// The output function.
    pub fn output_fn(&self) -> &dyn OutputFn {
        self.output.as_ref()
    }

    /// The model copy on the autodiff device.
    pub fn model(&self) -> &AnyModel {
        &self.model
    }

    /// The autodiff device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Examples per batched forward/backward.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Rows per callback block.
    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    pub(crate) fn capture(&self, data: &Dataset, idx: &[usize]) -> Result<Captured> {
        capture(
            &self.model,
            &self.binding,
            self.output.as_ref(),
            data,
            idx,
            &self.device,
        )
    }

    /// Calls `f` with the captures of each batch of `idx`, in order, with the
    /// batch's offset among the requested rows.
    pub(crate) fn for_each_batch(
        &self,
        data: &Dataset,
        idx: &[usize],
        mut f: impl FnMut(usize, &[usize], Captured) -> Result<()>,
    ) -> Result<()> {
        self.model.check_dataset(data)?;
        let mut start = 0;
        for batch in idx.chunks(self.batch_size) {
            let cap = self.capture(data, batch)?;
            f(start, batch, cap)?;
            start += batch.len();
        }
        Ok(())
    }

    /// Per-example output values `f(z_i, y_i)`.
    pub fn outputs<'r>(&self, data: &Dataset, rows: impl Into<Rows<'r>>) -> Result<Vec<f32>> {
        let idx = rows.into().resolve(data.len(), data.name())?;
        self.model.check_dataset(data)?;
        let plain = self.device.clone().without_autodiff();
        let model = self.model.fork(&plain);
        let mut out = Vec::with_capacity(idx.len());
        for batch in idx.chunks(self.batch_size) {
            let x = model.input_batch(data, batch, &plain)?;
            let y = model.target_batch(data, batch, &plain)?;
            let logits = model.forward(&x)?.logits;
            out.extend(host_f32(self.output.apply(logits, &y)?));
        }
        Ok(out)
    }

    /// Per-example gradients `∇_θ f(z_i, y_i)` (fast path: rank-1 / im2col /
    /// direct sums from one batched pass), streamed to `f` in blocks of at
    /// most [`GradParams::block_rows`] rows of [`GradEngine::dim`] f32 values.
    pub fn per_sample<'r>(
        &self,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
        mut f: impl FnMut(GradBlock<'_>) -> Result<()>,
    ) -> Result<()> {
        let idx = rows.into().resolve(data.len(), data.name())?;
        let p = self.dim();
        let br = self.block_rows.min(idx.len().max(1));
        let mut buf = vec![0.0f32; br * p];
        self.for_each_batch(data, &idx, |start, batch, cap| {
            for b0 in (0..batch.len()).step_by(br) {
                let r = br.min(batch.len() - b0);
                let out = &mut buf[..r * p];
                self.write_rows(&cap, b0, out);
                f(GradBlock {
                    start: start + b0,
                    rows: &batch[b0..b0 + r],
                    dim: p,
                    values: out,
                    outputs: &cap.outputs[b0..b0 + r],
                })?;
            }
            Ok(())
        })
    }

    /// Writes rows `b0..b0 + out.len()/p` of a capture into `out`.
    pub(crate) fn write_rows(&self, cap: &Captured, b0: usize, out: &mut [f32]) {
        let p = self.dim();
        let slots = self.binding.layout.slots();
        out.par_chunks_mut(p)
            .enumerate()
            .for_each_init(Scratch::default, |s, (k, row)| {
                for (slot, layer) in slots.iter().zip(&cap.layers) {
                    layer.write_row(b0 + k, &mut row[slot.range()], s);
                }
            });
    }

    /// All per-example gradients as one row-major `n × dim` matrix (for small
    /// problems; [`GradEngine::per_sample`] streams with bounded memory).
    pub fn per_sample_matrix<'r>(
        &self,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.per_sample(data, rows, |b| {
            out.extend_from_slice(b.values);
            Ok(())
        })?;
        Ok(out)
    }

    /// Projected per-example gradients `P ∇_θ f_i`, streamed in blocks of
    /// [`Projector::output_dim`] values per row. A Kronecker projector works
    /// straight from the captured `(a, δ)` factors (TracIn appendix F) and never
    /// materialises a gradient; other projectors project materialised blocks.
    pub fn projected<'r>(
        &self,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
        proj: &dyn Projector,
        mut f: impl FnMut(GradBlock<'_>) -> Result<()>,
    ) -> Result<()> {
        self.check_projector(proj)?;
        let k = proj.output_dim();
        let idx = rows.into().resolve(data.len(), data.name())?;
        if let Some(kron) = proj.as_kronecker() {
            let br = self.block_rows.max(1);
            if self.bucket && matches!(data.features(), wellspring_core::Features::Tokens { .. }) {
                return self.projected_bucketed(data, &idx, kron, f);
            }
            // One output buffer for every batch (allocated before the first
            // capture, so the captures' temporaries come and go above it).
            let mut out = Vec::with_capacity(self.batch_size.min(idx.len()) * k);
            return self.for_each_batch(data, &idx, |start, batch, cap| {
                out.clear();
                out.resize(batch.len() * k, 0.0);
                kron.project_captured(&cap.layers, &mut out)?;
                for b0 in (0..batch.len()).step_by(br) {
                    let r = br.min(batch.len() - b0);
                    f(GradBlock {
                        start: start + b0,
                        rows: &batch[b0..b0 + r],
                        dim: k,
                        values: &out[b0 * k..(b0 + r) * k],
                        outputs: &cap.outputs[b0..b0 + r],
                    })?;
                }
                Ok(())
            });
        }
        let mut pbuf = Vec::new();
        self.per_sample(data, &idx, |b| {
            pbuf.resize(b.len() * k, 0.0);
            proj.project(b.len(), b.values, &mut pbuf)?;
            f(GradBlock {
                start: b.start,
                rows: b.rows,
                dim: k,
                values: &pbuf,
                outputs: b.outputs,
            })
        })
    }

    /// [`GradEngine::projected`] with a Kronecker projector over token data:
    /// within each window of 8 batches the rows are batched in order of
    /// length (ties by position), projected, and handed on in request order.
    fn projected_bucketed(
        &self,
        data: &Dataset,
        idx: &[usize],
        kron: &crate::project::KroneckerProjector,
        mut f: impl FnMut(GradBlock<'_>) -> Result<()>,
    ) -> Result<()> {
        self.model.check_dataset(data)?;
        let k = kron.output_dim();
        let br = self.block_rows.max(1);
        let batch = self.batch_size.min(BUCKET_ROWS);
        let window_rows = batch.saturating_mul(8).max(1);
        let feats = data.features();
        for (w, window) in idx.chunks(window_rows).enumerate() {
            let mut order: Vec<usize> = (0..window.len()).collect();
            order.sort_by_key(|&r| (feats.token_row(window[r]).len(), r));
            let mut out = vec![0.0f32; window.len() * k];
            let mut outputs = vec![0.0f32; window.len()];
            let mut buf = Vec::new();
            for chunk in order.chunks(batch) {
                let rows: Vec<usize> = chunk.iter().map(|&r| window[r]).collect();
                let cap = self.capture(data, &rows)?;
                buf.resize(rows.len() * k, 0.0);
                kron.project_captured(&cap.layers, &mut buf)?;
                for (j, &r) in chunk.iter().enumerate() {
                    out[r * k..(r + 1) * k].copy_from_slice(&buf[j * k..(j + 1) * k]);
                    outputs[r] = cap.outputs[j];
                }
            }
            let start = w * window_rows;
            for b0 in (0..window.len()).step_by(br) {
                let r = br.min(window.len() - b0);
                f(GradBlock {
                    start: start + b0,
                    rows: &window[b0..b0 + r],
                    dim: k,
                    values: &out[b0 * k..(b0 + r) * k],
                    outputs: &outputs[b0..b0 + r],
                })?;
            }
        }
        Ok(())
    }

    /// All projected gradients as one row-major `n × k` matrix.
    pub fn projected_matrix<'r>(
        &self,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
        proj: &dyn Projector,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.projected(data, rows, proj, |b| {
            out.extend_from_slice(b.values);
            Ok(())
        })?;
        Ok(out)
    }

    pub(crate) fn check_projector(&self, proj: &dyn Projector) -> Result<()> {
        if proj.input_dim() != self.dim() {
            return Err(GradError::shape(
                "projector input dimension",
                format!("{} (the engine's gradient width)", self.dim()),
                proj.input_dim(),
            ));
        }
        if let Some(k) = proj.as_kronecker()
            && k.layout() != &self.binding.layout
        {
            return Err(GradError::shape(
                "Kronecker projector layers",
                format!("{:?}", self.binding.layout.paths()),
                format!("{:?}", k.layout().paths()),
            ));
        }
        Ok(())
    }

    /// `Σ_r w_r ∇_θ f(rows[r])` (all weights 1 when `weights` is `None`),
    /// computed per batch as one GEMM per layer on the captured factors.
    pub fn weighted_sum<'r>(
        &self,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
        weights: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let idx = rows.into().resolve(data.len(), data.name())?;
        if let Some(w) = weights {
            crate::error::check_len("weighted_sum weights", w, idx.len())?;
        }
        let mut out = vec![0.0f32; self.dim()];
        let slots = self.binding.layout.slots();
        self.for_each_batch(data, &idx, |start, batch, cap| {
            let local: Vec<usize> = (0..batch.len()).collect();
            let coef = weights.map(|w| &w[start..start + batch.len()]);
            let parts: Vec<(usize, Vec<f32>)> = slots
                .par_iter()
                .zip(&cap.layers)
                .enumerate()
                .map_init(Scratch::default, |s, (l, (slot, layer))| {
                    let mut part = vec![0.0f32; slot.desc.len];
                    layer.accumulate(&local, coef, &mut part, s);
                    (l, part)
                })
                .collect();
            for (l, part) in parts {
                crate::kernels::axpy(1.0, &part, &mut out[slots[l].range()]);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Group gradients (GGDA, Ley et al. 2024, eq. 1): row `g` of the
    /// `k × dim` result is `Σ_{i∈g} ∇_θ f_i` (or the mean), computed batched
    /// as `A_gᵀ Δ_g` GEMMs on the captured factors without materialising
    /// per-sample gradients. With a projector, rows are projected afterwards
    /// (`k × output_dim`).
    pub fn group(
        &self,
        data: &Dataset,
        grouping: &Grouping,
        reduce: Reduce,
        proj: Option<&dyn Projector>,
    ) -> Result<Vec<f32>> {
        if grouping.n_points() != data.len() {
            return Err(GradError::shape(
                format!("grouping of {}", data.name()),
                format!("{} points (the dataset's rows)", data.len()),
                grouping.n_points(),
            ));
        }
        if let Some(p) = proj {
            self.check_projector(p)?;
        }
        let k = grouping.n_groups();
        let p = self.dim();
        let mut out = vec![0.0f32; k * p];
        let sizes = grouping.sizes();
        let assign = grouping.assignment();
        // Rows sorted by group, so most groups fall into one batch.
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| assign[i]);
        let slots = self.binding.layout.slots();
        self.for_each_batch(data, &order, |_, batch, cap| {
            // Sorted rows make each group a contiguous run of the batch.
            let mut runs: Vec<(usize, Range<usize>)> = Vec::new();
            for (r, &i) in batch.iter().enumerate() {
                let g = assign[i];
                match runs.last_mut() {
                    Some((lg, rr)) if *lg == g => rr.end = r + 1,
                    _ => runs.push((g, r..r + 1)),
                }
            }
            // One task per (group, layer), each owning its disjoint slice of
            // `out`, so the GEMMs write in place and spread over the threads.
            let mut group_rows: Vec<Option<&mut [f32]>> = out.chunks_mut(p).map(Some).collect();
            let mut tasks: Vec<(usize, Range<usize>, f32, &mut [f32])> = Vec::new();
            for (g, rr) in runs {
                let scale = match reduce {
                    Reduce::Sum => 1.0,
                    Reduce::Mean => 1.0 / sizes[g] as f32,
                };
                let mut rest = group_rows[g]
                    .take()
                    .expect("a group is one contiguous run per batch");
                for (l, slot) in slots.iter().enumerate() {
                    let (part, tail) = rest.split_at_mut(slot.desc.len);
                    rest = tail;
                    tasks.push((l, rr.clone(), scale, part));
                }
            }
            tasks
                .into_par_iter()
                .for_each_init(Scratch::default, |s, (l, rr, scale, part)| {
                    cap.layers[l].accumulate_range(rr, scale, part, s);
                });
            Ok(())
        })?;
        match proj {
            None => Ok(out),
            Some(pr) => {
                let mut po = vec![0.0f32; k * pr.output_dim()];
                pr.project(k, &out, &mut po)?;
                Ok(po)
            }
        }
    }
}
