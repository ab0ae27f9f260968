//! Streaming score output: write a score matrix to disk block by block, and
//! keep each test point's top-k, so peak memory does not grow with `n_test`.
//!
//! Attribution methods produce scores one block of test points at a time,
//! test-major (`cols × n_train`: all training scores of one test point
//! together). [`ScoreNpyWriter`] appends those blocks to a `.npy` file of
//! shape `(n_train, n_test)` stored in *column-major* (Fortran) order, in
//! which each test point's column is contiguous, so every block is one
//! sequential write. NumPy and [`crate::ScoreMatrix::load_npy`] read it as
//! the usual `n_train × n_test` matrix. The file is written to a temporary
//! sibling and renamed into place by [`ScoreNpyWriter::finish`], so a killed
//! run never leaves a truncated `scores.npy`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};
use crate::npy::{NpyElement, checked_len, header};
use crate::score::top_k_of;

/// Writes an `n_train × n_test` `<f4` `.npy` file from test-major blocks.
#[derive(Debug)]
pub struct ScoreNpyWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    n_train: usize,
    n_test: usize,
    done: usize,
}

impl ScoreNpyWriter {
    /// Starts `path` for an `n_train × n_test` matrix. Errors if the shape's
    /// byte size overflows or the file cannot be created.
    pub fn create(path: impl AsRef<Path>, n_train: usize, n_test: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if checked_len(&[n_train, n_test, f32::SIZE]).is_none() {
            return Err(CoreError::invalid_param(
                "score matrix shape",
                format!("{n_train} x {n_test}"),
                "its size in bytes overflows",
            ));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.partial.{}", std::process::id()));
        let f = File::create(&tmp).map_err(|e| CoreError::io(&tmp, e))?;
        let mut file = BufWriter::with_capacity(1 << 20, f);
        file.write_all(&header::<f32>(&[n_train, n_test], true))
            .map_err(|e| CoreError::io(&tmp, e))?;
        Ok(Self {
            path,
            tmp,
            file: Some(file),
            n_train,
            n_test,
            done: 0,
        })
    }

    /// Test points written so far.
    pub fn columns_written(&self) -> usize {
        self.done
    }

    /// Appends the next block: `test_major.len() / n_train` whole test points,
    /// each its `n_train` scores. Errors on a partial column or one past `n_test`.
    pub fn write_test_block(&mut self, test_major: &[f32]) -> Result<()> {
        let n = self.n_train.max(1);
        let cols = test_major.len() / n;
        if !test_major.len().is_multiple_of(n) || cols > self.n_test - self.done {
            return Err(CoreError::shape(
                format!("score block for {}", self.path.display()),
                format!(
                    "whole columns of {} scores, at most {} more test points",
                    self.n_train,
                    self.n_test - self.done
                ),
                format!("{} values", test_major.len()),
            ));
        }
        let file = self.file.as_mut().expect("present until finish or drop");
        let mut buf = Vec::with_capacity(4 * 65536);
        for chunk in test_major.chunks(65536) {
            buf.clear();
            chunk.iter().for_each(|v| v.write_le(&mut buf));
            file.write_all(&buf)
                .map_err(|e| CoreError::io(&self.tmp, e))?;
        }
        self.done += cols;
        Ok(())
    }

    /// Checks every test point was written, syncs and renames into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        if self.done != self.n_test {
            return Err(CoreError::shape(
                format!("scores streamed to {}", self.path.display()),
                format!("{} test points", self.n_test),
                format!("{} written", self.done),
            ));
        }
        let file = self.file.take().expect("present until finish or drop");
        let tmp = self.tmp.clone();
        let f = file
            .into_inner()
            .map_err(|e| CoreError::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| CoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| CoreError::io(&self.path, e))?;
        Ok(self.path.clone())
    }
}

impl Drop for ScoreNpyWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The `k` highest-scoring training points of each test point, collected
/// from test-major blocks as they stream past (each block holds whole
/// columns, so no merging is needed): `k × n_test` memory, not `n_train × n_test`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamingTopK {
    k: usize,
    n_train: usize,
    lists: Vec<Vec<(usize, f32)>>,
}

impl StreamingTopK {
    /// Keeps the top `k` of `n_train` scores per test point.
    pub fn new(k: usize, n_train: usize) -> Self {
        Self {
            k,
            n_train,
            lists: Vec::new(),
        }
    }

    /// Takes the next test points' columns (test-major, `cols × n_train`).
    pub fn push_test_block(&mut self, test_major: &[f32]) -> Result<()> {
        let n = self.n_train.max(1);
        if !test_major.len().is_multiple_of(n) {
            return Err(CoreError::shape(
                "top-k score block",
                format!("whole columns of {} scores", self.n_train),
                format!("{} values", test_major.len()),
            ));
        }
        for col in test_major.chunks(n) {
            let top = top_k_of(col, self.k);
            self.lists
                .push(top.into_iter().map(|i| (i, col[i])).collect());
        }
        Ok(())
    }

    /// Per test point (in order), its `(train index, score)` list, best first;
    /// the same as [`crate::ScoreMatrix::top_k`] on the full matrix.
    pub fn into_lists(self) -> Vec<Vec<(usize, f32)>> {
        self.lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScoreMatrix;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn streamed_file_and_top_k_match_the_full_matrix(
            n_train in 1usize..9, n_test in 1usize..9, step in 1usize..5, k in 1usize..4,
            seed in 0u64..1000,
        ) {
            let vals: Vec<f32> = (0..n_train * n_test)
                .map(|x| ((x as u64 * 2654435761 + seed) % 97) as f32 - 48.0)
                .collect();
            let m = ScoreMatrix::from_vec(n_train, n_test, vals).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("s.npy");
            let mut w = ScoreNpyWriter::create(&p, n_train, n_test).unwrap();
            let mut top = StreamingTopK::new(k, n_train);
            let mut c0 = 0;
            while c0 < n_test {
                let cols = step.min(n_test - c0);
                let block: Vec<f32> = (c0..c0 + cols).flat_map(|j| m.column(j)).collect();
                w.write_test_block(&block).unwrap();
                top.push_test_block(&block).unwrap();
                c0 += cols;
            }
            w.finish().unwrap();
            prop_assert_eq!(ScoreMatrix::load_npy(&p).unwrap(), m.clone());
            let lists = top.into_lists();
            for (j, l) in lists.iter().enumerate() {
                let idx: Vec<usize> = l.iter().map(|x| x.0).collect();
                prop_assert_eq!(idx, m.top_k(j, k));
            }
        }
    }

    #[test]
    fn unfinished_or_overfull_streams_are_errors_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.npy");
        let mut w = ScoreNpyWriter::create(&p, 3, 2).unwrap();
        w.write_test_block(&[1.0, 2.0, 3.0]).unwrap();
        let e = w.write_test_block(&[0.0; 4]).unwrap_err().to_string();
        assert!(e.contains("whole columns of 3"), "{e}");
        let e = w.write_test_block(&[0.0; 6]).unwrap_err().to_string();
        assert!(e.contains("at most 1 more"), "{e}");
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("1 written"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let e = ScoreNpyWriter::create(&p, usize::MAX, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows"), "{e}");
    }
}
