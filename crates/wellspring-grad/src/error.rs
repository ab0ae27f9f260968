//! The error type of `wellspring-grad`.

use std::path::PathBuf;

use wellspring_core::CoreError;
use wellspring_models::ModelError;

/// Errors from the gradient engine. Each variant names the input that was
/// wrong and says what was wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum GradError {
    /// A shared data type rejected its input (bad index, shape, grouping, npy file).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The model rejected its input (dataset does not fit, unknown layer name).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A parameter of this crate is out of range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter as the user spells it (`Gaussian.dim`).
        name: String,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A vector or matrix has the wrong length.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// The input whose length was wrong.
        what: String,
        /// What was expected.
        expected: String,
        /// What was found.
        got: String,
    },
    /// The requested computation is not available for this model, layer or
    /// output function.
    #[error("{what}: {reason}")]
    Unsupported {
        /// What was asked for.
        what: String,
        /// Why it cannot be done.
        reason: String,
    },
    /// A non-finite value appeared (diverged model, bad input).
    #[error("{what}: non-finite value {value} at position {position}")]
    NonFinite {
        /// Where.
        what: String,
        /// Flat position.
        position: usize,
        /// The value.
        value: f64,
    },
    /// A gradient store on disk could not be used.
    #[error("gradient store {path}: {reason}")]
    Store {
        /// Store directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A callback supplied by the caller asked to stop.
    #[error("stopped by the caller: {0}")]
    Callback(String),
}

impl GradError {
    /// Shorthand for [`GradError::InvalidParam`].
    pub fn param(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        GradError::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`GradError::Shape`].
    pub fn shape(
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        GradError::Shape {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// Shorthand for [`GradError::Unsupported`].
    pub fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Self {
        GradError::Unsupported {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`GradError::Store`].
    pub fn store(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        GradError::Store {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = GradError> = std::result::Result<T, E>;

/// Checks that a slice has `expected` elements.
pub(crate) fn check_len<T>(what: &str, v: &[T], expected: usize) -> Result<()> {
    if v.len() != expected {
        return Err(GradError::shape(
            what,
            format!("length {expected}"),
            format!("length {}", v.len()),
        ));
    }
    Ok(())
}

/// Checks every value is finite.
pub(crate) fn check_finite64(what: &str, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(position) => Err(GradError::NonFinite {
            what: what.to_string(),
            position,
            value: v[position],
        }),
    }
}
