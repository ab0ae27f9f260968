//! The error type of `wellspring-models`.

use std::path::PathBuf;

use wellspring_core::CoreError;

/// Errors from building, training, evaluating, saving and loading models.
///
/// Each variant names the input that was wrong (a config field, a dataset, a
/// file, a layer) and says what was wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An error from the shared data types (bad subset, index out of range, ...).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A model or training configuration value is invalid.
    #[error("invalid {field} = {value}: {reason}")]
    InvalidConfig {
        /// Field as the user spells it, e.g. `Cnn.side` or `TrainConfig.lr`.
        field: String,
        /// The value given, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A dataset does not fit the model (feature width, channels, vocabulary, classes).
    #[error("dataset {dataset} does not fit the model: {reason}")]
    DataMismatch {
        /// Dataset name.
        dataset: String,
        /// What does not fit.
        reason: String,
    },
    /// A layer name given to [`crate::Model::param_layers_matching`] matches no layer.
    #[error("no parameter layer named {name:?}; the model has {available}")]
    UnknownLayer {
        /// The name asked for.
        name: String,
        /// The layer paths that exist, comma-separated.
        available: String,
    },
    /// A flat parameter vector has the wrong length or non-finite values.
    #[error("parameter vector: {reason}")]
    Params {
        /// What is wrong with it.
        reason: String,
    },
    /// Training diverged or could not proceed.
    #[error("training: {reason}")]
    Training {
        /// What happened, with the step and epoch.
        reason: String,
    },
    /// A checkpoint or weight file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl ModelError {
    /// Shorthand for [`ModelError::InvalidConfig`].
    pub fn config(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        ModelError::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ModelError::DataMismatch`].
    pub fn data(dataset: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::DataMismatch {
            dataset: dataset.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ModelError::File`].
    pub fn file(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        ModelError::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
