//! First-order gradient methods (grad-dot, grad-cos, tracin, tracin-cp, trak):
//! finiteness on the MNIST MLP with every projection, sign convention against
//! exact leave-one-out, TracInCP = Σ lr_c · Grad-Dot_c, TRAK ensembles
//! (cached, deterministic), GGDA group scores and clear errors.

use std::sync::OnceLock;

use proptest::prelude::*;
use rand::RngExt;
use wellspring_attrib::methods::grad_dot::{GradDotParams, GradSimilarity, Similarity};
use wellspring_attrib::methods::tracin::{TracInMode, TracInParams};
use wellspring_attrib::methods::trak::{
    EnsembleParams, TrakParams, ensemble_subset, train_ensemble,
};
use wellspring_attrib::{
    Attributor, FittedAttributor, MethodOptions, ModelSource, ProjectionSpec, by_name,
};
use wellspring_core::{Dataset, Features, Grouping, ScoreMatrix, rng};
use wellspring_eval::{LinearParams, LinearRetrainer, RetrainSpec, Retrainer};
use wellspring_report::Cache;

use super::{cpu, fixture, source};

const GRADIENT_METHODS: [&str; 5] = ["grad-dot", "grad-cos", "tracin", "tracin-cp", "trak"];

fn max_abs(s: &ScoreMatrix) -> f32 {
    s.as_slice().iter().fold(0.0f32, |a, v| a.max(v.abs()))
}

fn close(a: &ScoreMatrix, b: &ScoreMatrix, rel: f32) -> bool {
    let tol = rel * max_abs(a).max(max_abs(b)).max(1e-12);
    a.shape() == b.shape()
        && a.as_slice()
            .iter()
            .zip(b.as_slice())
            .all(|(x, y)| (x - y).abs() <= tol)
}

#[test]
fn finite_on_mnist_mlp_with_every_projection() {
    let fx = fixture();
    let test = fx.test.select(&(0..10).collect::<Vec<_>>()).unwrap();
    for name in GRADIENT_METHODS {
        for proj in ["identity", "gaussian:64", "rademacher:64", "kronecker:64"] {
            if name == "trak" && proj == "identity" {
                // a p × p inverse: rejected (checked in bad_inputs_are_clear_errors)
                continue;
            }
            let opts = MethodOptions::new()
                .seed(1)
                .projection(proj.parse::<ProjectionSpec>().unwrap());
            let fitted = by_name(name, &opts)
                .unwrap()
                .fit_dyn(&source(), &fx.train)
                .unwrap();
            let s = fitted.attribute(&test).unwrap();
            assert_eq!(s.shape(), (fx.train.len(), 10), "{name} {proj}");
            s.check_finite().unwrap();
            assert!(max_abs(&s) > 0.0, "{name} {proj}: all scores zero");
            let si = fitted.self_attribute().unwrap();
            assert!(si.iter().all(|v| v.is_finite()), "{name} {proj}");
        }
    }
}

fn penultimate(ds: &Dataset) -> Dataset {
    let f = wellspring_models::features(&fixture().model, ds, &cpu()).unwrap();
    ds.with_features(Features::Dense {
        values: f,
        shape: vec![fixture().model.feature_dim()],
    })
    .unwrap()
}

/// Sign convention (same ground truth as `sign.rs`): exact leave-one-out of
/// an L2 softmax head on the MLP's penultimate features; removing the top-1
/// scored training point must raise the test loss more often than removing
/// a random one.
#[test]
fn sign_convention_against_leave_one_out() {
    const N_TEST: usize = 40;
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
    let random: Vec<f32> = (0..N_TEST).map(|j| outs[j].loss[j] - base[j]).collect();
    for name in GRADIENT_METHODS {
        let scores = by_name(name, &MethodOptions::new())
            .unwrap()
            .fit_dyn(&source(), &fx.train)
            .unwrap()
            .attribute(&test)
            .unwrap();
        let jobs: Vec<(RetrainSpec, u64)> = (0..N_TEST)
            .map(|j| (RetrainSpec::without(n, &scores.top_k(j, 1)).unwrap(), 0))
            .collect();
        let outs = retrainer.retrain_many(&jobs).unwrap();
        let wins = (0..N_TEST)
            .filter(|&j| outs[j].loss[j] - base[j] > random[j])
            .count();
        eprintln!("sign {name}: top-1 removal beats random on {wins}/{N_TEST}");
        assert!(wins * 2 > N_TEST, "{name}: only {wins}/{N_TEST}");
    }
}

#[test]
fn tracin_cp_is_the_lr_weighted_sum_of_checkpoint_grad_dots() {
    let fx = fixture();
    let test = fx.test.select(&[0, 1, 2, 3]).unwrap();
    let proj = ProjectionSpec::Gaussian { dim: 128 };
    let cp = TracInParams::new(TracInMode::Checkpoints)
        .projection(proj)
        .seed(4)
        .fit(&source(), &fx.train)
        .unwrap();
    assert_eq!(cp.weights().len(), fx.checkpoints.len());
    let mut want = ScoreMatrix::zeros(fx.train.len(), test.len());
    for c in &fx.checkpoints {
        let s = GradDotParams::new(Similarity::Dot)
            .projection(proj)
            .seed(4)
            .fit(&ModelSource::new(c.model.clone(), cpu()), &fx.train)
            .unwrap()
            .attribute(&test)
            .unwrap();
        for (w, v) in want.as_mut_slice().iter_mut().zip(s.as_slice()) {
            *w += c.lr as f32 * v;
        }
    }
    assert!(close(&cp.attribute(&test).unwrap(), &want, 1e-4));
    // tracin on the final model = lr * grad-dot
    let t = TracInParams::new(TracInMode::Final)
        .lr(0.5)
        .projection(proj)
        .seed(4)
        .fit(&source(), &fx.train)
        .unwrap()
        .attribute(&test)
        .unwrap();
    let d = GradDotParams::new(Similarity::Dot)
        .projection(proj)
        .seed(4)
        .fit(&source(), &fx.train)
        .unwrap()
        .attribute(&test)
        .unwrap();
    let half: Vec<f32> = d.as_slice().iter().map(|v| 0.5 * v).collect();
    assert!(
        t.as_slice()
            .iter()
            .zip(&half)
            .all(|(a, b)| (a - b).abs() <= 1e-6 * b.abs().max(1e-6))
    );
}

#[test]
fn trak_ensemble_is_seeded_cached_and_deterministic() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let ep = EnsembleParams::new(2).seed(3);
    let a = train_ensemble(&source(), &fx.train, &ep, Some(&cache)).unwrap();
    assert_eq!(a.len(), 2);
    let files = std::fs::read_dir(dir.path().join("trak-ensemble"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "ckpt")
        })
        .count();
    assert_eq!(files, 2, "one cached checkpoint per member");
    let b = train_ensemble(&source(), &fx.train, &ep, Some(&cache)).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.params_flat(), y.params_flat());
    }
    assert_ne!(a[0].params_flat(), a[1].params_flat(), "members differ");
    let s0 = ensemble_subset(fx.train.len(), &ep, 0).unwrap();
    assert_eq!(s0.len(), fx.train.len() / 2);
    assert_ne!(
        s0.indices(),
        ensemble_subset(fx.train.len(), &ep, 1).unwrap().indices()
    );

    let src = source().with_ensemble(a);
    let test = fx.test.select(&[0, 5, 9]).unwrap();
    let fit = |seed| {
        TrakParams::new()
            .models(2)
            .seed(seed)
            .fit(&src, &fx.train)
            .unwrap()
            .attribute(&test)
            .unwrap()
    };
    let s1 = fit(11);
    assert_eq!(
        s1,
        fit(11),
        "TRAK with M = 2 is deterministic at a fixed seed"
    );
    assert_ne!(s1, fit(12), "the projection seed matters");
    s1.check_finite().unwrap();
    let e = TrakParams::new()
        .models(3)
        .fit(&src, &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trak.models") && e.contains("2 ensemble"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let fx = fixture();
    let bare = ModelSource::new(fx.model.clone(), cpu());
    let e = TracInParams::new(TracInMode::Checkpoints)
        .fit(&bare, &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("checkpoints") && e.contains("empty"), "{e}");
    let e = TracInParams::new(TracInMode::Final)
        .lr(-1.0)
        .fit(&bare, &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tracin.lr"), "{e}");
    let e = TrakParams::new()
        .models(4)
        .fit(&bare, &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trak.models"), "{e}");
    let e = TrakParams::new()
        .lambda(-1.0)
        .fit(&bare, &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trak.lambda"), "{e}");
    let e = TrakParams::new()
        .projection(ProjectionSpec::Identity)
        .fit(&bare, &fx.train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trak.projection"), "{e}");
    let e = train_ensemble(&bare, &fx.train, &EnsembleParams::new(1), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("training configuration"), "{e}");
    let e = EnsembleParams::new(1)
        .alpha(0.0)
        .check()
        .unwrap_err()
        .to_string();
    assert!(e.contains("alpha"), "{e}");
    let e = by_name(
        "grad-dot",
        &MethodOptions::new().projection(ProjectionSpec::Gaussian { dim: 10_000_000 }),
    )
    .unwrap()
    .fit_dyn(&bare, &fx.train)
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("grad-dot.projection"), "{e}");
    // a test set of another width is rejected by name
    let narrow = fx
        .test
        .with_features(Features::Dense {
            values: vec![0.0; fx.test.len() * 100],
            shape: vec![100],
        })
        .unwrap()
        .renamed("narrow-test");
    let fitted = GradDotParams::new(Similarity::Cosine)
        .fit(&bare, &fx.train)
        .unwrap();
    let e = fitted.attribute(&narrow).unwrap_err().to_string();
    assert!(e.contains("narrow-test"), "{e}");
    let e = fitted
        .attribute_groups(&Grouping::singletons(7), &fx.test)
        .unwrap_err()
        .to_string();
    assert!(e.contains("7 points") && e.contains("400"), "{e}");
}

/// Grad-Dot with identity projection, fitted once: its batched group scores
/// must equal summed per-point scores (linearity of the group gradient).
fn exact_dot() -> &'static GradSimilarity {
    static F: OnceLock<GradSimilarity> = OnceLock::new();
    F.get_or_init(|| {
        GradDotParams::new(Similarity::Dot)
            .projection(ProjectionSpec::Identity)
            .fit(&source(), &fixture().train)
            .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// GGDA: group scores from batched group gradients equal the sums of
    /// per-point Grad-Dot scores for any partition (up to f32 rounding), and
    /// singleton groups reproduce per-point scores exactly for every method.
    #[test]
    fn group_gradients_match_point_sums(assign in proptest::collection::vec(0usize..9, 400)) {
        let fx = fixture();
        let test = fx.test.select(&[1, 4]).unwrap();
        let g = Grouping::from_assignment(&assign).unwrap();
        let a = exact_dot();
        let per_point = a.attribute(&test).unwrap();
        let grouped = a.attribute_groups(&g, &test).unwrap();
        prop_assert!(close(&grouped, &per_point.sum_over_groups(&g).unwrap(), 1e-3));
        // singletons in a shuffled group order
        let mut perm: Vec<usize> = (0..400).collect();
        perm.sort_by_key(|&i| (assign[i], i));
        let singles = Grouping::new(perm.iter().map(|&i| vec![i]).collect(), 400).unwrap();
        let s = a.attribute_groups(&singles, &test).unwrap();
        for (gi, &i) in perm.iter().enumerate() {
            prop_assert_eq!(s.row(gi), per_point.row(i));
        }
    }
}

#[test]
fn group_scores_for_tracin_and_trak_track_point_sums() {
    let fx = fixture();
    let test = fx.test.select(&[0, 2, 6, 8]).unwrap();
    let assign: Vec<usize> = (0..fx.train.len()).map(|i| (i * 7) % 100).collect();
    let g = Grouping::from_assignment(&assign).unwrap();
    for (name, kernel) in [
        ("tracin", None),
        ("trak", Some("points")),
        ("trak", Some("batched")),
    ] {
        let mut opts = MethodOptions::new().seed(2);
        if let Some(k) = kernel {
            opts = opts.param("group-kernel", k);
        }
        let f = by_name(name, &opts)
            .unwrap()
            .fit_dyn(&source(), &fx.train)
            .unwrap();
        let grouped = f.attribute_groups(&g, &test).unwrap();
        assert_eq!(grouped.shape(), (100, 4));
        grouped.check_finite().unwrap();
        let sums = f.attribute(&test).unwrap().sum_over_groups(&g).unwrap();
        let (x, y) = (grouped.as_slice(), sums.as_slice());
        let mean = |v: &[f32]| v.iter().map(|&a| a as f64).sum::<f64>() / v.len() as f64;
        let (mx, my) = (mean(x), mean(y));
        let cov: f64 = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| (a as f64 - mx) * (b as f64 - my))
            .sum();
        let vx: f64 = x.iter().map(|&a| (a as f64 - mx).powi(2)).sum();
        let vy: f64 = y.iter().map(|&b| (b as f64 - my).powi(2)).sum();
        let corr = cov / (vx * vy).sqrt();
        eprintln!("{name} {kernel:?}: group vs summed point scores, Pearson {corr:.4}");
        // GGDA's batched Fisher is an approximation of the per-point kernel
        // (random groups here: 0.22 measured; GGDA pairs it with gradient-aligned groups)
        let min = if kernel == Some("batched") { 0.1 } else { 0.99 };
        assert!(corr > min, "{name} {kernel:?}: correlation {corr}");
    }
}
