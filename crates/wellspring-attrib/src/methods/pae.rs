//! Prediction As Explanation (PAE; Mahmood, Yin & Khanna 2025, "On the
//! Support Vector Effect in DNNs", §5.1, Algorithm 1).
//!
//! The model's softmax outputs are the embedding:
//!
//! ```text
//! score(i, j) = −‖p(x_i) − p(x_j)‖₂,    p = softmax(model logits)
//! ```
//!
//! Algorithm 1 leaves "Similarity" open; the authors' code
//! (`instance_attribution/*/embeddings_pae.ipynb`) uses the negated Euclidean
//! distance between the Keras model's softmax outputs over the whole training
//! set, with no class filter, and so do we. Larger (closer to 0) = more
//! similar = helps. Self-influence is `0` for every point by construction.

use wellspring_core::{Dataset, Grouping, ScoreMatrix, Targets};
use wellspring_models::burn_types::Device;
use wellspring_models::{AnyModel, predict_logits};

use super::{MethodInfo, OptionReader};
use crate::blocks::{by_test_blocks, check_self, groups_by_test_blocks, par_columns};
use crate::dense::softmax_rows;
use crate::error::{AttribError, Result};
use crate::signature::DataSignature;
use crate::source::ModelSource;
use crate::traits::{Attributor, DynAttributor, FittedAttributor};

/// Parameters of PAE (none besides the model; kept for the fit-then-use shape).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaeParams {}

impl PaeParams {
    /// PAE as in the paper's code.
    pub fn new() -> Self {
        Self {}
    }

    /// Nothing to check.
    pub fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// Fitted PAE: the training set's softmax outputs.
#[derive(Clone, Debug)]
pub struct Pae {
    probs: Vec<f64>,
    c: usize,
    n_train: usize,
    model: AnyModel,
    device: Device,
    sig: DataSignature,
}

fn probabilities(model: &AnyModel, data: &Dataset, device: &Device) -> Result<Vec<f64>> {
    if !matches!(data.targets(), Targets::Classes { .. }) {
        return Err(AttribError::unsupported(
            "pae",
            format!(
                "dataset {} has no class labels; PAE needs class probabilities",
                data.name()
            ),
        ));
    }
    let logits = predict_logits(model, data, device)?;
    Ok(softmax_rows(&logits, logits.len() / data.len().max(1)))
}

impl Attributor for PaeParams {
    type Fitted = Pae;

    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<Pae> {
        self.check()?;
        let model = source.model.valid();
        let probs = probabilities(&model, train, &source.device)?;
        Ok(Pae {
            c: probs.len() / train.len().max(1),
            probs,
            n_train: train.len(),
            model,
            device: source.device.clone(),
            sig: DataSignature::of(train),
        })
    }
}

impl Pae {
    /// The training set's softmax outputs, row-major `n_train × C`.
    pub fn train_probabilities(&self) -> &[f64] {
        &self.probs
    }

    fn test_probs(&self, test: &Dataset) -> Result<Vec<f64>> {
        self.sig.check(test)?;
        probabilities(&self.model, test, &self.device)
    }

    fn block(&self, q: &[f64], col0: usize, cols: usize) -> Vec<f32> {
        let c = self.c;
        par_columns(self.n_train, cols, |j, out| {
            let qj = &q[(col0 + j) * c..(col0 + j + 1) * c];
            for (i, o) in out.iter_mut().enumerate() {
                let pi = &self.probs[i * c..(i + 1) * c];
                let d2: f64 = pi.iter().zip(qj).map(|(a, b)| (a - b) * (a - b)).sum();
                *o = -(d2.sqrt() as f32);
            }
        })
    }
}

impl FittedAttributor for Pae {
    fn name(&self) -> &str {
        "pae"
    }

    fn n_train(&self) -> usize {
        self.n_train
    }

    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix> {
        let q = self.test_probs(test)?;
        by_test_blocks("pae", self.n_train, test.len(), |c0, c| Ok(self.block(&q, c0, c)))
    }

    fn self_attribute(&self) -> Result<Vec<f32>> {
        let out = vec![0.0f32; self.n_train];
        check_self("pae", &out)?;
        Ok(out)
    }

    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        let q = self.test_probs(test)?;
        groups_by_test_blocks("pae", grouping, self.n_train, test.len(), |c0, c| {
            Ok(self.block(&q, c0, c))
        })
    }
}

fn build(_r: &mut OptionReader<'_>) -> Result<Box<dyn DynAttributor>> {
    Ok(Box::new(PaeParams::new()))
}

/// Registry entry.
pub(crate) const INFO: MethodInfo = MethodInfo {
    name: "pae",
    description: "prediction as explanation: -||softmax(x_i) - softmax(x_j)||_2",
    paper: "Mahmood, Yin & Khanna 2025 (SVE), Algorithm 1",
    uses_gradients: false,
    params: &[],
    caps: super::Capabilities::NONE,
    build,
};
