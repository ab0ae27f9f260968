//! [`ModelSource`]: what an attributor is fitted on besides the training set.

use wellspring_models::burn_types::Device;
use wellspring_models::{Checkpoint, Model, TrainConfig};

/// The trained model, plus what some methods need: training checkpoints
/// (TracInCP), an ensemble of independently trained models (TRAK's `M`
/// models), the device to compute on, and the training configuration.
///
/// Similarity methods (PAE, embeddings, l2, ESVM) and RPS use only `model`
/// and `device`.
#[derive(Clone, Debug)]
pub struct ModelSource {
    /// The trained model whose predictions are attributed.
    pub model: Model,
    /// Checkpoints saved during training, oldest first, each with its
    /// learning rate (TracInCP, Pruthi et al. 2020, eq. 3).
    pub checkpoints: Vec<Checkpoint>,
    /// Further models trained on the same data with other seeds (TRAK, Park
    /// et al. 2023, §3: the ensemble over `M` models).
    pub ensemble: Vec<Model>,
    /// Where model computations run.
    pub device: Device,
    /// How the model was trained, if known (damping defaults, weight decay).
    pub train_config: Option<TrainConfig>,
}

impl ModelSource {
    /// A source with just the model and its device.
    pub fn new(model: Model, device: Device) -> Self {
        Self {
            model,
            checkpoints: Vec::new(),
            ensemble: Vec::new(),
            device,
            train_config: None,
        }
    }

    /// With training checkpoints (oldest first).
    pub fn with_checkpoints(mut self, checkpoints: Vec<Checkpoint>) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// With an ensemble of further models.
    pub fn with_ensemble(mut self, ensemble: Vec<Model>) -> Self {
        self.ensemble = ensemble;
        self
    }

    /// With the training configuration.
    pub fn with_train_config(mut self, cfg: TrainConfig) -> Self {
        self.train_config = Some(cfg);
        self
    }
}
