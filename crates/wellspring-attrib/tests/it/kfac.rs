//! K-FAC, EK-FAC and DataInf against direct nalgebra computations of their
//! formulas on the one-layer logistic regression of `influence.rs`
//! (EK-FAC = K-FAC up to the eigenvalue correction: same eigenbasis, only
//! `Λ` differs), plus sign and clear errors.

use nalgebra::DMatrix;
use wellspring_attrib::methods::data_inf::DataInfParams;
use wellspring_attrib::methods::kfac_family::KfacInfluenceParams;
use wellspring_attrib::{
    Attributor, FittedAttributor, MethodOptions, ModelSource, ProjectionSpec, by_name,
};
use wellspring_core::ScoreMatrix;
use wellspring_grad::{CrossEntropy, GradEngine, KfacLabels, KfacParams};

use super::cpu;
use super::influence::logreg;

fn grads(data: &wellspring_core::Dataset) -> DMatrix<f64> {
    let c = logreg();
    let e = GradEngine::params()
        .output(CrossEntropy)
        .build(&c.model, &cpu())
        .unwrap();
    let g = e.per_sample_matrix(data, 0..data.len()).unwrap();
    let p = e.dim();
    DMatrix::from_fn(data.len(), p, |i, j| g[i * p + j] as f64)
}

fn close(a: &ScoreMatrix, b: &DMatrix<f64>, what: &str) {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for i in 0..a.n_train() {
        for j in 0..a.n_test() {
            let (x, y) = (a.get(i, j) as f64, b[(j, i)]);
            assert!(
                (x - y).abs() <= 2e-3 * scale,
                "{what} ({i}, {j}): {x} vs {y}"
            );
        }
    }
}

#[test]
fn kfac_and_ekfac_match_their_explicit_formulas_on_a_one_layer_model() {
    let c = logreg();
    let source = ModelSource::new(c.model.clone(), cpu());
    let seed = 4;
    let factors = KfacParams::new()
        .labels(KfacLabels::Sampled { seed })
        .fit(&c.model, &c.train, 0..c.train.len(), &cpu())
        .unwrap();
    let f = &factors.factors[0];
    let q = f.a_vectors.kronecker(&f.s_vectors); // eigenbasis of A ⊗ S
    let (gtr, gte) = (grads(&c.train), grads(&c.test));
    let (rtr, rte) = (&gtr * &q, &gte * &q);

    let kfac = KfacInfluenceParams::new(false)
        .seed(seed)
        .fit(&source, &c.train)
        .unwrap();
    let lam_k: Vec<f64> = f
        .a_values
        .iter()
        .flat_map(|a| f.s_values.iter().map(move |s| (a * s).max(0.0)))
        .collect();
    let inv = |lam: &[f64], damp: f64| {
        DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
            lam.len(),
            lam.iter().map(|l| 1.0 / (l + damp)),
        ))
    };
    let want = &rte * inv(&lam_k, kfac.lambda()) * rtr.transpose();
    close(&kfac.attribute(&c.test).unwrap(), &want, "kfac");
    // and K-FAC is (A ⊗ S + λI)⁻¹ in the original coordinates
    let mut ks = f.a.kronecker(&f.s);
    for d in 0..ks.nrows() {
        ks[(d, d)] += kfac.lambda();
    }
    let direct = &gte * ks.try_inverse().unwrap() * gtr.transpose();
    close(
        &kfac.attribute(&c.test).unwrap(),
        &direct,
        "kfac vs (A⊗S+λI)⁻¹",
    );

    // EK-FAC: same eigenbasis, eigenvalues = mean squared rotated sampled-label gradients
    let ekfac = KfacInfluenceParams::new(true)
        .seed(seed)
        .fit(&source, &c.train)
        .unwrap();
    let sampled = c
        .train
        .with_labels(
            factors.sampled.clone().unwrap(),
            c.train.n_classes().unwrap(),
        )
        .unwrap();
    let rs = grads(&sampled) * &q;
    let lam_e: Vec<f64> = (0..rs.ncols())
        .map(|j| rs.column(j).norm_squared() / rs.nrows() as f64)
        .collect();
    let want = &rte * inv(&lam_e, ekfac.lambda()) * rtr.transpose();
    close(&ekfac.attribute(&c.test).unwrap(), &want, "ekfac");
    assert!(
        lam_e
            .iter()
            .zip(&lam_k)
            .any(|(a, b)| (a - b).abs() > 1e-6 * b.abs().max(1e-12))
    );
}

#[test]
fn datainf_matches_its_formula() {
    let c = logreg();
    let source = ModelSource::new(c.model.clone(), cpu());
    let fitted = DataInfParams::new()
        .projection(ProjectionSpec::Identity)
        .fit(&source, &c.train)
        .unwrap();
    let (gtr, gte) = (grads(&c.train), grads(&c.test));
    let (n, d) = gtr.shape();
    let norms: Vec<f64> = (0..n).map(|i| gtr.row(i).norm_squared()).collect();
    // one layer: weight and bias together
    let lambda = 0.1 * norms.iter().sum::<f64>() / (n as f64 * d as f64);
    assert!((fitted.lambdas().unwrap()[0] - lambda).abs() <= 1e-9 * lambda.max(1.0));
    let mut m = DMatrix::<f64>::identity(d, d);
    for i in 0..n {
        let g = gtr.row(i).transpose();
        m -= &g * g.transpose() / ((lambda + norms[i]) * n as f64);
    }
    let want = &gte * (m / lambda) * gtr.transpose();
    close(&fitted.attribute(&c.test).unwrap(), &want, "datainf");
}

#[test]
fn sign_and_errors() {
    use rand::RngExt;
    let c = logreg();
    let (n, m) = (c.train.len(), c.test.len());
    let mut r = wellspring_core::rng(6);
    let random: Vec<usize> = (0..m).map(|_| r.random_range(0..n)).collect();
    for name in ["kfac", "ekfac", "datainf"] {
        let s = by_name(name, &MethodOptions::new().seed(1))
            .unwrap()
            .fit_dyn(&ModelSource::new(c.model.clone(), cpu()), &c.train)
            .unwrap()
            .attribute(&c.test)
            .unwrap();
        let wins = (0..m)
            .filter(|&j| c.loo[s.top_k(j, 1)[0] * m + j] > c.loo[random[j] * m + j])
            .count();
        eprintln!("sign {name}: top-1 removal beats random on {wins}/{m}");
        assert!(wins * 2 > m, "{name}: {wins}/{m}");
    }
    for (name, key, v) in [
        ("kfac", "damping", "-1"),
        ("ekfac", "damping-rel", "-0.5"),
        ("datainf", "damping-scale", "0"),
    ] {
        let e = by_name(name, &MethodOptions::new().param(key, v))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(key), "{e}");
    }
    let e = by_name(
        "ekfac",
        &MethodOptions::new().projection(ProjectionSpec::Gaussian { dim: 8 }),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("eigenbasis"), "{e}");
}
