//! GradMatch: non-negative OMP weights that match the gradient sum.

use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use wellspring_select::{Budget, GradMatch, GradMatchMode, GradProxies, Selector, omp_nonneg};

use crate::common::{C, digits, inputs, state, warm_model};

fn residual(g: &GradProxies, idx: &[usize], w: &[f64], target: &[f64]) -> f64 {
    let d = g.dim();
    let mut r = target.to_vec();
    for (&i, &wi) in idx.iter().zip(w) {
        for (rj, &v) in r.iter_mut().zip(g.row(i)) {
            *rj -= wi * v as f64;
        }
    }
    debug_assert_eq!(r.len(), d);
    r.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn class_sum(g: &GradProxies, idx: &[usize]) -> Vec<f64> {
    let mut b = vec![0.0f64; g.dim()];
    for &i in idx {
        for (bj, &v) in b.iter_mut().zip(g.row(i)) {
            *bj += v as f64;
        }
    }
    b
}

#[test]
fn omp_weights_beat_uniform_weights_per_class() {
    let dg = digits();
    let inp = inputs(warm_model());
    for g in [&inp.bias, &inp.full] {
        for c in 0..C {
            let idx: Vec<usize> = (0..dg.y.len()).filter(|&i| dg.y[i] == c).collect();
            let sub = g.gather(&idx).unwrap();
            let b = class_sum(&sub, &(0..idx.len()).collect::<Vec<_>>());
            let k = idx.len() / 10;
            let sol = omp_nonneg(sub.values(), sub.dim(), &b, k, 0.5, 1e-100);
            assert!(!sol.support.is_empty() && sol.support.len() <= k);
            assert!(sol.weights.iter().all(|&w| w > 0.0));
            let ours = residual(&sub, &sol.support, &sol.weights, &b);
            assert!((ours - sol.residual_norm).abs() <= 1e-6 * (1.0 + ours));
            let uniform = vec![idx.len() as f64 / k as f64; sol.support.len()];
            let unif = residual(&sub, &sol.support, &uniform, &b);
            assert!(
                ours < 0.5 * unif,
                "class {c} dim {}: OMP {ours} vs uniform {unif}",
                g.dim()
            );
            assert!(ours < sol.target_norm);
        }
    }
}

#[test]
fn selector_weights_are_nonnegative_and_match_the_full_gradient() {
    let dg = digits();
    let n = dg.y.len();
    let inp = inputs(warm_model());
    let st = state(&inp, &inp.bias);
    let full = class_sum(&inp.bias, &(0..n).collect::<Vec<_>>());
    for mode in [
        GradMatchMode::PerClass,
        GradMatchMode::PerBatch { batch_size: 16 },
    ] {
        let gm = GradMatch::params().mode(mode).check().unwrap();
        let sel = gm.select(&st, Budget::Fraction(0.1), 5).unwrap();
        let k = (0.1 * n as f64).round() as usize;
        assert_eq!(sel.subset.len(), k);
        sel.subset.check_unique().unwrap();
        let w: Vec<f64> = sel
            .subset
            .weights()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        assert!(w.iter().all(|&v| v >= 0.0));
        let ours = residual(&inp.bias, sel.subset.indices(), &w, &full);
        let uniform = vec![n as f64 / k as f64; k];
        let unif = residual(&inp.bias, sel.subset.indices(), &uniform, &full);
        assert!(ours < unif, "{mode:?}: {ours} vs {unif}");
        assert!(sel.info.objective.iter().all(|&r| (0.0..1.0).contains(&r)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The final weights solve the ridge NNLS on the chosen atoms: the KKT
    /// conditions hold (gradient zero on the support, non-positive off it).
    #[test]
    fn refit_satisfies_nnls_kkt((_m, d, vals, tgt, k) in (2usize..12, 1usize..6).prop_flat_map(|(m, d)| (
        Just(m), Just(d), prop::collection::vec(-1.0f32..1.0, m * d), prop::collection::vec(-3.0f64..3.0, d), 1..=m))
    ) {
        let lambda = 0.5;
        let sol = omp_nonneg(&vals, d, &tgt, k, lambda, 1e-100);
        prop_assert!(sol.weights.iter().all(|&w| w > 0.0));
        prop_assert!(sol.support.len() <= k);
        let a = DMatrix::from_fn(d, sol.support.len(), |r, c| vals[sol.support[c] * d + r] as f64);
        let x = DVector::from_row_slice(&sol.weights);
        let b = DVector::from_row_slice(&tgt);
        let r = &b - &a * &x;
        // ∂/∂x_j [½‖Ax − b‖² + ½λ‖x‖²] = −a_jᵀr + λ x_j = 0 on the support.
        for (c, &j) in sol.support.iter().enumerate() {
            let aj = DVector::from_fn(d, |row, _| vals[j * d + row] as f64);
            let grad = -aj.dot(&r) + lambda * x[c];
            prop_assert!(grad.abs() < 1e-6, "atom {j}: gradient {grad}");
        }
        prop_assert!((r.norm() - sol.residual_norm).abs() < 1e-9);
        // Objective no worse than the empty selection.
        let obj = 0.5 * r.norm_squared() + 0.5 * lambda * x.norm_squared();
        prop_assert!(obj <= 0.5 * b.norm_squared() + 1e-12);
    }
}
