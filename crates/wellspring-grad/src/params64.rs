//! Reading and writing the selected parameters in f64 (the models crate's
//! `params_flat`/`set_params_flat` are f32, which would round away a finite
//! difference step).

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use wellspring_models::{Layer, Model, Net, ParamLayerRef};

use crate::capture::host_f64;
use crate::layout::GradLayout;
use crate::reference::visit_param_layers;

/// The selected parameters, packed as `layout`, in f64.
pub(crate) fn params_f64(net: &Net, layout: &GradLayout) -> Vec<f64> {
    let mut by_path: Vec<(String, Vec<f64>)> = Vec::new();
    visit_param_layers(net, &mut |path, layer| {
        if layout.slot(path).is_none() {
            return;
        }
        let mut v = Vec::new();
        let mut push = |t: Vec<f64>| v.extend(t);
        match layer {
            ParamLayerRef::Linear(l) => {
                push(host_f64(l.weight.val()));
                if let Some(b) = &l.bias {
                    push(host_f64(b.val()));
                }
            }
            ParamLayerRef::Conv2d(c) => {
                push(host_f64(c.weight.val()));
                if let Some(b) = &c.bias {
                    push(host_f64(b.val()));
                }
            }
            ParamLayerRef::BatchNorm2d(b) => {
                push(host_f64(b.weight.val()));
                push(host_f64(b.bias.val()));
            }
            ParamLayerRef::EmbeddingBag(e) => push(host_f64(e.weight.val())),
        }
        by_path.push((path.to_string(), v));
    });
    let mut out = Vec::with_capacity(layout.dim());
    for slot in layout.slots() {
        let (_, v) = by_path
            .iter()
            .find(|(p, _)| *p == slot.desc.path)
            .expect("layout slots are parameter layers of the net");
        out.extend_from_slice(v);
    }
    out
}

fn overwrite<const D: usize>(p: &mut Param<Tensor<D>>, values: &[f64], pos: &mut usize) {
    let shape = p.shape();
    let n = shape.num_elements();
    let vals = values[*pos..*pos + n].to_vec();
    *pos += n;
    *p = p.clone().map(|old| {
        let grad = old.is_require_grad();
        let t = Tensor::from_data(
            TensorData::new(vals, shape.clone()),
            (&old.device(), old.dtype()),
        );
        if grad { t.require_grad() } else { t }
    });
}

/// A copy of `model` whose selected parameters are `packed` (layout order),
/// keeping dtype, device and gradient tracking.
pub(crate) fn with_params_f64(model: &Model, layout: &GradLayout, packed: &[f64]) -> Model {
    let mut m = model.clone();
    fn walk(layers: &mut [Layer], prefix: &str, layout: &GradLayout, packed: &[f64]) {
        for (i, layer) in layers.iter_mut().enumerate() {
            let path = format!("{prefix}.{i}");
            if let Layer::Residual(r) = layer {
                walk(&mut r.inner, &format!("{path}.inner"), layout, packed);
                continue;
            }
            let Some(slot) = layout.slot(&path) else {
                continue;
            };
            let mut pos = slot.offset;
            match layer {
                Layer::Linear(l) => {
                    overwrite(&mut l.weight, packed, &mut pos);
                    if let Some(b) = &mut l.bias {
                        overwrite(b, packed, &mut pos);
                    }
                }
                Layer::Conv2d(c) => {
                    overwrite(&mut c.weight, packed, &mut pos);
                    if let Some(b) = &mut c.bias {
                        overwrite(b, packed, &mut pos);
                    }
                }
                Layer::BatchNorm2d(b) => {
                    overwrite(&mut b.weight, packed, &mut pos);
                    overwrite(&mut b.bias, packed, &mut pos);
                }
                Layer::EmbeddingBag(e) => overwrite(&mut e.weight, packed, &mut pos),
                _ => {}
            }
        }
    }
    walk(&mut m.net.body, "body", layout, packed);
    if let Some(slot) = layout.slot("head") {
        let mut pos = slot.offset;
        overwrite(&mut m.net.head.weight, packed, &mut pos);
        if let Some(b) = &mut m.net.head.bias {
            overwrite(b, packed, &mut pos);
        }
    }
    m
}
