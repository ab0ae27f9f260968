//! [`ProjectionSpec`]: which random projection a gradient method applies to
//! per-example gradients, as a plain value (`--projection gaussian:512`).
//!
//! The projector implementations live in `wellspring-grad`; a gradient method
//! maps this spec onto them (with the seed from its options). Non-gradient
//! methods reject a projection (see [`crate::methods::by_name`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{AttribError, Result};

/// A projection of per-example gradients to `dim` dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ProjectionSpec {
    /// No projection: full gradients.
    Identity,
    /// Dense Gaussian `N(0, 1/dim)` entries (TracIn App. E).
    Gaussian {
        /// Output dimension.
        dim: usize,
    },
    /// Dense Rademacher `±1/√dim` entries (TRAK's default projector family).
    Rademacher {
        /// Output dimension.
        dim: usize,
    },
    /// Per-layer Kronecker-structured projection of the rank-one layer
    /// gradients `δ xᵀ` (TracIn App. F: `G₁ δ xᵀ G₂ᵀ`, `√dim × √dim`).
    Kronecker {
        /// Output dimension per layer.
        dim: usize,
    },
}

impl ProjectionSpec {
    /// Output dimension (`None` for [`ProjectionSpec::Identity`]).
    pub fn dim(&self) -> Option<usize> {
        match self {
            ProjectionSpec::Identity => None,
            ProjectionSpec::Gaussian { dim }
            | ProjectionSpec::Rademacher { dim }
            | ProjectionSpec::Kronecker { dim } => Some(*dim),
        }
    }
}

impl fmt::Display for ProjectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectionSpec::Identity => write!(f, "identity"),
            ProjectionSpec::Gaussian { dim } => write!(f, "gaussian:{dim}"),
            ProjectionSpec::Rademacher { dim } => write!(f, "rademacher:{dim}"),
            ProjectionSpec::Kronecker { dim } => write!(f, "kronecker:{dim}"),
        }
    }
}

impl FromStr for ProjectionSpec {
    type Err = AttribError;

    /// `identity`, `gaussian:D`, `rademacher:D` or `kronecker:D` with `D ≥ 1`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| AttribError::invalid_param("projection", s, reason.to_string());
        if s == "identity" {
            return Ok(ProjectionSpec::Identity);
        }
        let (kind, dim) = s
            .split_once(':')
            .ok_or_else(|| bad("expected identity, gaussian:D, rademacher:D or kronecker:D"))?;
        let dim: usize = dim
            .parse()
            .map_err(|_| bad("the dimension after ':' must be a positive integer"))?;
        if dim == 0 {
            return Err(bad("the dimension must be at least 1"));
        }
        match kind {
            "gaussian" => Ok(ProjectionSpec::Gaussian { dim }),
            "rademacher" => Ok(ProjectionSpec::Rademacher { dim }),
            "kronecker" => Ok(ProjectionSpec::Kronecker { dim }),
            _ => Err(bad(
                "unknown kind; expected gaussian, rademacher or kronecker",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for s in ["identity", "gaussian:512", "rademacher:8", "kronecker:4096"] {
            let p: ProjectionSpec = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "gaussian:512".parse::<ProjectionSpec>().unwrap().dim(),
            Some(512)
        );
        for bad in ["gaussian", "gaussian:0", "gaussian:x", "sparse:4", ""] {
            let e = bad.parse::<ProjectionSpec>().unwrap_err().to_string();
            assert!(e.contains("projection"), "{e}");
        }
    }
}
