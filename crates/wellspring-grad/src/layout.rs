//! Which parameters a gradient covers: [`LayerSelection`] resolved against a
//! model into a [`GradLayout`] (selected layers, in canonical order, packed).

use serde::{Deserialize, Serialize};
use wellspring_models::{Model, ParamLayerDesc, ParamLayerKind};

use crate::error::{GradError, Result};

/// The parameters to differentiate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerSelection {
    /// Every parameter.
    #[default]
    All,
    /// The layers whose path equals one of these names or lies under it
    /// (`"body.7"` selects `body.7.inner.0`, ...); see
    /// [`Model::param_layers_matching`]. Unknown names are an error.
    Layers(Vec<String>),
    /// The head (last linear layer) only.
    Head,
}

impl LayerSelection {
    /// Selects layers by name.
    pub fn layers<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        LayerSelection::Layers(names.into_iter().map(Into::into).collect())
    }

    /// The selected layers of `model`, packed into one vector.
    pub fn resolve(&self, model: &Model) -> Result<GradLayout> {
        let descs = match self {
            LayerSelection::All => model.param_layers(),
            LayerSelection::Head => model.param_layers_matching(&["head"])?,
            LayerSelection::Layers(names) => {
                if names.is_empty() {
                    return Err(GradError::param(
                        "LayerSelection::Layers",
                        "[]",
                        "name at least one layer",
                    ));
                }
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                model.param_layers_matching(&refs)?
            }
        };
        Ok(GradLayout::new(descs))
    }
}

/// One selected layer and where it sits in the packed gradient vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSlot {
    /// The layer (its `offset` is in the model's full flat vector).
    pub desc: ParamLayerDesc,
    /// Offset of the layer's first value in the packed (selected) vector.
    pub offset: usize,
}

impl LayerSlot {
    /// Range in the packed vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.desc.len
    }
}

/// The selected parameter layers in canonical order; a gradient over them is
/// the concatenation of each layer's weight then bias, in burn's layout
/// (Linear weight `[d_in, d_out]`, Conv2d `[c_out, c_in, kh, kw]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradLayout {
    slots: Vec<LayerSlot>,
    dim: usize,
}

impl GradLayout {
    /// Packs `descs` (in the given order).
    pub fn new(descs: Vec<ParamLayerDesc>) -> Self {
        let mut offset = 0;
        let slots = descs
            .into_iter()
            .map(|desc| {
                let s = LayerSlot { desc, offset };
                offset += s.desc.len;
                s
            })
            .collect();
        GradLayout { slots, dim: offset }
    }

    /// Number of parameters covered.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The selected layers.
    pub fn slots(&self) -> &[LayerSlot] {
        &self.slots
    }

    /// Layer paths, in order.
    pub fn paths(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.desc.path.clone()).collect()
    }

    /// The slot of layer `path`, if selected.
    pub fn slot(&self, path: &str) -> Option<&LayerSlot> {
        self.slots.iter().find(|s| s.desc.path == path)
    }

    /// Whether every selected layer is linear (what some fast paths need).
    pub fn all_linear(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.desc.kind == ParamLayerKind::Linear)
    }

    /// The selected entries of a full flat parameter vector (as from
    /// [`Model::params_flat`]).
    pub fn gather<T: Copy>(&self, full: &[T]) -> Vec<T> {
        let mut out = Vec::with_capacity(self.dim);
        for s in &self.slots {
            out.extend_from_slice(&full[s.desc.range()]);
        }
        out
    }

    /// Writes a packed vector into the selected entries of a full flat vector.
    pub fn scatter<T: Copy>(&self, packed: &[T], full: &mut [T]) {
        for s in &self.slots {
            full[s.desc.range()].copy_from_slice(&packed[s.range()]);
        }
    }
}
