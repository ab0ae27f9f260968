//! A small delimited-text reader for the tables this crate loads.
//!
//! One record per line (no embedded newlines), optional header, optional
//! double-quoted fields (`""` escapes a quote), blank lines skipped, comment
//! lines skipped by prefix, gzip detected from the content. Every error names
//! the file, the 1-based line number and the column.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result, read_text};

/// How to read a delimited file.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// Field separator.
    pub delimiter: char,
    /// First non-skipped line is a header.
    pub has_header: bool,
    /// Trim ASCII whitespace around each field (UCI Adult separates with `", "`).
    pub trim: bool,
    /// Lines starting with this prefix are skipped (Adult's test file starts with `|1x3 ...`).
    pub comment_prefix: Option<String>,
    /// Honour double-quoted fields (off for TSV text, where `"` is just a character).
    pub quoting: bool,
}

impl Default for CsvOptions {
    /// Comma-separated with a header, fields trimmed, no comments.
    fn default() -> Self {
        Self {
            delimiter: ',',
            has_header: true,
            trim: true,
            comment_prefix: None,
            quoting: true,
        }
    }
}

impl CsvOptions {
    /// Tab-separated with a header, fields not trimmed.
    pub fn tsv() -> Self {
        Self {
            delimiter: '\t',
            has_header: true,
            trim: false,
            comment_prefix: None,
            quoting: false,
        }
    }
}

/// One data row and the line it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvRow {
    /// 1-based line number in the file.
    pub line: usize,
    /// The fields.
    pub fields: Vec<String>,
}

/// A parsed table: header (if any) and rectangular rows.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvTable {
    path: PathBuf,
    header: Option<Vec<String>>,
    width: usize,
    rows: Vec<CsvRow>,
}

fn split_line(
    line: &str,
    delim: char,
    trim: bool,
    quoting: bool,
) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut at_start = true;
    let finish = |cur: &mut String, fields: &mut Vec<String>| {
        let f = std::mem::take(cur);
        fields.push(if trim { f.trim().to_string() } else { f });
    };
    while let Some(c) = chars.next() {
        if quoting && at_start && c == '"' {
            // Quoted field: read to the closing quote.
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted field {cur:?}")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        cur.push('"');
                    }
                    Some('"') => break,
                    Some(other) => cur.push(other),
                }
            }
            match chars.next() {
                None => {
                    finish(&mut cur, &mut fields);
                    return Ok(fields);
                }
                Some(d) if d == delim => {
                    finish(&mut cur, &mut fields);
                    at_start = true;
                    continue;
                }
                Some(other) => {
                    return Err(format!("unexpected {other:?} after closing quote"));
                }
            }
        }
        if c == delim {
            finish(&mut cur, &mut fields);
            at_start = true;
        } else {
            if !(at_start && trim && c == ' ') {
                at_start = false;
            }
            cur.push(c);
        }
    }
    finish(&mut cur, &mut fields);
    Ok(fields)
}

impl CsvTable {
    /// Reads a (possibly gzipped) delimited file.
    pub fn read(path: &Path, opts: &CsvOptions) -> Result<Self> {
        let text = read_text(path)?;
        Self::parse(&text, path, opts)
    }

    /// Parses text already in memory; `path` is used in errors.
    pub fn parse(text: &str, path: &Path, opts: &CsvOptions) -> Result<Self> {
        let mut header = None;
        let mut width = None;
        let mut rows = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(prefix) = &opts.comment_prefix
                && line.starts_with(prefix.as_str())
            {
                continue;
            }
            let fields =
                split_line(line, opts.delimiter, opts.trim, opts.quoting).map_err(|reason| {
                    DataError::Csv {
                        path: path.to_path_buf(),
                        line: line_no,
                        column: "-".into(),
                        reason,
                    }
                })?;
            match width {
                None => width = Some(fields.len()),
                Some(w) if w != fields.len() => {
                    let names: &[String] = header.as_deref().unwrap_or(&[]);
                    let column = if fields.len() > w {
                        format!("{} (extra field)", fields.len())
                    } else {
                        names
                            .get(fields.len())
                            .cloned()
                            .unwrap_or_else(|| (fields.len() + 1).to_string())
                    };
                    return Err(DataError::Csv {
                        path: path.to_path_buf(),
                        line: line_no,
                        column,
                        reason: format!("ragged row: expected {w} fields, found {}", fields.len()),
                    });
                }
                Some(_) => {}
            }
            if opts.has_header && header.is_none() {
                header = Some(fields);
            } else {
                rows.push(CsvRow {
                    line: line_no,
                    fields,
                });
            }
        }
        if rows.is_empty() {
            return Err(DataError::format(path, "no data rows"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            header,
            width: width.unwrap_or(0),
            rows,
        })
    }

    /// The file this table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Header fields, if the file had a header.
    pub fn header(&self) -> Option<&[String]> {
        self.header.as_deref()
    }

    /// Fields per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True if there are no data rows (never, for a parsed table).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The data rows.
    pub fn rows(&self) -> &[CsvRow] {
        &self.rows
    }

    /// Name of column `col` (header name, or its 1-based position).
    pub fn column_name(&self, col: usize) -> String {
        self.header
            .as_ref()
            .and_then(|h| h.get(col).cloned())
            .unwrap_or_else(|| (col + 1).to_string())
    }

    /// Index of the column named `name`; the error lists the columns there are.
    pub fn column(&self, name: &str) -> Result<usize> {
        let h = self.header.as_deref().unwrap_or(&[]);
        h.iter().position(|c| c == name).ok_or_else(|| {
            DataError::format(
                &self.path,
                format!("no column named {name:?}; columns are {}", h.join(", ")),
            )
        })
    }

    /// A bad-cell error for row `row`, column `col`.
    pub fn cell_error(&self, row: usize, col: usize, reason: impl Into<String>) -> DataError {
        DataError::Csv {
            path: self.path.clone(),
            line: self.rows[row].line,
            column: self.column_name(col),
            reason: reason.into(),
        }
    }

    /// The text of a cell.
    pub fn text(&self, row: usize, col: usize) -> &str {
        &self.rows[row].fields[col]
    }

    /// A cell parsed as a finite number; errors name the file, line, column and value.
    pub fn number(&self, row: usize, col: usize) -> Result<f64> {
        let s = self.text(row, col).trim();
        let v: f64 = s.parse().map_err(|_| {
            self.cell_error(
                row,
                col,
                if s.is_empty() {
                    "empty cell where a number is needed".to_string()
                } else {
                    format!("non-numeric value {s:?}")
                },
            )
        })?;
        if !v.is_finite() {
            return Err(self.cell_error(row, col, format!("non-finite value {s:?}")));
        }
        Ok(v)
    }

    /// The columns `cols` of every row as `f32`, row-major (`len() × cols.len()`).
    pub fn numbers(&self, cols: &[usize]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.len() * cols.len());
        for r in 0..self.len() {
            for &c in cols {
                out.push(self.number(r, c)? as f32);
            }
        }
        Ok(out)
    }

    /// Column `col` as class labels through `map` (text → label); unknown text is an error.
    pub fn labels(&self, col: usize, map: impl Fn(&str) -> Option<usize>) -> Result<Vec<usize>> {
        (0..self.len())
            .map(|r| {
                let s = self.text(r, col);
                map(s).ok_or_else(|| self.cell_error(r, col, format!("unknown label {s:?}")))
            })
            .collect()
    }

    /// Column `col` as integer class labels in `0..n_classes`.
    pub fn int_labels(&self, col: usize, n_classes: usize) -> Result<Vec<usize>> {
        (0..self.len())
            .map(|r| {
                let v = self.number(r, col)?;
                if v.fract() != 0.0 || v < 0.0 || v >= n_classes as f64 {
                    return Err(self.cell_error(
                        r,
                        col,
                        format!("label {v} out of range for {n_classes} classes"),
                    ));
                }
                Ok(v as usize)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_trim_and_comments() {
        let opts = CsvOptions {
            comment_prefix: Some("|".into()),
            ..CsvOptions::default()
        };
        let t = CsvTable::parse(
            "|comment\na, \"b,c\"\n1, \"x \"\"y\"\"\"\n\n2,3\n",
            Path::new("t.csv"),
            &opts,
        )
        .unwrap();
        assert_eq!(t.header().unwrap(), &["a".to_string(), "b,c".to_string()]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.text(0, 1), "x \"y\"");
        assert_eq!(t.rows()[1].line, 5);
        assert_eq!(t.number(1, 1).unwrap(), 3.0);
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let t = CsvTable::parse(
            "a,b\n1,2\n3,inf\n4,x\n",
            Path::new("t.csv"),
            &CsvOptions::default(),
        )
        .unwrap();
        let e = t.number(1, 1).unwrap_err().to_string();
        assert!(
            e.contains("t.csv, line 3, column b") && e.contains("non-finite"),
            "{e}"
        );
        let e = t.numbers(&[0, 1]).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = t.number(2, 1).unwrap_err().to_string();
        assert!(
            e.contains("line 4") && e.contains("non-numeric value \"x\""),
            "{e}"
        );
    }
}
