//! The error type of `wellspring-core`.
//!
//! Every variant names the input that was wrong and what was wrong with it, so a
//! message can be shown to a user as is ("subset index 6000 out of range for 5000
//! training points").

use std::path::PathBuf;

/// Errors from the plain data types in this crate.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A shape or length did not match what was expected.
    #[error("{what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// The input whose shape was wrong.
        what: String,
        /// What was expected, in words (e.g. "length 5000").
        expected: String,
        /// What was found.
        got: String,
    },
    /// An index was outside `0..len`.
    #[error("{what}: index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// Which index list held it.
        what: String,
        /// The offending index.
        index: usize,
        /// The valid length.
        len: usize,
    },
    /// An index occurred twice where each index may occur once.
    #[error("{what}: index {index} occurs more than once")]
    DuplicateIndex {
        /// Which index list held it.
        what: String,
        /// The repeated index.
        index: usize,
    },
    /// A set, list or matrix was empty where at least one element is needed.
    #[error("{what} is empty")]
    Empty {
        /// What was empty.
        what: String,
    },
    /// A value was NaN or infinite.
    #[error("{what}: non-finite value {value} at position {position}")]
    NonFinite {
        /// Where it was found.
        what: String,
        /// Flat position of the value.
        position: usize,
        /// The value.
        value: f64,
    },
    /// A parameter was outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name as the user spells it.
        name: String,
        /// The value given, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file that could not be parsed.
    #[error("{path}: not a valid .npy file: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl CoreError {
    /// Shorthand for [`CoreError::InvalidParam`].
    pub fn invalid_param(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        CoreError::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`CoreError::ShapeMismatch`].
    pub fn shape(
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        CoreError::ShapeMismatch {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// Shorthand for [`CoreError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Checks that every value is finite; names the first offender.
pub fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(position) => Err(CoreError::NonFinite {
            what: what.to_string(),
            position,
            value: values[position] as f64,
        }),
    }
}
