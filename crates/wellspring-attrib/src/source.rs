//! [`ModelSource`]: what an attributor is fitted on besides the training set.

use std::sync::Arc;

use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, Checkpoint, SubsetTrainer, TrainConfig};

use crate::error::{AttribError, Result};

/// A model saved during training with the learning rate of the steps that
/// led to it (TracInCP, Pruthi et al. 2020, eq. 3).
#[derive(Clone, Debug)]
pub struct TrainingCheckpoint {
    /// The model at this point of training.
    pub model: AnyModel,
    /// Learning rate of the steps before it (finite, > 0).
    pub lr: f64,
    /// Epochs completed when it was taken (for messages and reports).
    pub epoch: usize,
}

impl TrainingCheckpoint {
    /// A checkpoint of any attributable model.
    pub fn new(model: impl Into<AnyModel>, lr: f64, epoch: usize) -> Self {
        Self {
            model: model.into(),
            lr,
            epoch,
        }
    }
}

impl From<Checkpoint> for TrainingCheckpoint {
    fn from(c: Checkpoint) -> Self {
        Self::new(c.model, c.lr, c.epoch)
    }
}

impl From<&Checkpoint> for TrainingCheckpoint {
    fn from(c: &Checkpoint) -> Self {
        Self::new(&c.model, c.lr, c.epoch)
    }
}

/// The trained model, plus what some methods need: training checkpoints
/// (TracInCP), an ensemble of independently trained models or a way to
/// train them (TRAK's `M` models), the device to compute on, and the
/// training configuration.
///
/// The model is an [`AnyModel`]: the zoo's `Model` or any burn module that
/// implements [`wellspring_models::Attributable`]. Similarity methods (PAE,
/// embeddings, l2, ESVM) and RPS use only `model` and `device`.
#[derive(Clone, Debug)]
pub struct ModelSource {
    /// The trained model whose predictions are attributed.
    pub model: AnyModel,
    /// Checkpoints saved during training, oldest first, each with its
    /// learning rate (TracInCP, Pruthi et al. 2020, eq. 3).
    pub checkpoints: Vec<TrainingCheckpoint>,
    /// Further models trained on the same data with other seeds (TRAK, Park
    /// et al. 2023, §3: the ensemble over `M` models).
    pub ensemble: Vec<AnyModel>,
    /// Where model computations run.
    pub device: Device,
    /// How the model was trained, if known (damping defaults, weight decay).
    pub train_config: Option<TrainConfig>,
    /// Trains a fresh model on a subset of the training set (TRAK's ensemble
    /// when `ensemble` is short). Zoo models get one from their config and
    /// `train_config`; other models need [`ModelSource::with_trainer`].
    pub trainer: Option<Arc<dyn SubsetTrainer>>,
}

impl ModelSource {
    /// A source with just the model and its device.
    pub fn new(model: impl Into<AnyModel>, device: Device) -> Self {
        Self {
            model: model.into(),
            checkpoints: Vec::new(),
            ensemble: Vec::new(),
            device,
            train_config: None,
            trainer: None,
        }
    }

    /// With training checkpoints (oldest first): zoo [`Checkpoint`]s or
    /// [`TrainingCheckpoint`]s of any model.
    pub fn with_checkpoints<C: Into<TrainingCheckpoint>>(
        mut self,
        checkpoints: impl IntoIterator<Item = C>,
    ) -> Self {
        self.checkpoints = checkpoints.into_iter().map(Into::into).collect();
        self
    }

    /// With an ensemble of further models.
    pub fn with_ensemble<M: Into<AnyModel>>(
        mut self,
        ensemble: impl IntoIterator<Item = M>,
    ) -> Self {
        self.ensemble = ensemble.into_iter().map(Into::into).collect();
        self
    }

    /// With the training configuration.
    pub fn with_train_config(mut self, cfg: TrainConfig) -> Self {
        self.train_config = Some(cfg);
        self
    }

    /// With a way to train fresh models on subsets (a closure
    /// `|train, subset, seed| -> AnyModel` or any [`SubsetTrainer`]).
    pub fn with_trainer(mut self, trainer: impl SubsetTrainer + 'static) -> Self {
        self.trainer = Some(Arc::new(trainer));
        self
    }

    /// Checks the checkpoints for `method`: at least one, every learning
    /// rate finite and positive (a negative one would flip every score),
    /// every model of the attributed model's architecture.
    pub fn check_checkpoints(&self, method: &str) -> Result<()> {
        if self.checkpoints.is_empty() {
            return Err(AttribError::invalid_param(
                format!("{method} checkpoints"),
                "[] (empty list)",
                "TracInCP needs the checkpoints saved during training \
                 (ModelSource::with_checkpoints; TrainConfig.checkpoint_every)",
            ));
        }
        for (k, c) in self.checkpoints.iter().enumerate() {
            let what = format!("{method} checkpoint {k} (epoch {})", c.epoch);
            check_lr(&format!("{what} learning rate"), c.lr)?;
            check_same_architecture(&self.model, &c.model, &what)?;
        }
        Ok(())
    }
}

/// Checks that `other` (a training checkpoint or an ensemble member, named by
/// `what`, e.g. `"tracin-cp checkpoint 2 (epoch 4)"`) has exactly the
/// tracked parameter layers of `model`: the same paths, kinds and shapes.
/// Gradients of another architecture cannot be compared with the model's,
/// so a mismatch is an error naming the first differing layer.
pub fn check_same_architecture(model: &AnyModel, other: &AnyModel, what: &str) -> Result<()> {
    Ok(model.check_same_architecture(other, what)?)
}

/// Checks a learning rate read from a summary or checkpoint list (named by
/// `what`): it weighs gradient products, so it must be finite and positive
/// (a negative one would flip the sign of every score).
pub fn check_lr(what: &str, lr: f64) -> Result<()> {
    if !lr.is_finite() || lr <= 0.0 {
        return Err(AttribError::invalid_param(
            what,
            lr,
            "a learning rate must be finite and > 0",
        ));
    }
    Ok(())
}
