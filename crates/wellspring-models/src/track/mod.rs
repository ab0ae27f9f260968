//! Attributing any burn model: the [`Attributable`] trait, the [`Tracker`]
//! its forward pass routes parameter layers through, the [`ParamTable`] of
//! tracked layers read from burn's module visitor, and the [`AnyModel`]
//! handle that every method, metric and selector takes.
//!
//! The zoo's [`crate::Model`] goes through exactly the same path: its
//! [`crate::Net`] routes every layer through a tracker and its layer paths
//! (`body.0`, `head`) come from the same [`ParamTable`].

mod model;
pub(crate) mod params;
mod tracker;

pub use model::{AnyModel, Attributable, DynAttributable, Logits, ModelOutput, module_dtype};
pub(crate) use model::{cast_module, flat_setter, params_flat_of};
pub use params::{ParamInfo, ParamTable, TrackedLayer};
pub use tracker::{LayerNames, Tracker};
