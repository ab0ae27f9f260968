//! When a selector runs: once, every `e` epochs, or every `s` optimiser steps,
//! after an optional warm start on the full data.

use crate::error::{Result, SelectError};

/// How often selection happens (CORDS' `select_every`; SVE Algorithm 2's `e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// One subset for the whole run ("Random (Fixed)" in SVE Figure 3).
    Once,
    /// A new subset at the start of every `e`-th epoch.
    Epochs(usize),
    /// A new subset before every `s`-th optimiser step (mini-batch methods).
    Steps(usize),
}

/// A selection schedule: [`Every`] plus a number of warm-start epochs trained
/// on the full data before the first selection (CORDS' `kappa` warm start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectionSchedule {
    every: Every,
    warm_start_epochs: usize,
}

impl SelectionSchedule {
    /// Select once, at the start of training.
    pub fn once() -> Self {
        Self {
            every: Every::Once,
            warm_start_epochs: 0,
        }
    }

    /// Select at the start of every `e`-th epoch (`e >= 1`).
    pub fn every_epochs(e: usize) -> Result<Self> {
        if e == 0 {
            return Err(SelectError::invalid_param(
                "select_every (epochs)",
                0,
                "must be at least 1",
            ));
        }
        Ok(Self {
            every: Every::Epochs(e),
            warm_start_epochs: 0,
        })
    }

    /// Select before every `s`-th optimiser step (`s >= 1`).
    pub fn every_steps(s: usize) -> Result<Self> {
        if s == 0 {
            return Err(SelectError::invalid_param(
                "select_every (steps)",
                0,
                "must be at least 1",
            ));
        }
        Ok(Self {
            every: Every::Steps(s),
            warm_start_epochs: 0,
        })
    }

    /// Trains the first `epochs` epochs on the full data, selecting afterwards.
    pub fn with_warm_start(mut self, epochs: usize) -> Self {
        self.warm_start_epochs = epochs;
        self
    }

    /// The cadence.
    pub fn every(&self) -> Every {
        self.every
    }

    /// Warm-start epochs on the full data.
    pub fn warm_start_epochs(&self) -> usize {
        self.warm_start_epochs
    }

    /// True while the loop should train on the full data (warm start).
    pub fn in_warm_start(&self, epoch: usize) -> bool {
        epoch < self.warm_start_epochs
    }

    /// True if a new subset is due at the start of `epoch` (epoch-based and once).
    pub fn due_at_epoch(&self, epoch: usize) -> bool {
        if epoch < self.warm_start_epochs {
            return false;
        }
        let e = epoch - self.warm_start_epochs;
        match self.every {
            Every::Once => e == 0,
            Every::Epochs(k) => e.is_multiple_of(k),
            Every::Steps(_) => false,
        }
    }

    /// True if a new subset is due before optimiser step `step` of `epoch`,
    /// where `first_step_after_warm_start` is the step at which the warm start
    /// ended (0 without warm start). Step schedules count from that step.
    pub fn due_at_step(
        &self,
        epoch: usize,
        step: usize,
        first_step_after_warm_start: usize,
    ) -> bool {
        if epoch < self.warm_start_epochs || step < first_step_after_warm_start {
            return false;
        }
        match self.every {
            Every::Steps(s) => (step - first_step_after_warm_start).is_multiple_of(s),
            Every::Once | Every::Epochs(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadences() {
        let s = SelectionSchedule::every_epochs(3)
            .unwrap()
            .with_warm_start(2);
        let due: Vec<usize> = (0..10).filter(|&e| s.due_at_epoch(e)).collect();
        assert_eq!(due, vec![2, 5, 8]);
        assert!(s.in_warm_start(1) && !s.in_warm_start(2));
        let o = SelectionSchedule::once();
        assert_eq!((0..5).filter(|&e| o.due_at_epoch(e)).count(), 1);
        let st = SelectionSchedule::every_steps(4).unwrap();
        let due: Vec<usize> = (0..10).filter(|&t| st.due_at_step(0, t, 0)).collect();
        assert_eq!(due, vec![0, 4, 8]);
        assert!(SelectionSchedule::every_epochs(0).is_err());
        assert!(SelectionSchedule::every_steps(0).is_err());
    }
}
