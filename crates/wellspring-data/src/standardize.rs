//! [`Standardizer`]: per-column `z = (x - mean) / std`, fitted on a training
//! split only and applied to every split (no test-set leakage).

use wellspring_core::{CoreError, Dataset, Features, Targets};

use crate::error::{DataError, Result};

/// Per-column mean and standard deviation (population, `ddof = 0`, as
/// scikit-learn's `StandardScaler`). Constant columns get `std = 1`, and
/// columns left out of [`Standardizer::fit_columns`] get mean 0 / std 1, so
/// they pass through unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Mean of each column.
    pub mean: Vec<f32>,
    /// Standard deviation of each column (1 for constant or skipped columns).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits every column of a row-major `n × width` matrix.
    pub fn fit(values: &[f32], width: usize) -> Result<Self> {
        let all: Vec<usize> = (0..width).collect();
        Self::fit_columns(values, width, &all)
    }

    /// Fits only `columns` (others pass through), e.g. Adult's numeric columns
    /// and not its one-hot columns.
    pub fn fit_columns(values: &[f32], width: usize, columns: &[usize]) -> Result<Self> {
        if width == 0 || !values.len().is_multiple_of(width) {
            return Err(CoreError::shape(
                "standardizer input",
                format!("a non-empty multiple of width {width}"),
                values.len(),
            )
            .into());
        }
        let n = values.len() / width;
        if n == 0 {
            return Err(CoreError::Empty {
                what: "standardizer training data".into(),
            }
            .into());
        }
        if let Some(&c) = columns.iter().find(|&&c| c >= width) {
            return Err(CoreError::IndexOutOfRange {
                what: "standardizer columns".into(),
                index: c,
                len: width,
            }
            .into());
        }
        let mut mean = vec![0.0f32; width];
        let mut std = vec![1.0f32; width];
        for &c in columns {
            let col = values.iter().skip(c).step_by(width).map(|&v| v as f64);
            let m = col.clone().sum::<f64>() / n as f64;
            let var = col.map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
            let s = var.sqrt();
            mean[c] = m as f32;
            // Constant column: keep scale 1 so it maps to 0 rather than NaN.
            std[c] = if s <= 10.0 * f64::EPSILON * m.abs().max(1.0) {
                1.0
            } else {
                s as f32
            };
        }
        Ok(Self { mean, std })
    }

    /// Fits on a dataset's dense features (all columns).
    pub fn fit_features(ds: &Dataset) -> Result<Self> {
        let (values, width) = dense(ds)?;
        Self::fit(values, width)
    }

    /// Fits on a regression dataset's targets (for target standardisation).
    pub fn fit_targets(ds: &Dataset) -> Result<Self> {
        match ds.targets() {
            Targets::Regression { values, n_targets } => Self::fit(values, *n_targets),
            Targets::Classes { .. } | Targets::NextToken { .. } => Err(DataError::invalid_param(
                format!("dataset {}", ds.name()),
                "class labels or next tokens",
                "target standardisation needs regression targets",
            )),
        }
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    fn check_width(&self, what: &str, len: usize) -> Result<()> {
        if self.width() == 0 || !len.is_multiple_of(self.width()) {
            return Err(CoreError::shape(
                what.to_string(),
                format!("a multiple of the fitted width {}", self.width()),
                len,
            )
            .into());
        }
        Ok(())
    }

    /// `z = (x - mean) / std` in place on a row-major matrix of the fitted width.
    pub fn transform(&self, values: &mut [f32]) -> Result<()> {
        self.check_width("standardizer input", values.len())?;
        for row in values.chunks_exact_mut(self.width()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }

    /// `x = z * std + mean` in place (back to original units, e.g. for R² or RMSE).
    pub fn inverse_transform(&self, values: &mut [f32]) -> Result<()> {
        self.check_width("standardizer input", values.len())?;
        for row in values.chunks_exact_mut(self.width()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
        Ok(())
    }

    /// A copy of `ds` with standardised dense features.
    pub fn apply_features(&self, ds: &Dataset) -> Result<Dataset> {
        let (values, _) = dense(ds)?;
        let mut values = values.to_vec();
        self.transform(&mut values)?;
        let shape = match ds.features() {
            Features::Dense { shape, .. } => shape.clone(),
            Features::Tokens { .. } => unreachable!("dense() rejected token features"),
        };
        Ok(ds.with_features(Features::Dense { values, shape })?)
    }

    /// A copy of regression dataset `ds` with standardised targets.
    pub fn apply_targets(&self, ds: &Dataset) -> Result<Dataset> {
        let Targets::Regression { values, n_targets } = ds.targets() else {
            return Err(DataError::invalid_param(
                format!("dataset {}", ds.name()),
                "class labels",
                "target standardisation needs regression targets",
            ));
        };
        let mut values = values.clone();
        self.transform(&mut values)?;
        Ok(Dataset::new(
            ds.name(),
            ds.features().clone(),
            Targets::Regression {
                values,
                n_targets: *n_targets,
            },
        )?)
    }
}

fn dense(ds: &Dataset) -> Result<(&[f32], usize)> {
    match ds.features() {
        Features::Dense { values, shape } => Ok((values, shape.iter().product())),
        Features::Tokens { .. } => Err(DataError::invalid_param(
            format!("dataset {}", ds.name()),
            "token features",
            "standardisation needs dense features",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_columns_and_round_trip() {
        let x = vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0];
        let s = Standardizer::fit(&x, 2).unwrap();
        assert_eq!(s.mean, vec![3.0, 5.0]);
        assert_eq!(s.std[1], 1.0);
        let mut y = x.clone();
        s.transform(&mut y).unwrap();
        assert_eq!(y[1], 0.0);
        let m: f32 = [y[0], y[2], y[4]].iter().sum::<f32>() / 3.0;
        assert!(m.abs() < 1e-6);
        s.inverse_transform(&mut y).unwrap();
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-5);
        }
        let s = Standardizer::fit_columns(&x, 2, &[1]).unwrap();
        assert_eq!((s.mean[0], s.std[0]), (0.0, 1.0));
        assert!(Standardizer::fit_columns(&x, 2, &[2]).is_err());
        assert!(Standardizer::fit(&x, 4).is_err());
    }
}
