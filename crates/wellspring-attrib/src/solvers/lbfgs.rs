//! L-BFGS for RPS's L2-regularised last-layer refit: the workspace's one
//! implementation ([`wellspring_core::lbfgs`]) with Armijo steps, behind the
//! by-value signature and parameter check of this crate's solvers.

pub use wellspring_core::lbfgs::{LbfgsInfo, LbfgsParams, LineSearch};

use crate::error::{Result, positive};

/// Minimises `f` from `x0`; `f(x, grad)` returns the objective and writes the
/// gradient. Returns the last point reached (the best found: every accepted
/// step decreases `f`) and the run's info.
pub fn minimize(
    mut x: Vec<f64>,
    p: &LbfgsParams,
    f: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> Result<(Vec<f64>, LbfgsInfo)> {
    positive("lbfgs tol", p.tol)?;
    let info = wellspring_core::lbfgs::minimize(&mut x, p, f);
    Ok((x, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic_and_checks_the_tolerance() {
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
        let bad = LbfgsParams {
            tol: -1.0,
            ..LbfgsParams::default()
        };
        let e = minimize(vec![0.0], &bad, |_, g| {
            g[0] = 0.0;
            0.0
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("lbfgs tol"), "{e}");
    }
}
