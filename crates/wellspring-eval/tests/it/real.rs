//! Real retraining: L2 logistic regression on 200 breast-cancer training points.

use wellspring_core::Grouping;
use wellspring_eval::{
    Aggregation, Brittleness, CandidatePool, EvalContext, Lds, LooCorrelation, Metric, Ranking,
    Retrainer, RetrainingScore, Which, aggregate, removal_set,
};

use crate::common::{Method, bc_retrainer, scores};

#[test]
fn loo_effects_are_finite_deterministic_and_tracked_by_influence() {
    let r = bc_retrainer(200, 40);
    let loo = LooCorrelation::params().random_points(25).seed(3);
    let a = loo.ground_truth(&r).unwrap();
    let b = loo.ground_truth(&r).unwrap();
    assert_eq!(a, b, "retraining is deterministic");
    assert!(
        a.margin
            .iter()
            .flatten()
            .chain(a.loss.iter().flatten())
            .all(|v| v.is_finite())
    );
    assert!(
        a.loss.iter().flatten().any(|v| v.abs() > 1e-6),
        "removing a point changes something"
    );
    // the influence function is the first-order LOO approximation of a convex model
    let inf = a.score(&scores(&r, Method::Influence)).unwrap();
    assert!(
        inf.loss.pooled_pearson.unwrap() > 0.9,
        "{:?}",
        inf.loss.pooled_pearson
    );
    assert!(inf.loss.spearman.mean > 0.7, "{:?}", inf.loss.spearman);
}

#[test]
fn lds_ranks_influence_above_grad_dot_above_noise() {
    let r = bc_retrainer(200, 40);
    let truth = Lds::params().m(40).seed(1).ground_truth(&r).unwrap();
    let inf = truth
        .score(&scores(&r, Method::Influence), Default::default())
        .unwrap();
    let dot = truth
        .score(&scores(&r, Method::GradDot), Default::default())
        .unwrap();
    // a score matrix unrelated to the data
    let noise_data: Vec<f32> = (0..200 * 40)
        .map(|i| ((i * 7919 % 1013) as f32) / 1013.0 - 0.5)
        .collect();
    let noise = wellspring_core::ScoreMatrix::from_vec(200, 40, noise_data).unwrap();
    let rnd = truth.score(&noise, Default::default()).unwrap();
    assert!(inf.summary.mean > 0.3, "influence LDS {:?}", inf.summary);
    assert!(dot.summary.mean > 0.0, "grad-dot LDS {:?}", dot.summary);
    assert!(rnd.summary.mean.abs() < 0.2, "noise LDS {:?}", rnd.summary);
    assert!(inf.summary.mean > rnd.summary.mean + 0.2);
}

#[test]
fn removing_helpful_points_hurts_more_than_random() {
    let r = bc_retrainer(200, 60);
    let s = scores(&r, Method::Influence);
    let ctx = EvalContext::new().with_retrainer(&r);
    let rep = RetrainingScore::params()
        .shares(vec![0.1, 0.2])
        .random_baseline(true)
        .evaluate(&s, &ctx)
        .unwrap();
    let full = rep.full.as_ref().unwrap();
    for (top, rnd) in rep.points.iter().zip(&rep.random) {
        assert_eq!(top.n_removed, rnd.n_removed);
        assert!(
            top.loss.mean > rnd.loss.mean,
            "share {}: top loss {} vs random {}",
            top.share,
            top.loss.mean,
            rnd.loss.mean
        );
        assert!(top.loss.mean > full.loss.mean);
    }
    // accuracy: averaged over random draws, targeted removal is at least as harmful
    let n = r.n_train();
    let imp = aggregate(&s, Aggregation::Sum);
    let k = 40;
    let top = r
        .retrain(
            &wellspring_eval::RetrainSpec::without(
                n,
                &removal_set(Ranking::Points(&imp), k, Which::MostImportant, 0).unwrap(),
            )
            .unwrap(),
            0,
        )
        .unwrap();
    let mut rnd_acc = 0.0;
    for seed in 0..5 {
        let set = removal_set(Ranking::Points(&imp), k, Which::Random, seed).unwrap();
        rnd_acc += r
            .retrain(&wellspring_eval::RetrainSpec::without(n, &set).unwrap(), 0)
            .unwrap()
            .accuracy()
            .unwrap()
            / 5.0;
    }
    assert!(
        top.accuracy().unwrap() <= rnd_acc,
        "{} vs {rnd_acc}",
        top.accuracy().unwrap()
    );
}

#[test]
fn group_scores_with_singletons_equal_point_scores() {
    let r = bc_retrainer(120, 20);
    let s = scores(&r, Method::GradDot);
    let g = Grouping::singletons(120);
    let plain = EvalContext::new().with_retrainer(&r);
    let grouped = EvalContext::new().with_retrainer(&r).with_grouping(&g);
    let metric = RetrainingScore::params().shares(vec![0.05, 0.25]);
    let a = metric.evaluate(&s, &plain).unwrap();
    let b = metric.evaluate(&s, &grouped).unwrap();
    assert_eq!(a.points, b.points);
    assert!(!a.grouped && b.grouped);
    // groups of 4 (by index): whole groups go first, the count is still exact
    let g4 = Grouping::from_assignment(&(0..120).map(|i| i / 4).collect::<Vec<_>>()).unwrap();
    let gs = s.sum_over_groups(&g4).unwrap();
    let c = metric
        .evaluate(
            &gs,
            &EvalContext::new().with_retrainer(&r).with_grouping(&g4),
        )
        .unwrap();
    assert_eq!(c.points[0].n_removed, 6);
}

#[test]
fn brittleness_bisection_and_scan_on_logistic_regression() {
    let r = bc_retrainer(200, 40);
    let s = scores(&r, Method::Influence);
    let ctx = EvalContext::new().with_retrainer(&r);
    let tests: Vec<usize> = (0..8).collect();
    let bis = Brittleness::removal()
        .n_models(1)
        .max_k(128)
        .test_points(tests.clone())
        .evaluate(&s, &ctx)
        .unwrap();
    let scan = Brittleness::removal()
        .n_models(1)
        .max_k(128)
        .linear_scan(vec![4, 8, 16, 32, 64, 128])
        .test_points(tests)
        .evaluate(&s, &ctx)
        .unwrap();
    assert_eq!(bis.per_test.len(), 8);
    for (b, l) in bis.per_test.iter().zip(&scan.per_test) {
        assert!(
            b.trace.len() <= 7
                && b.trace
                    .iter()
                    .all(|p| (0.0..=1.0).contains(&p.mean_correct))
        );
        // retraining is deterministic: a size probed by both searches gets one answer
        for p in &b.trace {
            if let Some(q) = l.trace.iter().find(|q| q.probe.k == p.probe.k) {
                assert_eq!(
                    p.probe.flipped, q.probe.flipped,
                    "test {} k {}",
                    b.test, p.probe.k
                );
            }
        }
        // the true support lies above both lower bounds and at or below both supports
        if let Some(ls) = l.support {
            assert!(
                b.lower < ls,
                "test {}: bisection lower {} vs scan {ls}",
                b.test,
                b.lower
            );
        }
        if let Some(bs) = b.support {
            assert!(
                l.lower < bs,
                "test {}: scan lower {} vs bisection {bs}",
                b.test,
                l.lower
            );
        }
    }
    assert!((0.0..=1.0).contains(&bis.cdf.auc) && (0.0..=1.0).contains(&scan.cdf.auc));
    // for two classes the mislabel pool is the same-class ranking, and
    // relabelling a point is stronger than removing it: smaller supports
    let exact = |b: Brittleness| {
        b.pool(CandidatePool::SameClass)
            .n_models(1)
            .max_k(128)
            .bisection(8)
            .test_points((0..8).collect())
    };
    let rem = exact(Brittleness::removal()).evaluate(&s, &ctx).unwrap();
    let mis = exact(Brittleness::mislabel()).evaluate(&s, &ctx).unwrap();
    for (m, r) in mis.per_test.iter().zip(&rem.per_test) {
        assert_eq!(m.target_class, Some(1 - m.label));
        assert_eq!(m.pool_size, r.pool_size);
        assert!(m.support.unwrap_or(usize::MAX) <= r.support.unwrap_or(usize::MAX));
    }
    assert!(mis.cdf.auc >= rem.cdf.auc);
}
