//! # wellspring-models
//!
//! burn models for training-data attribution, a deterministic trainer,
//! evaluation, checkpoints and safetensors import/export.
//!
//! - [`ModelConfig`] describes an architecture (LogReg, MLP, CNN, ResNet-9,
//!   text bag, FiMO's tabular MLP); [`Arch`] names a family (`mlp`, `cnn`,
//!   ...) and sizes it for a dataset; [`Model::new`] builds it with
//!   parameters drawn from an explicit seed.
//! - [`Net`] = `body: Vec<Layer>` + `head: Linear`; [`Net::forward_hooked`]
//!   calls a [`ForwardHook`] at every parameter layer (what the gradient engine
//!   uses to get per-example layer inputs and output gradients).
//! - [`Model::params_flat`] / [`Model::set_params_flat`] / [`Model::param_layers`]
//!   give one canonical flat parameter vector.
//! - Any burn module is attributable: implement [`Attributable`] (the forward
//!   pass routes its Linear / Conv2d / Embedding / LayerNorm layers through a
//!   [`Tracker`]) and wrap it in an [`AnyModel`], the handle every method,
//!   metric and selector takes; [`ParamTable`] reads its tracked layers and
//!   names untracked parameters. The zoo's [`Net`] goes through the same
//!   tracker. [`zoo`] adds a transformer classifier and a decoder-only
//!   language model; [`fit_attributable`] trains any such module;
//!   [`SubsetTrainer`] is the train-on-a-subset seam for retraining metrics.
//! - [`TrainConfig`], [`Trainer`] (step/epoch level) and [`train`] train
//!   deterministically; [`SimClr`] trains a self-supervised encoder;
//!   [`evaluate`], [`predict_logits`], [`features`] evaluate.
//! - [`Model::save`] / [`Model::load`] write self-describing Burnpack
//!   checkpoints; [`Model::export_safetensors`] / [`Model::import_safetensors`]
//!   exchange weights with PyTorch.
//!
//! No backend is named anywhere: everything takes a `&Device`
//! (`Device::flex()` on CPU; `wgpu`/`cuda` crate features add GPU backends).

#![warn(missing_docs)]

mod arch;
mod batch;
mod checkpoint;
mod config;
mod error;
mod eval;
pub mod init;
mod layers;
mod model;
mod net;
mod safetensors;
pub mod ssl;
mod track;
mod train;
pub mod zoo;

pub use arch::Arch;
pub use batch::{Target, default_input_batch, default_target_batch};
pub use checkpoint::FORMAT_VERSION;
pub use config::{InputKind, ModelConfig};
pub use error::{ModelError, Result};
pub use eval::{Evaluation, Metrics, evaluate, features, predict_logits};
pub use layers::{
    BatchNorm2d, Buffer, DropoutLayer, EmbeddingBag, Flatten, GlobalMaxPool, Layer, ParamLayerDesc,
    ParamLayerKind, ParamLayerRef, Residual,
};
pub use model::Model;
pub use net::{Act, ForwardHook, Input, LayerInput, Mode, Net, NoHook, Output};
pub use ssl::{AugmentParams, ImageShape, SimClr, SimClrFit, nt_xent, ssl_features};
pub use track::{
    AnyModel, Attributable, DynAttributable, LayerNames, Logits, ModelOutput, ParamInfo,
    ParamTable, TrackedLayer, Tracker, module_dtype,
};
pub use train::{
    Checkpoint, EpochStats, Loss, Optimizer, Schedule, SubsetTrainer, TrainConfig, TrainOutput,
    TrainParams, Trainer, fit_attributable, per_example_loss_any, train, train_resumable,
};

/// Re-exports of the burn types that appear in this crate's API.
pub mod burn_types {
    pub use burn::module::{Module, Param, ParamId};
    pub use burn::nn::Linear;
    pub use burn::nn::conv::Conv2d;
    pub use burn::nn::{Embedding, LayerNorm};
    pub use burn::tensor::{DType, Device, FloatDType, Int, Tensor};
}
