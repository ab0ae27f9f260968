//! The error type of `wellspring-attrib`.

use wellspring_core::CoreError;
use wellspring_group::GroupError;
use wellspring_models::ModelError;

/// Errors from fitting attributors and computing scores. Each variant names
/// the input that was wrong and says what was wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum AttribError {
    /// An error from the shared data types (bad grouping, non-finite scores, ...).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error from the model crate (the dataset does not fit the model, ...).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An error from building a grouping.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A method parameter is outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name as the user spells it (`esvm.c`, `rps.lambda`).
        name: String,
        /// The value given, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The test (or query) data does not match what the attributor was fitted on.
    #[error("dataset {dataset} does not match the training data of this attributor: {reason}")]
    DataMismatch {
        /// The offending dataset.
        dataset: String,
        /// What differs.
        reason: String,
    },
    /// A method name that is not in the registry.
    #[error("unknown attribution method {name:?}; available: {available}")]
    UnknownMethod {
        /// The name asked for.
        name: String,
        /// Registered names, comma-separated.
        available: String,
    },
    /// The method cannot do what was asked (e.g. PAE on a regression model).
    #[error("{method}: {reason}")]
    Unsupported {
        /// The method.
        method: String,
        /// Why.
        reason: String,
    },
    /// An iterative inverse-curvature solver diverged (LiSSA's recursion
    /// outgrew its bound): its scale is below the curvature's largest
    /// eigenvalue, and a larger `scale` may converge.
    #[error(
        "{solver}: diverged at step {step} of repeat {repeat} (iterate norm {norm:e}, bound \
         {bound:e}); the scale {scale} is below the curvature's largest eigenvalue: raise `scale`"
    )]
    Diverged {
        /// Which solver (`if-lissa`).
        solver: String,
        /// Recursion step at which the bound was crossed.
        step: usize,
        /// Repeat (independent recursion) it happened in.
        repeat: usize,
        /// Norm of the iterate.
        norm: f64,
        /// The bound it crossed.
        bound: f64,
        /// The scale used.
        scale: f64,
    },
    /// A solver could not produce a usable result.
    #[error("{solver}: {reason}")]
    Solver {
        /// Which solver (`rps refit`, `esvm`).
        solver: String,
        /// What went wrong.
        reason: String,
    },
}

impl AttribError {
    /// Shorthand for [`AttribError::InvalidParam`].
    pub fn invalid_param(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        AttribError::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`AttribError::DataMismatch`].
    pub fn mismatch(dataset: impl Into<String>, reason: impl Into<String>) -> Self {
        AttribError::DataMismatch {
            dataset: dataset.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`AttribError::Unsupported`].
    pub fn unsupported(method: impl Into<String>, reason: impl Into<String>) -> Self {
        AttribError::Unsupported {
            method: method.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = AttribError> = std::result::Result<T, E>;

/// Checks that a parameter is finite and strictly positive.
pub(crate) fn positive(name: &str, v: f64) -> Result<()> {
    if !v.is_finite() || v <= 0.0 {
        return Err(AttribError::invalid_param(
            name,
            v,
            "must be finite and > 0",
        ));
    }
    Ok(())
}
