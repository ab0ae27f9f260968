//! Searches for the smallest support size `k` at which a monotone oracle
//! ("does modifying the top-`k` training points flip the prediction?") turns
//! true: bisection with a budget (brittleness paper, appendix A.6) and a
//! linear scan over fixed sizes (Ilyas et al. 2022's discrete sizes).
//!
//! Both are state machines ([`SupportSearch`]): the caller asks for the next
//! probe, evaluates it however it likes (one probe at a time with
//! [`bisect_support`] / [`linear_scan_support`], or the probes of many test
//! points batched into one round of retraining, as [`crate::Brittleness`] does)
//! and records the answer.
//!
//! **Bisection (appendix A.6).** Algorithm 1 of the paper is not legible in
//! our copy; this is its reading from the text: the bracket starts as
//! `(lo, hi] = (0, N_max + 1]` — `k = 0` (the unmodified training set) is known
//! not to flip (the caller checks it once), `N_max + 1` stands for "not found
//! up to the maximum" — and each of at most `budget` oracle evaluations probes
//! the midpoint `⌊(lo + hi)/2⌋`, moving `hi` down on a flip and `lo` up
//! otherwise. The reported support is the smallest probed `k` that flipped
//! (`hi`), an upper bound on the true support within `(lo, hi]`; if nothing
//! flipped it is *not found* (support `> lo`), which the CDF counts as not
//! flippable within `N_max`. With the paper's `N_max = 1280` and budget 7 the
//! final bracket is 10 points wide; with `budget ≥ ⌈log₂(N_max + 1)⌉` the
//! search is exact.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// One oracle evaluation: the size probed and whether it flipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Number of top-ranked points modified.
    pub k: usize,
    /// Whether the prediction flipped.
    pub flipped: bool,
}

/// Result of a support search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// Smallest probed size that flipped (`None`: none did).
    pub support: Option<usize>,
    /// Largest size known not to flip (0 if none probed): the true support
    /// lies in `(lower, support]`, or above `lower` when not found.
    pub lower: usize,
    /// Oracle evaluations used.
    pub evaluations: usize,
    /// Every probe in order.
    pub trace: Vec<Probe>,
}

/// A support search as a state machine.
pub trait SupportSearch {
    /// The next size to probe, or `None` when the search is over.
    fn next_probe(&self) -> Option<usize>;
    /// Records the oracle's answer for the probe just returned.
    fn record(&mut self, k: usize, flipped: bool);
    /// The outcome so far.
    fn outcome(&self) -> SearchOutcome;
}

/// Budgeted bisection on `(0, max_k]` (see the module docs).
#[derive(Clone, Debug)]
pub struct Bisection {
    lo: usize,
    hi: usize,
    found: Option<usize>,
    budget: usize,
    trace: Vec<Probe>,
}

impl Bisection {
    /// A search over `1..=max_k` with at most `budget` evaluations (both ≥ 1).
    pub fn new(max_k: usize, budget: usize) -> Result<Self> {
        if budget == 0 {
            return Err(EvalError::invalid_param(
                "bisection search budget",
                0,
                "must be ≥ 1 oracle evaluation",
            ));
        }
        if max_k == 0 {
            return Err(EvalError::invalid_param(
                "maximum support size",
                0,
                "must be ≥ 1",
            ));
        }
        Ok(Self {
            lo: 0,
            hi: max_k + 1,
            found: None,
            budget,
            trace: Vec::new(),
        })
    }
}

impl SupportSearch for Bisection {
    fn next_probe(&self) -> Option<usize> {
        (self.trace.len() < self.budget && self.hi - self.lo > 1)
            .then(|| self.lo + (self.hi - self.lo) / 2)
    }

    fn record(&mut self, k: usize, flipped: bool) {
        self.trace.push(Probe { k, flipped });
        if flipped {
            self.hi = self.hi.min(k);
            self.found = Some(self.hi);
        } else {
            self.lo = self.lo.max(k);
        }
    }

    fn outcome(&self) -> SearchOutcome {
        SearchOutcome {
            support: self.found,
            lower: self.lo,
            evaluations: self.trace.len(),
            trace: self.trace.clone(),
        }
    }
}

/// Linear scan over increasing fixed sizes, stopping at the first flip.
#[derive(Clone, Debug)]
pub struct LinearScan {
    sizes: Vec<usize>,
    pos: usize,
    found: Option<usize>,
    lower: usize,
    trace: Vec<Probe>,
}

impl LinearScan {
    /// A scan over `sizes` (non-empty, strictly increasing, all ≥ 1).
    pub fn new(sizes: Vec<usize>) -> Result<Self> {
        check_sizes(&sizes)?;
        Ok(Self {
            sizes,
            pos: 0,
            found: None,
            lower: 0,
            trace: Vec::new(),
        })
    }
}

pub(crate) fn check_sizes(sizes: &[usize]) -> Result<()> {
    if sizes.is_empty() || sizes[0] == 0 || sizes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(EvalError::invalid_param(
            "linear-scan sizes",
            format!("{sizes:?}"),
            "must be non-empty, strictly increasing and ≥ 1",
        ));
    }
    Ok(())
}

impl SupportSearch for LinearScan {
    fn next_probe(&self) -> Option<usize> {
        if self.found.is_some() {
            return None;
        }
        self.sizes.get(self.pos).copied()
    }

    fn record(&mut self, k: usize, flipped: bool) {
        self.trace.push(Probe { k, flipped });
        self.pos += 1;
        if flipped {
            self.found = Some(k);
        } else {
            self.lower = self.lower.max(k);
        }
    }

    fn outcome(&self) -> SearchOutcome {
        SearchOutcome {
            support: self.found,
            lower: self.lower,
            evaluations: self.trace.len(),
            trace: self.trace.clone(),
        }
    }
}

/// Drives a search with a one-probe-at-a-time oracle.
pub fn run_search<S: SupportSearch>(
    mut search: S,
    mut oracle: impl FnMut(usize) -> Result<bool>,
) -> Result<SearchOutcome> {
    while let Some(k) = search.next_probe() {
        let flipped = oracle(k)?;
        search.record(k, flipped);
    }
    Ok(search.outcome())
}

/// Bisection for the smallest `k ∈ 1..=max_k` with `oracle(k)` true, using at
/// most `budget` oracle calls (brittleness paper, appendix A.6; see the module
/// docs for the bracket and what "not found" means).
pub fn bisect_support(
    max_k: usize,
    budget: usize,
    oracle: impl FnMut(usize) -> Result<bool>,
) -> Result<SearchOutcome> {
    run_search(Bisection::new(max_k, budget)?, oracle)
}

/// The smallest of `sizes` (increasing) with `oracle` true, probing in order
/// and stopping at the first flip.
pub fn linear_scan_support(
    sizes: &[usize],
    oracle: impl FnMut(usize) -> Result<bool>,
) -> Result<SearchOutcome> {
    run_search(LinearScan::new(sizes.to_vec())?, oracle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ceil_log2(x: usize) -> usize {
        (usize::BITS - (x - 1).leading_zeros()) as usize
    }

    #[test]
    fn paper_setting_resolution() {
        // N_max = 1280, budget 7: the bracket ends 10 wide
        let out = bisect_support(1280, 7, |k| Ok(k >= 333)).unwrap();
        assert_eq!(out.evaluations, 7);
        let s = out.support.unwrap();
        assert!(s >= 333 && s - out.lower <= 10, "{out:?}");
        // never flips: not found, lower bound close to the maximum
        let out = bisect_support(1280, 7, |_| Ok(false)).unwrap();
        assert_eq!(out.support, None);
        assert!(out.lower >= 1270, "{out:?}");
        // exact with enough budget (⌈log₂ 1281⌉ = 11)
        let out = bisect_support(1280, 11, |k| Ok(k >= 1280)).unwrap();
        assert_eq!(out.support, Some(1280));
        assert!(bisect_support(10, 0, |_| Ok(true)).is_err());
        assert!(bisect_support(0, 3, |_| Ok(true)).is_err());
        assert!(linear_scan_support(&[10, 5], |_| Ok(true)).is_err());
        assert!(linear_scan_support(&[0, 5], |_| Ok(true)).is_err());
    }

    proptest! {
        #[test]
        fn bisection_agrees_with_linear_scan(
            max_k in 1usize..400,
            threshold_frac in 0.0f64..1.2,
            budget in 1usize..14,
        ) {
            // monotone oracle: flips from `s` on (s = max_k + 1: never within range)
            let s = ((threshold_frac * max_k as f64) as usize).clamp(1, max_k + 1);
            let oracle = |k: usize| -> Result<bool> { Ok(k >= s) };
            let all: Vec<usize> = (1..=max_k).collect();
            let scan = linear_scan_support(&all, oracle).unwrap();
            let expected = (s <= max_k).then_some(s);
            prop_assert_eq!(scan.support, expected);

            let mut calls = 0;
            let bis = bisect_support(max_k, budget, |k| { calls += 1; oracle(k) }).unwrap();
            prop_assert!(calls <= budget);
            prop_assert_eq!(calls, bis.evaluations);
            // always a valid bracket around the true support
            prop_assert!(bis.lower < s);
            if let Some(found) = bis.support {
                prop_assert!(found >= s && oracle(found).unwrap());
            }
            if budget >= ceil_log2(max_k + 1) {
                prop_assert_eq!(bis.support, scan.support);
            }
        }

        #[test]
        fn scan_on_grid_finds_smallest_flipping_size(s in 1usize..2000) {
            let sizes = [10, 20, 40, 80, 160, 320, 640, 1280];
            let out = linear_scan_support(&sizes, |k| Ok(k >= s)).unwrap();
            prop_assert_eq!(out.support, sizes.iter().copied().find(|&k| k >= s));
        }
    }
}
