//! Result tables: a header and rows of typed cells (numbers with a chosen
//! precision, integers, text, `mean ± std`), each cell optionally carrying the
//! paper's value so the markdown shows ours beside theirs.

use serde::{Deserialize, Deserializer, Serialize};

/// The value of one table cell.
///
/// Non-finite numbers are kept (a diverged run is a result too): they render as
/// `NaN`/`inf` in markdown and as `null` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CellValue {
    /// Nothing (rendered as an empty cell, or `–` in a paper column).
    Empty,
    /// Free text.
    Text {
        /// The text.
        text: String,
    },
    /// An integer count.
    Int {
        /// The value.
        value: i64,
    },
    /// A real number shown with `precision` digits after the point.
    Num {
        /// The value.
        #[serde(deserialize_with = "nan_if_null")]
        value: f64,
        /// Digits after the decimal point in markdown.
        precision: usize,
    },
    /// `mean ± std` over `n` runs (seeds), when `n` is known.
    MeanStd {
        /// Mean.
        #[serde(deserialize_with = "nan_if_null")]
        mean: f64,
        /// Standard deviation.
        #[serde(deserialize_with = "nan_if_null")]
        std: f64,
        /// Digits after the decimal point in markdown.
        precision: usize,
        /// Number of samples the statistics are over.
        #[serde(default)]
        n: Option<usize>,
    },
}

fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn fmt_num(v: f64, precision: usize) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.precision$}")
    }
}

impl CellValue {
    /// The markdown text of this value (with `|` escaped).
    pub fn render(&self) -> String {
        match self {
            CellValue::Empty => String::new(),
            CellValue::Text { text } => text.replace('|', "\\|").replace('\n', " "),
            CellValue::Int { value } => value.to_string(),
            CellValue::Num { value, precision } => fmt_num(*value, *precision),
            CellValue::MeanStd {
                mean,
                std,
                precision,
                ..
            } => format!(
                "{} ± {}",
                fmt_num(*mean, *precision),
                fmt_num(*std, *precision)
            ),
        }
    }

    /// Whether the value is numeric (right-aligned in markdown).
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            CellValue::Int { .. } | CellValue::Num { .. } | CellValue::MeanStd { .. }
        )
    }
}

/// One table cell: our value and, optionally, the paper's value for the same entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Our value.
    pub value: CellValue,
    /// The value the paper reports, if we compare against one.
    #[serde(default)]
    pub paper: Option<CellValue>,
}

impl Cell {
    fn of(value: CellValue) -> Self {
        Cell { value, paper: None }
    }

    /// An empty cell.
    pub fn empty() -> Self {
        Cell::of(CellValue::Empty)
    }

    /// A text cell.
    pub fn text(text: impl Into<String>) -> Self {
        Cell::of(CellValue::Text { text: text.into() })
    }

    /// An integer cell.
    pub fn int(value: i64) -> Self {
        Cell::of(CellValue::Int { value })
    }

    /// A number shown with `precision` digits after the point.
    pub fn num(value: f64, precision: usize) -> Self {
        Cell::of(CellValue::Num { value, precision })
    }

    /// `mean ± std` from precomputed statistics.
    pub fn mean_std(mean: f64, std: f64, precision: usize) -> Self {
        Cell::of(CellValue::MeanStd {
            mean,
            std,
            precision,
            n: None,
        })
    }

    /// `mean ± std` of `samples` (sample standard deviation, `n − 1` in the
    /// denominator; 0 for a single sample). An empty slice gives `NaN ± NaN`.
    pub fn mean_std_of(samples: &[f64], precision: usize) -> Self {
        let n = samples.len();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else if n == 1 {
            0.0
        } else {
            f64::NAN
        };
        Cell::of(CellValue::MeanStd {
            mean,
            std,
            precision,
            n: Some(n),
        })
    }

    /// Attaches the paper's value for this entry; the table then gets a
    /// "(paper)" column right after this cell's column.
    pub fn vs_paper(mut self, paper: Cell) -> Self {
        self.paper = Some(paper.value);
        self
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::text(s)
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::text(s)
    }
}
impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::int(v)
    }
}
/// A bare `f64` gets 4 digits after the point; use [`Cell::num`] to choose.
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::num(v, 4)
    }
}

/// A table with a header row and rows of [`Cell`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Heading shown above the table (optional).
    #[serde(default)]
    pub title: Option<String>,
    /// Column names.
    pub header: Vec<String>,
    /// Rows; each has `header.len()` cells (short rows are padded when added).
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with the given column names.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table {
            title: None,
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Sets the heading shown above the table.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Appends a row. Rows shorter than the header are padded with empty cells;
    /// longer rows get extra unnamed columns, so no value is ever dropped.
    pub fn row<C: Into<Cell>>(mut self, cells: impl IntoIterator<Item = C>) -> Self {
        self.push_row(cells);
        self
    }

    /// Appends a row in place (see [`Table::row`]).
    pub fn push_row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        let mut row: Vec<Cell> = cells.into_iter().map(Into::into).collect();
        if self.header.len() < row.len() {
            self.header.resize(row.len(), String::new());
            for r in &mut self.rows {
                r.resize(row.len(), Cell::empty());
            }
        }
        row.resize(self.header.len(), Cell::empty());
        self.rows.push(row);
    }

    /// Renders the table as GitHub markdown. A column in which any cell has a
    /// paper value is followed by a `<name> (paper)` column.
    pub fn to_markdown(&self) -> String {
        let ncols = self.header.len();
        let mut rows = self.rows.clone();
        for r in &mut rows {
            r.resize(ncols, Cell::empty());
        }
        let mut names = Vec::new();
        let mut numeric = Vec::new();
        // (column index, is the paper column)
        let mut layout = Vec::new();
        for j in 0..ncols {
            let col_numeric = rows.iter().any(|r| r[j].value.is_numeric())
                && rows
                    .iter()
                    .all(|r| r[j].value.is_numeric() || matches!(r[j].value, CellValue::Empty));
            names.push(self.header[j].clone());
            numeric.push(col_numeric);
            layout.push((j, false));
            if rows.iter().any(|r| r[j].paper.is_some()) {
                names.push(format!("{} (paper)", self.header[j]));
                numeric.push(col_numeric);
                layout.push((j, true));
            }
        }
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        if let Some(t) = &self.title {
            out.push_str(&format!("### {t}\n\n"));
        }
        let header: Vec<String> = names.iter().map(|n| esc(n)).collect();
        out.push_str(&format!("| {} |\n", header.join(" | ")));
        let rule: Vec<&str> = numeric
            .iter()
            .map(|&n| if n { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for r in &rows {
            let cells: Vec<String> = layout
                .iter()
                .map(|&(j, paper)| {
                    if paper {
                        r[j].paper
                            .as_ref()
                            .map_or("–".to_string(), CellValue::render)
                    } else {
                        r[j].value.render()
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_puts_paper_column_beside_ours() {
        let t = Table::new(["method", "LDS"])
            .title("LDS on MNIST")
            .row([
                Cell::text("TRAK"),
                Cell::num(0.4567, 3).vs_paper(Cell::num(0.46, 2)),
            ])
            .row([Cell::text("a|b"), Cell::mean_std_of(&[1.0, 3.0], 2)]);
        let md = t.to_markdown();
        assert!(md.contains("### LDS on MNIST"), "{md}");
        assert!(md.contains("| method | LDS | LDS (paper) |"), "{md}");
        assert!(md.contains("|---|---:|---:|"), "{md}");
        assert!(md.contains("| TRAK | 0.457 | 0.46 |"), "{md}");
        assert!(md.contains("| a\\|b | 2.00 ± 1.41 | – |"), "{md}");
    }

    #[test]
    fn rows_are_padded_and_nan_survives_json() {
        let t = Table::new(["a", "b"]).row([Cell::int(1)]).row(vec![
            Cell::num(f64::NAN, 2),
            2usize.into(),
            "x".into(),
        ]);
        assert_eq!(t.header.len(), 3);
        assert_eq!(t.rows[0].len(), 3);
        assert!(t.to_markdown().contains("| NaN | 2 | x |"));
        let json = serde_json::to_string(&t).unwrap();
        let back: Table = serde_json::from_str(&json).unwrap();
        match back.rows[1][0].value {
            CellValue::Num { value, precision } => assert!(value.is_nan() && precision == 2),
            ref other => panic!("unexpected {other:?}"),
        }
        assert_eq!(back.rows[0], t.rows[0]);
    }

    #[test]
    fn mean_std_of_edge_cases() {
        match Cell::mean_std_of(&[5.0], 1).value {
            CellValue::MeanStd { mean, std, n, .. } => {
                assert_eq!((mean, std, n), (5.0, 0.0, Some(1)))
            }
            _ => panic!("not mean_std"),
        }
        assert_eq!(Cell::mean_std_of(&[], 1).value.render(), "NaN ± NaN");
    }
}
