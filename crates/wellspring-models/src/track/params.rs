//! The parameters of any burn module, read through burn's `ModuleVisitor`:
//! which belong to a layer the [`crate::Tracker`] knows (and so get
//! per-example gradients), which do not, and the flat-vector helpers
//! (read, overwrite, gradients) keyed by parameter id.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Gradients, Tensor};

use crate::layers::{ParamLayerDesc, ParamLayerKind};
use crate::track::tracker::LayerNames;

/// One float parameter of a module, by path (`blocks.0.attn.query.weight`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// Dotted path: module field names, `Vec` indices, then the parameter's field.
    pub path: String,
    /// burn's id of the parameter.
    pub id: ParamId,
    /// Shape.
    pub shape: Vec<usize>,
}

/// A parameter layer the tracker knows, with the ids of its parameters in
/// canonical order (weight or γ first, then the bias or β if present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedLayer {
    /// Path, kind, shapes and place in the flat vector.
    pub desc: ParamLayerDesc,
    /// Parameter ids, weight first.
    pub ids: Vec<ParamId>,
}

/// Every float parameter of a module, split into tracked layers (in the
/// module's declaration order, which is the canonical flat-vector order) and
/// parameters outside any tracked layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamTable {
    /// Layers of a kind the tracker handles, in declaration order.
    pub layers: Vec<TrackedLayer>,
    /// Parameters outside such layers (a raw `Param` field, a layer type the
    /// tracker does not know). They get no per-example gradients.
    pub untracked: Vec<ParamInfo>,
}

impl ParamTable {
    /// Reads the table of `module`.
    ///
    /// Layer paths join the field names and `Vec` indices leading to the
    /// layer, leaving out enum variant names (the zoo's `Vec<Layer>` gives
    /// `body.0`, `body.7.inner.1`, `head`). A layer is recognised by its burn
    /// type name: `Linear`, `Conv2d`, `Embedding`, `LayerNorm`, and this
    /// crate's `BatchNorm2d` and `EmbeddingBag` (whose running statistics
    /// are buffers, not parameters).
    pub fn of<M: Module>(module: &M) -> ParamTable {
        let mut c = Collector::default();
        module.visit(&mut c);
        c.finish()
    }

    /// The layer descriptions, in canonical order.
    pub fn descs(&self) -> Vec<ParamLayerDesc> {
        self.layers.iter().map(|l| l.desc.clone()).collect()
    }

    /// Layer paths by first-parameter id (what a probing tracker needs).
    pub fn names(&self) -> LayerNames {
        LayerNames::new(self.layers.iter().map(|l| (l.ids[0], l.desc.path.clone())))
    }

    /// Number of parameters in tracked layers.
    pub fn n_params(&self) -> usize {
        self.layers.iter().map(|l| l.desc.len).sum()
    }
}

#[derive(Default)]
struct Collector {
    stack: Vec<(String, String)>,
    params: Vec<(Vec<(String, String)>, ParamInfo)>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = join(&self.stack);
        self.params.push((
            self.stack.clone(),
            ParamInfo {
                path,
                id: param.id,
                shape: param.shape().as_slice().to_vec(),
            },
        ));
    }
}

/// Dotted path of a visitor stack, enum variant names left out.
fn join(stack: &[(String, String)]) -> String {
    stack
        .iter()
        .filter(|(_, container)| !container.starts_with("Enum:"))
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// The tracked kind of a parameter field of a struct named `owner`, and
/// whether the field is the layer's first (weight) parameter; `None` for a
/// buffer of a known layer.
enum Role {
    First(ParamLayerKind),
    Second,
    Buffer,
    Untracked,
}

fn role(owner: &str, field: &str) -> Role {
    use ParamLayerKind as K;
    match (owner, field) {
        ("Struct:Linear", "weight") => Role::First(K::Linear),
        ("Struct:Conv2d", "weight") => Role::First(K::Conv2d),
        ("Struct:BatchNorm2d", "weight") => Role::First(K::BatchNorm2d),
        ("Struct:EmbeddingBag", "weight") => Role::First(K::EmbeddingBag),
        ("Struct:Embedding", "weight") => Role::First(K::Embedding),
        ("Struct:LayerNorm", "gamma") => Role::First(K::LayerNorm),
        ("Struct:Linear" | "Struct:Conv2d" | "Struct:BatchNorm2d", "bias") => Role::Second,
        ("Struct:LayerNorm", "beta") => Role::Second,
        (_, f) if f.starts_with("running_") => Role::Buffer,
        _ => Role::Untracked,
    }
}

impl Collector {
    fn finish(self) -> ParamTable {
        let mut table = ParamTable::default();
        let mut offset = 0;
        for (stack, info) in self.params {
            let (field, owner) = stack
                .last()
                .map(|(n, c)| (n.as_str(), c.as_str()))
                .unwrap_or(("", ""));
            let layer_path = join(&stack[..stack.len().saturating_sub(1)]);
            match role(owner, field) {
                Role::First(kind) => {
                    let len = info.shape.iter().product::<usize>();
                    table.layers.push(TrackedLayer {
                        desc: ParamLayerDesc {
                            path: if layer_path.is_empty() {
                                field.to_string()
                            } else {
                                layer_path
                            },
                            kind,
                            weight_shape: info.shape.clone(),
                            has_bias: false,
                            offset,
                            len,
                        },
                        ids: vec![info.id],
                    });
                    offset += len;
                }
                Role::Second => match table.layers.last_mut() {
                    Some(l) if l.ids.len() == 1 && l.desc.path == layer_path => {
                        let n = info.shape.iter().product::<usize>();
                        l.desc.has_bias = true;
                        l.desc.len += n;
                        l.ids.push(info.id);
                        offset += n;
                    }
                    _ => table.untracked.push(info),
                },
                Role::Buffer => {}
                Role::Untracked => table.untracked.push(info),
            }
        }
        table
    }
}

/// Calls `f` with every float parameter's id and flattened value.
pub(crate) fn for_each_param<M: Module>(module: &M, f: &mut dyn FnMut(ParamId, Tensor<1>)) {
    struct V<'f>(&'f mut dyn FnMut(ParamId, Tensor<1>));
    impl ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = p.val();
            let n = v.shape().num_elements();
            (self.0)(p.id, v.reshape([n]));
        }
    }
    module.visit(&mut V(f));
}

/// Calls `f` with every float parameter's id and flattened gradient in
/// `grads` (`None` when the backward pass did not reach it).
pub(crate) fn for_each_grad<M: Module>(
    module: &M,
    grads: &Gradients,
    f: &mut dyn FnMut(ParamId, Option<Tensor<1>>),
) {
    struct V<'f, 'g>(&'f mut dyn FnMut(ParamId, Option<Tensor<1>>), &'g Gradients);
    impl ModuleVisitor for V<'_, '_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let g = p.val().grad(self.1).map(|g| {
                let n = g.shape().num_elements();
                g.reshape([n])
            });
            (self.0)(p.id, g);
        }
    }
    module.visit(&mut V(f, grads));
}

/// `module` with every float parameter for which `f` returns a value
/// replaced by it (reshaped to the parameter's shape; id, dtype of the new
/// value and gradient tracking kept).
pub(crate) fn map_params<M: Module>(
    module: M,
    f: &mut dyn FnMut(ParamId, Tensor<1>) -> Option<Tensor<1>>,
) -> M {
    struct Mp<'f>(&'f mut dyn FnMut(ParamId, Tensor<1>) -> Option<Tensor<1>>);
    impl ModuleMapper for Mp<'_> {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let id = p.id;
            let f = &mut self.0;
            p.map(|old| {
                let dims = old.dims();
                let n = old.shape().num_elements();
                match f(id, old.clone().reshape([n])) {
                    Some(new) => {
                        let grad = old.is_require_grad();
                        let v = new.reshape(dims).detach();
                        if grad { v.require_grad() } else { v }
                    }
                    None => old,
                }
            })
        }
    }
    module.map(&mut Mp(f))
}
