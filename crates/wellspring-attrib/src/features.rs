//! Feature spaces for the similarity methods (embeddings, l2, ESVM), the
//! class a test point is compared in, and host copies of model outputs.

use std::str::FromStr;
use std::sync::Arc;

use wellspring_core::{Dataset, Features, Targets};
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, Model, ParamLayerKind, features, predict_logits};

use crate::dense::argmax_rows;
use crate::error::{AttribError, Result};
use crate::source::ModelSource;

/// Where similarity is measured.
#[derive(Clone, Debug, Default)]
pub enum FeatureSpace {
    /// The attributed model's penultimate features (the head's input).
    #[default]
    Penultimate,
    /// The raw dense inputs, flattened.
    Inputs,
    /// The penultimate features of another model, e.g. a self-supervised
    /// (SimCLR/MoCo) encoder as in the brittleness paper §3; its head is ignored.
    Encoder(Box<Model>),
    /// Precomputed features, row-major: `train` has one row per training
    /// point, `test` one per point of the (single) test set they describe.
    Given {
        /// Training-set features, `n_train × dim`.
        train: Arc<[f32]>,
        /// Test-set features, `n_test × dim`.
        test: Arc<[f32]>,
        /// Feature width.
        dim: usize,
    },
}

impl FeatureSpace {
    /// Precomputed features (checked: `dim ≥ 1`, whole rows, finite).
    pub fn given(train: Vec<f32>, test: Vec<f32>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(AttribError::invalid_param(
                "given features dim",
                0,
                "must be at least 1",
            ));
        }
        for (what, v) in [("train", &train), ("test", &test)] {
            if v.len() % dim != 0 {
                return Err(AttribError::invalid_param(
                    format!("given {what} features"),
                    format!("{} values", v.len()),
                    format!("not a whole number of rows of width {dim}"),
                ));
            }
            wellspring_core::check_finite(&format!("given {what} features"), v)?;
        }
        Ok(FeatureSpace::Given {
            train: train.into(),
            test: test.into(),
            dim,
        })
    }

    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            FeatureSpace::Penultimate => "penultimate",
            FeatureSpace::Inputs => "inputs",
            FeatureSpace::Encoder(_) => "encoder",
            FeatureSpace::Given { .. } => "given",
        }
    }
}

impl FromStr for FeatureSpace {
    type Err = AttribError;

    /// `penultimate` or `inputs` (encoders and given features are built in code).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "penultimate" => Ok(FeatureSpace::Penultimate),
            "inputs" => Ok(FeatureSpace::Inputs),
            other => Err(AttribError::invalid_param(
                "features",
                other,
                "expected penultimate or inputs",
            )),
        }
    }
}

/// Which class of a test point decides "same class" (l2, ESVM) or the
/// representer column (RPS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClassSource {
    /// The test point's label (brittleness paper §3; dattri's RPS).
    #[default]
    Label,
    /// The model's predicted class (Yeh et al. 2018 explain the prediction).
    Predicted,
}

impl FromStr for ClassSource {
    type Err = AttribError;

    /// `label` or `predicted`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "label" => Ok(ClassSource::Label),
            "predicted" => Ok(ClassSource::Predicted),
            other => Err(AttribError::invalid_param(
                "class",
                other,
                "expected label or predicted",
            )),
        }
    }
}

/// The classes of `data`'s points under `source` (labels, or the model's arg-max).
pub fn classes_of(
    source: ClassSource,
    model: &AnyModel,
    device: &Device,
    data: &Dataset,
    method: &str,
) -> Result<Vec<usize>> {
    match source {
        ClassSource::Label => data.labels().map(<[usize]>::to_vec).ok_or_else(|| {
            AttribError::unsupported(
                method,
                format!("dataset {} has no class labels", data.name()),
            )
        }),
        ClassSource::Predicted => {
            let logits = predict_logits(model, data, device)?;
            Ok(argmax_rows(&logits, logits.len() / data.len().max(1)))
        }
    }
}

/// The head's weights as a row-major `n_outputs × feature_dim` matrix in
/// `f64` (burn stores `Linear` weights `[d_in, d_out]`; this is the transpose,
/// PyTorch's layout), plus the bias (zeros if the head has none). The head is
/// the linear layer named `head`, or else the model's last tracked layer if
/// it is linear.
pub fn head_weights(model: &AnyModel) -> Result<(Vec<f64>, Vec<f64>)> {
    let layers = model.param_layers();
    let desc = layers
        .iter()
        .find(|d| d.path == "head")
        .or(layers.last())
        .filter(|d| d.kind == ParamLayerKind::Linear)
        .cloned()
        .ok_or_else(|| {
            AttribError::unsupported(
                "head weights",
                format!(
                    "the {} model has no linear head (a Linear layer named `head`, or last)",
                    model.model_name()
                ),
            )
        })?;
    let (d, c) = match desc.weight_shape.as_slice() {
        [d, c] => (*d, *c),
        other => {
            return Err(AttribError::unsupported(
                "head weights",
                format!("expected a linear head [d_in, d_out], found shape {other:?}"),
            ));
        }
    };
    let flat = model.params_flat();
    let w = &flat[desc.offset..desc.offset + d * c];
    let mut theta = vec![0.0f64; c * d];
    for a in 0..d {
        for k in 0..c {
            theta[k * d + a] = w[a * c + k] as f64;
        }
    }
    let bias = if desc.has_bias {
        flat[desc.offset + d * c..desc.offset + d * c + c]
            .iter()
            .map(|&v| v as f64)
            .collect()
    } else {
        vec![0.0; c]
    };
    Ok((theta, bias))
}

/// Maps datasets into a [`FeatureSpace`] on the host (row-major `n × dim`).
#[derive(Clone, Debug)]
pub struct Extractor {
    space: FeatureSpace,
    model: AnyModel,
    device: Device,
    dim: usize,
}

impl Extractor {
    /// Builds the extractor for `space` and returns it with the training features.
    pub fn fit(
        space: &FeatureSpace,
        source: &ModelSource,
        train: &Dataset,
    ) -> Result<(Self, Vec<f32>)> {
        let model = source.model.valid();
        let (dim, feats) = match space {
            FeatureSpace::Penultimate => {
                let f = features(&model, train, &source.device)?;
                (f.len() / train.len().max(1), f)
            }
            FeatureSpace::Inputs => (train.features().width(), dense_inputs(train)?),
            FeatureSpace::Encoder(enc) => (enc.feature_dim(), encode(enc, train, &source.device)?),
            FeatureSpace::Given { train: t, dim, .. } => {
                if t.len() / dim != train.len() {
                    return Err(AttribError::mismatch(
                        train.name(),
                        format!(
                            "{} given training feature rows for {} training points",
                            t.len() / dim,
                            train.len()
                        ),
                    ));
                }
                (*dim, t.to_vec())
            }
        };
        wellspring_core::check_finite(
            &format!("{} features of {}", space.name(), train.name()),
            &feats,
        )?;
        let ex = Extractor {
            space: space.clone(),
            model,
            device: source.device.clone(),
            dim,
        };
        Ok((ex, feats))
    }

    /// Feature width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The feature space.
    pub fn space(&self) -> &FeatureSpace {
        &self.space
    }

    /// The attributed model (inference copy).
    pub fn model(&self) -> &AnyModel {
        &self.model
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Features of `test` (checks the model accepts it for model spaces).
    pub fn test(&self, test: &Dataset) -> Result<Vec<f32>> {
        let f = match &self.space {
            FeatureSpace::Penultimate => features(&self.model, test, &self.device)?,
            FeatureSpace::Inputs => dense_inputs(test)?,
            FeatureSpace::Encoder(enc) => encode(enc, test, &self.device)?,
            FeatureSpace::Given { test: t, dim, .. } => {
                if t.len() / dim != test.len() {
                    return Err(AttribError::mismatch(
                        test.name(),
                        format!(
                            "{} given test feature rows for {} test points",
                            t.len() / dim,
                            test.len()
                        ),
                    ));
                }
                t.to_vec()
            }
        };
        wellspring_core::check_finite(
            &format!("{} features of {}", self.space.name(), test.name()),
            &f,
        )?;
        Ok(f)
    }
}

fn dense_inputs(data: &Dataset) -> Result<Vec<f32>> {
    match data.features() {
        Features::Dense { values, .. } => Ok(values.clone()),
        Features::Tokens { .. } => Err(AttribError::unsupported(
            "inputs feature space",
            format!("dataset {} holds tokens, not dense features", data.name()),
        )),
    }
}

/// Penultimate features of an encoder whose head width need not match the
/// dataset's classes (the targets are replaced by dummies the encoder accepts).
fn encode(enc: &Model, data: &Dataset, device: &Device) -> Result<Vec<f32>> {
    let k = enc.n_outputs();
    let targets = if k >= 2 {
        Targets::Classes {
            labels: vec![0; data.len()],
            n_classes: k,
        }
    } else {
        Targets::Regression {
            values: vec![0.0; data.len()],
            n_targets: 1,
        }
    };
    let neutral = Dataset::new(data.name(), data.features().clone(), targets)?;
    Ok(features(enc, &neutral, device)?)
}
