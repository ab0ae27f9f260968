//! The [`Report`] builder and its on-disk form: `<target>.md`, `<target>.json`
//! and one SVG per plot, all written atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wellspring_core::npy::atomic_write;

use crate::env::Environment;
use crate::error::{ReportError, Result, check_name};
use crate::plot::{Plot, PlotRecord};
use crate::table::Table;

/// Identifies the JSON layout, so readers can tell versions apart.
pub const REPORT_SCHEMA: &str = "wellspring-report/1";

/// The result of one reproduce target: text, settings, tables, plots and notes.
///
/// ```
/// use wellspring_report::{Cell, LineChart, Report, Table};
/// let report = Report::new("demo", "A demo table")
///     .paragraph("What this reproduces.")
///     .setting("seed", 0)
///     .table(Table::new(["method", "acc"]).row([Cell::text("ours"), Cell::num(0.91, 3)]))
///     .plot("acc", LineChart::new("Accuracy").series("ours", [(1.0, 0.5), (2.0, 0.9)]))
///     .note("CPU stand-in: MNIST CNN instead of CIFAR-10 ResNet-9");
/// let dir = tempfile::tempdir().unwrap();
/// let written = report.write(dir.path()).unwrap();
/// assert!(written.markdown.ends_with("demo.md") && written.plots[0].ends_with("demo.svg"));
/// ```
#[derive(Debug, Clone)]
pub struct Report {
    target: String,
    title: String,
    paragraphs: Vec<String>,
    settings: BTreeMap<String, Value>,
    tables: Vec<Table>,
    notes: Vec<String>,
    plots: Vec<(String, Plot)>,
    timings: Vec<Timing>,
    started: SystemTime,
    started_at: Instant,
    wall_time: Option<Duration>,
}

/// The wall time of one named step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Step name, e.g. "train 10 models".
    pub step: String,
    /// Seconds it took.
    pub seconds: f64,
    /// Whether the step's result came from the cache.
    #[serde(default)]
    pub cached: bool,
}

/// Paths written by [`Report::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenReport {
    /// `<dir>/<target>.md`.
    pub markdown: PathBuf,
    /// `<dir>/<target>.json`.
    pub json: PathBuf,
    /// One SVG per plot, in the order added: `<target>.svg`, then `<target>-<name>.svg`.
    pub plots: Vec<PathBuf>,
}

impl Report {
    /// A report for reproduce target `target` (used for file names) with a title.
    /// The wall-time clock starts now unless set with [`Report::wall_time`].
    pub fn new(target: impl Into<String>, title: impl Into<String>) -> Self {
        Report {
            target: target.into(),
            title: title.into(),
            paragraphs: Vec::new(),
            settings: BTreeMap::new(),
            tables: Vec::new(),
            notes: Vec::new(),
            plots: Vec::new(),
            timings: Vec::new(),
            started: SystemTime::now(),
            started_at: Instant::now(),
            wall_time: None,
        }
    }

    /// The target name.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Appends a description paragraph (markdown).
    pub fn paragraph(mut self, text: impl Into<String>) -> Self {
        self.paragraphs.push(text.into());
        self
    }

    /// Records a setting (hyper-parameter, seed, dataset size); replaces an
    /// earlier value of the same key.
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// Records every field of a serialisable struct (e.g. a `Params` builder)
    /// as settings named `<prefix>.<field>`; a non-struct value is stored
    /// under `prefix` itself.
    pub fn settings_from<T: Serialize + ?Sized>(mut self, prefix: &str, value: &T) -> Result<Self> {
        let v = serde_json::to_value(value).map_err(|e| ReportError::Encode {
            what: format!("setting {prefix:?}"),
            reason: e.to_string(),
        })?;
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    self.settings.insert(format!("{prefix}.{k}"), v);
                }
            }
            other => {
                self.settings.insert(prefix.to_string(), other);
            }
        }
        Ok(self)
    }

    /// Appends a table.
    pub fn table(mut self, table: Table) -> Self {
        self.tables.push(table);
        self
    }

    /// Appends a note (deviations from the paper, stand-ins, caveats).
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(text.into());
        self
    }

    /// Appends a plot. The first plot is the headline figure, written to
    /// `<target>.svg`; later ones go to `<target>-<name>.svg`. Names must be
    /// unique and file-name safe (checked by [`Report::write`]).
    pub fn plot(mut self, name: impl Into<String>, plot: impl Into<Plot>) -> Self {
        self.plots.push((name.into(), plot.into()));
        self
    }

    /// Records how long a step took and whether it was served from the cache.
    pub fn timing(mut self, step: impl Into<String>, took: Duration, cached: bool) -> Self {
        self.timings.push(Timing {
            step: step.into(),
            seconds: took.as_secs_f64(),
            cached,
        });
        self
    }

    /// Sets the total wall time (default: time since [`Report::new`] at write time).
    pub fn wall_time(mut self, took: Duration) -> Self {
        self.wall_time = Some(took);
        self
    }

    /// Overrides when the run started (for the environment's date), e.g. when
    /// the report is built at the end of a run timed by the caller.
    pub fn started(mut self, at: SystemTime) -> Self {
        self.started = at;
        self
    }

    fn plot_files(&self) -> Result<Vec<String>> {
        check_name("target", &self.target)?;
        let mut seen = std::collections::BTreeSet::new();
        self.plots
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                check_name("plot", name)?;
                if !seen.insert(name.as_str()) {
                    return Err(ReportError::InvalidName {
                        what: "plot",
                        name: name.clone(),
                        reason: format!("used twice in report {:?}", self.target),
                    });
                }
                Ok(if i == 0 {
                    format!("{}.svg", self.target)
                } else {
                    format!("{}-{name}.svg", self.target)
                })
            })
            .collect()
    }

    /// The machine-readable form, with the environment collected now.
    pub fn to_record(&self) -> Result<ReportRecord> {
        let files = self.plot_files()?;
        let wall = self.wall_time.unwrap_or_else(|| self.started_at.elapsed());
        Ok(ReportRecord {
            schema: REPORT_SCHEMA.to_string(),
            target: self.target.clone(),
            title: self.title.clone(),
            paragraphs: self.paragraphs.clone(),
            settings: self.settings.clone(),
            tables: self.tables.clone(),
            notes: self.notes.clone(),
            plots: self
                .plots
                .iter()
                .zip(&files)
                .map(|((name, plot), file)| plot.record(name, file))
                .collect(),
            timings: self.timings.clone(),
            environment: Environment::collect(self.started, wall),
        })
    }

    /// Writes `<target>.svg` (and `<target>-<name>.svg` per further plot),
    /// `<target>.json` and `<target>.md` into `dir` (created if missing), each
    /// atomically, markdown last.
    pub fn write(&self, dir: &Path) -> Result<WrittenReport> {
        let record = self.to_record()?;
        std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
        let mut plots = Vec::new();
        for ((name, plot), rec) in self.plots.iter().zip(&record.plots) {
            let path = dir.join(&rec.file);
            atomic_write(&path, plot.to_svg(name)?.as_bytes())?;
            plots.push(path);
        }
        let json = dir.join(format!("{}.json", self.target));
        let text = serde_json::to_string_pretty(&record).map_err(|source| ReportError::Json {
            path: json.clone(),
            source,
        })?;
        atomic_write(&json, format!("{text}\n").as_bytes())?;
        let markdown = dir.join(format!("{}.md", self.target));
        atomic_write(&markdown, record.to_markdown().as_bytes())?;
        Ok(WrittenReport {
            markdown,
            json,
            plots,
        })
    }
}

/// A report as stored in `<target>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// [`REPORT_SCHEMA`].
    pub schema: String,
    /// Target name.
    pub target: String,
    /// Title.
    pub title: String,
    /// Description paragraphs (markdown).
    pub paragraphs: Vec<String>,
    /// Settings: hyper-parameters, seeds, dataset sizes.
    pub settings: BTreeMap<String, Value>,
    /// Result tables.
    pub tables: Vec<Table>,
    /// Notes and caveats.
    pub notes: Vec<String>,
    /// Plots, with the data drawn.
    pub plots: Vec<PlotRecord>,
    /// Per-step wall times.
    pub timings: Vec<Timing>,
    /// Versions, machine, commit, date, total wall time.
    pub environment: Environment,
}

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return format!("{seconds} s");
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

impl ReportRecord {
    /// Reads a `<target>.json` written by [`Report::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
        serde_json::from_str(&text).map_err(|source| ReportError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The markdown form: title, description, settings, tables, plots (image
    /// links to the SVGs beside it), notes, timings, environment.
    pub fn to_markdown(&self) -> String {
        let env = &self.environment;
        let mut md = format!("# {}\n\n", self.title);
        md.push_str(&format!(
            "_Reproduce target `{}`: `cargo xtask reproduce {}`. Generated {} in {}._\n\n",
            self.target,
            self.target,
            env.date_utc,
            format_duration(env.wall_time_s)
        ));
        for p in &self.paragraphs {
            md.push_str(p.trim_end());
            md.push_str("\n\n");
        }
        if !self.settings.is_empty() {
            md.push_str("## Settings\n\n| setting | value |\n|---|---|\n");
            for (k, v) in &self.settings {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                md.push_str(&format!("| {} | {} |\n", esc(k), esc(&v)));
            }
            md.push('\n');
        }
        if !self.tables.is_empty() {
            md.push_str("## Results\n\n");
            for t in &self.tables {
                md.push_str(&t.to_markdown());
                md.push('\n');
            }
        }
        if !self.plots.is_empty() {
            md.push_str("## Plots\n\n");
            for p in &self.plots {
                let alt = if p.title.is_empty() {
                    &p.name
                } else {
                    &p.title
                };
                md.push_str(&format!(
                    "![{}]({})\n\n",
                    alt.replace(['[', ']'], ""),
                    p.file
                ));
            }
        }
        if !self.notes.is_empty() {
            md.push_str("## Notes\n\n");
            for n in &self.notes {
                md.push_str(&format!("- {}\n", n.trim_end()));
            }
            md.push('\n');
        }
        if !self.timings.is_empty() {
            md.push_str("## Timings\n\n| step | wall time | cached |\n|---|---:|---|\n");
            for t in &self.timings {
                md.push_str(&format!(
                    "| {} | {} | {} |\n",
                    esc(&t.step),
                    format_duration(t.seconds),
                    if t.cached { "yes" } else { "no" }
                ));
            }
            md.push('\n');
        }
        md.push_str("## Environment\n\n| | |\n|---|---|\n");
        let unknown = || "unknown".to_string();
        let commit = match (&env.git_commit, env.git_dirty) {
            (Some(c), Some(true)) => format!("{c} (with uncommitted changes)"),
            (Some(c), _) => c.clone(),
            (None, _) => unknown(),
        };
        let rows = [
            ("wellspring", env.wellspring_version.clone()),
            ("rustc", env.rustc_version.clone().unwrap_or_else(unknown)),
            ("target", env.target.clone().unwrap_or_else(unknown)),
            (
                "profile",
                format!(
                    "{}{}",
                    env.profile.clone().unwrap_or_else(unknown),
                    if env.debug_assertions {
                        ", debug assertions"
                    } else {
                        ""
                    }
                ),
            ),
            ("OS", env.os.clone()),
            (
                "CPU",
                format!(
                    "{} ({})",
                    env.cpu_model.clone().unwrap_or_else(unknown),
                    env.arch
                ),
            ),
            (
                "cores / rayon threads",
                format!("{} / {}", env.cpu_cores, env.rayon_threads),
            ),
            ("git commit", commit),
            ("date (UTC)", env.date_utc.clone()),
            ("wall time", format_duration(env.wall_time_s)),
            ("command", format!("`{}`", env.command.join(" "))),
        ];
        for (k, v) in rows {
            md.push_str(&format!("| {k} | {} |\n", esc(&v)));
        }
        md
    }
}
