//! Limited-memory BFGS (Nocedal & Wright 2006, Algorithm 7.5, two-loop
//! recursion) with a backtracking line search, in `f64`, for the smooth
//! convex problems of the workspace: RPS's L2-regularised last-layer refit
//! (attrib) and the linear retrainer's softmax / ridge fits (eval). No
//! randomness, no threads: same input, same iterates, bit for bit.

use crate::error::{CoreError, Result};
use crate::linalg::dot64 as dot;

/// Which steps the backtracking line search accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LineSearch {
    /// Armijo sufficient decrease only, `f(x + t d) ≤ f(x) + 10⁻⁴ t ∇fᵀd`.
    #[default]
    Armijo,
    /// Armijo, or the approximate Wolfe condition of Hager & Zhang (2005):
    /// near the optimum `f` stops resolving decreases in `f64` while the
    /// gradient still does, so tight gradient tolerances stay reachable.
    ArmijoOrApproxWolfe,
}

/// Hyper-parameters of [`minimize`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsParams {
    /// Stop when `‖∇f‖_∞ ≤ tol`.
    pub tol: f64,
    /// Maximum iterations.
    pub max_iter: usize,
    /// Number of correction pairs kept (at least 1 is used).
    pub history: usize,
    /// Steps the line search accepts.
    pub line_search: LineSearch,
}

impl Default for LbfgsParams {
    /// `tol = 1e-8`, at most 10 000 iterations, history 10, Armijo steps.
    fn default() -> Self {
        Self {
            tol: 1e-8,
            max_iter: 10_000,
            history: 10,
            line_search: LineSearch::Armijo,
        }
    }
}

impl LbfgsParams {
    /// Errors if `tol` is not finite and positive.
    pub fn check(&self) -> Result<()> {
        if !self.tol.is_finite() || self.tol <= 0.0 {
            return Err(CoreError::InvalidParam {
                name: "lbfgs tol".into(),
                value: self.tol.to_string(),
                reason: "must be finite and > 0".into(),
            });
        }
        Ok(())
    }
}

/// How a run went (faer-style info).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsInfo {
    /// Iterations taken.
    pub iterations: usize,
    /// Objective at the returned point.
    pub objective: f64,
    /// `‖∇f‖_∞` at the returned point.
    pub grad_inf_norm: f64,
    /// Whether `‖∇f‖_∞ ≤ tol` was reached.
    pub converged: bool,
}

/// Minimises `f` from `x` (updated in place); `f(x, grad)` returns the
/// objective and writes the gradient. Stops when `‖∇f‖_∞ ≤ tol`, after
/// `max_iter` iterations, when the objective is not finite, when no step
/// along the search direction is accepted, or when an accepted step no longer
/// changes `x` in `f64`. Every accepted step decreases `f` (or, under
/// [`LineSearch::ArmijoOrApproxWolfe`], keeps it within rounding), so `x` ends
/// at the best point found. Call [`LbfgsParams::check`] first.
pub fn minimize(
    x: &mut [f64],
    p: &LbfgsParams,
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> LbfgsInfo {
    let n = x.len();
    let m = p.history.max(1);
    let mut g = vec![0.0; n];
    let mut fx = f(x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(m);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(m);
    let mut rho: Vec<f64> = Vec::with_capacity(m);
    let mut alpha = vec![0.0; m];
    let mut dir = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut iterations = 0;
    while iterations < p.max_iter && inf_norm(&g) > p.tol && fx.is_finite() {
        // Two-loop recursion: dir = −H g.
        dir.copy_from_slice(&g);
        let k = s_hist.len();
        for t in (0..k).rev() {
            alpha[t] = rho[t] * dot(&s_hist[t], &dir);
            axpy(-alpha[t], &y_hist[t], &mut dir);
        }
        let gamma = if k > 0 {
            dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1])
        } else {
            // first step: unit length along −g
            1.0 / dot(&g, &g).sqrt().max(1e-300)
        };
        dir.iter_mut().for_each(|v| *v *= gamma);
        for t in 0..k {
            let b = rho[t] * dot(&y_hist[t], &dir);
            axpy(alpha[t] - b, &s_hist[t], &mut dir);
        }
        dir.iter_mut().for_each(|v| *v = -*v);
        let mut slope = dot(&g, &dir);
        if slope >= 0.0 {
            // Not a descent direction (curvature information went stale): restart.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            let scale = 1.0 / dot(&g, &g).sqrt().max(1e-300);
            for (d, gi) in dir.iter_mut().zip(&g) {
                *d = -gi * scale;
            }
            slope = dot(&g, &dir);
        }
        // Backtracking line search from the unit step.
        let f_slack = 1e-12 * fx.abs();
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * dir[i];
            }
            let f_new = f(&x_new, &mut g_new);
            if f_new.is_finite() {
                let armijo = f_new <= fx + 1e-4 * step * slope;
                let approx = p.line_search == LineSearch::ArmijoOrApproxWolfe
                    && f_new <= fx + f_slack
                    && dot(&g_new, &dir) <= -(1.0 - 2e-4) * slope;
                if armijo || approx {
                    fx = f_new;
                    accepted = true;
                    break;
                }
            }
            step *= 0.5;
        }
        iterations += 1;
        if !accepted {
            break;
        }
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if s_hist.len() == m {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho.push(1.0 / sy);
        }
        let moved = x.iter().zip(&x_new).any(|(a, b)| a != b);
        x.copy_from_slice(&x_new);
        std::mem::swap(&mut g, &mut g_new);
        if !moved {
            // the step no longer changes x in f64: nothing more to gain
            break;
        }
    }
    let grad_inf_norm = inf_norm(&g);
    LbfgsInfo {
        iterations,
        objective: fx,
        grad_inf_norm,
        converged: grad_inf_norm <= p.tol,
    }
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |a, &b| a.max(b.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic_and_rosenbrock() {
        // f = Σ (i+1)(x_i − i)²
        let mut x = vec![0.0; 5];
        let info = minimize(&mut x, &LbfgsParams::default(), |x, g| {
            let mut f = 0.0;
            for i in 0..5 {
                let d = x[i] - i as f64;
                f += (i + 1) as f64 * d * d;
                g[i] = 2.0 * (i + 1) as f64 * d;
            }
            f
        });
        assert!(info.converged, "{info:?}");
        for (i, v) in x.iter().enumerate() {
            assert!((v - i as f64).abs() < 1e-8);
        }
        let mut x = vec![-1.2, 1.0];
        let info = minimize(&mut x, &LbfgsParams::default(), |x, g| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        });
        assert!(info.converged, "{info:?}");
        assert!((x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn approximate_wolfe_reaches_a_tight_tolerance_when_ill_conditioned() {
        // f(x) = ½ Σ c_i (x_i − i)², condition number 1e4
        let c: Vec<f64> = (0..20).map(|i| 10f64.powf(i as f64 / 19.0 * 4.0)).collect();
        let p = LbfgsParams {
            tol: 1e-10,
            max_iter: 1000,
            history: 10,
            line_search: LineSearch::ArmijoOrApproxWolfe,
        };
        let mut x = vec![0.0; 20];
        let info = minimize(&mut x, &p, |x, g| {
            let mut v = 0.0;
            for i in 0..x.len() {
                let d = x[i] - i as f64;
                v += 0.5 * c[i] * d * d;
                g[i] = c[i] * d;
            }
            v
        });
        assert!(info.converged, "{info:?}");
        for (i, xi) in x.iter().enumerate() {
            assert!((xi - i as f64).abs() < 1e-9, "x[{i}] = {xi}");
        }
    }

    #[test]
    fn bad_tolerance_is_named() {
        let p = LbfgsParams {
            tol: 0.0,
            ..LbfgsParams::default()
        };
        let e = p.check().unwrap_err().to_string();
        assert!(e.contains("lbfgs tol"), "{e}");
    }
}
