//! Plots rendered to SVG with plotters: multi-series line charts (optional
//! log axes and markers), grouped bar charts, histograms (optional log-y),
//! CDF curves and scatter plots (optional `y = x` line).
//!
//! Builders never panic on odd data: non-finite points (and, on a log axis,
//! points outside `[1e-100, 1e100]`) are dropped, empty plots get a "no data" note, and constant
//! data gets a padded range. What is drawn is also what the report's JSON
//! records ([`PlotRecord`]).

mod render;

use serde::{Deserialize, Serialize};

use crate::error::Result;
pub use render::fmt_tick;

/// Where the legend goes, or `Hidden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LegendPosition {
    /// Top left inside the plot area.
    UpperLeft,
    /// Top right inside the plot area.
    UpperRight,
    /// Bottom left inside the plot area.
    LowerLeft,
    /// Bottom right inside the plot area.
    LowerRight,
    /// No legend.
    Hidden,
}

/// Labels and size shared by every chart.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    title: String,
    x_label: String,
    y_label: String,
    size: (u32, u32),
    legend: LegendPosition,
}

impl Frame {
    fn new(title: impl Into<String>, legend: LegendPosition) -> Self {
        Frame {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            size: (800, 500),
            legend,
        }
    }
}

macro_rules! frame_setters {
    () => {
        /// Sets the x-axis label.
        pub fn x_label(mut self, label: impl Into<String>) -> Self {
            self.frame.x_label = label.into();
            self
        }
        /// Sets the y-axis label.
        pub fn y_label(mut self, label: impl Into<String>) -> Self {
            self.frame.y_label = label.into();
            self
        }
        /// Sets the SVG size in pixels (default 800 × 500).
        pub fn size(mut self, width: u32, height: u32) -> Self {
            self.frame.size = (width.max(200), height.max(150));
            self
        }
        /// Sets where the legend goes.
        pub fn legend(mut self, position: LegendPosition) -> Self {
            self.frame.legend = position;
            self
        }
    };
}

/// A named series of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// Multi-series line chart, e.g. a metric against subset size.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    frame: Frame,
    series: Vec<Series>,
    log_x: bool,
    log_y: bool,
    markers: bool,
}

impl LineChart {
    /// An empty line chart with a title.
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            frame: Frame::new(title, LegendPosition::UpperRight),
            series: Vec::new(),
            log_x: false,
            log_y: false,
            markers: false,
        }
    }
    frame_setters!();
    /// Adds a series; points are drawn in the given order.
    pub fn series(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.series.push(Series {
            name: name.into(),
            points: points.into_iter().collect(),
        });
        self
    }
    /// Logarithmic x axis (points with `x` outside `[1e-100, 1e100]` are dropped).
    pub fn log_x(mut self, on: bool) -> Self {
        self.log_x = on;
        self
    }
    /// Logarithmic y axis (points with `y` outside `[1e-100, 1e100]` are dropped).
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
    /// Draws a marker at every point as well as the line.
    pub fn markers(mut self, on: bool) -> Self {
        self.markers = on;
        self
    }
}

/// Scatter plot, optionally with the `y = x` line (e.g. predicted vs. actual).
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterChart {
    frame: Frame,
    series: Vec<Series>,
    diagonal: bool,
}

impl ScatterChart {
    /// An empty scatter plot with a title.
    pub fn new(title: impl Into<String>) -> Self {
        ScatterChart {
            frame: Frame::new(title, LegendPosition::UpperLeft),
            series: Vec::new(),
            diagonal: false,
        }
    }
    frame_setters!();
    /// Adds a series of points.
    pub fn series(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.series.push(Series {
            name: name.into(),
            points: points.into_iter().collect(),
        });
        self
    }
    /// Draws the `y = x` reference line across the plot.
    pub fn diagonal(mut self, on: bool) -> Self {
        self.diagonal = on;
        self
    }
}

/// Empirical CDF curves of one or more samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CdfChart {
    frame: Frame,
    samples: Vec<(String, Vec<f64>)>,
    log_x: bool,
}

impl CdfChart {
    /// An empty CDF chart with a title; the y label defaults to "fraction ≤ x".
    pub fn new(title: impl Into<String>) -> Self {
        let mut frame = Frame::new(title, LegendPosition::LowerRight);
        frame.y_label = "fraction ≤ x".into();
        CdfChart {
            frame,
            samples: Vec::new(),
            log_x: false,
        }
    }
    frame_setters!();
    /// Adds a sample whose empirical CDF is drawn.
    pub fn series(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = f64>,
    ) -> Self {
        self.samples
            .push((name.into(), values.into_iter().collect()));
        self
    }
    /// Logarithmic x axis (values outside `[1e-100, 1e100]` are dropped).
    pub fn log_x(mut self, on: bool) -> Self {
        self.log_x = on;
        self
    }
}

/// Histogram of one or more samples over shared bins (overlaid, translucent).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    frame: Frame,
    samples: Vec<(String, Vec<f64>)>,
    bins: Option<usize>,
    log_y: bool,
}

impl Histogram {
    /// An empty histogram with a title; the y label defaults to "count".
    pub fn new(title: impl Into<String>) -> Self {
        let mut frame = Frame::new(title, LegendPosition::UpperRight);
        frame.y_label = "count".into();
        Histogram {
            frame,
            samples: Vec::new(),
            bins: None,
            log_y: false,
        }
    }
    frame_setters!();
    /// Adds a sample.
    pub fn series(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = f64>,
    ) -> Self {
        self.samples
            .push((name.into(), values.into_iter().collect()));
        self
    }
    /// Number of bins (default: `sqrt(n)` clamped to 10..=60).
    pub fn bins(mut self, bins: usize) -> Self {
        self.bins = Some(bins.max(1));
        self
    }
    /// Logarithmic count axis (empty bins are not drawn).
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
}

/// Grouped bar chart: one bar per (category, group).
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    frame: Frame,
    categories: Vec<String>,
    groups: Vec<(String, Vec<f64>)>,
}

impl BarChart {
    /// An empty bar chart with a title.
    pub fn new(title: impl Into<String>) -> Self {
        BarChart {
            frame: Frame::new(title, LegendPosition::UpperRight),
            categories: Vec::new(),
            groups: Vec::new(),
        }
    }
    frame_setters!();
    /// Sets the category names along the x axis.
    pub fn categories<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.categories = names.into_iter().map(Into::into).collect();
        self
    }
    /// Adds a group: one value per category (`NaN` = no bar). Extra values get
    /// numbered categories.
    pub fn group(mut self, name: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Self {
        self.groups
            .push((name.into(), values.into_iter().collect()));
        self
    }
}

/// Any plot a report can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    /// See [`LineChart`].
    Line(LineChart),
    /// See [`BarChart`].
    Bar(BarChart),
    /// See [`Histogram`].
    Histogram(Histogram),
    /// See [`CdfChart`].
    Cdf(CdfChart),
    /// See [`ScatterChart`].
    Scatter(ScatterChart),
}

macro_rules! into_plot {
    ($($t:ident => $v:ident),*) => {$(
        impl From<$t> for Plot {
            fn from(p: $t) -> Plot {
                Plot::$v(p)
            }
        }
    )*};
}
into_plot!(LineChart => Line, BarChart => Bar, Histogram => Histogram, CdfChart => Cdf, ScatterChart => Scatter);

impl Plot {
    /// The plot's title.
    pub fn title(&self) -> &str {
        &self.frame().title
    }

    fn frame(&self) -> &Frame {
        match self {
            Plot::Line(p) => &p.frame,
            Plot::Bar(p) => &p.frame,
            Plot::Histogram(p) => &p.frame,
            Plot::Cdf(p) => &p.frame,
            Plot::Scatter(p) => &p.frame,
        }
    }

    /// Renders the plot as an SVG document; `name` is used in error messages.
    pub fn to_svg(&self, name: &str) -> Result<String> {
        render::render(name, &render::Figure::from_plot(self))
    }

    /// The data as drawn (after filtering), for the report's JSON.
    pub fn record(&self, name: &str, file: &str) -> PlotRecord {
        let fig = render::Figure::from_plot(self);
        let kind = match self {
            Plot::Line(_) => "line",
            Plot::Bar(_) => "bar",
            Plot::Histogram(_) => "histogram",
            Plot::Cdf(_) => "cdf",
            Plot::Scatter(_) => "scatter",
        };
        PlotRecord {
            name: name.to_string(),
            file: file.to_string(),
            kind: kind.to_string(),
            title: fig.frame.title.clone(),
            x_label: fig.frame.x_label.clone(),
            y_label: fig.frame.y_label.clone(),
            log_x: fig.log_x,
            log_y: fig.log_y,
            categories: fig.categories.clone(),
            series: fig.records(),
        }
    }
}

/// A plot in a report's JSON: what was drawn, in which file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlotRecord {
    /// Name of the plot within its report.
    pub name: String,
    /// SVG file name, relative to the report's directory.
    pub file: String,
    /// `line`, `bar`, `histogram`, `cdf` or `scatter`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Whether the x axis is logarithmic.
    pub log_x: bool,
    /// Whether the y axis is logarithmic.
    pub log_y: bool,
    /// Category names of a bar chart (x = category index + 0.5).
    #[serde(default)]
    pub categories: Vec<String>,
    /// The drawn series.
    pub series: Vec<SeriesRecord>,
}

/// One drawn series: for histograms `x` are bin centres and `y` counts, with
/// the bin edges in `x_edges`; for bar charts `x` is the category's centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRecord {
    /// Series name (legend entry).
    pub name: String,
    /// x coordinates.
    pub x: Vec<f64>,
    /// y coordinates.
    pub y: Vec<f64>,
    /// Histogram bin edges (`x.len() + 1` values), if a histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_edges: Option<Vec<f64>>,
}
