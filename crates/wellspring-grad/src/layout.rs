//! Which parameters a gradient covers: [`LayerSelection`] resolved against a
//! model into a [`GradLayout`] (selected layers, in canonical order, packed).

use burn::module::ParamId;
use serde::{Deserialize, Serialize};
use wellspring_models::{AnyModel, LayerNames, ParamLayerDesc, ParamLayerKind, ParamTable};

use crate::error::{GradError, Result};

/// The parameters to differentiate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerSelection {
    /// Every parameter. A parameter outside the tracked layers (see
    /// [`wellspring_models::ParamTable`]) is an error naming it.
    #[default]
    All,
    /// The layers whose path equals one of these names or lies under it
    /// (`"body.7"` selects `body.7.inner.0`, ...). Unknown names are an error
    /// that lists the available paths.
    Layers(Vec<String>),
    /// The head: the layer named `head` (the zoo's last linear layer), or
    /// else the last tracked layer in declaration order.
    Head,
    /// Every tracked layer; parameters outside them are held fixed (the
    /// explicit opt-in for models with, e.g., a raw positional `Param`).
    Tracked,
}

impl LayerSelection {
    /// Selects layers by name.
    pub fn layers<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        LayerSelection::Layers(names.into_iter().map(Into::into).collect())
    }

    /// The selected layers of `model`, packed into one vector.
    pub fn resolve(&self, model: impl Into<AnyModel>) -> Result<GradLayout> {
        Ok(self.bind(&model.into())?.layout)
    }

    /// The selected layers of `model` with their parameter ids.
    pub(crate) fn bind(&self, model: &AnyModel) -> Result<Binding> {
        let table = model.param_table();
        let names = table.names();
        let picked: Vec<usize> = match self {
            LayerSelection::All => {
                if !table.untracked.is_empty() {
                    return Err(untracked_error(model, &table));
                }
                (0..table.layers.len()).collect()
            }
            LayerSelection::Tracked => (0..table.layers.len()).collect(),
            LayerSelection::Head => {
                let pos = table
                    .layers
                    .iter()
                    .position(|l| l.desc.path == "head")
                    .or_else(|| table.layers.len().checked_sub(1));
                match pos {
                    Some(p) => vec![p],
                    None => return Err(no_layers(model)),
                }
            }
            LayerSelection::Layers(names) => {
                if names.is_empty() {
                    return Err(GradError::param(
                        "LayerSelection::Layers",
                        "[]",
                        "name at least one layer",
                    ));
                }
                let under = |path: &str, name: &str| {
                    path == name
                        || (path.len() > name.len()
                            && path.starts_with(name)
                            && path.as_bytes()[name.len()] == b'.')
                };
                for name in names {
                    if !table.layers.iter().any(|l| under(&l.desc.path, name)) {
                        return Err(wellspring_models::ModelError::UnknownLayer {
                            name: name.clone(),
                            available: table
                                .layers
                                .iter()
                                .map(|l| l.desc.path.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        }
                        .into());
                    }
                }
                (0..table.layers.len())
                    .filter(|&k| names.iter().any(|n| under(&table.layers[k].desc.path, n)))
                    .collect()
            }
        };
        if picked.is_empty() {
            return Err(no_layers(model));
        }
        let ids = picked
            .iter()
            .map(|&k| table.layers[k].ids.clone())
            .collect();
        let layout = GradLayout::new(
            picked
                .iter()
                .map(|&k| table.layers[k].desc.clone())
                .collect(),
        );
        Ok(Binding { layout, ids, names })
    }
}

fn no_layers(model: &AnyModel) -> GradError {
    GradError::unsupported(
        format!("gradients of the {} model", model.model_name()),
        "it has no tracked parameter layer (Linear, Conv2d, Embedding, LayerNorm, BatchNorm2d, EmbeddingBag)",
    )
}

fn untracked_error(model: &AnyModel, table: &ParamTable) -> GradError {
    let list = table
        .untracked
        .iter()
        .map(|p| format!("`{}` {:?}", p.path, p.shape))
        .collect::<Vec<_>>()
        .join(", ");
    GradError::unsupported(
        format!("per-example gradients of the {} model", model.model_name()),
        format!(
            "parameter(s) {list} lie outside the layers a Tracker handles (Linear, Conv2d, \
             Embedding, LayerNorm, BatchNorm2d, EmbeddingBag), so they get no per-example \
             gradient; express them through such a layer, or hold them fixed with \
             LayerSelection::Tracked (or name the layers with LayerSelection::Layers)"
        ),
    )
}

/// A [`GradLayout`] bound to one model: each slot's parameter ids (weight
/// first) and the names a probing tracker needs. Ids are not part of the
/// layout, so same-shaped models (checkpoints, ensemble members) share it.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub layout: GradLayout,
    pub ids: Vec<Vec<ParamId>>,
    pub names: LayerNames,
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
    /// `AnyModel::params_flat`).
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
