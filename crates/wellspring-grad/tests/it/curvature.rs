//! Hessian, Gauss-Newton and empirical Fisher products.

use nalgebra::DMatrix;
use wellspring_core::Dataset;
use wellspring_grad::{
    CrossEntropy, CurvatureParams, Damped, EmpiricalFisher, GradEngine, LinearOperator, Mse, Rows,
    explicit_gauss_newton, explicit_matrix,
};
use wellspring_models::{Model, ModelConfig};

use crate::{cpu, rel_err64, small_mlp, synthetic, values};

fn vec64(n: usize, salt: u64) -> Vec<f64> {
    values(n, salt).into_iter().map(f64::from).collect()
}

fn apply(op: &dyn LinearOperator, v: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; op.dim()];
    op.apply(v, &mut out).unwrap();
    out
}

/// `(1/n) Σ (diag(p) − ppᵀ) ⊗ x̄x̄ᵀ + l2 I` in the canonical layout
/// (weight `[d_in, d_out]` row-major, then bias).
fn logreg_hessian(data: &Dataset, logits: &[f64], d_in: usize, c: usize, l2: f64) -> DMatrix<f64> {
    let p = (d_in + 1) * c;
    let n = data.len();
    let idx = |j: usize, k: usize| if j < d_in { j * c + k } else { d_in * c + k };
    let mut h = DMatrix::<f64>::zeros(p, p);
    for i in 0..n {
        let mut x: Vec<f64> = data
            .features()
            .dense_row(i)
            .iter()
            .map(|&v| v as f64)
            .collect();
        x.push(1.0);
        let z = &logits[i * c..(i + 1) * c];
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let pr: Vec<f64> = e.iter().map(|v| v / s).collect();
        for j in 0..=d_in {
            for jj in 0..=d_in {
                for k in 0..c {
                    for kk in 0..c {
                        let q = if k == kk { pr[k] } else { 0.0 } - pr[k] * pr[kk];
                        h[(idx(j, k), idx(jj, kk))] += x[j] * x[jj] * q / n as f64;
                    }
                }
            }
        }
    }
    for j in 0..p {
        h[(j, j)] += l2;
    }
    h
}

fn max_rel(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).abs().max() / b.abs().max()
}

#[test]
fn hvp_matches_the_analytic_logistic_regression_hessian() {
    let (d_in, c) = (5, 3);
    let model = Model::new(ModelConfig::LogReg { d_in, n_out: c }, 1, &cpu()).unwrap();
    let data = synthetic(20, &[d_in], c, 1);
    let params = CurvatureParams::new().l2(0.01);
    let op = params.hessian(&model, &data, Rows::All, &cpu()).unwrap();
    let logits = op.context().logits(op.context().theta()).unwrap();
    let want = logreg_hessian(&data, &logits, d_in, c, 0.01);
    let got = explicit_matrix(&op, false).unwrap();
    let e = max_rel(&got, &want);
    println!("LogReg HVP (central differences, f64, step 1e-5): max relative error {e:.2e}");
    assert!(e < 1e-6, "HVP vs analytic Hessian: {e}");
    assert_eq!(op.applications(), op.dim());
    // Cross-entropy on a linear model: Gauss-Newton is the Hessian.
    let gn = params
        .gauss_newton(&model, &data, Rows::All, &cpu())
        .unwrap();
    let e = max_rel(&explicit_matrix(&gn, false).unwrap(), &want);
    assert!(e < 1e-6, "GN vs analytic Hessian: {e}");
}

#[test]
fn mlp_hvp_matches_second_differences_and_is_symmetric() {
    let model = small_mlp(6, &[5, 4], 3, 2);
    let data = synthetic(30, &[6], 3, 2);
    let op = CurvatureParams::new()
        .hessian(&model, &data, Rows::All, &cpu())
        .unwrap();
    let p = op.dim();
    let ctx = op.context();
    let theta = ctx.theta().to_vec();
    let (u, v) = (vec64(p, 1), vec64(p, 2));
    let hv = apply(&op, &v);
    let hu = apply(&op, &u);
    let vhv: f64 = v.iter().zip(&hv).map(|(a, b)| a * b).sum();
    let h = 1e-3;
    let at = |s: f64| -> f64 {
        let t: Vec<f64> = theta.iter().zip(&v).map(|(a, b)| a + s * b).collect();
        ctx.value(&t).unwrap()
    };
    let second = (at(h) - 2.0 * at(0.0) + at(-h)) / (h * h);
    let e = (vhv - second).abs() / second.abs();
    println!("MLP vᵀHv vs second difference of the loss: relative error {e:.2e}");
    assert!(e < 1e-4, "vᵀHv {vhv} vs second difference {second}");
    let uhv: f64 = u.iter().zip(&hv).map(|(a, b)| a * b).sum();
    let vhu: f64 = v.iter().zip(&hu).map(|(a, b)| a * b).sum();
    assert!(
        (uhv - vhu).abs() < 1e-6 * uhv.abs().max(vhu.abs()),
        "symmetry: {uhv} vs {vhu}"
    );
    // Linearity.
    let w: Vec<f64> = u.iter().zip(&v).map(|(a, b)| 2.0 * a - b).collect();
    let hw = apply(&op, &w);
    let want: Vec<f64> = hu.iter().zip(&hv).map(|(a, b)| 2.0 * a - b).collect();
    assert!(rel_err64(&hw, &want) < 1e-6);
}

#[test]
fn gauss_newton_matches_the_explicit_jacobian_product() {
    let model = small_mlp(6, &[4], 3, 3);
    let data = synthetic(10, &[6], 3, 3);
    let params = CurvatureParams::new().l2(0.1);
    let op = params
        .gauss_newton(&model, &data, Rows::All, &cpu())
        .unwrap();
    let want = explicit_gauss_newton(&params, &model, &data, Rows::All, &cpu()).unwrap();
    let got = explicit_matrix(&op, false).unwrap();
    let e = max_rel(&got, &want);
    println!("MLP Gauss-Newton operator vs explicit JᵀHJ: max relative error {e:.2e}");
    assert!(e < 1e-6, "{e}");
    let eig = want.symmetric_eigenvalues();
    assert!(
        eig.min() >= 0.1 - 1e-9,
        "GN + 0.1 I is positive definite: {}",
        eig.min()
    );

    // MSE on regression targets: H_i = (2/c) I.
    let reg = crate::regression(8, 6, 2);
    let m2 = small_mlp(6, &[4], 2, 4);
    let params = CurvatureParams::new().loss(Mse);
    let op = params.gauss_newton(&m2, &reg, Rows::All, &cpu()).unwrap();
    let want = explicit_gauss_newton(&params, &m2, &reg, Rows::All, &cpu()).unwrap();
    let v = vec64(op.dim(), 5);
    let got = apply(&op, &v);
    let w = &want * nalgebra::DVector::from_column_slice(&v);
    assert!(rel_err64(&got, w.as_slice()) < 1e-6);
}

#[test]
fn empirical_fisher_matches_gradient_outer_products() {
    let model = small_mlp(7, &[5], 3, 5);
    let data = synthetic(13, &[7], 3, 6);
    let engine = GradEngine::params()
        .output(CrossEntropy)
        .batch_size(4)
        .build(&model, &cpu())
        .unwrap();
    let g = engine.per_sample_matrix(&data, 0..13).unwrap();
    let p = engine.dim();
    let fisher = EmpiricalFisher::new(&engine, &data, 0..13).unwrap();
    let v = vec64(p, 9);
    let got = apply(&fisher, &v);
    let mut want = vec![0.0f64; p];
    for i in 0..13 {
        let row = &g[i * p..(i + 1) * p];
        let u: f64 = row.iter().zip(&v).map(|(a, b)| *a as f64 * b).sum();
        for (w, r) in want.iter_mut().zip(row) {
            *w += u * *r as f64 / 13.0;
        }
    }
    assert!(rel_err64(&got, &want) < 1e-5);
    let damped = Damped::new(&fisher, 0.5).unwrap();
    let gd = apply(&damped, &v);
    let want: Vec<f64> = got.iter().zip(&v).map(|(a, b)| a + 0.5 * b).collect();
    assert!(rel_err64(&gd, &want) < 1e-12);
    assert_eq!(fisher.applications(), 2);
}
