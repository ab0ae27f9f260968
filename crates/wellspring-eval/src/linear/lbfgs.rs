//! A small deterministic L-BFGS (Nocedal & Wright 2006, algorithm 7.5) with
//! Armijo backtracking, for the smooth strongly convex objectives of
//! [`super::LinearRetrainer`]. No randomness, no threads: same input, same
//! iterates, bit for bit.

/// Outcome of [`minimize`].
#[derive(Clone, Debug)]
pub(crate) struct LbfgsInfo {
    pub iterations: usize,
    pub grad_inf_norm: f64,
    pub converged: bool,
}

/// Minimises `f` from `x` (updated in place). `f(x, g)` returns the value and
/// writes the gradient into `g`. Stops when `‖g‖_∞ ≤ tol` or after `max_iter`
/// iterations, or when a line search can make no progress.
pub(crate) fn minimize(
    f: impl Fn(&[f64], &mut [f64]) -> f64,
    x: &mut [f64],
    history: usize,
    tol: f64,
    max_iter: usize,
) -> LbfgsInfo {
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(history);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(history);
    let mut rho_hist: Vec<f64> = Vec::with_capacity(history);
    let mut d = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut alpha = vec![0.0; history];
    let mut iterations = 0;
    loop {
        let gnorm = inf_norm(&g);
        if gnorm <= tol {
            return LbfgsInfo {
                iterations,
                grad_inf_norm: gnorm,
                converged: true,
            };
        }
        if iterations >= max_iter {
            return LbfgsInfo {
                iterations,
                grad_inf_norm: gnorm,
                converged: false,
            };
        }
        // two-loop recursion: d = -H g
        d.copy_from_slice(&g);
        let k = s_hist.len();
        for j in (0..k).rev() {
            alpha[j] = rho_hist[j] * dot(&s_hist[j], &d);
            axpy(-alpha[j], &y_hist[j], &mut d);
        }
        let gamma = if k > 0 {
            dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1])
        } else {
            // first step: unit length along -g
            1.0 / l2_norm(&g).max(f64::MIN_POSITIVE)
        };
        d.iter_mut().for_each(|v| *v *= gamma);
        for j in 0..k {
            let beta = rho_hist[j] * dot(&y_hist[j], &d);
            axpy(alpha[j] - beta, &s_hist[j], &mut d);
        }
        d.iter_mut().for_each(|v| *v = -*v);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // not a descent direction (lost curvature information): restart on -g
            s_hist.clear();
            y_hist.clear();
            rho_hist.clear();
            let scale = 1.0 / l2_norm(&g).max(f64::MIN_POSITIVE);
            for (di, gi) in d.iter_mut().zip(&g) {
                *di = -gi * scale;
            }
            slope = dot(&g, &d);
        }
        // Backtracking from the unit step. Besides Armijo, accept the
        // approximate Wolfe condition of Hager & Zhang (2005): near the optimum
        // f stops resolving decreases in f64 while the gradient still does.
        let mut step = 1.0;
        let mut accepted = false;
        let f_slack = 1e-12 * fx.abs();
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            let f_new = f(&x_new, &mut g_new);
            if f_new.is_finite() {
                let armijo = f_new <= fx + 1e-4 * step * slope;
                let approx = f_new <= fx + f_slack && dot(&g_new, &d) <= -(1.0 - 2e-4) * slope;
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
            return LbfgsInfo {
                iterations,
                grad_inf_norm: gnorm,
                converged: false,
            };
        }
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * l2_norm(&s) * l2_norm(&y) {
            if s_hist.len() == history {
                s_hist.remove(0);
                y_hist.remove(0);
                rho_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho_hist.push(1.0 / sy);
        }
        let moved = x.iter().zip(&x_new).any(|(a, b)| a != b);
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        if !moved {
            // the step no longer changes x in f64: nothing more to gain
            let gnorm = inf_norm(&g);
            return LbfgsInfo {
                iterations,
                grad_inf_norm: gnorm,
                converged: gnorm <= tol,
            };
        }
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn l2_norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn inf_norm(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_an_ill_conditioned_quadratic() {
        // f(x) = ½ Σ c_i (x_i - i)², condition number 1e4
        let c: Vec<f64> = (0..20).map(|i| 10f64.powf(i as f64 / 19.0 * 4.0)).collect();
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..x.len() {
                let d = x[i] - i as f64;
                v += 0.5 * c[i] * d * d;
                g[i] = c[i] * d;
            }
            v
        };
        let mut x = vec![0.0; 20];
        let info = minimize(f, &mut x, 10, 1e-10, 1000);
        assert!(info.converged, "{info:?}");
        for (i, xi) in x.iter().enumerate() {
            assert!((xi - i as f64).abs() < 1e-9, "x[{i}] = {xi}");
        }
    }
}
