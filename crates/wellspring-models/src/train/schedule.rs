//! Learning-rate schedules, evaluated by us at every step as a function of
//! training progress `t` in epochs (fractional: step `s` of an epoch with `n`
//! steps is at `t = epoch + s / n`).

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Learning-rate schedule over `E = TrainConfig::epochs` epochs, applied to the
/// base rate `lr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// `lr` throughout.
    Constant,
    /// `lr · gamma^floor(t / every_epochs)`.
    Step {
        /// Decay period in epochs (`>= 1`).
        every_epochs: usize,
        /// Decay factor in `(0, 1]`.
        gamma: f64,
    },
    /// Cosine annealing (Loshchilov & Hutter 2017) without restarts:
    /// `min_lr + (lr - min_lr) (1 + cos(π t / E)) / 2`.
    Cosine {
        /// Final rate, in `[0, lr]`.
        min_lr: f64,
    },
    /// Triangular one-cycle (Smith 2018; the schedule of Page's ResNet-9):
    /// linear from `lr` up to `max_lr` at `t = pct_start · E`, then linear down to
    /// 0 at `t = E`.
    OneCycle {
        /// Peak rate (`>= lr`).
        max_lr: f64,
        /// Fraction of training spent warming up, in `(0, 1)`.
        pct_start: f64,
    },
}

impl Schedule {
    /// Checks the schedule's own values against the base rate `lr`.
    pub fn check(&self, lr: f64) -> Result<()> {
        match self {
            Schedule::Constant => {}
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                if *every_epochs == 0 {
                    return Err(ModelError::config(
                        "Step.every_epochs",
                        0,
                        "must be at least 1",
                    ));
                }
                if !gamma.is_finite() || *gamma <= 0.0 || *gamma > 1.0 {
                    return Err(ModelError::config("Step.gamma", gamma, "must be in (0, 1]"));
                }
            }
            Schedule::Cosine { min_lr } => {
                if !min_lr.is_finite() || *min_lr < 0.0 || *min_lr > lr {
                    return Err(ModelError::config(
                        "Cosine.min_lr",
                        min_lr,
                        format!("must be in [0, lr = {lr}]"),
                    ));
                }
            }
            Schedule::OneCycle { max_lr, pct_start } => {
                if !max_lr.is_finite() || *max_lr < lr {
                    return Err(ModelError::config(
                        "OneCycle.max_lr",
                        max_lr,
                        format!("must be finite and >= lr = {lr}"),
                    ));
                }
                if !pct_start.is_finite() || *pct_start <= 0.0 || *pct_start >= 1.0 {
                    return Err(ModelError::config(
                        "OneCycle.pct_start",
                        pct_start,
                        "must be in (0, 1)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// True if the rate does not depend on progress.
    pub fn is_constant(&self) -> bool {
        matches!(self, Schedule::Constant)
    }

    /// The rate at progress `t` (epochs, clamped to `[0, epochs]`).
    pub fn lr_at(&self, lr: f64, t: f64, epochs: usize) -> f64 {
        let e = epochs as f64;
        let t = t.clamp(0.0, e);
        match self {
            Schedule::Constant => lr,
            Schedule::Step {
                every_epochs,
                gamma,
            } => lr * gamma.powi((t / *every_epochs as f64).floor() as i32),
            Schedule::Cosine { min_lr } => {
                min_lr + (lr - min_lr) * (1.0 + (std::f64::consts::PI * t / e).cos()) / 2.0
            }
            Schedule::OneCycle { max_lr, pct_start } => {
                let peak = pct_start * e;
                if t <= peak {
                    lr + (max_lr - lr) * t / peak
                } else {
                    max_lr * (e - t) / (e - peak)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_hit_their_landmarks() {
        let s = Schedule::Step {
            every_epochs: 2,
            gamma: 0.5,
        };
        assert_eq!(s.lr_at(1.0, 1.9, 10), 1.0);
        assert_eq!(s.lr_at(1.0, 2.0, 10), 0.5);
        assert_eq!(s.lr_at(1.0, 5.0, 10), 0.25);
        let c = Schedule::Cosine { min_lr: 0.1 };
        assert!((c.lr_at(1.0, 0.0, 4) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(1.0, 2.0, 4) - 0.55).abs() < 1e-12);
        assert!((c.lr_at(1.0, 4.0, 4) - 0.1).abs() < 1e-12);
        let o = Schedule::OneCycle {
            max_lr: 0.4,
            pct_start: 0.25,
        };
        assert!((o.lr_at(0.04, 0.0, 8) - 0.04).abs() < 1e-12);
        assert!((o.lr_at(0.04, 2.0, 8) - 0.4).abs() < 1e-12);
        assert!((o.lr_at(0.04, 5.0, 8) - 0.2).abs() < 1e-12);
        assert_eq!(o.lr_at(0.04, 9.0, 8), 0.0);
        assert!(o.check(0.04).is_ok());
        assert!(o.check(1.0).is_err());
    }

    proptest::proptest! {
        /// Every schedule stays within [0, max(lr, max_lr)]; cosine never rises.
        #[test]
        fn rates_stay_in_bounds(t in 0.0f64..12.0, dt in 0.0f64..1.0, lr in 0.001f64..1.0) {
            let e = 10;
            for s in [
                Schedule::Constant,
                Schedule::Step { every_epochs: 3, gamma: 0.3 },
                Schedule::Cosine { min_lr: lr / 10.0 },
                Schedule::OneCycle { max_lr: lr * 5.0, pct_start: 0.3 },
            ] {
                let v = s.lr_at(lr, t, e);
                proptest::prop_assert!(v >= 0.0 && v <= lr * 5.0 + 1e-12, "{:?} at {}: {}", s, t, v);
            }
            let c = Schedule::Cosine { min_lr: 0.0 };
            proptest::prop_assert!(c.lr_at(lr, t + dt, e) <= c.lr_at(lr, t, e) + 1e-15);
        }
    }
}
