//! UCI Adult / Census Income (Kohavi 1996), original UCI format.
//!
//! No header; `", "` separators; `?` marks a missing value; the test file
//! starts with a `|1x3 Cross validator` comment and its labels end in `.`.
//! Categorical columns are one-hot encoded with the category vocabulary of
//! the *training* file (sorted); a missing (`?`) or unseen test category
//! encodes as all zeros. Label: `>50K` = 1, `<=50K` = 0.

use std::path::Path;

use wellspring_core::{Dataset, Features, Targets};

use crate::csv::{CsvOptions, CsvTable};
use crate::dir::DataDir;
use crate::error::{DataError, Result};
use crate::name::DatasetName;
use crate::tables::Table;

/// The 15 columns of the UCI files, in order (the last is the label).
pub const ADULT_COLUMNS: [&str; 15] = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
];

/// Indices (into [`ADULT_COLUMNS`]) of the numeric columns.
pub const ADULT_NUMERIC: [usize; 6] = [0, 2, 4, 10, 11, 12];

/// The one-hot encoding fitted on the training file.
#[derive(Clone, Debug, PartialEq)]
pub struct AdultEncoder {
    /// Sorted category vocabulary of each column (empty for numeric columns).
    pub categories: Vec<Vec<String>>,
}

impl AdultEncoder {
    /// Collects each categorical column's categories from `train` (`?` excluded).
    pub fn fit(train: &CsvTable) -> Self {
        let categories = (0..14)
            .map(|c| {
                if ADULT_NUMERIC.contains(&c) {
                    return Vec::new();
                }
                let mut v: Vec<String> = train
                    .rows()
                    .iter()
                    .map(|r| r.fields[c].clone())
                    .filter(|s| s != "?")
                    .collect();
                v.sort();
                v.dedup();
                v
            })
            .collect();
        Self { categories }
    }

    /// Encoded width: 6 numeric columns plus one per category.
    pub fn width(&self) -> usize {
        ADULT_NUMERIC.len() + self.categories.iter().map(Vec::len).sum::<usize>()
    }

    /// Feature names: numeric column names and `column=category`, in feature order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.width());
        for (c, cats) in self.categories.iter().enumerate() {
            if ADULT_NUMERIC.contains(&c) {
                out.push(ADULT_COLUMNS[c].to_string());
            } else {
                out.extend(cats.iter().map(|k| format!("{}={k}", ADULT_COLUMNS[c])));
            }
        }
        out
    }

    /// Positions of the numeric columns in the encoded features (to standardise them alone).
    pub fn numeric_positions(&self) -> Vec<usize> {
        let mut pos = Vec::new();
        let mut at = 0;
        for (c, cats) in self.categories.iter().enumerate() {
            if ADULT_NUMERIC.contains(&c) {
                pos.push(at);
                at += 1;
            } else {
                at += cats.len();
            }
        }
        pos
    }

    /// Encodes a table (train or test) into a dataset.
    pub fn encode(&self, t: &CsvTable, name: &str) -> Result<Dataset> {
        if t.width() != 15 {
            return Err(DataError::format(
                t.path(),
                format!(
                    "expected 15 columns (UCI Adult format), found {}",
                    t.width()
                ),
            ));
        }
        let w = self.width();
        let mut values = vec![0.0f32; t.len() * w];
        let mut labels = Vec::with_capacity(t.len());
        for r in 0..t.len() {
            let row = &mut values[r * w..(r + 1) * w];
            let mut at = 0;
            for (c, cats) in self.categories.iter().enumerate() {
                if ADULT_NUMERIC.contains(&c) {
                    row[at] = t.number(r, c)? as f32;
                    at += 1;
                } else {
                    if let Ok(k) = cats.binary_search_by(|x| x.as_str().cmp(t.text(r, c))) {
                        row[at + k] = 1.0;
                    }
                    at += cats.len();
                }
            }
            let lab = t.text(r, 14);
            labels.push(match lab.strip_suffix('.').unwrap_or(lab) {
                ">50K" => 1,
                "<=50K" => 0,
                _ => {
                    return Err(t.cell_error(
                        r,
                        14,
                        format!("unknown income label {lab:?} (expected >50K or <=50K)"),
                    ));
                }
            });
        }
        let ds = Dataset::new(
            name,
            Features::Dense {
                values,
                shape: vec![w],
            },
            Targets::Classes {
                labels,
                n_classes: 2,
            },
        )?;
        Ok(ds.with_class_names(vec!["<=50K".into(), ">50K".into()])?)
    }
}

fn read(path: &Path) -> Result<CsvTable> {
    let opts = CsvOptions {
        delimiter: ',',
        has_header: false,
        trim: true,
        comment_prefix: Some("|".into()),
        quoting: false,
    };
    CsvTable::read(path, &opts)
}

/// Reads Adult train/test files and one-hot encodes them (train vocabulary);
/// also returns the encoder so callers can find the numeric columns.
pub fn adult_from_files(train: &Path, test: &Path) -> Result<(Table, AdultEncoder)> {
    let tr = read(train)?;
    let te = read(test)?;
    let enc = AdultEncoder::fit(&tr);
    let table = Table {
        train: enc.encode(&tr, "adult-train")?,
        test: Some(enc.encode(&te, "adult-test")?),
        feature_names: enc.feature_names(),
    };
    Ok((table, enc))
}

/// UCI Adult from `adult/adult.data(.gz)` and `adult/adult.test(.gz)`:
/// 32561 / 16281 rows, one-hot features, label `>50K` = 1.
pub fn adult(dir: &DataDir) -> Result<(Table, AdultEncoder)> {
    let train = dir.find(DatasetName::Adult, &["adult.data.gz", "adult.data"])?;
    let test = dir.find(DatasetName::Adult, &["adult.test.gz", "adult.test"])?;
    adult_from_files(&train, &test)
}
