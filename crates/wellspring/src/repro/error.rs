//! [`ReproError`]: every way a reproduce target can fail. Errors of the
//! library crates convert in with `#[from]` and keep their own words;
//! [`super::run`] prefixes the target's name.

use wellspring_attrib::AttribError;
use wellspring_core::CoreError;
use wellspring_data::DataError;
use wellspring_eval::EvalError;
use wellspring_grad::GradError;
use wellspring_models::ModelError;
use wellspring_report::ReportError;
use wellspring_select::{LoopError, SelectError};

/// Errors from running a reproduce target.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    /// No target has this name.
    #[error("unknown reproduce target {name:?}; known targets: {}", known.join(", "))]
    UnknownTarget {
        /// The name asked for.
        name: String,
        /// Every registered name.
        known: Vec<&'static str>,
    },
    /// A target returned a report named after another target (its files
    /// would land under the wrong name).
    #[error("target {target} returned a report named {got:?}; use Report::new({target:?}, ..)")]
    ReportName {
        /// The target run.
        target: &'static str,
        /// The report's name.
        got: String,
    },
    /// A target failed; `error` says how.
    #[error("{target}: {error}")]
    Target {
        /// The target.
        target: &'static str,
        /// What went wrong.
        error: Box<ReproError>,
    },
    /// Writing the report, plotting or caching failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Loading data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A core type rejected its input.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Building, training, evaluating or loading a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Computing gradients failed.
    #[error(transparent)]
    Grad(#[from] GradError),
    /// Building, fitting or running an attribution method, or grouping, failed.
    #[error(transparent)]
    Attrib(#[from] AttribError),
    /// A metric or the retraining harness failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A data-selection strategy rejected its settings.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// A selection training loop failed.
    #[error(transparent)]
    Loop(#[from] LoopError),
    /// A target's own expectation about its inputs failed (one no library
    /// crate checks), in words.
    #[error("{0}")]
    Failed(String),
}
