//! The error type of `wellspring-data`.
//!
//! Every variant names the file, row, column or value at fault and what is
//! wrong with it, so a message can be shown to a user as is.

use std::path::{Path, PathBuf};

use wellspring_core::CoreError;

/// Errors from loading, splitting, corrupting or fetching datasets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An error from the shared data types (bad parameter, index, shape...).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A binary file (IDX, CIFAR) whose content is malformed.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A bad cell or row in a delimited text file.
    #[error("{path}, line {line}, column {column}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// Column name (or 1-based position when there is no header).
        column: String,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A data directory that does not exist.
    #[error("data directory {path} ({origin}) does not exist or is not a directory")]
    MissingDir {
        /// The directory.
        path: PathBuf,
        /// Where the path came from (explicit, `WELLSPRING_DATA`, embedded).
        origin: String,
    },
    /// A dataset file found in none of the searched directories.
    #[error(
        "dataset {dataset}: file {file} not found; searched {}. Set WELLSPRING_DATA to a directory \
         that holds {subdir}/{file}, or run `cargo xtask fetch-data {dataset}`",
        join_paths(.searched)
    )]
    MissingFile {
        /// Canonical dataset name.
        dataset: String,
        /// Subdirectory of the data directory that should hold the file.
        subdir: String,
        /// The file (first of the accepted names).
        file: String,
        /// Directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// A file whose sha256 is not the registered one.
    #[error("{path}: sha256 mismatch for {file}: expected {expected}, got {actual}")]
    Checksum {
        /// The file checked (a temporary download is already deleted).
        path: PathBuf,
        /// Registered file name.
        file: String,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
    /// A dataset name that is not known.
    #[error("unknown dataset {name:?}; known datasets: {known}")]
    UnknownDataset {
        /// The name given.
        name: String,
        /// The accepted names, comma-separated.
        known: String,
    },
    /// A download that failed (network, HTTP status, missing tool).
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A file that cannot be fetched automatically (license terms, derived file).
    #[error("dataset {dataset}: file {file} cannot be downloaded automatically: {how}")]
    NoSource {
        /// Canonical dataset name.
        dataset: String,
        /// The file.
        file: String,
        /// How to obtain it instead.
        how: String,
    },
    /// An external tool (`curl`, `tar`, `unzip`) that is missing or failed.
    #[error("{tool}: {reason}")]
    Tool {
        /// The program.
        tool: String,
        /// What went wrong.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// Shorthand for an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for a malformed binary file.
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for a bad parameter ([`CoreError::InvalidParam`]).
    pub fn invalid_param(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        DataError::Core(CoreError::invalid_param(name, value, reason))
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no directories".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Reads a file and gunzips it if it starts with the gzip magic bytes (so both
/// `x.gz` and an already-decompressed `x` are accepted whatever their names).
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = read_file(path)?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        use std::io::Read;
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads a (possibly gzipped) UTF-8 text file.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = read_maybe_gz(path)?;
    String::from_utf8(bytes).map_err(|e| {
        DataError::format(
            path,
            format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })
}
