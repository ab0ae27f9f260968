//! [`ModelSource`]: what an attributor is fitted on besides the training set.

use wellspring_models::burn_types::Device;
use wellspring_models::{Checkpoint, Model, ParamLayerDesc, TrainConfig};

use crate::error::{AttribError, Result};

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

/// Checks that `other` (a training checkpoint or an ensemble member, named by
/// `what`, e.g. `"tracin-cp checkpoint 2 (epoch 4)"`) has exactly the
/// parameter layers of `model`: the same paths, kinds, weight shapes and
/// biases. Gradients of another architecture cannot be compared with the
/// model's, so a mismatch is an error naming the first differing layer.
pub fn check_same_architecture(model: &Model, other: &Model, what: &str) -> Result<()> {
    let (want, got) = (model.param_layers(), other.param_layers());
    let describe = |l: Option<&ParamLayerDesc>| match l {
        None => "no layer".to_string(),
        Some(l) => format!(
            "{} {:?} {:?}{}",
            l.path,
            l.kind,
            l.weight_shape,
            if l.has_bias { " + bias" } else { "" }
        ),
    };
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i), got.get(i));
        let same = match (w, g) {
            (Some(w), Some(g)) => {
                w.path == g.path
                    && w.kind == g.kind
                    && w.weight_shape == g.weight_shape
                    && w.has_bias == g.has_bias
            }
            _ => false,
        };
        if !same {
            return Err(AttribError::unsupported(
                what,
                format!(
                    "its architecture ({}) differs from the model's ({}): parameter layer {i} is {}, \
                     the model's is {}",
                    other.config.name(),
                    model.config.name(),
                    describe(g),
                    describe(w)
                ),
            ));
        }
    }
    Ok(())
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
