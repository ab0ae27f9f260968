//! [`GradientStore`]: projected per-example gradients on disk as `.npy`
//! shards (`shard_00000.npy`, `rows × dim` f32) plus `manifest.json`, which
//! records what produced them (model hash, output function, layers,
//! projection kind/seed/dim, rows) and every *completed* shard with its
//! SHA-256. Shards and the manifest are written atomically, so an interrupted
//! build leaves a valid partial store that the next build resumes; a shard
//! whose checksum no longer matches is recomputed on resume and rejected on
//! read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wellspring_core::{Dataset, npy};
use wellspring_models::{AnyModel, Model};

use crate::engine::{GradEngine, Rows};
use crate::error::{GradError, Result};
use crate::layout::LayerSelection;
use crate::output::OutputSpec;
use crate::project::ProjectionSpec;

/// Manifest format name.
const FORMAT: &str = "wellspring-grad-store";
/// Manifest format version.
const VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";

/// One completed shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Shard number (rows `index·shard_rows ..`).
    pub index: usize,
    /// File name inside the store directory.
    pub file: String,
    /// Rows in the shard.
    pub rows: usize,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// What a store holds and how it was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `wellspring-grad-store`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// [`model_hash`] of the model differentiated.
    pub model_hash: String,
    /// Architecture name.
    pub model: String,
    /// Output function.
    pub output: OutputSpec,
    /// Layer selection as given.
    pub selection: LayerSelection,
    /// Selected layer paths.
    pub layers: Vec<String>,
    /// Projection.
    pub projection: ProjectionSpec,
    /// Values per row.
    pub dim: usize,
    /// Dataset name.
    pub dataset: String,
    /// Rows stored.
    pub n: usize,
    /// SHA-256 of the row indices (little-endian u64s).
    pub rows_sha256: String,
    /// Rows per shard (the last may be shorter).
    pub shard_rows: usize,
    /// Completed shards, by index.
    pub shards: Vec<ShardInfo>,
}

impl Manifest {
    /// Number of shards a complete store has.
    pub fn n_shards(&self) -> usize {
        self.n.div_ceil(self.shard_rows)
    }

    /// Whether every shard is present.
    pub fn is_complete(&self) -> bool {
        self.shards.len() == self.n_shards()
    }

    /// The first field in which `self` and `other` differ, ignoring shards.
    fn differs(&self, other: &Manifest) -> Option<&'static str> {
        let checks: [(&'static str, bool); 12] = [
            ("format", self.format == other.format),
            ("version", self.version == other.version),
            ("model_hash", self.model_hash == other.model_hash),
            ("model", self.model == other.model),
            ("output", self.output == other.output),
            ("selection", self.selection == other.selection),
            ("layers", self.layers == other.layers),
            ("projection", self.projection == other.projection),
            ("dim", self.dim == other.dim),
            (
                "dataset",
                self.dataset == other.dataset && self.n == other.n,
            ),
            ("rows", self.rows_sha256 == other.rows_sha256),
            ("shard_rows", self.shard_rows == other.shard_rows),
        ];
        checks.iter().find(|(_, same)| !same).map(|(f, _)| *f)
    }
}

/// SHA-256 (hex) of a model's architecture and parameters: identifies the
/// model a store was computed from. A zoo [`Model`] hashes its config; any
/// other model its name and tracked layers (paths, kinds, shapes).
pub fn model_hash(model: &AnyModel) -> String {
    let mut h = Sha256::new();
    match model.downcast_ref::<Model>() {
        Some(m) => h.update(serde_json::to_vec(&m.config).expect("model config serialises")),
        None => {
            h.update(model.model_name().as_bytes());
            h.update(
                serde_json::to_vec(&model.param_layers()).expect("layer descriptions serialise"),
            );
        }
    }
    for v in model.params_flat() {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Build settings of a store (checked builder).
#[derive(Clone, Debug)]
pub struct StoreParams {
    projection: ProjectionSpec,
    shard_rows: usize,
}

impl StoreParams {
    /// Shards of `shard_rows` rows of gradients projected with `projection`.
    pub fn new(projection: ProjectionSpec, shard_rows: usize) -> Self {
        StoreParams {
            projection,
            shard_rows,
        }
    }

    /// Computes (or resumes) the store in `dir` for `rows` of `data`.
    /// `on_shard(done, total)` runs after each shard is written; returning an
    /// error stops the build there, leaving a valid partial store.
    pub fn build<'r>(
        &self,
        dir: impl AsRef<Path>,
        engine: &GradEngine,
        data: &Dataset,
        rows: impl Into<Rows<'r>>,
        mut on_shard: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<GradientStore> {
        let dir = dir.as_ref().to_path_buf();
        if self.shard_rows == 0 {
            return Err(GradError::param(
                "StoreParams.shard_rows",
                0,
                "must be at least 1",
            ));
        }
        let idx = rows.into().resolve(data.len(), data.name())?;
        let proj = self.projection.build(engine.layout())?;
        let mut rows_hash = Sha256::new();
        for &i in &idx {
            rows_hash.update((i as u64).to_le_bytes());
        }
        let expected = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            model_hash: model_hash(engine.model()),
            model: engine.model().model_name(),
            output: engine.output_fn().spec(),
            selection: engine.selection().clone(),
            layers: engine.layout().paths(),
            projection: self.projection.clone(),
            dim: proj.output_dim(),
            dataset: data.name().into(),
            n: idx.len(),
            rows_sha256: hex(&rows_hash.finalize()),
            shard_rows: self.shard_rows,
            shards: Vec::new(),
        };
        let mut manifest = expected.clone();
        let path = dir.join(MANIFEST);
        if path.exists() {
            let old = read_manifest(&path)?;
            if let Some(field) = old.differs(&expected) {
                return Err(GradError::store(
                    &dir,
                    format!(
                        "it was built with a different {field}; delete it or use another directory"
                    ),
                ));
            }
            // Keep shards whose file still has the recorded checksum.
            manifest.shards = old
                .shards
                .into_iter()
                .filter(|s| std::fs::read(dir.join(&s.file)).is_ok_and(|b| sha256(&b) == s.sha256))
                .collect();
        } else {
            std::fs::create_dir_all(&dir).map_err(|e| GradError::store(&dir, e))?;
        }
        write_manifest(&path, &manifest)?;
        let total = manifest.n_shards();
        let k = proj.output_dim();
        for s in 0..total {
            if manifest.shards.iter().any(|x| x.index == s) {
                continue;
            }
            let rows = &idx[s * self.shard_rows..((s + 1) * self.shard_rows).min(idx.len())];
            let values = engine.projected_matrix(data, rows, proj.as_ref())?;
            let bytes = npy::encode(&[rows.len(), k], &values);
            let file = format!("shard_{s:05}.npy");
            npy::atomic_write(&dir.join(&file), &bytes)?;
            manifest.shards.push(ShardInfo {
                index: s,
                file,
                rows: rows.len(),
                sha256: sha256(&bytes),
            });
            manifest.shards.sort_by_key(|x| x.index);
            write_manifest(&path, &manifest)?;
            on_shard(manifest.shards.len(), total)?;
        }
        Ok(GradientStore { dir, manifest })
    }
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).map_err(|e| GradError::store(path, e))?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| GradError::store(path, format!("unreadable manifest: {e}")))?;
    if m.format != FORMAT {
        return Err(GradError::store(
            path,
            format!("not a gradient store manifest (format {:?})", m.format),
        ));
    }
    if m.shard_rows == 0 {
        return Err(GradError::store(path, "shard_rows is 0"));
    }
    check_blocks(path, &m)?;
    Ok(m)
}

/// Checks the manifest's sizes against each other with checked arithmetic:
/// `n × dim` values fit in memory's address space, and every listed shard
/// has an index below the shard count, appears once, and holds exactly the
/// rows its index implies (`shard_rows`, the last one the remainder).
fn check_blocks(path: &Path, m: &Manifest) -> Result<()> {
    if m.n
        .checked_mul(m.dim)
        .and_then(|v| v.checked_mul(4))
        .is_none()
    {
        return Err(GradError::store(
            path,
            format!(
                "n = {} rows of dim {} overflow the address space",
                m.n, m.dim
            ),
        ));
    }
    let total = m.n_shards();
    let mut seen = std::collections::BTreeSet::new();
    for sh in &m.shards {
        if sh.index >= total {
            return Err(GradError::store(
                path,
                format!(
                    "shard {} is listed, but {} rows in shards of {} make {total} shards",
                    sh.index, m.n, m.shard_rows
                ),
            ));
        }
        let want = m.shard_rows.min(m.n - sh.index * m.shard_rows);
        if sh.rows != want {
            return Err(GradError::store(
                path,
                format!("shard {} lists {} rows, expected {want}", sh.index, sh.rows),
            ));
        }
        if !seen.insert(sh.index) {
            return Err(GradError::store(
                path,
                format!("shard {} is listed twice", sh.index),
            ));
        }
    }
    Ok(())
}

fn write_manifest(path: &Path, m: &Manifest) -> Result<()> {
    let text = serde_json::to_vec_pretty(m).expect("manifest serialises");
    npy::atomic_write(path, &text)?;
    Ok(())
}

/// A gradient store on disk.
#[derive(Clone, Debug)]
pub struct GradientStore {
    dir: PathBuf,
    manifest: Manifest,
}

impl GradientStore {
    /// Opens the store in `dir` (complete or not).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = read_manifest(&dir.join(MANIFEST))?;
        Ok(GradientStore { dir, manifest })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Indices of listed shards whose file is missing or fails its checksum.
    pub fn verify(&self) -> Vec<usize> {
        self.manifest
            .shards
            .iter()
            .filter(|s| {
                !std::fs::read(self.dir.join(&s.file)).is_ok_and(|b| sha256(&b) == s.sha256)
            })
            .map(|s| s.index)
            .collect()
    }

    /// Shard `index` (`rows × dim`), checksum verified.
    pub fn read_shard(&self, index: usize) -> Result<Vec<f32>> {
        let s = self
            .manifest
            .shards
            .iter()
            .find(|s| s.index == index)
            .ok_or_else(|| {
                GradError::store(
                    &self.dir,
                    format!("shard {index} is not in the manifest (incomplete store?)"),
                )
            })?;
        let path = self.dir.join(&s.file);
        let bytes = std::fs::read(&path).map_err(|e| GradError::store(&path, e))?;
        if sha256(&bytes) != s.sha256 {
            return Err(GradError::store(
                &path,
                "checksum mismatch: the shard is corrupt; rebuild the store to recompute it",
            ));
        }
        let (shape, values) = npy::decode::<f32>(&path, &bytes)?;
        if shape != [s.rows, self.manifest.dim] {
            return Err(GradError::store(
                &path,
                format!(
                    "shape {shape:?}, manifest says [{}, {}]",
                    s.rows, self.manifest.dim
                ),
            ));
        }
        Ok(values)
    }

    /// Streams every shard in row order: `f(first_row, rows, values)`.
    /// Errors if the store is incomplete or a shard is corrupt.
    pub fn stream(&self, mut f: impl FnMut(usize, usize, &[f32]) -> Result<()>) -> Result<()> {
        if !self.manifest.is_complete() {
            return Err(GradError::store(
                &self.dir,
                format!(
                    "incomplete: {} of {} shards",
                    self.manifest.shards.len(),
                    self.manifest.n_shards()
                ),
            ));
        }
        for s in 0..self.manifest.n_shards() {
            let values = self.read_shard(s)?;
            f(
                s * self.manifest.shard_rows,
                values.len() / self.manifest.dim.max(1),
                &values,
            )?;
        }
        Ok(())
    }

    /// All rows as one row-major `n × dim` matrix.
    pub fn read_all(&self) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.manifest.n * self.manifest.dim);
        self.stream(|_, _, v| {
            out.extend_from_slice(v);
            Ok(())
        })?;
        Ok(out)
    }
}
