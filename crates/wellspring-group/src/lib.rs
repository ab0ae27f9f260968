//! # wellspring-group
//!
//! Groupers for generalized group data attribution (GGDA, §5.2 and App. B.2):
//! partitions of the training set into groups whose members are attributed
//! together. Host-only: groupers take plain row-major matrices ([`Points`]),
//! never a model; the model-dependent extraction (penultimate features,
//! gradients w.r.t. the pre-classification activations) lives in
//! `wellspring-attrib` (`wellspring_attrib::grouping`).
//!
//! | grouper | GGDA name | points to cluster |
//! |---|---|---|
//! | [`RandomGrouping`] | Random | none (equal-size seeded groups) |
//! | [`KMeansParams`] | K-Means | raw inputs |
//! | [`KMeansParams`] | Repr-K-Means | penultimate features |
//! | [`KMeansParams`] | Grad-K-Means | `∂L/∂h = (p − onehot(y)) Wᵀ` per point |
//!
//! K-means follows GGDA App. B.2: inputs whitened (per-feature
//! standardisation, [`Whitening`]), k-means++ seeding, Lloyd iterations until
//! the total squared centre shift is at most `1e-3 ×` the mean feature variance
//! (scikit-learn's convention) or 60 iterations, empty clusters re-seeded
//! from the farthest point, so every group is non-empty.
//!
//! ```
//! use wellspring_group::{GroupAmount, Grouper, KMeansParams, Points};
//! let x = [0.0f32, 0.1, 0.2, 10.0, 10.1, 10.2];
//! let fit = KMeansParams::new(GroupAmount::Groups(2)).seed(1).fit(Points::new(&x, 6, 1)?)?;
//! let g = &fit.grouping;
//! assert!(g.group_of(0) == g.group_of(2) && g.group_of(3) == g.group_of(5));
//! assert_ne!(g.group_of(0), g.group_of(3));
//! assert!(fit.info.converged);
//! # Ok::<(), wellspring_group::GroupError>(())
//! ```

#![warn(missing_docs)]

mod dense;
pub mod error;
pub mod kmeans;
pub mod points;
pub mod random;

pub use dense::Whitening;
pub use error::{GroupError, Result};
pub use kmeans::{KMeansFit, KMeansInfo, KMeansParams};
pub use points::{GroupAmount, Points};
pub use random::RandomGrouping;
pub use wellspring_core::Grouping;

/// Something that partitions the rows of a point matrix into groups.
pub trait Grouper {
    /// Short stable name ("random", "kmeans").
    fn name(&self) -> &str;

    /// A partition of `0..points.n()` into non-empty groups.
    fn group(&self, points: Points<'_>) -> Result<Grouping>;
}
