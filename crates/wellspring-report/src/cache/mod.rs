//! A content-addressed cache for trained models, gradients and other expensive
//! intermediate results, so that rerunning a reproduce target resumes.
//!
//! An entry lives at `<root>/<namespace>/<digest>.<ext>` next to a sidecar
//! `<digest>.<ext>.meta.json` holding its length, SHA-256 and the key's fields.
//! The digest is SHA-256 over a format salt, the namespace and the canonical
//! JSON of the key's fields (object keys sorted, so field order never matters).
//! Every read verifies length and checksum; a missing sidecar, a truncated or a
//! corrupted entry is reported through the warning hook, removed, and
//! recomputed: a damaged entry is never used.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wellspring_core::ScoreMatrix;
use wellspring_core::npy::atomic_write;

use crate::env::{format_utc, workspace_root};

mod nonfinite;
use crate::error::{ReportError, Result, check_name};

/// Bumped whenever the cache layout or key encoding changes; part of every digest.
pub const CACHE_FORMAT_VERSION: u32 = 2;

/// Environment variable that overrides the default cache directory.
pub const CACHE_ENV: &str = "WELLSPRING_CACHE";

/// Identifies a cache entry: a namespace (`"models"`, `"grads"`) plus named
/// fields holding everything that produced the entry (data, hyper-parameters,
/// seeds, code version).
///
/// ```
/// use wellspring_report::CacheKey;
/// let a = CacheKey::new("models").field("lr", &0.1).field("seed", &7u64);
/// let b = CacheKey::new("models").field("seed", &7u64).field("lr", &0.1);
/// assert_eq!(a.digest().unwrap(), b.digest().unwrap());
/// assert_ne!(a.digest().unwrap(), a.clone().field("epochs", &3).digest().unwrap());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CacheKey {
    namespace: String,
    fields: BTreeMap<String, Value>,
    /// First problem met while building the key, reported when it is used.
    error: Option<String>,
}

impl CacheKey {
    /// An empty key in `namespace` (letters, digits, `-`, `_`, `.`).
    pub fn new(namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        let error = check_name("cache namespace", &namespace)
            .err()
            .map(|e| e.to_string());
        CacheKey {
            namespace,
            fields: BTreeMap::new(),
            error,
        }
    }

    /// Adds a named field. A value that cannot be encoded as JSON, or a name
    /// used twice, makes every use of the key fail with an error naming it.
    /// Non-finite floats (which JSON writes as `null`, like a missing value)
    /// are recorded with their position and kind, so `NaN`, `inf` and `None`
    /// give different digests.
    pub fn field<T: Serialize + ?Sized>(mut self, name: impl Into<String>, value: &T) -> Self {
        let name = name.into();
        let encoded = serde_json::to_value(value).and_then(|v| {
            let odd = nonfinite::non_finite_leaves(value)?;
            Ok(if odd.is_empty() {
                v
            } else {
                serde_json::json!({ "$value": v, "$non_finite": odd })
            })
        });
        match encoded {
            Ok(v) => {
                if self.fields.insert(name.clone(), v).is_some() && self.error.is_none() {
                    self.error = Some(format!("field {name:?} given twice"));
                }
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(format!("field {name:?}: {e}"));
                }
            }
        }
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The fields as one canonical JSON object (keys sorted at every level).
    pub fn canonical_json(&self) -> Result<String> {
        if let Some(reason) = &self.error {
            return Err(ReportError::Encode {
                what: format!("cache key {:?}", self.namespace),
                reason: reason.clone(),
            });
        }
        let mut out = String::new();
        canonical(
            &Value::Object(self.fields.clone().into_iter().collect()),
            &mut out,
        );
        Ok(out)
    }

    /// SHA-256 (hex) of format salt, namespace and canonical fields.
    pub fn digest(&self) -> Result<String> {
        let json = self.canonical_json()?;
        let mut h = Sha256::new();
        h.update(format!("wellspring-cache/v{CACHE_FORMAT_VERSION}\n").as_bytes());
        h.update(self.namespace.as_bytes());
        h.update(b"\n");
        h.update(json.as_bytes());
        Ok(hex(&h.finalize()))
    }
}

/// Compact JSON with object keys sorted, independent of serde_json's map order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A problem found with a cache entry; the entry has been removed and will be
/// recomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheWarning {
    /// The entry's data file.
    pub path: PathBuf,
    /// What was wrong ("checksum mismatch", "sidecar missing", …).
    pub reason: String,
}

impl fmt::Display for CacheWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache entry {}: {}; removed, recomputing",
            self.path.display(),
            self.reason
        )
    }
}

/// Receives cache warnings (default: printed to stderr).
pub type WarnHook = Arc<dyn Fn(&CacheWarning) + Send + Sync>;

/// The sidecar stored next to each entry.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format: u32,
    len: u64,
    sha256: String,
    namespace: String,
    key: Value,
    created_utc: String,
}

/// A content-addressed, checksummed directory of cached results.
#[derive(Clone)]
pub struct Cache {
    root: PathBuf,
    warn: WarnHook,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache").field("root", &self.root).finish()
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The default cache directory: `$WELLSPRING_CACHE` if set, else
/// `$CARGO_TARGET_DIR/wellspring-cache`, else `<workspace>/target/wellspring-cache`.
pub fn default_cache_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var(CACHE_ENV) {
        return p;
    }
    if let Some(t) = var("CARGO_TARGET_DIR") {
        // Cargo resolves a relative target dir against the current directory.
        return std::path::absolute(&t)
            .unwrap_or(t)
            .join("wellspring-cache");
    }
    workspace_root().join("target").join("wellspring-cache")
}

impl Cache {
    /// Opens (creating if needed) a cache rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| ReportError::io(&root, e))?;
        Ok(Cache {
            root,
            warn: Arc::new(|w: &CacheWarning| eprintln!("warning: {w}")),
        })
    }

    /// Opens the cache at [`default_cache_dir`].
    pub fn open_default() -> Result<Self> {
        Cache::open(default_cache_dir())
    }

    /// Replaces the warning hook (e.g. to log through a progress bar, or to
    /// collect warnings in a test).
    pub fn with_warn_hook(mut self, hook: impl Fn(&CacheWarning) + Send + Sync + 'static) -> Self {
        self.warn = Arc::new(hook);
        self
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the entry for `key` with extension `ext` lives (whether or not it exists).
    pub fn entry_path(&self, key: &CacheKey, ext: &str) -> Result<PathBuf> {
        check_name("cache file extension", ext)?;
        Ok(self
            .root
            .join(key.namespace())
            .join(format!("{}.{ext}", key.digest()?)))
    }

    fn meta_path(data: &Path) -> PathBuf {
        let mut s = data.as_os_str().to_owned();
        s.push(".meta.json");
        PathBuf::from(s)
    }

    fn reject(&self, data: &Path, reason: String) {
        let _ = std::fs::remove_file(data);
        let _ = std::fs::remove_file(Self::meta_path(data));
        (self.warn)(&CacheWarning {
            path: data.to_path_buf(),
            reason,
        });
    }

    /// Reads the sidecar of an existing entry; `Err(reason)` if unusable.
    fn read_meta(data: &Path) -> std::result::Result<Option<Meta>, String> {
        let meta_path = Self::meta_path(data);
        let (data_ok, meta_ok) = (data.is_file(), meta_path.is_file());
        match (data_ok, meta_ok) {
            (false, false) => Ok(None),
            (true, false) => Err("checksum sidecar missing (interrupted write?)".into()),
            (false, true) => Err("data file missing but its sidecar exists".into()),
            (true, true) => {
                let text = std::fs::read_to_string(&meta_path)
                    .map_err(|e| format!("cannot read sidecar: {e}"))?;
                let meta: Meta = serde_json::from_str(&text)
                    .map_err(|e| format!("sidecar {} is not valid: {e}", meta_path.display()))?;
                if meta.format != CACHE_FORMAT_VERSION {
                    return Err(format!(
                        "sidecar has format {}, expected {CACHE_FORMAT_VERSION}",
                        meta.format
                    ));
                }
                Ok(Some(meta))
            }
        }
    }

    fn check(meta: &Meta, len: u64, sha: &str) -> std::result::Result<(), String> {
        if len != meta.len {
            return Err(format!(
                "truncated or extended: {len} bytes, expected {}",
                meta.len
            ));
        }
        if sha != meta.sha256 {
            return Err(format!(
                "checksum mismatch: sha256 {sha}, expected {}",
                meta.sha256
            ));
        }
        Ok(())
    }

    /// Errors (as a rejection reason) unless the sidecar was written for `key`:
    /// a digest collision, a hand-copied entry or a sidecar of another entry
    /// must never be used in place of the requested result.
    fn check_key(meta: &Meta, key: &CacheKey) -> std::result::Result<(), String> {
        let json = key.canonical_json().map_err(|e| e.to_string())?;
        let want: Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        if meta.namespace != key.namespace() {
            return Err(format!(
                "sidecar is for namespace {:?}, not {:?}",
                meta.namespace,
                key.namespace()
            ));
        }
        if meta.key != want {
            let fields = |v: &Value| -> BTreeMap<String, Value> {
                v.as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default()
            };
            let (have, want) = (fields(&meta.key), fields(&want));
            let differ: Vec<&String> = have
                .keys()
                .chain(want.keys())
                .filter(|k| have.get(*k) != want.get(*k))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(format!(
                "sidecar key differs from the requested key in field(s) {differ:?}"
            ));
        }
        Ok(())
    }

    /// The verified bytes of an entry, or `None` (after a warning if it was damaged).
    fn load_bytes(&self, data: &Path, key: &CacheKey) -> Option<Vec<u8>> {
        let verified = Self::read_meta(data).and_then(|meta| {
            let Some(meta) = meta else { return Ok(None) };
            Self::check_key(&meta, key)?;
            let bytes = std::fs::read(data).map_err(|e| format!("cannot read: {e}"))?;
            Self::check(&meta, bytes.len() as u64, &hex(&Sha256::digest(&bytes)))?;
            Ok(Some(bytes))
        });
        verified.unwrap_or_else(|reason| {
            self.reject(data, reason);
            None
        })
    }

    /// The path of a verified file entry, or `None` (after a warning if damaged).
    fn load_file(&self, data: &Path, key: &CacheKey) -> Option<PathBuf> {
        let verified = Self::read_meta(data).and_then(|meta| {
            let Some(meta) = meta else { return Ok(None) };
            Self::check_key(&meta, key)?;
            let (len, sha) = hash_file(data).map_err(|e| format!("cannot read: {e}"))?;
            Self::check(&meta, len, &sha)?;
            Ok(Some(data.to_path_buf()))
        });
        verified.unwrap_or_else(|reason| {
            self.reject(data, reason);
            None
        })
    }

    fn write_meta(&self, key: &CacheKey, data: &Path, len: u64, sha256: String) -> Result<()> {
        let meta = Meta {
            format: CACHE_FORMAT_VERSION,
            len,
            sha256,
            namespace: key.namespace().to_string(),
            key: serde_json::from_str(&key.canonical_json()?).unwrap_or(Value::Null),
            created_utc: format_utc(std::time::SystemTime::now()),
        };
        let path = Self::meta_path(data);
        let text = serde_json::to_string_pretty(&meta).map_err(|source| ReportError::Json {
            path: path.clone(),
            source,
        })?;
        // The sidecar is written last: its presence marks the entry complete.
        atomic_write(&path, text.as_bytes())?;
        Ok(())
    }

    /// Whether a verified entry exists for `key` (a damaged one is removed).
    pub fn contains(&self, key: &CacheKey, ext: &str) -> Result<bool> {
        let path = self.entry_path(key, ext)?;
        Ok(self.load_file(&path, key).is_some())
    }

    /// Removes the entry for `key`, if any.
    pub fn remove(&self, key: &CacheKey, ext: &str) -> Result<()> {
        let path = self.entry_path(key, ext)?;
        for p in [Self::meta_path(&path), path] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ReportError::io(p, e)),
            }
        }
        Ok(())
    }

    /// The cached bytes for `key`, or the result of `compute` (stored first).
    pub fn get_or_compute_bytes<E: From<ReportError>>(
        &self,
        key: &CacheKey,
        compute: impl FnOnce() -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<Vec<u8>, E> {
        let path = self.entry_path(key, "bin")?;
        if let Some(bytes) = self.load_bytes(&path, key) {
            return Ok(bytes);
        }
        let bytes = compute()?;
        atomic_write(&path, &bytes).map_err(ReportError::from)?;
        self.write_meta(key, &path, bytes.len() as u64, hex(&Sha256::digest(&bytes)))?;
        Ok(bytes)
    }

    /// The cached value for `key` (stored as JSON), or the result of `compute`.
    /// An entry that no longer deserialises as `T` is treated as damaged.
    pub fn get_or_compute_json<T, E>(
        &self,
        key: &CacheKey,
        compute: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<ReportError>,
    {
        let path = self.entry_path(key, "json")?;
        if let Some(bytes) = self.load_bytes(&path, key) {
            match serde_json::from_slice(&bytes) {
                Ok(v) => return Ok(v),
                Err(e) => self.reject(&path, format!("does not decode as the expected type: {e}")),
            }
        }
        let value = compute()?;
        let bytes = serde_json::to_vec(&value).map_err(|source| ReportError::Json {
            path: path.clone(),
            source,
        })?;
        atomic_write(&path, &bytes).map_err(ReportError::from)?;
        self.write_meta(key, &path, bytes.len() as u64, hex(&Sha256::digest(&bytes)))?;
        Ok(value)
    }

    /// The path of the cached file for `key`, creating it if needed: `create`
    /// gets a temporary path ending in `.<ext>` in the cache directory and
    /// must write one file there; it is then checksummed and renamed into
    /// place atomically. For artifacts written by other code (checkpoints).
    pub fn get_or_create_file<E: From<ReportError>>(
        &self,
        key: &CacheKey,
        ext: &str,
        create: impl FnOnce(&Path) -> std::result::Result<(), E>,
    ) -> std::result::Result<PathBuf, E> {
        let path = self.entry_path(key, ext)?;
        if let Some(p) = self.load_file(&path, key) {
            return Ok(p);
        }
        let dir = path
            .parent()
            .expect("entry paths have a namespace directory");
        std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
        let stem = key.digest()?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{stem}.tmp-{}-{n}.{ext}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if let Err(e) = create(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let finish = || -> Result<()> {
            if !tmp.is_file() {
                return Err(ReportError::CacheEntry {
                    path: tmp.clone(),
                    reason: "the creating closure returned Ok but did not write this file".into(),
                });
            }
            let (len, sha) = hash_file(&tmp).map_err(|e| ReportError::io(&tmp, e))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| ReportError::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| ReportError::io(&path, e))?;
            self.write_meta(key, &path, len, sha)
        };
        finish().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            E::from(e)
        })?;
        Ok(path)
    }
}

impl Cache {
    /// The cached attribution scores for `key`, or the result of `compute`
    /// (stored as a checksummed `.npy` first), so a killed run that resumes
    /// recomputes no finished score matrix. Put everything that produced the
    /// scores in `key`: method and parameters, model and data fingerprints.
    pub fn get_or_compute_scores<E: From<ReportError>>(
        &self,
        key: &CacheKey,
        compute: impl FnOnce() -> std::result::Result<ScoreMatrix, E>,
    ) -> std::result::Result<ScoreMatrix, E> {
        let mut fresh = None;
        let path = self.get_or_create_file(key, "npy", |tmp| -> std::result::Result<(), E> {
            let scores = compute()?;
            scores.save_npy(tmp).map_err(ReportError::from)?;
            fresh = Some(scores);
            Ok(())
        })?;
        match fresh {
            Some(scores) => Ok(scores),
            None => ScoreMatrix::load_npy(&path).map_err(|e| {
                // Checksummed but not a score matrix (another writer's
                // entry): remove it so the next call recomputes.
                self.reject(&path, format!("not a score matrix: {e}"));
                E::from(ReportError::from(e))
            }),
        }
    }
}

/// Length and SHA-256 of a file, streamed (checkpoints can be large).
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hex(&h.finalize())))
}
