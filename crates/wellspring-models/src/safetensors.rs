//! safetensors import/export through burn-store, with PyTorch names and layouts.
//!
//! Keys are the PyTorch `state_dict` names of the equivalent `nn.Module`:
//! `body.{i}.weight`, `body.{i}.bias` (Linear, Conv2d, BatchNorm2d γ/β,
//! EmbeddingBag), `body.{i}.running_mean` / `running_var` (BatchNorm buffers),
//! `body.{i}.inner.{j}.…` inside a residual block, and `head.weight`,
//! `head.bias`. Layouts are PyTorch's: `nn.Linear.weight` is `[out, in]` in the
//! file (burn stores `[in, out]`; burn-store's PyTorch adapters transpose),
//! conv weights `[out, in, kh, kw]`. Indices count every layer of the body,
//! parameter-free ones included, exactly as `nn.Sequential` numbers them:
//! for the MLP 784-128-64-10 with dropout the keys are `body.0.*`, `body.3.*`,
//! `head.*`. A PyTorch model built as `nn.Sequential` body plus a `head` Linear
//! therefore exports a file that loads here unchanged.

use std::path::Path;

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Device;

use crate::checkpoint::check_apply;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::Model;

impl Model {
    /// Writes every parameter and BatchNorm buffer to a safetensors file with
    /// PyTorch key names and layouts (see the module docs); the config is stored
    /// as JSON under the metadata key `wellspring.config`. Written atomically.
    pub fn export_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let config = serde_json::to_string(&self.config)
            .map_err(|e| ModelError::file(path, format!("cannot encode the config: {e}")))?;
        let mut store = SafetensorsStore::from_file(path)
            .overwrite(true)
            .skip_enum_variants(true)
            .with_to_adapter(BurnToPyTorchAdapter)
            .metadata("wellspring.config", config);
        self.valid()
            .net
            .save_into(&mut store)
            .map_err(|e| ModelError::file(path, format!("cannot write safetensors: {e}")))
    }

    /// Builds a `config` model on `device` with weights from a safetensors file
    /// in PyTorch layout (see the module docs for the expected keys). Missing
    /// keys, unexpected keys and shape mismatches are errors naming the tensors;
    /// PyTorch's `num_batches_tracked` entries are ignored.
    pub fn import_safetensors(
        path: impl AsRef<Path>,
        config: ModelConfig,
        device: &Device,
    ) -> Result<Model> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(ModelError::file(path, "no such safetensors file"));
        }
        let mut model = Model::new(config, 0, device)?;
        let mut store = SafetensorsStore::from_file(path)
            .skip_enum_variants(true)
            // Collect every problem in the ApplyResult and report them together.
            .allow_partial(true)
            .validate(false)
            .with_from_adapter(PyTorchToBurnAdapter);
        let result = model
            .net
            .load_from(&mut store)
            .map_err(|e| ModelError::file(path, format!("cannot read safetensors: {e}")))?;
        check_apply(path, &result, model.config.name(), &["num_batches_tracked"])?;
        Ok(model)
    }
}
