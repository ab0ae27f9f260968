//! Sign convention on real data: removing a test point's top-scored training
//! point raises its loss more often than removing a random training point.
//! Ground truth: exact leave-one-out retraining of an L2-regularised softmax
//! regression on the trained MLP's penultimate features (wellspring-eval's
//! `LinearRetrainer`, deterministic and convex).

use rand::RngExt;
use wellspring_attrib::{MethodOptions, by_name};
use wellspring_core::{Dataset, Features, rng};
use wellspring_eval::{LinearParams, LinearRetrainer, RetrainSpec, Retrainer};

use super::{cpu, fixture, source};

const N_TEST: usize = 40;

fn penultimate(ds: &Dataset) -> Dataset {
    let f = wellspring_models::features(&fixture().model, ds, &cpu()).unwrap();
    ds.with_features(Features::Dense {
        values: f,
        shape: vec![fixture().model.feature_dim()],
    })
    .unwrap()
}

struct Truth {
    retrainer: LinearRetrainer,
    base: Vec<f32>,
    random_delta: Vec<f64>,
}

fn truth() -> &'static Truth {
    static T: std::sync::OnceLock<Truth> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let fx = fixture();
        let test = fx.test.select(&(0..N_TEST).collect::<Vec<_>>()).unwrap();
        let retrainer = LinearRetrainer::new(
            &penultimate(&fx.train),
            &penultimate(&test),
            LinearParams::new().l2(1e-2),
        )
        .unwrap();
        let n = fx.train.len();
        let base = retrainer.retrain(&RetrainSpec::full(n), 0).unwrap().loss;
        let mut r = rng(99);
        let jobs: Vec<(RetrainSpec, u64)> = (0..N_TEST)
            .map(|_| (RetrainSpec::without(n, &[r.random_range(0..n)]).unwrap(), 0))
            .collect();
        let outs = retrainer.retrain_many(&jobs).unwrap();
        let random_delta = (0..N_TEST)
            .map(|j| (outs[j].loss[j] - base[j]) as f64)
            .collect();
        Truth {
            retrainer,
            base,
            random_delta,
        }
    })
}

/// (wins of top-1 over random, mean Δloss top-1, mean Δloss random).
fn sign_check(method: &str) -> (usize, f64, f64) {
    let fx = fixture();
    let t = truth();
    let test = fx.test.select(&(0..N_TEST).collect::<Vec<_>>()).unwrap();
    let fitted = by_name(method, &MethodOptions::new())
        .unwrap()
        .fit_dyn(&source(), &fx.train)
        .unwrap();
    let scores = fitted.attribute(&test).unwrap();
    let n = fx.train.len();
    let jobs: Vec<(RetrainSpec, u64)> = (0..N_TEST)
        .map(|j| (RetrainSpec::without(n, &scores.top_k(j, 1)).unwrap(), 0))
        .collect();
    let outs = t.retrainer.retrain_many(&jobs).unwrap();
    let top: Vec<f64> = (0..N_TEST)
        .map(|j| (outs[j].loss[j] - t.base[j]) as f64)
        .collect();
    let wins = (0..N_TEST).filter(|&j| top[j] > t.random_delta[j]).count();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let res = (wins, mean(&top), mean(&t.random_delta));
    eprintln!(
        "sign {method}: top-1 beats random on {}/{N_TEST}, mean dloss {:.3e} vs {:.3e}",
        res.0, res.1, res.2
    );
    res
}

fn assert_sign(method: &str) {
    let (wins, _, _) = sign_check(method);
    assert!(
        wins * 2 > N_TEST,
        "{method}: top-1 removal beat random on only {wins}/{N_TEST}"
    );
}

#[test]
fn sign_pae() {
    assert_sign("pae");
}

#[test]
fn sign_embeddings() {
    for m in ["emb-dot", "emb-cos", "emb-dist"] {
        assert_sign(m);
    }
}

#[test]
fn sign_l2() {
    assert_sign("l2");
}

#[test]
fn sign_esvm() {
    assert_sign("esvm");
}

#[test]
fn sign_rps() {
    assert_sign("rps");
}
