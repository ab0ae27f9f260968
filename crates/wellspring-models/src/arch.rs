//! [`Arch`]: an architecture family by name (`--model mlp`), sized for a
//! dataset into a [`ModelConfig`]. The one place that turns a model name into
//! a config: the CLI's `--model` and the reproduce recipes both use it, and an
//! architecture that does not fit the data is an error, never a silent
//! substitute.

use std::fmt;
use std::str::FromStr;

use wellspring_core::{Dataset, Features};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// An architecture family; [`Arch::config_for`] sizes it for a dataset
/// (input width or image shape, vocabulary, outputs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Arch {
    /// Logistic regression, `Linear(d, C)`.
    LogReg,
    /// MLP with these hidden widths and dropout after each hidden ReLU.
    Mlp {
        /// Hidden widths, first to last.
        hidden: &'static [usize],
        /// Dropout probability.
        dropout: f64,
    },
    /// The small CNN of [`ModelConfig::mnist_cnn`] (conv 16, conv 32, fc 64)
    /// on square `[c, h, h]` images.
    Cnn,
    /// ResNet-9 of width 64 on `[c, h, w]` images.
    ResNet9,
    /// Embedding bag (dim 64) + hidden layer (64) for token data.
    TextBag,
    /// FiMO Appendix D's 2 × 128 MLP.
    FimoMlp,
}

impl Arch {
    /// The names [`Arch::from_str`] accepts, comma-separated.
    pub const NAMES: &'static str = "logreg, mlp, cnn, resnet9, text-bag, fimo-mlp";

    /// dattri's MLP: hidden 128, 64, dropout 0.1 (what `mlp` parses to).
    pub const MLP: Arch = Arch::Mlp {
        hidden: &[128, 64],
        dropout: 0.1,
    };

    /// The command-line name (`logreg`, `mlp`, `cnn`, `resnet9`, `text-bag`, `fimo-mlp`).
    pub fn name(&self) -> &'static str {
        match self {
            Arch::LogReg => "logreg",
            Arch::Mlp { .. } => "mlp",
            Arch::Cnn => "cnn",
            Arch::ResNet9 => "resnet9",
            Arch::TextBag => "text-bag",
            Arch::FimoMlp => "fimo-mlp",
        }
    }

    /// The architecture sized for `data`; errors (naming the dataset and
    /// what does not fit) when the data's features do not suit it: token
    /// data for anything but `text-bag`, dense data for `text-bag`,
    /// non-image data for `cnn` / `resnet9`.
    pub fn config_for(&self, data: &Dataset) -> Result<ModelConfig> {
        let n_out = data.targets().output_dim();
        let mismatch = |reason: String| ModelError::data(data.name(), reason);
        let cfg = match (self, data.features()) {
            (Arch::TextBag, Features::Tokens { vocab_size, .. }) => ModelConfig::TextBag {
                vocab: *vocab_size,
                dim: 64,
                hidden: 64,
                n_out,
            },
            (Arch::TextBag, Features::Dense { .. }) => {
                return Err(mismatch(
                    "text-bag needs a token dataset (sst2); this one is dense".into(),
                ));
            }
            (other, Features::Tokens { .. }) => {
                return Err(mismatch(format!(
                    "it holds tokens, which {} cannot read; use text-bag",
                    other.name()
                )));
            }
            (Arch::Cnn | Arch::ResNet9, Features::Dense { shape, .. }) => {
                let (c, side) = match shape.as_slice() {
                    [c, h, w] if h == w => (*c, *h),
                    _ => {
                        return Err(mismatch(format!(
                            "{} needs square images [c, h, w]; its example shape is {shape:?}",
                            self.name()
                        )));
                    }
                };
                match self {
                    Arch::Cnn => ModelConfig::Cnn {
                        in_channels: c,
                        side,
                        channels: vec![16, 32],
                        fc: 64,
                        n_out,
                    },
                    _ => ModelConfig::ResNet9 {
                        in_channels: c,
                        n_out,
                        width: 64,
                    },
                }
            }
            (Arch::LogReg, f) => ModelConfig::LogReg {
                d_in: f.width(),
                n_out,
            },
            (Arch::Mlp { hidden, dropout }, f) => ModelConfig::Mlp {
                d_in: f.width(),
                hidden: hidden.to_vec(),
                n_out,
                dropout: *dropout,
            },
            (Arch::FimoMlp, f) => ModelConfig::FimoMlp {
                d_in: f.width(),
                n_out,
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = ModelError;

    /// Parses a command-line name; `mlp` is dattri's 128-64 MLP ([`Arch::MLP`]).
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "logreg" => Arch::LogReg,
            "mlp" => Arch::MLP,
            "cnn" => Arch::Cnn,
            "resnet9" => Arch::ResNet9,
            "text-bag" => Arch::TextBag,
            "fimo-mlp" => Arch::FimoMlp,
            other => {
                return Err(ModelError::config(
                    "model",
                    other,
                    format!("unknown architecture; available: {}", Arch::NAMES),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellspring_core::Targets;

    fn dense(shape: Vec<usize>, n: usize) -> Dataset {
        let width: usize = shape.iter().product();
        Dataset::new(
            "toy",
            Features::Dense {
                values: vec![0.5; n * width],
                shape,
            },
            Targets::Classes {
                labels: (0..n).map(|i| i % 3).collect(),
                n_classes: 3,
            },
        )
        .unwrap()
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for name in Arch::NAMES.split(", ") {
            assert_eq!(name.parse::<Arch>().unwrap().name(), name);
        }
        let e = "transformer".parse::<Arch>().unwrap_err().to_string();
        assert!(e.contains("transformer") && e.contains("fimo-mlp"), "{e}");
    }

    #[test]
    fn sizes_follow_the_data_and_mismatches_are_errors() {
        let images = dense(vec![1, 8, 8], 4);
        assert_eq!(
            Arch::LogReg.config_for(&images).unwrap(),
            ModelConfig::LogReg { d_in: 64, n_out: 3 }
        );
        match Arch::Cnn.config_for(&images).unwrap() {
            ModelConfig::Cnn {
                in_channels, side, ..
            } => assert_eq!((in_channels, side), (1, 8)),
            other => panic!("{other:?}"),
        }
        let flat = dense(vec![5], 4);
        let e = Arch::Cnn.config_for(&flat).unwrap_err().to_string();
        assert!(e.contains("square images") && e.contains("toy"), "{e}");
        let e = Arch::TextBag.config_for(&flat).unwrap_err().to_string();
        assert!(e.contains("token"), "{e}");
        assert_eq!(
            Arch::FimoMlp.config_for(&flat).unwrap(),
            ModelConfig::FimoMlp { d_in: 5, n_out: 3 }
        );
    }
}
