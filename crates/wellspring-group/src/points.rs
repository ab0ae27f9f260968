//! [`Points`]: a checked, borrowed `n × d` row-major matrix, what every grouper
//! clusters (raw inputs, penultimate features, last-layer gradients).

use crate::error::{GroupError, Result};

/// A borrowed row-major `n × d` matrix of finite `f32` values, one row per
/// training point.
#[derive(Clone, Copy, Debug)]
pub struct Points<'a> {
    data: &'a [f32],
    n: usize,
    d: usize,
}

impl<'a> Points<'a> {
    /// Wraps `data` as `n` rows of width `d`; errors on a length mismatch, an
    /// empty matrix or a non-finite value (naming its row and column).
    pub fn new(data: &'a [f32], n: usize, d: usize) -> Result<Self> {
        if n == 0 || d == 0 {
            return Err(GroupError::Points {
                reason: format!("need at least one row and one column, got {n} x {d}"),
            });
        }
        if data.len() != n * d {
            return Err(GroupError::Points {
                reason: format!("expected {n} x {d} = {} values, got {}", n * d, data.len()),
            });
        }
        if let Some(p) = data.iter().position(|v| !v.is_finite()) {
            return Err(GroupError::Points {
                reason: format!(
                    "non-finite value {} in row {}, column {}",
                    data[p],
                    p / d,
                    p % d
                ),
            });
        }
        Ok(Self { data, n, d })
    }

    /// Number of rows (points).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Width of a row.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// The row-major values.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }
}

/// How many groups to form: a count, or a target group size (GGDA sweeps
/// sizes 1, 4, 16, 64, 256, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupAmount {
    /// Exactly this many groups (`1..=n`).
    Groups(usize),
    /// Groups of about this many points: `⌈n / size⌉` groups (`size ≥ 1`), so
    /// equal-size groupings never exceed `size`.
    Size(usize),
}

impl GroupAmount {
    /// The number of groups for `n` points; errors on 0 or on more groups than points.
    pub fn n_groups(&self, n: usize) -> Result<usize> {
        match *self {
            GroupAmount::Groups(0) => Err(GroupError::invalid_param(
                "group count",
                0,
                "must be at least 1",
            )),
            GroupAmount::Groups(k) if k > n => Err(GroupError::invalid_param(
                "group count",
                k,
                format!("more groups than the {n} training points"),
            )),
            GroupAmount::Groups(k) => Ok(k),
            GroupAmount::Size(0) => Err(GroupError::invalid_param(
                "group size",
                0,
                "must be at least 1",
            )),
            GroupAmount::Size(s) => {
                if n == 0 {
                    return Err(GroupError::Points {
                        reason: "no points to group".into(),
                    });
                }
                Ok(n.div_ceil(s))
            }
        }
    }
}

impl std::fmt::Display for GroupAmount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupAmount::Groups(k) => write!(f, "{k} groups"),
            GroupAmount::Size(s) => write!(f, "groups of size {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_points_are_named() {
        let e = Points::new(&[0.0, 1.0, f32::NAN, 2.0], 2, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 1, column 0"), "{e}");
        let e = Points::new(&[0.0; 5], 2, 2).unwrap_err().to_string();
        assert!(e.contains("expected 2 x 2 = 4 values, got 5"), "{e}");
        assert!(Points::new(&[], 0, 3).is_err());
    }

    #[test]
    fn amounts() {
        assert_eq!(GroupAmount::Size(4).n_groups(10).unwrap(), 3);
        assert_eq!(GroupAmount::Size(1).n_groups(10).unwrap(), 10);
        assert_eq!(GroupAmount::Groups(10).n_groups(10).unwrap(), 10);
        let e = GroupAmount::Groups(11)
            .n_groups(10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("11") && e.contains("10 training points"), "{e}");
        assert!(GroupAmount::Size(0).n_groups(10).is_err());
        assert!(GroupAmount::Groups(0).n_groups(10).is_err());
    }
}
