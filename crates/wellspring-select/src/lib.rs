//! # wellspring-select
//!
//! Data subset selection for efficient training, on plain host data (no
//! tensor library), so the model-backed training loop plugs in from outside:
//!
//! - [`Selector`]: given a [`TrainingState`] (labels, probabilities, losses,
//!   last-layer [`GradProxies`], an optional [`ValidationState`]), a
//!   [`Budget`] and a seed, return a weighted [`wellspring_core::Subset`] and
//!   [`SelectionInfo`]; [`Selector::needs`] says what the loop must compute,
//!   [`Selector::schedule`] when to call ([`SelectionSchedule`]);
//! - baselines [`FullData`], [`Random`] (fixed / adaptive);
//! - [`RandE`] (SVE, Mahmood, Yin & Khanna, Algorithm 2): entropy-weighted
//!   sampling without replacement ([`weighted_without_replacement`]);
//! - [`Craig`] (Mirzasoleiman et al. 2020): per-class lazy-greedy
//!   [`facility`] location, cluster-size weights;
//! - [`Glister`] (Killamsetty et al. 2021): greedy validation log-likelihood
//!   with Taylor-updated validation logits, naive or stochastic greedy;
//! - [`GradMatch`] (Killamsetty et al. 2021): non-negative OMP ([`omp_nonneg`])
//!   with `λ = 0.5`, per class or per batch, random fill;
//! - [`Crest`] (Yang et al. 2023): mini-batch coresets from random subsets,
//!   and [`CrestDriver`], its step-by-step quadratic-model state machine;
//! - with the default cargo feature `burn`, [`train_loop`]: the model-backed
//!   loop (`train_with_selection`, `train_with_crest`, `train_truncated_sgd`)
//!   that computes each selector's needs from a `wellspring_models::Model`,
//!   trains on the weighted subsets and times selection apart from training.
//!
//! ```
//! use wellspring_select::{Budget, RandE, Selector, TrainingState};
//! let labels = [0usize, 1, 1, 0];
//! let probs = [0.9f32, 0.1, 0.4, 0.6, 0.5, 0.5, 0.99, 0.01];
//! let state = TrainingState::new(&labels, 2)?.with_probs(&probs)?;
//! let rande = RandE::params().check()?;
//! let sel = rande.select(&state, Budget::Fraction(0.5), 7)?;
//! assert_eq!(sel.subset.len(), 2);
//! # Ok::<(), wellspring_select::SelectError>(())
//! ```

#![warn(missing_docs)]

pub mod craig;
pub mod crest;
pub mod crest_driver;
pub mod error;
pub mod facility;
pub mod glister;
pub mod gradmatch;
mod kernels;
pub mod omp;
pub mod random;
pub mod sampling;
pub mod schedule;
pub mod selector;
pub mod state;
#[cfg(feature = "burn")]
pub mod train_loop;

pub use craig::{Craig, CraigParams};
pub use crest::{Crest, CrestParams, CrestRound};
pub use crest_driver::{
    Batch, CheckOutcome, CrestAction, CrestDriver, QuadraticModel, hutchinson_diagonal, rademacher,
};
pub use error::{Result, SelectError};
pub use facility::{DenseSimilarity, FlSolution, Greedy, Metric, PointSimilarity, Similarity};
pub use glister::{Glister, GlisterGreedy, GlisterParams};
pub use gradmatch::{GradMatch, GradMatchMode, GradMatchParams, GradMatchTarget};
pub use omp::{OmpSolution, omp_nonneg};
pub use random::{EntropyWeighting, FullData, RandE, RandEParams, Random};
pub use sampling::{prediction_entropy, uniform_without_replacement, weighted_without_replacement};
pub use schedule::{Every, SelectionSchedule};
pub use selector::{Budget, Selection, SelectionInfo, Selector, class_quotas};
pub use state::{GradProxies, Needs, ProxyKind, ProxyLayout, TrainingState, ValidationState};
#[cfg(feature = "burn")]
pub use train_loop::{
    CrestLoop, CrestStats, EpochRecord, HessianDiag, LoopError, RoundRecord, SelectionRun,
    relative_error, select_with_model, train_truncated_sgd, train_with_crest, train_with_selection,
};
