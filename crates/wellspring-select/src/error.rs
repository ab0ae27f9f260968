//! The error type of `wellspring-select`.
//!
//! Every variant names the input that was wrong and what was wrong with it
//! ("subset budget 6000 exceeds 5000 training points").

use wellspring_core::CoreError;

/// Errors from selectors, their parameters and the training state they read.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// A budget of zero points was requested.
    #[error("subset budget is 0: a selection needs at least one point")]
    ZeroBudget,
    /// The budget exceeds the number of points it selects from.
    #[error("subset budget {budget} exceeds {n} training points")]
    BudgetTooLarge {
        /// Requested number of points.
        budget: usize,
        /// Points available.
        n: usize,
    },
    /// A subset fraction ρ outside `(0, 1]` (SVE Algorithm 2).
    #[error("subset fraction rho = {rho} must lie in (0, 1]")]
    BadFraction {
        /// The fraction given.
        rho: f64,
    },
    /// A selector needs an input the training state does not carry.
    #[error("{selector} needs {what}, which the training state does not provide")]
    Missing {
        /// The selector's name.
        selector: &'static str,
        /// The missing input, in words.
        what: String,
    },
    /// A validation set with no rows where one is required (GLISTER).
    #[error("{selector} needs a non-empty validation set, got 0 validation points")]
    EmptyValidation {
        /// The selector's name.
        selector: &'static str,
    },
    /// A shape or length did not match what was expected.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// The input whose shape was wrong.
        what: String,
        /// What was expected, in words.
        expected: String,
        /// What was found.
        got: String,
    },
    /// A NaN or infinite value in an input matrix.
    #[error("{what}: non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// The matrix.
        what: String,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value.
        value: f64,
    },
    /// A finite value outside its valid range (a negative probability, ...).
    #[error("{what}: value {value} at row {row}, column {col} {reason}")]
    OutOfRange {
        /// The matrix.
        what: String,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value.
        value: f64,
        /// Why it is invalid.
        reason: String,
    },
    /// A class label outside `0..n_classes`.
    #[error("{what}: label {label} in row {row} is out of range for {n_classes} classes")]
    Label {
        /// Which label list held it.
        what: String,
        /// The row.
        row: usize,
        /// The label.
        label: usize,
        /// Number of classes.
        n_classes: usize,
    },
    /// A hyper-parameter outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name as the user spells it.
        name: String,
        /// The value given, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A state machine (CREST) was driven out of order.
    #[error("{machine}: {call} is not valid now: {reason}")]
    OutOfOrder {
        /// The state machine.
        machine: &'static str,
        /// The call that was made.
        call: &'static str,
        /// What the machine expected instead.
        reason: String,
    },
    /// An error from the shared core types (building the `Subset`).
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl SelectError {
    /// Shorthand for [`SelectError::InvalidParam`].
    pub fn invalid_param(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        SelectError::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`SelectError::Shape`].
    pub fn shape(
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        SelectError::Shape {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// Shorthand for [`SelectError::Missing`].
    pub fn missing(selector: &'static str, what: impl Into<String>) -> Self {
        SelectError::Missing {
            selector,
            what: what.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = SelectError> = std::result::Result<T, E>;

/// Checks a row-major `rows × cols` matrix for NaN/inf; names the first offender.
pub(crate) fn check_finite_matrix(what: &str, values: &[f32], cols: usize) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(p) => Err(SelectError::NonFinite {
            what: what.to_string(),
            row: p / cols.max(1),
            col: p % cols.max(1),
            value: values[p] as f64,
        }),
    }
}
