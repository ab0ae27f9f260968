//! The model-backed harness (cargo feature `burn`): [`ModelRetrainer`] trains
//! burn models for every counterfactual metric, [`ModelFurtherTrainer`] runs
//! FiMO further training from a final model. Both cache each finished model's
//! test outputs by a content hash of everything that produced them, so a rerun
//! trains nothing it already has and a killed run resumes; both run several
//! models at once on worker threads, with a progress bar and ETA.

mod further;
mod outputs;
mod retrainer;
mod runner;
mod subset;

pub use further::ModelFurtherTrainer;
pub use outputs::outputs_from_logits;
pub use retrainer::ModelRetrainer;
pub use subset::SubsetRetrainer;

use wellspring_core::{ContentHasher, Dataset, Targets};
use wellspring_models::{Loss, Model, ModelConfig, ModelError};

use crate::error::{EvalError, Result};

/// Bumped whenever what a cached result means changes (seed derivation, the
/// outputs computed, the leave-out rule), so old cache entries are never reused.
pub const HARNESS_FORMAT: u32 = 2; // 2: TestOutputs gained the correct-class margin

/// The default number of models trained at once. On 2 shared cores two
/// concurrent MNIST-5000 trainings took as long as running them one after the
/// other (flex already parallelises each op), so the default is sequential;
/// raise it on machines with more cores than one model can use.
pub const DEFAULT_PARALLELISM: usize = 1;

impl From<wellspring_report::ReportError> for EvalError {
    fn from(e: wellspring_report::ReportError) -> Self {
        EvalError::retrain("result cache", e)
    }
}

/// The training set a spec trains on: `train` itself, or a copy with the
/// spec's label overrides applied (the spec was checked against the classes).
pub(crate) fn with_overrides<'a>(
    train: &'a Dataset,
    spec: &crate::retrain::RetrainSpec,
    n_classes: Option<usize>,
) -> Result<std::borrow::Cow<'a, Dataset>> {
    if spec.label_overrides.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(train));
    }
    let mut labels = train
        .labels()
        .expect("checked: overrides need classes")
        .to_vec();
    for (&i, &c) in &spec.label_overrides {
        labels[i] = c;
    }
    Ok(std::borrow::Cow::Owned(
        train.with_labels(labels, n_classes.expect("classification"))?,
    ))
}

/// Wraps a model error with the job it came from.
pub(crate) fn model_err(context: impl Into<String>) -> impl FnOnce(ModelError) -> EvalError {
    let context = context.into();
    move |e| EvalError::retrain(context, e)
}

/// The project's one dataset fingerprint (SHA-256 over every byte of the
/// data), under the name this crate has always exported.
pub use wellspring_core::fingerprint::dataset_fingerprint as data_fingerprint;

/// A content fingerprint of a model: its config and every trainable parameter
/// (BatchNorm running statistics are not included), SHA-256 with the same
/// encoding as [`data_fingerprint`].
pub fn model_fingerprint(m: &Model) -> String {
    let mut h = ContentHasher::new("model");
    h.field("config").str(&format!("{:?}", m.config));
    h.field("params").f32s(&m.params_flat());
    h.hex()
}

/// Checks that `train` and `test` define the same task, that neither is
/// empty, and that the loss suits the targets. Returns the number of classes.
pub(crate) fn check_task(
    what: &str,
    train: &Dataset,
    test: &Dataset,
    loss: Loss,
) -> Result<Option<usize>> {
    if train.is_empty() {
        return Err(EvalError::invalid_param(
            format!("{what} training set {}", train.name()),
            "0 points",
            "needs at least one training point",
        ));
    }
    if test.is_empty() {
        return Err(EvalError::EmptyTestSet {
            what: format!("{what} (test set {})", test.name()),
        });
    }
    let classes = match (train.targets(), test.targets()) {
        (Targets::Classes { n_classes: a, .. }, Targets::Classes { n_classes: b, .. }) => {
            if a != b {
                return Err(EvalError::invalid_param(
                    format!("n_classes of test set {}", test.name()),
                    b,
                    format!("the training set {} has {a} classes", train.name()),
                ));
            }
            Some(*a)
        }
        (Targets::Regression { n_targets: a, .. }, Targets::Regression { n_targets: b, .. }) => {
            if a != b {
                return Err(EvalError::length(
                    format!("regression targets of test set {}", test.name()),
                    *a,
                    *b,
                ));
            }
            None
        }
        _ => {
            return Err(EvalError::invalid_param(
                format!("targets of {} and {}", train.name(), test.name()),
                "one classification, one regression",
                "both sets must define the same task",
            ));
        }
    };
    match (loss, classes) {
        (Loss::CrossEntropy, None) => Err(EvalError::invalid_param(
            "TrainConfig.loss",
            "CrossEntropy",
            format!("{} has regression targets (use Loss::Mse)", train.name()),
        )),
        (Loss::Mse, Some(_)) => Err(EvalError::invalid_param(
            "TrainConfig.loss",
            "Mse",
            format!("{} has class labels (use Loss::CrossEntropy)", train.name()),
        )),
        _ => Ok(classes),
    }
}

/// Checks that `config` is valid and fits both datasets.
pub(crate) fn check_fits(config: &ModelConfig, sets: &[&Dataset]) -> Result<()> {
    config.validate().map_err(model_err("model config"))?;
    // A throwaway model on the host is the one place the shape rules live.
    let probe = Model::new(
        config.clone(),
        0,
        &wellspring_models::burn_types::Device::flex(),
    )
    .map_err(model_err("model config"))?;
    for d in sets {
        probe
            .check_dataset(d)
            .map_err(model_err(format!("dataset {}", d.name())))?;
    }
    Ok(())
}
