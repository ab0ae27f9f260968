//! [`Subset`]: which training points to use, with optional per-sample weights.

use crate::error::{CoreError, Result};

/// A selection of training points, optionally weighted (coresets, reweighted
/// retraining). Indices refer to the full training set; duplicates are allowed
/// (bootstrap), but [`Subset::check_unique`] rejects them where a method needs a set.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Subset {
    indices: Vec<usize>,
    weights: Option<Vec<f32>>,
}

impl Subset {
    /// An unweighted subset, checked against a training set of `n` points.
    pub fn new(indices: Vec<usize>, n: usize) -> Result<Self> {
        let s = Self {
            indices,
            weights: None,
        };
        s.check(n)?;
        Ok(s)
    }

    /// A weighted subset, checked: weights must match the indices in length and
    /// be finite and non-negative.
    pub fn weighted(indices: Vec<usize>, weights: Vec<f32>, n: usize) -> Result<Self> {
        let s = Self {
            indices,
            weights: Some(weights),
        };
        s.check(n)?;
        Ok(s)
    }

    /// Every point of a set of `n`, unweighted.
    pub fn all(n: usize) -> Self {
        Self {
            indices: (0..n).collect(),
            weights: None,
        }
    }

    /// Checks indices and weights against a training set of `n` points.
    pub fn check(&self, n: usize) -> Result<()> {
        if self.indices.is_empty() {
            return Err(CoreError::Empty {
                what: "subset".into(),
            });
        }
        if let Some(&bad) = self.indices.iter().find(|&&i| i >= n) {
            return Err(CoreError::IndexOutOfRange {
                what: "subset".into(),
                index: bad,
                len: n,
            });
        }
        if let Some(w) = &self.weights {
            if w.len() != self.indices.len() {
                return Err(CoreError::shape(
                    "subset weights",
                    format!("one weight per index ({})", self.indices.len()),
                    format!("{} weights", w.len()),
                ));
            }
            if let Some(p) = w.iter().position(|v| !v.is_finite() || *v < 0.0) {
                return Err(CoreError::invalid_param(
                    format!("subset weight {p} (training point {})", self.indices[p]),
                    w[p],
                    "weights must be finite and non-negative",
                ));
            }
        }
        Ok(())
    }

    /// Errors if an index occurs twice.
    pub fn check_unique(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::with_capacity(self.indices.len());
        for &i in &self.indices {
            if !seen.insert(i) {
                return Err(CoreError::DuplicateIndex {
                    what: "subset".into(),
                    index: i,
                });
            }
        }
        Ok(())
    }

    /// The indices.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The weights, if any.
    pub fn weights(&self) -> Option<&[f32]> {
        self.weights.as_deref()
    }

    /// Weight of the `k`-th selected point (1 if unweighted).
    pub fn weight(&self, k: usize) -> f32 {
        self.weights.as_ref().map_or(1.0, |w| w[k])
    }

    /// Number of selected points.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True if nothing is selected (never true for a checked subset).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The complement within `0..n` (unweighted), in increasing order.
    pub fn complement(&self, n: usize) -> Vec<usize> {
        let mut keep = vec![true; n];
        for &i in &self.indices {
            if i < n {
                keep[i] = false;
            }
        }
        (0..n).filter(|&i| keep[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_subsets_are_named() {
        assert!(
            Subset::new(vec![], 5)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let e = Subset::new(vec![1, 6000], 5000).unwrap_err().to_string();
        assert!(e.contains("6000") && e.contains("5000"), "{e}");
        let e = Subset::weighted(vec![1, 2], vec![1.0], 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weights"), "{e}");
        let e = Subset::weighted(vec![1, 2], vec![1.0, -0.5], 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-0.5") && e.contains("training point 2"), "{e}");
        assert!(Subset::new(vec![1, 1], 5).unwrap().check_unique().is_err());
        assert_eq!(
            Subset::new(vec![1, 3], 5).unwrap().complement(5),
            vec![0, 2, 4]
        );
    }
}
