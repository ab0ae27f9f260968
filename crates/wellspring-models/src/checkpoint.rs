//! Self-describing checkpoints in burn's own Burnpack format.
//!
//! A checkpoint is one Burnpack file (`burn::store::burn_pack`, the format
//! burn 0.22's `ModuleRecord` and `BurnpackStore` use): every parameter and
//! BatchNorm buffer under its PyTorch-style path (`body.0.weight`,
//! `body.7.inner.1.running_mean`, `head.bias`), plus metadata entries
//! `wellspring.format` = `"wellspring-model"`, `wellspring.format_version`,
//! `wellspring.config` (the [`ModelConfig`] as JSON) and `wellspring.checksum`
//! (FNV-1a 64 over names and bytes, which catches corrupted tensor data).
//! Writes go to a temporary sibling that is renamed into place. No random
//! parameter ids are stored, so the same weights always give the same bytes.

use std::path::Path;

use burn::store::burn_pack::{Reader, Tensor as PackTensor, Writer};
use burn::store::{ApplyResult, ModuleSnapshot};
use burn::tensor::Device;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::Model;

const FORMAT: &str = "wellspring-model";
/// Current checkpoint format version.
pub const FORMAT_VERSION: u32 = 1;
const KEY_FORMAT: &str = "wellspring.format";
const KEY_VERSION: &str = "wellspring.format_version";
const KEY_CONFIG: &str = "wellspring.config";
const KEY_CHECKSUM: &str = "wellspring.checksum";

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

fn checksum(tensors: &[PackTensor]) -> std::result::Result<String, String> {
    let mut sorted: Vec<&PackTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in sorted {
        fnv1a(&mut h, t.name.as_bytes());
        let bytes = t
            .to_bytes()
            .map_err(|e| format!("cannot read tensor {}: {e}", t.name))?;
        fnv1a(&mut h, &bytes);
    }
    Ok(format!("{h:016x}"))
}

/// Turns an [`ApplyResult`] into an error naming missing, unexpected and
/// mismatched tensors; `ignore_unused` lists name suffixes that may be left over.
pub(crate) fn check_apply(
    path: &Path,
    r: &ApplyResult,
    what: &str,
    ignore_unused: &[&str],
) -> Result<()> {
    let unused: Vec<&String> = r
        .unused
        .iter()
        .filter(|u| !ignore_unused.iter().any(|s| u.ends_with(s)))
        .collect();
    if r.errors.is_empty() && r.missing.is_empty() && unused.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !r.errors.is_empty() {
        let e: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
        parts.push(format!("mismatched tensors: {}", e.join("; ")));
    }
    if !r.missing.is_empty() {
        let m: Vec<&str> = r.missing.iter().map(|(p, _)| p.as_str()).collect();
        parts.push(format!("missing tensors: {}", m.join(", ")));
    }
    if !unused.is_empty() {
        let u: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        parts.push(format!("unexpected tensors: {}", u.join(", ")));
    }
    Err(ModelError::file(
        path,
        format!(
            "does not match the {what} architecture: {}",
            parts.join("; ")
        ),
    ))
}

impl Model {
    /// Saves weights, BatchNorm buffers and the config to `path` (Burnpack,
    /// written atomically; the path is used exactly as given).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.check_finite().map_err(|e| {
            ModelError::file(path, format!("refusing to save a non-finite model: {e}"))
        })?;
        let net = self.valid().net;
        let mut tensors = net.collect(None, None, true);
        // burn draws parameter ids at random; stored, they would make two
        // saves of the same weights differ. Loading keeps the target model's
        // ids when none is stored, so the file is a pure function of the weights.
        for t in &mut tensors {
            t.param_id = None;
        }
        let sum = checksum(&tensors).map_err(|e| ModelError::file(path, e))?;
        let config = serde_json::to_string(&self.config)
            .map_err(|e| ModelError::file(path, format!("cannot encode the config: {e}")))?;
        Writer::new(tensors)
            .with_metadata(KEY_FORMAT, FORMAT)
            .with_metadata(KEY_VERSION, &FORMAT_VERSION.to_string())
            .with_metadata(KEY_CONFIG, &config)
            .with_metadata(KEY_CHECKSUM, &sum)
            .auto_extension(false)
            .write_to_file(path)
            .map_err(|e| ModelError::file(path, format!("cannot write checkpoint: {e}")))
    }

    /// Loads a checkpoint written by [`Model::save`] onto `device`. Missing,
    /// truncated, corrupted or foreign files, newer format versions, and files
    /// whose tensors do not match their config are errors naming the problem.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Model> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(ModelError::file(path, "no such checkpoint file"));
        }
        // Read the whole file now: burn's file-backed reader keeps tensors as
        // lazy windows into the path, so a checkpoint replaced or removed
        // after loading (a cache entry rewritten, a finished resume state
        // deleted) would change or break the loaded model.
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::file(path, format!("cannot read checkpoint: {e}")))?;
        let reader = Reader::from_bytes(burn::store::burn_pack::Bytes::from_bytes_vec(bytes))
            .map_err(|e| {
                ModelError::file(path, format!("not a readable Burnpack checkpoint: {e}"))
            })?;
        let meta = reader.metadata();
        if meta.get(KEY_FORMAT).map(String::as_str) != Some(FORMAT) {
            return Err(ModelError::file(
                path,
                "a Burnpack file, but not a wellspring model checkpoint (no wellspring.format)",
            ));
        }
        let version: u32 = meta
            .get(KEY_VERSION)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ModelError::file(path, "checkpoint has no valid format version"))?;
        if version > FORMAT_VERSION {
            return Err(ModelError::file(
                path,
                format!(
                    "checkpoint format version {version} is newer than this library's {FORMAT_VERSION}"
                ),
            ));
        }
        let config: ModelConfig = meta
            .get(KEY_CONFIG)
            .ok_or_else(|| ModelError::file(path, "checkpoint has no model config"))
            .and_then(|c| {
                serde_json::from_str(c)
                    .map_err(|e| ModelError::file(path, format!("invalid model config: {e}")))
            })?;
        let expected = meta.get(KEY_CHECKSUM).cloned();
        let tensors = reader
            .into_tensors()
            .map_err(|e| ModelError::file(path, format!("cannot read tensors: {e}")))?;
        let got = checksum(&tensors).map_err(|e| ModelError::file(path, e))?;
        if expected.as_deref() != Some(got.as_str()) {
            return Err(ModelError::file(
                path,
                format!(
                    "checksum mismatch (stored {}, computed {got}): the file is corrupted",
                    expected.as_deref().unwrap_or("none")
                ),
            ));
        }
        let mut model = Model::new(config, 0, device)?;
        let result = model.net.apply(tensors, None, None, true);
        check_apply(path, &result, model.config.name(), &[])?;
        Ok(model)
    }
}
