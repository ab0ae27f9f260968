//! Evaluation on host data: per-example losses and margins, accuracy, MSE, R²,
//! and host copies of logits and penultimate features.

use burn::tensor::{Device, Tensor};
use wellspring_core::{Dataset, Targets};

use crate::error::{ModelError, Result};
use crate::track::AnyModel;

/// Rows per forward pass during evaluation.
const EVAL_BATCH: usize = 512;

/// Per-example and aggregate results of [`evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Per-example loss: cross-entropy `logsumexp(z) - z_y` for classes,
    /// `mean_j (z_j - y_j)^2` for regression (the training losses).
    pub loss: Vec<f32>,
    /// Mean of `loss`.
    pub mean_loss: f64,
    /// Task-specific metrics.
    pub metrics: Metrics,
}

/// Task-specific metrics of an [`Evaluation`].
#[derive(Clone, Debug, PartialEq)]
pub enum Metrics {
    /// Classification.
    Classification {
        /// Per-example margin `z_y - logsumexp_{j≠y} z_j` (the output function of
        /// TRAK, Park et al. 2023, eq. 12); positive iff the example is classified
        /// correctly with room to spare.
        margin: Vec<f32>,
        /// Per-example correctness (`argmax z == y`, first maximum on ties).
        correct: Vec<bool>,
        /// Fraction correct.
        accuracy: f64,
    },
    /// Regression.
    Regression {
        /// Per-example squared error summed over targets, `Σ_j (z_j - y_j)^2`.
        sq_error: Vec<f32>,
        /// Mean squared error over all examples and targets.
        mse: f64,
        /// Coefficient of determination `1 - SS_res / SS_tot` (pooled over
        /// targets); NaN if every target is constant.
        r2: f64,
    },
}

impl Evaluation {
    /// Accuracy, for classification.
    pub fn accuracy(&self) -> Option<f64> {
        match &self.metrics {
            Metrics::Classification { accuracy, .. } => Some(*accuracy),
            Metrics::Regression { .. } => None,
        }
    }

    /// Per-example margins, for classification.
    pub fn margins(&self) -> Option<&[f32]> {
        match &self.metrics {
            Metrics::Classification { margin, .. } => Some(margin),
            Metrics::Regression { .. } => None,
        }
    }

    /// Per-example correctness, for classification.
    pub fn correct(&self) -> Option<&[bool]> {
        match &self.metrics {
            Metrics::Classification { correct, .. } => Some(correct),
            Metrics::Regression { .. } => None,
        }
    }

    /// Mean squared error, for regression.
    pub fn mse(&self) -> Option<f64> {
        match &self.metrics {
            Metrics::Regression { mse, .. } => Some(*mse),
            Metrics::Classification { .. } => None,
        }
    }

    /// R², for regression.
    pub fn r2(&self) -> Option<f64> {
        match &self.metrics {
            Metrics::Regression { r2, .. } => Some(*r2),
            Metrics::Classification { .. } => None,
        }
    }
}

/// Runs the model in eval mode over every row of `data` on `device` (autodiff
/// is stripped) and returns `(logits n × C, features n × d)` as requested.
fn forward_all(
    model: &AnyModel,
    data: &Dataset,
    device: &Device,
    want_logits: bool,
    want_features: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    model.check_dataset(data)?;
    if data.is_empty() {
        return Err(wellspring_core::CoreError::Empty {
            what: format!("dataset {}", data.name()),
        }
        .into());
    }
    let device = device.clone().without_autodiff();
    let m = model.valid().fork(&device);
    let n = data.len();
    let (mut logits, mut feats) = (Vec::new(), Vec::new());
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(EVAL_BATCH) {
        let x = m.input_batch(data, chunk, &device)?;
        let out = m.forward(&x)?;
        if want_logits {
            logits.extend(host(
                out.logits
                    .flat(&format!("logits of the {} model", m.model_name()))?,
            ));
        }
        if want_features {
            let f = out.features.ok_or_else(|| ModelError::Params {
                reason: format!(
                    "the {} model returns no penultimate features (ModelOutput::with_features)",
                    m.model_name()
                ),
            })?;
            feats.extend(host(f));
        }
    }
    Ok((logits, feats))
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted tensor data holds f32")
}

/// Logits (or regression outputs) of every row, row-major `n × n_outputs`.
pub fn predict_logits(
    model: impl Into<AnyModel>,
    data: &Dataset,
    device: &Device,
) -> Result<Vec<f32>> {
    Ok(forward_all(&model.into(), data, device, true, false)?.0)
}

/// Penultimate features of every row, row-major `n × feature_dim`.
pub fn features(model: impl Into<AnyModel>, data: &Dataset, device: &Device) -> Result<Vec<f32>> {
    Ok(forward_all(&model.into(), data, device, false, true)?.1)
}

/// Evaluates `model` on `data` in eval mode: per-example loss, plus margins,
/// correctness and accuracy for classes, or squared errors, MSE and R² for
/// regression. Computed on the host in `f64` from the logits.
pub fn evaluate(model: impl Into<AnyModel>, data: &Dataset, device: &Device) -> Result<Evaluation> {
    let (logits, _) = forward_all(&model.into(), data, device, true, false)?;
    let n = data.len();
    let c = logits.len() / n;
    let mut loss = Vec::with_capacity(n);
    let metrics = match data.targets() {
        Targets::Classes { labels, .. } => {
            let mut margin = Vec::with_capacity(n);
            let mut correct = Vec::with_capacity(n);
            for (i, &y) in labels.iter().enumerate() {
                let z: Vec<f64> = logits[i * c..(i + 1) * c]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let lse_all = logsumexp(z.iter().copied());
                let lse_other = logsumexp(
                    z.iter()
                        .enumerate()
                        .filter(|&(j, _)| j != y)
                        .map(|(_, &v)| v),
                );
                loss.push((lse_all - z[y]) as f32);
                margin.push((z[y] - lse_other) as f32);
                let arg = z
                    .iter()
                    .enumerate()
                    .fold(0, |best, (j, &v)| if v > z[best] { j } else { best });
                correct.push(arg == y);
            }
            let accuracy = correct.iter().filter(|&&b| b).count() as f64 / n as f64;
            Metrics::Classification {
                margin,
                correct,
                accuracy,
            }
        }
        Targets::Regression { values, .. } => {
            let mut sq_error = Vec::with_capacity(n);
            let mut means = vec![0.0f64; c];
            for i in 0..n {
                for j in 0..c {
                    means[j] += values[i * c + j] as f64 / n as f64;
                }
            }
            let (mut ss_res, mut ss_tot) = (0.0f64, 0.0f64);
            for i in 0..n {
                let mut se = 0.0f64;
                for j in 0..c {
                    let y = values[i * c + j] as f64;
                    let d = logits[i * c + j] as f64 - y;
                    se += d * d;
                    ss_tot += (y - means[j]) * (y - means[j]);
                }
                ss_res += se;
                sq_error.push(se as f32);
                loss.push((se / c as f64) as f32);
            }
            Metrics::Regression {
                sq_error,
                mse: ss_res / (n * c) as f64,
                r2: if ss_tot > 0.0 {
                    1.0 - ss_res / ss_tot
                } else {
                    f64::NAN
                },
            }
        }
        Targets::NextToken { .. } => {
            return Err(crate::ModelError::data(
                data.name(),
                "next-token targets need a language model; the zoo models are classifiers/regressors",
            ));
        }
    };
    let mean_loss = loss.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    Ok(Evaluation {
        loss,
        mean_loss,
        metrics,
    })
}

fn logsumexp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.map(|x| (x - m).exp()).sum::<f64>().ln()
}
