//! # wellspring-eval
//!
//! Metrics of attribution quality on plain host data. Nothing here depends on
//! a tensor library: a metric sees a [`ScoreMatrix`] (`n_train × n_test`,
//! positive = the training point helps the test prediction) and an
//! [`EvalContext`], and trains models only through the [`Retrainer`] trait.
//!
//! | metric | paper | type |
//! |---|---|---|
//! | linear datamodeling score | Ilyas et al. 2022; Park et al. 2023 (TRAK) eq. 8; brittleness §2.1 | [`Lds`] |
//! | leave-one-out correlation | Koh & Liang 2017 | [`LooCorrelation`] |
//! | data removal / mislabel support, bisection, CDF AUC | brittleness §2.1, App. A.6 | [`Brittleness`], [`bisect_support`] |
//! | retraining score, dataset pruning | GGDA §5.4.1–5.4.2 | [`RetrainingScore`], [`DatasetPruning`] |
//! | noisy-label detection AUC | GGDA §5.4.3 | [`NoisyLabelDetection`] |
//! | further-training gold standard, cosine | FiMO §3, §6, App. D | [`FurtherTrainingResult`], [`FimoComparison`] |
//! | exemplars, poisoned share, identical class/subclass | SVE §4.1–4.2, Fig. 7 | [`ExemplarCount`], [`IdenticalClass`] |
//!
//! Retraining is the cost of every counterfactual metric. [`LinearRetrainer`]
//! is a real, cheap implementation (L2-regularised softmax / ridge regression
//! solved to a tight tolerance in pure Rust) for tests and for users without
//! burn; the burn-backed harness implements the same trait with caching.
//!
//! ```
//! use wellspring_core::{Dataset, Features, ScoreMatrix, Targets};
//! use wellspring_eval::{EvalContext, Lds, LinearParams, LinearRetrainer, Metric};
//!
//! let xs: Vec<f32> = (0..40).map(|i| ((i * 37 % 17) as f32 - 8.0) / 4.0).collect();
//! let labels: Vec<usize> = xs.chunks(2).map(|r| (r[0] + r[1] > 0.0) as usize).collect();
//! let ds = Dataset::new("toy", Features::Dense { values: xs, shape: vec![2] },
//!                       Targets::Classes { labels, n_classes: 2 })?;
//! let train = ds.select(&(0..15).collect::<Vec<_>>())?;
//! let test = ds.select(&(15..20).collect::<Vec<_>>())?;
//! let retrainer = LinearRetrainer::new(&train, &test, LinearParams::new())?;
//! let scores = ScoreMatrix::zeros(15, 5); // an attribution method's output
//! let ctx = EvalContext::new().with_retrainer(&retrainer);
//! let lds = Lds::params().m(10).alpha(0.5).evaluate(&scores, &ctx)?;
//! assert!(lds.per_test.iter().all(|r| r.is_none())); // constant scores: undefined
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Adding a metric
//!
//! 1. Create `src/<metric>.rs` with a params struct (builder methods plus a
//!    `check()` that returns [`EvalError::InvalidParam`] naming the bad value)
//!    and a serde-serialisable result struct (value plus per-test details).
//! 2. `impl Metric for <Params>`: `name()` is a short stable id; `evaluate`
//!    checks the score shape (`n_train × n_test`, or `n_groups × n_test` when
//!    [`EvalContext::is_group_scores`]), takes what it needs from the context
//!    (`require_retrainer`, `require_test_labels`, ...; missing inputs are
//!    [`EvalError::MissingContext`]) and trains only through
//!    [`Retrainer::retrain_many`], so the model-backed harness can batch and
//!    cache. Put expensive retraining in a reusable "ground truth" value if
//!    several methods will be scored against it (see [`LdsGroundTruth`]).
//! 3. Add `mod` and `pub use` lines here and a row to the table above; add
//!    unit tests beside the code and, if it retrains, a test with
//!    [`LinearRetrainer`] in `tests/it/`.

#![warn(missing_docs)]

pub mod brittleness;
pub mod error;
pub mod exemplar;
pub mod fimo;
pub mod lds;
pub mod linear;
pub mod loo;
pub mod metric;
#[cfg(feature = "burn")]
pub mod model;
pub mod noisy;
pub mod removal;
pub mod retrain;
pub mod search;
#[cfg(feature = "burn")]
pub mod ssl;
pub mod stats;

pub use brittleness::{
    Brittleness, BrittlenessResult, CandidatePool, CdfScale, MeasuredProbe, Strategy, SupportCdf,
    SupportKind, TestSupport,
};
pub use error::{EvalError, Result};
pub use exemplar::{ExemplarCount, ExemplarReport, IdenticalClass, IdenticalReport, top_k_counts};
pub use fimo::{
    Adjustment, EpochCosine, FimoComparison, FimoReport, FurtherTrainer, FurtherTrainingParams,
    FurtherTrainingResult, SeedsCosine, run_further_training,
};
pub use lds::{Lds, LdsGroundTruth, LdsResult};
pub use linear::{LinearFurtherTrainer, LinearModel, LinearParams, LinearRetrainer, SgdParams};
pub use loo::{CorrelationReport, LooCorrelation, LooGroundTruth, LooPoints, LooResult};
pub use metric::{Aggregation, EvalContext, Metric, aggregate};
#[cfg(feature = "burn")]
pub use model::{
    DEFAULT_PARALLELISM, ModelFurtherTrainer, ModelRetrainer, SubsetRetrainer, data_fingerprint,
    model_fingerprint, outputs_from_logits,
};
pub use noisy::{DetectionResult, NoisyLabelDetection, Order};
pub use removal::{
    DatasetPruning, Ranking, RemovalParams, RemovalPoint, RemovalReport, RetrainingScore, Which,
    removal_set,
};
pub use retrain::{Output, RetrainSpec, Retrainer, TestOutputs, model_seeds};
pub use search::{
    Bisection, LinearScan, Probe, SearchOutcome, SupportSearch, bisect_support,
    linear_scan_support, run_search,
};
#[cfg(feature = "burn")]
pub use ssl::CachedSimClr;
pub use stats::{Summary, cosine, kendall_tau_b, pearson, spearman};
pub use wellspring_core::ScoreMatrix;
