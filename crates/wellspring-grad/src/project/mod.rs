//! Random projections of gradients, all seeded and reproducible (TracIn
//! appendix E–F, Pruthi et al. 2020; TRAK, Park et al. 2023):
//!
//! - [`Identity`]: no projection;
//! - [`DenseProjector`]: Gaussian `N(0, 1/k)` or Rademacher `±1/√k` entries,
//!   so `E[GᵀG] = I` and projected inner products are unbiased; `G` is
//!   generated on the fly in chunks of [`CHUNK_ROWS`] parameters, chunk `c`
//!   from `ChaCha8(derive_seed(seed, c))`, so output does not depend on how
//!   rows are blocked;
//! - [`KroneckerProjector`]: per layer `G_a ⊗ G_δ` applied to the `(a, δ)`
//!   factors (`G_a [a;1] (G_δ δ)ᵀ`), per-layer projections summed into one
//!   `k`-vector (cross-layer terms have zero mean, so inner products stay
//!   unbiased); O(k·(d_in + d_out)) per example and layer.

mod dense;
mod kron;

use serde::{Deserialize, Serialize};

pub use dense::{CHUNK_ROWS, DenseKind, DenseProjector};
pub use kron::{KronLayer, KronLayerKind, KroneckerProjector};

use crate::error::{GradError, Result};
use crate::layout::GradLayout;

/// A linear map `R^p → R^k` applied to rows of gradients.
pub trait Projector: Send + Sync + std::fmt::Debug {
    /// `p`, the gradient width it accepts.
    fn input_dim(&self) -> usize;

    /// `k`, the projected width.
    fn output_dim(&self) -> usize;

    /// Serialisable description (kind, dimension, seed).
    fn spec(&self) -> ProjectionSpec;

    /// Projects `rows` row-major gradients (`rows × p`) into `out` (`rows × k`,
    /// overwritten).
    fn project(&self, rows: usize, grads: &[f32], out: &mut [f32]) -> Result<()>;

    /// The Kronecker projector, which [`crate::GradEngine::projected`] applies
    /// straight to the captured layer factors.
    fn as_kronecker(&self) -> Option<&KroneckerProjector> {
        None
    }
}

/// A serialisable projection choice; [`ProjectionSpec::build`] makes the
/// projector for a layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectionSpec {
    /// No projection (`k = p`).
    Identity,
    /// Dense Gaussian, entries `N(0, 1/dim)`.
    Gaussian {
        /// Projected dimension `k`.
        dim: usize,
        /// Seed.
        seed: u64,
    },
    /// Dense Rademacher, entries `±1/√dim`.
    Rademacher {
        /// Projected dimension `k`.
        dim: usize,
        /// Seed.
        seed: u64,
    },
    /// Per-layer Kronecker `G_a ⊗ G_δ` with Gaussian factors, summed over layers.
    Kronecker {
        /// Projected dimension `k` (per layer, `k = k_a · k_δ`).
        dim: usize,
        /// Seed.
        seed: u64,
    },
    /// A projector built from explicit factors (e.g. K-FAC eigenbases); it
    /// cannot be rebuilt from the spec.
    Custom {
        /// What it is.
        description: String,
        /// Output dimension.
        dim: usize,
    },
}

impl ProjectionSpec {
    /// Short name of the kind (`identity`, `gaussian`, `rademacher`, `kronecker`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProjectionSpec::Identity => "identity",
            ProjectionSpec::Gaussian { .. } => "gaussian",
            ProjectionSpec::Rademacher { .. } => "rademacher",
            ProjectionSpec::Kronecker { .. } => "kronecker",
            ProjectionSpec::Custom { .. } => "custom",
        }
    }

    /// The projector for gradients laid out as `layout`. Errors on a dimension
    /// of 0 or above the number of parameters.
    pub fn build(&self, layout: &GradLayout) -> Result<Box<dyn Projector>> {
        Ok(match self {
            ProjectionSpec::Identity => Box::new(Identity::new(layout.dim())),
            ProjectionSpec::Gaussian { dim, seed } => Box::new(DenseProjector::new(
                DenseKind::Gaussian,
                layout.dim(),
                *dim,
                *seed,
            )?),
            ProjectionSpec::Rademacher { dim, seed } => Box::new(DenseProjector::new(
                DenseKind::Rademacher,
                layout.dim(),
                *dim,
                *seed,
            )?),
            ProjectionSpec::Kronecker { dim, seed } => {
                Box::new(KroneckerProjector::new(layout, *dim, *seed)?)
            }
            ProjectionSpec::Custom { description, .. } => {
                return Err(GradError::unsupported(
                    format!("rebuilding projection {description:?}"),
                    "custom projections are built from their factors, not from a spec",
                ));
            }
        })
    }
}

/// Checks a projected dimension against the input width.
pub(crate) fn check_dim(kind: &str, p: usize, k: usize) -> Result<()> {
    if k == 0 {
        return Err(GradError::param(
            format!("{kind} projection dim"),
            0,
            "must be at least 1",
        ));
    }
    if k > p {
        return Err(GradError::param(
            format!("{kind} projection dim"),
            k,
            format!("exceeds the {p} parameters being projected (use ProjectionSpec::Identity)"),
        ));
    }
    Ok(())
}

/// The identity map (`k = p`).
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    p: usize,
}

impl Identity {
    /// Identity on `R^p`.
    pub fn new(p: usize) -> Self {
        Identity { p }
    }
}

impl Projector for Identity {
    fn input_dim(&self) -> usize {
        self.p
    }
    fn output_dim(&self) -> usize {
        self.p
    }
    fn spec(&self) -> ProjectionSpec {
        ProjectionSpec::Identity
    }
    fn project(&self, rows: usize, grads: &[f32], out: &mut [f32]) -> Result<()> {
        check_io(rows, self.p, self.p, grads, out)?;
        out[..rows * self.p].copy_from_slice(&grads[..rows * self.p]);
        Ok(())
    }
}

/// Checks input/output buffer lengths of a projection call.
pub(crate) fn check_io(rows: usize, p: usize, k: usize, grads: &[f32], out: &[f32]) -> Result<()> {
    if grads.len() != rows * p {
        return Err(GradError::shape(
            "gradients to project",
            format!("{rows} rows × {p} = {}", rows * p),
            grads.len(),
        ));
    }
    if out.len() != rows * k {
        return Err(GradError::shape(
            "projection output",
            format!("{rows} rows × {k} = {}", rows * k),
            out.len(),
        ));
    }
    Ok(())
}
