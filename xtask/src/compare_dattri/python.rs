//! The Python side of `cargo xtask compare-dattri`: the venv in
//! `target/dattri-venv` and one dattri run per process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use wellspring_report::workspace_root;

use super::load_avg;

/// dattri's side of a pair.
pub(super) struct DattriRun {
    /// The spec the run was given.
    pub(super) spec: Value,
    /// Its meta JSON (seconds, memory, versions), or why it has none.
    pub(super) outcome: Result<Value, String>,
    /// 1-minute load average at the start.
    pub(super) load: f64,
    /// Where its score matrix is.
    pub(super) scores: PathBuf,
}

/// Runs one dattri attribution in a fresh Python process, capped at `timeout`.
pub(super) fn run_dattri(
    python: &Path,
    dir: &Path,
    tag: &str,
    spec: Value,
    threads: usize,
    timeout: u64,
    resume: bool,
) -> Result<DattriRun> {
    let spec_path = dir.join(format!("{tag}-dattri-spec.json"));
    let meta_path = dir.join(format!("{tag}-dattri.json"));
    let scores = dir.join(format!("{tag}-dattri.npy"));
    let status_path = dir.join(format!("{tag}-dattri-status.json"));
    if resume && let Ok(text) = std::fs::read_to_string(&status_path) {
        let v: Value = serde_json::from_str(&text)?;
        let outcome = match v["error"].as_str() {
            Some(e) => Err(e.to_string()),
            None => Ok(serde_json::from_str(&std::fs::read_to_string(&meta_path)?)?),
        };
        let load = v["load"].as_f64().unwrap_or(f64::NAN);
        return Ok(DattriRun {
            spec,
            outcome,
            load,
            scores,
        });
    }
    let _ = std::fs::remove_file(&meta_path);
    std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)?)?;
    let log = std::fs::File::create(dir.join(format!("{tag}-dattri.log")))?;
    let script = workspace_root().join("xtask/dattri/run_dattri.py");
    let n = threads.to_string();
    let load = load_avg();
    let mut child = Command::new(python)
        .arg(&script)
        .arg("run")
        .arg(&spec_path)
        .env("OMP_NUM_THREADS", &n)
        .env("MKL_NUM_THREADS", &n)
        .env("TQDM_DISABLE", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", script.display()))?;
    let clock = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if clock.elapsed() > Duration::from_secs(timeout) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let outcome = match status {
        None => Err(format!("capped: still running after {timeout} s, killed")),
        Some(s) if !s.success() => {
            let text =
                std::fs::read_to_string(dir.join(format!("{tag}-dattri.log"))).unwrap_or_default();
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!("failed ({s}): {last}"))
        }
        Some(_) => Ok(serde_json::from_str(
            &std::fs::read_to_string(&meta_path)
                .with_context(|| format!("reading {}", meta_path.display()))?,
        )?),
    };
    let status = json!({"error": outcome.as_ref().err(), "load": load});
    std::fs::write(&status_path, status.to_string())?;
    Ok(DattriRun {
        spec,
        outcome,
        load,
        scores,
    })
}

/// `$CARGO_TARGET_DIR`, else `<root>/target`.
pub(super) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(t) => std::path::absolute(PathBuf::from(&t)).unwrap_or_else(|_| t.into()),
        None => root.join("target"),
    }
}

/// Creates `target/dattri-venv` and installs `xtask/dattri/requirements.txt`
/// unless dattri and torch already import there; returns its python.
pub(super) fn ensure_venv(root: &Path, python: &str) -> Result<PathBuf> {
    let venv = target_dir(root).join("dattri-venv");
    let py = venv.join("bin").join("python");
    if !py.exists() {
        eprintln!("creating {}", venv.display());
        let s = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python} -m venv"))?;
        if !s.success() {
            bail!("{python} -m venv {} failed ({s})", venv.display());
        }
    }
    if probe(&py).is_ok() {
        return Ok(py);
    }
    let req = root.join("xtask/dattri/requirements.txt");
    eprintln!("installing {} (torch pulls ~5 GB of wheels)", req.display());
    let s = Command::new(&py)
        .args(["-m", "pip", "install", "-r"])
        .arg(&req)
        .status()
        .context("running pip")?;
    if !s.success() {
        bail!(
            "`{} -m pip install -r {}` failed ({s}); the package registry must be reachable once",
            py.display(),
            req.display()
        );
    }
    probe(&py)?;
    Ok(py)
}

/// Versions of python, torch and dattri in the venv (fails if they do not import).
pub(super) fn probe(py: &Path) -> Result<Value> {
    let script = workspace_root().join("xtask/dattri/run_dattri.py");
    let out = Command::new(py)
        .arg(&script)
        .arg("probe")
        .output()
        .with_context(|| format!("running {}", py.display()))?;
    if !out.status.success() {
        bail!(
            "dattri/torch do not import in {}: {}",
            py.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
