//! Reading, writing and differentiating the selected parameters of any
//! [`AnyModel`] in f64, keyed by parameter id (the models crate's
//! `params_flat` is f32, which would round away a finite-difference step).

use std::collections::HashMap;

use burn::module::ParamId;
use burn::tensor::{Gradients, Tensor, TensorData};
use wellspring_models::AnyModel;

use crate::capture::host_f64;
use crate::layout::Binding;

/// Where each selected parameter's values go in the packed vector.
fn slices(b: &Binding) -> HashMap<ParamId, std::ops::Range<usize>> {
    let mut out = HashMap::new();
    for (slot, ids) in b.layout.slots().iter().zip(&b.ids) {
        let w = slot.desc.weight_len();
        out.insert(ids[0], slot.offset..slot.offset + w);
        if let Some(&bias) = ids.get(1) {
            out.insert(bias, slot.offset + w..slot.offset + slot.desc.len);
        }
    }
    out
}

/// The selected parameters, packed as `b.layout`, in f64.
pub(crate) fn params_f64(model: &AnyModel, b: &Binding) -> Vec<f64> {
    let at = slices(b);
    let mut out = vec![0.0; b.layout.dim()];
    model.for_each_param(&mut |id, v| {
        if let Some(r) = at.get(&id) {
            out[r.clone()].copy_from_slice(&host_f64(v));
        }
    });
    out
}

/// A copy of `model` whose selected parameters are `packed` (layout order),
/// keeping dtype, device and gradient tracking.
pub(crate) fn with_params_f64(model: &AnyModel, b: &Binding, packed: &[f64]) -> AnyModel {
    let at = slices(b);
    model.map_params(&mut |id, old| {
        at.get(&id).map(|r| {
            Tensor::<1>::from_data(
                TensorData::new(packed[r.clone()].to_vec(), [r.len()]),
                (&old.device(), old.dtype()),
            )
        })
    })
}

/// Gradients w.r.t. the selected parameters, packed as `b.layout`, read
/// from `grads` (zero where the backward pass did not reach a parameter).
pub(crate) fn packed_param_grads(model: &AnyModel, b: &Binding, grads: &Gradients) -> Vec<f64> {
    let at = slices(b);
    let mut out = vec![0.0; b.layout.dim()];
    model.for_each_grad(grads, &mut |id, g| {
        if let (Some(r), Some(g)) = (at.get(&id), g) {
            out[r.clone()].copy_from_slice(&host_f64(g));
        }
    });
    out
}
