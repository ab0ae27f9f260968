//! # wellspring-report
//!
//! What a reproduce target produces and how it avoids redoing work:
//!
//! - [`Report`]: title, description, settings, [`Table`]s (with the paper's
//!   numbers beside ours), plots, notes and an automatically collected
//!   [`Environment`]; written as `<target>.md`, `<target>.json` and SVGs, atomically;
//! - [`plot`]: line, grouped bar, histogram, CDF and scatter charts (plotters, SVG);
//! - [`Cache`] / [`CacheKey`]: a content-addressed, checksummed cache for trained
//!   models and gradients, keyed by everything that produced them;
//! - [`progress`]: indicatif bars and spinners, hidden when quiet or not a terminal;
//! - [`mod@bench`]: criterion results collected into a report;
//! - [`ReportError`]: the error type, naming the file, plot or key involved.

#![warn(missing_docs)]

pub mod bench;
pub mod cache;
pub mod env;
pub mod error;
pub mod plot;
pub mod progress;
pub mod report;
pub mod table;

pub use cache::{
    CACHE_ENV, CACHE_FORMAT_VERSION, Cache, CacheKey, CacheWarning, WarnHook, default_cache_dir,
};
pub use env::{Environment, format_utc, workspace_root};
pub use error::{ReportError, Result};
pub use plot::{
    BarChart, CdfChart, Histogram, LegendPosition, LineChart, Plot, PlotRecord, ScatterChart,
    SeriesRecord,
};
pub use progress::{Progress, ProgressBar};
pub use report::{REPORT_SCHEMA, Report, ReportRecord, Timing, WrittenReport, format_duration};
pub use table::{Cell, CellValue, Table};
