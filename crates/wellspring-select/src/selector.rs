//! The [`Selector`] trait and what it returns.

use std::time::{Duration, Instant};

use rand::RngExt;
use wellspring_core::{ChaCha8Rng, Subset};

use crate::error::{Result, SelectError};
use crate::schedule::SelectionSchedule;
use crate::state::{Needs, TrainingState};

/// How many points to select: a count, or a fraction ρ of the training set
/// (SVE Algorithm 2 selects `ρ·|D|` points).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Exactly this many points.
    Count(usize),
    /// `round(ρ · n)` points (at least 1), ρ in `(0, 1]`.
    Fraction(f64),
}

impl Budget {
    /// The number of points out of `n`, checked: `1 <= k <= n`, ρ in `(0, 1]`.
    pub fn resolve(self, n: usize) -> Result<usize> {
        let k = match self {
            Budget::Count(k) => k,
            Budget::Fraction(rho) => {
                if !(rho > 0.0 && rho <= 1.0) {
                    return Err(SelectError::BadFraction { rho });
                }
                ((rho * n as f64).round() as usize).max(1)
            }
        };
        if k == 0 {
            return Err(SelectError::ZeroBudget);
        }
        if k > n {
            return Err(SelectError::BudgetTooLarge { budget: k, n });
        }
        Ok(k)
    }
}

impl From<usize> for Budget {
    fn from(k: usize) -> Self {
        Budget::Count(k)
    }
}

/// Bookkeeping of one selection round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectionInfo {
    /// Name of the selector.
    pub selector: &'static str,
    /// Wall time of the selection itself (not of computing its inputs).
    pub wall_time: Duration,
    /// Points requested (the resolved budget).
    pub requested: usize,
    /// Points returned.
    pub selected: usize,
    /// `requested − selected` when the request could not be met (documented per selector).
    pub shortfall: usize,
    /// Points added uniformly at random to meet the budget (GradMatch's fill,
    /// RandE when fewer than `k` points have non-zero entropy, GLISTER per class
    /// without validation points of that class).
    pub filled_at_random: usize,
    /// Selector-specific objective values, documented on each selector.
    pub objective: Vec<f64>,
    /// Marginal-gain (or projection) evaluations performed by greedy methods.
    pub evaluations: u64,
}

/// A selected, optionally weighted subset and the round's bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Selected training points and their per-sample weights.
    pub subset: Subset,
    /// Timing and objective values.
    pub info: SelectionInfo,
}

/// A data-selection strategy: given the training state, a budget and a seed,
/// return a weighted subset (the "coreset" of CRAIG/GradMatch eq. 2 in SVE).
///
/// `select` is a pure function of its arguments: same state, budget and seed,
/// same subset. The loop asks [`Selector::needs`] what to compute and
/// [`Selector::schedule`] when to call.
pub trait Selector {
    /// Short name used in reports ("RandE", "CRAIG", ...).
    fn name(&self) -> &'static str;

    /// What the loop must attach to the [`TrainingState`].
    fn needs(&self) -> Needs;

    /// When the loop should call [`Selector::select`].
    fn schedule(&self) -> SelectionSchedule;

    /// Selects a subset of `state`'s training points.
    fn select(&self, state: &TrainingState<'_>, budget: Budget, seed: u64) -> Result<Selection>;
}

/// Runs `f`, timing it, and fills the common fields of its info.
pub(crate) fn timed(
    selector: &'static str,
    requested: usize,
    f: impl FnOnce() -> Result<(Subset, SelectionInfo)>,
) -> Result<Selection> {
    let t0 = Instant::now();
    let (subset, mut info) = f()?;
    info.wall_time = t0.elapsed();
    info.selector = selector;
    info.requested = requested;
    info.selected = subset.len();
    info.shortfall = requested.saturating_sub(subset.len());
    Ok(Selection { subset, info })
}

/// Per-class budgets proportional to class sizes, by largest remainder: they
/// sum to exactly `k` and never exceed a class's size (`k <= Σ sizes`).
/// Remainder ties go to the lower class index.
pub fn class_quotas(sizes: &[usize], k: usize) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    let k = k.min(n);
    let mut q: Vec<usize> = sizes
        .iter()
        .map(|&s| (k as u128 * s as u128 / n as u128) as usize)
        .collect();
    let given: usize = q.iter().sum();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    // Exact integer remainders: (k · s) mod n.
    let rem = |c: usize| (k as u128 * sizes[c] as u128 % n as u128) as usize;
    order.sort_by(|&a, &b| rem(b).cmp(&rem(a)).then(a.cmp(&b)));
    for &c in order.iter().take(k - given) {
        q[c] += 1;
    }
    q
}

/// Uniform sample of `k` distinct elements of `pool` (partial Fisher–Yates on a copy).
pub(crate) fn sample_from(pool: &[usize], k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut v = pool.to_vec();
    let k = k.min(v.len());
    for i in 0..k {
        let j = rng.random_range(i..v.len());
        v.swap(i, j);
    }
    v.truncate(k);
    v
}

/// Adds `k` points chosen uniformly among those of `0..n` not yet in `chosen`,
/// with weight `w`; returns how many were added.
pub(crate) fn fill_uniform(
    chosen: &mut Vec<usize>,
    weights: &mut Vec<f32>,
    n: usize,
    k: usize,
    w: f32,
    rng: &mut ChaCha8Rng,
) -> usize {
    if k == 0 {
        return 0;
    }
    let mut taken = vec![false; n];
    for &i in chosen.iter() {
        taken[i] = true;
    }
    let pool: Vec<usize> = (0..n).filter(|&i| !taken[i]).collect();
    let extra = sample_from(&pool, k, rng);
    let added = extra.len();
    chosen.extend(extra);
    weights.extend(std::iter::repeat_n(w, added));
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        assert_eq!(Budget::Fraction(0.1).resolve(60_000).unwrap(), 6000);
        assert_eq!(Budget::Fraction(1e-9).resolve(10).unwrap(), 1);
        assert!(matches!(
            Budget::Fraction(0.0).resolve(10),
            Err(SelectError::BadFraction { .. })
        ));
        assert!(Budget::Fraction(1.5).resolve(10).is_err());
        assert!(Budget::Fraction(f64::NAN).resolve(10).is_err());
        assert!(matches!(
            Budget::Count(0).resolve(10),
            Err(SelectError::ZeroBudget)
        ));
        let e = Budget::Count(6000).resolve(5000).unwrap_err().to_string();
        assert!(e.contains("6000") && e.contains("5000"), "{e}");
    }

    #[test]
    fn quotas_sum_exactly_and_fit() {
        assert_eq!(class_quotas(&[5, 3, 2], 5), vec![3, 1, 1]);
        assert_eq!(class_quotas(&[1, 1, 1], 2), vec![1, 1, 0]);
        for k in 0..=20 {
            let sizes = [7, 0, 9, 4];
            let q = class_quotas(&sizes, k);
            assert_eq!(q.iter().sum::<usize>(), k);
            assert!(q.iter().zip(&sizes).all(|(a, b)| a <= b));
        }
    }
}
