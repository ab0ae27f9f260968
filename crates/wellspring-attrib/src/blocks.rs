//! Block-wise assembly of score matrices: methods compute one block of test
//! points at a time (test-major, `cols × n_train`), so a `50 000 × 10 000`
//! matrix never exists twice, and group scores are summed block by block
//! without ever holding the per-point matrix.

use rayon::prelude::*;
use wellspring_core::{CoreError, Grouping, ScoreMatrix};

use crate::error::Result;
use crate::traits::check_grouping;

/// Values per test block buffer (64 MiB of `f32`).
pub const BLOCK_VALUES: usize = 1 << 24;

/// Test points per block for `n_train` training points.
pub fn block_cols(n_train: usize) -> usize {
    (BLOCK_VALUES / n_train.max(1)).max(1)
}

/// Computes a test-major block of `cols` columns in parallel: `col(j, out)`
/// fills the `n_train` scores of test point `col0 + j` into `out`.
pub fn par_columns(
    n_train: usize,
    cols: usize,
    col: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut block = vec![0.0f32; n_train * cols];
    if n_train > 0 {
        block
            .par_chunks_mut(n_train)
            .enumerate()
            .for_each(|(j, out)| col(j, out));
    }
    block
}

fn check_block(method: &str, n_train: usize, col0: usize, block: &[f32]) -> Result<()> {
    if let Some(p) = block.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            what: format!(
                "{method} scores (train {}, test {})",
                p % n_train.max(1),
                col0 + p / n_train.max(1)
            ),
            position: p,
            value: block[p] as f64,
        }
        .into());
    }
    Ok(())
}

/// Assembles `n_train × n_test` from test blocks: `block(col0, cols)` returns
/// the test-major scores of test points `col0..col0 + cols`. Every block is
/// checked to be finite (the error names the method, train and test index).
pub fn by_test_blocks(
    method: &str,
    n_train: usize,
    n_test: usize,
    mut block: impl FnMut(usize, usize) -> Result<Vec<f32>>,
) -> Result<ScoreMatrix> {
    let mut out = ScoreMatrix::try_zeros(n_train, n_test)?;
    let step = block_cols(n_train);
    let mut col0 = 0;
    while col0 < n_test {
        let cols = step.min(n_test - col0);
        let b = block(col0, cols)?;
        check_block(method, n_train, col0, &b)?;
        out.write_test_block(col0, cols, &b)?;
        col0 += cols;
    }
    Ok(out)
}

/// Like [`by_test_blocks`] but sums the rows of each block over the groups of
/// `grouping` (`n_groups × n_test`); singleton groups reproduce the per-point
/// scores exactly.
pub fn groups_by_test_blocks(
    method: &str,
    grouping: &Grouping,
    n_train: usize,
    n_test: usize,
    mut block: impl FnMut(usize, usize) -> Result<Vec<f32>>,
) -> Result<ScoreMatrix> {
    check_grouping(grouping, n_train)?;
    let n_groups = grouping.n_groups();
    let mut out = ScoreMatrix::try_zeros(n_groups, n_test)?;
    let step = block_cols(n_train);
    let mut col0 = 0;
    while col0 < n_test {
        let cols = step.min(n_test - col0);
        let b = block(col0, cols)?;
        check_block(method, n_train, col0, &b)?;
        let mut sums = vec![0.0f32; n_groups * cols];
        for c in 0..cols {
            let col = &b[c * n_train..(c + 1) * n_train];
            for (g, members) in grouping.groups().iter().enumerate() {
                sums[c * n_groups + g] = members.iter().map(|&i| col[i]).sum();
            }
        }
        out.write_test_block(col0, cols, &sums)?;
        col0 += cols;
    }
    Ok(out)
}

/// Checks a self-influence vector is finite (names method and training index).
pub fn check_self(method: &str, values: &[f32]) -> Result<()> {
    if let Some(p) = values.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            what: format!("{method} self-influence (train {p})"),
            position: p,
            value: values[p] as f64,
        }
        .into());
    }
    Ok(())
}
