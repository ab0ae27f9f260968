//! Linear SVM by dual coordinate descent (Hsieh et al. 2008, "A Dual
//! Coordinate Descent Method for Large-scale Linear SVM", Algorithm 1 with
//! shrinking), the algorithm of LIBLINEAR's `-s 1` / `-s 3` solvers and hence
//! of scikit-learn's `LinearSVC`.
//!
//! Primal, with per-example costs `C_i` (class weights) and the bias folded
//! in as a constant feature `B` (regularised, as LIBLINEAR does):
//!
//! ```text
//! min_w  ½‖w‖² + Σ_i C_i ξ(y_i wᵀx̃_i),   x̃_i = [x_i, B]
//! hinge: ξ(m) = max(0, 1 − m)        squared hinge: ξ(m) = max(0, 1 − m)²
//! ```
//!
//! Dual: `min_α ½ αᵀ(Q + D)α − eᵀα, 0 ≤ α_i ≤ U_i`, `Q_ij = y_i y_j x̃_iᵀx̃_j`,
//! with `D_ii = 0, U_i = C_i` (hinge) or `D_ii = 1/(2C_i), U_i = ∞` (squared
//! hinge); `w = Σ_i α_i y_i x̃_i`.

use rand::RngExt;
use wellspring_core::rng;

use crate::error::{AttribError, Result, positive};

/// The SVM loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SvmLoss {
    /// `max(0, 1 − m)` (LIBLINEAR `-s 3`).
    Hinge,
    /// `max(0, 1 − m)²` (LIBLINEAR `-s 1`; scikit-learn `LinearSVC`'s default).
    #[default]
    SquaredHinge,
}

/// Hyper-parameters of [`fit_linear_svm`].
#[derive(Clone, Debug, PartialEq)]
pub struct SvmParams {
    /// Loss.
    pub loss: SvmLoss,
    /// Cost of positive examples (`C · weight₊`).
    pub c_pos: f64,
    /// Cost of negative examples (`C · weight₋`).
    pub c_neg: f64,
    /// Bias feature value `B` (`intercept_scaling`); `None` = no bias.
    pub bias: Option<f64>,
    /// Stop when `max PG − min PG ≤ tol` over a full pass (LIBLINEAR's `eps`).
    pub tol: f64,
    /// Maximum outer passes.
    pub max_iter: usize,
    /// Seed of the per-pass coordinate permutation.
    pub seed: u64,
}

impl SvmParams {
    /// Checks every value.
    pub fn check(&self) -> Result<()> {
        positive("svm c_pos", self.c_pos)?;
        positive("svm c_neg", self.c_neg)?;
        positive("svm tol", self.tol)?;
        if let Some(b) = self.bias {
            positive("svm bias", b)?;
        }
        if self.max_iter == 0 {
            return Err(AttribError::invalid_param(
                "svm max_iter",
                0,
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A fitted linear SVM: `f(x) = wᵀx + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSvm {
    /// Weights, one per feature.
    pub w: Vec<f64>,
    /// Bias (`w_B · B`; 0 without a bias feature).
    pub b: f64,
    /// Dual variables, one per training example.
    pub alpha: Vec<f64>,
    /// Outer passes run.
    pub iterations: usize,
    /// Whether the stopping criterion was met within `max_iter`.
    pub converged: bool,
}

impl LinearSvm {
    /// The decision value `wᵀx + b`.
    pub fn decision(&self, x: &[f32]) -> f64 {
        self.w
            .iter()
            .zip(x)
            .map(|(w, &v)| w * v as f64)
            .sum::<f64>()
            + self.b
    }
}

/// Fits a linear SVM on rows `x[i]` with labels `y[i] ∈ {+1, −1}`.
pub fn fit_linear_svm(x: &[&[f32]], y: &[i8], p: &SvmParams) -> Result<LinearSvm> {
    p.check()?;
    let l = x.len();
    if l == 0 || y.len() != l {
        return Err(AttribError::invalid_param(
            "svm examples",
            format!("{l} rows, {} labels", y.len()),
            "need at least one row and one label per row",
        ));
    }
    let d = x[0].len();
    if let Some(i) = x.iter().position(|r| r.len() != d) {
        return Err(AttribError::invalid_param(
            "svm row",
            i,
            format!("width differs from {d}"),
        ));
    }
    if let Some(i) = y.iter().position(|&v| v != 1 && v != -1) {
        return Err(AttribError::invalid_param(
            "svm label",
            y[i],
            format!("row {i}: must be +1 or -1"),
        ));
    }
    let bias = p.bias.unwrap_or(0.0);
    let (diag, upper): (Vec<f64>, Vec<f64>) = y
        .iter()
        .map(|&yi| {
            let c = if yi > 0 { p.c_pos } else { p.c_neg };
            match p.loss {
                SvmLoss::Hinge => (0.0, c),
                SvmLoss::SquaredHinge => (0.5 / c, f64::INFINITY),
            }
        })
        .unzip();
    let qd: Vec<f64> = (0..l)
        .map(|i| diag[i] + x[i].iter().map(|&v| (v as f64).powi(2)).sum::<f64>() + bias * bias)
        .collect();
    let mut w = vec![0.0f64; d];
    let mut wb = 0.0f64;
    let mut alpha = vec![0.0f64; l];
    let mut index: Vec<usize> = (0..l).collect();
    let mut active = l;
    let (mut pg_max_old, mut pg_min_old) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut r = rng(p.seed);
    let mut iter = 0;
    let mut converged = false;
    while iter < p.max_iter {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for s in 0..active {
            let j = s + r.random_range(0..active - s);
            index.swap(s, j);
        }
        let mut s = 0;
        while s < active {
            let i = index[s];
            let yi = y[i] as f64;
            let xi = x[i];
            let wx: f64 = w.iter().zip(xi).map(|(w, &v)| w * v as f64).sum::<f64>() + wb * bias;
            let g = yi * wx - 1.0 + alpha[i] * diag[i];
            let mut pg = 0.0;
            if alpha[i] == 0.0 {
                if g > pg_max_old {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                } else if g < 0.0 {
                    pg = g;
                }
            } else if alpha[i] == upper[i] {
                if g < pg_min_old {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                } else if g > 0.0 {
                    pg = g;
                }
            } else {
                pg = g;
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (alpha[i] - g / qd[i]).max(0.0).min(upper[i]);
                let step = (alpha[i] - old) * yi;
                for (wk, &v) in w.iter_mut().zip(xi) {
                    *wk += step * v as f64;
                }
                wb += step * bias;
            }
            s += 1;
        }
        iter += 1;
        if pg_max - pg_min <= p.tol {
            if active == l {
                converged = true;
                break;
            }
            // Shrunk variables may have moved: one more pass over all of them.
            active = l;
            pg_max_old = f64::INFINITY;
            pg_min_old = f64::NEG_INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
        pg_min_old = if pg_min >= 0.0 {
            f64::NEG_INFINITY
        } else {
            pg_min
        };
    }
    Ok(LinearSvm {
        w,
        b: wb * bias,
        alpha,
        iterations: iter,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(loss: SvmLoss, c: f64, bias: Option<f64>) -> SvmParams {
        SvmParams {
            loss,
            c_pos: c,
            c_neg: c,
            bias,
            tol: 1e-10,
            max_iter: 100_000,
            seed: 3,
        }
    }

    #[test]
    fn two_points_by_hand() {
        // x₊ = 1, x₋ = −1, no bias. Hinge with large C: the max-margin w = 1.
        let rows: Vec<&[f32]> = vec![&[1.0], &[-1.0]];
        let svm = fit_linear_svm(&rows, &[1, -1], &params(SvmLoss::Hinge, 10.0, None)).unwrap();
        assert!((svm.w[0] - 1.0).abs() < 1e-8, "{svm:?}");
        // Squared hinge: min ½w² + 2C(1 − w)² gives w = 4C / (1 + 4C).
        let svm =
            fit_linear_svm(&rows, &[1, -1], &params(SvmLoss::SquaredHinge, 0.1, None)).unwrap();
        assert!((svm.w[0] - 0.4 / 1.4).abs() < 1e-8, "{svm:?}");
    }

    #[test]
    fn regularised_bias_by_hand() {
        // x₊ = 3, x₋ = 1 with bias feature 1: min ½(w² + b²) s.t. 3w + b ≥ 1,
        // w + b ≤ −1 → both active: w = 1, b = −2 (multipliers 1.5, 3.5 ≤ C).
        let rows: Vec<&[f32]> = vec![&[3.0], &[1.0]];
        let svm =
            fit_linear_svm(&rows, &[1, -1], &params(SvmLoss::Hinge, 10.0, Some(1.0))).unwrap();
        assert!(
            (svm.w[0] - 1.0).abs() < 1e-8 && (svm.b + 2.0).abs() < 1e-8,
            "{svm:?}"
        );
        assert!((svm.alpha[0] - 1.5).abs() < 1e-6 && (svm.alpha[1] - 3.5).abs() < 1e-6);
        assert!((svm.decision(&[3.0]) - 1.0).abs() < 1e-8);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let rows: Vec<&[f32]> = vec![&[1.0], &[2.0, 3.0]];
        assert!(fit_linear_svm(&rows, &[1, -1], &params(SvmLoss::Hinge, 1.0, None)).is_err());
        let rows: Vec<&[f32]> = vec![&[1.0], &[2.0]];
        assert!(fit_linear_svm(&rows, &[1, 0], &params(SvmLoss::Hinge, 1.0, None)).is_err());
        assert!(fit_linear_svm(&rows, &[1, -1], &params(SvmLoss::Hinge, 0.0, None)).is_err());
    }
}
