//! The dual coordinate-descent SVM against brute-force optimality checks:
//! KKT conditions of the dual, the primal-dual gap, and no better primal point
//! among random perturbations.

use rand::RngExt;
use wellspring_attrib::solvers::svm::{LinearSvm, SvmLoss, SvmParams, fit_linear_svm};
use wellspring_core::rng;

fn data(n: usize, d: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<i8>) {
    let mut r = rng(seed);
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let label: i8 = if i == 0 || r.random::<f32>() < 0.3 {
            1
        } else {
            -1
        };
        let shift = if label > 0 { 0.7 } else { -0.3 };
        rows.push(
            (0..d)
                .map(|_| r.random_range(-1.0f32..1.0) + shift)
                .collect(),
        );
        y.push(label);
    }
    (rows, y)
}

fn primal(svm: &LinearSvm, rows: &[&[f32]], y: &[i8], p: &SvmParams, w: &[f64], b_w: f64) -> f64 {
    let bias = p.bias.unwrap_or(0.0);
    let mut obj = 0.5 * (w.iter().map(|v| v * v).sum::<f64>() + b_w * b_w);
    for (x, &yi) in rows.iter().zip(y) {
        let m =
            yi as f64 * (w.iter().zip(*x).map(|(a, &v)| a * v as f64).sum::<f64>() + b_w * bias);
        let c = if yi > 0 { p.c_pos } else { p.c_neg };
        let xi = (1.0 - m).max(0.0);
        obj += c * match p.loss {
            SvmLoss::Hinge => xi,
            SvmLoss::SquaredHinge => xi * xi,
        };
    }
    let _ = svm;
    obj
}

#[test]
fn kkt_gap_and_perturbations() {
    for (loss, seed) in [
        (SvmLoss::SquaredHinge, 1),
        (SvmLoss::Hinge, 2),
        (SvmLoss::SquaredHinge, 3),
    ] {
        let (rows, y) = data(60, 5, seed);
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let l = y.len() as f64;
        let n_pos = y.iter().filter(|&&v| v > 0).count() as f64;
        let p = SvmParams {
            loss,
            c_pos: 0.1 * l / (2.0 * n_pos),
            c_neg: 0.1 * l / (2.0 * (l - n_pos)),
            bias: Some(1.0),
            tol: 1e-9,
            max_iter: 100_000,
            seed,
        };
        let svm = fit_linear_svm(&refs, &y, &p).unwrap();
        assert!(svm.converged);
        let bias = 1.0;
        let b_w = svm.b / bias;
        // w = Σ α_i y_i x̃_i
        for k in 0..5 {
            let s: f64 = (0..refs.len())
                .map(|i| svm.alpha[i] * y[i] as f64 * refs[i][k] as f64)
                .sum();
            assert!((s - svm.w[k]).abs() < 1e-9);
        }
        // KKT of the dual
        let mut dual = 0.0;
        for i in 0..refs.len() {
            let c = if y[i] > 0 { p.c_pos } else { p.c_neg };
            let (diag, upper) = match loss {
                SvmLoss::Hinge => (0.0, c),
                SvmLoss::SquaredHinge => (0.5 / c, f64::INFINITY),
            };
            let g = y[i] as f64 * svm.decision(refs[i]) - 1.0 + diag * svm.alpha[i];
            let a = svm.alpha[i];
            assert!(a >= 0.0 && a <= upper);
            if a == 0.0 {
                assert!(g >= -1e-6, "alpha 0 with gradient {g}");
            } else if a == upper {
                assert!(g <= 1e-6, "alpha at bound with gradient {g}");
            } else {
                assert!(g.abs() <= 1e-6, "free alpha with gradient {g}");
            }
            dual += a - 0.5 * diag * a * a;
        }
        let wn = svm.w.iter().map(|v| v * v).sum::<f64>() + b_w * b_w;
        dual -= 0.5 * wn;
        let pr = primal(&svm, &refs, &y, &p, &svm.w, b_w);
        assert!(
            pr >= dual - 1e-9 && pr - dual <= 1e-6 * (1.0 + pr.abs()),
            "gap {pr} vs {dual}"
        );
        // no random perturbation improves the primal
        let mut r = rng(7);
        for _ in 0..200 {
            let eps = 10f64.powi(-r.random_range(1..5));
            let w2: Vec<f64> = svm
                .w
                .iter()
                .map(|v| v + eps * r.random_range(-1.0..1.0))
                .collect();
            let b2 = b_w + eps * r.random_range(-1.0..1.0);
            assert!(primal(&svm, &refs, &y, &p, &w2, b2) >= pr - 1e-9);
        }
    }
}
