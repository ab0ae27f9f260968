//! The error type of `wellspring-report`. Every variant names the file, plot or
//! cache key it is about.

use std::path::PathBuf;

use wellspring_core::CoreError;

/// Errors from writing reports, rendering plots and using the cache.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An I/O error on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file that could not be read or written.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A value that could not be turned into JSON (a setting or a cache-key field).
    #[error("{what}: cannot be encoded as JSON: {reason}")]
    Encode {
        /// The setting or field, by name.
        what: String,
        /// What serde said.
        reason: String,
    },
    /// A plot that plotters could not draw.
    #[error("plot {plot:?}: {reason}")]
    Plot {
        /// The plot's name.
        plot: String,
        /// What went wrong.
        reason: String,
    },
    /// A target, plot or cache namespace name that cannot be used in a file name.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// What the name is for ("target", "plot", "cache namespace").
        what: &'static str,
        /// The name given.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A cache entry that could not be created.
    #[error("cache entry {path}: {reason}")]
    CacheEntry {
        /// The entry's file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An error from `wellspring-core` (atomic writes name their file).
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl ReportError {
    /// Shorthand for [`ReportError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Checks that `name` can be used as (part of) a file name: ASCII letters,
/// digits, `-`, `_` and `.`, not empty, not starting with `.`.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if name.starts_with('.') {
        Some("must not start with '.'".to_string())
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .map(|c| format!("character {c:?} is not allowed (use letters, digits, '-', '_', '.')"))
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ReportError::InvalidName {
            what,
            name: name.to_string(),
            reason,
        }),
    }
}
