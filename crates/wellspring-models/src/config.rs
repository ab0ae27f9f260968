//! [`ModelConfig`]: a serializable architecture description.
//!
//! A checkpoint stores the config next to the weights, so loading needs no
//! other input; [`crate::Model::new`] builds the network it describes.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Serializable architecture description.
///
/// Every architecture is `body` (a list of [`crate::Layer`]s producing the
/// penultimate features) followed by a linear `head` producing logits (or
/// regression outputs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelConfig {
    /// Multinomial logistic regression: empty body, head `Linear(d_in, n_out)`
    /// (dattri's MNIST LR is `LogReg { d_in: 784, n_out: 10 }`).
    LogReg {
        /// Input width (flattened).
        d_in: usize,
        /// Number of outputs (classes).
        n_out: usize,
    },
    /// Multi-layer perceptron: `Linear-ReLU-(Dropout)` per hidden width, then the
    /// head (dattri's MNIST MLP is 784-128-64-10 with dropout 0.1). Dropout is
    /// left out when `dropout == 0`.
    Mlp {
        /// Input width (flattened).
        d_in: usize,
        /// Hidden widths, first to last.
        hidden: Vec<usize>,
        /// Number of outputs.
        n_out: usize,
        /// Dropout probability after each hidden ReLU, in `[0, 1)`.
        dropout: f64,
    },
    /// Small CNN for `side × side` images: per entry of `channels`
    /// `Conv3x3(pad 1)-ReLU-MaxPool2`, then flatten, `Linear(fc)-ReLU`, head.
    Cnn {
        /// Input channels (1 for MNIST).
        in_channels: usize,
        /// Image side; must be divisible by `2^channels.len()`.
        side: usize,
        /// Output channels of each conv block.
        channels: Vec<usize>,
        /// Width of the fully connected layer (the penultimate features).
        fc: usize,
        /// Number of outputs.
        n_out: usize,
    },
    /// ResNet-9 of Page (2018) / Myrtle.ai for `3 × 32 × 32` images, with
    /// BatchNorm, two residual blocks and global max pooling; convolutions have
    /// no bias (BatchNorm follows). Channel widths are `w, 2w, 4w, 8w` for
    /// `width = w` (64 is the standard net; smaller widths let a CPU run it).
    /// Myrtle's final `× 0.125` logit scaling is left out.
    ResNet9 {
        /// Input channels (3 for CIFAR-10).
        in_channels: usize,
        /// Number of outputs.
        n_out: usize,
        /// Width multiplier `w` (64 = standard).
        width: usize,
    },
    /// Text classifier for SST-2: `EmbeddingBag(mean)-Linear-ReLU`, head.
    TextBag {
        /// Vocabulary size.
        vocab: usize,
        /// Embedding width.
        dim: usize,
        /// Hidden width (the penultimate features).
        hidden: usize,
        /// Number of outputs.
        n_out: usize,
    },
    /// FiMO's tabular/regression MLP (Appendix D.2 of the further-training gold
    /// standard paper): two hidden layers of 128 units with ReLU; one output with
    /// MSE for regression, two logits with cross-entropy for binary tasks.
    FimoMlp {
        /// Input width.
        d_in: usize,
        /// Number of outputs.
        n_out: usize,
    },
}

/// What kind of batch a model consumes (see [`crate::Input`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Flat features `[batch, d]`.
    Flat {
        /// Feature width.
        d: usize,
    },
    /// Images `[batch, c, h, w]`.
    Image {
        /// Channels.
        channels: usize,
        /// Required side, or `None` for any side the net accepts.
        side: Option<usize>,
    },
    /// Padded token ids plus mask.
    Tokens {
        /// Vocabulary size.
        vocab: usize,
    },
}

fn positive(field: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(ModelError::config(field, v, "must be at least 1"));
    }
    Ok(())
}

impl ModelConfig {
    /// dattri's MNIST logistic regression, `Linear(784, 10)`.
    pub fn mnist_logreg() -> Self {
        ModelConfig::LogReg {
            d_in: 784,
            n_out: 10,
        }
    }

    /// dattri's MNIST MLP, 784-128-64-10 with dropout 0.1.
    pub fn mnist_mlp() -> Self {
        ModelConfig::Mlp {
            d_in: 784,
            hidden: vec![128, 64],
            n_out: 10,
            dropout: 0.1,
        }
    }

    /// A small MNIST CNN sized for CPUs: conv 16, conv 32, fc 64 (one epoch of
    /// SGD reaches about 98.6% test accuracy).
    pub fn mnist_cnn() -> Self {
        ModelConfig::Cnn {
            in_channels: 1,
            side: 28,
            channels: vec![16, 32],
            fc: 64,
            n_out: 10,
        }
    }

    /// Short name of the architecture, for reports and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::LogReg { .. } => "LogReg",
            ModelConfig::Mlp { .. } => "Mlp",
            ModelConfig::Cnn { .. } => "Cnn",
            ModelConfig::ResNet9 { .. } => "ResNet9",
            ModelConfig::TextBag { .. } => "TextBag",
            ModelConfig::FimoMlp { .. } => "FimoMlp",
        }
    }

    /// Checks every size and probability; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let n = self.name();
        match self {
            ModelConfig::LogReg { d_in, n_out } | ModelConfig::FimoMlp { d_in, n_out } => {
                positive(&format!("{n}.d_in"), *d_in)?;
                positive(&format!("{n}.n_out"), *n_out)?;
            }
            ModelConfig::Mlp {
                d_in,
                hidden,
                n_out,
                dropout,
            } => {
                positive(&format!("{n}.d_in"), *d_in)?;
                positive(&format!("{n}.n_out"), *n_out)?;
                for (i, &h) in hidden.iter().enumerate() {
                    positive(&format!("{n}.hidden[{i}]"), h)?;
                }
                if !dropout.is_finite() || !(0.0..1.0).contains(dropout) {
                    return Err(ModelError::config(
                        format!("{n}.dropout"),
                        dropout,
                        "must be in [0, 1)",
                    ));
                }
            }
            ModelConfig::Cnn {
                in_channels,
                side,
                channels,
                fc,
                n_out,
            } => {
                positive(&format!("{n}.in_channels"), *in_channels)?;
                positive(&format!("{n}.side"), *side)?;
                positive(&format!("{n}.fc"), *fc)?;
                positive(&format!("{n}.n_out"), *n_out)?;
                if channels.is_empty() {
                    return Err(ModelError::config(
                        format!("{n}.channels"),
                        "[]",
                        "need at least one conv block",
                    ));
                }
                for (i, &c) in channels.iter().enumerate() {
                    positive(&format!("{n}.channels[{i}]"), c)?;
                }
                let div = 1usize
                    .checked_shl(channels.len() as u32)
                    .unwrap_or(usize::MAX);
                if side % div != 0 {
                    return Err(ModelError::config(
                        format!("{n}.side"),
                        side,
                        format!(
                            "must be divisible by 2^{} = {div} ({} max-pool halvings)",
                            channels.len(),
                            channels.len()
                        ),
                    ));
                }
            }
            ModelConfig::ResNet9 {
                in_channels,
                n_out,
                width,
            } => {
                positive(&format!("{n}.in_channels"), *in_channels)?;
                positive(&format!("{n}.n_out"), *n_out)?;
                positive(&format!("{n}.width"), *width)?;
            }
            ModelConfig::TextBag {
                vocab,
                dim,
                hidden,
                n_out,
            } => {
                positive(&format!("{n}.vocab"), *vocab)?;
                positive(&format!("{n}.dim"), *dim)?;
                positive(&format!("{n}.hidden"), *hidden)?;
                positive(&format!("{n}.n_out"), *n_out)?;
            }
        }
        Ok(())
    }

    /// Number of outputs (logits or regression targets).
    pub fn n_out(&self) -> usize {
        match self {
            ModelConfig::LogReg { n_out, .. }
            | ModelConfig::Mlp { n_out, .. }
            | ModelConfig::Cnn { n_out, .. }
            | ModelConfig::ResNet9 { n_out, .. }
            | ModelConfig::TextBag { n_out, .. }
            | ModelConfig::FimoMlp { n_out, .. } => *n_out,
        }
    }

    /// Width of the penultimate features (the head's input).
    pub fn feature_dim(&self) -> usize {
        match self {
            ModelConfig::LogReg { d_in, .. } => *d_in,
            ModelConfig::Mlp { d_in, hidden, .. } => *hidden.last().unwrap_or(d_in),
            ModelConfig::Cnn { fc, .. } => *fc,
            ModelConfig::ResNet9 { width, .. } => 8 * width,
            ModelConfig::TextBag { hidden, .. } => *hidden,
            ModelConfig::FimoMlp { .. } => crate::init::FIMO_HIDDEN,
        }
    }

    /// What kind of batch the model consumes.
    pub fn input_kind(&self) -> InputKind {
        match self {
            ModelConfig::LogReg { d_in, .. }
            | ModelConfig::Mlp { d_in, .. }
            | ModelConfig::FimoMlp { d_in, .. } => InputKind::Flat { d: *d_in },
            ModelConfig::Cnn {
                in_channels, side, ..
            } => InputKind::Image {
                channels: *in_channels,
                side: Some(*side),
            },
            ModelConfig::ResNet9 { in_channels, .. } => InputKind::Image {
                channels: *in_channels,
                side: None,
            },
            ModelConfig::TextBag { vocab, .. } => InputKind::Tokens { vocab: *vocab },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_name_the_field() {
        let e = ModelConfig::Cnn {
            in_channels: 1,
            side: 30,
            channels: vec![8, 8],
            fc: 16,
            n_out: 10,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("Cnn.side") && e.contains("30") && e.contains("4"),
            "{e}"
        );
        let e = ModelConfig::Mlp {
            d_in: 4,
            hidden: vec![3, 0],
            n_out: 2,
            dropout: 0.0,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("Mlp.hidden[1]"), "{e}");
        let e = ModelConfig::Mlp {
            d_in: 4,
            hidden: vec![3],
            n_out: 2,
            dropout: 1.0,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("dropout"), "{e}");
        assert!(ModelConfig::mnist_cnn().validate().is_ok());
        assert!(
            ModelConfig::ResNet9 {
                in_channels: 3,
                n_out: 10,
                width: 0
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = ModelConfig::mnist_mlp();
        let s = serde_json::to_string(&c).unwrap();
        let back: ModelConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(c, back);
        assert_eq!(c.feature_dim(), 64);
        assert_eq!(c.n_out(), 10);
    }
}
