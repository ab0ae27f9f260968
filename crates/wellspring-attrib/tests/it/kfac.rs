//! K-FAC, EK-FAC and DataInf against direct nalgebra computations of their
//! formulas on the one-layer logistic regression of `influence.rs`
//! (EK-FAC = K-FAC up to the eigenvalue correction: same eigenbasis, only
//! `Λ` differs), plus sign and clear errors.

// index loops mirror the formulas being checked
#![allow(clippy::needless_range_loop, clippy::single_range_in_vec_init)]

use nalgebra::DMatrix;
use wellspring_attrib::methods::data_inf::DataInfParams;
use wellspring_attrib::methods::kfac_family::{KfacDamping, KfacInfluenceParams};
use wellspring_attrib::{
    Attributor, FittedAttributor, MethodOptions, ModelSource, ProjectionSpec, by_name,
};
use wellspring_core::ScoreMatrix;
use wellspring_grad::{
    CrossEntropy, GradEngine, KfacLabels, KfacParams, KroneckerProjector, LayerSelection,
};

use super::influence::logreg;
use super::{cpu, fixture};

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
fn ekfac_on_true_labels_and_datainf_with_absolute_damping_match_their_formulas() {
    // the settings `cargo xtask compare-dattri` matches dattri with: EK-FAC on
    // the dataset's labels (empirical Fisher) and one absolute DataInf λ
    let c = logreg();
    let source = ModelSource::new(c.model.clone(), cpu());
    let damp = 0.05;
    let factors = KfacParams::new()
        .labels(KfacLabels::TrueLabel)
        .fit(&c.model, &c.train, 0..c.train.len(), &cpu())
        .unwrap();
    let f = &factors.factors[0];
    let q = f.a_vectors.kronecker(&f.s_vectors);
    let (gtr, gte) = (grads(&c.train), grads(&c.test));
    let (rtr, rte) = (&gtr * &q, &gte * &q);
    let inv = DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
        rtr.ncols(),
        (0..rtr.ncols()).map(|j| 1.0 / (rtr.column(j).norm_squared() / rtr.nrows() as f64 + damp)),
    ));
    let ekfac = by_name(
        "ekfac",
        &MethodOptions::new()
            .param("labels", "true")
            .param("damping", damp.to_string()),
    )
    .unwrap()
    .fit_dyn(&source, &c.train)
    .unwrap();
    let want = &rte * inv * rtr.transpose();
    close(
        &ekfac.attribute(&c.test).unwrap(),
        &want,
        "ekfac labels=true",
    );

    let fitted = DataInfParams::new()
        .projection(ProjectionSpec::Identity)
        .damping(damp)
        .fit(&source, &c.train)
        .unwrap();
    assert_eq!(fitted.lambdas().unwrap(), vec![damp]);
    let (n, d) = gtr.shape();
    let mut m = DMatrix::<f64>::identity(d, d);
    for i in 0..n {
        let g = gtr.row(i).transpose();
        m -= &g * g.transpose() / ((damp + g.norm_squared()) * n as f64);
    }
    let want = &gte * (m / damp) * gtr.transpose();
    close(
        &fitted.attribute(&c.test).unwrap(),
        &want,
        "datainf damping=0.05",
    );

    for (name, opts, key) in [
        (
            "ekfac",
            MethodOptions::new().param("labels", "both"),
            "labels",
        ),
        (
            "datainf",
            MethodOptions::new()
                .param("damping", "0.1")
                .param("damping-scale", "0.1"),
            "damping",
        ),
        (
            "datainf",
            MethodOptions::new().param("damping", "0"),
            "damping",
        ),
    ] {
        let e = by_name(name, &opts).err().unwrap().to_string();
        assert!(e.contains(key), "{e}");
    }
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

/// DataInf's formula on row-major `n × k` training / `m × k` test features
/// with the given column blocks, as `m × n`.
fn datainf_direct(
    tr: &[f32],
    te: &[f32],
    k: usize,
    blocks: &[std::ops::Range<usize>],
    layer_sizes: &[usize],
) -> (DMatrix<f64>, Vec<f64>) {
    let (n, m) = (tr.len() / k, te.len() / k);
    let mut out = DMatrix::<f64>::zeros(m, n);
    let mut lambdas = Vec::new();
    for (b, &d_l) in blocks.iter().zip(layer_sizes) {
        let d = b.len();
        let g = DMatrix::from_fn(n, d, |i, c| tr[i * k + b.start + c] as f64);
        let t = DMatrix::from_fn(m, d, |j, c| te[j * k + b.start + c] as f64);
        let norms: Vec<f64> = (0..n).map(|i| g.row(i).norm_squared()).collect();
        // the paper's λ_l: the layer's parameter count, not the sketch width
        let lambda = 0.1 * norms.iter().sum::<f64>() / (n * d_l) as f64;
        let mut h = DMatrix::<f64>::identity(d, d);
        for i in 0..n {
            let gi = g.row(i).transpose();
            h -= &gi * gi.transpose() / ((lambda + norms[i]) * n as f64);
        }
        out += &t * (h / lambda) * g.transpose();
        lambdas.push(lambda);
    }
    (out, lambdas)
}

#[test]
fn datainf_kronecker_blocks_are_the_layers_own_sketches() {
    // On the MLP, kronecker:k gives one k-wide block per layer (the factors
    // of the summed kronecker:k of the other methods, concatenated), with its
    // own λ_l; the scores equal the per-layer formula on those sketches.
    let fx = fixture();
    let (k, seed) = (64, 3);
    let train = fx.train.select(&(0..120).collect::<Vec<_>>()).unwrap();
    let test = fx.test.select(&(0..10).collect::<Vec<_>>()).unwrap();
    let fitted = DataInfParams::new()
        .projection(ProjectionSpec::Kronecker { dim: k })
        .seed(seed)
        .fit(&ModelSource::new(fx.model.clone(), cpu()), &train)
        .unwrap();
    let blocks = fitted.blocks().to_vec();
    assert_eq!(blocks, vec![0..k, k..2 * k, 2 * k..3 * k]);

    let layout = LayerSelection::All.resolve(&fx.model).unwrap();
    let summed = KroneckerProjector::new(&layout, k, seed).unwrap();
    let factors = summed
        .layers()
        .iter()
        .map(|l| (l.ga.clone(), l.k_a, l.gd.clone(), l.k_d))
        .collect();
    let concat = KroneckerProjector::from_factors(&layout, factors, true, "test").unwrap();
    let e = GradEngine::params()
        .output(CrossEntropy)
        .build(&fx.model, &cpu())
        .unwrap();
    let tr = e.projected_matrix(&train, 0..train.len(), &concat).unwrap();
    let te = e.projected_matrix(&test, 0..test.len(), &concat).unwrap();
    // the blocks add up to the summed sketch the other methods use
    let tr_sum = e.projected_matrix(&train, 0..train.len(), &summed).unwrap();
    for i in 0..train.len() {
        for c in 0..k {
            let s: f32 = (0..3).map(|l| tr[i * 3 * k + l * k + c]).sum();
            let want = tr_sum[i * k + c];
            assert!(
                (s - want).abs() <= 1e-4 * want.abs().max(1e-3),
                "({i}, {c}): {s} vs {want}"
            );
        }
    }
    let sizes: Vec<usize> = layout.slots().iter().map(|s| s.desc.len).collect();
    let (want, lambdas) = datainf_direct(&tr, &te, 3 * k, &blocks, &sizes);
    let got = fitted.lambdas().unwrap();
    for (a, b) in got.iter().zip(&lambdas) {
        assert!((a - b).abs() <= 1e-4 * b, "λ_l {a} vs {b}");
    }
    assert!(
        lambdas
            .iter()
            .any(|l| (l - lambdas[0]).abs() > 1e-3 * lambdas[0])
    );
    close(
        &fitted.attribute(&test).unwrap(),
        &want,
        "datainf per layer",
    );
    assert_eq!(
        DataInfParams::new()
            .projection(ProjectionSpec::Gaussian { dim: 32 })
            .fit(&ModelSource::new(fx.model.clone(), cpu()), &train)
            .unwrap()
            .blocks(),
        &[0..32]
    );
}

#[test]
fn kfac_rotation_preserves_inner_products_on_an_mlp() {
    // The per-layer eigenbasis (Q_A ⊗ Q_S) is orthogonal, so with a damping
    // far above every eigenvalue, λ · score → g_iᵀ g_j over all three layers
    // of the MLP: Grad-Dot without projection.
    let fx = fixture();
    let train = fx.train.select(&(0..120).collect::<Vec<_>>()).unwrap();
    let test = fx.test.select(&(0..10).collect::<Vec<_>>()).unwrap();
    let source = ModelSource::new(fx.model.clone(), cpu());
    let first = KfacInfluenceParams::new(false)
        .fit(&source, &train)
        .unwrap();
    assert!(first.skipped_layers().is_empty());
    let max_eig = first
        .inverse_eigenvalues()
        .iter()
        .map(|&w| 1.0 / w as f64 - first.lambda())
        .fold(0.0f64, f64::max);
    assert!(max_eig > 0.0);
    let lambda = 1e4 * max_eig;
    for corrected in [false, true] {
        let big = KfacInfluenceParams::new(corrected)
            .damping(KfacDamping::Absolute(lambda))
            .fit(&source, &train)
            .unwrap();
        assert_eq!(big.lambda(), lambda);
        let s = big.attribute(&test).unwrap();
        let dot = by_name(
            "grad-dot",
            &MethodOptions::new().projection(ProjectionSpec::Identity),
        )
        .unwrap()
        .fit_dyn(&source, &train)
        .unwrap()
        .attribute(&test)
        .unwrap();
        let scale = (0..train.len())
            .flat_map(|i| (0..test.len()).map(move |j| (i, j)))
            .fold(0.0f64, |m, (i, j)| m.max(dot.get(i, j).abs() as f64));
        for i in 0..train.len() {
            for j in 0..test.len() {
                let (x, y) = (s.get(i, j) as f64 * lambda, dot.get(i, j) as f64);
                assert!(
                    (x - y).abs() <= 2e-3 * scale,
                    "corrected={corrected} ({i}, {j}): {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn ekfac_eigenvalues_keep_each_layers_trace_on_an_mlp() {
    // Σ over a layer's rotated coordinates of the corrected eigenvalues is
    // the mean squared norm of that layer's sampled-label gradient (the
    // rotation is orthogonal): checks the per-layer order of Λ.
    let fx = fixture();
    let train = fx.train.select(&(0..120).collect::<Vec<_>>()).unwrap();
    let seed = 9;
    let ek = KfacInfluenceParams::new(true)
        .seed(seed)
        .fit(&ModelSource::new(fx.model.clone(), cpu()), &train)
        .unwrap();
    let factors = KfacParams::new()
        .labels(KfacLabels::Sampled { seed })
        .fit(&fx.model, &train, 0..train.len(), &cpu())
        .unwrap();
    let sampled = train
        .with_labels(factors.sampled.clone().unwrap(), 10)
        .unwrap();
    let e = GradEngine::params()
        .output(CrossEntropy)
        .build(&fx.model, &cpu())
        .unwrap();
    let g = e.per_sample_matrix(&sampled, 0..train.len()).unwrap();
    let p = e.dim();
    let layout = LayerSelection::All.resolve(&fx.model).unwrap();
    assert_eq!(ek.inverse_eigenvalues().len(), p);
    assert_eq!(layout.slots().len(), 3);
    for slot in layout.slots() {
        let r = slot.range();
        let want: f64 = (0..train.len())
            .map(|i| {
                g[i * p + r.start..i * p + r.end]
                    .iter()
                    .map(|&v| v as f64 * v as f64)
                    .sum::<f64>()
            })
            .sum::<f64>()
            / train.len() as f64;
        let got: f64 = ek.inverse_eigenvalues()[r.clone()]
            .iter()
            .map(|&w| 1.0 / w as f64 - ek.lambda())
            .sum();
        assert!(
            (got - want).abs() <= 1e-3 * want,
            "layer {r:?}: Σ Λ = {got} vs mean ‖g_l‖² = {want}"
        );
    }
}

#[test]
fn datainf_identity_on_an_mlp_uses_the_kernels() {
    // Layers of 50 240 parameters: M_l is never formed (M_l v through the
    // n-wide kernel G_l v); scores are finite, chunking changes nothing, and
    // self-influence equals the diagonal of the train × train scores.
    let fx = fixture();
    let train = fx.train.select(&(0..60).collect::<Vec<_>>()).unwrap();
    let fitted = DataInfParams::new()
        .projection(ProjectionSpec::Identity)
        .fit(&ModelSource::new(fx.model.clone(), cpu()), &train)
        .unwrap();
    assert_eq!(fitted.blocks().len(), 3);
    assert!(fitted.blocks()[0].len() > 8192);
    let s = fitted.attribute(&train).unwrap();
    s.check_finite().unwrap();
    let chunked =
        wellspring_attrib::attribute_in_chunks(&fitted, &train, 7, None, &mut |_| {}).unwrap();
    assert!(chunked == s);
    let self_inf = fitted.self_attribute().unwrap();
    for i in 0..train.len() {
        let (a, b) = (self_inf[i] as f64, s.get(i, i) as f64);
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(b.abs()),
            "{i}: {a} vs {b}"
        );
    }
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
