//! Shared pieces of the commands: loading data subsets, building model
//! configs by name, the JSON summary written next to a checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use wellspring_core::{Dataset, Targets};
use wellspring_data::{DatasetName, LoadOptions, load};
use wellspring_models::burn_types::Device;
use wellspring_models::{Arch, Checkpoint, EpochStats, Model, ModelConfig};

use crate::DataArgs;

/// The compute device of every command (burn's CPU backend).
pub fn device() -> Device {
    Device::flex()
}

/// A train and a test set, both cut to their requested sizes.
pub struct Data {
    pub name: DatasetName,
    pub train: Dataset,
    pub test: Dataset,
}

/// The first `n` rows of `ds`, with a clear error when `n` is 0 or too large.
pub fn first(ds: &Dataset, n: Option<usize>, flag: &str) -> Result<Dataset> {
    let Some(n) = n else { return Ok(ds.clone()) };
    if n == 0 {
        bail!("{flag} 0: need at least one point");
    }
    if n > ds.len() {
        bail!(
            "{flag} {n} exceeds the {} points of {}",
            ds.len(),
            ds.name()
        );
    }
    let idx: Vec<usize> = (0..n).collect();
    Ok(ds.select(&idx)?.renamed(format!("{}[:{n}]", ds.name())))
}

/// Loads `args.data` and cuts it to `--n-train` (or `n_train_default`) and `--n-test`.
pub fn load_data(args: &DataArgs, n_train_default: Option<usize>) -> Result<Data> {
    let name: DatasetName = args
        .data
        .parse()
        .with_context(|| format!("--data {}", args.data))?;
    let mut opts = LoadOptions::new().seed(args.split_seed);
    if let Some(dir) = &args.data_dir {
        opts = opts.data_dir(dir);
    }
    let split = load(name, &opts).with_context(|| format!("loading {name}"))?;
    let train = first(&split.train, args.n_train.or(n_train_default), "--n-train")?;
    let test = first(&split.test, args.n_test, "--n-test")?;
    Ok(Data { name, train, test })
}

/// The architecture `name` (`--model`, see [`Arch::NAMES`]) sized for
/// `data` (input width or image shape, vocabulary, outputs).
pub fn model_config(name: &str, data: &Dataset) -> Result<ModelConfig> {
    let arch: Arch = name
        .parse()
        .map_err(|_| anyhow!("unknown --model {name}; available: {}", Arch::NAMES))?;
    arch.config_for(data)
        .with_context(|| format!("--model {name}"))
}

/// Whether the dataset's targets are class labels.
pub fn is_classification(data: &Dataset) -> bool {
    matches!(data.targets(), Targets::Classes { .. })
}

/// One saved training checkpoint, as listed in the summary (TracInCP needs them).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointEntry {
    /// File, relative to the summary's directory or absolute.
    pub path: PathBuf,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Learning rate of the last step before it.
    pub lr: f64,
}

/// What `wellspring train` records next to the checkpoint (`<checkpoint>.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    pub config: ModelConfig,
    pub data: String,
    pub n_train: usize,
    pub split_seed: u64,
    pub train: wellspring_models::TrainConfig,
    pub history: Vec<EpochStats>,
    pub test_accuracy: Option<f64>,
    pub test_loss: f64,
    pub checkpoints: Vec<CheckpointEntry>,
    pub wall_time_s: f64,
}

/// `<checkpoint>.json`.
pub fn summary_path(ckpt: &Path) -> PathBuf {
    let mut s = ckpt.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// The summary next to `ckpt`, if one exists (an unreadable one is an error).
pub fn read_summary(ckpt: &Path) -> Result<Option<Summary>> {
    let p = summary_path(ckpt);
    if !p.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let s = serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
    Ok(Some(s))
}

/// Loads a checkpoint with a clear error if it is missing.
pub fn load_model(ckpt: &Path, device: &Device) -> Result<Model> {
    if !ckpt.exists() {
        bail!(
            "checkpoint {} does not exist (train one with `wellspring train ... --out {}`)",
            ckpt.display(),
            ckpt.display()
        );
    }
    Ok(Model::load(ckpt, device)?)
}

/// The training checkpoints listed in a summary, loaded (oldest first).
pub fn load_checkpoints(
    ckpt: &Path,
    summary: Option<&Summary>,
    device: &Device,
) -> Result<Vec<Checkpoint>> {
    let Some(s) = summary else {
        return Ok(Vec::new());
    };
    let base = ckpt.parent().unwrap_or(Path::new("."));
    s.checkpoints
        .iter()
        .map(|e| {
            let p = if e.path.is_absolute() {
                e.path.clone()
            } else {
                base.join(&e.path)
            };
            Ok(Checkpoint {
                epoch: e.epoch,
                step: e.step,
                lr: e.lr,
                model: Model::load(&p, device)
                    .with_context(|| format!("training checkpoint {}", p.display()))?,
            })
        })
        .collect()
}

/// Writes `text` to `path` atomically, creating parent directories.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    wellspring_core::npy::atomic_write(path, text.as_bytes())?;
    Ok(())
}

/// Errors if the summary says the checkpoint was trained on another dataset.
pub fn check_summary_data(ckpt: &Path, summary: Option<&Summary>, args: &DataArgs) -> Result<()> {
    let name: DatasetName = args
        .data
        .parse()
        .with_context(|| format!("--data {}", args.data))?;
    if let Some(s) = summary
        && s.data != name.as_str()
    {
        bail!(
            "checkpoint {} was trained on {}, not {}",
            ckpt.display(),
            s.data,
            name.as_str()
        );
    }
    Ok(())
}

/// Checks, before any expensive work, that `dir` can hold output files:
/// creates it if needed and writes (then removes) a probe file. `flag` names
/// the option in the error.
pub fn check_out_dir(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{flag} {}: exists and is not a directory", dir.display());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{flag} {}: cannot create the directory", dir.display()))?;
    let probe = dir.join(format!(".wellspring-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .with_context(|| format!("{flag} {}: the directory is not writable", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Checks, before any expensive work, that the file `path` can be written:
/// not a directory, and its parent directory can hold files.
pub fn check_out_file(path: &Path, flag: &str) -> Result<()> {
    if path.is_dir() {
        bail!(
            "{flag} {}: is a directory, expected a file path",
            path.display()
        );
    }
    if path.file_name().is_none() {
        bail!("{flag} {}: has no file name", path.display());
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_out_dir(dir, flag)
}
