//! The error type of `wellspring-eval`.
//!
//! Every variant names the input that was wrong and what was wrong with it
//! ("LDS subset share alpha = 1.2: must lie strictly between 0 and 1"), so a
//! message can be shown to a user as is.

use wellspring_core::CoreError;

/// Errors from metrics, searches and retrainers.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An error from the shared data types (bad subset, grouping, shape...).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A parameter outside its valid range (α ∉ (0,1), m = 0, budget 0, ...).
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name as the user spells it.
        name: String,
        /// The value given, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A score matrix whose shape does not match the data it is evaluated on.
    #[error(
        "score matrix for {metric} is {got_train} x {got_test} (train x test), but the data has \
         {expected_train} training and {expected_test} test points"
    )]
    ScoreShape {
        /// The metric that received it.
        metric: String,
        /// Training points (or groups) the data has.
        expected_train: usize,
        /// Test points the data has.
        expected_test: usize,
        /// Rows of the matrix.
        got_train: usize,
        /// Columns of the matrix.
        got_test: usize,
    },
    /// A vector whose length does not match what it describes.
    #[error("{what}: expected length {expected}, got {got}")]
    Length {
        /// The input.
        what: String,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// An index outside `0..len`.
    #[error("{what}: index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// Which index list held it.
        what: String,
        /// The offending index.
        index: usize,
        /// The valid length.
        len: usize,
    },
    /// A test set with no points (nothing to average over).
    #[error("empty test set: {what} needs at least one test point")]
    EmptyTestSet {
        /// The metric or function that needs test points.
        what: String,
    },
    /// A label-noise share of 0 (nothing to detect) or ≥ 1 (nothing clean).
    #[error(
        "noise share {share} ({flipped} flipped of {n} training points): must lie strictly \
         between 0 and 1"
    )]
    NoiseShare {
        /// `flipped / n`.
        share: f64,
        /// Number of flipped points given.
        flipped: usize,
        /// Number of training points.
        n: usize,
    },
    /// A metric needs an input the [`crate::EvalContext`] does not carry.
    #[error("{metric} needs {what} in the evaluation context")]
    MissingContext {
        /// The metric.
        metric: String,
        /// What is missing ("a retrainer", "flipped indices", ...).
        what: String,
    },
    /// A metric that needs class labels was given a regression task.
    #[error("{what} needs a classification task (class labels), but the data is a regression set")]
    NeedsClassification {
        /// The metric or function.
        what: String,
    },
    /// A solver that did not reach its tolerance.
    #[error("{what} did not converge after {iterations} iterations: {detail}")]
    NotConverged {
        /// The solver and problem.
        what: String,
        /// Iterations run.
        iterations: usize,
        /// Residual or gradient norm reached, in words.
        detail: String,
    },
    /// A model-backed retrainer failed (training, cache, I/O); the source says why.
    #[error("retraining failed ({context}): {source}")]
    Retrain {
        /// Which job failed (spec tag, seed).
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl EvalError {
    /// Shorthand for [`EvalError::InvalidParam`].
    pub fn invalid_param(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        EvalError::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`EvalError::Length`].
    pub fn length(what: impl Into<String>, expected: usize, got: usize) -> Self {
        EvalError::Length {
            what: what.into(),
            expected,
            got,
        }
    }

    /// Wraps an error from a model-backed retrainer, naming the job.
    pub fn retrain(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        EvalError::Retrain {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Checks a score matrix's shape against `(n_train, n_test)`.
pub(crate) fn check_shape(
    metric: &str,
    scores: &wellspring_core::ScoreMatrix,
    n_train: usize,
    n_test: usize,
) -> Result<()> {
    if n_test == 0 {
        return Err(EvalError::EmptyTestSet {
            what: metric.to_string(),
        });
    }
    if scores.n_train() != n_train || scores.n_test() != n_test {
        return Err(EvalError::ScoreShape {
            metric: metric.to_string(),
            expected_train: n_train,
            expected_test: n_test,
            got_train: scores.n_train(),
            got_test: scores.n_test(),
        });
    }
    Ok(())
}

/// Checks that indices lie in `0..len`.
pub(crate) fn check_indices(what: &str, idx: &[usize], len: usize) -> Result<()> {
    match idx.iter().find(|&&i| i >= len) {
        Some(&index) => Err(EvalError::IndexOutOfRange {
            what: what.to_string(),
            index,
            len,
        }),
        None => Ok(()),
    }
}
