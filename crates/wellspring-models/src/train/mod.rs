//! Deterministic training: [`TrainConfig`] (checked builder), learning-rate
//! [`Schedule`]s, a step-level [`Trainer`], and the one-call [`train`].

mod generic;
mod optim;
mod schedule;
mod trainer;

pub use generic::{SubsetTrainer, fit_attributable, per_example_loss_any};
pub use schedule::Schedule;
pub use trainer::{Checkpoint, EpochStats, TrainOutput, Trainer, train, train_resumable};

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Optimizer and its hyper-parameters (burn-optim implementations; the learning
/// rate and weight decay live in [`TrainConfig`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// SGD with optional (PyTorch-style, no dampening) momentum; weight decay is
    /// L2 added to the gradient.
    Sgd {
        /// Momentum in `[0, 1)`; 0 = plain SGD.
        momentum: f64,
        /// Nesterov momentum (needs `momentum > 0`).
        nesterov: bool,
    },
    /// Adam (Kingma & Ba 2015); weight decay is L2 added to the gradient.
    Adam {
        /// First-moment decay in `[0, 1)`.
        beta1: f64,
        /// Second-moment decay in `[0, 1)`.
        beta2: f64,
        /// Denominator epsilon, `> 0`.
        eps: f64,
    },
    /// AdamW (Loshchilov & Hutter 2019); weight decay is decoupled.
    AdamW {
        /// First-moment decay in `[0, 1)`.
        beta1: f64,
        /// Second-moment decay in `[0, 1)`.
        beta2: f64,
        /// Denominator epsilon, `> 0`.
        eps: f64,
    },
    /// AdaGrad (Duchi et al. 2011).
    AdaGrad {
        /// Learning-rate decay, `>= 0`.
        lr_decay: f64,
        /// Denominator epsilon, `> 0`.
        eps: f64,
    },
    /// RMSProp (Hinton 2012).
    RmsProp {
        /// Smoothing constant in `[0, 1)`.
        alpha: f64,
        /// Momentum in `[0, 1)`.
        momentum: f64,
        /// Denominator epsilon, `> 0`.
        eps: f64,
        /// Normalise by the centred second moment.
        centered: bool,
    },
}

impl Optimizer {
    /// Plain SGD.
    pub fn sgd() -> Self {
        Optimizer::Sgd {
            momentum: 0.0,
            nesterov: false,
        }
    }

    /// SGD with heavy-ball momentum.
    pub fn sgd_momentum(momentum: f64) -> Self {
        Optimizer::Sgd {
            momentum,
            nesterov: false,
        }
    }

    /// Adam with PyTorch's defaults (0.9, 0.999, 1e-8).
    pub fn adam() -> Self {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// AdamW with PyTorch's defaults (0.9, 0.999, 1e-8).
    pub fn adamw() -> Self {
        Optimizer::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// Softmax cross-entropy on class labels: `L = logsumexp(z) - z_y`.
    CrossEntropy,
    /// Mean squared error on regression targets: `L = mean_j (z_j - y_j)^2`.
    Mse,
}

/// Hyper-parameters of a training run. Build with [`TrainConfig::params`] and
/// finish with [`TrainParams::check`], which rejects invalid values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set (`>= 1`).
    pub epochs: usize,
    /// Examples per step (`>= 1`).
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Base learning rate (`> 0`).
    pub lr: f64,
    /// Weight decay (`>= 0`; L2 for SGD/Adam/AdaGrad/RMSProp, decoupled for AdamW).
    pub weight_decay: f64,
    /// Learning-rate schedule, evaluated at every step.
    pub schedule: Schedule,
    /// Loss.
    pub loss: Loss,
    /// Seed of the shuffles (`derive_seed(seed, epoch)`) and of dropout masks
    /// (`derive_seed_str(seed, "dropout")`).
    pub seed: u64,
    /// Keep a checkpoint every this many epochs (TracInCP), if set (`>= 1`).
    pub checkpoint_every: Option<usize>,
    /// Shuffle the order of examples each epoch.
    pub shuffle: bool,
    /// Drop the last batch of an epoch if it is smaller than `batch_size`.
    pub drop_last: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 64,
            optimizer: Optimizer::sgd(),
            lr: 0.01,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            loss: Loss::CrossEntropy,
            seed: 0,
            checkpoint_every: None,
            shuffle: true,
            drop_last: false,
        }
    }
}

/// Unchecked builder of a [`TrainConfig`] (linfa's `Params` pattern).
#[derive(Clone, Debug, Default)]
pub struct TrainParams(TrainConfig);

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $t:ty) => {
        $(#[$m])*
        pub fn $name(mut self, $name: $t) -> Self {
            self.0.$name = $name;
            self
        }
    };
}

impl TrainParams {
    setter!(/// Number of epochs.
        epochs: usize);
    setter!(/// Batch size.
        batch_size: usize);
    setter!(/// Optimizer.
        optimizer: Optimizer);
    setter!(/// Base learning rate.
        lr: f64);
    setter!(/// Weight decay.
        weight_decay: f64);
    setter!(/// Learning-rate schedule.
        schedule: Schedule);
    setter!(/// Loss.
        loss: Loss);
    setter!(/// Seed.
        seed: u64);
    setter!(/// Checkpoint period in epochs.
        checkpoint_every: Option<usize>);
    setter!(/// Shuffle each epoch.
        shuffle: bool);
    setter!(/// Drop a short last batch.
        drop_last: bool);

    /// Validates and returns the config.
    pub fn check(self) -> Result<TrainConfig> {
        self.0.check()?;
        Ok(self.0)
    }
}

fn unit(field: &str, v: f64) -> Result<()> {
    if !v.is_finite() || !(0.0..1.0).contains(&v) {
        return Err(ModelError::config(field, v, "must be in [0, 1)"));
    }
    Ok(())
}

fn pos(field: &str, v: f64) -> Result<()> {
    if !v.is_finite() || v <= 0.0 {
        return Err(ModelError::config(field, v, "must be finite and > 0"));
    }
    Ok(())
}

impl TrainConfig {
    /// A builder starting from the defaults (1 epoch, batch 64, plain SGD,
    /// lr 0.01, constant schedule, cross-entropy, seed 0, shuffled).
    pub fn params() -> TrainParams {
        TrainParams::default()
    }

    /// Checks every value; the error names the field.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(ModelError::config(
                "TrainConfig.epochs",
                0,
                "must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(ModelError::config(
                "TrainConfig.batch_size",
                0,
                "must be at least 1",
            ));
        }
        pos("TrainConfig.lr", self.lr)?;
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Err(ModelError::config(
                "TrainConfig.weight_decay",
                self.weight_decay,
                "must be finite and >= 0",
            ));
        }
        if self.checkpoint_every == Some(0) {
            return Err(ModelError::config(
                "TrainConfig.checkpoint_every",
                0,
                "must be at least 1 epoch (or None)",
            ));
        }
        match &self.optimizer {
            Optimizer::Sgd { momentum, nesterov } => {
                unit("Sgd.momentum", *momentum)?;
                if *nesterov && *momentum == 0.0 {
                    return Err(ModelError::config(
                        "Sgd.nesterov",
                        true,
                        "Nesterov momentum needs momentum > 0",
                    ));
                }
            }
            Optimizer::Adam { beta1, beta2, eps } | Optimizer::AdamW { beta1, beta2, eps } => {
                unit("Adam.beta1", *beta1)?;
                unit("Adam.beta2", *beta2)?;
                pos("Adam.eps", *eps)?;
            }
            Optimizer::AdaGrad { lr_decay, eps } => {
                if !lr_decay.is_finite() || *lr_decay < 0.0 {
                    return Err(ModelError::config(
                        "AdaGrad.lr_decay",
                        lr_decay,
                        "must be finite and >= 0",
                    ));
                }
                pos("AdaGrad.eps", *eps)?;
            }
            Optimizer::RmsProp {
                alpha,
                momentum,
                eps,
                ..
            } => {
                unit("RmsProp.alpha", *alpha)?;
                unit("RmsProp.momentum", *momentum)?;
                pos("RmsProp.eps", *eps)?;
            }
        }
        self.schedule.check(self.lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_are_named() {
        let e = TrainConfig::params()
            .lr(0.0)
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("TrainConfig.lr"), "{e}");
        let e = TrainConfig::params()
            .batch_size(0)
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch_size"), "{e}");
        let e = TrainConfig::params()
            .epochs(0)
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("epochs"), "{e}");
        let e = TrainConfig::params()
            .optimizer(Optimizer::sgd_momentum(1.0))
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("Sgd.momentum") && e.contains("[0, 1)"), "{e}");
        let e = TrainConfig::params()
            .optimizer(Optimizer::Sgd {
                momentum: 0.0,
                nesterov: true,
            })
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("nesterov"), "{e}");
        let e = TrainConfig::params()
            .schedule(Schedule::Cosine { min_lr: 1.0 })
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("min_lr"), "{e}");
        assert!(
            TrainConfig::params()
                .checkpoint_every(Some(0))
                .check()
                .is_err()
        );
        assert!(TrainConfig::params().weight_decay(-1.0).check().is_err());
        let ok = TrainConfig::params()
            .epochs(3)
            .optimizer(Optimizer::adamw())
            .check()
            .unwrap();
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), ok);
    }
}
