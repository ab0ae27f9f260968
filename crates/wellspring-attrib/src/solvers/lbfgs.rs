//! Limited-memory BFGS (Nocedal & Wright 2006, Algorithm 7.5, two-loop
//! recursion) with a backtracking Armijo line search, in `f64`, for smooth
//! convex problems such as RPS's L2-regularised last-layer refit.

use crate::error::{Result, positive};

/// Hyper-parameters of [`minimize`].
#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsParams {
    /// Stop when `‖∇f‖_∞ ≤ tol`.
    pub tol: f64,
    /// Maximum iterations.
    pub max_iter: usize,
    /// Number of correction pairs kept.
    pub history: usize,
}

impl Default for LbfgsParams {
    /// `tol = 1e-8`, at most 10 000 iterations, history 10.
    fn default() -> Self {
        Self {
            tol: 1e-8,
            max_iter: 10_000,
            history: 10,
        }
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

/// Minimises `f` from `x0`; `f(x, grad)` returns the objective and writes the
/// gradient. Returns the last point reached (the best found: every accepted
/// step decreases `f`) and the run's info.
pub fn minimize(
    mut x: Vec<f64>,
    p: &LbfgsParams,
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> Result<(Vec<f64>, LbfgsInfo)> {
    positive("lbfgs tol", p.tol)?;
    let n = x.len();
    let m = p.history.max(1);
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(m);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(m);
    let mut rho: Vec<f64> = Vec::with_capacity(m);
    let mut iterations = 0;
    let inf_norm = |v: &[f64]| v.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    while iterations < p.max_iter && inf_norm(&g) > p.tol && fx.is_finite() {
        // Two-loop recursion: direction = −H g.
        let mut q = g.clone();
        let k = s_hist.len();
        let mut a = vec![0.0; k];
        for t in (0..k).rev() {
            a[t] = rho[t] * dot(&s_hist[t], &q);
            axpy(-a[t], &y_hist[t], &mut q);
        }
        let gamma = if k > 0 {
            dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1])
        } else {
            1.0 / dot(&g, &g).sqrt().max(1e-300)
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for t in 0..k {
            let b = rho[t] * dot(&y_hist[t], &q);
            axpy(a[t] - b, &s_hist[t], &mut q);
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &dir);
        if slope >= 0.0 {
            // Not a descent direction (curvature information went stale): restart.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            let scale = 1.0 / dot(&g, &g).sqrt().max(1e-300);
            dir = g.iter().map(|v| -v * scale).collect();
            slope = dot(&g, &dir);
        }
        // Backtracking Armijo line search from the unit step.
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * dir[i];
            }
            let f_new = f(&x_new, &mut g_new);
            if f_new.is_finite() && f_new <= fx + 1e-4 * step * slope {
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
                std::mem::swap(&mut x, &mut x_new);
                std::mem::swap(&mut g, &mut g_new);
                fx = f_new;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        iterations += 1;
        if !accepted {
            break;
        }
    }
    let grad_inf_norm = inf_norm(&g);
    Ok((
        x,
        LbfgsInfo {
            iterations,
            objective: fx,
            grad_inf_norm,
            converged: grad_inf_norm <= p.tol,
        },
    ))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic_and_rosenbrock() {
        // f = Σ (i+1)(x_i − i)²
        let (x, info) = minimize(vec![0.0; 5], &LbfgsParams::default(), |x, g| {
            let mut f = 0.0;
            for i in 0..5 {
                let d = x[i] - i as f64;
                f += (i + 1) as f64 * d * d;
                g[i] = 2.0 * (i + 1) as f64 * d;
            }
            f
        })
        .unwrap();
        assert!(info.converged, "{info:?}");
        for (i, v) in x.iter().enumerate() {
            assert!((v - i as f64).abs() < 1e-8);
        }
        let (x, info) = minimize(vec![-1.2, 1.0], &LbfgsParams::default(), |x, g| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        })
        .unwrap();
        assert!(info.converged, "{info:?}");
        assert!((x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6);
    }
}
