//! [`DataDir`]: where dataset files are looked up.
//!
//! Resolution order: an explicit path; else the `WELLSPRING_DATA` environment
//! variable; else the repository's embedded `datasets/` directory. Inside the
//! chosen directory each dataset lives in [`DatasetName::subdir`]. When the
//! directory came from `WELLSPRING_DATA` and a file of an embedded dataset is
//! missing there, the embedded directory is searched too.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::name::DatasetName;

/// Where a [`DataDir`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirOrigin {
    /// Given explicitly by the caller.
    Explicit,
    /// From the `WELLSPRING_DATA` environment variable.
    Env,
    /// The repository's `datasets/` directory, found at compile time.
    Embedded,
}

impl fmt::Display for DirOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DirOrigin::Explicit => "given explicitly",
            DirOrigin::Env => "from WELLSPRING_DATA",
            DirOrigin::Embedded => "the repository's embedded datasets/ directory",
        })
    }
}

/// A resolved, existing data directory plus the embedded fallback rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
    origin: DirOrigin,
}

impl DataDir {
    /// Name of the environment variable that points at a data directory.
    pub const ENV: &'static str = "WELLSPRING_DATA";

    /// The repository's `datasets/` directory (`<crate>/../../datasets`), fixed
    /// at compile time (canonicalised when it exists, for readable messages).
    pub fn embedded_root() -> PathBuf {
        let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets"));
        std::fs::canonicalize(&p).unwrap_or(p)
    }

    /// Resolves `explicit`, else `$WELLSPRING_DATA`, else the embedded directory;
    /// errors if the chosen directory does not exist.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        let env = std::env::var_os(Self::ENV);
        Self::resolve_with(explicit, env.as_deref())
    }

    /// [`DataDir::resolve`] with the environment value passed in (testable, no globals).
    ///
    /// An empty `env_value` counts as unset. A relative `env_value` is taken
    /// relative to the current directory, or, if nothing is there, relative to
    /// the workspace root: cargo runs tests inside the crate directory, so
    /// `WELLSPRING_DATA=../shared/datasets cargo test` from the workspace root
    /// must still find `../shared/datasets`.
    pub fn resolve_with(explicit: Option<&Path>, env_value: Option<&OsStr>) -> Result<Self> {
        if let Some(p) = explicit {
            return Self::at(p);
        }
        if let Some(v) = env_value.filter(|v| !v.is_empty()) {
            let p = PathBuf::from(v);
            let chosen = if p.is_relative() && !p.is_dir() {
                let ws = Self::embedded_root().join("..").join(&p);
                if ws.is_dir() { ws } else { p }
            } else {
                p
            };
            return Self::checked(chosen, DirOrigin::Env);
        }
        Self::embedded()
    }

    /// An explicit directory (must exist); no embedded fallback.
    pub fn at(path: impl Into<PathBuf>) -> Result<Self> {
        Self::checked(path.into(), DirOrigin::Explicit)
    }

    /// The embedded `datasets/` directory (must exist).
    pub fn embedded() -> Result<Self> {
        Self::checked(Self::embedded_root(), DirOrigin::Embedded)
    }

    fn checked(root: PathBuf, origin: DirOrigin) -> Result<Self> {
        if !root.is_dir() {
            return Err(DataError::MissingDir {
                path: root,
                origin: origin.to_string(),
            });
        }
        Ok(Self { root, origin })
    }

    /// The chosen directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where it came from.
    pub fn origin(&self) -> DirOrigin {
        self.origin
    }

    /// Directories searched for `name`'s files, in order: the chosen one, then
    /// (only for `WELLSPRING_DATA` and embedded datasets) the embedded one.
    pub fn search_dirs(&self, name: DatasetName) -> Vec<PathBuf> {
        let mut dirs = vec![self.root.join(name.subdir())];
        if self.origin == DirOrigin::Env && name.is_embedded() {
            let emb = Self::embedded_root().join(name.subdir());
            if emb != dirs[0] {
                dirs.push(emb);
            }
        }
        dirs
    }

    /// The first existing file among `candidates` (names relative to the
    /// dataset's subdirectory), searching each directory in turn; the error
    /// names the dataset, the first candidate and every directory searched.
    pub fn find(&self, name: DatasetName, candidates: &[&str]) -> Result<PathBuf> {
        let dirs = self.search_dirs(name);
        for d in &dirs {
            for c in candidates {
                let p = d.join(c);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(DataError::MissingFile {
            dataset: name.as_str().to_string(),
            subdir: name.subdir().to_string(),
            file: candidates.first().copied().unwrap_or("").to_string(),
            searched: dirs,
        })
    }

    /// True if [`DataDir::find`] would succeed.
    pub fn has(&self, name: DatasetName, candidates: &[&str]) -> bool {
        self.find(name, candidates).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_order() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DataDir::resolve_with(Some(tmp.path()), Some(OsStr::new("/nope"))).unwrap();
        assert_eq!(d.origin(), DirOrigin::Explicit);
        let d = DataDir::resolve_with(None, Some(tmp.path().as_os_str())).unwrap();
        assert_eq!(d.origin(), DirOrigin::Env);
        let d = DataDir::resolve_with(None, None).unwrap();
        assert_eq!(d.origin(), DirOrigin::Embedded);
        let d = DataDir::resolve_with(None, Some(OsStr::new(""))).unwrap();
        assert_eq!(d.origin(), DirOrigin::Embedded);
    }

    #[test]
    fn env_dir_falls_back_to_embedded_for_embedded_datasets() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DataDir::resolve_with(None, Some(tmp.path().as_os_str())).unwrap();
        let p = d
            .find(DatasetName::Concrete, &["concrete.csv"])
            .expect("embedded fallback");
        assert!(p.starts_with(DataDir::embedded_root()));
        // An explicit directory is strict.
        let d = DataDir::at(tmp.path()).unwrap();
        let e = d
            .find(DatasetName::Concrete, &["concrete.csv"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("concrete") && e.contains("WELLSPRING_DATA") && e.contains("fetch-data"),
            "{e}"
        );
    }
}
