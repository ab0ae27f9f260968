//! CSV tables: Concrete, Energy Efficiency, HELOC, Breast Cancer, Optdigits,
//! and two generic CSV → [`Dataset`] helpers.
//!
//! Loaders here return raw (unstandardised, unsplit where there is no official
//! split) data; [`crate::load()`] adds the seeded split and standardisation.

use std::path::Path;

use wellspring_core::{Dataset, Features, Targets};

use crate::csv::{CsvOptions, CsvTable};
use crate::dir::DataDir;
use crate::error::{DataError, Result};
use crate::name::DatasetName;

/// A loaded table: examples (with an official test part if the dataset has
/// one) and the names of the feature columns, in feature order.
#[derive(Clone, Debug)]
pub struct Table {
    /// All examples, or the official training part.
    pub train: Dataset,
    /// The official test part, if any.
    pub test: Option<Dataset>,
    /// Name of each feature column.
    pub feature_names: Vec<String>,
}

/// Which Energy Efficiency target(s) to predict (Tsanas & Xifara 2012).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnergyTarget {
    /// `Y1`, heating load.
    #[default]
    Y1,
    /// `Y2`, cooling load.
    Y2,
    /// Both, as two regression outputs `[Y1, Y2]`.
    Both,
}

impl std::str::FromStr for EnergyTarget {
    type Err = DataError;

    /// `Y1`/`heating`, `Y2`/`cooling`, `both` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "y1" | "heating" => Ok(EnergyTarget::Y1),
            "y2" | "cooling" => Ok(EnergyTarget::Y2),
            "both" | "y1,y2" => Ok(EnergyTarget::Both),
            _ => Err(DataError::invalid_param(
                "energy target",
                s,
                "expected Y1, Y2 or both",
            )),
        }
    }
}

/// Reads a CSV with a header as a regression set: `targets` are the target
/// columns, `exclude` columns are dropped, every other column is a feature.
pub fn csv_regression(
    path: &Path,
    name: &str,
    targets: &[&str],
    exclude: &[&str],
) -> Result<Table> {
    let t = CsvTable::read(path, &CsvOptions::default())?;
    let tcols = targets
        .iter()
        .map(|c| t.column(c))
        .collect::<Result<Vec<_>>>()?;
    let xcols = t.column_indices_except(targets, exclude)?;
    let ds = Dataset::new(
        name,
        Features::Dense {
            values: t.numbers(&xcols)?,
            shape: vec![xcols.len()],
        },
        Targets::Regression {
            values: t.numbers(&tcols)?,
            n_targets: tcols.len(),
        },
    )?;
    Ok(Table {
        train: ds,
        test: None,
        feature_names: xcols.iter().map(|&c| t.column_name(c)).collect(),
    })
}

/// Maps a label cell's text to a class (e.g. HELOC's `Bad` → 1).
pub type LabelMap<'a> = &'a dyn Fn(&str) -> Option<usize>;

/// Reads a CSV with a header as a classification set: `label` is the label
/// column (integers `0..n_classes`, or text through `map`), every other column
/// is a numeric feature.
pub fn csv_classification(
    path: &Path,
    name: &str,
    label: &str,
    n_classes: usize,
    map: Option<LabelMap<'_>>,
) -> Result<Table> {
    let t = CsvTable::read(path, &CsvOptions::default())?;
    let lcol = t.column(label)?;
    let xcols = t.column_indices_except(&[label], &[])?;
    let labels = match map {
        Some(f) => t.labels(lcol, f)?,
        None => t.int_labels(lcol, n_classes)?,
    };
    if let Some(r) = labels.iter().position(|&l| l >= n_classes) {
        return Err(t.cell_error(
            r,
            lcol,
            format!("label {} out of range for {n_classes} classes", labels[r]),
        ));
    }
    let ds = Dataset::new(
        name,
        Features::Dense {
            values: t.numbers(&xcols)?,
            shape: vec![xcols.len()],
        },
        Targets::Classes { labels, n_classes },
    )?;
    Ok(Table {
        train: ds,
        test: None,
        feature_names: xcols.iter().map(|&c| t.column_name(c)).collect(),
    })
}

impl CsvTable {
    /// Indices of every column not named in `a` or `b`; errors if a name is absent.
    pub fn column_indices_except(&self, a: &[&str], b: &[&str]) -> Result<Vec<usize>> {
        let skip = a
            .iter()
            .chain(b)
            .map(|c| self.column(c))
            .collect::<Result<Vec<_>>>()?;
        Ok((0..self.width()).filter(|c| !skip.contains(c)).collect())
    }
}

/// Column of Concrete's regression target (compressive strength in MPa).
pub const CONCRETE_TARGET: &str = "compressive_strength_mpa";

/// UCI Concrete Compressive Strength (Yeh 1998): 1030 rows, 8 features;
/// `target` is the target column (default [`CONCRETE_TARGET`]).
pub fn concrete(dir: &DataDir, target: Option<&str>) -> Result<Table> {
    let path = dir.find(DatasetName::Concrete, &["concrete.csv"])?;
    csv_regression(&path, "concrete", &[target.unwrap_or(CONCRETE_TARGET)], &[])
}

/// UCI Energy Efficiency (Tsanas & Xifara 2012): 768 rows, features X1..X8;
/// the target not asked for is dropped (never a feature).
pub fn energy(dir: &DataDir, target: EnergyTarget) -> Result<Table> {
    let path = dir.find(DatasetName::Energy, &["energy_efficiency.csv"])?;
    let (t, x): (&[&str], &[&str]) = match target {
        EnergyTarget::Y1 => (&["Y1"], &["Y2"]),
        EnergyTarget::Y2 => (&["Y2"], &["Y1"]),
        EnergyTarget::Both => (&["Y1", "Y2"], &[]),
    };
    csv_regression(&path, "energy", t, x)
}

/// FICO HELOC: 10459 rows in the file, 23 integer features, label
/// `RiskPerformance` (`Bad` = 1, `Good` = 0). The 588 rows whose features are
/// all `-9` ("no bureau record") are dropped, leaving 9871, as GGDA (Appendix
/// B.1.1) and FiMO (following Wei 2021) do. Not embedded (license): found
/// through `WELLSPRING_DATA`.
pub fn heloc(dir: &DataDir) -> Result<Table> {
    let path = dir.find(DatasetName::Heloc, &["heloc_dataset_v1.csv"])?;
    let map = |s: &str| match s {
        "Bad" => Some(1),
        "Good" => Some(0),
        _ => None,
    };
    let mut t = csv_classification(&path, "heloc", "RiskPerformance", 2, Some(&map))?;
    let keep: Vec<usize> = (0..t.train.len())
        .filter(|&i| t.train.features().dense_row(i).iter().any(|&v| v != -9.0))
        .collect();
    t.train = t.train.select(&keep)?;
    t.train = t
        .train
        .with_class_names(vec!["Good".into(), "Bad".into()])?;
    Ok(t)
}

/// Breast Cancer Wisconsin (Diagnostic), scikit-learn coding: 569 rows, 30
/// features, label `target` (0 = malignant, 1 = benign).
pub fn breast_cancer(dir: &DataDir) -> Result<Table> {
    let path = dir.find(DatasetName::BreastCancer, &["breast_cancer_wisconsin.csv"])?;
    let mut t = csv_classification(&path, "breast-cancer", "target", 2, None)?;
    t.train = t
        .train
        .with_class_names(vec!["malignant".into(), "benign".into()])?;
    Ok(t)
}

/// UCI Optdigits (Alpaydin & Kaynak 1998): 3823 train / 1797 test, 64 block
/// counts in `0..=16`, label `target`. Example shape `[64]`, or `[1, 8, 8]`
/// (row-major, as the columns `pixel_r_c` are) if `image_shape`.
pub fn optdigits(dir: &DataDir, image_shape: bool) -> Result<Table> {
    let part = |file: &str, split: &str| -> Result<Table> {
        let path = dir.find(DatasetName::Optdigits, &[file])?;
        let mut t = csv_classification(&path, &format!("optdigits-{split}"), "target", 10, None)?;
        if t.feature_names.len() != 64 {
            return Err(DataError::format(
                &path,
                format!(
                    "expected 64 feature columns, found {}",
                    t.feature_names.len()
                ),
            ));
        }
        if image_shape && let Features::Dense { values, .. } = t.train.features() {
            let f = Features::Dense {
                values: values.clone(),
                shape: vec![1, 8, 8],
            };
            t.train = t.train.with_features(f)?;
        }
        t.train = t
            .train
            .with_class_names((0..10).map(|d| d.to_string()).collect())?;
        Ok(t)
    };
    let train = part("optdigits_train.csv", "train")?;
    let test = part("optdigits_test.csv", "test")?;
    Ok(Table {
        train: train.train,
        test: Some(test.train),
        feature_names: train.feature_names,
    })
}
