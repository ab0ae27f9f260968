//! RPS: the refit converges, and the representer decomposition reproduces
//! the refitted logits (Yeh et al. 2018, Theorem 3.1).

use wellspring_attrib::methods::rps::{RefitTarget, RpsParams};
use wellspring_attrib::{Attributor, FittedAttributor};

use super::{cpu, fixture, source};

#[test]
fn refit_converges_and_decomposition_reproduces_logits() {
    let fx = fixture();
    for target in [RefitTarget::ModelOutputs, RefitTarget::Labels] {
        let rps = RpsParams::new()
            .target(target)
            .fit(&source(), &fx.train)
            .unwrap();
        let info = rps.refit_info();
        assert!(info.converged && info.grad_inf_norm <= 1e-8, "{info:?}");
        let (n, c) = (fx.train.len(), 10);
        let d = fx.model.feature_dim();
        let ftr = rps.train_features();
        let fte = wellspring_models::features(&fx.model, &fx.test, &cpu()).unwrap();
        let (alpha, theta) = (rps.alpha(), rps.theta());
        // Stationarity holds up to the final gradient: Θ* − Σ α_i f_iᵀ = ∇J / (2λ),
        // so |refit − representer| ≤ ‖∇J‖_∞ / (2λ) · ‖f_j‖₁ (plus rounding).
        let slack = info.grad_inf_norm / (2.0 * 0.003);
        let mut worst = 0.0f64;
        for j in 0..fx.test.len() {
            let q = &fte[j * d..(j + 1) * d];
            for k in 0..c {
                let refit: f64 = (0..d).map(|a| theta[k * d + a] * q[a] as f64).sum();
                let rep: f64 = (0..n)
                    .map(|i| {
                        let dot: f64 = (0..d).map(|a| ftr[i * d + a] as f64 * q[a] as f64).sum();
                        alpha[i * c + k] * dot
                    })
                    .sum();
                let l1: f64 = q.iter().map(|v| v.abs() as f64).sum();
                let bound = slack * l1 + 1e-9 * (1.0 + refit.abs());
                worst = worst.max((refit - rep).abs() / bound);
            }
        }
        assert!(
            worst <= 1.0,
            "{target:?}: representer logits exceed the stationarity bound {worst}x"
        );
        // the score matrix holds exactly the class-c_j terms of that sum
        let s = rps.attribute(&fx.test).unwrap();
        let labels = fx.test.labels().unwrap();
        let j = 3;
        let q = &fte[j * d..(j + 1) * d];
        let rep_sum: f64 = (0..n).map(|i| s.get(i, j) as f64).sum();
        let refit: f64 = (0..d).map(|a| theta[labels[j] * d + a] * q[a] as f64).sum();
        assert!(
            (rep_sum - refit).abs() < 1e-3 * (1.0 + refit.abs()),
            "{rep_sum} vs {refit}"
        );
    }
}
