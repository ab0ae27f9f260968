//! The [`Attributor`] / [`FittedAttributor`] pair (linfa's fit-then-use
//! shape) and its object-safe layer [`DynAttributor`].

use wellspring_core::{Dataset, Grouping, ScoreMatrix};

use crate::error::{AttribError, Result};
use crate::source::ModelSource;

/// Checked hyper-parameters of an attribution method. `fit` checks them
/// first, then caches everything that depends only on the training side
/// (features, gradients, a refitted head, …) in the returned fitted value.
pub trait Attributor {
    /// The fitted attributor.
    type Fitted: FittedAttributor + 'static;

    /// Checks the parameters, then fits on `source` and the training set `train`.
    fn fit(&self, source: &ModelSource, train: &Dataset) -> Result<Self::Fitted>;
}

/// A fitted attribution method: scores any test set against the training set
/// it was fitted on.
///
/// Orientation and sign are those of [`ScoreMatrix`]: `n_train × n_test`,
/// positive = the training point helps the test prediction.
pub trait FittedAttributor: Send + Sync {
    /// Short stable method name (`"pae"`, `"rps"`, ...), as in the registry.
    fn name(&self) -> &str;

    /// Number of training points (rows of every score matrix).
    fn n_train(&self) -> usize;

    /// Scores of every training point for every test point, `n_train × n_test`.
    /// Errors if `test` does not match the training data (feature width or
    /// kind, task) or the model; every returned score is finite.
    fn attribute(&self, test: &Dataset) -> Result<ScoreMatrix>;

    /// Self-influence: the score of each training point for itself (`n_train`).
    fn self_attribute(&self) -> Result<Vec<f32>>;

    /// Group scores, `n_groups × n_test`. The default sums per-point scores
    /// over each group (the additive group score); methods with a genuine
    /// group formulation (GGDA's batched group gradients) override it.
    /// Singleton groups give exactly the per-point scores.
    fn attribute_groups(&self, grouping: &Grouping, test: &Dataset) -> Result<ScoreMatrix> {
        check_grouping(grouping, self.n_train())?;
        Ok(self.attribute(test)?.sum_over_groups(grouping)?)
    }
}

/// Object-safe fitting, for the registry, the CLI and metric harnesses that
/// hold methods by name: `Box<dyn DynAttributor>` fits into a
/// `Box<dyn FittedAttributor>`. Blanket-implemented for every [`Attributor`].
pub trait DynAttributor: Send + Sync {
    /// [`Attributor::fit`], boxed.
    fn fit_dyn(&self, source: &ModelSource, train: &Dataset) -> Result<Box<dyn FittedAttributor>>;
}

impl<A> DynAttributor for A
where
    A: Attributor + Send + Sync,
{
    fn fit_dyn(&self, source: &ModelSource, train: &Dataset) -> Result<Box<dyn FittedAttributor>> {
        Ok(Box::new(self.fit(source, train)?))
    }
}

/// Checks that `grouping` covers exactly `n_train` training points.
pub fn check_grouping(grouping: &Grouping, n_train: usize) -> Result<()> {
    if grouping.n_points() != n_train {
        return Err(AttribError::invalid_param(
            "grouping",
            format!(
                "{} points in {} groups",
                grouping.n_points(),
                grouping.n_groups()
            ),
            format!("the attributor was fitted on {n_train} training points"),
        ));
    }
    Ok(())
}

/// Attributes `test` in chunks of `chunk` test points, calling `progress`
/// with the number of test points done after each chunk, and assembles the
/// full matrix (`n_train × n_test`, or `n_groups × n_test` with a grouping).
/// Works for any method, since test points are scored independently; the CLI
/// uses it for its progress bars.
pub fn attribute_in_chunks(
    fitted: &dyn FittedAttributor,
    test: &Dataset,
    chunk: usize,
    grouping: Option<&Grouping>,
    progress: &mut dyn FnMut(usize),
) -> Result<ScoreMatrix> {
    let rows = score_rows(fitted, grouping)?;
    let mut out = ScoreMatrix::try_zeros(rows, test.len())?;
    attribute_streaming(
        fitted,
        test,
        chunk,
        grouping,
        &mut |col0, block| {
            let cols = block.len() / rows.max(1);
            Ok(out.write_test_block(col0, cols, block)?)
        },
        progress,
    )?;
    Ok(out)
}

/// Rows of the score matrix of `fitted`: its training points, or the groups.
pub fn score_rows(fitted: &dyn FittedAttributor, grouping: Option<&Grouping>) -> Result<usize> {
    Ok(match grouping {
        Some(g) => {
            check_grouping(g, fitted.n_train())?;
            g.n_groups()
        }
        None => fitted.n_train(),
    })
}

/// Like [`attribute_in_chunks`], but hands each chunk to `sink` as soon as it
/// is scored, test-major (`cols × rows`: all scores of one test point
/// together, the layout [`wellspring_core::ScoreNpyWriter`] and
/// [`wellspring_core::StreamingTopK`] take) with its first test index, and
/// never holds more than one chunk: peak memory does not grow with the test
/// set. Every block is checked to be finite (the error names the method, the
/// training row and the test point). Returns the number of rows.
pub fn attribute_streaming(
    fitted: &dyn FittedAttributor,
    test: &Dataset,
    chunk: usize,
    grouping: Option<&Grouping>,
    sink: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    progress: &mut dyn FnMut(usize),
) -> Result<usize> {
    if chunk == 0 {
        return Err(AttribError::invalid_param("chunk", 0, "must be at least 1"));
    }
    if test.is_empty() {
        return Err(AttribError::mismatch(test.name(), "the test set is empty"));
    }
    let rows = score_rows(fitted, grouping)?;
    let n_test = test.len();
    let mut col0 = 0;
    let mut block = Vec::new();
    while col0 < n_test {
        let cols = chunk.min(n_test - col0);
        let idx: Vec<usize> = (col0..col0 + cols).collect();
        let part = test.select(&idx)?;
        let s = match grouping {
            Some(g) => fitted.attribute_groups(g, &part)?,
            None => fitted.attribute(&part)?,
        };
        if s.shape() != (rows, cols) {
            return Err(AttribError::Solver {
                solver: fitted.name().to_string(),
                reason: format!(
                    "returned a {:?} score block, expected {:?}",
                    s.shape(),
                    (rows, cols)
                ),
            });
        }
        block.clear();
        block.resize(rows * cols, 0.0);
        for (r, row) in s.as_slice().chunks(cols).enumerate() {
            for (c, v) in row.iter().enumerate() {
                block[c * rows + r] = *v;
            }
        }
        drop(s);
        if let Some(p) = block.iter().position(|v| !v.is_finite()) {
            return Err(wellspring_core::CoreError::NonFinite {
                what: format!(
                    "{} scores (row {}, test point {})",
                    fitted.name(),
                    p % rows.max(1),
                    col0 + p / rows.max(1)
                ),
                position: p,
                value: block[p] as f64,
            }
            .into());
        }
        sink(col0, &block)?;
        col0 += cols;
        progress(col0);
    }
    Ok(rows)
}
