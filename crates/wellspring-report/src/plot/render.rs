//! Turns every chart kind into one [`Figure`] (lines, point clouds, bars) and
//! draws it with plotters' SVG backend, on linear or logarithmic axes.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Frame, LegendPosition, Plot, SeriesRecord};
use crate::error::{ReportError, Result};

/// Tableau-10, readable on white and distinguishable in most colour-blindness types.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Most points an ECDF curve keeps (quantiles beyond that look the same).
const CDF_MAX_POINTS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Line { markers: bool },
    Points,
}

#[derive(Debug, Clone)]
struct Curve {
    name: String,
    points: Vec<(f64, f64)>,
    style: Style,
}

#[derive(Debug, Clone, Copy)]
struct Bar {
    x0: f64,
    x1: f64,
    y: f64,
}

#[derive(Debug, Clone)]
struct Bars {
    name: String,
    bars: Vec<Bar>,
    alpha: f64,
    edges: Option<Vec<f64>>,
}

/// Every chart kind reduced to what is drawn.
#[derive(Debug, Clone)]
pub(super) struct Figure {
    pub(super) frame: Frame,
    pub(super) log_x: bool,
    pub(super) log_y: bool,
    pub(super) categories: Vec<String>,
    curves: Vec<Curve>,
    bars: Vec<Bars>,
    diagonal: bool,
    zero_based_y: bool,
}

/// Log axes keep values in `[1e-100, 1e100]`: plotters' log ticks loop for
/// ~forever when the axis spans more decades than an `f64` ratio can hold.
const LOG_MIN: f64 = 1e-100;
const LOG_MAX: f64 = 1e100;

fn keep(log: bool) -> impl Fn(f64) -> bool {
    move |v: f64| v.is_finite() && (!log || (LOG_MIN..=LOG_MAX).contains(&v))
}

fn clean(points: &[(f64, f64)], log_x: bool, log_y: bool) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|&(x, y)| keep(log_x)(x) && keep(log_y)(y))
        .collect()
}

fn ecdf(values: &[f64], log_x: bool) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|&x| keep(log_x)(x)).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return Vec::new();
    }
    let nf = n as f64;
    if n > CDF_MAX_POINTS {
        (0..=CDF_MAX_POINTS)
            .map(|k| {
                let i = ((k as f64) * (nf - 1.0) / CDF_MAX_POINTS as f64).round() as usize;
                (v[i], (i + 1) as f64 / nf)
            })
            .collect()
    } else {
        let mut pts = Vec::with_capacity(2 * n);
        for (i, &x) in v.iter().enumerate() {
            pts.push((x, i as f64 / nf));
            pts.push((x, (i + 1) as f64 / nf));
        }
        pts
    }
}

impl Figure {
    fn empty(frame: Frame) -> Self {
        Figure {
            frame,
            log_x: false,
            log_y: false,
            categories: Vec::new(),
            curves: Vec::new(),
            bars: Vec::new(),
            diagonal: false,
            zero_based_y: false,
        }
    }

    pub(super) fn from_plot(plot: &Plot) -> Self {
        match plot {
            Plot::Line(p) => {
                let mut f = Figure::empty(p.frame.clone());
                (f.log_x, f.log_y) = (p.log_x, p.log_y);
                f.curves = p
                    .series
                    .iter()
                    .map(|s| Curve {
                        name: s.name.clone(),
                        points: clean(&s.points, p.log_x, p.log_y),
                        style: Style::Line { markers: p.markers },
                    })
                    .collect();
                f
            }
            Plot::Scatter(p) => {
                let mut f = Figure::empty(p.frame.clone());
                f.diagonal = p.diagonal;
                f.curves = p
                    .series
                    .iter()
                    .map(|s| Curve {
                        name: s.name.clone(),
                        points: clean(&s.points, false, false),
                        style: Style::Points,
                    })
                    .collect();
                f
            }
            Plot::Cdf(p) => {
                let mut f = Figure::empty(p.frame.clone());
                f.log_x = p.log_x;
                f.curves = p
                    .samples
                    .iter()
                    .map(|(name, v)| Curve {
                        name: name.clone(),
                        points: ecdf(v, p.log_x),
                        style: Style::Line { markers: false },
                    })
                    .collect();
                f
            }
            Plot::Histogram(p) => histogram(p),
            Plot::Bar(p) => bar_chart(p),
        }
    }

    pub(super) fn records(&self) -> Vec<SeriesRecord> {
        let curves = self.curves.iter().map(|c| SeriesRecord {
            name: c.name.clone(),
            x: c.points.iter().map(|p| p.0).collect(),
            y: c.points.iter().map(|p| p.1).collect(),
            x_edges: None,
        });
        let bars = self.bars.iter().map(|b| SeriesRecord {
            name: b.name.clone(),
            x: b.bars.iter().map(|r| 0.5 * (r.x0 + r.x1)).collect(),
            y: b.bars.iter().map(|r| r.y).collect(),
            x_edges: b.edges.clone(),
        });
        curves.chain(bars).collect()
    }

    fn is_empty(&self) -> bool {
        self.curves.iter().all(|c| c.points.is_empty())
            && self.bars.iter().all(|b| b.bars.is_empty())
    }

    /// Axis ranges: data extent plus a margin, padded when degenerate.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let xs = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.0))
            .chain(
                self.bars
                    .iter()
                    .flat_map(|b| b.bars.iter().flat_map(|r| [r.x0, r.x1])),
            );
        let x = if self.categories.is_empty() {
            span(xs, self.log_x, false)
        } else {
            (0.0, self.categories.len().max(1) as f64)
        };
        let ys = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .chain(self.bars.iter().flat_map(|b| b.bars.iter().map(|r| r.y)));
        let y = span(ys, self.log_y, self.zero_based_y && !self.log_y);
        (x, y)
    }
}

fn histogram(p: &super::Histogram) -> Figure {
    let mut f = Figure::empty(p.frame.clone());
    f.log_y = p.log_y;
    f.zero_based_y = true;
    let all = p.samples.iter().flat_map(|(_, v)| v.iter().copied());
    let (lo, hi) = {
        let finite: Vec<f64> = all.filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return f;
        }
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Clamping keeps the bin width finite; outliers land in the end bins.
        let (lo, hi) = (lo.max(-f64::MAX / 4.0), hi.min(f64::MAX / 4.0));
        if lo == hi { pad(lo) } else { (lo, hi) }
    };
    let largest = p.samples.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let bins = p
        .bins
        .unwrap_or_else(|| ((largest as f64).sqrt().round() as usize).clamp(10, 60));
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| lo + width * i as f64).collect();
    let alpha = if p.samples.len() > 1 { 0.45 } else { 0.8 };
    for (name, values) in &p.samples {
        let mut counts = vec![0usize; bins];
        for &v in values.iter().filter(|v| v.is_finite()) {
            let i = (((v - lo) / width).floor() as isize).clamp(0, bins as isize - 1);
            counts[i as usize] += 1;
        }
        let bars = counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| !p.log_y || c > 0)
            .map(|(i, &c)| Bar {
                x0: edges[i],
                x1: edges[i + 1],
                y: c as f64,
            })
            .collect();
        f.bars.push(Bars {
            name: name.clone(),
            bars,
            alpha,
            edges: Some(edges.clone()),
        });
    }
    f
}

fn bar_chart(p: &super::BarChart) -> Figure {
    let mut f = Figure::empty(p.frame.clone());
    f.zero_based_y = true;
    let n = p
        .groups
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(0)
        .max(p.categories.len());
    f.categories = (0..n)
        .map(|i| {
            p.categories
                .get(i)
                .cloned()
                .unwrap_or_else(|| (i + 1).to_string())
        })
        .collect();
    let g = p.groups.len().max(1) as f64;
    let w = 0.8 / g;
    for (j, (name, values)) in p.groups.iter().enumerate() {
        let bars = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &y)| {
                let x0 = i as f64 + 0.1 + w * j as f64;
                Bar { x0, x1: x0 + w, y }
            })
            .collect();
        f.bars.push(Bars {
            name: name.clone(),
            bars,
            alpha: 0.85,
            edges: None,
        });
    }
    f
}

/// A non-degenerate range around a single value.
fn pad(v: f64) -> (f64, f64) {
    let d = if v == 0.0 { 1.0 } else { v.abs() * 0.1 };
    (v - d, v + d)
}

/// Data extent with a 5% margin (multiplicative on a log axis); `(0, 1)` or
/// `(1, 10)` when there is no data. `zero_based` keeps 0 inside the range and
/// starts it exactly at 0 for non-negative data (bars grow from 0).
fn span(values: impl Iterator<Item = f64>, log: bool, zero_based: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|&v| keep(log)(v)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if zero_based {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if lo > hi {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        if lo == hi {
            return (lo / 2.0, hi * 2.0);
        }
        let m = (hi / lo).powf(0.05);
        return (lo / m, hi * m);
    }
    if lo == hi {
        return pad(lo);
    }
    // Halving keeps the width finite for data near ±f64::MAX.
    let (lo, hi) = (lo.max(-f64::MAX / 4.0), hi.min(f64::MAX / 4.0));
    // Bars get more headroom so the legend rarely covers the tallest one.
    let m = if zero_based { 0.1 } else { 0.05 } * (hi - lo);
    let lo2 = if zero_based && lo >= 0.0 { 0.0 } else { lo - m };
    let hi2 = if zero_based && hi <= 0.0 { 0.0 } else { hi + m };
    (lo2, hi2)
}

/// Compact tick label: up to 6 significant decimals, scientific outside
/// `[1e-3, 1e5)`, trailing zeros trimmed (`0.30000000000000004` → `0.3`).
pub fn fmt_tick(v: &f64) -> String {
    let v = *v;
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            v.to_string()
        };
    }
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim(m)),
            None => s,
        }
    } else {
        trim(&format!("{v:.6}"))
    }
}

fn plot_err(name: &str, e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        plot: name.to_string(),
        reason: e.to_string(),
    }
}

/// Renders `fig` to an SVG string.
pub(super) fn render(name: &str, fig: &Figure) -> Result<String> {
    let ((x0, x1), (y0, y1)) = fig.ranges();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, fig.frame.size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(name, e))?;
        let drawn = match (fig.log_x, fig.log_y) {
            (false, false) => draw(&root, fig, x0..x1, y0..y1, (x0, x1), (y0, y1)),
            (true, false) => draw(&root, fig, (x0..x1).log_scale(), y0..y1, (x0, x1), (y0, y1)),
            (false, true) => draw(&root, fig, x0..x1, (y0..y1).log_scale(), (x0, x1), (y0, y1)),
            (true, true) => draw(
                &root,
                fig,
                (x0..x1).log_scale(),
                (y0..y1).log_scale(),
                (x0, x1),
                (y0, y1),
            ),
        };
        drawn.map_err(|e| plot_err(name, e))?;
        root.present().map_err(|e| plot_err(name, e))?;
    }
    Ok(svg)
}

fn draw<'a, XS, YS>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    fig: &Figure,
    xs: XS,
    ys: YS,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> std::result::Result<(), String>
where
    XS: AsRangedCoord<Value = f64>,
    YS: AsRangedCoord<Value = f64>,
    XS::CoordDescType: ValueFormatter<f64>,
    YS::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let has_title = !fig.frame.title.is_empty();
    let mut builder = ChartBuilder::on(root);
    if has_title {
        builder.caption(&fig.frame.title, ("sans-serif", 22));
    }
    let mut chart = builder
        .margin(18)
        .x_label_area_size(if fig.categories.is_empty() { 50 } else { 60 })
        .y_label_area_size(80)
        .build_cartesian_2d(xs, ys)
        .map_err(e)?;

    // Ticks closer to 0 than a billionth of the span are rounding noise.
    let (xspan, yspan) = ((x1 - x0).abs(), (y1 - y0).abs());
    let fx = move |v: &f64| fmt_tick(&if v.abs() < xspan * 1e-9 { 0.0 } else { *v });
    let fy = move |v: &f64| fmt_tick(&if v.abs() < yspan * 1e-9 { 0.0 } else { *v });
    let mut mesh = chart.configure_mesh();
    mesh.axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy);
    if !fig.frame.x_label.is_empty() {
        mesh.x_desc(fig.frame.x_label.as_str());
    }
    if !fig.frame.y_label.is_empty() {
        mesh.y_desc(fig.frame.y_label.as_str());
    }
    if !fig.categories.is_empty() {
        mesh.x_labels(0).disable_x_mesh();
    }
    mesh.draw().map_err(e)?;

    let base = if fig.log_y { y0 } else { 0.0_f64.clamp(y0, y1) };
    for (k, b) in fig.bars.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let style = color.mix(b.alpha).filled();
        let anno = chart
            .draw_series(b.bars.iter().map(|r| {
                let (top, bottom) = if r.y >= base {
                    (r.y, base)
                } else {
                    (base, r.y)
                };
                Rectangle::new([(r.x0, top), (r.x1, bottom)], style)
            }))
            .map_err(e)?;
        if !b.name.is_empty() {
            anno.label(b.name.as_str()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
            });
        }
    }
    for (k, c) in fig.curves.iter().enumerate() {
        let color = PALETTE[(k + fig.bars.len()) % PALETTE.len()];
        let anno = match c.style {
            Style::Line { markers } => chart
                .draw_series(
                    LineSeries::new(c.points.iter().copied(), color.stroke_width(2))
                        .point_size(if markers { 3 } else { 0 }),
                )
                .map_err(e)?,
            Style::Points => chart
                .draw_series(
                    c.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.mix(0.7).filled())),
                )
                .map_err(e)?,
        };
        if !c.name.is_empty() {
            let line = matches!(c.style, Style::Line { .. });
            anno.label(c.name.as_str())
                .legend(move |(x, y)| -> DynElement<'static, _, _> {
                    if line {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                            .into_dyn()
                    } else {
                        Circle::new((x + 10, y), 4, color.filled()).into_dyn()
                    }
                });
        }
    }
    if fig.diagonal {
        let (lo, hi) = (x0.max(y0), x1.min(y1));
        if lo < hi {
            chart
                .draw_series(LineSeries::new(
                    [(lo, lo), (hi, hi)],
                    BLACK.mix(0.5).stroke_width(1),
                ))
                .map_err(e)?
                .label("y = x")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
        }
    }

    let named = fig.bars.iter().any(|b| !b.name.is_empty())
        || fig.curves.iter().any(|c| !c.name.is_empty())
        || fig.diagonal;
    let position = match fig.frame.legend {
        LegendPosition::UpperLeft => Some(SeriesLabelPosition::UpperLeft),
        LegendPosition::UpperRight => Some(SeriesLabelPosition::UpperRight),
        LegendPosition::LowerLeft => Some(SeriesLabelPosition::LowerLeft),
        LegendPosition::LowerRight => Some(SeriesLabelPosition::LowerRight),
        LegendPosition::Hidden => None,
    };
    if let (true, Some(pos)) = (named, position) {
        chart
            .configure_series_labels()
            .position(pos)
            .margin(12)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(e)?;
    }

    let label_style = TextStyle::from(("sans-serif", 13).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, name) in fig.categories.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, y0));
        let shown: String = if fig.categories.len() > 8 && name.chars().count() > 12 {
            name.chars().take(11).chain(['…']).collect()
        } else {
            name.clone()
        };
        root.draw(&Text::new(shown, (px, py + 8), label_style.clone()))
            .map_err(e)?;
    }
    if fig.is_empty() {
        let (w, h) = fig.frame.size;
        let grey = BLACK.mix(0.5);
        let style = TextStyle::from(("sans-serif", 18).into_font())
            .color(&grey)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), style))
            .map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_compact() {
        assert_eq!(fmt_tick(&0.30000000000000004), "0.3");
        assert_eq!(fmt_tick(&100.0), "100");
        assert_eq!(fmt_tick(&1e-5), "1e-5");
        assert_eq!(fmt_tick(&250000.0), "2.5e5");
        assert_eq!(fmt_tick(&-0.0), "0");
    }

    #[test]
    fn spans_are_never_degenerate() {
        assert_eq!(span([].into_iter(), false, false), (0.0, 1.0));
        assert_eq!(span([f64::NAN].into_iter(), true, false), (1.0, 10.0));
        assert_eq!(span([3.0, 3.0].into_iter(), false, false), (2.7, 3.3));
        assert_eq!(span([0.0].into_iter(), false, false), (-1.0, 1.0));
        assert_eq!(span([4.0].into_iter(), true, false), (2.0, 8.0));
        assert_eq!(span([-1.0, 10.0].into_iter(), true, false), (5.0, 20.0));
        let (lo, hi) = span([1e-300, 1e-100, 1e100, 1e300].into_iter(), true, false);
        assert!(lo > 0.0 && (hi / lo).is_finite());
        let (lo, hi) = span([2.0, 4.0].into_iter(), false, true);
        assert_eq!(lo, 0.0);
        assert!(hi > 4.0);
        let (lo, hi) = span([-f64::MAX, f64::MAX].into_iter(), false, false);
        assert!(lo.is_finite() && hi.is_finite() && lo < hi);
    }

    #[test]
    fn ecdf_ends_at_one_and_is_downsampled() {
        let pts = ecdf(&[3.0, 1.0, f64::NAN, 2.0], false);
        assert_eq!(pts.first(), Some(&(1.0, 0.0)));
        assert_eq!(pts.last(), Some(&(3.0, 1.0)));
        let big: Vec<f64> = (0..10_000).map(f64::from).collect();
        let pts = ecdf(&big, false);
        assert_eq!(pts.len(), CDF_MAX_POINTS + 1);
        assert_eq!(pts.last(), Some(&(9999.0, 1.0)));
    }
}
