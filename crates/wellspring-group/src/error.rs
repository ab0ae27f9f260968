//! The error type of `wellspring-group`.

use wellspring_core::CoreError;

/// Errors from building groupings. Every variant names the input that was
/// wrong ("group count 0", "points row 12, column 3: NaN").
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// An error from the shared data types (a grouping that is not a partition, ...).
    #[error(transparent)]
    Core(#[from] CoreError),
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
    /// The point matrix has the wrong length or non-finite values.
    #[error("points: {reason}")]
    Points {
        /// What is wrong with it.
        reason: String,
    },
}

impl GroupError {
    /// Shorthand for [`GroupError::InvalidParam`].
    pub fn invalid_param(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        GroupError::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = GroupError> = std::result::Result<T, E>;
