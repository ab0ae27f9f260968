//! The `Environment` block every report carries: versions, machine, commit,
//! date and wall time, collected automatically so a number can be traced back
//! to what produced it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Versions, machine and timing of one run, collected by [`Environment::collect`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Version of the wellspring crates (they share one workspace version).
    pub wellspring_version: String,
    /// `rustc --version` of the compiler that built this binary, if it could be run.
    pub rustc_version: Option<String>,
    /// Target triple this binary was built for.
    pub target: Option<String>,
    /// Cargo profile (`debug`/`release`) and optimisation level of this crate's build.
    pub profile: Option<String>,
    /// Whether debug assertions were compiled in.
    pub debug_assertions: bool,
    /// Operating system: `std::env::consts::OS`, plus the distribution name and
    /// kernel release where `/etc/os-release` and `/proc` tell them.
    pub os: String,
    /// CPU architecture (`std::env::consts::ARCH`).
    pub arch: String,
    /// CPU model from `/proc/cpuinfo`, where available.
    pub cpu_model: Option<String>,
    /// Logical cores available to this process.
    pub cpu_cores: usize,
    /// Threads in rayon's global pool (what data-parallel code actually uses).
    pub rayon_threads: usize,
    /// `git rev-parse HEAD` of the workspace, if it is a git checkout.
    pub git_commit: Option<String>,
    /// Whether tracked files had uncommitted changes (`git status`), if known.
    pub git_dirty: Option<bool>,
    /// Start of the run, UTC, ISO 8601 (`2026-01-31T12:00:00Z`).
    pub date_utc: String,
    /// Total wall time of the run in seconds.
    pub wall_time_s: f64,
    /// The command line that produced the report.
    pub command: Vec<String>,
}

impl Environment {
    /// Collects the environment of this process for a run that started at
    /// `started` and took `wall_time`. Never fails: what cannot be found is `None`.
    pub fn collect(started: SystemTime, wall_time: Duration) -> Self {
        let root = workspace_root();
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let profile = match (
            nonempty(env!("WELLSPRING_PROFILE")),
            nonempty(env!("WELLSPRING_OPT_LEVEL")),
        ) {
            (Some(p), Some(o)) => Some(format!("{p} (opt-level {o})")),
            (p, _) => p,
        };
        Environment {
            wellspring_version: env!("CARGO_PKG_VERSION").to_string(),
            rustc_version: nonempty(env!("WELLSPRING_RUSTC_VERSION")),
            target: nonempty(env!("WELLSPRING_TARGET")),
            profile,
            debug_assertions: cfg!(debug_assertions),
            os: os_description(),
            arch: std::env::consts::ARCH.to_string(),
            cpu_model: cpu_model(),
            cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rayon_threads: rayon::current_num_threads(),
            git_commit: git(&root, &["rev-parse", "HEAD"]),
            git_dirty: git(&root, &["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty()),
            date_utc: format_utc(started),
            wall_time_s: wall_time.as_secs_f64(),
            command: std::env::args().collect(),
        }
    }
}

/// The workspace root this crate was compiled in (`crates/wellspring-report/../..`),
/// resolved at compile time; falls back to the current directory when that
/// checkout no longer exists (an installed binary).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    match root.canonicalize() {
        Ok(p) => p,
        Err(_) => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}

/// Formats a time as ISO 8601 UTC with second precision, e.g. `2026-01-31T12:00:00Z`.
pub fn format_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`), so no date crate is needed.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn os_description() -> String {
    let mut s = std::env::consts::OS.to_string();
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    if let Some(p) = pretty {
        s.push_str(&format!(" ({p})"));
    }
    if let Ok(k) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        s.push_str(&format!(", kernel {}", k.trim()));
    }
    s
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        matches!(k.trim(), "model name" | "Model" | "cpu model")
            .then(|| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_known_values() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723);
        assert_eq!(format_utc(t), "2000-02-29T01:02:03Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_599);
        assert_eq!(format_utc(t), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn collect_fills_the_always_known_fields() {
        let e = Environment::collect(SystemTime::now(), Duration::from_millis(1500));
        assert_eq!(e.wellspring_version, env!("CARGO_PKG_VERSION"));
        assert!(e.cpu_cores >= 1 && e.rayon_threads >= 1);
        assert!(
            e.rustc_version
                .as_deref()
                .unwrap_or("")
                .starts_with("rustc")
        );
        assert_eq!(e.wall_time_s, 1.5);
        assert!(e.date_utc.ends_with('Z') && e.date_utc.len() == 20);
    }
}
