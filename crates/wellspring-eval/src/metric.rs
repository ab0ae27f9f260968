//! The [`Metric`] trait every evaluation implements, the [`EvalContext`] it
//! reads its inputs from, and the explicit [`Aggregation`] that turns a score
//! matrix into one importance per training point.

use serde::{Deserialize, Serialize};
use wellspring_core::{Grouping, ScoreMatrix};

use crate::error::{EvalError, Result};
use crate::fimo::FurtherTrainingResult;
use crate::retrain::Retrainer;

/// A metric of attribution quality. It sees only a [`ScoreMatrix`] (positive =
/// helps) and an [`EvalContext`], never the method that produced the scores,
/// so every metric works for every attribution method.
pub trait Metric {
    /// Serialisable result (value plus per-test details).
    type Output: Serialize;

    /// Short stable name for reports ("lds", "removal-support", ...).
    fn name(&self) -> &str;

    /// Evaluates `scores` (`n_train × n_test`, or `n_groups × n_test` for group
    /// attributions when the context carries the grouping).
    fn evaluate(&self, scores: &ScoreMatrix, ctx: &EvalContext<'_>) -> Result<Self::Output>;
}

/// Everything a metric may need besides the scores. Build it with the
/// `with_*` methods; a metric names what it misses ([`EvalError::MissingContext`]).
#[derive(Clone, Copy, Default)]
pub struct EvalContext<'a> {
    /// Trains models on specifications (LDS, LOO, brittleness, removal).
    pub retrainer: Option<&'a dyn Retrainer>,
    /// Partition of the training set, for group attributions (GGDA).
    pub grouping: Option<&'a Grouping>,
    /// Indices of training points whose labels were flipped (noisy-label detection).
    pub flipped: Option<&'a [usize]>,
    /// Indices of poisoned training points (SVE Table 2).
    pub poisoned: Option<&'a [usize]>,
    /// Training labels (default: the retrainer's).
    pub train_labels: Option<&'a [usize]>,
    /// Test labels (default: the retrainer's).
    pub test_labels: Option<&'a [usize]>,
    /// Training subclass labels (identical-subclass test).
    pub train_subclasses: Option<&'a [usize]>,
    /// Test subclass labels (identical-subclass test).
    pub test_subclasses: Option<&'a [usize]>,
    /// Further-training runs (FiMO gold standard).
    pub further_training: Option<&'a FurtherTrainingResult>,
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field(
                "retrainer",
                &self.retrainer.map(|r| (r.n_train(), r.n_test())),
            )
            .field("grouping", &self.grouping.map(Grouping::n_groups))
            .field("flipped", &self.flipped.map(<[usize]>::len))
            .field("poisoned", &self.poisoned.map(<[usize]>::len))
            .field("further_training", &self.further_training.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> EvalContext<'a> {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a retrainer.
    pub fn with_retrainer(mut self, r: &'a dyn Retrainer) -> Self {
        self.retrainer = Some(r);
        self
    }

    /// Adds a grouping (scores then have one row per group).
    pub fn with_grouping(mut self, g: &'a Grouping) -> Self {
        self.grouping = Some(g);
        self
    }

    /// Adds the flipped-label indices.
    pub fn with_flipped(mut self, flipped: &'a [usize]) -> Self {
        self.flipped = Some(flipped);
        self
    }

    /// Adds the poisoned indices.
    pub fn with_poisoned(mut self, poisoned: &'a [usize]) -> Self {
        self.poisoned = Some(poisoned);
        self
    }

    /// Adds training and test labels (overriding the retrainer's).
    pub fn with_labels(mut self, train: &'a [usize], test: &'a [usize]) -> Self {
        self.train_labels = Some(train);
        self.test_labels = Some(test);
        self
    }

    /// Adds training and test subclass labels.
    pub fn with_subclasses(mut self, train: &'a [usize], test: &'a [usize]) -> Self {
        self.train_subclasses = Some(train);
        self.test_subclasses = Some(test);
        self
    }

    /// Adds further-training results.
    pub fn with_further_training(mut self, r: &'a FurtherTrainingResult) -> Self {
        self.further_training = Some(r);
        self
    }

    /// The retrainer, or an error naming `metric`.
    pub fn require_retrainer(&self, metric: &str) -> Result<&'a dyn Retrainer> {
        self.retrainer.ok_or_else(|| EvalError::MissingContext {
            metric: metric.into(),
            what: "a retrainer (EvalContext::with_retrainer)".into(),
        })
    }

    /// Training labels (explicit, else the retrainer's), or an error.
    pub fn require_train_labels(&self, metric: &str) -> Result<&'a [usize]> {
        self.train_labels
            .or_else(|| self.retrainer.and_then(|r| r.train_labels()))
            .ok_or_else(|| EvalError::MissingContext {
                metric: metric.into(),
                what: "training labels (EvalContext::with_labels or a classification retrainer)"
                    .into(),
            })
    }

    /// Test labels (explicit, else the retrainer's), or an error.
    pub fn require_test_labels(&self, metric: &str) -> Result<&'a [usize]> {
        self.test_labels
            .or_else(|| self.retrainer.and_then(|r| r.test_labels()))
            .ok_or_else(|| EvalError::MissingContext {
                metric: metric.into(),
                what: "test labels (EvalContext::with_labels or a classification retrainer)".into(),
            })
    }

    /// Whether `scores` are group scores: the context has a grouping and the
    /// matrix has one row per group. (With singleton groups both readings agree.)
    pub fn is_group_scores(&self, scores: &ScoreMatrix) -> bool {
        self.grouping
            .is_some_and(|g| g.n_groups() == scores.n_train())
    }
}

/// How a score matrix over a test *set* becomes one importance per training
/// point (or group): GGDA's retraining score, pruning and noisy-label
/// detection rank training points by their total attribution to the test
/// (or validation) set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregation {
    /// `Σ_j τ_ij` (default; ranks like the mean).
    #[default]
    Sum,
    /// `(1/m) Σ_j τ_ij`.
    Mean,
    /// `Σ_j |τ_ij|` (magnitude only).
    AbsSum,
}

/// One importance per row of `scores` (per training point or group).
pub fn aggregate(scores: &ScoreMatrix, how: Aggregation) -> Vec<f64> {
    let m = scores.n_test().max(1) as f64;
    (0..scores.n_train())
        .map(|i| {
            let row = scores.row(i);
            match how {
                Aggregation::Sum => row.iter().map(|&v| v as f64).sum(),
                Aggregation::Mean => row.iter().map(|&v| v as f64).sum::<f64>() / m,
                Aggregation::AbsSum => row.iter().map(|&v| (v as f64).abs()).sum(),
            }
        })
        .collect()
}
