//! [`ScoreMatrix`]: the one output type of every attribution method.

use std::path::Path;

use crate::error::{CoreError, Result};
use crate::npy;

/// Attribution scores, `n_train × n_test`, `f32`, row-major (train-major).
///
/// **Orientation**: row `i` is training point `i`, column `j` is test point `j`;
/// `get(i, j)` is the score of training point `i` for test point `j`.
///
/// **Sign**: positive means training point `i` *helps* test point `j`: removing
/// it would raise the test loss (lower the margin). Every attribution method in
/// wellspring follows this convention, negating its paper's formula where the
/// paper uses the opposite one (influence functions as in Koh & Liang 2017 give
/// `-∇L_testᵀ H⁻¹ ∇L_train` for the *loss change when upweighting*; we return
/// its negation, "helpfulness").
///
/// Saved as `.npy` with shape `(n_train, n_test)`, C order, `<f4`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreMatrix {
    n_train: usize,
    n_test: usize,
    data: Vec<f32>,
}

impl ScoreMatrix {
    /// A matrix of zeros, or an error naming the shape if its size overflows.
    pub fn try_zeros(n_train: usize, n_test: usize) -> Result<Self> {
        let n = checked_size(n_train, n_test)?;
        Ok(Self {
            n_train,
            n_test,
            data: vec![0.0; n],
        })
    }

    /// A matrix of zeros. Panics if `n_train * n_test` overflows (use
    /// [`ScoreMatrix::try_zeros`] for sizes that come from user input).
    pub fn zeros(n_train: usize, n_test: usize) -> Self {
        Self {
            n_train,
            n_test,
            data: vec![0.0; n_train * n_test],
        }
    }

    /// Wraps row-major data of length `n_train * n_test`.
    pub fn from_vec(n_train: usize, n_test: usize, data: Vec<f32>) -> Result<Self> {
        let n = checked_size(n_train, n_test)?;
        if data.len() != n {
            return Err(CoreError::shape(
                "score matrix data",
                format!("length {n} ({n_train} x {n_test})"),
                format!("length {}", data.len()),
            ));
        }
        Ok(Self {
            n_train,
            n_test,
            data,
        })
    }

    /// Builds a matrix from a test-major buffer (`n_test × n_train`, row `j` =
    /// test point `j`), which is what a method that works one test point at a
    /// time naturally produces.
    pub fn from_test_major(n_train: usize, n_test: usize, data: &[f32]) -> Result<Self> {
        let n = checked_size(n_train, n_test)?;
        if data.len() != n {
            return Err(CoreError::shape(
                "test-major score data",
                format!("length {n}"),
                format!("length {}", data.len()),
            ));
        }
        let mut out = Self::zeros(n_train, n_test);
        for j in 0..n_test {
            for i in 0..n_train {
                out.data[i * n_test + j] = data[j * n_train + i];
            }
        }
        Ok(out)
    }

    /// Number of training points (rows).
    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// Number of test points (columns).
    pub fn n_test(&self) -> usize {
        self.n_test
    }

    /// `(n_train, n_test)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_train, self.n_test)
    }

    /// Score of training point `i` for test point `j`. Panics if out of range.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f32 {
        assert!(
            i < self.n_train && j < self.n_test,
            "score index out of range"
        );
        self.data[i * self.n_test + j]
    }

    /// Sets the score of training point `i` for test point `j`.
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: f32) {
        assert!(
            i < self.n_train && j < self.n_test,
            "score index out of range"
        );
        self.data[i * self.n_test + j] = v;
    }

    /// Row `i`: the scores of training point `i` for every test point.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n_test..(i + 1) * self.n_test]
    }

    /// Mutable row `i`.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.n_test..(i + 1) * self.n_test]
    }

    /// Column `j` (copied): the scores of every training point for test point `j`.
    pub fn column(&self, j: usize) -> Vec<f32> {
        assert!(j < self.n_test, "test column out of range");
        (0..self.n_train)
            .map(|i| self.data[i * self.n_test + j])
            .collect()
    }

    /// The row-major buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The mutable row-major buffer.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the matrix, returning the row-major buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Checks that no score is NaN or infinite; names the first offender.
    pub fn check_finite(&self) -> Result<()> {
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(p) => Err(CoreError::NonFinite {
                what: format!(
                    "score matrix (train {}, test {})",
                    p / self.n_test.max(1),
                    p % self.n_test.max(1)
                ),
                position: p,
                value: self.data[p] as f64,
            }),
        }
    }

    /// Indices of the `k` highest-scoring (most helpful) training points for
    /// test point `j`, best first. Ties break towards the lower index, so the
    /// result is deterministic. `k` is clamped to `n_train`.
    pub fn top_k(&self, j: usize, k: usize) -> Vec<usize> {
        top_k_of(&self.column(j), k)
    }

    /// [`ScoreMatrix::top_k`] for every test point: entry `j` is test point `j`'s list.
    pub fn top_k_all(&self, k: usize) -> Vec<Vec<usize>> {
        (0..self.n_test).map(|j| self.top_k(j, k)).collect()
    }

    /// Indices of the `k` lowest-scoring (most harmful) training points for `j`.
    pub fn bottom_k(&self, j: usize, k: usize) -> Vec<usize> {
        let neg: Vec<f32> = self.column(j).iter().map(|v| -v).collect();
        top_k_of(&neg, k)
    }

    /// Iterates over row blocks of at most `block` training points, yielding the
    /// first row index and the rows' data (`rows × n_test`, row-major).
    pub fn row_blocks(&self, block: usize) -> impl Iterator<Item = (usize, &[f32])> + '_ {
        let block = block.max(1);
        let stride = self.n_test.max(1);
        self.data
            .chunks(block * stride)
            .enumerate()
            .map(move |(b, chunk)| (b * block, chunk))
    }

    /// Copies a block of test-major scores (`cols.len()` test points starting at
    /// column `col0`, each `n_train` long) into the matrix. Attributors that
    /// compute one block of test points at a time use this to fill the result
    /// without holding a second full copy.
    pub fn write_test_block(
        &mut self,
        col0: usize,
        n_cols: usize,
        test_major: &[f32],
    ) -> Result<()> {
        let fits = col0
            .checked_add(n_cols)
            .is_some_and(|end| end <= self.n_test)
            && n_cols.checked_mul(self.n_train) == Some(test_major.len());
        if !fits {
            return Err(CoreError::shape(
                "test block",
                format!(
                    "{} x {} within {} test columns",
                    n_cols, self.n_train, self.n_test
                ),
                format!("{} values at column {col0}", test_major.len()),
            ));
        }
        for c in 0..n_cols {
            let src = &test_major[c * self.n_train..(c + 1) * self.n_train];
            for (i, v) in src.iter().enumerate() {
                self.data[i * self.n_test + col0 + c] = *v;
            }
        }
        Ok(())
    }

    /// Copies a block of train-major rows starting at training point `row0`.
    pub fn write_train_block(&mut self, row0: usize, rows: &[f32]) -> Result<()> {
        if self.n_test == 0
            || !rows.len().is_multiple_of(self.n_test)
            || row0
                .checked_mul(self.n_test)
                .and_then(|s| s.checked_add(rows.len()))
                .is_none_or(|end| end > self.data.len())
        {
            return Err(CoreError::shape(
                "train block",
                format!(
                    "whole rows of {} within {} training rows",
                    self.n_test, self.n_train
                ),
                format!("{} values at row {row0}", rows.len()),
            ));
        }
        let start = row0 * self.n_test;
        self.data[start..start + rows.len()].copy_from_slice(rows);
        Ok(())
    }

    /// Sums rows over groups: entry `(g, j)` is the sum of scores of the members
    /// of group `g` for test point `j`. This is the *additive* group score, the
    /// baseline GGDA compares its batched group gradients against.
    pub fn sum_over_groups(&self, grouping: &crate::Grouping) -> Result<ScoreMatrix> {
        if grouping.n_points() != self.n_train {
            return Err(CoreError::shape(
                "grouping",
                format!("{} training points", self.n_train),
                format!("{} points", grouping.n_points()),
            ));
        }
        let mut out = ScoreMatrix::zeros(grouping.n_groups(), self.n_test);
        for (g, members) in grouping.groups().iter().enumerate() {
            let dst = out.row_mut(g);
            for &i in members {
                for (d, s) in dst
                    .iter_mut()
                    .zip(&self.data[i * self.n_test..(i + 1) * self.n_test])
                {
                    *d += *s;
                }
            }
        }
        Ok(out)
    }

    /// Writes the matrix as `.npy` (`<f4`, shape `(n_train, n_test)`), atomically.
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        npy::write_f32(path.as_ref(), &[self.n_train, self.n_test], &self.data)
    }

    /// Reads a matrix written by [`ScoreMatrix::save_npy`] (or numpy, `<f4`, 2-D, C order).
    pub fn load_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (shape, data) = npy::read_f32(path)?;
        if shape.len() != 2 {
            return Err(CoreError::Npy {
                path: path.to_path_buf(),
                reason: format!("expected a 2-D array, found shape {shape:?}"),
            });
        }
        Self::from_vec(shape[0], shape[1], data)
    }
}

/// `n_train * n_test`, or an error naming the shape when it overflows.
fn checked_size(n_train: usize, n_test: usize) -> Result<usize> {
    n_train.checked_mul(n_test).ok_or_else(|| {
        CoreError::invalid_param(
            "score matrix shape",
            format!("{n_train} x {n_test}"),
            "the number of scores overflows usize",
        )
    })
}

/// Indices of the `k` largest values, largest first, ties to the lower index.
/// NaN sorts last.
pub fn top_k_of(values: &[f32], k: usize) -> Vec<usize> {
    let k = k.min(values.len());
    let mut idx: Vec<usize> = (0..values.len()).collect();
    let cmp = |a: &usize, b: &usize| {
        let (va, vb) = (values[*a], values[*b]);
        match (va.is_nan(), vb.is_nan()) {
            (true, true) => a.cmp(b),
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => vb.partial_cmp(&va).unwrap().then(a.cmp(b)),
        }
    };
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx
}

/// Ranks training points by `values`, most important first (ties to lower index).
pub fn argsort_desc(values: &[f32]) -> Vec<usize> {
    top_k_of(values, values.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn orientation_and_topk() {
        // 3 train x 2 test
        let m = ScoreMatrix::from_vec(3, 2, vec![1.0, -1.0, 3.0, 0.0, 2.0, 5.0]).unwrap();
        assert_eq!(m.get(1, 0), 3.0);
        assert_eq!(m.top_k(0, 2), vec![1, 2]);
        assert_eq!(m.top_k(1, 1), vec![2]);
        assert_eq!(m.bottom_k(1, 1), vec![0]);
        assert_eq!(m.column(1), vec![-1.0, 0.0, 5.0]);
        let t = ScoreMatrix::from_test_major(3, 2, &[1.0, 3.0, 2.0, -1.0, 0.0, 5.0]).unwrap();
        assert_eq!(t, m);
    }

    #[test]
    fn wrong_length_is_an_error() {
        let e = ScoreMatrix::from_vec(3, 2, vec![0.0; 5]).unwrap_err();
        assert!(e.to_string().contains("length 6"), "{e}");
    }

    #[test]
    fn huge_shapes_are_errors_not_panics() {
        let e = ScoreMatrix::from_vec(usize::MAX, 2, vec![0.0; 4]).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        assert!(ScoreMatrix::from_test_major(2, usize::MAX, &[]).is_err());
        assert!(ScoreMatrix::try_zeros(usize::MAX, usize::MAX).is_err());
        let mut m = ScoreMatrix::zeros(2, 2);
        assert!(m.write_test_block(usize::MAX, 2, &[0.0; 4]).is_err());
        assert!(m.write_train_block(usize::MAX, &[0.0; 2]).is_err());
        // A crafted .npy header with a shape whose size overflows.
        let dir = tempfile::tempdir().unwrap();
        for shape in [
            "(18446744073709551615, 2)",
            "(4611686018427387904, 1)",
            "(4294967296, 4294967296)",
        ] {
            let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            h.push_str(&" ".repeat((64 - (11 + h.len()) % 64) % 64));
            h.push('\n');
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(h.len() as u16).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            b.extend_from_slice(&[0u8; 16]);
            let p = dir.path().join("huge.npy");
            std::fs::write(&p, &b).unwrap();
            let e = ScoreMatrix::load_npy(&p).unwrap_err().to_string();
            assert!(
                e.contains("huge.npy") && e.contains(shape.trim_matches(['(', ')'])),
                "{e}"
            );
        }
    }

    #[test]
    fn non_finite_is_named() {
        let m = ScoreMatrix::from_vec(2, 2, vec![0.0, 1.0, f32::NAN, 0.0]).unwrap();
        let e = m.check_finite().unwrap_err().to_string();
        assert!(e.contains("train 1, test 0"), "{e}");
    }

    #[test]
    fn npy_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let m = ScoreMatrix::from_vec(3, 2, vec![1.0, -1.0, 3.0, 0.5, 2.0, 5.0]).unwrap();
        let p = dir.path().join("s.npy");
        m.save_npy(&p).unwrap();
        assert_eq!(ScoreMatrix::load_npy(&p).unwrap(), m);
    }

    proptest! {
        #[test]
        fn top_k_matches_full_sort(values in proptest::collection::vec(-100i32..100, 1..60), k in 0usize..70) {
            let v: Vec<f32> = values.iter().map(|x| *x as f32).collect();
            let got = top_k_of(&v, k);
            let mut all: Vec<usize> = (0..v.len()).collect();
            all.sort_by(|a, b| v[*b].partial_cmp(&v[*a]).unwrap().then(a.cmp(b)));
            all.truncate(k.min(v.len()));
            prop_assert_eq!(got, all);
        }

        #[test]
        fn blocks_cover_matrix(n_train in 1usize..20, n_test in 1usize..5, block in 1usize..8) {
            let data: Vec<f32> = (0..n_train * n_test).map(|x| x as f32).collect();
            let m = ScoreMatrix::from_vec(n_train, n_test, data.clone()).unwrap();
            let mut seen = Vec::new();
            for (row0, chunk) in m.row_blocks(block) {
                prop_assert_eq!(row0 * n_test, seen.len());
                seen.extend_from_slice(chunk);
            }
            prop_assert_eq!(seen, data);
        }
    }
}
