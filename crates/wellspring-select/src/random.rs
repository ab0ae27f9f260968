//! The cheap baselines and SVE's RandE: full data, uniform random (fixed or
//! adaptive), and entropy-weighted random sampling.

use wellspring_core::Subset;

use crate::error::{Result, SelectError};
use crate::sampling::{
    prediction_entropy, uniform_without_replacement, weighted_without_replacement,
};
use crate::schedule::SelectionSchedule;
use crate::selector::{Budget, Selection, SelectionInfo, Selector, timed};
use crate::state::{Needs, TrainingState};

/// Every training point, unweighted, once: the "Size = 100" reference of SVE
/// Tables 3–5. The budget is ignored (the info reports `requested = n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FullData;

impl Selector for FullData {
    fn name(&self) -> &'static str {
        "Full"
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn schedule(&self) -> SelectionSchedule {
        SelectionSchedule::once()
    }

    fn select(&self, state: &TrainingState<'_>, _budget: Budget, _seed: u64) -> Result<Selection> {
        let n = state.len();
        if n == 0 {
            return Err(SelectError::ZeroBudget);
        }
        timed(self.name(), n, || {
            Ok((Subset::all(n), SelectionInfo::default()))
        })
    }
}

/// Uniform random subsets without replacement, unweighted: "Random (Fixed)"
/// (one subset for the run) or "Random (Adaptive)" (a new subset every `e`
/// epochs), SVE §4.3 and Figure 3. Indices are returned in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Random {
    schedule: SelectionSchedule,
}

impl Random {
    /// One subset for the whole run.
    pub fn fixed() -> Self {
        Self {
            schedule: SelectionSchedule::once(),
        }
    }

    /// A new uniform subset every `e >= 1` epochs.
    pub fn adaptive(e: usize) -> Result<Self> {
        Ok(Self {
            schedule: SelectionSchedule::every_epochs(e)?,
        })
    }

    /// Any schedule (e.g. every `s` steps).
    pub fn with_schedule(schedule: SelectionSchedule) -> Self {
        Self { schedule }
    }
}

impl Selector for Random {
    fn name(&self) -> &'static str {
        match self.schedule.every() {
            crate::schedule::Every::Once => "Random (Fixed)",
            _ => "Random (Adaptive)",
        }
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn schedule(&self) -> SelectionSchedule {
        self.schedule
    }

    fn select(&self, state: &TrainingState<'_>, budget: Budget, seed: u64) -> Result<Selection> {
        let n = state.len();
        let k = budget.resolve(n)?;
        timed(self.name(), k, || {
            let idx = uniform_without_replacement(n, k, seed)?;
            Ok((Subset::new(idx, n)?, SelectionInfo::default()))
        })
    }
}

/// How RandE turns entropies into sampling probabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EntropyWeighting {
    /// `P(i) ∝ H_i` (SVE §5.2: "probability proportional to its entropy").
    #[default]
    Proportional,
    /// `P(i) ∝ exp(H_i)`, i.e. `softmax(H)` (the SVE authors' public code).
    Softmax,
}

/// Parameters of [`RandE`] (checked builder).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandEParams {
    weighting: EntropyWeighting,
    every_epochs: usize,
    warm_start_epochs: usize,
}

impl Default for RandEParams {
    /// Proportional weighting, a new subset every epoch, no warm start.
    fn default() -> Self {
        Self {
            weighting: EntropyWeighting::Proportional,
            every_epochs: 1,
            warm_start_epochs: 0,
        }
    }
}

impl RandEParams {
    /// Entropy → probability map.
    pub fn weighting(mut self, w: EntropyWeighting) -> Self {
        self.weighting = w;
        self
    }

    /// Re-select every `e` epochs (SVE Algorithm 2's epoch interval `e`).
    pub fn every_epochs(mut self, e: usize) -> Self {
        self.every_epochs = e;
        self
    }

    /// Train on the full data for this many epochs first.
    pub fn warm_start_epochs(mut self, e: usize) -> Self {
        self.warm_start_epochs = e;
        self
    }

    /// Validates the parameters and builds the selector.
    pub fn check(self) -> Result<RandE> {
        let schedule = SelectionSchedule::every_epochs(self.every_epochs)?
            .with_warm_start(self.warm_start_epochs);
        Ok(RandE {
            weighting: self.weighting,
            schedule,
        })
    }
}

/// RandE, SVE Algorithm 2: draw `ρ·n` training points without replacement with
/// probability proportional to the entropy of the model's prediction (or to
/// `softmax(entropy)`), unweighted. Indices are in draw order.
///
/// `info.objective` holds `[mean entropy of the selection, mean entropy of all points]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandE {
    weighting: EntropyWeighting,
    schedule: SelectionSchedule,
}

impl RandE {
    /// The parameter builder.
    pub fn params() -> RandEParams {
        RandEParams::default()
    }

    /// The weighting in use.
    pub fn weighting(&self) -> EntropyWeighting {
        self.weighting
    }

    /// Sampling weights for the given probabilities (SVE Algorithm 2, line 3).
    pub fn sampling_weights(&self, probs: &[f32], n_classes: usize) -> Vec<f64> {
        let h = prediction_entropy(probs, n_classes);
        match self.weighting {
            EntropyWeighting::Proportional => h,
            EntropyWeighting::Softmax => {
                // exp(H − max H): same distribution as softmax, no overflow.
                let m = h.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                h.iter().map(|&x| (x - m).exp()).collect()
            }
        }
    }
}

impl Selector for RandE {
    fn name(&self) -> &'static str {
        match self.weighting {
            EntropyWeighting::Proportional => "RandE",
            EntropyWeighting::Softmax => "RandE (softmax)",
        }
    }

    fn needs(&self) -> Needs {
        Needs {
            probs: true,
            ..Needs::default()
        }
    }

    fn schedule(&self) -> SelectionSchedule {
        self.schedule
    }

    fn select(&self, state: &TrainingState<'_>, budget: Budget, seed: u64) -> Result<Selection> {
        let n = state.len();
        let k = budget.resolve(n)?;
        let probs = state.require_probs(self.name())?;
        timed(self.name(), k, || {
            let w = self.sampling_weights(probs, state.n_classes());
            let (idx, fill) = weighted_without_replacement(&w, k, seed)?;
            let h = prediction_entropy(probs, state.n_classes());
            let mean_sel = idx.iter().map(|&i| h[i]).sum::<f64>() / k as f64;
            let mean_all = h.iter().sum::<f64>() / n as f64;
            let info = SelectionInfo {
                filled_at_random: fill,
                objective: vec![mean_sel, mean_all],
                ..SelectionInfo::default()
            };
            Ok((Subset::new(idx, n)?, info))
        })
    }
}
